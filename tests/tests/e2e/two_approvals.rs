//! k = 2: with two moderators, an add approved by one of them does not admit the candidate; the
//! second moderator's approval, made through its own node, does. The new member then reads the
//! alerts posted before it joined (the epoch keys are shared with it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::{ErrorCode, Request, Response};
use lookout_protocol::membership::Policy;
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_approval_admits() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("scenario timed out");
}

async fn scenario() {
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    // Founded by two moderators (the founder and member1, named in the genesis record): there is
    // no bootstrap exception where one approval would do.
    let collective = Collective::new(1, policy);
    let candidate_home = collective.dir.path().join("candidate");
    let mut candidate = fresh_identity(&candidate_home, "candidate");
    let join_code = candidate.join_request().to_code();

    let (_dir, nodes) = collective.start().await;
    let (founder, second) = (&nodes[0], &nodes[1]);
    eventually("the second moderator learns its promotion", || async {
        second.status().await.is_moderator.then_some(())
    })
    .await;
    let before = founder
        .post(draft("grabbed my wrist", "07700 900461"))
        .await;
    eventually("alert reaches the second moderator", || async {
        second.has_alert(&before).await.then_some(())
    })
    .await;

    // One approval out of two.
    let proposal = match founder
        .execute(Request::Approve {
            target: join_code.clone(),
        })
        .await
    {
        Response::Proposal(p) => p,
        other => panic!("unexpected {other:?}"),
    };
    assert!(!proposal.done, "one approval must not admit: {proposal:?}");
    assert_eq!((proposal.approvals, proposal.needed), (1, 2));
    assert!(proposal.invite.is_none(), "no invite before admission");

    // The candidate runs a node with an invite (as if handed one early) and dials the founder.
    let invite = match founder.execute(Request::Invite).await {
        Response::Invite { code } => code,
        other => panic!("unexpected {other:?}"),
    };
    candidate.join(&invite).unwrap();
    let candidate = start_node(candidate).await;
    connect(&candidate, founder).await;

    for node in [founder, second] {
        eventually("the proposal is pending everywhere", || async {
            let pending = match node.execute(Request::Pending).await {
                Response::Pending { proposals } => proposals,
                other => panic!("unexpected {other:?}"),
            };
            pending
                .iter()
                .any(|p| p.id == proposal.id && p.approvals == 1)
                .then_some(())
        })
        .await;
        assert_eq!(node.members().await.members.len(), 2);
        assert!(!node.member_ids().await.contains(&candidate.member.to_hex()));
    }
    let during = founder
        .post(draft("followed me home", "07700 900462"))
        .await;
    eventually("alert reaches the second moderator", || async {
        second.has_alert(&during).await.then_some(())
    })
    .await;
    never(
        "a pending candidate connects or gets alerts",
        Duration::from_secs(3),
        || async { candidate.peers().await > 0 || !candidate.alerts().await.is_empty() },
    )
    .await;
    let refused = candidate
        .try_execute(Request::Post(draft("not yet a member", "07700 900463")))
        .await
        .expect_err("a pending candidate must not post");
    assert_eq!(refused.code, ErrorCode::NotAMember, "{refused:?}");
    assert!(!candidate.status().await.is_member);

    // The second moderator approves on its own node, by proposal id prefix.
    let approved = match second
        .execute(Request::Approve {
            target: proposal.id[..12].to_owned(),
        })
        .await
    {
        Response::Proposal(p) => p,
        other => panic!("unexpected {other:?}"),
    };
    assert!(approved.done, "the second approval admits: {approved:?}");
    assert!(approved.invite.is_some());
    for node in [founder, second, &candidate] {
        eventually("everyone sees three members", || async {
            node.member_ids()
                .await
                .contains(&candidate.member.to_hex())
                .then_some(())
        })
        .await;
    }
    assert!(candidate.status().await.is_member);
    // Alerts posted before admission become readable through key shares.
    for id in [&before, &during] {
        eventually("earlier alert reaches the new member", || async {
            candidate.has_alert(id).await.then_some(())
        })
        .await;
    }
    let after = candidate
        .post(draft("now I can warn you", "07700 900464"))
        .await;
    for node in [founder, second] {
        eventually("the new member's alert arrives", || async {
            node.has_alert(&after).await.then_some(())
        })
        .await;
    }
}
