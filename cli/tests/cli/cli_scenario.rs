//! The whole life of a collective through the real `lookout` binary, three processes on
//! loopback: found, enrol two members with join-request / approve / join, exchange alerts,
//! check, export, catch up after a stop and after a crash, retract, revoke, wipe.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn a_collective_from_founding_to_wiping() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    let bea = dir.path().join("bea");
    let cleo = dir.path().join("cleo");

    // Found.
    let founder = init(&ana, "Anabela");
    assert!(std::path::Path::new(founder["revocation_certificate"].as_str().unwrap()).is_file());
    let created = ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    assert!(created.stdout.contains("first moderator"), "{created:?}");
    let ana_node = Node::start(&ana);
    assert!(ana_node
        .addresses
        .iter()
        .any(|a| a.starts_with("/ip4/127.0.0.1/tcp/")));

    // Enrol two members through the codes people pass around.
    for (home, name) in [(&bea, "Beatriz"), (&cleo, "Cleonice")] {
        init(home, name);
        let request = ok(home, &["join-request", "--json"]).json();
        let code = request["code"].as_str().unwrap();
        assert!(code.starts_with("LKJOIN1-"));
        let approved = ok(&ana, &["approve", code, "--json"]).json();
        assert_eq!(approved["done"], true, "{approved}");
        let invite = approved["invite"].as_str().unwrap();
        let addresses = ok(&ana, &["invite", "--json"]).json()["addresses"].clone();
        // Bare: the node's peer id changes with every run and names nobody.
        assert_eq!(
            addresses.as_array().unwrap()[0].as_str().unwrap(),
            ana_node.addresses[0].split("/p2p/").next().unwrap(),
            "the invite carries the running node's address"
        );
        let joined = ok(home, &["join", invite]);
        assert!(joined.stdout.contains("Harbour Collective"), "{joined:?}");
    }
    let bea_node = Node::start(&bea);
    let cleo_node = Node::start(&cleo);
    for home in [&ana, &bea, &cleo] {
        eventually("every node learns the three members", || {
            let s = status(home);
            (s["members"] == 3 && s["is_member"] == true && s["running"] == true).then_some(())
        });
    }

    // A non-moderator cannot approve.
    let outsider = dir.path().join("outsider");
    init(&outsider, "Outsider");
    let code = code_from(&outsider, &["join-request", "--json"]);
    fails(&bea, &["approve", &code], 6, "only moderators");
    // Trial 12: a member removing herself was asked to "add --yes", then told only moderators
    // can remove anyone.
    let refused = fails(&bea, &["revoke", "Beatriz"], 6, "only moderators");
    assert!(!refused.stderr.contains("--yes"), "{refused:?}");

    // Post on one node, see it on the others within seconds.
    let posted = Instant::now();
    let knife = post(
        &bea,
        "Pulled a knife when asked to pay",
        &[
            "--phone",
            "07700 900123",
            "--area",
            "Harbour Street",
            "--when",
            "3h ago",
        ],
    );
    for home in [&ana, &cleo] {
        eventually("the alert reaches the other nodes", || {
            alert_ids(home, &[]).contains(&knife).then_some(())
        });
    }
    assert!(
        posted.elapsed() < Duration::from_secs(10),
        "{:?}",
        posted.elapsed()
    );
    let seen = ok(&cleo, &["alerts"]);
    assert!(
        seen.stdout.contains("Pulled a knife when asked to pay"),
        "{seen:?}"
    );
    assert!(seen.stdout.contains("by Beatriz"), "{seen:?}");

    // Check a phone number written another way.
    let found = ok(&cleo, &["check", "+44 7700 900123"]);
    assert!(found.stdout.contains("matched by phone"), "{found:?}");
    let none = run(&cleo, &["check", "--json", "07700 900999"]);
    assert_eq!(none.code, 1, "nothing found exits 1: {none:?}");
    assert_eq!(none.json(), serde_json::json!([]));

    // The printed sheet has what matters and nothing about members.
    let sheet = ok(&ana, &["export", "--format", "text"]).stdout;
    let page_path = dir.path().join("sheet.html");
    ok(
        &ana,
        &[
            "export",
            "--format",
            "html",
            "--out",
            page_path.to_str().unwrap(),
        ],
    );
    let page = std::fs::read_to_string(&page_path).unwrap();
    let members = ok(&ana, &["members", "--json"]).json();
    for text in [&sheet, &page] {
        assert!(text.contains("Pulled a knife when asked to pay"));
        assert!(text.contains("+447700900123"));
        assert!(text.contains("Harbour Street"));
        for member in members["members"].as_array().unwrap() {
            let id = member["id"].as_str().unwrap();
            assert!(!text.contains(&id[..8]), "member id on the sheet");
            assert!(
                !text.contains(member["name"].as_str().unwrap()),
                "name on the sheet"
            );
        }
        assert!(!text.contains(&knife[..8]), "alert id on the sheet");
    }

    // Post while a node is stopped: it arrives after the restart.
    cleo_node.stop();
    let while_away = post(&bea, "Followed me home", &["--area", "Dock Road"]);
    eventually("the alert reaches the running founder", || {
        alert_ids(&ana, &[]).contains(&while_away).then_some(())
    });
    assert!(!alert_ids(&cleo, &[]).contains(&while_away));
    let cleo_node = Node::start(&cleo);
    eventually("the stopped node catches up after its restart", || {
        alert_ids(&cleo, &[]).contains(&while_away).then_some(())
    });

    // Retract through the author's running node; it gossips out.
    let retracted = ok(
        &bea,
        &["retract", &while_away[..8], "--reason", "wrong person"],
    );
    assert!(retracted.stdout.contains("retracted"), "{retracted:?}");
    for home in [&ana, &cleo] {
        eventually("the retraction reaches everyone", || {
            (!alert_ids(home, &[]).contains(&while_away)).then_some(())
        });
    }
    let with_retracted = ok(&ana, &["alerts", "--retracted", "--json"]).json();
    let entry = with_retracted
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == while_away.as_str())
        .expect("still listed with --retracted");
    assert_eq!(entry["retracted"], "wrong person");
    // Who withdrew it is shown (here its author; Trial 12's T12-15).
    assert_eq!(entry["retracted_by"], entry["author"], "{entry}");
    let listed = ok(&ana, &["alerts", "--retracted"]).stdout;
    assert!(
        listed.contains(&format!(
            "RETRACTED by {}: wrong person",
            entry["author"].as_str().unwrap()
        )),
        "{listed}"
    );

    // A crash right after `post` returned: the alert survives and still goes out.
    let crash = post(&bea, "Took my phone", &["--area", "Station"]);
    bea_node.kill9();
    assert!(
        alert_ids(&bea, &[]).contains(&crash),
        "kept on disk before `post` returned"
    );
    let bea_node = Node::start(&bea);
    for home in [&ana, &cleo] {
        eventually("the alert posted before the crash reaches everyone", || {
            alert_ids(home, &[]).contains(&crash).then_some(())
        });
    }

    // Revoke a member: what is posted next does not reach her.
    let revoked = ok(
        &ana,
        &["revoke", "Cleonice", "--reason", "phone was stolen"],
    );
    assert!(revoked.stdout.contains("no longer a member"), "{revoked:?}");
    assert!(
        revoked.stdout.contains("group key was changed"),
        "{revoked:?}"
    );
    eventually("the author's node learns of the removal", || {
        (status(&bea)["members"] == 2).then_some(())
    });
    let after = post(
        &bea,
        "Three men waiting at the flat",
        &["--area", "Dock Road"],
    );
    eventually("the new alert reaches the founder", || {
        alert_ids(&ana, &[]).contains(&after).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !alert_ids(&cleo, &[]).contains(&after),
        "a removed member must not receive new alerts"
    );
    // Trial 12: her device answered `check` with a plain "No live alert names …" from a list
    // that no longer changes; it now says so (status had shown "removed from it").
    eventually("her node learns of her removal", || {
        (status(&cleo)["is_removed"] == true).then_some(())
    });
    for args in [&["alerts"][..], &["check", "07700 900999"][..]] {
        let shown = run(&cleo, args);
        assert!(
            shown
                .stdout
                .contains("this identity was removed from the collective"),
            "{args:?}: {shown:?}"
        );
    }
    let members_view = ok(&bea, &["alerts"]);
    assert!(
        !members_view
            .stdout
            .contains("was removed from the collective"),
        "{members_view:?}"
    );

    // Wipe, with the node still running: it is stopped, and nothing can be read afterwards.
    let mut cleo_node = cleo_node;
    let wiped = ok(&cleo, &["wipe", "--yes"]);
    assert!(wiped.stdout.contains("erased"), "{wiped:?}");
    assert_eq!(
        cleo_node.wait_exit(),
        Some(0),
        "wipe stops the running node"
    );
    assert!(!cleo.join("store.key").exists());
    assert!(!cleo.join("store").exists());
    fails(&cleo, &["status"], 3, "no Lookout identity");
    drop(bea_node);
    drop(ana_node);
}
