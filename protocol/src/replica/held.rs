//! Items held back until missing state arrives, kept in the form their first check left them
//! (an envelope decrypted with its signature verified, a key delivery decoded and verified), and
//! indexed by what each waits for, so a new op, key or alert tries again only the items waiting
//! for it, and a retry re-runs only the checks whose answer can change (the roster at the item's
//! heads, the epoch, the quota, the target), never a decryption or a signature check.
//!
//! Bounded in items ([`MAX_HELD`], [`MAX_HELD_PER_AUTHOR`], [`MAX_HELD_UNOPENED`]) and in
//! accounted bytes ([`MAX_HELD_BYTES`], [`MAX_HELD_BYTES_PER_AUTHOR`]): each item counts its
//! bytes as received and again for its decoded form, plus [`HELD_ITEM_OVERHEAD`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::envelope::Opened;
use crate::epoch::KeyDelivery;
use crate::membership::Op;
use crate::{ContentId, EpochId, MemberId, OpId};

/// Most items held back waiting for missing state.
pub const MAX_HELD: usize = 2048;
/// Most items held back for one author, and apart from them most of her ops waiting for their
/// parents (the oldest of each dropped first): one member's junk (posts naming a made-up head)
/// takes at most this many places, and a replay of her ops (in reverse order, say) cannot push
/// out her held posts and deliveries (Review 5, H3).
pub const MAX_HELD_PER_AUTHOR: usize = 64;
/// Most envelopes held whose epoch key this replica lacks: they cannot be opened, so nobody
/// is known to have signed them, and they push out only each other, never an item whose
/// author is known, even when the held set is full (Review 5, H1).
pub const MAX_HELD_UNOPENED: usize = MAX_HELD / 4;
/// Most bytes held items are accounted for in all (see [`HELD_ITEM_OVERHEAD`]).
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// Most bytes one author's held items are accounted for (their oldest is dropped first): a
/// key delivery may be 256 KiB, so a count alone would let one member hold 64 of them.
pub const MAX_HELD_BYTES_PER_AUTHOR: usize = MAX_HELD_BYTES / 8;
/// What each held item is accounted for besides twice its length (its bytes as received and
/// its decoded form, which is never larger than the encoding it came from by more than the
/// allocations' headers): the entry, its decoded structure's headers and its index entries.
pub const HELD_ITEM_OVERHEAD: usize = 1024;

/// What a held item waits for: any one arriving tries it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Wait {
    /// A membership op (a head it names) to join the log.
    Op(OpId),
    /// A key delivery of this epoch (its key, or its rotation) to be accepted.
    Epoch(EpochId),
    /// A post (the alert it refers to) to be accepted.
    Post(ContentId),
}

/// What a held item's first check established.
#[derive(Debug)]
pub(super) enum Form {
    /// An envelope under an epoch whose key this replica lacks: not opened yet.
    Sealed(Vec<u8>),
    /// An envelope that decrypted and whose signature verifies, with its bytes as received.
    Opened(Vec<u8>, Box<Opened>),
    /// A key delivery that decoded and whose signature verifies.
    Delivery(Box<KeyDelivery>),
    /// A membership op that decoded and whose signatures verify, waiting for its parents.
    Op(Box<Op>),
}

impl Form {
    /// Its bytes as received.
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Form::Sealed(bytes) | Form::Opened(bytes, _) => bytes,
            Form::Delivery(delivery) => delivery.encoded(),
            Form::Op(op) => op.encoded(),
        }
    }

    /// What it is accounted for: its bytes, once more for a decoded form, and the overhead.
    fn cost(&self) -> usize {
        let len = self.bytes().len();
        match self {
            Form::Sealed(_) => len + HELD_ITEM_OVERHEAD,
            Form::Opened(..) | Form::Delivery(_) | Form::Op(_) => 2 * len + HELD_ITEM_OVERHEAD,
        }
    }
}

/// Whose share of the places a held item takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Bucket {
    /// Envelopes that could not be opened: nobody is known to have signed them.
    Unopened,
    /// An author's posts and deliveries.
    Items(MemberId),
    /// An author's ops waiting for their parents.
    Ops(MemberId),
}

impl Bucket {
    fn of(hold: &Hold) -> Bucket {
        match (hold.author, &hold.form) {
            (None, _) => Bucket::Unopened,
            (Some(author), Form::Op(_)) => Bucket::Ops(author),
            (Some(author), _) => Bucket::Items(author),
        }
    }

    /// Its most items and accounted bytes.
    fn caps(self) -> (usize, usize) {
        match self {
            Bucket::Unopened => (MAX_HELD_UNOPENED, MAX_HELD_BYTES_PER_AUTHOR),
            Bucket::Items(_) | Bucket::Ops(_) => (MAX_HELD_PER_AUTHOR, MAX_HELD_BYTES_PER_AUTHOR),
        }
    }
}

/// An item to hold: its form, who signed it (where known) and what it waits for.
#[derive(Debug)]
pub(super) struct Hold {
    pub(super) form: Form,
    pub(super) author: Option<MemberId>,
    pub(super) waits: Vec<Wait>,
}

#[derive(Debug)]
struct Entry {
    hold: Hold,
    /// Its refusal key (the hash of its bytes).
    key: [u8; 32],
    cost: usize,
}

/// The held items, oldest first, with their indexes.
#[derive(Debug, Default)]
pub(super) struct HeldItems {
    /// By age: a lower number is older. An item tried again and held again keeps its age.
    entries: BTreeMap<u64, Entry>,
    next: u64,
    by_key: HashMap<[u8; 32], u64>,
    by_wait: HashMap<Wait, BTreeSet<u64>>,
    /// Per share of the places, its items and accounted bytes.
    by_bucket: HashMap<Bucket, (BTreeSet<u64>, usize)>,
    /// The opened envelopes by the id of the post they carry (verified when opened): another
    /// wrapping of the same post is a duplicate (Review 5, H2).
    by_post: HashMap<ContentId, u64>,
    bytes: usize,
}

impl HeldItems {
    /// How many items are held.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The bytes the held items are accounted for.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The item held under this refusal key, if any.
    pub(super) fn find(&self, key: &[u8; 32]) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// Whether an opened envelope carrying the post `id` is held.
    pub(super) fn holds_post(&self, id: &ContentId) -> bool {
        self.by_post.contains_key(id)
    }

    /// Every held item, oldest first.
    pub(super) fn all(&self) -> Vec<u64> {
        self.entries.keys().copied().collect()
    }

    /// The items waiting for `wait`, oldest first.
    pub(super) fn waiting_for(&self, wait: &Wait) -> Vec<u64> {
        self.by_wait
            .get(wait)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Take an item out (to try it again), with its refusal key and age.
    pub(super) fn take(&mut self, at: u64) -> Option<(Hold, [u8; 32], u64)> {
        let entry = self.entries.remove(&at)?;
        self.by_key.remove(&entry.key);
        for wait in &entry.hold.waits {
            if let Some(set) = self.by_wait.get_mut(wait) {
                set.remove(&at);
                if set.is_empty() {
                    self.by_wait.remove(wait);
                }
            }
        }
        if let Form::Opened(_, opened) = &entry.hold.form {
            if self.by_post.get(&opened.id) == Some(&at) {
                self.by_post.remove(&opened.id);
            }
        }
        let bucket = Bucket::of(&entry.hold);
        if let Some((set, bytes)) = self.by_bucket.get_mut(&bucket) {
            set.remove(&at);
            *bytes -= entry.cost;
            if set.is_empty() {
                self.by_bucket.remove(&bucket);
            }
        }
        self.bytes -= entry.cost;
        Some((entry.hold, entry.key, at))
    }

    /// Hold an item under its refusal key `key`, as new or (`age`) at the age it had, dropping
    /// the oldest items its bounds require: its share's (its author's posts and deliveries, her
    /// ops, or the unopened envelopes) first, then the oldest of all, except that an unopened
    /// envelope pushes out only unopened ones: when none is left to drop, it is dropped itself
    /// (returns false).
    pub(super) fn insert(&mut self, key: [u8; 32], hold: Hold, age: Option<u64>) -> bool {
        if let Some(old) = self.find(&key) {
            self.take(old);
        }
        let cost = hold.form.cost();
        let bucket = Bucket::of(&hold);
        let (count_cap, bytes_cap) = bucket.caps();
        while let Some((set, bytes)) = self.by_bucket.get(&bucket) {
            if set.len() < count_cap && bytes + cost <= bytes_cap {
                break;
            }
            let Some(&oldest) = set.first() else { break };
            self.take(oldest);
        }
        while self.entries.len() >= MAX_HELD || self.bytes + cost > MAX_HELD_BYTES {
            let oldest = match bucket {
                Bucket::Unopened => self
                    .by_bucket
                    .get(&Bucket::Unopened)
                    .and_then(|(set, _)| set.first().copied()),
                Bucket::Items(_) | Bucket::Ops(_) => self.entries.keys().next().copied(),
            };
            let Some(oldest) = oldest else {
                return false;
            };
            self.take(oldest);
        }
        let at = age.unwrap_or_else(|| {
            self.next += 1;
            self.next
        });
        for wait in &hold.waits {
            self.by_wait.entry(*wait).or_default().insert(at);
        }
        if let Form::Opened(_, opened) = &hold.form {
            self.by_post.entry(opened.id).or_insert(at);
        }
        let (set, bytes) = self.by_bucket.entry(bucket).or_default();
        set.insert(at);
        *bytes += cost;
        self.bytes += cost;
        self.by_key.insert(key, at);
        self.entries.insert(at, Entry { hold, key, cost });
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    fn sealed(len: usize, tag: u8, author: Option<u8>, waits: Vec<Wait>) -> ([u8; 32], Hold) {
        let mut key = [0u8; 32];
        key[0] = tag;
        key[1] = author.unwrap_or(0xff);
        key[2..10].copy_from_slice(&(len as u64).to_le_bytes());
        let hold = Hold {
            form: Form::Sealed(vec![0; len]),
            author: author.map(|a| MemberId([a; 32])),
            waits,
        };
        (key, hold)
    }

    /// The accounted bytes stay under the caps whatever is held: one author's large items push
    /// out that author's oldest, and many authors' push out the oldest of all.
    #[test]
    fn held_bytes_stay_within_the_caps() {
        let mut held = HeldItems::default();
        let big = 200_000;
        for i in 0..40u8 {
            let (key, hold) = sealed(big, i, Some(1), vec![Wait::Op(OpId([i; 32]))]);
            held.insert(key, hold, None);
            let mine = held
                .by_bucket
                .get(&Bucket::Items(MemberId([1; 32])))
                .map_or(0, |e| e.1);
            assert!(
                mine <= MAX_HELD_BYTES_PER_AUTHOR,
                "{mine} bytes for one author"
            );
        }
        for author in 2..60u8 {
            for i in 0..8u8 {
                let (key, hold) = sealed(big, i, Some(author), vec![Wait::Epoch(EpochId([i; 32]))]);
                held.insert(key, hold, None);
                assert!(
                    held.bytes() <= MAX_HELD_BYTES,
                    "{} bytes held",
                    held.bytes()
                );
            }
        }
        let total: usize = held.entries.values().map(|e| e.cost).sum();
        assert_eq!(total, held.bytes());
        assert!(held.bytes() > MAX_HELD_BYTES - 2 * big - HELD_ITEM_OVERHEAD * 2);
    }

    /// Envelopes nobody is known to have signed (their key is missing) take at most their own
    /// share of the places, and push out only each other: an author's held item stays.
    #[test]
    fn unopened_envelopes_push_out_only_each_other() {
        let mut held = HeldItems::default();
        let (key, hold) = sealed(100, 0, Some(7), vec![Wait::Post(ContentId([1; 32]))]);
        held.insert(key, hold, None);
        for i in 0..(MAX_HELD as u32 + 10) {
            let mut key = [0xaa; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let hold = Hold {
                form: Form::Sealed(vec![1; 100]),
                author: None,
                waits: vec![Wait::Epoch(EpochId([9; 32]))],
            };
            held.insert(key, hold, None);
        }
        assert_eq!(held.len(), MAX_HELD_UNOPENED + 1);
        assert!(held.find(&key).is_some(), "an author's item was pushed out");
        assert_eq!(
            held.waiting_for(&Wait::Epoch(EpochId([9; 32]))).len(),
            MAX_HELD_UNOPENED
        );
    }

    /// The same once the held set is full of items whose authors are known (32 authors' 64
    /// places each): unopened envelopes find none of their own to push out and are dropped
    /// themselves, and every authored item stays (Review 5, H1: 512 were pushed out). With
    /// room made, they take places again, still at most their share.
    #[test]
    fn unopened_envelopes_push_out_only_each_other_when_the_set_is_full() {
        let mut held = HeldItems::default();
        let authored = Wait::Op(OpId([1; 32]));
        for author in 0..(MAX_HELD / MAX_HELD_PER_AUTHOR) as u8 {
            for i in 0..MAX_HELD_PER_AUTHOR as u32 {
                let mut key = [author; 32];
                key[1..5].copy_from_slice(&i.to_le_bytes());
                let hold = Hold {
                    form: Form::Sealed(vec![0; 100]),
                    author: Some(MemberId([author; 32])),
                    waits: vec![authored],
                };
                assert!(held.insert(key, hold, None));
            }
        }
        assert_eq!(held.len(), MAX_HELD);
        let unopened = |i: u32| {
            let mut key = [0xee; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let hold = Hold {
                form: Form::Sealed(vec![1; 100]),
                author: None,
                waits: vec![Wait::Epoch(EpochId([9; 32]))],
            };
            (key, hold)
        };
        for i in 0..MAX_HELD_UNOPENED as u32 {
            let (key, hold) = unopened(i);
            assert!(!held.insert(key, hold, None));
            assert!(held.find(&key).is_none());
        }
        assert_eq!(
            held.waiting_for(&authored).len(),
            MAX_HELD,
            "authored items pushed out"
        );
        assert_eq!(held.len(), MAX_HELD);
        // Room made: unopened ones are held again, and once that room is full they push out
        // only each other.
        for at in held.waiting_for(&authored).into_iter().take(10) {
            held.take(at);
        }
        for i in 0..20u32 {
            let (key, hold) = unopened(1000 + i);
            held.insert(key, hold, None);
        }
        assert_eq!(held.len(), MAX_HELD);
        assert_eq!(held.waiting_for(&authored).len(), MAX_HELD - 10);
        assert_eq!(held.waiting_for(&Wait::Epoch(EpochId([9; 32]))).len(), 10);
    }

    /// Taking an item out removes it from every index, so nothing stale is left behind by
    /// items that never get what they wait for.
    #[test]
    fn taking_an_item_leaves_no_index_entry() {
        let mut held = HeldItems::default();
        let waits = vec![Wait::Op(OpId([1; 32])), Wait::Op(OpId([2; 32]))];
        let (key, hold) = sealed(10, 0, Some(3), waits);
        held.insert(key, hold, None);
        let at = held.find(&key).expect("held");
        let (hold, taken, age) = held.take(at).expect("held");
        assert_eq!((taken, age), (key, at));
        assert_eq!(hold.waits.len(), 2);
        assert_eq!(held.len(), 0);
        assert_eq!(held.bytes(), 0);
        assert!(held.by_wait.is_empty() && held.by_bucket.is_empty() && held.by_key.is_empty());
        // Held again at its age.
        held.insert(key, hold, Some(age));
        assert_eq!(held.find(&key), Some(age));
        assert_eq!(held.waiting_for(&Wait::Op(OpId([2; 32]))), vec![age]);
    }
}
