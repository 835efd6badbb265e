//! A compromised member's tools: a raw libp2p swarm that holds a member's key and speaks
//! Lookout's gossip and sync protocols without any of its rules ([`RawPeer`]), and helpers that
//! craft correctly signed items with the protocol API — posts, membership ops, key deliveries —
//! from a member's offline replica ([`Forger`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, noise, tcp, yamux, Multiaddr, PeerId, SwarmBuilder};
use lookout_node::net::hello::{Dialer, Listener};
use lookout_node::net::{
    BytesCodec, Credentials, Gated, HelloCodec, MemberGate, HELLO_PROTOCOL, SYNC_PROTOCOL,
};
use lookout_node::replica::{Replica, SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest, SyncResponse};
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody, Opened};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::PublicIdentity;
use lookout_protocol::membership::{Action, Op};
use lookout_protocol::{CollectiveId, ContentId, EpochId, MemberId, OpId};
use rand::rngs::OsRng;
use tokio::sync::{mpsc, oneshot};

use crate::{connect, eventually, listen_addr, reopen, start_node, Collective, TestNode};

/// How long a raw sync request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a raw peer dials a node again after a dial failed, and how long it waits in
/// between. A node refuses a handshake while four others from the same IP address are in
/// theirs (`MAX_PENDING_INCOMING_PER_IP`), and in these tests every peer is 127.0.0.1: a raw
/// peer dialling while other nodes connect, or just after junk connections, is refused at first
/// and retries, as a node's dial policy does. (Found as an intermittent timeout, "the member's
/// key is admitted", in `hostile_peers`: the dial reset while three junk handshakes and a
/// member's were pending.)
const REDIALS: u32 = 20;
const REDIAL_AFTER: Duration = Duration::from_millis(250);

/// A raw swarm's dials, tried again after they fail (see [`REDIALS`]). In its event loop:
/// [`Redialer::dialling`] on each scripted dial, [`Redialer::failed`] on an
/// `OutgoingConnectionError`, [`Redialer::carried`] and [`Redialer::closed`] as connections
/// with the collective's protocols come and go, and `Some(addr) = redialer.due()` as a
/// `select!` branch that dials `addr`.
pub struct Redialer {
    /// The address the script gave for each node (with its `/p2p/`).
    addresses: HashMap<PeerId, Multiaddr>,
    /// Dials that failed since the script's.
    failures: HashMap<PeerId, u32>,
    /// Nodes with a connection that carries the collective's protocols.
    carried: HashSet<PeerId>,
    due_in: mpsc::UnboundedSender<PeerId>,
    due: mpsc::UnboundedReceiver<PeerId>,
}

impl Default for Redialer {
    fn default() -> Self {
        let (due_in, due) = mpsc::unbounded_channel();
        Self {
            addresses: HashMap::new(),
            failures: HashMap::new(),
            carried: HashSet::new(),
            due_in,
            due,
        }
    }
}

impl Redialer {
    /// The script dials `addr`.
    pub fn dialling(&mut self, addr: &Multiaddr) {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            self.addresses.insert(peer, addr.clone());
            self.failures.remove(&peer);
        }
    }

    /// A dial of `peer` failed: dial it again in a while, unless it failed too often.
    pub fn failed(&mut self, peer: PeerId) {
        let failed = self.failures.entry(peer).or_default();
        *failed += 1;
        tracing::debug!(%peer, failed = *failed, "raw peer: a dial failed");
        if self.addresses.contains_key(&peer) && *failed <= REDIALS {
            let due = self.due_in.clone();
            tokio::spawn(async move {
                tokio::time::sleep(REDIAL_AFTER).await;
                let _ = due.send(peer);
            });
        }
    }

    /// A connection with `peer` carries the collective's protocols.
    pub fn carried(&mut self, peer: PeerId) {
        self.carried.insert(peer);
    }

    /// The last connection with `peer` closed.
    pub fn closed(&mut self, peer: &PeerId) {
        self.carried.remove(peer);
    }

    /// The next address to dial again (cancel-safe, for `select!`).
    pub async fn due(&mut self) -> Option<Multiaddr> {
        loop {
            let peer = self.due.recv().await?;
            if !self.carried.contains(&peer) {
                if let Some(addr) = self.addresses.get(&peer) {
                    tracing::debug!(%peer, "raw peer: dialling again");
                    return Some(addr.clone());
                }
            }
        }
    }
}

/// A libp2p swarm holding a member's key that sends whatever it is told.
pub struct RawPeer {
    peer_id: PeerId,
    script: mpsc::Sender<Script>,
    seen: Mutex<(mpsc::UnboundedReceiver<Seen>, Vec<Seen>)>,
}

/// What the raw swarm saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A connection to the peer was established.
    Connected(PeerId),
    /// The last connection to the peer closed.
    Closed(PeerId),
    /// The peer subscribed to the collective's topic.
    Subscribed(PeerId),
    /// A gossip message arrived (the raw swarm validates nothing).
    Gossip(Vec<u8>),
}

enum Script {
    Dial(Multiaddr),
    Listen(oneshot::Sender<Multiaddr>),
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Request(PeerId, Vec<u8>, oneshot::Sender<Result<Vec<u8>, String>>),
}

#[derive(NetworkBehaviour)]
struct RawInner {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<BytesCodec>,
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    hello: request_response::Behaviour<HelloCodec>,
    gate: MemberGate<RawInner>,
}

/// The hello behaviour a raw swarm needs to prove a member's key to a node.
pub fn hello_behaviour() -> request_response::Behaviour<HelloCodec> {
    request_response::Behaviour::with_codec(
        HelloCodec::default(),
        [(HELLO_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
    )
}

/// Runs the dialer's side of `/lookout/hello/3` for a raw swarm, as a node would: on every
/// connection it dials, it proves `creds` (if any) and, once the node proved itself, admits
/// the node in the raw swarm's [`MemberGate`] and redials, so the second connection carries
/// the collective's protocols.
pub struct HelloDriver {
    creds: Option<Credentials>,
    pending: HashMap<PeerId, (Dialer, Multiaddr, ConnectionId)>,
    /// Hellos of peers that dialled us (the listener's side), `None` until their `Open`.
    listening: HashMap<PeerId, Option<Listener>>,
}

impl HelloDriver {
    /// A driver proving `creds`; `None` for a stranger who never says hello.
    pub fn new(creds: Option<Credentials>) -> Self {
        Self {
            creds,
            pending: HashMap::new(),
            listening: HashMap::new(),
        }
    }

    /// A connection was established. True if it carries the collective's protocols (the
    /// peer was proven before). The second value is always `None` (kept for callers that
    /// close a connection it names): the hello connection closes when idle, as a node's does.
    pub fn on_connected<B: NetworkBehaviour>(
        &mut self,
        swarm_local: PeerId,
        hello: &mut request_response::Behaviour<HelloCodec>,
        gate: &MemberGate<B>,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) -> (bool, Option<ConnectionId>) {
        if gate.member_of(&peer).is_some() {
            // The hello connection closes when idle, as a node's does.
            self.pending.remove(&peer);
            return (true, None);
        }
        if let (Some(creds), ConnectedPoint::Dialer { address, .. }) = (&self.creds, endpoint) {
            let (state, open) = Dialer::start(creds, swarm_local, peer, rand::random());
            hello.send_request(&peer, open);
            self.pending
                .insert(peer, (state, address.clone(), connection));
        } else if self.creds.is_some() {
            self.listening.entry(peer).or_insert(None);
        }
        (false, None)
    }

    /// A hello request from a peer that dialled us: answer as a member's node would, but admit
    /// whatever member proves itself (a secret holder does not care who the dialer is). Returns
    /// the answer to send, if any.
    pub fn on_request<B: NetworkBehaviour>(
        &mut self,
        local: PeerId,
        gate: &mut MemberGate<B>,
        peer: PeerId,
        request: &[u8],
    ) -> Option<Vec<u8>> {
        let creds = self.creds.as_ref()?;
        match self.listening.get_mut(&peer)? {
            slot @ None => {
                let (state, accept) =
                    Listener::on_open(creds, local, peer, request, rand::random()).ok()?;
                *slot = Some(state);
                Some(accept)
            }
            Some(state) => {
                let (member, reply) = state.on_proof(creds, request, |_| true).ok()?;
                self.listening.remove(&peer);
                gate.allow_temporarily(member).ok()?;
                gate.admit(peer, member);
                Some(reply)
            }
        }
    }

    /// A hello answer from `peer`. Returns where to redial once the node proved itself.
    pub fn on_response<B: NetworkBehaviour>(
        &mut self,
        hello: &mut request_response::Behaviour<HelloCodec>,
        gate: &mut MemberGate<B>,
        peer: PeerId,
        response: &[u8],
    ) -> Option<DialOpts> {
        let creds = self.creds.as_ref()?;
        let (state, addr, _) = self.pending.get_mut(&peer)?;
        if let Ok(proof) = state.on_accept(creds, response) {
            hello.send_request(&peer, proof);
            return None;
        }
        let member = state.on_proof(creds, response, |_| true).ok()?;
        gate.allow_temporarily(member).ok()?;
        gate.admit(peer, member);
        Some(
            DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build(),
        )
    }
}

impl RawPeer {
    /// Start a raw swarm proving `creds` (a member's key and collective; `None` for a stranger)
    /// with a fresh transport key, subscribed to `topic`. Must run inside tokio.
    pub fn spawn(creds: Option<Credentials>, topic: &str) -> Self {
        Self::spawn_with_key(creds, topic, Keypair::generate_ed25519())
    }

    /// [`RawPeer::spawn`] with a transport key of the caller's choice (an attacker picks its
    /// own, e.g. one whose peer id sorts before a node's).
    pub fn spawn_with_key(creds: Option<Credentials>, topic: &str, keypair: Keypair) -> Self {
        let gossip = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .max_transmit_size(1024 * 1024)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::new(&lookout_node::net::message_id(&m.data))
            })
            .heartbeat_interval(Duration::from_millis(200))
            .build()
            .unwrap();
        let mut gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip).unwrap();
        let topic = gossipsub::IdentTopic::new(topic);
        gossipsub.subscribe(&topic).unwrap();
        let sync = request_response::Behaviour::with_codec(
            BytesCodec::default(),
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        );
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| RawBehaviour {
                hello: hello_behaviour(),
                gate: MemberGate::new(RawInner { gossipsub, sync }, Default::default()),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let peer_id = *swarm.local_peer_id();
        let (script, mut commands) = mpsc::channel(64);
        let (report, seen) = mpsc::unbounded_channel();
        let mut driver = HelloDriver::new(creds);
        tokio::spawn(async move {
            let mut waiting: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>> =
                HashMap::new();
            let mut redialer = Redialer::default();
            let mut listen_reply: Option<oneshot::Sender<Multiaddr>> = None;
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        None => return,
                        Some(Script::Dial(addr)) => {
                            redialer.dialling(&addr);
                            let _ = swarm.dial(addr);
                        }
                        Some(Script::Listen(done)) => {
                            let _ = swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap());
                            listen_reply = Some(done);
                        }
                        Some(Script::Publish(data, done)) => {
                            let result = swarm
                                .behaviour_mut()
                                .gate
                                .inner
                                .gossipsub
                                .publish(topic.clone(), data)
                                .map(|_| ())
                                .map_err(|e| e.to_string());
                            let _ = done.send(result);
                        }
                        Some(Script::Request(peer, bytes, done)) => {
                            let id = swarm.behaviour_mut().gate.inner.sync.send_request(&peer, bytes);
                            waiting.insert(id, done);
                        }
                    },
                    Some(addr) = redialer.due() => { let _ = swarm.dial(addr); }
                    event = swarm.select_next_some() => {
                        let seen = match event {
                            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), .. } => {
                                redialer.failed(peer);
                                continue;
                            }
                            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                                let local = *swarm.local_peer_id();
                                let b = swarm.behaviour_mut();
                                let (member, old) = driver.on_connected(local, &mut b.hello, &b.gate, peer_id, connection_id, &endpoint);
                                if let Some(old) = old {
                                    swarm.close_connection(old);
                                }
                                if !member {
                                    continue;
                                }
                                redialer.carried(peer_id);
                                Seen::Connected(peer_id)
                            }
                            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                                redialer.closed(&peer_id);
                                Seen::Closed(peer_id)
                            }
                            SwarmEvent::NewListenAddr { address, .. } => {
                                if let Some(done) = listen_reply.take() {
                                    let _ = done.send(address);
                                }
                                continue;
                            }
                            SwarmEvent::Behaviour(RawBehaviourEvent::Hello(
                                request_response::Event::Message {
                                    peer,
                                    message: request_response::Message::Request { request, channel, .. },
                                    ..
                                },
                            )) => {
                                let local = *swarm.local_peer_id();
                                let b = swarm.behaviour_mut();
                                if let Some(reply) = driver.on_request(local, &mut b.gate, peer, &request) {
                                    let _ = b.hello.send_response(channel, reply);
                                }
                                continue;
                            }
                            SwarmEvent::Behaviour(RawBehaviourEvent::Hello(
                                request_response::Event::Message {
                                    peer,
                                    message: request_response::Message::Response { response, .. },
                                    ..
                                },
                            )) => {
                                let b = swarm.behaviour_mut();
                                if let Some(dial) = driver.on_response(&mut b.hello, &mut b.gate, peer, &response) {
                                    let _ = swarm.dial(dial);
                                }
                                continue;
                            }
                            SwarmEvent::Behaviour(RawBehaviourEvent::Gate(Gated::Inner(RawInnerEvent::Gossipsub(
                                gossipsub::Event::Subscribed { peer_id, .. },
                            )))) => Seen::Subscribed(peer_id),
                            SwarmEvent::Behaviour(RawBehaviourEvent::Gate(Gated::Inner(RawInnerEvent::Gossipsub(
                                gossipsub::Event::Message { message, .. },
                            )))) => Seen::Gossip(message.data),
                            SwarmEvent::Behaviour(RawBehaviourEvent::Gate(Gated::Inner(RawInnerEvent::Sync(
                                request_response::Event::Message {
                                    message: request_response::Message::Response { request_id, response },
                                    ..
                                },
                            )))) => {
                                if let Some(done) = waiting.remove(&request_id) {
                                    let _ = done.send(Ok(response));
                                }
                                continue;
                            }
                            SwarmEvent::Behaviour(RawBehaviourEvent::Gate(Gated::Inner(RawInnerEvent::Sync(
                                request_response::Event::OutboundFailure { request_id, error, .. },
                            )))) => {
                                if let Some(done) = waiting.remove(&request_id) {
                                    let _ = done.send(Err(error.to_string()));
                                }
                                continue;
                            }
                            // Inbound sync requests from the nodes are dropped unanswered: the
                            // node sees the stream fail and moves on, without a strike.
                            _ => continue,
                        };
                        let _ = report.send(seen);
                    }
                }
            }
        });
        Self {
            peer_id,
            script,
            seen: Mutex::new((seen, Vec::new())),
        }
    }

    /// The raw swarm's own (fresh) transport peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Dial an address (with `/p2p/`).
    pub async fn dial(&self, addr: Multiaddr) {
        self.script.send(Script::Dial(addr)).await.unwrap();
    }

    /// Listen on a fresh loopback TCP port; returns the address (without `/p2p/`). A node that
    /// dials it gets the listener's side of the hello, proving this swarm's credentials.
    pub async fn listen(&self) -> Multiaddr {
        let (done, addr) = oneshot::channel();
        self.script.send(Script::Listen(done)).await.unwrap();
        addr.await.unwrap()
    }

    /// Publish one item on the topic; `false` if gossipsub had nobody to send it to.
    pub async fn publish(&self, item: &WireItem) -> bool {
        let (done, result) = oneshot::channel();
        self.script
            .send(Script::Publish(item.encode(), done))
            .await
            .unwrap();
        result.await.unwrap().is_ok()
    }

    /// Send one sync request and wait for the decoded response.
    pub async fn request(
        &self,
        peer: PeerId,
        request: &SyncRequest,
    ) -> Result<SyncResponse, String> {
        let (done, result) = oneshot::channel();
        self.script
            .send(Script::Request(peer, sync::encode(request), done))
            .await
            .unwrap();
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT * 2, result)
            .await
            .map_err(|_| "no answer".to_owned())?
            .map_err(|_| "swarm stopped".to_owned())??;
        sync::decode(&bytes).ok_or_else(|| "undecodable response".to_owned())
    }

    /// Push items by sync; the node's `(accepted, rejected)` counts.
    pub async fn push(&self, peer: PeerId, items: &[WireItem]) -> Result<(u32, u32), String> {
        let request = SyncRequest::Push {
            items: items.to_vec(),
        };
        match self.request(peer, &request).await? {
            SyncResponse::Ack { accepted, rejected } => Ok((accepted, rejected)),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// Everything seen so far, in order.
    pub fn log(&self) -> Vec<Seen> {
        let mut guard = self.seen.lock().unwrap();
        let (receiver, log) = &mut *guard;
        while let Ok(seen) = receiver.try_recv() {
            log.push(seen);
        }
        log.clone()
    }

    /// Whether `peer` subscribed to the topic on a connection with us.
    pub fn subscribed(&self, peer: PeerId) -> bool {
        self.log()
            .iter()
            .any(|s| matches!(s, Seen::Subscribed(p) if *p == peer))
    }

    /// Whether a connection with `peer` is open now.
    pub fn connected_to(&self, peer: PeerId) -> bool {
        let mut connected = false;
        for seen in self.log() {
            match seen {
                Seen::Connected(p) if p == peer => connected = true,
                Seen::Closed(p) if p == peer => connected = false,
                _ => {}
            }
        }
        connected
    }

    /// Gossip messages received so far, decoded.
    pub fn gossip(&self) -> Vec<WireItem> {
        self.log()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Gossip(data) => WireItem::decode(&data),
                _ => None,
            })
            .collect()
    }
}

/// The hello credentials of a replica's member: its key and its collective's secret.
pub fn hello_of(replica: &Replica) -> Credentials {
    hello_with(replica, &replica.identity().ed25519_seed())
}

/// Credentials proving the key with `seed` in the collective of `replica` (an accomplice who
/// was given the collective's secret but is not on the roster, say).
pub fn hello_with(replica: &Replica, seed: &[u8; 32]) -> Credentials {
    Credentials::new(&replica.hello_secret().unwrap(), seed)
}

/// The gossip topic of a replica's collective.
pub fn topic_of(replica: &Replica) -> String {
    replica.membership().unwrap().collective().topic()
}

/// Make every replica hold every op, key delivery and post any of them holds, as a full sync
/// between all of them would (ops first, then deliveries, then posts).
pub fn share_everything(replicas: &mut [Replica]) {
    for kind in SetKind::ORDER {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for replica in replicas.iter_mut() {
            let ids: Vec<[u8; 32]> = replica.sync_items(kind).iter().map(|i| i.id).collect();
            all.extend(replica.fetch(kind, &ids).unwrap());
        }
        for replica in replicas.iter_mut() {
            for bytes in &all {
                replica
                    .ingest(&WireItem {
                        kind,
                        bytes: bytes.clone(),
                    })
                    .unwrap();
            }
            replica.flush().unwrap();
        }
    }
}

/// Crafts items signed by the member whose replica it borrows: whatever the member's key can
/// sign, whether or not the rules allow it.
pub struct Forger<'a> {
    replica: &'a mut Replica,
}

impl<'a> Forger<'a> {
    /// Borrow a member's (stopped) replica.
    pub fn new(replica: &'a mut Replica) -> Self {
        Self { replica }
    }

    /// The collective.
    pub fn collective(&self) -> CollectiveId {
        self.replica.membership().unwrap().collective()
    }

    /// The member whose key signs.
    pub fn member(&self) -> MemberId {
        self.replica.identity().member_id()
    }

    /// `ProposeAdd` of `identity` as `name`, sealed under the collective's key as this member
    /// (a rogue member holds the collective secret like any other).
    pub fn propose_add(&self, identity: PublicIdentity, name: &str) -> Action {
        let key = self.replica.text_key().unwrap();
        Action::propose_add(&key, &self.member(), identity, name, &mut OsRng).unwrap()
    }

    /// `Remove` of `member` for `reason`, sealed as this member.
    pub fn remove(&self, member: MemberId, reason: &str) -> Action {
        let key = self.replica.text_key().unwrap();
        Action::remove(&key, &self.member(), member, reason, &mut OsRng).unwrap()
    }

    /// The membership heads the member holds now.
    pub fn heads(&self) -> Vec<OpId> {
        self.replica.membership().unwrap().roster().heads().to_vec()
    }

    /// Every epoch key this member can open from the deliveries it holds.
    pub fn keys(&mut self) -> BTreeMap<EpochId, EpochKey> {
        epoch_keys(self.replica)
    }

    /// The key of the epoch an honest post of this member would be written under now.
    pub fn write_key(&mut self) -> EpochKey {
        let epoch = self.replica.write_epoch().expect("a write epoch");
        self.keys().remove(&epoch).expect("the write epoch's key")
    }

    /// A post under `key` naming `heads`, dated `timestamp`, expiring at `expires`.
    pub fn post(
        &mut self,
        key: &EpochKey,
        heads: Vec<OpId>,
        timestamp: u64,
        expires: u64,
        content: Content,
    ) -> WireItem {
        let body = InnerBody {
            collective: self.collective(),
            epoch: key.id(),
            author: self.replica.identity().member_id(),
            seq: timestamp,
            heads,
            timestamp,
            expires,
            content,
        };
        // A hostile member's software need not follow the content rules: receivers check them.
        let sealed =
            envelope::seal_unvalidated(self.replica.identity(), key, body, &mut OsRng).unwrap();
        WireItem {
            kind: SetKind::Envelopes,
            bytes: sealed.bytes,
        }
    }

    /// An alert under the write epoch at the current heads, living a day.
    pub fn alert(&mut self, text: &str) -> WireItem {
        let key = self.write_key();
        let heads = self.heads();
        let now = lookout_node::replica::now();
        self.post(&key, heads, now, now + 86_400, alert_content(text))
    }

    /// A membership op naming `parents`.
    pub fn op(&mut self, parents: Vec<OpId>, action: Action) -> WireItem {
        let op = Op::create(
            self.replica.identity(),
            self.collective(),
            parents,
            lookout_node::replica::now(),
            action,
        )
        .unwrap();
        WireItem {
            kind: SetKind::Ops,
            bytes: op.encoded().to_vec(),
        }
    }

    /// A share of `key` to `recipients`, naming `heads`.
    pub fn share(
        &mut self,
        key: &EpochKey,
        heads: Vec<OpId>,
        timestamp: u64,
        recipients: &[PublicIdentity],
    ) -> WireItem {
        let delivery = KeyDelivery::create(
            self.replica.identity(),
            self.collective(),
            key,
            DeliveryKind::Share,
            heads,
            timestamp,
            recipients,
            &mut OsRng,
        )
        .unwrap();
        WireItem {
            kind: SetKind::Deliveries,
            bytes: delivery.encoded().to_vec(),
        }
    }

    /// A key delivery of `key` to every member of the roster at `heads`, dated `timestamp`.
    pub fn rotation(&mut self, key: &EpochKey, heads: Vec<OpId>, timestamp: u64) -> WireItem {
        let log = self.replica.membership().unwrap().clone();
        let mut log = log;
        let roster = log.roster_at(&heads).expect("heads held");
        let recipients: Vec<_> = roster.members().map(|m| m.identity.clone()).collect();
        let delivery = KeyDelivery::create(
            self.replica.identity(),
            self.collective(),
            key,
            DeliveryKind::Rotation,
            heads,
            timestamp,
            &recipients,
            &mut OsRng,
        )
        .unwrap();
        WireItem {
            kind: SetKind::Deliveries,
            bytes: delivery.encoded().to_vec(),
        }
    }
}

impl Forger<'_> {
    /// A rotation of `key` to every member of the roster at `heads`, dated `timestamp`, whose
    /// share for `victim` is noise: validly signed, and only the victim can tell.
    pub fn rotation_with_junk_share(
        &mut self,
        key: &EpochKey,
        heads: Vec<OpId>,
        timestamp: u64,
        victim: MemberId,
    ) -> WireItem {
        let honest = self.rotation(key, heads, timestamp);
        let delivery = KeyDelivery::decode(&honest.bytes, self.collective()).unwrap();
        let mut body = delivery.body().clone();
        let share = body
            .shares
            .iter_mut()
            .find(|s| s.recipient == victim)
            .expect("the victim is a member at these heads");
        rand::RngCore::fill_bytes(&mut OsRng, &mut share.ciphertext);
        let forged = KeyDelivery::sign_body(self.replica.identity(), &body).unwrap();
        WireItem {
            kind: SetKind::Deliveries,
            bytes: forged.encoded().to_vec(),
        }
    }
}

/// Every epoch key `replica`'s member can open from the deliveries it holds.
pub fn epoch_keys(replica: &mut Replica) -> BTreeMap<EpochId, EpochKey> {
    let collective = replica.membership().unwrap().collective();
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Deliveries)
        .iter()
        .map(|i| i.id)
        .collect();
    let mut keys = BTreeMap::new();
    for bytes in replica.fetch(SetKind::Deliveries, &ids).unwrap() {
        let delivery = KeyDelivery::decode(&bytes, collective).unwrap();
        if let Some(Ok(key)) = delivery.open(replica.identity()) {
            keys.insert(key.id(), key);
        }
    }
    keys
}

/// Every key delivery `replica` holds.
pub fn deliveries(replica: &mut Replica) -> Vec<KeyDelivery> {
    let collective = replica.membership().unwrap().collective();
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Deliveries)
        .iter()
        .map(|i| i.id)
        .collect();
    replica
        .fetch(SetKind::Deliveries, &ids)
        .unwrap()
        .iter()
        .map(|b| KeyDelivery::decode(b, collective).unwrap())
        .collect()
}

/// Every post `replica` holds, opened with the keys its member holds (a post it cannot open is
/// returned as `None` with its id).
pub fn held_posts(replica: &mut Replica) -> Vec<(ContentId, Option<Opened>)> {
    let collective = replica.membership().unwrap().collective();
    let keys = epoch_keys(replica);
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    replica
        .fetch(SetKind::Envelopes, &ids)
        .unwrap()
        .iter()
        .map(|bytes| {
            (
                envelope::id_of(bytes).unwrap(),
                envelope::open(bytes, collective, |e| keys.get(e)).ok(),
            )
        })
        .collect()
}

/// The same envelope encrypted again under `key` with a fresh nonce: what any member holding the
/// epoch key can do to anyone's post without their signing key. Everything the author signed is
/// unchanged; only the wrapping differs.
pub fn rewrap(bytes: &[u8], key: &EpochKey) -> WireItem {
    use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use rand::RngCore as _;

    let mut outer = envelope::peek(bytes).unwrap();
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &lookout_protocol::codec::encode(&outer),
            },
        )
        .expect("the envelope decrypts under the key");
    OsRng.fill_bytes(&mut outer.nonce);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &lookout_protocol::codec::encode(&outer),
            },
        )
        .unwrap();
    outer.ciphertext = ciphertext;
    WireItem {
        kind: SetKind::Envelopes,
        bytes: lookout_protocol::codec::encode(&outer),
    }
}

/// Fetch one post a node holds, by sync, as a member may.
pub async fn fetch_post(peer: &RawPeer, node: PeerId, id: [u8; 32]) -> Vec<u8> {
    let request = SyncRequest::Fetch {
        kind: SetKind::Envelopes,
        ids: vec![id],
    };
    match peer.request(node, &request).await.unwrap() {
        SyncResponse::Items { mut items } if items.len() == 1 => items.remove(0).bytes,
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Alert content with this description.
pub fn alert_content(text: &str) -> Content {
    Content::Alert(Alert {
        category: Category::FakeClient,
        severity: Severity::Low,
        description: text.into(),
        identifiers: Identifiers::default(),
        area: "Quayside".into(),
        incident_time: None,
        language: "en".into(),
        on_behalf: false,
    })
}

/// Share every item among the replicas, keep those at `offline` (in that order) off the network,
/// and start the others, every pair connected.
pub async fn stage(
    mut collective: Collective,
    offline: &[usize],
) -> (tempfile::TempDir, Vec<TestNode>, Vec<Replica>) {
    share_everything(&mut collective.replicas);
    let mut kept = Vec::new();
    let mut running = Vec::new();
    for (i, replica) in collective.replicas.into_iter().enumerate() {
        if offline.contains(&i) {
            kept.push(replica);
        } else {
            running.push(start_node(replica).await);
        }
    }
    for (i, a) in running.iter().enumerate() {
        for b in &running[i + 1..] {
            connect(a, b).await;
        }
    }
    for node in &running {
        eventually("fully connected", || async {
            (node.peers().await == running.len() - 1).then_some(())
        })
        .await;
    }
    (collective.dir, running, kept)
}

/// Put the member's key in a raw swarm connected to every node.
pub async fn arm(member: &Replica, nodes: &[TestNode]) -> RawPeer {
    let peer = RawPeer::spawn(Some(hello_of(member)), &topic_of(member));
    for node in nodes {
        peer.dial(listen_addr(node).await).await;
    }
    for node in nodes {
        eventually("the rogue member is admitted", || async {
            peer.subscribed(node.handle.peer_id()).then_some(())
        })
        .await;
    }
    // Let the gossip mesh form so publishing reaches every node.
    tokio::time::sleep(Duration::from_millis(600)).await;
    peer
}

/// Ids of the live alerts a node shows from the member named `author`.
pub async fn by_author(node: &TestNode, author: &str) -> BTreeSet<String> {
    node.alerts()
        .await
        .into_iter()
        .filter(|a| a.author == author)
        .map(|a| a.id)
        .collect()
}

/// Every node's count of rejected gossip.
pub async fn rejected_counts(nodes: &[TestNode]) -> Vec<u64> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(node.handle.stats().await.unwrap().rejected);
    }
    counts
}

/// Wait until every node rejected at least one more gossip message than `before`.
pub async fn rejected_by_every_node(nodes: &[TestNode], before: &[u64]) {
    for (node, before) in nodes.iter().zip(before) {
        eventually("the node rejects the gossiped forgery", || async {
            (node.handle.stats().await.unwrap().rejected > *before).then_some(())
        })
        .await;
    }
}

/// Stop every node and open its store again.
pub async fn stop_all(nodes: Vec<TestNode>) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for node in nodes {
        let home = node.stop().await;
        replicas.push(reopen(&home));
    }
    replicas
}

/// A sync codec for attackers: writes requests exactly as given (no framing, no cap); reads
/// responses as sync frames.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>>
    where
        T: libp2p::futures::AsyncRead + Unpin + Send,
    {
        lookout_node::net::read_frame(io, lookout_node::net::MAX_RESPONSE_BYTES).await
    }

    async fn read_response<T>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>>
    where
        T: libp2p::futures::AsyncRead + Unpin + Send,
    {
        lookout_node::net::read_frame(io, lookout_node::net::MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: libp2p::futures::AsyncWrite + Unpin + Send,
    {
        libp2p::futures::AsyncWriteExt::write_all(io, &request).await?;
        libp2p::futures::AsyncWriteExt::close(io).await
    }

    async fn write_response<T>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: libp2p::futures::AsyncWrite + Unpin + Send,
    {
        libp2p::futures::AsyncWriteExt::write_all(io, &response).await?;
        libp2p::futures::AsyncWriteExt::close(io).await
    }
}
