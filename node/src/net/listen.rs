//! A connection's inbound protocol names, kept instead of rebuilt at every poll.
//!
//! libp2p-swarm 0.48 asks a connection's handler for its inbound upgrade
//! (`listen_protocol`) after every poll of the connection that ends in `Pending`, lists its
//! protocol names and compares them with the last list, to tell the handler when they change.
//! The node's handler is a tree of about ten protocols (the gate's collective protocols, the
//! hello, the mailbox admission, the relay client, ...): building that tree's upgrade and
//! walking its nested iterator cost about 8 % of the CPU of a gossiped alert (`perf`, see
//! docs/BENCHMARKS.md "Issue 12: branch `propcache`"), on every wake-up of every connection.
//!
//! [`ListenCache`] wraps a behaviour so that each connection's handler keeps the names its
//! inner handler offers, in a shared list, and answers `listen_protocol` with that list alone
//! ([`OfferedNames`]). The inner handler's own upgrade is built only when a stream was
//! actually negotiated on one of those names, to run on it.
//!
//! The list is taken again after every event the inner handler receives
//! (`on_behaviour_event`, `on_connection_event`): the handlers of libp2p 0.57 change what they
//! offer only there (gossipsub turns itself off on a connection in `on_connection_event`; the
//! others offer a fixed set, chosen when the connection is established, as the member gate and
//! [`OnlyOn`](super::OnlyOn) choose theirs). A debug build checks after every poll that the
//! list is still the inner handler's, so a libp2p upgrade that breaks this fails the tests.
//! A connection therefore offers exactly the names it offered before, no more (a stranger's
//! connection still offers only the hello) and no fewer.

use std::{
    convert::Infallible,
    future::Future,
    ops::{Deref, DerefMut},
    sync::Arc,
    task::{Context, Poll},
};

use futures::{future::BoxFuture, stream::FuturesUnordered, FutureExt, StreamExt};
use libp2p::{
    core::upgrade,
    swarm::{
        handler::{
            ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound, InboundUpgradeSend,
            ListenUpgradeError, UpgradeInfoSend,
        },
        ConnectionHandler, NetworkBehaviour, Stream, SubstreamProtocol, THandler,
    },
};

use super::{
    delegate::{forward_behaviour, forward_handler, ConnectionEventOf, HandlerEventOf},
    MAX_NEGOTIATING_INBOUND_STREAMS,
};

/// A [`NetworkBehaviour`] that runs `B` unchanged, with each connection's handler wrapped in a
/// [`ListenCacheHandler`]. Derefs to `B`, so `B`'s fields and methods are used as before.
pub struct ListenCache<B> {
    behaviour: B,
}

impl<B> ListenCache<B> {
    /// `behaviour`, with its handlers' protocol names kept.
    pub fn new(behaviour: B) -> Self {
        Self { behaviour }
    }
}

impl<B> Deref for ListenCache<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.behaviour
    }
}

impl<B> DerefMut for ListenCache<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.behaviour
    }
}

impl<B> NetworkBehaviour for ListenCache<B>
where
    B: NetworkBehaviour,
    <THandler<B> as ConnectionHandler>::InboundOpenInfo: Clone,
    NameOf<THandler<B>>: Sync,
{
    type ConnectionHandler = ListenCacheHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    forward_behaviour!(behaviour: all, handler(ListenCacheHandler::new));
}

/// An inner upgrade still running on a negotiated stream: its result and the open info.
type Running<H> = BoxFuture<
    'static,
    (
        Option<
            Result<
                <<H as ConnectionHandler>::InboundProtocol as InboundUpgradeSend>::Output,
                <<H as ConnectionHandler>::InboundProtocol as InboundUpgradeSend>::Error,
            >,
        >,
        <H as ConnectionHandler>::InboundOpenInfo,
    ),
>;

/// The type of handler `H`'s protocol names. What [`ListenCacheHandler`] needs of a handler:
/// its names can be shared between threads (they are `StreamProtocol`s in nested `Either`s)
/// and its inbound open info copied (it is `()` in nested tuples and `Either`s).
type NameOf<H> = <<H as ConnectionHandler>::InboundProtocol as UpgradeInfoSend>::Info;

/// A [`ConnectionHandler`] that runs `H` unchanged but offers inbound streams the protocol
/// names `H` last offered, kept in a list, instead of building `H`'s upgrade at every poll.
pub struct ListenCacheHandler<H: ConnectionHandler>
where
    H::InboundOpenInfo: Clone,
    NameOf<H>: Sync,
{
    inner: H,
    /// The names `H` offers, its inbound open info and its timeout.
    listen: SubstreamProtocol<OfferedNames<NameOf<H>>, H::InboundOpenInfo>,
    /// Inner upgrades not finished when their stream was negotiated (none in libp2p 0.57:
    /// every inbound upgrade of the node's handlers is ready at once), each bounded by the
    /// upgrade's timeout, at most [`MAX_NEGOTIATING_INBOUND_STREAMS`] at once.
    running: FuturesUnordered<Running<H>>,
}

impl<H: ConnectionHandler> ListenCacheHandler<H>
where
    H::InboundOpenInfo: Clone,
    NameOf<H>: Sync,
{
    /// `inner`, offering what it offers now.
    pub fn new(inner: H) -> Self {
        let listen = offer(inner.listen_protocol());
        Self {
            inner,
            listen,
            running: FuturesUnordered::new(),
        }
    }

    /// Takes the inner handler's names again (after an event that may have changed them).
    fn refresh(&mut self) {
        self.listen = offer(self.inner.listen_protocol());
    }

    /// Whether the kept names are still the inner handler's, in order.
    fn kept_names_current(&self) -> bool {
        let fresh = self.inner.listen_protocol();
        fresh
            .upgrade()
            .protocol_info()
            .map(|n| n.as_ref().to_owned())
            .eq(self
                .listen
                .upgrade()
                .names
                .iter()
                .map(|n| n.as_ref().to_owned()))
    }

    /// A stream was negotiated on `name`: run the inner handler's own upgrade for it, built now.
    fn negotiated(&mut self, stream: Stream, name: NameOf<H>, info: H::InboundOpenInfo) {
        let (upgrade, _) = self.inner.listen_protocol().into_upgrade();
        // The name as the fresh upgrade lists it: an `Either` upgrade is only ever given a
        // name of its own side. Gone since the stream was offered it (gossipsub turned itself
        // off meanwhile): the stream is dropped, as a stream for a protocol not offered is.
        let Some(own) = upgrade
            .protocol_info()
            .find(|n| n.as_ref() == name.as_ref())
        else {
            tracing::debug!("inbound stream for a protocol no longer offered: dropped");
            return;
        };
        let timeout = *self.listen.timeout();
        let mut future = Box::pin(upgrade.upgrade_inbound(stream, own));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
        {
            Poll::Ready(result) => self.deliver(result, info),
            // As many as the swarm lets negotiate at once, as before, when the swarm ran them.
            Poll::Pending if self.running.len() >= MAX_NEGOTIATING_INBOUND_STREAMS => {
                tracing::debug!("too many inbound stream upgrades running: stream dropped");
            }
            Poll::Pending => self.running.push(
                async move { (tokio::time::timeout(timeout, future).await.ok(), info) }.boxed(),
            ),
        }
    }

    fn deliver(
        &mut self,
        result: Result<
            <H::InboundProtocol as InboundUpgradeSend>::Output,
            <H::InboundProtocol as InboundUpgradeSend>::Error,
        >,
        info: H::InboundOpenInfo,
    ) {
        let event = match result {
            Ok(protocol) => {
                ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info })
            }
            Err(error) => ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error }),
        };
        self.inner.on_connection_event(event);
        self.refresh();
    }
}

/// `protocol` with its upgrade replaced by the list of its names.
fn offer<U: InboundUpgradeSend, I>(
    protocol: SubstreamProtocol<U, I>,
) -> SubstreamProtocol<OfferedNames<U::Info>, I> {
    protocol.map_upgrade(|upgrade| OfferedNames {
        names: upgrade.protocol_info().collect(),
    })
}

impl<H: ConnectionHandler> ConnectionHandler for ListenCacheHandler<H>
where
    H::InboundOpenInfo: Clone,
    NameOf<H>: Sync,
{
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = OfferedNames<NameOf<H>>;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.listen.clone()
    }

    forward_handler!(inner: connection_keep_alive, poll_close);

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<HandlerEventOf<Self>> {
        // Checked first: polling even an empty set registers the waker, at every poll.
        while !self.running.is_empty() {
            let Poll::Ready(Some((result, info))) = self.running.poll_next_unpin(cx) else {
                break;
            };
            match result {
                Some(result) => self.deliver(result, info),
                None => tracing::debug!("inbound stream upgrade timed out"),
            }
        }
        let event = self.inner.poll(cx);
        debug_assert!(
            self.kept_names_current(),
            "a handler changed its protocols outside on_connection_event / on_behaviour_event"
        );
        event
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.inner.on_behaviour_event(event);
        self.refresh();
    }

    fn on_connection_event(&mut self, event: ConnectionEventOf<'_, Self>) {
        let event = match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, name),
                info,
            }) => return self.negotiated(stream, name, info),
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { error, .. }) => match error {},
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol,
                info,
            }) => {
                ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol, info })
            }
            ConnectionEvent::DialUpgradeError(e) => ConnectionEvent::DialUpgradeError(e),
            ConnectionEvent::AddressChange(e) => ConnectionEvent::AddressChange(e),
            ConnectionEvent::LocalProtocolsChange(e) => ConnectionEvent::LocalProtocolsChange(e),
            ConnectionEvent::RemoteProtocolsChange(e) => ConnectionEvent::RemoteProtocolsChange(e),
            // `ConnectionEvent` is non-exhaustive; libp2p 0.57 has no other kind.
            _ => return,
        };
        self.inner.on_connection_event(event);
        self.refresh();
    }
}

/// The upgrade a [`ListenCacheHandler`] offers: the inner handler's protocol names, shared.
/// Negotiating one yields the stream and the name; the handler then runs the inner upgrade.
pub struct OfferedNames<N> {
    names: Arc<[N]>,
}

impl<N> Clone for OfferedNames<N> {
    fn clone(&self) -> Self {
        Self {
            names: Arc::clone(&self.names),
        }
    }
}

impl<N: AsRef<str> + Clone + Send + Sync + 'static> upgrade::UpgradeInfo for OfferedNames<N> {
    type Info = N;
    type InfoIter = Names<N>;

    fn protocol_info(&self) -> Self::InfoIter {
        Names {
            names: Arc::clone(&self.names),
            next: 0,
        }
    }
}

impl<N: AsRef<str> + Clone + Send + Sync + 'static> upgrade::InboundUpgrade<Stream>
    for OfferedNames<N>
{
    type Output = (Stream, N);
    type Error = Infallible;
    type Future = futures::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, name: N) -> Self::Future {
        futures::future::ready(Ok((stream, name)))
    }
}

/// The names of an [`OfferedNames`], one by one.
pub struct Names<N> {
    names: Arc<[N]>,
    next: usize,
}

impl<N: Clone> Iterator for Names<N> {
    type Item = N;

    fn next(&mut self) -> Option<N> {
        let name = self.names.get(self.next)?.clone();
        self.next += 1;
        Some(name)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.names.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use either::Either;
    use libp2p::{
        core::upgrade::{DeniedUpgrade, ReadyUpgrade},
        gossipsub,
        identity::Keypair,
        swarm::{
            handler::DialUpgradeError, ConnectionHandlerEvent, ConnectionId, StreamUpgradeError,
        },
        Multiaddr, PeerId, StreamProtocol,
    };
    use lookout_protocol::MemberId;

    use super::*;
    use crate::net::{NetConfig, Protocols};

    /// The names a handler offers inbound streams, in order.
    fn names<H: ConnectionHandler>(handler: &H) -> Vec<String> {
        handler
            .listen_protocol()
            .upgrade()
            .protocol_info()
            .map(|n| n.as_ref().to_owned())
            .collect()
    }

    fn protocols(key: &Keypair, member: MemberId) -> Protocols {
        let cfg = NetConfig {
            topic: "collective".into(),
            allowed: HashSet::from([member]),
            ..NetConfig::default()
        };
        let (_, relay) = libp2p::relay::client::new(key.public().to_peer_id());
        let built = Protocols::new(key, &cfg, relay);
        assert!(built.is_ok(), "protocols built");
        built.unwrap_or_else(|_| unreachable!())
    }

    fn inbound<B: NetworkBehaviour>(
        behaviour: &mut B,
        connection: usize,
        peer: PeerId,
    ) -> THandler<B> {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001"
            .parse()
            .unwrap_or_else(|_| Multiaddr::empty());
        let handler = behaviour.handle_established_inbound_connection(
            ConnectionId::new_unchecked(connection),
            peer,
            &addr,
            &addr,
        );
        assert!(handler.is_ok(), "connection accepted");
        handler.unwrap_or_else(|_| unreachable!())
    }

    /// A stranger's connection offers the hello and nothing else, a proven member's the
    /// collective's protocols too: with the names kept, exactly what the node's protocols offer.
    #[test]
    fn a_connection_offers_exactly_what_the_node_protocols_offer() {
        let key = Keypair::generate_ed25519();
        let member = MemberId([1; 32]);
        let mut cached = ListenCache::new(protocols(&key, member));
        let mut plain = protocols(&key, member);
        let (stranger, proven) = (PeerId::random(), PeerId::random());

        let offered = names(&inbound(&mut cached, 1, stranger));
        assert_eq!(offered, ["/lookout/hello/3"]);
        assert_eq!(offered, names(&inbound(&mut plain, 1, stranger)));

        assert!(cached.gate.admit(proven, member));
        assert!(plain.gate.admit(proven, member));
        let offered = names(&inbound(&mut cached, 2, proven));
        assert_eq!(offered, names(&inbound(&mut plain, 2, proven)));
        for name in [
            "/meshsub/1.1.0",
            "/lookout/sync/2",
            "/ipfs/id/1.0.0",
            "/lookout/hello/3",
        ] {
            assert!(offered.iter().any(|n| n == name), "{name} in {offered:?}");
        }
    }

    /// Gossipsub turns itself off on a connection whose peer does not speak it (an event of
    /// the connection): the names kept follow.
    #[test]
    fn names_follow_gossipsub_turning_itself_off() {
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .build();
        assert!(config.is_ok());
        let gossip = gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
            gossipsub::MessageAuthenticity::Anonymous,
            config.unwrap_or_else(|_| unreachable!()),
        );
        assert!(gossip.is_ok());
        let mut gossip = gossip.unwrap_or_else(|_| unreachable!());
        let mut handler = ListenCacheHandler::new(inbound(&mut gossip, 1, PeerId::random()));
        assert_eq!(names(&handler).len(), 4, "{:?}", names(&handler));

        handler.on_connection_event(ConnectionEvent::DialUpgradeError(DialUpgradeError {
            info: (),
            error: StreamUpgradeError::NegotiationFailed,
        }));

        assert!(names(&handler).is_empty(), "{:?}", names(&handler));
    }

    /// A handler told by its behaviour to stop offering a protocol: the names kept follow.
    #[test]
    fn names_follow_a_behaviour_event() {
        let mut handler = ListenCacheHandler::new(Switch::default());
        assert_eq!(names(&handler), ["/switch/1"]);
        handler.on_behaviour_event(false);
        assert!(names(&handler).is_empty());
        handler.on_behaviour_event(true);
        assert_eq!(names(&handler), ["/switch/1"]);
    }

    /// A handler that changes what it offers in `poll` breaks what the cache relies on; a
    /// debug build (the tests') says so rather than offering stale names.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "changed its protocols")]
    fn a_change_outside_the_events_fails_a_debug_build() {
        let mut handler = ListenCacheHandler::new(Switch {
            flip_in_poll: true,
            ..Switch::default()
        });
        let _ = handler.poll(&mut Context::from_waker(futures::task::noop_waker_ref()));
    }

    /// Offers `/switch/1` while on.
    struct Switch {
        on: bool,
        flip_in_poll: bool,
    }

    impl Default for Switch {
        fn default() -> Self {
            Self {
                on: true,
                flip_in_poll: false,
            }
        }
    }

    impl ConnectionHandler for Switch {
        type FromBehaviour = bool;
        type ToBehaviour = Infallible;
        type InboundProtocol = Either<ReadyUpgrade<StreamProtocol>, DeniedUpgrade>;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
            let upgrade = if self.on {
                Either::Left(ReadyUpgrade::new(StreamProtocol::new("/switch/1")))
            } else {
                Either::Right(DeniedUpgrade)
            };
            SubstreamProtocol::new(upgrade, ())
        }

        fn poll(
            &mut self,
            _: &mut Context<'_>,
        ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
            if self.flip_in_poll {
                self.on = !self.on;
            }
            Poll::Pending
        }

        fn on_behaviour_event(&mut self, on: bool) {
            self.on = on;
        }

        fn on_connection_event(
            &mut self,
            _: ConnectionEvent<'_, Self::InboundProtocol, DeniedUpgrade>,
        ) {
        }
    }
}
