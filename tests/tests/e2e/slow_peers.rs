//! Slow peers: half-open TCP connections that never finish the handshake, a handshake sent a
//! byte at a time, and a member that opens more sync streams than allowed and drips each
//! request a byte at a time. The node must stay up and keep exchanging alerts with the honest
//! member it is connected to, the slow streams and connections must be dropped by the node's
//! own timeouts, and a member must be able to connect while the strangers keep at it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io;
use std::time::{Duration, Instant};

use libp2p::futures::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, SwarmBuilder};
use lookout_node::net::{
    read_frame, DEFAULT_REQUEST_TIMEOUT, MAX_CONCURRENT_SYNC_STREAMS, MAX_RESPONSE_BYTES,
    SYNC_PROTOCOL,
};
use lookout_node::net::{Credentials, Gated, MemberGate};
use lookout_node::replica::SetKind;
use lookout_node::sync::{self, SyncRequest};
use lookout_protocol::membership::Policy;
use lookout_tests::rogue::{hello_behaviour, hello_of, HelloDriver, Redialer};
use lookout_tests::*;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

/// Half-open TCP connections held at once: more than the node lets wait in their handshake.
const HALF_OPEN: usize = 40;
/// Where the strangers connect from: another loopback address than the members' (the node
/// limits handshakes per address).
const STRANGER: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)),
    0,
);
/// Handshakes sent a byte at a time.
const DRIPPED_HANDSHAKES: usize = 4;
/// Slow sync requests the member opens: more than the streams one connection may have.
const SLOW_REQUESTS: usize = MAX_CONCURRENT_SYNC_STREAMS + 8;
/// Pause between the bytes of a slow request.
const DRIP: Duration = Duration::from_millis(250);
/// How long the slow peers keep at it.
const ATTACK: Duration = Duration::from_secs(30);
/// Longest an honest alert may take meanwhile.
const MAX_HONEST_LATENCY: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_peers_are_timed_out_and_alerts_keep_flowing() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let mut collective = Collective::new(3, Policy::default());
        collective.share_state();
        let slow_member = collective.replicas.pop().unwrap();
        let creds = hello_of(&slow_member);
        // Member 2 starts only during the attack, to check the node still takes new connections.
        let late = collective.replicas.pop().unwrap();
        let (dir, nodes) = collective.start().await;
        let (victim, honest) = (&nodes[0], &nodes[1]);
        eventually("the honest member connects", || async {
            (victim.peers().await == 1).then_some(())
        })
        .await;
        let target = listen_addr(victim).await;
        let port = target
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();

        // Strangers: half-open connections, kept topped up, and handshakes a byte at a time.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let half_open = tokio::spawn(hold_half_open(port, stopped.clone()));
        let dripped: Vec<_> = (0..DRIPPED_HANDSHAKES)
            .map(|_| tokio::spawn(drip_handshake(port, stopped.clone())))
            .collect();
        // The member: slow sync requests on one connection.
        let slow = SlowMember::spawn(creds);
        slow.dial(target.clone()).await;
        slow.wait_connected(victim.handle.peer_id()).await;
        let request = sync::encode(&SyncRequest::Reconcile {
            kind: SetKind::Envelopes,
            message: vec![0; 200],
        });
        let mut frame = (request.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&request);
        let sent = Instant::now();
        for _ in 0..SLOW_REQUESTS {
            slow.request(victim.handle.peer_id(), frame.clone()).await;
        }

        // Honest alerts both ways, every second, timed.
        let start = Instant::now();
        let mut latencies = Vec::new();
        let mut n = 0u32;
        while start.elapsed() < ATTACK {
            let (from, to) = if n.is_multiple_of(2) {
                (honest, victim)
            } else {
                (victim, honest)
            };
            let posted = Instant::now();
            let id = from
                .post(draft(&format!("honest alert {n}"), "07700 900700"))
                .await;
            eventually("an honest alert arrives", || async {
                to.has_alert(&id).await.then_some(())
            })
            .await;
            latencies.push(posted.elapsed());
            n += 1;
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(posted.elapsed())).await;
        }
        let worst = latencies.iter().max().copied().unwrap();
        let outcomes = slow.outcomes();

        // While the strangers still hold their half-open connections, a member that starts now
        // can connect (each address gets only a few handshake slots).
        let late = start_node(late).await;
        connect(&late, victim).await;
        eventually("a member connects during the attack", || async {
            (late.peers().await >= 1).then_some(())
        })
        .await;
        stop.send(true).unwrap();
        let held = half_open.await.unwrap();
        for drip in dripped {
            drip.await.unwrap();
        }
        let ended: Vec<Duration> = outcomes.ended.iter().map(|t| *t - sent).collect();
        let refused_at_once = ended
            .iter()
            .filter(|d| **d < Duration::from_secs(5))
            .count();
        let last_ended = ended.iter().max().copied().unwrap_or_default();
        println!(
            "slow peers {}s: {held} half-open TCP connections opened, {DRIPPED_HANDSHAKES} \
             handshakes dripped, {SLOW_REQUESTS} slow sync requests ({refused_at_once} refused \
             at once, {} ended by the node, the last after {} ms; {} answered); {} honest \
             alerts, worst latency {} ms",
            ATTACK.as_secs(),
            ended.len(),
            last_ended.as_millis(),
            outcomes.answered,
            latencies.len(),
            worst.as_millis()
        );
        assert!(
            worst <= MAX_HONEST_LATENCY,
            "an honest alert took {worst:?}"
        );
        assert!(
            held > HALF_OPEN,
            "the node dropped half-open connections itself (they were reopened)"
        );
        assert_eq!(
            outcomes.answered, 0,
            "a request dripped a byte every {DRIP:?} cannot finish in time"
        );
        assert_eq!(
            ended.len(),
            SLOW_REQUESTS,
            "every slow request was ended by the node"
        );
        assert!(
            refused_at_once >= SLOW_REQUESTS - MAX_CONCURRENT_SYNC_STREAMS,
            "streams over the per-connection cap are refused at once"
        );
        assert!(
            last_ended <= DEFAULT_REQUEST_TIMEOUT + Duration::from_secs(5),
            "the node's request timeout ends slow streams (the last took {last_ended:?})"
        );

        // The node is fine and takes the new member's alerts.
        let id = late
            .post(draft("after the slow peers", "07700 900701"))
            .await;
        eventually("its alert arrives", || async {
            victim.has_alert(&id).await.then_some(())
        })
        .await;
        drop(dir);
    })
    .await
    .expect("scenario timed out");
}

/// Keep [`HALF_OPEN`] TCP connections open to `port` that never send a byte, replacing each
/// one the node closes, until told to stop. Returns how many were opened in all.
async fn hold_half_open(port: u16, mut stop: tokio::sync::watch::Receiver<bool>) -> usize {
    let mut opened = 0;
    let mut open = Vec::new();
    loop {
        open.retain(|s: &tokio::net::TcpStream| {
            // A closed peer shows as readable with zero bytes.
            let mut probe = [0u8; 1];
            !matches!(s.try_read(&mut probe), Ok(0))
        });
        while open.len() < HALF_OPEN {
            if let Ok(s) = connect_from_stranger(port).await {
                open.push(s);
                opened += 1;
            }
        }
        tokio::select! {
            _ = stop.changed() => return opened,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// A TCP connection to the node from the stranger's address.
async fn connect_from_stranger(port: u16) -> io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(STRANGER)?;
    socket.connect(([127, 0, 0, 1], port).into()).await
}

/// Send a libp2p handshake opening a byte at a time, until told to stop.
async fn drip_handshake(port: u16, mut stop: tokio::sync::watch::Receiver<bool>) {
    let opening = b"\x13/multistream/1.0.0\n\x07/noise\n";
    let Ok(mut stream) = connect_from_stranger(port).await else {
        return;
    };
    for byte in opening.iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(DRIP) => {}
        }
    }
}

/// How the slow member's requests ended, and when.
#[derive(Debug, Default, Clone)]
struct Outcomes {
    answered: usize,
    /// When each failed one (refused, reset or closed by the node) ended.
    ended: Vec<Instant>,
}

enum Command {
    Dial(Multiaddr),
    Request(PeerId, Vec<u8>),
}

/// A swarm with a member's key whose sync requests go out a byte at a time.
struct SlowMember {
    commands: mpsc::Sender<Command>,
    connected: tokio::sync::watch::Receiver<Option<PeerId>>,
    outcomes: tokio::sync::watch::Receiver<Outcomes>,
}

#[derive(NetworkBehaviour)]
struct SlowInner {
    sync: request_response::Behaviour<DripCodec>,
}

#[derive(NetworkBehaviour)]
struct SlowBehaviour {
    hello: request_response::Behaviour<lookout_node::net::HelloCodec>,
    gate: MemberGate<SlowInner>,
}

impl SlowMember {
    /// A swarm with a fresh transport key that proves `creds` in the hello.
    fn spawn(creds: Credentials) -> Self {
        let keypair = Keypair::generate_ed25519();
        let sync = request_response::Behaviour::with_codec(
            DripCodec,
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            // Its own timeout is far longer than the node's: the node must end the streams.
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(600))
                .with_max_concurrent_streams(SLOW_REQUESTS * 2),
        );
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| SlowBehaviour {
                hello: hello_behaviour(),
                gate: MemberGate::new(SlowInner { sync }, Default::default()),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        let (commands, mut rx) = mpsc::channel(64);
        let (connected_tx, connected) = tokio::sync::watch::channel(None);
        let (outcomes_tx, outcomes) = tokio::sync::watch::channel(Outcomes::default());
        let mut driver = HelloDriver::new(Some(creds));
        let mut redialer = Redialer::default();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(addr) = redialer.due() => { let _ = swarm.dial(addr); }
                    command = rx.recv() => match command {
                        None => return,
                        Some(Command::Dial(addr)) => {
                            redialer.dialling(&addr);
                            let _ = swarm.dial(addr);
                        }
                        Some(Command::Request(peer, bytes)) => {
                            swarm.behaviour_mut().gate.inner.sync.send_request(&peer, bytes);
                        }
                    },
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                            let local = *swarm.local_peer_id();
                            let b = swarm.behaviour_mut();
                            let (member, old) = driver.on_connected(local, &mut b.hello, &b.gate, peer_id, connection_id, &endpoint);
                            if let Some(old) = old {
                                swarm.close_connection(old);
                            }
                            if member {
                                redialer.carried(peer_id);
                                let _ = connected_tx.send(Some(peer_id));
                            }
                        }
                        SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), .. } => {
                            redialer.failed(peer);
                        }
                        SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                            redialer.closed(&peer_id);
                        }
                        SwarmEvent::Behaviour(SlowBehaviourEvent::Hello(
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
                        }
                        SwarmEvent::Behaviour(SlowBehaviourEvent::Gate(Gated::Inner(SlowInnerEvent::Sync(event)))) => {
                            outcomes_tx.send_modify(|o| match event {
                                request_response::Event::Message {
                                    message: request_response::Message::Response { .. }, ..
                                } => o.answered += 1,
                                request_response::Event::OutboundFailure { .. } => {
                                    o.ended.push(Instant::now());
                                }
                                _ => {}
                            });
                        }
                        _ => {}
                    }
                }
            }
        });
        Self {
            commands,
            connected,
            outcomes,
        }
    }

    async fn dial(&self, addr: Multiaddr) {
        self.commands.send(Command::Dial(addr)).await.unwrap();
    }

    async fn request(&self, peer: PeerId, frame: Vec<u8>) {
        self.commands
            .send(Command::Request(peer, frame))
            .await
            .unwrap();
    }

    async fn wait_connected(&self, peer: PeerId) {
        eventually("the slow member connects", || async {
            (*self.connected.borrow() == Some(peer)).then_some(())
        })
        .await;
    }

    fn outcomes(&self) -> Outcomes {
        self.outcomes.borrow().clone()
    }
}

/// Writes each request a byte every [`DRIP`]; reads responses as sync frames.
#[derive(Clone, Copy, Default)]
struct DripCodec;

impl request_response::Codec for DripCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        for byte in request {
            io.write_all(&[byte]).await?;
            io.flush().await?;
            tokio::time::sleep(DRIP).await;
        }
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&response).await?;
        io.close().await
    }
}
