//! Group commit of accepted gossip, off the event loop.
//!
//! A gossiped item is validated (signature, membership, epoch, decryption), its verdict goes to
//! gossipsub at once (which hands the forward to the connections), and only then is it written
//! to the store. The fsync that makes it durable runs on a blocking thread, so the loop goes on
//! validating and forwarding meanwhile; writes made while one fsync runs share the next one.
//! Watchers hear of an item only once the fsync covering it has returned, and whatever the
//! member asks next is answered only after everything accepted so far is durable
//! ([`GroupCommit::flush_now`]).

use tokio::task::JoinHandle;
use tracing::warn;

use crate::api::Event;
use crate::replica::Replica;
use crate::store::StoreError;

/// The group commit's state.
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Writes were made since the running fsync (if any) started.
    dirty: bool,
    in_flight: Option<InFlight>,
}

struct InFlight {
    done: JoinHandle<Result<(), StoreError>>,
    /// Events of the writes this fsync covers, told once it returns.
    events: Vec<Event>,
}

impl GroupCommit {
    /// Accepted items were written to the store (not durable yet).
    pub(crate) fn wrote(&mut self) {
        self.dirty = true;
    }

    /// Whether events must wait: writes not yet durable, or an fsync running.
    pub(crate) fn is_pending(&self) -> bool {
        self.dirty || self.in_flight.is_some()
    }

    /// Start an fsync if writes wait and none is running; the events queued so far go with it.
    pub(crate) fn start(&mut self, replica: &mut Replica) {
        if !self.dirty || self.in_flight.is_some() {
            return;
        }
        self.dirty = false;
        let events = replica.take_events();
        let flusher = replica.flusher();
        let done = tokio::task::spawn_blocking(move || flusher.flush());
        self.in_flight = Some(InFlight { done, events });
    }

    /// Resolves when the running fsync returns (never if none runs), with the events it made
    /// durable.
    pub(crate) async fn finished(&mut self) -> Vec<Event> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        match (&mut in_flight.done).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "flush failed"),
            Err(e) => warn!(error = %e, "flush task failed"),
        }
        self.in_flight.take().map(|f| f.events).unwrap_or_default()
    }

    /// Make everything written so far durable now, on this thread (before the member is told
    /// anything). Returns the events that may be told now; a running fsync is still waited
    /// for by [`finished`](Self::finished) and [`close`](Self::close).
    pub(crate) fn flush_now(&mut self, replica: &mut Replica) -> Vec<Event> {
        if !self.is_pending() {
            return Vec::new();
        }
        if let Err(e) = replica.flush() {
            warn!(error = %e, "flush failed");
        }
        self.dirty = false;
        self.in_flight
            .as_mut()
            .map(|f| std::mem::take(&mut f.events))
            .unwrap_or_default()
    }

    /// Wait for the running fsync (it keeps the database open), before the store is closed.
    pub(crate) async fn close(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            let _ = in_flight.done.await;
        }
    }
}
