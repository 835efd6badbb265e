//! Fixed-size identifiers and domain-separated hashing.
//!
//! Every hash in Lookout is BLAKE3 in key-derivation mode with a context string that names what
//! is being hashed and the format version, so a hash of one kind of object can never be confused
//! with a hash of another.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Hash `parts` (concatenated) under a domain-separation `context`.
pub fn hash(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// Context strings, one per hashed object kind. Changing one is a wire-format change.
pub mod context {
    /// Content id of a post: hash of the author's signed inner body, whatever its wrapping.
    pub const CONTENT_ID: &str = "lookout content id v2";
    /// Id of a membership operation: hash of its signed encoding.
    pub const OP_ID: &str = "lookout membership op id v1";
    /// Id of a collective: hash of its signed genesis record.
    pub const COLLECTIVE_ID: &str = "lookout collective id v1";
    /// Id of an epoch: hash of the epoch key itself.
    pub const EPOCH_ID: &str = "lookout epoch id v1";
    /// Id of a key delivery: hash of its signed encoding.
    pub const DELIVERY_ID: &str = "lookout key delivery id v1";
    /// One-time key a delivery's share is sealed under, from an X25519 shared secret.
    pub const DELIVERY_WRAP: &str = "lookout key delivery wrap v2";
    /// Gossip topic name of a collective.
    pub const TOPIC: &str = "lookout gossip topic v1";
    /// Fingerprint of a public identity shown for in-person checks.
    pub const FINGERPRINT: &str = "lookout fingerprint v1";
    /// Checksum appended to text codes.
    pub const TEXT_CHECKSUM: &str = "lookout text code checksum v1";
    /// Short tag of a collective carried in clear on envelopes.
    pub const COLLECTIVE_TAG: &str = "lookout collective tag v1";
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex of all 32 bytes.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parse 64 hex digits.
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut out).ok()?;
                Some(Self(out))
            }

            /// The first 6 bytes as 12 hex digits: enough to name it to a person.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..6])
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id_type!(
    /// A member: the bytes of the member's Ed25519 verifying key.
    MemberId
);
id_type!(
    /// A membership operation: hash of its signed encoding.
    OpId
);
id_type!(
    /// A collective: hash of its signed genesis record.
    CollectiveId
);
id_type!(
    /// A group key epoch: hash of the epoch key (not a counter, so concurrent rotations never collide).
    EpochId
);
id_type!(
    /// A post (alert, retraction, ...): hash of its signed inner body, carried in clear on its
    /// envelope.
    ContentId
);
id_type!(
    /// A key delivery (rotation or share): hash of its signed encoding.
    DeliveryId
);
id_type!(
    /// A mailbox (an always-on store-and-forward node that holds no key of the collective): the
    /// bytes of its Ed25519 verifying key. A key that is or was a member is never a mailbox.
    MailboxId
);

impl CollectiveId {
    /// The gossip topic name of this collective: a hash, so the name never appears on the wire.
    pub fn topic(&self) -> String {
        hex::encode(hash(context::TOPIC, &[&self.0]))
    }

    /// The 8-byte tag carried in clear on envelopes so a node can drop foreign traffic cheaply.
    pub fn tag(&self) -> [u8; 8] {
        let full = hash(context::COLLECTIVE_TAG, &[&self.0]);
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&full[..8]);
        tag
    }
}

impl ContentId {
    /// The content id of a post: a hash of the encoding of its signed inner body. Two envelopes
    /// carrying the same signed body (re-encrypted with another nonce, say) are the same post.
    pub fn of_signed_body(body: &[u8]) -> Self {
        Self(hash(context::CONTENT_ID, &[body]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_separate_domains() {
        let a = hash(context::OP_ID, &[b"x"]);
        let b = hash(context::CONTENT_ID, &[b"x"]);
        assert_ne!(a, b);
    }

    #[test]
    fn hex_round_trip() {
        let id = OpId([7u8; 32]);
        assert_eq!(OpId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(OpId::from_hex("zz"), None);
        assert_eq!(id.short().len(), 12);
    }
}
