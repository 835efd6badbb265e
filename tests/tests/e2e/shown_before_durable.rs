//! A node tells its user of an alert once it has checked it, before the fsync that makes it
//! durable (docs/PROTOCOL.md §9.4). A crash in between loses the alert from this device only:
//! the network still holds it, and the next sync after the restart fetches it again.
//!
//! The crash is modelled exactly: the member's home is copied while its node is stopped, the
//! alert arrives and is shown, and then the home is put back as it was, which is the disk a
//! kill before the fsync leaves (nothing of the alert written). It is also the disk a kill
//! leaves while the alert's writes still wait in memory (write-behind, `node/src/commit.rs`
//! `WriteBehind`: up to 200 ms after it was shown).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use lookout_node::api::{AlertFilter, Event, Request, Response};
use lookout_protocol::membership::Policy;
use lookout_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_shown_then_lost_in_a_crash_comes_back_by_sync() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("scenario timed out");
}

async fn scenario() {
    let (_dir, mut nodes) = Collective::new(1, Policy::default()).start().await;
    for node in &nodes {
        node.wait_members(2).await;
    }
    let founder = nodes.remove(0);
    let member = nodes.remove(0);

    // The disk before the alert: the home copied while the node is stopped.
    let home = member.stop().await;
    let before = tempfile::tempdir().unwrap();
    copy_dir(&home, before.path());
    let member = start_node(reopen(&home)).await;
    connect(&member, &founder).await;
    eventually("the member is connected again", || async {
        (member.peers().await == 1).then_some(())
    })
    .await;

    // The alert reaches the member and is shown to its user.
    let mut events = member.handle.watch().await.unwrap();
    let id = founder
        .post(draft("shown, then lost", "07700 900123"))
        .await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(Event::Alert(view)) = events.recv().await {
                if view.id == id {
                    break;
                }
            }
        }
    })
    .await
    .expect("the member was never shown the alert");

    // The crash before the fsync: the disk holds nothing of the alert.
    let home = member.stop().await;
    fs::remove_dir_all(&home).unwrap();
    copy_dir(before.path(), &home);
    let mut replica = reopen(&home);
    match replica
        .execute(Request::Alerts(AlertFilter::default()))
        .unwrap()
    {
        Response::Alerts { alerts } => assert!(
            alerts.iter().all(|a| a.id != id),
            "the restored disk should not hold the alert"
        ),
        other => panic!("unexpected answer {other:?}"),
    }

    // After the restart the member gets it again from the founder (sync; gossip is long over).
    let member = start_node(replica).await;
    connect(&member, &founder).await;
    eventually("the alert comes back by sync", || async {
        member.has_alert(&id).await.then_some(())
    })
    .await;
    member.stop().await;
    founder.stop().await;
}

/// Write-behind (`node/src/commit.rs`, `WriteBehind`): a received alert's store writes wait in
/// memory for up to 200 ms, to share one batch with the next alerts'. Whatever reads the store
/// meanwhile must still find it: the listing, a check and a page asked for the moment it is
/// shown, and the store a shutdown right after leaves behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_whose_writes_wait_is_read_at_once_and_kept_by_a_shutdown() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let (_dir, mut nodes) = Collective::new(1, Policy::default()).start().await;
        for node in &nodes {
            node.wait_members(2).await;
        }
        let founder = nodes.remove(0);
        let member = nodes.remove(0);
        let mut events = member.handle.watch().await.unwrap();
        for round in 0..3 {
            let id = founder
                .post(draft(&format!("read at once {round}"), "07700 900124"))
                .await;
            shown(&mut events, &id).await;
            // No pause: each request comes well within the write-behind window.
            assert!(member.has_alert(&id).await, "round {round}: not listed");
            match member
                .execute(Request::Check {
                    term: "07700 900124".into(),
                })
                .await
            {
                Response::Alerts { alerts } => assert!(
                    alerts.iter().any(|a| a.id == id),
                    "round {round}: not found by a check"
                ),
                other => panic!("unexpected answer {other:?}"),
            }
            match member
                .execute(Request::AlertsPage {
                    filter: AlertFilter::default(),
                    after: None,
                    limit: 10,
                })
                .await
            {
                Response::AlertsPage { alerts, .. } => assert!(
                    alerts.iter().any(|a| a.id == id),
                    "round {round}: not on the first page"
                ),
                other => panic!("unexpected answer {other:?}"),
            }
        }
        // Shown, then the node is stopped at once: the shutdown writes what waits.
        let id = founder
            .post(draft("kept by a shutdown", "07700 900125"))
            .await;
        shown(&mut events, &id).await;
        let home = member.stop().await;
        let mut replica = reopen(&home);
        match replica
            .execute(Request::Alerts(AlertFilter::default()))
            .unwrap()
        {
            Response::Alerts { alerts } => assert!(
                alerts.iter().any(|a| a.id == id),
                "the alert shown before the shutdown is not in the store"
            ),
            other => panic!("unexpected answer {other:?}"),
        }
        founder.stop().await;
    })
    .await
    .expect("scenario timed out");
}

async fn shown(events: &mut tokio::sync::broadcast::Receiver<Event>, id: &str) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(Event::Alert(view)) = events.recv().await {
                if view.id == id {
                    break;
                }
            }
        }
    })
    .await
    .expect("the member was never shown the alert");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
    fs::set_permissions(to, fs::metadata(from).unwrap().permissions()).unwrap();
}
