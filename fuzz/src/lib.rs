//! Fuzz targets for the Lookout protocol core. The bodies live in [`targets`], which
//! `protocol/tests/fuzz_corpus_replay.rs` also compiles, so ordinary `cargo test` replays the
//! corpus through exactly the code the fuzzers run.
#![forbid(unsafe_code)]

pub mod targets;
