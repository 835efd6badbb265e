//! Regression tests for two node bugs the CLI tests found (both fixed): requests with an `id`
//! field through the control socket, and references (retractions, corroborations) after the
//! store is reopened.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::common::*;

/// The control socket's envelope had its own `id` field flattened with `Request`, so
/// `Request::Retract { id, .. }` and `Request::Corroborate { id, .. }` failed with "duplicate field
/// `id`" through a running node.
#[test]
fn retract_and_corroborate_through_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let node = Node::start(&ana);
    let id = post(&ana, "Pulled a knife", &[]);
    // Refused by the node (not by parsing): corroborating is for members other than the author.
    fails(&ana, &["corroborate", &id[..8]], 2, "you posted this alert");
    ok(&ana, &["retract", &id[..8], "--reason", "mistake"]);
    assert!(!alert_ids(&ana, &[]).contains(&id));
    node.stop();
}

/// `Replica::load` filled `posts` without the `refs` index that `alert_view` reads, so after the
/// store was reopened a retracted alert showed as live again. (Corroborations after reopening:
/// `cli_forgiving::corroborations_count_each_other_member_once_with_their_latest_note`.)
#[test]
fn retractions_and_corroborations_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let kept = post(&ana, "Pulled a knife", &[]);
    let withdrawn = post(&ana, "Wrong person", &[]);
    ok(&ana, &["retract", &withdrawn[..8]]);
    // Each command above and below opens the store afresh.
    let listed = ok(&ana, &["alerts", "--json"]).json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![kept.as_str()],
        "the retracted alert stays retracted"
    );
    assert_eq!(listed[0]["corroborations"], 0);
}
