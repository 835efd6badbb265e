//! Revocation: after a moderator removes a member, and after a member's self-revocation
//! certificate is published, alerts posted afterwards never reach the removed member, every node
//! disconnects it and refuses it again, and it knows it was removed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_node::api::{Request, Response};
use lookout_protocol::membership::Policy;
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_by_a_moderator() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let (_dir, nodes) = mesh(4).await;
        let removed = &nodes[3];
        let revoked = nodes[0]
            .execute(Request::Revoke {
                member: removed.name.clone(),
                reason: "shared alerts outside the group".into(),
            })
            .await;
        assert!(
            matches!(&revoked, Response::Revoked { epoch: Some(_), .. }),
            "the moderator rotates at once: {revoked:?}"
        );
        excluded(&nodes, 3).await;
    })
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_self_revocation() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let (_dir, nodes) = mesh(4).await;
        // A member whose phone was taken asks a friend to publish their certificate.
        let certificate = nodes[2].revocation.clone();
        assert!(certificate.starts_with("LKREVOKE1-"), "{certificate}");
        let published = nodes[1]
            .execute(Request::PublishRevocation { certificate })
            .await;
        assert!(
            matches!(&published, Response::Revoked { member, .. } if *member == nodes[2].member.to_hex()),
            "{published:?}"
        );
        excluded(&nodes, 2).await;
        let members = nodes[0].members().await;
        assert!(members.removed.iter().any(|m| m.self_revoked));
    })
    .await
    .expect("scenario timed out");
}

/// `n` members, every pair connected.
async fn mesh(n: usize) -> (tempfile::TempDir, Vec<TestNode>) {
    let (dir, nodes) = Collective::new(n - 1, Policy::default()).start().await;
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            connect(a, b).await;
        }
    }
    for node in &nodes {
        node.wait_members(n).await;
        eventually("fully connected", || async {
            (node.peers().await == n - 1).then_some(())
        })
        .await;
    }
    (dir, nodes)
}

/// Check that `nodes[gone]` was removed: everyone else drops it, it cannot come back, it knows,
/// and later alerts never reach it.
async fn excluded(nodes: &[TestNode], gone: usize) {
    let removed = &nodes[gone];
    let others: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != gone)
        .map(|(_, n)| n)
        .collect();
    for node in &others {
        node.wait_members(nodes.len() - 1).await;
        eventually("the others drop the removed member", || async {
            (node.peers().await == others.len() - 1).then_some(())
        })
        .await;
        assert!(!node.member_ids().await.contains(&removed.member.to_hex()));
    }
    eventually("the removed member is alone", || async {
        (removed.peers().await == 0).then_some(())
    })
    .await;
    eventually("the removed member knows", || async {
        removed.status().await.is_removed.then_some(())
    })
    .await;

    let after = others[1]
        .post(draft("after the removal", "07700 900471"))
        .await;
    for node in &others {
        eventually("the alert reaches the remaining members", || async {
            node.has_alert(&after).await.then_some(())
        })
        .await;
    }
    // It tries to come back: the others refuse it after the handshake (its own node may see
    // the connection for a moment before the other side closes it).
    let denied_before = others[0].handle.stats().await.unwrap().denied;
    for node in &others {
        connect(removed, node).await;
    }
    never(
        "a member takes the removed member back, or it reads the alert",
        Duration::from_secs(3),
        || async {
            let mut back = removed.has_alert(&after).await;
            for node in &others {
                back |= node.peers().await != others.len() - 1;
            }
            back
        },
    )
    .await;
    eventually("the removed member stays alone", || async {
        (removed.peers().await == 0).then_some(())
    })
    .await;
    let stats = others[0].handle.stats().await.unwrap();
    assert!(
        stats.denied > denied_before,
        "the gate refused the removed member"
    );
}
