//! Turning a set of membership ops into a roster.
//!
//! The rules (also in `docs/PROTOCOL.md` §4):
//!
//! 1. **Causal authority.** An op counts only if its author had the right *in the op's own causal
//!    past*: the founder always; a member once at least k distinct moderators' approvals of a
//!    proposal to add them are among the op's ancestors (a moderator's proposal is its first
//!    approval); a moderator likewise via a promotion. An op whose ancestors already contain the
//!    author's removal does not count.
//! 2. **Strong removal.** Once a removal of X is effective, X's ops count only if they are
//!    causally *before* the removal (ancestors of one of the removal's ops). X's concurrent ops are
//!    dropped, and so is everything that depended on them having effect: approvals of X's dropped
//!    proposals, members admitted only through X's dropped approvals, and those members' own ops.
//!    Removing a moderator's *rights* (demotion) drops the concurrent ops that needed those rights.
//! 3. **Retaliation is kept.** A removal or demotion by X that targets one of the moderators who
//!    removed X concurrently still counts, so two moderators who remove each other are both
//!    removed. Any other op of X concurrent with X's removal, including a removal of a third
//!    member back-dated to before X's removal, is dropped.
//! 4. **Determinism.** Ops are replayed in one canonical topological order (Kahn's algorithm,
//!    ties broken by smallest op id). Which removals are effective is found by iterating: replay
//!    with the removals found last round, until the set stops changing (at most
//!    [`MAX_ROUNDS`]). If a cycle of concurrent removals oscillates, the removals found in both of
//!    the last two rounds are kept. Every step depends only on the set of ops, so every replica
//!    with the same ops computes the same roster.
//! 5. Removal is final for a key: a removed member must enrol again with a new identity.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Action, Op, Policy, SignedGenesis};
use crate::identity::PublicIdentity;
use crate::ids::{CollectiveId, MemberId, OpId};

/// Most replay rounds spent finding the effective removals.
pub const MAX_ROUNDS: usize = 8;

/// A current member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Public keys (the agreement key is the latest rotated one).
    pub identity: PublicIdentity,
    /// Display name.
    pub name: String,
    /// Whether they currently hold moderator rights.
    pub moderator: bool,
    /// The proposal that admitted them (`None` for the founder).
    pub admitted_by: Option<OpId>,
}

/// A removed member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// Their display name when they were a member (empty if never admitted).
    pub name: String,
    /// The moderators (or, for a self-revocation, the publisher) whose ops removed them.
    pub by: Vec<MemberId>,
    /// The ops that removed them.
    pub ops: Vec<OpId>,
    /// Whether it was a published self-revocation.
    pub self_revoked: bool,
}

/// What a pending proposal would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingKind {
    /// Add a member.
    Add {
        /// The proposed identity.
        identity: PublicIdentity,
        /// Their display name.
        name: String,
    },
    /// Make a member a moderator.
    Promote(MemberId),
    /// Take moderator rights away.
    Demote(MemberId),
    /// Remove a moderator.
    RemoveModerator(MemberId),
}

/// A proposal still waiting for approvals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The proposal op.
    pub proposal: OpId,
    /// What it would do.
    pub kind: PendingKind,
    /// Moderators who approved so far.
    pub approvals: Vec<MemberId>,
    /// Approvals needed in all.
    pub needed: u8,
}

/// The resolved membership of a collective at some set of ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    collective: CollectiveId,
    policy: Policy,
    founder: MemberId,
    members: BTreeMap<MemberId, Member>,
    removed: BTreeMap<MemberId, Removed>,
    pending: Vec<Pending>,
    dropped: BTreeMap<OpId, &'static str>,
    heads: Vec<OpId>,
    op_count: usize,
}

impl Roster {
    /// The collective.
    pub fn collective(&self) -> CollectiveId {
        self.collective
    }
    /// The collective's policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// The founding moderator.
    pub fn founder(&self) -> MemberId {
        self.founder
    }
    /// Current members, by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }
    /// Number of current members.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    /// Whether there are no current members (only after the founder was removed).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// A current member.
    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.members.get(id)
    }
    /// Whether `id` is a current member.
    pub fn is_member(&self, id: &MemberId) -> bool {
        self.members.contains_key(id)
    }
    /// Whether `id` is a current moderator.
    pub fn is_moderator(&self, id: &MemberId) -> bool {
        self.members.get(id).is_some_and(|m| m.moderator)
    }
    /// Removed members.
    pub fn removed(&self) -> &BTreeMap<MemberId, Removed> {
        &self.removed
    }
    /// Whether `id` was removed.
    pub fn is_removed(&self, id: &MemberId) -> bool {
        self.removed.contains_key(id)
    }
    /// Proposals waiting for approvals.
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }
    /// Ops that had no effect, with why.
    pub fn dropped(&self) -> &BTreeMap<OpId, &'static str> {
        &self.dropped
    }
    /// The ops no other op names as a parent: what a new op should name.
    pub fn heads(&self) -> &[OpId] {
        &self.heads
    }
    /// How many ops were resolved.
    pub fn op_count(&self) -> usize {
        self.op_count
    }
}

/// Resolve a set of ops into a roster. Ops whose parents are not all in the set are ignored, as
/// are ops of other collectives.
pub fn resolve(genesis: &SignedGenesis, ops: &[&Op]) -> Roster {
    let graph = Graph::build(genesis.id(), ops);
    let policy = genesis.genesis().policy.clone();
    let k = usize::from(policy.approvals_required);
    let founder = genesis.genesis().founder.clone();
    let founder_name = genesis.genesis().founder_name.clone();

    let mut effective: Vec<Lock> = Vec::new();
    let mut previous: Option<Vec<Lock>> = None;
    let mut replay = Replay::run(&graph, &founder, &founder_name, k, &effective);
    for _ in 0..MAX_ROUNDS {
        if replay.locks == effective {
            break;
        }
        previous = Some(std::mem::replace(&mut effective, replay.locks.clone()));
        replay = Replay::run(&graph, &founder, &founder_name, k, &effective);
    }
    if replay.locks != effective {
        // Oscillating cycle of concurrent removals: keep those found in both of the last rounds.
        let last = replay.locks.clone();
        let before = previous.unwrap_or_default();
        effective = last.into_iter().filter(|l| before.contains(l)).collect();
        replay = Replay::run(&graph, &founder, &founder_name, k, &effective);
        replay.locks.clone_from(&effective);
    }
    replay.into_roster(&graph, genesis.id(), policy, founder.member)
}

/// The causal graph: ops in canonical topological order with their ancestor sets.
struct Graph<'a> {
    ops: Vec<&'a Op>,
    pos: HashMap<OpId, usize>,
    anc: Vec<BitSet>,
}

impl<'a> Graph<'a> {
    fn build(collective: CollectiveId, ops: &[&'a Op]) -> Self {
        let by_id: HashMap<OpId, &'a Op> = ops
            .iter()
            .filter(|op| op.body().collective == collective)
            .map(|op| (op.id(), *op))
            .collect();
        let mut indegree: HashMap<OpId, usize> = HashMap::new();
        let mut children: HashMap<OpId, Vec<OpId>> = HashMap::new();
        let mut ready = BTreeSet::new();
        for (id, op) in &by_id {
            let present = op
                .parents()
                .iter()
                .filter(|p| by_id.contains_key(p))
                .count();
            if present < op.parents().len() {
                continue; // incomplete history: not part of this resolution
            }
            for parent in op.parents() {
                children.entry(*parent).or_default().push(*id);
            }
            indegree.insert(*id, present);
            if present == 0 {
                ready.insert(*id);
            }
        }
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for child in children.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(count) = indegree.get_mut(child) {
                    *count -= 1;
                    if *count == 0 {
                        ready.insert(*child);
                    }
                }
            }
        }
        // Ops below an incomplete op never reach indegree zero and are left out with it.
        let n = order.len();
        let pos: HashMap<OpId, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut anc = Vec::with_capacity(n);
        let mut sorted = Vec::with_capacity(n);
        for id in &order {
            let op = by_id[id];
            let mut set = BitSet::new(n);
            for parent in op.parents() {
                let p = pos[parent];
                set.union_with(&anc[p]);
                set.insert(p);
            }
            anc.push(set);
            sorted.push(op);
        }
        Self {
            ops: sorted,
            pos,
            anc,
        }
    }

    /// Whether op `a` is a strict ancestor of op `b`.
    fn before(&self, a: usize, b: usize) -> bool {
        self.anc[b].contains(a)
    }

    /// How many of `positions` are in the causal past of `at`.
    fn known_at(&self, positions: &[usize], at: usize) -> usize {
        positions.iter().filter(|p| self.before(**p, at)).count()
    }
}

/// What a removal takes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Membership,
    Moderation,
}

/// An effective (or candidate) removal of membership or of moderator rights.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Lock {
    target: MemberId,
    scope: Scope,
    /// Positions of the ops that make up the removal (the removal op, or proposal and approvals).
    at: Vec<usize>,
    /// How many of `at` must be in an op's past for the removal to be known to it.
    needed: usize,
    by: BTreeSet<MemberId>,
    self_revoked: bool,
}

impl Lock {
    /// Whether op `o` happened causally before (or is part of) this removal.
    fn precedes(&self, graph: &Graph<'_>, o: usize) -> bool {
        self.at.iter().any(|&p| p == o || graph.before(o, p))
    }

    /// Whether the removal is complete in op `o`'s causal past.
    fn known_at(&self, graph: &Graph<'_>, o: usize) -> bool {
        graph.known_at(&self.at, o) >= self.needed
    }
}

#[derive(Clone, Debug)]
enum Grant {
    Founder,
    Proposal(usize),
}

struct MemberRec {
    identity: PublicIdentity,
    name: String,
    admission: Grant,
    promotion: Option<Grant>,
}

struct Proposal {
    op: OpId,
    pos: usize,
    kind: PendingKind,
    approvers: Vec<MemberId>,
    approvals: Vec<usize>,
    /// Approvals it needs: k, or all moderators when there were fewer than k.
    needed: usize,
    done: bool,
}

struct Replay {
    members: BTreeMap<MemberId, MemberRec>,
    proposals: Vec<Proposal>,
    by_op: HashMap<OpId, usize>,
    /// Everyone ever granted moderator rights (founder first).
    moderators: Vec<MemberId>,
    locks: Vec<Lock>,
    dropped: BTreeMap<OpId, &'static str>,
    k: usize,
}

impl Replay {
    fn run(
        graph: &Graph<'_>,
        founder: &PublicIdentity,
        founder_name: &str,
        k: usize,
        effective: &[Lock],
    ) -> Self {
        let mut members = BTreeMap::new();
        members.insert(
            founder.member,
            MemberRec {
                identity: founder.clone(),
                name: founder_name.to_owned(),
                admission: Grant::Founder,
                promotion: Some(Grant::Founder),
            },
        );
        let mut replay = Self {
            members,
            proposals: Vec::new(),
            by_op: HashMap::new(),
            moderators: vec![founder.member],
            locks: Vec::new(),
            dropped: BTreeMap::new(),
            k,
        };
        for (i, op) in graph.ops.iter().enumerate() {
            if let Err(reason) = replay.apply(graph, effective, i, op) {
                replay.dropped.insert(op.id(), reason);
            }
        }
        replay.locks.sort();
        replay
    }

    fn apply(
        &mut self,
        graph: &Graph<'_>,
        effective: &[Lock],
        i: usize,
        op: &Op,
    ) -> Result<(), &'static str> {
        let author = op.author();
        let action = &op.body().action;
        let needs_moderator = !matches!(
            action,
            Action::ProposeAdd { .. }
                | Action::PublishRevocation { .. }
                | Action::RotateAgreementKey { .. }
        );
        for lock in effective.iter().filter(|l| l.target == author) {
            let applies = lock.scope == Scope::Membership || needs_moderator;
            if applies && !lock.precedes(graph, i) && !self.is_retaliation(action, lock) {
                return Err("author was removed concurrently (strong removal)");
            }
        }
        if !self.is_member_at(graph, effective, &author, i) {
            return Err("author was not a member in the op's causal past");
        }
        if needs_moderator && !self.is_moderator_at(graph, effective, &author, i) {
            return Err("author was not a moderator in the op's causal past");
        }
        match action {
            Action::ProposeAdd { identity, name } => {
                let target = identity.member;
                if self.members.contains_key(&target)
                    || effective.iter().any(|l| {
                        l.target == target && l.scope == Scope::Membership && l.known_at(graph, i)
                    })
                {
                    return Err("already a member, or removed");
                }
                // Counts as an approval only if the author's moderator rights were not taken away
                // concurrently.
                let by_moderator = self.is_moderator_at(graph, effective, &author, i)
                    && !effective
                        .iter()
                        .any(|l| l.target == author && !l.precedes(graph, i));
                self.propose(
                    graph,
                    effective,
                    op,
                    i,
                    PendingKind::Add {
                        identity: identity.clone(),
                        name: name.clone(),
                    },
                    by_moderator.then_some(author),
                );
            }
            Action::Approve { proposal } => {
                let index = *self
                    .by_op
                    .get(proposal)
                    .ok_or("approves an unknown proposal")?;
                let entry = &self.proposals[index];
                if !graph.before(entry.pos, i) {
                    return Err("approves a proposal not in its causal past");
                }
                if entry.approvers.contains(&author) {
                    return Err("duplicate approval");
                }
                self.approve(graph, effective, index, author, i);
            }
            Action::Remove { member, .. } => {
                if !self.is_member_at(graph, effective, member, i) {
                    return Err("removes someone who is not a member");
                }
                if self.is_moderator_at(graph, effective, member, i) {
                    self.propose(
                        graph,
                        effective,
                        op,
                        i,
                        PendingKind::RemoveModerator(*member),
                        Some(author),
                    );
                } else {
                    self.locks.push(Lock {
                        target: *member,
                        scope: Scope::Membership,
                        at: vec![i],
                        needed: 1,
                        by: BTreeSet::from([author]),
                        self_revoked: false,
                    });
                }
            }
            Action::PublishRevocation { certificate } => {
                self.locks.push(Lock {
                    target: certificate.member,
                    scope: Scope::Membership,
                    at: vec![i],
                    needed: 1,
                    by: BTreeSet::from([author]),
                    self_revoked: true,
                });
            }
            Action::ProposePromote { member } => {
                if !self.is_member_at(graph, effective, member, i)
                    || self.is_moderator_at(graph, effective, member, i)
                {
                    return Err("promotes someone who is not a plain member");
                }
                self.propose(
                    graph,
                    effective,
                    op,
                    i,
                    PendingKind::Promote(*member),
                    Some(author),
                );
            }
            Action::ProposeDemote { member } => {
                if !self.is_moderator_at(graph, effective, member, i) {
                    return Err("demotes someone who is not a moderator");
                }
                self.propose(
                    graph,
                    effective,
                    op,
                    i,
                    PendingKind::Demote(*member),
                    Some(author),
                );
            }
            Action::RotateAgreementKey { identity } => {
                if let Some(rec) = self.members.get_mut(&author) {
                    rec.identity = identity.clone();
                }
            }
        }
        Ok(())
    }

    fn propose(
        &mut self,
        graph: &Graph<'_>,
        effective: &[Lock],
        op: &Op,
        i: usize,
        kind: PendingKind,
        first: Option<MemberId>,
    ) {
        let index = self.proposals.len();
        self.proposals.push(Proposal {
            op: op.id(),
            pos: i,
            kind,
            approvers: Vec::new(),
            approvals: Vec::new(),
            needed: self.k,
            done: false,
        });
        self.by_op.insert(op.id(), index);
        if let Some(author) = first {
            self.approve(graph, effective, index, author, i);
        }
    }

    fn approve(
        &mut self,
        graph: &Graph<'_>,
        effective: &[Lock],
        index: usize,
        author: MemberId,
        i: usize,
    ) {
        // With fewer than k moderators (a young collective), every moderator must approve.
        let k = if self.proposals[index].approvers.len() + 1 < self.k {
            self.k.min(self.moderators_at(graph, effective, i)).max(1)
        } else {
            self.k
        };
        let proposal = &mut self.proposals[index];
        proposal.approvers.push(author);
        proposal.approvals.push(i);
        if proposal.done || proposal.approvers.len() < k {
            if proposal.done {
                // Later approvals of a completed removal widen what precedes it.
                if let Some(lock) = self.locks.iter_mut().find(|l| l.at.contains(&proposal.pos)) {
                    lock.at.push(i);
                    lock.by.insert(author);
                }
            }
            return;
        }
        proposal.done = true;
        proposal.needed = k;
        let at = proposal.approvals.clone();
        let by: BTreeSet<MemberId> = proposal.approvers.iter().copied().collect();
        match proposal.kind.clone() {
            PendingKind::Add { identity, name } => {
                self.members.entry(identity.member).or_insert(MemberRec {
                    identity,
                    name,
                    admission: Grant::Proposal(index),
                    promotion: None,
                });
            }
            PendingKind::Promote(member) => {
                if let Some(rec) = self.members.get_mut(&member) {
                    rec.promotion.get_or_insert(Grant::Proposal(index));
                }
                if !self.moderators.contains(&member) {
                    self.moderators.push(member);
                }
            }
            PendingKind::Demote(target) | PendingKind::RemoveModerator(target) => {
                let scope = if matches!(proposal.kind, PendingKind::Demote(_)) {
                    Scope::Moderation
                } else {
                    Scope::Membership
                };
                self.locks.push(Lock {
                    target,
                    scope,
                    at,
                    needed: k,
                    by,
                    self_revoked: false,
                });
            }
        }
    }

    fn granted_at(&self, graph: &Graph<'_>, grant: &Grant, i: usize) -> bool {
        match grant {
            Grant::Founder => true,
            Grant::Proposal(index) => {
                let proposal = &self.proposals[*index];
                graph.known_at(&proposal.approvals, i) >= proposal.needed
            }
        }
    }

    /// Moderators in op `i`'s causal past.
    fn moderators_at(&self, graph: &Graph<'_>, effective: &[Lock], i: usize) -> usize {
        self.moderators
            .iter()
            .filter(|m| self.is_moderator_at(graph, effective, m, i))
            .count()
    }

    fn is_member_at(
        &self,
        graph: &Graph<'_>,
        effective: &[Lock],
        member: &MemberId,
        i: usize,
    ) -> bool {
        let Some(rec) = self.members.get(member) else {
            return false;
        };
        self.granted_at(graph, &rec.admission, i)
            && !effective.iter().any(|l| {
                l.target == *member && l.scope == Scope::Membership && l.known_at(graph, i)
            })
    }

    fn is_moderator_at(
        &self,
        graph: &Graph<'_>,
        effective: &[Lock],
        member: &MemberId,
        i: usize,
    ) -> bool {
        let Some(rec) = self.members.get(member) else {
            return false;
        };
        self.is_member_at(graph, effective, member, i)
            && rec
                .promotion
                .as_ref()
                .is_some_and(|g| self.granted_at(graph, g, i))
            && !effective.iter().any(|l| {
                l.target == *member && l.scope == Scope::Moderation && l.known_at(graph, i)
            })
    }

    /// A removal or demotion aimed back at one of the moderators behind `lock`.
    fn is_retaliation(&self, action: &Action, lock: &Lock) -> bool {
        match action {
            Action::Remove { member, .. } | Action::ProposeDemote { member } => {
                lock.by.contains(member)
            }
            Action::Approve { proposal } => self
                .by_op
                .get(proposal)
                .map(|index| &self.proposals[*index].kind)
                .is_some_and(|kind| match kind {
                    PendingKind::Demote(m) | PendingKind::RemoveModerator(m) => lock.by.contains(m),
                    _ => false,
                }),
            _ => false,
        }
    }

    fn into_roster(
        self,
        graph: &Graph<'_>,
        collective: CollectiveId,
        policy: Policy,
        founder: MemberId,
    ) -> Roster {
        let mut removed: BTreeMap<MemberId, Removed> = BTreeMap::new();
        let mut demoted = BTreeSet::new();
        for lock in &self.locks {
            match lock.scope {
                Scope::Membership => {
                    let name = self
                        .members
                        .get(&lock.target)
                        .map(|rec| rec.name.clone())
                        .unwrap_or_default();
                    let entry = removed.entry(lock.target).or_insert(Removed {
                        name,
                        by: Vec::new(),
                        ops: Vec::new(),
                        self_revoked: false,
                    });
                    entry.by.extend(lock.by.iter().copied());
                    entry.by.sort();
                    entry.by.dedup();
                    entry.ops.extend(lock.at.iter().map(|p| graph.ops[*p].id()));
                    entry.ops.sort();
                    entry.ops.dedup();
                    entry.self_revoked |= lock.self_revoked;
                }
                Scope::Moderation => {
                    demoted.insert(lock.target);
                }
            }
        }
        let members = self
            .members
            .iter()
            .filter(|(id, _)| !removed.contains_key(id))
            .map(|(id, rec)| {
                let admitted_by = match rec.admission {
                    Grant::Founder => None,
                    Grant::Proposal(index) => Some(self.proposals[index].op),
                };
                let member = Member {
                    identity: rec.identity.clone(),
                    name: rec.name.clone(),
                    moderator: rec.promotion.is_some() && !demoted.contains(id),
                    admitted_by,
                };
                (*id, member)
            })
            .collect::<BTreeMap<_, _>>();
        let pending = self
            .proposals
            .iter()
            .filter(|p| !p.done && !self.dropped.contains_key(&p.op))
            .filter(|p| match &p.kind {
                PendingKind::Add { identity, .. } => {
                    !members.contains_key(&identity.member)
                        && !removed.contains_key(&identity.member)
                }
                PendingKind::Promote(m)
                | PendingKind::Demote(m)
                | PendingKind::RemoveModerator(m) => members.contains_key(m),
            })
            .map(|p| Pending {
                proposal: p.op,
                kind: p.kind.clone(),
                approvals: p.approvers.clone(),
                needed: u8::try_from(p.needed).unwrap_or(u8::MAX),
            })
            .collect();
        let mut has_child = vec![false; graph.ops.len()];
        for op in &graph.ops {
            for parent in op.parents() {
                if let Some(p) = graph.pos.get(parent) {
                    has_child[*p] = true;
                }
            }
        }
        let heads = graph
            .ops
            .iter()
            .zip(&has_child)
            .filter(|(_, child)| !**child)
            .map(|(op, _)| op.id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Roster {
            collective,
            policy,
            founder,
            members,
            removed,
            pending,
            dropped: self.dropped,
            heads,
            op_count: graph.ops.len(),
        }
    }
}

/// A fixed-size set of small integers.
#[derive(Clone)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
        }
    }
    fn insert(&mut self, i: usize) {
        if let Some(word) = self.words.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }
    fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }
    fn union_with(&mut self, other: &Self) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
}
