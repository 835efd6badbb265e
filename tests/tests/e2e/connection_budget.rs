//! The connection budget: a node dials members' announced addresses only until it holds its
//! target of member connections, so a phone in a large collective does not keep one
//! connection (and its idle traffic) per member; alerts still reach everyone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::NodeConfig;
use lookout_protocol::membership::Policy;
use lookout_tests::*;

/// Members in the test collective.
const N: usize = 8;
/// Each node's budget of member connections.
const BUDGET: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_keep_their_budget_of_connections_and_alerts_still_reach_everyone() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut collective = Collective::new(N - 1, Policy::default());
        collective.share_state();
        let Collective { dir, replicas } = collective;
        let mut nodes = Vec::new();
        for replica in replicas {
            let config = NodeConfig {
                member_connections: BUDGET,
                ..test_config()
            };
            nodes.push(start_node_with(replica, config).await);
        }
        // A star through the founder: the only addresses anyone was given. Every node learns
        // the others' addresses from their announcements after its first sync.
        for node in &nodes[1..] {
            connect(node, &nodes[0]).await;
        }
        eventually("every node holds its budget", || async {
            let mut peers = Vec::new();
            for node in &nodes {
                peers.push(node.peers().await);
            }
            peers.iter().all(|&p| p >= BUDGET).then_some(())
        })
        .await;
        // Under the old rule (dial every member announcing an address) the 8 would be 28 pairs
        // within seconds. With the budget, the founder's 7 connections are all inbound and
        // every other member is connected, so it dials nobody; each other node dials at most
        // BUDGET - 1 members besides the founder: at most 7 + 7 × 2 = 21 pairs.
        let most_pairs = (N - 1) + (N - 1) * (BUDGET - 1);
        never(
            "more member connections than the budgets allow",
            Duration::from_secs(8),
            || async {
                let mut ends = 0;
                for node in &nodes {
                    ends += node.peers().await;
                }
                ends / 2 > most_pairs
            },
        )
        .await;
        // An alert posted at a node that is not the founder reaches every member.
        let id = nodes[N - 1].post(draft("budget: grey van", "")).await;
        for node in &nodes {
            eventually("the alert reaches every member", || async {
                node.has_alert(&id).await.then_some(())
            })
            .await;
        }
        drop(dir);
    })
    .await
    .expect("test timed out");
}
