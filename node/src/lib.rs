//! The Lookout node: the program every member of a collective runs.
//!
//! It drives the pure [`lookout_protocol`] core over libp2p ([`net`]), keeps everything in an
//! encrypted sled store ([`store`]), and serves the CLI over a local control socket
//! ([`control`]). [`replica::Replica`] is the node's state without the network, used by the
//! event loop and, when no node runs, by the CLI directly.

#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub(crate) mod commit;
pub mod control;
pub mod device;
pub mod dial;
pub mod hardening;
pub mod hop;
pub mod mailbox;
pub mod mailboxes;
pub mod net;
pub mod node;
pub(crate) mod policy;
pub mod reach;
pub mod replica;
pub mod store;
pub mod sync;
pub mod when;

pub use node::{start, NodeConfig, NodeHandle, DEFAULT_MEMBER_CONNECTIONS};
