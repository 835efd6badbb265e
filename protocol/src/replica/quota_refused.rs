//! Membership ops this replica refused because their author's day was full here (the op quota,
//! [`OpRefusal::OverQuota`](crate::membership::OpRefusal::OverQuota)), remembered so items naming
//! them among their heads are judged as if those heads were absent (SECURITY.md, H1's residual:
//! a member over the quota can make two replicas keep different ops of hers for good, and every
//! alert and key delivery written on the other side names one this side refused).
//!
//! Why that is safe: an item's author chooses its heads, and reading some of them as absent only
//! gives her what naming fewer heads herself gives her; the rules that read heads are checked
//! against that in `State::effective_heads`. So an id in this set, even one of bytes nobody
//! signed (the quota is checked before the signature), makes no item pass that would not pass
//! with the heads its author could have named.
//!
//! Bounded: the most recent [`MAX_QUOTA_REFUSED`] ids, the oldest forgotten first. A flood of
//! refused ops pushes out older ids, and an item naming a forgotten one waits for it as it did
//! before this set existed (held up to the held-item caps): no worse than without it.

use std::collections::{HashSet, VecDeque};

use crate::OpId;

/// Most op ids remembered as refused over the quota.
pub const MAX_QUOTA_REFUSED: usize = 4096;

/// The most recent op ids refused over the quota, oldest first.
#[derive(Debug, Default)]
pub(super) struct QuotaRefused {
    ids: HashSet<OpId>,
    order: VecDeque<OpId>,
}

impl QuotaRefused {
    /// Remember `id` (already remembered: nothing changes). Returns whether it is new.
    pub(super) fn insert(&mut self, id: OpId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > MAX_QUOTA_REFUSED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    /// Whether `id` is remembered.
    pub(super) fn contains(&self, id: &OpId) -> bool {
        self.ids.contains(id)
    }

    /// How many ids are remembered.
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set keeps the most recent ids and never more than its bound.
    #[test]
    fn the_set_keeps_the_most_recent_ids() {
        let mut set = QuotaRefused::default();
        let id = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            OpId(b)
        };
        for i in 0..(MAX_QUOTA_REFUSED as u32 * 3) {
            assert!(set.insert(id(i)));
            assert!(!set.insert(id(i)));
            assert!(set.len() <= MAX_QUOTA_REFUSED);
            assert_eq!(set.order.len(), set.ids.len());
        }
        let last = MAX_QUOTA_REFUSED as u32 * 3 - 1;
        assert!(set.contains(&id(last)));
        assert!(set.contains(&id(last + 1 - MAX_QUOTA_REFUSED as u32)));
        assert!(!set.contains(&id(last - MAX_QUOTA_REFUSED as u32)));
        assert!(!set.contains(&id(0)));
    }
}
