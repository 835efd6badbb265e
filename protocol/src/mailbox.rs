//! A mailbox's pairing code: what a moderator pastes to propose a mailbox to the collective.
//!
//! A mailbox is an always-on node (a drop-in centre's PC, a rented server) that stores and
//! forwards the collective's encrypted items and relays connections, holding no key of the
//! collective. It is admitted by the moderators like a member (k approvals of an
//! [`Action::ProposeMailbox`](crate::membership::Action::ProposeMailbox)) and removed by one
//! moderator. Its pairing code `LKMAILBOX1-...` carries its Ed25519 key, the addresses it can be
//! dialled at, and a signature by that key over both (proof that whoever made the code holds the
//! key, so nobody can pair someone else's key with their own addresses).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::identity::signed_message;
use crate::ids::MailboxId;
use crate::textcode::{self, TextCodeError};

/// Prefix of a mailbox pairing code.
pub const MAILBOX_CODE_PREFIX: &str = "LKMAILBOX1";
/// Most addresses a mailbox may announce.
pub const MAX_MAILBOX_ADDRESSES: usize = 4;
/// Most bytes of addresses in all (they travel in a membership op, which has a fixed size).
pub const MAX_MAILBOX_ADDRESS_BYTES: usize = 256;
/// Largest encoded pairing accepted.
const MAX_PAIRING_BYTES: usize = 1024;

const PAIRING_SIG_CONTEXT: &[u8] = b"lookout mailbox pairing v1";

/// Why a mailbox pairing code or a mailbox named in an op was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxError {
    /// The text code could not be read.
    #[error(transparent)]
    TextCode(#[from] TextCodeError),
    /// The bytes inside are not a pairing.
    #[error("mailbox pairing code: {0}")]
    Decode(#[from] DecodeError),
    /// The key is not a usable Ed25519 key.
    #[error("the mailbox key is not a valid key")]
    BadKey,
    /// The signature does not verify: the code was altered or made without the key.
    #[error("the mailbox pairing code's signature does not verify")]
    BadSignature,
    /// The addresses break a rule.
    #[error("mailbox addresses: {0}")]
    Addresses(&'static str),
}

/// A mailbox's identity and addresses, signed by its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxPairing {
    /// The mailbox's Ed25519 verifying key.
    pub mailbox: [u8; 32],
    /// Bare multiaddrs (no `/p2p/` part) it can be dialled at.
    pub addresses: Vec<String>,
    /// When the code was made, seconds since the Unix epoch.
    pub created: u64,
    /// The mailbox key's signature over `(mailbox, addresses, created)`.
    #[serde(with = "crate::serde_bytes64")]
    pub signature: [u8; 64],
}

impl MailboxPairing {
    /// Make a pairing for the mailbox holding `key`.
    pub fn create(
        key: &SigningKey,
        addresses: Vec<String>,
        now: u64,
    ) -> Result<Self, MailboxError> {
        check_addresses(&addresses).map_err(MailboxError::Addresses)?;
        let mailbox = key.verifying_key().to_bytes();
        let message = signed_message(
            PAIRING_SIG_CONTEXT,
            &codec::encode(&(mailbox, &addresses, now)),
        );
        let pairing = Self {
            mailbox,
            addresses,
            created: now,
            signature: key.sign(&message).to_bytes(),
        };
        pairing.verify()?;
        Ok(pairing)
    }

    /// The mailbox id.
    pub fn id(&self) -> MailboxId {
        MailboxId(self.mailbox)
    }

    /// Check the key, the addresses and the signature.
    pub fn verify(&self) -> Result<(), MailboxError> {
        let key = mailbox_key(&self.mailbox).ok_or(MailboxError::BadKey)?;
        check_addresses(&self.addresses).map_err(MailboxError::Addresses)?;
        let message = signed_message(
            PAIRING_SIG_CONTEXT,
            &codec::encode(&(self.mailbox, &self.addresses, self.created)),
        );
        key.verify_strict(
            &message,
            &ed25519_dalek::Signature::from_bytes(&self.signature),
        )
        .map_err(|_| MailboxError::BadSignature)
    }

    /// The text code (`LKMAILBOX1-...`).
    pub fn to_code(&self) -> String {
        textcode::encode(MAILBOX_CODE_PREFIX, &codec::encode(self))
    }

    /// Parse and verify a code made by [`MailboxPairing::to_code`].
    pub fn from_code(code: &str) -> Result<Self, MailboxError> {
        let bytes = textcode::decode(MAILBOX_CODE_PREFIX, code)?;
        let pairing: Self = codec::decode(&bytes, MAX_PAIRING_BYTES)?;
        if codec::encode(&pairing) != bytes {
            return Err(MailboxError::Decode(DecodeError::Invalid(
                "non-canonical encoding",
            )));
        }
        pairing.verify()?;
        Ok(pairing)
    }
}

/// The verifying key behind a mailbox id, if it is a valid point of large order.
pub fn mailbox_key(mailbox: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(mailbox)
        .ok()
        .filter(|key| !key.is_weak())
}

/// Check a mailbox's addresses: at most [`MAX_MAILBOX_ADDRESSES`], at most
/// [`MAX_MAILBOX_ADDRESS_BYTES`] in all, each a bare multiaddr in text form (starting with `/`,
/// printable ASCII, no peer id part: the peer id comes from the admission handshake). Whether
/// each parses as a multiaddr is for the node to check; a bad one is never dialled.
pub fn check_addresses(addresses: &[String]) -> Result<(), &'static str> {
    if addresses.len() > MAX_MAILBOX_ADDRESSES {
        return Err("a mailbox may give at most 4 addresses");
    }
    if addresses.iter().map(String::len).sum::<usize>() > MAX_MAILBOX_ADDRESS_BYTES {
        return Err("a mailbox's addresses may take at most 256 bytes in all");
    }
    for address in addresses {
        if !address.starts_with('/')
            || address.len() < 2
            || !address.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("an address must be a multiaddr such as /ip4/203.0.113.7/tcp/4001");
        }
        if address
            .split('/')
            .any(|part| matches!(part, "p2p" | "ipfs" | "p2p-circuit"))
        {
            return Err("an address must not name a peer id or a relay (no /p2p/ part)");
        }
    }
    let mut sorted: Vec<&String> = addresses.iter().collect();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != addresses.len() {
        return Err("an address is given twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(9))
    }

    #[test]
    fn round_trip() {
        let pairing = MailboxPairing::create(
            &key(),
            vec![
                "/ip4/203.0.113.7/tcp/4001".into(),
                "/dns4/mb.example/udp/4001/quic-v1".into(),
            ],
            1_790_000_000,
        )
        .unwrap();
        let code = pairing.to_code();
        assert!(code.starts_with("LKMAILBOX1-"));
        assert_eq!(MailboxPairing::from_code(&code).unwrap(), pairing);
        assert_eq!(pairing.id().0, key().verifying_key().to_bytes());
    }

    #[test]
    fn altered_or_foreign_codes_are_refused() {
        let mut pairing =
            MailboxPairing::create(&key(), vec!["/ip4/203.0.113.7/tcp/4001".into()], 5).unwrap();
        // Someone else's addresses under the mailbox's key: the signature no longer holds.
        pairing.addresses = vec!["/ip4/198.51.100.1/tcp/4001".into()];
        let code = textcode::encode(MAILBOX_CODE_PREFIX, &codec::encode(&pairing));
        assert_eq!(
            MailboxPairing::from_code(&code),
            Err(MailboxError::BadSignature)
        );
        // Another key claiming the signature.
        let other = SigningKey::from_bytes(&[3; 32]);
        let mut stolen =
            MailboxPairing::create(&key(), vec!["/ip4/203.0.113.7/tcp/4001".into()], 5).unwrap();
        stolen.mailbox = other.verifying_key().to_bytes();
        let code = textcode::encode(MAILBOX_CODE_PREFIX, &codec::encode(&stolen));
        assert_eq!(
            MailboxPairing::from_code(&code),
            Err(MailboxError::BadSignature)
        );
        assert!(matches!(
            MailboxPairing::from_code("LKINVITE1-AAAA"),
            Err(MailboxError::TextCode(TextCodeError::WrongKind { .. }))
        ));
    }

    #[test]
    fn address_rules() {
        assert!(check_addresses(&[]).is_ok());
        assert!(check_addresses(&["/ip4/1.2.3.4/tcp/1".into()]).is_ok());
        assert!(check_addresses(&["/ip4/1.2.3.4/tcp/1/p2p/12D3KooW".into()]).is_err());
        assert!(check_addresses(&["ip4/1.2.3.4".into()]).is_err());
        assert!(check_addresses(&["/ip4/1.2.3.4/tcp/1 x".into()]).is_err());
        assert!(check_addresses(&["/a".into(), "/a".into()]).is_err());
        let five: Vec<String> = (0..5).map(|i| format!("/ip4/1.2.3.{i}/tcp/1")).collect();
        assert!(check_addresses(&five).is_err());
        let long = vec![format!("/dns4/{}/tcp/1", "a".repeat(250))];
        assert!(check_addresses(&long).is_err());
        assert!(MailboxPairing::create(&key(), long, 0).is_err());
        // The identity point is weak: never a mailbox.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(mailbox_key(&identity).is_none());
    }
}
