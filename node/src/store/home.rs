//! The store's files in the home directory: layout, permissions, the lock,
//! writing and shredding the key file, and removing the database.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;

use super::StoreError;

/// Name of the sled directory inside the home directory.
pub(super) const DB_DIR: &str = "store";
/// Name of the sealed storage key inside the home directory.
pub(super) const KEY_FILE: &str = "store.key";
/// Name of the lock file inside the home directory.
pub(super) const LOCK_FILE: &str = "store.lock";
/// Temporary name a new key file is written under before it is renamed.
const KEY_TMP_FILE: &str = "store.key.tmp";
/// Name of the data-key file inside the home directory.
pub(super) const DATA_KEYS_FILE: &str = "store.dkeys";
/// Temporary name a new data-key file is written under before it is renamed.
const DATA_KEYS_TMP_FILE: &str = "store.dkeys.tmp";
/// A hard link to the key file being replaced, kept from just before the rename until its
/// bytes are overwritten: a crash in between leaves the old file findable (and shredded at the
/// next start) instead of an unlinked inode no one will overwrite.
const KEY_OLD_FILE: &str = "store.key.old";
/// The same for the data-key file (it holds the keys of hours just forgotten).
const DATA_KEYS_OLD_FILE: &str = "store.dkeys.old";

/// A key file is 179 bytes; anything near this cap is not ours.
const MAX_KEY_FILE_LEN: u64 = 4096;
/// A data-key file holds at most a year's hours of keys (about 360 KB).
const MAX_DATA_KEYS_FILE_LEN: u64 = 1024 * 1024;

const PRIVATE_DIR_MODE: u32 = 0o700;
const PRIVATE_FILE_MODE: u32 = 0o600;

/// Paths of the store's files under one home directory.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) home: PathBuf,
    pub(super) db_dir: PathBuf,
    pub(super) key_file: PathBuf,
    pub(super) key_tmp: PathBuf,
    pub(super) data_keys: PathBuf,
    pub(super) data_keys_tmp: PathBuf,
    pub(super) key_old: PathBuf,
    pub(super) data_keys_old: PathBuf,
    pub(super) lock_file: PathBuf,
}

impl Layout {
    pub(super) fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            db_dir: home.join(DB_DIR),
            key_file: home.join(KEY_FILE),
            key_tmp: home.join(KEY_TMP_FILE),
            data_keys: home.join(DATA_KEYS_FILE),
            data_keys_tmp: home.join(DATA_KEYS_TMP_FILE),
            key_old: home.join(KEY_OLD_FILE),
            data_keys_old: home.join(DATA_KEYS_OLD_FILE),
            lock_file: home.join(LOCK_FILE),
        }
    }

    pub(super) fn key_file_exists(&self) -> bool {
        self.key_file.is_file()
    }

    /// Takes the exclusive lock, creating the lock file if needed.
    ///
    /// The lock is an advisory `flock`, released when the returned file is
    /// dropped (or the process dies, however it dies).
    #[allow(clippy::incompatible_msrv)] // File::try_lock is stable since 1.89; the toolchain is 1.95.
    pub(super) fn lock(&self) -> Result<File, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(&self.lock_file)
            .map_err(io_error("open the lock file", &self.lock_file))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                home: self.home.clone(),
            }),
            Err(fs::TryLockError::Error(cause)) => Err(StoreError::Io {
                action: "lock",
                path: self.lock_file.clone(),
                cause,
            }),
        }
    }

    /// Reads the sealed key, refusing anything implausibly large.
    pub(super) fn read_key_file(&self) -> Result<Vec<u8>, StoreError> {
        self.read_small(&self.key_file, MAX_KEY_FILE_LEN)
    }

    /// Reads the data-key file, refusing anything implausibly large.
    pub(super) fn read_data_keys_file(&self) -> Result<Vec<u8>, StoreError> {
        match self.read_small(&self.data_keys, MAX_DATA_KEYS_FILE_LEN) {
            Err(StoreError::NotFound { .. }) => Err(StoreError::Corrupt {
                what: "the data-key file is missing",
            }),
            other => other,
        }
    }

    fn read_small(&self, path: &Path, max: u64) -> Result<Vec<u8>, StoreError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    home: self.home.clone(),
                })
            }
            Err(cause) => {
                return Err(StoreError::Io {
                    action: "open",
                    path: path.to_path_buf(),
                    cause,
                })
            }
        };
        let mut sealed = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut sealed)
            .map_err(io_error("read", path))?;
        if sealed.len() as u64 > max {
            return Err(StoreError::Corrupt {
                what: "a key file is far too large",
            });
        }
        Ok(sealed)
    }

    /// Durably replaces the key file with `sealed`.
    ///
    /// The new key is written to a temporary file, synced and renamed over
    /// the old one, so a crash leaves either the old or the new key file. The
    /// old file's contents are then overwritten through a handle opened
    /// before the rename, so the old sealing (under a possibly compromised
    /// passphrase) does not linger in that inode. Flash storage may still keep
    /// stale copies of blocks that no file system call can reach.
    pub(super) fn write_key_file(&self, sealed: &[u8]) -> Result<(), StoreError> {
        self.replace_file(&self.key_file, &self.key_tmp, &self.key_old, sealed)
    }

    /// Durably replaces the data-key file, as [`Self::write_key_file`] does the key file: the
    /// old file's bytes (keys of buckets now forgotten among them) are overwritten.
    pub(super) fn write_data_keys_file(&self, sealed: &[u8]) -> Result<(), StoreError> {
        self.replace_file(
            &self.data_keys,
            &self.data_keys_tmp,
            &self.data_keys_old,
            sealed,
        )
    }

    /// Shreds what an interrupted replacement left under the `.old` names (done at every
    /// start). A `.old` name still linked to the current file (the crash came before the
    /// rename) is only unlinked: its bytes are the live file's.
    pub(super) fn shred_old_files(&self) -> Result<(), StoreError> {
        shred_stale_old(&self.key_old, &self.key_file)?;
        shred_stale_old(&self.data_keys_old, &self.data_keys)?;
        sync_dir(&self.home)
    }

    fn replace_file(
        &self,
        path: &Path,
        tmp_path: &Path,
        old_path: &Path,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        // Leftovers from an interrupted earlier write: shred and remove them so `create_new`
        // and `hard_link` below do not fail.
        shred_if_exists(tmp_path)?;
        shred_stale_old(old_path, path)?;
        let mut tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(tmp_path)
            .map_err(io_error("create", tmp_path))?;
        tmp.write_all(sealed)
            .and_then(|()| tmp.sync_all())
            .map_err(io_error("write", tmp_path))?;
        drop(tmp);

        // The old file keeps a name until its bytes are overwritten.
        let had_old = match fs::hard_link(path, old_path) {
            Ok(()) => true,
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            Err(cause) => {
                return Err(StoreError::Io {
                    action: "link the old",
                    path: path.to_path_buf(),
                    cause,
                })
            }
        };
        fs::rename(tmp_path, path).map_err(io_error("replace", path))?;
        sync_dir(&self.home)?;
        #[cfg(test)]
        if tests_only::crash_after_rename() {
            return Err(StoreError::Corrupt {
                what: "a crash injected by a test",
            });
        }
        if had_old {
            shred_if_exists(old_path)?;
            sync_dir(&self.home)?;
        }
        Ok(())
    }

    /// Crypto-shreds the key file: overwrites it with random bytes of the
    /// same length, syncs, unlinks it and syncs the directory. Once this
    /// returns, the database cannot be decrypted any more.
    ///
    /// Returns the size of the shredded file.
    pub(super) fn shred_key_file(&self) -> Result<u64, StoreError> {
        let mut file = OpenOptions::new()
            .write(true)
            .open(&self.key_file)
            .map_err(io_error("open for shredding", &self.key_file))?;
        let len = overwrite_with_random(&mut file).map_err(io_error("shred", &self.key_file))?;
        drop(file);
        fs::remove_file(&self.key_file).map_err(io_error("remove", &self.key_file))?;
        // A temporary key file exists only if a key change was interrupted;
        // it holds the same key and must go the same way. The data keys follow:
        // without the storage key they cannot be opened, but nothing need stay.
        self.shred_key_file_parts()?;
        Ok(len)
    }

    /// Shreds the files that go with the key file: an interrupted key change's temporary file
    /// and the data keys (useless without the storage key, but nothing need stay).
    pub(super) fn shred_key_file_parts(&self) -> Result<(), StoreError> {
        shred_if_exists(&self.key_old)?;
        shred_if_exists(&self.key_tmp)?;
        sync_dir(&self.home)?;
        shred_if_exists(&self.data_keys)?;
        shred_if_exists(&self.data_keys_tmp)?;
        shred_if_exists(&self.data_keys_old)?;
        sync_dir(&self.home)
    }

    /// Whether any file of a store (key, data keys, database, lock) is in the home.
    pub(super) fn any_store_file(&self) -> bool {
        [
            &self.key_file,
            &self.key_tmp,
            &self.data_keys,
            &self.data_keys_tmp,
            &self.key_old,
            &self.data_keys_old,
            &self.db_dir,
        ]
        .iter()
        .any(|p| p.exists())
            || self.home.join(super::secrets::SECRETS_FILE).exists()
    }
}

/// Creates `dir` (and missing parents) and makes it private to the owner.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(io_error("create the directory", dir))?;
    // `mode` applies only to directories this call created.
    fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR_MODE))
        .map_err(io_error("restrict permissions of", dir))
}

/// Restricts everything under `dir` to the owner. sled creates its files with
/// the process umask; the home directory being 0700 already keeps others out,
/// this is a second fence. Best effort: sled may be writing meanwhile.
pub(super) fn restrict_tree(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            let _ = fs::set_permissions(&path, Permissions::from_mode(PRIVATE_DIR_MODE));
            restrict_tree(&path);
        } else if file_type.is_file() {
            let _ = fs::set_permissions(&path, Permissions::from_mode(PRIVATE_FILE_MODE));
        }
    }
}

/// Removes `dir` and everything in it, counting files and bytes removed.
/// A missing `dir` counts as already removed.
pub(super) fn remove_dir_counting(dir: &Path) -> io::Result<(usize, u64)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(error) => return Err(error),
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let (sub_files, sub_bytes) = remove_dir_counting(&path)?;
            files += sub_files;
            bytes += sub_bytes;
        } else {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path)?;
            files += 1;
            bytes += len;
        }
    }
    fs::remove_dir(dir)?;
    Ok((files, bytes))
}

/// Overwrites `path` with random bytes and removes it, if it exists.
pub(super) fn shred_if_exists(path: &Path) -> Result<(), StoreError> {
    if let Ok(mut file) = OpenOptions::new().write(true).open(path) {
        overwrite_with_random(&mut file).map_err(io_error("shred", path))?;
        drop(file);
        remove_if_exists(path).map_err(io_error("remove", path))?;
    }
    Ok(())
}

/// Shreds `old` unless it is another name of `current` (same inode), which is only unlinked.
fn shred_stale_old(old: &Path, current: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(old_meta) = fs::symlink_metadata(old) else {
        return Ok(());
    };
    let same =
        fs::metadata(current).is_ok_and(|c| c.ino() == old_meta.ino() && c.dev() == old_meta.dev());
    if same {
        remove_if_exists(old).map_err(io_error("remove", old))
    } else {
        shred_if_exists(old)?;
        // Not a regular file we could open for writing: still do not leave it.
        remove_if_exists(old).map_err(io_error("remove", old))
    }
}

/// Removes a file, treating "already gone" as success.
pub(super) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Makes renames and unlinks in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync the directory", dir))
}

/// Overwrites the whole file in place with random bytes and syncs it.
/// Returns its length.
pub(super) fn overwrite_with_random(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut remaining = len;
    let mut noise = [0u8; 4096];
    while remaining > 0 {
        // At most 4096, so the cast is lossless.
        let chunk = remaining.min(noise.len() as u64) as usize;
        let noise = &mut noise[..chunk];
        OsRng.try_fill_bytes(noise).map_err(io::Error::other)?;
        file.write_all(noise)?;
        remaining -= chunk as u64;
    }
    file.sync_all()?;
    Ok(len)
}

/// Builds the `map_err` closure for a failed file-system call.
pub(super) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |cause| StoreError::Io {
        action,
        path,
        cause,
    }
}

/// Test hooks: a crash injected between a replacement's rename and the old file's overwrite.
#[cfg(test)]
pub(super) mod tests_only {
    use std::cell::Cell;

    thread_local! {
        static CRASH_AFTER_RENAME: Cell<bool> = const { Cell::new(false) };
    }

    /// The next replacement on this thread stops right after its rename, as a crash would.
    pub(in crate::store) fn inject_crash_after_rename() {
        CRASH_AFTER_RENAME.with(|c| c.set(true));
    }

    pub(super) fn crash_after_rename() -> bool {
        CRASH_AFTER_RENAME.with(|c| c.replace(false))
    }
}
