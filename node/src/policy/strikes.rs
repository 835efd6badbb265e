//! Invalid data counted per member (not per transport id: a member can make new ones for
//! nothing). Strikes decay: one is forgiven for every [`STRIKE_DECAY`] without a new one, so
//! an honest member whose node sent something odd once a week is never cut off, and a member
//! whose strikes have all decayed is forgotten. At [`MAX_STRIKES`] every connection of the
//! member is closed and its count starts over. (It may reconnect at once: there is no ban
//! period, see SECURITY.md.)

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Strikes (without decay in between) that disconnect a member.
pub(crate) const MAX_STRIKES: u32 = 5;
/// One strike is forgiven for every this long without a new one.
pub(crate) const STRIKE_DECAY: Duration = Duration::from_secs(600);

/// What a strike led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Counted: the member now has this many strikes.
    Counted(u32),
    /// The member reached [`MAX_STRIKES`]: close every connection of it.
    Disconnect,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    strikes: u32,
    /// When the last strike was counted (decay runs from there).
    last: Instant,
}

impl Record {
    /// Strikes left at `now` after decay.
    fn strikes_at(&self, now: Instant) -> u32 {
        let forgiven = now.saturating_duration_since(self.last).as_secs() / STRIKE_DECAY.as_secs();
        self.strikes
            .saturating_sub(u32::try_from(forgiven).unwrap_or(u32::MAX))
    }
}

/// Strikes by member.
pub(crate) struct Strikes<M> {
    records: HashMap<M, Record>,
}

impl<M: Copy + Eq + Hash> Default for Strikes<M> {
    fn default() -> Self {
        Self {
            records: HashMap::new(),
        }
    }
}

impl<M: Copy + Eq + Hash> Strikes<M> {
    /// Count one strike against `member` at `now`.
    pub(crate) fn strike(&mut self, member: M, now: Instant) -> Verdict {
        let strikes = self
            .records
            .get(&member)
            .map_or(0, |r| r.strikes_at(now))
            .saturating_add(1);
        if strikes >= MAX_STRIKES {
            self.records.remove(&member);
            return Verdict::Disconnect;
        }
        self.records.insert(member, Record { strikes, last: now });
        Verdict::Counted(strikes)
    }

    #[cfg(test)]
    /// The strikes `member` has at `now`.
    pub(crate) fn strikes(&self, member: &M, now: Instant) -> u32 {
        self.records.get(member).map_or(0, |r| r.strikes_at(now))
    }

    #[cfg(test)]
    /// The next instant at which a record can be forgotten.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.records
            .values()
            .map(|r| r.last + STRIKE_DECAY * r.strikes)
            .min()
    }

    /// Forget the members whose strikes have all decayed by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.records.retain(|_, r| r.strikes_at(now) > 0);
    }

    /// Forget everything (a new transport identity: every connection starts over).
    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }

    #[cfg(test)]
    /// How many members the policy remembers.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_strikes_in_a_row_disconnect_then_the_count_starts_over() {
        let t = Instant::now();
        let mut s = Strikes::default();
        for n in 1..MAX_STRIKES {
            assert_eq!(s.strike(1u8, t), Verdict::Counted(n));
        }
        assert_eq!(s.strikes(&1, t), MAX_STRIKES - 1);
        // Others are not touched.
        assert_eq!(s.strike(2, t), Verdict::Counted(1));
        assert_eq!(s.strike(1, t), Verdict::Disconnect);
        assert_eq!(s.strikes(&1, t), 0);
        assert_eq!(s.strike(1, t), Verdict::Counted(1));
        assert_eq!(s.strikes(&2, t), 1);
    }

    #[test]
    fn strikes_decay_one_per_period() {
        let t = Instant::now();
        let mut s = Strikes::default();
        for _ in 0..4 {
            s.strike(9u8, t);
        }
        assert_eq!(s.strikes(&9, t + STRIKE_DECAY - Duration::from_secs(1)), 4);
        assert_eq!(s.strikes(&9, t + STRIKE_DECAY), 3);
        // Two periods later, two are forgiven: the next makes three, not five.
        assert_eq!(s.strike(9, t + STRIKE_DECAY * 2), Verdict::Counted(3));
        // A strike a period apart never adds up to a disconnection.
        let mut now = t + STRIKE_DECAY * 10;
        for _ in 0..100 {
            assert_eq!(s.strike(9, now), Verdict::Counted(1));
            now += STRIKE_DECAY;
        }
        // Faster than the decay, they do.
        let verdicts: Vec<Verdict> = (0..MAX_STRIKES)
            .map(|i| s.strike(9, now + STRIKE_DECAY / 10 * i))
            .collect();
        assert_eq!(verdicts.last(), Some(&Verdict::Disconnect));
    }

    #[test]
    fn decayed_records_are_forgotten_so_churn_stays_bounded() {
        let t = Instant::now();
        let mut s = Strikes::default();
        let mut now = t;
        for member in 0u32..10_000 {
            s.strike(member, now);
            now += STRIKE_DECAY / 100;
            if member % 100 == 0 {
                s.handle_timeout(now);
                // Only members struck within the last decay period remain.
                assert!(s.len() <= 101, "{}", s.len());
            }
        }
        // At the next timeout the oldest record goes.
        let before = s.len();
        s.handle_timeout(s.poll_timeout().unwrap_or(now));
        assert!(s.len() < before);
        s.handle_timeout(now + STRIKE_DECAY);
        assert_eq!(s.len(), 0);
        assert!(s.poll_timeout().is_none());
    }
}
