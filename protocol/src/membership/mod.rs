//! Collectives and their membership: a genesis record and a graph of signed operations.
//!
//! A collective starts from a [`Genesis`] signed by its founding moderator. Every later change
//! (propose a member, approve, remove, publish a self-revocation, promote, demote, rotate an
//! encryption key) is an [`Op`] that names the ops its author had seen (its causal parents).
//! [`MembershipLog`] keeps the ops and [`resolve`] turns any causally complete set of them into a
//! [`Roster`]. Resolution is a pure function of the *set* of ops: every replica holding the same
//! ops computes the same roster, whatever order they arrived in. The rules are in
//! `docs/PROTOCOL.md` §4 and on [`resolve`].

mod at_heads;
mod authors;
mod log;
mod quota_refused;
#[cfg(test)]
pub(crate) mod random_history;
mod resolve;

pub use at_heads::{MembersAt, Membership, SharedStates};
pub(crate) use log::state_key;
pub use log::{
    InsertOutcome, MembershipLog, OpRefusal, MAX_OPS_PER_AUTHOR_PER_DAY, MAX_ORPHANS,
    MAX_ORPHANS_PER_AUTHOR, MAX_READ_PARENTS, MAX_READ_THROUGH,
};
pub use quota_refused::{MAX_QUOTA_REFUSED, MAX_QUOTA_REFUSED_PARENTS};
pub use resolve::{
    resolve, Mailbox, Member, Pending, PendingKind, Removed, RemovedMailbox, Roster, MAX_MAILBOXES,
    MAX_ROUNDS,
};

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::identity::{self, Identity, IdentityError, PublicIdentity};
use crate::ids::{context, hash, CollectiveId, MemberId, OpId};
use crate::text::{CollectiveSecret, SealedName, SealedText, TextField, TextKey};

/// Largest encoded op accepted.
pub const MAX_OP_BYTES: usize = 4096;
/// Most causal parents one op may name.
pub const MAX_PARENTS: usize = 32;
/// Longest display name (a pseudonym), in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest removal reason, in bytes.
pub const MAX_REASON_BYTES: usize = 280;
/// Least time, by the ops' own dates, between two effective agreement-key rotations of one
/// member: a later one dated sooner has no effect (see [`resolve`]).
pub const MIN_AGREEMENT_ROTATION_SECS: u64 = 86_400;
/// Largest encoded genesis record: the founder and [`MAX_CO_MODERATORS`] co-moderators, each
/// with a public identity (128 bytes) and a sealed name (107), fit with room to spare.
pub const MAX_GENESIS_BYTES: usize = 4096;

/// The exact length of every signed op body: the largest op any action makes (32 parents, the
/// longest removal reason, a ten-byte timestamp), so an op's size says nothing of its kind.
/// collective 32, author 32, parents 1 + 32·32, timestamp ≤ 10, action ≤ 1 + 32 + 24 + 2 +
/// (2 + 280 + 16) (a removal with the longest reason, sealed: nonce, length, padded text, tag;
/// a mailbox proposal takes at most 1 + 32 + 1 + 4·2 + 256), padding length ≤ 2.
pub const OP_BODY_BYTES: usize =
    32 + 32 + (1 + MAX_PARENTS * 32) + 10 + (1 + 32 + 24 + 2 + (2 + MAX_REASON_BYTES + 16)) + 2;

const OP_SIG_CONTEXT: &[u8] = b"lookout membership op v3";
const GENESIS_SIG_CONTEXT: &[u8] = b"lookout genesis v1";
const REVOCATION_SIG_CONTEXT: &[u8] = b"lookout self-revocation v1";

/// A collective's rules, fixed at its founding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Distinct moderators whose approval adds a member, promotes, demotes or removes a moderator (k).
    pub approvals_required: u8,
    /// Alert lifetime when the poster does not choose one, in days.
    pub default_alert_days: u16,
    /// Longest alert lifetime allowed, in days. Epoch keys are kept this long and no longer.
    pub max_alert_days: u16,
    /// Posts one member may make per UTC day.
    pub posts_per_day: u16,
    /// ISO 3166-1 alpha-2 region used to read phone numbers written without a country code.
    pub country: String,
    /// Days after which the group key is rotated even if nobody was removed.
    pub rotation_days: u16,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            approvals_required: 1,
            default_alert_days: 30,
            max_alert_days: 90,
            posts_per_day: 50,
            country: "GB".into(),
            rotation_days: 7,
        }
    }
}

impl Policy {
    /// Check the policy is usable.
    pub fn validate(&self) -> Result<(), OpError> {
        if self.approvals_required == 0 || self.approvals_required > 16 {
            return Err(OpError::BadPolicy("approvals must be between 1 and 16"));
        }
        if self.default_alert_days == 0 || self.default_alert_days > self.max_alert_days {
            return Err(OpError::BadPolicy(
                "default alert lifetime must be at least 1 day and at most the maximum",
            ));
        }
        if self.max_alert_days > 366 {
            return Err(OpError::BadPolicy("alerts may live at most 366 days"));
        }
        if self.posts_per_day == 0 {
            return Err(OpError::BadPolicy("the posting quota must be at least 1"));
        }
        if self.rotation_days == 0 {
            return Err(OpError::BadPolicy("rotation period must be at least 1 day"));
        }
        if self.country.len() != 2 || !self.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(OpError::BadPolicy(
                "country must be a two-letter code such as GB or TL",
            ));
        }
        Ok(())
    }

    /// Longest alert lifetime in seconds.
    pub fn max_alert_secs(&self) -> u64 {
        u64::from(self.max_alert_days) * 86_400
    }
}

/// The founding record of a collective.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Format version, [`GENESIS_VERSION`].
    pub version: u8,
    /// The collective's name, sealed under the collective secret ([`TextField::CollectiveName`],
    /// author and subject the founder): shown to members only.
    pub name: SealedText,
    /// The founding moderator.
    pub founder: PublicIdentity,
    /// The founder's display name, sealed ([`TextField::FoundingName`], author and subject the
    /// founder).
    pub founder_name: SealedText,
    /// The rules.
    pub policy: Policy,
    /// Founding time, seconds since the Unix epoch.
    pub created: u64,
    /// Random bytes so two collectives with the same name and founder differ.
    pub nonce: [u8; 16],
    /// Moderators named at the founding besides the founder (the founding ceremony). A
    /// collective needing k approvals is founded by at least k moderators, so k is never waived.
    pub co_moderators: Vec<FoundingModerator>,
    /// [`CollectiveSecret::check`] of the collective secret, so a joiner handed a wrong secret
    /// is refused at once. It reveals nothing of the secret.
    pub secret_check: [u8; 32],
}

/// A moderator named in the genesis record beside the founder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundingModerator {
    /// Their public keys (from their join request, checked in person).
    pub identity: PublicIdentity,
    /// Their display name, sealed ([`TextField::FoundingName`], author the founder, subject
    /// this moderator).
    pub name: SealedText,
}

/// A co-moderator for [`SignedGenesis::create_with_moderators`], name in clear (it is sealed
/// there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewModerator {
    /// Their public keys (from their join request, checked in person).
    pub identity: PublicIdentity,
    /// Their display name.
    pub name: String,
}

/// Most moderators a genesis record may name besides the founder.
pub const MAX_CO_MODERATORS: usize = 15;

/// Genesis format version: 3 seals every name under the collective secret and carries its
/// check (versions 1 and 2 carried names in clear and are refused).
pub const GENESIS_VERSION: u8 = 3;

impl Genesis {
    /// Every founding moderator (founder first), with their sealed names.
    pub fn founding_moderators(&self) -> impl Iterator<Item = (&PublicIdentity, SealedName)> {
        let founder = self.founder.member;
        std::iter::once((
            &self.founder,
            SealedName {
                text: self.founder_name.clone(),
                field: TextField::FoundingName,
                author: founder,
                subject: founder,
            },
        ))
        .chain(self.co_moderators.iter().map(move |m| {
            (
                &m.identity,
                SealedName {
                    text: m.name.clone(),
                    field: TextField::FoundingName,
                    author: founder,
                    subject: m.identity.member,
                },
            )
        }))
    }

    /// The collective's name, sealed.
    pub fn sealed_name(&self) -> SealedName {
        SealedName {
            text: self.name.clone(),
            field: TextField::CollectiveName,
            author: self.founder.member,
            subject: self.founder.member,
        }
    }

    fn check_founders(&self) -> Result<(), OpError> {
        if self.co_moderators.len() > MAX_CO_MODERATORS {
            return Err(OpError::Structure("too many founding moderators"));
        }
        if !self.name.fits(TextField::CollectiveName)
            || !self.founder_name.fits(TextField::FoundingName)
        {
            return Err(OpError::Structure("a sealed name has the wrong length"));
        }
        let mut seen = std::collections::BTreeSet::from([self.founder.member]);
        for m in &self.co_moderators {
            m.identity.verify()?;
            if !m.name.fits(TextField::FoundingName) {
                return Err(OpError::Structure("a sealed name has the wrong length"));
            }
            if !seen.insert(m.identity.member) {
                return Err(OpError::Structure("a founding moderator is named twice"));
            }
        }
        if usize::from(self.policy.approvals_required) > 1 + self.co_moderators.len() {
            return Err(OpError::BadPolicy(
                "a collective needing k approvals must be founded by at least k moderators",
            ));
        }
        Ok(())
    }
}

/// A genesis record with the founder's signature, as sent and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedGenesis {
    genesis: Genesis,
    encoded: Vec<u8>,
    id: CollectiveId,
}

#[derive(Serialize, Deserialize)]
struct SignedBytes {
    body: Vec<u8>,
    #[serde(with = "crate::serde_bytes64")]
    signature: [u8; 64],
}

impl SignedGenesis {
    /// Found a collective: `founder` signs a genesis record whose names are sealed under
    /// `secret` (made with [`CollectiveSecret::generate`], kept by the founder's device, handed
    /// on in invites).
    pub fn create<R: RngCore + CryptoRng>(
        founder: &Identity,
        secret: &CollectiveSecret,
        name: &str,
        founder_name: &str,
        policy: Policy,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, OpError> {
        Self::create_with_moderators(
            founder,
            secret,
            name,
            founder_name,
            Vec::new(),
            policy,
            now,
            rng,
        )
    }

    /// Found a collective with co-moderators (a founding ceremony): needed when the policy asks
    /// for k > 1 approvals, since k moderators must exist from the start.
    #[allow(clippy::too_many_arguments)]
    pub fn create_with_moderators<R: RngCore + CryptoRng>(
        founder: &Identity,
        secret: &CollectiveSecret,
        name: &str,
        founder_name: &str,
        co_moderators: Vec<NewModerator>,
        policy: Policy,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, OpError> {
        policy.validate()?;
        check_name(name)?;
        check_name(founder_name)?;
        let me = founder.member_id();
        let mut names = std::collections::BTreeSet::from([founder_name.trim().to_lowercase()]);
        for m in &co_moderators {
            check_name(&m.name)?;
            if !names.insert(m.name.trim().to_lowercase()) {
                return Err(OpError::Structure(
                    "two founding moderators have the same display name",
                ));
            }
        }
        let key = secret.text_key();
        let seal = |field, subject: &MemberId, text: &str, rng: &mut R| {
            key.seal(field, &me, subject, text, rng)
                .map_err(|_| OpError::Structure("names must be 1 to 64 bytes"))
        };
        let co_moderators = co_moderators
            .into_iter()
            .map(|m| {
                Ok(FoundingModerator {
                    name: seal(TextField::FoundingName, &m.identity.member, &m.name, rng)?,
                    identity: m.identity,
                })
            })
            .collect::<Result<Vec<_>, OpError>>()?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let genesis = Genesis {
            version: GENESIS_VERSION,
            name: seal(TextField::CollectiveName, &me, name, rng)?,
            founder: founder.public(),
            founder_name: seal(TextField::FoundingName, &me, founder_name, rng)?,
            policy,
            created: now,
            nonce,
            co_moderators,
            secret_check: secret.check(),
        };
        genesis.check_founders()?;
        let body = codec::encode(&genesis);
        let signature = founder.sign(GENESIS_SIG_CONTEXT, &body);
        Self::decode(&codec::encode(&SignedBytes { body, signature }))
    }

    /// Decode and verify a signed genesis record.
    pub fn decode(bytes: &[u8]) -> Result<Self, OpError> {
        let signed: SignedBytes = codec::decode(bytes, MAX_GENESIS_BYTES)?;
        // The version comes first in the body: read it alone so an old record is named as such
        // rather than failing to decode.
        match signed.body.first() {
            Some(&GENESIS_VERSION) => {}
            Some(&old) if old < GENESIS_VERSION => return Err(OpError::OldGenesis(old)),
            Some(&new) => return Err(OpError::UnsupportedVersion(new)),
            None => return Err(OpError::Structure("empty genesis record")),
        }
        let genesis: Genesis = decode_canonical(&signed.body, MAX_GENESIS_BYTES)?;
        genesis.founder.verify()?;
        genesis.check_founders()?;
        if !identity::verify(
            &genesis.founder.member,
            GENESIS_SIG_CONTEXT,
            &signed.body,
            &signed.signature,
        ) {
            return Err(OpError::BadSignature);
        }
        genesis.policy.validate()?;
        Ok(Self {
            id: CollectiveId(hash(context::COLLECTIVE_ID, &[bytes])),
            genesis,
            encoded: bytes.to_vec(),
        })
    }

    /// The collective id.
    pub fn id(&self) -> CollectiveId {
        self.id
    }

    /// The record.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The signed bytes, as sent.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Whether `secret` is this collective's secret (the record's check).
    pub fn matches(&self, secret: &CollectiveSecret) -> bool {
        secret.matches(&self.genesis.secret_check)
    }
}

/// A statement, signed by a member when their identity is created, that their key is revoked.
/// Anyone holding it (a friend, when the member's phone is taken) can have it published. It names
/// no collective: a revoked key is dead in every collective it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationCertificate {
    /// The member revoking themself.
    pub member: MemberId,
    /// When it was made.
    pub created: u64,
    /// The member's signature.
    #[serde(with = "crate::serde_bytes64")]
    pub signature: [u8; 64],
}

/// Prefix of a revocation certificate's text code.
pub const REVOCATION_CODE_PREFIX: &str = "LKREVOKE1";

impl RevocationCertificate {
    /// Make a certificate for `identity`.
    pub fn create(identity: &Identity, now: u64) -> Self {
        let member = identity.member_id();
        let signature = identity.sign(REVOCATION_SIG_CONTEXT, &codec::encode(&(member, now)));
        Self {
            member,
            created: now,
            signature,
        }
    }

    /// Check the signature.
    pub fn verify(&self) -> Result<(), OpError> {
        let message = codec::encode(&(self.member, self.created));
        if identity::verify(
            &self.member,
            REVOCATION_SIG_CONTEXT,
            &message,
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(OpError::BadSignature)
        }
    }

    /// A text code to store away from the device.
    pub fn to_code(&self) -> String {
        crate::textcode::encode(REVOCATION_CODE_PREFIX, &codec::encode(self))
    }

    /// Parse and verify a text code.
    pub fn from_code(code: &str) -> Result<Self, OpError> {
        let bytes = crate::textcode::decode(REVOCATION_CODE_PREFIX, code)?;
        let cert: Self = codec::decode(&bytes, 512)?;
        cert.verify()?;
        Ok(cert)
    }
}

/// What an op does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// A moderator proposes adding a member (it counts as the proposer's approval).
    ProposeAdd {
        /// The new member's public identity.
        identity: PublicIdentity,
        /// Their display name (a pseudonym), sealed ([`TextField::MemberName`], author the
        /// proposer, subject the new member; see [`Action::propose_add`]).
        name: SealedText,
    },
    /// A moderator approves a proposal.
    Approve {
        /// The proposal.
        proposal: OpId,
    },
    /// A moderator removes a member (immediately), or proposes removing a moderator (needs k).
    Remove {
        /// Who.
        member: MemberId,
        /// Why, for the other moderators, sealed ([`TextField::RemovalReason`], author the
        /// remover, subject the removed member; see [`Action::remove`]).
        reason: SealedText,
    },
    /// Publish a member's self-revocation certificate: immediate removal.
    PublishRevocation {
        /// The certificate.
        certificate: RevocationCertificate,
    },
    /// A moderator proposes making a member a moderator (needs k).
    ProposePromote {
        /// Who.
        member: MemberId,
    },
    /// A moderator proposes taking moderator rights away (needs k).
    ProposeDemote {
        /// Who.
        member: MemberId,
    },
    /// A member replaces their encryption (X25519) key.
    RotateAgreementKey {
        /// The member's identity with the new agreement key.
        identity: PublicIdentity,
    },
    /// A moderator proposes admitting a mailbox (it counts as the proposer's approval; needs k,
    /// exactly like [`Action::ProposeAdd`]).
    ProposeMailbox {
        /// The mailbox's Ed25519 key (from its pairing code, whose signature proves possession).
        mailbox: [u8; 32],
        /// Bare multiaddrs members dial it at (see [`crate::mailbox::check_addresses`]).
        addresses: Vec<String>,
    },
    /// A moderator removes a mailbox, at once. A removed mailbox is never admitted again.
    RemoveMailbox {
        /// Which.
        mailbox: [u8; 32],
    },
}

impl Action {
    /// The key this action proposes to admit, if it is a [`Action::ProposeAdd`]: the only
    /// action that can make a key that never was a member one.
    pub fn admits(&self) -> Option<MemberId> {
        match self {
            Action::ProposeAdd { identity, .. } => Some(identity.member),
            _ => None,
        }
    }

    /// `author` proposes adding `identity` under the display `name`, sealed under `key`.
    pub fn propose_add<R: RngCore + CryptoRng>(
        key: &TextKey,
        author: &MemberId,
        identity: PublicIdentity,
        name: &str,
        rng: &mut R,
    ) -> Result<Self, OpError> {
        check_name(name)?;
        let name = key
            .seal(TextField::MemberName, author, &identity.member, name, rng)
            .map_err(|_| OpError::Structure("names must be 1 to 64 bytes"))?;
        Ok(Action::ProposeAdd { identity, name })
    }

    /// `author` removes `member` for `reason`, sealed under `key`.
    pub fn remove<R: RngCore + CryptoRng>(
        key: &TextKey,
        author: &MemberId,
        member: MemberId,
        reason: &str,
        rng: &mut R,
    ) -> Result<Self, OpError> {
        let reason = key
            .seal(TextField::RemovalReason, author, &member, reason, rng)
            .map_err(|_| OpError::Structure("reason too long"))?;
        Ok(Action::Remove { member, reason })
    }

    /// The sealed text this action carries, bound to the op's `author` (a new member's name, a
    /// removal's reason), if any.
    pub fn sealed_text(&self, author: MemberId) -> Option<SealedName> {
        match self {
            Action::ProposeAdd { identity, name } => Some(SealedName {
                text: name.clone(),
                field: TextField::MemberName,
                author,
                subject: identity.member,
            }),
            Action::Remove { member, reason } => Some(SealedName {
                text: reason.clone(),
                field: TextField::RemovalReason,
                author,
                subject: *member,
            }),
            _ => None,
        }
    }
}

/// The signed content of an op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpBody {
    /// The collective it belongs to.
    pub collective: CollectiveId,
    /// Who made it.
    pub author: MemberId,
    /// The ops the author had seen: strictly ascending, at most [`MAX_PARENTS`]. Empty means
    /// "right after genesis".
    pub parents: Vec<OpId>,
    /// The author's clock, advisory only (used to order sync, never for authority).
    pub timestamp: u64,
    /// What it does.
    pub action: Action,
    /// Zero bytes making the encoded body exactly [`OP_BODY_BYTES`] long (set by
    /// [`Op::create`]); in memory only their count.
    pub padding: codec::Padding,
}

/// A verified op: its signature checks, its structure is valid. Whether it has *effect* is
/// decided by [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    id: OpId,
    body: OpBody,
    encoded: Vec<u8>,
}

impl Op {
    /// Make and sign an op.
    pub fn create(
        author: &Identity,
        collective: CollectiveId,
        mut parents: Vec<OpId>,
        now: u64,
        action: Action,
    ) -> Result<Self, OpError> {
        parents.sort();
        parents.dedup();
        let mut body = OpBody {
            collective,
            author: author.member_id(),
            parents,
            timestamp: now,
            action,
            padding: codec::Padding::default(),
        };
        let pad = crate::epoch::padding_for(codec::encode(&body).len(), OP_BODY_BYTES)
            .ok_or(OpError::Structure("the op is larger than an op may be"))?;
        body.padding = codec::Padding::zeros(pad);
        let body = codec::encode(&body);
        let signature = author.sign(OP_SIG_CONTEXT, &body);
        Self::decode(&codec::encode(&SignedBytes { body, signature }), collective)
    }

    /// The signed body of an op received for `collective`, decoded and checked for structure
    /// but **not verified**: what a replica may look at to refuse an op cheaply (an unknown
    /// author, a full quota, a date out of range) before it pays for signature checks. Every
    /// field is the sender's choice until [`Op::decode`] verifies it.
    pub fn peek(bytes: &[u8], collective: CollectiveId) -> Result<OpBody, OpError> {
        Self::unverified(bytes, collective).map(|(_, body)| body)
    }

    fn unverified(
        bytes: &[u8],
        collective: CollectiveId,
    ) -> Result<(SignedBytes, OpBody), OpError> {
        let signed: SignedBytes = codec::decode(bytes, MAX_OP_BYTES)?;
        let body: OpBody = decode_canonical(&signed.body, MAX_OP_BYTES)?;
        if body.collective != collective {
            return Err(OpError::WrongCollective);
        }
        if body.parents.len() > MAX_PARENTS {
            return Err(OpError::Structure("too many parents"));
        }
        if body.parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(OpError::Structure("parents must be sorted and distinct"));
        }
        // Every op is the same size: the padding is fixed by the rest and all zero.
        if signed.body.len() != OP_BODY_BYTES || !body.padding.is_zero() {
            return Err(OpError::Structure(
                "the padding does not make the op exactly the one op size",
            ));
        }
        Ok((signed, body))
    }

    /// Decode and verify an op received for `collective`.
    pub fn decode(bytes: &[u8], collective: CollectiveId) -> Result<Self, OpError> {
        let (signed, body) = Self::unverified(bytes, collective)?;
        if !identity::verify(
            &body.author,
            OP_SIG_CONTEXT,
            &signed.body,
            &signed.signature,
        ) {
            return Err(OpError::BadSignature);
        }
        match &body.action {
            Action::ProposeAdd { identity, name } => {
                identity.verify()?;
                if !name.fits(TextField::MemberName) {
                    return Err(OpError::Structure("a sealed name has the wrong length"));
                }
            }
            Action::Remove { reason, .. } if !reason.fits(TextField::RemovalReason) => {
                return Err(OpError::Structure("a sealed reason has the wrong length"));
            }
            Action::PublishRevocation { certificate } => certificate.verify()?,
            Action::RotateAgreementKey { identity } => {
                identity.verify()?;
                if identity.member != body.author {
                    return Err(OpError::Structure("a member can only rotate their own key"));
                }
            }
            Action::ProposeMailbox { mailbox, addresses } => {
                if crate::mailbox::mailbox_key(mailbox).is_none() {
                    return Err(OpError::Structure("the mailbox key is not a valid key"));
                }
                crate::mailbox::check_addresses(addresses).map_err(OpError::Structure)?;
            }
            _ => {}
        }
        Ok(Self {
            id: OpId(hash(context::OP_ID, &[bytes])),
            body,
            encoded: bytes.to_vec(),
        })
    }

    /// The op id.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The signed content.
    pub fn body(&self) -> &OpBody {
        &self.body
    }

    /// The author.
    pub fn author(&self) -> MemberId {
        self.body.author
    }

    /// The causal parents.
    pub fn parents(&self) -> &[OpId] {
        &self.body.parents
    }

    /// The bytes as sent and stored.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// Why a membership record was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Bad encoding.
    #[error("membership record: {0}")]
    Decode(#[from] DecodeError),
    /// A text code could not be read.
    #[error(transparent)]
    TextCode(#[from] crate::textcode::TextCodeError),
    /// The signature does not verify.
    #[error("membership record has a bad signature")]
    BadSignature,
    /// It belongs to another collective.
    #[error("membership record belongs to another collective")]
    WrongCollective,
    /// A newer format than this software understands.
    #[error("membership record version {0} is not supported; update Lookout")]
    UnsupportedVersion(u8),
    /// A genesis record of an older format (names in clear), which this version refuses.
    #[error("this collective was founded with an older Lookout (genesis version {0}); ask for a new invite")]
    OldGenesis(u8),
    /// An invite code of an older format (no collective secret).
    #[error("this invite was made by an older Lookout; ask for a new invite")]
    OldInvite,
    /// The invite's collective secret is not the one its genesis record was made with.
    #[error("this invite's collective secret does not match its collective; ask for a new invite")]
    WrongSecret,
    /// An identity inside is invalid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A structural rule is broken.
    #[error("invalid membership record: {0}")]
    Structure(&'static str),
    /// The policy is unusable.
    #[error("invalid policy: {0}")]
    BadPolicy(&'static str),
}

impl OpError {
    /// Whether a peer that sent this should be penalised (everything here is proof of a broken or
    /// hostile sender, since honest nodes only forward verified records).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            OpError::UnsupportedVersion(_) | OpError::OldGenesis(_) | OpError::OldInvite
        )
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), OpError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(OpError::Structure("names must be 1 to 64 bytes"));
    }
    if name
        .chars()
        .any(|c| crate::content::is_unprintable(c, false))
    {
        return Err(OpError::Structure(
            "names may not contain control or text-direction characters",
        ));
    }
    Ok(())
}

/// Decode a signed body and insist that it is the one canonical encoding of its value, so that
/// a value has exactly one id.
pub(crate) fn decode_canonical<T>(bytes: &[u8], max: usize) -> Result<T, DecodeError>
where
    T: serde::de::DeserializeOwned + Serialize,
{
    let value: T = codec::decode(bytes, max)?;
    if codec::encode(&value) != bytes {
        return Err(DecodeError::Invalid("non-canonical encoding"));
    }
    Ok(value)
}
