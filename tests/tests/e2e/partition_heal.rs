//! Partition and heal: ten members split in two halves that only talk among themselves. Both
//! halves post; one also removes a member of the other half and rotates the group key. Once
//! the halves are connected again, every remaining member holds the same roster and the same
//! alerts, and the removed member is shut out.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use lookout_node::api::{Request, Response};
use lookout_protocol::membership::Policy;
use lookout_tests::*;

const NODES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_converge_after_heal() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("scenario timed out");
}

async fn scenario() {
    let mut collective = Collective::new(NODES - 1, Policy::default());
    collective.share_state();
    let (_dir, nodes) = collective.start_unconnected().await;
    let (a, b) = nodes.split_at(NODES / 2);
    // Each half: a star around its first node plus one extra link.
    for half in [a, b] {
        for node in &half[1..] {
            connect(node, &half[0]).await;
        }
        connect(&half[2], &half[1]).await;
    }
    let removed = &b[4];

    let mut a_posts = BTreeSet::new();
    let mut b_posts = BTreeSet::new();
    let mut removed_posts = BTreeSet::new();
    for (i, node) in a.iter().enumerate() {
        a_posts.insert(
            node.post(draft(&format!("half A {i}"), "07700 900501"))
                .await,
        );
    }
    for (i, node) in b.iter().enumerate() {
        let id = node
            .post(draft(&format!("half B {i}"), "07700 900502"))
            .await;
        if node.member == removed.member {
            removed_posts.insert(id);
        } else {
            b_posts.insert(id);
        }
    }
    let revoked = a[0]
        .execute(Request::Revoke {
            member: removed.name.clone(),
            reason: "left the collective".into(),
        })
        .await;
    assert!(
        matches!(revoked, Response::Revoked { epoch: Some(_), .. }),
        "{revoked:?}"
    );
    for node in a {
        eventually("half A learns the removal", || async {
            (node.status().await.members == NODES - 1).then_some(())
        })
        .await;
        a_posts.insert(node.post(draft("after the removal", "07700 900503")).await);
    }
    let mut b_all = b_posts.clone();
    b_all.extend(removed_posts.iter().cloned());
    for (half, posts) in [(a, &a_posts), (b, &b_all)] {
        for node in half {
            eventually("each half converges on its own posts", || async {
                (node.alert_ids().await == *posts).then_some(())
            })
            .await;
        }
    }
    for node in b {
        assert_eq!(node.status().await.members, NODES, "the halves are apart");
    }

    // Heal.
    connect(&a[0], &b[0]).await;
    connect(&a[4], &b[3]).await;
    let survivors: Vec<&TestNode> = nodes
        .iter()
        .filter(|n| n.member != removed.member)
        .collect();
    let roster = a[0].member_ids().await;
    assert_eq!(roster.len(), NODES - 1);
    assert!(!roster.contains(&removed.member.to_hex()));
    let mut expected = a_posts.clone();
    expected.extend(b_posts.iter().cloned());
    for node in &survivors {
        eventually("one roster everywhere", || async {
            (node.member_ids().await == roster).then_some(())
        })
        .await;
        eventually("every survivor has every post", || async {
            node.alert_ids().await.is_superset(&expected).then_some(())
        })
        .await;
    }
    let alerts = a[0].alert_ids().await;
    for node in &survivors {
        eventually("one alert set everywhere", || async {
            (node.alert_ids().await == alerts).then_some(())
        })
        .await;
    }
    // The removed member's posts made before it learnt of the removal are concurrent with it:
    // every survivor decides the same way about them (checked above); report which way.
    let kept = removed_posts.is_subset(&alerts);
    println!("posts the removed member made concurrently with its removal kept: {kept}");

    eventually("the removed member is shut out", || async {
        let status = removed.status().await;
        (status.is_removed && status.peers == 0).then_some(())
    })
    .await;
    // A member of the half that did not rotate now posts under the new key.
    let after = b[1].post(draft("after the heal", "07700 900504")).await;
    for node in &survivors {
        eventually("the post after the heal reaches everyone", || async {
            node.has_alert(&after).await.then_some(())
        })
        .await;
    }
    assert!(!removed.has_alert(&after).await);
}
