//! How a mailbox with no public address given learns its own: from the addresses admitted
//! members observe it at (identify's observed address), and only once enough distinct members
//! agree.
//!
//! A pure policy: the runtime feeds it `(member, observed address)` pairs, only for transport
//! peers it admitted as current members of its collective, and applies the changes it returns
//! (`Swarm::add_external_address` / `remove_external_address`). A member controls what it says
//! it observed, so one member (however many transport ids it holds) never makes an address
//! external: [`CONFIRMATIONS`] distinct members must report the same one.

use std::collections::{HashMap, VecDeque};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use lookout_protocol::MemberId;

/// Distinct members that must report the same address before it becomes external.
pub const CONFIRMATIONS: usize = 2;
/// Distinct candidate addresses kept per transport (TCP, QUIC).
pub const MAX_CANDIDATES: usize = 4;
/// Members whose latest report is kept (the oldest reporter is forgotten first).
pub const MAX_REPORTERS: usize = 256;

/// The transport an address is for: a TCP and a QUIC address are learnt separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `/ip4|ip6/…/tcp/PORT`.
    Tcp,
    /// `/ip4|ip6/…/udp/PORT/quic-v1`.
    Quic,
}

/// The transport of a plain public-address shape (IP, then TCP or UDP+QUIC, nothing else after
/// an optional trailing `/p2p/…`), with the `/p2p/…` removed; `None` for anything else
/// (relayed, DNS, unspecified IP, port 0, other transports).
pub fn shape(addr: &Multiaddr) -> Option<(Transport, Multiaddr)> {
    let mut parts: Vec<Protocol<'_>> = addr.iter().collect();
    if matches!(parts.last(), Some(Protocol::P2p(_))) {
        parts.pop();
    }
    let transport = match parts.as_slice() {
        [Protocol::Ip4(ip), Protocol::Tcp(port)] if !ip.is_unspecified() && *port != 0 => {
            Transport::Tcp
        }
        [Protocol::Ip6(ip), Protocol::Tcp(port)] if !ip.is_unspecified() && *port != 0 => {
            Transport::Tcp
        }
        [Protocol::Ip4(ip), Protocol::Udp(port), Protocol::QuicV1]
            if !ip.is_unspecified() && *port != 0 =>
        {
            Transport::Quic
        }
        [Protocol::Ip6(ip), Protocol::Udp(port), Protocol::QuicV1]
            if !ip.is_unspecified() && *port != 0 =>
        {
            Transport::Quic
        }
        _ => return None,
    };
    Some((transport, parts.into_iter().collect()))
}

/// What the runtime must do after a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The address no longer confirmed (to remove from the external addresses), if any.
    pub old: Option<Multiaddr>,
    /// The address now confirmed (to add).
    pub new: Multiaddr,
}

/// The observed addresses members reported, and the confirmed one per transport.
#[derive(Debug, Default)]
pub struct Learner {
    /// Each member's latest report per transport.
    reports: HashMap<(MemberId, Transport), Multiaddr>,
    /// Reporters, oldest first (for the bound).
    order: VecDeque<(MemberId, Transport)>,
    /// The confirmed address per transport.
    confirmed: HashMap<Transport, Multiaddr>,
}

impl Learner {
    /// The addresses confirmed now (at most one per transport).
    pub fn confirmed(&self) -> impl Iterator<Item = &Multiaddr> {
        self.confirmed.values()
    }

    /// Distinct members reporting `addr` for `transport` now.
    fn support(&self, transport: Transport, addr: &Multiaddr) -> usize {
        self.reports
            .iter()
            .filter(|((_, t), a)| *t == transport && *a == addr)
            .count()
    }

    /// The distinct candidate addresses for `transport`, with their support.
    fn candidates(&self, transport: Transport) -> Vec<(Multiaddr, usize)> {
        let mut out: Vec<(Multiaddr, usize)> = Vec::new();
        for ((_, t), a) in &self.reports {
            if *t != transport {
                continue;
            }
            match out.iter_mut().find(|(c, _)| c == a) {
                Some((_, n)) => *n += 1,
                None => out.push((a.clone(), 1)),
            }
        }
        out
    }

    /// Member `member` (admitted, current) observed this mailbox at `observed`. Returns the
    /// change of the confirmed address for its transport, if any.
    pub fn report(&mut self, member: MemberId, observed: &Multiaddr) -> Option<Change> {
        let (transport, addr) = shape(observed)?;
        let key = (member, transport);
        if self.reports.get(&key) == Some(&addr) {
            return None;
        }
        // A new distinct candidate when the transport already has the most kept: the least
        // supported candidate other than the confirmed one goes (its reporters' reports).
        let candidates = self.candidates(transport);
        if !candidates.iter().any(|(c, _)| *c == addr) && candidates.len() >= MAX_CANDIDATES {
            let confirmed = self.confirmed.get(&transport);
            if let Some((weakest, _)) = candidates
                .iter()
                .filter(|(c, _)| Some(c) != confirmed)
                .min_by_key(|(_, n)| *n)
            {
                let weakest = weakest.clone();
                self.reports
                    .retain(|(_, t), a| !(*t == transport && *a == weakest));
                self.order.retain(|k| self.reports.contains_key(k));
            }
        }
        self.order.retain(|k| *k != key);
        self.order.push_back(key);
        self.reports.insert(key, addr);
        while self.order.len() > MAX_REPORTERS {
            if let Some(oldest) = self.order.pop_front() {
                self.reports.remove(&oldest);
            }
        }
        self.reconsider(transport)
    }

    /// Confirms the best-supported candidate of `transport` if at least [`CONFIRMATIONS`]
    /// members report it and more report it than the confirmed one.
    fn reconsider(&mut self, transport: Transport) -> Option<Change> {
        let current = self.confirmed.get(&transport).cloned();
        let current_support = current.as_ref().map_or(0, |c| self.support(transport, c));
        let (best, support) = self
            .candidates(transport)
            .into_iter()
            .filter(|(c, _)| Some(c) != current.as_ref())
            .max_by_key(|(_, n)| *n)?;
        if support < CONFIRMATIONS || support <= current_support {
            return None;
        }
        self.confirmed.insert(transport, best.clone());
        Some(Change {
            old: current,
            new: best,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn member(n: u8) -> MemberId {
        MemberId([n; 32])
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    const TCP: &str = "/ip4/198.18.0.10/tcp/4001";
    const QUIC: &str = "/ip4/198.18.0.10/udp/4001/quic-v1";

    #[test]
    fn one_member_never_makes_an_address_external() {
        let mut l = Learner::default();
        for _ in 0..10 {
            assert_eq!(l.report(member(1), &addr(TCP)), None);
            assert_eq!(l.report(member(1), &addr("/ip4/203.0.113.9/tcp/1")), None);
        }
        assert_eq!(l.confirmed().count(), 0);
    }

    #[test]
    fn two_members_agreeing_confirm_it() {
        let mut l = Learner::default();
        assert_eq!(l.report(member(1), &addr(TCP)), None);
        // A different address from the second member confirms nothing.
        assert_eq!(
            l.report(member(2), &addr("/ip4/203.0.113.9/tcp/4001")),
            None
        );
        let change = l.report(
            member(3),
            &addr(&format!(
                "{TCP}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
            )),
        );
        assert_eq!(
            change,
            Some(Change {
                old: None,
                new: addr(TCP)
            })
        );
        // The QUIC address is learnt on its own.
        assert_eq!(l.report(member(1), &addr(QUIC)), None);
        assert!(l.report(member(2), &addr(QUIC)).is_some());
        assert_eq!(l.confirmed().count(), 2);
    }

    #[test]
    fn a_changed_address_replaces_the_confirmed_one_once_more_members_see_it() {
        let mut l = Learner::default();
        l.report(member(1), &addr(TCP));
        l.report(member(2), &addr(TCP));
        let moved = addr("/ip4/203.0.113.50/tcp/4001");
        assert_eq!(l.report(member(1), &moved), None, "one against one: kept");
        assert_eq!(
            l.report(member(2), &moved),
            Some(Change {
                old: Some(addr(TCP)),
                new: moved.clone()
            })
        );
        assert_eq!(l.confirmed().collect::<Vec<_>>(), vec![&moved]);
    }

    #[test]
    fn a_rogue_member_cycling_addresses_keeps_the_candidates_bounded() {
        let mut l = Learner::default();
        l.report(member(1), &addr(TCP));
        l.report(member(2), &addr(TCP));
        for port in 1..1000u16 {
            l.report(member(9), &addr(&format!("/ip4/203.0.113.9/tcp/{port}")));
        }
        assert!(l.candidates(Transport::Tcp).len() <= MAX_CANDIDATES);
        assert_eq!(l.confirmed().collect::<Vec<_>>(), vec![&addr(TCP)]);
    }

    #[test]
    fn relayed_dns_and_unspecified_addresses_are_never_candidates() {
        let mut l = Learner::default();
        for bad in [
            "/ip4/198.18.0.10/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
            "/dns4/example.org/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/198.18.0.10/tcp/0",
            "/ip4/198.18.0.10/udp/4001",
        ] {
            assert_eq!(l.report(member(1), &addr(bad)), None);
            assert_eq!(l.report(member(2), &addr(bad)), None, "{bad}");
        }
        assert_eq!(l.confirmed().count(), 0);
    }
}
