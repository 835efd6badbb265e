//! What a non-member learns from a member's node: nothing it can tie to the member.
//!
//! The node's transport key is fresh for every run, so the peer id the Noise handshake reveals
//! is not the member's key (and differs between runs). Membership is proven inside the channel
//! (`/lookout/hello/3`) before identify, ping, gossip or sync run, so a stranger who dials a
//! member, or who holds an address a member dials (a stale address on a hotel network), never
//! gets an identify message (listen addresses), a subscription (the collective's topic), a ping,
//! a sync answer or anything of the member's identity proof.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::identity::{ed25519, Keypair, PublicKey};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, noise, ping, tcp, yamux, Multiaddr, PeerId, SwarmBuilder};
use lookout_node::net::{BytesCodec, HelloCodec, HELLO_PROTOCOL, IDENTIFY_PROTOCOL, SYNC_PROTOCOL};
use lookout_node::sync::{self, SyncRequest};
use lookout_protocol::membership::Policy;
use lookout_protocol::MemberId;
use lookout_tests::*;

/// How often the stranger dials.
const ATTEMPTS: usize = 3;

/// The peer id a node would have if its transport key were the member's key (as it was).
fn member_key_peer(member: &MemberId) -> PeerId {
    let key = ed25519::PublicKey::try_from_bytes(&member.0).unwrap();
    PeerId::from_public_key(&PublicKey::from(key))
}

fn bare(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_dialling_a_member_learns_nothing_linkable() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let collective = Collective::new(1, Policy::default());
        let topic = collective.replicas[0]
            .membership()
            .unwrap()
            .collective()
            .topic();
        let (_dir, nodes) = collective.start().await;
        let member = &nodes[0];
        member.wait_members(2).await;
        eventually("the other member connects", || async {
            (member.peers().await == 1).then_some(())
        })
        .await;
        // The address as a stranger might know it: no peer id.
        let addr = bare(&listen_addr(member).await);

        let mut spy = Spy::new(&topic);
        let mut learned = Vec::new();
        for _ in 0..ATTEMPTS {
            learned.push(spy.dial_and_watch(addr.clone()).await);
        }

        let member_key = member_key_peer(&member.member);
        for what in &learned {
            assert!(what.peer.is_some(), "the stranger connected: {what:?}");
            assert_ne!(
                what.peer,
                Some(member_key),
                "the handshake reveals the member's key"
            );
            assert!(
                what.closed_after
                    .is_some_and(|d| d < Duration::from_secs(15)),
                "the member hangs up: {what:?}"
            );
            assert!(
                what.identify.is_empty(),
                "identify reached a stranger: {what:?}"
            );
            assert!(
                what.subscriptions.is_empty(),
                "the topic reached a stranger: {what:?}"
            );
            assert_eq!(what.pongs, 0, "the member answered a ping: {what:?}");
            assert_eq!(what.sync_answers, 0, "the member answered sync: {what:?}");
            assert_eq!(
                what.hello_answers, 0,
                "the member answered a forged hello: {what:?}"
            );
        }
        let stats = member.handle.stats().await.unwrap();
        assert!(stats.denied >= ATTEMPTS as u64, "the refusals are counted");
        assert_eq!(member.peers().await, 1, "only the member is connected");
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dialling_a_stale_address_reveals_nothing() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let collective = Collective::new(1, Policy::default());
        let topic = collective.replicas[0]
            .membership()
            .unwrap()
            .collective()
            .topic();
        let (_dir, nodes) = collective.start().await;
        let member = &nodes[1];
        member.wait_members(2).await;

        // The adversary holds an address the member dials (a member's old address on a
        // shared network) and speaks every protocol a node speaks.
        let mut spy = Spy::new(&topic);
        let addr = spy.listen().await;
        member.handle.dial(addr).await.unwrap();
        let what = spy.watch_inbound(Duration::from_secs(15)).await;

        assert!(what.peer.is_some(), "the member dialled: {what:?}");
        assert_ne!(
            what.peer,
            Some(member_key_peer(&member.member)),
            "the handshake reveals the member's key"
        );
        assert!(
            what.identify.is_empty(),
            "identify reached the adversary: {what:?}"
        );
        assert!(
            what.subscriptions.is_empty(),
            "the topic reached the adversary: {what:?}"
        );
        assert_eq!(what.sync_requests, 0, "the member sent sync: {what:?}");
        // The member's first hello message is a nonce and a MAC, and after the adversary's
        // (necessarily wrong) answer nothing more follows: no identity proof.
        assert_eq!(what.hello_requests.len(), 1, "{what:?}");
        assert_eq!(what.hello_requests[0].len(), 65, "{what:?}");
        let member_key = member.member.0;
        assert!(
            !what.hello_requests[0]
                .windows(8)
                .any(|w| member_key.windows(8).any(|k| k == w)),
            "the hello carries the member's key"
        );
        assert!(what.closed_after.is_some(), "the member hung up: {what:?}");
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_a_member_show_unrelated_peer_ids() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let (_dir, mut nodes) = Collective::new(1, Policy::default()).start().await;
        let node = nodes.remove(1);
        let member_key = member_key_peer(&node.member);
        let first = node.handle.peer_id();
        let home = node.stop().await;
        let node = start_node(reopen(&home)).await;
        let second = node.handle.peer_id();
        assert_ne!(first, second, "two runs share a peer id");
        assert_ne!(first, member_key);
        assert_ne!(second, member_key);
        // And it still works: the restarted member reaches the founder again.
        connect(&node, &nodes[0]).await;
        eventually("the restarted member is back", || async {
            (node.peers().await == 1).then_some(())
        })
        .await;
    })
    .await
    .expect("scenario timed out");
}

/// What one connection taught the stranger.
#[derive(Debug, Default)]
struct Learned {
    /// The peer id the handshake revealed.
    peer: Option<PeerId>,
    /// How long the connection lived.
    closed_after: Option<Duration>,
    /// Identify messages received (protocol version, agent, listen addresses, protocols).
    identify: Vec<String>,
    /// Gossip subscriptions seen.
    subscriptions: Vec<String>,
    /// Successful pings.
    pongs: usize,
    /// Sync answers received.
    sync_answers: usize,
    /// Sync requests received.
    sync_requests: usize,
    /// Hello answers received.
    hello_answers: usize,
    /// Hello requests received, as sent.
    hello_requests: Vec<Vec<u8>>,
}

#[derive(NetworkBehaviour)]
struct SpyBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<BytesCodec>,
    hello: request_response::Behaviour<HelloCodec>,
}

/// A non-member speaking every protocol a node speaks, with a fresh key, recording all.
struct Spy {
    swarm: libp2p::Swarm<SpyBehaviour>,
}

impl Spy {
    fn new(topic: &str) -> Self {
        let keypair = Keypair::generate_ed25519();
        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.into(),
            keypair.public(),
        ));
        let ping =
            ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(100)));
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossipsub::Config::default(),
        )
        .unwrap();
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .unwrap();
        let sync = request_response::Behaviour::with_codec(
            BytesCodec::default(),
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let hello = request_response::Behaviour::with_codec(
            HelloCodec::default(),
            [(HELLO_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| SpyBehaviour {
                identify,
                ping,
                gossipsub,
                sync,
                hello,
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        Self { swarm }
    }

    async fn listen(&mut self) -> Multiaddr {
        self.swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = self.swarm.select_next_some().await {
                return address;
            }
        }
    }

    /// Dial `addr`, try every protocol, and record everything until the connection closes.
    async fn dial_and_watch(&mut self, addr: Multiaddr) -> Learned {
        self.swarm.dial(addr).unwrap();
        self.watch(Duration::from_secs(20), true).await
    }

    /// Wait for a connection and record everything until it closes.
    async fn watch_inbound(&mut self, limit: Duration) -> Learned {
        self.watch(limit, false).await
    }

    async fn watch(&mut self, limit: Duration, probe: bool) -> Learned {
        let mut learned = Learned::default();
        let mut opened = None;
        let mut deadline = tokio::time::Instant::now() + limit;
        loop {
            let event = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return learned,
                event = self.swarm.select_next_some() => event,
            };
            match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    learned.peer = Some(peer_id);
                    opened = Some(tokio::time::Instant::now());
                    if probe {
                        let b = self.swarm.behaviour_mut();
                        let ask = sync::encode(&SyncRequest::Keys { epochs: Vec::new() });
                        b.sync.send_request(&peer_id, ask);
                        // A forged hello: right shape, made without the collective's secret.
                        let mut open = vec![1u8];
                        open.extend_from_slice(&[7u8; 64]);
                        b.hello.send_request(&peer_id, open);
                    }
                }
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                } => {
                    learned.closed_after = opened.map(|t| t.elapsed());
                    deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                }
                SwarmEvent::Behaviour(SpyBehaviourEvent::Identify(identify::Event::Received {
                    info,
                    ..
                })) => learned.identify.push(format!("{info:?}")),
                SwarmEvent::Behaviour(SpyBehaviourEvent::Gossipsub(
                    gossipsub::Event::Subscribed { topic, .. },
                )) => learned.subscriptions.push(topic.to_string()),
                SwarmEvent::Behaviour(SpyBehaviourEvent::Ping(ping::Event {
                    result: Ok(_),
                    ..
                })) => learned.pongs += 1,
                SwarmEvent::Behaviour(SpyBehaviourEvent::Sync(
                    request_response::Event::Message { message, .. },
                )) => match message {
                    request_response::Message::Response { .. } => learned.sync_answers += 1,
                    request_response::Message::Request { .. } => learned.sync_requests += 1,
                },
                SwarmEvent::Behaviour(SpyBehaviourEvent::Hello(
                    request_response::Event::Message { message, .. },
                )) => match message {
                    request_response::Message::Response { .. } => learned.hello_answers += 1,
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        learned.hello_requests.push(request);
                        // Answer as a member would, but without the secret.
                        let mut accept = vec![2u8];
                        accept.extend_from_slice(&[9u8; 64]);
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .hello
                            .send_response(channel, accept);
                    }
                },
                _ => {}
            }
        }
    }
}
