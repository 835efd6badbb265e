//! Strangers holding connections that never prove membership must not lock members out: a
//! flood of such connections from the members' own address (loopback here, a drop-in centre's
//! NAT or one IPv6 /64 in the field) keeps coming while a member connects.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lookout_protocol::membership::Policy;
use lookout_tests::rogue::{topic_of, RawPeer};
use lookout_tests::*;

/// Most connections in the flood (each from a fresh stranger), and how often one comes.
const STRANGERS: usize = 120;
const FLOOD_EVERY: Duration = Duration::from_millis(100);
/// How long the member may take to connect: less than the hello's 10 s timeout, so the node
/// has not yet hung up on the flood's first connections by itself.
const MEMBER_WITHIN: Duration = Duration::from_secs(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_connect_during_a_flood_of_unproven_connections() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let Collective { dir, mut replicas } = Collective::new(1, Policy::default());
        let topic = topic_of(&replicas[0]);
        let founder = start_node(replicas.remove(0)).await;
        let target = listen_addr(&founder).await;

        // The flood: connections that finish the transport handshake and then say nothing,
        // about 10 a second, each from a fresh transport key, held until the node hangs up.
        let stop = Arc::new(AtomicBool::new(false));
        let flood = {
            let stop = stop.clone();
            let target = lookout_node::node::without_p2p(&target);
            tokio::spawn(async move {
                let mut strangers = Vec::new();
                while !stop.load(Ordering::Relaxed) && strangers.len() < STRANGERS {
                    let stranger = RawPeer::spawn(None, &topic);
                    stranger.dial(target.clone()).await;
                    strangers.push(stranger);
                    tokio::time::sleep(FLOOD_EVERY).await;
                }
                strangers.len()
            })
        };
        // Let the flood fill the slots first.
        tokio::time::sleep(Duration::from_secs(1)).await;

        let member = start_node(replicas.remove(0)).await;
        member.handle.dial(target.clone()).await.unwrap();
        let connected = tokio::time::timeout(MEMBER_WITHIN, async {
            loop {
                if member.peers().await >= 1 && founder.peers().await >= 1 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            connected.is_ok(),
            "the member did not connect during the flood"
        );
        member.wait_members(2).await;
        stop.store(true, Ordering::Relaxed);
        let dials = flood.await.unwrap();
        // More flood connections than the per-address cap: every slot was taken.
        assert!(
            dials > lookout_node::node::MAX_UNPROVEN_PER_IP,
            "the flood ran ({dials} connections)"
        );
        assert!(founder.handle.stats().await.unwrap().denied > 0);
        drop(dir);
    })
    .await
    .expect("test timed out");
}
