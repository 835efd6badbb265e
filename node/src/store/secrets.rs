//! The secrets file: a few secrets that must be truly gone once replaced.
//!
//! sled never overwrites in place: a replaced or removed value's ciphertext stays in its log,
//! under the one storage key, readable again by whoever learns the passphrase. The member's
//! X25519 agreement secrets (rotated every week, see
//! [`lookout_protocol::identity::agreement_policy`]) and the epoch keys held (deleted when their
//! alerts have expired) must not outlive their replacement, so they live in one small file
//! beside the database, `<home>/secrets` (0600), encrypted under the storage key (so shredding
//! the key file destroys it too) and bound to its name. It is replaced as the key file is: a
//! new file is written, synced and renamed over the old one, whose contents are then overwritten
//! with random bytes through a handle opened before the rename. Flash storage may keep stale
//! copies of blocks that no file-system call reaches; the passphrase is what protects those.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::home::{io_error, overwrite_with_random, remove_if_exists, sync_dir};
use super::sealing::Stored;
use super::{Store, StoreError};

/// Name of the secrets file inside the home directory.
pub const SECRETS_FILE: &str = "secrets";
const SECRETS_TMP_FILE: &str = "secrets.tmp";
/// Associated-data names the file's contents are sealed under ("__" names are the store's).
const SECRETS_TREE: &str = "__secrets";
const SECRETS_KEY: &[u8] = b"secrets v1";
/// Largest secrets file read back.
const MAX_SECRETS_FILE_LEN: u64 = 64 * 1024;
/// The plaintext is padded to a multiple of this, so the file's size says little.
const SECRETS_PAD: usize = 1024;

fn paths(home: &Path) -> (PathBuf, PathBuf) {
    (home.join(SECRETS_FILE), home.join(SECRETS_TMP_FILE))
}

impl Store {
    /// Replace the secrets file with `plaintext` (at most about 60 KiB), durably, and overwrite
    /// the old file's contents.
    ///
    /// # Errors
    ///
    /// I/O errors; the old file is then still in place.
    pub fn write_secrets(&self, plaintext: &[u8]) -> Result<(), StoreError> {
        let (file, tmp_path) = paths(&self.layout.home);
        let mut padded = Zeroizing::new(Vec::with_capacity(plaintext.len() + SECRETS_PAD + 4));
        let len = u32::try_from(plaintext.len()).map_err(|_| StoreError::Corrupt {
            what: "secrets too large",
        })?;
        padded.extend_from_slice(&len.to_le_bytes());
        padded.extend_from_slice(plaintext);
        let padded_len = padded.len().div_ceil(SECRETS_PAD) * SECRETS_PAD;
        padded.resize(padded_len, 0);
        let sealed = self.key.seal_value(SECRETS_TREE, SECRETS_KEY, &padded)?;
        remove_if_exists(&tmp_path).map_err(io_error("remove", &tmp_path))?;
        let mut tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(io_error("create", &tmp_path))?;
        tmp.write_all(&sealed)
            .and_then(|()| tmp.sync_all())
            .map_err(io_error("write", &tmp_path))?;
        drop(tmp);
        let old = match OpenOptions::new().write(true).open(&file) {
            Ok(old) => Some(old),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(cause) => {
                return Err(StoreError::Io {
                    action: "open",
                    path: file,
                    cause,
                })
            }
        };
        fs::rename(&tmp_path, &file).map_err(io_error("replace", &file))?;
        sync_dir(&self.layout.home)?;
        if let Some(mut old) = old {
            overwrite_with_random(&mut old).map_err(io_error("shred the old", &file))?;
        }
        Ok(())
    }

    /// The secrets file's contents, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// I/O errors, and [`StoreError::TamperedValue`] if it does not open under the storage key.
    pub fn read_secrets(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        read(&self.layout.home, &self.key)
    }
}

/// The secrets file of `home`, opened with the storage key ([`Store::read_secrets`]).
pub(super) fn read(
    home: &Path,
    key: &super::sealing::StorageKey,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let (file, _) = paths(home);
    let handle = match fs::File::open(&file) {
        Ok(handle) => handle,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(StoreError::Io {
                action: "open",
                path: file,
                cause,
            })
        }
    };
    let mut sealed = Vec::new();
    handle
        .take(MAX_SECRETS_FILE_LEN)
        .read_to_end(&mut sealed)
        .map_err(io_error("read", &file))?;
    let tampered = || StoreError::TamperedValue { tree: SECRETS_TREE };
    let padded = match key.open_value(SECRETS_TREE, SECRETS_KEY, &sealed)? {
        Stored::Plain(padded) => padded,
        Stored::Expiring { .. } => return Err(tampered()),
    };
    let (len, rest) = padded.split_first_chunk::<4>().ok_or_else(tampered)?;
    let len = u32::from_le_bytes(*len) as usize;
    let plain = rest.get(..len).ok_or_else(tampered)?;
    Ok(Some(Zeroizing::new(plain.to_vec())))
}

/// Remove the secrets file (and a leftover temporary one) from `home`, counting what was
/// removed: part of a wipe, after the key file that can open it was shredded.
pub(super) fn remove(home: &Path) -> io::Result<(usize, u64)> {
    let (file, tmp) = paths(home);
    let mut counted = (0, 0);
    for path in [file, tmp] {
        if let Ok(meta) = fs::metadata(&path) {
            remove_if_exists(&path)?;
            counted.0 += 1;
            counted.1 += meta.len();
        }
    }
    Ok(counted)
}
