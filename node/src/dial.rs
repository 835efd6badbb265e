//! Which addresses the node dials, and when: a small pure policy (no sockets, no clock).
//!
//! A dial hands whoever holds the address the first hello message, and, if that holder proves
//! it holds the collective's secret, the member's identity proof. So the node dials only:
//!
//! - addresses the user gave in this run (`--peer`, `dial`);
//! - the invite's addresses, only while the node knows no member's announcement yet (it is
//!   still joining);
//! - addresses a current member announced *recently*: the announcement (an encrypted post) is
//!   at most [`ANNOUNCEMENT_MAX_AGE`] old and not dated in the future beyond
//!   [`MAX_CLOCK_SKEW`] (its author chose the date), and its author is still on the roster
//!   (the caller passes only those).
//!
//! A private-range address (RFC 1918, CGNAT `100.64.0.0/10`, link-local, IPv6 ULA and link-local)
//! means something only on the network where it was learnt: on a hotel's Wi-Fi,
//! `192.168.1.23` is whoever the hotel gave it to. Each address remembers the node's local
//! networks (its non-loopback interface addresses) when it was learnt; a private one is dialled
//! only while those are unchanged, and never if it was learnt before the node knew its networks
//! (from the store, at start). Loopback addresses reach only this device and are always allowed.
//!
//! The roster's mailbox addresses (chosen by a moderator) obey the same network rule: a private
//! one is dialled only while the node's networks are those it had when the roster first named
//! the address ([`DialPolicy::set_roster_mailboxes`], [`DialPolicy::may_dial_mailbox`]). Those
//! networks are kept in the sealed store across restarts ([`DialPolicy::roster_networks`],
//! [`DialPolicy::restore_roster_networks`]): after a restart on a hotel's network the address is
//! still tied to the network where it was first seen, not to the hotel's. The mailbox links
//! schedule those dials themselves; this policy only says which addresses they may use.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::policy::dial::{Backoff, Jitter};

/// How old a member's reachability announcement may be and still be dialled: 24 hours.
pub const ANNOUNCEMENT_MAX_AGE: u64 = 24 * 3600;
/// How far in the future an announcement may be dated (clocks differ) and still count.
pub const MAX_CLOCK_SKEW: u64 = 600;
/// First wait before redialling an address (the back-off itself is
/// [`crate::policy::dial::Backoff`]).
pub const INITIAL_BACKOFF: Duration = crate::policy::dial::INITIAL_BACKOFF;
/// Longest wait between attempts at one address.
pub const MAX_BACKOFF: Duration = crate::policy::dial::MAX_BACKOFF;
/// Most addresses kept.
pub const MAX_TARGETS: usize = 256;

/// The node's local networks: its non-loopback interface addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(BTreeSet<IpAddr>);

impl Networks {
    /// The networks behind the addresses the node listens on (`0.0.0.0` expands to one address
    /// per interface).
    pub fn from_listen<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> Self {
        Self(
            addrs
                .into_iter()
                .filter_map(ip_of)
                .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
                .collect(),
        )
    }

    /// Whether the node has any non-loopback interface.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As stored: the addresses, comma-separated.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// From [`Self::to_text`]; `None` if any part is not an IP address.
    pub fn from_text(text: &str) -> Option<Self> {
        text.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().ok())
            .collect::<Option<BTreeSet<IpAddr>>>()
            .map(Self)
    }

    /// Whether every address of `self` is also in `other`.
    pub fn is_subset(&self, other: &Networks) -> bool {
        self.0.is_subset(&other.0)
    }
}

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The user, in this run.
    Given,
    /// The invite this device joined with.
    Invite,
    /// A member's announcement dated `at` (Unix seconds, author-chosen).
    Announced {
        /// The announcement's timestamp.
        at: u64,
    },
}

struct Entry {
    source: Source,
    /// The node's networks when it learnt the address; `None` if it did not know them.
    learnt_on: Option<Networks>,
    backoff: Backoff,
    connected: bool,
}

/// The addresses the node may dial, with back-off.
#[derive(Default)]
pub struct DialPolicy {
    entries: BTreeMap<Multiaddr, Entry>,
    jitter: Jitter,
    /// The roster's mailbox addresses and the node's networks when it first saw each (`None`
    /// until it knows them).
    roster: BTreeMap<Multiaddr, Option<Networks>>,
}

impl DialPolicy {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty policy whose back-off jitter is drawn from `seed` (tests).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            entries: BTreeMap::new(),
            jitter: Jitter::seeded(seed),
            roster: BTreeMap::new(),
        }
    }

    /// The user asked to dial `addr` (or the node was started with it).
    pub fn given(&mut self, addr: Multiaddr, networks: Option<&Networks>, now: Instant) {
        self.insert(addr, Source::Given, networks, now);
    }

    /// An address from the invite this device joined with.
    pub fn invite(&mut self, addr: Multiaddr, networks: Option<&Networks>, now: Instant) {
        self.insert(addr, Source::Invite, networks, now);
    }

    /// Replace the announced addresses with `announced` (address, announcement date), the
    /// current members' newest announcements. Addresses no longer announced are dropped; new
    /// ones remember `networks` (pass `None` while the node does not know its networks yet).
    pub fn set_announced(
        &mut self,
        announced: impl IntoIterator<Item = (Multiaddr, u64)>,
        networks: Option<&Networks>,
        now: Instant,
    ) {
        let mut fresh: BTreeMap<Multiaddr, u64> = BTreeMap::new();
        for (addr, at) in announced {
            let e = fresh.entry(addr).or_insert(at);
            *e = (*e).max(at);
        }
        self.entries.retain(|addr, e| {
            !matches!(e.source, Source::Announced { .. }) || fresh.contains_key(addr)
        });
        for (addr, at) in fresh {
            match self.entries.get_mut(&addr) {
                Some(e) => match &mut e.source {
                    Source::Announced { at: old } => *old = at,
                    // An invite address a member now announces counts as announced.
                    Source::Invite => e.source = Source::Announced { at },
                    Source::Given => {}
                },
                None => self.insert(addr, Source::Announced { at }, networks, now),
            }
        }
    }

    fn insert(
        &mut self,
        addr: Multiaddr,
        source: Source,
        networks: Option<&Networks>,
        now: Instant,
    ) {
        if let Some(e) = self.entries.get_mut(&addr) {
            // A user-given address stays given; the rest take the stronger source.
            if source == Source::Given {
                e.source = source;
                e.learnt_on = networks.cloned();
                e.backoff.renewed(now);
            }
            return;
        }
        if self.entries.len() >= MAX_TARGETS {
            self.prune(now);
        }
        if self.entries.len() >= MAX_TARGETS {
            return;
        }
        self.entries.insert(
            addr,
            Entry {
                source,
                learnt_on: networks.cloned(),
                backoff: Backoff::new(now),
                connected: false,
            },
        );
    }

    /// The roster's mailboxes are now at `addresses`. Each remembers the first `networks`
    /// known (`None` while the node does not know them: then only its loopback and public
    /// addresses may be dialled), in this run or, once restored, an earlier one. Addresses no
    /// longer in the roster are forgotten. Returns whether what [`Self::roster_networks`] says
    /// changed (then the caller stores it again).
    pub fn set_roster_mailboxes<'a>(
        &mut self,
        addresses: impl IntoIterator<Item = &'a Multiaddr>,
        networks: Option<&Networks>,
    ) -> bool {
        let current: BTreeSet<&Multiaddr> = addresses.into_iter().collect();
        let mut changed = false;
        self.roster.retain(|a, learnt_on| {
            let keep = current.contains(a);
            changed |= !keep && learnt_on.is_some();
            keep
        });
        for addr in current {
            let learnt_on = self.roster.entry(addr.clone()).or_insert(None);
            if learnt_on.is_none() && networks.is_some() {
                *learnt_on = networks.cloned();
                changed = true;
            }
        }
        changed
    }

    /// The networks each roster mailbox address was first seen on, to be stored.
    pub fn roster_networks(&self) -> Vec<(Multiaddr, Networks)> {
        self.roster
            .iter()
            .filter_map(|(a, n)| n.clone().map(|n| (a.clone(), n)))
            .collect()
    }

    /// The networks stored by an earlier run ([`Self::roster_networks`]): call before the first
    /// [`Self::set_roster_mailboxes`], so an address keeps the network it was first seen on.
    pub fn restore_roster_networks(
        &mut self,
        stored: impl IntoIterator<Item = (Multiaddr, Networks)>,
    ) {
        for (addr, networks) in stored {
            self.roster.insert(addr, Some(networks));
        }
    }

    /// Whether the node may dial the roster mailbox address `addr` now: it is on the roster,
    /// and, if private, the node is on the networks where it learnt it (loopback is always
    /// allowed; an address with no IP, such as `/dns4/...`, is judged where it is resolved).
    pub fn may_dial_mailbox(&self, addr: &Multiaddr, networks: &Networks) -> bool {
        self.roster
            .get(addr)
            .is_some_and(|learnt_on| network_allows(addr, learnt_on.as_ref(), networks))
    }

    /// Where `addr` came from, if the policy knows it.
    pub fn source(&self, addr: &Multiaddr) -> Option<Source> {
        self.entries.get(addr).map(|e| e.source)
    }

    /// The caller dialled `addr` itself (the user asked): wait before the next attempt.
    pub fn attempted(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.backoff.attempted(now, &mut self.jitter);
        }
    }

    /// A connection to `addr` was established (`true`) or its peer left (`false`).
    pub fn set_connected(&mut self, addr: &Multiaddr, connected: bool, now: Instant) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.connected = connected;
            if connected {
                e.backoff.connected(now);
            }
        }
    }

    /// Every address the node had connected through is free again (its peer left).
    pub fn clear_connected(&mut self, addrs: &[Multiaddr]) {
        for addr in addrs {
            if let Some(e) = self.entries.get_mut(addr) {
                e.connected = false;
            }
        }
    }

    /// Whether the policy holds `addr` as a member's announced address only: not one the user
    /// gave (which stays given whoever announces it too), not the invite's.
    pub fn is_announced(&self, addr: &Multiaddr) -> bool {
        self.entries
            .get(addr)
            .is_some_and(|e| matches!(e.source, Source::Announced { .. }))
    }

    /// Whether the node may dial `addr` now, whatever the back-off says.
    pub fn may_dial(&self, addr: &Multiaddr, unix_now: u64, networks: &Networks) -> bool {
        self.entries
            .get(addr)
            .is_some_and(|e| self.eligible(addr, e, unix_now, networks))
    }

    fn eligible(&self, addr: &Multiaddr, e: &Entry, unix_now: u64, networks: &Networks) -> bool {
        let source_ok = match e.source {
            Source::Given => true,
            Source::Invite => !self
                .entries
                .values()
                .any(|o| matches!(o.source, Source::Announced { .. })),
            Source::Announced { at } => {
                at <= unix_now.saturating_add(MAX_CLOCK_SKEW)
                    && unix_now.saturating_sub(at) <= ANNOUNCEMENT_MAX_AGE
            }
        };
        source_ok && network_allows(addr, e.learnt_on.as_ref(), networks)
    }

    /// The addresses to dial now: eligible, not connected, back-off elapsed. Each returned
    /// address waits twice as long before its next attempt (up to [`MAX_BACKOFF`]).
    pub fn due(&mut self, now: Instant, unix_now: u64, networks: &Networks) -> Vec<Multiaddr> {
        self.due_except(now, unix_now, networks, |_| false)
    }

    /// As [`due`](Self::due), leaving out the addresses `reached` names (a member's, when the
    /// node has a direct connection with that member already, whoever dialled): those are not
    /// dialled and their back-off is left as it is, so that they are due at once when the
    /// member goes.
    pub fn due_except(
        &mut self,
        now: Instant,
        unix_now: u64,
        networks: &Networks,
        reached: impl Fn(&Multiaddr) -> bool,
    ) -> Vec<Multiaddr> {
        let due: Vec<Multiaddr> = self
            .waiting(now, unix_now, networks)
            .filter(|addr| !reached(addr))
            .cloned()
            .collect();
        for addr in &due {
            if let Some(e) = self.entries.get_mut(addr) {
                e.backoff.attempted(now, &mut self.jitter);
            }
        }
        due
    }

    /// The addresses [`due`](Self::due) would return now, without counting an attempt: the
    /// caller picks among them (the members to dial, [`crate::policy::budget`]).
    pub fn waiting<'a>(
        &'a self,
        now: Instant,
        unix_now: u64,
        networks: &'a Networks,
    ) -> impl Iterator<Item = &'a Multiaddr> + 'a {
        self.entries
            .iter()
            .filter(move |(addr, e)| {
                !e.connected && e.backoff.is_due(now) && self.eligible(addr, e, unix_now, networks)
            })
            .map(|(a, _)| a)
    }

    /// Forget the addresses the user gave or the invite named that have been neither connected
    /// nor given again for [`crate::policy::dial::STALE_TARGET`] (announced addresses follow
    /// the announcements, see [`set_announced`](Self::set_announced)). Returns how many went.
    pub fn prune(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| {
            e.connected || matches!(e.source, Source::Announced { .. }) || !e.backoff.is_stale(now)
        });
        before - self.entries.len()
    }

    /// How many addresses the policy holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the policy holds no address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next instant at which [`due`](Self::due) may return something (for the caller's
    /// timer); `None` if nothing is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.connected)
            .map(|e| e.backoff.next())
            .min()
    }
}

/// The network rule: loopback always; a private-range address only while the node's networks
/// are `learnt_on`, those it had when it learnt the address; anything else.
fn network_allows(addr: &Multiaddr, learnt_on: Option<&Networks>, networks: &Networks) -> bool {
    match ip_of(addr) {
        Some(ip) if ip.is_loopback() => true,
        Some(ip) if is_private(&ip) => !networks.is_empty() && learnt_on == Some(networks),
        _ => true,
    }
}

/// The IP address of a multiaddress, if it starts with one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether `ip` is in a range that means something only on one local network: RFC 1918,
/// CGNAT (`100.64.0.0/10`), link-local, IPv6 unique-local (`fc00::/7`) and link-local
/// (`fe80::/10`).
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments()[0];
            (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private_v4(&v4))
        }
    }
}

fn is_private_v4(ip: &Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn home() -> Networks {
        Networks::from_listen(&[
            a("/ip4/192.168.1.57/tcp/4001"),
            a("/ip4/127.0.0.1/tcp/4001"),
        ])
    }

    fn hotel() -> Networks {
        Networks::from_listen(&[a("/ip4/192.168.1.80/tcp/4001")])
    }

    /// Review 2 finding 5: the network a private roster mailbox address was first seen on
    /// survives a restart. Seen at home, stored; the node restarts on a hotel's network using
    /// the same range: the address is not dialled there (before the fix, the hotel became its
    /// network at the restart), and is again once back home.
    #[test]
    fn a_private_mailbox_address_is_not_dialled_after_a_restart_on_another_network() {
        let lan = a("/ip4/192.168.1.5/tcp/4001");
        let public = a("/ip4/203.0.113.7/tcp/4001");
        let mut first_run = DialPolicy::new();
        assert!(first_run.set_roster_mailboxes([&lan, &public], Some(&home())));
        assert!(first_run.may_dial_mailbox(&lan, &home()));
        assert!(!first_run.set_roster_mailboxes([&lan, &public], Some(&home())));
        // What the node stores, as text, and reads back at the next start.
        let stored: Vec<(String, String)> = first_run
            .roster_networks()
            .into_iter()
            .map(|(a, n)| (a.to_string(), n.to_text()))
            .collect();
        assert_eq!(stored.len(), 2);
        let restored = stored
            .iter()
            .map(|(a, n)| (a.parse().unwrap(), Networks::from_text(n).unwrap()));
        let mut hotel_run = DialPolicy::new();
        hotel_run.restore_roster_networks(restored);
        // Started on the hotel's network: nothing new learnt, the LAN address not dialled.
        assert!(!hotel_run.set_roster_mailboxes([&lan, &public], Some(&hotel())));
        assert!(!hotel_run.may_dial_mailbox(&lan, &hotel()));
        assert!(hotel_run.may_dial_mailbox(&public, &hotel()));
        assert!(hotel_run.may_dial_mailbox(&lan, &home()));
        // Without what was stored, the hotel would have become the address's network.
        let mut forgetful = DialPolicy::new();
        forgetful.set_roster_mailboxes([&lan], Some(&hotel()));
        assert!(forgetful.may_dial_mailbox(&lan, &hotel()));
        // An address leaving the roster is forgotten (and the change is reported for storing).
        assert!(hotel_run.set_roster_mailboxes([&public], Some(&hotel())));
        assert_eq!(hotel_run.roster_networks().len(), 1);
        assert_eq!(Networks::from_text("not an ip"), None);
        assert_eq!(Networks::from_text(""), Some(Networks::default()));
    }

    #[test]
    fn private_ranges_are_recognised() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.23",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_private(&p.parse().unwrap()), "{p}");
        }
        for p in [
            "8.8.8.8",
            "100.128.0.1",
            "100.63.255.255",
            "2001:db8::1",
            "127.0.0.1",
        ] {
            assert!(!is_private(&p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn a_private_address_is_not_redialled_on_another_network() {
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let lan = a("/ip4/192.168.1.23/tcp/4001");
        policy.set_announced([(lan.clone(), NOW - 60)], Some(&home()), t);
        assert_eq!(policy.due(t, NOW, &home()), vec![lan.clone()]);
        // Same address range, another network (the hotel): never.
        let later = t + MAX_BACKOFF;
        assert!(policy.due(later, NOW, &hotel()).is_empty());
        assert!(policy.due(later, NOW, &Networks::default()).is_empty());
        // Back home: again.
        assert_eq!(policy.due(later, NOW, &home()), vec![lan]);
    }

    #[test]
    fn a_private_address_learnt_before_the_networks_were_known_is_never_dialled() {
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let lan = a("/ip4/10.0.0.5/tcp/4001");
        let public = a("/ip4/203.0.113.5/tcp/4001");
        let local = a("/ip4/127.0.0.1/tcp/4001");
        policy.set_announced(
            [
                (lan.clone(), NOW),
                (public.clone(), NOW),
                (local.clone(), NOW),
            ],
            None,
            t,
        );
        let due = policy.due(t, NOW, &home());
        assert!(!due.contains(&lan));
        assert!(due.contains(&public) && due.contains(&local));
    }

    #[test]
    fn only_recent_announcements_of_current_members_are_dialled() {
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let old = a("/ip4/203.0.113.1/tcp/1");
        let fresh = a("/ip4/203.0.113.2/tcp/1");
        let future = a("/ip4/203.0.113.3/tcp/1");
        policy.set_announced(
            [
                (old.clone(), NOW - ANNOUNCEMENT_MAX_AGE - 1),
                (fresh.clone(), NOW - ANNOUNCEMENT_MAX_AGE),
                (future.clone(), NOW + MAX_CLOCK_SKEW + 1),
            ],
            Some(&home()),
            t,
        );
        assert_eq!(policy.due(t, NOW, &home()), vec![fresh.clone()]);
        // The member was removed: its announcement is no longer passed in, so its address goes.
        policy.set_announced([], Some(&home()), t);
        assert!(policy.due(t + MAX_BACKOFF, NOW, &home()).is_empty());
        assert!(!policy.may_dial(&fresh, NOW, &home()));
    }

    #[test]
    fn an_address_the_user_gave_stays_given_when_a_member_announces_it() {
        // The connection budget leaves announced addresses to the members it draws; the
        // user's own stay outside it (review 20), the invite's join the announced ones.
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let given = a("/ip4/203.0.113.7/tcp/1");
        let invite = a("/ip4/203.0.113.8/tcp/1");
        let announced = a("/ip4/203.0.113.9/tcp/1");
        policy.given(given.clone(), Some(&home()), t);
        policy.invite(invite.clone(), Some(&home()), t);
        policy.set_announced(
            [
                (given.clone(), NOW),
                (invite.clone(), NOW),
                (announced.clone(), NOW),
            ],
            Some(&home()),
            t,
        );
        assert!(!policy.is_announced(&given));
        assert!(policy.is_announced(&invite));
        assert!(policy.is_announced(&announced));
        assert!(!policy.is_announced(&a("/ip4/203.0.113.10/tcp/1")));
    }

    #[test]
    fn invite_addresses_are_dialled_only_while_joining() {
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let invite = a("/ip4/203.0.113.9/tcp/1");
        policy.invite(invite.clone(), None, t);
        assert_eq!(policy.source(&invite), Some(Source::Invite));
        assert_eq!(policy.due(t, NOW, &home()), vec![invite.clone()]);
        policy.set_announced([(a("/ip4/203.0.113.10/tcp/1"), NOW)], Some(&home()), t);
        assert!(!policy.may_dial(&invite, NOW, &home()));
        // Unless a member announces it too.
        policy.set_announced(
            [(a("/ip4/203.0.113.10/tcp/1"), NOW), (invite.clone(), NOW)],
            Some(&home()),
            t,
        );
        assert!(policy.may_dial(&invite, NOW, &home()));
        // A user-given address is always dialled.
        let given = a("/ip4/203.0.113.11/tcp/1");
        policy.given(given.clone(), Some(&home()), t);
        assert!(policy.may_dial(&given, NOW, &home()));
    }

    #[test]
    fn backoff_doubles_and_connected_addresses_wait() {
        let t = Instant::now();
        let mut policy = DialPolicy::new();
        let addr = a("/ip4/203.0.113.1/tcp/1");
        policy.given(addr.clone(), None, t);
        assert_eq!(policy.due(t, NOW, &home()).len(), 1);
        assert!(policy.due(t, NOW, &home()).is_empty());
        assert_eq!(policy.due(t + INITIAL_BACKOFF, NOW, &home()).len(), 1);
        assert!(policy.due(t + INITIAL_BACKOFF * 2, NOW, &home()).is_empty());
        // Due again 2 s after the second attempt, less up to a fifth of it (jitter).
        let next = policy.poll_timeout().unwrap();
        assert!(
            next <= t + INITIAL_BACKOFF * 3
                && next >= t + INITIAL_BACKOFF * 3 - INITIAL_BACKOFF * 2 / 5
        );
        policy.set_connected(&addr, true, t);
        assert!(policy.due(t + MAX_BACKOFF, NOW, &home()).is_empty());
        policy.clear_connected(&[addr]);
        assert_eq!(policy.due(t + MAX_BACKOFF, NOW, &home()).len(), 1);
    }

    #[test]
    fn a_connected_members_addresses_are_not_dialled_until_it_goes() {
        let t = Instant::now();
        let mut policy = DialPolicy::with_seed(5);
        let theirs = a("/ip4/203.0.113.20/tcp/1");
        let other = a("/ip4/203.0.113.21/tcp/1");
        policy.set_announced(
            [(theirs.clone(), NOW), (other.clone(), NOW)],
            Some(&home()),
            t,
        );
        // The member behind `theirs` dialled us: its address is left alone, every tick.
        for i in 0..5 {
            let now = t + MAX_BACKOFF * i;
            let due = policy.due_except(now, NOW, &home(), |x| *x == theirs);
            assert!(!due.contains(&theirs), "tick {i}");
        }
        // It went: due at once, its back-off untouched by the ticks it was skipped.
        assert_eq!(
            policy.due_except(t + MAX_BACKOFF * 5, NOW, &home(), |_| false),
            vec![theirs, other]
        );
    }

    #[test]
    fn dial_targets_stay_bounded_under_churn_and_stale_ones_make_room() {
        let t = Instant::now();
        let mut policy = DialPolicy::with_seed(3);
        // 200 new addresses per stale period: fewer than the cap are ever fresh at once.
        let step = crate::policy::dial::STALE_TARGET / 4;
        for i in 0..10_000u32 {
            let now = t + step * (i / 50);
            let [a1, a2, a3, a4] = i.to_be_bytes();
            let addr = a(&format!(
                "/ip4/203.{a2}.{a3}.{a4}/tcp/{}",
                1000 + u16::from(a1)
            ));
            policy.given(addr.clone(), None, now);
            assert!(policy.len() <= MAX_TARGETS);
            if i >= 2 * MAX_TARGETS as u32 {
                // Old targets went stale, so a new one still gets in.
                assert_eq!(policy.source(&addr), Some(Source::Given), "{i}");
            }
        }
        // A connected target is never forgotten.
        let mut policy = DialPolicy::with_seed(4);
        policy.given(a("/ip4/198.51.100.2/tcp/1"), None, t);
        let kept = a("/ip4/198.51.100.1/tcp/1");
        policy.given(kept.clone(), None, t);
        policy.set_connected(&kept, true, t);
        assert!(policy.prune(t + crate::policy::dial::STALE_TARGET * 10) > 0);
        assert_eq!(policy.source(&kept), Some(Source::Given));
    }
}
