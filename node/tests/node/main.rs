//! The node's integration tests, one module per area, all in one test binary (each separate
//! binary linked libp2p again: most of the build time of `cargo test`).
//!
//! Run one module: `cargo test -p lookout-node --test node control::`. Add one: put `NAME.rs`
//! beside this file and add `mod NAME;` below. A test that changes state of the whole process
//! (a global tracing subscriber, environment variables, signal handlers, resource limits) or
//! measures it gets its own file in `node/tests/` instead (see docs/TESTING.md).

/// The fuzz targets' bodies and fixture (`fuzz/` is outside the workspace), shared by
/// `fuzz_corpus_replay` and `sync_push`.
#[path = "../../../fuzz/src/node_targets.rs"]
#[allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]
mod node_targets;

mod agreement_rotation;
mod control;
mod fuzz_corpus_replay;
mod net;
mod quota_review8;
mod replica;
mod review10;
mod review18;
mod sync_overlap;
mod sync_push;
