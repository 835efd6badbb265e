//! Every mistake a person can make gets its own message and exit code (see `lookout --help`).
//! These run without nodes; the non-moderator case needs a synced member and is in
//! cli_scenario.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use crate::common::*;

/// A founded collective in `home`, and Bea admitted (offline, so her device has not synced).
fn founded(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let ana = dir.join("ana");
    let bea = dir.join("bea");
    init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    init(&bea, "Bea");
    let code = code_from(&bea, &["join-request", "--json"]);
    let approved = ok(
        &ana,
        &[
            "approve",
            &code,
            "--address",
            "/ip4/127.0.0.1/tcp/9",
            "--json",
        ],
    )
    .json();
    let invite = approved["invite"].as_str().unwrap().to_owned();
    (ana, bea, invite)
}

#[test]
fn identity_and_passphrase_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fails(&home, &["status"], 3, "no Lookout identity");
    fails(&home, &["alerts"], 3, "lookout init");
    init(&home, "Ana");
    fails(
        &home,
        &["init", "--name", "Ana"],
        2,
        "already a Lookout identity",
    );

    let wrong = run_command(
        command(&home)
            .env("LOOKOUT_PASSPHRASE", "not the passphrase")
            .args(["status"]),
    );
    assert_eq!(wrong.code, 4, "{wrong:?}");
    assert!(wrong.stderr.contains("wrong passphrase"), "{wrong:?}");

    let none = run_command(
        command(&home)
            .env_remove("LOOKOUT_PASSPHRASE")
            .args(["status"]),
    );
    assert_eq!(none.code, 2, "{none:?}");
    assert!(none.stderr.contains("--passphrase-file"), "{none:?}");

    let file = dir.path().join("pass.txt");
    std::fs::write(&file, format!("{PASSPHRASE}\n")).unwrap();
    let from_file = run_command(command(&home).env_remove("LOOKOUT_PASSPHRASE").args([
        "--passphrase-file",
        file.to_str().unwrap(),
        "status",
    ]));
    assert_eq!(from_file.code, 0, "{from_file:?}");

    let json = run(&home, &["--json", "members"]);
    assert_eq!(json.code, 3, "{json:?}");
    let error: serde_json::Value = serde_json::from_str(json.stderr.trim()).unwrap();
    assert_eq!(error["error"]["code"], "no-collective");

    fails(&home, &["run", "--no-mdns"], 3, "not in a collective");
    fails(&home, &["wipe"], 2, "--yes");
}

#[test]
fn codes_pasted_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, bea, invite) = founded(dir.path());
    let carol = dir.path().join("carol");
    init(&carol, "Carol");
    let code = code_from(&carol, &["join-request", "--json"]);

    // A typo in a join code.
    let mut typo: Vec<char> = code.chars().collect();
    let at = typo.len() - 5;
    typo[at] = if typo[at] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    fails(&ana, &["approve", &typo], 8, "join request cannot be used");
    // Cut short.
    fails(
        &ana,
        &["approve", &code[..40]],
        8,
        "join request cannot be used",
    );
    // An invite pasted where a join code belongs, and the other way round.
    fails(&ana, &["approve", &invite], 8, "this is an invite code");
    fails(&bea, &["join", &code], 8, "this is a join request code");
    fails(&bea, &["join", "hello"], 8, "not an invite code");
    // An invite of another collective on a device already in one.
    let other = dir.path().join("other");
    init(&other, "Other");
    ok(&other, &["collective", "create", "--name", "Elsewhere"]);
    let foreign = code_from(&other, &["invite", "--json"]);
    fails(&ana, &["join", &foreign], 2, "already in");
    // A revocation certificate file without a certificate.
    let bogus = dir.path().join("bogus.txt");
    std::fs::write(&bogus, "nothing to see").unwrap();
    fails(
        &ana,
        &["revoke", "--certificate", bogus.to_str().unwrap()],
        8,
        "no revocation certificate",
    );

    // The invite names the address given with --address.
    ok(&bea, &["join", &invite]);
    let status = status(&bea);
    assert_eq!(status["collective"], "Harbour Collective");
    // Admitted, but the device has not synced: it says so.
    fails(
        &bea,
        &["post", "--category", "violence", "--description", "x"],
        5,
        "has not yet learnt that it was admitted: start your node with `lookout run`",
    );
}

#[test]
fn alert_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let (ana, _bea, _) = founded(dir.path());
    let bad = fails(
        &ana,
        &["post", "--category", "murder", "--description", "x"],
        2,
        "unknown category 'murder'",
    );
    assert!(
        bad.stderr.contains("sexual-assault"),
        "lists the categories: {bad:?}"
    );
    fails(
        &ana,
        &[
            "post",
            "--category",
            "violence",
            "--severity",
            "extreme",
            "--description",
            "x",
        ],
        2,
        "low, medium, high, critical",
    );
    fails(
        &ana,
        &["post", "--category", "violence"],
        2,
        "--description",
    );
    fails(
        &ana,
        &["post", "--description", "x"],
        2,
        "violence, sexual-assault",
    );
    fails(
        &ana,
        &[
            "post",
            "--category",
            "violence",
            "--description",
            "x",
            "--when",
            "next week",
        ],
        2,
        "yesterday",
    );
    fails(
        &ana,
        &[
            "post",
            "--category",
            "violence",
            "--description",
            "x",
            "--expires-in",
            "400",
        ],
        2,
        "1 to 90 days",
    );
    fails(&ana, &["alerts", "--since", "soon"], 2, "24h");
    fails(&ana, &["alerts", "--watch"], 2, "running node");

    let id = post(&ana, "Pulled a knife", &["--phone", "07700 900123"]);
    fails(
        &ana,
        &["retract", "abcd1234"],
        7,
        "no alert with id abcd1234",
    );
    fails(&ana, &["corroborate", "zz"], 2, "alert id is hex");
    fails(
        &ana,
        &["corroborate", &id[..6], "--note", "me too"],
        2,
        "you posted this alert",
    );
    fails(&ana, &["revoke", "nobody"], 7, "no member matches 'nobody'");
    fails(
        &ana,
        &["approve", "--proposal", "abcdef12"],
        7,
        "no pending proposal",
    );
}

#[test]
fn a_revoked_identity_cannot_post() {
    let dir = tempfile::tempdir().unwrap();
    let ana = dir.path().join("ana");
    let made = init(&ana, "Ana");
    ok(
        &ana,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let certificate = made["revocation_certificate"].as_str().unwrap();
    let published = ok(&ana, &["revoke", "--certificate", certificate]);
    assert!(published.stdout.contains("revoked"), "{published:?}");
    fails(
        &ana,
        &["post", "--category", "violence", "--description", "x"],
        5,
        "removed from the collective",
    );
    fails(&ana, &["approve", "--proposal", "abcd"], 5, "removed");
}

#[test]
fn wipe_needs_no_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(&home, "Ana");
    let forgotten = run_command(
        command(&home)
            .env_remove("LOOKOUT_PASSPHRASE")
            .args(["wipe", "--yes"]),
    );
    assert_eq!(forgotten.code, 0, "{forgotten:?}");
    assert!(!home.exists(), "the home is removed");
    fails(&home, &["status"], 3, "no Lookout identity");
    fails(&home, &["wipe", "--yes"], 3, "no Lookout data");
}

#[test]
fn help_is_enough_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(dir.path(), &["--help"]).stdout;
    for needle in [
        "lookout init --name",
        "Exit codes:",
        "4   wrong passphrase",
        "LOOKOUT_PASSPHRASE",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
    let post = ok(dir.path(), &["post", "--help"]).stdout;
    assert!(post.contains("condom-removal"), "{post}");
    assert!(post.contains("3h ago"), "{post}");
    let completions = ok(dir.path(), &["completions", "bash"]).stdout;
    assert!(completions.contains("lookout"));
    fails(dir.path(), &["frobnicate"], 2, "unrecognized subcommand");
}
