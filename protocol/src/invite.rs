//! The two codes of enrolment: a join request (new member to moderator) and an invite (moderator
//! to new member).
//!
//! In person, the new member shows a [`JoinRequest`] code (or its QR); the moderator compares the
//! fingerprint aloud, then approves. Once admitted, the moderator hands back an [`Invite`]: the
//! collective's signed genesis record, its secret and where the moderator's node can be reached. Both codes
//! are checksummed text (see [`crate::textcode`]).

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::identity::PublicIdentity;
use crate::membership::{OpError, SignedGenesis, MAX_GENESIS_BYTES, MAX_NAME_BYTES};
use crate::text::CollectiveSecret;
use crate::textcode;
use crate::MemberId;

/// Prefix of a join request code.
pub const JOIN_CODE_PREFIX: &str = "LKJOIN1";
/// Prefix of an invite code (version 2: carries the collective secret).
pub const INVITE_CODE_PREFIX: &str = "LKINVITE2";
/// Prefix of the first invite codes (no collective secret), refused with
/// [`OpError::OldInvite`].
pub const OLD_INVITE_CODE_PREFIX: &str = "LKINVITE1";
/// Most bootstrap addresses in an invite.
pub const MAX_INVITE_ADDRESSES: usize = 8;

/// A new member's request to join: their public identity and chosen display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Public keys.
    pub identity: PublicIdentity,
    /// Display name (a pseudonym is best).
    pub name: String,
}

impl JoinRequest {
    /// The text code.
    pub fn to_code(&self) -> String {
        textcode::encode(JOIN_CODE_PREFIX, &codec::encode(self))
    }

    /// Parse and verify a text code.
    pub fn from_code(code: &str) -> Result<Self, OpError> {
        let bytes = textcode::decode(JOIN_CODE_PREFIX, code)?;
        let request: Self = codec::decode(&bytes, 512)?;
        request.identity.verify()?;
        if request.name.trim().is_empty() || request.name.len() > MAX_NAME_BYTES {
            return Err(OpError::Structure("names must be 1 to 64 bytes"));
        }
        Ok(request)
    }
}

/// What a newly admitted member needs to join: the collective, its secret and where to find it.
/// The code is as secret as the collective: whoever reads it can read every member's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The collective's signed genesis record (its hash is the collective id).
    pub genesis: SignedGenesis,
    /// The collective secret: names are sealed under it and the hello secret comes from it. It
    /// matches the genesis record's check ([`Invite::from_code`] refuses one that does not).
    pub secret: CollectiveSecret,
    /// Multiaddresses of the inviting node (bare: transport identities change every run).
    pub addresses: Vec<String>,
    /// The member who made the invite: the only member the joining node admits at
    /// [`Invite::addresses`] before its roster names that member.
    pub inviter: Option<MemberId>,
}

/// The invite on the wire (`LKINVITE2`): genesis, secret, addresses, inviter (all zero: none).
#[derive(Serialize, Deserialize)]
struct InviteWire {
    genesis: Vec<u8>,
    secret: [u8; 32],
    addresses: Vec<String>,
    inviter: [u8; 32],
}

/// The wire form's own copy of the secret is wiped when it goes, on both paths (encode and
/// decode), not only a copy of it.
impl Drop for InviteWire {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl Invite {
    /// The text code.
    pub fn to_code(&self) -> String {
        let wire = InviteWire {
            genesis: self.genesis.encoded().to_vec(),
            secret: *self.secret.as_bytes(),
            addresses: self.addresses.clone(),
            inviter: self.inviter.map(|m| m.0).unwrap_or([0; 32]),
        };
        let payload = zeroize::Zeroizing::new(codec::encode(&wire));
        drop(wire);
        // The returned code holds the secret too: it is printed or shown as a QR code, so the
        // caller owns that copy.
        textcode::encode(INVITE_CODE_PREFIX, &payload)
    }

    /// Parse and verify a text code: an old code (`LKINVITE1`) is refused with
    /// [`OpError::OldInvite`], a secret that does not match the genesis record's check with
    /// [`OpError::WrongSecret`].
    pub fn from_code(code: &str) -> Result<Self, OpError> {
        if code
            .trim()
            .get(..OLD_INVITE_CODE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(OLD_INVITE_CODE_PREFIX))
        {
            return Err(OpError::OldInvite);
        }
        let bytes = zeroize::Zeroizing::new(textcode::decode(INVITE_CODE_PREFIX, code)?);
        let mut wire: InviteWire = codec::decode(&bytes, MAX_GENESIS_BYTES + 2048)?;
        let secret = CollectiveSecret::from_bytes(wire.secret);
        // An all-zero inviter is no key.
        let inviter = (wire.inviter != [0; 32]).then_some(MemberId(wire.inviter));
        if wire.addresses.len() > MAX_INVITE_ADDRESSES
            || wire.addresses.iter().any(|a| a.len() > 256)
        {
            return Err(OpError::Structure(
                "too many or too long addresses in the invite",
            ));
        }
        let genesis = SignedGenesis::decode(&wire.genesis)?;
        if !genesis.matches(&secret) {
            return Err(OpError::WrongSecret);
        }
        Ok(Self {
            genesis,
            secret,
            addresses: std::mem::take(&mut wire.addresses),
            inviter,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::Identity;
    use crate::membership::Policy;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn codes_round_trip_and_refuse_each_other() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let founder = Identity::generate(&mut rng);
        let secret = CollectiveSecret::generate(&mut rng);
        let genesis =
            SignedGenesis::create(&founder, &secret, "c", "f", Policy::default(), 1, &mut rng)
                .unwrap();
        let invite = Invite {
            genesis: genesis.clone(),
            secret: secret.clone(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            inviter: Some(founder.member_id()),
        };
        let code = invite.to_code();
        assert!(code.starts_with(INVITE_CODE_PREFIX));
        assert_eq!(Invite::from_code(&code).unwrap(), invite);
        let request = JoinRequest {
            identity: Identity::generate(&mut rng).public(),
            name: "Bea".into(),
        };
        let join = request.to_code();
        assert_eq!(JoinRequest::from_code(&join).unwrap(), request);
        assert!(JoinRequest::from_code(&code).is_err());
        assert!(Invite::from_code(&join).is_err());
    }

    /// An invite made by an older Lookout (no secret, `LKINVITE1`) is refused with a message
    /// that says so.
    #[test]
    fn an_old_invite_code_is_refused_clearly() {
        #[derive(Serialize)]
        struct InviteWireV1 {
            genesis: Vec<u8>,
            addresses: Vec<String>,
        }
        let old = textcode::encode(
            OLD_INVITE_CODE_PREFIX,
            &codec::encode(&InviteWireV1 {
                genesis: vec![1, 2, 3],
                addresses: Vec::new(),
            }),
        );
        let error = Invite::from_code(&old).unwrap_err();
        assert!(matches!(error, OpError::OldInvite));
        assert!(error.to_string().contains("older Lookout"), "{error}");
    }

    /// Attacker (or a mistake): an invite whose secret is not the collective's is refused at
    /// once, before the joiner adopts anything.
    #[test]
    fn an_invite_with_a_wrong_secret_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let founder = Identity::generate(&mut rng);
        let secret = CollectiveSecret::generate(&mut rng);
        let genesis =
            SignedGenesis::create(&founder, &secret, "c", "f", Policy::default(), 1, &mut rng)
                .unwrap();
        let wrong = Invite {
            genesis,
            secret: CollectiveSecret::generate(&mut rng),
            addresses: Vec::new(),
            inviter: None,
        };
        let error = Invite::from_code(&wrong.to_code()).unwrap_err();
        assert!(matches!(error, OpError::WrongSecret), "{error}");
        assert!(error.to_string().contains("does not match"), "{error}");
    }
}
