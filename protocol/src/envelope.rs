//! Envelopes: how a post is signed, encrypted, padded and checked.
//!
//! Sign-then-encrypt. The *inner* part is signed by the author and binds the collective, the
//! epoch, the author's sequence number, the membership state the author saw (its heads), the
//! times and the content. It is encrypted with XChaCha20-Poly1305 under the epoch key and padded
//! to a size bucket. The *outer* part, all that a relay or an observer of a seized store sees
//! without keys, carries only: version, an 8-byte collective tag, the epoch id, a coarse
//! timestamp (rounded down to [`COARSE_SECS`]), the post's [`ContentId`], the nonce and the
//! ciphertext. The outer header is the AEAD's associated data.
//!
//! A post has exactly one identity whatever its wrapping: the [`ContentId`] is a hash of the
//! signed inner body, carried in clear so that reconciliation, storage and relays can key on it
//! without decrypting, and checked against the body after decryption (a mismatch is a forgery).
//! Anyone holding the epoch key can re-encrypt someone else's signed post with a fresh nonce;
//! the copy is the same post, not a new one, so it cannot bring a retracted alert back or count
//! twice against its author's quota.
//!
//! Checking is split in two: [`open`] (decrypt, decode, verify the signature: anyone holding the
//! epoch key can do it) and [`Opened::authorize`] (membership, epoch, expiry, clock and quota
//! rules against the replica's state), which alone yields a [`Verified`] post.

use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::content::{Content, ContentError};
use crate::epoch::{EpochInfo, EpochKey, EpochStatus};
use crate::identity::{self, Identity};
use crate::ids::{CollectiveId, ContentId, EpochId, MemberId, OpId};
use crate::membership::{decode_canonical, Roster};
use crate::sig;

/// Envelope format version.
pub const VERSION: u8 = 2;
/// Outer timestamps are rounded down to this many seconds.
pub const COARSE_SECS: u64 = 600;
/// Padded plaintext sizes. A post larger than the last bucket is refused.
pub const BUCKETS: [usize; 5] = [512, 1024, 2048, 4096, 8192];
/// Largest outer envelope accepted (last bucket plus header and tag).
pub const MAX_ENVELOPE_BYTES: usize = 8192 + 128;
/// How far in the future a post's timestamp may be before it is set aside.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// Reachability posts one member may have accepted per UTC day. They do not count against the
/// collective's alert quota (a node announces itself whenever its addresses change), so they
/// have their own.
pub const MAX_REACHABILITY_PER_DAY: u32 = 24;
/// Longest lifetime of a reachability post (addresses go stale; honest nodes use exactly this).
pub const MAX_REACHABILITY_SECS: u64 = 86_400;
/// Most membership heads an envelope may name.
pub const MAX_HEADS: usize = 32;
/// The signing context of an envelope's inner body.
pub const INNER_SIG_CONTEXT: &[u8] = b"lookout envelope v1";

/// The part everyone on the path sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outer {
    /// [`VERSION`].
    pub version: u8,
    /// [`CollectiveId::tag`].
    pub collective_tag: [u8; 8],
    /// The epoch the ciphertext is under.
    pub epoch: EpochId,
    /// The post's timestamp rounded down to [`COARSE_SECS`].
    pub coarse_time: u64,
    /// The post's id: [`ContentId::of_signed_body`] of the signed inner body.
    pub id: ContentId,
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
    /// Padded, encrypted inner part.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The signed part, readable by members holding the epoch key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerBody {
    /// The collective.
    pub collective: CollectiveId,
    /// The epoch (must equal the outer one).
    pub epoch: EpochId,
    /// Who wrote it.
    pub author: MemberId,
    /// The author's sequence number for posts, starting at 1.
    pub seq: u64,
    /// The membership heads the author saw (sorted).
    pub heads: Vec<OpId>,
    /// When it was written, seconds since the Unix epoch.
    pub timestamp: u64,
    /// When it stops being shown and is deleted everywhere.
    pub expires: u64,
    /// The post.
    pub content: Content,
}

#[derive(Serialize, Deserialize)]
struct SignedInner {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "crate::serde_bytes64")]
    signature: [u8; 64],
}

/// A sealed envelope ready to send and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Content id (hash of the signed inner body, also in `bytes` in clear).
    pub id: ContentId,
    /// The outer encoding.
    pub bytes: Vec<u8>,
    /// Coarse timestamp, for set reconciliation.
    pub coarse_time: u64,
}

/// Why an envelope could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Bad encoding.
    #[error("envelope: {0}")]
    Decode(#[from] DecodeError),
    /// Content breaks a size or field rule.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A newer format.
    #[error("envelope version {0} is not supported; update Lookout")]
    UnsupportedVersion(u8),
    /// For another collective.
    #[error("envelope belongs to another collective")]
    WrongCollective,
    /// Encrypted under an epoch whose key is not held (yet): sync key deliveries.
    #[error("envelope is under an epoch whose key we do not hold")]
    UnknownEpoch(EpochId),
    /// Decryption failed.
    #[error("envelope does not decrypt")]
    Decrypt,
    /// Bad or non-zero padding, or an inner part that does not match the outer one.
    #[error("envelope is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The content id in clear is not the hash of the signed body inside: made by someone
    /// holding the epoch key to pass one post off as another.
    #[error("envelope's content id does not match the post inside")]
    WrongId,
    /// The author's signature does not verify.
    #[error("envelope has a bad signature")]
    BadSignature,
    /// Too large for any bucket.
    #[error("post is too large ({0} bytes encoded, at most 8190)")]
    TooLarge(usize),
}

impl EnvelopeError {
    /// Whether this is proof that the sending peer forwarded garbage (penalise it) rather than a
    /// state we have not caught up with (hold it and sync) or a newer format (ignore it).
    pub fn verdict(&self) -> Verdict {
        match self {
            EnvelopeError::UnknownEpoch(_) => Verdict::Hold,
            EnvelopeError::UnsupportedVersion(_) | EnvelopeError::WrongCollective => {
                Verdict::Ignore
            }
            _ => Verdict::Reject,
        }
    }
}

/// What to do with a message that did not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Proof of a broken or hostile sender: drop it and penalise the peer.
    Reject,
    /// Not wrong, just not for us now (expired, too early, over quota, newer format): drop quietly.
    Ignore,
    /// We lack state (membership ops or epoch key) to judge it: keep it aside and sync.
    Hold,
}

/// Seal `body` under `key` as `author`. Checks content rules first.
pub fn seal<R: RngCore + CryptoRng>(
    author: &Identity,
    key: &EpochKey,
    body: InnerBody,
    rng: &mut R,
) -> Result<Envelope, EnvelopeError> {
    body.content.validate()?;
    seal_unvalidated(author, key, body, rng)
}

/// [`seal`] without the content rules: what a hostile member's own software can send. Only for
/// tests of what receivers do with it; honest code calls [`seal`].
#[doc(hidden)]
pub fn seal_unvalidated<R: RngCore + CryptoRng>(
    author: &Identity,
    key: &EpochKey,
    body: InnerBody,
    rng: &mut R,
) -> Result<Envelope, EnvelopeError> {
    seal_signed_with(author.member_id(), key, body, rng, |inner| {
        author.sign(INNER_SIG_CONTEXT, inner)
    })
}

/// [`seal_unvalidated`] with a caller-made signature over the encoded inner body (signed under
/// [`INNER_SIG_CONTEXT`]): how a hostile member crafts a signature its own key made in an
/// unusual way (a mixed-order R, say). Only for tests.
#[doc(hidden)]
pub fn seal_signed_with<R: RngCore + CryptoRng>(
    author: MemberId,
    key: &EpochKey,
    mut body: InnerBody,
    rng: &mut R,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<Envelope, EnvelopeError> {
    body.heads.sort();
    body.heads.dedup();
    body.epoch = key.id();
    body.author = author;
    let inner = codec::encode(&body);
    let signature = sign(&inner);
    let id = ContentId::of_signed_body(&inner);
    let signed = codec::encode(&SignedInner {
        body: inner,
        signature,
    });
    let len = signed.len();
    let bucket = BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= len + 2)
        .ok_or(EnvelopeError::TooLarge(len))?;
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(bucket));
    plaintext.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
    plaintext.extend_from_slice(&signed);
    plaintext.resize(bucket, 0);

    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let mut outer = Outer {
        version: VERSION,
        collective_tag: body.collective.tag(),
        epoch: body.epoch,
        coarse_time: coarse(body.timestamp),
        id,
        nonce,
        ciphertext: Vec::new(),
    };
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &associated_data(&outer),
            },
        )
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok(Envelope {
        id,
        coarse_time: outer.coarse_time,
        bytes: codec::encode(&outer),
    })
}

/// Read only the outer part (no key needed): what a relay or the store index sees.
pub fn peek(bytes: &[u8]) -> Result<Outer, EnvelopeError> {
    let outer: Outer = codec::decode(bytes, MAX_ENVELOPE_BYTES)?;
    if outer.version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion(outer.version));
    }
    Ok(outer)
}

/// The content id an envelope claims, read without a key. Only [`open`] proves it: until then
/// it is a claim, good for finding duplicates of a post already held, never for refusing one.
pub fn id_of(bytes: &[u8]) -> Result<ContentId, EnvelopeError> {
    peek(bytes).map(|outer| outer.id)
}

/// An envelope that decrypted and whose signature verifies, not yet authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Content id.
    pub id: ContentId,
    /// Coarse timestamp from the outer part.
    pub coarse_time: u64,
    /// The signed inner part.
    pub body: InnerBody,
}

struct Decrypted {
    id: ContentId,
    outer: Outer,
    body: InnerBody,
    inner_bytes: Vec<u8>,
    signature: [u8; 64],
}

/// Decrypt and verify one envelope. `key_for` returns the held key of an epoch.
pub fn open<'k>(
    bytes: &[u8],
    collective: CollectiveId,
    key_for: impl Fn(&EpochId) -> Option<&'k EpochKey>,
) -> Result<Opened, EnvelopeError> {
    open_verified_by(bytes, collective, key_for, |author, ctx, body, sig| {
        identity::verify(author, ctx, body, sig)
    })
}

/// [`open`], with the signature checked by `verify` (the claimed author, context, signed
/// bytes, signature) in place of [`identity::verify`]: for a caller that keeps a
/// [`sig::KeyCache`]. `verify` must give [`identity::verify`]'s verdict.
pub fn open_verified_by<'k>(
    bytes: &[u8],
    collective: CollectiveId,
    key_for: impl Fn(&EpochId) -> Option<&'k EpochKey>,
    verify: impl FnOnce(&MemberId, &[u8], &[u8], &[u8; 64]) -> bool,
) -> Result<Opened, EnvelopeError> {
    let d = decrypt(bytes, collective, &key_for)?;
    if !verify(
        &d.body.author,
        INNER_SIG_CONTEXT,
        &d.inner_bytes,
        &d.signature,
    ) {
        return Err(EnvelopeError::BadSignature);
    }
    Ok(d.into_opened())
}

/// Decrypt and verify many envelopes, checking the signatures of the whole batch at once
/// ([`sig::verify_batch`]: the same rule as [`open`], so each verdict is exactly what [`open`]
/// would say; one bad signature refuses exactly its envelope).
pub fn open_batch<'k>(
    envelopes: &[&[u8]],
    collective: CollectiveId,
    key_for: impl Fn(&EpochId) -> Option<&'k EpochKey>,
) -> Vec<Result<Opened, EnvelopeError>> {
    let decrypted: Vec<Result<Decrypted, EnvelopeError>> = envelopes
        .iter()
        .map(|bytes| decrypt(bytes, collective, &key_for))
        .collect();
    let items: Vec<sig::Item<'_>> = decrypted
        .iter()
        .flatten()
        .map(|d| sig::Item {
            key: &d.body.author.0,
            ctx: INNER_SIG_CONTEXT,
            body: &d.inner_bytes,
            sig: &d.signature,
        })
        .collect();
    let mut verdicts = sig::verify_batch(&items).into_iter();
    decrypted
        .into_iter()
        .map(|d| {
            let d = d?;
            if verdicts.next() != Some(true) {
                return Err(EnvelopeError::BadSignature);
            }
            Ok(d.into_opened())
        })
        .collect()
}

/// Read an envelope this replica already accepted (the node keeps each post as its envelope
/// only, in its encrypted store, and decodes it when shown): decrypt and decode with every check
/// of [`open`] except the signature, which was verified when the post was accepted. Never use it
/// on bytes from the network: only on bytes read back from storage that authenticates them.
pub fn open_kept<'k>(
    bytes: &[u8],
    collective: CollectiveId,
    key_for: impl Fn(&EpochId) -> Option<&'k EpochKey>,
) -> Result<Opened, EnvelopeError> {
    decrypt(bytes, collective, &key_for).map(Decrypted::into_opened)
}

/// The padded plaintext (length, signed inner part, zero padding) of an envelope, if `key`
/// opens it, with no other check: for the forensic oracle of the node's store tests, which tries
/// every epoch key a seized device holds on every envelope it recovers.
pub fn plaintext_with(bytes: &[u8], key: &EpochKey) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let outer = peek(bytes).ok()?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &outer.ciphertext,
                aad: &associated_data(&outer),
            },
        )
        .ok()
        .map(zeroize::Zeroizing::new)
}

fn decrypt<'k>(
    bytes: &[u8],
    collective: CollectiveId,
    key_for: &impl Fn(&EpochId) -> Option<&'k EpochKey>,
) -> Result<Decrypted, EnvelopeError> {
    let outer = peek(bytes)?;
    if outer.collective_tag != collective.tag() {
        return Err(EnvelopeError::WrongCollective);
    }
    if !BUCKETS.iter().any(|b| b + 16 == outer.ciphertext.len()) {
        return Err(EnvelopeError::Inconsistent(
            "ciphertext is not a padded size",
        ));
    }
    let key = key_for(&outer.epoch).ok_or(EnvelopeError::UnknownEpoch(outer.epoch))?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let plaintext = zeroize::Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&outer.nonce),
                Payload {
                    msg: &outer.ciphertext,
                    aad: &associated_data(&outer),
                },
            )
            .map_err(|_| EnvelopeError::Decrypt)?,
    );
    let (len_bytes, rest) = plaintext
        .split_first_chunk::<2>()
        .ok_or(EnvelopeError::Inconsistent("short plaintext"))?;
    let len = usize::from(u16::from_le_bytes(*len_bytes));
    let (signed, padding) = rest
        .split_at_checked(len)
        .ok_or(EnvelopeError::Inconsistent("length beyond plaintext"))?;
    if padding.iter().any(|b| *b != 0) {
        return Err(EnvelopeError::Inconsistent("non-zero padding"));
    }
    let signed: SignedInner = codec::decode(signed, MAX_ENVELOPE_BYTES)?;
    if ContentId::of_signed_body(&signed.body) != outer.id {
        return Err(EnvelopeError::WrongId);
    }
    let body: InnerBody = decode_canonical(&signed.body, MAX_ENVELOPE_BYTES)?;
    if body.collective != collective {
        return Err(EnvelopeError::WrongCollective);
    }
    if body.epoch != outer.epoch {
        return Err(EnvelopeError::Inconsistent("inner and outer epochs differ"));
    }
    if coarse(body.timestamp) != outer.coarse_time {
        return Err(EnvelopeError::Inconsistent("inner and outer times differ"));
    }
    if body.heads.len() > MAX_HEADS || body.heads.windows(2).any(|w| w[0] >= w[1]) {
        return Err(EnvelopeError::Inconsistent("bad membership heads"));
    }
    body.content.validate()?;
    Ok(Decrypted {
        id: outer.id,
        outer,
        body,
        inner_bytes: signed.body,
        signature: signed.signature,
    })
}

impl Decrypted {
    fn into_opened(self) -> Opened {
        Opened {
            id: self.id,
            coarse_time: self.outer.coarse_time,
            body: self.body,
        }
    }
}

/// Why an opened post was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The author was not a member at the membership state the post names.
    #[error("the author was not a member at the state the post names")]
    NotAMember,
    /// The post names a state in which the author was already removed, or the author is removed
    /// and the post names their removal.
    #[error("the author had been removed")]
    AuthorRemoved,
    /// The epoch had been given to a member who is removed at the post's state (tainted or
    /// retired), or its write period is over.
    #[error("the post is under an epoch that may no longer be written to")]
    EpochNotWritable,
    /// The rotation that created the epoch has not arrived yet: wait for it.
    #[error("the rotation of the post's epoch has not arrived yet")]
    EpochUnconfirmed,
    /// Past its expiry.
    #[error("the post has expired")]
    Expired,
    /// Lives longer than the policy allows.
    #[error("the post's lifetime exceeds the collective's maximum")]
    LifetimeTooLong,
    /// Dated more than [`MAX_CLOCK_SKEW_SECS`] ahead.
    #[error("the post is dated in the future")]
    FromTheFuture,
    /// The author is over the daily posting quota.
    #[error("the author is over the daily posting quota")]
    OverQuota,
    /// Refers to a post that is not an alert (only alerts are edited, retracted, corroborated).
    #[error("the post refers to something that is not an alert")]
    NotAnAlert,
    /// An edit by someone other than the alert's author.
    #[error("only an alert's author may edit it")]
    NotTheAuthor,
    /// A retraction by someone who is neither the alert's author nor a moderator, and was not
    /// one at the state the retraction names either.
    #[error("only an alert's author or a moderator may retract it")]
    NotAModerator,
    /// A retraction by someone who was a moderator at the state it names but is not one in the
    /// current roster (demoted or removed since). Moderator rights are those of the current
    /// roster; an honest node may still hold and forward such a retraction, so it is not
    /// penalised.
    #[error("the retraction's author is no longer a moderator")]
    NoLongerModerator,
    /// A retraction that expires before the alert it withdraws: the alert would show again.
    #[error("the retraction expires before the alert it withdraws")]
    RetractionExpiresFirst,
}

impl Rejection {
    /// How to treat the sender.
    pub fn verdict(&self) -> Verdict {
        match self {
            Rejection::Expired
            | Rejection::FromTheFuture
            | Rejection::OverQuota
            | Rejection::NoLongerModerator => Verdict::Ignore,
            Rejection::EpochUnconfirmed => Verdict::Hold,
            _ => Verdict::Reject,
        }
    }
}

/// A post that passed every rule. Only [`Opened::authorize`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    opened: Opened,
}

impl Verified {
    /// Rebuild a post this replica verified and stored earlier, read back from its own
    /// authenticated, encrypted store. Never use it for bytes that came from anywhere else.
    pub fn restore_from_own_store(id: ContentId, coarse_time: u64, body: InnerBody) -> Self {
        Self {
            opened: Opened {
                id,
                coarse_time,
                body,
            },
        }
    }

    /// Content id.
    pub fn id(&self) -> ContentId {
        self.opened.id
    }
    /// The signed inner part.
    pub fn body(&self) -> &InnerBody {
        &self.opened.body
    }
    /// The author.
    pub fn author(&self) -> MemberId {
        self.opened.body.author
    }
    /// Coarse timestamp (for reconciliation).
    pub fn coarse_time(&self) -> u64 {
        self.opened.coarse_time
    }

    /// What the replica keeps of this post in memory.
    pub fn meta(&self) -> PostMeta {
        PostMeta::of(self.body())
    }

    /// Rules for a post that refers to `target`, the post its content names (an edit, retraction
    /// or corroboration), checked once the target is held: only alerts are referred to; only the
    /// author edits; only the author or a moderator of the `current` roster retracts, and a
    /// retraction lives at least as long as its alert. Authority comes from the current roster,
    /// never from the membership state the post names (`at_heads`, which its author chooses):
    /// `at_heads` only tells a former moderator ([`Rejection::NoLongerModerator`], ignored) from
    /// someone who never was one ([`Rejection::NotAModerator`], penalised). `target` is what the
    /// replica keeps of the target ([`Verified::meta`]) under the id `target_id`.
    pub fn check_reference(
        &self,
        target_id: ContentId,
        target: &PostMeta,
        at_heads: &Roster,
        current: &Roster,
    ) -> Result<(), Rejection> {
        let body = self.body();
        if body.content.target() != Some(target_id) || target.kind != PostKind::Alert {
            return Err(Rejection::NotAnAlert);
        }
        let author = body.author;
        let by_author = author == target.author;
        match &body.content {
            Content::Edit { .. } if !by_author => Err(Rejection::NotTheAuthor),
            Content::Retraction { .. } if !by_author && !current.is_moderator(&author) => {
                Err(if at_heads.is_moderator(&author) {
                    Rejection::NoLongerModerator
                } else {
                    Rejection::NotAModerator
                })
            }
            Content::Retraction { .. } if body.expires < target.expires => {
                Err(Rejection::RetractionExpiresFirst)
            }
            _ => Ok(()),
        }
    }

    /// Whether this post withdraws the post `target_id` (kept as `target`) now: see
    /// [`PostMeta::retracts`].
    pub fn retracts(&self, target_id: ContentId, target: &PostMeta, current: &Roster) -> bool {
        self.meta().retracts(target_id, target, current)
    }
}

/// What kind of post it is, without its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PostKind {
    /// [`Content::Alert`].
    Alert,
    /// [`Content::Edit`].
    Edit,
    /// [`Content::Retraction`].
    Retraction,
    /// [`Content::Corroboration`].
    Corroboration,
    /// [`Content::Reachability`].
    Reachability,
}

/// The few fields of a verified post that the replica's rules and indexes need: what a replica
/// keeps in memory for every live post, while the post itself stays on disk (about 90 bytes
/// instead of a few kilobytes of decoded text per post).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMeta {
    /// Who wrote it.
    pub author: MemberId,
    /// What kind of post.
    pub kind: PostKind,
    /// The alert it refers to (edits, retractions, corroborations).
    pub target: Option<ContentId>,
    /// When it was written (the signed timestamp; the coarse time is derived from it).
    pub timestamp: u64,
    /// When it expires.
    pub expires: u64,
}

impl PostMeta {
    /// What is kept of a post with this (verified) body.
    pub fn of(body: &InnerBody) -> Self {
        let kind = match &body.content {
            Content::Alert(_) => PostKind::Alert,
            Content::Edit { .. } => PostKind::Edit,
            Content::Retraction { .. } => PostKind::Retraction,
            Content::Corroboration { .. } => PostKind::Corroboration,
            Content::Reachability { .. } => PostKind::Reachability,
        };
        Self {
            author: body.author,
            kind,
            target: body.content.target(),
            timestamp: body.timestamp,
            expires: body.expires,
        }
    }

    /// The coarse time in the envelope's clear part (its position in reconciliation).
    pub fn coarse_time(&self) -> u64 {
        coarse(self.timestamp)
    }

    /// Whether it counts against the author's alert quota (everything but reachability posts).
    pub fn counts_against_quota(&self) -> bool {
        self.kind != PostKind::Reachability
    }

    /// Whether this post withdraws the post `target_id` (kept as `target`) now: a retraction of
    /// it by its author, or by someone who is a moderator in the `current` roster. A retraction
    /// stored while its author was a moderator stops counting once they are demoted or removed
    /// (another moderator can retract again); the author's own retraction always counts.
    pub fn retracts(&self, target_id: ContentId, target: &PostMeta, current: &Roster) -> bool {
        self.kind == PostKind::Retraction
            && self.target == Some(target_id)
            && (self.author == target.author || current.is_moderator(&self.author))
    }
}

impl Opened {
    /// Apply the collective's rules. `roster_at_heads` is the roster at the post's heads,
    /// `current` the replica's roster now, `epoch` what is known of the post's epoch, and
    /// `posts_that_day` how many posts of this author dated the same UTC day were accepted in
    /// the post's quota class: alerts and everything else that
    /// [counts against the quota](Content::counts_against_quota), or reachability posts.
    pub fn authorize(
        self,
        roster_at_heads: &Roster,
        current: &Roster,
        epoch: &EpochInfo,
        now: u64,
        posts_that_day: u32,
    ) -> Result<Verified, Rejection> {
        let body = &self.body;
        let author = body.author;
        let policy = current.policy();
        if roster_at_heads.is_removed(&author) {
            return Err(Rejection::AuthorRemoved);
        }
        if !roster_at_heads.is_member(&author) {
            return Err(Rejection::NotAMember);
        }
        match epoch.status(roster_at_heads) {
            EpochStatus::Unconfirmed => return Err(Rejection::EpochUnconfirmed),
            EpochStatus::Retired => return Err(Rejection::EpochNotWritable),
            EpochStatus::Live => {}
        }
        if !epoch.writable_at(body.timestamp, policy) {
            return Err(Rejection::EpochNotWritable);
        }
        if body.expires <= now {
            return Err(Rejection::Expired);
        }
        let lifetime = body.expires.saturating_sub(body.timestamp);
        let reachability = !body.content.counts_against_quota();
        if lifetime > policy.max_alert_secs() || (reachability && lifetime > MAX_REACHABILITY_SECS)
        {
            return Err(Rejection::LifetimeTooLong);
        }
        if body.timestamp > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(Rejection::FromTheFuture);
        }
        let quota = if reachability {
            MAX_REACHABILITY_PER_DAY
        } else {
            u32::from(policy.posts_per_day)
        };
        if posts_that_day >= quota {
            return Err(Rejection::OverQuota);
        }
        Ok(Verified { opened: self })
    }
}

/// The UTC day number of a timestamp (for quotas).
pub fn day_of(timestamp: u64) -> u64 {
    timestamp / 86_400
}

/// A timestamp rounded down to [`COARSE_SECS`].
pub fn coarse(timestamp: u64) -> u64 {
    timestamp - timestamp % COARSE_SECS
}

/// The outer header without its ciphertext (not copied).
fn associated_data(outer: &Outer) -> Vec<u8> {
    codec::encode(&Outer {
        version: outer.version,
        collective_tag: outer.collective_tag,
        epoch: outer.epoch,
        coarse_time: outer.coarse_time,
        id: outer.id,
        nonce: outer.nonce,
        ciphertext: Vec::new(),
    })
}
