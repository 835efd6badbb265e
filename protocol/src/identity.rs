//! Member identities: an Ed25519 signing key and a separate X25519 key for receiving epoch keys.
//!
//! The X25519 public key is signed by the Ed25519 key, so whoever holds a [`PublicIdentity`] can
//! check that both halves belong together. The [`MemberId`] is the Ed25519 public key itself:
//! every signature can be checked from the id alone, and the libp2p peer id of a member's node is
//! derived from the same key, so a connection can be matched to the roster.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::codec::{self, DecodeError};
use crate::ids::{context, hash, MemberId};
use crate::passphrase::{self, KdfParams, PassphraseError};
use crate::textcode::{self, TextCodeError};

/// Prefix of a public identity's text code.
pub const IDENTITY_CODE_PREFIX: &str = "LKID1";
const AGREEMENT_SIG_CONTEXT: &[u8] = b"lookout agreement key v1";
const SEALED_IDENTITY_LABEL: &[u8] = b"lookout identity v1";
const SECRET_LEN: usize = 64;

/// A device's secret identity. Not `Debug`, not `Clone`; both keys are zeroized on drop.
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
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
    /// The member id is not a valid Ed25519 public key.
    #[error("the member key is not a valid Ed25519 public key")]
    BadMemberKey,
    /// The agreement key is not signed by the member key.
    #[error("the encryption key is not signed by the member key")]
    BadAgreementSignature,
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
        }
    }

    /// This identity's member id.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.signing.verifying_key().to_bytes())
    }

    /// The public half, with the agreement key signed.
    pub fn public(&self) -> PublicIdentity {
        let agreement = x25519_dalek::PublicKey::from(&self.agreement).to_bytes();
        let agreement_sig = self.signing.sign(&agreement_message(&agreement)).to_bytes();
        PublicIdentity {
            member: self.member_id(),
            agreement,
            agreement_sig,
        }
    }

    /// Sign `message` under a domain-separation `context` (prepended with its length).
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        self.signing
            .sign(&signed_message(context, message))
            .to_bytes()
    }

    /// The X25519 secret, for opening sealed epoch keys.
    pub(crate) fn agreement_secret(&self) -> &StaticSecret {
        &self.agreement
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
        let secret = passphrase::open(passphrase, sealed, SEALED_IDENTITY_LABEL)?;
        Self::from_secret_bytes(&secret)
    }

    fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SECRET_LEN));
        out.extend_from_slice(&self.signing.to_bytes());
        out.extend_from_slice(&self.agreement.to_bytes());
        out
    }

    fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() != SECRET_LEN {
            return Err(DecodeError::Invalid("sealed identity has the wrong length").into());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[..32]);
        let mut agreement = Zeroizing::new([0u8; 32]);
        agreement.copy_from_slice(&bytes[32..]);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            agreement: StaticSecret::from(*agreement),
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
    /// Check that the member key is a valid point and that it signed the agreement key.
    pub fn verify(&self) -> Result<(), IdentityError> {
        let key = verifying_key(&self.member).ok_or(IdentityError::BadMemberKey)?;
        let sig = Signature::from_bytes(&self.agreement_sig);
        key.verify_strict(&agreement_message(&self.agreement), &sig)
            .map_err(|_| IdentityError::BadAgreementSignature)
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

/// The verifying key behind a member id, if it is a valid point.
pub(crate) fn verifying_key(member: &MemberId) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&member.0).ok()
}

/// Verify a signature made by [`Identity::sign`], with `verify_strict`.
pub fn verify(member: &MemberId, context: &[u8], message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(key) = verifying_key(member) else {
        return false;
    };
    key.verify_strict(
        &signed_message(context, message),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}

/// The exact bytes an Ed25519 signature covers: context length, context, message.
pub(crate) fn signed_message(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + context.len() + message.len());
    out.push(u8::try_from(context.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(context);
    out.extend_from_slice(message);
    out
}

fn agreement_message(agreement: &[u8; 32]) -> Vec<u8> {
    signed_message(AGREEMENT_SIG_CONTEXT, agreement)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

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
