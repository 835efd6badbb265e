//! Encryption of stored values under the storage key.
//!
//! A stored value is `[VALUE_VERSION] || nonce (24) || ciphertext || tag (16)`,
//! XChaCha20-Poly1305 with a fresh random nonce per write. The associated data
//! is `[VALUE_VERSION] || len(tree name) as u8 || tree name || key`: the
//! length prefix keeps `("ab", "c…")` and `("a", "bc…")` apart, and binding
//! tree and key means a value copied to another entry fails to open.
//!
//! What this does not hide: value lengths (ciphertext = plaintext + 41
//! bytes), the keys themselves, and which entries exist. Nor does it stop
//! an attacker with write access from rolling an entry back to an older value
//! of the same entry or deleting it; the threat it answers is a seized device.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::StoreError;

/// Length of the storage key.
pub(super) const STORAGE_KEY_LEN: usize = 32;

/// Format version byte leading every stored value.
const VALUE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// The random key every value is encrypted under. Zeroized on drop; no
/// `Debug`, no `Clone`.
pub(super) struct StorageKey(Zeroizing<[u8; STORAGE_KEY_LEN]>);

impl StorageKey {
    /// A fresh key from the operating system's generator.
    pub(super) fn generate() -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
        OsRng
            .try_fill_bytes(key.as_mut())
            .map_err(StoreError::Randomness)?;
        Ok(Self(key))
    }

    /// Takes the key out of an opened key file.
    pub(super) fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
        if bytes.len() != STORAGE_KEY_LEN {
            return Err(StoreError::Corrupt {
                what: "the key file holds a key of the wrong length",
            });
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key, for sealing it into the key file.
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Encrypts `value` for the entry `key` of tree `tree_name`.
    pub(super) fn seal_value(
        &self,
        tree_name: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(StoreError::Randomness)?;
        let aad = associated_data(tree_name, key);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            // Only fails for values beyond 256 GiB, which cannot be in memory.
            .map_err(|_| StoreError::Corrupt {
                what: "a value too large to encrypt",
            })?;
        let mut stored = Vec::with_capacity(OVERHEAD + value.len());
        stored.push(VALUE_VERSION);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&ciphertext);
        Ok(stored)
    }

    /// Decrypts what [`Self::seal_value`] produced for the same entry.
    pub(super) fn open_value(
        &self,
        tree_name: &'static str,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let tampered = || StoreError::TamperedValue { tree: tree_name };
        let (&version, rest) = stored.split_first().ok_or_else(tampered)?;
        if version != VALUE_VERSION {
            return Err(tampered());
        }
        let (nonce, ciphertext) = rest.split_first_chunk::<NONCE_LEN>().ok_or_else(tampered)?;
        if ciphertext.len() < TAG_LEN {
            return Err(tampered());
        }
        let aad = associated_data(tree_name, key);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher copies the key and zeroizes its copy on drop.
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }
}

fn associated_data(tree_name: &str, key: &[u8]) -> Vec<u8> {
    // Tree names are short constants (checked in tree.rs tests); saturating
    // keeps this total even so.
    let name_len = u8::try_from(tree_name.len()).unwrap_or(u8::MAX);
    let mut aad = Vec::with_capacity(2 + tree_name.len() + key.len());
    aad.push(VALUE_VERSION);
    aad.push(name_len);
    aad.extend_from_slice(tree_name.as_bytes());
    aad.extend_from_slice(key);
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn value_round_trip_and_binding() {
        let key = StorageKey::generate().unwrap();
        let stored = key.seal_value("alerts", b"k1", b"hello").unwrap();
        assert_eq!(stored.len(), OVERHEAD + 5);
        assert_eq!(
            key.open_value("alerts", b"k1", &stored).unwrap().as_slice(),
            b"hello"
        );
        assert!(key.open_value("alerts", b"k2", &stored).is_err());
        assert!(key.open_value("outbox", b"k1", &stored).is_err());
        // The length prefix separates tree name from key.
        let shifted = key.seal_value("alert", b"sk1", b"hello").unwrap();
        assert!(key.open_value("alerts", b"k1", &shifted).is_err());
        let other = StorageKey::generate().unwrap();
        assert!(other.open_value("alerts", b"k1", &stored).is_err());
    }

    #[test]
    fn short_or_unknown_values_are_errors() {
        let key = StorageKey::generate().unwrap();
        let stored = key.seal_value("meta", b"k", b"").unwrap();
        for len in 0..stored.len() {
            assert!(matches!(
                key.open_value("meta", b"k", &stored[..len]),
                Err(StoreError::TamperedValue { tree: "meta" })
            ));
        }
        let mut wrong_version = stored.clone();
        wrong_version[0] = 2;
        assert!(key.open_value("meta", b"k", &wrong_version).is_err());
        assert!(key.open_value("meta", b"k", &stored).unwrap().is_empty());
    }
}
