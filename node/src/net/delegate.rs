//! The methods a wrapper of a libp2p behaviour or handler only hands on to what it wraps.
//!
//! The node wraps protocols to change one thing about each: when a handler is polled
//! ([`OnWake`](super::OnWake)), how its protocol names are offered
//! ([`ListenCache`](super::ListenCache)), on which connections it runs
//! ([`OnlyOn`](super::OnlyOn), [`MemberGate`](super::MemberGate)), the type of its events
//! ([`Admissions`](super::Admissions)). Every other method of `NetworkBehaviour` and
//! `ConnectionHandler` must reach the wrapped value unchanged: left to the trait's default, it
//! would silently drop what the wrapped protocol does there (its own connection checks, its
//! keep-alive, its last events at closing). [`forward_behaviour!`] and [`forward_handler!`]
//! write those methods; each wrapper names the ones it forwards and writes the others itself,
//! so what a wrapper changes is what it writes out.
//!
//! rust-libp2p's own wrappers (`Toggle`, `Either`) write every method out by hand; these
//! macros write the same bodies once.

use std::convert::Infallible;

use either::Either;
use libp2p::swarm::{handler::ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent};

/// What the handler `H`'s `poll` yields when ready.
pub(crate) type HandlerEventOf<H> = ConnectionHandlerEvent<
    <H as ConnectionHandler>::OutboundProtocol,
    <H as ConnectionHandler>::OutboundOpenInfo,
    <H as ConnectionHandler>::ToBehaviour,
>;

/// A `ConnectionEvent` of the handler `H`, as `on_connection_event` receives it.
pub(crate) type ConnectionEventOf<'a, H> = ConnectionEvent<
    'a,
    <H as ConnectionHandler>::InboundProtocol,
    <H as ConnectionHandler>::OutboundProtocol,
    <H as ConnectionHandler>::InboundOpenInfo,
    <H as ConnectionHandler>::OutboundOpenInfo,
>;

/// The wrapped handler's event out of an `Either` whose other side is a
/// [`dummy::ConnectionHandler`](libp2p::swarm::dummy::ConnectionHandler), which has none.
pub(crate) fn only_left<L>(event: Either<L, Infallible>) -> L {
    match event {
        Either::Left(event) => event,
        Either::Right(never) => match never {},
    }
}

/// Inside an `impl NetworkBehaviour for W`, writes the listed methods so that each calls the
/// same method of the behaviour at `self.$inner` (a field name or index) with the same
/// arguments.
///
/// `method(f)` also maps, with `f`: what the inner method returns for
/// `handle_established_*_connection` (`Result::map`: the handler, wrapped) and `poll`
/// (`Poll::map`: the event); the event handed in for `on_connection_handler_event`.
/// `all` is the trait's seven methods, `handler(f)` mapping both
/// `handle_established_*_connection` and `poll(f)` mapping `poll`:
///
/// ```text
/// impl<B: NetworkBehaviour> NetworkBehaviour for OnWake<B> {
///     type ConnectionHandler = OnWakeHandler<THandler<B>>;
///     type ToSwarm = B::ToSwarm;
///
///     forward_behaviour!(0: all, handler(OnWakeHandler::new));
/// }
///
/// impl<B: NetworkBehaviour> NetworkBehaviour for OnlyOn<B> {
///     // ...
///     forward_behaviour!(inner:
///         handle_pending_inbound_connection,
///         handle_pending_outbound_connection,
///         on_connection_handler_event(only_left),
///     );
///     // handle_established_*_connection, on_swarm_event, poll: OnlyOn's own.
/// }
/// ```
macro_rules! forward_behaviour {
    ($inner:tt: all $(, handler($handler:expr))? $(, poll($event:expr))? $(,)?) => {
        $crate::net::delegate::forward_behaviour!($inner:
            handle_pending_inbound_connection,
            handle_established_inbound_connection $(($handler))?,
            handle_pending_outbound_connection,
            handle_established_outbound_connection $(($handler))?,
            on_swarm_event,
            on_connection_handler_event,
            poll $(($event))?,
        );
    };
    ($inner:tt: $($method:ident $(($map:expr))?),+ $(,)?) => {
        $($crate::net::delegate::forward_behaviour!(@ $inner $method $(($map))?);)+
    };
    // The trait's signatures (libp2p-swarm 0.48), each forwarded by the last rule.
    (@ $inner:tt handle_pending_inbound_connection) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner handle_pending_inbound_connection(
            connection_id: ::libp2p::swarm::ConnectionId,
            local_addr: &::libp2p::Multiaddr,
            remote_addr: &::libp2p::Multiaddr,
        ) -> Result<(), ::libp2p::swarm::ConnectionDenied>);
    };
    (@ $inner:tt handle_established_inbound_connection $(($map:expr))?) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner handle_established_inbound_connection(
            connection_id: ::libp2p::swarm::ConnectionId,
            peer: ::libp2p::PeerId,
            local_addr: &::libp2p::Multiaddr,
            remote_addr: &::libp2p::Multiaddr,
        ) -> Result<::libp2p::swarm::THandler<Self>, ::libp2p::swarm::ConnectionDenied>
            $(, $map)?);
    };
    (@ $inner:tt handle_pending_outbound_connection) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner handle_pending_outbound_connection(
            connection_id: ::libp2p::swarm::ConnectionId,
            maybe_peer: Option<::libp2p::PeerId>,
            addresses: &[::libp2p::Multiaddr],
            effective_role: ::libp2p::core::Endpoint,
        ) -> Result<Vec<::libp2p::Multiaddr>, ::libp2p::swarm::ConnectionDenied>);
    };
    (@ $inner:tt handle_established_outbound_connection $(($map:expr))?) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner handle_established_outbound_connection(
            connection_id: ::libp2p::swarm::ConnectionId,
            peer: ::libp2p::PeerId,
            addr: &::libp2p::Multiaddr,
            role_override: ::libp2p::core::Endpoint,
            port_use: ::libp2p::core::transport::PortUse,
        ) -> Result<::libp2p::swarm::THandler<Self>, ::libp2p::swarm::ConnectionDenied>
            $(, $map)?);
    };
    (@ $inner:tt on_swarm_event) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner on_swarm_event(
            event: ::libp2p::swarm::FromSwarm<'_>,
        ));
    };
    // The one whose map applies to what goes in.
    (@ $inner:tt on_connection_handler_event $(($map:expr))?) => {
        fn on_connection_handler_event(
            &mut self,
            peer_id: ::libp2p::PeerId,
            connection_id: ::libp2p::swarm::ConnectionId,
            event: ::libp2p::swarm::THandlerOutEvent<Self>,
        ) {
            $(let event = $map(event);)?
            self.$inner
                .on_connection_handler_event(peer_id, connection_id, event);
        }
    };
    (@ $inner:tt poll $(($map:expr))?) => {
        $crate::net::delegate::forward_behaviour!(@fn $inner poll(
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<
            ::libp2p::swarm::ToSwarm<Self::ToSwarm, ::libp2p::swarm::THandlerInEvent<Self>>,
        > $(, $map)?);
    };
    // A method that calls its namesake on `self.$inner` with its own arguments and returns what
    // that returns, mapped with `$map` if given.
    (@fn $inner:tt $method:ident($($arg:ident: $ty:ty),+ $(,)?) $(-> $ret:ty)? $(, $map:expr)?) => {
        fn $method(&mut self, $($arg: $ty),+) $(-> $ret)? {
            self.$inner.$method($($arg),+)$(.map($map))?
        }
    };
}

/// Inside an `impl ConnectionHandler for W`, writes the listed methods so that each calls the
/// same method of the handler at `self.$inner` with the same arguments: any of
/// `listen_protocol`, `connection_keep_alive`, `poll_close`.
macro_rules! forward_handler {
    ($inner:tt: $($method:ident),+ $(,)?) => {
        $($crate::net::delegate::forward_handler!(@ $inner $method);)+
    };
    (@ $inner:tt listen_protocol) => {
        fn listen_protocol(
            &self,
        ) -> ::libp2p::swarm::SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
            self.$inner.listen_protocol()
        }
    };
    (@ $inner:tt connection_keep_alive) => {
        fn connection_keep_alive(&self) -> bool {
            self.$inner.connection_keep_alive()
        }
    };
    (@ $inner:tt poll_close) => {
        fn poll_close(
            &mut self,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<Option<Self::ToBehaviour>> {
            self.$inner.poll_close(cx)
        }
    };
}

pub(crate) use {forward_behaviour, forward_handler};
