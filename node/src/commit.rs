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
//! A post received from a peer is written up to [`WRITE_BEHIND`] after it was shown, in one
//! batch with the others received meanwhile ([`WriteBehind`]), and then waits up to
//! [`RECEIVED_POST_FSYNC`] for its fsync
//! ([`GroupCommit::wrote_received_post`]): nobody waits for it (it was shown once checked), so
//! it shares the fsync of whatever comes next, and the fsync of an alert runs after the alert
//! has reached the other members, not while the cores are busy passing it on. sled also
//! flushes by itself every 500 ms (its `flush_every_ms` default), which often comes first.

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

/// How long a post received from a peer may wait for the fsync that makes it durable on this
/// device (a crash before it loses the post from this device only, and the next sync fetches it
/// again: docs/PROTOCOL.md §9.4.2).
pub(crate) const RECEIVED_POST_FSYNC: Duration = Duration::from_secs(1);

/// How long received posts' store writes may wait in memory before they are made, in one batch
/// with every other received post's of the window ([`WriteBehind`]). Each batch costs sled a
/// roll of its log buffer and two log writes on its I/O threads whatever it holds, so the
/// longer the window the fewer of them per alert; a crash loses at most the posts of one window
/// more (the next sync fetches them again: docs/PROTOCOL.md §9.4.3).
pub(crate) const WRITE_BEHIND: Duration = Duration::from_millis(200);

/// Most received posts whose writes wait in memory at once: the next one makes them all.
pub(crate) const WRITE_BEHIND_POSTS: usize = 64;

/// When the received posts' writes held in memory (`replica/held.rs`) must be made: write-behind
/// for gossiped alerts. A received post is forwarded and shown once checked; its writes wait
/// until [`WRITE_BEHIND`] after the first of the window was held, or until
/// [`WRITE_BEHIND_POSTS`] wait, and then go to the store in ONE batch (one log write for the
/// window instead of one per post per node). The event loop also makes them at once before
/// anything that may read or write the store (any command but `post`, a tick, any other
/// network event but a ping's result), with a post of ours (whose writes join them in one batch), and at
/// shutdown: so nothing ever reads the store without them, and every write keeps its order.
/// A crash loses only them, which the next sync fetches again (docs/PROTOCOL.md §9.4.2).
#[derive(Default)]
pub(crate) struct WriteBehind {
    /// Since when writes wait, if any do.
    since: Option<Instant>,
}

/// What the event loop does with held writes of received posts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteWhen {
    /// Make them now.
    Now,
    /// Make them at this instant at the latest.
    At(Instant),
}

impl WriteBehind {
    /// Received posts' writes are held (`posts` of them in all) at `now`: when to make them.
    pub(crate) fn held(&mut self, now: Instant, posts: usize) -> WriteWhen {
        let since = *self.since.get_or_insert(now);
        if posts >= WRITE_BEHIND_POSTS {
            WriteWhen::Now
        } else {
            WriteWhen::At(since + WRITE_BEHIND)
        }
    }

    /// When the held writes are due (none if none wait).
    pub(crate) fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + WRITE_BEHIND)
    }

    /// The held writes were made (or failed): nothing waits.
    pub(crate) fn written(&mut self) {
        self.since = None;
    }
}

/// The group commit's state.
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Writes were made since the running fsync (if any) started.
    dirty: bool,
    /// Since when received posts' writes wait for an fsync that may come later (at the latest
    /// [`RECEIVED_POST_FSYNC`] after this), if any do.
    deferred_since: Option<Instant>,
    /// Answers waiting for the writes made since the running fsync started.
    waiting: Vec<Held>,
    /// Answers waiting for held writes to be made (then they wait in `waiting`).
    unwritten: Vec<Held>,
    in_flight: Option<InFlight>,
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

    /// A post received from a peer was written (not durable yet): its fsync may wait until
    /// [`GroupCommit::deferred_due`], or come sooner with another write's.
    pub(crate) fn wrote_received_post(&mut self, now: Instant) {
        self.deferred_since.get_or_insert(now);
    }

    /// When the received posts' writes waiting for an fsync must have one started (none if
    /// none wait). The event loop calls [`GroupCommit::defer_ended`] then.
    pub(crate) fn deferred_due(&self) -> Option<Instant> {
        self.deferred_since.map(|since| since + RECEIVED_POST_FSYNC)
    }

    /// The received posts' wait is over: the next [`GroupCommit::start`] makes them durable.
    pub(crate) fn defer_ended(&mut self) {
        if self.deferred_since.take().is_some() {
            self.dirty = true;
        }
    }

    /// A write was made whose answer must wait until it is durable: `answer` goes to `reply`
    /// once an fsync started after this call has returned.
    pub(crate) fn answer_when_durable(&mut self, reply: Reply, answer: Result<Response, ApiError>) {
        self.dirty = true;
        self.waiting.push(Held { reply, answer });
    }

    /// As [`GroupCommit::answer_when_durable`], for a post whose store writes are still held
    /// (made after its publish, `replica/held.rs`): it waits for [`GroupCommit::held_written`].
    pub(crate) fn answer_when_written(&mut self, reply: Reply, answer: Result<Response, ApiError>) {
        self.unwritten.push(Held { reply, answer });
    }

    /// Whether an answer waits for held writes (a post of ours, `replica/held.rs`).
    pub(crate) fn waits_for_writes(&self) -> bool {
        !self.unwritten.is_empty()
    }

    /// The held writes were made (then the answers waiting for them wait for the next fsync),
    /// or failed (then they are answered now with the error that says the post went out but
    /// is not stored on this device).
    pub(crate) fn held_written(&mut self, written: Result<(), String>) {
        let unwritten = std::mem::take(&mut self.unwritten);
        match written {
            Ok(()) => {
                self.dirty |= !unwritten.is_empty();
                self.waiting.extend(unwritten);
            }
            Err(e) => {
                for held in unwritten {
                    held.send(Err(e.clone()));
                }
            }
        }
    }

    /// Start an fsync if writes wait and none is running; the answers waiting go with it.
    pub(crate) fn start(&mut self, replica: &Replica) {
        if !self.dirty || self.in_flight.is_some() {
            return;
        }
        self.dirty = false;
        // The fsync covers every write made so far, the received posts' included.
        self.deferred_since = None;
        let flusher = replica.flusher();
        let done = tokio::task::spawn_blocking(move || flusher.flush());
        self.in_flight = Some(InFlight {
            done,
            answers: std::mem::take(&mut self.waiting),
        });
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
        if self.dirty
            || self.deferred_since.is_some()
            || !self.waiting.is_empty()
            || !self.unwritten.is_empty()
        {
            self.deferred_since = None;
            let flushed = flusher.flush().map_err(|e| e.to_string());
            self.dirty = false;
            let unwritten = std::mem::take(&mut self.unwritten);
            for held in std::mem::take(&mut self.waiting)
                .into_iter()
                .chain(unwritten)
            {
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

    /// A post whose writes are held (published first, `replica/held.rs`) is answered only by an
    /// fsync started after `held_written`; if the held writes fail, it is answered at once with
    /// the error, never with success.
    #[tokio::test]
    async fn an_answer_waits_for_its_held_writes_then_their_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();
        let (reply, mut answered) = oneshot::channel();
        commit.answer_when_written(reply, posted("c"));
        // An fsync of other writes, started while the post's writes are still held.
        commit.wrote();
        commit.start(&replica);
        commit.finished().await;
        assert!(answered.try_recv().is_err(), "answered before its writes");
        commit.held_written(Ok(()));
        assert!(answered.try_recv().is_err(), "answered before its fsync");
        commit.start(&replica);
        commit.finished().await;
        assert!(matches!(
            answered.try_recv(),
            Ok(Ok(Response::Posted { .. }))
        ));

        let (reply, mut failed) = oneshot::channel();
        commit.answer_when_written(reply, posted("d"));
        commit.held_written(Err("disk full".into()));
        match failed.try_recv() {
            Ok(Err(e)) => assert!(e.to_string().contains("disk full"), "{e}"),
            other => panic!("expected the storing error, got {other:?}"),
        }
    }

    /// A received post's write starts no fsync by itself: `deferred_due` says when one must
    /// (`RECEIVED_POST_FSYNC` after the first such write waiting), and after `defer_ended` the
    /// next `start` runs it. An fsync started for anything else covers the post and ends its wait.
    #[tokio::test]
    async fn a_received_post_waits_for_its_fsync_at_most_the_deferral() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();
        let t0 = Instant::now();
        commit.wrote_received_post(t0);
        commit.wrote_received_post(t0 + Duration::from_millis(300));
        assert_eq!(commit.deferred_due(), Some(t0 + RECEIVED_POST_FSYNC));
        commit.start(&replica);
        assert!(
            commit.in_flight.is_none(),
            "an fsync started for received posts before their deferral ended"
        );
        commit.defer_ended();
        assert_eq!(commit.deferred_due(), None);
        commit.start(&replica);
        assert!(
            commit.in_flight.is_some(),
            "no fsync once the deferral ended"
        );
        commit.finished().await;

        commit.wrote_received_post(Instant::now());
        let (reply, mut answered) = oneshot::channel();
        commit.answer_when_durable(reply, posted("e"));
        commit.start(&replica);
        assert_eq!(
            commit.deferred_due(),
            None,
            "the fsync covers the received post"
        );
        commit.finished().await;
        assert!(matches!(
            answered.try_recv(),
            Ok(Ok(Response::Posted { .. }))
        ));
    }

    /// A received post still waiting for its fsync at shutdown is flushed before the store
    /// closes.
    #[tokio::test]
    async fn closing_flushes_a_received_post_still_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let replica = replica_in(dir.path());
        let mut commit = GroupCommit::default();
        commit.wrote_received_post(Instant::now());
        commit.close(replica.flusher()).await;
        assert_eq!(commit.deferred_due(), None);
    }

    /// Write-behind: the window starts at the first held post and does not move with later
    /// ones; a full window is made at once; after the writes, nothing is due.
    #[test]
    fn received_posts_wait_one_window_from_the_first() {
        let mut behind = WriteBehind::default();
        assert_eq!(behind.due(), None);
        let t0 = Instant::now();
        assert_eq!(behind.held(t0, 1), WriteWhen::At(t0 + WRITE_BEHIND));
        let later = t0 + WRITE_BEHIND / 2;
        assert_eq!(behind.held(later, 2), WriteWhen::At(t0 + WRITE_BEHIND));
        assert_eq!(behind.due(), Some(t0 + WRITE_BEHIND));
        assert_eq!(behind.held(later, WRITE_BEHIND_POSTS), WriteWhen::Now);
        behind.written();
        assert_eq!(behind.due(), None);
        assert_eq!(behind.held(later, 1), WriteWhen::At(later + WRITE_BEHIND));
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
