//! The libp2p layer of a Lookout node: transports, the member gate, gossip and sync.
//!
//! [`build_swarm`] turns a fresh transport key and a [`NetConfig`] into a listening
//! [`Swarm`]; [`hello`] proves membership inside each new connection before
//! [`MemberGate`] lets the collective's protocols run on it. The node's event loop owns that swarm, drives it with `select_next_some()` and
//! matches `SwarmEvent::Behaviour(`[`NetEvent`]`)`:
//!
//! - [`NetEvent::Gossip`] `Message { propagation_source, message_id, message }`: decode and
//!   verify `message.data`, then call [`Protocols::report_validation`] with `Accept`, `Reject`
//!   (the sender broke the protocol; it is penalised) or `Ignore` (duplicate, stale). Nothing is
//!   forwarded before `Accept`.
//! - [`NetEvent::Sync`] requests: answer with [`Protocols::respond`]; responses and failures
//!   carry the id returned by [`Protocols::request`].
//! - [`NetEvent::Hello`]: a step of the membership proof; see [`hello`].
//! - [`NetEvent::Gate`]: a removed member evicted.
//!
//! Roster changes go through [`MemberGate::set_allowed`], which closes connections of peers
//! that left.
//!
//! ```no_run
//! # async fn run() -> Result<(), lookout_node::net::NetError> {
//! use futures::StreamExt;
//! use libp2p::{identity::Keypair, swarm::SwarmEvent};
//! use lookout_node::net::{build_swarm, NetConfig, NetEvent};
//!
//! let cfg = NetConfig { topic: "collective-topic-hash".into(), ..NetConfig::default() };
//! let mut swarm = build_swarm(Keypair::generate_ed25519(), &cfg)?;
//! loop {
//!     if let SwarmEvent::Behaviour(NetEvent::Gossip(event)) = swarm.select_next_some().await {
//!         // validate and report ...
//! #       let _ = event;
//!     }
//! }
//! # }
//! ```

mod behaviour;
mod codec;
mod delegate;
mod gate;
pub mod hello;
mod listen;
pub mod mailbox_admission;
mod only;
#[cfg(test)]
mod review18;
mod wake;

use std::{collections::HashSet, time::Duration};

pub use behaviour::{
    AdmissionEvent, Admissions, Behaviour, Collective, CollectiveEvent, NetEvent, Protocols,
    GRAYLIST_THRESHOLD, IDENTIFY_PROTOCOL, MAX_CONCURRENT_SYNC_STREAMS, MAX_GOSSIP_BYTES,
    PING_INTERVAL,
};
pub use codec::{
    read_frame, write_frame, BytesCodec, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SYNC_PROTOCOL,
};
pub use gate::{
    short, GateError, GateEvent, Gated, MemberGate, TooManyHandshakes, MAX_PEERS_PER_MEMBER,
    MAX_PENDING_GATE_EVENTS, MAX_PENDING_INCOMING_PER_IP, MAX_TEMPORARY_PEERS, TEMPORARY_ALLOWANCE,
};
pub(crate) use hello::MAX_EPOCH_SECRETS;
pub use hello::{Credentials, HelloCodec, HelloError, HELLO_PROTOCOL};
pub use libp2p::gossipsub::{MessageAcceptance, MessageId};
pub use listen::{ListenCache, ListenCacheHandler, Names, OfferedNames};
pub use only::{OnlyOn, MAX_EXPECTED_CONNECTIONS};
pub use wake::{OnWake, OnWakeHandler};

use libp2p::{
    gossipsub, identity::Keypair, noise, swarm::Swarm, tcp, yamux, Multiaddr, SwarmBuilder,
    TransportError,
};
use lookout_protocol::MemberId;

/// Domain-separation context for content ids; the protocol crate derives ids the same way.
pub(crate) const CONTENT_ID_CONTEXT: &str = "lookout content id v1";

/// Default time a connection with no open streams is kept.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound on the transport handshake (TCP: multistream, Noise, yamux; QUIC: TLS).
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a sync request may take before it fails with a timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How often QUIC sends a keep-alive on a connection that sent nothing else meanwhile (libp2p's
/// default is 5 s, which on its own cost 172 kB per idle connection and hour: docs/BENCHMARKS.md,
/// "Idle traffic"). Below the 30 s after which many NATs forget a quiet UDP mapping.
pub const QUIC_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How long a QUIC connection may hear nothing before it is closed (libp2p's default is 10 s):
/// three keep-alives, so one or two lost on a mobile link do not end it.
pub const QUIC_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default gossipsub heartbeat.
pub const DEFAULT_GOSSIP_HEARTBEAT: Duration = Duration::from_secs(1);
/// Default cap on established connections with one peer: room for the hello connection and a
/// member connection over TCP and over QUIC at once, and during a hole-punch retry for two
/// relayed connections (the retry's and the one it supersedes a second later), two punched ones
/// (QUIC and TCP punch at once) and one more relayed one if the member redialled at the same
/// moment. At 3, each end kept the punched connection it made first and refused the other's,
/// so both direct connections died (seen in the NAT suite).
pub(crate) const DEFAULT_MAX_ESTABLISHED_PER_PEER: u32 = 5;
/// Default cap on established connections overall.
pub(crate) const DEFAULT_MAX_ESTABLISHED_TOTAL: u32 = 128;
/// Default cap on inbound connections still in their handshake.
pub(crate) const DEFAULT_MAX_PENDING_INCOMING: u32 = 32;
/// Default cap on outbound connections still in their handshake.
pub(crate) const DEFAULT_MAX_PENDING_OUTGOING: u32 = 32;
/// Default wait before the first AutoNAT probe.
pub const DEFAULT_AUTONAT_BOOT_DELAY: Duration = Duration::from_secs(3);
/// Default wait between AutoNAT probes while the status is unsettled.
pub const DEFAULT_AUTONAT_RETRY: Duration = Duration::from_secs(20);
/// Most inbound streams per connection still negotiating their protocol at once.
pub(crate) const MAX_NEGOTIATING_INBOUND_STREAMS: usize = 32;

/// How a node's network layer is set up.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/0` and `/ip4/0.0.0.0/udp/0/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Discover members on the local network with mDNS. Announces this node's presence (its
    /// ephemeral peer id and interface addresses) to the whole local network, so it is off by
    /// default.
    pub enable_mdns: bool,
    /// The gossip topic name (the collective's topic hash, computed by the caller).
    pub topic: String,
    /// The members admitted (once they prove themselves) from the start: the stored roster.
    pub allowed: HashSet<MemberId>,
    /// How long a connection with no open streams is kept.
    pub idle_timeout: Duration,
    /// Bound on the transport handshake of a new connection.
    pub handshake_timeout: Duration,
    /// How long a sync request may take.
    pub request_timeout: Duration,
    /// Gossipsub heartbeat interval (mesh maintenance, gossip emission).
    pub gossip_heartbeat: Duration,
    /// Cap on established connections with one peer.
    pub max_established_per_peer: u32,
    /// Cap on established connections overall.
    pub max_established_total: u32,
    /// Cap on inbound connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Cap on outbound connections still in their handshake.
    pub max_pending_outgoing: u32,
    /// Wait before the first AutoNAT probe (once a mailbox is admitted).
    pub autonat_boot_delay: Duration,
    /// Wait between AutoNAT probes while the NAT status is not settled.
    pub autonat_retry: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            enable_mdns: false,
            topic: String::new(),
            allowed: HashSet::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            gossip_heartbeat: DEFAULT_GOSSIP_HEARTBEAT,
            max_established_per_peer: DEFAULT_MAX_ESTABLISHED_PER_PEER,
            max_established_total: DEFAULT_MAX_ESTABLISHED_TOTAL,
            max_pending_incoming: DEFAULT_MAX_PENDING_INCOMING,
            max_pending_outgoing: DEFAULT_MAX_PENDING_OUTGOING,
            autonat_boot_delay: DEFAULT_AUTONAT_BOOT_DELAY,
            autonat_retry: DEFAULT_AUTONAT_RETRY,
        }
    }
}

/// Why the network layer could not be set up or could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The identity key is not Ed25519.
    #[error("the transport identity must be an Ed25519 key")]
    NotEd25519,
    /// `NetConfig::topic` is empty.
    #[error("no gossip topic given: set NetConfig::topic to the collective's topic hash")]
    EmptyTopic,
    /// A connection cap of zero would refuse every connection.
    #[error("connection caps must be at least 1 (check NetConfig::max_established_*)")]
    ZeroConnectionCap,
    /// Noise could not be set up with the identity key.
    #[error("could not set up Noise encryption with this key: {0}")]
    Noise(#[from] noise::Error),
    /// The gossip settings were refused by gossipsub.
    #[error("invalid gossip settings: {0}")]
    Gossip(String),
    /// mDNS could not start (no multicast-capable interface, or the port is taken).
    #[error(
        "could not start local network discovery (mDNS): {0}; disable it with enable_mdns = false"
    )]
    Mdns(#[source] std::io::Error),
    /// A listen address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Listen {
        /// The address from `NetConfig::listen`.
        addr: Multiaddr,
        /// What the transport said.
        #[source]
        source: TransportError<std::io::Error>,
    },
    /// Publishing failed (no member connected yet, duplicate content, or too large).
    #[error("could not publish: {0}")]
    Publish(#[from] gossipsub::PublishError),
    /// The node is not subscribed to its topic (someone unsubscribed it).
    #[error("not subscribed to the collective's topic")]
    NotSubscribed,
    /// The behaviour could not be composed (a message from the swarm builder).
    #[error("could not set up the network protocols: {0}")]
    Behaviour(String),
}

/// Builds a swarm with the transport key `keypair` (fresh for every run: it must never be the
/// member's key): TCP (Noise + yamux), QUIC and circuit relay v2 (client) on tokio, listening on every address in
/// `cfg.listen`, subscribed to `cfg.topic`, running the collective's protocols only for members
/// of `cfg.allowed` that proved themselves in the hello.
///
/// Must be called within a tokio runtime.
pub fn build_swarm(keypair: Keypair, cfg: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    if keypair.clone().try_into_ed25519().is_err() {
        return Err(NetError::NotEd25519);
    }
    if cfg.topic.is_empty() {
        return Err(NetError::EmptyTopic);
    }
    if cfg.max_established_per_peer == 0 || cfg.max_established_total == 0 {
        return Err(NetError::ZeroConnectionCap);
    }
    let handshake_timeout = cfg.handshake_timeout;
    let idle_timeout = cfg.idle_timeout;

    let mut failed: Option<NetError> = None;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic_config(|mut quic| {
            quic.handshake_timeout = handshake_timeout;
            quic.keep_alive_interval = QUIC_KEEP_ALIVE;
            quic.max_idle_timeout = u32::try_from(QUIC_IDLE_TIMEOUT.as_millis()).unwrap_or(60_000);
            quic
        })
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key, relay| match Protocols::new(key, cfg, relay) {
            Ok(protocols) => Ok(ListenCache::new(protocols)),
            Err(e) => {
                let message = e.to_string();
                failed = Some(e);
                Err(message.into())
            }
        })
        .map_err(|e| {
            failed
                .take()
                .unwrap_or_else(|| NetError::Behaviour(e.to_string()))
        })?
        .with_swarm_config(|swarm| {
            swarm
                .with_idle_connection_timeout(idle_timeout)
                .with_max_negotiating_inbound_streams(MAX_NEGOTIATING_INBOUND_STREAMS)
        })
        .with_connection_timeout(handshake_timeout)
        .build();

    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|source| NetError::Listen {
                addr: addr.clone(),
                source,
            })?;
    }
    tracing::info!(peer = %short(swarm.local_peer_id()), listeners = cfg.listen.len(), "network layer up");
    Ok(swarm)
}

/// The content id of a gossip payload: BLAKE3 in key-derivation mode with
/// [`CONTENT_ID_CONTEXT`]. Also the gossipsub message id, so duplicates are recognised by
/// content.
pub fn message_id(data: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CONTENT_ID_CONTEXT);
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_domain_separated_blake3() {
        let id = message_id(b"alert");
        assert_eq!(id, blake3::derive_key(CONTENT_ID_CONTEXT, b"alert"));
        assert_ne!(id, *blake3::hash(b"alert").as_bytes());
    }
}
