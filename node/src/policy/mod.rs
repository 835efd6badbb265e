//! Time-driven decisions of the event loop as small pure policies: each holds its own state,
//! takes `now` (and, where it draws lots, a seeded RNG it owns) and returns what to do; none
//! touches a socket. The event loop only translates between them and the swarm (the shape of
//! quinn-proto's `poll_timeout` / `handle_timeout`; the loop still calls `handle_timeout` from its
//! 2 s tick, so `poll_timeout` is used by the tests only).
//!
//! - [`sync`]: which peer to sync with and when, one session at a time.
//! - [`budget`]: how many member connections to keep, and which members to dial for them.
//! - [`dial`]: back-off with jitter between attempts at one address (the address filtering
//!   that decides *whether* to dial stays in [`crate::dial`]).
//! - [`strikes`]: invalid data counted per member, decaying, up to a ban.
//! - [`farewell`]: how long a removed peer stays connected while it is told of its removal.
//! - [`punch`]: when to give the hole punch with a member connected only through a relay
//!   another round.
//!
//! Every policy forgets the peers it has not heard of for a while, so that churn of
//! transport ids (fresh for every run of every peer) cannot grow its state without bound.

pub(crate) mod budget;
pub(crate) mod dial;
pub(crate) mod farewell;
pub(crate) mod punch;
pub(crate) mod strikes;
pub(crate) mod sync;

/// A seed for a policy's RNG, from the operating system: jitter and random choices must not be
/// predictable by peers, while tests pass a fixed seed.
pub(crate) fn os_seed() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}
