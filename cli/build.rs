//! Refuses the scale benchmark's `insecure-test-kdf` feature unless it is asked for on purpose.
//!
//! With the feature, a release `lookout` seals new homes with 8 KiB, one-pass Argon2id whenever
//! `LOOKOUT_INSECURE_FAST_KDF=1` is set. `--all-features` (common in packaging scripts) would
//! turn it on silently; this makes such a build fail unless `LOOKOUT_SCALE_BENCH=1` is also in
//! the build's environment, as in the benchmark's documented command (`cli/tests/scale.rs`),
//! which also builds into its own target directory so `target/release/lookout` is never it.

#[path = "src/build_gate.rs"]
mod build_gate;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/build_gate.rs");
    println!("cargo:rerun-if-env-changed={}", build_gate::SCALE_BENCH_ENV);
    let feature = std::env::var_os("CARGO_FEATURE_INSECURE_TEST_KDF").is_some();
    let scale_bench = std::env::var(build_gate::SCALE_BENCH_ENV).ok();
    if let Some(why) = build_gate::refusal(feature, scale_bench.as_deref()) {
        eprintln!("error: {why}");
        std::process::exit(1);
    }
}
