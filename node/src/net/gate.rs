//! The member gate: only peers that proved membership in the hello reach the collective's
//! protocols.
//!
//! Transport keys are ephemeral, so a new connection's [`PeerId`] says nothing about who is
//! behind it. Every connection first carries only `/lookout/hello/3` (a sibling behaviour): the
//! gate wraps the collective protocols (gossipsub, sync, identify, ping) and gives them a
//! [`dummy::ConnectionHandler`] on every connection with a peer that has not proved membership,
//! so a stranger never sees a subscription (the collective's topic), an identify message
//! (listen addresses) or a sync answer. Once the hello proved the peer, the event loop calls
//! [`MemberGate::admit`]; the dialer then opens a fresh connection, which the gate hands to the
//! collective protocols.
//!
//! Before that, it limits how many inbound connections from one IP address may be in their
//! handshake at once: the swarm's overall cap on such connections would otherwise let a single
//! host that opens connections and never finishes them lock every member out.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    convert::Infallible,
    net::IpAddr,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use either::Either;
use libp2p::{
    core::{transport::PortUse, Endpoint},
    multiaddr::Protocol,
    swarm::{
        behaviour::{AddressChange, ConnectionClosed, ConnectionEstablished, ListenFailure},
        dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour,
        NotifyHandler, THandler, THandlerInEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};
use lookout_protocol::MemberId;

use super::delegate::{forward_behaviour, only_left};

/// How many transport ids one member may have proven at once: a phone that changed network
/// (its old connections not yet closed) has two; more would let one member fill the node's
/// connection slots and the gossip mesh under many ephemeral ids. The newest evicts the oldest.
pub const MAX_PEERS_PER_MEMBER: usize = 2;

/// How many members may be let in temporarily (bootstrap peers, before the roster names them).
pub const MAX_TEMPORARY_PEERS: usize = 16;

/// How long a temporary allowance lasts at most: long enough for a joining node's first sync
/// (which ends it anyway, see `docs/PROTOCOL.md`), short enough that an admission at an
/// address does not last the whole run.
pub const TEMPORARY_ALLOWANCE: Duration = Duration::from_secs(600);

/// How many inbound connections from one IP address may be in their handshake at once.
///
/// Members behind one address (a drop-in centre's Wi-Fi) rarely connect at the same instant,
/// and a refused one retries; a host holding half-open connections gets only this many of the
/// node's [`DEFAULT_MAX_PENDING_INCOMING`](super::DEFAULT_MAX_PENDING_INCOMING) slots.
pub const MAX_PENDING_INCOMING_PER_IP: usize = 4;

/// After this long a handshake the swarm never reported on no longer counts against its
/// address (the handshake timeout ends every real one much sooner).
const HANDSHAKE_FORGOTTEN_AFTER: Duration = Duration::from_secs(120);

/// How many gate events may wait for the event loop before further ones are dropped.
pub const MAX_PENDING_GATE_EVENTS: usize = 256;

/// The reason an inbound connection was refused before its handshake: too many from its address
/// are already in theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many connections from one address are still in their handshake")]
pub struct TooManyHandshakes;

/// Something the gate did that the event loop may want to log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateEvent {
    /// A proven peer's member was removed from the allowed set and its connections are being
    /// closed.
    Evicted {
        /// The peer whose connections are being closed.
        peer: PeerId,
    },
}

/// What the gate reports: its own events and those of the protocols it wraps.
#[derive(Debug)]
pub enum Gated<E> {
    /// The gate's own event.
    Gate(GateEvent),
    /// An event of a wrapped protocol (only ever about a proven member).
    Inner(E),
}

/// You called the gate wrongly (as opposed to a peer misbehaving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// [`MemberGate::allow_temporarily`] was called while the temporary list is full.
    #[error(
        "too many temporarily allowed members (at most {max}); \
         revoke one with `revoke_temporary` first"
    )]
    TooManyTemporaryPeers {
        /// The cap, [`MAX_TEMPORARY_PEERS`].
        max: usize,
    },
}

/// A [`NetworkBehaviour`] that runs `B` only on connections with peers that proved membership.
pub struct MemberGate<B> {
    /// The collective protocols.
    pub inner: B,
    allowed: HashSet<MemberId>,
    /// Members let in before the roster names them, and since when.
    temporary: HashMap<MemberId, Instant>,
    /// Transport peer → the member it proved to be.
    proven: HashMap<PeerId, MemberId>,
    /// Transport peer → the mailbox (its Ed25519 key) that proved itself in the mailbox
    /// admission and is on the roster. Its later connections carry the collective protocols
    /// too (sync, identify, AutoNAT; gossipsub is never used with it).
    mailboxes: HashMap<PeerId, [u8; 32]>,
    /// When each proven peer was admitted (a counter: larger is newer).
    admitted: HashMap<PeerId, u64>,
    admissions: u64,
    /// Every established connection per peer.
    connected: HashMap<PeerId, HashSet<ConnectionId>>,
    /// Connections that carry `B`.
    inner_connections: HashMap<PeerId, HashSet<ConnectionId>>,
    pending: VecDeque<ToSwarm<GateEvent, Infallible>>,
    /// Inbound connections in their handshake: remote IP address and start.
    handshakes: HashMap<ConnectionId, (IpAddr, Instant)>,
    waker: Option<Waker>,
}

impl<B> MemberGate<B> {
    /// A gate admitting the members in `allowed` once they prove themselves.
    pub fn new(inner: B, allowed: HashSet<MemberId>) -> Self {
        Self {
            inner,
            allowed,
            temporary: HashMap::new(),
            proven: HashMap::new(),
            mailboxes: HashMap::new(),
            admitted: HashMap::new(),
            admissions: 0,
            connected: HashMap::new(),
            inner_connections: HashMap::new(),
            pending: VecDeque::new(),
            handshakes: HashMap::new(),
            waker: None,
        }
    }

    /// Whether `member` may hold a connection (on the roster or temporarily allowed).
    pub fn is_allowed(&self, member: &MemberId) -> bool {
        self.allowed.contains(member) || self.temporary.contains_key(member)
    }

    /// Records that `peer` proved it is `member`. Returns false (and records nothing) if the
    /// member is not allowed. If the member already has [`MAX_PEERS_PER_MEMBER`] other proven
    /// transport ids, the oldest is forgotten and its connections closed.
    pub fn admit(&mut self, peer: PeerId, member: MemberId) -> bool {
        if !self.is_allowed(&member) {
            return false;
        }
        loop {
            let others: Vec<(u64, PeerId)> = self
                .proven
                .iter()
                .filter(|(p, m)| **m == member && **p != peer)
                .map(|(p, _)| (self.admitted.get(p).copied().unwrap_or(0), *p))
                .collect();
            if others.len() < MAX_PEERS_PER_MEMBER {
                break;
            }
            if let Some((_, oldest)) = others.into_iter().min() {
                self.disconnect(oldest);
            }
        }
        self.admissions += 1;
        self.proven.insert(peer, member);
        self.admitted.insert(peer, self.admissions);
        true
    }

    /// Records that `peer` proved it is the mailbox `mailbox` (the caller checked that the
    /// roster names it): its connections from now on carry the collective protocols.
    pub fn admit_mailbox(&mut self, peer: PeerId, mailbox: [u8; 32]) {
        self.mailboxes.insert(peer, mailbox);
    }

    /// The mailbox `peer` proved to be, if it did.
    pub fn mailbox_of(&self, peer: &PeerId) -> Option<[u8; 32]> {
        self.mailboxes.get(peer).copied()
    }

    /// Forgets every transport id of `mailbox` (removed from the roster) and closes their
    /// connections. Returns the peers evicted.
    pub fn forget_mailbox(&mut self, mailbox: &[u8; 32]) -> Vec<PeerId> {
        let peers: Vec<PeerId> = self
            .mailboxes
            .iter()
            .filter(|(_, m)| *m == mailbox)
            .map(|(p, _)| *p)
            .collect();
        for peer in &peers {
            self.mailboxes.remove(peer);
            self.evict(*peer);
        }
        peers
    }

    /// The proven transport ids of `member`.
    pub fn peers_of(&self, member: &MemberId) -> Vec<PeerId> {
        self.proven
            .iter()
            .filter(|(_, m)| *m == member)
            .map(|(p, _)| *p)
            .collect()
    }

    /// The member `peer` proved to be, if it did.
    pub fn member_of(&self, peer: &PeerId) -> Option<MemberId> {
        self.proven.get(peer).copied()
    }

    /// Proven peers with a connection that carries the collective protocols, and their members.
    pub fn members_connected(&self) -> impl Iterator<Item = (PeerId, MemberId)> + '_ {
        self.inner_connections
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .filter_map(|(p, _)| Some((*p, *self.proven.get(p)?)))
    }

    /// Whether `peer` has a connection carrying the collective protocols.
    pub fn has_member_connection(&self, peer: &PeerId) -> bool {
        self.inner_connections
            .get(peer)
            .is_some_and(|c| !c.is_empty())
    }

    /// The proven peers (connected or about to reconnect) and their members.
    pub fn proven(&self) -> impl Iterator<Item = (&PeerId, &MemberId)> {
        self.proven.iter()
    }

    /// Replaces the allowed set (the roster changed). Proven peers whose member is no longer
    /// allowed are forgotten and their connections closed, except peers in `keep` (removed
    /// members still being told of their removal). Returns the peers evicted.
    pub fn set_allowed(
        &mut self,
        allowed: HashSet<MemberId>,
        keep: &HashSet<PeerId>,
    ) -> Vec<PeerId> {
        self.allowed = allowed;
        self.evict_disallowed(keep)
    }

    fn evict_disallowed(&mut self, keep: &HashSet<PeerId>) -> Vec<PeerId> {
        let forbidden: Vec<PeerId> = self
            .proven
            .iter()
            .filter(|(peer, member)| !keep.contains(peer) && !self.is_allowed(member))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &forbidden {
            self.proven.remove(peer);
            self.admitted.remove(peer);
            self.evict(*peer);
        }
        forbidden
    }

    /// Lets `member` in although it is not (yet) on the roster: the member behind a bootstrap
    /// address from an invite, before the joining node has the roster.
    pub fn allow_temporarily(&mut self, member: MemberId) -> Result<(), GateError> {
        if !self.temporary.contains_key(&member) && self.temporary.len() >= MAX_TEMPORARY_PEERS {
            return Err(GateError::TooManyTemporaryPeers {
                max: MAX_TEMPORARY_PEERS,
            });
        }
        self.temporary.entry(member).or_insert_with(Instant::now);
        Ok(())
    }

    /// Ends every temporary allowance older than `max_age` (or all, with a zero `max_age`),
    /// closing the connections of members the roster does not name. Returns the peers evicted.
    pub fn expire_temporary(&mut self, now: Instant, max_age: Duration) -> Vec<PeerId> {
        let before = self.temporary.len();
        self.temporary
            .retain(|_, since| !max_age.is_zero() && now.duration_since(*since) < max_age);
        if self.temporary.len() == before {
            return Vec::new();
        }
        self.evict_disallowed(&HashSet::new())
    }

    /// Whether any member is let in temporarily.
    pub fn has_temporary(&self) -> bool {
        !self.temporary.is_empty()
    }

    /// Withdraws a temporary allowance, closing connections of its peers if the member is not
    /// on the roster. Returns whether `member` had one.
    pub fn revoke_temporary(&mut self, member: &MemberId) -> bool {
        let had = self.temporary.remove(member).is_some();
        if had {
            self.evict_disallowed(&HashSet::new());
        }
        had
    }

    /// Closes every connection of `peer` and forgets its proof.
    pub fn disconnect(&mut self, peer: PeerId) {
        self.proven.remove(&peer);
        self.admitted.remove(&peer);
        self.evict(peer);
    }

    /// Admit an inbound connection into its handshake unless its address has too many there.
    fn start_handshake(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
        now: Instant,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = remote.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            // An IPv6 host usually holds a whole /64: count the /64.
            Protocol::Ip6(ip) => {
                let mut octets = ip.octets();
                octets[8..].fill(0);
                Some(IpAddr::V6(octets.into()))
            }
            _ => None,
        }) else {
            return Ok(());
        };
        self.handshakes
            .retain(|_, (_, started)| now.duration_since(*started) < HANDSHAKE_FORGOTTEN_AFTER);
        let from_ip = self.handshakes.values().filter(|(i, _)| *i == ip).count();
        if from_ip >= MAX_PENDING_INCOMING_PER_IP {
            // Not logged: the address is a member's or a stranger's, and logs carry neither.
            return Err(ConnectionDenied::new(TooManyHandshakes));
        }
        self.handshakes.insert(connection, (ip, now));
        Ok(())
    }

    /// The connection a wrapped protocol's `NotifyHandler` may go to: one that carries the
    /// protocols. `One(c)` is checked by connection alone, whatever `peer_id` says: the swarm
    /// routes it by connection id, and the relay server addresses the destination's connection
    /// under the source's peer id when it forwards a circuit.
    fn inner_target(&self, peer: &PeerId, handler: NotifyHandler) -> Option<ConnectionId> {
        match handler {
            NotifyHandler::One(c) => self
                .inner_connections
                .values()
                .any(|s| s.contains(&c))
                .then_some(c),
            NotifyHandler::Any => self
                .inner_connections
                .get(peer)
                .and_then(|s| s.iter().next().copied()),
        }
    }

    fn carries_inner(&self, peer: &PeerId) -> bool {
        self.proven.get(peer).is_some_and(|m| self.is_allowed(m))
            || self.mailboxes.contains_key(peer)
    }

    fn evict(&mut self, peer: PeerId) {
        if !self.connected.contains_key(&peer) {
            return;
        }
        tracing::debug!(peer = %short(&peer), "closing connections of a peer no longer allowed");
        // Closing must not be dropped for lack of room: bypass the event cap.
        self.pending.push_back(ToSwarm::CloseConnection {
            peer_id: peer,
            connection: CloseConnection::All,
        });
        if self.pending.len() < MAX_PENDING_GATE_EVENTS {
            self.pending
                .push_back(ToSwarm::GenerateEvent(GateEvent::Evicted { peer }));
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// A short prefix of a peer id, for logs: enough to follow one connection, too little to
/// recognise a peer across logs of different nodes.
pub fn short(peer: &PeerId) -> String {
    let s = peer.to_base58();
    let tail = s.len().saturating_sub(6);
    s.get(tail..).unwrap_or_default().to_owned()
}

impl<B: NetworkBehaviour> NetworkBehaviour for MemberGate<B> {
    type ConnectionHandler = Either<THandler<B>, dummy::ConnectionHandler>;
    type ToSwarm = Gated<B::ToSwarm>;

    forward_behaviour!(inner:
        handle_pending_outbound_connection,
        on_connection_handler_event(only_left),
    );

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.start_handshake(connection_id, remote_addr, Instant::now())?;
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handshakes.remove(&connection_id);
        if !self.carries_inner(&peer) {
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        let handler = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        self.inner_connections
            .entry(peer)
            .or_default()
            .insert(connection_id);
        Ok(Either::Left(handler))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.carries_inner(&peer) {
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        let handler = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        self.inner_connections
            .entry(peer)
            .or_default()
            .insert(connection_id);
        Ok(Either::Left(handler))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connected
                    .entry(e.peer_id)
                    .or_default()
                    .insert(e.connection_id);
                let inner = self.inner_connections.get(&e.peer_id);
                if inner.is_some_and(|c| c.contains(&e.connection_id)) {
                    let other_established = inner.map_or(0, |c| c.len().saturating_sub(1));
                    self.inner.on_swarm_event(FromSwarm::ConnectionEstablished(
                        ConnectionEstablished {
                            other_established,
                            ..e
                        },
                    ));
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(connections) = self.connected.get_mut(&e.peer_id) {
                    connections.remove(&e.connection_id);
                    if connections.is_empty() {
                        self.connected.remove(&e.peer_id);
                        // A transport peer that left must prove itself again.
                        self.proven.remove(&e.peer_id);
                        self.mailboxes.remove(&e.peer_id);
                        self.admitted.remove(&e.peer_id);
                    }
                }
                let carried = self
                    .inner_connections
                    .get_mut(&e.peer_id)
                    .is_some_and(|c| c.remove(&e.connection_id));
                if carried {
                    let remaining_established = self
                        .inner_connections
                        .get(&e.peer_id)
                        .map_or(0, HashSet::len);
                    if remaining_established == 0 {
                        self.inner_connections.remove(&e.peer_id);
                    }
                    self.inner
                        .on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                            remaining_established,
                            ..e
                        }));
                }
            }
            FromSwarm::AddressChange(e) => {
                if self
                    .inner_connections
                    .get(&e.peer_id)
                    .is_some_and(|c| c.contains(&e.connection_id))
                {
                    self.inner
                        .on_swarm_event(FromSwarm::AddressChange(AddressChange { ..e }));
                }
            }
            FromSwarm::ListenFailure(e) => {
                self.handshakes.remove(&e.connection_id);
                self.inner
                    .on_swarm_event(FromSwarm::ListenFailure(ListenFailure { ..e }));
            }
            other => self.inner.on_swarm_event(other),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(event) = self.pending.pop_front() {
            return Poll::Ready(event.map_out(Gated::Gate).map_in(|never| match never {}));
        }
        loop {
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::NotifyHandler {
                    peer_id,
                    handler,
                    event,
                }) => {
                    let target = self.inner_target(&peer_id, handler);
                    // A protocol addressing a connection it does not run on: drop it.
                    if let Some(c) = target {
                        return Poll::Ready(ToSwarm::NotifyHandler {
                            peer_id,
                            handler: NotifyHandler::One(c),
                            event: Either::Left(event),
                        });
                    }
                }
                Poll::Ready(other) => {
                    return Poll::Ready(other.map_out(Gated::Inner).map_in(Either::Left));
                }
                Poll::Pending => break,
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8) -> MemberId {
        MemberId([n; 32])
    }

    #[test]
    fn set_allowed_evicts_proven_peers_of_removed_members() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1), member(2)].into());
        assert!(gate.admit(a, member(1)));
        assert!(gate.admit(b, member(2)));
        gate.connected.entry(a).or_default();
        gate.connected.entry(b).or_default();

        let evicted = gate.set_allowed([member(1)].into(), &HashSet::new());

        assert_eq!(evicted, vec![b]);
        assert_eq!(gate.member_of(&b), None);
        assert!(gate.pending.iter().any(|e| matches!(
            e,
            ToSwarm::CloseConnection { peer_id, connection: CloseConnection::All } if *peer_id == b
        )));
        // A removed member still being told of its removal is kept.
        assert!(gate.admit(a, member(1)));
        assert!(gate.set_allowed(HashSet::new(), &[a].into()).is_empty());
    }

    #[test]
    fn only_allowed_members_are_admitted() {
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1)].into());
        let stranger = PeerId::random();
        assert!(!gate.admit(stranger, member(9)));
        assert!(!gate.carries_inner(&stranger));
        assert!(gate.admit(stranger, member(1)));
        assert!(gate.carries_inner(&stranger));
    }

    #[test]
    fn a_mailbox_carries_the_protocols_only_once_admitted_and_until_removed() {
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1)].into());
        let (mailbox, other) = (PeerId::random(), PeerId::random());
        // A relay or mailbox that did not prove itself is a stranger like any other.
        assert!(!gate.carries_inner(&mailbox));
        gate.admit_mailbox(mailbox, [7; 32]);
        gate.connected.entry(mailbox).or_default();
        assert!(gate.carries_inner(&mailbox));
        assert_eq!(gate.mailbox_of(&mailbox), Some([7; 32]));
        assert!(!gate.carries_inner(&other));
        // A mailbox is not a member: never counted or synced as one.
        assert_eq!(gate.member_of(&mailbox), None);
        assert_eq!(gate.members_connected().count(), 0);
        // Removed from the roster: forgotten and its connections closed.
        assert_eq!(gate.forget_mailbox(&[7; 32]), vec![mailbox]);
        assert!(!gate.carries_inner(&mailbox));
        assert!(gate.pending.iter().any(|e| matches!(
            e,
            ToSwarm::CloseConnection { peer_id, .. } if *peer_id == mailbox
        )));
    }

    /// The relay server forwards a circuit by notifying the destination's connection under the
    /// source's peer id; the gate must pass that on (the swarm routes by connection), and still
    /// drop anything meant for a connection that does not carry the protocols.
    #[test]
    fn a_handler_event_goes_to_any_carrying_connection_whatever_peer_it_names() {
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1), member(2)].into());
        let (src, dst, stranger) = (PeerId::random(), PeerId::random(), PeerId::random());
        gate.admit(src, member(1));
        gate.admit(dst, member(2));
        let (c_src, c_dst, c_stranger) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        gate.inner_connections.entry(src).or_default().insert(c_src);
        gate.inner_connections.entry(dst).or_default().insert(c_dst);
        assert_eq!(
            gate.inner_target(&src, NotifyHandler::One(c_dst)),
            Some(c_dst)
        );
        assert_eq!(gate.inner_target(&src, NotifyHandler::Any), Some(c_src));
        // A connection without the protocols (a stranger's) never gets their events.
        assert_eq!(
            gate.inner_target(&src, NotifyHandler::One(c_stranger)),
            None
        );
        assert_eq!(gate.inner_target(&stranger, NotifyHandler::Any), None);
    }

    #[test]
    fn handshakes_are_capped_per_address() {
        let mut gate = MemberGate::new(dummy::Behaviour, HashSet::new());
        let now = Instant::now();
        let a: Multiaddr = "/ip4/192.0.2.1/tcp/4001"
            .parse()
            .unwrap_or_else(|_| Multiaddr::empty());
        let b: Multiaddr = "/ip4/192.0.2.2/tcp/4001"
            .parse()
            .unwrap_or_else(|_| Multiaddr::empty());
        let ids: Vec<ConnectionId> = (0..=MAX_PENDING_INCOMING_PER_IP)
            .map(ConnectionId::new_unchecked)
            .collect();
        for id in &ids[..MAX_PENDING_INCOMING_PER_IP] {
            assert!(gate.start_handshake(*id, &a, now).is_ok());
        }
        let refused = gate.start_handshake(ids[MAX_PENDING_INCOMING_PER_IP], &a, now);
        assert!(refused.is_err_and(|c| c.downcast::<TooManyHandshakes>().is_ok()));
        assert!(gate
            .start_handshake(ConnectionId::new_unchecked(100), &b, now)
            .is_ok());
        gate.handshakes.remove(&ids[0]);
        assert!(gate.start_handshake(ids[0], &a, now).is_ok());
        let later = now + HANDSHAKE_FORGOTTEN_AFTER;
        assert!(gate
            .start_handshake(ids[MAX_PENDING_INCOMING_PER_IP], &a, later)
            .is_ok());
    }

    #[test]
    fn temporary_allowance_is_capped_and_revocable() {
        let mut gate = MemberGate::new(dummy::Behaviour, HashSet::new());
        for n in 0..MAX_TEMPORARY_PEERS {
            assert!(gate.allow_temporarily(member(n as u8 + 10)).is_ok());
        }
        assert!(gate.allow_temporarily(member(200)).is_err());
        let bootstrap = member(10);
        assert!(gate.is_allowed(&bootstrap));
        assert!(gate.revoke_temporary(&bootstrap));
        assert!(!gate.is_allowed(&bootstrap));
    }

    #[test]
    fn a_member_holds_at_most_two_transport_ids() {
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1), member(2)].into());
        let ids: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        for id in &ids {
            gate.connected.entry(*id).or_default();
            assert!(gate.admit(*id, member(1)));
        }
        let other = PeerId::random();
        assert!(gate.admit(other, member(2)));
        // The two newest stay; every older one was forgotten and its connections closed.
        let mut kept = gate.peers_of(&member(1));
        kept.sort();
        let mut newest = ids[3..].to_vec();
        newest.sort();
        assert_eq!(kept, newest);
        for old in &ids[..3] {
            assert_eq!(gate.member_of(old), None);
            assert!(gate.pending.iter().any(|e| matches!(
                e,
                ToSwarm::CloseConnection { peer_id, .. } if peer_id == old
            )));
        }
        assert_eq!(gate.member_of(&other), Some(member(2)));
        // Proving again under a kept id evicts nobody.
        assert!(gate.admit(ids[4], member(1)));
        assert_eq!(gate.peers_of(&member(1)).len(), MAX_PEERS_PER_MEMBER);
    }

    #[test]
    fn temporary_allowances_expire_and_evict() {
        let mut gate = MemberGate::new(dummy::Behaviour, [member(1)].into());
        let (a, b) = (PeerId::random(), PeerId::random());
        gate.allow_temporarily(member(9)).unwrap_or_default();
        assert!(gate.admit(a, member(9)));
        assert!(gate.admit(b, member(1)));
        gate.connected.entry(a).or_default();
        let now = Instant::now();
        assert!(gate.expire_temporary(now, TEMPORARY_ALLOWANCE).is_empty());
        assert_eq!(
            gate.expire_temporary(now + TEMPORARY_ALLOWANCE, TEMPORARY_ALLOWANCE),
            vec![a]
        );
        assert!(!gate.is_allowed(&member(9)));
        assert_eq!(gate.member_of(&b), Some(member(1)));
        // A zero age ends them all (the roster names this member).
        gate.allow_temporarily(member(8)).unwrap_or_default();
        gate.expire_temporary(now, Duration::ZERO);
        assert!(!gate.has_temporary());
    }
}
