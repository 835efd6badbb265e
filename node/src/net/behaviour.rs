//! The composed libp2p behaviour of a Lookout node and the events it reports.

use std::{collections::HashSet, convert::Infallible, time::Duration};

use libp2p::{
    autonat, connection_limits, dcutr, gossipsub, identify,
    identity::Keypair,
    mdns, ping, relay, request_response,
    swarm::{behaviour::toggle::Toggle, ConnectionId, NetworkBehaviour},
    PeerId,
};

use super::{
    codec::{BytesCodec, SYNC_PROTOCOL},
    delegate::forward_behaviour,
    gate::{GateEvent, Gated, MemberGate},
    hello::{HelloCodec, HELLO_PROTOCOL},
    listen::ListenCache,
    mailbox_admission::{admission_behaviour, AdmissionRole, MailboxCodec},
    message_id, NetConfig, NetError, OnWake, OnlyOn,
};

/// Largest gossip RPC frame we send or accept, in bytes (64 KiB). Alerts are small; anything
/// bigger goes over sync.
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;

/// Identify protocol version string. Deliberately says nothing about the software version.
pub const IDENTIFY_PROTOCOL: &str = "/lookout/id/1";

/// How often a settled NAT status is checked again.
pub const AUTONAT_REFRESH: Duration = Duration::from_secs(5 * 60);
/// Probes in a row that settle a NAT status.
const AUTONAT_CONFIDENCE: usize = 2;

/// Agent string sent over identify, in place of the default that names the libp2p version.
const AGENT_VERSION: &str = "lookout";

/// How often a member connection is pinged (libp2p's default is 15 s). A ping is what keeps a
/// TCP connection's NAT mapping alive (NATs keep a quiet TCP mapping for minutes; QUIC has its
/// own keep-alive), and a phone on mobile data pays for each one in bytes and radio wake-ups:
/// at 25 s pings were about two thirds of an idle connection's traffic (docs/BENCHMARKS.md,
/// "Idle traffic"). The first ping goes at once, and a hole punch's retry connection that has
/// not carried one within `PROOF_BOUND` (70 s) is closed: the interval stays below it, so a
/// first ping that fails at once has a second chance.
pub const PING_INTERVAL: Duration = Duration::from_secs(60);

/// How often identify runs again on a member connection (libp2p's default is 5 min, about
/// 36 kB per idle connection and hour with its stream negotiation: docs/BENCHMARKS.md "Idle
/// traffic"). A change of this node's listen addresses is pushed at once instead
/// (`with_push_listen_addr_updates`), and a new network means new connections anyway.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// Most sync streams (inbound plus outbound) open at once on one connection.
pub const MAX_CONCURRENT_SYNC_STREAMS: usize = 16;

/// Per-message score weight for a message we rejected (P4). Squared over the count, so one
/// rejection costs 20, two cost 80 and three cost 180: past [`GRAYLIST_THRESHOLD`].
const INVALID_MESSAGE_WEIGHT: f64 = -20.0;
/// Time for the rejected-message counter to decay to a tenth.
const INVALID_MESSAGE_DECAY: Duration = Duration::from_secs(3600);
/// Cap on the positive topic score, so good behaviour cannot bank credit against rejections.
const TOPIC_SCORE_CAP: f64 = 10.0;
/// Below this score we stop gossiping (IHAVE/IWANT) with a peer.
const GOSSIP_THRESHOLD: f64 = -10.0;
/// Below this score we stop publishing to a peer.
const PUBLISH_THRESHOLD: f64 = -50.0;
/// Below this score every RPC from a peer is ignored.
pub const GRAYLIST_THRESHOLD: f64 = -80.0;

/// The collective's protocols: they run only on connections with proven members (the
/// [`MemberGate`] gives every other connection a dummy handler for them).
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "CollectiveEvent")]
pub struct Collective {
    /// Alert dissemination on the collective's topic, with manual validation.
    pub gossipsub:
        gossipsub::Behaviour<gossipsub::IdentityTransform, gossipsub::WhitelistSubscriptionFilter>,
    /// `/lookout/sync/2`: length-prefixed byte requests and responses. Like identify and hole
    /// punching, polled only on its own wake-ups ([`OnWake`]), not at every gossip frame.
    pub sync: OnWake<request_response::Behaviour<BytesCodec>>,
    /// Exchanges listen addresses with connected members.
    pub identify: OnWake<identify::Behaviour>,
    /// Liveness checks. Polled at every wake-up of the connection, not wrapped in [`OnWake`]:
    /// libp2p-ping's handler, once it has answered a ping, sets up the read of the next one
    /// and returns `Pending` without polling it, so nothing would wake it when that ping comes
    /// (Review 18's F1: a peer pinging more often than every 15 s had its later pings on a
    /// stream answered only at this node's own next ping;
    /// `a_lookout_node_answers_every_ping_of_a_member_on_a_reused_stream`).
    pub ping: ping::Behaviour,
    /// Direct connection upgrade through relay: turns a relayed connection with a proven member
    /// into a direct one where both NATs allow (hole punching). Only on proven connections, so
    /// a stranger never learns this node's observed addresses.
    pub dcutr: OnWake<dcutr::Behaviour>,
    /// AutoNAT (v1), client only: asks admitted mailboxes (the only servers it is given)
    /// whether this node's observed addresses can be dialled from outside. Serves nobody.
    /// Only on connections with admitted mailboxes ([`Protocols::admit_mailbox`]).
    pub autonat: OnlyOn<autonat::Behaviour>,
}

/// An event of one of the collective's protocols.
#[derive(Debug)]
pub enum CollectiveEvent {
    /// Gossipsub.
    Gossip(gossipsub::Event),
    /// Sync.
    Sync(request_response::Event<Vec<u8>, Vec<u8>>),
    /// Identify.
    Identify(Box<identify::Event>),
    /// Ping.
    Ping(ping::Event),
    /// Hole punching.
    Dcutr(dcutr::Event),
    /// NAT status probes.
    Autonat(autonat::Event),
}

/// The libp2p behaviour of a Lookout node: its [`Protocols`], each connection's protocol names
/// kept rather than rebuilt at every poll ([`ListenCache`]). Derefs to [`Protocols`].
pub type Behaviour = ListenCache<Protocols>;

/// The protocols of a Lookout node.
///
/// The gate comes first, so it decides about a new connection before any protocol sees it.
/// Every connection carries the hello; only connections with proven members carry the rest.
/// Fields are public so the event loop can drive each protocol directly; the methods below
/// cover the common calls.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "NetEvent")]
pub struct Protocols {
    /// Runs the collective's protocols for proven members only.
    pub gate: MemberGate<Collective>,
    /// Caps on pending and established connections.
    pub limits: connection_limits::Behaviour,
    /// `/lookout/hello/3`: the membership proof, on every connection (polled only on its own
    /// wake-ups: [`OnWake`]).
    pub hello: OnWake<request_response::Behaviour<HelloCodec>>,
    /// Local-network discovery, if enabled.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// `/lookout/mailbox/1`, member side only (outbound): admission by the roster's mailboxes.
    /// Only on the connections the event loop dials to a mailbox's roster address (announced
    /// with [`Protocols::dialling_mailbox`]).
    pub mailbox: OnlyOn<Admissions>,
    /// Circuit relay v2, client side: reservations on admitted mailboxes and circuits through
    /// them. Only on connections with admitted mailboxes ([`Protocols::admit_mailbox`]) and
    /// those it dials itself (to its relay); member-to-member connections never carry it. It
    /// accepts an inbound circuit only from a relay this node holds a reservation on, and every
    /// relayed connection still faces the hello and the gate like a direct one.
    pub relay: OnlyOn<relay::client::Behaviour>,
}

/// An event from one of the node's protocols, as it appears in `SwarmEvent::Behaviour`.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// The member gate evicted a peer.
    Gate(GateEvent),
    /// Hello: a step of the membership proof (answer requests with [`Protocols::hello_respond`]).
    Hello(request_response::Event<Vec<u8>, Vec<u8>>),
    /// Gossip: a message to validate (call [`Protocols::report_validation`]) or a
    /// subscription change.
    Gossip(gossipsub::Event),
    /// Sync: an inbound request (answer with [`Protocols::respond`]), a response, or a failure.
    Sync(request_response::Event<Vec<u8>, Vec<u8>>),
    /// Identify: a member told us its listen addresses.
    Identify(Box<identify::Event>),
    /// Ping result.
    Ping(ping::Event),
    /// mDNS discovered or expired local peers (only when enabled).
    Mdns(mdns::Event),
    /// Mailbox admission: an answer of a mailbox (or a failure).
    Mailbox(request_response::Event<Vec<u8>, Vec<u8>>),
    /// Relay client: a reservation accepted, a circuit established.
    Relay(relay::client::Event),
    /// Hole punching through a relayed connection succeeded or failed.
    Dcutr(dcutr::Event),
    /// AutoNAT: the node's NAT status changed, or a probe ended.
    Autonat(autonat::Event),
}

impl Protocols {
    /// Builds the protocols for `keypair` under `cfg`, subscribed to `cfg.topic`.
    pub(crate) fn new(
        keypair: &Keypair,
        cfg: &NetConfig,
        relay: relay::client::Behaviour,
    ) -> Result<Self, NetError> {
        let local_peer = keypair.public().to_peer_id();
        let topic = gossipsub::IdentTopic::new(cfg.topic.clone());

        let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
            gossipsub::MessageAuthenticity::Anonymous,
            gossip_config(cfg)?,
            gossipsub::WhitelistSubscriptionFilter(HashSet::from([topic.hash()])),
        )
        .map_err(|e| NetError::Gossip(e.to_string()))?;
        gossipsub
            .with_peer_score(score_params(topic.hash()), score_thresholds())
            .map_err(NetError::Gossip)?;
        gossipsub
            .subscribe(&topic)
            .map_err(|e| NetError::Gossip(e.to_string()))?;

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(cfg.max_pending_incoming))
            .with_max_pending_outgoing(Some(cfg.max_pending_outgoing))
            .with_max_established(Some(cfg.max_established_total))
            .with_max_established_per_peer(Some(cfg.max_established_per_peer));

        let sync = request_response::Behaviour::with_codec(
            BytesCodec::default(),
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(cfg.request_timeout)
                .with_max_concurrent_streams(MAX_CONCURRENT_SYNC_STREAMS),
        );
        let hello = request_response::Behaviour::with_codec(
            HelloCodec::default(),
            [(HELLO_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(cfg.handshake_timeout)
                .with_max_concurrent_streams(2),
        );

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                .with_agent_version(AGENT_VERSION.to_owned())
                .with_interval(IDENTIFY_INTERVAL)
                .with_push_listen_addr_updates(true),
        );

        let mdns = if cfg.enable_mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local_peer)
                    .map_err(NetError::Mdns)?,
            )
        } else {
            None
        };

        let collective = Collective {
            gossipsub,
            sync: OnWake(sync),
            identify: OnWake(identify),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL)),
            dcutr: OnWake(dcutr::Behaviour::new(local_peer)),
            autonat: OnlyOn::new(autonat::Behaviour::new(local_peer, autonat_config(cfg))),
        };
        Ok(Self {
            gate: MemberGate::new(collective, cfg.allowed.clone()),
            limits: connection_limits::Behaviour::new(limits),
            hello: OnWake(hello),
            mdns: Toggle::from(mdns),
            mailbox: OnlyOn::new(Admissions(admission_behaviour(AdmissionRole::Member))),
            relay: OnlyOn::new(relay),
        })
    }

    /// Publishes `data` on the collective's topic to every connected member.
    ///
    /// The message id is [`message_id`]`(&data)`.
    pub fn publish(&mut self, data: Vec<u8>) -> Result<gossipsub::MessageId, NetError> {
        // The subscription filter admits exactly one topic, so this is the collective's topic.
        let topic = self
            .gate
            .inner
            .gossipsub
            .topics()
            .next()
            .cloned()
            .ok_or(NetError::NotSubscribed)?;
        Ok(self.gate.inner.gossipsub.publish(topic, data)?)
    }

    /// Reports the verdict on a received gossip message. `Accept` forwards it to the mesh;
    /// `Reject` drops it and lowers `source`'s score (three rejections graylist a peer);
    /// `Ignore` drops it without penalty. Returns false if the message was no longer cached.
    pub fn report_validation(
        &mut self,
        id: &gossipsub::MessageId,
        source: &PeerId,
        verdict: gossipsub::MessageAcceptance,
    ) -> bool {
        self.gate
            .inner
            .gossipsub
            .report_message_validation_result(id, source, verdict)
    }

    /// Sends a sync request; the answer (or failure) arrives as [`NetEvent::Sync`].
    pub fn request(
        &mut self,
        peer: &PeerId,
        request: Vec<u8>,
    ) -> request_response::OutboundRequestId {
        self.gate.inner.sync.send_request(peer, request)
    }

    /// Answers an inbound sync request. Gives the response back if the channel is closed
    /// (the requester gave up or disconnected).
    pub fn respond(
        &mut self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        response: Vec<u8>,
    ) -> Result<(), Vec<u8>> {
        self.gate.inner.sync.send_response(channel, response)
    }

    /// Sends a hello message; the answer (or failure) arrives as [`NetEvent::Hello`].
    pub fn hello_request(
        &mut self,
        peer: &PeerId,
        request: Vec<u8>,
    ) -> request_response::OutboundRequestId {
        self.hello.send_request(peer, request)
    }

    /// Sends a mailbox admission message; the answer (or failure) arrives as
    /// [`NetEvent::Mailbox`].
    pub fn mailbox_request(
        &mut self,
        peer: &PeerId,
        request: Vec<u8>,
    ) -> request_response::OutboundRequestId {
        self.mailbox.inner.0.send_request(peer, request)
    }

    /// The outbound connection `connection` (from `DialOpts::connection_id`, announced before
    /// the dial) goes to a mailbox's roster address: it carries the mailbox admission.
    pub fn dialling_mailbox(&mut self, connection: ConnectionId) {
        self.mailbox.expect_connection(connection);
    }

    /// Records that `peer` proved it is the mailbox `mailbox` (the caller checked that the
    /// roster names it): its connections from now on carry the collective protocols, the relay
    /// client and AutoNAT.
    pub fn admit_mailbox(&mut self, peer: PeerId, mailbox: [u8; 32]) {
        self.gate.admit_mailbox(peer, mailbox);
        self.gate.inner.autonat.select_peer(peer);
        self.relay.select_peer(peer);
    }

    /// Forgets every transport id of `mailbox` (removed from the roster) and closes their
    /// connections. Returns the peers evicted.
    pub fn forget_mailbox(&mut self, mailbox: &[u8; 32]) -> Vec<PeerId> {
        let peers = self.gate.forget_mailbox(mailbox);
        for peer in &peers {
            self.gate.inner.autonat.forget_peer(peer);
            self.relay.forget_peer(peer);
        }
        peers
    }

    /// Answers a hello request.
    pub fn hello_respond(
        &mut self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        response: Vec<u8>,
    ) -> Result<(), Vec<u8>> {
        self.hello.send_response(channel, response)
    }
}

/// AutoNAT as a client of the servers it is given (admitted mailboxes) and never a server: a
/// member dials nobody back on anyone's request.
fn autonat_config(cfg: &NetConfig) -> autonat::Config {
    autonat::Config {
        timeout: cfg.request_timeout,
        boot_delay: cfg.autonat_boot_delay,
        retry_interval: cfg.autonat_retry,
        refresh_interval: AUTONAT_REFRESH,
        throttle_server_period: Duration::ZERO,
        use_connected: false,
        confidence_max: AUTONAT_CONFIDENCE,
        max_peer_addresses: 0,
        throttle_clients_global_max: 0,
        throttle_clients_peer_max: 0,
        throttle_clients_period: Duration::from_secs(1),
        // Mailboxes are added as servers explicitly; this only concerns servers found among
        // connected peers, which is off.
        only_global_ips: false,
    }
}

fn gossip_config(cfg: &NetConfig) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        // The message id is the protocol's own id of the item carried (op id or delivery id),
        // so gossip and sync recognise the same item as the same thing; for a post, the hash of
        // its exact bytes (its content id is only claimed in clear until opened).
        .message_id_fn(|message: &gossipsub::Message| {
            let id = crate::replica::WireItem::decode(&message.data)
                .map(|item| item.gossip_id())
                .unwrap_or_else(|| message_id(&message.data));
            gossipsub::MessageId::new(&id)
        })
        .flood_publish(true)
        .heartbeat_interval(cfg.gossip_heartbeat)
        .heartbeat_initial_delay(cfg.gossip_heartbeat)
        .build()
        .map_err(|e| NetError::Gossip(e.to_string()))
}

fn score_params(topic: gossipsub::TopicHash) -> gossipsub::PeerScoreParams {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // P1: a little credit for time in the mesh, at most 10 after ~17 minutes.
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 1000.0,
        // P2: a little credit for delivering new messages first.
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        first_message_deliveries_cap: 10.0,
        // P3/P3b off: alerts are rare, so "too few deliveries" says nothing about a member.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // P4: rejected messages.
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(INVALID_MESSAGE_DECAY),
        ..gossipsub::TopicScoreParams::default()
    };
    gossipsub::PeerScoreParams {
        topics: [(topic, topic_params)].into_iter().collect(),
        topic_score_cap: TOPIC_SCORE_CAP,
        app_specific_weight: 1.0,
        // Members may well share a household or a NAT: no penalty for a shared IP.
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        ..gossipsub::PeerScoreParams::default()
    }
}

fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..gossipsub::PeerScoreThresholds::default()
    }
}

impl From<Gated<CollectiveEvent>> for NetEvent {
    fn from(event: Gated<CollectiveEvent>) -> Self {
        match event {
            Gated::Gate(e) => Self::Gate(e),
            Gated::Inner(CollectiveEvent::Gossip(e)) => Self::Gossip(e),
            Gated::Inner(CollectiveEvent::Sync(e)) => Self::Sync(e),
            Gated::Inner(CollectiveEvent::Identify(e)) => Self::Identify(e),
            Gated::Inner(CollectiveEvent::Ping(e)) => Self::Ping(e),
            Gated::Inner(CollectiveEvent::Dcutr(e)) => Self::Dcutr(e),
            Gated::Inner(CollectiveEvent::Autonat(e)) => Self::Autonat(e),
        }
    }
}

impl From<Infallible> for NetEvent {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl From<request_response::Event<Vec<u8>, Vec<u8>>> for NetEvent {
    fn from(event: request_response::Event<Vec<u8>, Vec<u8>>) -> Self {
        Self::Hello(event)
    }
}

impl From<AdmissionEvent> for NetEvent {
    fn from(event: AdmissionEvent) -> Self {
        Self::Mailbox(event.0)
    }
}

/// The mailbox admission's request-response behaviour, under an event type of its own (the
/// hello's has the same shape, and the derived behaviour tells fields apart by event type).
pub struct Admissions(pub request_response::Behaviour<MailboxCodec>);

/// An event of [`Admissions`].
#[derive(Debug)]
pub struct AdmissionEvent(pub request_response::Event<Vec<u8>, Vec<u8>>);

impl NetworkBehaviour for Admissions {
    type ConnectionHandler =
        <request_response::Behaviour<MailboxCodec> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = AdmissionEvent;

    forward_behaviour!(0: all, poll(|event| event.map_out(AdmissionEvent)));
}

impl From<relay::client::Event> for NetEvent {
    fn from(event: relay::client::Event) -> Self {
        Self::Relay(event)
    }
}

impl From<dcutr::Event> for CollectiveEvent {
    fn from(event: dcutr::Event) -> Self {
        Self::Dcutr(event)
    }
}

impl From<autonat::Event> for CollectiveEvent {
    fn from(event: autonat::Event) -> Self {
        Self::Autonat(event)
    }
}

impl From<mdns::Event> for NetEvent {
    fn from(event: mdns::Event) -> Self {
        Self::Mdns(event)
    }
}

impl From<gossipsub::Event> for CollectiveEvent {
    fn from(event: gossipsub::Event) -> Self {
        Self::Gossip(event)
    }
}

impl From<request_response::Event<Vec<u8>, Vec<u8>>> for CollectiveEvent {
    fn from(event: request_response::Event<Vec<u8>, Vec<u8>>) -> Self {
        Self::Sync(event)
    }
}

impl From<identify::Event> for CollectiveEvent {
    fn from(event: identify::Event) -> Self {
        Self::Identify(Box::new(event))
    }
}

impl From<ping::Event> for CollectiveEvent {
    fn from(event: ping::Event) -> Self {
        Self::Ping(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_parameters_are_valid() {
        let topic = gossipsub::IdentTopic::new("t").hash();
        assert_eq!(score_params(topic).validate(), Ok(()));
        assert_eq!(score_thresholds().validate(), Ok(()));
    }

    #[test]
    fn three_rejections_cross_the_graylist_even_with_full_credit() {
        let three = INVALID_MESSAGE_WEIGHT * 3.0 * 3.0 + TOPIC_SCORE_CAP;
        assert!(three < GRAYLIST_THRESHOLD);
        let one = INVALID_MESSAGE_WEIGHT + TOPIC_SCORE_CAP;
        assert!(one >= GOSSIP_THRESHOLD);
    }
}
