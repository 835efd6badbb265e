//! The Lookout node: the program every member of a collective runs.
//!
//! It drives the pure [`lookout_protocol`] core over libp2p ([`net`]), keeps everything in an
//! encrypted sled store ([`store`]), and serves the CLI over a local control socket
//! ([`control`]). [`replica::Replica`] is the node's state without the network, used by the
//! event loop and, when no node runs, by the CLI directly.

#![forbid(unsafe_code)]

pub mod api;
pub mod control;
pub mod hardening;
pub mod net;
pub mod node;
pub mod replica;
pub mod store;
pub mod sync;

pub use node::{start, NodeConfig, NodeHandle};

use libp2p::identity::PublicKey;
use libp2p::PeerId;
use lookout_protocol::MemberId;

/// The libp2p peer id of a member's node (derived from the member's Ed25519 key).
pub fn peer_id_of(member: &MemberId) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(&member.0).ok()?;
    Some(PeerId::from_public_key(&PublicKey::from(key)))
}

/// The member behind a peer id, if the peer id embeds an Ed25519 key.
pub fn member_of(peer: &PeerId) -> Option<MemberId> {
    let multihash = peer.as_ref();
    // Identity multihash of a protobuf-encoded public key.
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(MemberId(ed.to_bytes()))
}
