//! Encryption of stored entries: keyed-hash keys, padded values, data keys.
//!
//! Everything here is derived from the random 32-byte storage key with BLAKE3's key derivation
//! (one context string per use), so the keys below are independent of each other:
//!
//! - the **entry MAC key**: the sled key of an entry is `BLAKE3-keyed(mac key, len(tree) ||
//!   tree || len(key) || key)`, 32 bytes. Without the storage key a sled key says nothing, and
//!   the same op or content id gets unrelated sled keys in two homes.
//! - the **value key**: a stored value is `[VALUE_VERSION] || nonce (24) || ciphertext || tag
//!   (16)`, XChaCha20-Poly1305 with a fresh random nonce, associated data `[VALUE_VERSION]`.
//!   Its plaintext is `len(tree) u8 || tree || len(key) u8 || key || len(payload) u32 LE ||
//!   payload`, zero-padded to a size bucket ([`padded_len`]): sizes show only a bucket, never
//!   a text's length or the member count. Opening checks that the tree and key inside are the
//!   entry's own, so a value copied to another entry fails.
//! - the **data-key file key**: seals the small file of data keys (see `datakeys.rs`).
//!
//! A value that expires (format 3, [`EXPIRING_VERSION`]) is sealed in **one** layer: `[3] ||
//! nonce (24) || head (8 + tag) || ciphertext || tag`. The head is the expiry bucket (u64 LE)
//! under the value key, associated data `b"lookout expiring head v3" || len(tree) || tree`: the
//! storage key is needed to learn the hour. The ciphertext is under the data key of that
//! bucket, associated data `b"lookout data v3" || len(tree) || tree || bucket u64 LE`, and its
//! plaintext is `len(key) u8 || key || len(value) u32 LE || value`, zero-padded to a size
//! bucket of the finer ladder ([`padded_len_expiring`]: 2^k or 1.5·2^k; before the store's
//! format 3, [`padded_len`]). Both use the same random nonce under two independent keys. So an
//! expiring value costs one pass of the cipher over its bytes instead of two, and says no more
//! than before: without the storage key, its size bucket; with it alone, its tree and hour.
//!
//! Format 2's expiring values (below), written before format 3, are still read; they are not
//! rewritten, and go when their hour's data key is destroyed, as every expiring value does.
//!
//! A payload is `0 || value` (kept under the value key only) or `1 || bucket u64 LE || nonce
//! (24) || ciphertext || tag` for a value that expires. An expiring entry's outer plaintext
//! holds an empty key: its key (an alert id) is inside the inner ciphertext, whose plaintext is
//! `len(key) u8 || key || value`, under the data key of its expiry bucket, associated data
//! `b"lookout data v2" || len(tree) || tree || bucket u64 LE`. Once that data key is destroyed
//! neither the value nor its key can be read, even from old copies sled left in its log, even
//! with the passphrase: the storage key alone shows only that an entry of that tree expiring
//! in that hour existed. (Whoever already knows an id and holds the passphrase can still
//! recompute its keyed-hash sled key and look for it in old sled files: a guess confirmed,
//! never an id revealed.)

use blake3::Hasher;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::StoreError;

/// Length of the storage key and of every key derived from it.
pub(super) const STORAGE_KEY_LEN: usize = 32;

/// Format version byte leading every stored value (1 was the format before keyed hashes).
pub(super) const VALUE_VERSION: u8 = 2;
pub(super) const NONCE_LEN: usize = 24;
pub(super) const TAG_LEN: usize = 16;
/// Bytes a stored value adds to its padded plaintext.
pub(super) const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Smallest padded plaintext.
const MIN_BUCKET: usize = 256;
/// Above this, plaintexts are padded to a multiple of it.
const LARGE_BUCKET: usize = 64 * 1024;

const PAYLOAD_PLAIN: u8 = 0;
const PAYLOAD_DATA_KEY: u8 = 1;
const INNER_LABEL: &[u8] = b"lookout data v2";

/// Version byte leading an expiring value sealed in one layer (see the module's documentation).
pub(super) const EXPIRING_VERSION: u8 = 3;
/// Bytes a one-layer expiring value adds to its padded plaintext: version, nonce, the sealed
/// bucket (8 bytes and a tag) and the tag.
pub(super) const EXPIRING_OVERHEAD: usize = 1 + NONCE_LEN + HEAD_LEN + TAG_LEN;
/// The sealed bucket of a one-layer expiring value.
const HEAD_LEN: usize = 8 + TAG_LEN;
const HEAD_LABEL: &[u8] = b"lookout expiring head v3";
const BODY_LABEL: &[u8] = b"lookout data v3";

/// The size a plaintext of `len` bytes is padded to: the next power of two from 256 bytes up to
/// 64 KiB, then the next multiple of 64 KiB.
pub(super) fn padded_len(len: usize) -> usize {
    if len <= LARGE_BUCKET {
        len.max(MIN_BUCKET).next_power_of_two()
    } else {
        len.div_ceil(LARGE_BUCKET).saturating_mul(LARGE_BUCKET)
    }
}

/// The size the plaintext of a one-layer expiring value of `len` bytes is padded to: the next
/// size of the form 2^k or 3·2^(k−2) (256, 384, 512, 768, 1024, 1536, ...) up to 64 KiB, then the
/// next multiple of 64 KiB. Finer than [`padded_len`] so that a post, kept as its envelope
/// (itself padded to a power of two B, plus about 170 bytes of header and entry fields), takes
/// 1.5·B at rest instead of 2·B: every envelope of one bucket still takes one size, so the size
/// on disk still tells only the envelope's bucket.
pub(super) fn padded_len_expiring(len: usize) -> usize {
    let power = padded_len(len);
    if len > LARGE_BUCKET || power <= MIN_BUCKET {
        return power;
    }
    let between = power / 4 * 3;
    if len <= between {
        between
    } else {
        power
    }
}

/// Every size [`padded_len_expiring`] can give up to `max`, for scanning raw files.
pub(super) fn padded_sizes_expiring(max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut size = MIN_BUCKET;
    while size <= max {
        sizes.push(size);
        size = padded_len_expiring(size + 1);
    }
    sizes
}

/// Every size [`padded_len`] can give up to `max`, for scanning raw files.
pub(super) fn padded_sizes(max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut size = MIN_BUCKET;
    while size <= max {
        sizes.push(size);
        size = padded_len(size + 1);
    }
    sizes
}

/// A 32-byte secret, zeroized on drop; no `Debug`, no `Clone`.
pub(super) struct Secret(Zeroizing<[u8; STORAGE_KEY_LEN]>);

impl Secret {
    /// A fresh secret from the operating system's generator.
    pub(super) fn generate() -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
        OsRng
            .try_fill_bytes(key.as_mut())
            .map_err(StoreError::Randomness)?;
        Ok(Self(key))
    }

    /// Takes a secret out of a slice of the right length.
    pub(super) fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; STORAGE_KEY_LEN]);
        if bytes.len() != STORAGE_KEY_LEN {
            return Err(StoreError::Corrupt {
                what: "a key of the wrong length",
            });
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw bytes, for sealing into a key file.
    pub(super) fn as_bytes(&self) -> &[u8; STORAGE_KEY_LEN] {
        &self.0
    }

    fn derive(&self, context: &str) -> Self {
        Self(Zeroizing::new(blake3::derive_key(context, self.0.as_ref())))
    }

    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher copies the key and zeroizes its copy on drop.
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }
}

/// The random key every value is encrypted under, and the keys derived from it.
pub(super) struct StorageKey {
    raw: Secret,
    mac: Secret,
    values: Secret,
    data_file: Secret,
}

/// An entry opened without knowing its key beforehand (for the forensic scan).
pub(super) struct Opened {
    pub(super) tree: String,
    pub(super) key: Vec<u8>,
    pub(super) payload: Zeroizing<Vec<u8>>,
}

impl StorageKey {
    /// A fresh key from the operating system's generator.
    pub(super) fn generate() -> Result<Self, StoreError> {
        Ok(Self::from_secret(Secret::generate()?))
    }

    /// Takes the key out of an opened key file.
    pub(super) fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        Ok(Self::from_secret(Secret::from_slice(bytes)?))
    }

    fn from_secret(raw: Secret) -> Self {
        Self {
            mac: raw.derive("lookout store 2026 entry mac key"),
            values: raw.derive("lookout store 2026 value key"),
            data_file: raw.derive("lookout store 2026 data-key file key"),
            raw,
        }
    }

    /// The raw key, for sealing it into the key file.
    pub(super) fn as_bytes(&self) -> &[u8; STORAGE_KEY_LEN] {
        self.raw.as_bytes()
    }

    /// The key the data-key file is sealed under.
    pub(super) fn data_file_key(&self) -> &Secret {
        &self.data_file
    }

    /// The sled key of entry `key` in tree `tree_name`: a keyed hash, never the key itself.
    pub(super) fn entry_key(&self, tree_name: &str, key: &[u8]) -> Result<[u8; 32], StoreError> {
        let (tree_len, key_len) = lengths(tree_name, key)?;
        let mut hasher = Hasher::new_keyed(self.mac.as_bytes());
        hasher.update(&[tree_len]);
        hasher.update(tree_name.as_bytes());
        hasher.update(&[key_len]);
        hasher.update(key);
        Ok(*hasher.finalize().as_bytes())
    }

    /// Encrypts `value` for entry `key` of `tree_name`, under the value key only.
    pub(super) fn seal_value(
        &self,
        tree_name: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let mut payload = Zeroizing::new(Vec::with_capacity(1 + value.len()));
        payload.push(PAYLOAD_PLAIN);
        payload.extend_from_slice(value);
        self.seal_payload(tree_name, key, &payload)
    }

    /// Encrypts `key` and `value` under `data_key` (of expiry bucket `bucket`), in one layer
    /// (format 3): without the data key neither the entry's key nor its value can be read, and
    /// without the storage key not even the bucket.
    pub(super) fn seal_expiring(
        &self,
        tree_name: &str,
        key: &[u8],
        value: &[u8],
        bucket: u64,
        data_key: &Secret,
    ) -> Result<Vec<u8>, StoreError> {
        let (_, key_len) = lengths(tree_name, key)?;
        let value_len = u32::try_from(value.len()).map_err(|_| StoreError::Corrupt {
            what: "a value too large to store",
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(StoreError::Randomness)?;
        let nonce_ref = XNonce::from_slice(&nonce);
        let too_large = |_| StoreError::Corrupt {
            what: "a value too large to encrypt",
        };
        let mut head = bucket.to_le_bytes().to_vec();
        self.values
            .cipher()
            .encrypt_in_place(nonce_ref, &head_aad(tree_name), &mut head)
            .map_err(too_large)?;
        let used = 1 + key.len() + 4 + value.len();
        let padded = padded_len_expiring(used);
        let mut stored = Zeroizing::new(Vec::with_capacity(EXPIRING_OVERHEAD + padded));
        stored.push(EXPIRING_VERSION);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&head);
        let body = stored.len();
        stored.push(key_len);
        stored.extend_from_slice(key);
        stored.extend_from_slice(&value_len.to_le_bytes());
        stored.extend_from_slice(value);
        stored.resize(body + padded, 0);
        // Encrypted where it lies: the plaintext is never copied (and the buffer is zeroized
        // on drop should encryption fail).
        let tag = data_key
            .cipher()
            .encrypt_in_place_detached(nonce_ref, &body_aad(tree_name, bucket), &mut stored[body..])
            .map_err(too_large)?;
        stored.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *stored))
    }

    /// The format 2 sealing of an expiring value (two layers: under the data key, then under
    /// the value key with an empty entry key), for tests of stores written before format 3.
    #[cfg(test)]
    pub(super) fn seal_expiring_v2(
        &self,
        tree_name: &str,
        key: &[u8],
        value: &[u8],
        bucket: u64,
        data_key: &Secret,
    ) -> Result<Vec<u8>, StoreError> {
        let (_, key_len) = lengths(tree_name, key)?;
        let mut inner_plain = Zeroizing::new(Vec::with_capacity(1 + key.len() + value.len()));
        inner_plain.push(key_len);
        inner_plain.extend_from_slice(key);
        inner_plain.extend_from_slice(value);
        let inner = seal_with(data_key, &inner_plain, &inner_aad(tree_name, bucket))?;
        let mut payload = Zeroizing::new(Vec::with_capacity(9 + inner.len()));
        payload.push(PAYLOAD_DATA_KEY);
        payload.extend_from_slice(&bucket.to_le_bytes());
        payload.extend_from_slice(&inner);
        self.seal_payload(tree_name, &[], &payload)
    }

    fn seal_payload(
        &self,
        tree_name: &str,
        key: &[u8],
        payload: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let (tree_len, key_len) = lengths(tree_name, key)?;
        let payload_len = u32::try_from(payload.len()).map_err(|_| StoreError::Corrupt {
            what: "a value too large to store",
        })?;
        let used = 2 + tree_name.len() + key.len() + 4 + payload.len();
        let mut plain = Zeroizing::new(Vec::with_capacity(padded_len(used)));
        plain.push(tree_len);
        plain.extend_from_slice(tree_name.as_bytes());
        plain.push(key_len);
        plain.extend_from_slice(key);
        plain.extend_from_slice(&payload_len.to_le_bytes());
        plain.extend_from_slice(payload);
        plain.resize(padded_len(used), 0);
        let sealed = seal_with(&self.values, &plain, &[VALUE_VERSION])?;
        let mut stored = Vec::with_capacity(1 + sealed.len());
        stored.push(VALUE_VERSION);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// Decrypts what [`Self::seal_value`] or [`Self::seal_expiring`] produced for the same
    /// entry. `Ok(Stored::Expiring)` is returned for the second kind; open it with its data key
    /// ([`open_expiring`]) and check the key inside.
    pub(super) fn open_value(
        &self,
        tree_name: &'static str,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Stored, StoreError> {
        let tampered = || StoreError::TamperedValue { tree: tree_name };
        let (key_found, parsed) = self.open_entry(tree_name, stored).ok_or_else(tampered)?;
        // A plain value names its key here; an expiring one inside its data-key layer (checked
        // by the caller once opened).
        let key_here: &[u8] = match parsed {
            Stored::Plain(_) => key,
            Stored::Expiring { .. } => &[],
        };
        if key_found != key_here {
            return Err(tampered());
        }
        Ok(parsed)
    }

    /// Decrypts a stored value of tree `tree_name`, of either format, as far as the storage key
    /// goes: the key it names (empty for an expiring value, whose key is under its data key)
    /// and what it holds. `None` if it is not a value of that tree.
    pub(super) fn open_entry(&self, tree_name: &str, stored: &[u8]) -> Option<(Vec<u8>, Stored)> {
        match stored.first()? {
            &EXPIRING_VERSION => {
                let bucket = self.open_head(tree_name, stored)?;
                // nonce || ciphertext || tag, as `seal_with` lays it out.
                let nonce = stored.get(1..1 + NONCE_LEN)?;
                let body = stored.get(1 + NONCE_LEN + HEAD_LEN..)?;
                // The one copy a read makes: opened in place by `open_expiring`.
                let mut sealed = Vec::with_capacity(NONCE_LEN + body.len());
                sealed.extend_from_slice(nonce);
                sealed.extend_from_slice(body);
                Some((
                    Vec::new(),
                    Stored::Expiring {
                        bucket,
                        sealed,
                        layers: Layers::One,
                    },
                ))
            }
            _ => {
                let opened = self.open_any(stored)?;
                if opened.tree != tree_name {
                    return None;
                }
                Some((opened.key, Stored::parse(&opened.payload)?))
            }
        }
    }

    /// The expiry bucket of a one-layer expiring value of tree `tree_name` (its first
    /// [`EXPIRING_OVERHEAD`] − tag bytes suffice), if its head opens.
    pub(super) fn open_head(&self, tree_name: &str, stored: &[u8]) -> Option<u64> {
        let (&version, rest) = stored.split_first()?;
        if version != EXPIRING_VERSION {
            return None;
        }
        let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
        let head = rest.get(..HEAD_LEN)?;
        let bucket = self
            .values
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: head,
                    aad: &head_aad(tree_name),
                },
            )
            .ok()?;
        Some(u64::from_le_bytes(bucket.as_slice().try_into().ok()?))
    }

    /// Decrypts a stored value whatever entry it belongs to: its tree, key and payload.
    pub(super) fn open_any(&self, stored: &[u8]) -> Option<Opened> {
        let (&version, sealed) = stored.split_first()?;
        if version != VALUE_VERSION {
            return None;
        }
        let plain = open_with(&self.values, sealed, &[VALUE_VERSION])?;
        let mut reader = Reader(&plain);
        let tree_len = reader.byte()?;
        let tree = String::from_utf8(reader.take(usize::from(tree_len))?.to_vec()).ok()?;
        let key_len = reader.byte()?;
        let key = reader.take(usize::from(key_len))?.to_vec();
        let payload_len = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
        let payload = reader.take(usize::try_from(payload_len).ok()?)?;
        Some(Opened {
            tree,
            key,
            payload: Zeroizing::new(payload.to_vec()),
        })
    }
}

/// A decrypted payload.
pub(super) enum Stored {
    /// The value itself.
    Plain(Zeroizing<Vec<u8>>),
    /// A value sealed under the data key of `bucket`: `nonce || ciphertext || tag`.
    Expiring {
        bucket: u64,
        sealed: Vec<u8>,
        layers: Layers,
    },
}

/// How an expiring value was sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layers {
    /// Format 2: under the data key inside a value-key layer; plaintext `len(key) || key ||
    /// value`.
    Two,
    /// Format 3: under the data key alone, the bucket in a value-key head; plaintext `len(key)
    /// || key || len(value) u32 LE || value`, zero-padded.
    One,
}

impl Stored {
    pub(super) fn parse(payload: &[u8]) -> Option<Self> {
        let (&kind, rest) = payload.split_first()?;
        match kind {
            PAYLOAD_PLAIN => Some(Self::Plain(Zeroizing::new(rest.to_vec()))),
            PAYLOAD_DATA_KEY => {
                let (bucket, sealed) = rest.split_first_chunk::<8>()?;
                Some(Self::Expiring {
                    bucket: u64::from_le_bytes(*bucket),
                    sealed: sealed.to_vec(),
                    layers: Layers::Two,
                })
            }
            _ => None,
        }
    }
}

/// Opens the inner ciphertext of an expiring value of `tree_name` and `bucket` with its data
/// key: the entry's key and value.
///
/// `sealed` is decrypted where it lies and the value moved to its front: a read allocates no
/// buffer beyond the one the caller copied the stored bytes into (a listing of every alert
/// reads each post once, docs/BENCHMARKS.md "store2").
pub(super) fn open_expiring(
    data_key: &Secret,
    tree_name: &str,
    bucket: u64,
    sealed: Vec<u8>,
    layers: Layers,
) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let aad = match layers {
        Layers::Two => inner_aad(tree_name, bucket),
        Layers::One => body_aad(tree_name, bucket),
    };
    // Zeroized on drop whatever happens: it holds plaintext once decrypted.
    let mut plain = Zeroizing::new(sealed);
    let body = plain.len().checked_sub(TAG_LEN)?.checked_sub(NONCE_LEN)?;
    let (nonce, rest) = plain.split_at_mut(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at_mut(body);
    data_key
        .cipher()
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &aad,
            ciphertext,
            chacha20poly1305::Tag::from_slice(tag),
        )
        .ok()?;
    let mut reader = Reader(ciphertext);
    let key_len = reader.byte()?;
    let key = reader.take(usize::from(key_len))?.to_vec();
    let value_len = match layers {
        Layers::Two => {
            let rest = reader.0.len();
            reader.take(rest)?;
            rest
        }
        Layers::One => {
            let value_len = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
            let value_len = usize::try_from(value_len).ok()?;
            let value = reader.take(value_len)?;
            // The padding is zeros (authenticated anyway; checked so a value has one form).
            if reader.0.iter().any(|b| *b != 0) {
                return None;
            }
            value.len()
        }
    };
    let start = body - reader.0.len() - value_len;
    let start = NONCE_LEN + start;
    plain.copy_within(start..start + value_len, 0);
    plain.truncate(value_len);
    Some((key, plain))
}

/// `nonce || ciphertext || tag` of `plain` under `key`.
pub(super) fn seal_with(key: &Secret, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(StoreError::Randomness)?;
    let ciphertext = key
        .cipher()
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        // Only fails for values beyond 256 GiB, which cannot be in memory.
        .map_err(|_| StoreError::Corrupt {
            what: "a value too large to encrypt",
        })?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Opens what [`seal_with`] made.
pub(super) fn open_with(key: &Secret, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (nonce, ciphertext) = sealed.split_first_chunk::<NONCE_LEN>()?;
    if ciphertext.len() < TAG_LEN {
        return None;
    }
    key.cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

fn lengths(tree_name: &str, key: &[u8]) -> Result<(u8, u8), StoreError> {
    match (u8::try_from(tree_name.len()), u8::try_from(key.len())) {
        (Ok(tree_len), Ok(key_len)) => Ok((tree_len, key_len)),
        _ => Err(StoreError::Corrupt {
            what: "a store key longer than 255 bytes",
        }),
    }
}

fn inner_aad(tree_name: &str, bucket: u64) -> Vec<u8> {
    // Tree names are short constants; saturating keeps this total.
    let mut aad = Vec::with_capacity(INNER_LABEL.len() + 1 + tree_name.len() + 8);
    aad.extend_from_slice(INNER_LABEL);
    aad.push(u8::try_from(tree_name.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(tree_name.as_bytes());
    aad.extend_from_slice(&bucket.to_le_bytes());
    aad
}

/// Associated data of a one-layer expiring value's head (its bucket, under the value key).
fn head_aad(tree_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEAD_LABEL.len() + 1 + tree_name.len());
    aad.extend_from_slice(HEAD_LABEL);
    aad.push(u8::try_from(tree_name.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(tree_name.as_bytes());
    aad
}

/// Associated data of a one-layer expiring value's body (under its bucket's data key).
fn body_aad(tree_name: &str, bucket: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(BODY_LABEL.len() + 1 + tree_name.len() + 8);
    aad.extend_from_slice(BODY_LABEL);
    aad.push(u8::try_from(tree_name.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(tree_name.as_bytes());
    aad.extend_from_slice(&bucket.to_le_bytes());
    aad
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn plain(stored: Stored) -> Vec<u8> {
        match stored {
            Stored::Plain(v) => v.to_vec(),
            Stored::Expiring { .. } => panic!("expected a plain value"),
        }
    }

    #[test]
    fn value_round_trip_and_binding() {
        let key = StorageKey::generate().unwrap();
        let stored = key.seal_value("alerts", b"k1", b"hello").unwrap();
        assert_eq!(stored.len(), OVERHEAD + MIN_BUCKET);
        assert_eq!(
            plain(key.open_value("alerts", b"k1", &stored).unwrap()),
            b"hello"
        );
        assert!(key.open_value("alerts", b"k2", &stored).is_err());
        assert!(key.open_value("outbox", b"k1", &stored).is_err());
        let shifted = key.seal_value("alert", b"sk1", b"hello").unwrap();
        assert!(key.open_value("alerts", b"k1", &shifted).is_err());
        let other = StorageKey::generate().unwrap();
        assert!(other.open_value("alerts", b"k1", &stored).is_err());
    }

    #[test]
    fn sizes_show_only_a_bucket() {
        let key = StorageKey::generate().unwrap();
        let short = key.seal_value("alerts", b"k", &[7; 10]).unwrap();
        let longer = key.seal_value("alerts", b"k", &[7; 200]).unwrap();
        assert_eq!(short.len(), longer.len());
        let big = key.seal_value("alerts", b"k", &[7; 300]).unwrap();
        assert_eq!(big.len(), OVERHEAD + 512);
        assert_eq!(padded_len(70_000), 128 * 1024);
        assert_eq!(padded_sizes(2048), vec![256, 512, 1024, 2048]);
    }

    /// One-layer expiring values take the finer ladder (2^k and 1.5·2^k): a post kept as its
    /// envelope takes 1.5 times its envelope's bucket, and every envelope of one bucket the same
    /// size, whatever its header's varints.
    #[test]
    fn expiring_values_show_only_a_bucket_of_the_finer_ladder() {
        assert_eq!(
            padded_sizes_expiring(4096),
            vec![256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096]
        );
        for (len, padded) in [(1, 256), (256, 256), (257, 384), (384, 384), (385, 512)] {
            assert_eq!(padded_len_expiring(len), padded, "{len}");
        }
        assert_eq!(padded_len_expiring(70_000), 128 * 1024);
        assert_eq!(padded_len_expiring(49_153), 64 * 1024);
        let key = StorageKey::generate().unwrap();
        let data_key = Secret::generate().unwrap();
        // An envelope is its bucket B plus 131 to 136 bytes; its record one more byte.
        for bucket in [512, 1024, 2048, 4096, 8192] {
            let sizes: std::collections::BTreeSet<usize> = (131..=136)
                .map(|extra| {
                    let record = vec![7u8; 1 + bucket + extra];
                    key.seal_expiring("alerts", &[1; 32], &record, 3, &data_key)
                        .unwrap()
                        .len()
                })
                .collect();
            let expected = EXPIRING_OVERHEAD + bucket / 2 * 3;
            assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![expected]);
        }
    }

    #[test]
    fn entry_keys_are_keyed_hashes() {
        let a = StorageKey::generate().unwrap();
        let b = StorageKey::generate().unwrap();
        let id = [9u8; 32];
        assert_ne!(
            a.entry_key("alerts", &id).unwrap(),
            b.entry_key("alerts", &id).unwrap()
        );
        assert_ne!(
            a.entry_key("alerts", &id).unwrap(),
            a.entry_key("outbox", &id).unwrap()
        );
        assert_ne!(a.entry_key("alerts", &id).unwrap(), id);
    }

    #[test]
    fn expiring_values_need_their_data_key() {
        let key = StorageKey::generate().unwrap();
        let data = Secret::generate().unwrap();
        let stored = key
            .seal_expiring("alerts", b"k", b"secret text", 42, &data)
            .unwrap();
        assert_eq!(stored[0], EXPIRING_VERSION);
        let Stored::Expiring {
            bucket,
            sealed,
            layers,
        } = key.open_value("alerts", b"k", &stored).unwrap()
        else {
            panic!("expected an expiring value");
        };
        assert_eq!((bucket, layers), (42, Layers::One));
        let (inner_key, value) =
            open_expiring(&data, "alerts", 42, sealed.clone(), layers).unwrap();
        assert_eq!(inner_key, b"k");
        assert_eq!(value.as_slice(), b"secret text");
        // The storage key alone does not name the entry, and opens it only in its own tree.
        assert!(key.open_entry("alerts", &stored).unwrap().0.is_empty());
        assert!(key.open_entry("outbox", &stored).is_none());
        assert!(key.open_any(&stored).is_none());
        assert!(open_expiring(&data, "outbox", 42, sealed.clone(), layers).is_none());
        assert!(open_expiring(&data, "alerts", 43, sealed.clone(), layers).is_none());
        assert!(open_expiring(&data, "alerts", 42, sealed.clone(), Layers::Two).is_none());
        let other = Secret::generate().unwrap();
        assert!(open_expiring(&other, "alerts", 42, sealed.clone(), layers).is_none());
        assert!(StorageKey::generate()
            .unwrap()
            .open_entry("alerts", &stored)
            .is_none());
        // Any flipped byte is refused: the head, the ciphertext, the tag.
        for at in [0, 5, 30, 50, stored.len() / 2, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[at] ^= 1;
            let opened = key.open_entry("alerts", &bad);
            let Some((_, Stored::Expiring { bucket, sealed, .. })) = opened else {
                continue;
            };
            assert!(open_expiring(&data, "alerts", bucket, sealed.clone(), Layers::One).is_none());
        }
    }

    /// One layer: the value's size shows only its bucket, and the value is sealed once.
    #[test]
    fn expiring_values_are_padded_to_a_bucket() {
        let key = StorageKey::generate().unwrap();
        let data = Secret::generate().unwrap();
        let short = key
            .seal_expiring("alerts", &[1; 32], &[7; 10], 1, &data)
            .unwrap();
        let longer = key
            .seal_expiring("alerts", &[1; 32], &[7; 200], 1, &data)
            .unwrap();
        assert_eq!(short.len(), longer.len());
        assert_eq!(short.len(), EXPIRING_OVERHEAD + MIN_BUCKET);
        let big = key
            .seal_expiring("alerts", &[1; 32], &[7; 1500], 1, &data)
            .unwrap();
        assert_eq!(big.len(), EXPIRING_OVERHEAD + 2048);
    }

    /// Values of format 2 (two layers), written before format 3, still open.
    #[test]
    fn two_layer_expiring_values_still_open() {
        let key = StorageKey::generate().unwrap();
        let data = Secret::generate().unwrap();
        let stored = key
            .seal_expiring_v2("alerts", b"k", b"old text", 42, &data)
            .unwrap();
        assert_eq!(stored[0], VALUE_VERSION);
        let Stored::Expiring {
            bucket,
            sealed,
            layers,
        } = key.open_value("alerts", b"k", &stored).unwrap()
        else {
            panic!("expected an expiring value");
        };
        assert_eq!((bucket, layers), (42, Layers::Two));
        let (inner_key, value) =
            open_expiring(&data, "alerts", 42, sealed.clone(), layers).unwrap();
        assert_eq!(
            (inner_key.as_slice(), value.as_slice()),
            (&b"k"[..], &b"old text"[..])
        );
        assert!(open_expiring(&data, "alerts", 42, sealed.clone(), Layers::One).is_none());
    }

    #[test]
    fn short_or_unknown_values_are_errors() {
        let key = StorageKey::generate().unwrap();
        let stored = key.seal_value("meta", b"k", b"").unwrap();
        for len in [0, 1, 20, 40, stored.len() - 1] {
            assert!(matches!(
                key.open_value("meta", b"k", &stored[..len]),
                Err(StoreError::TamperedValue { tree: "meta" })
            ));
        }
        let mut wrong_version = stored.clone();
        wrong_version[0] = 1;
        assert!(key.open_value("meta", b"k", &wrong_version).is_err());
        assert!(plain(key.open_value("meta", b"k", &stored).unwrap()).is_empty());
    }
}
