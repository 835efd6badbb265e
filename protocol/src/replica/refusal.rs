//! Why a replica did not take an item in: one typed reason per rule, with a message a person can
//! act on, mapped from the protocol's error types.

use crate::codec::DecodeError;
use crate::content::ContentError;
use crate::envelope::{EnvelopeError, Rejection};
use crate::epoch::EpochError;
use crate::membership::{OpError, OpRefusal};

use super::SetKind;

/// Why an item was ignored or rejected ([`Ingested::Ignored`](super::Ingested::Ignored),
/// [`Ingested::Rejected`](super::Ingested::Rejected)). Whether the sender is to blame is the
/// [`Ingested`](super::Ingested) variant's to say, not the reason's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// This device is in no collective yet.
    #[error("not in a collective")]
    NoCollective,
    /// The bytes do not decode.
    #[error("{kind}: {error}")]
    Decode {
        /// What the item claimed to be.
        kind: SetKind,
        /// What the decoder found.
        error: DecodeError,
    },
    /// A structural rule of the format is broken.
    #[error("invalid {kind}: {detail}")]
    Malformed {
        /// What the item claimed to be.
        kind: SetKind,
        /// Which rule.
        detail: &'static str,
    },
    /// A post's content breaks a size or field rule.
    #[error(transparent)]
    Content(ContentError),
    /// A newer format than this software understands.
    #[error("{kind} version {version} is not supported; update Lookout")]
    UnsupportedVersion {
        /// What the item is.
        kind: SetKind,
        /// The version it carries.
        version: u8,
    },
    /// Made for another collective.
    #[error("{0} belongs to another collective")]
    WrongCollective(SetKind),
    /// The signature does not verify.
    #[error("{0} has a bad signature")]
    BadSignature(SetKind),
    /// A post under an epoch whose key this replica does not hold (held, never refused).
    #[error("envelope is under an epoch whose key we do not hold")]
    KeyMissing,
    /// A post that does not decrypt under its epoch's key.
    #[error("envelope does not decrypt")]
    Undecryptable,
    /// A post whose content id in clear is not the hash of the signed post inside.
    #[error("envelope's content id does not match the post inside")]
    WrongId,
    /// A post too large for any bucket.
    #[error("post is too large ({0} bytes encoded, at most 8190)")]
    TooLarge(usize),
    /// The post's author was not a member at the membership state it names.
    #[error("the author was not a member at the state the post names")]
    NotAMember,
    /// The post's author had been removed.
    #[error("the author had been removed")]
    AuthorRemoved,
    /// The post's epoch may no longer be written to (stale or tainted by a removal).
    #[error("the post is under an epoch that may no longer be written to")]
    StaleEpoch,
    /// The rotation of the post's epoch has not arrived (held, never refused).
    #[error("the rotation of the post's epoch has not arrived yet")]
    EpochUnconfirmed,
    /// Past its expiry.
    #[error("the post has expired")]
    Expired,
    /// Lives longer than the collective's policy allows.
    #[error("the post's lifetime exceeds the collective's maximum")]
    LifetimeTooLong,
    /// Dated further ahead than the clock skew allowed
    /// ([`MAX_CLOCK_SKEW_SECS`](crate::envelope::MAX_CLOCK_SKEW_SECS)).
    #[error("{} dated in the future", match .0 { SetKind::Envelopes => "the post is", SetKind::Deliveries => "key delivery", SetKind::Ops => "membership record" })]
    ClockSkew(SetKind),
    /// The author is over the daily posting quota.
    #[error("the author is over the daily posting quota")]
    OverQuota,
    /// Refers to a post that is not an alert.
    #[error("the post refers to something that is not an alert")]
    NotAnAlert,
    /// An edit by someone other than the alert's author.
    #[error("only an alert's author may edit it")]
    NotTheAuthor,
    /// A retraction by neither the alert's author nor a moderator.
    #[error("only an alert's author or a moderator may retract it")]
    NotAModerator,
    /// A retraction by a moderator since demoted or removed.
    #[error("the retraction's author is no longer a moderator")]
    NoLongerModerator,
    /// A retraction that would expire before the alert it withdraws.
    #[error("the retraction expires before the alert it withdraws")]
    RetractionExpiresFirst,
    /// A key delivery whose author or a recipient had no right to it at the state it names.
    #[error("key delivery not allowed: {0}")]
    DeliveryNotAllowed(&'static str),
    /// A key could not be sealed to a recipient (only when making a delivery).
    #[error("could not seal the key to a recipient")]
    SealFailed,
    /// Our share of an epoch key did not open.
    #[error("our copy of the epoch key does not open")]
    BadShare,
    /// A membership op by a key no op held proposed and the genesis record does not name.
    #[error("its author is not and never was a member")]
    NeverAMember,
    /// A membership op by an author over their daily quota of ops.
    #[error("its author is over the daily quota of membership ops")]
    OpQuota,
    /// A membership op dated before the collective was founded.
    #[error("it is dated before the collective was founded")]
    OpBeforeGenesis,
}

impl Refusal {
    /// Whether the same bytes may be taken in later, so the refusal is remembered only until
    /// what could let it pass happens (the membership log changes, or the clock nears the
    /// item's date); until then [`State`](super::State) answers `Duplicate` to the same bytes
    /// without verifying them again
    /// (`the_same_never_member_op_is_verified_once_until_the_log_changes`). An op
    /// whose author's admission has not arrived yet, an op over a quota that an evicted orphan
    /// frees again, an item dated ahead of this device's clock. Remembering these stopped a
    /// replica for good from taking in a member's op that gossip brought before her admission
    /// (`an_op_that_arrived_before_its_authors_admission_is_taken_in_when_fetched_again`).
    pub fn may_pass_later(&self) -> bool {
        matches!(
            self,
            Refusal::NeverAMember | Refusal::OpQuota | Refusal::ClockSkew(_)
        )
    }
}

impl From<OpRefusal> for Refusal {
    fn from(refusal: OpRefusal) -> Self {
        match refusal {
            OpRefusal::NeverAMember => Refusal::NeverAMember,
            OpRefusal::OverQuota => Refusal::OpQuota,
            OpRefusal::BeforeGenesis => Refusal::OpBeforeGenesis,
        }
    }
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NotAMember => Refusal::NotAMember,
            Rejection::AuthorRemoved => Refusal::AuthorRemoved,
            Rejection::EpochNotWritable => Refusal::StaleEpoch,
            Rejection::EpochUnconfirmed => Refusal::EpochUnconfirmed,
            Rejection::Expired => Refusal::Expired,
            Rejection::LifetimeTooLong => Refusal::LifetimeTooLong,
            Rejection::FromTheFuture => Refusal::ClockSkew(SetKind::Envelopes),
            Rejection::OverQuota => Refusal::OverQuota,
            Rejection::NotAnAlert => Refusal::NotAnAlert,
            Rejection::NotTheAuthor => Refusal::NotTheAuthor,
            Rejection::NotAModerator => Refusal::NotAModerator,
            Rejection::NoLongerModerator => Refusal::NoLongerModerator,
            Rejection::RetractionExpiresFirst => Refusal::RetractionExpiresFirst,
        }
    }
}

impl From<EnvelopeError> for Refusal {
    fn from(error: EnvelopeError) -> Self {
        const KIND: SetKind = SetKind::Envelopes;
        match error {
            EnvelopeError::Decode(error) => Refusal::Decode { kind: KIND, error },
            EnvelopeError::Content(e) => Refusal::Content(e),
            EnvelopeError::UnsupportedVersion(version) => Refusal::UnsupportedVersion {
                kind: KIND,
                version,
            },
            EnvelopeError::WrongCollective => Refusal::WrongCollective(KIND),
            EnvelopeError::UnknownEpoch(_) => Refusal::KeyMissing,
            EnvelopeError::Decrypt => Refusal::Undecryptable,
            EnvelopeError::Inconsistent(detail) => Refusal::Malformed { kind: KIND, detail },
            EnvelopeError::WrongId => Refusal::WrongId,
            EnvelopeError::BadSignature => Refusal::BadSignature(KIND),
            EnvelopeError::TooLarge(size) => Refusal::TooLarge(size),
        }
    }
}

impl From<EpochError> for Refusal {
    fn from(error: EpochError) -> Self {
        const KIND: SetKind = SetKind::Deliveries;
        match error {
            EpochError::Decode(error) => Refusal::Decode { kind: KIND, error },
            EpochError::UnsupportedVersion(version) => Refusal::UnsupportedVersion {
                kind: KIND,
                version,
            },
            EpochError::BadSignature => Refusal::BadSignature(KIND),
            EpochError::WrongCollective => Refusal::WrongCollective(KIND),
            EpochError::Structure(detail) => Refusal::Malformed { kind: KIND, detail },
            EpochError::NotAllowed(why) => Refusal::DeliveryNotAllowed(why),
            EpochError::Seal => Refusal::SealFailed,
            EpochError::BadShare => Refusal::BadShare,
        }
    }
}

impl From<OpError> for Refusal {
    fn from(error: OpError) -> Self {
        const KIND: SetKind = SetKind::Ops;
        match error {
            OpError::Decode(error) => Refusal::Decode { kind: KIND, error },
            OpError::TextCode(_) => Refusal::Malformed {
                kind: KIND,
                detail: "its text code is unreadable",
            },
            OpError::BadSignature => Refusal::BadSignature(KIND),
            OpError::WrongCollective => Refusal::WrongCollective(KIND),
            OpError::UnsupportedVersion(version) => Refusal::UnsupportedVersion {
                kind: KIND,
                version,
            },
            OpError::Identity(_) => Refusal::Malformed {
                kind: KIND,
                detail: "an identity in it is invalid",
            },
            OpError::Structure(detail) => Refusal::Malformed { kind: KIND, detail },
            OpError::BadPolicy(detail) => Refusal::Malformed { kind: KIND, detail },
            OpError::OldGenesis(version) => Refusal::UnsupportedVersion {
                kind: KIND,
                version,
            },
            OpError::OldInvite => Refusal::Malformed {
                kind: KIND,
                detail: "an invite of an older format",
            },
            OpError::WrongSecret => Refusal::Malformed {
                kind: KIND,
                detail: "an invite whose secret is not its collective's",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_item_and_keep_the_protocol_wording() {
        for refusal in [
            OpRefusal::NeverAMember,
            OpRefusal::OverQuota,
            OpRefusal::BeforeGenesis,
        ] {
            assert_eq!(Refusal::from(refusal).to_string(), refusal.to_string());
        }
        assert_eq!(
            Refusal::BadSignature(SetKind::Ops).to_string(),
            "membership record has a bad signature"
        );
        assert_eq!(
            Refusal::ClockSkew(SetKind::Deliveries).to_string(),
            "key delivery dated in the future"
        );
        assert_eq!(
            Refusal::from(Rejection::FromTheFuture).to_string(),
            Rejection::FromTheFuture.to_string()
        );
        assert_eq!(
            Refusal::from(EnvelopeError::BadSignature).to_string(),
            EnvelopeError::BadSignature.to_string()
        );
        assert_eq!(
            Refusal::from(EpochError::NotAllowed("x")).to_string(),
            EpochError::NotAllowed("x").to_string()
        );
        for rejection in [
            Rejection::NotAMember,
            Rejection::AuthorRemoved,
            Rejection::EpochNotWritable,
            Rejection::Expired,
            Rejection::OverQuota,
            Rejection::NotAModerator,
            Rejection::NoLongerModerator,
        ] {
            assert_eq!(
                Refusal::from(rejection.clone()).to_string(),
                rejection.to_string()
            );
        }
    }
}
