//! When to sync with whom. Sessions run one at a time (a node reconnecting to several members
//! would otherwise fetch everything twice); more are queued. Every `interval` the node syncs
//! with one connected member drawn at random, skipping members that synced with it within the
//! interval (its session would fetch the same items), unless posts of its own are still
//! unconfirmed: only a session it runs proves that a member holds them (it pushes what the
//! peer lacks), and a founder whom everyone syncs with would otherwise never run one.
//!
//! The interval doubles after each session that found the two members in sync, up to
//! [`MAX_QUIET_DOUBLINGS`] times (30 s → 4 min by default), and is back to the base interval
//! as soon as a session or gossip brings anything new: a quiet collective's phones sync a
//! few times an hour rather than 120 (each in-sync session costs about 7 kB over TCP,
//! docs/BENCHMARKS.md "Idle traffic"), and a busy one repairs a missed alert as fast as before.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::SeedableRng;

/// What to do with a request to sync with a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Start a session now (then call [`SyncSchedule::started`]).
    Now,
    /// Queued behind the session running; it starts when that one ends.
    Queued,
    /// A session with that peer is running or queued already.
    Already,
}

/// Most times the periodic interval doubles while sessions find nothing new.
pub(crate) const MAX_QUIET_DOUBLINGS: u32 = 3;

/// The sync schedule.
pub(crate) struct SyncSchedule<P> {
    interval: Duration,
    /// Sessions in a row that found nothing new on either side (since the last new item).
    quiet: u32,
    /// When the last periodic sync was due.
    last_periodic: Instant,
    /// When each connected peer last sent a sync request (forgotten after an interval).
    inbound: HashMap<P, Instant>,
    /// Peers with a session running (at most one at a time in practice).
    running: HashSet<P>,
    /// Peers to sync with once the running session ends.
    waiting: VecDeque<P>,
    rng: StdRng,
}

impl<P: Copy + Eq + Hash> SyncSchedule<P> {
    /// A schedule that syncs every `interval`, the first one an interval after `now`; random
    /// choices drawn from `seed`.
    pub(crate) fn new(interval: Duration, now: Instant, seed: u64) -> Self {
        Self {
            interval,
            quiet: 0,
            last_periodic: now,
            inbound: HashMap::new(),
            running: HashSet::new(),
            waiting: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `peer` sent a sync request at `now`.
    pub(crate) fn inbound(&mut self, peer: P, now: Instant) {
        self.inbound.insert(peer, now);
    }

    /// The caller wants a session with `peer`.
    pub(crate) fn request(&mut self, peer: P) -> Start {
        if self.running.contains(&peer) {
            return Start::Already;
        }
        if self.running.is_empty() {
            return Start::Now;
        }
        if self.waiting.contains(&peer) {
            return Start::Already;
        }
        self.waiting.push_back(peer);
        Start::Queued
    }

    /// A session with `peer` started.
    pub(crate) fn started(&mut self, peer: P) {
        self.running.insert(peer);
    }

    /// The session with `peer` ended (done, failed, or the peer left): the queued peer to
    /// start next, the first one `is_connected` still.
    pub(crate) fn ended(&mut self, peer: &P, is_connected: impl Fn(&P) -> bool) -> Option<P> {
        self.running.remove(peer);
        while let Some(next) = self.waiting.pop_front() {
            if is_connected(&next) {
                return Some(next);
            }
        }
        None
    }

    /// `peer` disconnected: forget it everywhere; the queued peer to start next, if its
    /// session was the one running.
    pub(crate) fn disconnected(
        &mut self,
        peer: &P,
        is_connected: impl Fn(&P) -> bool,
    ) -> Option<P> {
        self.inbound.remove(peer);
        self.waiting.retain(|p| p != peer);
        self.ended(peer, is_connected)
    }

    /// A session ended with the sets found equal (`changed` false: nothing fetched, pushed or
    /// asked for) or not; or, with `changed` true, something new came in another way (gossip).
    pub(crate) fn outcome(&mut self, changed: bool) {
        self.quiet = if changed {
            0
        } else {
            self.quiet.saturating_add(1)
        };
    }

    /// The periodic interval now: the base one doubled once per quiet session, at most
    /// [`MAX_QUIET_DOUBLINGS`] times.
    pub(crate) fn current_interval(&self) -> Duration {
        self.interval * (1 << self.quiet.min(MAX_QUIET_DOUBLINGS))
    }

    #[cfg(test)]
    /// When the next periodic sync is due (posts of this member awaiting confirmation bring it
    /// back to the base interval: see [`SyncSchedule::handle_timeout`]).
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.last_periodic + self.current_interval()
    }

    /// If a periodic sync is due at `now`: the peer to sync with among `connected`, if any.
    /// `unconfirmed`: posts of this member still await a session it runs.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        connected: &[P],
        unconfirmed: bool,
    ) -> Option<P> {
        let interval = if unconfirmed {
            self.interval
        } else {
            self.current_interval()
        };
        if now < self.last_periodic + interval {
            return None;
        }
        self.last_periodic = now;
        let quiet_since = now.checked_sub(self.interval);
        self.inbound
            .retain(|_, at| quiet_since.is_some_and(|q| *at > q));
        connected
            .iter()
            .filter(|p| !self.running.contains(p) && (unconfirmed || !self.inbound.contains_key(p)))
            .choose(&mut self.rng)
            .copied()
    }

    /// Forget everything (a new transport identity: every connection starts over).
    pub(crate) fn clear(&mut self) {
        self.inbound.clear();
        self.running.clear();
        self.waiting.clear();
    }

    #[cfg(test)]
    /// How many peers the schedule remembers in all.
    pub(crate) fn len(&self) -> usize {
        self.inbound.len() + self.running.len() + self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(30);

    #[test]
    fn one_session_at_a_time_then_the_queue_in_order() {
        let t = Instant::now();
        let mut s = SyncSchedule::new(INTERVAL, t, 1);
        assert_eq!(s.request(1u8), Start::Now);
        s.started(1);
        assert_eq!(s.request(1), Start::Already);
        assert_eq!(s.request(2), Start::Queued);
        assert_eq!(s.request(3), Start::Queued);
        assert_eq!(s.request(2), Start::Already);
        // Peer 2 left meanwhile: peer 3 is next.
        assert_eq!(s.ended(&1, |p| *p != 2), Some(3));
        assert_eq!(s.request(3), Start::Now);
        s.started(3);
        assert_eq!(s.ended(&3, |_| true), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_periodic_sync_every_interval_skips_peers_that_just_synced_with_us() {
        let t = Instant::now();
        let mut s = SyncSchedule::new(INTERVAL, t, 1);
        let connected = [1u8, 2];
        assert_eq!(s.poll_timeout(), t + INTERVAL);
        assert_eq!(s.handle_timeout(t + INTERVAL / 2, &connected, false), None);
        s.inbound(1, t + INTERVAL / 2);
        // Peer 1 synced with us within the interval: peer 2, whatever the draw.
        assert_eq!(s.handle_timeout(t + INTERVAL, &connected, false), Some(2));
        // Not again before another interval.
        assert_eq!(s.handle_timeout(t + INTERVAL, &connected, false), None);
        assert_eq!(s.poll_timeout(), t + INTERVAL * 2);
        // Both synced with us recently: nobody, unless our own posts await confirmation.
        s.inbound(1, t + INTERVAL * 2);
        s.inbound(2, t + INTERVAL * 2);
        assert_eq!(s.handle_timeout(t + INTERVAL * 2, &connected, false), None);
        assert!(s
            .handle_timeout(t + INTERVAL * 3, &connected, true)
            .is_some());
        // A peer with a session running is never drawn.
        s.started(1);
        for i in 4..20 {
            assert_eq!(
                s.handle_timeout(t + INTERVAL * i, &connected, true),
                Some(2)
            );
        }
    }

    #[test]
    fn the_interval_doubles_while_sessions_find_nothing_and_is_back_at_once_when_one_does() {
        let t = Instant::now();
        let mut s = SyncSchedule::new(INTERVAL, t, 3);
        let connected = [1u8];
        let mut now = t;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let due = s.poll_timeout();
            assert_eq!(
                s.handle_timeout(due - Duration::from_millis(1), &connected, false),
                None
            );
            assert_eq!(s.handle_timeout(due, &connected, false), Some(1));
            waits.push((due - now).as_secs());
            now = due;
            s.outcome(false);
        }
        assert_eq!(waits, [30, 60, 120, 240, 240, 240]);
        // Something new (a session's fetch or push, or gossip): the base interval again.
        s.outcome(true);
        assert_eq!(s.poll_timeout(), now + INTERVAL);
        // Quiet again; posts of our own awaiting confirmation are not left waiting 4 minutes.
        for _ in 0..4 {
            s.outcome(false);
        }
        assert_eq!(s.poll_timeout(), now + INTERVAL * 8);
        assert_eq!(s.handle_timeout(now + INTERVAL, &connected, true), Some(1));
    }

    #[test]
    fn the_draw_is_deterministic_under_a_seed() {
        let draws = |seed| {
            let t = Instant::now();
            let mut s = SyncSchedule::new(INTERVAL, t, seed);
            let connected: Vec<u32> = (0..50).collect();
            (1..40)
                .map(|i| s.handle_timeout(t + INTERVAL * i, &connected, false))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(5), draws(5));
        assert_ne!(draws(5), draws(6));
    }

    #[test]
    fn churn_of_peers_does_not_grow_the_schedule() {
        let t = Instant::now();
        let mut s = SyncSchedule::new(INTERVAL, t, 2);
        let mut now = t;
        for peer in 0u32..10_000 {
            s.inbound(peer, now);
            match s.request(peer) {
                Start::Now => s.started(peer),
                Start::Queued | Start::Already => {}
            }
            s.disconnected(&peer, |_| true);
            // Every third peer's last request is seen after it left: only the periodic pass
            // forgets that one.
            if peer % 3 == 0 {
                s.inbound(peer, now);
            }
            now += Duration::from_millis(100);
            s.handle_timeout(now, &[], false);
            assert!(s.len() < 400, "{}", s.len());
        }
    }
}
