//! The member gate: only roster members get a connection past the Noise handshake.
//!
//! Noise authenticates the remote's Ed25519 key, so by the time the swarm asks a behaviour for a
//! connection handler the remote's [`PeerId`] is the member key it proved it holds. The gate
//! answers that question first among the composed behaviours and denies every peer that is not
//! on the roster, so a stranger never reaches gossipsub, sync, identify or ping.
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

use libp2p::{
    core::{transport::PortUse, Endpoint},
    multiaddr::Protocol,
    swarm::{
        behaviour::{ConnectionClosed, ConnectionEstablished, ListenFailure},
        dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour,
        THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// How many peers may be let in temporarily (bootstrap peers named in invites) at once.
pub const MAX_TEMPORARY_PEERS: usize = 16;

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
///
/// Dropping is safe: the events are informational and [`MemberGate::denied_count`] still counts.
pub const MAX_PENDING_GATE_EVENTS: usize = 256;

/// The reason a connection was denied, carried inside [`ConnectionDenied`].
///
/// The swarm reports it in `SwarmEvent::IncomingConnectionError` / `OutgoingConnectionError`
/// as `ListenError::Denied { cause }` / `DialError::Denied { cause }`; use
/// `cause.downcast_ref::<NotAMember>()` to tell it apart from a connection-limit denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} is not a member of this collective")]
pub struct NotAMember {
    /// The authenticated identity of the remote that was turned away.
    pub peer: PeerId,
}

/// The reason an inbound connection was refused before its handshake: too many from its address
/// are already in theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many connections from one address are still in their handshake")]
pub struct TooManyHandshakes;

/// Something the gate did that the event loop may want to log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateEvent {
    /// A connection with a peer outside the allowed set was refused after the handshake.
    Denied {
        /// The authenticated identity of the refused peer.
        peer: PeerId,
        /// Whether we dialed ([`Endpoint::Dialer`]) or they did ([`Endpoint::Listener`]).
        endpoint: Endpoint,
    },
    /// A connected peer was removed from the allowed set and its connections are being closed.
    Evicted {
        /// The peer whose connections are being closed.
        peer: PeerId,
    },
}

/// You called the gate wrongly (as opposed to a peer misbehaving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// [`MemberGate::allow_temporarily`] was called while the temporary list is full.
    #[error(
        "too many temporarily allowed peers (at most {max}); \
         revoke one with `revoke_temporary` first"
    )]
    TooManyTemporaryPeers {
        /// The cap, [`MAX_TEMPORARY_PEERS`].
        max: usize,
    },
}

/// A [`NetworkBehaviour`] that admits only peers in an allowed set.
///
/// It runs no protocol (its handler is [`dummy::ConnectionHandler`]); it only answers the
/// swarm's "may this connection exist?" callbacks and closes connections of peers that
/// [`set_allowed`](Self::set_allowed) removed. A gate with an empty allowed set admits nobody.
#[derive(Debug, Default)]
pub struct MemberGate {
    allowed: HashSet<PeerId>,
    temporary: HashSet<PeerId>,
    connected: HashMap<PeerId, HashSet<ConnectionId>>,
    pending: VecDeque<ToSwarm<GateEvent, Infallible>>,
    /// Inbound connections in their handshake: remote IP address and start.
    handshakes: HashMap<ConnectionId, (IpAddr, Instant)>,
    denied: u64,
    waker: Option<Waker>,
}

impl MemberGate {
    /// A gate admitting exactly `allowed`.
    pub fn new(allowed: HashSet<PeerId>) -> Self {
        Self {
            allowed,
            ..Self::default()
        }
    }

    /// Replaces the allowed set (the roster changed).
    ///
    /// Returns the currently connected peers that are no longer allowed; the gate asks the swarm
    /// to close all their connections on its next poll. Temporarily allowed peers stay allowed.
    pub fn set_allowed(&mut self, allowed: HashSet<PeerId>) -> Vec<PeerId> {
        self.allowed = allowed;
        let forbidden: Vec<PeerId> = self
            .connected
            .keys()
            .filter(|peer| !self.is_allowed(peer))
            .copied()
            .collect();
        for peer in &forbidden {
            self.evict(*peer);
        }
        forbidden
    }

    /// Lets `peer` in although it is not (yet) on the roster: the bootstrap peer named in an
    /// invite, before the joining node has the roster.
    ///
    /// The allowance lasts until [`revoke_temporary`](Self::revoke_temporary) or
    /// [`clear_temporary`](Self::clear_temporary).
    pub fn allow_temporarily(&mut self, peer: PeerId) -> Result<(), GateError> {
        if !self.temporary.contains(&peer) && self.temporary.len() >= MAX_TEMPORARY_PEERS {
            return Err(GateError::TooManyTemporaryPeers {
                max: MAX_TEMPORARY_PEERS,
            });
        }
        self.temporary.insert(peer);
        Ok(())
    }

    /// Withdraws a temporary allowance. If `peer` is connected and not on the roster, its
    /// connections are closed. Returns whether `peer` had a temporary allowance.
    pub fn revoke_temporary(&mut self, peer: &PeerId) -> bool {
        let had = self.temporary.remove(peer);
        if had && self.connected.contains_key(peer) && !self.is_allowed(peer) {
            self.evict(*peer);
        }
        had
    }

    /// Withdraws every temporary allowance, closing connections of peers not on the roster.
    /// Returns the peers whose connections are being closed.
    pub fn clear_temporary(&mut self) -> Vec<PeerId> {
        self.temporary.clear();
        let allowed = std::mem::take(&mut self.allowed);
        self.set_allowed(allowed)
    }

    /// Whether `peer` may hold a connection (on the roster or temporarily allowed).
    pub fn is_allowed(&self, peer: &PeerId) -> bool {
        self.allowed.contains(peer) || self.temporary.contains(peer)
    }

    /// How many connections the gate has refused since it was created.
    pub fn denied_count(&self) -> u64 {
        self.denied
    }

    /// The peers with at least one established connection.
    pub fn connected_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.connected.keys()
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
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        }) else {
            return Ok(());
        };
        self.handshakes
            .retain(|_, (_, started)| now.duration_since(*started) < HANDSHAKE_FORGOTTEN_AFTER);
        let from_ip = self.handshakes.values().filter(|(i, _)| *i == ip).count();
        if from_ip >= MAX_PENDING_INCOMING_PER_IP {
            // Not counted in `denied` (no peer is known yet) and not logged: the address is
            // a member's or a stranger's, and logs must not carry either.
            return Err(ConnectionDenied::new(TooManyHandshakes));
        }
        self.handshakes.insert(connection, (ip, now));
        Ok(())
    }

    fn check(&mut self, peer: PeerId, endpoint: Endpoint) -> Result<(), ConnectionDenied> {
        if self.is_allowed(&peer) {
            return Ok(());
        }
        self.denied = self.denied.saturating_add(1);
        tracing::debug!(%peer, ?endpoint, "refused a connection from a non-member");
        self.push(ToSwarm::GenerateEvent(GateEvent::Denied { peer, endpoint }));
        Err(ConnectionDenied::new(NotAMember { peer }))
    }

    fn evict(&mut self, peer: PeerId) {
        tracing::info!(%peer, "closing connections of a peer no longer allowed");
        // Closing must not be dropped for lack of room: bypass the event cap.
        self.pending.push_back(ToSwarm::CloseConnection {
            peer_id: peer,
            connection: CloseConnection::All,
        });
        self.push(ToSwarm::GenerateEvent(GateEvent::Evicted { peer }));
        self.wake();
    }

    fn push(&mut self, event: ToSwarm<GateEvent, Infallible>) {
        if self.pending.len() < MAX_PENDING_GATE_EVENTS {
            self.pending.push_back(event);
            self.wake();
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl NetworkBehaviour for MemberGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = GateEvent;

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        // Refuse early to dial a known non-member; unknown identities are checked once Noise
        // has authenticated them.
        if let Some(peer) = maybe_peer {
            self.check(peer, Endpoint::Dialer)?;
        }
        Ok(Vec::new())
    }

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.start_handshake(connection_id, remote_addr, Instant::now())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handshakes.remove(&connection_id);
        self.check(peer, Endpoint::Listener)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer, Endpoint::Dialer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                self.connected
                    .entry(peer_id)
                    .or_default()
                    .insert(connection_id);
                // Defensive: the allowed set cannot change between the handler callback and
                // this event today, but close rather than trust that.
                if !self.is_allowed(&peer_id) {
                    self.evict(peer_id);
                }
            }
            // A handshake that failed, timed out or was refused (by the gate or a later
            // behaviour) no longer counts against its address.
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.handshakes.remove(&connection_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(connections) = self.connected.get_mut(&peer_id) {
                    connections.remove(&connection_id);
                    if connections.is_empty() {
                        self.connected.remove(&peer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<GateEvent, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_allowed_reports_and_closes_connected_non_members() {
        let a = PeerId::random();
        let b = PeerId::random();
        let mut gate = MemberGate::new([a, b].into_iter().collect());
        gate.connected.entry(a).or_default();
        gate.connected.entry(b).or_default();

        let forbidden = gate.set_allowed([a].into_iter().collect());

        assert_eq!(forbidden, vec![b]);
        assert!(gate.pending.iter().any(|e| matches!(
            e,
            ToSwarm::CloseConnection { peer_id, connection: CloseConnection::All } if *peer_id == b
        )));
    }

    #[test]
    fn empty_gate_admits_nobody_and_counts() {
        let mut gate = MemberGate::default();
        let stranger = PeerId::random();
        let denied = gate.check(stranger, Endpoint::Listener);
        let cause = denied.err().and_then(|c| c.downcast::<NotAMember>().ok());
        assert_eq!(cause, Some(NotAMember { peer: stranger }));
        assert_eq!(gate.denied_count(), 1);
    }

    #[test]
    fn handshakes_are_capped_per_address() {
        let mut gate = MemberGate::new([PeerId::random()].into_iter().collect());
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
        // A finished handshake frees its slot; a forgotten one frees all.
        gate.handshakes.remove(&ids[0]);
        assert!(gate.start_handshake(ids[0], &a, now).is_ok());
        let later = now + HANDSHAKE_FORGOTTEN_AFTER;
        assert!(gate
            .start_handshake(ids[MAX_PENDING_INCOMING_PER_IP], &a, later)
            .is_ok());
    }

    #[test]
    fn temporary_allowance_is_capped_and_revocable() {
        let mut gate = MemberGate::default();
        for _ in 0..MAX_TEMPORARY_PEERS {
            assert!(gate.allow_temporarily(PeerId::random()).is_ok());
        }
        assert!(gate.allow_temporarily(PeerId::random()).is_err());
        gate.clear_temporary();
        let bootstrap = PeerId::random();
        assert!(gate.allow_temporarily(bootstrap).is_ok());
        assert!(gate.is_allowed(&bootstrap));
        assert!(gate.revoke_temporary(&bootstrap));
        assert!(!gate.is_allowed(&bootstrap));
    }
}
