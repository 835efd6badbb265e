//! A partition of six `lookout run` processes on loopback, healed after both sides posted,
//! revoked and rotated. Each half only knows its own nodes' addresses (`--peer`, fresh ports
//! on every start, no mDNS), so nothing crosses until one node is restarted with a peer in the
//! other half. Each half's moderator removes a member of the *other* half and rotates; both
//! halves post before and after. Once healed, every remaining member shows the same roster, the
//! same alerts and the same write epoch, and both removed members learn that they were removed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::*;

const NAMES: [&str; 6] = ["Ana", "Bea", "Cleo", "Dora", "Eve", "Fay"];

#[test]
fn halves_that_revoked_and_rotated_converge_after_the_heal() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = NAMES
        .iter()
        .map(|n| dir.path().join(n.to_lowercase()))
        .collect();
    let [ana, bea, cleo, dora, eve, fay] = [0, 1, 2, 3, 4, 5].map(|i| homes[i].as_path());

    // Enrol everyone through the founder's node; make Dora a moderator.
    init(ana, NAMES[0]);
    ok(ana, &["collective", "create", "--name", "Tide Collective"]);
    let ana_node = Node::start(ana);
    for (home, name) in homes[1..].iter().zip(&NAMES[1..]) {
        init(home, name);
        let code = code_from(home, &["join-request", "--json"]);
        let approved = ok(ana, &["approve", &code, "--json"]).json();
        ok(home, &["join", approved["invite"].as_str().unwrap()]);
    }
    ok(ana, &["promote", "Dora"]);
    let others: Vec<Node> = homes[1..].iter().map(|h| Node::start(h)).collect();
    for home in &homes {
        eventually("everyone knows all six and Dora's rights", || {
            let members = members(home);
            (members.len() == 6 && moderators(home).contains("Dora")).then_some(())
        });
    }
    ana_node.stop();
    for node in others {
        node.stop();
    }

    // Two halves, each a star around its moderator.
    let ana_node = Node::start(ana);
    let dora_node = Node::start(dora);
    let a_peer = ana_node.addresses[0].clone();
    let b_peer = dora_node.addresses[0].clone();
    let mut half_a = vec![ana_node];
    let mut half_b = vec![dora_node];
    for home in [bea, cleo] {
        half_a.push(Node::start_args(home, |_| {}, &["--peer", &a_peer]));
    }
    for home in [eve, fay] {
        half_b.push(Node::start_args(home, |_| {}, &["--peer", &b_peer]));
    }
    for (home, center) in [(bea, ana), (cleo, ana), (eve, dora), (fay, dora)] {
        eventually("each half connects", || {
            (status(home)["peers"].as_u64() >= Some(1)
                && status(center)["peers"].as_u64() >= Some(1))
            .then_some(())
        });
    }

    // Both halves post; each moderator removes someone in the other half and rotates.
    let a1 = post(bea, "half A before the removals", &["--area", "North Quay"]);
    let b1 = post(eve, "half B before the removals", &["--area", "South Quay"]);
    for home in [ana, cleo] {
        eventually("a1 spreads in half A", || {
            alert_ids(home, &[]).contains(&a1).then_some(())
        });
    }
    for home in [dora, fay] {
        eventually("b1 spreads in half B", || {
            alert_ids(home, &[]).contains(&b1).then_some(())
        });
    }
    let epoch_a = status(ana)["epoch"].clone();
    let epoch_b = status(dora)["epoch"].clone();
    let revoked = ok(
        ana,
        &["revoke", "Fay", "--reason", "phone seized", "--json"],
    )
    .json();
    assert!(revoked["epoch"].is_string(), "{revoked}");
    let revoked = ok(dora, &["revoke", "Cleo", "--reason", "left", "--json"]).json();
    assert!(revoked["epoch"].is_string(), "{revoked}");
    for (home, before) in [(bea, &epoch_a), (cleo, &epoch_a), (eve, &epoch_b)] {
        eventually("each half rotates", || {
            (status(home)["epoch"] != *before && status(home)["members"] == 5).then_some(())
        });
    }
    let a2 = post(
        cleo,
        "half A by Cleo, before she hears",
        &["--area", "North Quay"],
    );
    let a3 = post(bea, "half A after the rotation", &["--area", "North Quay"]);
    let b2 = post(
        fay,
        "half B by Fay, before she hears",
        &["--area", "South Quay"],
    );
    let b3 = post(eve, "half B after the rotation", &["--area", "South Quay"]);
    for home in [ana, bea, cleo] {
        eventually("half A holds its alerts", || {
            let ids = alert_ids(home, &[]);
            [&a1, &a2, &a3]
                .iter()
                .all(|id| ids.contains(id))
                .then_some(())
        });
    }
    for home in [dora, eve, fay] {
        eventually("half B holds its alerts", || {
            let ids = alert_ids(home, &[]);
            [&b1, &b2, &b3]
                .iter()
                .all(|id| ids.contains(id))
                .then_some(())
        });
    }
    // The partition held: nothing of one half reached the other.
    for home in [ana, bea, cleo] {
        let ids = alert_ids(home, &[]);
        assert!(
            ![&b1, &b2, &b3].iter().any(|id| ids.contains(id)),
            "B leaked to A"
        );
        assert_eq!(members(home).len(), 5);
        assert!(
            members(home).contains("Cleo"),
            "A has not heard of Cleo's removal"
        );
    }
    for home in [dora, eve, fay] {
        let ids = alert_ids(home, &[]);
        assert!(
            ![&a1, &a2, &a3].iter().any(|id| ids.contains(id)),
            "A leaked to B"
        );
        assert!(
            members(home).contains("Fay"),
            "B has not heard of Fay's removal"
        );
    }

    // Heal: Eve restarts knowing a node of half A.
    let healed = Instant::now();
    let eve_node = half_b.remove(1);
    eve_node.stop();
    half_b.insert(
        1,
        Node::start_args(eve, |_| {}, &["--peer", &a_peer, "--peer", &b_peer]),
    );
    let remaining = [ana, bea, dora, eve];
    let expected: BTreeSet<&str> = ["Ana", "Bea", "Dora", "Eve"].into();
    for home in remaining {
        eventually("the remaining members converge on the roster", || {
            let names = members(home);
            (names.iter().map(String::as_str).collect::<BTreeSet<_>>() == expected).then_some(())
        });
    }
    for home in remaining {
        eventually("the remaining members converge on the alerts", || {
            let ids: BTreeSet<String> = alert_ids(home, &[]).into_iter().collect();
            let reference: BTreeSet<String> = alert_ids(ana, &[]).into_iter().collect();
            let honest = [&a1, &a2, &a3, &b1, &b3].iter().all(|id| ids.contains(*id));
            (honest && ids == reference).then_some(())
        });
    }
    eventually("one write epoch everywhere", || {
        let epochs: BTreeSet<String> = remaining
            .iter()
            .map(|h| status(h)["epoch"].to_string())
            .collect();
        (epochs.len() == 1 && !epochs.contains("null")).then_some(())
    });
    let final_ids = |home: &Path| -> (BTreeSet<String>, BTreeSet<String>) {
        (member_ids(home), alert_ids(home, &[]).into_iter().collect())
    };
    let first = final_ids(ana);
    for home in &remaining[1..] {
        assert_eq!(final_ids(home), first, "{}", home.display());
    }
    for home in [cleo, fay] {
        eventually("the removed members learn it", || {
            (status(home)["is_removed"] == true).then_some(())
        });
    }
    println!(
        "healed in {:?}; whole scenario {:?}; {} alerts, {} members",
        healed.elapsed(),
        started.elapsed(),
        first.1.len(),
        first.0.len()
    );
    drop(half_a);
    drop(half_b);
}

/// Names of the current members (`members --json`).
fn members(home: &Path) -> BTreeSet<String> {
    list(home, "name")
}

/// Ids of the current members.
fn member_ids(home: &Path) -> BTreeSet<String> {
    list(home, "id")
}

fn list(home: &Path, field: &str) -> BTreeSet<String> {
    ok(home, &["members", "--json"]).json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap().to_owned())
        .collect()
}

/// Names of the current moderators.
fn moderators(home: &Path) -> BTreeSet<String> {
    ok(home, &["members", "--json"]).json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["moderator"] == true)
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}
