//! A mailbox's pairing code: what a moderator pastes to propose a mailbox to the collective.
//!
//! A mailbox is an always-on node (a drop-in centre's PC, a rented server) that stores and
//! forwards the collective's encrypted items and relays connections, holding no key of the
//! collective. It is admitted by the moderators like a member (k approvals of an
//! [`Action::ProposeMailbox`](crate::membership::Action::ProposeMailbox)) and removed by one
//! moderator. Its pairing code `LKMAILBOX2-...` carries its Ed25519 key, the addresses it can be
//! dialled at, its bind secret, and a signature by that key over all of them (proof that whoever
//! made the code holds the key, so nobody can pair someone else's key with their own addresses).
//! The bind secret is what lets a moderator's node bind the fresh mailbox to the collective: the
//! mailbox takes a genesis record only from a node that proves it (see the node's
//! `net::mailbox_admission`). The code is therefore shown only to moderators.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::ids::MailboxId;
use crate::sig;
use crate::textcode::{self, TextCodeError};

/// Prefix of a mailbox pairing code.
pub const MAILBOX_CODE_PREFIX: &str = "LKMAILBOX2";
/// Most addresses a mailbox may announce.
pub const MAX_MAILBOX_ADDRESSES: usize = 4;
/// Most bytes of addresses in all (they travel in a membership op, which has a fixed size).
pub const MAX_MAILBOX_ADDRESS_BYTES: usize = 256;
/// Largest encoded pairing accepted.
const MAX_PAIRING_BYTES: usize = 1024;
/// How far in the future a pairing code may be dated and still be taken (clocks differ).
pub const MAX_PAIRING_CLOCK_SKEW: u64 = 3600;
/// How old a pairing code may be when a moderator pastes it: 30 days. An older code may name
/// addresses the mailbox left long ago; its operator prints a fresh one (`lookout mailbox code`).
pub const MAX_PAIRING_AGE: u64 = 30 * 24 * 3600;

const PAIRING_SIG_CONTEXT: &[u8] = b"lookout mailbox pairing v2";

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
    /// The code is dated further in the future than clocks differ.
    #[error("the mailbox pairing code is dated {0} s in the future: check this device's clock and the mailbox's, then print a fresh code")]
    FromTheFuture(u64),
    /// The code is too old to be taken.
    #[error("the mailbox pairing code is {0} days old (at most 30 are accepted): ask the mailbox's operator for a fresh one (`lookout --home DIR mailbox code`)")]
    TooOld(u64),
}

/// A mailbox's identity, addresses and bind secret, signed by its key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxPairing {
    /// The mailbox's Ed25519 verifying key.
    pub mailbox: [u8; 32],
    /// Bare multiaddrs (no `/p2p/` part) it can be dialled at.
    pub addresses: Vec<String>,
    /// When the code was made, seconds since the Unix epoch.
    pub created: u64,
    /// The random secret made by `mailbox init`: whoever proves it may bind the unbound mailbox
    /// to a collective. Only moderators see the code.
    pub bind_secret: [u8; 32],
    /// The mailbox key's signature over `(mailbox, addresses, created, bind_secret)`.
    #[serde(with = "crate::serde_bytes64")]
    pub signature: [u8; 64],
}

impl MailboxPairing {
    /// Make a pairing for the mailbox holding `key` and `bind_secret`.
    pub fn create(
        key: &SigningKey,
        addresses: Vec<String>,
        bind_secret: [u8; 32],
        now: u64,
    ) -> Result<Self, MailboxError> {
        check_addresses(&addresses).map_err(MailboxError::Addresses)?;
        let mailbox = key.verifying_key().to_bytes();
        let message = sig::signed_message(
            PAIRING_SIG_CONTEXT,
            &codec::encode(&(mailbox, &addresses, now, bind_secret)),
        );
        let pairing = Self {
            mailbox,
            addresses,
            created: now,
            bind_secret,
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
        mailbox_key(&self.mailbox).ok_or(MailboxError::BadKey)?;
        check_addresses(&self.addresses).map_err(MailboxError::Addresses)?;
        let body = codec::encode(&(
            self.mailbox,
            &self.addresses,
            self.created,
            self.bind_secret,
        ));
        if sig::verify(&self.mailbox, PAIRING_SIG_CONTEXT, &body, &self.signature) {
            Ok(())
        } else {
            Err(MailboxError::BadSignature)
        }
    }

    /// Whether the code may be taken at `now` (seconds since the Unix epoch): dated at most
    /// [`MAX_PAIRING_CLOCK_SKEW`] ahead and at most [`MAX_PAIRING_AGE`] old. Whoever made the
    /// code chose `created`; only the mailbox key's signature binds it, so this is a check on
    /// the operator's clock and on stale codes, not on an attacker.
    pub fn check_age(&self, now: u64) -> Result<(), MailboxError> {
        if self.created > now.saturating_add(MAX_PAIRING_CLOCK_SKEW) {
            return Err(MailboxError::FromTheFuture(self.created - now));
        }
        let age = now.saturating_sub(self.created);
        if age > MAX_PAIRING_AGE {
            return Err(MailboxError::TooOld(age / 86_400));
        }
        Ok(())
    }

    /// The text code (`LKMAILBOX2-...`).
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

impl std::fmt::Debug for MailboxPairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxPairing")
            .field("mailbox", &hex::encode(self.mailbox))
            .field("addresses", &self.addresses)
            .field("created", &self.created)
            .field("bind_secret", &"(secret)")
            .finish_non_exhaustive()
    }
}

/// The verifying key behind a mailbox id, if it is a valid point of large order.
pub fn mailbox_key(mailbox: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(mailbox)
        .ok()
        .filter(|_| sig::admissible_key(mailbox))
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
            [4; 32],
            1_790_000_000,
        )
        .unwrap();
        let code = pairing.to_code();
        assert!(code.starts_with("LKMAILBOX2-"));
        assert!(
            !format!("{pairing:?}").contains("4, 4"),
            "Debug hides the bind secret"
        );
        assert_eq!(MailboxPairing::from_code(&code).unwrap(), pairing);
        assert_eq!(pairing.id().0, key().verifying_key().to_bytes());
    }

    #[test]
    fn altered_or_foreign_codes_are_refused() {
        let mut pairing =
            MailboxPairing::create(&key(), vec!["/ip4/203.0.113.7/tcp/4001".into()], [1; 32], 5)
                .unwrap();
        // Someone else's addresses under the mailbox's key: the signature no longer holds.
        pairing.addresses = vec!["/ip4/198.51.100.1/tcp/4001".into()];
        let code = textcode::encode(MAILBOX_CODE_PREFIX, &codec::encode(&pairing));
        assert_eq!(
            MailboxPairing::from_code(&code),
            Err(MailboxError::BadSignature)
        );
        // Someone else's bind secret under the mailbox's key: refused too.
        let mut rebound =
            MailboxPairing::create(&key(), vec!["/ip4/203.0.113.7/tcp/4001".into()], [1; 32], 5)
                .unwrap();
        rebound.bind_secret = [2; 32];
        let code = textcode::encode(MAILBOX_CODE_PREFIX, &codec::encode(&rebound));
        assert_eq!(
            MailboxPairing::from_code(&code),
            Err(MailboxError::BadSignature)
        );
        // Another key claiming the signature.
        let other = SigningKey::from_bytes(&[3; 32]);
        let mut stolen =
            MailboxPairing::create(&key(), vec!["/ip4/203.0.113.7/tcp/4001".into()], [1; 32], 5)
                .unwrap();
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
    fn codes_from_the_future_or_too_old_are_refused() {
        let now = 1_790_000_000;
        let at = |created| {
            MailboxPairing::create(
                &key(),
                vec!["/ip4/203.0.113.7/tcp/4001".into()],
                [1; 32],
                created,
            )
            .unwrap()
            .check_age(now)
        };
        assert_eq!(at(now), Ok(()));
        assert_eq!(at(now + MAX_PAIRING_CLOCK_SKEW), Ok(()));
        assert_eq!(at(now - MAX_PAIRING_AGE), Ok(()));
        assert_eq!(
            at(now + MAX_PAIRING_CLOCK_SKEW + 1),
            Err(MailboxError::FromTheFuture(MAX_PAIRING_CLOCK_SKEW + 1))
        );
        assert_eq!(
            at(u64::MAX),
            Err(MailboxError::FromTheFuture(u64::MAX - now))
        );
        assert_eq!(at(now - MAX_PAIRING_AGE - 1), Err(MailboxError::TooOld(30)));
        assert_eq!(at(0), Err(MailboxError::TooOld(now / 86_400)));
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
        assert!(MailboxPairing::create(&key(), long, [1; 32], 0).is_err());
        // The identity point is weak: never a mailbox.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(mailbox_key(&identity).is_none());
    }
}
