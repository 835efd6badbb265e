//! The event loop: one task owns the swarm and the replica; everything else talks to it through
//! a cloneable [`NodeHandle`] that sends commands with a oneshot reply (the shape of
//! rust-libp2p's file-sharing example).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, mdns, Multiaddr, PeerId, Swarm};
use rand::seq::IteratorRandom;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::api::{ApiError, ErrorCode, Event, MemberSync, Request, Response, StatusView};
use crate::net::{self, Behaviour, GateEvent, MessageAcceptance, NetConfig, NetEvent};
use crate::replica::{now, Ingested, Replica, SetKind, WireItem};
use crate::sync::{self, Session, Step};
use crate::{member_of, peer_id_of};

/// Capacity of the command channel from handles to the loop.
pub const COMMAND_CAPACITY: usize = 64;
/// Capacity of the event broadcast to watchers (slow watchers miss old events).
pub const EVENT_CAPACITY: usize = 256;
/// How often periodic work runs.
pub const TICK: Duration = Duration::from_secs(2);
/// Longest wait between reconnection attempts to a known address.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Most addresses kept to (re)connect to.
pub const MAX_DIAL_TARGETS: usize = 256;
/// Sync requests a peer may get wrong before it is disconnected.
pub const MAX_STRIKES: u32 = 5;
/// How long a just-removed member stays connected while it is told of its removal.
pub const FAREWELL: Duration = Duration::from_secs(5);

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Addresses to listen on (default: all interfaces, OS-chosen TCP and QUIC ports).
    pub listen: Vec<Multiaddr>,
    /// Addresses of members' nodes to connect to (with `/p2p/<peer id>`), besides the invite's.
    pub peers: Vec<Multiaddr>,
    /// Discover members on the local network with mDNS (off unless asked for: it announces
    /// the node to everyone on the network).
    pub mdns: bool,
    /// How often to sync with a random connected member.
    pub sync_interval: Duration,
    /// Serve the control socket at this path.
    pub control_socket: Option<PathBuf>,
    /// Gossip heartbeat (shorter in tests).
    pub gossip_heartbeat: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            peers: Vec::new(),
            mdns: false,
            sync_interval: Duration::from_secs(30),
            control_socket: None,
            gossip_heartbeat: net::DEFAULT_GOSSIP_HEARTBEAT,
        }
    }
}

/// Network figures the loop keeps.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    /// Bytes received in gossip messages and sync responses and pushes.
    pub bytes_received: u64,
    /// Completed sync sessions.
    pub syncs: u64,
    /// Time of the last completed sync.
    pub last_sync: Option<u64>,
    /// When each peer last synced with us or we with it (a session done either way).
    pub synced_with: HashMap<PeerId, u64>,
    /// Gossip messages rejected as invalid.
    pub rejected: u64,
    /// Connections the member gate refused (peers not on the roster).
    pub denied: u64,
}

enum Command {
    Execute(Request, oneshot::Sender<Result<Response, ApiError>>),
    Watch(oneshot::Sender<broadcast::Receiver<Event>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), ApiError>>),
    Stats(oneshot::Sender<NetStats>),
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// This device has no collective yet.
    #[error("this device is not in a collective yet: create one or join with an invite first")]
    NoCollective,
    /// The network layer failed.
    #[error("network: {0}")]
    Net(#[from] net::NetError),
    /// The control socket could not be served.
    #[error("control socket: {0}")]
    Control(std::io::Error),
}

/// Start a node around an opened replica. Must be called within a tokio runtime.
pub async fn start(replica: Replica, config: NodeConfig) -> Result<NodeHandle, StartError> {
    let log = replica.membership().ok_or(StartError::NoCollective)?;
    let topic = log.collective().topic();
    let keypair =
        libp2p::identity::Keypair::ed25519_from_bytes(replica.identity().ed25519_seed().to_vec())
            .map_err(|_| StartError::NoCollective)?;
    let allowed: HashSet<PeerId> = replica
        .allowed_members()
        .iter()
        .filter_map(peer_id_of)
        .collect();
    let net_config = NetConfig {
        listen: config.listen.clone(),
        enable_mdns: config.mdns,
        topic,
        allowed,
        gossip_heartbeat: config.gossip_heartbeat,
        ..NetConfig::default()
    };
    let mut swarm = net::build_swarm(keypair, &net_config)?;
    let peer_id = *swarm.local_peer_id();
    let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
    let (events, _) = broadcast::channel(EVENT_CAPACITY);

    let mut targets = HashMap::new();
    for addr in replica
        .bootstrap_addresses()
        .iter()
        .filter_map(|a| a.parse::<Multiaddr>().ok())
        .chain(config.peers.iter().cloned())
    {
        if let Some(peer) = peer_of_addr(&addr).filter(|p| !is_removed(&replica, p)) {
            // Invite and command-line peers may be admitted before the roster names them.
            let _ = swarm.behaviour_mut().allow_temporarily(peer);
        }
        targets.insert(addr, Backoff::new());
    }

    let handle = NodeHandle {
        commands: commands.clone(),
        peer_id,
    };
    if let Some(path) = &config.control_socket {
        crate::control::serve(path, handle.clone())
            .await
            .map_err(StartError::Control)?;
    }
    let event_loop = EventLoop {
        swarm,
        replica,
        receiver,
        events,
        config,
        targets,
        sessions: HashMap::new(),
        waiting_sync: VecDeque::new(),
        session_peers: HashSet::new(),
        strikes: HashMap::new(),
        stats: NetStats::default(),
        listening: Vec::new(),
        last_periodic_sync: Instant::now(),
        announced: false,
        farewells: HashMap::new(),
        told: HashSet::new(),
        inbound_sync: HashMap::new(),
    };
    tokio::spawn(event_loop.run());
    Ok(handle)
}

impl NodeHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Execute a request on the node's replica (and publish what it made).
    pub async fn execute(&self, request: Request) -> Result<Response, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Execute(request, tx)).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Status, with network figures.
    pub async fn status(&self) -> Result<StatusView, ApiError> {
        crate::client::Client::new(self.clone()).status().await
    }

    /// Subscribe to new alerts and membership changes.
    pub async fn watch(&self) -> Result<broadcast::Receiver<Event>, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Watch(tx)).await?;
        rx.await.map_err(|_| stopped())
    }

    /// Connect to a member's node.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Dial(addr, tx)).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Network figures.
    pub async fn stats(&self) -> Result<NetStats, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx)).await?;
        rx.await.map_err(|_| stopped())
    }

    /// Stop the node: flush and close the store. Returns when done.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), ApiError> {
        self.commands.send(command).await.map_err(|_| stopped())
    }
}

fn stopped() -> ApiError {
    ApiError::new(ErrorCode::Internal, "the node has stopped")
}

struct Backoff {
    next: Instant,
    delay: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: Instant::now(),
            delay: Duration::from_secs(1),
        }
    }
    fn failed(&mut self) {
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        self.next = Instant::now() + self.delay;
    }
    fn reset(&mut self) {
        self.delay = Duration::from_secs(1);
        self.next = Instant::now() + self.delay;
    }
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    replica: Replica,
    receiver: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    config: NodeConfig,
    targets: HashMap<Multiaddr, Backoff>,
    sessions: HashMap<OutboundRequestId, (PeerId, Session)>,
    /// Peers to sync with once the running session ends.
    waiting_sync: VecDeque<PeerId>,
    session_peers: HashSet<PeerId>,
    strikes: HashMap<PeerId, u32>,
    stats: NetStats,
    listening: Vec<Multiaddr>,
    last_periodic_sync: Instant,
    announced: bool,
    /// Removed members still connected until they acknowledge the push of their removal (or
    /// [`FAREWELL`] passes).
    farewells: HashMap<PeerId, (Instant, OutboundRequestId)>,
    /// Removed members already told (never twice).
    told: HashSet<PeerId>,
    /// When each peer last sent us a sync request.
    inbound_sync: HashMap<PeerId, Instant>,
}

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.receiver.recv() => match command {
                    Some(Command::Shutdown(done)) => break Some(done),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                _ = tick.tick() => self.on_tick(),
            }
            self.after_change();
        };
        self.stop();
        // Only now, with the store closed and its lock released, may the caller reopen it.
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Close the swarm and the store (flushing it and releasing its lock).
    fn stop(self) {
        let Self {
            swarm,
            replica,
            config,
            ..
        } = self;
        drop(swarm);
        if let Err(e) = replica.close() {
            warn!(error = %e, "closing the store on shutdown failed");
        }
        if let Some(path) = &config.control_socket {
            let _ = std::fs::remove_file(path);
        }
        info!("node stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Execute(request, reply) => {
                let result = match request {
                    Request::Status => Ok(Response::Status(self.status())),
                    other => self.replica.execute(other),
                };
                let _ = reply.send(result);
            }
            Command::Watch(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            Command::Dial(addr, reply) => {
                if let Some(peer) = peer_of_addr(&addr).filter(|p| !is_removed(&self.replica, p)) {
                    let _ = self.swarm.behaviour_mut().allow_temporarily(peer);
                }
                let result = self.swarm.dial(addr.clone()).map_err(|e| {
                    ApiError::new(ErrorCode::InvalidInput, format!("cannot dial: {e}"))
                });
                self.targets.entry(addr).or_insert_with(Backoff::new);
                let _ = reply.send(result);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats.clone());
            }
            Command::Shutdown(_) => {}
        }
    }

    fn status(&self) -> StatusView {
        let mut view = self.replica.status();
        view.running = true;
        view.listening = self.listening.iter().map(ToString::to_string).collect();
        view.peers = self.swarm.connected_peers().count();
        view.last_sync = self.stats.last_sync;
        if let Some(log) = self.replica.membership() {
            let roster = log.roster();
            view.synced_with = self
                .stats
                .synced_with
                .iter()
                .filter_map(|(peer, at)| {
                    let member = roster.member(&member_of(peer)?)?;
                    Some(MemberSync {
                        member: member.identity.member.to_hex(),
                        name: member.name.clone(),
                        at: *at,
                    })
                })
                .collect();
            view.synced_with.sort_by(|a, b| a.name.cmp(&b.name));
        }
        view.bytes_received = self.stats.bytes_received;
        view
    }

    /// After anything that may have changed the replica: publish what it made, tell watchers,
    /// update who may connect.
    fn after_change(&mut self) {
        for item in self.replica.take_outgoing() {
            self.publish(&item);
        }
        let events = self.replica.take_events();
        let membership_changed = events
            .iter()
            .any(|e| matches!(e, Event::MembershipChanged { .. }));
        for event in events {
            let _ = self.events.send(event);
        }
        if membership_changed {
            self.bid_farewells();
            self.update_gate();
        }
    }

    /// Tell connected members who were just removed: push them the membership ops and keep
    /// them connected (but out of gossip) until they answer, so that their node knows it was
    /// removed rather than only finding itself disconnected.
    fn bid_farewells(&mut self) {
        let removed = self.removed_peers();
        for peer in removed {
            if !self.swarm.is_connected(&peer) || !self.told.insert(peer) {
                continue;
            }
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let push = sync::membership_push(&mut self.replica);
            let id = self.swarm.behaviour_mut().request(&peer, push);
            self.farewells.insert(peer, (Instant::now() + FAREWELL, id));
            debug!(peer = %peer, "telling a removed member of its removal");
        }
    }

    /// Peer ids of removed members.
    fn removed_peers(&self) -> Vec<PeerId> {
        self.replica
            .membership()
            .map(|log| {
                log.roster()
                    .removed()
                    .keys()
                    .filter_map(peer_id_of)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Admit exactly the roster (and removed members still being told), disconnecting the rest.
    fn update_gate(&mut self) {
        let allowed: HashSet<PeerId> = self
            .replica
            .allowed_members()
            .iter()
            .filter_map(peer_id_of)
            .chain(self.farewells.keys().copied())
            .collect();
        let mut evicted = self.swarm.behaviour_mut().set_allowed(allowed);
        // A peer dialed by address is let in before the roster names it; once the roster says
        // it was removed, that allowance must not keep it connected.
        let removed = self.removed_peers();
        for peer in removed {
            if self.farewells.contains_key(&peer) {
                continue;
            }
            let connected = self.swarm.is_connected(&peer);
            if self.swarm.behaviour_mut().gate.revoke_temporary(&peer) && connected {
                evicted.push(peer);
            }
        }
        for peer in evicted {
            info!(peer = %peer, "disconnecting a peer no longer in the roster");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// A removed member answered the push of its removal (or the push failed): let it go.
    fn farewell_done(&mut self, request_id: OutboundRequestId) -> bool {
        let Some(peer) = self
            .farewells
            .iter()
            .find(|(_, (_, id))| *id == request_id)
            .map(|(peer, _)| *peer)
        else {
            return false;
        };
        self.farewells.remove(&peer);
        self.update_gate();
        true
    }

    fn publish(&mut self, item: &WireItem) {
        match self.swarm.behaviour_mut().publish(item.encode()) {
            Ok(_) => debug!(kind = ?item.kind, "published"),
            // No peer yet: the item stays in the store and reaches peers by sync.
            Err(e) => debug!(kind = ?item.kind, error = %e, "not published now"),
        }
    }

    fn on_tick(&mut self) {
        if let Err(e) = self.replica.maintain() {
            warn!(error = %e, "maintenance failed");
        }
        self.learn_member_addresses();
        let now = Instant::now();
        let before = self.farewells.len();
        self.farewells.retain(|_, (deadline, _)| *deadline > now);
        if self.farewells.len() != before {
            self.update_gate();
        }
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let due: Vec<Multiaddr> = self
            .targets
            .iter()
            .filter(|(addr, b)| {
                b.next <= now && peer_of_addr(addr).is_none_or(|p| !connected.contains(&p))
            })
            .map(|(a, _)| a.clone())
            .collect();
        for addr in due {
            if let Some(backoff) = self.targets.get_mut(&addr) {
                backoff.failed();
            }
            let _ = self.swarm.dial(addr);
        }
        if self.last_periodic_sync.elapsed() >= self.config.sync_interval {
            self.last_periodic_sync = now;
            let quiet_since = now.checked_sub(self.config.sync_interval);
            // Skip peers syncing with us right now: our session would fetch the same items.
            // Unless posts of ours are still unconfirmed: only a session we run proves that a
            // member holds them (it pushes what the peer lacks), and a founder whom everyone
            // syncs with would otherwise never run one and warn of "unsent" posts for ever.
            self.inbound_sync
                .retain(|_, at| quiet_since.is_some_and(|q| *at > q));
            let unconfirmed = self.replica.has_unconfirmed_posts();
            let peer = connected
                .iter()
                .filter(|p| {
                    !self.session_peers.contains(p)
                        && (unconfirmed || !self.inbound_sync.contains_key(p))
                })
                .choose(&mut rand::thread_rng())
                .copied();
            if let Some(peer) = peer {
                self.start_sync(peer);
            }
        }
    }

    /// Start a sync session with `peer`, or queue it behind the one running: sessions run one
    /// at a time so a node reconnecting to several members does not fetch everything twice.
    fn start_sync(&mut self, peer: PeerId) {
        if self.session_peers.contains(&peer) || self.replica.membership().is_none() {
            return;
        }
        if !self.session_peers.is_empty() {
            if !self.waiting_sync.contains(&peer) {
                self.waiting_sync.push_back(peer);
            }
            return;
        }
        let (session, step) = Session::start(&mut self.replica);
        if let Step::Send(request) = step {
            let id = self.swarm.behaviour_mut().request(&peer, request);
            self.sessions.insert(id, (peer, session));
            self.session_peers.insert(peer);
            debug!(peer = %peer, "sync started");
        }
    }

    /// A session with `peer` ended (done, failed or disconnected): start the next queued one.
    fn session_ended(&mut self, peer: PeerId) {
        self.session_peers.remove(&peer);
        while let Some(next) = self.waiting_sync.pop_front() {
            if self.swarm.is_connected(&next) {
                self.start_sync(next);
                break;
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<NetEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listening.push(address);
                // Never the address itself: logs must not reveal where members are.
                info!(addresses = self.listening.len(), "listening");
                let listening: Vec<String> =
                    self.listening.iter().map(ToString::to_string).collect();
                if let Err(e) = self.replica.set_listen_addresses(&listening) {
                    warn!(error = %e, "could not remember listen addresses");
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, "connected");
                let addr = endpoint.get_remote_address();
                if let Some(backoff) = self.targets.get_mut(addr) {
                    backoff.reset();
                }
                // One session per new connection, run by the dialer: a session fetches and
                // pushes, so a second one from the listener would carry everything twice.
                if endpoint.is_dialer() {
                    self.start_sync(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(peer = %peer_id, "disconnected");
                self.sessions.retain(|_, (p, _)| *p != peer_id);
                self.waiting_sync.retain(|p| *p != peer_id);
                self.session_ended(peer_id);
                self.farewells.remove(&peer_id);
                self.inbound_sync.remove(&peer_id);
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, event: NetEvent) {
        match event {
            NetEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, &message.data),
            NetEvent::Sync(request_response::Event::Message { peer, message, .. }) => match message
            {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.stats.bytes_received += request.len() as u64;
                    self.inbound_sync.insert(peer, Instant::now());
                    if is_removed(&self.replica, &peer)
                        && sync::request_kind(&request) != Some(SetKind::Ops)
                    {
                        // A removed member being told of its removal gets membership only.
                        let refused = sync::encode(&sync::SyncResponse::Error {
                            reason: "you were removed from this collective".into(),
                        });
                        let _ = self.swarm.behaviour_mut().respond(channel, refused);
                        return;
                    }
                    let served = sync::serve_from(&mut self.replica, member_of(&peer), &request);
                    if served.misbehaved {
                        self.strike(peer);
                    } else {
                        self.stats.synced_with.insert(peer, now());
                    }
                    let _ = self.swarm.behaviour_mut().respond(channel, served.response);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.stats.bytes_received += response.len() as u64;
                    if self.farewell_done(request_id) {
                        return;
                    }
                    self.on_sync_response(request_id, &response);
                }
            },
            NetEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            }) => {
                debug!(peer = %peer, error = %error, "sync request failed");
                self.farewell_done(request_id);
                if self.sessions.remove(&request_id).is_some() {
                    self.session_ended(peer);
                }
            }
            NetEvent::Identify(event) => {
                if let identify::Event::Received { peer_id, info, .. } = *event {
                    for addr in info.listen_addrs.into_iter().take(8) {
                        if is_dialable(&addr) && self.targets.len() < MAX_DIAL_TARGETS {
                            let addr = addr.with_p2p(peer_id).unwrap_or_else(|a| a);
                            self.targets.entry(addr).or_insert_with(Backoff::new);
                        }
                    }
                }
            }
            NetEvent::Gate(GateEvent::Denied { .. }) => self.stats.denied += 1,
            NetEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    // Only members pass the gate; dialing others is refused after the handshake.
                    if self
                        .replica
                        .allowed_members()
                        .iter()
                        .any(|m| peer_id_of(m) == Some(peer))
                    {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, data: &[u8]) {
        self.stats.bytes_received += data.len() as u64;
        let verdict = match WireItem::decode(data) {
            None => {
                debug!(peer = %source, "undecodable gossip rejected");
                self.stats.rejected += 1;
                MessageAcceptance::Reject
            }
            Some(item) => match self.replica.ingest(&item) {
                Ok(Ingested::Accepted) => {
                    if let Err(e) = self.replica.flush() {
                        warn!(error = %e, "flush failed");
                    }
                    MessageAcceptance::Accept
                }
                Ok(Ingested::Held) => {
                    self.start_sync(source);
                    MessageAcceptance::Ignore
                }
                Ok(Ingested::Rejected(reason)) => {
                    debug!(peer = %source, reason = %reason, "gossip rejected");
                    self.stats.rejected += 1;
                    MessageAcceptance::Reject
                }
                Ok(Ingested::Duplicate | Ingested::Ignored(_)) => MessageAcceptance::Ignore,
                Err(e) => {
                    warn!(error = %e, "storing gossip failed");
                    MessageAcceptance::Ignore
                }
            },
        };
        self.swarm
            .behaviour_mut()
            .report_validation(&id, &source, verdict);
    }

    fn on_sync_response(&mut self, request_id: OutboundRequestId, response: &[u8]) {
        let Some((peer, mut session)) = self.sessions.remove(&request_id) else {
            return;
        };
        match session.advance(&mut self.replica, response) {
            Step::Send(request) => {
                let id = self.swarm.behaviour_mut().request(&peer, request);
                self.sessions.insert(id, (peer, session));
            }
            Step::Done => {
                self.session_ended(peer);
                self.stats.syncs += 1;
                self.stats.last_sync = Some(now());
                self.stats.synced_with.insert(peer, now());
                debug!(peer = %peer, accepted = session.accepted, bytes = session.bytes_received, "sync done");
                self.after_first_sync();
            }
            Step::Abort(reason) => {
                self.session_ended(peer);
                debug!(peer = %peer, reason = %reason, "sync aborted");
                self.strike(peer);
            }
        }
    }

    /// After a complete sync with some peer: tell the members where this node can be reached;
    /// our own posts (made offline, say) have reached that peer, so gossip them once to the rest
    /// of the mesh and forget the outbox. (Announcing first: the hint is gossiped with the rest
    /// and does not sit in the outbox as an "unsent" post of the person until the next sync.)
    fn after_first_sync(&mut self) {
        self.announce_reachability();
        for item in self.replica.outbox() {
            self.publish(&item);
        }
        if let Err(e) = self.replica.clear_outbox() {
            warn!(error = %e, "could not clear the outbox");
        }
    }

    /// Once per run: post where this node can be reached, for members only.
    fn announce_reachability(&mut self) {
        if !self.announced && !self.listening.is_empty() {
            self.announced = true;
            let addresses: Vec<String> = self
                .listening
                .iter()
                .filter(|a| is_dialable(a))
                .map(ToString::to_string)
                .collect();
            if let Err(e) = self.replica.announce_reachability(&addresses) {
                debug!(error = %e, "reachability not announced");
            }
        }
    }

    /// Dial targets from the addresses members announced (kept across restarts, encrypted).
    fn learn_member_addresses(&mut self) {
        for (member, addresses) in self.replica.member_addresses() {
            let Some(peer) = peer_id_of(&member) else {
                continue;
            };
            for addr in addresses.iter().filter_map(|a| a.parse::<Multiaddr>().ok()) {
                if self.targets.len() >= MAX_DIAL_TARGETS {
                    return;
                }
                let addr = addr.with_p2p(peer).unwrap_or_else(|a| a);
                self.targets.entry(addr).or_insert_with(Backoff::new);
            }
        }
    }

    fn strike(&mut self, peer: PeerId) {
        let strikes = self.strikes.entry(peer).or_insert(0);
        *strikes += 1;
        if *strikes >= MAX_STRIKES {
            warn!(peer = %peer, "disconnecting a peer that keeps sending invalid sync data");
            self.strikes.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }
}

/// Whether the roster says the member behind `peer` was removed.
fn is_removed(replica: &Replica, peer: &PeerId) -> bool {
    let (Some(log), Some(member)) = (replica.membership(), member_of(peer)) else {
        return false;
    };
    log.roster().is_removed(&member)
}

/// The peer id at the end of a multiaddress, if any.
pub fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| {
        matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
            || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
    })
}
