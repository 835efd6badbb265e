//! Real-network tests of the libp2p layer: several swarms on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{future::select_all, io::Cursor, AsyncRead, AsyncWrite, StreamExt};
use libp2p::{
    gossipsub,
    identity::Keypair,
    multiaddr::Protocol,
    noise, request_response,
    swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder,
};
use lookout_node::net::{
    build_swarm, message_id, read_frame, Behaviour, BytesCodec, GateEvent, MessageAcceptance,
    MessageId, NetConfig, NetEvent, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SYNC_PROTOCOL,
};
use lookout_protocol::MemberId;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the driver re-checks its condition when no event arrives.
const TICK: Duration = Duration::from_millis(50);
const TOPIC: &str = "lookout-test-topic";
const HEARTBEAT: Duration = Duration::from_millis(200);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type Event = SwarmEvent<NetEvent>;

async fn within<F: Future<Output = ()>>(name: &str, test: F) {
    let started = Instant::now();
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within {TEST_TIMEOUT:?}"));
    eprintln!("{name}: passed in {:?}", started.elapsed());
}

fn tcp_loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

/// The member a test swarm stands for. These tests exercise the gate, not the hello: each
/// swarm is told up front which transport peer proved which member (the node's event loop does
/// that after the hello, see `tests/tests/e2e/non_member.rs`).
fn member(peer: &PeerId) -> MemberId {
    MemberId(*blake3::hash(&peer.to_bytes()).as_bytes())
}

fn config(listen: Multiaddr, allowed: &[PeerId]) -> NetConfig {
    NetConfig {
        listen: vec![listen],
        topic: TOPIC.into(),
        allowed: allowed.iter().map(member).collect(),
        gossip_heartbeat: HEARTBEAT,
        handshake_timeout: HANDSHAKE_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        ..NetConfig::default()
    }
}

fn topic_hash() -> gossipsub::TopicHash {
    gossipsub::IdentTopic::new(TOPIC).hash()
}

/// A set of nodes listening on loopback.
struct Net {
    swarms: Vec<Swarm<Behaviour>>,
    peers: Vec<PeerId>,
    addrs: Vec<Multiaddr>,
}

impl Net {
    /// `n` nodes, each allowing every one of them.
    async fn all_allowed(n: usize, listen: Multiaddr) -> Self {
        Self::all_allowed_with(n, |peers| config(listen.clone(), peers)).await
    }

    /// `n` nodes, each allowing every one of them, with the settings `cfg` makes from their
    /// peer ids.
    async fn all_allowed_with(n: usize, cfg: impl Fn(&[PeerId]) -> NetConfig) -> Self {
        let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate_ed25519()).collect();
        let peers: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
        let mut net = Net {
            swarms: Vec::new(),
            peers: Vec::new(),
            addrs: Vec::new(),
        };
        for key in keys {
            net.add(key, cfg(&peers), &peers).await;
        }
        net
    }

    /// Adds a swarm that takes each of `proven` as the member it stands for (if `cfg` allows
    /// that member).
    async fn add(&mut self, key: Keypair, cfg: NetConfig, proven: &[PeerId]) -> usize {
        let peer = key.public().to_peer_id();
        let mut swarm = build_swarm(key, &cfg).unwrap();
        for p in proven {
            swarm.behaviour_mut().gate.admit(*p, member(p));
        }
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        self.swarms.push(swarm);
        self.peers.push(peer);
        self.addrs.push(addr);
        self.swarms.len() - 1
    }

    fn dial(&mut self, from: usize, to: usize) {
        let opts = DialOpts::peer_id(self.peers[to])
            .addresses(vec![self.addrs[to].clone()])
            .build();
        self.swarms[from].dial(opts).unwrap();
    }

    /// Drives every swarm until `step` returns `Some`. `step` sees each event (with the index
    /// of the swarm that produced it) and, every [`TICK`] without events, `None`.
    async fn drive<T>(
        &mut self,
        mut step: impl FnMut(&mut [Swarm<Behaviour>], Option<(usize, Event)>) -> Option<T>,
    ) -> T {
        loop {
            let next = {
                let polls =
                    self.swarms.iter_mut().enumerate().map(|(i, swarm)| {
                        Box::pin(async move { (i, swarm.select_next_some().await) })
                    });
                tokio::time::timeout(TICK, select_all(polls))
                    .await
                    .ok()
                    .map(|(event, _, _)| event)
            };
            if let Some(done) = step(&mut self.swarms, next) {
                return done;
            }
        }
    }

    /// Drives every swarm for `period`, handing each event to `observe`.
    async fn drive_for(
        &mut self,
        period: Duration,
        mut observe: impl FnMut(&mut [Swarm<Behaviour>], Option<(usize, Event)>),
    ) {
        let deadline = Instant::now() + period;
        self.drive(|swarms, event| {
            observe(swarms, event);
            (Instant::now() >= deadline).then_some(())
        })
        .await
    }

    /// Drives until every (a, b) pair has b in a's gossip mesh.
    async fn wait_mesh(&mut self, pairs: &[(usize, usize)]) {
        let peers = self.peers.clone();
        let topic = topic_hash();
        self.drive(|swarms, _| {
            pairs
                .iter()
                .all(|&(a, b)| {
                    swarms[a]
                        .behaviour()
                        .gate
                        .inner
                        .gossipsub
                        .mesh_peers(&topic)
                        .any(|p| *p == peers[b])
                })
                .then_some(())
        })
        .await
    }
}

/// A received gossip message: (receiving node, propagation source, id, data).
fn as_gossip(event: Option<(usize, Event)>) -> Option<(usize, PeerId, MessageId, Vec<u8>)> {
    match event {
        Some((
            node,
            SwarmEvent::Behaviour(NetEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })),
        )) => Some((node, propagation_source, message_id, message.data)),
        _ => None,
    }
}

/// Publishes `data` from `from` and drives until `to` receives it, validating every copy
/// received on the way with `verdict(node, data)`.
async fn publish_until_received(
    net: &mut Net,
    from: usize,
    to: usize,
    data: &[u8],
    mut verdict: impl FnMut(usize, &[u8]) -> MessageAcceptance,
) {
    let id = net.swarms[from]
        .behaviour_mut()
        .publish(data.to_vec())
        .unwrap();
    assert_eq!(id, MessageId::new(&message_id(data)));
    net.drive(|swarms, event| {
        let (node, source, id, got) = as_gossip(event)?;
        swarms[node]
            .behaviour_mut()
            .report_validation(&id, &source, verdict(node, &got));
        (node == to && got == data).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_forwarded_only_after_accept_and_offenders_are_graylisted() {
    within("gossip", async {
        // A line: A - B - C. C can only hear A through B.
        let mut net = Net::all_allowed(3, tcp_loopback()).await;
        let (a, b, c) = (0, 1, 2);
        net.dial(b, a);
        net.dial(b, c);
        net.wait_mesh(&[(a, b), (b, a), (b, c), (c, b)]).await;

        // 1. B rejects m1: C must never see it.
        let m1 = b"forged alert".to_vec();
        publish_until_received(&mut net, a, b, &m1, |_, _| MessageAcceptance::Reject).await;
        let score = net.swarms[b]
            .behaviour()
            .gate
            .inner
            .gossipsub
            .peer_score(&net.peers[a])
            .unwrap();
        assert!(
            score < 0.0,
            "a rejected message must lower A's score, got {score}"
        );

        // 2. B accepts m2: C receives it from B.
        let m2 = b"genuine alert".to_vec();
        let mut c_saw_m1 = false;
        let peer_b = net.peers[b];
        let id2 = net.swarms[a].behaviour_mut().publish(m2.clone()).unwrap();
        net.drive(|swarms, event| {
            let (node, source, id, data) = as_gossip(event)?;
            c_saw_m1 |= node == c && data == m1;
            swarms[node]
                .behaviour_mut()
                .report_validation(&id, &source, MessageAcceptance::Accept);
            (node == c && id == id2).then(|| assert_eq!(source, peer_b))
        })
        .await;
        // Give gossip (IHAVE/IWANT) a few heartbeats to leak m1 if it were going to.
        net.drive_for(HEARTBEAT * 5, |swarms, event| {
            if let Some((node, source, id, data)) = as_gossip(event) {
                c_saw_m1 |= node == c && data == m1;
                swarms[node].behaviour_mut().report_validation(
                    &id,
                    &source,
                    MessageAcceptance::Accept,
                );
            }
        })
        .await;
        assert!(!c_saw_m1, "B forwarded a message it rejected");

        // 3. Two more rejections graylist A at B: B then ignores A entirely.
        for forged in [b"forged 2".as_slice(), b"forged 3".as_slice()] {
            publish_until_received(&mut net, a, b, forged, |_, _| MessageAcceptance::Reject).await;
        }
        let score = net.swarms[b]
            .behaviour()
            .gate
            .inner
            .gossipsub
            .peer_score(&net.peers[a])
            .unwrap();
        assert!(
            score < lookout_node::net::GRAYLIST_THRESHOLD,
            "score {score}"
        );
        let m5 = b"anything from a graylisted peer".to_vec();
        net.swarms[a].behaviour_mut().publish(m5.clone()).unwrap();
        let mut m5_seen = false;
        net.drive_for(HEARTBEAT * 5, |_, event| {
            if let Some((node, _, _, data)) = as_gossip(event) {
                m5_seen |= data == m5 && node != a;
            }
        })
        .await;
        assert!(!m5_seen, "a graylisted peer's message was processed");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unproven_peer_gets_no_collective_protocol() {
    within("non-member", async {
        let mut net = Net::all_allowed(2, tcp_loopback()).await;
        let (member, good) = (0, 1);
        net.dial(good, member);
        net.wait_mesh(&[(member, good), (good, member)]).await;

        // The stranger takes the member for one (it would like to talk); the member never
        // learnt that the stranger proved anything.
        let stranger_key = Keypair::generate_ed25519();
        let stranger_peer = stranger_key.public().to_peer_id();
        let member_peer = net.peers[member];
        let stranger = net
            .add(
                stranger_key,
                config(tcp_loopback(), &[member_peer]),
                &[member_peer],
            )
            .await;
        net.dial(stranger, member);
        net.drive(|swarms, _| swarms[stranger].is_connected(&member_peer).then_some(()))
            .await;

        // Connected (the hello would run now), but no collective protocol: no subscription,
        // no identify, no sync. (The stranger's own gossipsub finds the protocol unsupported.)
        let mut leaked = Vec::new();
        let mut unsupported = false;
        net.drive_for(HEARTBEAT * 5, |_, event| match event {
            Some((
                n,
                SwarmEvent::Behaviour(NetEvent::Gossip(gossipsub::Event::GossipsubNotSupported {
                    ..
                })),
            )) if n == stranger => unsupported = true,
            Some((
                n,
                SwarmEvent::Behaviour(NetEvent::Gossip(
                    e @ (gossipsub::Event::Subscribed { .. } | gossipsub::Event::Message { .. }),
                )),
            )) if n == stranger => leaked.push(format!("{e:?}")),
            Some((n, SwarmEvent::Behaviour(NetEvent::Identify(e))))
                if n == stranger && matches!(*e, libp2p::identify::Event::Received { .. }) =>
            {
                leaked.push(format!("{e:?}"))
            }
            Some((n, SwarmEvent::Behaviour(NetEvent::Sync(e)))) if n == member => {
                leaked.push(format!("{e:?}"))
            }
            _ => {}
        })
        .await;
        assert!(leaked.is_empty(), "a collective protocol ran: {leaked:?}");
        assert!(
            unsupported,
            "the member's side offered gossipsub to an unproven peer"
        );
        assert!(!net.swarms[member]
            .behaviour()
            .gate
            .has_member_connection(&stranger_peer));

        // A sync request fails and never reaches the member.
        let request = net.swarms[stranger]
            .behaviour_mut()
            .request(&member_peer, b"give me everything".to_vec());
        net.drive(|_, event| match event {
            Some((
                n,
                SwarmEvent::Behaviour(NetEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    ..
                })),
            )) if n == stranger && request_id == request => Some(()),
            Some((n, SwarmEvent::Behaviour(NetEvent::Sync(e)))) if n == member => {
                leaked.push(format!("{e:?}"));
                None
            }
            _ => None,
        })
        .await;
        assert!(leaked.is_empty(), "sync reached the member: {leaked:?}");

        // A gossip from the member reaches the good peer but not the stranger.
        let mut stranger_got = false;
        let alert = b"alert for members only".to_vec();
        net.swarms[member]
            .behaviour_mut()
            .publish(alert.clone())
            .unwrap();
        net.drive(|swarms, event| {
            let (node, source, id, data) = as_gossip(event)?;
            stranger_got |= node == stranger;
            swarms[node]
                .behaviour_mut()
                .report_validation(&id, &source, MessageAcceptance::Accept);
            (node == good && data == alert).then_some(())
        })
        .await;
        net.drive_for(HEARTBEAT * 3, |_, event| {
            stranger_got |= as_gossip(event).is_some_and(|(node, ..)| node == stranger);
        })
        .await;
        assert!(!stranger_got, "gossip reached a non-member");
    })
    .await
}

/// A member connection outside the gossip mesh stays open past the idle timeout, so a quiet
/// collective does not reconnect (a handshake, a hello and a sync each time) as periodic syncs
/// grow rarer: gossipsub's handler asks to keep only mesh peers' connections, but the gossip
/// streams it holds open with every member count as active; ping's do not. A connection that
/// proved nothing still closes when idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_connection_outside_the_mesh_stays_open_when_idle() {
    within("idle member connection", async {
        let idle = Duration::from_secs(1);
        let mut net = Net::all_allowed_with(2, |peers| NetConfig {
            idle_timeout: idle,
            ..config(tcp_loopback(), peers)
        })
        .await;
        let (a, b) = (0, 1);
        // Neither is in the other's mesh: b never joins the topic.
        let topic = gossipsub::IdentTopic::new(TOPIC);
        net.swarms[b]
            .behaviour_mut()
            .gate
            .inner
            .gossipsub
            .unsubscribe(&topic);
        net.dial(a, b);
        let (peer_a, peer_b) = (net.peers[a], net.peers[b]);
        net.drive(|swarms, _| swarms[a].is_connected(&peer_b).then_some(()))
            .await;

        // A stranger (proves nothing) connects to a as well.
        let stranger_key = Keypair::generate_ed25519();
        let stranger = net
            .add(
                stranger_key,
                NetConfig {
                    idle_timeout: idle,
                    ..config(tcp_loopback(), &[])
                },
                &[],
            )
            .await;
        net.dial(stranger, a);
        net.drive(|swarms, _| swarms[stranger].is_connected(&peer_a).then_some(()))
            .await;

        let mut closed = Vec::new();
        net.drive_for(idle * 5, |_, event| {
            if let Some((n, SwarmEvent::ConnectionClosed { peer_id, cause, .. })) = event {
                closed.push((n, peer_id, format!("{cause:?}")));
            }
        })
        .await;
        let member_closed: Vec<_> = closed
            .iter()
            .filter(|(n, p, _)| (*n == a && *p == peer_b) || (*n == b && *p == peer_a))
            .collect();
        assert!(
            member_closed.is_empty(),
            "the idle member connection closed: {member_closed:?}"
        );
        assert!(net.swarms[a].is_connected(&peer_b));
        assert!(
            !net.swarms[stranger].is_connected(&peer_a),
            "the stranger's idle connection stayed open: {closed:?}"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_disconnects_it_and_keeps_it_out() {
    within("set_allowed", async {
        let mut net = Net::all_allowed(2, tcp_loopback()).await;
        let (a, b) = (0, 1);
        net.dial(b, a);
        let (peer_a, peer_b) = (net.peers[a], net.peers[b]);
        net.drive(|swarms, _| {
            (swarms[a].is_connected(&peer_b) && swarms[b].is_connected(&peer_a)).then_some(())
        })
        .await;

        let forbidden = net.swarms[a]
            .behaviour_mut()
            .gate
            .set_allowed(HashSet::from([member(&peer_a)]), &HashSet::new());
        assert_eq!(forbidden, vec![peer_b]);
        let mut evicted = false;
        net.drive(|swarms, event| {
            if let Some((0, SwarmEvent::Behaviour(NetEvent::Gate(GateEvent::Evicted { peer })))) =
                event
            {
                evicted |= peer == peer_b;
            }
            (evicted && !swarms[a].is_connected(&peer_b) && !swarms[b].is_connected(&peer_a))
                .then_some(())
        })
        .await;

        // B comes back: it may connect (and would have to run the hello), but its old proof
        // is gone and the collective's protocols stay off.
        net.dial(b, a);
        net.drive(|swarms, _| swarms[b].is_connected(&peer_a).then_some(()))
            .await;
        let mut leaked = Vec::new();
        net.drive_for(Duration::from_millis(800), |_, event| {
            if let Some((n, SwarmEvent::Behaviour(NetEvent::Gossip(e)))) = event {
                leaked.push((n, format!("{e:?}")));
            }
        })
        .await;
        assert!(leaked.is_empty(), "{leaked:?}");
        assert_eq!(net.swarms[a].behaviour().gate.member_of(&peer_b), None);
        assert!(!net.swarms[a]
            .behaviour()
            .gate
            .has_member_connection(&peer_b));
    })
    .await
}

/// Drives `net` until node `from`'s request `id` is answered or fails; inbound requests are
/// answered with `respond(request)`.
async fn exchange(
    net: &mut Net,
    from: usize,
    id: request_response::OutboundRequestId,
    respond: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, request_response::OutboundFailure> {
    net.drive(|swarms, event| {
        let Some((node, SwarmEvent::Behaviour(NetEvent::Sync(event)))) = event else {
            return None;
        };
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = swarms[node]
                    .behaviour_mut()
                    .respond(channel, respond(&request));
                None
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } if node == from && request_id == id => Some(Ok(response)),
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } if node == from && request_id == id => Some(Err(error)),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_round_trip_and_oversized_frames() {
    within("sync", async {
        let evil_key = Keypair::generate_ed25519();
        let evil_peer = evil_key.public().to_peer_id();
        let keys: Vec<Keypair> = (0..2).map(|_| Keypair::generate_ed25519()).collect();
        let mut allowed: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
        allowed.push(evil_peer);
        let mut net = Net {
            swarms: Vec::new(),
            peers: Vec::new(),
            addrs: Vec::new(),
        };
        for key in keys {
            net.add(key, config(tcp_loopback(), &allowed), &allowed)
                .await;
        }
        let (a, b) = (0, 1);
        net.dial(a, b);
        let peer_b = net.peers[b];

        // Round trip.
        let id = net.swarms[a]
            .behaviour_mut()
            .request(&peer_b, b"have?".to_vec());
        let answer = exchange(&mut net, a, id, |req| {
            [req, b" -> have".as_slice()].concat()
        })
        .await;
        assert_eq!(answer.unwrap(), b"have? -> have".to_vec());

        // B tries to answer with one byte too many: the codec refuses to send it and A gets a
        // failure instead of a response.
        let started = Instant::now();
        let id = net.swarms[a]
            .behaviour_mut()
            .request(&peer_b, b"everything".to_vec());
        let answer = exchange(&mut net, a, id, |_| vec![0u8; MAX_RESPONSE_BYTES + 1]).await;
        assert!(answer.is_err(), "an oversized response was delivered");
        assert!(
            started.elapsed() < REQUEST_TIMEOUT,
            "failure came only by timeout"
        );

        // A requester may not send an oversized request either.
        let id = net.swarms[a]
            .behaviour_mut()
            .request(&peer_b, vec![0u8; MAX_REQUEST_BYTES + 1]);
        let answer = exchange(&mut net, a, id, |_| b"unreachable".to_vec()).await;
        assert!(answer.is_err(), "an oversized request was answered");

        // A hostile member answers with a prefix claiming 4 GiB: A rejects it at once.
        let evil = tokio::spawn(run_evil_responder(evil_key, net.addrs[a].clone()));
        net.drive(|swarms, _| swarms[a].is_connected(&evil_peer).then_some(()))
            .await;
        let started = Instant::now();
        let id = net.swarms[a]
            .behaviour_mut()
            .request(&evil_peer, b"have?".to_vec());
        let answer = exchange(&mut net, a, id, |_| Vec::new()).await;
        match answer {
            Err(request_response::OutboundFailure::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}")
            }
            other => panic!("expected an I/O failure, got {other:?}"),
        }
        assert!(started.elapsed() < REQUEST_TIMEOUT);
        evil.abort();

        // And the node still serves.
        let id = net.swarms[a]
            .behaviour_mut()
            .request(&peer_b, b"still there?".to_vec());
        let answer = exchange(&mut net, a, id, |_| b"yes".to_vec()).await;
        assert_eq!(answer.unwrap(), b"yes".to_vec());
    })
    .await
}

#[tokio::test]
async fn a_four_gib_length_prefix_is_rejected_before_allocation() {
    within("codec", async {
        use request_response::Codec as _;
        let mut codec = BytesCodec::default();
        // Claims 4 GiB - 1, carries three bytes.
        let mut wire = Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let err = codec
            .read_request(&SYNC_PROTOCOL, &mut wire)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Nothing beyond the prefix was consumed.
        assert_eq!(wire.position(), 4);

        let mut wire = Cursor::new(vec![0xff, 0xff, 0xff, 0xff]);
        let err = codec
            .read_response(&SYNC_PROTOCOL, &mut wire)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        // Within the cap but truncated.
        let mut wire = Cursor::new(vec![0, 0, 1, 0, 42]);
        let err = read_frame(&mut wire, MAX_REQUEST_BYTES).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    })
    .await
}

/// A codec that reads requests honestly and answers with a frame claiming 4 GiB.
#[derive(Clone, Default)]
struct LyingCodec;

impl request_response::Codec for LyingCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        use futures::AsyncWriteExt as _;
        io.write_all(&u32::MAX.to_be_bytes()).await?;
        io.write_all(b"a few bytes, then nothing").await?;
        io.flush().await
    }
}

async fn run_evil_responder(key: Keypair, target: Multiaddr) {
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                LyingCodec,
                [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(TEST_TIMEOUT))
        .build();
    swarm.dial(target).unwrap();
    loop {
        if let SwarmEvent::Behaviour(request_response::Event::Message {
            message: request_response::Message::Request { channel, .. },
            ..
        }) = swarm.select_next_some().await
        {
            let _ = swarm.behaviour_mut().send_response(channel, Vec::new());
        }
    }
}

fn socket_addr(addr: &Multiaddr) -> SocketAddr {
    let mut ip = None;
    let mut port = None;
    for part in addr.iter() {
        match part {
            Protocol::Ip4(v4) => ip = Some(v4.into()),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::new(ip.unwrap(), port.unwrap())
}

/// Connects to `target`, sends `bytes` spaced by `gap`, and counts into `closed` once the node
/// hangs up (EOF or error while reading or writing).
async fn garbage_connection(
    target: SocketAddr,
    bytes: Vec<u8>,
    gap: Duration,
    closed: Arc<AtomicUsize>,
) {
    let Ok(stream) = tokio::net::TcpStream::connect(target).await else {
        closed.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let (mut rx, mut tx) = stream.into_split();
    let writer = async move {
        if gap.is_zero() {
            let _ = tx.write_all(&bytes).await;
        } else {
            for byte in bytes {
                if tx.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(gap).await;
            }
        }
        // Keep the write half open so only the node can end the connection.
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut sink = [0u8; 1024];
        // Bounded: a node that keeps talking for 10_000 reads is a failure anyway.
        for _ in 0..10_000 {
            match rx.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    closed.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_garbage_does_not_disturb_members() {
    within("garbage", async {
        let mut net = Net::all_allowed(2, tcp_loopback()).await;
        let (a, b) = (0, 1);
        net.dial(b, a);
        net.wait_mesh(&[(a, b), (b, a)]).await;
        let target = socket_addr(&net.addrs[a]);

        let closed = Arc::new(AtomicUsize::new(0));
        let mut attackers = Vec::new();
        let mut rng = rand::thread_rng();
        // Random bursts.
        for _ in 0..4 {
            let mut bytes = vec![0u8; 64 * 1024];
            rng.fill_bytes(&mut bytes);
            attackers.push(tokio::spawn(garbage_connection(
                target,
                bytes,
                Duration::ZERO,
                closed.clone(),
            )));
        }
        // Slow trickles: one byte every 100 ms, longer than the handshake timeout allows.
        for _ in 0..4 {
            let mut bytes = vec![0u8; 100];
            rng.fill_bytes(&mut bytes);
            attackers.push(tokio::spawn(garbage_connection(
                target,
                bytes,
                Duration::from_millis(100),
                closed.clone(),
            )));
        }
        // A trickle that starts like a real multistream-select handshake.
        attackers.push(tokio::spawn(garbage_connection(
            target,
            b"\x13/multistream/1.0.0\n\x07/noise\n".to_vec(),
            Duration::from_millis(200),
            closed.clone(),
        )));
        let total = attackers.len();

        // Members keep talking while that goes on.
        publish_until_received(&mut net, a, b, b"still working", |_, _| {
            MessageAcceptance::Accept
        })
        .await;
        publish_until_received(&mut net, b, a, b"both ways", |_, _| {
            MessageAcceptance::Accept
        })
        .await;

        // And the node hangs up on every attacker within the handshake timeout (plus slack).
        let started = Instant::now();
        net.drive(|_, _| (closed.load(Ordering::SeqCst) == total).then_some(()))
            .await;
        assert!(started.elapsed() < HANDSHAKE_TIMEOUT * 3);
        assert!(net.swarms[a].is_connected(&net.peers[b]));
        publish_until_received(&mut net, a, b, b"after the storm", |_, _| {
            MessageAcceptance::Accept
        })
        .await;
        for attacker in attackers {
            attacker.abort();
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_connect_over_quic() {
    within("quic", async {
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
        let mut net = Net::all_allowed(2, quic).await;
        let (a, b) = (0, 1);
        assert!(net.addrs[a].iter().any(|p| p == Protocol::QuicV1));
        net.dial(b, a);
        let peer_a = net.peers[a];
        let mut over_quic = false;
        net.drive(|_, event| {
            if let Some((_, SwarmEvent::ConnectionEstablished { endpoint, .. })) = event {
                over_quic |= endpoint
                    .get_remote_address()
                    .iter()
                    .any(|p| p == Protocol::QuicV1);
            }
            over_quic.then_some(())
        })
        .await;
        let id = net.swarms[b]
            .behaviour_mut()
            .request(&peer_a, b"over quic".to_vec());
        let answer = exchange(&mut net, b, id, |req| req.to_vec()).await;
        assert_eq!(answer.unwrap(), b"over quic".to_vec());
        net.wait_mesh(&[(a, b), (b, a)]).await;
        publish_until_received(&mut net, a, b, b"quic gossip", |_, _| {
            MessageAcceptance::Accept
        })
        .await;
    })
    .await
}

/// The protocol names `observer` learns over identify on each of its connections with `peer`,
/// until `until` says it has seen enough.
async fn identified_protocols(
    net: &mut Net,
    observer: usize,
    until: impl Fn(&HashMap<ConnectionId, Vec<String>>) -> bool,
) -> HashMap<ConnectionId, Vec<String>> {
    let mut seen: HashMap<ConnectionId, Vec<String>> = HashMap::new();
    net.drive(|_, event| {
        if let Some((n, SwarmEvent::Behaviour(NetEvent::Identify(e)))) = event {
            if let libp2p::identify::Event::Received {
                connection_id,
                info,
                ..
            } = *e
            {
                if n == observer {
                    let names = info.protocols.iter().map(ToString::to_string).collect();
                    seen.insert(connection_id, names);
                }
            }
        }
        until(&seen).then(|| seen.clone())
    })
    .await
}

const RELAY_STOP: &str = "/libp2p/circuit/relay/0.2.0/stop";
const AUTONAT: &str = "/libp2p/autonat/1.0.0";

/// Issue 12: a member-to-member connection carries only what members use (gossip, sync,
/// identify, ping, the hello); the relay client and AutoNAT run only on connections with an
/// admitted mailbox. Every handler on a connection is polled at each of its wake-ups, so the
/// ones alerts never use cost CPU on every alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_connections_carry_no_mailbox_protocols() {
    within("member connections", async {
        let mut net = Net::all_allowed(2, tcp_loopback()).await;
        net.dial(1, 0);
        let seen = identified_protocols(&mut net, 1, |s| !s.is_empty()).await;
        let (first, names) = seen.iter().next().map(|(c, n)| (*c, n.clone())).unwrap();
        assert!(
            names.iter().any(|n| n == SYNC_PROTOCOL.as_ref()),
            "the member connection lacks sync: {names:?}"
        );
        for unwanted in [RELAY_STOP, AUTONAT] {
            assert!(
                !names.iter().any(|n| n == unwanted),
                "a member connection offers {unwanted}: {names:?}"
            );
        }

        // Once node 0 takes node 1 for an admitted mailbox, its next connection with it carries
        // the relay client and AutoNAT; the first one keeps what it had.
        let peer1 = net.peers[1];
        net.swarms[0].behaviour_mut().admit_mailbox(peer1, [7; 32]);
        let opts = DialOpts::peer_id(peer1)
            .addresses(vec![net.addrs[1].clone()])
            .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
            .build();
        net.swarms[0].dial(opts).unwrap();
        let seen = identified_protocols(&mut net, 1, |s| s.keys().any(|c| *c != first)).await;
        let (_, names) = seen.iter().find(|(c, _)| **c != first).unwrap();
        for wanted in [RELAY_STOP, AUTONAT] {
            assert!(
                names.iter().any(|n| n == wanted),
                "a mailbox connection lacks {wanted}: {names:?}"
            );
        }
    })
    .await
}
