//! Farewells: a peer just removed (a member, or a mailbox dropped from the roster) stays
//! connected, out of every other use, until it answers the push that tells it so, or until
//! [`FAREWELL`] passes, whichever comes first. A member is told once per connection.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long a just-removed peer stays connected while it is told of its removal.
pub(crate) const FAREWELL: Duration = Duration::from_secs(5);

/// Farewells under way, by peer, with the request that carries each.
pub(crate) struct Farewells<P, R> {
    pending: HashMap<P, (Instant, R)>,
    /// Peers already told (never twice while connected).
    told: HashSet<P>,
}

impl<P: Copy + Eq + Hash, R: Copy + Eq> Default for Farewells<P, R> {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            told: HashSet::new(),
        }
    }
}

impl<P: Copy + Eq + Hash, R: Copy + Eq> Farewells<P, R> {
    /// Whether `peer` is still to be told: true once per connection of it (then the caller
    /// sends the push and calls [`sent`](Self::sent)).
    pub(crate) fn should_tell(&mut self, peer: P) -> bool {
        self.told.insert(peer)
    }

    /// The push telling `peer` went out as `request` at `now`.
    pub(crate) fn sent(&mut self, peer: P, request: R, now: Instant) {
        self.pending.insert(peer, (now + FAREWELL, request));
    }

    /// `request` was answered (or failed): the peer it told, whose farewell is over.
    pub(crate) fn answered(&mut self, request: R) -> Option<P> {
        let peer = self
            .pending
            .iter()
            .find(|(_, (_, r))| *r == request)
            .map(|(p, _)| *p)?;
        self.pending.remove(&peer);
        Some(peer)
    }

    #[cfg(test)]
    /// Whether `peer` is being told.
    pub(crate) fn contains(&self, peer: &P) -> bool {
        self.pending.contains_key(peer)
    }

    /// The peers being told.
    pub(crate) fn peers(&self) -> impl Iterator<Item = P> + '_ {
        self.pending.keys().copied()
    }

    #[cfg(test)]
    /// When the next farewell runs out.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|(deadline, _)| *deadline).min()
    }

    /// The peers whose farewell ran out by `now` (let them go).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<P> {
        let gone: Vec<P> = self
            .pending
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in &gone {
            self.pending.remove(peer);
        }
        gone
    }

    /// `peer` disconnected: forget it (its transport id is never used again by anyone).
    pub(crate) fn disconnected(&mut self, peer: &P) {
        self.pending.remove(peer);
        self.told.remove(peer);
    }

    /// Forget everything (a new transport identity).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.told.clear();
    }

    #[cfg(test)]
    /// How many peers the policy remembers (pending or told).
    pub(crate) fn len(&self) -> usize {
        self.pending.len().max(self.told.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_farewell_ends_on_the_answer_or_after_its_time() {
        let t = Instant::now();
        let mut f = Farewells::default();
        assert!(f.should_tell(1u8));
        assert!(!f.should_tell(1), "told once");
        f.sent(1, 10u32, t);
        assert!(f.should_tell(2));
        f.sent(2, 20, t + Duration::from_secs(1));
        assert_eq!(f.poll_timeout(), Some(t + FAREWELL));
        assert!(f.contains(&1) && f.contains(&2));
        // Peer 2 answers; an unknown answer changes nothing.
        assert_eq!(f.answered(20), Some(2));
        assert_eq!(f.answered(99), None);
        // Peer 1 never answers: let go exactly at its deadline.
        assert!(f
            .handle_timeout(t + FAREWELL - Duration::from_millis(1))
            .is_empty());
        assert_eq!(f.handle_timeout(t + FAREWELL), vec![1]);
        assert!(f.poll_timeout().is_none());
        // Still told: no second farewell while it stays connected.
        assert!(!f.should_tell(1));
        f.disconnected(&1);
        assert!(f.should_tell(1));
    }

    #[test]
    fn churn_of_peers_leaves_nothing_behind() {
        let t = Instant::now();
        let mut f = Farewells::default();
        for peer in 0u32..10_000 {
            assert!(f.should_tell(peer));
            f.sent(peer, peer, t);
            if peer % 2 == 0 {
                f.answered(peer);
            }
            f.disconnected(&peer);
            assert!(f.len() <= 1);
        }
        assert_eq!(f.len(), 0);
    }
}
