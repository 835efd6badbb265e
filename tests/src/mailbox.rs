//! Mailbox scenarios' tools: a mailbox on loopback ([`start_mailbox`]) and a raw member-side
//! swarm ([`Client`]) that runs `/lookout/mailbox/1` with any key, then asks for sync,
//! reservations and circuits, whether or not it should get them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, relay, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use lookout_node::mailbox::{self, BlindStore, MailboxConfig, MailboxHandle, StoreLimits};
use lookout_node::net::mailbox_admission::{
    admission_behaviour, AdmissionRole, MailboxCodec, MailboxDialer, Welcome,
};
use lookout_node::net::{BytesCodec, Gated, MemberGate, IDENTIFY_PROTOCOL, SYNC_PROTOCOL};
use lookout_node::replica::{Replica, SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest, SyncResponse};
use lookout_protocol::{CollectiveId, MemberId};
use rand::RngCore;

/// How long one step against the mailbox may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A running mailbox.
pub struct TestMailbox {
    /// Its handle.
    pub handle: MailboxHandle,
    /// Its home.
    pub home: PathBuf,
    /// Its loopback TCP address.
    pub addr: Multiaddr,
    /// Its event loop.
    pub task: tokio::task::JoinHandle<()>,
}

impl TestMailbox {
    /// Stops it (flushing its store); returns its home.
    pub async fn stop(self) -> PathBuf {
        self.handle.shutdown().await.unwrap();
        let _ = self.task.await;
        self.home
    }
}

/// Makes a mailbox in `home` already bound to `replica`'s collective with every op it holds
/// (as a moderator's `mailbox add` and the first member's visit would leave it).
pub fn bound_mailbox_home(home: &Path, replica: &mut Replica) {
    mailbox::init(home, &[]).unwrap();
    let mut store = BlindStore::open(
        &mailbox::MailboxHome::new(home).db_dir(),
        StoreLimits::default(),
    )
    .unwrap();
    let log = replica.membership().unwrap();
    store.bind(log.genesis().clone()).unwrap();
    let founder = log.roster().founder();
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Ops)
        .iter()
        .map(|i| i.id)
        .collect();
    let now = lookout_node::replica::now();
    for bytes in replica.fetch(SetKind::Ops, &ids).unwrap() {
        store.put(founder, SetKind::Ops, &bytes, now).unwrap();
    }
    store.flush().unwrap();
}

/// Starts the mailbox of `home` on loopback TCP.
pub async fn start_mailbox(home: &Path, limits: StoreLimits) -> TestMailbox {
    crate::debug_logs();
    let config = MailboxConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        limits,
        ..MailboxConfig::default()
    };
    let (handle, task) = mailbox::start(home, config).await.unwrap();
    let addr = crate::eventually("the mailbox listens", || {
        let handle = handle.clone();
        async move {
            let status = handle.status().await.ok()?;
            status.listening.first().and_then(|a| a.parse().ok())
        }
    })
    .await;
    TestMailbox {
        handle,
        home: home.to_path_buf(),
        addr,
        task,
    }
}

#[derive(NetworkBehaviour)]
struct ClientServices {
    sync: request_response::Behaviour<BytesCodec>,
    relay: relay::client::Behaviour,
    /// Tells the mailbox the address this client observes it at, as a member's node does.
    identify: identify::Behaviour,
}

/// Like a member's node: admission on every connection, the services only on connections
/// opened after the mailbox was admitted (the client's own gate, keyed by a placeholder id).
#[derive(NetworkBehaviour)]
struct ClientBehaviour {
    admission: request_response::Behaviour<MailboxCodec>,
    gate: MemberGate<ClientServices>,
}

/// The placeholder member id the client's gate admits the mailbox under.
const MAILBOX_PLACEHOLDER: MemberId = MemberId([0xAA; 32]);

type ClientEvent = <ClientBehaviour as NetworkBehaviour>::ToSwarm;

/// A member-side raw swarm with a relay client.
pub struct Client {
    /// The swarm.
    swarm: Swarm<ClientBehaviour>,
    /// Sync pushes received from the mailbox.
    pub pushed: Vec<WireItem>,
}

/// What a reservation or circuit attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Granted.
    Granted,
    /// Refused or failed.
    Refused(String),
}

impl Client {
    /// A fresh client with a random transport key.
    pub fn new() -> Self {
        let swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key, relay| ClientBehaviour {
                admission: admission_behaviour(AdmissionRole::Member),
                gate: MemberGate::new(
                    ClientServices {
                        sync: request_response::Behaviour::with_codec(
                            BytesCodec::default(),
                            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                            request_response::Config::default().with_request_timeout(STEP),
                        ),
                        relay,
                        identify: identify::Behaviour::new(identify::Config::new(
                            IDENTIFY_PROTOCOL.to_owned(),
                            key.public(),
                        )),
                    },
                    [MAILBOX_PLACEHOLDER].into(),
                ),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Self {
            swarm,
            pushed: Vec::new(),
        }
    }

    /// This client's transport peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Pumps the swarm until `done` returns a value, or the step times out.
    async fn until<T>(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self, SwarmEvent<ClientEvent>) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| format!("timed out waiting for {what}"))?;
            // Answer the mailbox's forwarded pushes whatever we wait for.
            let event = match event {
                SwarmEvent::Behaviour(ClientBehaviourEvent::Gate(Gated::Inner(
                    ClientServicesEvent::Sync(request_response::Event::Message {
                        message:
                            request_response::Message::Request {
                                request, channel, ..
                            },
                        ..
                    }),
                ))) => {
                    if let Some(SyncRequest::Push { items }) = sync::decode(&request) {
                        self.pushed.extend(items);
                    }
                    let ack = sync::encode(&SyncResponse::Ack {
                        accepted: 0,
                        rejected: 0,
                    });
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .gate
                        .inner
                        .sync
                        .send_response(channel, ack);
                    continue;
                }
                other => other,
            };
            if let Some(value) = done(self, event) {
                return Ok(value);
            }
        }
    }

    /// Opens a new connection to `peer` at `addr` that carries the services on this side
    /// (whether or not the mailbox admitted us); its id.
    pub async fn connect(
        &mut self,
        peer: PeerId,
        addr: &Multiaddr,
    ) -> Result<ConnectionId, String> {
        self.swarm
            .behaviour_mut()
            .gate
            .admit(peer, MAILBOX_PLACEHOLDER);
        self.connect_raw(peer, addr).await
    }

    async fn connect_raw(
        &mut self,
        peer: PeerId,
        addr: &Multiaddr,
    ) -> Result<ConnectionId, String> {
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::Always)
            .build();
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| e.to_string())?;
        self.until("a connection", |_, e| match e {
            SwarmEvent::ConnectionEstablished { connection_id, .. } if connection_id == id => {
                Some(Ok(id))
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } if connection_id == id => Some(Err(error.to_string())),
            _ => None,
        })
        .await?
    }

    async fn admission_request(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let id = self
            .swarm
            .behaviour_mut()
            .admission
            .send_request(&peer, request);
        self.until("an admission answer", |_, e| match e {
            SwarmEvent::Behaviour(ClientBehaviourEvent::Admission(
                request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                },
            )) if request_id == id => Some(Ok(response)),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Admission(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) if request_id == id => Some(Err(error.to_string())),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == peer => Some(Err("the mailbox hung up".into())),
            _ => None,
        })
        .await?
    }

    /// Sends only an `Open` over a new connection (as any stranger can) and returns the
    /// mailbox's `Accept` as received.
    pub async fn open_only(
        &mut self,
        mailbox: PeerId,
        addr: &Multiaddr,
    ) -> Result<Vec<u8>, String> {
        self.connect_raw(mailbox, addr).await?;
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let (_, open) = MailboxDialer::start(self.peer_id(), mailbox, nonce);
        self.admission_request(mailbox, open).await
    }

    /// Runs admission with the member key `signing` over a new connection, then (if admitted)
    /// opens the connection that carries the services and closes the first. Without a bind
    /// secret: an unbound mailbox is not offered the genesis.
    pub async fn admit(
        &mut self,
        mailbox: PeerId,
        addr: &Multiaddr,
        signing: &SigningKey,
        collective: CollectiveId,
        genesis: &[u8],
    ) -> Result<Welcome, String> {
        self.admit_binding(mailbox, addr, signing, collective, genesis, None)
            .await
    }

    /// As [`Self::admit`], holding the mailbox's bind secret (as a moderator's node that added
    /// it from its pairing code does): an unbound mailbox gets the genesis and the bind tag.
    pub async fn admit_binding(
        &mut self,
        mailbox: PeerId,
        addr: &Multiaddr,
        signing: &SigningKey,
        collective: CollectiveId,
        genesis: &[u8],
        bind_secret: Option<&[u8; 32]>,
    ) -> Result<Welcome, String> {
        self.connect_raw(mailbox, addr).await?;
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let (mut dialer, open) = MailboxDialer::start(self.peer_id(), mailbox, nonce);
        let accept = self.admission_request(mailbox, open).await?;
        let prove = dialer
            .on_accept(signing, collective, genesis, bind_secret, &accept, |_| true)
            .map_err(|e| e.to_string())?;
        let verdict = self.admission_request(mailbox, prove).await?;
        let welcome = dialer.on_verdict(&verdict).map_err(|e| e.to_string())?;
        // As a member's node does: a fresh connection carries the services; the admission
        // connection closes when idle.
        self.connect(mailbox, addr).await?;
        Ok(welcome)
    }

    /// One sync request to `peer`.
    pub async fn request(
        &mut self,
        peer: PeerId,
        request: &SyncRequest,
    ) -> Result<SyncResponse, String> {
        let id = self
            .swarm
            .behaviour_mut()
            .gate
            .inner
            .sync
            .send_request(&peer, sync::encode(request));
        let bytes = self
            .until("a sync answer", |_, e| match e {
                SwarmEvent::Behaviour(ClientBehaviourEvent::Gate(Gated::Inner(
                    ClientServicesEvent::Sync(request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    }),
                ))) if request_id == id => Some(Ok(response)),
                SwarmEvent::Behaviour(ClientBehaviourEvent::Gate(Gated::Inner(
                    ClientServicesEvent::Sync(request_response::Event::OutboundFailure {
                        request_id,
                        error,
                        ..
                    }),
                ))) if request_id == id => Some(Err(error.to_string())),
                _ => None,
            })
            .await??;
        sync::decode(&bytes).ok_or_else(|| "undecodable sync answer".to_owned())
    }

    /// Pushes items; the mailbox's (accepted, rejected).
    pub async fn push(&mut self, peer: PeerId, items: Vec<WireItem>) -> Result<(u32, u32), String> {
        match self.request(peer, &SyncRequest::Push { items }).await? {
            SyncResponse::Ack { accepted, rejected } => Ok((accepted, rejected)),
            other => Err(format!("{other:?}")),
        }
    }

    /// Every item of `kind` the mailbox holds, by reconciling an empty set and fetching.
    pub async fn fetch_all(
        &mut self,
        peer: PeerId,
        kind: SetKind,
    ) -> Result<Vec<WireItem>, String> {
        let mut ids = Vec::new();
        let empty: [lookout_protocol::reconcile::Item; 0] = [];
        let mut reconciler =
            lookout_protocol::reconcile::Reconciler::new(&empty, sync::RECONCILE_LIMITS)
                .map_err(|e| e.to_string())?;
        let mut message = reconciler.initiate().map_err(|e| e.to_string())?;
        let mut have = Vec::new();
        for _ in 0..sync::MAX_ROUNDS {
            let answer = self
                .request(peer, &SyncRequest::Reconcile { kind, message })
                .await?;
            let SyncResponse::Reconcile { message: theirs } = answer else {
                return Err(format!("{answer:?}"));
            };
            let mut r =
                lookout_protocol::reconcile::Reconciler::new(&empty, sync::RECONCILE_LIMITS)
                    .map_err(|e| e.to_string())?;
            r.resume_as_initiator();
            match r
                .reconcile(&theirs, &mut have, &mut ids)
                .map_err(|e| e.to_string())?
            {
                Some(next) => message = next,
                None => break,
            }
        }
        let mut items = Vec::new();
        for chunk in ids.chunks(sync::MAX_FETCH_IDS) {
            match self
                .request(
                    peer,
                    &SyncRequest::Fetch {
                        kind,
                        ids: chunk.to_vec(),
                    },
                )
                .await?
            {
                SyncResponse::Items { items: got } => items.extend(got),
                other => return Err(format!("{other:?}")),
            }
        }
        Ok(items)
    }

    /// Asks the relay at `relay_addr` (whose peer is `relay`) for a reservation.
    pub async fn reserve(&mut self, relay: PeerId, relay_addr: &Multiaddr) -> RelayOutcome {
        let circuit = relay_addr
            .clone()
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        let listener = match self.swarm.listen_on(circuit) {
            Ok(id) => id,
            Err(e) => return RelayOutcome::Refused(e.to_string()),
        };
        let result = self
            .until("a reservation", |_, e| match e {
                SwarmEvent::Behaviour(ClientBehaviourEvent::Gate(Gated::Inner(
                    ClientServicesEvent::Relay(relay::client::Event::ReservationReqAccepted {
                        ..
                    }),
                ))) => Some(RelayOutcome::Granted),
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } if listener_id == listener => Some(RelayOutcome::Refused(format!("{reason:?}"))),
                SwarmEvent::ListenerError { listener_id, error } if listener_id == listener => {
                    Some(RelayOutcome::Refused(error.to_string()))
                }
                _ => None,
            })
            .await;
        result.unwrap_or_else(RelayOutcome::Refused)
    }

    /// Dials `target` through the relay; whether a circuit came up.
    pub async fn circuit(
        &mut self,
        relay: PeerId,
        relay_addr: &Multiaddr,
        target: PeerId,
    ) -> RelayOutcome {
        let addr = relay_addr
            .clone()
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(target));
        let opts = DialOpts::peer_id(target)
            .addresses(vec![addr])
            .condition(PeerCondition::Always)
            .build();
        let id = opts.connection_id();
        if let Err(e) = self.swarm.dial(opts) {
            return RelayOutcome::Refused(e.to_string());
        }
        self.until("a circuit", |_, e| match e {
            SwarmEvent::ConnectionEstablished { connection_id, .. } if connection_id == id => {
                Some(RelayOutcome::Granted)
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } if connection_id == id => Some(RelayOutcome::Refused(error.to_string())),
            _ => None,
        })
        .await
        .unwrap_or_else(RelayOutcome::Refused)
    }

    /// Pumps the swarm for `period` (answering pushes, keeping circuits served).
    pub async fn pump(&mut self, period: Duration) {
        let _ = tokio::time::timeout(period, async {
            let _: Result<(), String> = self.until("nothing", |_, _| None).await;
        })
        .await;
    }

    /// Whether any connection to `peer` is open.
    pub fn connected_to(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// The member key of a replica, for admission.
pub fn signing_key(replica: &Replica) -> SigningKey {
    SigningKey::from_bytes(&replica.identity().ed25519_seed())
}

/// A replica's member id.
pub fn member_of(replica: &Replica) -> MemberId {
    replica.identity().member_id()
}
