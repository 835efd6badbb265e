//! The mailbox's event loop: one task owning its swarm and its blind store.
//!
//! Every connection carries only `/lookout/mailbox/1` until the peer is admitted; the
//! [`MemberGate`] then gives the peer's connections the services (sync, relay, AutoNAT,
//! identify, ping). A member is admitted only while it is current in the roster the mailbox
//! resolved from the ops it holds; when the roster drops it, the gate closes its connections,
//! which ends its reservation and every circuit through it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::{
    autonat, connection_limits, identify, noise, ping, relay, request_response,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use lookout_protocol::membership::{MembershipLog, Op, SignedGenesis};
use lookout_protocol::reconcile::Reconciler;
use lookout_protocol::replica::SetKind;
use lookout_protocol::{CollectiveId, MailboxId, MemberId};
use rand::{rngs::OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};

use super::learn::Learner;
use super::store::{BlindStore, StoreLimits, Stored};
use super::{MailboxError, MailboxHome, MailboxIdentity};
use crate::net::mailbox_admission::{
    admission_behaviour, refused, Admission, AdmissionRole, MailboxCodec, MailboxListener,
};
use crate::net::{
    short, BytesCodec, GateEvent, Gated, MemberGate, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PENDING_INCOMING, DEFAULT_MAX_PENDING_OUTGOING,
    IDENTIFY_PROTOCOL, MAX_CONCURRENT_SYNC_STREAMS, MAX_NEGOTIATING_INBOUND_STREAMS, SYNC_PROTOCOL,
};
use crate::replica::WireItem;
use crate::sync::{
    decode, encode, SyncRequest, SyncResponse, MAX_FETCH_IDS, MAX_ITEMS_BYTES, MAX_PUSH_BYTES,
    RECONCILE_LIMITS,
};

/// Admissions in progress at once (an `Open` answered, its `Prove` not yet in).
const MAX_PENDING_ADMISSIONS: usize = 256;
/// Collectives an unbound mailbox considers at once (one per distinct genesis offered).
const MAX_CANDIDATES: usize = 4;
/// Commands waiting for the event loop.
const COMMAND_CAPACITY: usize = 16;
/// How often expired items are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);
/// How long a refused peer's connection stays open after the refusal is sent, so that the
/// peer reads it before the connection closes (a member's node closes it at once when it
/// reads it; hanging up as soon as the answer was written let the close overtake the answer
/// on a loaded machine, and the member took the refusal for a network failure and retried).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// A circuit may carry this many bytes: a whole catch-up of thousands of alerts.
pub const MAX_CIRCUIT_BYTES: u64 = 256 * 1024 * 1024;
/// A circuit may last this long.
pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(60 * 60);
/// A reservation lasts this long before the member renews it.
pub const RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// Established connections in all.
const MAX_ESTABLISHED: u32 = 1024;
/// Established connections with one transport peer.
const MAX_ESTABLISHED_PER_PEER: u32 = 4;

/// How a mailbox runs.
#[derive(Debug, Clone)]
pub struct MailboxConfig {
    /// Addresses to listen on (TCP and QUIC).
    pub listen: Vec<Multiaddr>,
    /// Public addresses to announce (relayed addresses are built on them); if empty, the
    /// addresses given at `init` and then the specific listen addresses.
    pub external: Vec<Multiaddr>,
    /// What the store keeps.
    pub limits: StoreLimits,
    /// How long a connection with no open streams is kept.
    pub idle_timeout: Duration,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            external: Vec::new(),
            limits: StoreLimits::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// What `status` reports (and `lookout mailbox status` shows). No member ids: only counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailboxStatus {
    /// The mailbox key, hex.
    pub mailbox: String,
    /// The transport peer id.
    pub peer_id: String,
    /// The bound collective's short id, if bound.
    pub collective: Option<String>,
    /// Whether the collective removed this mailbox (it then serves nothing).
    pub removed: bool,
    /// Admitted transport peers connected now.
    pub admitted: usize,
    /// Ops held.
    pub ops: usize,
    /// Deliveries held.
    pub deliveries: usize,
    /// Envelopes held.
    pub envelopes: usize,
    /// Bytes of deliveries and envelopes.
    pub bytes: u64,
    /// Addresses the mailbox listens on.
    pub listening: Vec<String>,
    /// Whether a collective bound this mailbox.
    pub bound: bool,
    /// Items held (ops, deliveries and envelopes).
    pub items: usize,
    /// Distinct members admitted and connected now (a member may hold several transport ids).
    pub members_connected: usize,
    /// Relay reservations held by members now.
    pub reservations: usize,
    /// Circuits relayed between members now.
    pub circuits: usize,
    /// Public addresses the mailbox announces (relayed addresses are built on them).
    pub external: Vec<String>,
    /// Of those, the ones learnt from what admitted members observe (none were given).
    #[serde(default)]
    pub learnt: Vec<String>,
}

enum Command {
    Status(oneshot::Sender<MailboxStatus>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle on a running mailbox.
#[derive(Clone)]
pub struct MailboxHandle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    mailbox: [u8; 32],
}

impl MailboxHandle {
    /// The mailbox's transport peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The mailbox key.
    pub fn mailbox_id(&self) -> [u8; 32] {
        self.mailbox
    }

    /// The mailbox's state.
    pub async fn status(&self) -> Result<MailboxStatus, MailboxError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| MailboxError::Stopped)?;
        rx.await.map_err(|_| MailboxError::Stopped)
    }

    /// Stops the mailbox, flushing its store.
    pub async fn shutdown(&self) -> Result<(), MailboxError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Shutdown(tx))
            .await
            .map_err(|_| MailboxError::Stopped)?;
        rx.await.map_err(|_| MailboxError::Stopped)
    }
}

/// The services an admitted member gets.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Services {
    sync: request_response::Behaviour<BytesCodec>,
    relay: relay::Behaviour,
    autonat: autonat::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// The mailbox's behaviour: the gate first, admission on every connection.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct MailboxBehaviour {
    gate: MemberGate<Services>,
    limits: connection_limits::Behaviour,
    admission: request_response::Behaviour<MailboxCodec>,
}

/// The transport peers admitted with every service (not provisionally): what the relay's rate
/// limiter lets reserve and open circuits.
type Admitted = Arc<Mutex<HashSet<PeerId>>>;

fn relay_gate(admitted: &Admitted) -> Box<dyn relay::RateLimiter> {
    let admitted = admitted.clone();
    Box::new(move |peer: PeerId, _: &Multiaddr, _: Instant| {
        admitted.lock().map(|a| a.contains(&peer)).unwrap_or(false)
    })
}

fn relay_config(admitted: &Admitted) -> relay::Config {
    let defaults = relay::Config::default();
    relay::Config {
        max_reservations: 512,
        max_reservations_per_peer: 2,
        reservation_duration: RESERVATION_DURATION,
        max_circuits: 512,
        max_circuits_per_peer: 16,
        max_circuit_duration: MAX_CIRCUIT_DURATION,
        max_circuit_bytes: MAX_CIRCUIT_BYTES,
        // The defaults' per-peer and per-IP rates stay, behind the admission check.
        reservation_rate_limiters: std::iter::once(relay_gate(admitted))
            .chain(defaults.reservation_rate_limiters)
            .collect(),
        circuit_src_rate_limiters: std::iter::once(relay_gate(admitted))
            .chain(defaults.circuit_src_rate_limiters)
            .collect(),
    }
}

fn build_swarm(
    identity: &MailboxIdentity,
    cfg: &MailboxConfig,
    admitted: &Admitted,
) -> Result<Swarm<MailboxBehaviour>, MailboxError> {
    let keypair = identity.transport.clone();
    let local = keypair.public().to_peer_id();
    let services = Services {
        sync: request_response::Behaviour::with_codec(
            BytesCodec::default(),
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(crate::net::DEFAULT_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(MAX_CONCURRENT_SYNC_STREAMS),
        ),
        relay: relay::Behaviour::new(local, relay_config(admitted)),
        autonat: autonat::Behaviour::new(
            local,
            autonat::Config {
                // Members on a LAN or loopback are told the truth about those addresses too.
                only_global_ips: false,
                // A server only: never probe our own reachability through members.
                use_connected: false,
                ..autonat::Config::default()
            },
        ),
        identify: identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                .with_agent_version("lookout".to_owned()),
        ),
        ping: ping::Behaviour::default(),
    };
    let behaviour = MailboxBehaviour {
        gate: MemberGate::new(services, HashSet::new()),
        limits: connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(DEFAULT_MAX_PENDING_INCOMING))
                .with_max_pending_outgoing(Some(DEFAULT_MAX_PENDING_OUTGOING))
                .with_max_established(Some(MAX_ESTABLISHED))
                .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER)),
        ),
        admission: admission_behaviour(AdmissionRole::Mailbox),
    };
    let idle = cfg.idle_timeout;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| MailboxError::Net(e.to_string()))?
        .with_quic_config(|mut quic| {
            quic.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
            quic
        })
        .with_behaviour(|_| behaviour)
        .map_err(|never: Infallible| -> MailboxError { match never {} })?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(idle)
                .with_max_negotiating_inbound_streams(MAX_NEGOTIATING_INBOUND_STREAMS)
        })
        .with_connection_timeout(DEFAULT_HANDSHAKE_TIMEOUT)
        .build();
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| MailboxError::Net(format!("could not listen on {addr}: {e}")))?;
    }
    let external = if cfg.external.is_empty() {
        &identity.addresses
    } else {
        &cfg.external
    };
    for addr in external {
        swarm.add_external_address(addr.clone());
    }
    Ok(swarm)
}

/// Starts the mailbox of `home`; returns its handle and the event loop's task.
///
/// Must be called within a tokio runtime.
pub async fn start(
    home: &std::path::Path,
    cfg: MailboxConfig,
) -> Result<(MailboxHandle, tokio::task::JoinHandle<()>), MailboxError> {
    let identity = super::load(home)?;
    let store = BlindStore::open(&MailboxHome::new(home).db_dir(), cfg.limits)?;
    let admitted: Admitted = Arc::default();
    let swarm = build_swarm(&identity, &cfg, &admitted)?;
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let handle = MailboxHandle {
        commands: tx,
        peer_id: identity.peer_id(),
        mailbox: identity.mailbox_id(),
    };
    let learn = cfg.external.is_empty() && identity.addresses.is_empty();
    let mut mailbox = Runtime {
        announce_listen: learn,
        learner: learn.then(Learner::default),
        identity,
        swarm,
        store,
        admitted,
        pending: HashMap::new(),
        pending_order: VecDeque::new(),
        refused: HashSet::new(),
        hang_ups: std::collections::VecDeque::new(),
        provisional: HashMap::new(),
        candidates: HashMap::new(),
        removed: false,
        cut_off_at: None,
        listening: Vec::new(),
        reservations: HashMap::new(),
        circuits: 0,
    };
    mailbox.on_roster_changed();
    let task = tokio::spawn(mailbox.run(rx));
    Ok((handle, task))
}

struct Runtime {
    identity: MailboxIdentity,
    swarm: Swarm<MailboxBehaviour>,
    store: BlindStore,
    admitted: Admitted,
    /// Admissions past `Open`, by transport peer.
    pending: HashMap<PeerId, MailboxListener>,
    pending_order: VecDeque<PeerId>,
    /// Peers refused: disconnected once the refusal is sent.
    refused: HashSet<PeerId>,
    /// Refused peers whose refusal was sent, and when to hang up on them ([`REFUSAL_LINGER`]).
    hang_ups: std::collections::VecDeque<(PeerId, tokio::time::Instant)>,
    /// Provisionally admitted peers (unbound mailbox): member and the collective it offered.
    provisional: HashMap<PeerId, (MemberId, CollectiveId)>,
    /// Collectives offered to an unbound mailbox: their membership as pushed so far.
    candidates: HashMap<CollectiveId, MembershipLog>,
    /// The collective removed this mailbox.
    removed: bool,
    /// When the collective's removal of this mailbox takes effect here: it first passes the
    /// ops that removed it on to the members connected (its last service), so that a member
    /// whose only link is this mailbox learns of it too, then serves nobody.
    cut_off_at: Option<tokio::time::Instant>,
    /// Whether to announce specific listen addresses as external ones (none were given).
    announce_listen: bool,
    /// Learns the public address from admitted members' observations (none was given).
    learner: Option<Learner>,
    listening: Vec<Multiaddr>,
    /// Relay reservations per transport peer (one per connection it reserved on).
    reservations: HashMap<PeerId, usize>,
    /// Circuits open now.
    circuits: usize,
}

/// Whether `log`'s roster names `mailbox` as one of its current mailboxes.
fn roster_names_mailbox(log: &MembershipLog, mailbox: &[u8; 32]) -> bool {
    log.roster().is_mailbox(&MailboxId(*mailbox))
}

/// Whether `log`'s roster removed `mailbox`.
/// How long a mailbox that just learnt of its removal keeps its connections, to pass the
/// removing ops on to the members connected, before it serves nobody.
const REMOVAL_FAREWELL: Duration = Duration::from_secs(2);

/// Resolves at `at`, or never.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn roster_removed_mailbox(log: &MembershipLog, mailbox: &[u8; 32]) -> bool {
    log.roster().is_removed_mailbox(&MailboxId(*mailbox))
}

impl Runtime {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut expiry = tokio::time::interval(EXPIRY_INTERVAL);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(Command::Status(reply)) => { let _ = reply.send(self.status()); }
                    Some(Command::Shutdown(reply)) => {
                        if let Err(e) = self.store.flush() {
                            tracing::warn!(error = %e, "flushing the mailbox store failed");
                        }
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        let _ = self.store.flush();
                        return;
                    }
                },
                _ = until(self.hang_ups.front().map(|(_, at)| *at)) => self.hang_up_on_refused(),
                _ = until(self.cut_off_at) => {
                    self.cut_off_at = None;
                    self.on_roster_changed();
                }
                _ = expiry.tick() => {
                    match self.store.expire(crate::replica::now()) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(expired = n, "expired items deleted"),
                        Err(e) => tracing::warn!(error = %e, "expiring items failed"),
                    }
                }
            }
        }
    }

    /// Hang up on the refused peers whose [`REFUSAL_LINGER`] is over.
    fn hang_up_on_refused(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some((peer, _)) = self.hang_ups.front().filter(|(_, at)| *at <= now).copied() {
            self.hang_ups.pop_front();
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn status(&self) -> MailboxStatus {
        let stats = self.store.stats();
        let admitted = self.admitted.lock().map(|a| a.len()).unwrap_or(0);
        MailboxStatus {
            mailbox: hex::encode(self.identity.mailbox_id()),
            peer_id: self.identity.peer_id().to_string(),
            collective: self.store.collective().map(|c| c.short()),
            removed: self.removed,
            admitted,
            ops: stats.ops,
            deliveries: stats.deliveries,
            envelopes: stats.envelopes,
            bytes: stats.bytes,
            listening: self.listening.iter().map(ToString::to_string).collect(),
            bound: self.store.collective().is_some(),
            items: stats.ops + stats.deliveries + stats.envelopes,
            members_connected: self
                .swarm
                .behaviour()
                .gate
                .members_connected()
                .map(|(_, member)| member)
                .collect::<HashSet<_>>()
                .len(),
            reservations: self.reservations.values().sum(),
            circuits: self.circuits,
            external: self
                .swarm
                .external_addresses()
                .map(ToString::to_string)
                .collect(),
            learnt: self
                .learner
                .iter()
                .flat_map(Learner::confirmed)
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// Keeps the counts of reservations and circuits `status` reports.
    fn on_relay(&mut self, event: &relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed: false,
            } => *self.reservations.entry(*src_peer_id).or_default() += 1,
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                if let Some(n) = self.reservations.get_mut(src_peer_id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.reservations.remove(src_peer_id);
                    }
                }
            }
            relay::Event::CircuitReqAccepted { .. } => self.circuits += 1,
            relay::Event::CircuitClosed { .. } => self.circuits = self.circuits.saturating_sub(1),
            _ => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<MailboxBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "mailbox listening");
                if self.announce_listen && is_announceable(&address) {
                    self.swarm.add_external_address(address.clone());
                }
                self.listening.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| *a != address);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.forget_peer(&peer_id),
            SwarmEvent::Behaviour(MailboxBehaviourEvent::Admission(event)) => {
                self.on_admission(event)
            }
            SwarmEvent::Behaviour(MailboxBehaviourEvent::Gate(Gated::Gate(
                GateEvent::Evicted { peer },
            ))) => {
                tracing::debug!(peer = %short(&peer), "closed the connections of a peer no longer admitted");
                self.forget_peer(&peer);
            }
            SwarmEvent::Behaviour(MailboxBehaviourEvent::Gate(Gated::Inner(
                ServicesEvent::Sync(event),
            ))) => self.on_sync(event),
            SwarmEvent::Behaviour(MailboxBehaviourEvent::Gate(Gated::Inner(
                ServicesEvent::Relay(event),
            ))) => {
                tracing::debug!(?event, "relay");
                self.on_relay(&event);
            }
            SwarmEvent::Behaviour(MailboxBehaviourEvent::Gate(Gated::Inner(
                ServicesEvent::Identify(identify::Event::Received { peer_id, info, .. }),
            ))) => self.on_observed(peer_id, &info.observed_addr),
            _ => {}
        }
    }

    /// Transport peer `peer` observed this mailbox at `observed` (identify). Counted only from
    /// a peer admitted as a current member (not provisionally: anyone can offer an unbound
    /// mailbox a collective of their own), and only when no public address was given.
    fn on_observed(&mut self, peer: PeerId, observed: &Multiaddr) {
        let admitted = self.admitted.lock().is_ok_and(|a| a.contains(&peer));
        let member = self.swarm.behaviour().gate.member_of(&peer);
        let (Some(learner), true, Some(member)) = (self.learner.as_mut(), admitted, member) else {
            return;
        };
        let Some(change) = learner.report(member, observed) else {
            return;
        };
        if let Some(old) = &change.old {
            self.swarm.remove_external_address(old);
        }
        self.swarm.add_external_address(change.new.clone());
        tracing::info!(address = %change.new, replaced = ?change.old.as_ref().map(ToString::to_string), "mailbox learnt its public address from what members observe");
    }

    fn forget_peer(&mut self, peer: &PeerId) {
        self.pending.remove(peer);
        self.refused.remove(peer);
        self.provisional.remove(peer);
        if let Ok(mut admitted) = self.admitted.lock() {
            admitted.remove(peer);
        }
    }

    fn on_admission(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let answer = self.admit(peer, &request);
                let refuse = answer.is_none();
                let response = answer.unwrap_or_else(refused);
                if refuse {
                    self.refused.insert(peer);
                }
                if self
                    .swarm
                    .behaviour_mut()
                    .admission
                    .send_response(channel, response)
                    .is_err()
                    && refuse
                {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            request_response::Event::ResponseSent { peer, .. } if self.refused.remove(&peer) => {
                self.hang_ups
                    .push_back((peer, tokio::time::Instant::now() + REFUSAL_LINGER));
            }
            request_response::Event::InboundFailure { peer, .. } => {
                self.pending.remove(&peer);
                if self.refused.remove(&peer) {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            _ => {}
        }
    }

    /// One admission message from `peer`: the answer, or `None` to refuse and hang up.
    fn admit(&mut self, peer: PeerId, request: &[u8]) -> Option<Vec<u8>> {
        if self.removed {
            return None;
        }
        if let Some(mut listener) = self.pending.remove(&peer) {
            self.pending_order.retain(|p| *p != peer);
            let bound = self.store.log();
            let result = listener.on_prove(request, &self.identity.bind_secret, |m| {
                bound.is_some_and(|log| log.roster().is_member(m))
            });
            return match result {
                Ok((Admission::Member(member), welcome)) => {
                    if !self.swarm.behaviour_mut().gate.admit(peer, member) {
                        return None;
                    }
                    if let Ok(mut admitted) = self.admitted.lock() {
                        admitted.insert(peer);
                    }
                    tracing::debug!(peer = %short(&peer), "member admitted");
                    Some(welcome)
                }
                Ok((Admission::Provisional { member, genesis }, welcome)) => self
                    .admit_provisionally(peer, member, &genesis)
                    .then_some(welcome),
                Err(e) => {
                    tracing::debug!(peer = %short(&peer), error = %e, "admission refused");
                    None
                }
            };
        }
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        let local = *self.swarm.local_peer_id();
        match MailboxListener::on_open(
            &self.identity.signing,
            self.store.collective(),
            local,
            peer,
            request,
            nonce,
        ) {
            Ok((listener, accept)) => {
                if self.pending.len() >= MAX_PENDING_ADMISSIONS {
                    if let Some(oldest) = self.pending_order.pop_front() {
                        self.pending.remove(&oldest);
                    }
                }
                self.pending.insert(peer, listener);
                self.pending_order.push_back(peer);
                Some(accept)
            }
            Err(_) => None,
        }
    }

    /// An unbound mailbox takes the genesis a member offered and lets it sync ops.
    fn admit_provisionally(&mut self, peer: PeerId, member: MemberId, genesis: &[u8]) -> bool {
        if self.store.collective().is_some() {
            return false;
        }
        let Ok(genesis) = SignedGenesis::decode(genesis) else {
            return false;
        };
        let collective = genesis.id();
        if !self.candidates.contains_key(&collective) {
            if self.candidates.len() >= MAX_CANDIDATES {
                return false;
            }
            self.candidates
                .insert(collective, MembershipLog::new(genesis));
        }
        let gate = &mut self.swarm.behaviour_mut().gate;
        if gate.allow_temporarily(member).is_err() || !gate.admit(peer, member) {
            return false;
        }
        self.provisional.insert(peer, (member, collective));
        tracing::info!(collective = %collective.short(), "unbound mailbox: a member offered a collective");
        true
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        let request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } = event
        else {
            return;
        };
        let (response, new_items, roster_changed) = self.serve(peer, &request);
        let _ = self
            .swarm
            .behaviour_mut()
            .gate
            .inner
            .sync
            .send_response(channel, encode(&response));
        let removes_us = roster_changed
            && !self.removed
            && self
                .store
                .log()
                .is_some_and(|log| roster_removed_mailbox(log, &self.identity.mailbox_id()));
        if roster_changed && !removes_us {
            self.on_roster_changed();
        }
        if !new_items.is_empty() {
            self.forward(peer, new_items);
        }
        if removes_us && self.cut_off_at.is_none() {
            self.cut_off_at = Some(tokio::time::Instant::now() + REMOVAL_FAREWELL);
        }
    }

    /// Answers one sync request of `peer`: the response, the items newly stored, and whether
    /// the membership changed.
    fn serve(&mut self, peer: PeerId, request: &[u8]) -> (SyncResponse, Vec<WireItem>, bool) {
        let error = |reason: &str| {
            (
                SyncResponse::Error {
                    reason: reason.into(),
                },
                Vec::new(),
                false,
            )
        };
        if self.removed {
            return error("this mailbox no longer serves the collective");
        }
        let Some(request) = decode::<SyncRequest>(request) else {
            return error("malformed request");
        };
        if let Some((member, collective)) = self.provisional.get(&peer).copied() {
            return self.serve_provisional(member, collective, request);
        }
        let full = self
            .admitted
            .lock()
            .map(|a| a.contains(&peer))
            .unwrap_or(false);
        let Some(member) = self
            .swarm
            .behaviour()
            .gate
            .member_of(&peer)
            .filter(|_| full)
        else {
            return error("not admitted");
        };
        match request {
            SyncRequest::Reconcile { kind, message } => {
                match reconcile(self.store.sync_items(kind), &message) {
                    Ok(message) => (SyncResponse::Reconcile { message }, Vec::new(), false),
                    Err(reason) => error(&reason),
                }
            }
            SyncRequest::Fetch { kind, ids } => {
                if ids.len() > MAX_FETCH_IDS {
                    return error("too many ids");
                }
                let mut items = Vec::new();
                let mut size = 0;
                for bytes in self.store.fetch(kind, &ids).unwrap_or_default() {
                    size += bytes.len() + 8;
                    if size > MAX_ITEMS_BYTES {
                        break;
                    }
                    items.push(WireItem { kind, bytes });
                }
                (SyncResponse::Items { items }, Vec::new(), false)
            }
            SyncRequest::Push { items } => {
                let now = crate::replica::now();
                let (mut accepted, mut rejected, mut ops) = (0u32, 0u32, false);
                let mut new = Vec::new();
                for item in items {
                    match self.store.put(member, item.kind, &item.bytes, now) {
                        Ok(Stored::New) => {
                            accepted += 1;
                            ops |= item.kind == SetKind::Ops;
                            new.push(item);
                        }
                        Ok(Stored::Invalid) => rejected += 1,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "storing a pushed item failed");
                            break;
                        }
                    }
                }
                if accepted > 0 {
                    if let Err(e) = self.store.flush() {
                        tracing::warn!(error = %e, "flushing the mailbox store failed");
                    }
                }
                (SyncResponse::Ack { accepted, rejected }, new, ops)
            }
            // A mailbox holds no epoch key: it has no share to give.
            SyncRequest::Keys { .. } => {
                (SyncResponse::Items { items: Vec::new() }, Vec::new(), false)
            }
        }
    }

    /// An unbound mailbox's sync: ops only, into the offered collective's candidate log.
    fn serve_provisional(
        &mut self,
        member: MemberId,
        collective: CollectiveId,
        request: SyncRequest,
    ) -> (SyncResponse, Vec<WireItem>, bool) {
        let error = |reason: &str| {
            (
                SyncResponse::Error {
                    reason: reason.into(),
                },
                Vec::new(),
                false,
            )
        };
        let Some(log) = self.candidates.get_mut(&collective) else {
            return error("not admitted");
        };
        match request {
            SyncRequest::Reconcile {
                kind: SetKind::Ops,
                message,
            } => {
                let mut items: Vec<_> = log
                    .ops()
                    .map(|op| lookout_protocol::reconcile::Item {
                        timestamp: op.body().timestamp,
                        id: op.id().0,
                    })
                    .collect();
                items.sort();
                match reconcile(&items, &message) {
                    Ok(message) => (SyncResponse::Reconcile { message }, Vec::new(), false),
                    Err(reason) => error(&reason),
                }
            }
            SyncRequest::Fetch {
                kind: SetKind::Ops,
                ids,
            } => {
                let items = ids
                    .iter()
                    .take(MAX_FETCH_IDS)
                    .filter_map(|id| log.get(&lookout_protocol::OpId(*id)))
                    .map(|op| WireItem {
                        kind: SetKind::Ops,
                        bytes: op.encoded().to_vec(),
                    })
                    .collect();
                (SyncResponse::Items { items }, Vec::new(), false)
            }
            SyncRequest::Push { items } => {
                let mut accepted = 0;
                for item in items.iter().filter(|i| i.kind == SetKind::Ops) {
                    if let Ok(op) = Op::decode(&item.bytes, collective) {
                        if matches!(
                            log.insert(op),
                            lookout_protocol::membership::InsertOutcome::Added(_)
                        ) {
                            accepted += 1;
                        }
                    }
                }
                let mailbox = self.identity.mailbox_id();
                let binds = roster_names_mailbox(log, &mailbox) && log.roster().is_member(&member);
                let response = SyncResponse::Ack {
                    accepted,
                    rejected: 0,
                };
                if binds {
                    self.bind(collective);
                }
                (response, Vec::new(), binds)
            }
            _ => error("this mailbox is not bound to a collective yet: ops only"),
        }
    }

    /// Binds to `collective`: the first candidate whose roster names this mailbox and a member
    /// who offered it.
    fn bind(&mut self, collective: CollectiveId) {
        let Some(log) = self.candidates.remove(&collective) else {
            return;
        };
        let genesis = log.genesis().clone();
        let ops: Vec<Vec<u8>> = log.ops().map(|op| op.encoded().to_vec()).collect();
        match self.store.bind(genesis) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "binding the mailbox failed");
                return;
            }
        }
        let founder = log.roster().founder();
        let now = crate::replica::now();
        // Feed the ops in until no more join (parents before children).
        for _ in 0..ops.len().max(1) {
            let before = self.store.stats().ops;
            for bytes in &ops {
                let _ = self.store.put(founder, SetKind::Ops, bytes, now);
            }
            if self.store.stats().ops == before {
                break;
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::warn!(error = %e, "flushing the mailbox store failed");
        }
        self.candidates.clear();
        tracing::info!(collective = %collective.short(), "mailbox bound to its collective");
        // Provisional members of this collective become full members if the roster names them;
        // everyone else is cut off.
        let provisional: Vec<(PeerId, MemberId, CollectiveId)> = self
            .provisional
            .drain()
            .map(|(p, (m, c))| (p, m, c))
            .collect();
        // The gate admits the roster's members first, so that ending the temporary allowances
        // below closes only those the roster does not name.
        let allowed: HashSet<MemberId> = self
            .store
            .log()
            .map(|l| l.roster().members().map(|m| m.identity.member).collect())
            .unwrap_or_default();
        let keep: HashSet<PeerId> = provisional.iter().map(|(p, _, _)| *p).collect();
        self.swarm.behaviour_mut().gate.set_allowed(allowed, &keep);
        for (peer, member, c) in provisional {
            let gate = &mut self.swarm.behaviour_mut().gate;
            gate.revoke_temporary(&member);
            if c == collective
                && self
                    .store
                    .log()
                    .is_some_and(|l| l.roster().is_member(&member))
            {
                if let Ok(mut admitted) = self.admitted.lock() {
                    admitted.insert(peer);
                }
            } else {
                gate.disconnect(peer);
            }
        }
    }

    /// The roster may have changed: update the gate (closing removed members' connections, and
    /// with them their reservations and circuits) and check this mailbox is still admitted.
    fn on_roster_changed(&mut self) {
        let Some(log) = self.store.log() else {
            return;
        };
        let mailbox = self.identity.mailbox_id();
        if roster_removed_mailbox(log, &mailbox) && !self.removed {
            self.removed = true;
            tracing::warn!(
                "the collective removed this mailbox: it no longer serves anyone; \
                 its operator may delete it"
            );
            println!("This mailbox was removed by its collective and no longer serves anyone.");
        }
        let allowed: HashSet<MemberId> = if self.removed {
            HashSet::new()
        } else {
            log.roster().members().map(|m| m.identity.member).collect()
        };
        // Re-admitting members already admitted: the gate's allowed set is the roster; the
        // temporary allowances of provisional members are revoked at binding.
        let gate = &mut self.swarm.behaviour_mut().gate;
        gate.set_allowed(allowed.clone(), &HashSet::new());
        let still: HashSet<PeerId> = gate.proven().map(|(p, _)| *p).collect();
        if let Ok(mut admitted) = self.admitted.lock() {
            admitted.retain(|p| still.contains(p));
        }
    }

    /// Pushes newly stored items at once to every other admitted member connected.
    fn forward(&mut self, from: PeerId, items: Vec<WireItem>) {
        let targets: Vec<PeerId> = {
            let admitted = match self.admitted.lock() {
                Ok(a) => a.clone(),
                Err(_) => return,
            };
            self.swarm
                .behaviour()
                .gate
                .members_connected()
                .map(|(p, _)| p)
                .filter(|p| *p != from && admitted.contains(p))
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        for batch in batches(items) {
            let request = encode(&SyncRequest::Push { items: batch });
            for peer in &targets {
                self.swarm
                    .behaviour_mut()
                    .gate
                    .inner
                    .sync
                    .send_request(peer, request.clone());
            }
        }
    }
}

/// Items cut into pushes within [`MAX_PUSH_BYTES`].
fn batches(items: Vec<WireItem>) -> Vec<Vec<WireItem>> {
    let mut out: Vec<Vec<WireItem>> = Vec::new();
    let mut size = 0;
    for item in items {
        let len = item.bytes.len() + 8;
        match out.last_mut() {
            Some(last) if size + len <= MAX_PUSH_BYTES => {
                size += len;
                last.push(item);
            }
            _ => {
                size = len;
                out.push(vec![item]);
            }
        }
    }
    out
}

fn reconcile(
    items: &[lookout_protocol::reconcile::Item],
    message: &[u8],
) -> Result<Vec<u8>, String> {
    Reconciler::new(items, RECONCILE_LIMITS)
        .and_then(|mut r| r.respond(message))
        .map_err(|e| e.to_string())
}

/// Whether a listen address may be announced as it is, with no public address given: a
/// specific interface (not 0.0.0.0 or ::) that is either loopback (a mailbox for nodes on the
/// same machine, as in tests) or not a private LAN address (RFC 1918, CGNAT, link-local, ULA).
/// A private address is what a mailbox behind a port forward listens on: what members reach it
/// at is learnt instead ([`super::learn`]).
fn is_announceable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    addr.iter().all(|p| match p {
        Protocol::Ip4(ip) => {
            let [a, b, ..] = ip.octets();
            let cgnat = a == 100 && (64..128).contains(&b);
            !ip.is_unspecified()
                && (ip.is_loopback() || !(ip.is_private() || ip.is_link_local() || cgnat))
        }
        Protocol::Ip6(ip) => {
            let first = ip.segments()[0];
            let ula = first & 0xfe00 == 0xfc00;
            let link_local = first & 0xffc0 == 0xfe80;
            !ip.is_unspecified() && (ip.is_loopback() || !(ula || link_local))
        }
        _ => true,
    })
}
