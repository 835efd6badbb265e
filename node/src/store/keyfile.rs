//! The key file: the storage key sealed under the passphrase, in one of two equal slots.
//!
//! ```text
//! offset  length  field
//! 0       4       magic b"LKSK"
//! 4       1       format version, 2
//! 5       12      Argon2id memory KiB, iterations, lanes (u32 LE each)
//! 17      16      salt
//! 33      73      slot 0: nonce (24) || XChaCha20-Poly1305(kind (1) || key (32)) || tag (16)
//! 106     73      slot 1: the same
//! ```
//!
//! One Argon2id run derives `K = Argon2id(passphrase, salt, params)`; `K` is tried on both slots,
//! associated data the 33-byte header followed by [`STORAGE_KEY_LABEL`]. A slot of kind 1 holds
//! the storage key; a slot of kind 2 is the **duress** slot: the passphrase that opens it erases
//! the store. A slot not in use holds 73 random bytes, which cannot be told from a sealed slot
//! without its passphrase, so the file is the same size and shape whether a duress passphrase is
//! set or not, and every attempt costs the same single Argon2id run.
//!
//! Both passphrases share the salt and the parameters; changing the passphrase keeps them, so a
//! duress passphrase stays valid across changes.
//!
//! Every write of the file (passphrase change, duress set or cleared) re-seals **both** slots
//! with fresh nonces (an unused slot gets fresh random bytes), so two images of the file taken
//! before and after show both slots changed and never which one holds the storage key. To
//! re-seal the duress slot without its passphrase, the store keeps the duress slot's derived
//! key `K_duress` in the data-key file (sealed under the storage key; see `datakeys.rs`): whoever
//! holds the real passphrase learns that a duress passphrase is set, never the passphrase.
//!
//! Format 1 (a single [`lookout_protocol::passphrase::seal`] blob) is recognised and refused with
//! [`StoreError::Incompatible`]: its database keeps clear-text keys and has no data keys.

use lookout_protocol::passphrase::{self, KdfParams, PassphraseError, SALT_LEN};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::sealing::{open_with, seal_with, Secret, StorageKey, STORAGE_KEY_LEN};
use super::StoreError;

/// Label the slots are bound to, so that no other blob sealed under the same passphrase can
/// stand in for the key file.
pub const STORAGE_KEY_LABEL: &[u8] = b"lookout storage key v2";

const MAGIC: [u8; 4] = *b"LKSK";
const VERSION: u8 = 2;
const HEADER_LEN: usize = 4 + 1 + 12 + SALT_LEN;
const SLOT_PLAIN_LEN: usize = 1 + STORAGE_KEY_LEN;
const SLOT_LEN: usize = 24 + SLOT_PLAIN_LEN + 16;
/// Length of every key file of this format.
pub(super) const KEY_FILE_LEN: usize = HEADER_LEN + 2 * SLOT_LEN;

const KIND_STORAGE: u8 = 1;
const KIND_DURESS: u8 = 2;

/// A parsed key file.
#[derive(Clone)]
pub(super) struct KeyFile {
    header: [u8; HEADER_LEN],
    params: KdfParams,
    salt: [u8; SALT_LEN],
    slots: [[u8; SLOT_LEN]; 2],
}

/// What a passphrase opened.
pub(super) enum Unlocked {
    /// The storage key, found in slot `slot`, and the key the passphrase derived (to re-seal
    /// the slot later without asking again).
    Storage {
        key: StorageKey,
        slot: usize,
        derived: Secret,
    },
    /// The duress slot.
    Duress,
}

impl KeyFile {
    /// A new key file sealing `key` under `passphrase`, the other slot random.
    pub(super) fn create(
        passphrase: &[u8],
        params: KdfParams,
        key: &StorageKey,
    ) -> Result<(Self, usize, Secret), StoreError> {
        params.check().map_err(StoreError::InvalidParams)?;
        let mut salt = [0u8; SALT_LEN];
        fill(&mut salt)?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&MAGIC);
        header[4] = VERSION;
        header[5..9].copy_from_slice(&params.memory_kib.to_le_bytes());
        header[9..13].copy_from_slice(&params.iterations.to_le_bytes());
        header[13..17].copy_from_slice(&params.parallelism.to_le_bytes());
        header[17..].copy_from_slice(&salt);
        let mut slots = [[0u8; SLOT_LEN]; 2];
        fill(&mut slots[0])?;
        fill(&mut slots[1])?;
        let mut file = Self {
            header,
            params,
            salt,
            slots,
        };
        let mut pick = [0u8; 1];
        fill(&mut pick)?;
        let slot = usize::from(pick[0] & 1);
        let k = file.derive(passphrase)?;
        file.slots[slot] = file.seal_slot(&k, KIND_STORAGE, key.as_bytes())?;
        Ok((file, slot, k))
    }

    /// Parses a key file; format 1 is [`StoreError::Incompatible`].
    pub(super) fn parse(bytes: &[u8], home: &std::path::Path) -> Result<Self, StoreError> {
        if bytes.starts_with(&passphrase::MAGIC) {
            return Err(StoreError::Incompatible {
                home: home.to_path_buf(),
            });
        }
        let malformed = |what| StoreError::KeyFile(PassphraseError::Malformed(what));
        if !bytes.starts_with(&MAGIC) {
            return Err(malformed("missing LKSK magic"));
        }
        if bytes.get(4) != Some(&VERSION) {
            return Err(StoreError::KeyFile(PassphraseError::UnsupportedVersion(
                bytes.get(4).copied().unwrap_or(0),
            )));
        }
        if bytes.len() != KEY_FILE_LEN {
            return Err(malformed("wrong length"));
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(w)
        };
        let params = KdfParams {
            memory_kib: word(5),
            iterations: word(9),
            parallelism: word(13),
        };
        params.check().map_err(StoreError::KeyFile)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&bytes[..HEADER_LEN]);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[17..HEADER_LEN]);
        let mut slots = [[0u8; SLOT_LEN]; 2];
        slots[0].copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + SLOT_LEN]);
        slots[1].copy_from_slice(&bytes[HEADER_LEN + SLOT_LEN..]);
        Ok(Self {
            header,
            params,
            salt,
            slots,
        })
    }

    /// The key-derivation parameters the file's header names.
    pub(super) fn params(&self) -> KdfParams {
        self.params
    }

    /// The file's bytes.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_FILE_LEN);
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.slots[0]);
        out.extend_from_slice(&self.slots[1]);
        out
    }

    /// One Argon2id run, then both slots tried.
    pub(super) fn unlock(&self, passphrase: &[u8]) -> Result<Unlocked, StoreError> {
        let k = self.derive(passphrase)?;
        for slot in 0..2 {
            if let Some((kind, secret)) = self.open_slot(&k, slot) {
                return match kind {
                    KIND_STORAGE => Ok(Unlocked::Storage {
                        key: StorageKey::from_slice(secret.as_slice())?,
                        slot,
                        derived: k,
                    }),
                    KIND_DURESS => Ok(Unlocked::Duress),
                    _ => Err(StoreError::KeyFile(PassphraseError::Malformed(
                        "unknown slot kind",
                    ))),
                };
            }
        }
        Err(StoreError::WrongPassphrase)
    }

    /// The same header with both slots new: the storage key in slot `slot` sealed under the
    /// derived key `storage` (fresh nonce), and the other slot the duress slot sealed under
    /// `duress` (fresh nonce and marker) or fresh random bytes.
    pub(super) fn resealed(
        &self,
        slot: usize,
        storage: &Secret,
        key: &StorageKey,
        duress: Option<&Secret>,
    ) -> Result<Self, StoreError> {
        let slot = slot.min(1);
        let mut next = self.clone();
        next.slots[slot] = self.seal_slot(storage, KIND_STORAGE, key.as_bytes())?;
        next.slots[1 - slot] = match duress {
            Some(duress) => {
                let mut marker = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
                fill(marker.as_mut())?;
                self.seal_slot(duress, KIND_DURESS, &marker)?
            }
            None => {
                let mut random = [0u8; SLOT_LEN];
                fill(&mut random)?;
                random
            }
        };
        Ok(next)
    }

    /// Whether the derived key `k` opens slot `slot` as a duress slot.
    pub(super) fn is_duress_key(&self, k: &Secret, slot: usize) -> bool {
        matches!(self.open_slot(k, slot), Some((KIND_DURESS, _)))
    }

    /// One Argon2id run with this file's salt and parameters.
    pub(super) fn derive(&self, passphrase: &[u8]) -> Result<Secret, StoreError> {
        let k = passphrase::derive_key(passphrase, &self.salt, self.params)
            .map_err(StoreError::KeyFile)?;
        Secret::from_slice(k.as_ref())
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + STORAGE_KEY_LABEL.len());
        aad.extend_from_slice(&self.header);
        aad.extend_from_slice(STORAGE_KEY_LABEL);
        aad
    }

    fn seal_slot(
        &self,
        k: &Secret,
        kind: u8,
        secret: &[u8; STORAGE_KEY_LEN],
    ) -> Result<[u8; SLOT_LEN], StoreError> {
        let mut plain = Zeroizing::new([0u8; SLOT_PLAIN_LEN]);
        plain[0] = kind;
        plain[1..].copy_from_slice(secret);
        let sealed = seal_with(k, plain.as_ref(), &self.aad())?;
        let mut slot = [0u8; SLOT_LEN];
        slot.copy_from_slice(&sealed);
        Ok(slot)
    }

    fn open_slot(&self, k: &Secret, slot: usize) -> Option<(u8, Zeroizing<Vec<u8>>)> {
        let plain = open_with(k, self.slots.get(slot)?, &self.aad())?;
        let (&kind, secret) = plain.split_first()?;
        Some((kind, Zeroizing::new(secret.to_vec())))
    }
}

fn fill(bytes: &mut [u8]) -> Result<(), StoreError> {
    OsRng.try_fill_bytes(bytes).map_err(StoreError::Randomness)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::path::Path;

    fn storage(unlocked: Unlocked) -> (StorageKey, usize, Secret) {
        match unlocked {
            Unlocked::Storage { key, slot, derived } => (key, slot, derived),
            Unlocked::Duress => panic!("expected the storage key"),
        }
    }

    #[test]
    fn slots_passphrases_and_duress() {
        let key = StorageKey::generate().unwrap();
        let (file, slot, k) = KeyFile::create(b"real", KdfParams::TESTING, &key).unwrap();
        let bytes = file.encode();
        assert_eq!(bytes.len(), KEY_FILE_LEN);
        let file = KeyFile::parse(&bytes, Path::new("/h")).unwrap();
        let (opened, found, derived) = storage(file.unlock(b"real").unwrap());
        assert_eq!(found, slot);
        assert_eq!(derived.as_bytes(), k.as_bytes());
        assert_eq!(opened.as_bytes(), key.as_bytes());
        assert!(matches!(
            file.unlock(b"wrong"),
            Err(StoreError::WrongPassphrase)
        ));

        let kd = file.derive(b"panic").unwrap();
        let with = file.resealed(slot, &k, &key, Some(&kd)).unwrap();
        assert_eq!(with.encode().len(), bytes.len());
        assert_eq!(with.encode()[..HEADER_LEN], bytes[..HEADER_LEN]);
        assert!(matches!(with.unlock(b"panic").unwrap(), Unlocked::Duress));
        assert!(with.is_duress_key(&kd, 1 - slot));
        assert!(!with.is_duress_key(&k, slot));
        storage(with.unlock(b"real").unwrap());

        // A new passphrase: the old one opens nothing, the duress one still erases.
        let k_new = with.derive(b"new").unwrap();
        let changed = with.resealed(slot, &k_new, &key, Some(&kd)).unwrap();
        assert!(matches!(
            changed.unlock(b"real"),
            Err(StoreError::WrongPassphrase)
        ));
        assert!(matches!(
            changed.unlock(b"panic").unwrap(),
            Unlocked::Duress
        ));
        storage(changed.unlock(b"new").unwrap());
        let cleared = changed.resealed(slot, &k_new, &key, None).unwrap();
        assert!(matches!(
            cleared.unlock(b"panic"),
            Err(StoreError::WrongPassphrase)
        ));
        // Re-sealing with the same keys still changes both slots (fresh nonces).
        let again = cleared.resealed(slot, &k_new, &key, None).unwrap();
        assert_ne!(again.slots[0], cleared.slots[0]);
        assert_ne!(again.slots[1], cleared.slots[1]);
    }

    #[test]
    fn format_one_and_garbage_are_refused_clearly() {
        let old = passphrase::seal(b"p", &[1; 32], b"x", KdfParams::TESTING, &mut OsRng).unwrap();
        assert!(matches!(
            KeyFile::parse(&old, Path::new("/h")),
            Err(StoreError::Incompatible { .. })
        ));
        assert!(KeyFile::parse(b"LKSK\x02short", Path::new("/h")).is_err());
        assert!(KeyFile::parse(&[0; KEY_FILE_LEN], Path::new("/h")).is_err());
    }
}
