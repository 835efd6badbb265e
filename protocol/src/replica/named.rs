//! The roster at the membership state an item names, without copying the current roster.

use std::sync::Arc;

use crate::membership::{state_key, MembersAt, Membership, MembershipLog, Roster, SharedStates};
use crate::{MemberId, OpId};

/// The roster at an item's named heads: the log's own current roster when the heads are its
/// current heads (most items name them once membership has settled), else the log's roster at
/// those heads ([`MembershipLog::roster_at`]). The same roster either way: `roster_at` of the
/// current heads is a copy of the current roster, which this spares (a roster of a large
/// collective is costly to copy and to keep in the log's cache).
pub(super) enum Named {
    /// The heads are the log's current heads.
    Current,
    /// The roster at other heads.
    At(Arc<Roster>),
}

impl Named {
    /// The roster at `heads` (`None`: some of those ops are not held yet).
    pub(super) fn of(log: &mut MembershipLog, heads: &[OpId]) -> Option<Self> {
        if is_current(log.roster().heads(), heads) {
            return Some(Self::Current);
        }
        log.roster_at(heads).map(Self::At)
    }

    /// The roster itself, read from `log` when it is the current one.
    pub(super) fn roster<'a>(&'a self, log: &'a MembershipLog) -> &'a Roster {
        match self {
            Self::Current => log.roster(),
            Self::At(roster) => roster,
        }
    }
}

/// What a key delivery reads at its named heads: the current roster, the members and removals
/// the log kept of a state its roster was resolved at ([`MembershipLog::membership_at`]), or
/// else the roster at those heads ([`MembershipLog::roster_at`], a full resolution unless
/// cached). The same answers whichever it is (`the_delivery_view_is_roster_at`).
pub(super) enum NamedMembers {
    /// The current roster or a roster at other heads.
    Roster(Named),
    /// What the log kept of that state.
    Kept(Arc<Membership>),
}

impl NamedMembers {
    /// The membership at `heads` (`None`: some of those ops are not held yet). With `shared`
    /// (a simulation's replicas), a state another replica resolved is not resolved again, once
    /// this log holds its ops and reads none through a refused op ([`SharedStates`]).
    pub(super) fn of(
        log: &mut MembershipLog,
        heads: &[OpId],
        shared: Option<&SharedStates>,
    ) -> Option<Self> {
        if is_current(log.roster().heads(), heads) {
            return Some(Self::Roster(Named::Current));
        }
        // A roster at hand first: nothing to rebuild (Review 17's R17-3).
        if let Some(roster) = log.cached_roster_at(heads) {
            return Some(Self::Roster(Named::At(roster)));
        }
        if let Some(kept) = log.membership_at(heads) {
            return Some(Self::Kept(kept));
        }
        // Shared only between replicas that read every op as it names its parents: a roster at
        // given heads is then fixed by those heads; one read through an op refused over the
        // quota depends on the replica's refusals too.
        let Some(shared) = shared.filter(|_| !log.reads_any()) else {
            let roster = log.roster_at(heads)?;
            log.keep_membership_at(heads);
            return Some(Self::Roster(Named::At(roster)));
        };
        if !heads.iter().all(|h| log.contains(h)) {
            return None;
        }
        let key = state_key(heads);
        let collective = log.collective();
        if let Some(kept) = shared.get(collective, &key) {
            return Some(Self::Kept(kept));
        }
        let roster = log.roster_at(heads)?;
        shared.put(collective, key, Arc::new(Membership::of(&roster)));
        Some(Self::Roster(Named::At(roster)))
    }

    /// The view, read from `log` when it is the current roster.
    pub(super) fn view<'a>(&'a self, log: &'a MembershipLog) -> MembersView<'a> {
        match self {
            Self::Roster(named) => MembersView::Roster(named.roster(log)),
            Self::Kept(kept) => MembersView::Kept(kept),
        }
    }
}

/// A roster or a kept membership, read alike.
pub(super) enum MembersView<'a> {
    Roster(&'a Roster),
    Kept(&'a Membership),
}

impl MembersAt for MembersView<'_> {
    fn is_member(&self, id: &MemberId) -> bool {
        match self {
            Self::Roster(r) => MembersAt::is_member(*r, id),
            Self::Kept(m) => m.is_member(id),
        }
    }
    fn agreement(&self, id: &MemberId) -> Option<[u8; 32]> {
        match self {
            Self::Roster(r) => r.agreement(id),
            Self::Kept(m) => m.agreement(id),
        }
    }
    fn member_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        let ids: Box<dyn Iterator<Item = MemberId> + '_> = match self {
            Self::Roster(r) => Box::new(r.member_ids()),
            Self::Kept(m) => Box::new(m.member_ids()),
        };
        ids
    }
    fn removed_ids(&self) -> impl Iterator<Item = MemberId> + '_ {
        let ids: Box<dyn Iterator<Item = MemberId> + '_> = match self {
            Self::Roster(r) => Box::new(r.removed_ids()),
            Self::Kept(m) => Box::new(m.removed_ids()),
        };
        ids
    }
}

/// Whether `heads`, as a set, are `current` (sorted, without repeats, as a roster's heads are):
/// the key `roster_at` compares.
fn is_current(current: &[OpId], heads: &[OpId]) -> bool {
    if heads.len() < current.len() {
        return false;
    }
    state_key(heads) == current
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! `Named::of` gives the roster `roster_at` gives, for random histories and any named heads:
    //! the current heads in any order, with repeats, subsets and supersets of them, other ops,
    //! and ids the log lacks.
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::{Named, NamedMembers};
    use crate::membership::random_history::history;
    use crate::membership::random_history::proptest_seed;
    use crate::membership::{MembersAt, MembershipLog, Op, SharedStates};
    use crate::{MemberId, OpId};

    proptest! {
        #![proptest_config(proptest_seed::config(64))]

        #[test]
        fn the_named_roster_is_roster_at(seed in any::<u64>(), len in 1usize..24, held in 0usize..24) {
            let (genesis, ops) = history(seed, len);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6e61_6d65);
            let mut log = MembershipLog::new(genesis);
            // A prefix of the history is held (some ops may wait as orphans).
            for op in ops.iter().take(held.min(ops.len())) {
                let _ = log.insert(op.clone());
            }
            let current = log.roster().heads().to_vec();
            let all: Vec<OpId> = ops.iter().map(Op::id).collect();
            let mut candidates: Vec<Vec<OpId>> = vec![current.clone(), Vec::new()];
            let mut shuffled = current.clone();
            shuffled.shuffle(&mut rng);
            candidates.push(shuffled.clone());
            if let Some(first) = current.first() {
                let mut repeated = shuffled.clone();
                repeated.push(*first);
                candidates.push(repeated);
                candidates.push(current[1..].to_vec());
            }
            for _ in 0..6 {
                let take = rng.gen_range(0..=3.min(all.len()));
                let mut heads: Vec<OpId> = all.choose_multiple(&mut rng, take).copied().collect();
                if rng.gen_bool(0.5) {
                    heads.extend(current.iter().copied());
                }
                candidates.push(heads);
            }
            for heads in candidates {
                let named = Named::of(&mut log, &heads).map(|n| n.roster(&log).clone());
                let at = log.roster_at(&heads).map(|r| (*r).clone());
                prop_assert_eq!(named, at, "heads {:?}", heads);
            }
        }

        /// What a key delivery reads at its heads ([`NamedMembers`]: the current roster, a kept
        /// state, a state another replica resolved, or a full resolution) is what `roster_at`
        /// gives, for every state the roster was resolved at and random heads; and a kept
        /// state is used for the former (so the kept path is the one checked).
        #[test]
        fn what_a_delivery_reads_is_roster_at(seed in any::<u64>(), len in 1usize..24, look in 1u32..=4) {
            let (genesis, ops) = history(seed, len);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6465_6c69);
            let mut log = MembershipLog::new(genesis.clone());
            // Two logs that never resolve a past state: the first resolves each state asked and
            // shares it, the second reuses it.
            let mut other = MembershipLog::new(genesis.clone());
            let mut third = MembershipLog::new(genesis.clone());
            // The answers expected, from a log of its own (so that the first log's
            // `roster_at` cache holds only what its own deliveries put there).
            let mut reference = MembershipLog::new(genesis);
            let shared = SharedStates::default();
            let mut states = Vec::new();
            for op in &ops {
                let _ = log.insert(op.clone());
                let _ = other.insert(op.clone());
                let _ = third.insert(op.clone());
                let _ = reference.insert(op.clone());
                if rng.gen_ratio(look, 4) {
                    states.push(log.roster().heads().to_vec());
                }
            }
            let all: Vec<OpId> = ops.iter().map(Op::id).collect();
            let mut candidates = states.clone();
            for _ in 0..6 {
                let take = rng.gen_range(0..=3.min(all.len()));
                candidates.push(all.choose_multiple(&mut rng, take).copied().collect());
            }
            for heads in &candidates {
                let at = reference.roster_at(heads).map(|r| facts(&*r));
                for (with, log) in [(None, &mut log), (Some(&shared), &mut other), (Some(&shared), &mut third)] {
                    let named = NamedMembers::of(log, heads, with);
                    if with.is_none() && states.contains(heads) && *heads != log.roster().heads() {
                        prop_assert!(matches!(named, Some(NamedMembers::Kept(_))));
                    }
                    let read = named.map(|n| facts(&n.view(log)));
                    prop_assert_eq!(&read, &at, "heads {:?}", heads);
                }
            }
            // The third log reused every state the second resolved.
            let (resolved, reused) = shared.counts();
            prop_assert!(reused >= resolved);
        }
    }

    fn facts(at: &impl MembersAt) -> (Vec<(MemberId, [u8; 32])>, Vec<MemberId>) {
        let members = at
            .member_ids()
            .map(|id| (id, at.agreement(&id).unwrap()))
            .collect();
        (members, at.removed_ids().collect())
    }
}
