//! Members tell each other where their nodes can be reached (an encrypted post), so members
//! who only know the founder's address find each other, and a restarted node finds them again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lookout_protocol::membership::Policy;
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_each_other_through_reachability_posts() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let (_dir, mut nodes) = Collective::new(2, Policy::default()).start().await;
        for node in &nodes {
            node.wait_members(3).await;
        }
        // Both members dialed only the founder; they connect to each other from announcements.
        for node in &nodes[1..] {
            eventually("member connects to the other member", || async {
                (node.peers().await == 2).then_some(())
            })
            .await;
        }
        // The founder restarts knowing no addresses but what members announced.
        let founder = nodes.remove(0);
        let home = founder.stop().await;
        let founder = start_node(reopen(&home)).await;
        eventually("restarted founder reconnects", || async {
            (founder.peers().await >= 1).then_some(())
        })
        .await;
        let id = nodes[0]
            .post(draft("seen near the station", "07700 900777"))
            .await;
        eventually("alert reaches the restarted founder", || async {
            founder.has_alert(&id).await.then_some(())
        })
        .await;
    })
    .await
    .expect("scenario timed out");
}
