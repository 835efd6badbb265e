//! Hostile peers: a node of another collective and a fresh identity cannot connect to a member or
//! inject anything; a member's key in a hostile program that sends garbage gossip, garbage and
//! oversized sync frames and junk bytes on the TCP port is survived and penalised.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Mutex;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, noise, tcp, yamux, Multiaddr, PeerId, SwarmBuilder};
use lookout_node::net::{Credentials, Gated, MemberGate, SYNC_PROTOCOL};
use lookout_node::replica::{SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest};
use lookout_protocol::membership::Policy;
use lookout_tests::rogue::{hello_behaviour, hello_of, HelloDriver, RawCodec, Redialer};
use lookout_tests::*;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_connect_or_inject() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let collective = Collective::new(1, Policy::default());
        let topic = collective.replicas[0]
            .membership()
            .unwrap()
            .collective()
            .topic();
        let (_dir, nodes) = collective.start().await;
        let (founder, member) = (&nodes[0], &nodes[1]);
        member.wait_members(2).await;
        let id = member
            .post(draft("before the outsiders", "07700 900511"))
            .await;
        eventually("alert arrives", || async {
            founder.has_alert(&id).await.then_some(())
        })
        .await;
        let target = listen_addr(founder).await;
        let before = founder.alert_ids().await;

        // The founder of another collective, running a real node, dials our founder.
        let (_other_dir, other) = Collective::new(0, Policy::default())
            .start_unconnected()
            .await;
        other[0].handle.dial(target.clone()).await.unwrap();

        // A fresh identity in a hostile program, on our topic.
        let stranger = RawPeer::spawn(None, &topic);
        stranger.send(Script::Dial(target.clone())).await;
        stranger
            .send(Script::Publish(b"not an item".to_vec()))
            .await;

        // The other collective's node fails the hello at once; the stranger, who never says
        // hello, is hung up on when its time to prove membership runs out.
        eventually("the node refuses both", || async {
            let denied = founder.handle.stats().await.unwrap().denied;
            (denied >= 2 && !stranger.connected_to(founder.handle.peer_id())).then_some(())
        })
        .await;
        never(
            "an outsider holds a connection to the founder",
            Duration::from_secs(2),
            || async { founder.peers().await != 1 || other[0].peers().await != 0 },
        )
        .await;
        assert!(!stranger.connected_to(founder.handle.peer_id()));
        assert_eq!(founder.alert_ids().await, before);
        assert_eq!(founder.handle.stats().await.unwrap().rejected, 0);
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_member_is_survived_and_penalised() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut collective = Collective::new(2, Policy::default());
        collective.share_state();
        // Member 2's key goes into a hostile program instead of a node.
        let hostile = collective.replicas.pop().unwrap();
        let creds = Some(hello_of(&hostile));
        let topic = hostile.membership().unwrap().collective().topic();
        let (_dir, nodes) = collective.start().await;
        let (founder, member) = (&nodes[0], &nodes[1]);
        founder.wait_members(3).await;
        let target = listen_addr(founder).await;

        // Junk bytes straight onto the TCP port, before and instead of a handshake.
        let tcp_port = target
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        for junk in [
            &b"\x13/multistream/1.0.0\n"[..],
            &[0xff; 70_000][..],
            b"GET / HTTP/1.1\r\n\r\n",
        ] {
            let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
                .await
                .unwrap();
            let _ = raw.write_all(junk).await;
        }

        let peer = RawPeer::spawn(creds, &topic);
        peer.send(Script::Dial(target.clone())).await;
        eventually("the member's key is admitted", || async {
            peer.subscribed(founder.handle.peer_id()).then_some(())
        })
        .await;

        // Gossip: undecodable bytes, an item whose envelope is garbage, an oversized message.
        peer.send(Script::Publish(vec![0xde, 0xad, 0xbe, 0xef]))
            .await;
        let forged = WireItem {
            kind: SetKind::Envelopes,
            bytes: vec![7; 600],
        };
        peer.send(Script::Publish(forged.encode())).await;
        let forged_op = WireItem {
            kind: SetKind::Ops,
            bytes: vec![1; 300],
        };
        peer.send(Script::Publish(forged_op.encode())).await;
        peer.send(Script::Publish(vec![0; 200 * 1024])).await;
        eventually("the founder rejects the forged gossip", || async {
            let stats = founder.handle.stats().await.unwrap();
            (stats.rejected >= 3).then_some(())
        })
        .await;

        // Sync: an oversized frame, a truncated one, undecodable requests, requests that break
        // the rules. Each decodable-but-bad one is a strike; five strikes disconnect.
        let peer_id = founder.handle.peer_id();
        peer.send(Script::Request(peer_id, frame_claiming(u32::MAX, b"")))
            .await;
        peer.send(Script::Request(peer_id, frame_claiming(1000, b"short")))
            .await;
        let bad_requests = [
            vec![0xff; 64],
            sync::encode(&SyncRequest::Fetch {
                kind: SetKind::Envelopes,
                ids: vec![[0; 32]; sync::MAX_FETCH_IDS + 1],
            }),
            sync::encode(&SyncRequest::Reconcile {
                kind: SetKind::Envelopes,
                message: vec![0xab; 512],
            }),
            sync::encode(&SyncRequest::Push {
                items: vec![forged.clone(); 4],
            }),
            vec![],
            vec![3, 1, 4, 1, 5, 9, 2, 6],
        ];
        for request in &bad_requests {
            let mut framed = (request.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(request);
            peer.send(Script::Request(peer_id, framed)).await;
        }
        eventually("the founder disconnects the misbehaving member", || async {
            peer.was_disconnected(founder.handle.peer_id())
                .then_some(())
        })
        .await;

        // The founder is still fine and still gets alerts.
        let id = member.post(draft("still standing", "07700 900512")).await;
        eventually("alerts still flow", || async {
            founder.has_alert(&id).await.then_some(())
        })
        .await;
        let status = founder.status().await;
        assert_eq!(status.alerts, 1, "nothing injected");
        assert!(status.peers >= 1);
    })
    .await
    .expect("scenario timed out");
}

/// A sync frame whose length prefix says `claimed` bytes, followed by `body`.
fn frame_claiming(claimed: u32, body: &[u8]) -> Vec<u8> {
    let mut frame = claimed.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// What the hostile program does next.
enum Script {
    Dial(Multiaddr),
    Publish(Vec<u8>),
    /// Raw bytes written on a sync stream as they are (frame them yourself).
    Request(PeerId, Vec<u8>),
}

/// What the hostile program saw.
#[derive(Debug)]
enum Seen {
    Connected(PeerId),
    Closed(PeerId),
    Subscribed(PeerId),
}

/// A libp2p swarm speaking Lookout's protocols without any of its rules.
struct RawPeer {
    script: mpsc::Sender<Script>,
    seen: Mutex<(mpsc::UnboundedReceiver<Seen>, Vec<Seen>)>,
}

#[derive(NetworkBehaviour)]
struct RawInner {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    hello: request_response::Behaviour<lookout_node::net::HelloCodec>,
    gate: MemberGate<RawInner>,
}

impl RawPeer {
    /// A raw swarm with a fresh transport key proving `creds` (`None`: a stranger).
    fn spawn(creds: Option<Credentials>, topic: &str) -> Self {
        let keypair = Keypair::generate_ed25519();
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
            RawCodec,
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
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
        let (script, mut commands) = mpsc::channel(16);
        let (report, seen) = mpsc::unbounded_channel();
        let mut driver = HelloDriver::new(creds);
        // The founder may refuse the first dial while the junk connections are in their
        // handshake (at most four per IP address at once): dial again, as a node would.
        let mut redialer = Redialer::default();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(addr) = redialer.due() => { let _ = swarm.dial(addr); }
                    command = commands.recv() => match command {
                        None => return,
                        Some(Script::Dial(addr)) => {
                            redialer.dialling(&addr);
                            let _ = swarm.dial(addr);
                        }
                        Some(Script::Publish(data)) => {
                            let _ = swarm.behaviour_mut().gate.inner.gossipsub.publish(topic.clone(), data);
                        }
                        Some(Script::Request(peer, bytes)) => {
                            swarm.behaviour_mut().gate.inner.sync.send_request(&peer, bytes);
                        }
                    },
                    event = swarm.select_next_some() => {
                        let seen = match event {
                            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                                let local = *swarm.local_peer_id();
                                let b = swarm.behaviour_mut();
                                let (member, old) = driver.on_connected(local, &mut b.hello, &b.gate, peer_id, connection_id, &endpoint);
                                if let Some(old) = old {
                                    swarm.close_connection(old);
                                }
                                if member {
                                    redialer.carried(peer_id);
                                }
                                Seen::Connected(peer_id)
                            }
                            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), .. } => {
                                redialer.failed(peer);
                                continue;
                            }
                            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                                redialer.closed(&peer_id);
                                Seen::Closed(peer_id)
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
                            _ => continue,
                        };
                        let _ = report.send(seen);
                    }
                }
            }
        });
        Self {
            script,
            seen: Mutex::new((seen, Vec::new())),
        }
    }

    async fn send(&self, step: Script) {
        self.script.send(step).await.unwrap();
        // Give the swarm a moment so steps go out in order and separately.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Everything seen so far.
    fn with_log<T>(&self, f: impl FnOnce(&[Seen]) -> T) -> T {
        let mut guard = self.seen.lock().unwrap();
        let (receiver, log) = &mut *guard;
        while let Ok(seen) = receiver.try_recv() {
            log.push(seen);
        }
        f(log)
    }

    fn subscribed(&self, peer: PeerId) -> bool {
        self.with_log(|log| {
            log.iter()
                .any(|s| matches!(s, Seen::Subscribed(p) if *p == peer))
        })
    }

    fn connected_to(&self, peer: PeerId) -> bool {
        self.with_log(|log| {
            let mut connected = false;
            for seen in log {
                match seen {
                    Seen::Connected(p) if *p == peer => connected = true,
                    Seen::Closed(p) if *p == peer => connected = false,
                    _ => {}
                }
            }
            connected
        })
    }

    fn was_disconnected(&self, peer: PeerId) -> bool {
        self.with_log(|log| {
            log.iter()
                .any(|s| matches!(s, Seen::Closed(p) if *p == peer))
        })
    }
}
