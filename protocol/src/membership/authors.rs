//! Who may author and who may propose membership ops, from the ops a log holds alone.
//!
//! A replica decides whether to keep an op by its author before it checks any signature, and
//! replicas that hold the same ops must keep the same ones whatever order they arrived in. So
//! this is the least fixed point of a monotone rule over the ops held (it only grows as ops
//! arrive, and is the same for every arrival order), bounded by the collective's own threshold
//! k (`approvals_required`, fixed in the genesis record; no op changes it):
//!
//! - the founding moderators are *proposers*;
//! - a `ProposePromote` makes its key a proposer once k distinct proposers proposed or approved
//!   it (its author and the authors of `Approve` ops naming it);
//! - a `ProposeAdd` makes its key an *author* under the same condition (proposers are authors
//!   too).
//!
//! A later approval may complete an earlier proposal, and a key made a proposer makes its earlier
//! proposals and approvals count: each (voucher, proposal) pair is counted once, when the second
//! of the two facts (the vouch is held, the voucher is a proposer) becomes true, so the cost of an
//! insert is a few map lookups plus what it completes. One rogue moderator, or her seized
//! unlocked phone, makes no key an author alone; k colluding proposers can, as they can admit
//! members (`protocol/tests/may_author.rs`).

use std::collections::{BTreeSet, HashMap};

use super::{Action, Op, SignedGenesis};
use crate::ids::{MemberId, OpId};

/// What a proposal grants once k proposers vouch for it.
#[derive(Debug, Clone, Copy)]
enum Grant {
    /// A `ProposeAdd`: its key may author ops.
    Author(MemberId),
    /// A `ProposePromote`: its key may propose (and author).
    Propose(MemberId),
}

/// The vouches held for one proposal (by its op id; the proposal itself may not be held yet).
#[derive(Debug, Clone, Default)]
struct Vouches {
    /// Set once the proposal itself is held.
    grant: Option<Grant>,
    /// Distinct authors of the proposal and of approvals of it.
    by: BTreeSet<MemberId>,
    /// How many of `by` are proposers.
    standing: usize,
    /// Granted already: later vouches change nothing.
    done: bool,
}

/// The keys that may author and propose, given the ops held.
#[derive(Debug, Clone)]
pub(super) struct Authors {
    k: usize,
    /// Founding moderators, and keys whose promotion k proposers vouched for.
    proposers: BTreeSet<MemberId>,
    /// Keys whose admission k proposers vouched for.
    proposed: BTreeSet<MemberId>,
    /// Every key an op kept proposes to admit, admitted yet or not
    /// ([`Authors::ever_proposed`]).
    named: BTreeSet<MemberId>,
    /// Vouches per proposal id (`ProposeAdd`/`ProposePromote` held, or named by an approval held).
    proposals: HashMap<OpId, Vouches>,
    /// Proposals each key that is not (yet) a proposer vouched for: they count once it is one.
    vouched: HashMap<MemberId, Vec<OpId>>,
}

impl Authors {
    /// Who may author and propose given the genesis record and `ops`, the ops held in the log
    /// with their whole history (in any order: the result is the same). A log whose ops leave
    /// it builds this again from those left.
    pub(super) fn new<'a>(genesis: &SignedGenesis, ops: impl IntoIterator<Item = &'a Op>) -> Self {
        let record = genesis.genesis();
        let mut authors = Self {
            k: usize::from(record.policy.approvals_required).max(1),
            proposers: record
                .founding_moderators()
                .map(|(m, _)| m.member)
                .collect(),
            proposed: BTreeSet::new(),
            named: BTreeSet::new(),
            proposals: HashMap::new(),
            vouched: HashMap::new(),
        };
        for op in ops {
            authors.kept(op);
        }
        authors
    }

    /// A founding moderator, or a key k proposers vouched to admit or promote.
    pub(super) fn may_author(&self, key: &MemberId) -> bool {
        self.proposed.contains(key) || self.proposers.contains(key)
    }

    /// Whether an op kept proposes to admit `key` (enough approvals or not).
    pub(super) fn ever_proposed(&self, key: &MemberId) -> bool {
        self.named.contains(key)
    }

    /// The collective's threshold k (`approvals_required`, at least 1).
    pub(super) fn k(&self) -> usize {
        self.k
    }

    /// A founding moderator, or a key k proposers vouched to promote.
    pub(super) fn may_propose(&self, key: &MemberId) -> bool {
        self.proposers.contains(key)
    }

    /// An op joined the log with its whole history (never an orphan: an evicted orphan must leave
    /// no trace). Returns whether a key may now author or propose that could not before.
    pub(super) fn kept(&mut self, op: &Op) -> bool {
        let (proposal, grant) = match &op.body().action {
            Action::ProposeAdd { identity, .. } => {
                self.named.insert(identity.member);
                (op.id(), Some(Grant::Author(identity.member)))
            }
            Action::ProposePromote { member } => (op.id(), Some(Grant::Propose(*member))),
            Action::Approve { proposal } => (*proposal, None),
            _ => return false,
        };
        let author = op.author();
        let standing = self.proposers.contains(&author);
        let entry = self.proposals.entry(proposal).or_default();
        if entry.done {
            return false;
        }
        if grant.is_some() {
            entry.grant = grant;
        }
        if entry.by.insert(author) {
            if standing {
                entry.standing += 1;
            } else {
                self.vouched.entry(author).or_default().push(proposal);
            }
        }
        self.settle(vec![proposal])
    }

    /// Grant every proposal in `work` (and what that completes) that k proposers vouched for.
    fn settle(&mut self, mut work: Vec<OpId>) -> bool {
        let mut grew = false;
        while let Some(id) = work.pop() {
            let Some(entry) = self.proposals.get_mut(&id) else {
                continue;
            };
            let Some(grant) = entry.grant else {
                continue;
            };
            if entry.done || entry.standing < self.k {
                continue;
            }
            entry.done = true;
            entry.by = BTreeSet::new();
            match grant {
                Grant::Author(key) => grew |= self.proposed.insert(key),
                Grant::Propose(key) => {
                    if self.proposers.insert(key) {
                        grew = true;
                        // Its earlier vouches count now.
                        for earlier in self.vouched.remove(&key).unwrap_or_default() {
                            if let Some(other) = self.proposals.get_mut(&earlier) {
                                other.standing += 1;
                                work.push(earlier);
                            }
                        }
                    }
                }
            }
        }
        grew
    }
}
