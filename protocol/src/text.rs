//! Membership text sealed under the collective secret (issue 10, design §1, last bullet).
//!
//! A collective's *secret* is 32 random bytes made at its founding. It travels in invites and
//! is kept by every member's device, never in the genesis record or an op, so a node that holds
//! the genesis and the ops but no invite (a mailbox, or whoever seizes one) reads no name and no
//! removal reason. From it:
//!
//! - [`TextKey`] = KDF(`lookout collective text v1`, secret) seals every display name and removal
//!   reason as a [`SealedText`]: XChaCha20-Poly1305, the plaintext padded to its field's maximum
//!   so lengths say nothing, the associated data binding the field and the author, so a sealed
//!   name cannot be moved to another field or passed off as another author's;
//! - the *secret check* KDF(`lookout collective secret check v1`, secret), which a genesis record
//!   may carry so a joiner given a wrong secret is refused at once;
//! - the hello secret KDF(`lookout hello secret v2`, secret) (`docs/PROTOCOL.md` §9.1).
//!
//! The genesis record (version 3) seals the collective's name and every founding moderator's
//! name, `ProposeAdd` seals the new member's name and `Remove` its reason; the roster holds them
//! as [`SealedName`]s and a device with the secret opens them for display only (the resolver
//! never reads a name). Invites (`LKINVITE2`) carry the secret.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::ids::{hash, MemberId};

/// Key derivation contexts of the collective secret.
pub mod context {
    /// The key membership text is sealed under.
    pub const TEXT_KEY: &str = "lookout collective text v1";
    /// The check value a genesis record carries.
    pub const SECRET_CHECK: &str = "lookout collective secret check v1";
    /// The hello secret (version 2: from the collective secret, not the genesis).
    pub const HELLO_SECRET: &str = "lookout hello secret v2";
}

const TAG_BYTES: usize = 16;

/// A collective's secret: 32 random bytes made at founding, handed on in invites.
#[derive(Clone)]
pub struct CollectiveSecret(Zeroizing<[u8; 32]>);

impl CollectiveSecret {
    /// A fresh secret.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// A secret from its bytes (an invite, the store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, to store sealed or put in an invite.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key membership text is sealed under.
    pub fn text_key(&self) -> TextKey {
        TextKey(Zeroizing::new(hash(context::TEXT_KEY, &[self.0.as_ref()])))
    }

    /// The check value a genesis record carries: tells a right secret from a wrong one without
    /// revealing it.
    pub fn check(&self) -> [u8; 32] {
        hash(context::SECRET_CHECK, &[self.0.as_ref()])
    }

    /// Whether this is the secret a genesis record's `check` was made from (constant time).
    pub fn matches(&self, check: &[u8; 32]) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(&self.check()[..], &check[..]))
    }

    /// The hello secret of the collective.
    pub fn hello_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hash(context::HELLO_SECRET, &[self.0.as_ref()]))
    }
}

impl PartialEq for CollectiveSecret {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]))
    }
}

impl Eq for CollectiveSecret {}

impl std::fmt::Debug for CollectiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CollectiveSecret(..)")
    }
}

/// Which field a sealed text fills: its context and its longest plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextField {
    /// The collective's name (genesis).
    CollectiveName,
    /// A founding moderator's display name (genesis; the founder's too).
    FoundingName,
    /// A proposed member's display name (`ProposeAdd`).
    MemberName,
    /// A removal's reason (`Remove`).
    RemovalReason,
}

impl TextField {
    fn context(self) -> &'static [u8] {
        match self {
            TextField::CollectiveName => b"lookout sealed text collective name v1",
            TextField::FoundingName => b"lookout sealed text founding name v1",
            TextField::MemberName => b"lookout sealed text member name v1",
            TextField::RemovalReason => b"lookout sealed text removal reason v1",
        }
    }

    /// The longest plaintext, in bytes.
    pub fn max_bytes(self) -> usize {
        match self {
            TextField::RemovalReason => crate::membership::MAX_REASON_BYTES,
            _ => crate::membership::MAX_NAME_BYTES,
        }
    }

    /// The exact ciphertext length of this field (padded plaintext, its length, the tag).
    pub fn sealed_bytes(self) -> usize {
        2 + self.max_bytes() + TAG_BYTES
    }
}

/// The key membership text is sealed under.
pub struct TextKey(Zeroizing<[u8; 32]>);

/// Text sealed under a [`TextKey`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SealedText {
    /// Random nonce.
    pub nonce: [u8; 24],
    /// XChaCha20-Poly1305 of `len as u16 LE ‖ text ‖ zeros`, padded to the field's maximum.
    /// Shared, not copied, by the records, proposals and rosters that hold the same text (on
    /// the wire exactly as a `Vec<u8>`).
    #[serde(with = "shared_bytes")]
    pub ciphertext: Arc<[u8]>,
}

/// Serde for `Arc<[u8]>` as the byte sequence a `Vec<u8>` is (serde's own impl needs its `rc`
/// feature).
mod shared_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(bytes: &Arc<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
        bytes[..].serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[u8]>, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(Arc::from)
    }
}

/// Why text could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealTextError {
    /// Longer than the field allows.
    #[error("the text is longer than {0} bytes")]
    TooLong(usize),
}

impl SealedText {
    /// Whether the ciphertext has this field's one length (checked when a record is decoded, so
    /// a sealed text's size says nothing).
    pub fn fits(&self, field: TextField) -> bool {
        self.ciphertext.len() == field.sealed_bytes()
    }
}

/// Associated data: the field's context, the author (who signs the record carrying the text)
/// and the subject (the member the text is about: the named member, the removed member; the
/// founder for the collective's name).
fn aad(field: TextField, author: &MemberId, subject: &MemberId) -> Vec<u8> {
    let context = field.context();
    let mut out = Vec::with_capacity(1 + context.len() + 64);
    out.push(u8::try_from(context.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(context);
    out.extend_from_slice(&author.0);
    out.extend_from_slice(&subject.0);
    out
}

impl TextKey {
    /// Seal `text` for `field`, written by `author` about `subject`.
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        field: TextField,
        author: &MemberId,
        subject: &MemberId,
        text: &str,
        rng: &mut R,
    ) -> Result<SealedText, SealTextError> {
        let max = field.max_bytes();
        if text.len() > max {
            return Err(SealTextError::TooLong(max));
        }
        let mut plain = Zeroizing::new(vec![0u8; 2 + max]);
        let len = u16::try_from(text.len()).map_err(|_| SealTextError::TooLong(max))?;
        plain[..2].copy_from_slice(&len.to_le_bytes());
        plain[2..2 + text.len()].copy_from_slice(text.as_bytes());
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let aad = aad(field, author, subject);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealTextError::TooLong(max))?;
        Ok(SealedText {
            nonce,
            ciphertext: ciphertext.into(),
        })
    }

    /// Open a sealed text of `field` by `author` about `subject`: `None` if it does not open
    /// under this key (a wrong key, another field, author or subject, or a hostile writer's
    /// garbage) or is not valid text.
    pub fn open(
        &self,
        sealed: &SealedText,
        field: TextField,
        author: &MemberId,
        subject: &MemberId,
    ) -> Option<String> {
        if !sealed.fits(field) {
            return None;
        }
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let aad = aad(field, author, subject);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&sealed.nonce),
                    Payload {
                        msg: &sealed.ciphertext[..],
                        aad: &aad,
                    },
                )
                .ok()?,
        );
        let len = usize::from(u16::from_le_bytes([*plain.first()?, *plain.get(1)?]));
        let body = plain.get(2..2 + len)?;
        if plain[2 + len..].iter().any(|b| *b != 0) {
            return None;
        }
        String::from_utf8(body.to_vec()).ok()
    }
}

/// A sealed name or reason as the roster keeps it: the sealed text and what it is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SealedName {
    /// The sealed text.
    pub text: SealedText,
    /// Its field.
    pub field: TextField,
    /// Who signed the record carrying it.
    pub author: MemberId,
    /// Whom it is about.
    pub subject: MemberId,
}

impl SealedName {
    /// The text, if it opens under `key` and is displayable (a name: 1 to 64 bytes without
    /// control or text-direction characters; a reason: no control characters but new lines).
    pub fn open(&self, key: &TextKey) -> Option<String> {
        let text = key.open(&self.text, self.field, &self.author, &self.subject)?;
        let ok = match self.field {
            TextField::RemovalReason => !text
                .chars()
                .any(|c| crate::content::is_unprintable(c, true)),
            _ => crate::membership::check_name(&text).is_ok(),
        };
        ok.then_some(text)
    }

    /// The text to show: opened, or (no key, or it does not open) `unreadable name (<8 hex>)`
    /// of the subject.
    pub fn display(&self, key: Option<&TextKey>) -> String {
        key.and_then(|k| self.open(k))
            .unwrap_or_else(|| unreadable_name(&self.subject))
    }
}

/// How a name that does not open is shown: "unreadable name" and the first 8 hex digits of the
/// id it belongs to.
pub fn unreadable_name(member: &MemberId) -> String {
    format!("unreadable name ({})", &member.to_hex()[..8])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn sealed_text_is_encoded_as_before_and_shared_by_its_clones() {
        let sealed = SealedText {
            nonce: [3; 24],
            ciphertext: vec![7; TextField::MemberName.sealed_bytes()].into(),
        };
        // The wire form of the `Vec<u8>` it was before: a length, then the bytes.
        let before = ([3u8; 24], vec![7u8; TextField::MemberName.sealed_bytes()]);
        let bytes = crate::codec::encode(&sealed);
        assert_eq!(bytes, crate::codec::encode(&before));
        let decoded: SealedText = crate::codec::decode(&bytes, 1024).unwrap();
        assert_eq!(decoded, sealed);
        let copy = decoded.clone();
        assert!(Arc::ptr_eq(&copy.ciphertext, &decoded.ciphertext));
    }

    #[test]
    fn seals_open_only_with_the_key_field_and_author() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let secret = CollectiveSecret::generate(&mut rng);
        let key = secret.text_key();
        let ana = MemberId([1; 32]);
        let bea = MemberId([2; 32]);
        let sealed = key
            .seal(TextField::MemberName, &ana, &bea, "Ana Maria", &mut rng)
            .unwrap();
        assert_eq!(
            key.open(&sealed, TextField::MemberName, &ana, &bea)
                .as_deref(),
            Some("Ana Maria")
        );
        // Another author, another subject, another field: nothing.
        assert_eq!(key.open(&sealed, TextField::MemberName, &bea, &bea), None);
        assert_eq!(key.open(&sealed, TextField::MemberName, &ana, &ana), None);
        assert_eq!(key.open(&sealed, TextField::FoundingName, &ana, &bea), None);
        let other = CollectiveSecret::generate(&mut rng).text_key();
        assert_eq!(other.open(&sealed, TextField::MemberName, &ana, &bea), None);
        // Every name seals to one length, whatever it says; no plaintext byte shows.
        let short = key
            .seal(TextField::MemberName, &ana, &ana, "A", &mut rng)
            .unwrap();
        assert_eq!(short.ciphertext.len(), sealed.ciphertext.len());
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"Ana "));
        let reason = key
            .seal(
                TextField::RemovalReason,
                &ana,
                &bea,
                &"x".repeat(280),
                &mut rng,
            )
            .unwrap();
        assert!(reason.fits(TextField::RemovalReason));
        assert!(key
            .seal(TextField::MemberName, &ana, &ana, &"x".repeat(65), &mut rng)
            .is_err());
        // Garbage of the right length opens to nothing and breaks nothing.
        let garbage = SealedText {
            nonce: [7; 24],
            ciphertext: vec![9; TextField::MemberName.sealed_bytes()].into(),
        };
        assert_eq!(key.open(&garbage, TextField::MemberName, &ana, &ana), None);
        assert_eq!(unreadable_name(&ana), "unreadable name (01010101)");
    }

    #[test]
    fn the_secret_check_and_hello_secret_are_separate() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let secret = CollectiveSecret::generate(&mut rng);
        let wrong = CollectiveSecret::generate(&mut rng);
        assert!(secret.matches(&secret.check()));
        assert!(!wrong.matches(&secret.check()));
        assert_ne!(secret.check(), *secret.hello_secret());
        assert_ne!(secret.check(), *secret.text_key().0);
    }
}
