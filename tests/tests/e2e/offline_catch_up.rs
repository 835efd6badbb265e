//! Offline catch-up: a node stopped while 1,000 alerts are posted gets every live one when it
//! starts again, receiving not much more than the alerts' own size; and what a member posts while
//! its node is stopped goes out at the next start.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use lookout_node::replica::SetKind;
use lookout_protocol::membership::Policy;
use lookout_tests::*;

/// Alerts posted while the node is away.
const MISSED: usize = 1000;
/// Most bytes the returning node may receive per byte of envelope it lacked.
const MAX_OVERHEAD: f64 = 1.5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_and_publishes_offline_posts() {
    tokio::time::timeout(Duration::from_secs(150), scenario())
        .await
        .expect("scenario timed out");
}

async fn scenario() {
    let policy = Policy {
        posts_per_day: 2000,
        ..Policy::default()
    };
    let (_dir, mut nodes) = Collective::new(2, policy).start().await;
    for node in &nodes {
        node.wait_members(3).await;
    }
    let away = nodes.pop().unwrap();
    let home = away.stop().await;

    let started = Instant::now();
    let mut posted = Vec::with_capacity(MISSED);
    for i in 0..MISSED {
        let poster = &nodes[i % 2];
        posted.push(
            poster
                .post(draft(&format!("incident {i}"), "07700 900481"))
                .await,
        );
    }
    let posting = started.elapsed();
    for node in &nodes {
        eventually("the online members have every alert", || async {
            (node.alerts().await.len() == MISSED).then_some(())
        })
        .await;
    }

    let back = start_node(reopen(&home)).await;
    let resumed = Instant::now();
    connect(&back, &nodes[0]).await;
    eventually("the returning node has every alert", || async {
        (back.alerts().await.len() == MISSED).then_some(())
    })
    .await;
    let catch_up = resumed.elapsed();
    let received = back.handle.stats().await.unwrap().bytes_received;
    assert_eq!(back.alert_ids().await, posted.into_iter().collect());

    // What it lacked: the envelopes now in its store, as they travel.
    let home = back.stop().await;
    let mut replica = reopen(&home);
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    // The alerts plus the members' reachability announcements, which it lacked too.
    assert!(
        ids.len() >= MISSED && ids.len() <= MISSED + 8,
        "{}",
        ids.len()
    );
    let lacked: usize = replica
        .fetch(SetKind::Envelopes, &ids)
        .unwrap()
        .iter()
        .map(Vec::len)
        .sum();
    let ratio = received as f64 / lacked as f64;
    println!(
        "posted {MISSED} alerts in {posting:?}; caught up in {catch_up:?}; \
         received {received} bytes for {lacked} bytes of envelopes ({ratio:.2}x)"
    );
    assert!(
        ratio <= MAX_OVERHEAD,
        "received {received} bytes for {lacked} bytes of alerts ({ratio:.2}x)"
    );

    // Posting while the node is stopped: straight into the store.
    let offline = replica
        .post(draft("posted with the node stopped", "07700 900482"))
        .unwrap()
        .to_hex();
    replica.close().unwrap();
    let back = start_node(reopen(&home)).await;
    connect(&back, &nodes[0]).await;
    for node in &nodes {
        eventually("the offline post reaches the others", || async {
            node.has_alert(&offline).await.then_some(())
        })
        .await;
    }
    assert!(back.has_alert(&offline).await);
}
