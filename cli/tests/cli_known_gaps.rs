//! Behaviour blocked by known node bugs, kept here so it is checked as soon as they are fixed:
//! `cargo test -p lookout-cli --test cli_known_gaps -- --include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;

/// The control socket's envelope has its own `id` field (node/src/control.rs, `Envelope`,
/// flattened with `Request`), so `Request::Retract { id, .. }` and `Request::Corroborate { id, .. }`
/// arrive as "duplicate field `id`". Until the node renames one of them, the CLI tells the user to
/// stop the node first (exit 9).
#[test]
#[ignore = "node bug: control socket Envelope.id collides with Request::Retract/Corroborate id"]
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
    ok(&ana, &["corroborate", &id[..8]]);
    ok(&ana, &["retract", &id[..8], "--reason", "mistake"]);
    assert!(!alert_ids(&ana, &[]).contains(&id));
    node.stop();
}

/// What users see meanwhile: one clear line, exit code 9 (busy).
#[test]
fn retract_through_a_running_node_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let node = Node::start(&ana);
    let id = post(&ana, "Pulled a knife", &[]);
    let out = run(&ana, &["retract", &id[..8]]);
    if out.code == 0 {
        // Fixed in the node: nothing to explain any more.
        assert!(!alert_ids(&ana, &[]).contains(&id));
    } else {
        assert_eq!(out.code, 9, "{out:?}");
        assert!(out.stderr.contains("stop `lookout run`"), "{out:?}");
    }
    node.stop();
}

/// `Replica::load` (node/src/replica/mod.rs) puts stored posts into `posts` without updating the
/// `refs` index that `alert_view` reads, so after the store is reopened, retractions, edits and
/// corroborations are no longer applied: a retracted alert shows as live again.
#[test]
#[ignore = "node bug: Replica::load does not rebuild the refs index (retractions lost on reopen)"]
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
    ok(&ana, &["corroborate", &kept[..8]]);
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
    assert_eq!(listed[0]["corroborations"], 1);
}
