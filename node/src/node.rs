//! The event loop: one task owns the swarm and the replica; everything else talks to it through
//! a cloneable [`NodeHandle`] that sends commands with a oneshot reply (the shape of
//! rust-libp2p's file-sharing example).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{mdns, Multiaddr, PeerId, Swarm};
use rand::seq::IteratorRandom;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::api::{ApiError, ErrorCode, Event, MemberSync, Request, Response, StatusView};
use crate::dial::{DialPolicy, Networks, Source};
use crate::net::hello::{Credentials, Dialer, Keying, Listener};
use crate::net::{self, short, Behaviour, GateEvent, MessageAcceptance, NetConfig, NetEvent};
use crate::replica::{now, Ingested, Replica, SetKind, WireItem};
use crate::sync::{self, Session, Step};
use lookout_protocol::MemberId;

/// Capacity of the command channel from handles to the loop.
pub(crate) const COMMAND_CAPACITY: usize = 64;
/// Capacity of the event broadcast to watchers (slow watchers miss old events).
pub(crate) const EVENT_CAPACITY: usize = 256;
/// How often periodic work runs.
pub const TICK: Duration = Duration::from_secs(2);
/// Most peers dialled from one mDNS discovery event.
pub(crate) const MAX_MDNS_DIALS: usize = 8;
/// Sync requests a peer may get wrong before it is disconnected.
pub(crate) const MAX_STRIKES: u32 = 5;
/// How long a just-removed member stays connected while it is told of its removal.
pub(crate) const FAREWELL: Duration = Duration::from_secs(5);
/// How long a connection may stay open without its peer proving membership in the hello.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connected peers still to prove membership at once.
pub(crate) const MAX_UNPROVEN: usize = 32;
/// Most connected peers from one IP address (IPv6: one /64) still to prove membership at once.
pub const MAX_UNPROVEN_PER_IP: usize = 4;
/// Most peers this node dialled still to prove membership at once (a budget of its own, so
/// inbound strangers cannot crowd out the node's own hellos to members).
pub(crate) const MAX_UNPROVEN_OUTGOING: usize = 32;

/// A connected peer that has not proved membership yet.
struct Unproven {
    since: Instant,
    /// Its address, IPv6 cut to the /64 (see [`address_bucket`]).
    ip: Option<IpAddr>,
    /// Whether this node dialled it.
    outgoing: bool,
}

/// The address as counted against per-address caps: an IPv6 host usually holds a whole /64,
/// so its /64 counts as one address.
pub(crate) fn address_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
    }
}

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Addresses to listen on (default: all interfaces, OS-chosen TCP and QUIC ports).
    pub listen: Vec<Multiaddr>,
    /// Addresses of members' nodes to connect to, besides the invite's (a `/p2p/` suffix is
    /// ignored: transport identities change with every run).
    pub peers: Vec<Multiaddr>,
    /// Discover members on the local network with mDNS (off unless asked for: it announces
    /// the node to everyone on the network).
    pub mdns: bool,
    /// How often to sync with a random connected member.
    pub sync_interval: Duration,
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
    /// When each member last synced with us or we with it (a session done either way).
    pub synced_with: HashMap<MemberId, u64>,
    /// Gossip messages rejected as invalid.
    pub rejected: u64,
    /// Connections closed because the peer did not prove membership in the hello.
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
    /// The current transport identity (replaced when the node changes network).
    peer_id: std::sync::Arc<std::sync::Mutex<PeerId>>,
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
}

/// Start a node around an opened replica. Must be called within a tokio runtime.
pub async fn start(replica: Replica, config: NodeConfig) -> Result<NodeHandle, StartError> {
    let log = replica.membership().ok_or(StartError::NoCollective)?;
    let topic = log.collective().topic();
    // A fresh transport key for every run: it is all a peer sees before the hello, and it
    // must not link this run to the member or to any other run.
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let mut creds = Credentials::new(log.genesis().encoded(), &replica.identity().ed25519_seed());
    creds.set_epoch_keys(&replica.hello_epoch_keys(net::MAX_EPOCH_SECRETS));
    let allowed: HashSet<MemberId> = replica.allowed_members().into_iter().collect();
    let net_config = NetConfig {
        listen: config.listen.clone(),
        enable_mdns: config.mdns,
        topic,
        allowed,
        gossip_heartbeat: config.gossip_heartbeat,
        ..NetConfig::default()
    };
    let swarm = net::build_swarm(keypair, &net_config)?;
    let peer_id = *swarm.local_peer_id();
    let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
    let (events, _) = broadcast::channel(EVENT_CAPACITY);

    // Invite and command-line addresses: their member may be admitted before the roster
    // names it (see `hello_allowed`).
    let mut dial = DialPolicy::new();
    let started = Instant::now();
    for addr in replica
        .bootstrap_addresses()
        .iter()
        .filter_map(|a| a.parse::<Multiaddr>().ok())
    {
        dial.invite(without_p2p(&addr), None, started);
    }
    for addr in &config.peers {
        dial.given(without_p2p(addr), None, started);
    }

    let shared_peer_id = std::sync::Arc::new(std::sync::Mutex::new(peer_id));
    let handle = NodeHandle {
        commands: commands.clone(),
        peer_id: shared_peer_id.clone(),
    };
    let event_loop = EventLoop {
        swarm,
        replica,
        receiver,
        events,
        config,
        dial,
        dialled: HashMap::new(),
        creds,
        hellos: HashMap::new(),
        unproven: HashMap::new(),
        sessions: HashMap::new(),
        waiting_sync: VecDeque::new(),
        session_peers: HashSet::new(),
        strikes: HashMap::new(),
        stats: NetStats::default(),
        listening: Vec::new(),
        net_config,
        shared_peer_id,
        built_on: None,
        last_periodic_sync: Instant::now(),
        announced: false,
        farewells: HashMap::new(),
        told: HashSet::new(),
        inbound_sync: HashMap::new(),
        flush_at: None,
    };
    tokio::spawn(event_loop.run());
    Ok(handle)
}

impl NodeHandle {
    /// This node's current transport peer id: fresh for every run and every change of network,
    /// unrelated to the member's key.
    pub fn peer_id(&self) -> PeerId {
        match self.peer_id.lock() {
            Ok(p) => *p,
            Err(poisoned) => *poisoned.into_inner(),
        }
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

impl crate::client::Transport for NodeHandle {
    fn execute(
        &mut self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Response, ApiError>> + Send {
        let handle = self.clone();
        async move { handle.execute(request).await }
    }
}

/// Which member a dialled address may admit besides those on the roster (see
/// [`EventLoop::hello_allowed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unnamed {
    /// None: an announced or mDNS address.
    Nobody,
    /// The member the invite named (an invite address).
    Inviter(MemberId),
    /// Any member not known to be removed, while this device is still joining: an address the
    /// user gave, or an invite's address if the invite named no inviter (an old code).
    WhileJoining,
}

/// Where the hello of one transport peer stands.
enum Hello {
    /// We dialled `addr` and run the dialer's side.
    Dialing {
        state: Box<Dialer>,
        addr: Multiaddr,
        unnamed: Unnamed,
    },
    /// They dialled us; `None` until their `Open` arrived.
    Listening(Option<Listener>),
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    replica: Replica,
    receiver: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    config: NodeConfig,
    /// Which addresses to dial, and when.
    dial: DialPolicy,
    /// The addresses each connected peer was reached at (freed when it leaves).
    dialled: HashMap<PeerId, Vec<Multiaddr>>,
    /// This member's hello credentials.
    creds: Credentials,
    /// Hellos in progress, by transport peer.
    hellos: HashMap<PeerId, Hello>,
    /// Connected peers that have not proved membership yet, since when.
    unproven: HashMap<PeerId, Unproven>,
    sessions: HashMap<OutboundRequestId, (PeerId, Session)>,
    /// Peers to sync with once the running session ends.
    waiting_sync: VecDeque<PeerId>,
    session_peers: HashSet<PeerId>,
    /// Invalid sync data per member (not per transport id: a member can make new ones).
    strikes: HashMap<MemberId, u32>,
    stats: NetStats,
    listening: Vec<Multiaddr>,
    /// How the swarm was built (to build it again with a fresh key).
    net_config: NetConfig,
    /// Where the handles read the current peer id.
    shared_peer_id: std::sync::Arc<std::sync::Mutex<PeerId>>,
    /// The local networks the current swarm has seen (grows while interfaces come up).
    built_on: Option<Networks>,
    last_periodic_sync: Instant,
    announced: bool,
    /// Removed members still connected until they acknowledge the push of their removal (or
    /// [`FAREWELL`] passes).
    farewells: HashMap<PeerId, (Instant, OutboundRequestId)>,
    /// Removed members already told (never twice).
    told: HashSet<PeerId>,
    /// When each peer last sent us a sync request.
    inbound_sync: HashMap<PeerId, Instant>,
    /// When gossip accepted since the last flush must be flushed (group commit).
    flush_at: Option<tokio::time::Instant>,
}

/// How long accepted gossip waits for its fsync: enough for the event loop to poll the swarm and
/// hand the forwards to the connections first, and to share one fsync among a burst.
const GROUP_COMMIT: Duration = Duration::from_millis(2);

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
                () = flush_deadline(self.flush_at) => self.flush_accepted(),
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
        let Self { swarm, replica, .. } = self;
        drop(swarm);
        if let Err(e) = replica.close() {
            warn!(error = %e, "closing the store on shutdown failed");
        }
        info!("node stopped");
    }

    fn on_command(&mut self, command: Command) {
        // Whatever the member is told next (a status, a list of alerts) is durable first.
        self.flush_accepted();
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
                let addr = without_p2p(&addr);
                let result = self.swarm.dial(addr.clone()).map_err(|e| {
                    ApiError::new(ErrorCode::InvalidInput, format!("cannot dial: {e}"))
                });
                let networks = self.networks();
                let now = Instant::now();
                self.dial.given(addr.clone(), networks.as_ref(), now);
                self.dial.attempted(&addr, now);
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
        view.peers = self.swarm.behaviour().gate.members_connected().count();
        view.last_sync = self.stats.last_sync;
        if let Some(log) = self.replica.membership() {
            let roster = log.roster();
            view.synced_with = self
                .stats
                .synced_with
                .iter()
                .filter_map(|(member, at)| {
                    let member = roster.member(member)?;
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
        // Watchers hear of accepted gossip only once it is durable.
        if self.flush_at.is_some() {
            return;
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
            self.swarm
                .behaviour_mut()
                .gate
                .inner
                .gossipsub
                .blacklist_peer(&peer);
            let push = sync::membership_push(&mut self.replica);
            let id = self.swarm.behaviour_mut().request(&peer, push);
            self.farewells.insert(peer, (Instant::now() + FAREWELL, id));
            debug!(peer = %short(&peer), "telling a removed member of its removal");
        }
    }

    /// Proven peers of removed members.
    fn removed_peers(&self) -> Vec<PeerId> {
        let Some(log) = self.replica.membership() else {
            return Vec::new();
        };
        let roster = log.roster();
        self.swarm
            .behaviour()
            .gate
            .proven()
            .filter(|(_, member)| roster.is_removed(member))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Admit exactly the roster (and removed members still being told), disconnecting the rest.
    fn update_gate(&mut self) {
        let allowed: HashSet<MemberId> = self.replica.allowed_members().into_iter().collect();
        let keep: HashSet<PeerId> = self.farewells.keys().copied().collect();
        let removed: Vec<MemberId> = self
            .replica
            .membership()
            .map(|log| log.roster().removed().keys().copied().collect())
            .unwrap_or_default();
        let names_me = self.replica.roster_names_me();
        let gate = &mut self.swarm.behaviour_mut().gate;
        let mut evicted = gate.set_allowed(allowed, &keep);
        // A member admitted from an invite address before the roster named it loses that
        // allowance once the roster says it was removed.
        for member in &removed {
            gate.revoke_temporary(member);
        }
        // Once the roster names this member, it names every member worth talking to: the
        // allowances that let the joining node reach its inviter end.
        if names_me && gate.has_temporary() {
            evicted.extend(gate.expire_temporary(Instant::now(), Duration::ZERO));
        }
        for peer in evicted {
            info!(peer = %short(&peer), "disconnecting a peer no longer in the roster");
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

    /// If the device moved to another network, start over with a fresh transport identity, so
    /// that nobody can follow the device from one network to the next by its peer id.
    fn follow_network(&mut self) {
        let Some(now_on) = self.networks() else {
            return;
        };
        match &self.built_on {
            Some(before) if network_changed(before, &now_on) => {}
            _ => {
                if !now_on.is_empty() {
                    self.built_on = Some(now_on);
                }
                return;
            }
        }
        match self.rebuild_swarm() {
            Ok(()) => info!("network changed: new transport identity"),
            Err(e) => warn!(error = %e, "network changed, but a new transport identity failed"),
        }
    }

    /// Replace the swarm by one with a fresh key, listening where the old one did; every
    /// connection, hello and session starts over.
    fn rebuild_swarm(&mut self) -> Result<(), net::NetError> {
        let mut config = self.net_config.clone();
        config.allowed = self.replica.allowed_members().into_iter().collect();
        let listen = std::mem::take(&mut config.listen);
        let fresh = net::build_swarm(libp2p::identity::Keypair::generate_ed25519(), &config)?;
        // The old swarm goes first, so the new one can bind the same ports.
        drop(std::mem::replace(&mut self.swarm, fresh));
        for addr in listen {
            self.swarm
                .listen_on(addr.clone())
                .map_err(|source| net::NetError::Listen { addr, source })?;
        }
        let peer = *self.swarm.local_peer_id();
        match self.shared_peer_id.lock() {
            Ok(mut p) => *p = peer,
            Err(poisoned) => *poisoned.into_inner() = peer,
        }
        self.hellos.clear();
        self.unproven.clear();
        self.sessions.clear();
        self.session_peers.clear();
        self.waiting_sync.clear();
        self.strikes.clear();
        self.farewells.clear();
        self.told.clear();
        self.inbound_sync.clear();
        let dialled: Vec<Multiaddr> = self.dialled.drain().flat_map(|(_, a)| a).collect();
        self.dial.clear_connected(&dialled);
        self.listening.clear();
        self.built_on = None;
        self.announced = false;
        Ok(())
    }

    fn on_tick(&mut self) {
        self.follow_network();
        if let Err(e) = self.replica.maintain() {
            warn!(error = %e, "maintenance failed");
        }
        // Epoch keys arrive by sync and expire: the hello follows the newest ones.
        self.creds
            .set_epoch_keys(&self.replica.hello_epoch_keys(net::MAX_EPOCH_SECRETS));
        self.learn_member_addresses();
        let now = Instant::now();
        for peer in self
            .swarm
            .behaviour_mut()
            .gate
            .expire_temporary(now, net::TEMPORARY_ALLOWANCE)
        {
            debug!(peer = %short(&peer), "a temporary allowance ended");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let before = self.farewells.len();
        self.farewells.retain(|_, (deadline, _)| *deadline > now);
        if self.farewells.len() != before {
            self.update_gate();
        }
        // Close connections whose peer has not proved membership in time.
        let late: Vec<PeerId> = self
            .unproven
            .iter()
            .filter(|(_, u)| now.duration_since(u.since) >= HELLO_TIMEOUT)
            .map(|(p, _)| *p)
            .collect();
        for peer in late {
            self.hello_failed(peer, "no proof in time");
        }
        let networks = self.networks().unwrap_or_default();
        for addr in self.dial.due(now, crate::replica::now(), &networks) {
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
            let connected: Vec<PeerId> = self
                .swarm
                .behaviour()
                .gate
                .members_connected()
                .map(|(p, _)| p)
                .collect();
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
            debug!(peer = %short(&peer), "sync started");
        }
    }

    /// A session with `peer` ended (done, failed or disconnected): start the next queued one.
    fn session_ended(&mut self, peer: PeerId) {
        self.session_peers.remove(&peer);
        while let Some(next) = self.waiting_sync.pop_front() {
            if self.swarm.behaviour().gate.has_member_connection(&next) {
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
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| *a != address);
                info!(
                    addresses = self.listening.len(),
                    "stopped listening on an address"
                );
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => self.on_connected(peer_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(peer = %short(&peer_id), "disconnected");
                self.hellos.remove(&peer_id);
                self.unproven.remove(&peer_id);
                if let Some(addrs) = self.dialled.remove(&peer_id) {
                    self.dial.clear_connected(&addrs);
                }
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
                    if self.is_removed(&peer) && sync::request_kind(&request) != Some(SetKind::Ops)
                    {
                        // A removed member being told of its removal gets membership only.
                        let refused = sync::encode(&sync::SyncResponse::Error {
                            reason: "you were removed from this collective".into(),
                        });
                        let _ = self.swarm.behaviour_mut().respond(channel, refused);
                        return;
                    }
                    let member = self.swarm.behaviour().gate.member_of(&peer);
                    let served = sync::serve_from(&mut self.replica, member, &request);
                    if served.misbehaved {
                        self.strike(peer);
                    } else {
                        if let Some(member) = member {
                            self.stats.synced_with.insert(member, now());
                        }
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
                debug!(peer = %short(&peer), error = %error, "sync request failed");
                self.farewell_done(request_id);
                if self.sessions.remove(&request_id).is_some() {
                    self.session_ended(peer);
                }
            }
            NetEvent::Hello(event) => self.on_hello(event),
            NetEvent::Gate(GateEvent::Evicted { peer }) => {
                debug!(peer = %short(&peer), "evicted");
            }
            NetEvent::Mdns(mdns::Event::Discovered(found)) => {
                // Peer ids are ephemeral, so who is a member shows only in the hello: dial
                // each newly seen local peer once (the hello reveals nothing to a non-member).
                for (peer, addr) in found.into_iter().take(MAX_MDNS_DIALS) {
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(
                            DialOpts::peer_id(peer)
                                .addresses(vec![addr])
                                .condition(PeerCondition::DisconnectedAndNotDialing)
                                .build(),
                        );
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
                debug!(peer = %short(&source), "undecodable gossip rejected");
                self.stats.rejected += 1;
                MessageAcceptance::Reject
            }
            Some(item) => match self.replica.ingest(&item) {
                // Forwarded now; made durable by the group commit, once the swarm has handed the
                // forward to the connections, and before anyone is told of it.
                Ok(Ingested::Accepted) => {
                    self.flush_at
                        .get_or_insert_with(|| tokio::time::Instant::now() + GROUP_COMMIT);
                    MessageAcceptance::Accept
                }
                Ok(Ingested::Held) => {
                    self.start_sync(source);
                    MessageAcceptance::Ignore
                }
                Ok(Ingested::Rejected(reason)) => {
                    debug!(peer = %short(&source), reason = %reason, "gossip rejected");
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

    /// Flush gossip accepted since the last flush (one fsync for a burst), then tell watchers.
    fn flush_accepted(&mut self) {
        if self.flush_at.take().is_some() {
            if let Err(e) = self.replica.flush() {
                warn!(error = %e, "flush failed");
            }
        }
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
                if let Some(member) = self.swarm.behaviour().gate.member_of(&peer) {
                    self.stats.synced_with.insert(member, now());
                }
                debug!(peer = %short(&peer), accepted = session.accepted, bytes = session.bytes_received, "sync done");
                self.after_first_sync();
            }
            Step::Abort(reason) => {
                self.session_ended(peer);
                debug!(peer = %short(&peer), reason = %reason, "sync aborted");
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

    /// Dial targets from the addresses current members announced (kept across restarts,
    /// encrypted); the policy keeps only recent ones and private ones learnt on this network.
    fn learn_member_addresses(&mut self) {
        let announced: Vec<(Multiaddr, u64)> = self
            .replica
            .member_addresses()
            .into_iter()
            .flat_map(|(_, at, addresses)| {
                addresses
                    .into_iter()
                    .filter_map(|a| a.parse::<Multiaddr>().ok())
                    .filter(is_dialable)
                    .map(move |a| (without_p2p(&a), at))
            })
            .collect();
        let networks = self.networks();
        self.dial
            .set_announced(announced, networks.as_ref(), Instant::now());
    }

    /// The node's local networks, once it listens (unknown before).
    fn networks(&self) -> Option<Networks> {
        (!self.listening.is_empty()).then(|| Networks::from_listen(&self.listening))
    }

    /// Whether the roster says the member behind `peer` was removed.
    fn is_removed(&self, peer: &PeerId) -> bool {
        let (Some(log), Some(member)) = (
            self.replica.membership(),
            self.swarm.behaviour().gate.member_of(peer),
        ) else {
            return false;
        };
        log.roster().is_removed(&member)
    }

    fn on_connected(&mut self, peer: PeerId, endpoint: &ConnectedPoint) {
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            let addr = without_p2p(address);
            self.dial.set_connected(&addr, true, Instant::now());
            self.dialled.entry(peer).or_default().push(addr);
        }
        if self.swarm.behaviour().gate.member_of(&peer).is_some() {
            // A connection with a proven member: it carries the collective's protocols.
            debug!(peer = %short(&peer), "member connected");
            self.unproven.remove(&peer);
            // The hello connection has done its work; it closes when idle. (Closing it here
            // could reach the listener before this connection does, and a transport peer with
            // no connection left must prove itself again.)
            self.hellos.remove(&peer);
            // One session per new connection, run by the dialer: a session fetches and
            // pushes, so a second one from the listener would carry everything twice.
            if endpoint.is_dialer() {
                self.start_sync(peer);
            }
            return;
        }
        debug!(peer = %short(&peer), "connected; hello");
        // Connections that have not proved anything yet are capped, so strangers holding them
        // open cannot crowd members out: the node's own dials have their own budget; inbound
        // ones are capped overall and per address (an IPv6 /64 counts as one), and a new one
        // evicts the oldest rather than being refused, so a flood only ever shortens the time
        // its own connections get, and a member's hello (a few round trips) still gets through.
        let ip = remote_ip(endpoint.get_remote_address()).map(address_bucket);
        let outgoing = endpoint.is_dialer();
        if !self.unproven.contains_key(&peer) {
            if outgoing {
                let own = self.unproven.values().filter(|u| u.outgoing).count();
                if own >= MAX_UNPROVEN_OUTGOING {
                    return self.hello_failed(peer, "too many own hellos at once");
                }
            } else {
                let inbound = self.unproven.iter().filter(|(_, u)| !u.outgoing);
                let oldest_of = |same_bucket: bool| {
                    self.unproven
                        .iter()
                        .filter(|(_, u)| {
                            !u.outgoing && (!same_bucket || (ip.is_some() && u.ip == ip))
                        })
                        .min_by_key(|(_, u)| u.since)
                        .map(|(p, _)| *p)
                };
                let from_bucket = inbound
                    .clone()
                    .filter(|(_, u)| ip.is_some() && u.ip == ip)
                    .count();
                let victim = if from_bucket >= MAX_UNPROVEN_PER_IP {
                    oldest_of(true)
                } else if inbound.count() >= MAX_UNPROVEN {
                    oldest_of(false)
                } else {
                    None
                };
                if let Some(victim) = victim {
                    self.hello_failed(victim, "evicted by a newer connection without a proof");
                }
            }
        }
        self.unproven.entry(peer).or_insert_with(|| Unproven {
            since: Instant::now(),
            ip,
            outgoing,
        });
        match endpoint {
            ConnectedPoint::Dialer { address, .. } => {
                if self.hellos.contains_key(&peer) {
                    return;
                }
                let unnamed = match self.dial.source(&without_p2p(address)) {
                    Some(Source::Given) => Unnamed::WhileJoining,
                    Some(Source::Invite) => self
                        .replica
                        .inviter()
                        .map_or(Unnamed::WhileJoining, Unnamed::Inviter),
                    Some(Source::Announced { .. }) | None => Unnamed::Nobody,
                };
                // An address nobody vouched for (mDNS): key the first step with the newest
                // epoch's secret, which members removed before it lack, so that a former
                // member advertising itself cannot make this member name itself.
                let keying = match unnamed {
                    Unnamed::Nobody if self.dial.source(&without_p2p(address)).is_none() => {
                        Keying::NewestEpoch
                    }
                    _ => Keying::Genesis,
                };
                let local = *self.swarm.local_peer_id();
                let Some((state, open)) =
                    Dialer::start_keyed(&self.creds, keying, local, peer, random_nonce())
                else {
                    return self.hello_failed(peer, "no epoch key for a discovered peer");
                };
                self.swarm.behaviour_mut().hello_request(&peer, open);
                self.hellos.insert(
                    peer,
                    Hello::Dialing {
                        state: Box::new(state),
                        addr: without_p2p(address),
                        unnamed,
                    },
                );
            }
            ConnectedPoint::Listener { .. } => {
                self.hellos.entry(peer).or_insert(Hello::Listening(None));
            }
        }
    }

    /// Whether a member proved in a hello may connect: on the roster (or let in temporarily);
    /// or, while this device is still joining (its roster does not name it yet), the member an
    /// address may admit unnamed: the invite's inviter at an invite address, any member not
    /// known to be removed at an address the user gave (or from an invite naming nobody).
    fn hello_allowed(&self, member: &MemberId, unnamed: Unnamed) -> bool {
        if self.swarm.behaviour().gate.is_allowed(member) {
            return true;
        }
        if self.replica.roster_names_me()
            || self
                .replica
                .membership()
                .is_none_or(|log| log.roster().is_removed(member))
        {
            return false;
        }
        match unnamed {
            Unnamed::Nobody => false,
            Unnamed::Inviter(inviter) => *member == inviter,
            Unnamed::WhileJoining => true,
        }
    }

    fn on_hello(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_hello_request(peer, &request, channel),
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => self.on_hello_response(peer, &response),
            request_response::Event::OutboundFailure { peer, .. } => {
                if matches!(self.hellos.get(&peer), Some(Hello::Dialing { .. })) {
                    self.hello_failed(peer, "no answer");
                }
            }
            _ => {}
        }
    }

    fn on_hello_request(
        &mut self,
        peer: PeerId,
        request: &[u8],
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        // Only a peer that dialled us runs the listener's side, once.
        let result = match self.hellos.get_mut(&peer) {
            Some(Hello::Listening(slot @ None)) => {
                let local = *self.swarm.local_peer_id();
                match Listener::on_open(&self.creds, local, peer, request, random_nonce()) {
                    Ok((state, accept)) => {
                        *slot = Some(state);
                        Ok(Some(accept))
                    }
                    Err(e) => Err(e),
                }
            }
            Some(Hello::Listening(Some(state))) => {
                let gate = &self.swarm.behaviour().gate;
                match state.on_proof(&self.creds, request, |m| gate.is_allowed(m)) {
                    Ok((member, reply)) => {
                        self.hellos.remove(&peer);
                        self.unproven.remove(&peer);
                        self.swarm.behaviour_mut().gate.admit(peer, member);
                        debug!(peer = %short(&peer), "member proved itself (we listened)");
                        Ok(Some(reply))
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Ok(None),
        };
        match result {
            Ok(Some(reply)) => {
                let _ = self.swarm.behaviour_mut().hello_respond(channel, reply);
            }
            Ok(None) => {}
            Err(e) => {
                drop(channel);
                self.hello_failed(peer, &e.to_string());
            }
        }
    }

    fn on_hello_response(&mut self, peer: PeerId, response: &[u8]) {
        let Some(Hello::Dialing {
            state,
            addr,
            unnamed,
            ..
        }) = self.hellos.get_mut(&peer)
        else {
            return;
        };
        let unnamed = *unnamed;
        let addr = addr.clone();
        // First answer: the listener's `Accept`; then its proof.
        match state.on_accept(&self.creds, response) {
            Ok(proof) => {
                self.swarm.behaviour_mut().hello_request(&peer, proof);
                return;
            }
            Err(net::HelloError::Malformed) => {}
            Err(e) => return self.hello_failed(peer, &e.to_string()),
        }
        let verdict = match self.hellos.get(&peer) {
            Some(Hello::Dialing { state, .. }) => {
                state.on_proof(&self.creds, response, |m| self.hello_allowed(m, unnamed))
            }
            _ => return,
        };
        match verdict {
            Ok(member) => {
                let gate = &mut self.swarm.behaviour_mut().gate;
                if !gate.is_allowed(&member) {
                    let _ = gate.allow_temporarily(member);
                }
                gate.admit(peer, member);
                self.unproven.remove(&peer);
                debug!(peer = %short(&peer), "member proved itself (we dialled)");
                // A fresh connection carries the collective's protocols; the hello connection
                // is closed once it is up.
                let _ = self.swarm.dial(
                    DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build(),
                );
            }
            Err(e) => self.hello_failed(peer, &e.to_string()),
        }
    }

    /// The peer did not prove membership: count it and hang up without a word.
    fn hello_failed(&mut self, peer: PeerId, why: &str) {
        self.hellos.remove(&peer);
        self.unproven.remove(&peer);
        self.stats.denied += 1;
        debug!(peer = %short(&peer), why, "closing a connection without a membership proof");
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Count invalid sync data against the member behind `peer`; at [`MAX_STRIKES`] every
    /// connection of that member (under any transport id) is closed.
    fn strike(&mut self, peer: PeerId) {
        let Some(member) = self.swarm.behaviour().gate.member_of(&peer) else {
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        let strikes = self.strikes.entry(member).or_insert(0);
        *strikes += 1;
        if *strikes >= MAX_STRIKES {
            warn!(peer = %short(&peer), "disconnecting a member that keeps sending invalid sync data");
            self.strikes.remove(&member);
            for p in self.swarm.behaviour().gate.peers_of(&member) {
                let _ = self.swarm.disconnect_peer_id(p);
            }
        }
    }
}

/// The address without its `/p2p/` part: transport identities change with every run, so a
/// peer id in an address is at best stale.
pub fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

/// Resolves at `at`, or never.
async fn flush_deadline(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether the device moved to another network: an interface address the swarm had is gone
/// and another one appeared. (Interfaces coming up one by one after start only add addresses;
/// losing the network altogether waits for the next one.)
fn network_changed(before: &Networks, now: &Networks) -> bool {
    !now.is_empty() && !before.is_subset(now) && !now.is_subset(before)
}

fn remote_ip(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

fn random_nonce() -> [u8; 32] {
    use rand::RngCore;
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| {
        matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
            || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nets(addrs: &[&str]) -> Networks {
        let addrs: Vec<Multiaddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        Networks::from_listen(&addrs)
    }

    #[test]
    fn a_new_network_is_told_from_interfaces_coming_up() {
        let home = nets(&["/ip4/192.168.1.57/tcp/4001"]);
        let home_and_vpn = nets(&["/ip4/192.168.1.57/tcp/4001", "/ip4/10.8.0.2/tcp/4001"]);
        let hotel = nets(&["/ip4/192.168.1.80/tcp/4001"]);
        let hotel_and_vpn = nets(&["/ip4/192.168.1.80/tcp/4001", "/ip4/10.8.0.2/tcp/4001"]);
        // Interfaces coming up or going away one at a time: same network.
        assert!(!network_changed(&home, &home_and_vpn));
        assert!(!network_changed(&home_and_vpn, &home));
        // Offline: wait for the next network.
        assert!(!network_changed(&home, &Networks::default()));
        // Another network (even with the VPN still up): a new identity.
        assert!(network_changed(&home, &hotel));
        assert!(network_changed(&home_and_vpn, &hotel_and_vpn));
        // Loopback alone is no network.
        assert!(!network_changed(&home, &nets(&["/ip4/127.0.0.1/tcp/4001"])));
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_ne!(address_bucket(a), address_bucket(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_bucket(v4), v4);
    }

    #[test]
    fn addresses_lose_their_peer_id() {
        let addr: Multiaddr =
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQJ3sYkzNyH8aKPhqgyaPCS5UQ4PjKgAW1Hs7pgWfJ6Bk"
                .parse()
                .unwrap();
        assert_eq!(without_p2p(&addr).to_string(), "/ip4/127.0.0.1/tcp/4001");
    }
}
