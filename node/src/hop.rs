//! An optional timeline of alerts through the nodes of one process, for the propagation
//! benchmark (`tests/tests/benchmarks.rs`): with `LOOKOUT_HOP_TIMES` set, the event loops mark
//! when an alert reaches each stage (a post taken in, published, a gossiped alert taken from
//! gossipsub, validated, its verdict reported, shown to watchers, written to the store), and
//! [`take`] hands the marks over. Off (one cached check per mark) otherwise.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// A stage of an alert's path through a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The poster's loop took the `post` command.
    PostIn,
    /// The poster handed the sealed alert to gossipsub.
    Published,
    /// The poster wrote it to its store.
    PostStored,
    /// A receiver's loop took the alert from gossipsub (first copy only: gossipsub drops
    /// duplicates before the node sees them).
    GossipIn,
    /// The receiver's checks were done (decode, signature, membership, epoch, decryption).
    Validated,
    /// The receiver reported the verdict to gossipsub (an accepted alert is forwarded).
    Reported,
    /// Watchers were told (the benchmark's arrival).
    Shown,
    /// The receiver wrote it to its store (before its fsync).
    Stored,
}

static ON: OnceLock<bool> = OnceLock::new();
static MARKS: Mutex<Vec<(Stage, Instant)>> = Mutex::new(Vec::new());

/// Whether marks are recorded (`LOOKOUT_HOP_TIMES` set).
pub fn enabled() -> bool {
    *ON.get_or_init(|| std::env::var_os("LOOKOUT_HOP_TIMES").is_some())
}

/// Record that an alert reached `stage` now.
pub(crate) fn mark(stage: Stage) {
    if enabled() {
        if let Ok(mut marks) = MARKS.lock() {
            marks.push((stage, Instant::now()));
        }
    }
}

/// The marks recorded since the last call.
pub fn take() -> Vec<(Stage, Instant)> {
    MARKS
        .lock()
        .map(|mut marks| std::mem::take(&mut *marks))
        .unwrap_or_default()
}
