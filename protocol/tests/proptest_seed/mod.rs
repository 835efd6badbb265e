//! Proptest configuration shared by the property tests of this crate: fixed
//! seeds by default, so a CI failure reproduces, and more cases or random
//! seeds by hand. See `docs/TESTING.md`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use proptest::test_runner::{Config, RngSeed};

/// The seed every property test starts from unless `PROPTEST_RNG_SEED` says
/// otherwise.
pub const FIXED_SEED: u64 = 0x006c_6f6f_6b6f_7574; // "lookout"

/// `cases` cases from [`FIXED_SEED`], unless the environment overrides them:
///
/// - `PROPTEST_CASES=n` runs `n` cases instead;
/// - `PROPTEST_RNG_SEED=n` starts from seed `n`;
/// - `PROPTEST_RNG_SEED=random` draws a seed and prints it, so a failure can
///   be replayed with `PROPTEST_RNG_SEED=<printed seed>`.
///
/// Failures found are still saved to the test's `.proptest-regressions` file
/// and replayed first on every run.
pub fn config(cases: u32) -> Config {
    // `Config::default()` has already read the PROPTEST_* variables that
    // parse; explicit fields below would override them, so look first.
    let default = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        cases
    };
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => {
            let seed = RandomState::new().build_hasher().finish();
            eprintln!("proptest: PROPTEST_RNG_SEED=random drew seed {seed}");
            RngSeed::Fixed(seed)
        }
        Ok(_) => default.rng_seed,
        Err(_) => RngSeed::Fixed(FIXED_SEED),
    };
    Config {
        cases,
        rng_seed,
        ..default
    }
}
