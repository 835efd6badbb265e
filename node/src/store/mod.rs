//! The node's encrypted-at-rest key-value store (store format 4).
//!
//! A [`Store`] is a sled database whose entries are encrypted under keys derived from a random
//! 32-byte storage key; the storage key is sealed under the user's passphrase in a two-slot key
//! file (`keyfile.rs`; Argon2id). Without the passphrase a seized phone shows which trees exist,
//! how many entries each has and the size bucket of each value, and nothing else: no key, id,
//! name or length.
//!
//! # Keys are keyed hashes, values are padded
//!
//! The sled key of an entry is `BLAKE3-keyed(entry MAC key, tree, key)`, so callers may use ids
//! (op, delivery and content ids, fixed names) as keys without those ids reaching the disk; the
//! original key travels inside the encrypted value and [`Store::iter`] gives it back. Iteration
//! is therefore in no useful order. Values are padded to a size bucket (256 B up to 64 KiB by
//! powers of two, then multiples of 64 KiB; expiring values also 1.5 times a power of two).
//! See `sealing.rs` for the byte formats.
//!
//! # Values that expire
//!
//! [`Store::put_expiring`] seals a value under the data key of its expiry hour (`datakeys.rs`),
//! in one layer whose head, under the storage key's value key, names the hour (value format 3;
//! format 2 sealed it a second time under the value key, and such values are still read).
//! [`Store::forget_expired_keys`] destroys the keys of hours that have passed, rewriting the
//! data-key file atomically and overwriting the old one; from then on no copy of
//! those values, including old ones sled leaves in its log, can be opened with any passphrase.
//! An expiring entry's key (an alert id) is sealed with its value under the data key, so the
//! storage key alone shows only that an entry of that tree expired in that hour.
//! [`forensic::recover`] is the test oracle that checks this from the raw files.
//!
//! # On-disk layout
//!
//! ```text
//! <home>/            0700
//!   store/           0700  the sled database: keyed-hash keys, padded encrypted values
//!   store.key        0600  the storage key in one of two equal sealed slots, the other random
//!                          or the duress slot (179 bytes, magic "LKSK", format 2)
//!   store.dkeys      0600  the data keys of live expiry hours, sealed under the storage key,
//!                          padded to a multiple of 64 keys
//!   store.key.tmp, store.dkeys.tmp, store.key.old, store.dkeys.old
//!                    0600  only while a key file is being replaced (the `.old` names hold
//!                          the replaced file until its bytes are overwritten; a crash leaves
//!                          them, and every start shreds them)
//!   store.lock       0600  flock held while a Store is open
//!   secrets          0600  secrets that must be gone once replaced (agreement and
//!                          epoch keys), sealed under the storage key; see secrets.rs
//! ```
//!
//! Each value carries its tree and key inside the ciphertext and is checked against them, so an
//! attacker with write access cannot move a value to another entry. An internal tree
//! `__lookout_check` holds one encrypted record, `lookout store v4` (the format's number), that
//! proves at open time that the key file belongs to this database and says its format. Formats
//! 2, 3 and 4 differ only in how the replica keeps a post (format 3: its envelope only,
//! `replica/post_record.rs`; format 4: the posts of one write in packs, `replica/post_pack.rs`):
//! a home of format 2 or 3 opens, the replica rewrites format 2's posts and marks it 4; a home of a format
//! newer than [`STORE_FORMAT`] is refused with [`StoreError::TooNew`] and left untouched.
//!
//! # Old homes
//!
//! A home of store format 1 (key file sealed as one `LKPS` blob, ids as clear keys) is refused
//! with [`StoreError::Incompatible`] and left untouched; there is no migration.
//!
//! # Duress and wiping
//!
//! [`Store::set_duress`] seals a duress marker in the key file's other slot. [`Store::open`]
//! with the duress passphrase erases the store (key file first) and answers
//! [`StoreError::NotFound`], as for a home without a store.
//!
//! [`Store::wipe`] and [`Store::wipe_home`] crypto-shred: the key file is
//! overwritten with random bytes, synced and unlinked before anything else,
//! so the data is unreadable from that moment even if removing the database
//! files is interrupted. Flash storage may keep stale copies of old blocks
//! (of the key file and of earlier data-key files) that no file system call
//! reaches; the passphrase and the device's own encryption are what protect those.
//!
//! # Example
//!
//! ```
//! use lookout_node::store::{Store, Tree};
//! use lookout_protocol::passphrase::KdfParams;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let home = dir.path().join("home");
//! // Real callers use KdfParams::DEFAULT.
//! let store = Store::create(&home, b"passphrase", KdfParams::TESTING)?;
//! store.put(Tree::Alerts, b"<content hash>", b"<encoded alert>")?;
//! store.flush()?;
//! store.close()?;
//!
//! let store = Store::open(&home, b"passphrase")?;
//! let value = store.get(Tree::Alerts, b"<content hash>")?;
//! assert_eq!(value.as_deref().map(|v| v.as_slice()), Some(&b"<encoded alert>"[..]));
//! let report = store.wipe()?;
//! assert!(!Store::exists(&home));
//! # let _ = report;
//! # Ok(())
//! # }
//! ```

mod batch;
mod datakeys;
mod error;
pub mod forensic;
mod home;
mod keyfile;
mod sealing;
mod secrets;
mod tree;

/// Open with `open` again and again for up to 5 s while `locked` says the error is a lock still
/// held (tests: see [`Store::open_again_for_tests`]); any other result is returned, unwrapped.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn while_locked<T, E: std::fmt::Debug>(
    mut open: impl FnMut() -> Result<T, E>,
    locked: impl Fn(&E) -> bool,
) -> T {
    let started = std::time::Instant::now();
    loop {
        match open() {
            Err(error)
                if locked(&error) && started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use lookout_protocol::passphrase::KdfParams;
use sled::transaction::{ConflictableTransactionResult, TransactionError};
use sled::Transactional;
use zeroize::Zeroizing;

pub use batch::Batch;
pub use datakeys::BUCKET_SECS;
pub use error::{StoreError, WipeReport};
pub use keyfile::STORAGE_KEY_LABEL;
pub use tree::Tree;

use batch::Op;
use datakeys::{bucket_of, DataKeys};
use home::Layout;
use keyfile::{KeyFile, Unlocked};
use sealing::{Secret, StorageKey, Stored};

/// A value read back, and the first second of the expiry hour it is sealed under (`None`: it
/// does not expire).
pub type WithHour = (Zeroizing<Vec<u8>>, Option<u64>);

/// Internal tree holding the check record; "__" names are reserved.
const CHECK_TREE: &str = "__lookout_check";
const CHECK_KEY: &[u8] = b"check";
/// The store format marker: `lookout store v` and the format number, sealed under the storage
/// key. A home of an unknown (newer) format is refused, never rewritten.
const CHECK_PREFIX: &[u8] = b"lookout store v";
/// The format a new store is created in, and the newest this version reads. Format 4 keeps the
/// posts of one write in packs (`replica/post_pack.rs`); format 3 kept each post under its own
/// id, as its envelope only (`replica/post_record.rs`); format 2 kept the decoded post beside
/// it. The store itself reads them all alike: what differs is the posts' records, which the
/// replica rewrites when it opens a store of format 2, and marks any older store 4
/// ([`Store::set_format`]).
pub const STORE_FORMAT: u32 = 4;
/// The oldest format this version opens (format 1 homes are refused by their key file).
const OLDEST_FORMAT: u32 = 2;

/// The check record's value for `format`.
fn check_value(format: u32) -> Vec<u8> {
    let mut value = CHECK_PREFIX.to_vec();
    value.extend_from_slice(format.to_string().as_bytes());
    value
}

/// The format a check record names, if it is one.
fn format_of(check: &[u8]) -> Option<u32> {
    let digits = check.strip_prefix(CHECK_PREFIX)?;
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// sled's page cache limit. Its default (1 GiB) is too much for a phone, and so was 64 MiB: at
/// 100,000 alerts, listing them all filled it (313 MiB RSS, docs/BENCHMARKS.md). Pages not in
/// the cache are read back through the operating system's own file cache; the post index is a
/// few large values (`replica/post_index.rs`), so a start needs few pages.
const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// An open, encrypted store. Holds the home directory's lock until dropped.
///
/// Dropping a `Store` flushes and releases the lock; [`Store::close`] does the
/// same but reports errors. All methods take `&self`; the store is `Send` and
/// `Sync`.
pub struct Store {
    // Fields drop in declaration order: the database closes before the lock
    // is released, so no other process can open it while it is still open.
    trees: Vec<sled::Tree>,
    db: sled::Db,
    key: StorageKey,
    /// The key file as last written, the slot of the storage key in it, and the key the
    /// passphrase derived (so both slots can be re-sealed on every write).
    key_file: Mutex<(KeyFile, usize, Secret)>,
    data_keys: Mutex<DataKeys>,
    /// The format the check record names ([`STORE_FORMAT`] or an older one still read).
    format: u32,
    layout: Layout,
    lock: File,
    /// Tests: the next [`Store::apply_batch`] fails, applying nothing (as a full disk would).
    #[cfg(test)]
    fail_next_batch: std::sync::atomic::AtomicBool,
}

/// What [`Store::upgrade_kdf`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfUpgrade {
    /// The parameters were already at least those asked for: nothing written.
    NotNeeded,
    /// Re-sealed; `was` is what the file had.
    Upgraded {
        /// The parameters the file had.
        was: KdfParams,
    },
    /// Weaker, but a duress passphrase is set and could not be carried over: nothing written.
    DuressSet {
        /// The parameters the file has.
        was: KdfParams,
    },
}

/// Makes the writes of a [`Store`] durable from another thread (see [`Store::flusher`]). It
/// can do nothing else: no reads, no writes.
#[derive(Clone)]
pub struct Flusher(sled::Db);

impl Flusher {
    /// Makes every write made to the store before this call durable.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()?;
        Ok(())
    }
}

impl Store {
    /// Creates a new store in `home`, creating `home` (mode 0700) if needed.
    ///
    /// A fresh random storage key is sealed under `passphrase` with `params`
    /// (use [`KdfParams::DEFAULT`] outside tests). The key file is written
    /// last, so a crash part-way leaves no store; a database directory found
    /// without a key file is such a leftover (or what an interrupted wipe left)
    /// and is unreadable, so it is removed.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] if `home` has a store,
    /// [`StoreError::Locked`] if another process holds the lock,
    /// [`StoreError::InvalidParams`] for parameters [`open`](Self::open)
    /// would refuse, and I/O or database errors.
    pub fn create(home: &Path, passphrase: &[u8], params: KdfParams) -> Result<Self, StoreError> {
        params.check().map_err(StoreError::InvalidParams)?;
        let layout = Layout::new(home);
        home::create_private_dir(home)?;
        let lock = layout.lock()?;
        if layout.key_file_exists() {
            return Err(StoreError::AlreadyExists {
                home: home.to_path_buf(),
            });
        }
        if layout.db_dir.exists() {
            tracing::warn!("removing an unreadable database left by an interrupted create or wipe");
            home::remove_dir_counting(&layout.db_dir).map_err(home::io_error(
                "remove the leftover database",
                &layout.db_dir,
            ))?;
        }

        let key = StorageKey::generate()?;
        home::create_private_dir(&layout.db_dir)?;
        let db = open_db(&layout)?;
        let check = db.open_tree(CHECK_TREE)?;
        check.insert(
            key.entry_key(CHECK_TREE, CHECK_KEY)?,
            key.seal_value(CHECK_TREE, CHECK_KEY, &check_value(STORE_FORMAT))?,
        )?;
        let trees = open_trees(&db)?;
        db.flush()?;
        let data_keys = DataKeys::default();
        layout.write_data_keys_file(&data_keys.seal(key.data_file_key())?)?;

        let (key_file, slot, derived) = KeyFile::create(passphrase, params, &key)?;
        layout.write_key_file(&key_file.encode())?;
        home::restrict_tree(&layout.db_dir);
        tracing::debug!(trees = trees.len(), "store created");
        Ok(Self {
            trees,
            db,
            key,
            key_file: Mutex::new((key_file, slot, derived)),
            data_keys: Mutex::new(data_keys),
            format: STORE_FORMAT,
            layout,
            lock,
            #[cfg(test)]
            fail_next_batch: Default::default(),
        })
    }

    /// Opens the store in `home` with `passphrase`.
    ///
    /// The passphrase is tried first (one Argon2id run). If it is the duress passphrase (see
    /// [`Self::set_duress`]) the store is erased at once, key file first, and this returns
    /// [`StoreError::NotFound`] exactly as for a home that never had a store. If another
    /// process holds the store open, its key is destroyed all the same and the remaining files
    /// go when that process stops and something opens or wipes the home.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if there is no store (or it was wiped),
    /// [`StoreError::Incompatible`] for a home of an older store format (left untouched),
    /// [`StoreError::Locked`] if another process has it open,
    /// [`StoreError::WrongPassphrase`], [`StoreError::KeyFile`] for a
    /// malformed key file, [`StoreError::Corrupt`] if the key file and the
    /// database do not belong together or the database is missing, and I/O
    /// or database errors.
    pub fn open(home: &Path, passphrase: &[u8]) -> Result<Self, StoreError> {
        let layout = Layout::new(home);
        if !layout.key_file_exists() {
            return Err(StoreError::NotFound {
                home: home.to_path_buf(),
            });
        }
        let key_file = KeyFile::parse(&layout.read_key_file()?, home)?;
        let (key, slot, derived) = match key_file.unlock(passphrase)? {
            Unlocked::Storage { key, slot, derived } => (key, slot, derived),
            Unlocked::Duress => {
                erase(&layout);
                return Err(StoreError::NotFound {
                    home: home.to_path_buf(),
                });
            }
        };
        let lock = layout.lock()?;
        // What an interrupted key-file or data-key-file replacement left: shredded first.
        layout.shred_old_files()?;

        if !layout.db_dir.is_dir() {
            return Err(StoreError::Corrupt {
                what: "the database directory is missing",
            });
        }
        let db = open_db(&layout)?;
        let check = db
            .open_tree(CHECK_TREE)?
            .get(key.entry_key(CHECK_TREE, CHECK_KEY)?)?;
        let check = check.ok_or(StoreError::Corrupt {
            what: "the key file does not belong to this database",
        })?;
        let format = match key.open_value(CHECK_TREE, CHECK_KEY, &check) {
            Ok(Stored::Plain(value)) => format_of(&value),
            _ => None,
        };
        let format = match format {
            Some(format) if (OLDEST_FORMAT..=STORE_FORMAT).contains(&format) => format,
            Some(found) if found > STORE_FORMAT => {
                return Err(StoreError::TooNew {
                    home: home.to_path_buf(),
                    found,
                    known: STORE_FORMAT,
                })
            }
            _ => {
                return Err(StoreError::Corrupt {
                    what: "the key file does not belong to this database",
                })
            }
        };
        let data_keys = DataKeys::open(&layout.read_data_keys_file()?, key.data_file_key())?;
        let trees = open_trees(&db)?;
        home::restrict_tree(&layout.db_dir);
        tracing::debug!(trees = trees.len(), "store opened");
        Ok(Self {
            trees,
            db,
            key,
            key_file: Mutex::new((key_file, slot, derived)),
            data_keys: Mutex::new(data_keys),
            format,
            layout,
            lock,
            #[cfg(test)]
            fail_next_batch: Default::default(),
        })
    }

    /// Whether `passphrase` opens the home's key file, without opening the database (which a
    /// running node holds): for a page locked after a quick exit whose node was started
    /// elsewhere. One Argon2id run, as [`Store::open`]; the duress passphrase erases the home
    /// as there and answers [`StoreError::NotFound`].
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if there is no store (or the duress passphrase erased it),
    /// [`StoreError::WrongPassphrase`], [`StoreError::KeyFile`] for a malformed key file, and
    /// I/O errors.
    pub fn check_passphrase(home: &Path, passphrase: &[u8]) -> Result<(), StoreError> {
        let layout = Layout::new(home);
        if !layout.key_file_exists() {
            return Err(StoreError::NotFound {
                home: home.to_path_buf(),
            });
        }
        match KeyFile::parse(&layout.read_key_file()?, home)?.unlock(passphrase)? {
            Unlocked::Storage { .. } => Ok(()),
            Unlocked::Duress => {
                erase(&layout);
                Err(StoreError::NotFound {
                    home: home.to_path_buf(),
                })
            }
        }
    }

    /// The store format the home is in: [`STORE_FORMAT`], or an older one this version still
    /// opens (its owner then migrates what differs and calls [`Store::set_format`]).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// Records that the home is now in `format` (its check record rewritten and flushed with
    /// every write before it): a version that does not know `format` refuses the home from then
    /// on instead of misreading it.
    ///
    /// # Errors
    ///
    /// Database errors; a format this version does not know ([`StoreError::TooNew`]).
    pub fn set_format(&mut self, format: u32) -> Result<(), StoreError> {
        if format > STORE_FORMAT {
            return Err(StoreError::TooNew {
                home: self.layout.home.clone(),
                found: format,
                known: STORE_FORMAT,
            });
        }
        self.write_check(&check_value(format))?;
        self.format = format;
        Ok(())
    }

    /// Rewrites the check record (sealed as at creation) and flushes.
    fn write_check(&self, value: &[u8]) -> Result<(), StoreError> {
        let check = self.db.open_tree(CHECK_TREE)?;
        check.insert(
            self.key.entry_key(CHECK_TREE, CHECK_KEY)?,
            self.key.seal_value(CHECK_TREE, CHECK_KEY, value)?,
        )?;
        self.db.flush()?;
        Ok(())
    }

    /// Writes any check record, for tests of homes of other formats.
    #[cfg(test)]
    pub(crate) fn write_check_for_tests(&self, value: &[u8]) -> Result<(), StoreError> {
        self.write_check(value)
    }

    /// Whether `home` holds a store (its key file exists). A wiped store, or
    /// one whose creation was interrupted, does not.
    pub fn exists(home: &Path) -> bool {
        Layout::new(home).key_file_exists()
    }

    /// The home directory this store lives in.
    pub fn home(&self) -> &Path {
        &self.layout.home
    }

    /// Re-seals the storage key under `new_passphrase`, keeping the key file's key-derivation
    /// parameters and salt (so a duress passphrase stays valid; if `new_passphrase` is the
    /// duress passphrase, the duress passphrase is cleared).
    ///
    /// Both slots of the key file are re-sealed with fresh nonces, so two images of the file
    /// do not show which slot changed. The stored data is not re-encrypted, only the key file
    /// is replaced (atomically; the old file's contents are overwritten). Ask the user for the
    /// old passphrase before calling this if the store was opened long ago.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn change_passphrase(&self, new_passphrase: &[u8]) -> Result<(), StoreError> {
        let mut guard = lock_poisoned(&self.key_file);
        let (file, slot) = (&guard.0, guard.1);
        let derived = file.derive(new_passphrase)?;
        let duress = self.live_duress(file, slot);
        // One passphrase cannot be both: choosing the duress passphrase clears it.
        let duress = duress.filter(|d| d.as_bytes() != derived.as_bytes());
        let cleared = duress.is_none();
        let next = file.resealed(slot, &derived, &self.key, duress.as_ref())?;
        self.layout.write_key_file(&next.encode())?;
        *guard = (next, slot, derived);
        drop(guard);
        if cleared {
            self.store_duress_key(None)?;
        }
        tracing::info!("store passphrase changed");
        Ok(())
    }

    /// Re-seals the storage key under the same `passphrase` with a fresh salt and both slots
    /// new, when the key file's parameters are below `params` in memory, passes or lanes (a home
    /// made by a test build): with [`KdfParams::strengthened`], so none of the three is lowered. `passphrase` must be the one
    /// the store was opened with.
    ///
    /// A live duress passphrase shares the file's salt and parameters, and only its derived key
    /// is kept, so it cannot be carried over: then nothing is written and
    /// [`KdfUpgrade::DuressSet`] says so. The file is replaced atomically (a crash leaves the
    /// old or the new one, both opened by `passphrase`) and the old file's bytes are overwritten.
    ///
    /// # Errors
    ///
    /// [`StoreError::WrongPassphrase`] if `passphrase` is not this store's, invalid `params`,
    /// and I/O errors.
    pub fn upgrade_kdf(
        &self,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<KdfUpgrade, StoreError> {
        params.check().map_err(StoreError::InvalidParams)?;
        let mut guard = lock_poisoned(&self.key_file);
        let (file, slot) = (&guard.0, guard.1);
        let was = file.params();
        if !was.is_weaker_than(&params) {
            return Ok(KdfUpgrade::NotNeeded);
        }
        if file.derive(passphrase)?.as_bytes() != guard.2.as_bytes() {
            return Err(StoreError::WrongPassphrase);
        }
        if self.live_duress(file, slot).is_some() {
            return Ok(KdfUpgrade::DuressSet { was });
        }
        let params = was.strengthened(&params);
        let (next, slot, derived) = KeyFile::create(passphrase, params, &self.key)?;
        self.layout.write_key_file(&next.encode())?;
        *guard = (next, slot, derived);
        drop(guard);
        tracing::info!("key file re-sealed with stronger key-derivation parameters");
        Ok(KdfUpgrade::Upgraded { was })
    }

    /// Sets (`Some`) or clears (`None`) the duress passphrase: entering it at
    /// [`Self::open`] erases the store. The key file keeps the same size and shape either way,
    /// and both its slots are re-sealed with fresh nonces.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuressSameAsPassphrase`], and I/O errors.
    pub fn set_duress(&self, duress: Option<&[u8]>) -> Result<(), StoreError> {
        let mut guard = lock_poisoned(&self.key_file);
        let (file, slot) = (&guard.0, guard.1);
        let next = match duress {
            Some(duress) => {
                let duress = file.derive(duress)?;
                if duress.as_bytes() == guard.2.as_bytes() {
                    return Err(StoreError::DuressSameAsPassphrase);
                }
                // Its derived key goes to the data-key file first: a key file whose duress slot
                // could not be re-sealed later is never written. A stored key that opens no
                // slot (the key-file write below failed) is ignored.
                self.store_duress_key(Some(Secret::from_slice(duress.as_bytes())?))?;
                file.resealed(slot, &guard.2, &self.key, Some(&duress))?
            }
            None => file.resealed(slot, &guard.2, &self.key, None)?,
        };
        self.layout.write_key_file(&next.encode())?;
        guard.0 = next;
        drop(guard);
        if duress.is_none() {
            self.store_duress_key(None)?;
        }
        Ok(())
    }

    /// The stored duress key, if it opens the duress slot of `file` now.
    fn live_duress(&self, file: &KeyFile, slot: usize) -> Option<Secret> {
        let keys = lock_poisoned(&self.data_keys);
        let duress = keys.duress()?;
        if !file.is_duress_key(duress, 1 - slot.min(1)) {
            return None;
        }
        Secret::from_slice(duress.as_bytes()).ok()
    }

    /// Writes the data-key file with `duress` as the stored duress key (memory keeps the old
    /// one if the write fails).
    fn store_duress_key(&self, duress: Option<Secret>) -> Result<(), StoreError> {
        let mut keys = lock_poisoned(&self.data_keys);
        let had = keys.duress().is_some();
        if !had && duress.is_none() {
            return Ok(());
        }
        let previous = keys.set_duress(duress);
        let written = keys
            .seal(self.key.data_file_key())
            .and_then(|sealed| self.layout.write_data_keys_file(&sealed));
        if written.is_err() {
            keys.set_duress(previous);
        }
        written
    }

    /// Stores `value` under `key` in `tree`, replacing any previous value.
    ///
    /// On disk the entry's key is a keyed hash of `tree` and `key`, and the value is padded to a
    /// size bucket. Not durable until [`Self::flush`].
    ///
    /// # Errors
    ///
    /// Database errors, a key longer than 255 bytes, or a failing system random number
    /// generator.
    pub fn put(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let sealed = self.key.seal_value(tree.name(), key, value)?;
        self.sled_tree(tree)?
            .insert(self.sled_key(tree, key)?, sealed)?;
        Ok(())
    }

    /// Stores `value`, which expires at `expires` (seconds since the Unix epoch), under the data
    /// key of its expiry hour. Once [`Self::forget_expired_keys`] has run past that hour, no
    /// copy of the value can be read any more, with any passphrase.
    ///
    /// # Errors
    ///
    /// As [`Self::put`], and I/O errors writing a new data key.
    pub fn put_expiring(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
        expires: u64,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_expiring(tree, key, value, expires)?;
        self.sled_tree(tree)?
            .insert(self.sled_key(tree, key)?, sealed)?;
        Ok(())
    }

    /// Destroys the data keys of every expiry hour that ended at or before `now`: the values
    /// sealed under them become unreadable for good. The data-key file is rewritten durably
    /// and the old one overwritten. Returns how many keys were destroyed.
    ///
    /// # Errors
    ///
    /// I/O errors. The keys are then still held, in memory and in the file, and the next call
    /// tries again: memory forgets a key only once the file without it is durably written.
    pub fn forget_expired_keys(&self, now: u64) -> Result<usize, StoreError> {
        let mut keys = lock_poisoned(&self.data_keys);
        if !keys.any_past(now) {
            return Ok(0);
        }
        self.layout
            .write_data_keys_file(&keys.seal_without_past(self.key.data_file_key(), now)?)?;
        let forgotten = keys.forget_past(now);
        tracing::debug!(forgotten, "expired data keys destroyed");
        Ok(forgotten)
    }

    /// Number of data keys held (one per expiry hour with live values).
    pub fn data_key_count(&self) -> usize {
        lock_poisoned(&self.data_keys).len()
    }

    /// The value under `key` in `tree`, if any. A value whose data key was destroyed is gone:
    /// `None`.
    ///
    /// # Errors
    ///
    /// [`StoreError::TamperedValue`] if the stored value fails
    /// authentication, and database errors.
    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.get_with_hour(tree, key)?.map(|(value, _)| value))
    }

    /// [`Store::get`], with the expiry hour the value is sealed under: a time in that hour
    /// (its first second), to seal a value that replaces it under the same data key; `None`
    /// for a value that does not expire.
    ///
    /// # Errors
    ///
    /// As [`Store::get`].
    pub fn get_with_hour(&self, tree: Tree, key: &[u8]) -> Result<Option<WithHour>, StoreError> {
        match self.sled_tree(tree)?.get(self.sled_key(tree, key)?)? {
            Some(stored) => self.open_stored_with_hour(tree, key, &stored),
            None => Ok(None),
        }
    }

    /// Removes `key` from `tree`; returns whether it was there.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn remove(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .sled_tree(tree)?
            .remove(self.sled_key(tree, key)?)?
            .is_some())
    }

    /// Removes every entry of `tree`.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn clear(&self, tree: Tree) -> Result<(), StoreError> {
        let sled_tree = self.sled_tree(tree)?;
        if !tree.shares_sled_tree() {
            sled_tree.clear()?;
            return Ok(());
        }
        // Only this tree's entries, in one atomic batch.
        let mut batch = sled::Batch::default();
        for key in sled_tree.scan_prefix(tree.key_prefix()).keys() {
            let key = key?;
            if tree.owns(&key) {
                batch.remove(key);
            }
        }
        sled_tree.apply_batch(batch)?;
        Ok(())
    }

    /// Whether `tree` has an entry under `key` (without decrypting it).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn contains(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .sled_tree(tree)?
            .contains_key(self.sled_key(tree, key)?)?)
    }

    /// All entries of `tree`, decrypted one at a time, in no particular order (sled orders
    /// them by their keyed hash). Entries whose data key was destroyed are skipped.
    ///
    /// An entry that fails authentication yields
    /// [`StoreError::TamperedValue`] and iteration can go on past it.
    pub fn iter(
        &self,
        tree: Tree,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Zeroizing<Vec<u8>>), StoreError>> + '_ {
        let (entries, missing) = match self.sled_tree(tree) {
            Ok(sled_tree) => (Some(sled_tree.scan_prefix(tree.key_prefix())), None),
            Err(error) => (None, Some(Err(error))),
        };
        let name = tree.name();
        missing
            .into_iter()
            .chain(
                entries
                    .into_iter()
                    .flatten()
                    .filter_map(move |entry| match entry {
                        Err(error) => Some(Err(error.into())),
                        // Another tree's entry in a shared sled tree.
                        Ok((key, _)) if !tree.owns(&key) => None,
                        Ok((_, stored)) => {
                            let tampered = || Some(Err(StoreError::TamperedValue { tree: name }));
                            let Some((key_here, opened)) = self.key.open_entry(name, &stored)
                            else {
                                return tampered();
                            };
                            match opened {
                                Stored::Plain(value) => Some(Ok((key_here, value))),
                                Stored::Expiring {
                                    bucket,
                                    sealed,
                                    layers,
                                } if key_here.is_empty() => {
                                    let keys = lock_poisoned(&self.data_keys);
                                    let data_key = keys.get(bucket)?;
                                    match sealing::open_expiring(
                                        data_key, name, bucket, sealed, layers,
                                    ) {
                                        Some((key, value)) => Some(Ok((key, value))),
                                        None => tampered(),
                                    }
                                }
                                Stored::Expiring { .. } => tampered(),
                            }
                        }
                    }),
            )
    }

    /// Number of entries in `tree`. This walks the tree: O(entries).
    pub fn len(&self, tree: Tree) -> usize {
        self.sled_tree(tree).map_or(0, |sled_tree| {
            sled_tree
                .scan_prefix(tree.key_prefix())
                .keys()
                .filter(|key| key.as_ref().is_ok_and(|key| tree.owns(key)))
                .count()
        })
    }

    /// Whether `tree` has no entry: reads only its first (O(log entries)) unless it shares its
    /// sled tree (then it may step over the other tree's entries), unlike [`Store::len`].
    pub fn is_empty(&self, tree: Tree) -> bool {
        self.sled_tree(tree).map_or(true, |sled_tree| {
            !sled_tree
                .scan_prefix(tree.key_prefix())
                .keys()
                .any(|key| key.as_ref().is_ok_and(|key| tree.owns(key)))
        })
    }

    /// Applies every operation of `batch` atomically: after a crash either
    /// all of them are visible or none.
    ///
    /// # Errors
    ///
    /// Database errors (then nothing was applied), or a failing system
    /// random number generator.
    pub fn apply_batch(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if self
            .fail_next_batch
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Database(sled::Error::Unsupported(
                "a failure injected by a test".into(),
            )));
        }
        // Encrypt outside the transaction: sled may run the closure several
        // times, and each value must get one fresh nonce.
        let mut touched: Vec<&'static str> =
            batch.ops.iter().map(|op| op.tree().sled_name()).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut writes = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let tree = op.tree();
            let slot = touched.binary_search(&tree.sled_name()).unwrap_or_default();
            let (key, sealed) = match op {
                Op::Put {
                    key,
                    value,
                    expires: None,
                    ..
                } => (key, Some(self.key.seal_value(tree.name(), key, value)?)),
                Op::Put {
                    key,
                    value,
                    expires: Some(expires),
                    ..
                } => (key, Some(self.seal_expiring(tree, key, value, *expires)?)),
                Op::Remove { key, .. } => (key, None),
            };
            writes.push((slot, self.sled_key(tree, key)?, sealed));
        }
        let first_of = |name: &str| {
            batch
                .ops
                .iter()
                .map(Op::tree)
                .find(|tree| tree.sled_name() == name)
        };
        let trees = touched
            .iter()
            .filter_map(|name| first_of(name))
            .map(|tree| self.sled_tree(tree).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        if let [tree] = trees.as_slice() {
            // One sled tree (a post and its index entry share one): a sled batch is atomic
            // within it and, unlike a transaction, does not read every key before writing it.
            let mut sled_batch = sled::Batch::default();
            for (_, key, sealed) in writes {
                match sealed {
                    Some(sealed) => sled_batch.insert(key, sealed),
                    None => sled_batch.remove(key),
                }
            }
            tree.apply_batch(sled_batch)?;
            return Ok(());
        }

        let result = trees.as_slice().transaction(
            |view| -> ConflictableTransactionResult<(), std::convert::Infallible> {
                for (slot, key, sealed) in &writes {
                    let Some(tree) = view.get(*slot) else {
                        continue;
                    };
                    match sealed {
                        Some(sealed) => {
                            tree.insert(key.as_slice(), sealed.as_slice())?;
                        }
                        None => {
                            tree.remove(key.as_slice())?;
                        }
                    }
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(error)) => Err(error.into()),
            Err(TransactionError::Abort(never)) => match never {},
        }
    }

    /// Makes every write so far durable: once this returns, the data survives
    /// the process being killed or the device losing power.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// A handle that makes every write made so far durable from another thread (the node's
    /// group commit runs the fsync off its event loop). It keeps the database open: wait for it
    /// before closing the store.
    pub fn flusher(&self) -> Flusher {
        Flusher(self.db.clone())
    }

    /// Open the store again after dropping it (tests). Another test of this binary may fork a
    /// child process at that moment (`durable_after_abort`): until the child execs, it shares
    /// the lock file's descriptor, and sled's own lock file's, so either lock can outlive the
    /// drop by a few milliseconds (seen in CI on a loaded machine: a post index test reopening
    /// the store failed with "could not acquire lock").
    #[cfg(test)]
    pub(crate) fn open_again_for_tests(home: &Path, passphrase: &[u8]) -> Store {
        // sled reports its lock held either as `WouldBlock` or as an `Other` error saying
        // "could not acquire lock" (seen in CI on the integration of the sixth session).
        while_locked(
            || Store::open(home, passphrase),
            |error| match error {
                StoreError::Locked { .. } => true,
                StoreError::Database(sled::Error::Io(error)) => {
                    error.kind() == std::io::ErrorKind::WouldBlock
                        || error.to_string().contains("could not acquire lock")
                }
                _ => false,
            },
        )
    }

    /// Flushes and closes the store, releasing the lock.
    ///
    /// # Errors
    ///
    /// Database errors from the final flush.
    pub fn close(self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Destroys the store: crypto-shreds the key file first, then removes the
    /// database and the lock file.
    ///
    /// From the moment the key file is overwritten and unlinked (the first
    /// step, reported as [`WipeReport::key_destroyed_after`]) nothing stored
    /// can be read again, with any passphrase, even if removing the rest is
    /// interrupted.
    ///
    /// # Errors
    ///
    /// An I/O error if the key file could not be shredded (then the store is
    /// intact and can be opened again to retry, or use
    /// [`Self::wipe_home`]); [`StoreError::WipeIncomplete`] if the key was
    /// destroyed but some files remain.
    pub fn wipe(self) -> Result<WipeReport, StoreError> {
        let started = Instant::now();
        let Store {
            trees,
            db,
            key,
            key_file: _,
            data_keys,
            format: _,
            layout,
            lock,
            #[cfg(test)]
                fail_next_batch: _,
        } = self;
        let key_file_len = layout.shred_key_file()?;
        drop(key);
        drop(data_keys);
        let key_destroyed_after = started.elapsed();
        // Close the database before removing its files so its background
        // flusher does not recreate any. What it flushes is unreadable now.
        drop(trees);
        drop(db);
        finish_wipe(&layout, lock, started, key_destroyed_after, key_file_len)
    }

    /// Wipes the store in `home` without its passphrase, as [`Self::wipe`]
    /// does: for a panic button, or to finish an interrupted wipe.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if `home` holds neither a key file nor a
    /// database, [`StoreError::Locked`] if a process has the store open (wipe
    /// through that process instead), I/O errors, and
    /// [`StoreError::WipeIncomplete`].
    pub fn wipe_home(home: &Path) -> Result<WipeReport, StoreError> {
        let started = Instant::now();
        let layout = Layout::new(home);
        let has_key = layout.key_file_exists();
        if !layout.any_store_file() {
            return Err(StoreError::NotFound {
                home: home.to_path_buf(),
            });
        }
        let lock = layout.lock()?;
        let key_file_len = if has_key { layout.shred_key_file()? } else { 0 };
        let key_destroyed_after = started.elapsed();
        finish_wipe(&layout, lock, started, key_destroyed_after, key_file_len)
    }

    /// Destroys the store's key in `home` at once, without its passphrase and without waiting
    /// for the lock: the first step of a panic button, taken even while a node holds the store
    /// open. Everything on disk is unreadable from then on (a running node keeps working from
    /// memory until it stops, and what it writes is unreadable too). Returns whether there was a
    /// key file.
    ///
    /// # Errors
    ///
    /// I/O errors while overwriting or removing the key file.
    pub fn shred_key(home: &Path) -> Result<bool, StoreError> {
        let layout = Layout::new(home);
        if !layout.key_file_exists() {
            return Ok(false);
        }
        layout.shred_key_file()?;
        Ok(true)
    }

    /// Removes what is left of a store whose key file is gone (an interrupted wipe, or a
    /// duress erase while a node held the store): the database, data keys and lock file. Does
    /// nothing if the home has a key file or is locked. Returns whether anything was removed.
    pub fn remove_leftovers(home: &Path) -> bool {
        let layout = Layout::new(home);
        if layout.key_file_exists() || !layout.any_store_file() {
            return false;
        }
        let Ok(lock) = layout.lock() else {
            return false;
        };
        let _ = layout.shred_key_file_parts();
        let _ = home::remove_dir_counting(&layout.db_dir);
        let _ = secrets::remove(&layout.home);
        let _ = home::remove_if_exists(&layout.lock_file);
        drop(lock);
        let _ = home::sync_dir(home);
        true
    }

    fn seal_expiring(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
        expires: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let bucket = bucket_of(expires);
        let mut keys = lock_poisoned(&self.data_keys);
        if !keys.contains(bucket) {
            // The new key must be on disk before any value sealed under it.
            keys.insert(bucket, Secret::generate()?);
            let written = keys
                .seal(self.key.data_file_key())
                .and_then(|sealed| self.layout.write_data_keys_file(&sealed));
            if let Err(error) = written {
                // Never seal a value under a key a restart would not find.
                keys.remove(bucket);
                return Err(error);
            }
        }
        let data_key = keys.get(bucket).ok_or(StoreError::Corrupt {
            what: "a data key vanished",
        })?;
        self.key
            .seal_expiring(tree.name(), key, value, bucket, data_key)
    }

    /// A stored value opened, with the first second of its expiry hour if it expires.
    fn open_stored_with_hour(
        &self,
        tree: Tree,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Option<WithHour>, StoreError> {
        match self.key.open_value(tree.name(), key, stored)? {
            Stored::Plain(value) => Ok(Some((value, None))),
            Stored::Expiring {
                bucket,
                sealed,
                layers,
            } => {
                let keys = lock_poisoned(&self.data_keys);
                let Some(data_key) = keys.get(bucket) else {
                    return Ok(None);
                };
                match sealing::open_expiring(data_key, tree.name(), bucket, sealed, layers) {
                    Some((inner_key, value)) if inner_key == key => {
                        Ok(Some((value, Some(bucket.saturating_mul(BUCKET_SECS)))))
                    }
                    _ => Err(StoreError::TamperedValue { tree: tree.name() }),
                }
            }
        }
    }

    /// Tests: makes the next [`Store::apply_batch`] fail with a database error, applying
    /// nothing.
    #[cfg(test)]
    pub(crate) fn fail_next_batch_for_tests(&self) {
        self.fail_next_batch
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// [`Store::put_expiring`] as value format 2 wrote it (two layers), for tests of stores
    /// written before format 3.
    #[cfg(test)]
    pub(crate) fn put_expiring_v2(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
        expires: u64,
    ) -> Result<(), StoreError> {
        // Makes sure the hour's data key exists (and is on disk).
        self.seal_expiring(tree, key, b"", expires)?;
        let bucket = bucket_of(expires);
        let sealed = {
            let keys = lock_poisoned(&self.data_keys);
            let data_key = keys.get(bucket).ok_or(StoreError::Corrupt {
                what: "a data key vanished",
            })?;
            self.key
                .seal_expiring_v2(tree.name(), key, value, bucket, data_key)?
        };
        self.sled_tree(tree)?
            .insert(self.sled_key(tree, key)?, sealed)?;
        Ok(())
    }

    /// The sled key entry `key` of `tree` is stored under, for tests that damage it on disk.
    #[cfg(test)]
    pub(crate) fn sled_key_for_tests(&self, tree: Tree, key: &[u8]) -> Vec<u8> {
        self.sled_key(tree, key).unwrap_or_default()
    }

    /// The database itself, for tests that lay out an older format by hand.
    #[cfg(test)]
    pub(crate) fn sled_db(&self) -> &sled::Db {
        &self.db
    }

    /// The sled key of entry `key` of `tree`: the tree's prefix ([`Tree::key_prefix`]), then
    /// the keyed hash of the tree's name and `key`.
    fn sled_key(&self, tree: Tree, key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let prefix = tree.key_prefix();
        let mut sled_key = Vec::with_capacity(prefix.len() + 32);
        sled_key.extend_from_slice(prefix);
        sled_key.extend_from_slice(&self.key.entry_key(tree.name(), key)?);
        Ok(sled_key)
    }

    fn sled_tree(&self, tree: Tree) -> Result<&sled::Tree, StoreError> {
        // Every variant is opened in `open_trees`, so this never fails.
        self.trees.get(tree.index()).ok_or(StoreError::Corrupt {
            what: "a tree of the store was not opened",
        })
    }
}

/// A mutex's contents even if a thread panicked holding it: the data keys and key file it
/// guards are replaced whole, never left half-written in memory.
fn lock_poisoned<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The duress erase: the key file first (without waiting for the lock), then the rest if no
/// other process holds the store. Errors are not reported: whoever typed the duress passphrase
/// must see what a device without Lookout shows.
fn erase(layout: &Layout) {
    if layout.shred_key_file().is_err() {
        // Could not overwrite it (read-only?): at least try to unlink it.
        let _ = home::remove_if_exists(&layout.key_file);
    }
    let _ = Store::remove_leftovers(&layout.home);
}

/// Shows only where the store lives: never keys or values.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("home", &self.layout.home)
            .finish_non_exhaustive()
    }
}

fn open_db(layout: &Layout) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(&layout.db_dir)
        .cache_capacity(CACHE_CAPACITY)
        .open()
        .map_err(|error| match error {
            // What sled says of a settings file it cannot parse ("created using a sled version
            // earlier than 0.29"): this program only ever wrote one version, so it is damage.
            sled::Error::Unsupported(_) => StoreError::Corrupt {
                what: "its database settings file store/conf cannot be read",
            },
            other => other.into(),
        })
}

/// Opens the sled tree of every tree, in [`Tree::ALL`]'s order (trees sharing a sled tree get
/// handles to the same one). The sled tree a tree had of its own before it shared another's
/// (the post index's, before the replica's `post_index_v3`) is dropped: the replica builds its
/// contents again where they now live.
fn open_trees(db: &sled::Db) -> Result<Vec<sled::Tree>, StoreError> {
    for &tree in Tree::ALL {
        let own = tree.name().as_bytes();
        if tree.sled_name() != tree.name() && db.tree_names().iter().any(|n| n.as_ref() == own) {
            db.drop_tree(tree.name())?;
            tracing::info!(
                tree = tree.name(),
                "a sled tree of the old store format dropped"
            );
        }
    }
    Tree::ALL
        .iter()
        .map(|tree| Ok(db.open_tree(tree.sled_name())?))
        .collect()
}

/// The part of a wipe after the key is gone: remove the database and the
/// lock file, then release the lock.
fn finish_wipe(
    layout: &Layout,
    lock: File,
    started: Instant,
    key_destroyed_after: std::time::Duration,
    key_file_len: u64,
) -> Result<WipeReport, StoreError> {
    let incomplete = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| StoreError::WipeIncomplete { path, cause }
    };
    layout.shred_key_file_parts()?;
    let (files, bytes) =
        home::remove_dir_counting(&layout.db_dir).map_err(incomplete(&layout.db_dir))?;
    let (secret_files, secret_bytes) =
        secrets::remove(&layout.home).map_err(incomplete(&layout.home))?;
    let (files, bytes) = (files + secret_files, bytes + secret_bytes);
    home::remove_if_exists(&layout.lock_file).map_err(incomplete(&layout.lock_file))?;
    drop(lock);
    home::sync_dir(&layout.home)?;
    let key_files = usize::from(key_file_len > 0);
    let report = WipeReport {
        files_removed: files + key_files,
        bytes_removed: bytes + key_file_len,
        key_destroyed_after,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        files = report.files_removed,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "store wiped"
    );
    Ok(report)
}
