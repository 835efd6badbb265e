//! The mailbox's blind store: the collective's items, checked as far as a node without keys can,
//! kept for their time to live, within per-member daily quotas and a total cap.
//!
//! Three sled trees hold the encoded items by id (ops, deliveries, envelopes); one more holds
//! the binding (the genesis record). Only ids, timestamps and sizes are kept in memory, so the
//! resident size grows by about a hundred bytes per stored item. Nothing records which member
//! pushed which item: the quota counters are per member and per UTC day, in memory only.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lookout_protocol::envelope::{self, BUCKETS, COARSE_SECS, MAX_CLOCK_SKEW_SECS};
use lookout_protocol::epoch::KeyDelivery;
use lookout_protocol::membership::{InsertOutcome, MembershipLog, Op, SignedGenesis};
use lookout_protocol::reconcile::Item;
use lookout_protocol::replica::SetKind;
use lookout_protocol::{CollectiveId, MemberId};

const OPS_TREE: &str = "mailbox ops";
const DELIVERIES_TREE: &str = "mailbox deliveries";
const ENVELOPES_TREE: &str = "mailbox envelopes";
const META_TREE: &str = "mailbox meta";
/// Kind byte ‖ id → timestamp (u64 BE) ‖ size (u32 BE) of every delivery and envelope: what the
/// in-memory index is rebuilt from at start, without reading a single body.
const INDEX_TREE: &str = "mailbox index";
const GENESIS_KEY: &[u8] = b"genesis";

/// Seconds in a day.
const DAY: u64 = 86_400;

/// Limits on what the mailbox keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Items one member may add per UTC day (ops are not counted: the membership rules bound
    /// them).
    pub member_items_per_day: u32,
    /// Bytes of items one member may add per UTC day.
    pub member_bytes_per_day: u64,
    /// Most deliveries and envelopes held in all; the oldest envelope goes first.
    pub max_items: usize,
    /// Most bytes of deliveries and envelopes held in all.
    pub max_bytes: u64,
}

impl Default for StoreLimits {
    /// 1,000 items and 8 MiB per member per day; 200,000 items and 1 GiB in all.
    fn default() -> Self {
        Self {
            member_items_per_day: 1_000,
            member_bytes_per_day: 8 * 1024 * 1024,
            max_items: 200_000,
            max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Why the store could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (disk full, permissions, a damaged database).
    #[error("the mailbox database failed: {0}")]
    Db(#[from] sled::Error),
    /// The stored genesis record does not decode.
    #[error("the mailbox database holds a damaged genesis record; re-initialise the mailbox")]
    DamagedGenesis,
}

/// What became of one pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored: forward it to the other members.
    New,
    /// Already held (or an op waiting for its parents).
    Duplicate,
    /// Over the pushing member's quota for today.
    OverQuota,
    /// Expired or too far in the future.
    OutOfTime,
    /// Malformed, for another collective, badly signed, or by a non-member.
    Invalid,
    /// Nothing but ops is taken before the mailbox is bound.
    NotBound,
}

/// Counters for a status line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Ops held.
    pub ops: usize,
    /// Deliveries held.
    pub deliveries: usize,
    /// Envelopes held.
    pub envelopes: usize,
    /// Bytes of deliveries and envelopes held.
    pub bytes: u64,
}

/// One kind's in-memory index: (timestamp, id) → size, plus a cached sorted item list.
#[derive(Default)]
struct Index {
    items: BTreeMap<Item, u32>,
    cache: Option<Vec<Item>>,
}

impl Index {
    fn insert(&mut self, item: Item, size: u32) {
        self.items.insert(item, size);
        self.cache = None;
    }

    fn remove(&mut self, item: &Item) -> Option<u32> {
        let size = self.items.remove(item);
        if size.is_some() {
            self.cache = None;
        }
        size
    }

    fn sorted(&mut self) -> &[Item] {
        self.cache
            .get_or_insert_with(|| self.items.keys().copied().collect())
    }
}

/// The blind store.
pub struct BlindStore {
    _db: sled::Db,
    ops: sled::Tree,
    deliveries: sled::Tree,
    envelopes: sled::Tree,
    meta: sled::Tree,
    index_tree: sled::Tree,
    log: Option<MembershipLog>,
    index: [Index; 3],
    /// Bytes of deliveries and envelopes.
    bytes: u64,
    limits: StoreLimits,
    /// Member → (UTC day, items, bytes) added that day.
    quota: HashMap<MemberId, (u64, u32, u64)>,
}

fn slot(kind: SetKind) -> usize {
    match kind {
        SetKind::Ops => 0,
        SetKind::Deliveries => 1,
        SetKind::Envelopes => 2,
    }
}

fn index_key(kind: SetKind, id: &[u8; 32]) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = match kind {
        SetKind::Ops => 0,
        SetKind::Deliveries => 1,
        SetKind::Envelopes => 2,
    };
    key[1..].copy_from_slice(id);
    key
}

fn size_of(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

impl BlindStore {
    /// Opens (or creates) the store in directory `dir`, loading the index.
    pub fn open(dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()?;
        let mut store = Self {
            ops: db.open_tree(OPS_TREE)?,
            deliveries: db.open_tree(DELIVERIES_TREE)?,
            envelopes: db.open_tree(ENVELOPES_TREE)?,
            meta: db.open_tree(META_TREE)?,
            index_tree: db.open_tree(INDEX_TREE)?,
            _db: db,
            log: None,
            index: Default::default(),
            bytes: 0,
            limits,
            quota: HashMap::new(),
        };
        store.load()?;
        Ok(store)
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let Some(genesis) = self.meta.get(GENESIS_KEY)? else {
            return Ok(());
        };
        let genesis = SignedGenesis::decode(&genesis).map_err(|_| StoreError::DamagedGenesis)?;
        let collective = genesis.id();
        let mut log = MembershipLog::new(genesis);
        let mut ops = Vec::new();
        for entry in self.ops.iter() {
            let (_, bytes) = entry?;
            if let Ok(op) = Op::decode(&bytes, collective) {
                ops.push(op);
            }
        }
        log.extend(ops);
        for op in log.ops() {
            self.index[0].insert(
                Item {
                    timestamp: op.body().timestamp,
                    id: op.id().0,
                },
                size_of(op.encoded()),
            );
        }
        self.log = Some(log);
        for entry in self.index_tree.iter() {
            let (key, value) = entry?;
            let kind = match key.first() {
                Some(1) => SetKind::Deliveries,
                Some(2) => SetKind::Envelopes,
                _ => continue,
            };
            let (Some(id), Some(timestamp), Some(size)) = (
                key.get(1..33).and_then(|b| <[u8; 32]>::try_from(b).ok()),
                value
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes),
                value
                    .get(8..12)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes),
            ) else {
                continue;
            };
            self.bytes += u64::from(size);
            self.index[slot(kind)].insert(Item { timestamp, id }, size);
        }
        Ok(())
    }

    /// The collective this mailbox serves, once bound.
    pub fn collective(&self) -> Option<CollectiveId> {
        self.log.as_ref().map(MembershipLog::collective)
    }

    /// The resolved membership, once bound.
    pub fn log(&self) -> Option<&MembershipLog> {
        self.log.as_ref()
    }

    /// Binds the store to the collective of `genesis` (persisted). Refused if already bound.
    pub fn bind(&mut self, genesis: SignedGenesis) -> Result<bool, StoreError> {
        if self.log.is_some() {
            return Ok(false);
        }
        self.meta.insert(GENESIS_KEY, genesis.encoded())?;
        self.meta.flush()?;
        self.log = Some(MembershipLog::new(genesis));
        Ok(true)
    }

    /// The sorted reconciliation set of one kind.
    pub fn sync_items(&mut self, kind: SetKind) -> &[Item] {
        self.index[slot(kind)].sorted()
    }

    /// The encodings of the items with these ids that the store holds.
    pub fn fetch(&self, kind: SetKind, ids: &[[u8; 32]]) -> Result<Vec<Vec<u8>>, StoreError> {
        let tree = self.tree(kind);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) = tree.get(id)? {
                out.push(bytes.to_vec());
            }
        }
        Ok(out)
    }

    fn tree(&self, kind: SetKind) -> &sled::Tree {
        match kind {
            SetKind::Ops => &self.ops,
            SetKind::Deliveries => &self.deliveries,
            SetKind::Envelopes => &self.envelopes,
        }
    }

    /// Takes one item pushed by `member` at `now`.
    pub fn put(
        &mut self,
        member: MemberId,
        kind: SetKind,
        bytes: &[u8],
        now: u64,
    ) -> Result<Stored, StoreError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(Stored::NotBound);
        };
        let collective = log.collective();
        match kind {
            SetKind::Ops => {
                let Ok(op) = Op::decode(bytes, collective) else {
                    return Ok(Stored::Invalid);
                };
                match log.insert(op) {
                    InsertOutcome::Added(ids) => {
                        for id in ids {
                            if let Some(op) = log.get(&id) {
                                self.ops.insert(id.0, op.encoded())?;
                                self.index[0].insert(
                                    Item {
                                        timestamp: op.body().timestamp,
                                        id: id.0,
                                    },
                                    size_of(op.encoded()),
                                );
                            }
                        }
                        // Ops the log dropped (an author over quota) leave the store too.
                        for id in log.take_evicted() {
                            self.ops.remove(id.0)?;
                            let gone: Vec<Item> = self.index[0]
                                .items
                                .keys()
                                .filter(|i| i.id == id.0)
                                .copied()
                                .collect();
                            for item in gone {
                                self.index[0].remove(&item);
                            }
                        }
                        Ok(Stored::New)
                    }
                    InsertOutcome::Duplicate | InsertOutcome::MissingParents(_) => {
                        Ok(Stored::Duplicate)
                    }
                    InsertOutcome::Refused(_) => Ok(Stored::Invalid),
                }
            }
            SetKind::Deliveries => {
                let Ok(delivery) = KeyDelivery::decode(bytes, collective) else {
                    return Ok(Stored::Invalid);
                };
                if !log.roster().is_member(&delivery.body().author) {
                    return Ok(Stored::Invalid);
                }
                let policy = log.roster().policy();
                let ttl =
                    (u64::from(policy.rotation_days) + u64::from(policy.max_alert_days)) * DAY;
                let timestamp = delivery.body().timestamp;
                if timestamp > now + MAX_CLOCK_SKEW_SECS || timestamp.saturating_add(ttl) <= now {
                    return Ok(Stored::OutOfTime);
                }
                self.store_counted(member, kind, delivery.id().0, timestamp, bytes, now)
            }
            SetKind::Envelopes => {
                let Ok(outer) = envelope::peek(bytes) else {
                    return Ok(Stored::Invalid);
                };
                if outer.collective_tag != collective.tag()
                    || !BUCKETS.iter().any(|b| b + 16 == outer.ciphertext.len())
                {
                    return Ok(Stored::Invalid);
                }
                let ttl = log.roster().policy().max_alert_secs();
                if outer.coarse_time > now + MAX_CLOCK_SKEW_SECS + COARSE_SECS
                    || outer.coarse_time.saturating_add(ttl) <= now
                {
                    return Ok(Stored::OutOfTime);
                }
                self.store_counted(member, kind, outer.id.0, outer.coarse_time, bytes, now)
            }
        }
    }

    fn store_counted(
        &mut self,
        member: MemberId,
        kind: SetKind,
        id: [u8; 32],
        timestamp: u64,
        bytes: &[u8],
        now: u64,
    ) -> Result<Stored, StoreError> {
        let tree = self.tree(kind).clone();
        if tree.contains_key(id)? {
            return Ok(Stored::Duplicate);
        }
        let day = now / DAY;
        let size = size_of(bytes);
        let counter = self.quota.entry(member).or_insert((day, 0, 0));
        if counter.0 != day {
            *counter = (day, 0, 0);
        }
        if counter.1 >= self.limits.member_items_per_day
            || counter.2 + u64::from(size) > self.limits.member_bytes_per_day
        {
            return Ok(Stored::OverQuota);
        }
        counter.1 += 1;
        counter.2 += u64::from(size);
        tree.insert(id, bytes)?;
        let mut entry = [0u8; 12];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&size.to_be_bytes());
        self.index_tree.insert(index_key(kind, &id), &entry)?;
        self.index[slot(kind)].insert(Item { timestamp, id }, size);
        self.bytes += u64::from(size);
        self.enforce_cap()?;
        Ok(Stored::New)
    }

    /// Evicts the oldest envelopes (then the oldest deliveries) while over the total cap.
    fn enforce_cap(&mut self) -> Result<(), StoreError> {
        while self.index[1].items.len() + self.index[2].items.len() > self.limits.max_items
            || self.bytes > self.limits.max_bytes
        {
            let kind = if self.index[2].items.is_empty() {
                SetKind::Deliveries
            } else {
                SetKind::Envelopes
            };
            let Some(oldest) = self.index[slot(kind)].items.keys().next().copied() else {
                break;
            };
            self.delete(kind, &oldest)?;
        }
        Ok(())
    }

    fn delete(&mut self, kind: SetKind, item: &Item) -> Result<(), StoreError> {
        self.tree(kind).remove(item.id)?;
        self.index_tree.remove(index_key(kind, &item.id))?;
        if let Some(size) = self.index[slot(kind)].remove(item) {
            self.bytes = self.bytes.saturating_sub(u64::from(size));
        }
        Ok(())
    }

    /// Deletes envelopes and deliveries whose time to live has passed at `now`; returns how many.
    pub fn expire(&mut self, now: u64) -> Result<usize, StoreError> {
        let Some(policy) = self.log.as_ref().map(|l| l.roster().policy().clone()) else {
            return Ok(0);
        };
        let ttls = [
            (
                SetKind::Deliveries,
                (u64::from(policy.rotation_days) + u64::from(policy.max_alert_days)) * DAY,
            ),
            (SetKind::Envelopes, policy.max_alert_secs()),
        ];
        let mut gone = 0;
        for (kind, ttl) in ttls {
            let expired: Vec<Item> = self.index[slot(kind)]
                .items
                .keys()
                .take_while(|i| i.timestamp.saturating_add(ttl) <= now)
                .copied()
                .collect();
            for item in &expired {
                self.delete(kind, item)?;
            }
            gone += expired.len();
        }
        if gone > 0 {
            self.flush()?;
        }
        Ok(gone)
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        for tree in [
            &self.ops,
            &self.deliveries,
            &self.envelopes,
            &self.meta,
            &self.index_tree,
        ] {
            tree.flush()?;
        }
        Ok(())
    }

    /// Counters for a status line.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            ops: self.index[0].items.len(),
            deliveries: self.index[1].items.len(),
            envelopes: self.index[2].items.len(),
            bytes: self.bytes,
        }
    }
}
