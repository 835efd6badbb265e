//! Review 3, H2 residual, through real nodes: whoever holds one moderator's unlocked phone in a
//! k = 2 collective proposes a sybil's admission and promotion, unapproved, and pushes the
//! sybil's proposals of fresh keys and those keys' own ops. On the old rules every node kept
//! them all (one moderator's unapproved proposals made keys authors, from key to key without
//! bound); now every node keeps only the captured key's own two ops.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::replica::{now, SetKind, WireItem};
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy};
use lookout_protocol::OpId;
use lookout_tests::rogue::*;
use lookout_tests::*;
use rand::rngs::OsRng;

fn item(op: &Op) -> WireItem {
    WireItem {
        kind: SetKind::Ops,
        bytes: op.encoded().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_moderators_sybils_author_nothing() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let policy = Policy {
            approvals_required: 2,
            ..Policy::default()
        };
        let collective = Collective::named(&["founder", "second", "ana", "bea"], policy);
        let (_dir, nodes, mut offline) = stage(collective, &[0]).await;
        let mut founder = offline.pop().unwrap();
        let peer = arm(&founder, &nodes).await;
        let members_before = nodes[0].member_ids().await;
        let ops_before = nodes[0].status().await.ops;

        let spy = Identity::generate(&mut OsRng);
        let mut forger = Forger::new(&mut founder);
        let collective_id = forger.collective();
        let heads = forger.heads();
        let add = forger.op(heads, forger.propose_add(spy.public(), "spy"));
        let promote = forger.op(
            vec![OpId(add.id())],
            Action::ProposePromote {
                member: spy.member_id(),
            },
        );
        let mut items = vec![add, promote.clone()];
        let by = |who: &Identity, parents: Vec<OpId>, action: Action| {
            Op::create(who, collective_id, parents, now(), action).unwrap()
        };
        for _ in 0..16 {
            let fresh = Identity::generate(&mut OsRng);
            // The name is sealed by the founder's key (no rule reads it).
            let proposal = by(
                &spy,
                vec![OpId(promote.id())],
                forger.propose_add(fresh.public(), "fresh"),
            );
            let own = by(
                &fresh,
                vec![proposal.id()],
                Action::RotateAgreementKey {
                    identity: fresh.public(),
                },
            );
            items.push(item(&proposal));
            items.push(item(&own));
        }
        for node in &nodes {
            peer.push(node.handle.peer_id(), &items).await.unwrap();
        }
        for node in &nodes {
            eventually("every node holds the captured key's two ops", || async {
                (node.status().await.ops == ops_before + 2).then_some(())
            })
            .await;
        }
        never(
            "a node keeps a sybil's op",
            Duration::from_secs(1),
            || async {
                for node in &nodes {
                    if node.status().await.ops != ops_before + 2 {
                        return true;
                    }
                }
                false
            },
        )
        .await;
        for node in &nodes {
            assert_eq!(node.member_ids().await, members_before, "{}", node.name);
        }
    })
    .await
    .expect("scenario timed out");
}
