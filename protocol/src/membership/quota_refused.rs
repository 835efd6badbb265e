//! Membership ops this replica refused because their author's day was full here (the op quota,
//! [`OpRefusal::OverQuota`](crate::membership::OpRefusal::OverQuota)), remembered with the
//! parents each names, so an item naming one among its heads is judged as if it named that op's
//! parents instead (SECURITY.md, H1's residual: a member over the quota can make two replicas
//! keep different ops of hers for good, and alerts and key deliveries written on one side name
//! an op the other side refused). The parents are read from the op's bytes, which its id fixes;
//! naming them keeps the history the author saw below it (an alert written just after a run of
//! the member's ops names only the last of them).
//!
//! Why that is safe: an item's author chooses its heads, so the heads read are ones she could
//! have named herself, and the rules that read heads are checked against that in
//! `State::effective_heads`. So an id in this set, even one of bytes nobody signed (the quota is
//! checked before the signature), makes no item pass that would not pass with heads its author
//! could have named.
//!
//! Ops are read the same way, but only through refused ops whose signature was checked (the
//! log's stubs, `MembershipLog::add_stub`): this set alone never lets an op join.
//!
//! Bounded: the most recent [`MAX_QUOTA_REFUSED`] ids, and [`MAX_QUOTA_REFUSED_PARENTS`] parent
//! ids in all, the oldest forgotten first. A flood of refused ops pushes out older ids, and an
//! item naming a forgotten one waits for it as it did before this set existed (held up to the
//! held-item caps): no worse than without it.

use std::collections::{HashMap, VecDeque};

use crate::{MemberId, OpId};

/// Most op ids remembered as refused over the quota.
pub const MAX_QUOTA_REFUSED: usize = 4096;
/// Most parent ids remembered for them in all (an op names at most 32): 512 KiB of ids.
pub const MAX_QUOTA_REFUSED_PARENTS: usize = 4 * MAX_QUOTA_REFUSED;

/// The most recent op ids refused over the quota, with the parents each names, oldest first.
#[derive(Debug, Default, Clone)]
pub(crate) struct QuotaRefused {
    ids: HashMap<OpId, (Vec<OpId>, Option<MemberId>)>,
    order: VecDeque<OpId>,
    parents: usize,
    /// The keys the remembered ops propose to admit, with how many name each
    /// (`MembershipLog::may_be_admitted`).
    admits: Counted<MemberId>,
}

/// Keys with how many times each was added and not yet removed (a multiset): a key is in it
/// while its count is above zero.
#[derive(Debug, Clone)]
pub(crate) struct Counted<K>(HashMap<K, usize>);

impl<K> Default for Counted<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> Counted<K> {
    pub(crate) fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    /// Take one count of `key` away (none held: nothing changes).
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(key);
            }
        }
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl QuotaRefused {
    /// Remember `id`, naming `parents` and proposing to admit `admits` (already remembered:
    /// nothing changes), forgetting the oldest while over either bound. Returns whether it is
    /// new.
    pub(crate) fn insert(&mut self, id: OpId, parents: &[OpId], admits: Option<MemberId>) -> bool {
        if self.ids.contains_key(&id) {
            return false;
        }
        self.parents += parents.len();
        self.ids.insert(id, (parents.to_vec(), admits));
        if let Some(key) = admits {
            self.admits.add(key);
        }
        self.order.push_back(id);
        while self.order.len() > MAX_QUOTA_REFUSED || self.parents > MAX_QUOTA_REFUSED_PARENTS {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((gone, admits)) = self.ids.remove(&old) {
                self.parents -= gone.len();
                if let Some(key) = admits {
                    self.admits.remove(&key);
                }
            }
        }
        true
    }

    /// The parents `id` names, if it is remembered.
    pub(crate) fn parents(&self, id: &OpId) -> Option<&[OpId]> {
        self.ids.get(id).map(|(parents, _)| parents.as_slice())
    }

    /// Whether a remembered op proposes to admit `key`.
    pub(crate) fn admits(&self, key: &MemberId) -> bool {
        self.admits.contains(key)
    }

    /// How many ids are remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set keeps the most recent ids, never more than its bounds on ids and parents.
    #[test]
    fn the_set_keeps_the_most_recent_ids() {
        let mut set = QuotaRefused::default();
        let id = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            OpId(b)
        };
        for i in 0..(MAX_QUOTA_REFUSED as u32 * 3) {
            let parents: Vec<OpId> = (0..(i % 33)).map(|p| id(p + 1_000_000)).collect();
            assert!(set.insert(id(i), &parents, None));
            assert!(!set.insert(id(i), &[], None));
            assert!(set.len() <= MAX_QUOTA_REFUSED);
            assert!(set.parents <= MAX_QUOTA_REFUSED_PARENTS);
            assert_eq!(set.order.len(), set.ids.len());
            let counted: usize = set.ids.values().map(|(p, _)| p.len()).sum();
            assert_eq!(counted, set.parents);
        }
        assert!(set.parents(&id(MAX_QUOTA_REFUSED as u32 * 3 - 1)).is_some());
        assert!(set.parents(&id(0)).is_none());
        // Ops naming no parents: the count bound is the one reached.
        for i in 0..(MAX_QUOTA_REFUSED as u32 * 2) {
            set.insert(id(10_000_000 + i), &[], None);
        }
        assert_eq!(set.len(), MAX_QUOTA_REFUSED);
        let last = 10_000_000 + MAX_QUOTA_REFUSED as u32 * 2 - 1;
        assert!(set.parents(&id(last)).is_some());
        assert!(set
            .parents(&id(last + 1 - MAX_QUOTA_REFUSED as u32))
            .is_some());
        assert!(set.parents(&id(last - MAX_QUOTA_REFUSED as u32)).is_none());
    }

    /// The keys remembered ops propose to admit are known while one such op is remembered,
    /// and forgotten with the last of them.
    #[test]
    fn admitted_keys_are_forgotten_with_their_ops() {
        let mut set = QuotaRefused::default();
        let id = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            OpId(b)
        };
        let key = MemberId([7; 32]);
        assert!(set.insert(id(0), &[], Some(key)));
        assert!(set.insert(id(1), &[], Some(key)));
        assert!(!set.insert(id(1), &[], Some(key)));
        assert!(set.admits(&key) && !set.admits(&MemberId([8; 32])));
        for i in 2..=(MAX_QUOTA_REFUSED as u32) {
            set.insert(id(i), &[], None);
        }
        assert!(set.parents(&id(0)).is_none() && set.admits(&key));
        set.insert(id(MAX_QUOTA_REFUSED as u32 + 1), &[], None);
        assert!(set.parents(&id(1)).is_none());
        assert!(!set.admits(&key));
        assert!(set.admits.is_empty());
    }
}
