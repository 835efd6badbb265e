//! Protocols polled only when something happened for them.
//!
//! libp2p runs each connection as one task and polls every handler of it at each wake-up of
//! that task, whatever woke it: on a member connection every gossip frame polls the sync and
//! hello request-response handlers, identify, ping and hole punching too (the `prop5` profile:
//! about a tenth of the node's CPU on top of plain gossipsub, whose connections carry only its
//! own handler). [`OnWake`] gives a protocol's handler a waker of its own
//! ([`OnWakeHandler`]), as `FuturesUnordered` does for its futures: the handler is polled
//! again only once that waker was woken (a stream, timer or channel it waits on is ready),
//! after it produced an event (it may have more), or after the connection handed it an
//! event (`on_behaviour_event`, `on_connection_event`: a request to send, a stream
//! negotiated). Nothing else changes: the same protocol names, the same handler, the same
//! events in the same order for that handler. A handler that returned `Pending` has, by the
//! `Future` contract, registered the waker of every source it waits on, so nothing it would
//! have done is lost; it is only not asked again while nothing changed. Only handlers that keep
//! that contract may be wrapped: libp2p-ping's does not (once it has answered a ping it sets up
//! the read of the next one and returns `Pending` without polling it: Review 18's F1), so ping
//! is polled at every wake-up as before (`behaviour.rs`). The sync and hello request-response,
//! identify and hole-punch handlers were read for it (docs/design/REVIEW18.md).

use std::{
    ops::{Deref, DerefMut},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake, Waker},
};

use futures::task::AtomicWaker;
use libp2p::swarm::{ConnectionHandler, NetworkBehaviour, THandler};

use super::delegate::{forward_behaviour, forward_handler, ConnectionEventOf, HandlerEventOf};

/// A [`NetworkBehaviour`] whose handlers ([`OnWakeHandler`]) are polled only on their own
/// wake-ups and events. Derefs to the wrapped protocol.
pub struct OnWake<B>(pub B);

impl<B> Deref for OnWake<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

impl<B> DerefMut for OnWake<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.0
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for OnWake<B> {
    type ConnectionHandler = OnWakeHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    forward_behaviour!(0: all, handler(OnWakeHandler::new));
}

/// What a handler's own waker does: note that the handler has something to do, and wake the
/// connection's task.
#[derive(Default)]
struct HandlerWake {
    /// Set by a wake (and by the wrapper after an event in or out), cleared when the handler
    /// is polled.
    woken: AtomicBool,
    /// The connection task's waker, registered again each time `woken` is cleared (a wake
    /// takes it).
    task: AtomicWaker,
}

impl Wake for HandlerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The flag first: the task woken below must find it.
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A handler `H` polled only after its own waker was woken, after it produced an event, or
/// after it was handed one (see the module docs). Everything else goes straight to `H`.
pub struct OnWakeHandler<H> {
    inner: H,
    wake: Arc<HandlerWake>,
    /// `wake` as a waker, made once.
    waker: Waker,
    /// The task waker last registered in `wake.task` (to register a new one only if it changed).
    task: Option<Waker>,
}

impl<H> OnWakeHandler<H> {
    /// `inner`, to be polled at its first chance.
    pub fn new(inner: H) -> Self {
        let wake = Arc::new(HandlerWake {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            inner,
            waker: Waker::from(wake.clone()),
            wake,
            task: None,
        }
    }

    /// The next poll polls `inner`.
    fn mark(&self) {
        self.wake.woken.store(true, Ordering::Release);
    }

    /// Registers the task's waker with `wake` if `always` or if it is not the one registered.
    fn register(&mut self, task: &Waker, always: bool) {
        let same = self.task.as_ref().is_some_and(|t| t.will_wake(task));
        if !same {
            self.task = Some(task.clone());
        }
        if always || !same {
            self.wake.task.register(task);
        }
    }
}

impl<H: ConnectionHandler> ConnectionHandler for OnWakeHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    forward_handler!(inner: listen_protocol, connection_keep_alive, poll_close);

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<HandlerEventOf<Self>> {
        // A plain load first: most polls find the flag clear (a wake-up of the connection for
        // another handler), and a locked swap on each of them costs more than the check saves.
        if !self.wake.woken.load(Ordering::Acquire)
            || !self.wake.woken.swap(false, Ordering::AcqRel)
        {
            // Not woken since the last poll: the task's waker is still registered (a wake
            // takes it, and sets the flag first), unless the task changed it. A wake racing
            // with the load finds that waker, so the task is polled again.
            self.register(cx.waker(), false);
            return Poll::Pending;
        }
        // Cleared: a wake may have taken the task's waker, so it is registered again before
        // the handler runs (a wake from now on wakes the task, or finds the flag set).
        self.register(cx.waker(), true);
        let mut own = Context::from_waker(&self.waker);
        let polled = self.inner.poll(&mut own);
        if polled.is_ready() {
            // It may have more: asked again at the next poll, which the connection makes at once.
            self.mark();
        }
        polled
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.mark();
        self.inner.on_behaviour_event(event);
    }

    fn on_connection_event(&mut self, event: ConnectionEventOf<'_, Self>) {
        self.mark();
        self.inner.on_connection_event(event);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::{
        sync::atomic::AtomicUsize,
        task::{Context, Poll, Waker},
    };

    use futures::task::noop_waker;
    use libp2p::{
        core::upgrade::DeniedUpgrade,
        swarm::{
            handler::ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol,
        },
    };

    use super::*;

    /// A handler that counts its polls, answers `Ready` while it holds events, and keeps the
    /// waker of its last `Pending` poll (the source it would wait on).
    #[derive(Default)]
    struct Probe {
        polls: usize,
        events: usize,
        waiting: Option<Waker>,
    }

    impl ConnectionHandler for Probe {
        type FromBehaviour = usize;
        type ToBehaviour = usize;
        type InboundProtocol = DeniedUpgrade;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
            SubstreamProtocol::new(DeniedUpgrade, ())
        }

        fn poll(
            &mut self,
            cx: &mut Context<'_>,
        ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), usize>> {
            self.polls += 1;
            if self.events > 0 {
                self.events -= 1;
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(self.polls));
            }
            self.waiting = Some(cx.waker().clone());
            Poll::Pending
        }

        fn on_behaviour_event(&mut self, events: usize) {
            self.events += events;
        }

        fn on_connection_event(
            &mut self,
            _: ConnectionEvent<'_, DeniedUpgrade, DeniedUpgrade, (), ()>,
        ) {
        }
    }

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(handler: &mut OnWakeHandler<Probe>, task: &Waker) -> Poll<usize> {
        let mut cx = Context::from_waker(task);
        handler.poll(&mut cx).map(|e| match e {
            ConnectionHandlerEvent::NotifyBehaviour(n) => n,
            _ => usize::MAX,
        })
    }

    #[test]
    fn an_idle_handler_is_not_polled_again_until_its_waker_is_woken() {
        let task = Arc::new(Task::default());
        let task_waker = Waker::from(task.clone());
        let mut handler = OnWakeHandler::new(Probe::default());
        assert!(poll(&mut handler, &task_waker).is_pending());
        assert_eq!(handler.inner.polls, 1, "polled at its first chance");
        for _ in 0..5 {
            assert!(poll(&mut handler, &task_waker).is_pending());
        }
        assert_eq!(
            handler.inner.polls, 1,
            "wake-ups of the task for others skip it"
        );
        // Its source becomes ready: the connection's task is woken, and the handler polled.
        handler.inner.waiting.take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut handler, &task_waker).is_pending());
        assert_eq!(handler.inner.polls, 2);
        // Woken again after that poll: the task's waker was registered again.
        handler.inner.waiting.take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 2);
        assert!(poll(&mut handler, &task_waker).is_pending());
        assert_eq!(handler.inner.polls, 3);
    }

    #[test]
    fn an_event_handed_in_is_polled_until_the_handler_is_done() {
        let task_waker = noop_waker();
        let mut handler = OnWakeHandler::new(Probe::default());
        assert!(poll(&mut handler, &task_waker).is_pending());
        handler.on_behaviour_event(2);
        assert!(poll(&mut handler, &task_waker).is_ready());
        assert!(poll(&mut handler, &task_waker).is_ready());
        assert!(poll(&mut handler, &task_waker).is_pending());
        assert_eq!(handler.inner.polls, 4);
        assert!(poll(&mut handler, &task_waker).is_pending());
        assert_eq!(handler.inner.polls, 4);
    }

    #[test]
    fn a_new_task_waker_is_the_one_woken() {
        let first = Arc::new(Task::default());
        let second = Arc::new(Task::default());
        let mut handler = OnWakeHandler::new(Probe::default());
        assert!(poll(&mut handler, &Waker::from(first.clone())).is_pending());
        assert!(poll(&mut handler, &Waker::from(second.clone())).is_pending());
        handler.inner.waiting.take().unwrap().wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }
}
