//! The key deliveries a replica holds, kept as their encoded bytes only.
//!
//! A rotation carries one sealed share per member: about 115 bytes each on the wire, so about
//! 115 KB at 1,000 members, and its decoded form (a `Vec` of shares, each with its own 48-byte
//! ciphertext allocation, plus the decoded padding) was as large again. Every replica keeps
//! every delivery of every live epoch, and after a delivery is accepted (its signature verified,
//! its authority checked, our share opened) nothing but its id, epoch, author, kind, heads,
//! date and bytes is read again, except to find a share of our own to send again
//! ([`State::own_share`](super::State::own_share)), which decodes on use. Keeping only the bytes
//! and those few fields took the 200-replica simulation's peak from 736 to 483 MB, the
//! deliveries' share of its heap from about a quarter to about a sixth (docs/BENCHMARKS.md,
//! "Issue 12: 1,000 replicas, branch `sim` (fourth session, 2026-11-30)").

use std::collections::btree_map::{self, BTreeMap};

use crate::epoch::{DeliveryKind, EpochError, KeyDelivery};
use crate::{CollectiveId, DeliveryId, EpochId, MemberId, OpId};

/// A key delivery as a replica keeps it: its bytes (what sync sends and the store keeps) and
/// the fields of its verified body that the replica reads again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptDelivery {
    id: DeliveryId,
    epoch: EpochId,
    author: MemberId,
    kind: DeliveryKind,
    heads: Box<[OpId]>,
    timestamp: u64,
    encoded: Box<[u8]>,
}

impl KeptDelivery {
    /// What is kept of a verified delivery.
    pub fn of(delivery: &KeyDelivery) -> Self {
        let body = delivery.body();
        Self {
            id: delivery.id(),
            epoch: body.epoch,
            author: body.author,
            kind: body.kind,
            heads: body.heads.clone().into_boxed_slice(),
            timestamp: body.timestamp,
            encoded: delivery.encoded().into(),
        }
    }

    /// The id.
    pub fn id(&self) -> DeliveryId {
        self.id
    }
    /// The epoch delivered.
    pub fn epoch(&self) -> EpochId {
        self.epoch
    }
    /// Who signed it.
    pub fn author(&self) -> MemberId {
        self.author
    }
    /// Rotation or share.
    pub fn kind(&self) -> DeliveryKind {
        self.kind
    }
    /// The membership state its recipients were taken from (sorted).
    pub fn heads(&self) -> &[OpId] {
        &self.heads
    }
    /// When it was made, by its author's clock.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// The bytes as sent and stored.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
    /// The whole delivery, decoded and its signature verified again (the bytes were verified
    /// when they were accepted; decoding is the only way to read the shares, so this checks
    /// again rather than trust a decoder that skips it).
    pub fn decode(&self, collective: CollectiveId) -> Result<KeyDelivery, EpochError> {
        KeyDelivery::decode(&self.encoded, collective)
    }
}

/// The key deliveries held, by id.
#[derive(Clone, Debug, Default)]
pub struct Deliveries {
    map: BTreeMap<DeliveryId, KeptDelivery>,
}

impl Deliveries {
    /// One delivery.
    pub fn get(&self, id: &DeliveryId) -> Option<&KeptDelivery> {
        self.map.get(id)
    }
    /// Whether it is held.
    pub fn contains_key(&self, id: &DeliveryId) -> bool {
        self.map.contains_key(id)
    }
    /// How many are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Every delivery, by id.
    pub fn iter(&self) -> btree_map::Iter<'_, DeliveryId, KeptDelivery> {
        self.map.iter()
    }
    /// Every delivery, in id order.
    pub fn values(&self) -> btree_map::Values<'_, DeliveryId, KeptDelivery> {
        self.map.values()
    }
    pub(super) fn insert(&mut self, delivery: &KeyDelivery) {
        self.map.insert(delivery.id(), KeptDelivery::of(delivery));
    }
    pub(super) fn remove(&mut self, id: &DeliveryId) {
        self.map.remove(id);
    }
}

impl<'a> IntoIterator for &'a Deliveries {
    type Item = (&'a DeliveryId, &'a KeptDelivery);
    type IntoIter = btree_map::Iter<'a, DeliveryId, KeptDelivery>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}
