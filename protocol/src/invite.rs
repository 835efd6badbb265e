//! The two codes of enrolment: a join request (new member to moderator) and an invite (moderator
//! to new member).
//!
//! In person, the new member shows a [`JoinRequest`] code (or its QR); the moderator compares the
//! fingerprint aloud, then approves. Once admitted, the moderator hands back an [`Invite`]: the
//! collective's signed genesis record and where the moderator's node can be reached. Both codes
//! are checksummed text (see [`crate::textcode`]).

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::identity::PublicIdentity;
use crate::membership::{OpError, SignedGenesis, MAX_GENESIS_BYTES, MAX_NAME_BYTES};
use crate::textcode;
use crate::MemberId;

/// Prefix of a join request code.
pub const JOIN_CODE_PREFIX: &str = "LKJOIN1";
/// Prefix of an invite code.
pub const INVITE_CODE_PREFIX: &str = "LKINVITE1";
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

/// What a newly admitted member needs to join: the collective and where to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The collective's signed genesis record (its hash is the collective id).
    pub genesis: SignedGenesis,
    /// Multiaddresses of the inviting node (bare: transport identities change every run).
    pub addresses: Vec<String>,
    /// The member who made the invite: the only member the joining node admits at
    /// [`Invite::addresses`] before its roster names that member. `None` in codes made before
    /// this field existed (see `docs/PROTOCOL.md`, "Invites").
    pub inviter: Option<MemberId>,
}

/// The invite as first defined: genesis and addresses only. Still accepted.
#[derive(Serialize, Deserialize)]
struct InviteWireV1 {
    genesis: Vec<u8>,
    addresses: Vec<String>,
}

/// The invite with its inviter: the first version's fields and the inviter's member id,
/// appended (an old decoder refuses the trailing bytes rather than misreading them).
#[derive(Serialize, Deserialize)]
struct InviteWire {
    genesis: Vec<u8>,
    addresses: Vec<String>,
    inviter: [u8; 32],
}

impl Invite {
    /// The text code.
    pub fn to_code(&self) -> String {
        let genesis = self.genesis.encoded().to_vec();
        let addresses = self.addresses.clone();
        let payload = match self.inviter {
            Some(inviter) => codec::encode(&InviteWire {
                genesis,
                addresses,
                inviter: inviter.0,
            }),
            None => codec::encode(&InviteWireV1 { genesis, addresses }),
        };
        textcode::encode(INVITE_CODE_PREFIX, &payload)
    }

    /// Parse and verify a text code.
    pub fn from_code(code: &str) -> Result<Self, OpError> {
        let bytes = textcode::decode(INVITE_CODE_PREFIX, code)?;
        let max = MAX_GENESIS_BYTES + 2048;
        let wire = match codec::decode::<InviteWire>(&bytes, max) {
            Ok(w) => w,
            Err(_) => {
                let old: InviteWireV1 = codec::decode(&bytes, max)?;
                InviteWire {
                    genesis: old.genesis,
                    addresses: old.addresses,
                    inviter: [0; 32],
                }
            }
        };
        // An all-zero inviter is no key: read it as an old code.
        let inviter = (wire.inviter != [0; 32]).then_some(MemberId(wire.inviter));
        if wire.addresses.len() > MAX_INVITE_ADDRESSES
            || wire.addresses.iter().any(|a| a.len() > 256)
        {
            return Err(OpError::Structure(
                "too many or too long addresses in the invite",
            ));
        }
        Ok(Self {
            genesis: SignedGenesis::decode(&wire.genesis)?,
            addresses: wire.addresses,
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
        let genesis =
            SignedGenesis::create(&founder, "c", "f", Policy::default(), 1, &mut rng).unwrap();
        let invite = Invite {
            genesis: genesis.clone(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            inviter: Some(founder.member_id()),
        };
        let code = invite.to_code();
        assert_eq!(Invite::from_code(&code).unwrap(), invite);
        // A code made before invites named their inviter still parses, without one.
        let old = Invite {
            inviter: None,
            ..invite.clone()
        };
        let old_code = textcode::encode(
            INVITE_CODE_PREFIX,
            &codec::encode(&InviteWireV1 {
                genesis: genesis.encoded().to_vec(),
                addresses: invite.addresses.clone(),
            }),
        );
        assert_eq!(old.to_code(), old_code);
        assert_eq!(Invite::from_code(&old_code).unwrap(), old);
        let request = JoinRequest {
            identity: Identity::generate(&mut rng).public(),
            name: "Bea".into(),
        };
        let join = request.to_code();
        assert_eq!(JoinRequest::from_code(&join).unwrap(), request);
        assert!(JoinRequest::from_code(&code).is_err());
        assert!(Invite::from_code(&join).is_err());
    }
}
