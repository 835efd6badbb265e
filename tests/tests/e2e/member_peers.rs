//! One member, many transport ids: a member's key in several raw swarms (each with its own
//! fresh transport key) proves itself to a node again and again. The node keeps at most
//! `MAX_PEERS_PER_MEMBER` of them (the newest), so one member cannot fill the node's connection
//! slots and gossip mesh.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::net::MAX_PEERS_PER_MEMBER;
use lookout_protocol::membership::Policy;
use lookout_tests::rogue::{hello_of, topic_of, RawPeer};
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_holds_at_most_two_transport_ids_at_a_node() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let Collective { dir, mut replicas } = Collective::new(1, Policy::default());
        let topic = topic_of(&replicas[0]);
        let rogue: Vec<RawPeer> = (0..5)
            .map(|_| RawPeer::spawn(Some(hello_of(&replicas[1])), &topic))
            .collect();
        let founder = start_node(replicas.remove(0)).await;
        let target = listen_addr(&founder).await;
        for (i, raw) in rogue.iter().enumerate() {
            raw.dial(target.clone()).await;
            // One after the other, so the newest are known.
            eventually("the raw swarm is admitted", || async {
                raw.connected_to(founder.handle.peer_id()).then_some(())
            })
            .await;
            assert!(
                founder.peers().await <= MAX_PEERS_PER_MEMBER,
                "after {}",
                i + 1
            );
        }
        // The oldest ones were cut off; the two newest stay.
        eventually("the oldest transport ids are disconnected", || async {
            let connected: Vec<bool> = rogue
                .iter()
                .map(|r| r.connected_to(founder.handle.peer_id()))
                .collect();
            (connected == [false, false, false, true, true]).then_some(())
        })
        .await;
        never(
            "more than two transport ids of one member",
            Duration::from_secs(3),
            || async { founder.peers().await > MAX_PEERS_PER_MEMBER },
        )
        .await;
        drop(dir);
    })
    .await
    .expect("test timed out");
}
