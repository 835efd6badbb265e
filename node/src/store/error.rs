//! Errors and reports of the store.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use lookout_protocol::passphrase::PassphraseError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no store in this home directory.
    #[error("no Lookout store in {home}; create one first (or check the home directory)")]
    NotFound {
        /// The home directory that was looked in.
        home: PathBuf,
    },
    /// [`Store::create`](super::Store::create) found a store already there.
    #[error("a Lookout store already exists in {home}; open it instead, or wipe it first")]
    AlreadyExists {
        /// The home directory holding the existing store.
        home: PathBuf,
    },
    /// The home was made by an older Lookout whose store format this version cannot read.
    /// Nothing was changed.
    #[error(
        "the Lookout data in {home} was made by an older version of Lookout (store format 1),          which this version cannot read; nothing was changed or deleted: keep using the older          version, or run `lookout wipe` and enrol this device again"
    )]
    Incompatible {
        /// The home directory holding the old store.
        home: PathBuf,
    },
    /// The home was written by a newer Lookout, in a store format this version does not know.
    /// Nothing was changed.
    #[error(
        "the Lookout data in {home} was written by a newer version of Lookout (store format \
         {found}; this version reads formats up to {known}); nothing was changed or deleted: \
         update Lookout to open it"
    )]
    TooNew {
        /// The home directory holding the newer store.
        home: PathBuf,
        /// The format its check record names.
        found: u32,
        /// The newest format this version reads.
        known: u32,
    },
    /// A duress passphrase must differ from the passphrase.
    #[error("the duress passphrase must differ from your passphrase; nothing was changed")]
    DuressSameAsPassphrase,
    /// The passphrase does not open the store's key file.
    #[error(
        "wrong passphrase (or the store's key file was altered); check the passphrase and try again"
    )]
    WrongPassphrase,
    /// Another process (or another handle in this one) has the store open.
    #[error(
        "the store in {home} is in use by another Lookout process; \
         stop that process or wait for it to exit, then try again"
    )]
    Locked {
        /// The home directory whose store is locked.
        home: PathBuf,
    },
    /// The store's files are inconsistent or damaged.
    #[error(
        "the store is damaged ({what}); restore the home directory from a backup, \
         or wipe it and create a new store"
    )]
    Corrupt {
        /// What was found wrong.
        what: &'static str,
    },
    /// A stored value failed authentication: altered, damaged, or copied from
    /// another entry.
    #[error(
        "a stored value in the '{tree}' tree failed authentication: it was altered, \
         damaged or moved from another entry; the store may have been tampered with"
    )]
    TamperedValue {
        /// The tree holding the value.
        tree: &'static str,
    },
    /// The key file could be read but not used (malformed, unknown version,
    /// refused parameters).
    #[error("the store's key file cannot be used: {0}")]
    KeyFile(PassphraseError),
    /// The key-derivation parameters asked for are refused.
    #[error("cannot seal the store key with these settings: {0}")]
    InvalidParams(PassphraseError),
    /// A file-system operation failed.
    #[error("could not {action} {path}: {cause}")]
    Io {
        /// What was being done, e.g. "create the home directory".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
    /// The database reported an error.
    #[error("database error: {0}; if it persists, restore from a backup or wipe the store")]
    Database(sled::Error),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(rand::Error),
    /// [`Store::wipe`](super::Store::wipe) destroyed the key, so nothing
    /// stored can be read any more, but could not remove every file.
    #[error(
        "the store's key was destroyed, so its data can no longer be read, but some files \
         could not be removed ({cause}); delete {path} by hand"
    )]
    WipeIncomplete {
        /// The file or directory left behind.
        path: PathBuf,
        /// The operating system's error.
        cause: io::Error,
    },
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        match error {
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                what: "the database files failed their checksums",
            },
            other => StoreError::Database(other),
        }
    }
}

/// What [`Store::wipe`](super::Store::wipe) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WipeReport {
    /// Files removed, the shredded key file included.
    pub files_removed: usize,
    /// Bytes in the removed files.
    pub bytes_removed: u64,
    /// Time from the start of the wipe until the key was destroyed: from then
    /// on nothing stored can be read.
    pub key_destroyed_after: Duration,
    /// Time the whole wipe took.
    pub elapsed: Duration,
}
