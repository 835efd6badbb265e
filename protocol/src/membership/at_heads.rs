//! Who the members were at a membership state the log has been at: the question a key delivery
//! asks, answered without resolving that state again.
//!
//! A key delivery names the heads its recipients were taken from, and every replica checks it
//! against the roster at those heads: its author a member, each recipient a member with the
//! agreement key it was sealed to, and for a rotation, every member a recipient and the removed
//! members recorded ([`KeyDelivery::check_authority`](crate::epoch::KeyDelivery::check_authority),
//! [`EpochBook::record`](crate::epoch::EpochBook::record)). A share made on request names its
//! maker's current heads, so during an enrolment nearly every share names a state no other item
//! names, and each replica resolved each such state in full: a replay of every op in it (the
//! 1,000-replica simulation spent 57–79 % of its CPU there, docs/BENCHMARKS.md). Yet most of
//! those states are ones the replica's own log was at a moment earlier: the maker was at the
//! same state, with the same ops, when it made the share.
//!
//! So the log keeps, for the states its roster was resolved at, what a delivery reads of each:
//! the current members with their agreement keys, and the removed members ([`Membership`]). The
//! newest is kept whole; each older one as the difference from the next newer (a few members
//! per state during an enrolment) and its heads, within bounds on both (a member can make
//! thousands of heads: Review 17's R17-1).
//!
//! A replica taking ops in another order than the maker did never stops at the maker's state:
//! with several moderators enrolling at once, none of the 1,000-replica simulation's shares
//! named a state the receiving replica's roster had been at. Such a state is resolved in full
//! once, and kept as the difference from the newest state then ([`PastStates::remember`]):
//! several deliveries name one maker's state, and `roster_at`'s cache has room for two whole
//! rosters of 1,000 members (the 1,000-replica simulation answered 346,218 deliveries from such
//! kept states, against 235,398 full resolutions, and converged without shared resolutions).
//!
//! **Why the answer is exact.** The log's ops with full history are closed under parents, so a
//! state is fixed by its heads: the ops held are exactly those heads and their ancestors. Each
//! state recorded is the log's resolved roster at that moment, whose heads are the heads of the
//! ops held; a state is looked up by the named heads (sorted, without repeats) compared with a
//! recorded roster's heads (sorted, without repeats), so a hit names exactly the ops that roster
//! was resolved from, and resolution is a function of the set of ops. The differences are
//! applied exactly (each records an id's whole entry before the change, or its absence), so the
//! members and removals rebuilt for a state are those of its roster. Anything not recorded, or
//! dropped to bound memory, is answered by a full resolution as before. Checked against a full
//! resolution at each recorded state for random histories, ops taken in in random orders
//! (`membership_at_is_the_resolved_membership`, fixed seeds). A named state kept is the full
//! resolution's answer at its heads, and its base (the newest state then) is one of the states
//! above while it is kept, rebuilt exactly as they are; the difference turns the base into that
//! answer exactly (`a_named_state_kept_is_the_resolved_membership`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::Roster;
use crate::ids::{CollectiveId, MemberId, OpId};

/// Most older states kept.
const MAX_STATES: usize = 256;
/// Most entries summed over the kept differences (an entry is an id and at most one key).
const MAX_ENTRIES: usize = 16_384;
/// Most head ids summed over the older states kept (a member can make thousands of heads: 256
/// ops per day of date since the founding, each naming an old op; Review 17's R17-1).
const MAX_HEAD_IDS: usize = 16_384;
/// Most named states kept (states the log's roster was never at, resolved for a delivery).
const MAX_NAMED: usize = 256;
/// Most entries summed over the named states' differences and their keys' ids (a key read
/// through ops refused over the quota can name thousands: Review 17's R17-1); one state whose
/// difference and key alone are over this is not kept at all.
const MAX_NAMED_ENTRIES: usize = 16_384;
/// Most memberships rebuilt from the states kept that are kept whole, for deliveries naming a
/// few states in turn (Review 17's R17-3).
const MAX_REBUILT: usize = 4;

/// What a key delivery reads of the membership at its named heads: the current members with
/// their agreement keys, and the removed members.
pub trait MembersAt {
    /// Whether `id` is a current member.
    fn is_member(&self, id: &MemberId) -> bool;
    /// A current member's agreement key (the latest rotated one).
    fn agreement(&self, id: &MemberId) -> Option<[u8; 32]>;
    /// Every current member, in id order.
    fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_;
    /// Every removed member, in id order.
    fn removed_ids(&self) -> impl Iterator<Item = MemberId> + '_;
}

impl MembersAt for Roster {
    fn is_member(&self, id: &MemberId) -> bool {
        Roster::is_member(self, id)
    }
    fn agreement(&self, id: &MemberId) -> Option<[u8; 32]> {
        self.member(id).map(|m| m.identity.agreement)
    }
    fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.members().map(|m| m.identity.member)
    }
    fn removed_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.removed().keys().copied()
    }
}

impl<T: MembersAt + ?Sized> MembersAt for Arc<T> {
    fn is_member(&self, id: &MemberId) -> bool {
        (**self).is_member(id)
    }
    fn agreement(&self, id: &MemberId) -> Option<[u8; 32]> {
        (**self).agreement(id)
    }
    fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        (**self).member_ids()
    }
    fn removed_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        (**self).removed_ids()
    }
}

/// The members and removals of one roster, as a key delivery reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    members: BTreeMap<MemberId, [u8; 32]>,
    removed: BTreeSet<MemberId>,
}

impl Membership {
    /// What a delivery reads of `roster`.
    pub fn of(roster: &Roster) -> Self {
        Self {
            members: roster
                .members()
                .map(|m| (m.identity.member, m.identity.agreement))
                .collect(),
            removed: roster.removed().keys().copied().collect(),
        }
    }

    /// Turn this membership into another by `delta` (as [`Delta::between`] made it).
    fn apply(&mut self, delta: &Delta) {
        for (id, key) in &delta.members {
            match key {
                Some(key) => self.members.insert(*id, *key),
                None => self.members.remove(id),
            };
        }
        for (id, removed) in &delta.removed {
            if *removed {
                self.removed.insert(*id);
            } else {
                self.removed.remove(id);
            }
        }
    }
}

impl MembersAt for Membership {
    fn is_member(&self, id: &MemberId) -> bool {
        self.members.contains_key(id)
    }
    fn agreement(&self, id: &MemberId) -> Option<[u8; 32]> {
        self.members.get(id).copied()
    }
    fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.members.keys().copied()
    }
    fn removed_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.removed.iter().copied()
    }
}

/// How to turn one membership into another: each id whose entry differs, with its entry in the
/// other (`None`: not a member there; `false`: not removed there).
#[derive(Clone, Debug, Default)]
struct Delta {
    members: Vec<(MemberId, Option<[u8; 32]>)>,
    removed: Vec<(MemberId, bool)>,
}

impl Delta {
    /// What turns `from` into `to`.
    fn between(from: &Membership, to: &Membership) -> Self {
        let mut members = Vec::new();
        for (id, key) in &from.members {
            match to.members.get(id) {
                Some(other) if other == key => {}
                other => members.push((*id, other.copied())),
            }
        }
        for (id, key) in &to.members {
            if !from.members.contains_key(id) {
                members.push((*id, Some(*key)));
            }
        }
        let removed = from
            .removed
            .symmetric_difference(&to.removed)
            .map(|id| (*id, to.removed.contains(id)))
            .collect();
        Self { members, removed }
    }

    fn entries(&self) -> usize {
        self.members.len() + self.removed.len()
    }
}

/// The states a log's roster was resolved at, newest whole and older ones as differences.
///
/// Memory, whatever the ops and deliveries: at most [`MAX_ENTRIES`] + [`MAX_NAMED_ENTRIES`]
/// entries of differences (an id and at most one key each), [`MAX_HEAD_IDS`] +
/// [`MAX_NAMED_ENTRIES`] ids of heads and keys (a named state shares its base's heads, never
/// copies them), and whole memberships for the newest state and the [`MAX_REBUILT`] last
/// rebuilt (the roster's own size each).
#[derive(Clone, Debug, Default)]
pub(crate) struct PastStates {
    /// The latest roster seen: its heads and membership.
    newest: Option<(Arc<[OpId]>, Membership)>,
    /// Older states, oldest first: each one's heads and what turns the next newer state (the
    /// next entry, or `newest` for the last) into it.
    older: VecDeque<(Arc<[OpId]>, Delta)>,
    /// Entries summed over `older`'s differences.
    entries: usize,
    /// Head ids summed over `older`.
    head_ids: usize,
    /// States the roster was never at that a delivery named and the log resolved
    /// ([`PastStates::remember`]), oldest first: each one's heads, the heads of the state it
    /// is kept against (`newest` when it was resolved, so `newest` or one of `older` while
    /// kept; shared with it), and what turns that state into it.
    named: VecDeque<(Vec<OpId>, Arc<[OpId]>, Delta)>,
    /// Entries summed over `named`'s differences and keys.
    named_entries: usize,
    /// The last memberships rebuilt, newest last, for deliveries naming a few states in turn.
    rebuilt: VecDeque<(Vec<OpId>, Arc<Membership>)>,
}

impl PastStates {
    /// Record `roster` (resolved at its heads) as the newest state. Nothing if it is the newest
    /// already (same heads, hence the same ops).
    pub(crate) fn observe(&mut self, roster: &Roster) {
        let heads = roster.heads();
        if self.newest.as_ref().is_some_and(|(h, _)| **h == *heads) {
            return;
        }
        let now = Membership::of(roster);
        if let Some((old_heads, old)) = self.newest.take() {
            let delta = Delta::between(&now, &old);
            self.entries += delta.entries();
            self.head_ids += old_heads.len();
            self.older.push_back((old_heads, delta));
        }
        self.newest = Some((Arc::from(heads), now));
        while self.older.len() > MAX_STATES
            || self.entries > MAX_ENTRIES
            || self.head_ids > MAX_HEAD_IDS
        {
            self.forget_oldest();
        }
    }

    /// Drop the oldest state kept, and the named states kept against it.
    fn forget_oldest(&mut self) {
        if let Some((heads, delta)) = self.older.pop_front() {
            self.entries -= delta.entries();
            self.head_ids -= heads.len();
            let mut freed = 0;
            self.named.retain(|(key, base, delta)| {
                let keep = *base != heads;
                if !keep {
                    freed += delta.entries() + key.len();
                }
                keep
            });
            self.named_entries -= freed;
        }
    }

    /// Keep `membership`, which a full resolution at `key` (sorted, without repeats) gave, as
    /// the difference from the newest state, so that the next delivery naming `key` costs no
    /// resolution: during an enrolment every member receives each share, and many shares
    /// name one maker's state, which the member's own roster was never at (a replica that
    /// takes ops in another order never stops there). Nothing if no state is kept yet, `key`
    /// is kept already, or the difference alone is over the bound.
    pub(crate) fn remember(&mut self, key: Vec<OpId>, membership: &Membership) {
        let Some((base, newest)) = &self.newest else {
            return;
        };
        if **base == *key
            || self.older.iter().any(|(h, _)| **h == *key)
            || self.named.iter().any(|(h, _, _)| *h == key)
        {
            return;
        }
        let delta = Delta::between(newest, membership);
        let cost = delta.entries() + key.len();
        if cost > MAX_NAMED_ENTRIES {
            return;
        }
        self.named_entries += cost;
        self.named.push_back((key, Arc::clone(base), delta));
        while self.named.len() > MAX_NAMED || self.named_entries > MAX_NAMED_ENTRIES {
            if let Some((key, _, delta)) = self.named.pop_front() {
                self.named_entries -= delta.entries() + key.len();
            }
        }
    }

    /// The membership at `key` (sorted, without repeats), if the log's roster was resolved at
    /// exactly those heads, or a delivery's state there was kept ([`PastStates::remember`]),
    /// and the state is still kept.
    pub(crate) fn at(&mut self, key: &[OpId]) -> Option<Arc<Membership>> {
        if let Some((_, membership)) = self.rebuilt.iter().find(|(h, _)| h.as_slice() == key) {
            return Some(Arc::clone(membership));
        }
        let found = match self.resolved_at(key) {
            Some(found) => found,
            None => {
                let (_, base, delta) = self.named.iter().rev().find(|(h, _, _)| h == key)?;
                // Kept against `newest` or an older state, which is kept while it is (see
                // `forget_oldest`; all are dropped together when the log changes what its
                // past states are).
                let mut membership = self.resolved_at(base)?;
                membership.apply(delta);
                membership
            }
        };
        let found = Arc::new(found);
        if self.rebuilt.len() >= MAX_REBUILT {
            self.rebuilt.pop_front();
        }
        self.rebuilt.push_back((key.to_vec(), Arc::clone(&found)));
        Some(found)
    }

    /// What is kept, counted by walking it (not from the running totals): entries of
    /// differences, and ids of heads and keys, a list of heads shared by several states
    /// counted once.
    pub(crate) fn footprint(&self) -> (usize, usize) {
        let mut entries = 0;
        let mut ids = 0;
        let mut lists = std::collections::HashSet::new();
        let mut heads = |list: &Arc<[OpId]>, ids: &mut usize| {
            if lists.insert(list.as_ptr()) {
                *ids += list.len();
            }
        };
        if let Some((list, _)) = &self.newest {
            heads(list, &mut ids);
        }
        for (list, delta) in &self.older {
            heads(list, &mut ids);
            entries += delta.entries();
        }
        for (key, base, delta) in &self.named {
            ids += key.len();
            heads(base, &mut ids);
            entries += delta.entries();
        }
        for (key, _) in &self.rebuilt {
            ids += key.len();
        }
        (entries, ids)
    }

    /// The membership at `key`, a state the roster was resolved at and still kept.
    fn resolved_at(&self, key: &[OpId]) -> Option<Membership> {
        let (newest_heads, newest) = self.newest.as_ref()?;
        if **newest_heads == *key {
            return Some(newest.clone());
        }
        let at = self.older.iter().rposition(|(h, _)| **h == *key)?;
        let mut membership = newest.clone();
        for (_, delta) in self.older.iter().skip(at).rev() {
            membership.apply(delta);
        }
        Some(membership)
    }
}

/// Memberships at named states, shared by the replicas of one process (a simulation of many
/// replicas: each would otherwise resolve every state a key delivery names, the same pure
/// computation a thousand times). Off unless given to [`State`](crate::replica::State) with
/// `share_named_states`; a node runs one replica and never uses it. Exact: a state is fixed by
/// its collective (whose id fixes the genesis record) and its heads (whose ids fix every op
/// below them), and a replica asks only once it holds every one of those ops and reads none of
/// them through an op refused over the quota ([`MembershipLog::reads_any`](super::MembershipLog::reads_any): such a reading makes
/// the roster at those heads depend on the replica's refusals too), so the answer is the one its
/// own full resolution would give. Counts what it saves, so a simulation can report
/// the CPU a node would spend.
#[derive(Debug, Default)]
pub struct SharedStates {
    map: std::sync::Mutex<SharedMap>,
    resolved: std::sync::atomic::AtomicU64,
    reused: std::sync::atomic::AtomicU64,
}

/// A state (collective and sorted heads) and what a resolution there gave.
type SharedMap = std::collections::HashMap<(CollectiveId, Vec<OpId>), Arc<Membership>>;

/// Most states a [`SharedStates`] keeps before it starts again empty.
const MAX_SHARED_STATES: usize = 8_192;

impl SharedStates {
    /// The membership at `key` (sorted, without repeats), if some replica resolved it.
    pub(crate) fn get(&self, collective: CollectiveId, key: &[OpId]) -> Option<Arc<Membership>> {
        let map = self.map.lock().ok()?;
        let found = map.get(&(collective, key.to_vec())).cloned();
        if found.is_some() {
            self.reused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        found
    }

    /// Keep what a replica's full resolution at `key` gave.
    pub(crate) fn put(&self, collective: CollectiveId, key: Vec<OpId>, at: Arc<Membership>) {
        self.resolved
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_SHARED_STATES {
                map.clear();
            }
            map.insert((collective, key), at);
        }
    }

    /// Full resolutions made (once per state) and answers reused instead of a resolution.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.resolved.load(std::sync::atomic::Ordering::Relaxed),
            self.reused.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Up to `n` of the states kept (heads), to time a resolution of each.
    pub fn sample(&self, n: usize) -> Vec<Vec<OpId>> {
        self.map
            .lock()
            .map(|map| map.keys().take(n).map(|(_, k)| k.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! What the log kept of a state is what a full resolution of that state gives, for random
    //! histories taken in in random orders (orphans released in bulk, ops appended to the
    //! resolution, full resolutions), looked up by the heads of every state the roster was
    //! resolved at and by other sets of heads.
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::{MembersAt, Membership};
    use crate::membership::random_history::history;
    use crate::membership::random_history::proptest_seed;
    use crate::membership::{resolve, MembershipLog, Op, Roster, SignedGenesis};
    use crate::OpId;

    /// A full resolution of `heads` and their ancestors (`None`: not all held).
    fn resolved(log: &MembershipLog, genesis: &SignedGenesis, heads: &[OpId]) -> Option<Roster> {
        let mut seen = BTreeSet::new();
        let mut stack = heads.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(log.get(&id)?.parents().iter().copied());
            }
        }
        let ops: Vec<&Op> = seen.iter().filter_map(|id| log.get(id)).collect();
        Some(resolve(genesis, &ops))
    }

    fn facts(at: &impl MembersAt) -> (Vec<(crate::MemberId, [u8; 32])>, Vec<crate::MemberId>) {
        let members = at
            .member_ids()
            .map(|id| (id, at.agreement(&id).unwrap()))
            .collect();
        (members, at.removed_ids().collect())
    }

    proptest! {
        #![proptest_config(proptest_seed::config(96))]

        #[test]
        fn membership_at_is_the_resolved_membership(
            seed in any::<u64>(),
            len in 1usize..32,
            shuffle in any::<bool>(),
            look in 1u32..=4,
        ) {
            let (genesis, ops) = history(seed, len);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6174_6865);
            let mut order = ops.clone();
            if shuffle {
                order.shuffle(&mut rng);
            } else {
                for _ in 0..len / 4 {
                    let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
                    order.swap(a, b);
                }
            }
            let mut log = MembershipLog::new(genesis.clone());
            let mut states: Vec<Vec<OpId>> = Vec::new();
            for op in order {
                let _ = log.insert(op);
                if rng.gen_ratio(look, 4) {
                    states.push(log.roster().heads().to_vec());
                }
            }
            let all: Vec<OpId> = ops.iter().map(Op::id).collect();
            let mut named: Vec<Vec<OpId>> = Vec::new();
            for heads in &states {
                // The state's heads as named: in any order, with repeats.
                let mut as_named = heads.clone();
                as_named.shuffle(&mut rng);
                if let Some(first) = heads.first() {
                    as_named.push(*first);
                }
                named.push(as_named);
            }
            for _ in 0..8 {
                let take = rng.gen_range(0..=3.min(all.len()));
                named.push(all.choose_multiple(&mut rng, take).copied().collect());
            }
            for heads in states.iter().chain(&named) {
                let kept = log.membership_at(heads);
                let full = resolved(&log, &genesis, heads);
                if states.iter().any(|s| {
                    let mut key = heads.clone();
                    key.sort();
                    key.dedup();
                    *s == key
                }) {
                    // Every state the roster was resolved at is kept (far fewer than the bounds).
                    prop_assert!(kept.is_some(), "state {:?} not kept", heads);
                }
                if let Some(kept) = kept {
                    let full = full.expect("a kept state is held");
                    prop_assert_eq!(&*kept, &Membership::of(&full), "heads {:?}", heads);
                    prop_assert_eq!(facts(&*kept), facts(&full));
                }
            }
        }

        /// A state a delivery named that the roster was never at, kept once resolved
        /// (`keep_membership_at`), is the resolved membership there however many ops joined
        /// since (each moving the kept states on), until dropped: named at random points of a
        /// random history taken in in a random order, by random heads among the ops held.
        #[test]
        fn a_named_state_kept_is_the_resolved_membership(
            seed in any::<u64>(),
            len in 2usize..32,
            look in 1u32..=4,
        ) {
            let (genesis, ops) = history(seed, len);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6e61_6d65);
            let mut order = ops.clone();
            order.shuffle(&mut rng);
            let mut log = MembershipLog::new(genesis.clone());
            let mut named: Vec<(Vec<OpId>, Membership)> = Vec::new();
            let mut kept_later = 0;
            for op in order {
                let _ = log.insert(op);
                if rng.gen_ratio(look, 4) {
                    let _ = log.roster();
                }
                if rng.gen_ratio(1, 2) {
                    let held: Vec<OpId> = ops
                        .iter()
                        .map(Op::id)
                        .filter(|id| log.contains(id))
                        .collect();
                    let take = rng.gen_range(1..=3.min(held.len().max(1)));
                    let mut heads: Vec<OpId> = held.choose_multiple(&mut rng, take).copied().collect();
                    if heads.is_empty() {
                        continue;
                    }
                    if let Some(roster) = log.roster_at(&heads) {
                        let membership = Membership::of(&roster);
                        log.keep_membership_at(&heads);
                        heads.shuffle(&mut rng);
                        named.push((heads, membership));
                    }
                }
                for (heads, membership) in &named {
                    if let Some(kept) = log.membership_at(heads) {
                        kept_later += 1;
                        prop_assert_eq!(&*kept, membership, "heads {:?}", heads);
                        let full = resolved(&log, &genesis, heads).expect("held");
                        prop_assert_eq!(facts(&*kept), facts(&full));
                    }
                }
            }
            // Far fewer states than the bounds: every one named is still kept.
            for (heads, membership) in &named {
                let kept = log.membership_at(heads);
                prop_assert!(kept.is_some(), "named state {:?} not kept", heads);
                prop_assert_eq!(&*kept.unwrap(), membership);
            }
            prop_assert!(named.is_empty() || kept_later >= named.len());
        }
    }
}
