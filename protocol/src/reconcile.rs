//! Range-based set reconciliation between two replicas of the alert log.
//!
//! Two peers each hold a set of [`Item`]s — `(timestamp, id)` pairs ordered by
//! timestamp, then id — and want to learn which ids each of them is missing
//! without sending their whole sets. This module speaks Doug Hoyte's Negentropy
//! protocol, version 1, through the [`negentropy`] crate: the peers exchange
//! fingerprints of ranges of their sets, split ranges whose fingerprints differ
//! into 16 buckets, and list ids outright once a range holds few items. Two
//! replicas of `n` items that differ in a few places converge in about
//! `log16(n) / 2` round trips, using bandwidth proportional to the difference,
//! not to `n`.
//!
//! What this module adds around the crate: items borrowed as they are (no copy
//! of the set), a strict validating decoder that every incoming message passes
//! before the crate sees it (typed errors, a size cap, no panics), and a
//! deterministic order of the reported ids.
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
//! let mut msg = initiator.initiate()?;
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
//! # Wire format: Negentropy protocol version 1
//!
//! All integers are *varints*: unsigned base-128, **most** significant group
//! first, high bit set on every byte but the last. This module accepts only
//! minimal varints (no leading `0x80` byte) of at most 10 bytes whose value
//! fits in a `u64`; anything else is malformed.
//!
//! ```text
//! Message     = Version Range*
//! Version     = 0x61                          (one byte, PROTOCOL_VERSION)
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
//! **Bounds.** A bound is either *infinity* (above every item) or a point
//! `(timestamp, prefix)`, which compares with items as the item
//! `(timestamp, prefix padded with zero bytes to 32)`. The timestamp is
//! delta-encoded against the previous bound of the same message (0 before the
//! first bound): the varint is `0` for infinity, otherwise
//! `1 + (timestamp - previous)`. This module requires a finite bound's
//! timestamp to be below `u64::MAX`, an infinity bound to have `PrefixLen = 0`,
//! and bounds never to decrease (an honest sender repeats the infinity bound
//! when it closes a frame right after a range that reached infinity). Senders
//! use the shortest bound that separates two adjacent items: an empty prefix
//! when the timestamps differ, else the first `shared + 1` bytes of the upper
//! item's id, where `shared` is the length of the ids' common prefix.
//!
//! **Ranges.** Range `i` covers the items `x` with `bound(i-1) <= x < bound(i)`,
//! where `bound(-1)` is the point `(0, empty)` below every item. Items above
//! the last bound are not mentioned, which means Skip: senders leave out
//! trailing Skip ranges and merge adjacent ones, so a message with nothing to
//! say is the version byte alone.
//!
//! **Fingerprint** of a range: the 32-byte ids read as little-endian unsigned
//! integers are summed modulo 2^256; SHA-256 of that sum (32 bytes,
//! little-endian) followed by the varint of the item count, truncated to its
//! first 16 bytes.
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
//! The initiator stops, sending nothing, when its answer would hold no range
//! but Skip.
//!
//! **Frame size limit.** Senders keep every message within
//! [`Limits::max_message_bytes`] and receivers reject longer ones. Once the
//! answer so far plus the next range's answer passes `max_message_bytes - 200`,
//! the sender drops that range's answer and closes its message with one
//! Fingerprint range, bounded by infinity, over all its items from its last
//! written bound on; the peer treats it like any other Fingerprint range, so
//! the next round resumes where this one stopped. A responder's IdList that
//! does not fit is cut before the first id that would pass the threshold,
//! bounded by that id in full (32-byte prefix), and followed by the closing
//! Fingerprint. The limit must be at least [`Limits::MIN_MESSAGE_BYTES`], which
//! guarantees that every message answers at least one range, so the exchange
//! terminates.
//!
//! # Trust
//!
//! Messages are hostile input: [`Reconciler::respond`] and
//! [`Reconciler::reconcile`] first check the whole message against the grammar
//! above (every length before it is used, the size cap, bound order, no
//! trailing bytes) and only then hand it to the engine, so a failed call
//! leaves `have` and `need` untouched. Work per message is `O(n + m log n)`
//! for `n` local items and an `m`-byte message. A dishonest peer can still lie
//! about what it holds; the ids it claims must be fetched and verified like
//! any other input.

use core::cmp::Ordering;
use core::fmt;
use std::collections::HashSet;

use negentropy::{Negentropy, NegentropyStorageBase};

/// The version byte that starts every reconciliation message: Negentropy
/// protocol version 1.
pub const PROTOCOL_VERSION: u8 = 0x61;

/// Length in bytes of a range fingerprint on the wire.
pub const FINGERPRINT_LEN: usize = negentropy::FINGERPRINT_SIZE;

/// Length in bytes of an item id.
pub const ID_LEN: usize = negentropy::ID_SIZE;

const MODE_SKIP: u64 = 0;
const MODE_FINGERPRINT: u64 = 1;
const MODE_ID_LIST: u64 = 2;

const MAX_VARINT_LEN: usize = 10;

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

/// Size limit for reconciliation messages, sent and received.
///
/// Both peers should use the same limit: a peer rejects messages larger than
/// its own limit, and each peer keeps its own messages within its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes, that is sent or accepted.
    pub max_message_bytes: usize,
}

impl Limits {
    /// Smallest accepted [`Limits::max_message_bytes`] (Negentropy's minimum
    /// frame size); smaller frames could not carry a full split of one range
    /// and the exchange could stall.
    pub const MIN_MESSAGE_BYTES: usize = 4096;
}

impl Default for Limits {
    /// 64 KiB per message.
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
        }
    }
}

/// One side of a reconciliation session over a borrowed, sorted set of items.
///
/// A reconciler is either the initiator (after [`Reconciler::initiate`] or
/// [`Reconciler::resume_as_initiator`]) or the responder (after its first
/// [`Reconciler::respond`]). It keeps no per-session state besides that role,
/// so a responder can answer any number of messages, an initiator can be
/// rebuilt for every round, and all messages of one session must be processed
/// against the same item set.
pub struct Reconciler<'a> {
    items: SortedItems<'a>,
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
            || u64::try_from(limits.max_message_bytes).is_err()
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
            items: SortedItems(items),
            limits,
            role: Role::Unstarted,
        })
    }

    /// Makes this reconciler the initiator and returns the first message.
    ///
    /// Calling it again starts a new session; replies to the old one are then
    /// still accepted but describe a stale exchange.
    pub fn initiate(&mut self) -> Result<Vec<u8>, ReconcileError> {
        self.role = Role::Initiator;
        Ok(self.engine()?.initiate()?)
    }

    /// Makes this reconciler the initiator and returns a first message that holds only the
    /// fingerprint of the whole set (one Fingerprint range up to infinity). A responder holding
    /// the same set answers that it has nothing to say (the version byte alone) and the
    /// session ends after one round trip of about 20 bytes each way; one holding another set
    /// answers with the split of its own, and the session goes on as after
    /// [`Reconciler::initiate`], one round later. Any Negentropy v1 responder answers it: the
    /// message is an ordinary one.
    pub fn initiate_summary(&mut self) -> Result<Vec<u8>, ReconcileError> {
        self.role = Role::Initiator;
        let fingerprint = self.items.fingerprint(0, self.items.0.len())?;
        // Version; bound: timestamp varint 0 (infinity), prefix length 0; mode 1 (Fingerprint).
        let mut message = vec![PROTOCOL_VERSION, 0, 0, 1];
        message.extend_from_slice(&fingerprint.to_bytes());
        Ok(message)
    }

    /// Makes this reconciler the initiator of a session whose first message
    /// another reconciler over the same items sent, so that it can process
    /// the replies. The reconciler keeps no other session state, so an
    /// initiator need not be kept between rounds.
    pub fn resume_as_initiator(&mut self) {
        self.role = Role::Initiator;
    }

    /// Initiator: processes the responder's reply.
    ///
    /// Appends to `have` the ids this side has and the responder lacks, and to
    /// `need` the ids the responder has and this side lacks. Each call appends
    /// only ids not already in the list, sorted, so over a whole session each
    /// list holds every id once. Returns the next message to send, or `None` when
    /// reconciliation is complete. On error nothing is appended; the session
    /// should be abandoned.
    pub fn reconcile(
        &mut self,
        msg: &[u8],
        have: &mut Vec<[u8; ID_LEN]>,
        need: &mut Vec<[u8; ID_LEN]>,
    ) -> Result<Option<Vec<u8>>, ReconcileError> {
        if self.role != Role::Initiator {
            return Err(ReconcileError::NotInitiator);
        }
        validate(msg, self.limits)?;
        let mut engine = self.engine()?;
        engine.set_initiator();
        let (mut new_have, mut new_need) = (Vec::new(), Vec::new());
        let next = engine.reconcile_with_ids(msg, &mut new_have, &mut new_need)?;
        append_new(have, &new_have);
        append_new(need, &new_need);
        Ok(next)
    }

    /// Responder: answers one message from the initiator.
    pub fn respond(&mut self, msg: &[u8]) -> Result<Vec<u8>, ReconcileError> {
        if self.role == Role::Initiator {
            return Err(ReconcileError::NotResponder);
        }
        self.role = Role::Responder;
        validate(msg, self.limits)?;
        Ok(self.engine()?.reconcile(msg)?)
    }

    /// A fresh engine over the borrowed items; it holds no state we need to
    /// keep between calls.
    fn engine(&self) -> Result<Negentropy<'_, SortedItems<'a>>, ReconcileError> {
        // `new` checked that the limit fits in a u64 and is at least the
        // engine's minimum.
        let limit = u64::try_from(self.limits.max_message_bytes).unwrap_or(u64::MAX);
        Ok(Negentropy::borrowed(&self.items, limit)?)
    }
}

impl fmt::Debug for Reconciler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("items", &self.items.0.len())
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
    /// The configured limit is below the protocol minimum.
    #[error(
        "reconciliation limits {limits:?} are too small: need at least {} bytes per message",
        Limits::MIN_MESSAGE_BYTES
    )]
    LimitsTooSmall {
        /// The rejected limits.
        limits: Limits,
    },
    /// `reconcile` was called on a reconciler that is not the initiator.
    #[error("reconcile() processes replies for the initiator; call initiate() or resume_as_initiator() first, or use respond() on the responding side")]
    NotInitiator,
    /// `respond` was called on a reconciler that is the initiator.
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
    /// The peer's message does not follow the wire format.
    #[error("peer sent a malformed reconciliation message: {reason} (at byte {offset})")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// Byte offset in the message where decoding failed.
        offset: usize,
    },
    /// The negentropy engine failed on a message that passed validation, or
    /// on local state. This is a bug in this module or in the engine, not
    /// the peer's fault; please report it.
    #[error("the reconciliation engine failed: {reason}; this is a bug, please report it")]
    Engine {
        /// The engine's error.
        reason: String,
    },
}

impl ReconcileError {
    /// True when the error was caused by the peer's message rather than by the
    /// local caller.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedVersion { .. } | Self::MessageTooLarge { .. } | Self::Malformed { .. }
        )
    }
}

impl From<negentropy::Error> for ReconcileError {
    fn from(err: negentropy::Error) -> Self {
        Self::Engine {
            reason: err.to_string(),
        }
    }
}

/// Appends to `out`, sorted, the ids in `found` that `out` does not hold yet.
///
/// The engine may report an id twice in one session: when it cuts a frame, its
/// closing fingerprint covers everything from its last written bound on,
/// including id lists it already processed, and the next round can list those
/// ids again. Sorting keeps a session deterministic (the engine reports `need`
/// in hash-set order).
fn append_new(out: &mut Vec<[u8; ID_LEN]>, found: &[negentropy::Id]) {
    if found.is_empty() {
        return;
    }
    let mut seen: HashSet<[u8; ID_LEN]> = out.iter().copied().collect();
    let mut fresh: Vec<[u8; ID_LEN]> = found
        .iter()
        .map(|id| **id)
        .filter(|id| seen.insert(*id))
        .collect();
    fresh.sort_unstable();
    out.append(&mut fresh);
}

/// The items as the engine's storage, borrowed rather than copied. `Reconciler::new`
/// checked that they are strictly increasing.
struct SortedItems<'a>(&'a [Item]);

impl NegentropyStorageBase for SortedItems<'_> {
    fn size(&self) -> Result<usize, negentropy::Error> {
        Ok(self.0.len())
    }

    fn get_item(&self, i: usize) -> Result<Option<negentropy::Item>, negentropy::Error> {
        Ok(self.0.get(i).map(engine_item))
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        cb: &mut dyn FnMut(negentropy::Item, usize) -> Result<bool, negentropy::Error>,
    ) -> Result<(), negentropy::Error> {
        let items = self.0.get(begin..end).ok_or(negentropy::Error::BadRange)?;
        for (index, item) in (begin..).zip(items) {
            if !cb(engine_item(item), index)? {
                break;
            }
        }
        Ok(())
    }

    fn find_lower_bound(&self, first: usize, last: usize, value: &negentropy::Bound) -> usize {
        let target = (value.item.timestamp, &*value.item.id);
        match self.0.get(first..last) {
            Some(items) => {
                first + items.partition_point(|item| (item.timestamp, &item.id) < target)
            }
            None => first,
        }
    }
}

fn engine_item(item: &Item) -> negentropy::Item {
    negentropy::Item::with_timestamp_and_id(
        item.timestamp,
        negentropy::Id::from_byte_array(item.id),
    )
}

/// Upper end of a range as decoded: a point in item order, or past every item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// Compares like the item `(timestamp, prefix)`; bytes of `prefix` past
    /// the prefix length are zero.
    Point {
        timestamp: u64,
        prefix: [u8; ID_LEN],
    },
    Infinity,
}

impl Bound {
    /// Below every item.
    const START: Self = Self::Point {
        timestamp: 0,
        prefix: [0; ID_LEN],
    };

    fn cmp_bound(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Infinity, Self::Infinity) => Ordering::Equal,
            (Self::Infinity, Self::Point { .. }) => Ordering::Greater,
            (Self::Point { .. }, Self::Infinity) => Ordering::Less,
            (
                Self::Point {
                    timestamp: t1,
                    prefix: p1,
                },
                Self::Point {
                    timestamp: t2,
                    prefix: p2,
                },
            ) => (t1, p1).cmp(&(t2, p2)),
        }
    }
}

/// Checks a whole incoming message against the wire format before the engine
/// acts on it. The engine's own parser is lenient (it reads truncated varints
/// and saturates timestamps); this one is strict, so what the engine sees is
/// always well formed.
fn validate(msg: &[u8], limits: Limits) -> Result<(), ReconcileError> {
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
    let mut previous = Bound::START;
    let mut last_timestamp = 0;
    while !reader.is_empty() {
        let start = reader.pos;
        let upper = reader.bound(&mut last_timestamp)?;
        if upper.cmp_bound(&previous) == Ordering::Less {
            return Err(reader.malformed_at(start, "range bounds decrease"));
        }
        previous = upper;
        let mode_at = reader.pos;
        match reader.varint()? {
            MODE_SKIP => {}
            MODE_FINGERPRINT => {
                reader.take(FINGERPRINT_LEN, "truncated fingerprint")?;
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
                reader.take(len, "truncated id list")?;
            }
            _ => return Err(reader.malformed_at(mode_at, "unknown range mode")),
        }
    }
    Ok(())
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

    /// A minimal big-endian base-128 varint that fits in a u64.
    fn varint(&mut self) -> Result<u64, ReconcileError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.byte("truncated varint")?;
            if i == 0 && byte == 0x80 {
                return Err(self.malformed_at(start, "varint is not minimally encoded"));
            }
            if value >> 57 != 0 {
                return Err(self.malformed_at(start, "varint overflows u64"));
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
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
        Ok(Bound::Point { timestamp, prefix })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use sha2::{Digest, Sha256};

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
        let mut msg = initiator.initiate().unwrap();
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
        // 16 fingerprint ranges out, the bare version byte back.
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
            max_message_bytes: Limits::MIN_MESSAGE_BYTES - 1,
        };
        let small_err = err(&[], small);
        assert!(matches!(small_err, ReconcileError::LimitsTooSmall { .. }));
        assert!(!small_err.is_peer_fault());
    }

    #[test]
    fn roles_are_enforced() {
        let mut r = Reconciler::new(&[], Limits::default()).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        assert_eq!(
            r.reconcile(&[PROTOCOL_VERSION], &mut have, &mut need),
            Err(ReconcileError::NotInitiator)
        );
        let first = r.initiate().unwrap();
        assert_eq!(r.respond(&first), Err(ReconcileError::NotResponder));
        let mut resumed = Reconciler::new(&[], Limits::default()).unwrap();
        resumed.resume_as_initiator();
        assert_eq!(
            resumed.reconcile(&[PROTOCOL_VERSION], &mut have, &mut need),
            Ok(None)
        );
    }

    /// A reconciler rebuilt for every round (as the node does) reaches the
    /// same result as one kept for the whole session.
    #[test]
    fn initiator_rebuilt_every_round_converges() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let a = random_items(&mut rng, 3000, 50);
        let b = random_items(&mut rng, 3000, 50);
        let limits = Limits {
            max_message_bytes: Limits::MIN_MESSAGE_BYTES,
        };
        let mut responder = Reconciler::new(&b, limits).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let mut msg = Reconciler::new(&a, limits).unwrap().initiate().unwrap();
        for _ in 0..1000 {
            let reply = responder.respond(&msg).unwrap();
            let mut initiator = Reconciler::new(&a, limits).unwrap();
            initiator.resume_as_initiator();
            match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
                Some(next) => msg = next,
                None => break,
            }
        }
        have.sort_unstable();
        need.sort_unstable();
        assert_eq!(have, ids_only_in(&a, &b));
        assert_eq!(need, ids_only_in(&b, &a));
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
        let v = PROTOCOL_VERSION;
        assert_eq!(malformed_reason(&[]), "empty message: missing version byte");
        assert_eq!(
            respond_err(&[0x01, 0, 0, 0]),
            ReconcileError::UnsupportedVersion { got: 0x01 }
        );
        // Another Negentropy version: the engine alone would answer it with a
        // bare version byte; it is rejected instead.
        assert_eq!(
            respond_err(&[0x62, 0, 0, 0]),
            ReconcileError::UnsupportedVersion { got: 0x62 }
        );
        // IdList claiming u64::MAX ids, and one claiming 2 ids but carrying 1.
        let huge = [
            v, 0, 0, 2, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(malformed_reason(&huge), "id list longer than the message");
        let short = [&[v, 0, 0, 2, 2][..], &[7; 32]].concat();
        assert_eq!(malformed_reason(&short), "id list longer than the message");
        assert_eq!(malformed_reason(&[v, 0, 0, 3]), "unknown range mode");
        assert_eq!(
            malformed_reason(&[v, 5, 33]),
            "bound id prefix longer than 32 bytes"
        );
        assert_eq!(malformed_reason(&[v, 5, 2, 1]), "truncated bound id prefix");
        assert_eq!(
            malformed_reason(&[v, 0, 1, 7, 0]),
            "infinity bound with an id prefix"
        );
        // Bounds (ts 5) then (ts 4): the delta cannot go down, but (ts 5,
        // prefix 01) then (ts 5, empty prefix) does.
        assert_eq!(
            malformed_reason(&[v, 6, 1, 1, 0, 1, 0, 0]),
            "range bounds decrease"
        );
        // Infinity, then a finite bound.
        assert_eq!(
            malformed_reason(&[v, 0, 0, 0, 2, 0, 0]),
            "bound timestamp out of range"
        );
        assert_eq!(
            malformed_reason(&[v, 0x80, 0x01, 0, 0]),
            "varint is not minimally encoded"
        );
        let overflow = [
            v, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0,
        ];
        assert_eq!(malformed_reason(&overflow), "varint overflows u64");
        let too_long = [&[v, 0x81][..], &[0x80; 10]].concat();
        assert_eq!(malformed_reason(&too_long), "varint longer than 10 bytes");
        assert_eq!(malformed_reason(&[v, 0x81]), "truncated varint");
        // A bound at timestamp 1, then a delta reaching exactly u64::MAX (the
        // reserved value), then one past it.
        let max_delta = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        for first in [2, 3] {
            let msg = [&[v, first, 0, 0][..], &max_delta, &[0, 0]].concat();
            assert_eq!(malformed_reason(&msg), "bound timestamp out of range");
        }
        assert_eq!(
            malformed_reason(&[v, 0, 0, 1, 1, 2]),
            "truncated fingerprint"
        );
    }

    #[test]
    fn valid_edge_messages_are_accepted() {
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(14), 100, 1000);
        let mut responder = Reconciler::new(&items, Limits::default()).unwrap();
        let v = PROTOCOL_VERSION;
        // Nothing to say: nothing to answer.
        assert_eq!(responder.respond(&[v]).unwrap(), [v]);
        // Two ranges up to infinity (an honest frame cut right after a range
        // that reached infinity), the second one empty.
        let fp_empty = hex::decode("7f9c9e31ac8256ca2f258583df262dbc").unwrap();
        let mut msg = vec![v, 0, 0, 0, 0, 0, 1];
        msg.extend_from_slice(&fp_empty);
        assert!(responder.respond(&msg).is_ok());
    }

    #[test]
    fn size_limit_is_enforced() {
        let limits = Limits::default();
        let big = vec![PROTOCOL_VERSION; limits.max_message_bytes + 1];
        assert_eq!(
            respond_err(&big),
            ReconcileError::MessageTooLarge {
                len: limits.max_message_bytes + 1,
                max: limits.max_message_bytes
            }
        );
        // Skip ranges at timestamps 1, 2, 3, ..., filling the frame: accepted,
        // and answered with nothing.
        let mut skips = vec![PROTOCOL_VERSION];
        while skips.len() + 3 <= limits.max_message_bytes {
            skips.extend_from_slice(&[2, 0, 0]);
        }
        let items = random_items(&mut ChaCha8Rng::seed_from_u64(10), 100, 1000);
        let reply = Reconciler::new(&items, limits)
            .unwrap()
            .respond(&skips)
            .unwrap();
        assert_eq!(reply, [PROTOCOL_VERSION], "all-Skip answer");
    }

    #[test]
    fn failed_reconcile_leaves_outputs_untouched() {
        let a = random_items(&mut ChaCha8Rng::seed_from_u64(11), 10, 1000);
        let b = random_items(&mut ChaCha8Rng::seed_from_u64(12), 10, 1000);
        let mut initiator = Reconciler::new(&a, Limits::default()).unwrap();
        let first = initiator.initiate().unwrap();
        let mut reply = Reconciler::new(&b, Limits::default())
            .unwrap()
            .respond(&first)
            .unwrap();
        reply.pop(); // the last id is cut short
        let (mut have, mut need) = (vec![[1; ID_LEN]], Vec::new());
        assert!(initiator.reconcile(&reply, &mut have, &mut need).is_err());
        assert_eq!((have, need), (vec![[1; ID_LEN]], vec![]));
    }

    /// The engine over our borrowed items sends exactly what the crate's own
    /// storage sends for the same set.
    #[test]
    fn borrowed_storage_matches_the_crate_storage() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        for spread in [1, 20, 1 << 40] {
            let items = random_items(&mut rng, 3000, spread);
            let mut storage = negentropy::NegentropyStorageVector::new();
            for item in &items {
                storage
                    .insert(item.timestamp, negentropy::Id::from_byte_array(item.id))
                    .unwrap();
            }
            storage.seal().unwrap();
            let theirs = Negentropy::borrowed(&storage, 65_536)
                .unwrap()
                .initiate()
                .unwrap();
            let ours = Reconciler::new(&items, Limits::default())
                .unwrap()
                .initiate()
                .unwrap();
            assert_eq!(hex::encode(ours), hex::encode(theirs));
        }
    }

    /// Reference fingerprint, written from the spec with an independent
    /// SHA-256.
    fn reference_fingerprint(items: &[Item]) -> [u8; FINGERPRINT_LEN] {
        let mut sum = [0u8; 32];
        for item in items {
            let mut carry = 0u16;
            for (s, b) in sum.iter_mut().zip(item.id) {
                let total = u16::from(*s) + u16::from(b) + carry;
                *s = total as u8;
                carry = total >> 8;
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(sum);
        // Counts below 128 are one varint byte.
        hasher.update([u8::try_from(items.len()).unwrap()]);
        let digest = hasher.finalize();
        let mut out = [0; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        out
    }

    /// Test vectors for a second implementation.
    #[test]
    fn wire_format_vectors() {
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
        // Two items: one IdList range up to infinity.
        let msg = Reconciler::new(&items, Limits::default())
            .unwrap()
            .initiate()
            .unwrap();
        assert_eq!(
            hex::encode(&msg),
            format!("61000002020100{}{}", "00".repeat(30), "ff".repeat(32))
        );

        // 32 items at timestamps 1000..1032 split into 16 buckets of 2, bounds
        // delta-encoded: first 1 + 1002 = 1003 (big-endian varint 87 6b),
        // then 1 + 2 each, last infinity.
        let items: Vec<Item> = (0..32u8)
            .map(|i| Item {
                timestamp: 1000 + u64::from(i),
                id: [i; ID_LEN],
            })
            .collect();
        let msg = Reconciler::new(&items, Limits::default())
            .unwrap()
            .initiate()
            .unwrap();
        let mut expected = String::from("61");
        for bucket in 0..16 {
            let bound = match bucket {
                0 => "876b00",
                15 => "0000",
                _ => "0300",
            };
            let fp = reference_fingerprint(&items[2 * bucket..2 * bucket + 2]);
            expected += &format!("{bound}01{}", hex::encode(fp));
        }
        assert_eq!(hex::encode(&msg), expected);
        // Pinned fingerprints, so a second implementation can check its
        // hashing without this code: the empty set is SHA-256(32 zero bytes,
        // 00), and the first bucket above.
        assert_eq!(
            hex::encode(reference_fingerprint(&[])),
            "7f9c9e31ac8256ca2f258583df262dbc"
        );
        assert_eq!(
            hex::encode(reference_fingerprint(&items[..2])),
            "2badbd7659924f488790ab577a29bcbe"
        );
    }
}
