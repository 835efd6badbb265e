//! `lookout demo` runs a real collective in-process and narrates it; it must pass on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::common::*;

#[test]
fn the_demo_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo", "--nodes", "3"]);
    for step in [
        "[Ana] $ lookout collective create",
        "[Bea] $ lookout join-request",
        "[Ana] $ lookout approve LKJOIN1-",
        "[Cleo] $ lookout join LKINVITE2-",
        "the alert reached all 3 nodes",
        "matched by phone",
        "[Ana] $ lookout revoke Cleo",
        "Cleo's node still does not have it",
        "Done.",
    ] {
        assert!(
            out.stdout.contains(step),
            "missing '{step}':\n{}",
            out.stdout
        );
    }
    for level in ["INFO", "WARN"] {
        assert!(
            !out.stderr.contains(level),
            "{level} lines:\n{}",
            out.stderr
        );
    }
    // After `cargo run` the binary is not on the PATH: the last line names the one that ran.
    let me = std::fs::canonicalize(env!("CARGO_BIN_EXE_lookout")).unwrap();
    assert!(
        out.stdout.contains(&format!("`{} --help`", me.display())),
        "{}",
        out.stdout
    );
}
