//! The duress passphrase (issue 9), through the real binary: typed where the passphrase is
//! asked, it erases the home, and the command answers exactly as on a device where Lookout was
//! never set up: same output, same exit code, no directory left. The key file does not show
//! whether a duress passphrase is set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use crate::common::*;

const DURESS: &str = "let me go now please";

/// `lookout ARGS` with the duress passphrase typed, and the same on a never-initialised home;
/// both outputs with their home replaced by `HOME`.
fn as_typed(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run_command(command(home).env("LOOKOUT_PASSPHRASE", DURESS).args(args));
    let home = home.display().to_string();
    (
        out.code,
        out.stdout.replace(&home, "HOME"),
        out.stderr.replace(&home, "HOME"),
    )
}

fn set_up(home: &Path, dir: &Path) {
    init(home, "Quenburga");
    ok(
        home,
        &["collective", "create", "--name", "Marigold Collective"],
    );
    post(
        home,
        "bit my shoulder in the lift",
        &["--phone", "07700 900551"],
    );
    let duress_file = dir.join("duress.txt");
    std::fs::write(&duress_file, format!("{DURESS}\n")).unwrap();
    let key_before = std::fs::read(home.join("store.key")).unwrap();
    let set = ok(
        home,
        &[
            "passphrase",
            "duress",
            "--duress-passphrase-file",
            duress_file.to_str().unwrap(),
        ],
    );
    assert!(set.stdout.contains("erases everything"), "{set:?}");
    std::fs::remove_file(&duress_file).unwrap();
    // Same size, same header (parameters and salt): the file does not tell.
    let key_after = std::fs::read(home.join("store.key")).unwrap();
    assert_eq!(key_after.len(), key_before.len());
    assert_eq!(key_after[..33], key_before[..33]);
    assert_ne!(key_after, key_before);
    // The passphrase still opens everything.
    assert_eq!(alert_ids(home, &[]).len(), 1);
}

#[test]
fn duress_passphrase_leaves_a_home_indistinguishable_from_none() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    let never = dir.path().join("never");
    set_up(&home, dir.path());
    // A home without a duress passphrase has a key file of the same size.
    let other = dir.path().join("bea");
    init(&other, "Ottoline");
    assert_eq!(
        std::fs::metadata(other.join("store.key")).unwrap().len(),
        std::fs::metadata(home.join("store.key")).unwrap().len()
    );

    let coerced = as_typed(&home, &["alerts"]);
    let fresh = as_typed(&never, &["alerts"]);
    assert_eq!(coerced, fresh);
    assert_eq!(coerced.0, 3, "{coerced:?}");
    assert!(!home.exists(), "the home is gone");
    assert!(!never.exists());
    // And from then on, with any passphrase, every command answers as on a bare device.
    for args in [&["status"][..], &["alerts", "--json"], &["members"]] {
        assert_eq!(as_typed(&home, args), as_typed(&never, args));
        let real = run(&home, args);
        let bare = run(&never, args);
        assert_eq!(real.code, bare.code);
        assert_eq!(
            real.stderr.replace(&home.display().to_string(), "HOME"),
            bare.stderr.replace(&never.display().to_string(), "HOME")
        );
    }
    assert!(!home.exists() && !never.exists());
}

#[test]
fn duress_passphrase_at_run_erases_and_answers_as_a_bare_device() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    let never = dir.path().join("never");
    set_up(&home, dir.path());
    let args = ["run", "--listen", "/ip4/127.0.0.1/tcp/0"];
    let coerced = as_typed(&home, &args);
    let fresh = as_typed(&never, &args);
    assert_eq!(coerced, fresh);
    assert_ne!(coerced.0, 0);
    assert!(!home.exists() && !never.exists());
}

/// Review finding 8a: on a terminal, a device where Lookout was never set up asks for the
/// passphrase before it says there is no identity, as a device with Lookout does (and as one
/// erased by the duress passphrase did): the prompt does not tell them apart. Run under
/// `script`, which gives the command a terminal.
#[test]
fn a_bare_device_asks_the_passphrase_like_a_set_up_one() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never");
    let ana = dir.path().join("ana");
    init(&ana, "Quenburga");
    let on_terminal = |home: &Path| {
        let line = format!(
            "{} --home {} alerts",
            env!("CARGO_BIN_EXE_lookout"),
            home.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("LOOKOUT_PASSPHRASE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs the command on a terminal");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"let me go now please\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bare = on_terminal(&never);
    assert!(bare.contains("Passphrase:"), "{bare}");
    assert!(bare.contains("no Lookout identity"), "{bare}");
    let set_up = on_terminal(&ana);
    assert!(set_up.contains("Passphrase:"), "{set_up}");
    assert!(!never.exists());
}

/// Review finding 8e: the duress passphrase is checked for strength like the real one (an
/// easily guessed one is a second way into the device: the one that destroys it); the check
/// can be waived with --allow-weak-passphrase.
#[test]
fn a_weak_duress_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    init(&home, "Quenburga");
    let weak = dir.path().join("weak.txt");
    std::fs::write(&weak, "1234\n").unwrap();
    let key_before = std::fs::read(home.join("store.key")).unwrap();
    let args = [
        "passphrase",
        "duress",
        "--duress-passphrase-file",
        weak.to_str().unwrap(),
    ];
    fails(&home, &args, 2, "too easy to guess");
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_before);
    let mut waived = args.to_vec();
    waived.push("--allow-weak-passphrase");
    ok(&home, &waived);
    assert_ne!(std::fs::read(home.join("store.key")).unwrap(), key_before);
}

/// Review finding 8d: a stale or planted pid file is not trusted. It names another process (a
/// `sleep` standing in for an unrelated program that reused the pid); the duress passphrase
/// still stops the node that serves this home's control socket, and the other process is
/// never signalled.
#[test]
fn duress_stops_the_node_of_this_home_not_the_process_a_pid_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    set_up(&home, dir.path());
    let mut node = Node::start(&home);
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(home.join("node.pid"), format!("{}\n", bystander.id())).unwrap();
    // `passphrase change` asks the passphrase even while a node runs.
    let new_file = dir.path().join("new.txt");
    std::fs::write(&new_file, "a new long passphrase here\n").unwrap();
    let args = [
        "passphrase",
        "change",
        "--new-passphrase-file",
        new_file.to_str().unwrap(),
    ];
    let coerced = as_typed(&home, &args);
    assert_ne!(coerced.0, 0);
    assert!(node.wait_exit().is_some(), "the node still runs");
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the process the pid file named was signalled"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    assert!(!home.exists());
}

/// With a node running, the duress passphrase typed at another command (here `passphrase
/// change`, which asks it) destroys the key at once, stops the node and removes the home.
#[test]
fn duress_passphrase_while_a_node_runs_stops_it_and_erases() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    let never = dir.path().join("never");
    set_up(&home, dir.path());
    let mut node = Node::start(&home);
    let new_file = dir.path().join("new.txt");
    std::fs::write(&new_file, "a new long passphrase here\n").unwrap();
    let args = [
        "passphrase",
        "change",
        "--new-passphrase-file",
        new_file.to_str().unwrap(),
    ];
    let coerced = as_typed(&home, &args);
    let fresh = as_typed(&never, &args);
    assert_eq!(coerced, fresh);
    node.wait_exit();
    assert!(
        !home.exists(),
        "left: {:?}",
        std::fs::read_dir(&home).map(|d| d.count())
    );
}

/// Issue 9, memory and crashes: the running `lookout run` process has a core-file limit of zero
/// and is not dumpable (so no ptrace attachment by the same user), as the kernel reports it.
#[test]
fn a_running_node_dumps_no_core_and_cannot_be_attached_to() {
    let dir = tempfile::tempdir().unwrap();
    let home = founded(dir.path());
    let node = Node::start_args(
        &home,
        |c| {
            c.env_remove("LOOKOUT_INSECURE_DUMPABLE")
                .env("RUST_LOG", "lookout_node=debug");
        },
        &[],
    );
    let pid = node.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields[4..6], ["0", "0"], "{core}");
    // A non-dumpable process's /proc entries belong to root, so a process of the same user
    // cannot open its memory (meaningful when the tests do not run as root).
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let owner = std::fs::metadata(format!("/proc/{pid}/mem")).unwrap().uid();
    if me != 0 {
        assert_eq!(
            owner, 0,
            "/proc/{pid}/mem is owned by uid {owner}: the process is dumpable"
        );
        assert!(std::fs::File::open(format!("/proc/{pid}/mem")).is_err());
    }
    // The process's own reading of the kernel's flag (prctl PR_GET_DUMPABLE after setting it).
    node.stop_and_then(|logs| {
        assert!(
            logs.contains("process hardened") && logs.contains("not_dumpable=true"),
            "{logs}"
        );
        assert!(logs.contains("no_core_dumps=true"), "{logs}");
    });
}
