//! Review S2 (b): a home sealed with test-strength key-derivation parameters (by a debug build
//! or the scale benchmark's build, `LOOKOUT_INSECURE_FAST_KDF=1`) is re-sealed with the normal
//! parameters the first time a build that would not use them for a new home unlocks it, and
//! nothing is rewritten (or lowered) while the fast KDF is in effect. Every `lookout` here is a
//! subprocess with its own environment, so no test changes this process's variables.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

use crate::common::*;
use lookout_node::store::{Store, Tree};
use lookout_protocol::passphrase::{self, KdfParams};

/// `lookout ARGS` as a normal build runs it: the fast-KDF variable is not set.
fn normal(home: &Path, args: &[&str]) -> Output {
    let mut command: Command = command(home);
    command.env_remove("LOOKOUT_INSECURE_FAST_KDF").args(args);
    let out = run_command(&mut command);
    assert_eq!(out.code, 0, "lookout {args:?} failed: {out:?}");
    out
}

/// The parameters in the key file's header (`store.key`: magic, version, then memory KiB,
/// passes and lanes as little-endian u32s).
fn key_file_params(home: &Path) -> KdfParams {
    let bytes = std::fs::read(home.join("store.key")).unwrap();
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    KdfParams {
        memory_kib: word(5),
        iterations: word(9),
        parallelism: word(13),
    }
}

/// The parameters of the passphrase-sealed identity record in the store.
fn identity_params(home: &Path) -> KdfParams {
    let store = Store::open(home, PASSPHRASE.as_bytes()).unwrap();
    let sealed = store.get(Tree::Identity, b"identity").unwrap().unwrap();
    let params = passphrase::params_of(&sealed).unwrap();
    store.close().unwrap();
    params
}

#[test]
fn a_home_sealed_with_test_parameters_is_resealed_at_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    // A debug build with the fast KDF: the home is sealed with the test parameters.
    init(&home, "Ana");
    ok(
        &home,
        &["collective", "create", "--name", "Harbour Collective"],
    );
    let id = post(
        &home,
        "followed me to the car",
        &["--phone", "07700 900551"],
    );
    assert_eq!(key_file_params(&home), KdfParams::TESTING);
    assert_eq!(identity_params(&home), KdfParams::TESTING);

    // The first unlock by a process that would seal a new home at DEFAULT re-seals both.
    let first = normal(&home, &["alerts", "--json"]);
    assert!(
        first
            .stderr
            .contains("re-sealed with at least 64 MiB, 3 passes"),
        "{first:?}"
    );
    assert_eq!(
        first
            .stderr
            .lines()
            .filter(|l| l.contains("re-sealed"))
            .count(),
        1,
        "one notice: {first:?}"
    );
    assert_eq!(key_file_params(&home), KdfParams::DEFAULT);
    assert_eq!(identity_params(&home), KdfParams::DEFAULT);
    // Nothing left of the old key file beside the new one.
    let names: Vec<String> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("store.key"))
        .collect();
    assert_eq!(names, ["store.key"]);

    // The same passphrase opens it, with everything in it, and nothing is re-sealed again.
    let key_file = std::fs::read(home.join("store.key")).unwrap();
    let again = normal(&home, &["alerts", "--json"]);
    assert!(again.stdout.contains(&id), "{again:?}");
    assert!(!again.stderr.contains("re-sealed"), "{again:?}");
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);

    // A process with the fast KDF in effect never lowers the parameters.
    let fast = ok(&home, &["alerts", "--json"]);
    assert!(fast.stdout.contains(&id), "{fast:?}");
    assert!(!fast.stderr.contains("re-sealed"), "{fast:?}");
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);
    assert_eq!(identity_params(&home), KdfParams::DEFAULT);

    // A wrong passphrase still fails and changes nothing.
    let mut wrong = command(&home);
    wrong
        .env_remove("LOOKOUT_INSECURE_FAST_KDF")
        .env("LOOKOUT_PASSPHRASE", "not the passphrase at all")
        .args(["alerts", "--json"]);
    let wrong = run_command(&mut wrong);
    assert_ne!(wrong.code, 0, "{wrong:?}");
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);
}

#[test]
fn with_the_fast_kdf_in_effect_a_test_home_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("bea");
    init(&home, "Bea");
    let key_file = std::fs::read(home.join("store.key")).unwrap();
    for args in [["status", "--json"], ["status", "--json"]] {
        let out = ok(&home, &args);
        assert!(!out.stderr.contains("re-sealed"), "{out:?}");
    }
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);
    assert_eq!(identity_params(&home), KdfParams::TESTING);
}

#[test]
fn a_test_home_with_a_duress_passphrase_is_left_as_it_is_and_says_how_to_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("cat");
    init(&home, "Cat");
    let duress_file = dir.path().join("duress.txt");
    std::fs::write(&duress_file, "let me go now please\n").unwrap();
    ok(
        &home,
        &[
            "passphrase",
            "duress",
            "--duress-passphrase-file",
            duress_file.to_str().unwrap(),
        ],
    );
    let key_file = std::fs::read(home.join("store.key")).unwrap();
    // The duress passphrase cannot be carried over, so the key file stays and the user is told.
    let out = normal(&home, &["status", "--json"]);
    assert!(
        out.stderr.contains("lookout passphrase duress --clear"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);
    // Cleared, the next unlock re-seals the key file too.
    normal(&home, &["passphrase", "duress", "--clear"]);
    let out = normal(&home, &["status", "--json"]);
    assert!(out.stderr.contains("re-sealed"), "{out:?}");
    assert_eq!(key_file_params(&home), KdfParams::DEFAULT);
    assert_eq!(identity_params(&home), KdfParams::DEFAULT);
}

#[test]
fn a_reseal_that_cannot_be_written_keeps_the_old_key_file_and_the_home_opens() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dee");
    init(&home, "Dee");
    let key_file = std::fs::read(home.join("store.key")).unwrap();
    // The new key file is written under this name first: a directory there makes it fail.
    let blocker = home.join("store.key.tmp");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), b"x").unwrap();
    let out = normal(&home, &["status", "--json"]);
    assert!(out.stderr.contains("could not be strengthened"), "{out:?}");
    assert!(!out.stderr.contains("re-sealed"), "{out:?}");
    assert_eq!(std::fs::read(home.join("store.key")).unwrap(), key_file);
    assert_eq!(identity_params(&home), KdfParams::TESTING);
    // Once it can be written, the next unlock does it.
    std::fs::remove_dir_all(&blocker).unwrap();
    let out = normal(&home, &["status", "--json"]);
    assert!(out.stderr.contains("re-sealed"), "{out:?}");
    assert_eq!(key_file_params(&home), KdfParams::DEFAULT);
    assert_eq!(identity_params(&home), KdfParams::DEFAULT);
}

/// Review S2 (a): a build that can seal homes with test-strength parameters says so.
#[test]
fn the_version_says_whether_this_is_an_insecure_test_kdf_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(command(dir.path()).arg("--version"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("lookout "), "{out:?}");
    assert_eq!(
        out.stdout.contains("INSECURE TEST KDF BUILD"),
        cfg!(feature = "insecure-test-kdf"),
        "{out:?}"
    );
}
