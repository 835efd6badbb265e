//! Range-based set reconciliation between two replicas of the alert log.
//!
//! Two peers each hold a set of [`Item`]s — `(timestamp, id)` pairs ordered by
//! timestamp, then id — and want to learn which ids each of them is missing
//! without sending their whole sets. This module is a sans-IO implementation of
//! range-based set reconciliation in the style of Doug Hoyte's Negentropy
//! protocol, version 1: the peers exchange fingerprints of ranges of their
//! sets, split ranges whose fingerprints differ into 16 buckets, and list ids
//! outright once a range holds few items. Each message looks 16 times closer,
//! so two replicas of `n` items that differ in a few places converge in about
//! `log16(n) / 2` round trips (2 for `n = 50_000`), using bandwidth
//! proportional to the difference, not to `n`.
//!
//! The initiator calls [`Reconciler::initiate`] and then
//! [`Reconciler::reconcile`] on every reply until it returns `None`; the
//! responder calls [`Reconciler::respond`] on every message it receives. Only
//! the initiator learns the difference. Transport, timeouts and per-peer quotas
//! are the caller's business.
//!
//! ```
//! use lookout_protocol::reconcile::{Item, Limits, Reconciler};
//!
//! let item = |t: u64, b: u8| Item { timestamp: t, id: [b; 32] };
//! let ours = [item(10, 1), item(20, 2), item(30, 3)];
//! let theirs = [item(10, 1), item(25, 9), item(30, 3)];
//!
//! let mut initiator = Reconciler::new(&ours, Limits::default())?;
//! let mut responder = Reconciler::new(&theirs, Limits::default())?;
//! let (mut have, mut need) = (Vec::new(), Vec::new());
//! let mut msg = initiator.initiate();
//! loop {
//!     let reply = responder.respond(&msg)?;
//!     match initiator.reconcile(&reply, &mut have, &mut need)? {
//!         Some(next) => msg = next,
//!         None => break,
//!     }
//! }
//! assert_eq!(have, vec![[2; 32]]); // we have it, they lack it
//! assert_eq!(need, vec![[9; 32]]); // they have it, we lack it
//! # Ok::<(), lookout_protocol::reconcile::ReconcileError>(())
//! ```
//!
//! # Wire format (version 1)
//!
//! All integers are *varints*: unsigned LEB128 (7 bits per byte, least
//! significant group first, high bit set on every byte but the last), at most
//! 10 bytes, value at most `u64::MAX`, and minimally encoded (a multi-byte
//! varint must not end in `0x00`). Anything else is malformed.
//!
//! ```text
//! Message     = Version Range+                (last Range bounded by infinity)
//! Version     = 0x01                          (one byte, PROTOCOL_VERSION)
//! Range       = Bound Mode Payload
//! Bound       = Timestamp PrefixLen Prefix
//! Timestamp   = varint                        (see below)
//! PrefixLen   = varint, 0..=32
//! Prefix      = PrefixLen bytes
//! Mode        = varint: 0 Skip | 1 Fingerprint | 2 IdList
//! Payload     = (Skip)        nothing
//!             | (Fingerprint) 16 bytes
//!             | (IdList)      Count: varint, then Count * 32 bytes of ids
//! ```
//!
//! **Bounds.** A bound is either *infinity* (greater than every item) or a
//! point `(timestamp, prefix)`, which compares with items as the item
//! `(timestamp, prefix padded with zero bytes to 32)`. The timestamp is
//! delta-encoded against the previous bound of the same message (0 before the
//! first bound): the varint is `0` for infinity, otherwise
//! `1 + (timestamp - previous)`. A finite bound's timestamp must be below
//! `u64::MAX`, and an infinity bound must have `PrefixLen = 0`. Senders use the
//! shortest bound that separates two adjacent items: an empty prefix when the
//! timestamps differ, else the first `shared + 1` bytes of the upper item's id,
//! where `shared` is the length of the common prefix of the two ids.
//!
//! **Ranges.** Range `i` covers the items `x` with `bound(i-1) <= x < bound(i)`,
//! where `bound(-1)` is the point `(0, empty)` below every item. Bounds must be
//! strictly increasing, so ranges are disjoint and in order, and the last range
//! must be bounded by infinity, so every message covers the whole item space
//! and a truncated message or one with bytes appended is always rejected.
//! Senders merge adjacent Skip ranges; a message with nothing to say is
//! `01 00 00 00` (one Skip range up to infinity).
//!
//! **Fingerprint** of a range: the 32-byte ids read as little-endian unsigned
//! integers are summed modulo 2^256; the sum (32 bytes, little-endian)
//! followed by the item count (`u64`, 8 bytes, little-endian) is hashed with
//! BLAKE3 in key-derivation mode with the context string
//! [`FINGERPRINT_CONTEXT`], and the first 16 bytes of the output are the
//! fingerprint.
//!
//! **Processing.** A receiver walks the ranges in order, finds its own items in
//! each, and answers:
//!
//! - *Skip*: nothing to do.
//! - *Fingerprint*: if it equals the fingerprint of the receiver's items in
//!   the range, Skip. Otherwise *split* the receiver's items: fewer than 32
//!   items are sent as one IdList range; otherwise they are cut into 16
//!   buckets of near-equal size (the first `count % 16` one item larger), each
//!   sent as a Fingerprint range bounded by the shortest bound between the
//!   bucket's last item and the next one (the last bucket keeps the incoming
//!   bound).
//! - *IdList* received by the responder: reply with an IdList of all its own
//!   items in the range.
//! - *IdList* received by the initiator: its items in the range that are not
//!   listed go to `have`, listed ids it lacks go to `need` (a repeated id
//!   counts once); Skip.
//!
//! The initiator's first message is the split of its whole set up to infinity.
//! The initiator stops, sending nothing, when its answer would contain no range
//! but Skip.
//!
//! **Frame size limit.** No message may exceed [`Limits::max_message_bytes`] or
//! hold more than [`Limits::max_ranges`] ranges; receivers reject such messages.
//! When the answer to the next incoming range would break a limit (counting
//! room for one more Skip range and the closing range below), the sender stops
//! there and closes its message with one Fingerprint range, bounded by
//! infinity, over all its items from that point on. The peer treats it like any
//! other Fingerprint range, so the next round resumes where this one stopped. An IdList reply that does not fit is cut after as
//! many ids as fit, bounded by the shortest bound before the first id left out,
//! and followed by that closing Fingerprint. Both peers' limits must be at
//! least [`Limits::MIN_MESSAGE_BYTES`] and [`Limits::MIN_RANGES`], which
//! guarantees that every message answers at least one range and the exchange
//! terminates.
//!
//! # Trust
//!
//! Messages are hostile input: decoding checks every length before using it,
//! bounds message size and range count, rejects trailing garbage, and fully
//! validates a message before acting on it, so a failed call leaves `have` and
//! `need` untouched. Work per message is `O(n + m log m)` for `n` local items
//! and an `m`-byte message. A dishonest peer can still lie about what it holds;
//! the ids it claims must be fetched and verified like any other input.

use core::cmp::Ordering;
use core::fmt;

/// The version byte that starts every reconciliation message.
pub const PROTOCOL_VERSION: u8 = 0x01;

/// BLAKE3 key-derivation context used to hash range fingerprints.
pub const FINGERPRINT_CONTEXT: &str = "lookout reconcile fingerprint v1";

/// Length in bytes of a range fingerprint on the wire.
pub const FINGERPRINT_LEN: usize = 16;

/// Length in bytes of an item id.
pub const ID_LEN: usize = 32;

/// How many buckets a mismatched range is split into.
const BUCKETS: usize = 16;
/// Ranges with fewer items than this are listed id by id instead of split.
const ID_LIST_THRESHOLD: usize = 2 * BUCKETS;

const MODE_SKIP: u64 = 0;
const MODE_FINGERPRINT: u64 = 1;
const MODE_ID_LIST: u64 = 2;

const MAX_VARINT_LEN: usize = 10;
/// Largest encoded bound: timestamp varint, prefix length, 32-byte prefix.
const MAX_BOUND_LEN: usize = MAX_VARINT_LEN + 1 + ID_LEN;
/// The closing Fingerprint range: infinity bound (2 bytes), mode, fingerprint.
const CLOSING_RANGE_LEN: usize = 2 + 1 + FINGERPRINT_LEN;
/// Room kept free in every message for a pending Skip range and the closing
/// Fingerprint range.
const TAIL_RESERVE_BYTES: usize = MAX_BOUND_LEN + 1 + CLOSING_RANGE_LEN;
const TAIL_RESERVE_RANGES: usize = 2;

/// One element of a reconciled set: an alert's timestamp and 32-byte id.
///
/// Items order by `timestamp`, then `id`. Ids must be unique within a set
/// (they are content hashes): id lists on the wire carry bare ids, so if one id
/// appears under two timestamps on either side, `have` and `need` may be wrong
/// for that id. The session still terminates and reports only ids of the right
/// side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// When the alert was created, in the caller's time unit. `u64::MAX` is
    /// reserved as the end-of-set marker and rejected by [`Reconciler::new`].
    pub timestamp: u64,
    /// The alert's id.
    pub id: [u8; ID_LEN],
}

/// Size limits for reconciliation messages, sent and received.
///
/// Both peers should use the same limits: a peer rejects messages larger than
/// its own limits, and each peer keeps its own messages within its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes, that is sent or accepted.
    pub max_message_bytes: usize,
    /// Largest number of ranges in one message that is sent or accepted.
    pub max_ranges: usize,
}

impl Limits {
    /// Smallest accepted [`Limits::max_message_bytes`]; smaller frames could
    /// not carry a full split of one range and the exchange could stall.
    pub const MIN_MESSAGE_BYTES: usize = 4096;
    /// Smallest accepted [`Limits::max_ranges`], for the same reason.
    pub const MIN_RANGES: usize = 32;
}

impl Default for Limits {
    /// 64 KiB and 1024 ranges per message.
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_ranges: 1024,
        }
    }
}

/// One side of a reconciliation session over a borrowed, sorted set of items.
///
/// A reconciler is either the initiator (after [`Reconciler::initiate`]) or
/// the responder (after its first [`Reconciler::respond`]). It keeps no
/// per-session state besides that role, so a responder can answer any number
/// of messages, and all messages of one session must be processed against the
/// same item set.
pub struct Reconciler<'a> {
    items: &'a [Item],
    limits: Limits,
    role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Unstarted,
    Initiator,
    Responder,
}

impl<'a> Reconciler<'a> {
    /// Creates a reconciler over `items`, which must be strictly increasing
    /// (sorted by `(timestamp, id)` without duplicates) and must not use the
    /// reserved timestamp `u64::MAX`.
    pub fn new(items: &'a [Item], limits: Limits) -> Result<Self, ReconcileError> {
        if limits.max_message_bytes < Limits::MIN_MESSAGE_BYTES
            || limits.max_ranges < Limits::MIN_RANGES
        {
            return Err(ReconcileError::LimitsTooSmall { limits });
        }
        if let Some(index) = items
            .windows(2)
            .position(|pair| matches!(pair, [a, b] if a >= b))
        {
            return Err(ReconcileError::UnsortedItems { index: index + 1 });
        }
        if let Some(last) = items.last() {
            if last.timestamp == u64::MAX {
                return Err(ReconcileError::ReservedTimestamp {
                    index: items.len() - 1,
                });
            }
        }
        Ok(Self {
            items,
            limits,
            role: Role::Unstarted,
        })
    }

    /// Makes this reconciler the initiator and returns the first message.
    ///
    /// Calling it again starts a new session; replies to the old one are then
    /// still accepted but describe a stale exchange.
    pub fn initiate(&mut self) -> Vec<u8> {
        self.role = Role::Initiator;
        let mut out = Writer::new(self.limits);
        split(&mut out, self.items, Bound::Infinity);
        out.finish()
    }

    /// Initiator: processes the responder's reply.
    ///
    /// Appends to `have` the ids this side has and the responder lacks, and to
    /// `need` the ids the responder has and this side lacks. Returns the next
    /// message to send, or `None` when reconciliation is complete. On error
    /// nothing is appended; the session should be abandoned.
    pub fn reconcile(
        &mut self,
        msg: &[u8],
        have: &mut Vec<[u8; ID_LEN]>,
        need: &mut Vec<[u8; ID_LEN]>,
    ) -> Result<Option<Vec<u8>>, ReconcileError> {
        if self.role != Role::Initiator {
            return Err(ReconcileError::NotInitiator);
        }
        let ranges = decode_message(msg, self.limits)?;
        let out = self.answer(&ranges, Some((have, need)));
        Ok(out.has_answers().then(|| out.finish()))
    }

    /// Responder: answers one message from the initiator.
    pub fn respond(&mut self, msg: &[u8]) -> Result<Vec<u8>, ReconcileError> {
        if self.role == Role::Initiator {
            return Err(ReconcileError::NotResponder);
        }
        self.role = Role::Responder;
        let ranges = decode_message(msg, self.limits)?;
        Ok(self.answer(&ranges, None).finish())
    }

    /// Answers a decoded message. `diff` is `Some` exactly for the initiator.
    fn answer(&self, ranges: &[WireRange<'_>], mut diff: Option<Diff<'_>>) -> Writer {
        let mut out = Writer::new(self.limits);
        // Our items from the current range's lower bound to the end of the set.
        let mut remaining = self.items;
        for range in ranges {
            let (ours, rest) =
                remaining.split_at(remaining.partition_point(|item| range.upper.is_above(item)));
            let checkpoint = out.checkpoint();
            let mut stalled = false;
            match (&range.payload, diff.as_mut()) {
                (Payload::Skip, _) => out.skip(range.upper),
                (Payload::Fingerprint(theirs), _) => {
                    if fingerprint(ours) == *theirs {
                        out.skip(range.upper);
                    } else {
                        split(&mut out, ours, range.upper);
                    }
                }
                (Payload::IdList(ids), Some((have, need))) => {
                    // Writes nothing, so it can never break the frame limit
                    // and the additions below are never rolled back.
                    diff_ids(ours, ids, have, need);
                    out.skip(range.upper);
                }
                (Payload::IdList(_), None) => {
                    out.flush_skip();
                    let room = out.id_room();
                    if room >= ours.len() {
                        out.id_list(range.upper, ours);
                    } else if room > 0 {
                        let (sent, unsent) = ours.split_at(room);
                        let bound = match (sent.last(), unsent.first()) {
                            (Some(prev), Some(next)) => Bound::between(prev, next),
                            _ => range.upper,
                        };
                        out.id_list(bound, sent);
                        out.closing_fingerprint(remaining.split_at(room).1);
                        return out;
                    } else {
                        stalled = true;
                    }
                }
            }
            if stalled || out.over_budget() {
                out.rollback(checkpoint);
                out.flush_skip();
                out.closing_fingerprint(remaining);
                return out;
            }
            remaining = rest;
        }
        out
    }
}

impl fmt::Debug for Reconciler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("items", &self.items.len())
            .field("limits", &self.limits)
            .field("role", &self.role)
            .finish()
    }
}

/// Why a reconciliation call failed.
///
/// [`ReconcileError::is_peer_fault`] separates a misbehaving peer (drop or
/// penalise it) from a local mistake.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// The local item set is not strictly sorted by `(timestamp, id)`.
    #[error("items to reconcile are not sorted by (timestamp, id) without duplicates (first offending item at index {index}); sort and deduplicate them first")]
    UnsortedItems {
        /// Index of the first item that is not greater than its predecessor.
        index: usize,
    },
    /// A local item uses the reserved timestamp `u64::MAX`.
    #[error(
        "item at index {index} has timestamp u64::MAX, which is reserved as the end-of-set marker"
    )]
    ReservedTimestamp {
        /// Index of the offending item.
        index: usize,
    },
    /// The configured limits are below the protocol minimums.
    #[error("reconciliation limits {limits:?} are too small: need at least {} bytes and {} ranges per message", Limits::MIN_MESSAGE_BYTES, Limits::MIN_RANGES)]
    LimitsTooSmall {
        /// The rejected limits.
        limits: Limits,
    },
    /// `reconcile` was called on a reconciler that did not call `initiate`.
    #[error("reconcile() processes replies for the initiator; call initiate() first, or use respond() on the responding side")]
    NotInitiator,
    /// `respond` was called on a reconciler that called `initiate`.
    #[error(
        "respond() was called on the initiating side; process replies with reconcile() instead"
    )]
    NotResponder,
    /// The peer speaks another protocol version.
    #[error("peer sent reconciliation protocol version {got:#04x}, but only version {supported:#04x} is supported", supported = PROTOCOL_VERSION)]
    UnsupportedVersion {
        /// The version byte the peer sent.
        got: u8,
    },
    /// The peer's message exceeds [`Limits::max_message_bytes`].
    #[error("peer sent a {len}-byte reconciliation message, above the {max}-byte limit")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The local limit.
        max: usize,
    },
    /// The peer's message holds more than [`Limits::max_ranges`] ranges.
    #[error("peer sent a reconciliation message with more than {max} ranges")]
    TooManyRanges {
        /// The local limit.
        max: usize,
    },
    /// The peer's message does not follow the wire format.
    #[error("peer sent a malformed reconciliation message: {reason} (at byte {offset})")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// Byte offset in the message where decoding failed.
        offset: usize,
    },
}

impl ReconcileError {
    /// True when the error was caused by the peer's message rather than by the
    /// local caller.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedVersion { .. }
                | Self::MessageTooLarge { .. }
                | Self::TooManyRanges { .. }
                | Self::Malformed { .. }
        )
    }
}

/// The initiator's output lists: `(have, need)`.
type Diff<'v> = (&'v mut Vec<[u8; ID_LEN]>, &'v mut Vec<[u8; ID_LEN]>);

/// Upper end of a range: a point in item order, or past every item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// Compares like the item `(timestamp, prefix)`; bytes of `prefix` past
    /// `prefix_len` are zero.
    Point {
        timestamp: u64,
        prefix: [u8; ID_LEN],
        prefix_len: u8,
    },
    Infinity,
}

impl Bound {
    /// Below every item.
    const START: Self = Self::Point {
        timestamp: 0,
        prefix: [0; ID_LEN],
        prefix_len: 0,
    };

    /// The shortest bound `b` with `prev < b <= next`, for `prev < next`.
    fn between(prev: &Item, next: &Item) -> Self {
        // Equal timestamps: the ids differ, so one byte past their common
        // prefix separates them.
        let len = if prev.timestamp == next.timestamp {
            let common = prev
                .id
                .iter()
                .zip(&next.id)
                .take_while(|(a, b)| a == b)
                .count();
            (common + 1).min(ID_LEN)
        } else {
            0
        };
        let mut prefix = [0; ID_LEN];
        for (dst, src) in prefix.iter_mut().zip(&next.id).take(len) {
            *dst = *src;
        }
        Self::Point {
            timestamp: next.timestamp,
            prefix,
            prefix_len: u8::try_from(len).unwrap_or(u8::MAX),
        }
    }

    fn cmp_bound(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Infinity, Self::Infinity) => Ordering::Equal,
            (Self::Infinity, Self::Point { .. }) => Ordering::Greater,
            (Self::Point { .. }, Self::Infinity) => Ordering::Less,
            (
                Self::Point {
                    timestamp: t1,
                    prefix: p1,
                    ..
                },
                Self::Point {
                    timestamp: t2,
                    prefix: p2,
                    ..
                },
            ) => (t1, p1).cmp(&(t2, p2)),
        }
    }

    /// True if `item` lies strictly below this bound.
    fn is_above(&self, item: &Item) -> bool {
        match self {
            Self::Infinity => true,
            Self::Point {
                timestamp, prefix, ..
            } => (item.timestamp, &item.id) < (*timestamp, prefix),
        }
    }
}

/// One decoded range of an incoming message.
#[derive(Debug)]
struct WireRange<'m> {
    upper: Bound,
    payload: Payload<'m>,
}

#[derive(Debug)]
enum Payload<'m> {
    Skip,
    Fingerprint([u8; FINGERPRINT_LEN]),
    /// Concatenated ids; the length is a multiple of [`ID_LEN`].
    IdList(&'m [u8]),
}

/// Splits our items of a mismatched range into an IdList or 16 fingerprinted
/// buckets.
fn split(out: &mut Writer, items: &[Item], upper: Bound) {
    if items.len() < ID_LIST_THRESHOLD {
        out.id_list(upper, items);
        return;
    }
    let per_bucket = items.len() / BUCKETS;
    let larger = items.len() % BUCKETS;
    let mut rest = items;
    for i in 0..BUCKETS {
        let size = per_bucket + usize::from(i < larger);
        let (bucket, tail) = rest.split_at(size.min(rest.len()));
        let bound = match (bucket.last(), tail.first()) {
            (Some(prev), Some(next)) => Bound::between(prev, next),
            _ => upper,
        };
        out.fingerprint_range(bound, fingerprint(bucket));
        rest = tail;
    }
}

/// Initiator side of an IdList: compares our items in the range with the
/// responder's ids.
fn diff_ids(
    ours: &[Item],
    theirs: &[u8],
    have: &mut Vec<[u8; ID_LEN]>,
    need: &mut Vec<[u8; ID_LEN]>,
) {
    let mut their_ids: Vec<[u8; ID_LEN]> = theirs
        .chunks_exact(ID_LEN)
        .map(|chunk| {
            let mut id = [0; ID_LEN];
            id.copy_from_slice(chunk);
            id
        })
        .collect();
    their_ids.sort_unstable();
    their_ids.dedup();
    let mut matched = vec![false; their_ids.len()];
    for item in ours {
        match their_ids.binary_search(&item.id) {
            Ok(i) => {
                if let Some(flag) = matched.get_mut(i) {
                    *flag = true;
                }
            }
            Err(_) => have.push(item.id),
        }
    }
    need.extend(
        their_ids
            .iter()
            .zip(&matched)
            .filter(|(_, &seen)| !seen)
            .map(|(id, _)| *id),
    );
}

/// Fingerprint of a run of items; see the module docs.
fn fingerprint(items: &[Item]) -> [u8; FINGERPRINT_LEN] {
    let mut sum = [0u64; 4];
    for item in items {
        let mut carry = false;
        for (limb, chunk) in sum.iter_mut().zip(item.id.chunks_exact(8)) {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(chunk);
            let (s1, c1) = limb.overflowing_add(u64::from_le_bytes(bytes));
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
    }
    let mut hasher = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    for limb in sum {
        hasher.update(&limb.to_le_bytes());
    }
    hasher.update(&(items.len() as u64).to_le_bytes());
    let mut out = [0; FINGERPRINT_LEN];
    hasher.finalize_xof().fill(&mut out);
    out
}

/// Builds an outgoing message within the frame limits.
struct Writer {
    buf: Vec<u8>,
    ranges: usize,
    last_timestamp: u64,
    pending_skip: Option<Bound>,
    limits: Limits,
}

/// Writer state to roll back to when a range's answer does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Checkpoint {
    len: usize,
    ranges: usize,
    last_timestamp: u64,
    pending_skip: Option<Bound>,
}

impl Writer {
    fn new(limits: Limits) -> Self {
        Self {
            buf: vec![PROTOCOL_VERSION],
            ranges: 0,
            last_timestamp: 0,
            pending_skip: None,
            limits,
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.buf.len(),
            ranges: self.ranges,
            last_timestamp: self.last_timestamp,
            pending_skip: self.pending_skip,
        }
    }

    fn rollback(&mut self, checkpoint: Checkpoint) {
        self.buf.truncate(checkpoint.len);
        self.ranges = checkpoint.ranges;
        self.last_timestamp = checkpoint.last_timestamp;
        self.pending_skip = checkpoint.pending_skip;
    }

    /// True if anything but Skip ranges was written.
    fn has_answers(&self) -> bool {
        self.ranges > 0
    }

    /// True once the message leaves no room for the tail reserve.
    fn over_budget(&self) -> bool {
        self.buf.len() + TAIL_RESERVE_BYTES > self.limits.max_message_bytes
            || self.ranges + TAIL_RESERVE_RANGES > self.limits.max_ranges
    }

    /// How many ids an IdList range written now may carry.
    fn id_room(&self) -> usize {
        if self.ranges + 1 + TAIL_RESERVE_RANGES > self.limits.max_ranges {
            return 0;
        }
        let overhead = self.buf.len() + TAIL_RESERVE_BYTES + MAX_BOUND_LEN + 1 + MAX_VARINT_LEN;
        self.limits.max_message_bytes.saturating_sub(overhead) / ID_LEN
    }

    /// Extends the pending Skip range up to `upper`.
    fn skip(&mut self, upper: Bound) {
        self.pending_skip = Some(upper);
    }

    fn flush_skip(&mut self) {
        if let Some(bound) = self.pending_skip.take() {
            self.range_header(bound, MODE_SKIP);
        }
    }

    fn fingerprint_range(&mut self, upper: Bound, fingerprint: [u8; FINGERPRINT_LEN]) {
        self.flush_skip();
        self.range_header(upper, MODE_FINGERPRINT);
        self.buf.extend_from_slice(&fingerprint);
    }

    fn id_list(&mut self, upper: Bound, items: &[Item]) {
        self.flush_skip();
        self.range_header(upper, MODE_ID_LIST);
        self.varint(items.len() as u64);
        for item in items {
            self.buf.extend_from_slice(&item.id);
        }
    }

    /// Ends the message with a Fingerprint over `rest` up to infinity.
    fn closing_fingerprint(&mut self, rest: &[Item]) {
        self.flush_skip();
        self.fingerprint_range(Bound::Infinity, fingerprint(rest));
    }

    fn range_header(&mut self, upper: Bound, mode: u64) {
        match upper {
            Bound::Infinity => {
                self.varint(0);
                self.varint(0);
                self.last_timestamp = u64::MAX;
            }
            Bound::Point {
                timestamp,
                prefix,
                prefix_len,
            } => {
                // Bounds we write are increasing and below u64::MAX, so this
                // neither saturates nor wraps.
                let delta = timestamp.saturating_sub(self.last_timestamp);
                self.varint(delta.saturating_add(1));
                self.last_timestamp = timestamp;
                self.varint(u64::from(prefix_len));
                let len = usize::from(prefix_len).min(ID_LEN);
                self.buf.extend_from_slice(prefix.get(..len).unwrap_or(&[]));
            }
        }
        self.varint(mode);
        self.ranges += 1;
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// The finished message, closed by a Skip range up to infinity unless the
    /// last range already reaches it. The tail reserve keeps room for it.
    fn finish(mut self) -> Vec<u8> {
        if self.ranges == 0 || self.last_timestamp != u64::MAX {
            self.pending_skip = Some(Bound::Infinity);
            self.flush_skip();
        }
        self.buf
    }
}

/// Decodes and fully validates a message before anything acts on it.
fn decode_message(msg: &[u8], limits: Limits) -> Result<Vec<WireRange<'_>>, ReconcileError> {
    if msg.len() > limits.max_message_bytes {
        return Err(ReconcileError::MessageTooLarge {
            len: msg.len(),
            max: limits.max_message_bytes,
        });
    }
    let mut reader = Reader { msg, pos: 0 };
    let version = reader.byte("empty message: missing version byte")?;
    if version != PROTOCOL_VERSION {
        return Err(ReconcileError::UnsupportedVersion { got: version });
    }
    let mut ranges = Vec::new();
    let mut previous = Bound::START;
    let mut last_timestamp = 0;
    while !reader.is_empty() {
        if ranges.len() == limits.max_ranges {
            return Err(ReconcileError::TooManyRanges {
                max: limits.max_ranges,
            });
        }
        let start = reader.pos;
        let upper = reader.bound(&mut last_timestamp)?;
        if upper.cmp_bound(&previous) != Ordering::Greater {
            return Err(reader.malformed_at(start, "range bounds are not strictly increasing"));
        }
        previous = upper;
        let mode_at = reader.pos;
        let payload = match reader.varint()? {
            MODE_SKIP => Payload::Skip,
            MODE_FINGERPRINT => {
                let bytes = reader.take(FINGERPRINT_LEN, "truncated fingerprint")?;
                let mut fingerprint = [0; FINGERPRINT_LEN];
                fingerprint.copy_from_slice(bytes);
                Payload::Fingerprint(fingerprint)
            }
            MODE_ID_LIST => {
                let count_at = reader.pos;
                let count = reader.varint()?;
                let len = usize::try_from(count)
                    .ok()
                    .and_then(|count| count.checked_mul(ID_LEN))
                    .filter(|&len| len <= reader.remaining())
                    .ok_or_else(|| {
                        reader.malformed_at(count_at, "id list longer than the message")
                    })?;
                Payload::IdList(reader.take(len, "truncated id list")?)
            }
            _ => return Err(reader.malformed_at(mode_at, "unknown range mode")),
        };
        ranges.push(WireRange { upper, payload });
    }
    match ranges.last() {
        Some(WireRange {
            upper: Bound::Infinity,
            ..
        }) => Ok(ranges),
        _ => Err(reader.malformed_at(
            msg.len(),
            "message does not end with a range bounded by infinity (truncated?)",
        )),
    }
}

/// Bounds-checked cursor over an incoming message.
struct Reader<'m> {
    msg: &'m [u8],
    pos: usize,
}

impl<'m> Reader<'m> {
    fn is_empty(&self) -> bool {
        self.pos >= self.msg.len()
    }

    fn remaining(&self) -> usize {
        self.msg.len().saturating_sub(self.pos)
    }

    fn malformed_at(&self, offset: usize, reason: &'static str) -> ReconcileError {
        ReconcileError::Malformed { reason, offset }
    }

    fn byte(&mut self, reason: &'static str) -> Result<u8, ReconcileError> {
        let byte = *self
            .msg
            .get(self.pos)
            .ok_or_else(|| self.malformed_at(self.pos, reason))?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize, reason: &'static str) -> Result<&'m [u8], ReconcileError> {
        let bytes = self
            .pos
            .checked_add(len)
            .and_then(|end| self.msg.get(self.pos..end))
            .ok_or_else(|| self.malformed_at(self.pos, reason))?;
        self.pos += len;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, ReconcileError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.byte("truncated varint")?;
            let group = u64::from(byte & 0x7f);
            if i == MAX_VARINT_LEN - 1 && group > 1 {
                return Err(self.malformed_at(start, "varint overflows u64"));
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(self.malformed_at(start, "varint is not minimally encoded"));
                }
                return Ok(value);
            }
        }
        Err(self.malformed_at(start, "varint longer than 10 bytes"))
    }

    fn bound(&mut self, last_timestamp: &mut u64) -> Result<Bound, ReconcileError> {
        let start = self.pos;
        let encoded = self.varint()?;
        let len_at = self.pos;
        let prefix_len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        if prefix_len > ID_LEN {
            return Err(self.malformed_at(len_at, "bound id prefix longer than 32 bytes"));
        }
        let bytes = self.take(prefix_len, "truncated bound id prefix")?;
        if encoded == 0 {
            if prefix_len != 0 {
                return Err(self.malformed_at(len_at, "infinity bound with an id prefix"));
            }
            *last_timestamp = u64::MAX;
            return Ok(Bound::Infinity);
        }
        let timestamp = last_timestamp
            .checked_add(encoded - 1)
            .filter(|&t| t != u64::MAX)
            .ok_or_else(|| self.malformed_at(start, "bound timestamp out of range"))?;
        *last_timestamp = timestamp;
        let mut prefix = [0; ID_LEN];
        prefix
            .get_mut(..prefix_len)
            .ok_or_else(|| self.malformed_at(len_at, "bound id prefix longer than 32 bytes"))?
            .copy_from_slice(bytes);
        Ok(Bound::Point {
            timestamp,
            prefix,
            prefix_len: u8::try_from(prefix_len).unwrap_or(0),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    struct Outcome {
        rounds: usize,
        bytes: usize,
        have: Vec<[u8; ID_LEN]>,
        need: Vec<[u8; ID_LEN]>,
    }

    /// Runs a whole session, checking every message against the limits.
    fn run(a: &[Item], b: &[Item], limits: Limits) -> Outcome {
        let mut initiator = Reconciler::new(a, limits).unwrap();
        let mut responder = Reconciler::new(b, limits).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let mut msg = initiator.initiate();
        let (mut rounds, mut bytes) = (0, 0);
        loop {
            assert!(msg.len() <= limits.max_message_bytes);
            bytes += msg.len();
            rounds += 1;
            assert!(rounds <= 1000, "reconciliation does not terminate");
            let reply = responder.respond(&msg).unwrap();
            assert!(reply.len() <= limits.max_message_bytes);
            bytes += reply.len();
            match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
                Some(next) => msg = next,
                None => break,
            }
        }
        have.sort_unstable();
        need.sort_unstable();
        Outcome {
            rounds,
            bytes,
            have,
            need,
        }
    }

    fn ids_only_in(x: &[Item], y: &[Item]) -> Vec<[u8; ID_LEN]> {
        let mut ids: Vec<_> = x
            .iter()
            .filter(|item| y.binary_search(item).is_err())
            .map(|item| item.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn assert_converges(a: &[Item], b: &[Item], limits: Limits) -> Outcome {
        let outcome = run(a, b, limits);
        assert_eq!(outcome.have, ids_only_in(a, b), "have != A \\ B");
        assert_eq!(outcome.need, ids_only_in(b, a), "need != B \\ A");
        outcome
    }

    /// `n` items with timestamps in `0..spread` (so spread < n forces ties).
    fn random_items(rng: &mut ChaCha8Rng, n: usize, spread: u64) -> Vec<Item> {
        let mut items: Vec<Item> = (0..n)
            .map(|_| Item {
                timestamp: rng.gen_range(0..spread),
                id: rng.gen(),
            })
            .collect();
        items.sort_unstable();
        items.dedup();
        items
    }

    fn merged(a: &[Item], b: &[Item]) -> Vec<Item> {
        let mut all = [a, b].concat();
        all.sort_unstable();
        all.dedup();
        all
    }

    #[test]
    fn empty_vs_empty() {
        let outcome = assert_converges(&[], &[], Limits::default());
        assert_eq!(outcome.rounds, 1);
        assert!(outcome.bytes < 16, "{} bytes", outcome.bytes);
    }

    #[test]
    fn empty_vs_n_and_n_vs_empty() {
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(1), 5000, 1 << 40);
        let need_all = assert_converges(&[], &items, Limits::default());
        let have_all = assert_converges(&items, &[], Limits::default());
        // 160 KB of ids must be paged through 64 KiB frames.
        assert!(
            need_all.rounds >= 3 && need_all.rounds <= 4,
            "{}",
            need_all.rounds
        );
        assert!(have_all.rounds <= 2, "{}", have_all.rounds);
    }

    #[test]
    fn identical_sets_take_one_round_and_few_bytes() {
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(2), 20_000, 1 << 40);
        let outcome = assert_converges(&items, &items, Limits::default());
        assert_eq!(outcome.rounds, 1);
        // 16 fingerprint ranges out, one Skip-free reply back.
        assert!(outcome.bytes < 16 * 32, "{} bytes", outcome.bytes);
    }

    #[test]
    fn disjoint_sets() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = random_items(&mut rng, 3000, 1 << 40);
        let b = random_items(&mut rng, 3000, 1 << 40);
        let outcome = assert_converges(&a, &b, Limits::default());
        assert_eq!(outcome.have.len(), 3000);
        assert_eq!(outcome.need.len(), 3000);
    }

    #[test]
    fn recent_differences_cost_bytes_proportional_to_d() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let common = random_items(&mut rng, 10_000, 1_000_000);
        let recent = |rng: &mut ChaCha8Rng| -> Vec<Item> {
            let mut items = random_items(rng, 50, 1000);
            for item in &mut items {
                item.timestamp += 1_000_000;
            }
            items.sort_unstable();
            items
        };
        let (a_new, b_new) = (recent(&mut rng), recent(&mut rng));
        let a = merged(&common, &a_new);
        let b = merged(&common, &b_new);
        let outcome = assert_converges(&a, &b, Limits::default());
        assert_eq!(outcome.have.len(), 50);
        assert_eq!(outcome.need.len(), 50);
        assert!(outcome.rounds <= 4, "{} rounds", outcome.rounds);
        assert!(
            outcome.bytes < 100 * 32 * 3 + 4096,
            "{} bytes",
            outcome.bytes
        );
    }

    #[test]
    fn random_differences_with_shared_timestamps() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // 20 distinct timestamps for thousands of items: bounds need id prefixes.
        let all = random_items(&mut rng, 4000, 20);
        let a: Vec<Item> = all.iter().copied().filter(|_| rng.gen_bool(0.9)).collect();
        let b: Vec<Item> = all.iter().copied().filter(|_| rng.gen_bool(0.9)).collect();
        assert_converges(&a, &b, Limits::default());
    }

    #[test]
    fn ids_with_long_common_prefixes() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut all = random_items(&mut rng, 2000, 3);
        for item in &mut all {
            item.id[..30].fill(0xab);
        }
        all.sort_unstable();
        all.dedup();
        let a: Vec<Item> = all.iter().copied().filter(|_| rng.gen_bool(0.8)).collect();
        let b: Vec<Item> = all.iter().copied().filter(|_| rng.gen_bool(0.8)).collect();
        assert_converges(&a, &b, Limits::default());
    }

    #[test]
    fn minimum_limits_page_large_differences() {
        let limits = Limits {
            max_message_bytes: Limits::MIN_MESSAGE_BYTES,
            max_ranges: Limits::MIN_RANGES,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let a = random_items(&mut rng, 3000, 500);
        let b = random_items(&mut rng, 3000, 500);
        let outcome = assert_converges(&a, &b, limits);
        assert!(outcome.rounds > 10, "{} rounds", outcome.rounds);
    }

    #[test]
    fn new_rejects_bad_input() {
        let item = |t, b| Item {
            timestamp: t,
            id: [b; ID_LEN],
        };
        let err = |items: &[Item], limits| Reconciler::new(items, limits).unwrap_err();
        let limits = Limits::default();
        assert_eq!(
            err(&[item(2, 0), item(1, 0)], limits),
            ReconcileError::UnsortedItems { index: 1 }
        );
        assert_eq!(
            err(&[item(1, 0), item(1, 1), item(1, 1)], limits),
            ReconcileError::UnsortedItems { index: 2 }
        );
        assert_eq!(
            err(&[item(1, 0), item(u64::MAX, 0)], limits),
            ReconcileError::ReservedTimestamp { index: 1 }
        );
        let small = Limits {
            max_message_bytes: 1000,
            ..limits
        };
        assert!(matches!(
            err(&[], small),
            ReconcileError::LimitsTooSmall { .. }
        ));
        let few = Limits {
            max_ranges: 4,
            ..limits
        };
        assert!(!err(&[], few).is_peer_fault());
    }

    #[test]
    fn roles_are_enforced() {
        let mut r = Reconciler::new(&[], Limits::default()).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        assert_eq!(
            r.reconcile(&[PROTOCOL_VERSION], &mut have, &mut need),
            Err(ReconcileError::NotInitiator)
        );
        let first = r.initiate();
        assert_eq!(r.respond(&first), Err(ReconcileError::NotResponder));
    }

    fn respond_err(msg: &[u8]) -> ReconcileError {
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(8), 100, 1000);
        let err = Reconciler::new(&items, Limits::default())
            .unwrap()
            .respond(msg)
            .unwrap_err();
        assert!(err.is_peer_fault(), "{err}");
        err
    }

    fn malformed_reason(msg: &[u8]) -> &'static str {
        match respond_err(msg) {
            ReconcileError::Malformed { reason, .. } => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(9), 1000, 1000);
        let valid = Reconciler::new(&items, Limits::default())
            .unwrap()
            .initiate();
        // Every strict prefix is truncated, even at a range boundary.
        for len in 1..valid.len() {
            assert!(matches!(
                respond_err(&valid[..len]),
                ReconcileError::Malformed { .. }
            ));
        }
        // Every message ends at infinity, so anything after it is garbage.
        for garbage in [&[0u8][..], &[1, 0, 0], &[0xff; 40], &[0, 0, 0]] {
            assert!(matches!(
                respond_err(&[&valid[..], garbage].concat()),
                ReconcileError::Malformed { .. }
            ));
        }
        assert_eq!(malformed_reason(&[]), "empty message: missing version byte");
        assert_eq!(
            respond_err(&[0x61, 0, 0, 0]),
            ReconcileError::UnsupportedVersion { got: 0x61 }
        );
        // IdList claiming u64::MAX ids, and one claiming 2 ids but carrying 1.
        let huge = [
            1, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(malformed_reason(&huge), "id list longer than the message");
        let short = [&[1u8, 0, 0, 2, 2][..], &[7; 32]].concat();
        assert_eq!(malformed_reason(&short), "id list longer than the message");
        assert_eq!(malformed_reason(&[1, 0, 0, 3]), "unknown range mode");
        assert_eq!(
            malformed_reason(&[1, 5, 33]),
            "bound id prefix longer than 32 bytes"
        );
        assert_eq!(
            malformed_reason(&[1, 0, 1, 7, 0]),
            "infinity bound with an id prefix"
        );
        // Bounds (ts 5) then (ts 5): not increasing. Also (0, empty) as first bound.
        assert_eq!(
            malformed_reason(&[1, 6, 0, 0, 1, 0, 0]),
            "range bounds are not strictly increasing"
        );
        assert_eq!(
            malformed_reason(&[1, 1, 0, 0]),
            "range bounds are not strictly increasing"
        );
        assert_eq!(
            malformed_reason(&[1, 0x80, 0x00, 0, 0]),
            "varint is not minimally encoded"
        );
        let overflow = [
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0,
        ];
        assert_eq!(malformed_reason(&overflow), "varint overflows u64");
        let too_long = [&[1u8][..], &[0x80; 11]].concat();
        assert_eq!(malformed_reason(&too_long), "varint longer than 10 bytes");
        // A bound at timestamp 1, then a delta reaching exactly u64::MAX (the
        // reserved value), then one past it.
        let max_delta = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        for first in [2, 3] {
            let msg = [&[1, first, 0, 0][..], &max_delta, &[0, 0]].concat();
            assert_eq!(malformed_reason(&msg), "bound timestamp out of range");
        }
        assert_eq!(
            malformed_reason(&[1, 0, 0, 1, 1, 2]),
            "truncated fingerprint"
        );
        assert_eq!(
            malformed_reason(&[1, 2, 0, 0]),
            "message does not end with a range bounded by infinity (truncated?)"
        );
    }

    #[test]
    fn size_and_range_limits_are_enforced() {
        let limits = Limits::default();
        let big = vec![PROTOCOL_VERSION; limits.max_message_bytes + 1];
        assert_eq!(
            respond_err(&big),
            ReconcileError::MessageTooLarge {
                len: limits.max_message_bytes + 1,
                max: limits.max_message_bytes
            }
        );
        // Skip ranges at timestamps 1, 2, 3, ..., then one up to infinity.
        let skips = |n: usize| {
            let mut msg = vec![PROTOCOL_VERSION];
            for _ in 1..n {
                msg.extend_from_slice(&[2, 0, 0]);
            }
            msg.extend_from_slice(&[0, 0, 0]);
            msg
        };
        assert_eq!(
            respond_err(&skips(limits.max_ranges + 1)),
            ReconcileError::TooManyRanges {
                max: limits.max_ranges
            }
        );
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(10), 100, 1000);
        let reply = Reconciler::new(&items, limits)
            .unwrap()
            .respond(&skips(limits.max_ranges))
            .unwrap();
        assert_eq!(reply, [PROTOCOL_VERSION, 0, 0, 0], "all-Skip answer");
    }

    #[test]
    fn failed_reconcile_leaves_outputs_untouched() {
        let a = random_items(&mut ChaCha8Rng::seed_from_u64(11), 10, 1000);
        let b = random_items(&mut ChaCha8Rng::seed_from_u64(12), 10, 1000);
        let mut initiator = Reconciler::new(&a, Limits::default()).unwrap();
        let first = initiator.initiate();
        let mut reply = Reconciler::new(&b, Limits::default())
            .unwrap()
            .respond(&first)
            .unwrap();
        reply.pop(); // the last id is cut short
        let (mut have, mut need) = (vec![[1; ID_LEN]], Vec::new());
        assert!(initiator.reconcile(&reply, &mut have, &mut need).is_err());
        assert_eq!((have, need), (vec![[1; ID_LEN]], vec![]));
    }

    #[test]
    fn bound_between_is_shortest_separator() {
        let a = Item {
            timestamp: 7,
            id: [0x11; ID_LEN],
        };
        let mut b = a;
        b.id[2] = 0x12;
        let Bound::Point {
            timestamp,
            prefix,
            prefix_len,
        } = Bound::between(&a, &b)
        else {
            panic!("finite items give a finite bound");
        };
        assert_eq!((timestamp, prefix_len), (7, 3));
        assert_eq!(prefix[..4], [0x11, 0x11, 0x12, 0]);
        let bound = Bound::between(&a, &b);
        assert!(bound.is_above(&a) && !bound.is_above(&b));
        let later = Item {
            timestamp: 8,
            id: [0; ID_LEN],
        };
        assert_eq!(
            Bound::between(&b, &later),
            Bound::Point {
                timestamp: 8,
                prefix: [0; ID_LEN],
                prefix_len: 0
            }
        );
    }

    /// Test vectors for a second implementation.
    #[test]
    fn wire_format_vectors() {
        // Fingerprint: sum mod 2^256 of ids [1, 0, ...] and [0xff; 32] is
        // [0, 0, ...] with a carry out; count 2.
        let mut one = [0; ID_LEN];
        one[0] = 1;
        let items = [
            Item {
                timestamp: 1,
                id: one,
            },
            Item {
                timestamp: 2,
                id: [0xff; ID_LEN],
            },
        ];
        let mut expected_input = [0u8; 40];
        expected_input[32] = 2;
        let expected = blake3::derive_key(FINGERPRINT_CONTEXT, &expected_input);
        assert_eq!(fingerprint(&items)[..], expected[..FINGERPRINT_LEN]);
        assert_eq!(
            hex::encode(fingerprint(&[])),
            hex::encode(&blake3::derive_key(FINGERPRINT_CONTEXT, &[0; 40])[..16])
        );

        // Two items: one IdList range up to infinity.
        let msg = Reconciler::new(&items, Limits::default())
            .unwrap()
            .initiate();
        assert_eq!(
            hex::encode(&msg),
            format!("010000020201{}{}", "00".repeat(31), "ff".repeat(32))
        );

        // 32 items at timestamps 1000..1032 split into 16 buckets of 2, bounds
        // delta-encoded: first 1 + 1002, then 1 + 2 each, last infinity.
        let items: Vec<Item> = (0..32u8)
            .map(|i| Item {
                timestamp: 1000 + u64::from(i),
                id: [i; ID_LEN],
            })
            .collect();
        let msg = Reconciler::new(&items, Limits::default())
            .unwrap()
            .initiate();
        let mut expected = String::from("01");
        for bucket in 0..16 {
            let bound = match bucket {
                0 => "eb0700", // varint 1003, prefix length 0
                15 => "0000",
                _ => "0300",
            };
            let fp = fingerprint(&items[2 * bucket..2 * bucket + 2]);
            expected += &format!("{bound}01{}", hex::encode(fp));
        }
        assert_eq!(hex::encode(&msg), expected);
        // Pinned fingerprint of the first bucket, so a second implementation
        // can check its hashing without this code.
        assert_eq!(
            hex::encode(fingerprint(&items[..2])),
            "9e25b33c7bfdc92e1f01b691ad71f998"
        );
    }
}
