//! This device's home outside the node's requests: how guessable a new passphrase is, and
//! erasing everything Lookout keeps here. The CLI (`lookout init`, `lookout wipe`) and the web
//! interface (first run, emergency wipe) both use these, so the rules and the order of the
//! erasing steps exist once.
//!
//! ```no_run
//! # async fn example(home: &std::path::Path) -> Result<(), lookout_node::api::ApiError> {
//! use lookout_node::device;
//!
//! assert!(device::strength("hunter2", "Ana").guessable());
//! // Nothing runs for this home here, so there is nothing to stop.
//! let report = device::wipe(home, async || Ok(())).await?;
//! println!("{} files erased", report.files_removed);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::{ApiError, ErrorCode};
use crate::control::{Connection, SOCKET_NAME};
use crate::replica::store_error;
use crate::store::{Store, StoreError, WipeReport};

/// File in the home holding the running node's process id (so `wipe` can stop it).
pub const PID_FILE: &str = "node.pid";
/// File a wipe leaves in the home before it stops the node, so the node does not tell the
/// person that their alerts wait on a device that is being erased.
pub const WIPING_FILE: &str = "wiping";
/// File name of the self-revocation certificate when the user asked for it in the home.
pub const CERTIFICATE_FILE: &str = "revocation-certificate.txt";
/// How long a wipe waits for a running node to let go of the store.
pub const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// The lowest zxcvbn score (0 to 4) a new passphrase may have: about 10^10 guesses.
pub const STRONG_ENOUGH: u8 = 3;

/// How hard a passphrase is to guess, as zxcvbn estimates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strength {
    /// 0 (guessed at once) to 4 (very hard).
    pub score: u8,
    /// zxcvbn's warning (in English), if it has one.
    pub warning: Option<String>,
}

impl Strength {
    /// Whether someone holding this device could guess it (under [`STRONG_ENOUGH`]).
    pub fn guessable(&self) -> bool {
        self.score < STRONG_ENOUGH
    }
}

/// The estimate for `passphrase` chosen by the member called `name` (their name and the
/// program's count as known words).
pub fn strength(passphrase: &str, name: &str) -> Strength {
    let estimate = zxcvbn::zxcvbn(passphrase, &[name, "lookout", "Lookout"]);
    Strength {
        score: u8::from(estimate.score()),
        warning: estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| w.to_string()),
    }
}

/// Erase everything Lookout keeps in `home`, without the passphrase.
///
/// The storage key goes first, before anything that can wait or fail: from then on nothing on
/// disk can be read, with or without the passphrase. A node serving this home is then stopped
/// with `stop` (which returns once it has let go of the store, or fails), the store's files are
/// overwritten and removed, then the files the programs keep beside it, and the home itself
/// when it is empty.
pub async fn wipe(
    home: &Path,
    stop: impl AsyncFnOnce() -> Result<(), ApiError>,
) -> Result<WipeReport, ApiError> {
    let nothing_there = || {
        ApiError::new(
            ErrorCode::NotInitialized,
            format!("there is no Lookout data in {} to erase", home.display()),
        )
    };
    if !home.is_dir() {
        return Err(nothing_there());
    }
    let _ = std::fs::write(home.join(WIPING_FILE), b"");
    let shredded = Store::shred_key(home).map_err(store_error)?;
    if Connection::connect(home).await.is_some() {
        if let Err(e) = stop().await {
            return Err(if shredded {
                ApiError::new(
                    e.code,
                    format!(
                        "the data is already unreadable (its key is destroyed), but {}; stop it and wipe again to remove the files",
                        e.message
                            .trim_start_matches("a Lookout node is running for this home and ")
                    ),
                )
            } else {
                e
            });
        }
    }
    let started = Instant::now();
    let report = loop {
        match Store::wipe_home(home) {
            Ok(report) => break report,
            Err(StoreError::Locked { .. }) if started.elapsed() < STOP_PATIENCE => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(StoreError::NotFound { .. }) => return Err(nothing_there()),
            Err(e) => return Err(store_error(e)),
        }
    };
    // The certificate copy in the home goes too: on a seized device it would only prove
    // membership; the user was told to keep another copy.
    for name in [CERTIFICATE_FILE, PID_FILE, WIPING_FILE, SOCKET_NAME] {
        let _ = std::fs::remove_file(home.join(name));
    }
    let _ = std::fs::remove_dir(home);
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_short_or_common_passphrase_is_guessable_and_four_words_are_not() {
        assert!(strength("password1", "Ana").guessable());
        assert!(strength("Ana2024", "Ana").guessable());
        assert!(!strength("orbit velvet cactus lantern", "Ana").guessable());
    }

    #[tokio::test]
    async fn a_wipe_leaves_no_home_and_a_second_one_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let (replica, _) = crate::replica::Replica::create(
            &home,
            b"orbit velvet cactus lantern",
            "Ana",
            lookout_protocol::passphrase::KdfParams::TESTING,
        )
        .unwrap();
        replica.close().unwrap();
        std::fs::write(home.join(PID_FILE), b"1\n").unwrap();
        let report = wipe(&home, async || panic!("no node runs")).await.unwrap();
        assert!(report.files_removed > 0);
        assert!(!home.exists());
        let again = wipe(&home, async || Ok(())).await.unwrap_err();
        assert_eq!(again.code, ErrorCode::NotInitialized);
    }
}
