//! A running node seen from other processes: `alerts --watch` streams, and nothing a person
//! types ends up in the logs even at the most verbose levels.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

#[test]
fn watching_prints_new_alerts_as_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let node = Node::start(&ana);
    let mut watcher = command(&ana).args(["alerts", "--watch"]).spawn().unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let next_line = || {
        received
            .recv_timeout(PATIENCE)
            .expect("the watcher keeps printing")
    };
    assert_eq!(next_line(), "No live alerts.");
    assert!(next_line().contains("Waiting for new alerts"));
    let id = post(&ana, "Pulled a knife", &["--area", "Harbour Street"]);
    let head = next_line();
    let head = if head.is_empty() { next_line() } else { head };
    assert!(head.contains(&id[..8]), "{head}");
    assert!(head.contains("HIGH violence"), "{head}");
    assert_eq!(next_line().trim(), "Pulled a knife");
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(node.printed().contains("new alert"), "{}", node.printed());
    node.stop();
}

#[test]
fn nothing_typed_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let secrets = [
        "Unmistakable description 7431",
        "07700 900777",
        "+447700900777",
        "XY99ZZZ",
        "Secretplace Lane",
        PASSPHRASE,
    ];
    let args = [
        "-vv",
        "post",
        "--category",
        "robbery",
        "--description",
        secrets[0],
        "--phone",
        secrets[1],
        "--plate",
        secrets[3],
        "--area",
        secrets[4],
    ];
    // Offline, straight into the store.
    let offline = run_command(command(&ana).env("RUST_LOG", "trace").args(args));
    assert_eq!(offline.code, 0, "{offline:?}");
    // Through a running node that logs everything.
    let node = Node::start_with(&ana, |c| {
        c.env("RUST_LOG", "debug");
    });
    let online = run_command(command(&ana).env("RUST_LOG", "trace").args(args));
    assert_eq!(online.code, 0, "{online:?}");
    ok(&ana, &["check", secrets[1]]);
    std::thread::sleep(Duration::from_millis(500));
    node.stop_and_then(|logs| {
        assert!(logs.contains("DEBUG"), "the node did log at debug level");
        for secret in secrets {
            for (who, text) in [
                ("node", logs),
                ("offline", &offline.stderr),
                ("online", &online.stderr),
            ] {
                assert!(!text.contains(secret), "{who} logged '{secret}':\n{text}");
            }
        }
    });
}
