//! Whether `cli/build.rs` refuses the build: shared with the unit test below, so the rule is
//! tested where cargo cannot run a build inside a test.

/// The variable that must be `1` in the build's environment for `insecure-test-kdf`.
pub const SCALE_BENCH_ENV: &str = "LOOKOUT_SCALE_BENCH";

/// Why the build must stop, if it must: the `insecure-test-kdf` feature is on (`feature`) and
/// [`SCALE_BENCH_ENV`] is not `1` (`scale_bench`, its value if set).
pub fn refusal(feature: bool, scale_bench: Option<&str>) -> Option<&'static str> {
    (feature && scale_bench != Some("1")).then_some(
        "the `insecure-test-kdf` feature of lookout-cli makes a binary that can seal homes with \
         test-strength passphrase protection. It is for the scale benchmark only and is never \
         part of a real build (do not use --all-features for lookout-cli). To build it on \
         purpose, set LOOKOUT_SCALE_BENCH=1 and a target directory of its own \
         (CARGO_TARGET_DIR=target/scale-bench): see cli/tests/scale.rs.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_kdf_feature_builds_only_with_the_scale_bench_variable() {
        let why = refusal(true, None).unwrap_or_default();
        assert!(why.contains(SCALE_BENCH_ENV) && why.contains("target/scale-bench"));
        assert!(refusal(true, Some("")).is_some());
        assert!(refusal(true, Some("0")).is_some());
        assert!(refusal(true, Some("yes")).is_some());
        assert_eq!(refusal(true, Some("1")), None);
        assert_eq!(refusal(false, None), None);
        assert_eq!(refusal(false, Some("1")), None);
    }
}
