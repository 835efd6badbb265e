//! Group commit, off the event loop.
//!
//! A gossiped item is validated (signature, membership, epoch, decryption), its verdict goes to
//! gossipsub at once (which hands the forward to the connections), then it is written to the
//! store and watchers hear of it: an alert reaches this node's user once the node has checked
//! it, not once it is on disk (docs/PROTOCOL.md §9.4). The fsync that makes it durable runs on a
//! blocking thread, so the loop goes on validating and forwarding meanwhile; writes made while
//! one fsync runs share the next one.
//!
//! A member's own post is published as soon as it is sealed and written, before its fsync; the
//! answer to `post` waits here until the fsync covering it has returned
//! ([`GroupCommit::answer_when_durable`]), so an acknowledged post survives a crash.
//!
//! Gossip alone (no answer waiting) is made durable at most every [`GOSSIP_COMMIT_INTERVAL`]:
//! under a stream of alerts each fsync, and sled's sealing and writing of its log buffer for
//! it, then covers several instead of one each. What the network holds is still there to be
//! fetched again if the device dies in between (docs/PROTOCOL.md §9.4); an answer waiting
//! starts an fsync at once.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use crate::api::{ApiError, ErrorCode, Response};
use crate::replica::Replica;
use crate::store::{Flusher, StoreError};

/// Where a command's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<Response, ApiError>>;

/// An answer held until the writes it acknowledges are durable.
struct Held {
    reply: Reply,
    answer: Result<Response, ApiError>,
}

impl Held {
    /// Send the answer, or, if the fsync failed, say that the post went out but is not stored.
    fn send(self, flushed: Result<(), String>) {
        let answer = match flushed {
            Ok(()) => self.answer,
            Err(e) => Err(ApiError::new(
                ErrorCode::Internal,
                format!(
                    "the alert was sent to connected members, but storing it on this device \
                     failed ({e}); it comes back from them at the next sync"
                ),
            )),
        };
        let _ = self.reply.send(answer);
    }
}

/// Shortest time between the starts of two fsyncs when only gossip waits for one (no answer).
pub(crate) const GOSSIP_COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// The group commit's state.
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Writes were made since the running fsync (if any) started.
    dirty: bool,
    /// Answers waiting for the writes made since the running fsync started.
    waiting: Vec<Held>,
    in_flight: Option<InFlight>,
    /// When the last fsync started.
    last_start: Option<Instant>,
}

struct InFlight {
    done: JoinHandle<Result<(), StoreError>>,
    /// Answers of the writes this fsync covers, sent once it returns.
    answers: Vec<Held>,
}

impl GroupCommit {
    /// Accepted items were written to the store (not durable yet).
    pub(crate) fn wrote(&mut self) {
        self.dirty = true;
    }

    /// A write was made whose answer must wait until it is durable: `answer` goes to `reply`
    /// once an fsync started after this call has returned.
    pub(crate) fn answer_when_durable(&mut self, reply: Reply, answer: Result<Response, ApiError>) {
        self.dirty = true;
        self.waiting.push(Held { reply, answer });
    }

    /// Start an fsync if writes wait and none is running; the answers waiting go with it.
    pub(crate) fn start(&mut self, replica: &Replica) {
        self.start_at(replica, Instant::now());
    }

    /// [`Self::start`] at `now`.
    fn start_at(&mut self, replica: &Replica, now: Instant) {
        if !self.dirty || self.in_flight.is_some() {
            return;
        }
        if self.deferred_until().is_some_and(|at| now < at) {
            return;
        }
        self.dirty = false;
        self.last_start = Some(now);
        let flusher = replica.flusher();
        let done = tokio::task::spawn_blocking(move || flusher.flush());
        self.in_flight = Some(InFlight {
            done,
            answers: std::mem::take(&mut self.waiting),
        });
    }

    /// When gossip written (and no answer waiting) is due for its fsync, if it waits for
    /// [`GOSSIP_COMMIT_INTERVAL`] since the last one's start: the loop calls [`Self::start`]
    /// then.
    pub(crate) fn deferred_until(&self) -> Option<Instant> {
        if !self.dirty || self.in_flight.is_some() || !self.waiting.is_empty() {
            return None;
        }
        self.last_start.map(|at| at + GOSSIP_COMMIT_INTERVAL)
    }

    /// Resolves when the running fsync returns (never if none runs), and sends the answers it
    /// made durable.
    pub(crate) async fn finished(&mut self) {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let flushed = match (&mut in_flight.done).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &flushed {
            warn!(error = %e, "flush failed");
        }
        for held in self.in_flight.take().map(|f| f.answers).unwrap_or_default() {
            held.send(flushed.clone());
        }
    }

    /// Before the store is closed: wait for the running fsync (it keeps the database open),
    /// then make the rest durable on this thread, sending every answer held.
    pub(crate) async fn close(&mut self, flusher: Flusher) {
        self.finished_if_running().await;
        if self.dirty || !self.waiting.is_empty() {
            let flushed = flusher.flush().map_err(|e| e.to_string());
            self.dirty = false;
            for held in std::mem::take(&mut self.waiting) {
                held.send(flushed.clone());
            }
        }
    }

    async fn finished_if_running(&mut self) {
        if self.in_flight.is_some() {
            self.finished().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn replica_in(dir: &std::path::Path) -> crate::replica::Replica {
        crate::replica::Replica::create(
            dir,
            b"a passphrase for the commit test",
            "commit",
            lookout_protocol::passphrase::KdfParams::TESTING,
        )
        .unwrap()
        .0
    }

    fn posted(id: &str) -> Result<Response, ApiError> {
        Ok(Response::Posted { id: id.into() })
    }

    /// The answer to a post is held until an fsync started after the write has returned: not
    /// sent when the write is made, nor by an fsync that was already running.
    #[tokio::test]
    async fn an_answer_waits_for_the_fsync_after_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();

        // A gossiped item written: an fsync starts, with no answer.
        commit.wrote();
        commit.start(&replica);
        // Our post written while it runs: its answer waits for the next fsync.
        let (reply, mut answered) = oneshot::channel();
        commit.answer_when_durable(reply, posted("a"));
        commit.start(&replica);
        assert!(answered.try_recv().is_err(), "answered before any fsync");
        commit.finished().await;
        assert!(
            answered.try_recv().is_err(),
            "answered by an fsync that started before the post was written"
        );
        commit.start(&replica);
        commit.finished().await;
        match answered.try_recv() {
            Ok(Ok(Response::Posted { id })) => assert_eq!(id, "a"),
            other => panic!("expected the post's answer, got {other:?}"),
        }
    }

    /// Gossip alone waits for the interval after the last fsync's start; an answer waiting
    /// does not, and shutdown makes what waits durable.
    #[tokio::test]
    async fn gossip_alone_shares_an_fsync_per_interval_and_an_answer_does_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();
        let t = Instant::now();
        commit.wrote();
        commit.start_at(&replica, t);
        commit.finished().await;
        // More gossip within the interval: deferred until it has passed.
        let soon = t + GOSSIP_COMMIT_INTERVAL / 2;
        commit.wrote();
        commit.start_at(&replica, soon);
        assert!(
            commit.in_flight.is_none(),
            "gossip fsynced before the interval"
        );
        let due = commit.deferred_until().expect("a deferred fsync");
        assert_eq!(due, t + GOSSIP_COMMIT_INTERVAL);
        commit.start_at(&replica, due);
        assert!(
            commit.in_flight.is_some(),
            "gossip not fsynced after the interval"
        );
        commit.finished().await;
        // A post of ours right after: its fsync starts at once.
        let (reply, mut answered) = oneshot::channel();
        commit.answer_when_durable(reply, posted("c"));
        assert_eq!(commit.deferred_until(), None);
        commit.start_at(&replica, due + GOSSIP_COMMIT_INTERVAL / 2);
        assert!(
            commit.in_flight.is_some(),
            "an answer waited for the gossip interval"
        );
        commit.finished().await;
        assert!(matches!(
            answered.try_recv(),
            Ok(Ok(Response::Posted { .. }))
        ));
        // Gossip deferred at shutdown is flushed by `close`.
        commit.wrote();
        commit.start_at(&replica, due + GOSSIP_COMMIT_INTERVAL * 3 / 4);
        assert!(commit.in_flight.is_none());
        commit.close(replica.flusher()).await;
        assert!(!commit.dirty);
    }

    /// Answers still held at shutdown are sent once the rest is flushed.
    #[tokio::test]
    async fn closing_answers_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();
        commit.wrote();
        commit.start(&replica);
        let (reply, mut answered) = oneshot::channel();
        commit.answer_when_durable(reply, posted("b"));
        commit.close(replica.flusher()).await;
        assert!(matches!(
            answered.try_recv(),
            Ok(Ok(Response::Posted { .. }))
        ));
    }
}
