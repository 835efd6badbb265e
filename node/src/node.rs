//! The event loop: one task owns the swarm and the replica; everything else talks to it through
//! a cloneable [`NodeHandle`] that sends commands with a oneshot reply (the shape of
//! rust-libp2p's file-sharing example).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{
    autonat, core::transport::ListenerId, dcutr, mdns, ping, relay, Multiaddr, PeerId, Swarm,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::api::{ApiError, ErrorCode, Event, MemberSync, Request, Response, StatusView};
use crate::commit::{GroupCommit, WriteBehind, WriteWhen};
use crate::dial::{DialPolicy, Networks, Source};
use crate::hop;
use crate::mailboxes::{MailboxLinks, MAILBOX_SYNC_INTERVAL};
use crate::net::hello::{Credentials, Dialer, Keying, Listener};
use crate::net::mailbox_admission::{AdmissionError, MailboxDialer, Welcome};
use crate::net::{self, short, Behaviour, GateEvent, MessageAcceptance, NetConfig, NetEvent};
use crate::policy::budget::Budget;
use crate::policy::farewell::Farewells;
use crate::policy::punch::{Punches, Supersede};
use crate::policy::strikes::{Strikes, Verdict};
use crate::policy::sync::{Start, SyncSchedule};
use crate::reach::{self, NatProbe};
use crate::replica::{now, Ingested, Replica, SetKind, WireItem};
use crate::sync::{self, Session, Step};
use lookout_protocol::MemberId;

/// Capacity of the command channel from handles to the loop.
pub(crate) const COMMAND_CAPACITY: usize = 64;
/// Capacity of the event broadcast to watchers (slow watchers miss old events).
pub(crate) const EVENT_CAPACITY: usize = 256;
/// How often periodic work runs.
pub const TICK: Duration = Duration::from_secs(2);
/// How long a hole-punched direct connection stands before the relayed ones with its member are
/// closed.
const PUNCH_SETTLE: Duration = Duration::from_secs(1);
/// Most relayed addresses of one member tried in one hole-punch redial.
const MAX_PUNCH_ADDRESSES: usize = 4;
/// Most hole-punch redials under way at once (one per member; bounded like the members).
const MAX_PUNCH_DIALS: usize = crate::policy::punch::MAX_PEERS;

/// Hole-punch retries (see [`crate::policy::punch`]): when, the redials under way, and the
/// redials that stood, which replace the older relayed connections through their relay once
/// they carried a round trip (or are closed themselves if they carry none).
struct PunchRetries {
    policy: Punches<PeerId>,
    dials: HashMap<ConnectionId, PeerId>,
    superseding: Supersede<PeerId, ConnectionId>,
}

impl PunchRetries {
    fn new() -> Self {
        Self {
            policy: Punches::new(crate::policy::os_seed()),
            dials: HashMap::new(),
            superseding: Supersede::new(),
        }
    }
}
/// Most peers dialled from one mDNS discovery event.
pub(crate) const MAX_MDNS_DIALS: usize = 8;
/// How long a connection may stay open without its peer proving membership in the hello.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connected peers still to prove membership at once.
pub(crate) const MAX_UNPROVEN: usize = 32;
/// Most connected peers from one IP address (IPv6: one /64) still to prove membership at once.
pub const MAX_UNPROVEN_PER_IP: usize = 4;
/// Most peers this node dialled still to prove membership at once (a budget of its own, so
/// inbound strangers cannot crowd out the node's own hellos to members).
pub(crate) const MAX_UNPROVEN_OUTGOING: usize = 32;

/// Most connected peers still to prove membership at once that came in through one relay (a
/// mailbox): each relayed source is its own peer, so members behind one mailbox are not held
/// to the per-address cap of a single IP, but one relay (a hostile mailbox can open circuits
/// under any source id) cannot take more than half of [`MAX_UNPROVEN`].
pub const MAX_UNPROVEN_PER_RELAY: usize = MAX_UNPROVEN / 2;

/// A connected peer that has not proved membership yet.
struct Unproven {
    since: Instant,
    /// What it counts against (see [`hello_bucket`]).
    bucket: Option<HelloBucket>,
    /// Whether this node dialled it.
    outgoing: bool,
}

/// What an inbound connection still to prove membership counts against.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HelloBucket {
    /// A direct connection: its address, IPv6 cut to the /64 (see [`address_bucket`]); at most
    /// [`MAX_UNPROVEN_PER_IP`].
    Ip(IpAddr),
    /// A relayed connection, by the relay's peer id (the source is the peer itself, one entry
    /// per transport id); at most [`MAX_UNPROVEN_PER_RELAY`]. Keyed by the relay, not by the
    /// circuit address: two reservations on one relay (TCP and QUIC, or an old and a new one
    /// after a network change) must not double its share. `None`: a circuit address naming no
    /// relay (all such share one bucket).
    Relay(Option<PeerId>),
}

impl HelloBucket {
    fn cap(&self) -> usize {
        match self {
            Self::Ip(_) => MAX_UNPROVEN_PER_IP,
            Self::Relay(_) => MAX_UNPROVEN_PER_RELAY,
        }
    }
}

/// The bucket of an inbound connection. A relayed one (the relay client reports its local
/// address as `<relay address>/p2p-circuit` and its remote one as `/p2p/<source>`, no IP) counts
/// against its relay, never against an IP address.
fn hello_bucket(endpoint: &ConnectedPoint) -> Option<HelloBucket> {
    match endpoint {
        ConnectedPoint::Listener { local_addr, .. } if is_relayed(local_addr) => {
            Some(HelloBucket::Relay(relay_of(local_addr)))
        }
        _ => remote_ip(endpoint.get_remote_address())
            .map(address_bucket)
            .map(HelloBucket::Ip),
    }
}

/// Which inbound connection still to prove membership a new inbound one in `bucket` evicts:
/// the oldest of its bucket when that is full, else the oldest of all when [`MAX_UNPROVEN`]
/// are waiting; `None` if there is room.
fn hello_victim<'a>(
    unproven: impl Iterator<Item = (&'a PeerId, &'a Unproven)> + Clone,
    bucket: Option<&HelloBucket>,
) -> Option<PeerId> {
    let inbound = unproven.filter(|(_, u)| !u.outgoing);
    let same = |u: &Unproven| bucket.is_some() && u.bucket.as_ref() == bucket;
    let oldest = |it: &mut dyn Iterator<Item = (&'a PeerId, &'a Unproven)>| {
        it.min_by_key(|(_, u)| u.since).map(|(p, _)| *p)
    };
    let from_bucket = inbound.clone().filter(|(_, u)| same(u)).count();
    if bucket.is_some_and(|b| from_bucket >= b.cap()) {
        oldest(&mut inbound.filter(|(_, u)| same(u)))
    } else if inbound.clone().count() >= MAX_UNPROVEN {
        oldest(&mut inbound.clone())
    } else {
        None
    }
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
    /// Member connections to keep by dialling members' announced addresses
    /// ([`DEFAULT_MEMBER_CONNECTIONS`]; at least one). Addresses the user gives, the invite's
    /// and mailboxes are dialled whatever this says.
    pub member_connections: usize,
}

/// Member connections a node keeps unless told otherwise: each costs a phone data even when
/// nobody posts, and gossip needs only a few (`crate::policy::budget`).
pub const DEFAULT_MEMBER_CONNECTIONS: usize = crate::policy::budget::TARGET;

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
            member_connections: DEFAULT_MEMBER_CONNECTIONS,
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
    /// Relayed connections upgraded to direct ones by hole punching.
    pub hole_punches: u64,
    /// Hole-punch rounds that failed on this side (DCUtR's error event).
    pub hole_punch_failures: u64,
    /// Members redialled through a relay for another hole-punch round.
    pub hole_punch_retries: u64,
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
    /// This device is in a collective but does not hold its secret (damaged secrets file).
    #[error("this device does not hold its collective's secret: join again with a new invite")]
    NoCollectiveSecret,
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
    let hello_secret = replica
        .hello_secret()
        .map_err(|_| StartError::NoCollectiveSecret)?;
    let mut creds = Credentials::new(&hello_secret, &replica.identity().ed25519_seed());
    drop(hello_secret);
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
    // The networks each roster mailbox address was first seen on, in an earlier run (review 2
    // finding 5): a restart on another network does not make that network the address's.
    dial.restore_roster_networks(
        replica
            .mailbox_networks()
            .into_iter()
            .filter_map(|(a, n)| Some((a.parse::<Multiaddr>().ok()?, Networks::from_text(&n)?))),
    );

    let shared_peer_id = std::sync::Arc::new(std::sync::Mutex::new(peer_id));
    let handle = NodeHandle {
        commands: commands.clone(),
        peer_id: shared_peer_id.clone(),
    };
    let sync = SyncSchedule::new(config.sync_interval, started, crate::policy::os_seed());
    let event_loop = EventLoop {
        swarm,
        replica,
        receiver,
        events,
        dial,
        budget: Budget::new(config.member_connections, crate::policy::os_seed()),
        dialled: HashMap::new(),
        announcers: HashMap::new(),
        creds,
        hellos: HashMap::new(),
        unproven: HashMap::new(),
        sessions: HashMap::new(),
        sync,
        strikes: Strikes::default(),
        stats: NetStats::default(),
        listening: Vec::new(),
        net_config,
        shared_peer_id,
        built_on: None,
        announced: None,
        farewells: Farewells::default(),
        commit: GroupCommit::default(),
        write_behind: WriteBehind::default(),
        crossed_wait_at: None,
        mailboxes: MailboxLinks::new(),
        mailbox_dials: HashMap::new(),
        admissions: HashMap::new(),
        admission_connections: HashMap::new(),
        replacing: HashMap::new(),
        relayed: HashMap::new(),
        connections: HashMap::new(),
        punched: HashMap::new(),
        punch: PunchRetries::new(),
        hello_connections: HashMap::new(),
        nat: NatProbe::Unknown,
        synced_once: false,
        mailbox_farewells: Farewells::default(),
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
        /// The peer dialled us too (crossed dials, see [`crossed_hello_yields`]).
        crossed: bool,
        /// When our `Open` went unanswered while we would give way but had no sign yet of the
        /// peer's own dial: we wait [`CROSSED_GRACE`] for its connection, then hang up.
        unanswered: Option<Instant>,
    },
    /// They dialled us; `None` until their `Open` arrived. `unnamed` is [`Unnamed::Nobody`]
    /// unless we were dialling them too and gave way (then it is what our dial's address allows).
    Listening(Option<Listener>, Unnamed),
}

/// Whether this node, having dialled `remote` while `remote` dialled it (two members dialling
/// each other's relayed addresses at once: crossed dials), gives up its own hello and answers
/// the peer's as listener. Exactly one of the two does (the one with the larger transport id),
/// whatever order the connections and messages arrive in; before this rule both ignored the
/// other's `Open`, each saw its own go unanswered and hung up ("no answer"), and the next dials
/// of the pair crossed again.
///
/// The peer picks its own transport id, so it can always make us the one that gives way; giving
/// way gives it nothing more (as listener we still need its `Open`, keyed with the collective's
/// secret, and a member's proof). It is done only on a sign of crossed dials: the peer's own
/// connection to us (at once, or within [`CROSSED_GRACE`] of our `Open` going unanswered), or
/// its `Open` arriving while we dial. A peer that drops our `Open` and never dialled us is
/// hung up on ("no answer") after at most that grace, not held for [`HELLO_TIMEOUT`].
fn crossed_hello_yields(local: &PeerId, remote: &PeerId) -> bool {
    local.to_bytes() > remote.to_bytes()
}

/// How long a dialler that would give way waits, after its `Open` went unanswered, for the
/// peer's own connection (crossed dials): the peer's dropping of our `Open` can overtake its
/// connection to us (seen in `crossed_dials`), by a round trip or so.
const CROSSED_GRACE: Duration = Duration::from_secs(1);

/// See [`EventLoop::hello_allowed`].
fn hello_allowed(
    gate: &net::MemberGate<net::Collective>,
    replica: &Replica,
    member: &MemberId,
    unnamed: Unnamed,
) -> bool {
    if gate.is_allowed(member) {
        return true;
    }
    if replica.roster_names_me()
        || replica
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

struct EventLoop {
    swarm: Swarm<Behaviour>,
    replica: Replica,
    receiver: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    /// Which addresses to dial, and when.
    dial: DialPolicy,
    /// How many members to keep connections with, and which to dial.
    budget: Budget<MemberId>,
    /// The addresses each connected peer was reached at (freed when it leaves).
    dialled: HashMap<PeerId, Vec<Multiaddr>>,
    /// Who announced each address the dial policy holds from announcements (two members may
    /// name one address: a shared relay's, or a stale one).
    announcers: HashMap<Multiaddr, Vec<MemberId>>,
    /// This member's hello credentials.
    creds: Credentials,
    /// Hellos in progress, by transport peer.
    hellos: HashMap<PeerId, Hello>,
    /// Connected peers that have not proved membership yet, since when.
    unproven: HashMap<PeerId, Unproven>,
    sessions: HashMap<OutboundRequestId, (PeerId, Session)>,
    /// When to sync with whom (see [`SyncSchedule`]).
    sync: SyncSchedule<PeerId>,
    /// Invalid sync data per member (not per transport id: a member can make new ones).
    strikes: Strikes<MemberId>,
    stats: NetStats,
    listening: Vec<Multiaddr>,
    /// How the swarm was built (to build it again with a fresh key).
    net_config: NetConfig,
    /// Where the handles read the current peer id.
    shared_peer_id: std::sync::Arc<std::sync::Mutex<PeerId>>,
    /// The local networks the current swarm has seen (grows while interfaces come up).
    built_on: Option<Networks>,
    /// The addresses announced in this run, if any.
    announced: Option<Vec<String>>,
    /// Removed members still connected until they acknowledge the push of their removal (or
    /// [`crate::policy::farewell::FAREWELL`] passes).
    farewells: Farewells<PeerId, OutboundRequestId>,
    /// The fsync of accepted gossip, off the loop (see [`GroupCommit`]).
    commit: GroupCommit,
    /// When received posts' held writes are made (`replica/held.rs`).
    write_behind: WriteBehind,
    /// The earliest end of a wait for a crossed dial (see [`EventLoop::end_crossed_waits`]).
    crossed_wait_at: Option<tokio::time::Instant>,
    /// The links with the roster's mailboxes.
    mailboxes: MailboxLinks,
    /// Dials of mailbox addresses under way, by connection.
    mailbox_dials: HashMap<ConnectionId, [u8; 32]>,
    /// Mailbox admissions under way, by transport peer.
    admissions: HashMap<PeerId, Admission>,
    /// Each mailbox's admission connection, until a connection with its services replaces it.
    admission_connections: HashMap<PeerId, ConnectionId>,
    /// Admitted mailboxes' admission connections being replaced by one that carries the
    /// protocols: once it closes, the node reserves a relayed address on the mailbox.
    replacing: HashMap<ConnectionId, PeerId>,
    /// The relayed address each mailbox holds for this node, and its listener.
    relayed: HashMap<PeerId, (Multiaddr, ListenerId)>,
    /// Every established connection: its peer and whether it is relayed (and by whom).
    connections: HashMap<ConnectionId, (PeerId, Option<PeerId>)>,
    /// Members we just hole-punched a direct connection with, and when: their relayed
    /// connections are closed a moment later (see [`EventLoop::drop_relayed_after_punch`]).
    punched: HashMap<PeerId, Instant>,
    /// Hole-punch retries with members connected only through a relay.
    punch: PunchRetries,
    /// The connections each peer ran (or runs) its hello on: they carry only the hello.
    hello_connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// What AutoNAT last concluded.
    nat: NatProbe,
    /// Whether a sync completed in this run (announcements wait for it).
    synced_once: bool,
    /// Mailboxes just removed from the roster, still connected until they acknowledge the push
    /// of the ops that removed them (or [`crate::policy::farewell::FAREWELL`] passes), so that they learn it and pass
    /// it on to the members connected to them.
    mailbox_farewells: Farewells<PeerId, OutboundRequestId>,
}

/// One mailbox admission under way (see [`crate::net::mailbox_admission`]).
struct Admission {
    mailbox: [u8; 32],
    addr: Multiaddr,
    state: MailboxDialer,
}

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.refresh_mailboxes();
        let done = loop {
            let fsync_due = self.commit.deferred_due();
            let write_due = self.write_behind.due();
            // Received posts' writes held in memory (`replica/held.rs`) are made before
            // anything that may read or write the store: every arm but a gossiped message or a
            // ping's result (`on_swarm`, `on_gossip`), a `post` (`on_command`) and the group
            // commit's own.
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.receiver.recv() => match command {
                    Some(Command::Shutdown(done)) => break Some(done),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                _ = tick.tick() => {
                    self.write_held();
                    self.on_tick();
                }
                () = self.commit.finished() => {}
                () = deadline(fsync_due) => {
                    // Received posts waited their second for an fsync: it starts now, with
                    // any held writes made first (`after_change` starts none while writes are
                    // held, which would add up to a write-behind window: Review 18's F2).
                    self.commit.defer_ended();
                    self.write_held();
                }
                () = deadline(write_due) => self.write_held(),
                () = deadline(self.crossed_wait_at) => {
                    self.write_held();
                    self.end_crossed_waits();
                }
            }
            self.after_change();
            if self.replica.holds_writes() {
                // An alert was forwarded (or published) and shown. A post of ours is written
                // at once, for its answer waits for it; received posts wait for each other
                // (`WriteBehind`), up to a window or a count. Either way the tasks that woke
                // meanwhile (the connections sending it, and in one process the other nodes)
                // run first; nothing else runs on this loop in between. Then the group commit
                // makes them durable.
                let now = tokio::time::Instant::now();
                if self.commit.waits_for_writes()
                    || self.write_behind.held(now, self.replica.held_posts()) == WriteWhen::Now
                {
                    tokio::task::yield_now().await;
                    self.write_held();
                }
            }
        };
        self.write_held();
        self.commit.close(self.replica.flusher()).await;
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
        match command {
            Command::Execute(request, reply) => {
                let posting = matches!(request, Request::Post(_));
                if posting {
                    hop::mark(hop::Stage::PostIn);
                } else {
                    // Anything but a post may read or write what received posts' held writes
                    // hold; a post of ours only adds its own writes after them.
                    self.write_held();
                }
                // A post of ours is published and shown before its store writes, which the
                // loop makes right after (`replica/held.rs`); anything else writes at once.
                self.replica.hold_post_writes(posting);
                let (result, unflushed) = match request {
                    Request::Status => (Ok(Response::Status(self.status())), false),
                    other => self.replica.execute_unflushed(other),
                };
                self.replica.hold_post_writes(false);
                if posting && !self.replica.holds_writes() {
                    hop::mark(hop::Stage::PostStored);
                }
                if unflushed && self.replica.holds_writes() {
                    // A post of ours: published by `after_change` right after this, written
                    // by `write_held`, answered once the group commit has made it durable.
                    self.commit.answer_when_written(reply, result);
                } else if unflushed {
                    self.commit.answer_when_durable(reply, result);
                } else {
                    let _ = reply.send(result);
                }
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
            let mut names = roster.display_names(self.replica.text_key().as_ref());
            view.synced_with = self
                .stats
                .synced_with
                .iter()
                .filter_map(|(member, at)| {
                    let member = roster.member(member)?;
                    Some(MemberSync {
                        member: member.identity.member.to_hex(),
                        name: names.remove(&member.identity.member).unwrap_or_default(),
                        at: *at,
                    })
                })
                .collect();
            view.synced_with.sort_by(|a, b| a.name.cmp(&b.name));
        }
        view.bytes_received = self.stats.bytes_received;
        let reservations: Vec<reach::Reservation> = self
            .mailboxes
            .reservations()
            .into_iter()
            .map(|accepted_at| reach::Reservation { accepted_at })
            .collect();
        view.reachability = reach::reachability(&reach::Inputs {
            nat: self.nat,
            reservations: &reservations,
            listening: &self.listening,
            now: now(),
        });
        view.mailboxes = self.mailboxes.views();
        let members: HashSet<PeerId> = self.member_peers().collect();
        let direct: HashSet<PeerId> = self
            .connections
            .values()
            .filter(|(p, via)| via.is_none() && members.contains(p))
            .map(|(p, _)| *p)
            .collect();
        view.direct_peers = direct.len();
        view.relayed_peers = members.len() - direct.len();
        view.hole_punches = self.stats.hole_punches;
        view.hole_punch_failures = self.stats.hole_punch_failures;
        view.hole_punch_retries = self.stats.hole_punch_retries;
        view
    }

    /// After anything that may have changed the replica: publish what it made, tell watchers,
    /// update who may connect.
    fn after_change(&mut self) {
        let outgoing = self.replica.take_outgoing();
        for item in &outgoing {
            self.publish(item);
        }
        self.push_to_mailboxes(outgoing);
        // Watchers hear of an item once this node has checked it, before it is on disk: a
        // crash loses only what the network still holds and the next sync fetches again
        // (docs/PROTOCOL.md §9.4).
        let events = self.replica.take_events();
        self.tell_watchers(events);
        // What was written (accepted gossip, a post of ours now on its way) is made durable by
        // an fsync on a blocking thread, which starts now if none runs; not while a post's
        // writes are held (`write_held` starts it), so that an answer waiting for durability
        // is never sent after an fsync that did not cover its post.
        if !self.replica.holds_writes() {
            self.commit.start(&self.replica);
        }
    }

    /// Make the posts' writes held since validation (`replica/held.rs`), then start the fsync.
    fn write_held(&mut self) {
        self.write_behind.written();
        match self.replica.write_held() {
            Ok(written) => {
                if written {
                    hop::mark(hop::Stage::Stored);
                    // Received posts' fsync may wait (`commit.rs`); a post of ours has its
                    // answer waiting, which `held_written` hands to the next fsync.
                    self.commit.wrote_received_post(tokio::time::Instant::now());
                }
                self.commit.held_written(Ok(()));
            }
            Err(e) => {
                warn!(error = %e, "storing a post failed");
                self.commit.held_written(Err(e.to_string()));
            }
        }
        self.commit.start(&self.replica);
    }

    /// Tell watchers of `events`, and follow a membership change.
    fn tell_watchers(&mut self, events: Vec<Event>) {
        let membership_changed = events
            .iter()
            .any(|e| matches!(e, Event::MembershipChanged { .. }));
        for event in events {
            if matches!(event, Event::Alert(_)) {
                hop::mark(hop::Stage::Shown);
            }
            let _ = self.events.send(event);
        }
        if membership_changed {
            self.bid_farewells();
            self.update_gate();
            self.refresh_mailboxes();
        }
    }

    /// Hand this node's new items to every admitted mailbox at once (store and forward: the
    /// mailbox passes them on to the members connected to it, and keeps them for the others).
    fn push_to_mailboxes(&mut self, items: Vec<WireItem>) {
        if items.is_empty() {
            return;
        }
        let peers = self.mailboxes.admitted_peers();
        if peers.is_empty() {
            return;
        }
        let mut batches: Vec<Vec<WireItem>> = vec![Vec::new()];
        let mut size = 0;
        for item in items {
            size += item.bytes.len() + 8;
            if size > sync::MAX_PUSH_BYTES {
                batches.push(Vec::new());
                size = item.bytes.len() + 8;
            }
            if let Some(batch) = batches.last_mut() {
                batch.push(item);
            }
        }
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            let push = sync::encode(&sync::SyncRequest::Push { items: batch });
            for peer in &peers {
                if self.swarm.behaviour().gate.has_member_connection(peer) {
                    self.swarm.behaviour_mut().request(peer, push.clone());
                }
            }
        }
    }

    /// Follow the roster's mailboxes: new ones are dialled, removed ones dropped (connections,
    /// reservation, circuits through them).
    fn refresh_mailboxes(&mut self) {
        let current: Vec<([u8; 32], Vec<Multiaddr>)> = roster_mailboxes(&self.replica);
        let removed: Vec<PeerId> = self.mailboxes.set_roster(current, Instant::now());
        // Only connections to the roster's mailbox addresses carry the mailbox admission.
        let addresses: Vec<Multiaddr> = self.mailboxes.addresses().cloned().collect();
        self.swarm
            .behaviour_mut()
            .mailbox
            .select_addresses(addresses);
        for peer in removed {
            // Out of every use at once (no sync, no relay); connected only to be told.
            if let Some((_, listener)) = self.relayed.remove(&peer) {
                self.swarm.remove_listener(listener);
            }
            if self.swarm.behaviour().gate.has_member_connection(&peer) {
                let push = sync::membership_push(&mut self.replica);
                let id = self.swarm.behaviour_mut().request(&peer, push);
                self.mailbox_farewells.sent(peer, id, Instant::now());
                self.close_circuits_through(peer);
            } else {
                self.drop_mailbox_peer(peer);
            }
        }
        // A mailbox dropped before it connected: forget its admission.
        let stale: Vec<PeerId> = self
            .admissions
            .iter()
            .filter(|(_, a)| !self.mailboxes.contains(&a.mailbox))
            .map(|(p, _)| *p)
            .collect();
        for peer in stale {
            self.drop_mailbox_peer(peer);
        }
    }

    /// Close everything that goes through the mailbox at `peer`: its connections, this node's
    /// reservation on it, and relayed connections through it.
    fn drop_mailbox_peer(&mut self, peer: PeerId) {
        info!(peer = %short(&peer), "dropping a mailbox no longer on the roster");
        self.admissions.remove(&peer);
        if let Some(id) = self.swarm.behaviour().gate.mailbox_of(&peer) {
            self.swarm.behaviour_mut().forget_mailbox(&id);
        }
        if let Some((_, listener)) = self.relayed.remove(&peer) {
            self.swarm.remove_listener(listener);
        }
        self.swarm
            .behaviour_mut()
            .gate
            .inner
            .autonat
            .inner
            .remove_server(&peer);
        self.close_circuits_through(peer);
        if self.swarm.behaviour().gate.member_of(&peer).is_some() {
            // Not a mailbox's transport id but a member's node its roster address reached:
            // only the connection opened for the admission goes.
            self.close_admission(peer);
        } else {
            self.admission_connections.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Close the connection opened for a mailbox admission with `peer`, and only it. A roster
    /// address may lead to a member's node (a moderator can name any address), and closing
    /// every connection with that transport id would cut the member from this node at every
    /// retry (review finding 4, `a_mailbox_address_that_is_a_member_does_not_cut_that_member`).
    fn close_admission(&mut self, peer: PeerId) {
        match self.admission_connections.remove(&peer) {
            Some(connection) => {
                self.swarm.close_connection(connection);
            }
            None if self.swarm.behaviour().gate.member_of(&peer).is_none() => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            None => {}
        }
    }

    /// Once a hole-punched direct connection with a member has stood for [`PUNCH_SETTLE`], close
    /// the relayed connections with that member: gossip and sync use whichever of a peer's
    /// connections is ready, so they would otherwise keep going partly through the mailbox (its bandwidth, and one more place
    /// that sees the traffic). A moment's wait lets the other side finish its half of the
    /// direct connection before its relayed ones go.
    fn drop_relayed_after_punch(&mut self, now: Instant) {
        let settled: Vec<PeerId> = self
            .punched
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= PUNCH_SETTLE)
            .map(|(p, _)| *p)
            .collect();
        for peer in settled {
            self.punched.remove(&peer);
            let of_peer = |via: bool| {
                self.connections
                    .iter()
                    .filter(move |(_, (p, v))| *p == peer && v.is_some() == via)
                    .map(|(c, _)| *c)
            };
            if of_peer(false).next().is_none() {
                continue;
            }
            let relayed: Vec<ConnectionId> = of_peer(true).collect();
            debug!(peer = %short(&peer), relayed = relayed.len(), "direct connection up: closing the relayed ones");
            for connection in relayed {
                self.swarm.close_connection(connection);
            }
        }
    }

    /// Hole-punch retries (see [`crate::policy::punch`]), from the tick: close the relayed
    /// connections a retry's new one superseded, then redial through the relay the members
    /// the policy says are due.
    fn retry_hole_punches(&mut self, now: Instant) {
        // A retry's relayed connection that carried a round trip replaces the older relayed
        // ones with its member through the same relay; one that carried none in time is
        // closed itself (review U1: the retry may have landed on a mailbox that stalls).
        let open: Vec<(ConnectionId, PeerId, Option<PeerId>)> = self
            .connections
            .iter()
            .map(|(c, (p, via))| (*c, *p, *via))
            .collect();
        for connection in self.punch.superseding.handle_timeout(now, &open) {
            debug!("closing a relayed connection a hole-punch retry decided on");
            self.swarm.close_connection(connection);
        }
        let members: HashSet<PeerId> = self.member_peers().collect();
        let mut relayed_only: HashSet<PeerId> = HashSet::new();
        let mut direct: HashSet<PeerId> = HashSet::new();
        for (peer, via) in self.connections.values() {
            if members.contains(peer) {
                if via.is_some() {
                    relayed_only.insert(*peer);
                } else {
                    direct.insert(*peer);
                }
            }
        }
        relayed_only.retain(|p| !direct.contains(p));
        let due = self.punch.policy.handle_timeout(now, &relayed_only);
        if due.is_empty() {
            return;
        }
        let announced = self.replica.member_addresses();
        for peer in due {
            // The member's own relayed addresses (announced, naming this transport id),
            // through a mailbox that admitted this node.
            let addrs: Vec<Multiaddr> = announced
                .iter()
                .flat_map(|(_, _, addresses)| addresses.iter())
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .filter(|a| circuit_target(a) == Some(peer))
                .filter(|a| {
                    relay_of(a).is_some_and(|relay| {
                        let gate = &self.swarm.behaviour().gate;
                        gate.has_member_connection(&relay) && gate.mailbox_of(&relay).is_some()
                    })
                })
                .take(MAX_PUNCH_ADDRESSES)
                .collect();
            if self.punch.dials.len() >= MAX_PUNCH_DIALS {
                break;
            }
            if addrs.is_empty() {
                // The member redials us instead (its own policy runs the same schedule).
                debug!(peer = %short(&peer), "hole punch due, but no relayed address of the member");
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::Always)
                .build();
            let connection = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    self.stats.hole_punch_retries += 1;
                    self.punch.dials.insert(connection, peer);
                    info!(peer = %short(&peer), "still relayed: redialling a member through the mailbox for another hole punch");
                }
                Err(e) => {
                    debug!(peer = %short(&peer), error = %e, "could not redial a member for a hole punch")
                }
            }
        }
    }

    /// A connection with `peer` stood: for a proven member, a relayed one is a new hole-punch
    /// round (DCUtR tries on it), and one this node dialled for a retry may replace the older
    /// relayed ones through the same relay (see [`Supersede`]); a direct one ends the retries.
    fn punch_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
        via: Option<PeerId>,
    ) {
        let retry = self.punch.dials.remove(&connection).is_some();
        if self.swarm.behaviour().gate.member_of(&peer).is_none() {
            return;
        }
        let now = Instant::now();
        let Some(relay) = via else {
            let quic = endpoint
                .get_remote_address()
                .iter()
                .any(|p| matches!(p, Protocol::QuicV1));
            debug!(peer = %short(&peer), transport = if quic { "quic" } else { "tcp" }, "direct connection with a member");
            self.punch.policy.direct(&peer);
            return;
        };
        self.punch.policy.round_started(peer, now);
        if retry {
            self.punch
                .superseding
                .retry_connected(connection, peer, relay, now);
        }
    }

    /// Close the relayed connections that go through the relay at `peer`.
    fn close_circuits_through(&mut self, peer: PeerId) {
        let through: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, (_, via))| *via == Some(peer))
            .map(|(c, _)| *c)
            .collect();
        for connection in through {
            self.swarm.close_connection(connection);
        }
    }

    /// Tell connected members who were just removed: push them the membership ops and keep
    /// them connected (but out of gossip) until they answer, so that their node knows it was
    /// removed rather than only finding itself disconnected.
    fn bid_farewells(&mut self) {
        let removed = self.removed_peers();
        for peer in removed {
            if !self.swarm.is_connected(&peer) || !self.farewells.should_tell(peer) {
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
            self.farewells.sent(peer, id, Instant::now());
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
        let keep: HashSet<PeerId> = self.farewells.peers().collect();
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
        if let Some(peer) = self.mailbox_farewells.answered(request_id) {
            self.drop_mailbox_peer(peer);
            return true;
        }
        if self.farewells.answered(request_id).is_none() {
            return false;
        }
        self.update_gate();
        true
    }

    fn publish(&mut self, item: &WireItem) {
        if item.kind == SetKind::Envelopes {
            hop::mark(hop::Stage::Published);
        }
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
        self.sync.clear();
        self.strikes.clear();
        self.farewells.clear();
        let dialled: Vec<Multiaddr> = self.dialled.drain().flat_map(|(_, a)| a).collect();
        self.dial.clear_connected(&dialled);
        self.listening.clear();
        self.built_on = None;
        self.announced = None;
        self.synced_once = false;
        self.mailbox_dials.clear();
        self.admissions.clear();
        self.admission_connections.clear();
        self.replacing.clear();
        self.relayed.clear();
        self.connections.clear();
        self.budget.forget_dials();
        self.nat = NatProbe::Unknown;
        self.mailboxes.reset(Instant::now());
        self.mailbox_farewells.clear();
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
        self.strikes.handle_timeout(now);
        if !self.farewells.handle_timeout(now).is_empty() {
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
        self.drop_relayed_after_punch(now);
        self.retry_hole_punches(now);
        let networks = self.networks().unwrap_or_default();
        // A member this node has a direct connection with already (whoever dialled) is not
        // dialled again at its announced addresses: every such dial was a TCP and Noise
        // handshake, a hello and a sync session for a connection that closes again
        // (docs/BENCHMARKS.md, "Issue 12: propagation (branch `prop`)").
        let (connected, direct) = self.member_connections();
        // Members' announced addresses are dialled only for the members the connection budget
        // picks, and for members connected only through a relay (a direct path to one of them
        // adds no member). Addresses the user gave are dialled whatever the budget says, even
        // if a member announces them too; the invite's are not announced (or, once a member
        // announces one, count as announced).
        let waiting: Vec<Multiaddr> = self
            .dial
            .waiting(now, crate::replica::now(), &networks)
            .cloned()
            .collect();
        let candidates = waiting
            .iter()
            .filter_map(|addr| self.announcers.get(addr))
            .flatten()
            .copied();
        let drawn = self.budget.choose(now, &connected, candidates);
        let allowed: HashSet<MemberId> = drawn
            .iter()
            .chain(connected.difference(&direct))
            .copied()
            .collect();
        let given: HashSet<&Multiaddr> = waiting
            .iter()
            .filter(|addr| !self.dial.is_announced(addr))
            .collect();
        let announcers = &self.announcers;
        let reached = |addr: &Multiaddr| {
            announcers.get(addr).is_some_and(|members| {
                members.iter().all(|m| direct.contains(m))
                    || (!given.contains(addr) && !members.iter().any(|m| allowed.contains(m)))
            })
        };
        let due = self
            .dial
            .due_except(now, crate::replica::now(), &networks, reached);
        let mut went: HashSet<MemberId> = HashSet::new();
        for addr in due {
            let relayed = is_relayed(&addr);
            // Through a mailbox only once it admitted this node (the relay serves nobody else,
            // and the relay client would otherwise dial it on its own).
            if relay_of(&addr).is_some_and(|relay| {
                !self.swarm.behaviour().gate.has_member_connection(&relay)
                    || self.swarm.behaviour().gate.mailbox_of(&relay).is_none()
            }) {
                continue;
            }
            // A member's relayed address names its transport id: with a connection to that id
            // already (it dialled us first, or a hole-punched one), another through the relay
            // would only cross the first one's hello or outlive the direct one.
            if circuit_target(&addr).is_some_and(|peer| self.swarm.is_connected(&peer)) {
                continue;
            }
            let members = self.announcers.get(&addr).cloned().unwrap_or_default();
            if let Err(e) = self.swarm.dial(addr) {
                debug!(relayed, error = %e, "could not dial a member's address");
            } else {
                debug!(relayed, "dialling a member's address");
                went.extend(members);
            }
        }
        // Members drawn whose every address was skipped above hold no place on their way.
        self.budget
            .not_dialled(drawn.into_iter().filter(|m| !went.contains(m)));
        for peer in self.mailbox_farewells.handle_timeout(now) {
            self.drop_mailbox_peer(peer);
        }
        self.tend_mailboxes(now);
        let connected: Vec<PeerId> = self.member_peers().collect();
        let unconfirmed = self.replica.has_unconfirmed_posts();
        if let Some(peer) = self.sync.handle_timeout(now, &connected, unconfirmed) {
            self.start_sync(peer);
        }
    }

    /// The members connected (each proven in a hello), and those among them with a direct
    /// (not relayed) connection.
    fn member_connections(&self) -> (BTreeSet<MemberId>, BTreeSet<MemberId>) {
        let gate = &self.swarm.behaviour().gate;
        let mut connected = BTreeSet::new();
        let mut direct = BTreeSet::new();
        for (peer, via) in self.connections.values() {
            if let Some(member) = gate.member_of(peer) {
                connected.insert(member);
                if via.is_none() {
                    direct.insert(member);
                }
            }
        }
        (connected, direct)
    }

    /// Dial the mailboxes due, and sync with the admitted ones every
    /// [`MAILBOX_SYNC_INTERVAL`].
    fn tend_mailboxes(&mut self, now: Instant) {
        // A moderator chose these addresses: the dial policy's network rule applies to them as
        // to members' announced ones (review finding 6).
        let networks = self.networks();
        let changed = self
            .dial
            .set_roster_mailboxes(self.mailboxes.addresses(), networks.as_ref());
        if changed {
            let entries: Vec<(String, String)> = self
                .dial
                .roster_networks()
                .into_iter()
                .map(|(a, n)| (a.to_string(), n.to_text()))
                .collect();
            if let Err(e) = self.replica.set_mailbox_networks(&entries) {
                warn!(error = %e, "could not store the mailbox addresses' networks");
            }
        }
        let networks = networks.unwrap_or_default();
        let dial = &self.dial;
        let due = self
            .mailboxes
            .due(now, |a| dial.may_dial_mailbox(a, &networks));
        for (id, addr) in due {
            let opts = DialOpts::unknown_peer_id().address(addr).build();
            let connection = opts.connection_id();
            // Only this connection carries the mailbox admission.
            self.swarm.behaviour_mut().dialling_mailbox(connection);
            match self.swarm.dial(opts) {
                Ok(()) => {
                    self.mailbox_dials.insert(connection, id);
                }
                Err(e) => {
                    debug!(error = %e, "could not dial a mailbox");
                    self.mailboxes.failed(&id, now);
                }
            }
        }
        for peer in self.mailboxes.admitted_peers() {
            let replacing = self.replacing.values().any(|p| *p == peer)
                || self.admission_connections.contains_key(&peer);
            if !replacing && self.swarm.behaviour().gate.has_member_connection(&peer) {
                self.reserve_on(peer);
            }
        }
        for peer in self.mailboxes.sync_due(now, MAILBOX_SYNC_INTERVAL) {
            if self.swarm.behaviour().gate.has_member_connection(&peer) {
                self.start_sync(peer);
            }
        }
    }

    /// Start a sync session with `peer`, or queue it behind the one running: sessions run one
    /// at a time so a node reconnecting to several members does not fetch everything twice.
    fn start_sync(&mut self, peer: PeerId) {
        if self.replica.membership().is_none() || self.sync.request(peer) != Start::Now {
            return;
        }
        let (session, step) = Session::start(&mut self.replica);
        if let Step::Send(request) = step {
            let id = self.swarm.behaviour_mut().request(&peer, request);
            self.sessions.insert(id, (peer, session));
            self.sync.started(peer);
            debug!(peer = %short(&peer), "sync started");
        }
    }

    /// A session with `peer` ended (done, failed or disconnected): start the next queued one.
    fn session_ended(&mut self, peer: PeerId) {
        let gate = &self.swarm.behaviour().gate;
        if let Some(next) = self.sync.ended(&peer, |p| gate.has_member_connection(p)) {
            self.start_sync(next);
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<NetEvent>) {
        if !matches!(
            event,
            SwarmEvent::Behaviour(
                NetEvent::Gossip(gossipsub::Event::Message { .. }) | NetEvent::Ping(_)
            )
        ) {
            // Anything else may read or write the store (a sync request or answer, a hello, a
            // peer gone): received posts' held writes first (`on_gossip` sees to gossip; a
            // ping's result only tells the hole punch that a connection carries traffic).
            self.write_held();
        }
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                // Relayed addresses are the mailboxes' (see `relayed`), not this node's own.
                if is_relayed(&address) {
                    return;
                }
                self.listening.push(address);
                // Never the address itself: logs must not reveal where members are.
                info!(addresses = self.listening.len(), "listening");
                let listening: Vec<String> =
                    self.listening.iter().map(ToString::to_string).collect();
                if let Err(e) = self.replica.set_listen_addresses(&listening) {
                    warn!(error = %e, "could not remember listen addresses");
                }
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                // A reservation that ended (or never came): asked for again by the next tick.
                self.relayed.retain(|_, (_, l)| *l != listener_id);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| *a != address);
                info!(
                    addresses = self.listening.len(),
                    "stopped listening on an address"
                );
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                // An inbound circuit's remote address is only `/p2p/SRC`: its relay is in the
                // local address (`…/p2p/RELAY/p2p-circuit`).
                let via = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => relay_of(address),
                    ConnectedPoint::Listener { local_addr, .. } => relay_of(local_addr),
                };
                self.connections.insert(connection_id, (peer_id, via));
                self.punch_connected(peer_id, connection_id, &endpoint, via);
                self.on_connected(peer_id, connection_id, &endpoint);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                // Not the address: logs must not reveal where members are.
                if let libp2p::swarm::DialError::Transport(errors) = &error {
                    for (addr, e) in errors {
                        debug!(relayed = is_relayed(addr), error = ?e, "a dial failed");
                    }
                } else {
                    debug!(kind = dial_error_kind(&error), "a dial failed");
                }
                self.punch.dials.remove(&connection_id);
                if let Some(id) = self.mailbox_dials.remove(&connection_id) {
                    debug!("a mailbox could not be reached");
                    self.mailboxes.failed(&id, Instant::now());
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ref cause,
                ..
            } if num_established > 0 => {
                self.punch.superseding.closed(&connection_id);
                if let Some((_, via)) = self.connections.remove(&connection_id) {
                    debug!(peer = %short(&peer_id), relayed = via.is_some(), left = num_established, ?cause, "a connection closed");
                }
                if self.replacing.remove(&connection_id).is_some() {
                    self.reserve_on(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                debug!(peer = %short(&peer_id), "disconnected");
                self.connections.remove(&connection_id);
                self.punch.superseding.closed(&connection_id);
                self.replacing.remove(&connection_id);
                self.admissions.remove(&peer_id);
                self.admission_connections.remove(&peer_id);
                if self
                    .mailboxes
                    .disconnected(&peer_id, Instant::now())
                    .is_some()
                {
                    info!(peer = %short(&peer_id), "mailbox disconnected");
                    if let Some((_, listener)) = self.relayed.remove(&peer_id) {
                        self.swarm.remove_listener(listener);
                    }
                    self.swarm
                        .behaviour_mut()
                        .gate
                        .inner
                        .autonat
                        .inner
                        .remove_server(&peer_id);
                }
                self.hellos.remove(&peer_id);
                self.unproven.remove(&peer_id);
                if let Some(addrs) = self.dialled.remove(&peer_id) {
                    self.dial.clear_connected(&addrs);
                }
                self.sessions.retain(|_, (p, _)| *p != peer_id);
                let gate = &self.swarm.behaviour().gate;
                if let Some(next) = self
                    .sync
                    .disconnected(&peer_id, |p| gate.has_member_connection(p))
                {
                    self.start_sync(next);
                }
                self.farewells.disconnected(&peer_id);
                self.mailbox_farewells.disconnected(&peer_id);
                self.punched.remove(&peer_id);
                self.hello_connections.remove(&peer_id);
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
                    self.sync.inbound(peer, Instant::now());
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
                    let from_mailbox = self.swarm.behaviour().gate.mailbox_of(&peer).is_some();
                    let served = sync::serve_from(&mut self.replica, member, &request);
                    if served.misbehaved && from_mailbox {
                        // Items a mailbox forwards are its members' (it cannot check them):
                        // refused, never held against the mailbox.
                        debug!(peer = %short(&peer), "refused items a mailbox forwarded");
                    } else if served.misbehaved {
                        self.strike(peer);
                    } else {
                        if let Some(member) = member {
                            self.stats.synced_with.insert(member, now());
                        }
                    }
                    if served.changed {
                        self.sync.outcome(true);
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
                    if !self.sessions.contains_key(&request_id)
                        && self.swarm.behaviour().gate.mailbox_of(&peer).is_some()
                    {
                        return self.on_mailbox_ack(&response);
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
                if matches!(
                    error,
                    request_response::OutboundFailure::UnsupportedProtocols
                ) && self.swarm.behaviour().gate.mailbox_of(&peer).is_some()
                {
                    // The mailbox did not give this connection its services (it was opened
                    // while the mailbox still counted an older one): start over.
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                self.farewell_done(request_id);
                if self.sessions.remove(&request_id).is_some() {
                    self.session_ended(peer);
                }
            }
            NetEvent::Hello(event) => self.on_hello(event),
            NetEvent::Mailbox(event) => self.on_admission(event),
            NetEvent::Relay(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => self.on_reserved(relay_peer_id, renewal),
            NetEvent::Relay(event) => debug!(?event, "relay"),
            NetEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => match result {
                Ok(_) => {
                    self.stats.hole_punches += 1;
                    self.punched.insert(remote_peer_id, Instant::now());
                    self.punch.policy.direct(&remote_peer_id);
                    info!(peer = %short(&remote_peer_id), "hole punched: direct connection with a member");
                }
                Err(e) => {
                    self.stats.hole_punch_failures += 1;
                    self.punch.policy.failed(remote_peer_id, Instant::now());
                    debug!(peer = %short(&remote_peer_id), error = %e, "hole punching failed; staying relayed, retried later");
                }
            },
            NetEvent::Autonat(event) => self.on_autonat(&event),
            NetEvent::Ping(ping::Event {
                connection,
                result: Ok(_),
                ..
            }) => self.punch.superseding.carried(connection),
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

    /// Validate, forward, persist: the verdict goes to gossipsub as soon as the envelope's
    /// checks are done (an accepted item is forwarded at once, a rejected one counts against the
    /// peer's gossip score), then the item is written to the store and watchers hear of it;
    /// the group commit makes it durable off the loop.
    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, data: &[u8]) {
        self.stats.bytes_received += data.len() as u64;
        let Some(item) = WireItem::decode(data) else {
            debug!(peer = %short(&source), "undecodable gossip rejected");
            self.stats.rejected += 1;
            self.swarm
                .behaviour_mut()
                .report_validation(&id, &source, MessageAcceptance::Reject);
            return;
        };
        let alert = item.kind == SetKind::Envelopes;
        if alert {
            hop::mark(hop::Stage::GossipIn);
        }
        let (outcome, writes) = self.replica.validate(&item);
        if alert {
            hop::mark(hop::Stage::Validated);
        }
        let verdict = match &outcome {
            Ingested::Accepted => MessageAcceptance::Accept,
            Ingested::Held => MessageAcceptance::Ignore,
            Ingested::Rejected(reason) => {
                debug!(peer = %short(&source), reason = %reason, "gossip rejected");
                self.stats.rejected += 1;
                MessageAcceptance::Reject
            }
            Ingested::Duplicate | Ingested::Ignored(_) => MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .report_validation(&id, &source, verdict);
        if alert {
            hop::mark(hop::Stage::Reported);
        }
        // An accepted post is shown now and written by `write_held` once the loop has let the
        // forward go out; anything else is written now.
        let stored = match outcome {
            Ingested::Accepted if alert => {
                self.replica.hold_post_writes(true);
                let accepted = self.replica.accept_post(writes);
                self.replica.hold_post_writes(false);
                accepted
            }
            _ => {
                // Not an accepted alert: any writes go after those still held, in order.
                self.write_held();
                self.replica.persist(writes)
            }
        };
        if let Err(e) = stored {
            warn!(error = %e, "storing gossip failed");
            return;
        }
        if alert && !self.replica.holds_writes() {
            hop::mark(hop::Stage::Stored);
        }
        if outcome == Ingested::Accepted {
            // Something new is moving: periodic syncs go back to their base interval.
            self.sync.outcome(true);
        }
        match outcome {
            Ingested::Accepted if alert => {
                self.commit.wrote_received_post(tokio::time::Instant::now())
            }
            Ingested::Accepted => self.commit.wrote(),
            Ingested::Held => self.start_sync(source),
            _ => {}
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
                self.sync.outcome(!session.found_nothing());
                self.stats.syncs += 1;
                self.stats.last_sync = Some(now());
                if let Some(member) = self.swarm.behaviour().gate.member_of(&peer) {
                    self.stats.synced_with.insert(member, now());
                }
                self.mailboxes.synced(&peer, now());
                if self.mailboxes.is_provisional(&peer) {
                    // It has the ops now, so it can bind; a new admission gets every service.
                    info!(peer = %short(&peer), "synced a mailbox that was not bound yet; reconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                debug!(peer = %short(&peer), accepted = session.accepted, bytes = session.bytes_received, "sync done");
                let with_member = self.swarm.behaviour().gate.member_of(&peer).is_some();
                self.after_first_sync(with_member && session.pushed_everything());
            }
            Step::Abort(reason) => {
                self.session_ended(peer);
                debug!(peer = %short(&peer), reason = %reason, "sync aborted");
                // A mailbox cannot open envelopes, so it cannot tell a member's bad item from
                // a good one: it never gets strikes for items this node refuses.
                if self.swarm.behaviour().gate.mailbox_of(&peer).is_none() {
                    self.strike(peer);
                }
            }
        }
    }

    /// After a complete sync with some peer: tell the members where this node can be reached;
    /// our own posts (made offline, say) have reached that peer, so gossip them once to the rest
    /// of the mesh and forget the outbox. (Announcing first: the hint is gossiped with the rest
    /// and does not sit in the outbox as an "unsent" post of the person until the next sync.)
    ///
    /// Only a sync with a *member* empties the outbox: a mailbox cannot open what it holds, and
    /// a hostile one could say it has an alert (in the reconciliation, or by acknowledging a
    /// push) and drop it. The alert then stays "unsent" and goes out again at the next sync
    /// with a member (`a_mailbox_ack_is_not_delivery`). Nor does a session that stopped
    /// pushing because the member was getting the posts from someone else
    /// ([`Session::pushed_everything`]): ours may have been among the ones left.
    ///
    /// `delivered`: the session was with a member and pushed it everything it lacked.
    fn after_first_sync(&mut self, delivered: bool) {
        self.synced_once = true;
        self.announce_reachability();
        for item in self.replica.outbox() {
            self.publish(&item);
        }
        if !delivered {
            return;
        }
        if let Err(e) = self.replica.clear_outbox() {
            warn!(error = %e, "could not clear the outbox");
        }
    }

    /// A mailbox answered a push: it stored the items or refused some. Either way nothing is
    /// delivered to a member yet, so the outbox is left as it is (see `after_first_sync`).
    fn on_mailbox_ack(&mut self, response: &[u8]) {
        if let Some(sync::SyncResponse::Ack { accepted, rejected }) = sync::decode(response) {
            debug!(accepted, rejected, "a mailbox took a push");
        }
    }

    /// The transport ids of the members connected now (proven by their hello).
    fn member_peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.swarm
            .behaviour()
            .gate
            .members_connected()
            .map(|(p, _)| p)
    }

    /// Post where this node can be reached, for members only: its relayed addresses (on the
    /// mailboxes) first, then its own. Again whenever they change (a reservation won or lost).
    fn announce_reachability(&mut self) {
        if !self.synced_once {
            return;
        }
        let mut addresses: Vec<String> =
            self.relayed.values().map(|(a, _)| a.to_string()).collect();
        addresses.sort();
        addresses.extend(
            self.listening
                .iter()
                .filter(|a| is_dialable(a))
                .map(ToString::to_string),
        );
        if addresses.is_empty() || self.announced.as_ref() == Some(&addresses) {
            return;
        }
        self.announced = Some(addresses.clone());
        if let Err(e) = self.replica.announce_reachability(&addresses) {
            debug!(error = %e, "reachability not announced");
        }
        if self.replica.take_unflushed() {
            self.commit.wrote();
        }
    }

    /// A connection to a mailbox's address is up: start the admission (see
    /// [`crate::net::mailbox_admission`]). Nothing about this member is sent before the
    /// mailbox proved it is the one the roster names.
    fn start_admission(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        mailbox: [u8; 32],
        endpoint: &ConnectedPoint,
    ) {
        if !self.mailboxes.contains(&mailbox) {
            self.swarm.close_connection(connection);
            return;
        }
        self.mailboxes.connected(&mailbox, peer);
        self.admission_connections.insert(peer, connection);
        let addr = without_p2p(endpoint.get_remote_address());
        let local = *self.swarm.local_peer_id();
        let (state, open) = MailboxDialer::start(local, peer, random_nonce());
        self.swarm.behaviour_mut().mailbox_request(&peer, open);
        self.admissions.insert(
            peer,
            Admission {
                mailbox,
                addr,
                state,
            },
        );
        debug!(peer = %short(&peer), ?connection, "mailbox connected; admission");
    }

    /// A further connection with an admitted mailbox (it carries sync, identify and AutoNAT):
    /// close the admission connection, then reserve a relayed address once it is gone; sync.
    fn mailbox_connected(&mut self, peer: PeerId, connection: ConnectionId) {
        debug!(peer = %short(&peer), ?connection, "connected to an admitted mailbox");
        // The relay client reserves on the first connection it knows with the relay: never
        // the admission connection, which the mailbox gives no relay.
        match self.admission_connections.remove(&peer) {
            Some(c) if self.connections.contains_key(&c) => {
                self.replacing.insert(c, peer);
                self.swarm.close_connection(c);
            }
            _ => self.reserve_on(peer),
        }
        let behaviour = self.swarm.behaviour_mut();
        // A mailbox has no part in gossip: it gets items by sync and push only.
        behaviour.gate.inner.gossipsub.blacklist_peer(&peer);
        let addr = self
            .mailboxes
            .by_peer(&peer)
            .and_then(|id| self.mailboxes.get(&id))
            .and_then(|l| l.address.clone());
        self.swarm
            .behaviour_mut()
            .gate
            .inner
            .autonat
            .inner
            .add_server(peer, addr);
        self.start_sync(peer);
    }

    /// A connection with the admitted mailbox at `peer` over the other transport than
    /// `admitted_at` (QUIC if that was TCP, and the reverse), if the roster gives one: the
    /// addresses the mailbox observes (identify) are the only ones DCUtR offers a member
    /// hole-punching with this node, so with one transport only, a member could punch over
    /// that one only. TCP's punch (a simultaneous open) fails while either NAT still holds
    /// the entry of an earlier failed one (minutes), QUIC's does not (seen in the NAT suite:
    /// `hole_punching_is_retried_after_dcutr_gives_up`).
    fn dial_other_transport(&mut self, peer: PeerId, mailbox: &[u8; 32], admitted_at: &Multiaddr) {
        let quic = |a: &Multiaddr| a.iter().any(|p| matches!(p, Protocol::QuicV1));
        let networks = self.networks().unwrap_or_default();
        let other = self.mailboxes.get(mailbox).and_then(|link| {
            link.addresses
                .iter()
                .find(|a| quic(a) != quic(admitted_at) && self.dial.may_dial_mailbox(a, &networks))
                .cloned()
        });
        if let Some(addr) = other {
            let _ = self.swarm.dial(
                DialOpts::peer_id(peer)
                    .addresses(vec![addr])
                    .condition(PeerCondition::Always)
                    .build(),
            );
        }
    }

    /// The roster mailbox `addr` belongs to.
    fn mailbox_at(&self, addr: &Multiaddr) -> Option<[u8; 32]> {
        roster_mailboxes(&self.replica)
            .into_iter()
            .find(|(_, addresses)| addresses.contains(addr))
            .map(|(id, _)| id)
    }

    /// Ask the mailbox at `peer` to relay for this node.
    fn reserve_on(&mut self, peer: PeerId) {
        // A mailbox not bound yet relays nothing; the node reconnects once it has synced.
        if self.relayed.contains_key(&peer) || self.mailboxes.is_provisional(&peer) {
            return;
        }
        let Some(addr) = self
            .mailboxes
            .by_peer(&peer)
            .and_then(|id| self.mailboxes.get(&id))
            .and_then(|l| l.address.clone())
        else {
            return;
        };
        let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                let local = *self.swarm.local_peer_id();
                self.relayed
                    .insert(peer, (circuit.with(Protocol::P2p(local)), listener));
            }
            Err(e) => warn!(error = %e, "could not ask a mailbox for a relay reservation"),
        }
    }

    /// The mailbox at `peer` relays for this node.
    fn on_reserved(&mut self, peer: PeerId, renewal: bool) {
        self.mailboxes.reserved(&peer, now());
        if !renewal {
            info!(peer = %short(&peer), "relay reservation accepted by a mailbox");
            self.announce_reachability();
        }
    }

    /// AutoNAT concluded something (or refreshed its conclusion).
    fn on_autonat(&mut self, event: &autonat::Event) {
        if let autonat::Event::StatusChanged { new, .. } = event {
            info!(status = nat_word(new), "NAT status changed");
        }
        let status = self.swarm.behaviour().gate.inner.autonat.inner.nat_status();
        self.nat = match status {
            autonat::NatStatus::Public(_) => NatProbe::Public { at: now() },
            autonat::NatStatus::Private => NatProbe::Private { at: now() },
            autonat::NatStatus::Unknown => NatProbe::Unknown,
        };
    }

    /// An answer of the mailbox admission (or its failure).
    fn on_admission(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        let (peer, response) = match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => (peer, Some(response)),
            request_response::Event::OutboundFailure { peer, .. } => (peer, None),
            // A mailbox never asks a member anything on this protocol.
            _ => return,
        };
        let Some(admission) = self.admissions.get_mut(&peer) else {
            return;
        };
        let mailbox = admission.mailbox;
        let Some(response) = response else {
            self.admissions.remove(&peer);
            self.mailboxes.failed(&mailbox, Instant::now());
            self.close_admission(peer);
            return;
        };
        let step = if admission.state.mailbox().is_none() {
            // The mailbox's `Accept`: name ourselves only to the mailbox the roster names (the
            // one this address belongs to), and only if it proved its key.
            let Some(log) = self.replica.membership() else {
                self.admissions.remove(&peer);
                self.mailboxes.failed(&mailbox, Instant::now());
                self.close_admission(peer);
                return;
            };
            let signing =
                ed25519_dalek::SigningKey::from_bytes(&self.replica.identity().ed25519_seed());
            // Kept by `mailbox add` on this device: only then can an unbound mailbox be bound.
            let bind_secret = self
                .replica
                .mailbox_bind_secret(&lookout_protocol::MailboxId(mailbox));
            match admission.state.on_accept(
                &signing,
                log.collective(),
                log.genesis().encoded(),
                bind_secret.as_deref(),
                &response,
                |id| *id == mailbox,
            ) {
                Ok(prove) => Ok(Some(prove)),
                Err(e) => Err(e),
            }
        } else {
            admission.state.on_verdict(&response).map(|welcome| {
                if welcome == Welcome::Provisional {
                    self.mailboxes.provisional(&mailbox);
                }
                None
            })
        };
        match step {
            Ok(Some(next)) => {
                self.swarm.behaviour_mut().mailbox_request(&peer, next);
            }
            Ok(None) => {
                let Some(admission) = self.admissions.remove(&peer) else {
                    return;
                };
                info!(peer = %short(&peer), "admitted by a mailbox");
                self.mailboxes.admitted(&mailbox);
                self.swarm.behaviour_mut().admit_mailbox(peer, mailbox);
                // A fresh connection carries sync, relay, identify and AutoNAT; the admission
                // connection is closed once it is up.
                let _ = self.swarm.dial(
                    DialOpts::peer_id(peer)
                        .addresses(vec![admission.addr.clone()])
                        .condition(PeerCondition::Always)
                        .build(),
                );
                self.dial_other_transport(peer, &mailbox, &admission.addr);
            }
            Err(e) => {
                self.admissions.remove(&peer);
                if matches!(e, AdmissionError::NoBindSecret) {
                    // Not bound yet: the node of the moderator who added it binds it soon (it
                    // holds the bind secret), so try again as after a failed dial, not after
                    // a refusal.
                    debug!(peer = %short(&peer), "a mailbox is not bound yet; trying again soon");
                    self.mailboxes.failed(&mailbox, Instant::now());
                    self.close_admission(peer);
                    return;
                }
                warn!(peer = %short(&peer), error = %e, "a mailbox refused this member or failed to prove itself");
                self.mailboxes.refused(&mailbox, Instant::now());
                self.close_admission(peer);
            }
        }
    }

    /// Dial targets from the addresses current members announced (kept across restarts,
    /// encrypted); the policy keeps only recent ones and private ones learnt on this network.
    fn learn_member_addresses(&mut self) {
        let announced: Vec<(Multiaddr, u64, MemberId)> = self
            .replica
            .member_addresses()
            .into_iter()
            .flat_map(|(member, at, addresses)| {
                addresses
                    .into_iter()
                    .filter_map(|a| a.parse::<Multiaddr>().ok())
                    .filter(is_dialable)
                    .map(move |a| (without_p2p(&a), at, member))
            })
            .collect();
        self.announcers.clear();
        for (addr, _, member) in &announced {
            self.announcers
                .entry(addr.clone())
                .or_default()
                .push(*member);
        }
        let announcing: HashSet<MemberId> = announced.iter().map(|(_, _, m)| *m).collect();
        self.budget.retain(|m| announcing.contains(m));
        let announced = announced.into_iter().map(|(addr, at, _)| (addr, at));
        let networks = self.networks();
        self.dial
            .set_announced(announced, networks.as_ref(), Instant::now());
    }

    /// The node's local networks, once it listens (unknown before). (Relayed addresses never
    /// enter `listening`.)
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

    fn on_connected(&mut self, peer: PeerId, connection: ConnectionId, endpoint: &ConnectedPoint) {
        // A mailbox: it proves itself in the mailbox admission, never in the member hello.
        let proven_member = self.swarm.behaviour().gate.member_of(&peer).is_some();
        if let Some(mailbox) = self.mailbox_dials.remove(&connection) {
            if proven_member {
                // The roster's address for this mailbox leads to a member's node: not a
                // mailbox. This connection closes, the member's others stay.
                warn!(peer = %short(&peer), "a mailbox's roster address leads to a member's node");
                self.mailboxes.refused(&mailbox, Instant::now());
                self.swarm.close_connection(connection);
                return;
            }
            return self.start_admission(peer, connection, mailbox, endpoint);
        }
        if self.swarm.behaviour().gate.mailbox_of(&peer).is_some() {
            return self.mailbox_connected(peer, connection);
        }
        // Another connection with a mailbox (the relay client dials its relay itself): never
        // the member hello (a mailbox cannot answer it, and a failed hello hangs up on the
        // peer), and never one the relay could pick without the mailbox's services.
        let at = match endpoint {
            ConnectedPoint::Dialer { address, .. } => Some(without_p2p(address)),
            ConnectedPoint::Listener { .. } => None,
        };
        let mailbox_address = at.as_ref().and_then(|a| self.mailbox_at(a));
        if !proven_member && (self.mailboxes.by_peer(&peer).is_some() || mailbox_address.is_some())
        {
            match mailbox_address {
                Some(id) if self.mailboxes.get(&id).is_some_and(|l| l.peer.is_none()) => {
                    return self.start_admission(peer, connection, id, endpoint);
                }
                _ => {
                    self.swarm.close_connection(connection);
                    return;
                }
            }
        }
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            let addr = without_p2p(address);
            self.dial.set_connected(&addr, true, Instant::now());
            let dialled = self.dialled.entry(peer).or_default();
            if !dialled.contains(&addr) {
                dialled.push(addr);
            }
        }
        if self.swarm.behaviour().gate.member_of(&peer).is_some() {
            // A connection with a proven member: it carries the collective's protocols.
            debug!(peer = %short(&peer), "member connected");
            self.unproven.remove(&peer);
            // The hello connections have done their work. The dialer of this one leaves them
            // (its close could reach us before this connection does, and a transport peer with
            // no connection left must prove itself again); we accepted it, so the dialer has
            // it already, and we close them: after crossed dials there are two, and with this
            // one they would fill the per-peer cap and leave no room for a hole-punched one.
            self.hellos.remove(&peer);
            let hello_connections = self.hello_connections.remove(&peer).unwrap_or_default();
            if !endpoint.is_dialer() {
                for c in hello_connections {
                    self.swarm.close_connection(c);
                }
            }
            // One session per new connection, run by the dialer: a session fetches and
            // pushes, so a second one from the listener would carry everything twice.
            if endpoint.is_dialer() {
                self.start_sync(peer);
            }
            return;
        }
        debug!(peer = %short(&peer), "connected; hello");
        self.hello_connections
            .entry(peer)
            .or_default()
            .push(connection);
        // Connections that have not proved anything yet are capped, so strangers holding them
        // open cannot crowd members out: the node's own dials have their own budget; inbound
        // ones are capped overall and per address (an IPv6 /64 counts as one), and a new one
        // evicts the oldest rather than being refused, so a flood only ever shortens the time
        // its own connections get, and a member's hello (a few round trips) still gets through.
        let bucket = hello_bucket(endpoint);
        let outgoing = endpoint.is_dialer();
        if !self.unproven.contains_key(&peer) {
            if outgoing {
                let own = self.unproven.values().filter(|u| u.outgoing).count();
                if own >= MAX_UNPROVEN_OUTGOING {
                    return self.hello_failed(peer, "too many own hellos at once");
                }
            } else {
                let victim = hello_victim(self.unproven.iter(), bucket.as_ref());
                if let Some(victim) = victim {
                    self.hello_failed(victim, "evicted by a newer connection without a proof");
                }
            }
        }
        self.unproven.entry(peer).or_insert_with(|| Unproven {
            since: Instant::now(),
            bucket,
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
                        crossed: false,
                        unanswered: None,
                    },
                );
            }
            ConnectedPoint::Listener { .. } => {
                let give_way = match self
                    .hellos
                    .entry(peer)
                    .or_insert(Hello::Listening(None, Unnamed::Nobody))
                {
                    Hello::Dialing {
                        crossed,
                        unanswered,
                        unnamed,
                        ..
                    } => {
                        debug!(peer = %short(&peer), "crossed dials: the peer dialled us too");
                        *crossed = true;
                        // Our `Open` was dropped already: give way now (see `on_hello`).
                        unanswered.is_some().then_some(*unnamed)
                    }
                    Hello::Listening(..) => None,
                };
                if let Some(unnamed) = give_way {
                    self.hellos.insert(peer, Hello::Listening(None, unnamed));
                }
            }
        }
    }

    /// Whether a member proved in a hello may connect: on the roster (or let in temporarily);
    /// or, while this device is still joining (its roster does not name it yet), the member an
    /// address may admit unnamed: the invite's inviter at an invite address, any member not
    /// known to be removed at an address the user gave (or from an invite naming nobody).
    fn hello_allowed(&self, member: &MemberId, unnamed: Unnamed) -> bool {
        hello_allowed(&self.swarm.behaviour().gate, &self.replica, member, unnamed)
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
            request_response::Event::OutboundFailure { peer, error, .. } => {
                let local = *self.swarm.local_peer_id();
                match self.hellos.get(&peer) {
                    // An older (or newer) Lookout: a clear version mismatch, not a proof that
                    // failed, and no crossed dial to wait for.
                    Some(Hello::Dialing { .. })
                        if matches!(
                            error,
                            request_response::OutboundFailure::UnsupportedProtocols
                        ) =>
                    {
                        self.hello_failed(
                            peer,
                            "the peer does not speak /lookout/hello/3 (another Lookout version)",
                        );
                    }
                    // Crossed dials: the peer dialled us too and dropped our `Open`. Wait for its
                    // `Open` as listener.
                    Some(Hello::Dialing {
                        unnamed,
                        crossed: true,
                        ..
                    }) if crossed_hello_yields(&local, &peer) => {
                        debug!(peer = %short(&peer), "hello unanswered, crossed dials: giving way, waiting for the peer's hello");
                        let unnamed = *unnamed;
                        self.hellos.insert(peer, Hello::Listening(None, unnamed));
                    }
                    // Maybe crossed dials whose other connection is not up here yet (the drop
                    // can overtake it: seen in `crossed_dials`): wait for it a short grace,
                    // then hang up (`end_crossed_waits`). No sign of it is no reason to wait.
                    Some(Hello::Dialing {
                        crossed: false,
                        unanswered: None,
                        ..
                    }) if crossed_hello_yields(&local, &peer) => {
                        debug!(peer = %short(&peer), "hello unanswered: waiting a moment for a crossed dial");
                        let now = Instant::now();
                        if let Some(Hello::Dialing { unanswered, .. }) = self.hellos.get_mut(&peer)
                        {
                            *unanswered = Some(now);
                        }
                        let at = tokio::time::Instant::from_std(now + CROSSED_GRACE);
                        self.crossed_wait_at = Some(self.crossed_wait_at.map_or(at, |t| t.min(at)));
                    }
                    Some(Hello::Dialing { .. }) => {
                        debug!(peer = %short(&peer), %error, "hello: no answer");
                        self.hello_failed(peer, "no answer");
                    }
                    _ => {}
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
        // Crossed dials: the peer dialled us while we dialled it, and both sent an `Open`.
        // One hello is enough: the one that gives way (see [`crossed_hello_yields`]) answers
        // this `Open` as listener; the other drops it and waits for the answer to its own.
        let local = *self.swarm.local_peer_id();
        if let Some(Hello::Dialing { unnamed, .. }) = self.hellos.get(&peer) {
            if !crossed_hello_yields(&local, &peer) {
                debug!(peer = %short(&peer), "crossed dials: keeping our hello, dropping theirs");
                return;
            }
            debug!(peer = %short(&peer), "crossed dials: giving way, answering the peer's hello");
            let unnamed = *unnamed;
            self.hellos.insert(peer, Hello::Listening(None, unnamed));
        }
        // Only a peer that dialled us runs the listener's side, once.
        let result = match self.hellos.get_mut(&peer) {
            Some(Hello::Listening(slot @ None, _)) => {
                let local = *self.swarm.local_peer_id();
                match Listener::on_open(&self.creds, local, peer, request, random_nonce()) {
                    Ok((state, accept)) => {
                        *slot = Some(state);
                        Ok(Some(accept))
                    }
                    Err(e) => Err(e),
                }
            }
            Some(Hello::Listening(Some(state), unnamed)) => {
                let unnamed = *unnamed;
                let proof = {
                    let (gate, replica) = (&self.swarm.behaviour().gate, &self.replica);
                    state.on_proof(&self.creds, request, |m| {
                        hello_allowed(gate, replica, m, unnamed)
                    })
                };
                match proof {
                    Ok((member, reply)) => {
                        self.hellos.remove(&peer);
                        self.unproven.remove(&peer);
                        let gate = &mut self.swarm.behaviour_mut().gate;
                        if !gate.is_allowed(&member) {
                            // Only after giving way in crossed dials (see `Unnamed`).
                            let _ = gate.allow_temporarily(member);
                        }
                        gate.admit(peer, member);
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

    /// Hang up on the peers whose `Open` went unanswered [`CROSSED_GRACE`] ago with no sign of
    /// a crossed dial since (see [`crossed_hello_yields`]).
    fn end_crossed_waits(&mut self) {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut late = Vec::new();
        for (peer, hello) in &self.hellos {
            if let Hello::Dialing {
                unanswered: Some(at),
                ..
            } = hello
            {
                let end = *at + CROSSED_GRACE;
                if end <= now {
                    late.push(*peer);
                } else {
                    next = Some(next.map_or(end, |n| n.min(end)));
                }
            }
        }
        self.crossed_wait_at = next.map(tokio::time::Instant::from_std);
        for peer in late {
            self.hello_failed(peer, "no answer");
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

    /// Count invalid sync data against the member behind `peer`; at [`crate::policy::strikes::MAX_STRIKES`] (strikes decay, see [`Strikes`]) every
    /// connection of that member (under any transport id) is closed.
    fn strike(&mut self, peer: PeerId) {
        let Some(member) = self.swarm.behaviour().gate.member_of(&peer) else {
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        match self.strikes.strike(member, Instant::now()) {
            Verdict::Counted(strikes) => {
                debug!(peer = %short(&peer), strikes, "invalid sync data");
            }
            Verdict::Disconnect => {
                warn!(peer = %short(&peer), "disconnecting a member that keeps sending invalid sync data");
                for p in self.swarm.behaviour().gate.peers_of(&member) {
                    let _ = self.swarm.disconnect_peer_id(p);
                }
            }
        }
    }
}

/// The address without its `/p2p/` part: transport identities change with every run, so a
/// peer id in an address is at best stale. A relayed address (`…/p2p/RELAY/p2p-circuit/p2p/
/// MEMBER`) is kept whole: the relay needs both ids, and it is valid for one run of its member
/// anyway.
pub fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    if is_relayed(addr) {
        return addr.clone();
    }
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

/// Sleeps until `at`, or forever when there is none.
async fn deadline(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether the device moved to another network: an interface address the swarm had is gone
/// and another one appeared. (Interfaces coming up one by one after start only add addresses;
/// losing the network altogether waits for the next one.)
fn network_changed(before: &Networks, now: &Networks) -> bool {
    !now.is_empty() && !before.is_subset(now) && !now.is_subset(before)
}

/// The peer a relayed address leads to (the `/p2p/` after `/p2p-circuit`).
fn circuit_target(addr: &Multiaddr) -> Option<PeerId> {
    let mut after_circuit = false;
    let mut target = None;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => after_circuit = true,
            Protocol::P2p(peer) if after_circuit => target = Some(peer),
            _ => {}
        }
    }
    target
}

/// The relay a relayed address goes through (the `/p2p/` before `/p2p-circuit`).
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

fn dial_error_kind(error: &libp2p::swarm::DialError) -> &'static str {
    use libp2p::swarm::DialError;
    match error {
        DialError::LocalPeerId { .. } => "local peer id",
        DialError::NoAddresses => "no addresses",
        DialError::DialPeerConditionFalse(_) => "condition",
        DialError::Aborted => "aborted",
        DialError::WrongPeerId { .. } => "wrong peer id",
        DialError::Denied { .. } => "denied",
        DialError::Transport(_) => "transport",
    }
}

fn nat_word(status: &autonat::NatStatus) -> &'static str {
    match status {
        autonat::NatStatus::Public(_) => "public",
        autonat::NatStatus::Private => "private",
        autonat::NatStatus::Unknown => "unknown",
    }
}

/// The roster's current mailboxes with their addresses (bare multiaddrs; bad ones skipped).
fn roster_mailboxes(replica: &Replica) -> Vec<([u8; 32], Vec<Multiaddr>)> {
    let Some(log) = replica.membership() else {
        return Vec::new();
    };
    log.roster()
        .mailboxes()
        .map(|m| {
            let addresses = m
                .addresses
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .filter(|a| !is_relayed(a))
                .map(|a| without_p2p(&a))
                .collect();
            (m.id.0, addresses)
        })
        .collect()
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

    /// Members behind one mailbox prove themselves over relayed connections, which carry no IP
    /// address (the relay client reports `/p2p/<source>` as the remote address): each source is
    /// its own peer and they count against their relay, with room for 16 at once, never against
    /// the mailbox's IP. A relay flooding hellos under fresh source ids (a hostile mailbox can)
    /// holds at most half of the room and then evicts its own oldest, not the direct hellos.
    #[test]
    fn relayed_hellos_count_against_their_relay_not_an_ip() {
        let relay = PeerId::random();
        let circuit: Multiaddr = format!("/ip4/198.18.0.10/tcp/4001/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        let relayed = |src: PeerId| ConnectedPoint::Listener {
            local_addr: circuit.clone(),
            send_back_addr: Multiaddr::empty().with(Protocol::P2p(src)),
        };
        let direct = |ip: &str| ConnectedPoint::Listener {
            local_addr: "/ip4/10.0.0.2/tcp/4001".parse().unwrap(),
            send_back_addr: format!("/ip4/{ip}/tcp/5555").parse().unwrap(),
        };
        assert_eq!(
            hello_bucket(&relayed(PeerId::random())),
            Some(HelloBucket::Relay(Some(relay)))
        );
        assert_eq!(
            hello_bucket(&direct("198.18.0.10")),
            Some(HelloBucket::Ip("198.18.0.10".parse().unwrap()))
        );
        let t0 = Instant::now();
        let mut unproven: HashMap<PeerId, Unproven> = HashMap::new();
        let arrive = |unproven: &mut HashMap<PeerId, Unproven>, endpoint, n: u64| {
            let bucket = hello_bucket(&endpoint);
            let victim = hello_victim(unproven.iter(), bucket.as_ref());
            if let Some(v) = victim {
                unproven.remove(&v);
            }
            let peer = PeerId::random();
            unproven.insert(
                peer,
                Unproven {
                    since: t0 + Duration::from_millis(n),
                    bucket,
                    outgoing: false,
                },
            );
            (peer, victim)
        };
        // A direct hello from elsewhere, and four from the mailbox's own IP (its cap).
        let (member_direct, _) = arrive(&mut unproven, direct("203.0.113.9"), 0);
        for n in 1..=4 {
            assert_eq!(arrive(&mut unproven, direct("198.18.0.10"), n).1, None);
        }
        // Twelve members behind the mailbox at once: nobody is evicted.
        let mut members = Vec::new();
        for n in 10..22 {
            let (peer, victim) = arrive(&mut unproven, relayed(PeerId::random()), n);
            assert_eq!(victim, None, "relayed hello {n} evicted someone");
            members.push(peer);
        }
        // A flood through the same relay: each new one evicts that relay's oldest only.
        for n in 100..164 {
            let (_, victim) = arrive(&mut unproven, relayed(PeerId::random()), n);
            assert_ne!(
                victim,
                Some(member_direct),
                "a relayed flood evicted a direct hello"
            );
        }
        assert!(unproven.contains_key(&member_direct));
        let through_relay = unproven
            .values()
            .filter(|u| matches!(u.bucket, Some(HelloBucket::Relay(_))))
            .count();
        assert_eq!(through_relay, MAX_UNPROVEN_PER_RELAY);
        assert_eq!(
            unproven
                .values()
                .filter(|u| matches!(u.bucket, Some(HelloBucket::Ip(_))))
                .count(),
            5
        );
    }

    /// Review 2 finding 9: the relayed-hello bucket is the relay's peer id. Two reservations on
    /// one relay (a TCP and a QUIC circuit address) share its 16 places; they do not get 16 each.
    #[test]
    fn one_relay_with_two_circuit_addresses_gets_16_places() {
        let relay = PeerId::random();
        let tcp: Multiaddr = format!("/ip4/198.18.0.10/tcp/4001/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        let quic: Multiaddr = format!("/ip4/198.18.0.10/udp/4001/quic-v1/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        let relayed = |local: &Multiaddr| ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: Multiaddr::empty().with(Protocol::P2p(PeerId::random())),
        };
        assert_eq!(
            hello_bucket(&relayed(&tcp)),
            hello_bucket(&relayed(&quic)),
            "two circuit addresses of one relay are one bucket"
        );
        let t0 = Instant::now();
        let mut unproven: HashMap<PeerId, Unproven> = HashMap::new();
        for n in 0..64u64 {
            let endpoint = relayed(if n % 2 == 0 { &tcp } else { &quic });
            let bucket = hello_bucket(&endpoint);
            if let Some(v) = hello_victim(unproven.iter(), bucket.as_ref()) {
                unproven.remove(&v);
            }
            unproven.insert(
                PeerId::random(),
                Unproven {
                    since: t0 + Duration::from_millis(n),
                    bucket,
                    outgoing: false,
                },
            );
        }
        assert_eq!(unproven.len(), MAX_UNPROVEN_PER_RELAY);
        // Another relay still has its own room.
        let other: Multiaddr = format!(
            "/ip4/198.18.0.11/tcp/4001/p2p/{}/p2p-circuit",
            PeerId::random()
        )
        .parse()
        .unwrap();
        let bucket = hello_bucket(&relayed(&other));
        assert_eq!(hello_victim(unproven.iter(), bucket.as_ref()), None);
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
        // A relayed address needs the relay's id and its member's.
        let relayed: Multiaddr = "/ip4/198.18.0.10/udp/4001/quic-v1/p2p/12D3KooWQJ3sYkzNyH8aKPhqgyaPCS5UQ4PjKgAW1Hs7pgWfJ6Bk/p2p-circuit/p2p/12D3KooWQJ3sYkzNyH8aKPhqgyaPCS5UQ4PjKgAW1Hs7pgWfJ6Bk"
            .parse()
            .unwrap();
        assert!(is_relayed(&relayed));
        assert_eq!(without_p2p(&relayed), relayed);
    }

    #[test]
    fn a_relayed_address_names_its_relay_and_its_target() {
        let (relay, target) = (PeerId::random(), PeerId::random());
        let relayed: Multiaddr =
            format!("/ip4/198.18.0.10/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{target}")
                .parse()
                .unwrap();
        assert_eq!(relay_of(&relayed), Some(relay));
        assert_eq!(circuit_target(&relayed), Some(target));
        let direct: Multiaddr = format!("/ip4/198.18.0.10/tcp/4001/p2p/{relay}")
            .parse()
            .unwrap();
        assert_eq!(circuit_target(&direct), None);
        // The two ends of crossed dials always agree on which one gives way.
        assert_ne!(
            crossed_hello_yields(&relay, &target),
            crossed_hello_yields(&target, &relay)
        );
    }
}
