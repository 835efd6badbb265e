//! The real `lookout` binary driven as a person would, one module per area, all in one test
//! binary (each separate binary linked libp2p again: most of the build time of `cargo test`).
//! The tests share the harness in `common` (run a command with a timeout, a `lookout run` node
//! killed when dropped).
//!
//! Run one module: `cargo test -p lookout-cli --test cli cli_duress::`. Add one: put `NAME.rs`
//! beside this file, `use crate::common::*;` in it, and add `mod NAME;` below. A test that
//! changes state of the whole test process (environment variables, signal handlers, resource
//! limits) or measures it gets its own file in `cli/tests/` instead (see docs/TESTING.md).

mod common;

mod adversarial_crash;
mod adversarial_device;
mod adversarial_partition;
mod cli_at_rest;
mod cli_demo;
mod cli_duress;
mod cli_errors;
mod cli_forgiving;
mod cli_hostile_text;
mod cli_kdf_upgrade;
mod cli_live;
mod cli_mailbox;
mod cli_network;
mod cli_privacy;
mod cli_regressions;
mod cli_scenario;
mod cli_ui;
mod nat_mailbox;
