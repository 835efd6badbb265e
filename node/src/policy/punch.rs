//! Hole-punch retries: when two members stay connected only through a mailbox's relay, try the
//! hole punch again later.
//!
//! libp2p's DCUtR tries only on a *new* relayed connection (the side that accepted it starts
//! the upgrade), at most 3 dials, and then reports "Giving up after 3 dial attempts" and never
//! tries on that connection again. Under load that happens with port-preserving NATs where a
//! later try would succeed, and the members then stayed relayed for good. The only way to get
//! a new try is a new relayed connection, so a retry is: dial the member again through its
//! relayed address (the member, accepting, starts a new DCUtR round; the old relayed
//! connection closes only after the new one stood, see the event loop).
//!
//! This policy only decides *when*. Both ends run it and both count the rounds they see (every
//! new relayed connection with the member is one round, whoever dialled it):
//!
//! - a round that failed on this side (DCUtR's event: the side that accepted the relayed
//!   connection runs the dials and hears the failure) is retried after [`BACKOFF`] (2 s, 5 s,
//!   15 s, 60 s, then every [`REPEAT`] = 5 min), shortened by up to [`JITTER`];
//! - a round nobody heard fail here (the dialling side hears nothing from DCUtR when the
//!   punch fails) is retried [`ROUND_WINDOW`] after it started plus the same back-off, so
//!   that in the usual case the side that saw the failure retries first, once, and both ends
//!   do not redial each other at once;
//! - a member with a direct connection, or gone, is forgotten (a round is over when the
//!   direct connection stands); at most [`MAX_PEERS`] members are tracked.
//!
//! [`Supersede`] decides what happens to the relayed connections a retry leaves behind: the
//! retry's new relayed connection replaces only the older ones *through the same relay*, and
//! only once it has carried a round trip (a ping answered on it); one that carries nothing
//! within [`PROOF_BOUND`] is closed itself, and the older ones stay.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Waits before the retry after the 1st, 2nd, 3rd, 4th failed round.
pub(crate) const BACKOFF: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
];
/// Wait after every later failed round (symmetric NATs never punch: a retry every 5 minutes
/// costs a circuit set-up and one sync).
pub(crate) const REPEAT: Duration = Duration::from_secs(300);
/// Each wait is shortened by up to this fraction, drawn at random.
pub(crate) const JITTER: f64 = 0.2;
/// How long a round may run without word of its outcome on this side before it counts as
/// failed: DCUtR's three dials, each bounded by the 10 s handshake timeout.
pub(crate) const ROUND_WINDOW: Duration = Duration::from_secs(40);
/// Most members tracked at once (the node's connection cap bounds them already).
pub(crate) const MAX_PEERS: usize = 256;

/// How long a retry's relayed connection stands, at least, before it replaces older ones.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
/// How long a retry's relayed connection has to carry a round trip (libp2p's ping sends its
/// first ping at once and waits 20 s for the answer; after a first ping that fails at once, the
/// next comes one `PING_INTERVAL`, 60 s, later); one that has not by then is closed. A dead
/// retry connection lingers this long (it was 30 s while pings went every 15 s, then 25 s).
pub(crate) const PROOF_BOUND: Duration = Duration::from_secs(70);

/// Where the hole punch with one member stands.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Punch {
    /// Rounds seen (relayed connections with the member that stood), at least 1.
    rounds: u32,
    /// When to redial the member through the relay, unless a direct connection came first.
    next: Instant,
}

/// The hole-punch retries of one node, by transport peer.
pub(crate) struct Punches<P> {
    peers: HashMap<P, Punch>,
    rng: StdRng,
}

impl<P: Copy + Eq + Hash> Punches<P> {
    /// No member tracked; jitter drawn from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            peers: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The wait after `rounds` failed rounds, before jitter.
    pub(crate) fn backoff(rounds: u32) -> Duration {
        let i = rounds.saturating_sub(1) as usize;
        BACKOFF.get(i).copied().unwrap_or(REPEAT)
    }

    fn jittered(&mut self, wait: Duration) -> Duration {
        wait.mul_f64(1.0 - self.rng.gen_range(0.0..=JITTER))
    }

    /// A relayed connection with the member at `peer` stood at `now`: DCUtR tries on it (a
    /// new round). If nobody here hears it fail, it is retried after [`ROUND_WINDOW`] and the
    /// back-off.
    pub(crate) fn round_started(&mut self, peer: P, now: Instant) {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            return;
        }
        let rounds = self.peers.get(&peer).map_or(0, |p| p.rounds);
        let rounds = rounds.saturating_add(1);
        let wait = ROUND_WINDOW + self.jittered(Self::backoff(rounds));
        self.peers.insert(
            peer,
            Punch {
                rounds,
                next: now + wait,
            },
        );
    }

    /// DCUtR reported at `now` that the round with `peer` failed on this side: retry after
    /// the back-off (sooner than the window, never later).
    pub(crate) fn failed(&mut self, peer: P, now: Instant) {
        if !self.peers.contains_key(&peer) {
            // A round this policy did not see start (the connection stood before the member
            // was proven, say): count it now.
            self.round_started(peer, now);
        }
        let Some(rounds) = self.peers.get(&peer).map(|p| p.rounds) else {
            return;
        };
        let at = now + self.jittered(Self::backoff(rounds));
        if let Some(p) = self.peers.get_mut(&peer) {
            p.next = p.next.min(at);
        }
    }

    /// The members to redial through the relay at `now`, given those connected only through
    /// a relay (`relayed_only`); every other member is forgotten. A member returned waits
    /// another [`ROUND_WINDOW`] and back-off before it is returned again, in case the redial
    /// never connects.
    pub(crate) fn handle_timeout(&mut self, now: Instant, relayed_only: &HashSet<P>) -> Vec<P> {
        self.peers.retain(|p, _| relayed_only.contains(p));
        for peer in relayed_only {
            if !self.peers.contains_key(peer) {
                self.round_started(*peer, now);
            }
        }
        let due: Vec<(P, u32)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(peer, p)| (*peer, p.rounds))
            .collect();
        for (peer, rounds) in &due {
            let wait = ROUND_WINDOW + self.jittered(Self::backoff(*rounds));
            if let Some(p) = self.peers.get_mut(peer) {
                p.next = now + wait;
            }
        }
        due.into_iter().map(|(p, _)| p).collect()
    }

    /// A direct connection with `peer` stands (hole punched, or dialled): forget it.
    pub(crate) fn direct(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    #[cfg(test)]
    /// When the next retry is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.peers.values().map(|p| p.next).min()
    }

    #[cfg(test)]
    fn rounds(&self, peer: &P) -> Option<u32> {
        self.peers.get(peer).map(|p| p.rounds)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

/// A retry's relayed connection, until it replaced the older ones or was closed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending<P> {
    /// The member.
    peer: P,
    /// The relay (mailbox) it goes through.
    relay: P,
    /// When it stood.
    since: Instant,
    /// Whether it carried a round trip.
    proven: bool,
}

/// The relayed connections hole-punch retries opened, by connection id `C`, and which
/// connections to close because of them.
///
/// A retry dials up to 4 relayed addresses of the member, through different mailboxes, and
/// keeps whichever connects first; a seized or broken mailbox can accept the circuit and then
/// forward nothing. So the new connection replaces only the older relayed connections with the
/// same member *through the same relay* (a circuit through mailbox M2 never closes one through
/// M1), and only once it has carried a round trip; until then nothing is closed, and if it has
/// not carried one within [`PROOF_BOUND`], the new connection itself is closed.
pub(crate) struct Supersede<P, C> {
    pending: HashMap<C, Pending<P>>,
}

impl<P: Copy + Eq, C: Copy + Eq + Hash + Ord> Supersede<P, C> {
    pub(crate) fn new() -> Self {
        Self {
            pending: HashMap::new(),
        }
    }

    /// A relayed connection this node dialled for a retry stood at `now`, with `peer` through
    /// `relay`. At most [`MAX_PEERS`] are tracked: one over that is never used to close anything
    /// (and the relay's own circuit limits end it).
    pub(crate) fn retry_connected(&mut self, connection: C, peer: P, relay: P, now: Instant) {
        if self.pending.len() >= MAX_PEERS {
            return;
        }
        self.pending.insert(
            connection,
            Pending {
                peer,
                relay,
                since: now,
                proven: false,
            },
        );
    }

    /// A round trip (a ping answered) completed on `connection`.
    pub(crate) fn carried(&mut self, connection: C) {
        if let Some(p) = self.pending.get_mut(&connection) {
            p.proven = true;
        }
    }

    /// `connection` closed.
    pub(crate) fn closed(&mut self, connection: &C) {
        self.pending.remove(connection);
    }

    /// The connections to close at `now`, given every open connection as (id, peer, relay if
    /// relayed). A retry's connection that carried a round trip and stood [`SETTLE`] closes the
    /// older relayed connections with its member through its relay (only older ones: if the
    /// member redialled through the same relay at the same time, whichever of the two is newer
    /// here stays); one that carried none within [`PROOF_BOUND`] is closed itself. Either way
    /// it is forgotten, and so is one no longer open.
    pub(crate) fn handle_timeout(&mut self, now: Instant, open: &[(C, P, Option<P>)]) -> Vec<C> {
        let mut close = Vec::new();
        self.pending.retain(|new, p| {
            if !open.iter().any(|(c, _, _)| c == new) {
                return false;
            }
            let age = now.saturating_duration_since(p.since);
            if p.proven {
                if age < SETTLE {
                    return true;
                }
                close.extend(
                    open.iter()
                        .filter(|(c, peer, relay)| {
                            *peer == p.peer && *relay == Some(p.relay) && c < new
                        })
                        .map(|(c, _, _)| *c),
                );
                false
            } else if age >= PROOF_BOUND {
                close.push(*new);
                false
            } else {
                true
            }
        });
        close.sort();
        close.dedup();
        close
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A retry connection whose first ping failed at once gets a second one before it is
    /// judged: the ping interval (lengthened for phones' data) stays below the bound.
    #[test]
    fn a_second_ping_comes_before_a_retry_connection_is_judged() {
        assert!(crate::net::PING_INTERVAL < PROOF_BOUND);
    }

    /// Connection ids 1, 2, ...; peers and relays are small numbers: member 7, mailboxes
    /// 101 (M1, honest) and 102 (M2, stalls).
    const MEMBER: u32 = 7;
    const M1: u32 = 101;
    const M2: u32 = 102;

    /// U1: a retry that landed on M2 never closes the connection through M1, proven or not.
    #[test]
    fn a_retry_through_another_relay_never_closes_the_working_one() {
        let t = Instant::now();
        let mut s: Supersede<u32, u32> = Supersede::new();
        let open = [(1, MEMBER, Some(M1)), (2, MEMBER, Some(M2))];
        s.retry_connected(2, MEMBER, M2, t);
        s.carried(2);
        assert!(s.handle_timeout(t + SETTLE, &open).is_empty());
        assert_eq!(s.len(), 0);
        // Unproven: at the bound the new one goes, the old one stays.
        s.retry_connected(2, MEMBER, M2, t);
        assert_eq!(s.handle_timeout(t + PROOF_BOUND, &open), vec![2]);
    }

    /// An unproven new connection closes nothing, however long it stands; past the bound it is
    /// closed itself and forgotten.
    #[test]
    fn an_unproven_retry_never_closes_the_old_one_and_is_closed_at_its_bound() {
        let t = Instant::now();
        let mut s: Supersede<u32, u32> = Supersede::new();
        let open = [(1, MEMBER, Some(M1)), (2, MEMBER, Some(M1))];
        s.retry_connected(2, MEMBER, M1, t);
        let mut now = t;
        while now < t + PROOF_BOUND {
            assert!(s.handle_timeout(now, &open).is_empty(), "at {now:?}");
            now += Duration::from_millis(500);
        }
        assert_eq!(s.handle_timeout(t + PROOF_BOUND, &open), vec![2]);
        assert_eq!(s.len(), 0);
        // A round trip that comes after it was given up changes nothing.
        s.carried(2);
        assert!(s.handle_timeout(t + PROOF_BOUND * 2, &open).is_empty());
    }

    /// A proven new connection through the same relay replaces the older ones with that member
    /// through that relay, after the settle time, and nothing else: not other members', not
    /// other relays', not direct ones, not newer ones.
    #[test]
    fn a_proven_retry_closes_only_older_ones_through_its_relay() {
        let t = Instant::now();
        let mut s: Supersede<u32, u32> = Supersede::new();
        let open = [
            (1, MEMBER, Some(M1)),
            (2, MEMBER, Some(M2)),
            (3, MEMBER, None),
            (4, 8, Some(M1)),
            (5, MEMBER, Some(M1)),
            (6, MEMBER, Some(M1)),
        ];
        s.retry_connected(5, MEMBER, M1, t);
        s.carried(5);
        assert!(s.handle_timeout(t, &open).is_empty(), "settle first");
        assert_eq!(s.handle_timeout(t + SETTLE, &open), vec![1]);
        assert_eq!(s.len(), 0);
    }

    /// Two retries crossing through the same relay: each end closes only what is older than
    /// its own, so the two ends never close each other's last one.
    #[test]
    fn crossing_retries_keep_a_connection() {
        let t = Instant::now();
        // On A: its own retry is 2, B's arrived later as 3; B's 3 is newer, so A closes nothing.
        let mut a: Supersede<u32, u32> = Supersede::new();
        let open_a = [
            (1, MEMBER, Some(M1)),
            (2, MEMBER, Some(M1)),
            (3, MEMBER, Some(M1)),
        ];
        a.retry_connected(2, MEMBER, M1, t);
        a.carried(2);
        assert_eq!(a.handle_timeout(t + SETTLE, &open_a), vec![1]);
        assert!(open_a.iter().any(|(c, _, _)| *c == 3));
    }

    /// A connection that closed is forgotten; the tracked set is bounded, and emptied by the
    /// ticks whatever the events.
    #[test]
    fn state_stays_bounded_and_pruned() {
        let t = Instant::now();
        let mut s: Supersede<u32, u32> = Supersede::new();
        for c in 0..(MAX_PEERS as u32 * 2) {
            s.retry_connected(c, c, M1, t);
        }
        assert_eq!(s.len(), MAX_PEERS);
        s.closed(&0);
        assert_eq!(s.len(), MAX_PEERS - 1);
        // Gone from the open set: forgotten at the next tick, nothing closed.
        assert!(s.handle_timeout(t, &[]).is_empty());
        assert_eq!(s.len(), 0);
        // Still open: every one is decided by its bound.
        for c in 0..10u32 {
            s.retry_connected(c, c, M1, t);
        }
        let open: Vec<(u32, u32, Option<u32>)> = (0..10).map(|c| (c, c, Some(M1))).collect();
        assert_eq!(s.handle_timeout(t + PROOF_BOUND, &open).len(), 10);
        assert_eq!(s.len(), 0);
    }

    fn set(peers: &[u32]) -> HashSet<u32> {
        peers.iter().copied().collect()
    }

    /// The side that heard the failure retries after 2 s, 5 s, 15 s, 60 s, then every 5 min
    /// (each shortened by at most the jitter), never before.
    #[test]
    fn failed_rounds_are_retried_after_a_growing_backoff() {
        let t = Instant::now();
        let mut p = Punches::new(7);
        let only = set(&[1]);
        p.round_started(1, t);
        let mut now = t;
        let expected = [2, 5, 15, 60, 300, 300, 300];
        for (i, secs) in expected.iter().enumerate() {
            now += Duration::from_secs(3);
            p.failed(1, now);
            let due = p.poll_timeout().unwrap();
            let wait = due - now;
            let full = Duration::from_secs(*secs);
            assert!(wait <= full, "round {i}: {wait:?} > {full:?}");
            assert!(
                wait >= full.mul_f64(1.0 - JITTER),
                "round {i}: {wait:?} too short"
            );
            // Nothing before it is due.
            assert!(p
                .handle_timeout(due - Duration::from_millis(1), &only)
                .is_empty());
            assert_eq!(p.handle_timeout(due, &only), vec![1]);
            // Not again at once: the redial gets its window.
            assert!(p.handle_timeout(due, &only).is_empty());
            now = due + Duration::from_millis(200);
            // The redial's relayed connection stood: a new round.
            p.round_started(1, now);
            assert_eq!(p.rounds(&1), Some(i as u32 + 2));
        }
    }

    /// The side that dialled the relayed connection hears nothing when DCUtR fails: it
    /// retries after the round's window and the back-off, so the other side (which heard the
    /// failure) goes first.
    #[test]
    fn a_round_without_word_is_retried_after_its_window() {
        let t = Instant::now();
        let mut p = Punches::new(1);
        let only = set(&[9]);
        p.round_started(9, t);
        let window_end = t + ROUND_WINDOW + BACKOFF[0].mul_f64(1.0 - JITTER);
        assert!(p
            .handle_timeout(window_end - Duration::from_millis(1), &only)
            .is_empty());
        assert_eq!(
            p.handle_timeout(t + ROUND_WINDOW + BACKOFF[0], &only),
            vec![9]
        );
        // A failure heard later than the window never postpones the retry.
        let mut q = Punches::new(1);
        q.round_started(9, t);
        let before = q.poll_timeout().unwrap();
        q.failed(9, t + Duration::from_secs(39));
        assert!(q.poll_timeout().unwrap() <= before);
    }

    /// A member with a direct connection, or no longer connected, is forgotten: no retry, and
    /// the next time it is relayed only it starts again from the first round.
    #[test]
    fn a_direct_connection_or_a_departure_ends_the_retries() {
        let t = Instant::now();
        let mut p = Punches::new(3);
        p.round_started(1, t);
        p.round_started(2, t);
        p.failed(1, t);
        p.failed(2, t);
        // 1 is direct now, 2 left: neither is relayed only.
        let later = t + Duration::from_secs(10);
        assert!(p.handle_timeout(later, &set(&[])).is_empty());
        assert_eq!(p.len(), 0);
        p.round_started(1, later);
        p.direct(&1);
        assert_eq!(p.len(), 0);
        // Relayed only again: a first round, seen by the tick.
        assert!(p.handle_timeout(later, &set(&[1])).is_empty());
        assert_eq!(p.rounds(&1), Some(1));
    }

    /// Tracked members are bounded: transport ids are fresh for every run of every peer.
    #[test]
    fn state_is_bounded() {
        let t = Instant::now();
        let mut p = Punches::new(5);
        for peer in 0..(MAX_PEERS as u32 * 2) {
            p.round_started(peer, t);
            p.failed(peer, t);
        }
        assert_eq!(p.len(), MAX_PEERS);
        let all: HashSet<u32> = (0..(MAX_PEERS as u32 * 2)).collect();
        p.handle_timeout(t, &all);
        assert_eq!(p.len(), MAX_PEERS);
    }

    /// A tick never returns a member twice within the smallest wait: no hot loop, whatever
    /// the events.
    #[test]
    fn no_hot_loop() {
        let t = Instant::now();
        let mut p = Punches::new(11);
        let only = set(&[4]);
        let mut retries = 0;
        let mut now = t;
        // An hour of 2 s ticks, with a failure heard after every retry.
        while now < t + Duration::from_secs(3600) {
            let due = p.handle_timeout(now, &only);
            for peer in due {
                retries += 1;
                p.round_started(peer, now + Duration::from_millis(100));
                p.failed(peer, now + Duration::from_secs(1));
            }
            now += Duration::from_secs(2);
        }
        // 2 + 5 + 15 + 60 s, then every 5 min: 4 + about 12 in the hour.
        assert!((10..=20).contains(&retries), "{retries} retries in an hour");
    }

    #[test]
    fn jitter_is_deterministic_under_a_seed() {
        let draw = |seed| {
            let t = Instant::now();
            let mut p = Punches::new(seed);
            p.round_started(1, t);
            p.failed(1, t);
            p.poll_timeout().unwrap() - t
        };
        assert_eq!(draw(42), draw(42));
    }
}
