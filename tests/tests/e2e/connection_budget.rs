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
/// Each node's budget of member connections. With 8 members, 3 would allow every pair: each
/// node other than the founder keeps the founder (an address it was given, not one it drew)
/// and draws its own 3 among the 6 others.
const BUDGET: usize = 2;

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
        // every other member is connected, so it dials nobody; each other node dials BUDGET
        // members of its own drawing besides the founder (whose address it was given, so not
        // drawn): 7 + 7 × 2 = 21 pairs. Since review 20 (finding 3) a node also dials a
        // better-ranked member whose address reaches it after its first draw (the member drawn
        // meanwhile stays connected), and at start addresses arrive one sync at a time: up to
        // 23 pairs were seen (6 runs). 25 leaves room for that and still fails the old rule.
        let most_pairs = (N - 1) + (N - 1) * BUDGET + 4;
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

/// The attacker: the member whose address a node was given (the invite's, typed in, found by
/// mDNS; or one that hole-punched to it) is not a member the node drew, even though libp2p
/// calls the node the dialler. Before review 20 such a connection counted among the node's own
/// choice: with `--connections 1` a node that joined through a rogue member's address kept that
/// member as its only connection and never dialled anyone else (an eclipse by one member).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reached_at_a_given_address_is_not_one_the_node_drew() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut collective = Collective::new(2, Policy::default());
        collective.share_state();
        let Collective { dir, replicas } = collective;
        let mut nodes = Vec::new();
        for replica in replicas {
            let config = NodeConfig {
                member_connections: 1,
                ..test_config()
            };
            nodes.push(start_node_with(replica, config).await);
        }
        let (rogue, honest, victim) = (&nodes[0], &nodes[1], &nodes[2]);
        connect(honest, rogue).await;
        connect(victim, rogue).await;
        // Each learns the other's announced address through the rogue member, and draws it:
        // the rogue member, reached at a given address, is not its own choice.
        eventually(
            "the victim holds a member of its own drawing besides the rogue",
            || async { (victim.peers().await >= 2 && honest.peers().await >= 2).then_some(()) },
        )
        .await;
        // And the alerts flow (the "rogue" here is an ordinary node: what the test shows is the
        // direct connection the victim drew, which a rogue member cannot withhold alerts from).
        let id = honest
            .post(draft("budget: followed from the station", ""))
            .await;
        eventually("the honest member's alert reaches the victim", || async {
            victim.has_alert(&id).await.then_some(())
        })
        .await;
        drop(dir);
    })
    .await
    .expect("test timed out");
}
