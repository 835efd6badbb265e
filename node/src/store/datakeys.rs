//! Data keys: one random key per hour of expiry, destroyed when that hour has passed.
//!
//! A value that expires (an alert, and everything holding its text) is sealed under the data
//! key of its expiry bucket, `expires / BUCKET_SECS`. The keys live in one small file beside the
//! key file, sealed under a key derived from the storage key:
//!
//! ```text
//! store.dkeys = [DATA_FILE_VERSION] || nonce (24) || XChaCha20-Poly1305(plain) || tag (16)
//!               associated data b"lookout data keys v1"
//! plain       = count u32 LE || count x (bucket u64 LE || key 32) || zeros
//!               (padded to a multiple of 64 entries)
//! ```
//!
//! The entry of bucket `u64::MAX`, if present, is not a data key: it is the duress slot's derived
//! key, which lets a key-file write re-seal the duress slot (see `keyfile.rs`).
//!
//! The file is replaced atomically (written beside, synced, renamed, directory synced) and the
//! old file's bytes are overwritten in place, so once a bucket's key is dropped no file in the
//! home holds it. Until that overwrite the old file keeps a second name, `store.dkeys.old` (a
//! hard link made just before the rename): a crash in between leaves it there, and every start
//! shreds it. On flash storage and copy-on-write file systems (F2FS, btrfs, APFS) an overwrite
//! in place may land in new blocks and leave the old ones readable below the file system; no
//! file-system call reaches them. Memory forgets a key only once the file without it is
//! durably written, so a failed write is retried. sled may keep old copies of a removed value in its log: they are ciphertext
//! under a key that no longer exists.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::sealing::{open_with, seal_with, Secret, STORAGE_KEY_LEN};
use super::StoreError;

/// Width of an expiry bucket: a value is unrecoverable at most this long after it expired.
pub const BUCKET_SECS: u64 = 3600;

const DATA_FILE_VERSION: u8 = 1;
const DATA_FILE_LABEL: &[u8] = b"lookout data keys v1";
const ENTRY_LEN: usize = 8 + STORAGE_KEY_LEN;
/// The file's entries are padded to a multiple of this, so its size says little about activity.
const ENTRIES_PER_BLOCK: usize = 64;
/// More buckets than a year and a day of hours cannot be live at once (plus the duress entry).
const MAX_ENTRIES: usize = 367 * 24 + 1;

/// The bucket of a value expiring at `expires` (seconds since the Unix epoch).
pub(super) fn bucket_of(expires: u64) -> u64 {
    expires / BUCKET_SECS
}

/// Whether every value of `bucket` has expired at `now`.
fn is_past(bucket: u64, now: u64) -> bool {
    bucket.saturating_add(1).saturating_mul(BUCKET_SECS) <= now
}

/// The file entry holding the duress slot's derived key (see `keyfile.rs`), not a data key.
const DURESS_ENTRY: u64 = u64::MAX;

/// The data keys in memory.
#[derive(Default)]
pub(super) struct DataKeys {
    keys: BTreeMap<u64, Secret>,
    /// The duress slot's derived key, kept so that every key-file write can re-seal that slot.
    duress: Option<Secret>,
}

impl DataKeys {
    /// The duress slot's derived key, if one was stored.
    pub(super) fn duress(&self) -> Option<&Secret> {
        self.duress.as_ref()
    }

    /// Replaces the duress slot's derived key; returns the previous one.
    pub(super) fn set_duress(&mut self, duress: Option<Secret>) -> Option<Secret> {
        std::mem::replace(&mut self.duress, duress)
    }

    pub(super) fn get(&self, bucket: u64) -> Option<&Secret> {
        self.keys.get(&bucket)
    }

    pub(super) fn contains(&self, bucket: u64) -> bool {
        self.keys.contains_key(&bucket)
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn insert(&mut self, bucket: u64, key: Secret) {
        self.keys.insert(bucket, key);
    }

    /// Drops (and zeroizes) the keys of buckets past at `now`; returns how many.
    pub(super) fn forget_past(&mut self, now: u64) -> usize {
        let before = self.keys.len();
        self.keys.retain(|&bucket, _| !is_past(bucket, now));
        before - self.keys.len()
    }

    /// Whether some key's bucket is past at `now`.
    pub(super) fn any_past(&self, now: u64) -> bool {
        self.keys.keys().next().is_some_and(|&b| is_past(b, now))
    }

    /// Every key, for the forensic scan.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &Secret)> {
        self.keys.iter().map(|(b, k)| (*b, k))
    }

    /// Drops the key of `bucket` (one whose file write failed).
    pub(super) fn remove(&mut self, bucket: u64) {
        self.keys.remove(&bucket);
    }

    /// The sealed file contents.
    pub(super) fn seal(&self, file_key: &Secret) -> Result<Vec<u8>, StoreError> {
        self.seal_where(file_key, |_| true)
    }

    /// The sealed file contents without the keys of buckets past at `now`: written before
    /// they are forgotten in memory, so a failed write leaves them to be retried.
    pub(super) fn seal_without_past(
        &self,
        file_key: &Secret,
        now: u64,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_where(file_key, |bucket| !is_past(bucket, now))
    }

    fn seal_where(
        &self,
        file_key: &Secret,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<u8>, StoreError> {
        let kept: Vec<_> = self
            .keys
            .iter()
            .filter(|(b, _)| keep(**b))
            .chain(self.duress.iter().map(|k| (&DURESS_ENTRY, k)))
            .collect();
        let count = u32::try_from(kept.len()).map_err(|_| StoreError::Corrupt {
            what: "too many data keys",
        })?;
        let blocks = kept.len().div_ceil(ENTRIES_PER_BLOCK).max(1);
        let mut plain = Zeroizing::new(Vec::with_capacity(
            4 + blocks * ENTRIES_PER_BLOCK * ENTRY_LEN,
        ));
        plain.extend_from_slice(&count.to_le_bytes());
        for (bucket, key) in kept {
            plain.extend_from_slice(&bucket.to_le_bytes());
            plain.extend_from_slice(key.as_bytes());
        }
        plain.resize(4 + blocks * ENTRIES_PER_BLOCK * ENTRY_LEN, 0);
        let sealed = seal_with(file_key, &plain, DATA_FILE_LABEL)?;
        let mut file = Vec::with_capacity(1 + sealed.len());
        file.push(DATA_FILE_VERSION);
        file.extend_from_slice(&sealed);
        Ok(file)
    }

    /// Reads what [`Self::seal`] wrote.
    pub(super) fn open(file: &[u8], file_key: &Secret) -> Result<Self, StoreError> {
        let corrupt = |what| StoreError::Corrupt { what };
        let (&version, sealed) = file
            .split_first()
            .ok_or(corrupt("the data-key file is empty"))?;
        if version != DATA_FILE_VERSION {
            return Err(corrupt("the data-key file has an unknown version"));
        }
        let plain = open_with(file_key, sealed, DATA_FILE_LABEL)
            .ok_or(corrupt("the data-key file does not belong to this store"))?;
        let (count, mut rest) = plain
            .split_first_chunk::<4>()
            .ok_or(corrupt("the data-key file is truncated"))?;
        let count = usize::try_from(u32::from_le_bytes(*count)).unwrap_or(usize::MAX);
        if count > MAX_ENTRIES || rest.len() < count.saturating_mul(ENTRY_LEN) {
            return Err(corrupt("the data-key file is malformed"));
        }
        let mut keys = BTreeMap::new();
        let mut duress = None;
        for _ in 0..count {
            let (bucket, after) = rest
                .split_first_chunk::<8>()
                .ok_or(corrupt("the data-key file is truncated"))?;
            let (key, after) = after
                .split_first_chunk::<STORAGE_KEY_LEN>()
                .ok_or(corrupt("the data-key file is truncated"))?;
            match u64::from_le_bytes(*bucket) {
                DURESS_ENTRY => duress = Some(Secret::from_slice(key)?),
                bucket => {
                    keys.insert(bucket, Secret::from_slice(key)?);
                }
            }
            rest = after;
        }
        Ok(Self { keys, duress })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn file_round_trip_padding_and_forgetting() {
        let file_key = Secret::generate().unwrap();
        let mut keys = DataKeys::default();
        let empty = keys.seal(&file_key).unwrap();
        keys.insert(10, Secret::generate().unwrap());
        keys.insert(11, Secret::generate().unwrap());
        let two = keys.seal(&file_key).unwrap();
        assert_eq!(
            empty.len(),
            two.len(),
            "the size hides how many keys there are"
        );
        let opened = DataKeys::open(&two, &file_key).unwrap();
        assert_eq!(opened.len(), 2);
        assert_eq!(
            opened.get(10).unwrap().as_bytes(),
            keys.get(10).unwrap().as_bytes()
        );
        assert!(DataKeys::open(&two, &Secret::generate().unwrap()).is_err());
        // Bucket 10 is [36000, 39600): past from 39600 on.
        assert!(!keys.any_past(39_599));
        assert_eq!(keys.forget_past(39_599), 0);
        assert!(keys.any_past(39_600));
        assert_eq!(keys.forget_past(39_600), 1);
        assert!(!keys.contains(10) && keys.contains(11));
        assert_eq!(bucket_of(39_599), 10);
    }
}
