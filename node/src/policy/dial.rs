//! Back-off between attempts at one dial target: the wait doubles after every attempt up to a
//! cap, starts over once a connection is made, and is shortened by a random fraction (jitter)
//! so that nodes that lost a peer at the same moment do not all redial it in step.
//!
//! Which addresses may be dialled at all (their source, the network they were learnt on) is
//! [`crate::dial`]'s business; this is only the timing.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// First wait before redialling a target.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between attempts at one target.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Each wait is shortened by up to this fraction, drawn at random.
pub(crate) const JITTER: f64 = 0.2;
/// A target neither connected nor learnt again for this long is forgotten (see
/// [`Backoff::is_stale`]).
pub(crate) const STALE_TARGET: Duration = Duration::from_secs(24 * 3600);

/// The back-off state of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// When the next attempt may be made.
    next: Instant,
    /// The wait after the next attempt, before jitter.
    delay: Duration,
    /// When the target was last connected or learnt.
    seen: Instant,
}

impl Backoff {
    /// A new target: due at once.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            next: now,
            delay: INITIAL_BACKOFF,
            seen: now,
        }
    }

    /// Whether an attempt may be made at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next <= now
    }

    /// When the next attempt may be made.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// An attempt is made at `now`: the next waits the current delay less a random
    /// fraction of up to [`JITTER`], and the delay doubles up to [`MAX_BACKOFF`].
    pub(crate) fn attempted(&mut self, now: Instant, jitter: &mut Jitter) {
        self.next = now + jitter.shorten(self.delay);
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
    }

    /// A connection was made at `now`: start over, first attempt after [`INITIAL_BACKOFF`].
    pub(crate) fn connected(&mut self, now: Instant) {
        self.delay = INITIAL_BACKOFF;
        self.next = now + INITIAL_BACKOFF;
        self.seen = now;
    }

    /// The target was learnt again (the user gave it again, say): due at once.
    pub(crate) fn renewed(&mut self, now: Instant) {
        self.next = now;
        self.seen = now;
    }

    /// Whether the target has been neither connected nor learnt for [`STALE_TARGET`].
    pub(crate) fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.seen) >= STALE_TARGET
    }
}

/// The random fractions the waits are shortened by: from the OS in the node, from a fixed
/// seed in tests (the same seed gives the same waits).
pub(crate) struct Jitter(StdRng);

impl Jitter {
    /// Jitter drawn from `seed`.
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    /// `delay` shortened by a random fraction in `[0, JITTER]`.
    pub(crate) fn shorten(&mut self, delay: Duration) -> Duration {
        delay.mul_f64(1.0 - self.0.gen_range(0.0..=JITTER))
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::seeded(super::os_seed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let t = Instant::now();
        let mut jitter = Jitter::seeded(7);
        let mut b = Backoff::new(t);
        assert!(b.is_due(t));
        let mut now = t;
        let mut expected = INITIAL_BACKOFF;
        for _ in 0..20 {
            b.attempted(now, &mut jitter);
            let wait = b.next() - now;
            assert!(wait <= expected, "{wait:?} > {expected:?}");
            assert!(wait >= expected.mul_f64(1.0 - JITTER), "{wait:?} too short");
            assert!(!b.is_due(now));
            now = b.next();
            assert!(b.is_due(now));
            expected = (expected * 2).min(MAX_BACKOFF);
        }
        // The cap was reached and held.
        assert_eq!(expected, MAX_BACKOFF);
        b.attempted(now, &mut jitter);
        assert!(b.next() - now <= MAX_BACKOFF);
    }

    #[test]
    fn a_connection_starts_the_backoff_over() {
        let t = Instant::now();
        let mut jitter = Jitter::seeded(1);
        let mut b = Backoff::new(t);
        for i in 0..10 {
            b.attempted(t + MAX_BACKOFF * i, &mut jitter);
        }
        let later = t + MAX_BACKOFF * 20;
        b.connected(later);
        assert_eq!(b.next(), later + INITIAL_BACKOFF);
        b.attempted(b.next(), &mut jitter);
        assert!(b.next() - (later + INITIAL_BACKOFF) <= INITIAL_BACKOFF);
    }

    #[test]
    fn jitter_is_deterministic_under_a_seed_and_differs_between_seeds() {
        let draw = |seed| {
            let mut j = Jitter::seeded(seed);
            (0..16)
                .map(|_| j.shorten(Duration::from_secs(100)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        // Not all the same wait: it does spread the redials.
        let waits = draw(42);
        assert!(waits.iter().any(|w| *w != waits[0]));
    }

    #[test]
    fn a_target_goes_stale_unless_connected_or_learnt_again() {
        let t = Instant::now();
        let mut b = Backoff::new(t);
        assert!(!b.is_stale(t + STALE_TARGET - Duration::from_secs(1)));
        assert!(b.is_stale(t + STALE_TARGET));
        b.connected(t + STALE_TARGET / 2);
        assert!(!b.is_stale(t + STALE_TARGET));
        b.renewed(t + STALE_TARGET);
        assert!(!b.is_stale(t + STALE_TARGET + STALE_TARGET / 2));
    }
}
