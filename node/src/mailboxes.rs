//! The member's links to the collective's mailboxes: which to dial, at which address and when,
//! and how far each got (a small pure policy: no sockets, the caller passes `now`).
//!
//! The roster names the mailboxes and their addresses; nothing is configured. For each current
//! mailbox the node dials one address at a time (round robin, with back-off), runs the mailbox
//! admission on the connection, and once admitted reserves a relayed address on it, syncs with
//! it every [`MAILBOX_SYNC_INTERVAL`] and pushes its own new items to it at once. A mailbox the
//! roster no longer names is dropped (the caller closes its connections).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

use crate::api::MailboxLinkView;

/// How often an admitted mailbox is synced with (besides at once on connecting).
pub const MAILBOX_SYNC_INTERVAL: Duration = Duration::from_secs(30);
/// First wait before dialling a mailbox again.
pub const MAILBOX_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between attempts at a mailbox.
pub const MAILBOX_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Wait after a mailbox refused this member (removed, or the mailbox is not bound yet).
pub const MAILBOX_REFUSED_BACKOFF: Duration = Duration::from_secs(30);

/// How far the link with one mailbox got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; dialled again at `next_dial`.
    Idle,
    /// A dial is under way.
    Dialing,
    /// Connected; the admission runs.
    Connected,
    /// Admitted: the mailbox syncs and relays for this member.
    Admitted,
    /// The mailbox refused this member (or failed to prove itself); retried later.
    Refused,
}

impl LinkState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "unreachable",
            Self::Dialing => "dialing",
            Self::Connected => "connected",
            Self::Admitted => "admitted",
            Self::Refused => "refused",
        }
    }
}

/// One mailbox and how this node stands with it.
#[derive(Clone, Debug)]
pub struct Link {
    /// Its addresses from the roster.
    pub addresses: Vec<Multiaddr>,
    /// How far it got.
    pub state: LinkState,
    /// Its transport id while connected.
    pub peer: Option<PeerId>,
    /// The address it was last dialled at.
    pub address: Option<Multiaddr>,
    /// When the relay last accepted (or renewed) this node's reservation, UNIX seconds.
    pub reserved_at: Option<u64>,
    /// The last completed sync, UNIX seconds.
    pub last_sync: Option<u64>,
    /// Admitted provisionally by a mailbox not yet bound to the collective (op sync only).
    pub provisional: bool,
    last_sync_start: Option<Instant>,
    next_dial: Instant,
    backoff: Duration,
    next_address: usize,
}

/// The links with every mailbox on the roster.
#[derive(Default)]
pub struct MailboxLinks {
    links: BTreeMap<[u8; 32], Link>,
}

impl MailboxLinks {
    /// No mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The roster's mailboxes are now `current` (id, addresses). New ones are dialled at once;
    /// links of mailboxes no longer named are dropped. Returns the transport ids of the dropped
    /// ones that were connected (the caller closes their connections).
    pub fn set_roster(
        &mut self,
        current: impl IntoIterator<Item = ([u8; 32], Vec<Multiaddr>)>,
        now: Instant,
    ) -> Vec<PeerId> {
        let current: BTreeMap<[u8; 32], Vec<Multiaddr>> = current.into_iter().collect();
        let mut dropped = Vec::new();
        self.links.retain(|id, link| {
            let keep = current.contains_key(id);
            if !keep {
                dropped.extend(link.peer);
            }
            keep
        });
        for (id, addresses) in current {
            let link = self.links.entry(id).or_insert_with(|| Link {
                addresses: Vec::new(),
                state: LinkState::Idle,
                peer: None,
                address: None,
                reserved_at: None,
                last_sync: None,
                provisional: false,
                last_sync_start: None,
                next_dial: now,
                backoff: MAILBOX_INITIAL_BACKOFF,
                next_address: 0,
            });
            link.addresses = addresses;
        }
        dropped
    }

    /// Mailboxes to dial now, each with the address to try; they are marked as being dialled.
    /// Only addresses `allowed` says may be dialled (the dial policy's network rule) are
    /// tried; a mailbox with none is left alone.
    pub fn due(
        &mut self,
        now: Instant,
        allowed: impl Fn(&Multiaddr) -> bool,
    ) -> Vec<([u8; 32], Multiaddr)> {
        let mut out = Vec::new();
        for (id, link) in &mut self.links {
            if !matches!(link.state, LinkState::Idle | LinkState::Refused)
                || link.next_dial > now
                || link.addresses.is_empty()
            {
                continue;
            }
            let n = link.addresses.len();
            let Some(i) = (0..n)
                .map(|k| link.next_address.wrapping_add(k) % n)
                .find(|i| allowed(&link.addresses[*i]))
            else {
                continue;
            };
            link.next_address = i.wrapping_add(1);
            let addr = link.addresses[i].clone();
            link.state = LinkState::Dialing;
            link.address = Some(addr.clone());
            out.push((*id, addr));
        }
        out
    }

    /// The dial of `id` failed (or its connection closed): try again after a growing wait.
    pub fn failed(&mut self, id: &[u8; 32], now: Instant) {
        if let Some(link) = self.links.get_mut(id) {
            if link.state != LinkState::Refused {
                link.state = LinkState::Idle;
            }
            link.peer = None;
            link.reserved_at = None;
            link.provisional = false;
            link.last_sync_start = None;
            link.next_dial = now + link.backoff;
            link.backoff = (link.backoff * 2).min(MAILBOX_MAX_BACKOFF);
        }
    }

    /// A connection to `id` is up at transport id `peer`: the admission starts.
    pub fn connected(&mut self, id: &[u8; 32], peer: PeerId) {
        if let Some(link) = self.links.get_mut(id) {
            link.state = LinkState::Connected;
            link.peer = Some(peer);
        }
    }

    /// The mailbox admitted this member.
    pub fn admitted(&mut self, id: &[u8; 32]) {
        if let Some(link) = self.links.get_mut(id) {
            link.state = LinkState::Admitted;
            link.backoff = MAILBOX_INITIAL_BACKOFF;
        }
    }

    /// The mailbox admitted this member provisionally: it is not bound to the collective yet
    /// and takes ops only (it binds once its roster names itself and this member).
    pub fn provisional(&mut self, id: &[u8; 32]) {
        if let Some(link) = self.links.get_mut(id) {
            link.provisional = true;
        }
    }

    /// Whether the mailbox at `peer` admitted this member provisionally only.
    pub fn is_provisional(&self, peer: &PeerId) -> bool {
        self.by_peer(peer)
            .and_then(|id| self.links.get(&id))
            .is_some_and(|l| l.provisional)
    }

    /// The mailbox refused this member, or did not prove itself: hang up, try again later.
    pub fn refused(&mut self, id: &[u8; 32], now: Instant) {
        if let Some(link) = self.links.get_mut(id) {
            link.state = LinkState::Refused;
            link.provisional = false;
            link.peer = None;
            link.reserved_at = None;
            link.next_dial = now + MAILBOX_REFUSED_BACKOFF;
        }
    }

    /// Every connection with `peer` closed: its mailbox (if any) is dialled again later.
    /// Returns that mailbox.
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) -> Option<[u8; 32]> {
        let id = self.by_peer(peer)?;
        self.failed(&id, now);
        Some(id)
    }

    /// The relay on `peer` accepted or renewed this node's reservation at `at` (UNIX seconds).
    pub fn reserved(&mut self, peer: &PeerId, at: u64) {
        if let Some(link) = self.link_of_mut(peer) {
            link.reserved_at = Some(at);
        }
    }

    /// A sync with `peer` completed at `at` (UNIX seconds).
    pub fn synced(&mut self, peer: &PeerId, at: u64) {
        if let Some(link) = self.link_of_mut(peer) {
            link.last_sync = Some(at);
        }
    }

    /// Admitted mailboxes whose last sync started at least `interval` ago (or never): marked
    /// as started now.
    pub fn sync_due(&mut self, now: Instant, interval: Duration) -> Vec<PeerId> {
        let mut out = Vec::new();
        for link in self.links.values_mut() {
            let due = link
                .last_sync_start
                .is_none_or(|at| now.duration_since(at) >= interval);
            if link.state == LinkState::Admitted && due {
                if let Some(peer) = link.peer {
                    link.last_sync_start = Some(now);
                    out.push(peer);
                }
            }
        }
        out
    }

    /// The mailbox behind transport id `peer`.
    pub fn by_peer(&self, peer: &PeerId) -> Option<[u8; 32]> {
        self.links
            .iter()
            .find(|(_, l)| l.peer.as_ref() == Some(peer))
            .map(|(id, _)| *id)
    }

    /// The link with `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<&Link> {
        self.links.get(id)
    }

    /// Whether `id` is on the roster.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.links.contains_key(id)
    }

    /// Every roster address of every mailbox.
    pub fn addresses(&self) -> impl Iterator<Item = &Multiaddr> {
        self.links.values().flat_map(|l| l.addresses.iter())
    }

    /// Transport ids of admitted mailboxes.
    pub fn admitted_peers(&self) -> Vec<PeerId> {
        self.links
            .values()
            .filter(|l| l.state == LinkState::Admitted)
            .filter_map(|l| l.peer)
            .collect()
    }

    /// Reservation times of the links that hold one.
    pub fn reservations(&self) -> Vec<u64> {
        self.links.values().filter_map(|l| l.reserved_at).collect()
    }

    /// Forget every connection (the swarm was rebuilt with a new identity): dial again now.
    pub fn reset(&mut self, now: Instant) {
        for link in self.links.values_mut() {
            link.state = LinkState::Idle;
            link.peer = None;
            link.reserved_at = None;
            link.provisional = false;
            link.last_sync_start = None;
            link.next_dial = now;
            link.backoff = MAILBOX_INITIAL_BACKOFF;
        }
    }

    /// For `lookout status`.
    pub fn views(&self) -> Vec<MailboxLinkView> {
        self.links
            .iter()
            .map(|(id, link)| MailboxLinkView {
                id: hex::encode(&id[..8]),
                address: link.address.as_ref().map(ToString::to_string),
                state: link.state.as_str().to_owned(),
                reserved: link.reserved_at.is_some(),
                last_sync: link.last_sync,
            })
            .collect()
    }

    fn link_of_mut(&mut self, peer: &PeerId) -> Option<&mut Link> {
        self.links
            .values_mut()
            .find(|l| l.peer.as_ref() == Some(peer))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/198.18.0.10/udp/{port}/quic-v1")
            .parse()
            .unwrap()
    }

    #[test]
    fn roster_mailboxes_are_dialled_at_once_round_robin_with_back_off() {
        let now = Instant::now();
        let mut links = MailboxLinks::new();
        links.set_roster([([1; 32], vec![addr(1), addr(2)])], now);
        assert_eq!(links.due(now, |_| true), vec![([1; 32], addr(1))]);
        // Being dialled: not again.
        assert!(links.due(now, |_| true).is_empty());
        links.failed(&[1; 32], now);
        assert!(links.due(now, |_| true).is_empty());
        assert_eq!(
            links.due(now + MAILBOX_INITIAL_BACKOFF, |_| true),
            vec![([1; 32], addr(2))]
        );
        links.failed(&[1; 32], now);
        // The wait doubled.
        assert!(links
            .due(now + MAILBOX_INITIAL_BACKOFF, |_| true)
            .is_empty());
        assert_eq!(
            links.due(now + MAILBOX_INITIAL_BACKOFF * 2, |_| true).len(),
            1
        );
    }

    #[test]
    fn an_admitted_mailbox_is_synced_now_and_every_interval() {
        let now = Instant::now();
        let peer = PeerId::random();
        let mut links = MailboxLinks::new();
        links.set_roster([([1; 32], vec![addr(1)])], now);
        links.due(now, |_| true);
        links.connected(&[1; 32], peer);
        // Not before admission.
        assert!(links.sync_due(now, MAILBOX_SYNC_INTERVAL).is_empty());
        links.admitted(&[1; 32]);
        assert_eq!(links.sync_due(now, MAILBOX_SYNC_INTERVAL), vec![peer]);
        assert!(links.sync_due(now, MAILBOX_SYNC_INTERVAL).is_empty());
        assert_eq!(
            links.sync_due(now + MAILBOX_SYNC_INTERVAL, MAILBOX_SYNC_INTERVAL),
            vec![peer]
        );
        assert_eq!(links.admitted_peers(), vec![peer]);
    }

    #[test]
    fn a_removed_mailbox_is_dropped_and_its_connection_returned() {
        let now = Instant::now();
        let peer = PeerId::random();
        let mut links = MailboxLinks::new();
        links.set_roster([([1; 32], vec![addr(1)]), ([2; 32], vec![addr(2)])], now);
        links.due(now, |_| true);
        links.connected(&[1; 32], peer);
        links.admitted(&[1; 32]);
        links.reserved(&peer, 100);
        assert_eq!(links.reservations(), vec![100]);
        let dropped = links.set_roster([([2; 32], vec![addr(2)])], now);
        assert_eq!(dropped, vec![peer]);
        assert!(!links.contains(&[1; 32]));
        assert!(links.reservations().is_empty());
        assert_eq!(links.by_peer(&peer), None);
    }

    /// Review finding 6: a moderator chooses a mailbox's addresses, so they obey the dial
    /// policy's network rule like members' announced addresses: a private-range one only on the
    /// network where the node learnt it; loopback and public ones anywhere.
    #[test]
    fn mailbox_addresses_obey_the_dial_policy() {
        use crate::dial::{DialPolicy, Networks};
        let now = Instant::now();
        let lan: Multiaddr = "/ip4/192.168.1.5/tcp/4001".parse().unwrap();
        let public = addr(7);
        let home = Networks::from_listen(&["/ip4/192.168.1.57/tcp/1".parse().unwrap()]);
        let hotel = Networks::from_listen(&["/ip4/10.9.0.4/tcp/1".parse().unwrap()]);
        let mut policy = DialPolicy::new();
        let mut links = MailboxLinks::new();
        links.set_roster(
            [
                ([1; 32], vec![lan.clone()]),
                ([2; 32], vec![lan.clone(), public.clone()]),
            ],
            now,
        );
        policy.set_roster_mailboxes([&lan, &public], Some(&home));
        // At home: both mailboxes, the first address of each.
        let due = links.due(now, |a| policy.may_dial_mailbox(a, &home));
        assert_eq!(due, vec![([1; 32], lan.clone()), ([2; 32], lan.clone())]);
        links.failed(&[1; 32], now);
        links.failed(&[2; 32], now);
        // Round robin at home: the second address next.
        let later = now + MAILBOX_MAX_BACKOFF;
        let due = links.due(later, |a| policy.may_dial_mailbox(a, &home));
        assert_eq!(due, vec![([1; 32], lan.clone()), ([2; 32], public.clone())]);
        links.failed(&[1; 32], later);
        links.failed(&[2; 32], later);
        // In the hotel: the LAN address is someone else's; it is skipped, and the mailbox with
        // no other address is not dialled at all.
        let later = later + MAILBOX_MAX_BACKOFF;
        let due = links.due(later, |a| policy.may_dial_mailbox(a, &hotel));
        assert_eq!(due, vec![([2; 32], public.clone())]);
        assert_eq!(links.get(&[1; 32]).unwrap().state, LinkState::Idle);
        // An address the roster does not name is never dialled, and one learnt before the
        // node knew its networks is private to nobody.
        assert!(!policy.may_dial_mailbox(&addr(9), &home));
        let mut fresh = DialPolicy::new();
        fresh.set_roster_mailboxes([&lan, &public], None);
        assert!(!fresh.may_dial_mailbox(&lan, &home));
        assert!(fresh.may_dial_mailbox(&public, &home));
        fresh.set_roster_mailboxes([&lan], Some(&home));
        assert!(fresh.may_dial_mailbox(&lan, &home));
        assert!(
            !fresh.may_dial_mailbox(&public, &home),
            "no longer on the roster"
        );
    }

    #[test]
    fn a_refusal_waits_longer_and_a_disconnect_forgets_the_reservation() {
        let now = Instant::now();
        let peer = PeerId::random();
        let mut links = MailboxLinks::new();
        links.set_roster([([1; 32], vec![addr(1)])], now);
        links.due(now, |_| true);
        links.connected(&[1; 32], peer);
        links.refused(&[1; 32], now);
        assert!(links
            .due(now + MAILBOX_MAX_BACKOFF / 4, |_| true)
            .is_empty());
        assert_eq!(links.views()[0].state, "refused");
        assert_eq!(links.due(now + MAILBOX_REFUSED_BACKOFF, |_| true).len(), 1);
        links.connected(&[1; 32], peer);
        links.admitted(&[1; 32]);
        links.reserved(&peer, 5);
        assert_eq!(links.disconnected(&peer, now), Some([1; 32]));
        assert!(links.reservations().is_empty());
        assert_eq!(links.views()[0].state, "unreachable");
    }
}
