//! Three nodes: a founding moderator and two approved members; an alert posted by one reaches
//! the others.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_protocol::membership::Policy;
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reaches_every_member() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let (_dir, nodes) = Collective::new(2, Policy::default()).start().await;
        for node in &nodes {
            node.wait_members(3).await;
        }
        let id = nodes[1].post(draft("pulled a knife", "07700 900123")).await;
        for node in &nodes {
            eventually("alert arrives", || async {
                node.has_alert(&id).await.then_some(())
            })
            .await;
        }
        let seen = nodes[2].alerts().await;
        assert_eq!(seen[0].phones, vec!["+447700900123".to_string()]);
        assert_eq!(seen[0].author, "member1");
    })
    .await
    .expect("scenario timed out");
}
