//! Attacks on the membership rules themselves, through real nodes (issue 8): whoever holds a
//! moderator's key chooses every field of the ops it signs, parents included; a key that never
//! was a member signs ops; one member makes more concurrent ops than any op can name.
//!
//! The hostile program is the rogue-member harness (`lookout_tests::rogue`): the captured key in
//! a raw libp2p swarm that pushes signed items to every honest node.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::Request;
use lookout_node::replica::{now, SetKind, WireItem};
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy};
use lookout_protocol::OpId;
use lookout_tests::rogue::*;
use lookout_tests::*;
use rand::rngs::OsRng;

fn op_item(op: &Op) -> WireItem {
    WireItem {
        kind: SetKind::Ops,
        bytes: op.encoded().to_vec(),
    }
}

/// A k = 2 collective founded by two moderators. The police hold the founder's unlocked phone:
/// its key proposes a spy naming no parents (a state where "one moderator existed"), proposes the
/// spy's promotion on top of it, the spy approves, and both try to remove the other founding
/// moderator. On the old rules the spy was admitted and promoted and the pair could remove
/// everyone; now nothing changes on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_founder_cannot_bend_k_of_n() {
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
        let second_id = nodes[0]
            .members()
            .await
            .members
            .iter()
            .find(|m| m.name == "second")
            .map(|m| m.id.clone())
            .unwrap();

        let spy = Identity::generate(&mut OsRng);
        let mut forger = Forger::new(&mut founder);
        let collective_id = forger.collective();
        let add = forger.op(vec![], forger.propose_add(spy.public(), "spy"));
        let add_id = OpId(add.id());
        let promote = forger.op(
            vec![add_id],
            Action::ProposePromote {
                member: spy.member_id(),
            },
        );
        let promote_id = OpId(promote.id());
        let spy_approves = Op::create(
            &spy,
            collective_id,
            vec![promote_id],
            now(),
            Action::Approve {
                proposal: promote_id,
            },
        )
        .unwrap();
        let second = lookout_protocol::MemberId::from_hex(&second_id).unwrap();
        let removal = forger.op(vec![spy_approves.id()], forger.remove(second, "taken over"));
        let spy_seconds = Op::create(
            &spy,
            collective_id,
            vec![OpId(removal.id())],
            now(),
            Action::Approve {
                proposal: OpId(removal.id()),
            },
        )
        .unwrap();
        let items = [
            add,
            promote,
            op_item(&spy_approves),
            removal,
            op_item(&spy_seconds),
        ];
        for node in &nodes {
            peer.push(node.handle.peer_id(), &items).await.unwrap();
        }
        let ops_before = nodes[0].status().await.ops;
        for node in &nodes {
            eventually("every node holds the ops", || async {
                (node.status().await.ops >= ops_before).then_some(())
            })
            .await;
        }
        // Give the nodes time to take every op (and gossip among themselves).
        tokio::time::sleep(Duration::from_millis(500)).await;
        for node in &nodes {
            assert_eq!(node.member_ids().await, members_before, "{}", node.name);
            let members = node.members().await;
            assert!(
                !members.members.iter().any(|m| m.name == "spy"),
                "{}: the spy was admitted",
                node.name
            );
            assert!(
                members
                    .members
                    .iter()
                    .any(|m| m.id == second_id && m.moderator),
                "{}: the second moderator lost her rights",
                node.name
            );
        }
    })
    .await
    .expect("scenario timed out");
}

/// A key that never was a member pushes ops: no node keeps them. Then one member (here the
/// founder's key, as a flood or a large partition healing would) makes 40 concurrent ops, more
/// heads than an op, post or key delivery can name: on the old rules nobody could post, approve
/// or revoke again; now an honest member still posts and it reaches everyone, and the nodes
/// merge the heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_ops_are_not_kept_and_many_heads_freeze_nobody() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let collective = Collective::named(&["founder", "ana", "bea", "cleo"], Policy::default());
        let (_dir, nodes, mut offline) = stage(collective, &[0]).await;
        let mut founder = offline.pop().unwrap();
        let peer = arm(&founder, &nodes).await;
        let mut forger = Forger::new(&mut founder);
        let heads = forger.heads();
        let collective_id = forger.collective();

        // A stranger's ops (signed correctly, naming real heads) are not kept anywhere.
        let stranger = Identity::generate(&mut OsRng);
        let strangers: Vec<WireItem> = (0..20)
            .map(|_| {
                let other = Identity::generate(&mut OsRng);
                op_item(
                    &Op::create(
                        &stranger,
                        collective_id,
                        heads.clone(),
                        now(),
                        forger.propose_add(other.public(), "x"),
                    )
                    .unwrap(),
                )
            })
            .collect();
        let ops_before = nodes[0].status().await.ops;
        for node in &nodes {
            let (accepted, _) = peer.push(node.handle.peer_id(), &strangers).await.unwrap();
            assert_eq!(accepted, 0, "{} kept a stranger's op", node.name);
        }
        for node in &nodes {
            assert_eq!(node.status().await.ops, ops_before, "{}", node.name);
        }

        // 40 concurrent proposals, all naming the same heads.
        let concurrent: Vec<WireItem> = (0..40)
            .map(|_| {
                let newcomer = Identity::generate(&mut OsRng);
                forger.op(
                    heads.clone(),
                    forger.propose_add(newcomer.public(), "newcomer"),
                )
            })
            .collect();
        for node in &nodes {
            peer.push(node.handle.peer_id(), &concurrent).await.unwrap();
        }
        for node in &nodes {
            eventually("40 new members everywhere", || async {
                (node.members().await.members.len() == 44).then_some(())
            })
            .await;
        }
        // Ana (a plain member) posts: her node names a bounded set of heads.
        let alert = nodes[0]
            .try_execute(Request::Post(draft(
                "hit me, took my phone",
                "07700 900777",
            )))
            .await;
        assert!(alert.is_ok(), "posting is frozen: {alert:?}");
        let id = match alert.unwrap() {
            lookout_node::api::Response::Posted { id } => id,
            other => panic!("{other:?}"),
        };
        for node in &nodes[1..] {
            eventually("the alert reaches every member", || async {
                node.has_alert(&id).await.then_some(())
            })
            .await;
        }
    })
    .await
    .expect("scenario timed out");
}

/// Mailboxes (issue 10): a k = 2 collective whose founder's phone is captured. The founder's key
/// proposes the collective's real mailbox and the second moderator approves it through her node
/// (`mailbox add` of the same pairing code): every node lists it. The captured key then proposes
/// a rogue mailbox naming no parents and approves it itself: no node admits it. A plain member's
/// node cannot propose or remove a mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_moderator_cannot_add_a_mailbox_alone() {
    use ed25519_dalek::SigningKey;
    use lookout_node::api::{ErrorCode, MailboxesView, Response};
    use lookout_protocol::mailbox::MailboxPairing;

    async fn mailboxes(node: &TestNode) -> MailboxesView {
        match node.execute(Request::Mailboxes).await {
            Response::Mailboxes(view) => view,
            other => panic!("unexpected {other:?}"),
        }
    }

    tokio::time::timeout(Duration::from_secs(90), async {
        let policy = Policy {
            approvals_required: 2,
            ..Policy::default()
        };
        let collective = Collective::named(&["founder", "second", "ana"], policy);
        let (_dir, nodes, mut offline) = stage(collective, &[0]).await;
        let mut founder = offline.pop().unwrap();
        let peer = arm(&founder, &nodes).await;
        let real = SigningKey::generate(&mut OsRng);
        let pairing = MailboxPairing::create(
            &real,
            vec!["/ip4/203.0.113.7/tcp/4001".into()],
            [7; 32],
            now(),
        )
        .unwrap();
        let rogue = SigningKey::generate(&mut OsRng);
        let rogue_hex = hex_of(&rogue.verifying_key().to_bytes());
        let real_hex = hex_of(&pairing.mailbox);

        let mut forger = Forger::new(&mut founder);
        let heads = forger.heads();
        let proposal = forger.op(
            heads,
            Action::ProposeMailbox {
                mailbox: pairing.mailbox,
                addresses: pairing.addresses.clone(),
            },
        );
        for node in &nodes {
            peer.push(node.handle.peer_id(), std::slice::from_ref(&proposal))
                .await
                .unwrap();
        }
        eventually(
            "the proposal is pending on the second moderator's node",
            || async { (mailboxes(&nodes[0]).await.pending.len() == 1).then_some(()) },
        )
        .await;
        // The plain member cannot approve it, nor propose one.
        let refused = nodes[1]
            .try_execute(Request::MailboxAdd {
                code: pairing.to_code(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotModerator);
        // The second moderator approves by pasting the same code.
        nodes[0]
            .execute(Request::MailboxAdd {
                code: pairing.to_code(),
            })
            .await;
        for node in &nodes {
            eventually("every node lists the mailbox", || async {
                let view = mailboxes(node).await;
                (view.current.len() == 1 && view.current[0].id == real_hex).then_some(())
            })
            .await;
        }

        // The captured key alone: a rogue mailbox, backdated, with its own "second" approval.
        let rogue_add = forger.op(
            vec![],
            Action::ProposeMailbox {
                mailbox: rogue.verifying_key().to_bytes(),
                addresses: vec!["/ip4/198.51.100.66/tcp/4001".into()],
            },
        );
        let rogue_id = OpId(rogue_add.id());
        let self_approval = forger.op(vec![rogue_id], Action::Approve { proposal: rogue_id });
        for node in &nodes {
            peer.push(
                node.handle.peer_id(),
                &[rogue_add.clone(), self_approval.clone()],
            )
            .await
            .unwrap();
        }
        // A plain member's node cannot remove the real mailbox.
        let refused = nodes[1]
            .try_execute(Request::MailboxRemove {
                mailbox: real_hex[..8].into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotModerator);
        for node in &nodes {
            eventually("the rogue proposal arrives", || async {
                let view = mailboxes(node).await;
                view.pending.iter().any(|m| m.id == rogue_hex).then_some(())
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for node in &nodes {
            let view = mailboxes(node).await;
            let ids: Vec<&str> = view.current.iter().map(|m| m.id.as_str()).collect();
            assert_eq!(ids, vec![real_hex.as_str()], "{}", node.name);
            let pending = view.pending.iter().find(|m| m.id == rogue_hex).unwrap();
            assert_eq!((pending.approvals, pending.needed), (1, 2), "{}", node.name);
        }
    })
    .await
    .expect("scenario timed out");
}

fn hex_of(bytes: &[u8; 32]) -> String {
    lookout_protocol::MailboxId(*bytes).to_hex()
}
