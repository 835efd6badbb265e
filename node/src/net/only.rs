//! Protocols that run only on the connections that need them.
//!
//! libp2p polls every handler of a connection at each wake-up of its task, and after each poll
//! re-reads every handler's protocol list: a handler costs CPU on every message of every
//! connection, used or not. The mailbox admission, the relay client and AutoNAT are only ever
//! used with mailboxes, so [`OnlyOn`] gives them a [`dummy::ConnectionHandler`] on every other
//! connection (member to member, where alerts travel) and hides those connections from them,
//! as the member gate does for the collective's protocols.
//!
//! A connection carries the wrapped protocol if it is one the event loop announced before
//! dialling it ([`OnlyOn::expect_connection`]) or an outbound one to a chosen address
//! ([`OnlyOn::select_addresses`]: the roster's mailbox addresses, for the admission), or if its peer was selected ([`OnlyOn::select_peer`]: an
//! admitted mailbox, for the relay client and AutoNAT), or if the wrapped protocol dialled it
//! itself (the relay client dialling its relay). The choice is made once, when the
//! connection is established; a selected peer is forgotten when its last connection closes,
//! like the gate forgets a proof.

use std::{
    collections::{HashMap, HashSet},
    task::{Context, Poll},
};

use either::Either;
use libp2p::{
    core::{transport::PortUse, Endpoint},
    multiaddr::Protocol,
    swarm::{
        behaviour::{AddressChange, ConnectionClosed, ConnectionEstablished},
        dummy, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, NetworkBehaviour,
        NotifyHandler, THandler, THandlerInEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

use super::delegate::{forward_behaviour, only_left};

/// Most connections announced with [`OnlyOn::expect_connection`] and not yet established or
/// failed; the oldest is forgotten beyond it (a dial the swarm never reported on).
pub const MAX_EXPECTED_CONNECTIONS: usize = 64;

/// A [`NetworkBehaviour`] that runs `B` only on the connections chosen for it.
pub struct OnlyOn<B> {
    /// The wrapped protocol.
    pub inner: B,
    /// Peers whose connections established from now on carry `B`.
    peers: HashSet<PeerId>,
    /// Outbound connections announced before their dial, in announcement order.
    expected: Vec<ConnectionId>,
    /// Addresses (without `/p2p/…`) whose outbound connections carry `B`.
    addresses: HashSet<Multiaddr>,
    /// Connections that carry `B`, per peer.
    carrying: HashMap<PeerId, HashSet<ConnectionId>>,
}

impl<B> OnlyOn<B> {
    /// `inner`, on no connection until one is chosen.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            peers: HashSet::new(),
            expected: Vec::new(),
            addresses: HashSet::new(),
            carrying: HashMap::new(),
        }
    }

    /// Connections with `peer` established from now on carry the protocol (until its last
    /// connection closes or [`OnlyOn::forget_peer`]). Connections already open keep what they
    /// have.
    pub fn select_peer(&mut self, peer: PeerId) {
        self.peers.insert(peer);
    }

    /// Connections with `peer` established from now on no longer carry the protocol.
    pub fn forget_peer(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// The outbound connection `connection` (an id from `DialOpts::connection_id`, announced
    /// before the dial) carries the protocol, whoever answers.
    pub fn expect_connection(&mut self, connection: ConnectionId) {
        if self.expected.len() >= MAX_EXPECTED_CONNECTIONS {
            self.expected.remove(0);
        }
        self.expected.push(connection);
    }

    /// Outbound connections established from now on to one of `addresses` (compared without
    /// their `/p2p/…` part) carry the protocol; replaces the earlier set.
    pub fn select_addresses(&mut self, addresses: impl IntoIterator<Item = Multiaddr>) {
        self.addresses = addresses.into_iter().map(|a| without_peer(&a)).collect();
    }

    /// Whether `peer` has a connection carrying the protocol.
    pub fn carries(&self, peer: &PeerId) -> bool {
        self.carrying.get(peer).is_some_and(|c| !c.is_empty())
    }

    fn chosen(&mut self, connection: ConnectionId, peer: &PeerId) -> bool {
        let expected = self.expected.iter().position(|c| *c == connection);
        if let Some(i) = expected {
            self.expected.remove(i);
        }
        expected.is_some() || self.peers.contains(peer)
    }

    fn chosen_address(&self, addr: &Multiaddr) -> bool {
        !self.addresses.is_empty() && self.addresses.contains(&without_peer(addr))
    }

    fn is_carrying(&self, peer: &PeerId, connection: &ConnectionId) -> bool {
        self.carrying
            .get(peer)
            .is_some_and(|c| c.contains(connection))
    }

    /// The connection a `NotifyHandler` of `B` may go to: one that carries `B`.
    fn target(&self, peer: &PeerId, handler: NotifyHandler) -> Option<ConnectionId> {
        match handler {
            NotifyHandler::One(c) => self.carrying.values().any(|s| s.contains(&c)).then_some(c),
            NotifyHandler::Any => self
                .carrying
                .get(peer)
                .and_then(|s| s.iter().next().copied()),
        }
    }
}

/// `addr` without its `/p2p/…` components.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

impl<B: NetworkBehaviour> NetworkBehaviour for OnlyOn<B> {
    type ConnectionHandler = Either<THandler<B>, dummy::ConnectionHandler>;
    type ToSwarm = B::ToSwarm;

    forward_behaviour!(inner:
        handle_pending_inbound_connection,
        handle_pending_outbound_connection,
        on_connection_handler_event(only_left),
    );

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.chosen(connection_id, &peer) {
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        let handler = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        self.carrying.entry(peer).or_default().insert(connection_id);
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
        // `chosen` first: it also consumes an announced connection.
        if !self.chosen(connection_id, &peer) && !self.chosen_address(addr) {
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        let handler = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        self.carrying.entry(peer).or_default().insert(connection_id);
        Ok(Either::Left(handler))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                if self.is_carrying(&e.peer_id, &e.connection_id) {
                    let other_established = self
                        .carrying
                        .get(&e.peer_id)
                        .map_or(0, |c| c.len().saturating_sub(1));
                    self.inner.on_swarm_event(FromSwarm::ConnectionEstablished(
                        ConnectionEstablished {
                            other_established,
                            ..e
                        },
                    ));
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                if e.remaining_established == 0 {
                    // The peer left: a selection, like a proof, does not outlive it.
                    self.peers.remove(&e.peer_id);
                }
                let carried = self
                    .carrying
                    .get_mut(&e.peer_id)
                    .is_some_and(|c| c.remove(&e.connection_id));
                if carried {
                    let remaining_established =
                        self.carrying.get(&e.peer_id).map_or(0, HashSet::len);
                    if remaining_established == 0 {
                        self.carrying.remove(&e.peer_id);
                    }
                    self.inner
                        .on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                            remaining_established,
                            ..e
                        }));
                }
            }
            FromSwarm::AddressChange(e) => {
                if self.is_carrying(&e.peer_id, &e.connection_id) {
                    self.inner
                        .on_swarm_event(FromSwarm::AddressChange(AddressChange { ..e }));
                }
            }
            FromSwarm::DialFailure(e) => {
                self.expected.retain(|c| *c != e.connection_id);
                self.inner
                    .on_swarm_event(FromSwarm::DialFailure(DialFailure { ..e }));
            }
            other => self.inner.on_swarm_event(other),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        loop {
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::NotifyHandler {
                    peer_id,
                    handler,
                    event,
                }) => {
                    // Addressed to a connection without the protocol (closed meanwhile): the
                    // wrapped protocol sees no such connection, so this is rare; drop it.
                    if let Some(c) = self.target(&peer_id, handler) {
                        return Poll::Ready(ToSwarm::NotifyHandler {
                            peer_id,
                            handler: NotifyHandler::One(c),
                            event: Either::Left(event),
                        });
                    }
                }
                Poll::Ready(ToSwarm::Dial { opts }) => {
                    // A connection the protocol dials itself (the relay client to its relay,
                    // a request to a peer it has no connection with) is one it needs.
                    self.expect_connection(opts.connection_id());
                    return Poll::Ready(ToSwarm::Dial { opts });
                }
                Poll::Ready(other) => return Poll::Ready(other.map_in(Either::Left)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::swarm::dummy;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}")
            .parse()
            .unwrap_or_else(|_| Multiaddr::empty())
    }

    fn outbound(
        w: &mut OnlyOn<dummy::Behaviour>,
        c: ConnectionId,
        p: PeerId,
        a: &Multiaddr,
    ) -> bool {
        let handler =
            w.handle_established_outbound_connection(c, p, a, Endpoint::Dialer, PortUse::New);
        matches!(handler, Ok(Either::Left(_)))
    }

    fn inbound(w: &mut OnlyOn<dummy::Behaviour>, c: ConnectionId, p: PeerId) -> bool {
        let handler = w.handle_established_inbound_connection(c, p, &addr(1), &addr(2));
        matches!(handler, Ok(Either::Left(_)))
    }

    #[test]
    fn a_connection_nobody_chose_gets_no_handler() {
        let mut w = OnlyOn::new(dummy::Behaviour);
        let peer = PeerId::random();
        assert!(!outbound(
            &mut w,
            ConnectionId::new_unchecked(1),
            peer,
            &addr(9)
        ));
        assert!(!inbound(&mut w, ConnectionId::new_unchecked(2), peer));
        assert!(!w.carries(&peer));
    }

    #[test]
    fn an_announced_connection_carries_it_once() {
        let mut w = OnlyOn::new(dummy::Behaviour);
        let (c, peer) = (ConnectionId::new_unchecked(1), PeerId::random());
        w.expect_connection(c);
        assert!(outbound(&mut w, c, peer, &addr(9)));
        assert!(w.carries(&peer));
        // The announcement is used up: another connection of that peer does not carry it.
        assert!(!outbound(
            &mut w,
            ConnectionId::new_unchecked(2),
            peer,
            &addr(9)
        ));
    }

    #[test]
    fn only_outbound_connections_to_a_chosen_address_carry_it() {
        let mut w = OnlyOn::new(dummy::Behaviour);
        let peer = PeerId::random();
        w.select_addresses([addr(9)]);
        let with_peer = addr(9).with(Protocol::P2p(peer));
        assert!(outbound(
            &mut w,
            ConnectionId::new_unchecked(1),
            peer,
            &with_peer
        ));
        assert!(!outbound(
            &mut w,
            ConnectionId::new_unchecked(2),
            peer,
            &addr(8)
        ));
        assert!(!inbound(&mut w, ConnectionId::new_unchecked(3), peer));
        w.select_addresses([]);
        assert!(!outbound(
            &mut w,
            ConnectionId::new_unchecked(4),
            peer,
            &addr(9)
        ));
    }

    #[test]
    fn a_selected_peer_is_forgotten_when_it_leaves() {
        let mut w = OnlyOn::new(dummy::Behaviour);
        let peer = PeerId::random();
        w.select_peer(peer);
        assert!(inbound(&mut w, ConnectionId::new_unchecked(1), peer));
        w.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: ConnectionId::new_unchecked(1),
            endpoint: &libp2p::core::ConnectedPoint::Dialer {
                address: addr(9),
                role_override: Endpoint::Dialer,
                port_use: PortUse::New,
            },
            cause: None,
            remaining_established: 0,
        }));
        assert!(!w.carries(&peer));
        assert!(!inbound(&mut w, ConnectionId::new_unchecked(2), peer));
        w.select_peer(peer);
        w.forget_peer(&peer);
        assert!(!inbound(&mut w, ConnectionId::new_unchecked(3), peer));
    }

    #[test]
    fn announcements_are_bounded() {
        let mut w = OnlyOn::new(dummy::Behaviour);
        for i in 0..(MAX_EXPECTED_CONNECTIONS + 10) {
            w.expect_connection(ConnectionId::new_unchecked(i));
        }
        assert_eq!(w.expected.len(), MAX_EXPECTED_CONNECTIONS);
        // The oldest went first.
        assert!(!outbound(
            &mut w,
            ConnectionId::new_unchecked(0),
            PeerId::random(),
            &addr(9)
        ));
        let newest = ConnectionId::new_unchecked(MAX_EXPECTED_CONNECTIONS + 9);
        assert!(outbound(&mut w, newest, PeerId::random(), &addr(9)));
    }
}
