//! What the device and the network keep of a member's use of Lookout (issue 9, first items):
//! what is looked for stays out of shell history, exported sheets are private files, a node
//! whose output is kept (a file, a journal) keeps no alert contents, and a node does not announce
//! itself on the local network unless asked to. Every test drives the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::*;

/// `lookout check` with what to look for on standard input instead of the command line.
fn check_from_stdin(home: &Path, input: &str) -> Output {
    let mut child = command(home)
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn check_reads_what_to_look_for_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    post(&ana, "Pulled a knife", &["--phone", "07700 900123"]);
    let found = check_from_stdin(&ana, "+44 7700 900123\n");
    assert_eq!(found.code, 0, "{found:?}");
    assert!(found.stdout.contains("Careful"), "{found:?}");
    let none = check_from_stdin(&ana, "07700 900999\n");
    assert_eq!(none.code, 1, "{none:?}");
    let empty = check_from_stdin(&ana, "");
    assert_eq!(empty.code, 2, "{empty:?}");
    assert!(empty.stderr.contains("nothing to look for"), "{empty:?}");
    let help = ok(&ana, &["check", "--help"]).stdout;
    assert!(help.contains("shell history"), "{help}");
}

#[cfg(unix)]
#[test]
fn an_exported_sheet_is_readable_only_by_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    post(&ana, "Pulled a knife", &[]);
    let sheet = dir.path().join("sheet.txt");
    // Even a file that already exists with open permissions.
    std::fs::write(&sheet, b"old").unwrap();
    std::fs::set_permissions(&sheet, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ok(&ana, &["export", "--out", sheet.to_str().unwrap()]);
    let mode = std::fs::metadata(&sheet).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "sheet mode {mode:o}");
    assert!(out.stderr.contains("NOT encrypted"), "{out:?}");
    assert!(std::fs::read_to_string(&sheet)
        .unwrap()
        .contains("Pulled a knife"));
}

/// A member's node whose output goes to a file (as under a service manager) says that an alert
/// arrived, with its short id, and nothing of what it says.
#[test]
fn a_node_writing_to_a_file_keeps_no_alert_contents() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let bea = dir.path().join("bea");
    let ana_node = Node::start(&ana);
    init(&bea, "Bea");
    let code = code_from(&bea, &["join-request", "--json"]);
    let approved = ok(&ana, &["approve", &code, "--json"]).json();
    ok(&bea, &["join", approved["invite"].as_str().unwrap()]);
    let bea_node = Node::start(&bea);
    eventually("Bea is a member", || {
        (status(&bea)["is_member"] == true).then_some(())
    });
    let id = post(
        &ana,
        "Pulled a knife near the blue van",
        &[
            "--phone",
            "07700 900123",
            "--area",
            "Harbour Street",
            "--plate",
            "AB12 CDE",
        ],
    );
    let printed = eventually("Bea's node says an alert arrived", || {
        let printed = bea_node.printed();
        printed.contains("new alert").then_some(printed)
    });
    assert!(printed.contains(&id[..8]), "{printed}");
    for secret in [
        "knife", "blue van", "Harbour", "7700", "900123", "AB12", "violence",
    ] {
        assert!(!printed.contains(secret), "{secret:?} in:\n{printed}");
    }
    drop(ana_node);
}

/// Socket inodes of UDP sockets bound to port 5353 (mDNS) by process `pid`.
fn mdns_sockets(pid: u32) -> BTreeSet<String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut found = BTreeSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && cols[1].ends_with(":14E9") && inodes.contains(cols[9]) {
                found.insert(cols[9].to_owned());
            }
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn a_node_announces_itself_on_the_local_network_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let quiet = Node::start(&ana);
    assert!(
        mdns_sockets(quiet.pid()).is_empty(),
        "an mDNS socket without --mdns"
    );
    quiet.stop();
    // Control: with --mdns the same check finds the socket.
    let loud = Node::start_args(&ana, |_| {}, &["--mdns"]);
    eventually("the node opens its mDNS socket", || {
        (!mdns_sockets(loud.pid()).is_empty()).then_some(())
    });
    loud.stop();
}

/// The panic button destroys the key before anything that can wait or fail: here the running
/// node is frozen (SIGSTOP), so it cannot be stopped, and still nothing on disk opens any more.
#[cfg(target_os = "linux")]
#[test]
fn wipe_destroys_the_key_first_even_when_the_node_cannot_be_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    post(&ana, "Pulled a knife", &[]);
    let node = Node::start(&ana);
    let pid = node.pid().to_string();
    let signal = |sig: &str| {
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let started = std::time::Instant::now();
    let out = run(&ana, &["wipe", "--yes"]);
    let took = started.elapsed();
    signal("-CONT");
    assert!(
        !ana.join("store.key").exists(),
        "the key file survived: {out:?}"
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("already unreadable"), "{out:?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    node.kill9();
    // Nothing opens with the passphrase now; a second wipe removes what is left.
    let opened = run(&ana, &["alerts"]);
    assert_ne!(opened.code, 0, "{opened:?}");
    ok(&ana, &["wipe", "--yes"]);
    assert!(!ana.exists() || std::fs::read_dir(&ana).unwrap().next().is_none());
}

/// `lookout passphrase change`: afterwards the new passphrase opens everything and the old one
/// opens nothing on the device; a weak new one is refused; a running node must be stopped first.
#[test]
fn changing_the_passphrase_leaves_the_old_one_useless() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let id = post(&ana, "Pulled a knife", &[]);
    let new_file = dir.path().join("new-passphrase");
    std::fs::write(&new_file, "ochre lantern tidal marmot quietly\n").unwrap();
    let weak_file = dir.path().join("weak");
    std::fs::write(&weak_file, "password1\n").unwrap();
    fails(
        &ana,
        &[
            "passphrase",
            "change",
            "--new-passphrase-file",
            weak_file.to_str().unwrap(),
        ],
        2,
        "too easy to guess",
    );
    {
        let node = Node::start(&ana);
        fails(
            &ana,
            &[
                "passphrase",
                "change",
                "--new-passphrase-file",
                new_file.to_str().unwrap(),
            ],
            9,
            "",
        );
        node.stop();
    }
    ok(
        &ana,
        &[
            "passphrase",
            "change",
            "--new-passphrase-file",
            new_file.to_str().unwrap(),
        ],
    );
    // The old passphrase (the harness default) opens nothing.
    let old = run(&ana, &["alerts"]);
    assert_eq!(old.code, 4, "{old:?}");
    // The new one opens everything.
    let opened = run_command(
        command(&ana)
            .env("LOOKOUT_PASSPHRASE", "ochre lantern tidal marmot quietly")
            .args(["alerts", "--json"]),
    );
    assert_eq!(opened.code, 0, "{opened:?}");
    assert!(opened.stdout.contains(&id), "{opened:?}");
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// `init` used to leave the self-revocation certificate in clear in the home: proof, for whoever
/// takes the phone, that its owner is a member. Now it is shown once (or written where the user
/// says) and no file in the home names the member or the collective.
#[test]
fn no_file_in_a_home_names_the_member_or_the_collective() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let made = ok(&home, &["init", "--name", "Zelda Quinterro", "--json"]).json();
    let code = made["revocation_certificate_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(code.starts_with("LKREVOKE1-"), "{made}");
    assert!(made["revocation_certificate"].is_null(), "{made}");
    let member = made["member"].as_str().unwrap().to_owned();
    ok(
        &home,
        &[
            "collective",
            "create",
            "--name",
            "Marigold Harbour Collective",
        ],
    );
    post(&home, "Pulled a knife", &[]);
    let node = Node::start(&home);
    let files = files_under(&home);
    node.stop();
    let files_after = files_under(&home);
    for (path, bytes) in files.iter().chain(&files_after) {
        let text = String::from_utf8_lossy(bytes);
        for secret in [
            "Zelda",
            "Quinterro",
            "Marigold",
            "LKREVOKE",
            &code[10..30],
            &member[..16],
        ] {
            assert!(!text.contains(secret), "{secret:?} in {}", path.display());
        }
    }
    // The printed certificate works: another member could publish it.
    let text_init = ok(&dir.path().join("other"), &["init", "--name", "Other"]).stdout;
    assert!(text_init.contains("LKREVOKE1-"), "{text_init}");
    assert!(text_init.contains("not kept in clear"), "{text_init}");
}

/// Run `lookout ARGS...` with `input` on standard input.
fn with_stdin(home: &Path, args: &[&str], input: &str) -> Output {
    let mut child = command(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// REVIEW2 #3: an invite code holds the collective secret. Its QR file is readable by the owner
/// only (also when it overwrites a wider file), and `lookout join` without a code (or with `-`)
/// reads it from standard input, so it need not land in shell history or the process list.
#[test]
fn an_invite_qr_file_is_private_and_join_reads_the_code_from_stdin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let fresh = dir.path().join("fresh.svg");
    ok(&ana, &["invite", "--qr", fresh.to_str().unwrap()]);
    assert_eq!(mode(&fresh), 0o600);
    let wide = dir.path().join("wide.svg");
    std::fs::write(&wide, "old").unwrap();
    std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o644)).unwrap();
    let written = ok(&ana, &["invite", "--qr", wide.to_str().unwrap()]);
    assert!(
        written.stdout.contains("readable by you only"),
        "{written:?}"
    );
    assert_eq!(mode(&wide), 0o600);
    assert!(std::fs::read_to_string(&wide).unwrap().contains("<svg"));

    let bea = dir.path().join("bea");
    init(&bea, "Bea");
    let code = code_from(&bea, &["join-request", "--json"]);
    let approved = ok(&ana, &["approve", &code, "--json"]).json();
    let invite = approved["invite"].as_str().unwrap().to_owned();
    let joined = with_stdin(&bea, &["join"], &format!("{invite}\n"));
    assert_eq!(joined.code, 0, "{joined:?}");
    assert_eq!(status(&bea)["collective"], status(&ana)["collective"]);
    // Nothing on stdin: a clear error, and the device stays out.
    let cleo = dir.path().join("cleo");
    init(&cleo, "Cleo");
    let empty = with_stdin(&cleo, &["join", "-"], "");
    assert_ne!(empty.code, 0, "{empty:?}");
    assert!(empty.stderr.contains("no code on stdin"), "{empty:?}");
    assert!(status(&cleo)["collective"].is_null());
}
