//! Whether this node can be reached, and how: a pure policy over what AutoNAT found, the relay
//! reservations the node holds, its listen addresses and the time.
//!
//! - `direct`: AutoNAT (asked through an admitted mailbox) dialled one of this node's addresses
//!   back recently; members anywhere can connect straight to it.
//! - `relayed`: not known to be directly reachable, but a mailbox holds a live reservation for
//!   it: members reach it through that mailbox (and upgrade to a direct connection by hole
//!   punching where the NATs allow).
//! - `unreachable`: AutoNAT found it behind a NAT or firewall and no mailbox relays for it, or it
//!   listens nowhere: only connections it opens itself work (it still fetches and pushes by
//!   sync, so it still gets alerts, but nobody can call it).
//! - `unknown`: nothing said yet (no mailbox admitted it, or probes are still running).

use serde::{Deserialize, Serialize};

/// How this node can be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Reachability {
    /// Reachable at its own (public) address.
    Direct,
    /// Reachable through a mailbox's relay.
    Relayed,
    /// Not reachable: only its own outbound connections work.
    Unreachable,
    /// Not known yet.
    #[default]
    Unknown,
}

impl Reachability {
    /// The word shown to people and in the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relayed => "relayed",
            Self::Unreachable => "unreachable",
            Self::Unknown => "unknown",
        }
    }
}

/// What AutoNAT last concluded, and when (UNIX seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NatProbe {
    /// No conclusion yet.
    #[default]
    Unknown,
    /// A server dialled this node back at one of its addresses.
    Public {
        /// When.
        at: u64,
    },
    /// Servers could not dial this node back.
    Private {
        /// When.
        at: u64,
    },
}

/// A relay reservation this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// When the relay last accepted (or renewed) it, UNIX seconds.
    pub accepted_at: u64,
}

/// How long an AutoNAT conclusion counts: a little over two refresh periods, so one missed
/// probe does not flip the status but a network that changed does.
pub const PROBE_VALID_SECS: u64 = 15 * 60;

/// How long a reservation counts without a renewal: the relay's reservation lifetime (one hour
/// by default in circuit relay v2; the client renews well before).
pub const RESERVATION_VALID_SECS: u64 = 3600;

/// The inputs of [`reachability`].
#[derive(Clone, Debug, Default)]
pub struct Inputs<'a> {
    /// AutoNAT's last conclusion.
    pub nat: NatProbe,
    /// Reservations held (one per mailbox at most).
    pub reservations: &'a [Reservation],
    /// Addresses this node listens on, relayed ones excluded.
    pub listening: &'a [libp2p::Multiaddr],
    /// Now, UNIX seconds.
    pub now: u64,
}

/// Decides how this node can be reached.
pub fn reachability(inputs: &Inputs<'_>) -> Reachability {
    let fresh = |at: u64| inputs.now.saturating_sub(at) < PROBE_VALID_SECS && at <= inputs.now;
    if let NatProbe::Public { at } = inputs.nat {
        if fresh(at) && !inputs.listening.is_empty() {
            return Reachability::Direct;
        }
    }
    let relayed = inputs.reservations.iter().any(|r| {
        r.accepted_at <= inputs.now
            && inputs.now.saturating_sub(r.accepted_at) < RESERVATION_VALID_SECS
    });
    if relayed {
        return Reachability::Relayed;
    }
    if inputs.listening.is_empty() {
        return Reachability::Unreachable;
    }
    match inputs.nat {
        NatProbe::Private { at } if fresh(at) => Reachability::Unreachable,
        _ => Reachability::Unknown,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn addrs() -> Vec<libp2p::Multiaddr> {
        vec!["/ip4/10.0.1.2/udp/4001/quic-v1".parse().unwrap()]
    }

    #[test]
    fn nothing_known_is_unknown() {
        let listening = addrs();
        let inputs = Inputs {
            listening: &listening,
            now: NOW,
            ..Inputs::default()
        };
        assert_eq!(reachability(&inputs), Reachability::Unknown);
    }

    #[test]
    fn a_recent_public_probe_is_direct_even_with_a_reservation() {
        let listening = addrs();
        let reservations = [Reservation { accepted_at: NOW }];
        let inputs = Inputs {
            nat: NatProbe::Public { at: NOW - 60 },
            reservations: &reservations,
            listening: &listening,
            now: NOW,
        };
        assert_eq!(reachability(&inputs), Reachability::Direct);
    }

    #[test]
    fn behind_a_nat_with_a_reservation_is_relayed_and_without_one_unreachable() {
        let listening = addrs();
        let reservations = [Reservation {
            accepted_at: NOW - 10,
        }];
        let mut inputs = Inputs {
            nat: NatProbe::Private { at: NOW - 5 },
            reservations: &reservations,
            listening: &listening,
            now: NOW,
        };
        assert_eq!(reachability(&inputs), Reachability::Relayed);
        inputs.reservations = &[];
        assert_eq!(reachability(&inputs), Reachability::Unreachable);
    }

    #[test]
    fn a_reservation_alone_is_enough_for_relayed() {
        let reservations = [Reservation { accepted_at: NOW }];
        let inputs = Inputs {
            reservations: &reservations,
            now: NOW,
            ..Inputs::default()
        };
        assert_eq!(reachability(&inputs), Reachability::Relayed);
    }

    #[test]
    fn stale_findings_count_for_nothing() {
        let listening = addrs();
        let old = [Reservation {
            accepted_at: NOW - RESERVATION_VALID_SECS,
        }];
        let mut inputs = Inputs {
            nat: NatProbe::Public {
                at: NOW - PROBE_VALID_SECS,
            },
            reservations: &old,
            listening: &listening,
            now: NOW,
        };
        assert_eq!(reachability(&inputs), Reachability::Unknown);
        inputs.nat = NatProbe::Private {
            at: NOW - PROBE_VALID_SECS,
        };
        assert_eq!(reachability(&inputs), Reachability::Unknown);
        // A time from the future (a clock that jumped back) is no evidence either.
        inputs.nat = NatProbe::Public { at: NOW + 600 };
        assert_eq!(reachability(&inputs), Reachability::Unknown);
    }

    #[test]
    fn listening_nowhere_is_unreachable_unless_relayed() {
        let inputs = Inputs {
            nat: NatProbe::Public { at: NOW },
            now: NOW,
            ..Inputs::default()
        };
        assert_eq!(reachability(&inputs), Reachability::Unreachable);
    }

    #[test]
    fn the_words_are_stable() {
        assert_eq!(
            serde_json::to_string(&Reachability::Relayed).unwrap(),
            "\"relayed\""
        );
        assert_eq!(Reachability::Unreachable.as_str(), "unreachable");
    }
}
