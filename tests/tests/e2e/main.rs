//! End-to-end scenarios with several real nodes, one module per scenario, all in one test binary
//! (each separate binary linked libp2p again: most of the build time of `cargo test`).
//!
//! Run one module: `cargo test -p lookout-tests --test e2e three_nodes::`. Add a scenario: put
//! `NAME.rs` beside this file and add `mod NAME;` below. A test that changes state of the whole
//! process (a global tracing subscriber, environment variables, signal handlers, resource
//! limits) or measures the whole process (its memory, its CPU) gets its own file in `tests/`
//! instead, as `log_privacy.rs` and `flood.rs` do (see docs/TESTING.md).

mod adversarial_content;
mod adversarial_epochs;
mod adversarial_keyshare;
mod adversarial_members;
mod adversarial_membership;
mod at_rest;
mod connection_budget;
mod crash_mid_write;
mod crossed_dials;
mod discovery;
mod hostile_peers;
mod invite_admission;
mod member_peers;
mod non_member;
mod offline_catch_up;
mod partition_heal;
mod revocation;
mod rogue_moderator_sybils;
mod shown_before_durable;
mod slow_peers;
mod three_nodes;
mod two_approvals;
mod unproven_flood;
