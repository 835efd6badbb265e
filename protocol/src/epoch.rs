//! Group key epochs: the symmetric keys alerts are encrypted under, and how they reach members.
//!
//! An epoch key is 32 random bytes; its [`EpochId`] is a hash of the key, so two moderators who
//! rotate at the same moment make two distinct epochs instead of colliding on a counter. A
//! [`KeyDelivery`] carries an epoch key sealed separately to each recipient's X25519 key and is
//! signed by its author. Sealing is a multi-recipient DH-KEM: one fresh ephemeral X25519 key per
//! delivery, one Diffie-Hellman per recipient, a BLAKE3 key derivation binding the shared
//! secret to the ephemeral key, the recipient's keys, the collective and the epoch, and a
//! ChaCha20-Poly1305 seal of the epoch key under that one-time key (reusing the ephemeral
//! across recipients is safe for DH-based KEMs whose derivation binds the recipient key, per
//! Bellare, Boldyreva and Staddon, "Randomness re-use in multi-recipient encryption schemes",
//! PKC 2003). It costs one scalar multiplication per recipient where HPKE costs two.
//!
//! A delivery is **padded**: its signed body is exactly [`padded_body_len`] bytes for the
//! bucket [`delivery_slots`] of its recipient count (a power of two, at least 8), so a
//! rotation's size tells an observer the collective's size only to within a factor of two. The
//! padding is zero bytes inside the signed body, fully determined by the share count, and
//! checked before the signature: it is never trusted for anything, cannot be altered without
//! breaking the signature, and cannot be longer than the decoding cap.
//!
//! A *rotation* creates an epoch for every member at a membership state; a *share* gives an
//! existing epoch to members who lack it (a newly admitted member gets the live epochs so they
//! can read alerts posted before they joined).
//!
//! [`EpochBook`] tracks the epochs a replica knows and decides which one to write under: an epoch
//! is *retired* (readable, never written under again) once anyone is removed who was not already
//! removed when it was rotated, so a removal always leads to a fresh rotation, and alerts posted
//! after it are unreadable to the removed member.
//!
//! What a replica learns about an epoch only ever widens what may be written under it: a later
//! delivery can push its write deadline later or name more removals it came after, never the
//! reverse. Any member holding the key can sign a delivery of it, so a rule a delivery could
//! tighten would let one member make every node refuse honest alerts written before it arrived.
//!
//! Only its recipient can check a sealed share, so a share that does not open is no reason to
//! refuse a delivery (everyone else may take it, and whoever forwarded it could not check it):
//! [`EpochBook::record`] keeps it as [`Recorded::Unreadable`], remembers its signer, and the
//! epoch stays among those to ask a member for ([`EpochBook::lacking`]); a member answers with a
//! share only if the one asking is entitled to it ([`EpochBook::shareable`]).

use std::collections::{BTreeMap, BTreeSet};

use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::{self, DecodeError};
use crate::identity::{self, Identity, PublicIdentity};
use crate::ids::{context, hash, CollectiveId, DeliveryId, EpochId, MemberId, OpId};
use crate::membership::{decode_canonical, MembersAt, Policy, Roster};

/// Delivery format version: the first byte of every signed delivery body.
pub const DELIVERY_VERSION: u8 = 2;
/// Largest encoded key delivery (2,048 padded slots fit).
pub const MAX_DELIVERY_BYTES: usize = 256 * 1024;
/// Most recipients in one delivery.
pub const MAX_RECIPIENTS: usize = 2000;
/// Most membership heads one delivery names.
pub const MAX_DELIVERY_HEADS: usize = 64;
/// Fewest share slots a delivery is padded to.
pub const MIN_DELIVERY_SLOTS: usize = 8;
/// Encoded size of one share: recipient, agreement key, length-prefixed 48-byte sealed key.
pub const SHARE_SLOT_BYTES: usize = 32 + 32 + 1 + SEALED_KEY_BYTES;
/// The sealed epoch key: 32 bytes and a 16-byte tag.
pub const SEALED_KEY_BYTES: usize = 48;
/// Room in every padded body for everything but the shares, whatever the heads and date:
/// version 1, collective, author, epoch 32 each, kind 1, heads 1 + 64·32, timestamp ≤ 10,
/// ephemeral key 32, share count ≤ 2, padding length ≤ 3.
pub const DELIVERY_HEADER_BYTES: usize =
    1 + 32 * 3 + 1 + (1 + MAX_DELIVERY_HEADS * 32) + 10 + 32 + 2 + 3;
/// After an epoch stops being new (its rotation period), writers have this long to notice.
pub const WRITE_GRACE_SECS: u64 = 86_400;
/// Most epochs one key request names (a member lacks few; an honest node asks for the newest).
pub const MAX_KEY_REQUEST_EPOCHS: usize = 16;
const DELIVERY_SIG_CONTEXT: &[u8] = b"lookout key delivery v2";

/// The share slots a delivery to `recipients` members is padded to: the next power of two, at
/// least [`MIN_DELIVERY_SLOTS`].
pub fn delivery_slots(recipients: usize) -> usize {
    recipients.next_power_of_two().max(MIN_DELIVERY_SLOTS)
}

/// The exact length of a signed delivery body padded to `slots` share slots.
pub fn padded_body_len(slots: usize) -> usize {
    DELIVERY_HEADER_BYTES + slots * SHARE_SLOT_BYTES
}

/// The zero padding that makes `unpadded` (an encoded body whose padding is empty, so ending in
/// the one-byte length 0) exactly `target` bytes long, or `None` if it cannot.
pub(crate) fn padding_for(unpadded: usize, target: usize) -> Option<usize> {
    let base = unpadded.checked_sub(1)?;
    (1..=3).find_map(|prefix| {
        let pad = target.checked_sub(base + prefix)?;
        (varint_len(pad) == prefix).then_some(pad)
    })
}

fn varint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// A group key. Not `Debug`; zeroized on drop.
#[derive(Clone)]
pub struct EpochKey(Zeroizing<[u8; 32]>);

impl EpochKey {
    /// A fresh key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Rebuild a key from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key, for the encrypted store.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    /// The epoch's id.
    pub fn id(&self) -> EpochId {
        EpochId(hash(context::EPOCH_ID, &[self.0.as_ref()]))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Whether a delivery creates an epoch or hands an existing one to more members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryKind {
    /// A new epoch for every member at the named membership state.
    Rotation,
    /// An existing epoch for some members.
    Share,
}

/// One recipient's sealed copy of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedShare {
    /// Who can open it.
    pub recipient: MemberId,
    /// The X25519 key it was sealed to (so a later key rotation does not confuse the recipient).
    pub agreement: [u8; 32],
    /// The epoch key sealed (32 bytes + 16-byte tag).
    pub ciphertext: Vec<u8>,
}

/// The signed content of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryBody {
    /// [`DELIVERY_VERSION`].
    pub version: u8,
    /// The collective.
    pub collective: CollectiveId,
    /// Who made it.
    pub author: MemberId,
    /// Which epoch.
    pub epoch: EpochId,
    /// Rotation or share.
    pub kind: DeliveryKind,
    /// The membership state the recipients were taken from (sorted).
    pub heads: Vec<OpId>,
    /// When, seconds since the Unix epoch.
    pub timestamp: u64,
    /// The delivery's ephemeral X25519 public key, shared by all its shares.
    pub ephemeral: [u8; 32],
    /// One sealed copy per recipient, sorted by recipient.
    pub shares: Vec<SealedShare>,
    /// Zero bytes making the encoded body exactly [`padded_body_len`]`(`[`delivery_slots`]`(n))`
    /// long for `n` shares. Set by [`KeyDelivery::create`] and [`KeyDelivery::sign_body`].
    pub padding: Vec<u8>,
}

/// A verified key delivery (signature and structure; authority is checked against a roster by
/// [`KeyDelivery::check_authority`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDelivery {
    id: DeliveryId,
    body: DeliveryBody,
    encoded: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SignedBytes {
    body: Vec<u8>,
    #[serde(with = "crate::serde_bytes64")]
    signature: [u8; 64],
}

/// Why an epoch key or delivery was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// Bad encoding.
    #[error("key delivery: {0}")]
    Decode(#[from] DecodeError),
    /// A format version this software does not know.
    #[error("key delivery version {0} is not supported; update Lookout")]
    UnsupportedVersion(u8),
    /// Bad signature.
    #[error("key delivery has a bad signature")]
    BadSignature,
    /// Another collective.
    #[error("key delivery belongs to another collective")]
    WrongCollective,
    /// Structural rule broken.
    #[error("invalid key delivery: {0}")]
    Structure(&'static str),
    /// The author or a recipient had no right to it at the named state.
    #[error("key delivery not allowed: {0}")]
    NotAllowed(&'static str),
    /// Sealing failed (a recipient key is invalid).
    #[error("could not seal the key to a recipient")]
    Seal,
    /// Our share did not open, or opened to a key with another id.
    #[error("our copy of the epoch key does not open")]
    BadShare,
}

impl KeyDelivery {
    /// Seal `key` to each of `recipients` and sign.
    #[allow(clippy::too_many_arguments)]
    pub fn create<R: RngCore + CryptoRng>(
        author: &Identity,
        collective: CollectiveId,
        key: &EpochKey,
        kind: DeliveryKind,
        mut heads: Vec<OpId>,
        now: u64,
        recipients: &[PublicIdentity],
        rng: &mut R,
    ) -> Result<Self, EpochError> {
        heads.sort();
        heads.dedup();
        let epoch = key.id();
        let mut scalar = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(scalar.as_mut());
        let ephemeral = StaticSecret::from(*scalar);
        let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
        let mut shares = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let shared = x25519(&ephemeral, &scalar, &recipient.agreement);
            if shared.iter().all(|b| *b == 0) {
                // A weak key (refused when identities are verified, so only from a roster made
                // before that rule): anyone could open a share sealed to it. Its holder gets
                // no share; everyone else still does, so one bad key cannot block a rotation.
                continue;
            }
            let wrap = wrapping_key(
                &shared,
                &ephemeral_public,
                &recipient.agreement,
                &recipient.member,
                collective,
                epoch,
            );
            let ciphertext = ChaCha20Poly1305::new(Key::from_slice(wrap.as_ref()))
                .encrypt(
                    &Nonce::default(),
                    Payload {
                        msg: key.as_bytes(),
                        aad: &recipient.member.0,
                    },
                )
                .map_err(|_| EpochError::Seal)?;
            shares.push(SealedShare {
                recipient: recipient.member,
                agreement: recipient.agreement,
                ciphertext,
            });
        }
        shares.sort_by_key(|s| s.recipient);
        shares.dedup_by(|a, b| a.recipient == b.recipient);
        let body = DeliveryBody {
            version: DELIVERY_VERSION,
            collective,
            author: author.member_id(),
            epoch,
            kind,
            heads,
            timestamp: now,
            ephemeral: ephemeral_public,
            shares,
            padding: Vec::new(),
        };
        Self::sign_body(author, &body)
    }

    /// Sign `body`, padded to its bucket, without sealing anything: for tools that must make
    /// deliveries the rules forbid (a rogue member's forgeries in tests). Whatever padding the
    /// body holds is replaced by the one its share count calls for. The result passes the same
    /// structural checks as a received delivery, so it cannot be anything a member's key could
    /// not sign.
    pub fn sign_body(author: &Identity, body: &DeliveryBody) -> Result<Self, EpochError> {
        let collective = body.collective;
        let mut body = body.clone();
        body.padding = Vec::new();
        let target = padded_body_len(delivery_slots(body.shares.len()));
        let pad = padding_for(codec::encode(&body).len(), target).ok_or(EpochError::Structure(
            "the delivery does not fit its bucket",
        ))?;
        body.padding = vec![0; pad];
        let body = codec::encode(&body);
        let signature = author.sign(DELIVERY_SIG_CONTEXT, &body);
        Self::decode(&codec::encode(&SignedBytes { body, signature }), collective)
    }

    /// Decode and verify a delivery received for `collective`.
    pub fn decode(bytes: &[u8], collective: CollectiveId) -> Result<Self, EpochError> {
        let signed: SignedBytes = codec::decode(bytes, MAX_DELIVERY_BYTES)?;
        match signed.body.first() {
            Some(&DELIVERY_VERSION) => {}
            Some(other) => return Err(EpochError::UnsupportedVersion(*other)),
            None => return Err(DecodeError::Malformed.into()),
        }
        let body: DeliveryBody = decode_canonical(&signed.body, MAX_DELIVERY_BYTES)?;
        if body.collective != collective {
            return Err(EpochError::WrongCollective);
        }
        if body.shares.is_empty() || body.shares.len() > MAX_RECIPIENTS {
            return Err(EpochError::Structure("a delivery has 1 to 2000 recipients"));
        }
        // The padding is fixed by the share count: exactly the bucket's length, all zero.
        if signed.body.len() != padded_body_len(delivery_slots(body.shares.len()))
            || body.padding.iter().any(|b| *b != 0)
        {
            return Err(EpochError::Structure(
                "the padding does not fill the delivery's size bucket exactly",
            ));
        }
        if body
            .shares
            .windows(2)
            .any(|w| w[0].recipient >= w[1].recipient)
        {
            return Err(EpochError::Structure(
                "recipients must be sorted and distinct",
            ));
        }
        if body.heads.windows(2).any(|w| w[0] >= w[1]) || body.heads.len() > MAX_DELIVERY_HEADS {
            return Err(EpochError::Structure("bad membership heads"));
        }
        if body
            .shares
            .iter()
            .any(|s| s.ciphertext.len() != SEALED_KEY_BYTES)
        {
            return Err(EpochError::Structure("a sealed key is 48 bytes"));
        }
        if !identity::verify(
            &body.author,
            DELIVERY_SIG_CONTEXT,
            &signed.body,
            &signed.signature,
        ) {
            return Err(EpochError::BadSignature);
        }
        Ok(Self {
            id: DeliveryId(hash(context::DELIVERY_ID, &[bytes])),
            body,
            encoded: bytes.to_vec(),
        })
    }

    /// Check the delivery against the roster at its named heads: the author was a member, every
    /// recipient was a member with that agreement key, and a rotation reached every member.
    /// `roster_at_heads` is the [`Roster`] there, or what the log kept of that state
    /// ([`Membership`](crate::membership::Membership)): the same answers.
    pub fn check_authority(
        &self,
        roster_at_heads: &(impl MembersAt + ?Sized),
    ) -> Result<(), EpochError> {
        if !roster_at_heads.is_member(&self.body.author) {
            return Err(EpochError::NotAllowed("the author was not a member"));
        }
        for share in &self.body.shares {
            let agreement = roster_at_heads
                .agreement(&share.recipient)
                .ok_or(EpochError::NotAllowed("a recipient was not a member"))?;
            if agreement != share.agreement {
                return Err(EpochError::NotAllowed(
                    "a share is sealed to an outdated encryption key",
                ));
            }
        }
        // Recipients as a set: a rotation to 1,000 members was checked in 1,000 × 1,000 steps.
        if self.body.kind == DeliveryKind::Rotation && {
            let recipients: BTreeSet<MemberId> = self.recipients().collect();
            roster_at_heads
                .member_ids()
                .any(|m| !recipients.contains(&m))
        } {
            return Err(EpochError::NotAllowed("a rotation must reach every member"));
        }
        Ok(())
    }

    /// Open our share, if there is one, with whichever of `me`'s agreement secrets it was sealed
    /// to (a share sealed to a key `me` no longer holds does not open). The key is checked
    /// against the epoch id.
    pub fn open(&self, me: &Identity) -> Option<Result<EpochKey, EpochError>> {
        let member = me.member_id();
        let share = self.body.shares.iter().find(|s| s.recipient == member)?;
        Some(open_share(&self.body, share, me))
    }

    /// The id.
    pub fn id(&self) -> DeliveryId {
        self.id
    }
    /// The signed content.
    pub fn body(&self) -> &DeliveryBody {
        &self.body
    }
    /// The epoch delivered.
    pub fn epoch(&self) -> EpochId {
        self.body.epoch
    }
    /// The recipients.
    pub fn recipients(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.body.shares.iter().map(|s| s.recipient)
    }
    /// The bytes as sent and stored.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// X25519(`scalar`, `public`), as the recipient's X25519 computes it, but on the Edwards form of
/// the curve, whose variable-base multiplication uses the vector backend where the CPU has one
/// (about 1.5 times as fast as the Montgomery ladder here). The clamped scalar clears any small
/// order component exactly as X25519 does, and a `u` with no Edwards point (not on the curve)
/// goes through the ladder, so the result is X25519's for every input.
fn x25519(secret: &StaticSecret, scalar: &[u8; 32], public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    match MontgomeryPoint(*public).to_edwards(0) {
        Some(point) => Zeroizing::new(point.mul_clamped(*scalar).to_montgomery().to_bytes()),
        None => Zeroizing::new(secret.diffie_hellman(&PublicKey::from(*public)).to_bytes()),
    }
}

/// The one-time key one share is sealed under: BLAKE3 key derivation over the X25519 shared
/// secret and everything it must be bound to.
fn wrapping_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    agreement: &[u8; 32],
    recipient: &MemberId,
    collective: CollectiveId,
    epoch: EpochId,
) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hash(
        context::DELIVERY_WRAP,
        &[
            shared,
            ephemeral,
            agreement,
            &recipient.0,
            &collective.0,
            &epoch.0,
        ],
    ))
}

fn open_share(
    body: &DeliveryBody,
    share: &SealedShare,
    me: &Identity,
) -> Result<EpochKey, EpochError> {
    let secret = me
        .agreement_secret_for(&share.agreement)
        .ok_or(EpochError::BadShare)?;
    let shared = secret.diffie_hellman(&PublicKey::from(body.ephemeral));
    if !shared.was_contributory() {
        return Err(EpochError::BadShare);
    }
    let wrap = wrapping_key(
        shared.as_bytes(),
        &body.ephemeral,
        &share.agreement,
        &share.recipient,
        body.collective,
        body.epoch,
    );
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(wrap.as_ref()))
            .decrypt(
                &Nonce::default(),
                Payload {
                    msg: &share.ciphertext,
                    aad: &share.recipient.0,
                },
            )
            .map_err(|_| EpochError::BadShare)?,
    );
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| EpochError::BadShare)?;
    let key = EpochKey::from_bytes(bytes);
    if key.id() != body.epoch {
        return Err(EpochError::BadShare);
    }
    Ok(key)
}

/// What a replica knows about one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochInfo {
    /// The epoch.
    pub id: EpochId,
    /// When its rotation was made: the latest (timestamp, author) among its rotation deliveries
    /// (an honest rotation is one delivery or several identical ones; a member holding the key
    /// can add copies, and only a later date, which widens the write period, may win).
    pub created: u64,
    /// Who rotated (the author of that delivery).
    pub creator: MemberId,
    /// Everyone any delivery of it was sealed to.
    pub recipients: BTreeSet<MemberId>,
    /// Whether this replica holds the key.
    pub have_key: bool,
    /// Whether the rotation that created the epoch was seen. Until then the epoch may be read
    /// but is never written under, and posts under it wait (the rotation names the membership
    /// state that decides when the epoch retires).
    pub rotation_seen: bool,
    /// Members already removed at the membership state of a rotation delivery of it (the union
    /// over its rotation deliveries): an honest node never gives the epoch to them.
    pub removed_before: BTreeSet<MemberId>,
    /// Signers of deliveries whose share for this replica did not open. The deliveries are kept
    /// (their other shares may be fine, and only we can check ours), the key is not held until
    /// a share that opens arrives, and moderators are shown who signed the junk.
    pub unreadable_from: BTreeSet<MemberId>,
}

/// Whether an epoch may be written under, judged against a roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochStatus {
    /// The rotation that created it has not been seen yet.
    Unconfirmed,
    /// May be written under.
    Live,
    /// Someone removed since its rotation may hold it: readable, never written under again.
    Retired,
}

impl EpochInfo {
    /// Whether an alert with timestamp `at` may still be written under this epoch.
    pub fn writable_at(&self, at: u64, policy: &Policy) -> bool {
        at <= self.write_deadline(policy)
    }

    /// The last moment an alert may be written under this epoch.
    pub fn write_deadline(&self, policy: &Policy) -> u64 {
        self.created
            .saturating_add(u64::from(policy.rotation_days) * 86_400)
            .saturating_add(WRITE_GRACE_SECS)
    }

    /// When the key may be deleted: every alert written under it has expired by then.
    pub fn delete_after(&self, policy: &Policy) -> u64 {
        self.write_deadline(policy)
            .saturating_add(policy.max_alert_secs())
    }

    /// The epoch's status at `roster`. It is retired as soon as anyone is removed who was not
    /// already removed when it was rotated: that member may have received it, by the rotation
    /// or by a share this replica has not seen. Who the known deliveries name does not matter: a
    /// share to someone removed before the rotation can only be forged by a member holding the
    /// key, who could hand it over anyway.
    pub fn status(&self, roster: &Roster) -> EpochStatus {
        if !self.rotation_seen {
            return EpochStatus::Unconfirmed;
        }
        if roster
            .removed()
            .keys()
            .any(|m| !self.removed_before.contains(m))
        {
            return EpochStatus::Retired;
        }
        EpochStatus::Live
    }

    /// Whether the epoch is retired at `roster` (see [`EpochInfo::status`]).
    pub fn retired(&self, roster: &Roster) -> bool {
        self.status(roster) == EpochStatus::Retired
    }
}

/// The epochs a replica knows, and the keys it holds.
#[derive(Default)]
pub struct EpochBook {
    epochs: BTreeMap<EpochId, EpochInfo>,
    keys: BTreeMap<EpochId, EpochKey>,
    /// Keys read back from the replica's own key file, taken when their epoch's first delivery
    /// is recorded (its share may be sealed to an agreement key since destroyed).
    preloaded: BTreeMap<EpochId, EpochKey>,
}

/// What [`EpochBook::record`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The delivery carried a key for us, now held.
    NewKey(EpochId),
    /// Metadata only (not for us, or a key already held).
    Noted,
    /// The delivery names us but our share does not open. The delivery is still valid for
    /// everyone else and is kept (a forwarder cannot check our share, so nobody is to blame
    /// but its signer); the key is not held: ask a member who holds it for a share
    /// ([`EpochBook::lacking`]).
    Unreadable {
        /// The epoch whose key we still lack.
        epoch: EpochId,
        /// Who signed the share that does not open.
        signer: MemberId,
    },
}

/// Why a member's request for an epoch key is not answered with the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareRefusal {
    /// The one asking is not a current member.
    #[error("the one asking is not a current member")]
    NotAMember,
    /// This replica does not know the epoch or does not hold its key.
    #[error("this replica does not hold that epoch's key")]
    KeyNotHeld,
    /// The epoch's rotation has not been seen, so who may have it is not known yet.
    #[error("the epoch's rotation has not been seen")]
    Unconfirmed,
    /// The one asking was removed before the epoch was rotated.
    #[error("the one asking was removed before the epoch was rotated")]
    RemovedBefore,
    /// The epoch is retired and no delivery of it named the one asking: a member admitted after
    /// a removal does not get the keys from before it.
    #[error("the epoch is retired and was never given to the one asking")]
    RetiredBeforeJoining,
}

impl EpochBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a delivery already checked with [`KeyDelivery::check_authority`] against
    /// `roster_at_heads` (the roster at the delivery's heads), opening our share if it has one.
    pub fn record(
        &mut self,
        delivery: &KeyDelivery,
        me: &Identity,
        roster_at_heads: &(impl MembersAt + ?Sized),
    ) -> Result<Recorded, EpochError> {
        let body = delivery.body();
        let info = self.epochs.entry(body.epoch).or_insert_with(|| EpochInfo {
            id: body.epoch,
            created: body.timestamp,
            creator: body.author,
            recipients: BTreeSet::new(),
            have_key: false,
            rotation_seen: false,
            removed_before: BTreeSet::new(),
            unreadable_from: BTreeSet::new(),
        });
        if body.kind == DeliveryKind::Rotation {
            if !info.rotation_seen || (body.timestamp, body.author) > (info.created, info.creator) {
                info.created = body.timestamp;
                info.creator = body.author;
            }
            info.rotation_seen = true;
            info.removed_before.extend(roster_at_heads.removed_ids());
        }
        info.recipients.extend(delivery.recipients());
        if !info.have_key {
            if let Some(key) = self.preloaded.remove(&body.epoch) {
                info.have_key = true;
                self.keys.insert(body.epoch, key);
            }
        }
        // A share sealed to an agreement key this identity has replaced and destroyed cannot
        // be opened, by design, and is nobody's fault: the key is held from the key file, or
        // asked for again ([`EpochBook::lacking`]).
        let me_id = me.member_id();
        if body
            .shares
            .iter()
            .any(|s| s.recipient == me_id && !me.holds_agreement(&s.agreement))
        {
            return Ok(Recorded::Noted);
        }
        // Our share is opened even when the key is already held: a junk share is reported
        // whichever order the deliveries came in (a store is loaded in id order).
        match delivery.open(me) {
            Some(Ok(_)) if info.have_key => Ok(Recorded::Noted),
            Some(Ok(key)) => {
                info.have_key = true;
                self.keys.insert(body.epoch, key);
                Ok(Recorded::NewKey(body.epoch))
            }
            Some(Err(_)) => {
                info.unreadable_from.insert(body.author);
                Ok(Recorded::Unreadable {
                    epoch: body.epoch,
                    signer: body.author,
                })
            }
            None => Ok(Recorded::Noted),
        }
    }

    /// Take back keys kept in the replica's own key file (see [`EpochBook::held_keys`]): each
    /// is held once a delivery of its epoch is recorded. A key whose id does not match is
    /// ignored.
    pub fn preload(&mut self, keys: impl IntoIterator<Item = EpochKey>) {
        for key in keys {
            self.preloaded.insert(key.id(), key);
        }
    }

    /// Every key held, to keep in a key file that is overwritten when they change, so an
    /// expired epoch's key is gone for good.
    pub fn held_keys(&self) -> impl Iterator<Item = &EpochKey> {
        self.keys.values()
    }

    /// Put back a key and its info from storage.
    pub fn restore(&mut self, info: EpochInfo, key: Option<EpochKey>) {
        let mut info = info;
        info.have_key = key.is_some();
        if let Some(key) = key {
            self.keys.insert(info.id, key);
        }
        self.epochs.insert(info.id, info);
    }

    /// An epoch's info.
    pub fn info(&self, id: &EpochId) -> Option<&EpochInfo> {
        self.epochs.get(id)
    }

    /// Every known epoch.
    pub fn epochs(&self) -> impl Iterator<Item = &EpochInfo> {
        self.epochs.values()
    }

    /// The key of an epoch, if held.
    pub fn key(&self, id: &EpochId) -> Option<&EpochKey> {
        self.keys.get(id)
    }

    /// The epoch to write new posts under at `now`: held, live, still writable, newest first
    /// (ties by id). `None` means a rotation is needed. Members who joined after the epoch's
    /// rotation get it by a share (see [`EpochBook::missing_recipients`]).
    pub fn write_epoch(&self, roster: &Roster, now: u64) -> Option<EpochId> {
        let policy = roster.policy();
        self.epochs
            .values()
            .filter(|e| e.have_key && e.status(roster) == EpochStatus::Live)
            .filter(|e| e.writable_at(now, policy))
            .max_by_key(|e| (e.created, e.id))
            .map(|e| e.id)
    }

    /// Whether `member` may be given epoch `id`'s key now, by a share sealed to their current
    /// key: the key of whoever asks and is entitled, or why not. Entitled is a current member
    /// not removed before the epoch's rotation, for an epoch that is live (as for a newly
    /// admitted member, [`EpochBook::missing_recipients`]) or, once retired, only if some
    /// delivery of it already named them (a member whose share was junk still gets the alerts
    /// of before the removal; a member admitted after it does not).
    pub fn shareable(
        &self,
        id: &EpochId,
        member: &MemberId,
        roster: &Roster,
    ) -> Result<&EpochKey, ShareRefusal> {
        if !roster.is_member(member) {
            return Err(ShareRefusal::NotAMember);
        }
        let (Some(info), Some(key)) = (self.epochs.get(id), self.keys.get(id)) else {
            return Err(ShareRefusal::KeyNotHeld);
        };
        if info.removed_before.contains(member) {
            return Err(ShareRefusal::RemovedBefore);
        }
        match info.status(roster) {
            EpochStatus::Unconfirmed => Err(ShareRefusal::Unconfirmed),
            EpochStatus::Retired if !info.recipients.contains(member) => {
                Err(ShareRefusal::RetiredBeforeJoining)
            }
            EpochStatus::Live | EpochStatus::Retired => Ok(key),
        }
    }

    /// Epochs `me` is entitled to (as [`EpochBook::shareable`] judges) whose key this replica
    /// lacks, newest first, at most [`MAX_KEY_REQUEST_EPOCHS`]: what to ask a member for.
    pub fn lacking(&self, me: &MemberId, roster: &Roster, now: u64) -> Vec<EpochId> {
        if !roster.is_member(me) {
            return Vec::new();
        }
        let policy = roster.policy();
        let mut wanted: Vec<&EpochInfo> = self
            .epochs
            .values()
            .filter(|e| !e.have_key && !e.removed_before.contains(me))
            .filter(|e| e.delete_after(policy) >= now)
            .filter(|e| match e.status(roster) {
                EpochStatus::Unconfirmed => false,
                EpochStatus::Live => true,
                EpochStatus::Retired => e.recipients.contains(me),
            })
            .collect();
        wanted.sort_by_key(|e| std::cmp::Reverse((e.created, e.id)));
        wanted
            .into_iter()
            .take(MAX_KEY_REQUEST_EPOCHS)
            .map(|e| e.id)
            .collect()
    }

    /// Members of `roster` missing from epoch `id`'s recipients (they need a share).
    pub fn missing_recipients(&self, id: &EpochId, roster: &Roster) -> Vec<PublicIdentity> {
        let Some(info) = self.epochs.get(id) else {
            return Vec::new();
        };
        roster
            .members()
            .filter(|m| !info.recipients.contains(&m.identity.member))
            .map(|m| m.identity.clone())
            .collect()
    }

    /// Forget keys (and info) of epochs whose every alert has expired at `now`.
    pub fn expire(&mut self, policy: &Policy, now: u64) -> Vec<EpochId> {
        let gone: Vec<EpochId> = self
            .epochs
            .values()
            .filter(|e| e.delete_after(policy) < now)
            .map(|e| e.id)
            .collect();
        for id in &gone {
            self.epochs.remove(id);
            self.keys.remove(id);
        }
        // Preloaded keys of epochs no delivery named are not kept for ever either.
        let known = &self.epochs;
        self.preloaded.retain(|id, _| known.contains_key(id));
        gone
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// A recipient whose agreement key has only a small-order component (u = 0) would get a
    /// share anyone could open: it gets none, and everyone else still gets theirs, so one weak
    /// key in a roster cannot stop a rotation (and with it a revocation's cut-off).
    #[test]
    fn a_weak_agreement_key_gets_no_share_and_blocks_no_rotation() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let author = Identity::generate(&mut rng);
        let honest = Identity::generate(&mut rng);
        let mut weak = Identity::generate(&mut rng).public();
        weak.agreement = [0u8; 32];
        let key = EpochKey::generate(&mut rng);
        let delivery = KeyDelivery::create(
            &author,
            CollectiveId([7; 32]),
            &key,
            DeliveryKind::Rotation,
            Vec::new(),
            1,
            &[author.public(), honest.public(), weak.clone()],
            &mut rng,
        )
        .unwrap();
        let recipients: Vec<MemberId> = delivery.recipients().collect();
        assert!(!recipients.contains(&weak.member));
        assert_eq!(recipients.len(), 2);
        assert_eq!(delivery.open(&honest).unwrap().unwrap().id(), key.id());
    }

    /// The Edwards-form multiplication the sealer uses gives exactly what the recipient's X25519
    /// computes: for honest keys, for keys with a small-order component, and for `u`
    /// coordinates off the curve.
    #[test]
    fn edwards_dh_is_x25519() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for i in 0..64 {
            let mut scalar = [0u8; 32];
            rng.fill_bytes(&mut scalar);
            let secret = StaticSecret::from(scalar);
            let honest = PublicKey::from(&StaticSecret::random_from_rng(&mut rng)).to_bytes();
            let torsioned = (MontgomeryPoint(honest).to_edwards(0).unwrap() + EIGHT_TORSION[i % 8])
                .to_montgomery()
                .to_bytes();
            let mut random = [0u8; 32];
            rng.fill_bytes(&mut random);
            for public in [honest, torsioned, random] {
                let ladder = secret.diffie_hellman(&PublicKey::from(public)).to_bytes();
                assert_eq!(*x25519(&secret, &scalar, &public), ladder);
            }
        }
    }
}
