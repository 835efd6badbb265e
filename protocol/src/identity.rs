//! Member identities: an Ed25519 signing key and a separate X25519 key for receiving epoch keys.
//!
//! The X25519 public key is signed by the Ed25519 key, so whoever holds a [`PublicIdentity`] can
//! check that both halves belong together. The X25519 key is rotated periodically
//! ([`agreement_policy`], published as a `RotateAgreementKey` membership op): the identity keeps
//! the retired secrets only for a bounded overlap ([`AGREEMENT_OVERLAP_SECS`], at most
//! [`MAX_RETIRED_AGREEMENTS`]) so deliveries sealed to them in flight still open, then destroys
//! them, so a key delivery captured off the wire long ago cannot be reopened with a seized
//! identity. The [`MemberId`] is the Ed25519 public key itself:
//! every signature can be checked from the id alone, and the libp2p peer id of a member's node is
//! derived from the same key, so a connection can be matched to the roster.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::codec::{self, DecodeError};
use crate::ids::{context, hash, MemberId};
use crate::passphrase::{self, KdfParams, PassphraseError};
use crate::sig;
use crate::textcode::{self, TextCodeError};

/// Prefix of a public identity's text code.
pub const IDENTITY_CODE_PREFIX: &str = "LKID1";
const AGREEMENT_SIG_CONTEXT: &[u8] = b"lookout agreement key v1";
const SEALED_IDENTITY_LABEL: &[u8] = b"lookout identity v1";
const LEGACY_SECRET_LEN: usize = 64;
const SECRET_FORMAT: u8 = 2;
const SIGNING_ONLY_FORMAT: u8 = 3;

/// How often a member's node replaces its X25519 agreement key.
pub const AGREEMENT_ROTATION_SECS: u64 = 7 * 86_400;
/// How long a replaced agreement secret is kept once the collective knows the new key, so
/// deliveries sealed to the old key before the change reached their author still open.
pub const AGREEMENT_OVERLAP_SECS: u64 = 3 * 86_400;
/// Most replaced agreement secrets an identity keeps, whatever their age.
pub const MAX_RETIRED_AGREEMENTS: usize = 2;

/// A device's secret identity. Not `Debug`, not `Clone`; every key is zeroized on drop.
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
    /// When the current agreement key was made (0: at creation, date unknown).
    agreement_created: u64,
    /// Replaced agreement secrets still kept (newest last), with when each was replaced.
    retired: Vec<(StaticSecret, u64)>,
}

/// What [`agreement_policy`] says to do with this device's agreement keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementActions {
    /// Make a new agreement key and publish it (a `RotateAgreementKey` op).
    pub rotate: bool,
    /// Destroy these retired secrets (by public key).
    pub forget: Vec<[u8; 32]>,
}

/// The agreement-key policy, a pure function of `now`: given the identity and the agreement
/// key the collective's roster holds for it (`None` when not a member), rotate when the key the
/// roster holds has been the current one for [`AGREEMENT_ROTATION_SECS`] (or a published
/// rotation never took effect within that time), and destroy a retired secret once the roster
/// no longer names it and [`AGREEMENT_OVERLAP_SECS`] have passed since it was replaced, or when
/// more than [`MAX_RETIRED_AGREEMENTS`] are kept.
pub fn agreement_policy(
    identity: &Identity,
    roster_key: Option<&[u8; 32]>,
    now: u64,
) -> AgreementActions {
    let current = identity.agreement_public();
    let rotate = match roster_key {
        None => false,
        Some(_) => {
            now >= identity
                .agreement_created
                .saturating_add(AGREEMENT_ROTATION_SECS)
        }
    };
    let excess = identity
        .retired
        .len()
        .saturating_sub(MAX_RETIRED_AGREEMENTS);
    let forget = identity
        .retired
        .iter()
        .enumerate()
        .filter_map(|(i, (secret, retired_at))| {
            let public = x25519_dalek::PublicKey::from(secret).to_bytes();
            let in_roster = roster_key == Some(&public);
            let expired = now >= retired_at.saturating_add(AGREEMENT_OVERLAP_SECS);
            ((i < excess || expired) && !in_roster && public != current).then_some(public)
        })
        .collect();
    AgreementActions { rotate, forget }
}

/// The public half of an identity, safe to share with the collective.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// The Ed25519 verifying key, which is also the member id.
    pub member: MemberId,
    /// The X25519 public key epoch keys are sealed to.
    pub agreement: [u8; 32],
    /// Ed25519 signature by `member` over the agreement key.
    #[serde(with = "crate::serde_bytes64")]
    pub agreement_sig: [u8; 64],
}

/// Why an identity could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The member id is not a valid Ed25519 public key, or is one of small order.
    #[error("the member key is not a valid Ed25519 public key")]
    BadMemberKey,
    /// The agreement key is not signed by the member key.
    #[error("the encryption key is not signed by the member key")]
    BadAgreementSignature,
    /// The agreement key has only a small-order component: a key sealed to it would be readable
    /// by anyone, so no share is ever sealed to it.
    #[error("the encryption key is a weak (small-order) key")]
    WeakAgreementKey,
    /// The encoding is broken.
    #[error("identity encoding: {0}")]
    Decode(#[from] DecodeError),
    /// A text code could not be read.
    #[error(transparent)]
    TextCode(#[from] TextCodeError),
    /// A sealed identity could not be opened.
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
}

impl Identity {
    /// Create a fresh identity from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            signing: SigningKey::generate(rng),
            agreement: StaticSecret::random_from_rng(rng),
            agreement_created: 0,
            retired: Vec::new(),
        }
    }

    /// Create a fresh identity at `now` (the date its agreement key's rotation counts from).
    pub fn generate_at<R: RngCore + CryptoRng>(rng: &mut R, now: u64) -> Self {
        let mut identity = Self::generate(rng);
        identity.agreement_created = now;
        identity
    }

    /// Replace the agreement key with a fresh one at `now`, keeping the old secret among the
    /// retired ones (see [`agreement_policy`] for when it is destroyed). Returns the new public
    /// identity, to publish in a `RotateAgreementKey` op.
    pub fn rotate_agreement<R: RngCore + CryptoRng>(
        &mut self,
        now: u64,
        rng: &mut R,
    ) -> PublicIdentity {
        let old = std::mem::replace(&mut self.agreement, StaticSecret::random_from_rng(rng));
        self.retired.push((old, now));
        self.agreement_created = now;
        self.public()
    }

    /// Destroy the retired agreement secret with public key `public`. Returns whether one was
    /// held. The identity must be sealed and stored again for this to reach the disk.
    pub fn forget_agreement(&mut self, public: &[u8; 32]) -> bool {
        let before = self.retired.len();
        self.retired
            .retain(|(s, _)| x25519_dalek::PublicKey::from(s).as_bytes() != public);
        self.retired.len() != before
    }

    /// The current agreement public key.
    pub fn agreement_public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.agreement).to_bytes()
    }

    /// When the current agreement key was made (0 if at creation of an identity made by
    /// [`Identity::generate`]).
    pub fn agreement_created(&self) -> u64 {
        self.agreement_created
    }

    /// Public keys of the retired agreement secrets still held, with when each was replaced.
    pub fn retired_agreements(&self) -> Vec<([u8; 32], u64)> {
        self.retired
            .iter()
            .map(|(s, at)| (x25519_dalek::PublicKey::from(s).to_bytes(), *at))
            .collect()
    }

    /// This identity's member id.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.signing.verifying_key().to_bytes())
    }

    /// The public half, with the agreement key signed.
    pub fn public(&self) -> PublicIdentity {
        let agreement = x25519_dalek::PublicKey::from(&self.agreement).to_bytes();
        let agreement_sig = self
            .signing
            .sign(&sig::signed_message(AGREEMENT_SIG_CONTEXT, &agreement))
            .to_bytes();
        PublicIdentity {
            member: self.member_id(),
            agreement,
            agreement_sig,
        }
    }

    /// Sign `message` under a domain-separation `context` (prepended with its length).
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        self.signing
            .sign(&sig::signed_message(context, message))
            .to_bytes()
    }

    /// The X25519 secret whose public key is `public`: the current one or a retired one still
    /// held, for opening sealed epoch keys.
    pub(crate) fn agreement_secret_for(&self, public: &[u8; 32]) -> Option<&StaticSecret> {
        std::iter::once(&self.agreement)
            .chain(self.retired.iter().map(|(s, _)| s))
            .find(|s| x25519_dalek::PublicKey::from(*s).as_bytes() == public)
    }

    /// The Ed25519 secret seed, for deriving the libp2p transport identity of this device.
    /// Handle with care: it is the whole signing key.
    pub fn ed25519_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Seal the identity under a passphrase (Argon2id + XChaCha20-Poly1305, see
    /// [`crate::passphrase`]). This is the only way to get the secret keys out of memory.
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        passphrase: &[u8],
        params: KdfParams,
        rng: &mut R,
    ) -> Result<Vec<u8>, IdentityError> {
        Ok(passphrase::seal(
            passphrase,
            &self.secret_bytes(),
            SEALED_IDENTITY_LABEL,
            params,
            rng,
        )?)
    }

    /// Open an identity sealed by [`Identity::seal`].
    pub fn unseal(passphrase: &[u8], sealed: &[u8]) -> Result<Self, IdentityError> {
        Self::unseal_with_agreement(passphrase, sealed, None)
    }

    /// Seal only the Ed25519 key under a passphrase, for a store that cannot truly delete
    /// (its old records stay readable with the passphrase): the agreement secrets, which are
    /// replaced and must then be gone, are kept apart ([`Identity::agreement_keys`]).
    pub fn seal_without_agreement<R: RngCore + CryptoRng>(
        &self,
        passphrase: &[u8],
        params: KdfParams,
        rng: &mut R,
    ) -> Result<Vec<u8>, IdentityError> {
        let mut secret = Zeroizing::new(Vec::with_capacity(33));
        secret.push(SIGNING_ONLY_FORMAT);
        secret.extend_from_slice(&self.signing.to_bytes());
        Ok(passphrase::seal(
            passphrase,
            &secret,
            SEALED_IDENTITY_LABEL,
            params,
            rng,
        )?)
    }

    /// The agreement secrets (current, its date, the retired ones) as bytes, to keep in a file
    /// that is overwritten when they change.
    pub fn agreement_keys(&self) -> Zeroizing<Vec<u8>> {
        let all = self.secret_bytes();
        Zeroizing::new(all[33..].to_vec())
    }

    /// Open an identity sealed by [`Identity::seal`] or [`Identity::seal_without_agreement`],
    /// with its agreement secrets from `agreement_keys` ([`Identity::agreement_keys`]) when
    /// given (required for the latter).
    pub fn unseal_with_agreement(
        passphrase: &[u8],
        sealed: &[u8],
        agreement_keys: Option<&[u8]>,
    ) -> Result<Self, IdentityError> {
        let secret = passphrase::open(passphrase, sealed, SEALED_IDENTITY_LABEL)?;
        let seed: &[u8] = match (secret.len(), secret.first()) {
            (LEGACY_SECRET_LEN, _) => &secret[..32],
            (33, Some(&SIGNING_ONLY_FORMAT)) => &secret[1..],
            _ => &secret[1..33.min(secret.len())],
        };
        match agreement_keys {
            Some(keys) => {
                let mut all = Zeroizing::new(Vec::with_capacity(33 + keys.len()));
                all.push(SECRET_FORMAT);
                all.extend_from_slice(seed);
                all.extend_from_slice(keys);
                Self::from_secret_bytes(&all)
            }
            None if secret.len() == 33 => {
                Err(DecodeError::Invalid("the identity's encryption keys are missing").into())
            }
            None => Self::from_secret_bytes(&secret),
        }
    }

    /// Whether this identity holds the agreement secret of `public` (current or retired).
    pub fn holds_agreement(&self, public: &[u8; 32]) -> bool {
        self.agreement_secret_for(public).is_some()
    }

    /// The secret keys as sealed: format byte 2, the Ed25519 seed, the current X25519 secret,
    /// its creation date (u64le), the number of retired secrets, then each secret and the date
    /// it was replaced. (Format 1, 64 bytes: seed and X25519 secret only, is still read.)
    fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(74 + 40 * self.retired.len()));
        out.push(SECRET_FORMAT);
        out.extend_from_slice(&self.signing.to_bytes());
        out.extend_from_slice(&self.agreement.to_bytes());
        out.extend_from_slice(&self.agreement_created.to_le_bytes());
        out.push(u8::try_from(self.retired.len()).unwrap_or(u8::MAX));
        for (secret, at) in self.retired.iter().take(usize::from(u8::MAX)) {
            out.extend_from_slice(&secret.to_bytes());
            out.extend_from_slice(&at.to_le_bytes());
        }
        out
    }

    fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let wrong =
            || IdentityError::from(DecodeError::Invalid("sealed identity has the wrong length"));
        let key = |b: &[u8]| -> Zeroizing<[u8; 32]> {
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(b);
            k
        };
        let date = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        if bytes.len() == LEGACY_SECRET_LEN {
            return Ok(Self {
                signing: SigningKey::from_bytes(&key(&bytes[..32])),
                agreement: StaticSecret::from(*key(&bytes[32..])),
                agreement_created: 0,
                retired: Vec::new(),
            });
        }
        if bytes.len() < 74 || bytes[0] != SECRET_FORMAT {
            return Err(wrong());
        }
        let count = usize::from(bytes[73]);
        if bytes.len() != 74 + 40 * count {
            return Err(wrong());
        }
        let retired = bytes[74..]
            .chunks_exact(40)
            .map(|c| (StaticSecret::from(*key(&c[..32])), date(&c[32..])))
            .collect();
        Ok(Self {
            signing: SigningKey::from_bytes(&key(&bytes[1..33])),
            agreement: StaticSecret::from(*key(&bytes[33..65])),
            agreement_created: date(&bytes[65..73]),
            retired,
        })
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("member", &self.member_id())
            .finish_non_exhaustive()
    }
}

impl PublicIdentity {
    /// Check that the member key is a valid point not of small order, and that it signed the
    /// agreement key.
    pub fn verify(&self) -> Result<(), IdentityError> {
        // Explicit: ZIP-215 alone accepts a small-order key (which "signs" every message), and
        // a key with a torsion component or a second encoding (another id for one secret).
        if !sig::admissible_key(&self.member.0) {
            return Err(IdentityError::BadMemberKey);
        }
        if !sig::verify(
            &self.member.0,
            AGREEMENT_SIG_CONTEXT,
            &self.agreement,
            &self.agreement_sig,
        ) {
            return Err(IdentityError::BadAgreementSignature);
        }
        if !is_contributory(&self.agreement) {
            return Err(IdentityError::WeakAgreementKey);
        }
        Ok(())
    }

    /// The fingerprint to compare aloud when vetting in person: 20 digits in groups of five.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.member, &self.agreement)
    }

    /// A one-line text code for this identity.
    pub fn to_code(&self) -> String {
        textcode::encode(IDENTITY_CODE_PREFIX, &codec::encode(self))
    }

    /// Parse and verify a text code made by [`PublicIdentity::to_code`].
    pub fn from_code(code: &str) -> Result<Self, IdentityError> {
        let bytes = textcode::decode(IDENTITY_CODE_PREFIX, code)?;
        let identity: Self = codec::decode(&bytes, 256)?;
        identity.verify()?;
        Ok(identity)
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// The fingerprint of a member id and agreement key (see [`PublicIdentity::fingerprint`]).
pub fn fingerprint(member: &MemberId, agreement: &[u8; 32]) -> String {
    let digest = hash(context::FINGERPRINT, &[&member.0, agreement]);
    digest
        .chunks(5)
        .take(4)
        .map(|chunk| {
            let value = chunk
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            format!("{:05}", value % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether X25519 with `agreement` gives a secret that depends on the private scalar. A clamped
/// scalar is a multiple of 8, so it sends a point with only a small-order component (there are a
/// handful, with several encodings each) to zero, and every other point to a non-zero value.
///
/// Asked as "is \[8\]P the identity", with X25519's own ladder and decoding of `u` (top bit
/// ignored, non-canonical values reduced) over the bits of 8: three doublings instead of a whole
/// X25519 (which was 18 % of the 1,000-replica simulation's CPU: every op admitting a member or
/// rotating a key is checked once per replica). The same answer for every input: X25519 with
/// any clamped scalar c gives zero exactly when c·P is the identity, i.e. when P's order divides
/// c. P's order divides 8ℓ (on the curve) or 4ℓ' (on its twist), ℓ > 2^252 and ℓ' > 2^253 prime;
/// c is a multiple of 8 below 2^255, so neither ℓ nor ℓ' divides it (c = mℓ with 8 | m would be
/// at least 8ℓ > 2^255), and the order divides c exactly when it divides 8. Checked against
/// X25519 on every small-order encoding and random keys
/// (`contributory_is_x25519_nonzero_for_every_small_order_encoding_and_random_keys`).
fn is_contributory(agreement: &[u8; 32]) -> bool {
    let eight = [true, false, false, false];
    curve25519_dalek::MontgomeryPoint(*agreement)
        .mul_bits_be(eight.into_iter())
        .to_bytes()
        != [0u8; 32]
}

/// Verify a signature made by [`Identity::sign`] by `member`: [`sig::verify`] (the one rule).
pub fn verify(member: &MemberId, context: &[u8], message: &[u8], signature: &[u8; 64]) -> bool {
    sig::verify(&member.0, context, message, signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A member signing a small-order agreement key (in a join request or a rotation) is
    /// refused: a share sealed to it would open for anyone.
    #[test]
    fn a_signed_small_order_agreement_key_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let id = Identity::generate(&mut rng);
        let mut order_four = [0u8; 32];
        order_four[0] = 1; // u = 1: a point of order 4
        for agreement in [[0u8; 32], order_four] {
            let mut public = id.public();
            public.agreement = agreement;
            public.agreement_sig = id
                .signing
                .sign(&sig::signed_message(AGREEMENT_SIG_CONTEXT, &agreement))
                .to_bytes();
            assert!(matches!(
                public.verify(),
                Err(IdentityError::WeakAgreementKey)
            ));
        }
        id.public().verify().unwrap();
    }

    /// The old check: a whole X25519 with a fixed clamped scalar, then "was it contributory".
    fn contributory_by_x25519(agreement: &[u8; 32]) -> bool {
        StaticSecret::from([0x5a; 32])
            .diffie_hellman(&x25519_dalek::PublicKey::from(*agreement))
            .was_contributory()
    }

    /// Every encoding of a point of order dividing 8 on the curve or its twist: u = 0, 1, p − 1
    /// and the two u of order 8, each also as u + p where that is below 2^255, and each of those
    /// with the ignored top bit set; then random strings and real agreement keys.
    #[test]
    fn contributory_is_x25519_nonzero_for_every_small_order_encoding_and_random_keys() {
        let hex = |s: &str| -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
            }
            out
        };
        let mut small = vec![
            [0u8; 32],
            hex("0100000000000000000000000000000000000000000000000000000000000000"),
            hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p - 1
            hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p
            hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p + 1
            hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ];
        for u in small.clone() {
            let mut high = u;
            high[31] |= 0x80;
            small.push(high);
        }
        for u in &small {
            assert!(!contributory_by_x25519(u), "{u:?} is small order");
            assert_eq!(is_contributory(u), contributory_by_x25519(u), "{u:?}");
        }
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..2_000 {
            let mut u = [0u8; 32];
            rng.fill_bytes(&mut u);
            assert_eq!(is_contributory(&u), contributory_by_x25519(&u), "{u:?}");
            let key = Identity::generate(&mut rng).public().agreement;
            assert!(is_contributory(&key));
            assert!(contributory_by_x25519(&key));
        }
    }

    #[test]
    fn public_identity_verifies_and_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = Identity::generate(&mut rng);
        let public = id.public();
        public.verify().unwrap();
        let code = public.to_code();
        assert!(code.starts_with("LKID1-"));
        assert_eq!(PublicIdentity::from_code(&code).unwrap(), public);
        let fp = public.fingerprint();
        assert_eq!(fp.len(), 23);
        assert!(fp.chars().all(|c| c.is_ascii_digit() || c == ' '));
    }

    #[test]
    fn swapped_agreement_key_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let a = Identity::generate(&mut rng).public();
        let b = Identity::generate(&mut rng).public();
        let forged = PublicIdentity {
            agreement: b.agreement,
            ..a
        };
        assert!(matches!(
            forged.verify(),
            Err(IdentityError::BadAgreementSignature)
        ));
    }

    #[test]
    fn a_small_order_member_key_is_refused() {
        // Key = the identity point, R = the identity, S = 0: the cofactored equation holds for
        // every message, so ZIP-215 alone would call it a valid identity that signs anything.
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let honest = Identity::generate(&mut rng).public();
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let mut agreement_sig = [0u8; 64];
        agreement_sig[0] = 1;
        let forged = PublicIdentity {
            member: MemberId(identity_point),
            agreement_sig,
            ..honest
        };
        assert!(matches!(forged.verify(), Err(IdentityError::BadMemberKey)));
        assert!(!verify(&forged.member, b"any", b"thing", &agreement_sig));
    }

    #[test]
    fn a_member_key_with_a_torsion_component_is_refused() {
        // One secret, a second id: A + T (T of order 8) verifies A's holder's signatures under
        // the cofactored rule when the signer hashes A + T. Refused at the door, so a removal
        // or revocation of A leaves no twin behind.
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let honest = Identity::generate(&mut rng).public();
        let secret = Scalar::from_bytes_mod_order([7u8; 32]);
        let twin = (ED25519_BASEPOINT_POINT * secret + EIGHT_TORSION[1])
            .compress()
            .0;
        let message = sig::signed_message(AGREEMENT_SIG_CONTEXT, &honest.agreement);
        let r = Scalar::from_bytes_mod_order([9u8; 32]);
        let big_r = (ED25519_BASEPOINT_POINT * r).compress().0;
        let k = Scalar::from_bytes_mod_order_wide(&{
            let mut h = Sha512::new();
            h.update(big_r);
            h.update(twin);
            h.update(&message);
            h.finalize().into()
        });
        let s = r + k * secret;
        let mut agreement_sig = [0u8; 64];
        agreement_sig[..32].copy_from_slice(&big_r);
        agreement_sig[32..].copy_from_slice(s.as_bytes());
        // The signature holds under the one rule: only the admission check keeps the twin out.
        assert!(sig::verify(
            &twin,
            AGREEMENT_SIG_CONTEXT,
            &honest.agreement,
            &agreement_sig
        ));
        let forged = PublicIdentity {
            member: MemberId(twin),
            agreement_sig,
            ..honest
        };
        assert!(matches!(forged.verify(), Err(IdentityError::BadMemberKey)));
        assert!(honest.verify().is_ok());
    }

    #[test]
    fn sealed_identity_needs_the_passphrase() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = Identity::generate(&mut rng);
        let sealed = id
            .seal(b"correct horse", KdfParams::TESTING, &mut rng)
            .unwrap();
        let back = Identity::unseal(b"correct horse", &sealed).unwrap();
        assert_eq!(back.public(), id.public());
        assert!(Identity::unseal(b"wrong", &sealed).is_err());
    }

    #[test]
    fn signatures_are_domain_separated() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let id = Identity::generate(&mut rng);
        let sig = id.sign(b"ctx one", b"message");
        assert!(verify(&id.member_id(), b"ctx one", b"message", &sig));
        assert!(!verify(&id.member_id(), b"ctx two", b"message", &sig));
        assert!(!verify(&id.member_id(), b"ctx one", b"massage", &sig));
    }
}
