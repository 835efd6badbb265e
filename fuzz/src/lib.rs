//! Fuzz targets for the Lookout protocol core and the node's peer-facing decoders. The bodies
//! live in [`targets`] and [`node_targets`], which `protocol/tests/fuzz_corpus_replay.rs` and
//! `node/tests/node/fuzz_corpus_replay.rs` also compile, so ordinary `cargo test` replays the corpus
//! through exactly the code the fuzzers run.
#![forbid(unsafe_code)]

pub mod node_targets;
pub mod targets;
