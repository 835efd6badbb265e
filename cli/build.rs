//! Refuses the scale benchmark's `insecure-test-kdf` feature unless it is asked for on purpose.
//!
//! With the feature, a release `lookout` seals new homes with 8 KiB, one-pass Argon2id whenever
//! `LOOKOUT_INSECURE_FAST_KDF=1` is set. `--all-features` (common in packaging scripts) would
//! turn it on silently; this makes such a build fail unless `LOOKOUT_SCALE_BENCH=1` is also in
//! the build's environment, as in the benchmark's documented command (`cli/tests/scale.rs`),
//! which also builds into its own target directory so `target/release/lookout` is never it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LOOKOUT_SCALE_BENCH");
    let feature = std::env::var_os("CARGO_FEATURE_INSECURE_TEST_KDF").is_some();
    let on_purpose = std::env::var("LOOKOUT_SCALE_BENCH").is_ok_and(|v| v == "1");
    if feature && !on_purpose {
        eprintln!(
            "error: the `insecure-test-kdf` feature of lookout-cli makes a binary that can seal \
             homes with test-strength passphrase protection. It is for the scale benchmark only \
             and is never part of a real build (do not use --all-features for lookout-cli). To \
             build it on purpose, set LOOKOUT_SCALE_BENCH=1 and a target directory of its own: \
             see cli/tests/scale.rs."
        );
        std::process::exit(1);
    }
}
