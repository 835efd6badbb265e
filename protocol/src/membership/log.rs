//! The set of membership ops a replica holds, with ops whose parents have not arrived yet.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{resolve, Op, Roster, SignedGenesis};
use crate::ids::{CollectiveId, OpId};

/// Most ops kept while waiting for their parents; beyond this the oldest-named are dropped (they
/// come back through sync once their history is there).
pub const MAX_ORPHANS: usize = 4096;
/// Distinct membership states whose rosters are cached (alerts name the state they were written at).
const ROSTER_CACHE: usize = 32;

/// What [`MembershipLog::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The op (and any waiting ops it completed) joined the log, in the order given.
    Added(Vec<OpId>),
    /// Already held.
    Duplicate,
    /// Held back until these parents arrive: ask peers for them.
    MissingParents(Vec<OpId>),
}

/// A replica's membership ops and the rosters they resolve to.
#[derive(Debug, Clone)]
pub struct MembershipLog {
    genesis: SignedGenesis,
    ops: BTreeMap<OpId, Op>,
    orphans: BTreeMap<OpId, Op>,
    /// Resolved lazily, so a batch of inserts costs one resolution.
    roster: OnceCell<Roster>,
    cache: HashMap<Vec<OpId>, Roster>,
}

impl MembershipLog {
    /// A log holding only the genesis record.
    pub fn new(genesis: SignedGenesis) -> Self {
        Self {
            genesis,
            ops: BTreeMap::new(),
            orphans: BTreeMap::new(),
            roster: OnceCell::new(),
            cache: HashMap::new(),
        }
    }

    /// The genesis record.
    pub fn genesis(&self) -> &SignedGenesis {
        &self.genesis
    }

    /// The collective.
    pub fn collective(&self) -> CollectiveId {
        self.genesis.id()
    }

    /// Add a verified op. Ops of another collective are ignored as duplicates would be.
    pub fn insert(&mut self, op: Op) -> InsertOutcome {
        let id = op.id();
        if op.body().collective != self.collective() {
            return InsertOutcome::Duplicate;
        }
        if self.ops.contains_key(&id) || self.orphans.contains_key(&id) {
            return InsertOutcome::Duplicate;
        }
        let missing: Vec<OpId> = op
            .parents()
            .iter()
            .filter(|p| !self.ops.contains_key(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            if self.orphans.len() >= MAX_ORPHANS {
                self.orphans.pop_last();
            }
            self.orphans.insert(id, op);
            let wanted = missing
                .into_iter()
                .filter(|p| !self.orphans.contains_key(p))
                .collect();
            return InsertOutcome::MissingParents(wanted);
        }
        let mut added = vec![id];
        self.ops.insert(id, op);
        added.extend(self.release_orphans());
        self.refresh();
        InsertOutcome::Added(added)
    }

    /// Add many ops at once, resolving the roster once at the end. Returns the ids added.
    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) -> Vec<OpId> {
        for op in ops {
            let id = op.id();
            if op.body().collective != self.collective()
                || self.ops.contains_key(&id)
                || self.orphans.contains_key(&id)
            {
                continue;
            }
            self.orphans.insert(id, op);
        }
        let added = self.release_orphans();
        while self.orphans.len() > MAX_ORPHANS {
            self.orphans.pop_last();
        }
        if !added.is_empty() {
            self.refresh();
        }
        added
    }

    /// Move orphans whose parents are now all present into the log, until nothing changes.
    fn release_orphans(&mut self) -> Vec<OpId> {
        let mut added = Vec::new();
        loop {
            let ready: Vec<OpId> = self
                .orphans
                .iter()
                .filter(|(_, o)| o.parents().iter().all(|p| self.ops.contains_key(p)))
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                return added;
            }
            for id in ready {
                if let Some(op) = self.orphans.remove(&id) {
                    self.ops.insert(id, op);
                    added.push(id);
                }
            }
        }
    }

    fn refresh(&mut self) {
        self.roster = OnceCell::new();
        self.cache.clear();
    }

    /// The roster of everything held (resolved on first use after a change).
    pub fn roster(&self) -> &Roster {
        self.roster.get_or_init(|| {
            let ops: Vec<&Op> = self.ops.values().collect();
            resolve(&self.genesis, &ops)
        })
    }

    /// The roster as it was at `heads` (an alert's or key delivery's named membership state).
    /// `None` if some of those ops are not held yet: sync first.
    pub fn roster_at(&mut self, heads: &[OpId]) -> Option<Roster> {
        let mut key = heads.to_vec();
        key.sort();
        key.dedup();
        if key == self.roster().heads() {
            return Some(self.roster().clone());
        }
        if let Some(roster) = self.cache.get(&key) {
            return Some(roster.clone());
        }
        if key.iter().any(|h| !self.ops.contains_key(h)) {
            return None;
        }
        let mut seen: BTreeSet<OpId> = BTreeSet::new();
        let mut stack = key.clone();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                if let Some(op) = self.ops.get(&id) {
                    stack.extend(op.parents().iter().copied());
                }
            }
        }
        let subset: Vec<&Op> = seen.iter().filter_map(|id| self.ops.get(id)).collect();
        let roster = resolve(&self.genesis, &subset);
        if self.cache.len() >= ROSTER_CACHE {
            self.cache.clear();
        }
        self.cache.insert(key, roster.clone());
        Some(roster)
    }

    /// Whether the op is held (with its full history).
    pub fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    /// An op held with its full history.
    pub fn get(&self, id: &OpId) -> Option<&Op> {
        self.ops.get(id)
    }

    /// Every op with full history, by id.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.values()
    }

    /// Number of ops with full history.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no op beyond genesis is held.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Ops waiting for parents.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }
}
