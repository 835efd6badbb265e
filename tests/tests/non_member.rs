//! What a non-member learns by dialling a member's node: its peer id (the member's Ed25519 public
//! key, proved in the Noise handshake) and that the port speaks libp2p with Noise and yamux —
//! and nothing after. The member gate closes the connection before identify, ping, gossip or
//! sync run, so the stranger never gets an identify message (listen addresses, protocols, agent),
//! a subscription (the collective's topic) or a single protocol stream.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, noise, ping, tcp, yamux, Multiaddr, PeerId, SwarmBuilder};
use lookout_node::net::IDENTIFY_PROTOCOL;
use lookout_protocol::membership::Policy;
use lookout_tests::*;

/// How often the stranger dials.
const ATTEMPTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_learns_only_the_peer_id() {
    tokio::time::timeout(Duration::from_secs(90), async {
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
        let bare: Multiaddr = listen_addr(member)
            .await
            .into_iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();

        let mut stranger = Stranger::new(&topic);
        let mut learned = Vec::new();
        for _ in 0..ATTEMPTS {
            learned.push(stranger.dial_and_watch(bare.clone()).await);
        }

        for what in &learned {
            assert_eq!(
                what.peer,
                Some(member.handle.peer_id()),
                "the handshake reveals the member's peer id"
            );
            assert!(
                what.closed_after
                    .is_some_and(|d| d < Duration::from_secs(5)),
                "the member hangs up at once: {what:?}"
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
        }
        let stats = member.handle.stats().await.unwrap();
        assert!(
            stats.denied >= ATTEMPTS as u64,
            "the gate counted the refusals"
        );
        assert_eq!(member.peers().await, 1, "only the member is connected");
    })
    .await
    .expect("scenario timed out");
}

/// What one connection attempt taught the stranger.
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
}

#[derive(NetworkBehaviour)]
struct StrangerBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
}

/// A non-member speaking every protocol a node speaks, with a fresh key, listening to all.
struct Stranger {
    swarm: libp2p::Swarm<StrangerBehaviour>,
}

impl Stranger {
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
        let swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| StrangerBehaviour {
                identify,
                ping,
                gossipsub,
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        Self { swarm }
    }

    /// Dial `addr` and record everything until the connection closes, then wait a second more
    /// for anything late.
    async fn dial_and_watch(&mut self, addr: Multiaddr) -> Learned {
        let mut learned = Learned::default();
        self.swarm.dial(addr).unwrap();
        let mut opened = None;
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return learned,
                event = self.swarm.select_next_some() => event,
            };
            match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    learned.peer = Some(peer_id);
                    opened = Some(tokio::time::Instant::now());
                }
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                } => {
                    learned.closed_after = opened.map(|t| t.elapsed());
                    deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                }
                SwarmEvent::Behaviour(StrangerBehaviourEvent::Identify(
                    identify::Event::Received { info, .. },
                )) => learned.identify.push(format!("{info:?}")),
                SwarmEvent::Behaviour(StrangerBehaviourEvent::Gossipsub(
                    gossipsub::Event::Subscribed { topic, .. },
                )) => learned.subscriptions.push(topic.to_string()),
                SwarmEvent::Behaviour(StrangerBehaviourEvent::Ping(ping::Event {
                    result: Ok(_),
                    ..
                })) => learned.pongs += 1,
                _ => {}
            }
        }
    }
}
