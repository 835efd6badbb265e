//! Two members dialling each other at the same instant (crossed dials): what happens when both
//! learn each other's relayed address through a mailbox at once, here on loopback TCP where the
//! crossing is as tight as it gets. Each side has a connection it dialled and one it accepted,
//! and both send the hello's `Open`. Before `crossed_hello_yields` each ignored the other's
//! `Open`, saw its own go unanswered and hung up ("no answer"; counted in `denied`), so the pair
//! never connected until their retries happened not to cross (issue 10: hole punching failed in
//! about one run in three). Now exactly one side gives way and answers as listener.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_protocol::membership::Policy;
use lookout_tests::*;

/// Rounds of crossed dials, each with fresh transport ids (the nodes restart).
const ROUNDS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_dialling_each_other_at_once_connect_without_a_failed_hello() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let Collective { dir, replicas } = Collective::new(1, Policy::default());
        let homes: Vec<_> = replicas.iter().map(|r| r.home().to_path_buf()).collect();
        drop(replicas);
        for round in 0..ROUNDS {
            let a = start_node(reopen(&homes[0])).await;
            let b = start_node(reopen(&homes[1])).await;
            let (to_a, to_b) = (listen_addr(&a).await, listen_addr(&b).await);
            let (da, db) = tokio::join!(a.handle.dial(to_b), b.handle.dial(to_a));
            da.unwrap();
            db.unwrap();
            eventually("the two members connect", || async {
                (a.peers().await == 1 && b.peers().await == 1).then_some(())
            })
            .await;
            let (sa, sb) = (
                a.handle.stats().await.unwrap(),
                b.handle.stats().await.unwrap(),
            );
            assert_eq!(
                (sa.denied, sb.denied),
                (0, 0),
                "round {round}: a hello was abandoned between two members"
            );
            a.stop().await;
            b.stop().await;
        }
        drop(dir);
    })
    .await
    .expect("test timed out");
}

/// The tie-break of crossed dials is no handle for a stranger: the peer picks its own transport
/// id, so one listening at an address a member dials can always pick one that sorts before the
/// member's. When it drops the member's `Open` without having dialled the member (no crossed
/// dial), the member gives way only for a short grace (its own connection might still be on its
/// way) and then hangs up: the dial does not sit in the member's budget of own hellos for the
/// whole hello timeout (10 s), as it did when any unanswered hello gave way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_with_a_smaller_transport_id_that_drops_the_hello_is_closed_at_once() {
    use lookout_tests::rogue::RawPeer;
    tokio::time::timeout(Duration::from_secs(60), async {
        let Collective { dir, replicas } = Collective::new(1, Policy::default());
        let home = replicas[0].home().to_path_buf();
        drop(replicas);
        let node = start_node(reopen(&home)).await;
        let local = node.handle.peer_id();
        let keypair = loop {
            let k = libp2p::identity::Keypair::generate_ed25519();
            if k.public().to_peer_id().to_bytes() < local.to_bytes() {
                break k;
            }
        };
        let stranger = RawPeer::spawn_with_key(None, "nothing", keypair);
        let addr = stranger
            .listen()
            .await
            .with_p2p(stranger.peer_id())
            .unwrap();
        let started = std::time::Instant::now();
        node.handle.dial(addr).await.unwrap();
        eventually("the node hangs up on the stranger", || async {
            (node.handle.stats().await.unwrap().denied == 1).then_some(())
        })
        .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "an unanswered hello to a stranger was held for {took:?}"
        );
        assert_eq!(node.peers().await, 0);
        node.stop().await;
        drop(dir);
    })
    .await
    .expect("test timed out");
}
