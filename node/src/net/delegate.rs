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
//! so what a wrapper changes is what it writes out. A method with a default that a wrapper
//! neither lists nor writes falls back to that default without a word from the compiler: the
//! tests below call each such method on a behaviour that records the calls, through `all` and
//! through every wrapper but `Admissions` (which uses `all` alone).
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

#[cfg(test)]
mod tests {
    use std::{
        collections::HashSet,
        task::{Context, Poll},
        time::Duration,
    };

    use libp2p::{
        core::{
            transport::{ListenerId, PortUse},
            upgrade::{DeniedUpgrade, ReadyUpgrade},
            Endpoint,
        },
        swarm::{
            behaviour::NewListenAddr, handler::UpgradeInfoSend, ConnectionDenied, ConnectionId,
            FromSwarm, NetworkBehaviour, SubstreamProtocol, THandler, THandlerOutEvent, ToSwarm,
        },
        Multiaddr, PeerId, StreamProtocol,
    };

    use super::*;
    use crate::net::{ListenCache, ListenCacheHandler, MemberGate, OnWake, OnWakeHandler, OnlyOn};

    /// A refusal only [`Recorder`] gives (a trait default accepts).
    #[derive(Debug, thiserror::Error)]
    #[error("refused by the recorder")]
    struct Refused;

    /// A behaviour that notes every call and answers each as no trait default would.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<&'static str>,
        handler_events: Vec<u8>,
    }

    fn addr() -> Multiaddr {
        "/ip4/192.0.2.1/tcp/4001"
            .parse()
            .unwrap_or_else(|_| Multiaddr::empty())
    }

    impl NetworkBehaviour for Recorder {
        type ConnectionHandler = Lively;
        type ToSwarm = u8;

        fn handle_pending_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: &Multiaddr,
            _: &Multiaddr,
        ) -> Result<(), ConnectionDenied> {
            self.calls.push("pending inbound");
            Err(ConnectionDenied::new(Refused))
        }

        fn handle_established_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: &Multiaddr,
        ) -> Result<Lively, ConnectionDenied> {
            self.calls.push("established inbound");
            Ok(Lively)
        }

        fn handle_pending_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: Option<PeerId>,
            _: &[Multiaddr],
            _: Endpoint,
        ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
            self.calls.push("pending outbound");
            Ok(vec![addr()])
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: Endpoint,
            _: PortUse,
        ) -> Result<Lively, ConnectionDenied> {
            self.calls.push("established outbound");
            Ok(Lively)
        }

        fn on_swarm_event(&mut self, _: FromSwarm<'_>) {
            self.calls.push("swarm event");
        }

        fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: u8) {
            self.calls.push("handler event");
            self.handler_events.push(event);
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<u8, Infallible>> {
            self.calls.push("poll");
            Poll::Ready(ToSwarm::GenerateEvent(7))
        }
    }

    /// What [`Lively`] offers inbound streams, and for how long it lets one negotiate (the
    /// default is 10 s).
    const LIVELY_PROTOCOL: &str = "/lively/1";
    const LIVELY_TIMEOUT: Duration = Duration::from_secs(77);

    /// A handler that keeps its connection alive and has a last event at closing (the trait's
    /// defaults do neither).
    struct Lively;

    impl ConnectionHandler for Lively {
        type FromBehaviour = Infallible;
        type ToBehaviour = u8;
        type InboundProtocol = ReadyUpgrade<StreamProtocol>;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
            let upgrade = ReadyUpgrade::new(StreamProtocol::new(LIVELY_PROTOCOL));
            SubstreamProtocol::new(upgrade, ()).with_timeout(LIVELY_TIMEOUT)
        }

        fn connection_keep_alive(&self) -> bool {
            true
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<HandlerEventOf<Self>> {
            Poll::Pending
        }

        fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<Option<u8>> {
            Poll::Ready(Some(9))
        }

        fn on_behaviour_event(&mut self, never: Infallible) {
            match never {}
        }

        fn on_connection_event(&mut self, _: ConnectionEventOf<'_, Self>) {}
    }

    /// The macro alone: a wrapper that changes nothing.
    struct Through<B>(B);

    impl<B: NetworkBehaviour> NetworkBehaviour for Through<B> {
        type ConnectionHandler = THandler<B>;
        type ToSwarm = B::ToSwarm;

        forward_behaviour!(0: all);
    }

    fn context() -> Context<'static> {
        Context::from_waker(futures::task::noop_waker_ref())
    }

    fn refused<T>(result: Result<T, ConnectionDenied>) -> bool {
        result.is_err_and(|e| e.downcast_ref::<Refused>().is_some())
    }

    /// Calls every method of `w` once, in the trait's order, and checks that each answer is
    /// the [`Recorder`]'s.
    fn call_every_method<W>(w: &mut W)
    where
        W: NetworkBehaviour<ToSwarm = u8>,
        THandlerOutEvent<W>: From<u8>,
    {
        let (c, peer, a) = (ConnectionId::new_unchecked(1), PeerId::random(), addr());
        assert!(refused(w.handle_pending_inbound_connection(c, &a, &a)));
        assert!(w
            .handle_established_inbound_connection(c, peer, &a, &a)
            .is_ok());
        let addresses = w.handle_pending_outbound_connection(c, None, &[], Endpoint::Dialer);
        assert_eq!(addresses.ok(), Some(vec![addr()]));
        let handler =
            w.handle_established_outbound_connection(c, peer, &a, Endpoint::Dialer, PortUse::New);
        assert!(handler.is_ok());
        w.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr {
            listener_id: ListenerId::next(),
            addr: &a,
        }));
        w.on_connection_handler_event(peer, c, 3.into());
        assert!(matches!(
            w.poll(&mut context()),
            Poll::Ready(ToSwarm::GenerateEvent(7))
        ));
    }

    const EVERY_CALL: [&str; 7] = [
        "pending inbound",
        "established inbound",
        "pending outbound",
        "established outbound",
        "swarm event",
        "handler event",
        "poll",
    ];

    /// Checks that `handler`, wrapping a [`Lively`], hands on what it does not change: the
    /// protocols offered and their timeout, the keep-alive and the last event at closing.
    fn hands_on_what_lively_says<H: ConnectionHandler<ToBehaviour = u8>>(mut handler: H) {
        let listen = handler.listen_protocol();
        let offered: Vec<String> = listen
            .upgrade()
            .protocol_info()
            .map(|n| n.as_ref().to_owned())
            .collect();
        assert_eq!(offered, [LIVELY_PROTOCOL]);
        assert_eq!(*listen.timeout(), LIVELY_TIMEOUT);
        assert!(handler.connection_keep_alive());
        assert_eq!(handler.poll_close(&mut context()), Poll::Ready(Some(9)));
    }

    /// Checks that `w`, wrapping a [`Recorder`] (found with `recorder`), hands on the pending
    /// connections and the events of the wrapped handlers: what a wrapper that chooses the
    /// connections of its protocol does not decide.
    fn hands_on_pending_connections_and_handler_events<W>(mut w: W, recorder: fn(&W) -> &Recorder)
    where
        W: NetworkBehaviour,
        THandlerOutEvent<W>: From<Either<u8, Infallible>>,
    {
        let (c, peer, a) = (ConnectionId::new_unchecked(1), PeerId::random(), addr());
        assert!(refused(w.handle_pending_inbound_connection(c, &a, &a)));
        let addresses = w.handle_pending_outbound_connection(c, None, &[], Endpoint::Dialer);
        assert_eq!(addresses.ok(), Some(vec![addr()]));
        w.on_connection_handler_event(peer, c, Either::Left(3).into());
        assert_eq!(
            recorder(&w).calls,
            ["pending inbound", "pending outbound", "handler event"]
        );
        assert_eq!(recorder(&w).handler_events, [3]);
    }

    #[test]
    fn all_forwards_every_method_to_the_wrapped_behaviour() {
        let mut w = Through(Recorder::default());
        call_every_method(&mut w);
        assert_eq!(w.0.calls, EVERY_CALL);
        assert_eq!(w.0.handler_events, [3]);
    }

    #[test]
    fn on_wake_and_listen_cache_forward_every_behaviour_method() {
        let mut on_wake = OnWake(Recorder::default());
        call_every_method(&mut on_wake);
        assert_eq!(on_wake.calls, EVERY_CALL);
        assert_eq!(on_wake.handler_events, [3]);

        let mut cached = ListenCache::new(Recorder::default());
        call_every_method(&mut cached);
        assert_eq!(cached.calls, EVERY_CALL);
        assert_eq!(cached.handler_events, [3]);
    }

    #[test]
    fn on_wake_and_listen_cache_handlers_keep_what_the_inner_handler_says() {
        hands_on_what_lively_says(OnWakeHandler::new(Lively));
        hands_on_what_lively_says(ListenCacheHandler::new(Lively));
    }

    #[test]
    fn only_on_and_the_gate_forward_pending_connections_and_handler_events() {
        hands_on_pending_connections_and_handler_events(OnlyOn::new(Recorder::default()), |w| {
            &w.inner
        });
        let gate = MemberGate::new(Recorder::default(), HashSet::new());
        hands_on_pending_connections_and_handler_events(gate, |w| &w.inner);
    }
}
