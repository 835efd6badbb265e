//! The set of membership ops a replica holds, with ops whose parents have not arrived yet.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::at_heads::{Membership, PastStates};
use super::authors::Authors;
use super::quota_refused::QuotaRefused;
use super::resolve::{parents_of, Resolution};
use super::{Action, Op, Roster, SignedGenesis, MAX_PARENTS};
use crate::ids::{CollectiveId, MemberId, OpId};

/// Most ops kept while waiting for their parents; beyond this the oldest-named are dropped (they
/// come back through sync once their history is there).
pub const MAX_ORPHANS: usize = 4096;
/// Most ops of one author kept while waiting for their parents.
pub const MAX_ORPHANS_PER_AUTHOR: usize = 64;
/// Most ops one author may have held per UTC day of their timestamps. An honest moderator
/// enrolling a whole drop-in session stays far below it.
pub const MAX_OPS_PER_AUTHOR_PER_DAY: usize = 256;
/// How far before the genesis record's founding time an op may be dated: a day, so a co-founder
/// whose phone's clock is behind the founder's is not refused for good, while an author still
/// holds at most [`MAX_OPS_PER_AUTHOR_PER_DAY`] ops per day from the founding to now (and one
/// day more).
pub const FOUNDING_SLACK_SECS: u64 = 86_400;
/// Distinct membership states whose rosters are cached (alerts name the state they were written at).
const ROSTER_CACHE: usize = 8;
/// Most members summed over the cached rosters (branch `sim`): a phone of a collective of up to
/// 256 members keeps all [`ROSTER_CACHE`]; one of 1,000 keeps two (a roster of 1,000 members is
/// about 400 KB, and items naming other states than the current one are rare once settled).
const ROSTER_CACHE_MEMBERS: usize = 2_048;
/// Most ops refused over the quota one op's reading goes through (a chain of a flooder's ops
/// this replica refused): an op whose reading would go through more waits, as every op naming
/// a refused op did before (PROTOCOL.md, "Reading parents refused over the quota"). Bounds the
/// memory an op read so keeps (its reading, at most this many ids more) and the work of reading
/// an orphan again on each pass over the orphans (at most this many refused ops visited).
pub const MAX_READ_THROUGH: usize = 64;
/// Most parents one op is read as naming (twice [`MAX_PARENTS`]); an op whose reading names
/// more waits.
pub const MAX_READ_PARENTS: usize = 2 * MAX_PARENTS;
/// Most verified refused ops kept for orphans waiting for them (beyond those read through,
/// which are kept with the ops read through them): the oldest are dropped first, and fetched
/// again from a peer that offers them.
pub const MAX_WAITED_STUBS: usize = 1024;

/// For refused ops met in one pass over the orphans: the first id a reading through each waits
/// for, if any ([`MembershipLog::blocked`]).
type Blocked = HashMap<OpId, Option<OpId>>;

/// How an op's parents are read against what the log holds ([`MembershipLog::reading`]).
#[derive(Debug)]
enum Reading {
    /// Every parent it names is held.
    Named,
    /// Some parent it names was refused over the quota here and is not held: read as naming
    /// `parents` (held ops), through the refused ops `via`.
    Read { parents: Vec<OpId>, via: Vec<OpId> },
    /// It waits for these ids (neither held nor refused over the quota here: the parents it
    /// names that are, else the first such id its reading meets).
    Waits(Vec<OpId>),
    /// Its reading goes through more than [`MAX_READ_THROUGH`] refused ops or names more than
    /// [`MAX_READ_PARENTS`]: it waits (for the refused parents it names), and is not read again
    /// until a stub joins (`MembershipLog::over`).
    Over(Vec<OpId>),
}

/// What [`MembershipLog::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The op (and any waiting ops it completed) joined the log, in the order given.
    Added(Vec<OpId>),
    /// Already held.
    Duplicate,
    /// Held back until these parents arrive: ask peers for them.
    MissingParents(Vec<OpId>),
    /// Not kept: its author is no member, past or present, or is over their quota.
    Refused(OpRefusal),
}

/// Why [`MembershipLog::insert`] did not keep an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpRefusal {
    /// No op held proposed its author, and the genesis record does not name them.
    #[error("its author is not and never was a member")]
    NeverAMember,
    /// Its author has [`MAX_OPS_PER_AUTHOR_PER_DAY`] ops held for its day already.
    #[error("its author is over the daily quota of membership ops")]
    OverQuota,
    /// Dated before the collective was founded (less [`FOUNDING_SLACK_SECS`]): with the
    /// replica's refusal of ops dated ahead of its clock, this bounds an author's ops to the
    /// quota times the days since the founding.
    #[error("it is dated before the collective was founded")]
    BeforeGenesis,
}

/// The keys that proposed or approved one proposal to admit, and the key it admits (known once
/// the proposal itself is held).
#[derive(Debug, Clone, Default)]
struct Vouchers {
    key: Option<MemberId>,
    by: BTreeSet<MemberId>,
}

/// A replica's membership ops and the rosters they resolve to.
#[derive(Debug, Clone)]
pub struct MembershipLog {
    genesis: SignedGenesis,
    ops: BTreeMap<OpId, Op>,
    orphans: BTreeMap<OpId, Op>,
    /// Ops held (with history or not) per author and UTC day.
    per_author_day: HashMap<(MemberId, u64), usize>,
    /// Who may author and propose, from the ops in the log alone (founders, and keys k
    /// proposers vouched to admit or promote): a set that only grows, the same whatever order
    /// the ops arrived in.
    authors: Authors,
    /// Keys admitted in the roster of an op's own past (the op and its ancestors), for ops that
    /// may complete an admission there ([`MembershipLog::look_up_admissions`]): the admissions
    /// [`Authors`] cannot see (an heir of the last-moderator fallback, a moderator of a state
    /// with fewer than k). A function of each op's past, which its id fixes, so this only grows
    /// and is the same whatever order the ops arrived in.
    looked_up: BTreeSet<MemberId>,
    /// Who proposed or approved each proposal to admit (by its id), and the key it admits once
    /// the proposal itself is held: a key's admission needs k of them in a past.
    vouchers: HashMap<OpId, Vouchers>,
    /// Keys that may not author yet, with a proposal k distinct keys vouched for: only these can
    /// be admitted in some op's past without being authors already.
    ripe: BTreeSet<MemberId>,
    /// Ops kept since the last look-up that may complete an admission in their own past, with
    /// the key they may admit (`None`: any ripe key).
    to_look_up: Vec<(OpId, Option<MemberId>)>,
    /// Look-ups of ops whose past misses an op (a stub's parent neither held nor a stub): tried
    /// again when a stub is added, joins or leaves.
    deferred_look_ups: Vec<(OpId, Option<MemberId>)>,
    /// A stub was added, joined or left since the last look-up: the deferred ones are tried
    /// again.
    stubs_left: bool,
    /// The look-ups' view of every op held, while some op is read through a stub (Review 14,
    /// R14-3): a resolution of the ops and the stubs they are read through, every one as an op
    /// (as `look_up_admissions` resolves an op's past), so an op naming every head is looked up
    /// in it once appended, as `look_up_appended` does with the roster's resolution when no op
    /// is read through a stub. Exact while its count is `graph_changes` (belt and braces: a view
    /// whose heads are the op's own is its past, Review 16's R16-3); made again by the next
    /// look-up once an op joined without being appended to it (R16-1), and dropped at the next
    /// insert once no op is read through a stub or no key is ripe (R16-2).
    looked: Option<(u64, Resolution)>,
    /// Ops joined, and stubs read through added or removed: what an op's past in the resolver's
    /// graph ([`MembershipLog::past_in_graph`]) is made of. (A stub no op is read through is in
    /// no past, so the stubs an over-quota member adds for orphans to wait on leave the view
    /// exact.)
    graph_changes: u64,
    /// Look-ups done since the caller last stored them ([`MembershipLog::take_look_ups`]): each
    /// op resolved, with the keys its past admits (none, often), so a restart resolves no past
    /// again (each would cost a resolution: Review 12, R12-2).
    new_look_ups: Vec<(OpId, Vec<MemberId>)>,
    /// Pasts resolved for look-ups ([`MembershipLog::past_resolutions`]).
    past_resolutions: u64,
    /// Look-ups read back from the caller's store, used while its ops are restored
    /// ([`MembershipLog::restore_look_ups`]).
    restored_look_ups: HashMap<OpId, Vec<MemberId>>,
    /// Resolved lazily, so a batch of inserts costs one resolution; kept so that an op naming
    /// every head is applied without a full replay.
    resolution: OnceCell<Resolution>,
    /// Rosters at named heads, oldest first. A roster at given heads depends only on those ops'
    /// past, which their ids fix: new ops never change it, so entries are dropped only to bound
    /// memory, never on insert (the 1,000-replica simulation spent most of its time resolving
    /// again what an insert had just thrown away).
    cache: VecDeque<(Vec<OpId>, Arc<Roster>)>,
    evicted: Vec<OpId>,
    /// Ops this replica refused over the quota, with the parents each names (bounded, in
    /// memory only): an op naming one it does not hold is read as naming its parents.
    refused: QuotaRefused,
    /// For each op held that was read through ops refused over the quota: the (held) parents
    /// it is read as naming, sorted. The op's signed bytes and id are unchanged.
    read: HashMap<OpId, Vec<OpId>>,
    /// For the same ops: the refused ops their reading went through.
    via: HashMap<OpId, Vec<OpId>>,
    /// Every id in `via`: when one of them joins the log after all, the edges read through it
    /// become real ([`MembershipLog::join`]).
    through: HashSet<OpId>,
    /// Ids orphans wait for (neither held nor refused), with those orphans, as of the last pass
    /// over the orphans: a refusal over the quota of one of them tries those orphans again.
    wanted: HashMap<OpId, BTreeSet<OpId>>,
    /// Ids that became wanted (keys of `wanted`) since the caller last took them
    /// ([`MembershipLog::take_newly_wanted`]): the one signal that a refused op has become
    /// worth a signature check. Always a subset of `wanted`'s keys, so bounded as it is.
    newly_wanted: HashSet<OpId>,
    /// Refused ops over the quota whose signature was checked (because an op waited for them),
    /// kept with their bytes: only these are read through by ops (never bytes nobody signed),
    /// and those read through (in `through`) are offered to peers and stored, so a peer can
    /// fetch and judge them itself (`MembershipLog::offered_stubs`).
    stubs: BTreeMap<OpId, Op>,
    /// The keys stubs propose to admit, with how many stubs name each
    /// ([`MembershipLog::may_be_admitted`]).
    stub_admits: super::quota_refused::Counted<MemberId>,
    /// Stubs kept because an orphan waited for them, oldest first (at most
    /// [`MAX_WAITED_STUBS`] not read through).
    stub_order: VecDeque<OpId>,
    /// Stubs newly read through, for the caller to store ([`MembershipLog::take_new_stubs`]).
    new_stubs: Vec<OpId>,
    /// Orphans found over the bounds of a reading (Review 8, R8-6): not read again on each pass
    /// until a stub joins (the only change that can shorten a reading: a stub added lets a
    /// reading reach more refused ops, never fewer).
    over: HashSet<OpId>,
    /// Bumped whenever a stub joins (and `over` is emptied).
    stub_changes: u64,
    /// Stubs whose whole past is held or settled stubs (a reading through them waits for
    /// nothing), kept across passes over the orphans, so an orphan waiting below a large
    /// region of stubs costs a walk of the unsettled part only, not of all of it on every
    /// pass (Review 9, R9-5: one orphan below 16,000 stubs cost 20 ms per op any replica
    /// took in). A stub dropped without joining leaves it, and stubs above it stay (see
    /// `add_stub`); emptied on restore.
    settled: RefCell<HashSet<OpId>>,
    /// Author-days a slot of which was freed (an orphan dropped) since their quota was last
    /// seen full: stubs of these may join as ops ([`MembershipLog::stubs_with_room`]).
    room: HashSet<(MemberId, u64)>,
    /// Stubs with room that could not join yet, by an id each waits for: tried again when that
    /// id joins or becomes a stub.
    stub_waits: HashMap<OpId, Vec<OpId>>,
    /// Stubs to try again ([`MembershipLog::stubs_with_room`]).
    stub_retry: Vec<OpId>,
    /// Ops whose reading was set or changed since the caller last stored them
    /// ([`MembershipLog::take_readings`]).
    changed: BTreeSet<OpId>,
    /// Readings read back from the caller's store, used while its ops are restored
    /// ([`MembershipLog::restore_readings`]).
    restoring: HashMap<OpId, (Vec<OpId>, Vec<OpId>)>,
    /// Bumped whenever an op is kept or an orphan dropped: the only changes that can turn a
    /// refusal ([`OpRefusal`]) into a pass.
    generation: u64,
    /// What key deliveries read of each state the roster was resolved at (`at_heads.rs`).
    past: RefCell<PastStates>,
}

impl MembershipLog {
    /// A log holding only the genesis record.
    pub fn new(genesis: SignedGenesis) -> Self {
        Self {
            authors: Authors::new(&genesis, std::iter::empty()),
            looked_up: BTreeSet::new(),
            vouchers: HashMap::new(),
            ripe: BTreeSet::new(),
            to_look_up: Vec::new(),
            deferred_look_ups: Vec::new(),
            stubs_left: false,
            looked: None,
            graph_changes: 0,
            new_look_ups: Vec::new(),
            past_resolutions: 0,
            restored_look_ups: HashMap::new(),
            genesis,
            ops: BTreeMap::new(),
            orphans: BTreeMap::new(),
            per_author_day: HashMap::new(),
            resolution: OnceCell::new(),
            cache: VecDeque::new(),
            evicted: Vec::new(),
            refused: QuotaRefused::default(),
            read: HashMap::new(),
            via: HashMap::new(),
            through: HashSet::new(),
            wanted: HashMap::new(),
            newly_wanted: HashSet::new(),
            changed: BTreeSet::new(),
            over: HashSet::new(),
            stub_changes: 0,
            settled: RefCell::default(),
            room: HashSet::new(),
            stub_waits: HashMap::new(),
            stub_retry: Vec::new(),
            stubs: BTreeMap::new(),
            stub_admits: Default::default(),
            stub_order: VecDeque::new(),
            new_stubs: Vec::new(),
            restoring: HashMap::new(),
            generation: 0,
            past: RefCell::default(),
        }
    }

    /// A number that changes whenever something changes that could let an op refused by
    /// [`MembershipLog::precheck`] pass: an op kept (it may propose the author, or be the
    /// admission) or an orphan dropped (it frees a quota slot).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The genesis record.
    pub fn genesis(&self) -> &SignedGenesis {
        &self.genesis
    }

    /// The collective.
    pub fn collective(&self) -> CollectiveId {
        self.genesis.id()
    }

    /// Whether a replica should keep an op by this author at all: a founding moderator, a key
    /// whose admission or promotion k distinct proposers (k = the policy's `approvals_required`)
    /// proposed or approved in ops held with their history, proposers being the founding
    /// moderators and keys whose promotion k proposers vouched for ([`Authors`]); and a key
    /// admitted in the roster of some op's own past, for ops held that may complete an admission
    /// there ([`MembershipLog::look_up_admissions`]). Both are functions of the ops in the log
    /// that only grow as ops arrive, so replicas holding the same ops keep the same ones whatever
    /// order they came in (a refused op is fetched again by a later sync); one moderator's
    /// unapproved proposals make no key an author
    /// (`a_rogue_moderators_unapproved_proposals_let_no_key_author`). The second part is needed
    /// only for members whose admission the resolver completed with a moderator no promotion op
    /// names: an heir of the last-moderator fallback, or a promotion by fewer than k remaining
    /// moderators (`a_member_admitted_by_the_last_moderators_heir_may_author`). It replaces a
    /// lookup in the current roster, which was not monotone (a removal arriving late may undo an
    /// admission some replicas had already let author; `stubs_case_found_by_the_seventh_sessions_last_random_run`).
    pub fn may_author(&self, author: &MemberId) -> bool {
        self.authors.may_author(author) || self.looked_up.contains(author)
    }

    /// Whether `key`'s proposals and approvals count toward who may author: a founding moderator,
    /// or a key whose promotion k proposers vouched for.
    pub fn may_propose(&self, key: &MemberId) -> bool {
        self.authors.may_propose(key)
    }

    fn admit_check(&self, op: &Op) -> Result<(), OpRefusal> {
        self.precheck(&op.author(), op.body().timestamp)
    }

    /// Whether an op by `author` dated `timestamp` would be refused now (never a member, over
    /// quota): lookups only, so a replica asks before it verifies any signature
    /// ([`Op::peek`](super::Op::peek)). The answer changes only when
    /// [`MembershipLog::generation`] does.
    pub fn precheck(&self, author: &MemberId, timestamp: u64) -> Result<(), OpRefusal> {
        let founded = self.genesis.genesis().created;
        if timestamp.saturating_add(FOUNDING_SLACK_SECS) < founded {
            return Err(OpRefusal::BeforeGenesis);
        }
        if !self.may_author(author) {
            return Err(OpRefusal::NeverAMember);
        }
        let day = timestamp / 86_400;
        if self
            .per_author_day
            .get(&(*author, day))
            .is_some_and(|n| *n >= MAX_OPS_PER_AUTHOR_PER_DAY)
        {
            return Err(OpRefusal::OverQuota);
        }
        Ok(())
    }

    /// An orphan dropped is no longer held: it stops counting against its author's quota (it
    /// comes back through sync, and counts again then). Without this, an honest moderator's
    /// ops arriving out of order, evicted and fetched again, used up the day's quota at that
    /// replica, which then refused her ops for the rest of the day (found by the simulation's
    /// scale run: `scale_1000` with 200 replicas).
    fn uncount(&mut self, op: &Op) {
        self.generation += 1;
        self.room
            .insert((op.author(), op.body().timestamp / 86_400));
        if let Some(n) = self
            .per_author_day
            .get_mut(&(op.author(), op.body().timestamp / 86_400))
        {
            *n = n.saturating_sub(1);
        }
    }

    fn count(&mut self, op: &Op) {
        self.generation += 1;
        *self
            .per_author_day
            .entry((op.author(), op.body().timestamp / 86_400))
            .or_default() += 1;
    }

    /// An op joined the log with its history: a proposal or approval in it may let keys author
    /// or propose. Only here, never for an orphan (it may be evicted, and an evicted op must
    /// leave no trace: `evicted_orphans_leave_no_trace`), so the sets depend only on the ops in
    /// the log.
    fn kept(&mut self, op: &Op) {
        if self.authors.kept(op) {
            self.generation += 1;
        }
        self.vouch(op);
        // Ops that may complete an admission in their own past: a proposal (of its own key), an
        // approval, or a removal, demotion or revocation (one may start the last-moderator
        // fallback or change its heir): of any ripe key. A key can be admitted in an op's past
        // only if k of its vouchers are in that past, held here as ops or stubs, all of which
        // joined (or were kept) before the op: then it is ripe here now. So a look-up skipped
        // for want of ripe keys, or a key skipped as not ripe, could have found nothing anywhere:
        // which ops add which keys depends on the ops alone.
        let may_admit = match &op.body().action {
            Action::ProposeAdd { identity, .. } => Some(Some(identity.member)),
            Action::Approve { .. }
            | Action::Remove { .. }
            | Action::ProposeDemote { .. }
            | Action::PublishRevocation { .. } => Some(None),
            _ => None,
        };
        if let Some(key) = may_admit.filter(|key| self.ripe_for(*key)) {
            self.to_look_up.push((op.id(), key));
        }
    }

    /// Whether a look-up for `key` (`None`: any ripe key) may find anything.
    fn ripe_for(&self, key: Option<MemberId>) -> bool {
        key.map_or(!self.ripe.is_empty(), |key| self.ripe.contains(&key))
    }

    /// Count `op` (held, or a stub: verified, and in the past of the ops read through it) as a
    /// vouch for the proposal it makes or approves, and the proposal's key as ripe once k keys
    /// vouched for it and it may not author yet.
    fn vouch(&mut self, op: &Op) {
        let k = self.authors.k();
        let author = op.author();
        // Kept only while they may matter: the proposal's key may not author yet (or the
        // proposal is not held yet), so an honest collective keeps next to none.
        let vouched = match &op.body().action {
            Action::ProposeAdd { identity, .. } => {
                if self.may_author(&identity.member) {
                    self.vouchers.remove(&op.id());
                    return;
                }
                let entry = self.vouchers.entry(op.id()).or_default();
                entry.key = Some(identity.member);
                entry.by.insert(author);
                Some(op.id())
            }
            Action::Approve { proposal } => {
                let held = self.ops.get(proposal).or_else(|| self.stubs.get(proposal));
                if let Some(held) = held {
                    match held.body().action.admits() {
                        Some(key) if !self.may_author(&key) => {}
                        _ => {
                            self.vouchers.remove(proposal);
                            return;
                        }
                    }
                }
                self.vouchers
                    .entry(*proposal)
                    .or_default()
                    .by
                    .insert(author);
                Some(*proposal)
            }
            _ => None,
        };
        if let Some(entry) = vouched.and_then(|id| self.vouchers.get(&id)) {
            if let Some(key) = entry.key.filter(|_| entry.by.len() >= k) {
                if !self.may_author(&key) {
                    self.ripe.insert(key);
                }
            }
        }
    }

    /// For each op kept since the last call that may complete an admission: the roster of the
    /// op's own past (the op and its ancestors), and the ripe keys (not authors yet, a proposal
    /// k keys vouched for) it knows may author from now on (a proposal's own key; any ripe key
    /// for an approval, removal, demotion or revocation). The past an op names is fixed by its
    /// id, so this is the same for every replica holding the op, whatever else it holds or the
    /// order it came in: the stubs in that past are resolved as the ops they are (held as ops
    /// elsewhere), so which of them this replica refused over the quota changes nothing. One
    /// resolution of a past per such op while some key is ripe, unless `look_up_appended` read
    /// it from the resolution the op was appended to: no key is ripe in a collective whose
    /// admissions k proposers complete (an abandoned proposal is never ripe with k >= 2), but
    /// k members vouching for one key keep it ripe for good (R13-2; with k = 1 a plain member's
    /// proposal alone), and a member's flood of such ops is bounded by her quota.
    fn look_up_admissions(&mut self) {
        if std::mem::take(&mut self.stubs_left) {
            let deferred = std::mem::take(&mut self.deferred_look_ups);
            self.to_look_up.extend(deferred);
        }
        for (id, key) in std::mem::take(&mut self.to_look_up) {
            self.prune_ripe();
            if !self.ripe_for(key) || !self.ops.contains_key(&id) {
                continue;
            }
            // Done before a restart: the same op, so the same past and the same keys.
            if let Some(keys) = self.restored_look_ups.remove(&id) {
                // Every key (`any` stopped at the first new one: Review 14, R14-5).
                self.let_author(&keys);
                continue;
            }
            // One whose past misses an op (a stub's parent neither held nor a stub) waits until
            // a stub joins or leaves.
            let Some(past) = self.resolve_past(id) else {
                self.deferred_look_ups.push((id, key));
                continue;
            };
            self.admit_known(id, key, &past.roster);
        }
    }

    /// The resolution of op `id`'s own past as a look-up reads it: every op of the past as an
    /// op, the stubs (ops refused over the quota here, held as ops elsewhere) included, so the
    /// same past at every replica, whichever of its ops each refused (Review 12, R12-3 and
    /// R12-6). `None` if the past misses an op (a stub's parent neither held nor a stub).
    fn resolve_past(&mut self, id: OpId) -> Option<Resolution> {
        let seen = self.past_in_graph(&[id]);
        let past: Option<Vec<&Op>> = seen
            .iter()
            .map(|id| self.ops.get(id).or_else(|| self.stubs.get(id)))
            .collect();
        let resolution = Resolution::new(&self.genesis, &past?, &[], &HashMap::new());
        self.past_resolutions += 1;
        Some(resolution)
    }

    /// The ripe keys (`key`, or all) that `roster`, the roster of op `id`'s own past, knows may
    /// author from now on; the look-up is kept for the caller to store.
    fn admit_known(&mut self, id: OpId, key: Option<MemberId>, roster: &Roster) {
        let admitted: Vec<MemberId> = self
            .ripe
            .iter()
            .filter(|k| key.is_none_or(|key| key == **k) && roster.knows(k))
            .copied()
            .collect();
        self.let_author(&admitted);
        self.new_look_ups.push((id, admitted));
    }

    /// `keys`, found in some op's own past, may author from now on.
    fn let_author(&mut self, keys: &[MemberId]) {
        let mut grew = false;
        for k in keys {
            grew |= self.looked_up.insert(*k);
        }
        if grew {
            self.generation += 1;
        }
    }

    /// Keys no longer ripe (authors now, or found by a look-up) leave the ripe set.
    fn prune_ripe(&mut self) {
        let authors = &self.authors;
        let looked_up = &self.looked_up;
        self.ripe
            .retain(|k| !authors.may_author(k) && !looked_up.contains(k));
    }

    /// The look-up of `id`, just appended, from the resolution it was appended to, where that is
    /// its own past's: the op names every head (so its past is every op held) and no op is read
    /// through a stub (so that resolution has no stub, as the look-up's has none). A full
    /// resolution of the same ops gives the same roster (`append_props`), so this is the look-up
    /// `look_up_admissions` would make, without resolving the past again (Review 13, R13-2: a
    /// key kept ripe made every approval and removal resolve its whole past).
    ///
    /// Only where the resolution is there already (a node reads the roster after each change,
    /// and appends keep it): forcing one for an op that may turn out not to name every head
    /// cost a resolution of every op held per op of a sync batch (Review 14, R14-1 and R14-2).
    fn look_up_appended(&mut self, id: OpId) {
        let Some(at) = self.to_look_up.iter().position(|(queued, _)| *queued == id) else {
            return;
        };
        if !self.through.is_empty() || !self.read.is_empty() {
            self.look_up_in_view(at);
            return;
        }
        self.looked = None;
        let Some(resolution) = self.resolution.take() else {
            return;
        };
        let (_, key) = self.to_look_up.remove(at);
        self.prune_ripe();
        if self.ripe_for(key) {
            self.admit_known(id, key, &resolution.roster);
        }
        let _ = self.resolution.set(resolution);
    }

    /// [`MembershipLog::look_up_appended`] while some op is read through a stub (Review 14,
    /// R14-3: this gave up then, and R13-2's cost came back for good at a replica holding one
    /// over-quota op read through): the look-up of `to_look_up[at]`, an op just appended that
    /// named every head, from the look-ups' view it was appended to, or from a view made now of
    /// its past (every op held and every stub read through, as ops: the resolution
    /// `look_up_admissions` would make), kept for the ops after it. Only while a key is ripe.
    fn look_up_in_view(&mut self, at: usize) {
        let (id, key) = self.to_look_up[at];
        self.prune_ripe();
        if !self.ripe_for(key) {
            self.to_look_up.remove(at);
            return;
        }
        let exact = self.looked.as_ref().is_some_and(|(changes, view)| {
            *changes == self.graph_changes && view.roster.heads() == [id]
        });
        if !exact {
            // A past missing an op: `look_up_admissions` defers it.
            let Some(view) = self.resolve_past(id) else {
                self.looked = None;
                return;
            };
            self.looked = Some((self.graph_changes, view));
        }
        self.to_look_up.remove(at);
        if let Some((_, view)) = self.looked.take() {
            self.admit_known(id, key, &view.roster);
            self.looked = Some((self.graph_changes, view));
        }
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
        if let Err(why) = self.admit_check(&op) {
            return InsertOutcome::Refused(why);
        }
        let (read, via) = match self.reading(&op) {
            Reading::Named => (None, Vec::new()),
            Reading::Read { parents, via } => (Some(parents), via),
            Reading::Waits(missing) | Reading::Over(missing) => {
                self.count(&op);
                for p in &missing {
                    self.want(*p, id);
                }
                let wanted = missing
                    .into_iter()
                    .filter(|p| !self.orphans.contains_key(p))
                    .collect();
                self.hold(op);
                return InsertOutcome::MissingParents(wanted);
            }
        };
        self.count(&op);
        // The common case, an op naming every head, is applied without a full replay.
        // Only an op naming held ops alone: one read through stubs brings them into the graph
        // (a full resolution places them).
        let appended = read.is_none()
            && self
                .resolution
                .get_mut()
                .is_some_and(|r| r.append(&self.genesis, &op, op.parents()));
        // The look-ups' view (R14-3) takes it too, if it is exact (nothing joined or changed
        // the stubs since it was): its past is then the view's ops and this op.
        // Kept only while it may serve: some op read through a stub and some key ripe (Review
        // 16, R16-2).
        if self.through.is_empty() && self.read.is_empty() || self.ripe.is_empty() {
            self.looked = None;
        }
        let genesis = &self.genesis;
        let graph_changes = self.graph_changes;
        let looked = read.is_none()
            && self.looked.as_mut().is_some_and(|(at, view)| {
                *at == graph_changes && view.append(genesis, &op, op.parents())
            });
        let rewired = self.join(op, read, via);
        if let Some((at, _)) = self.looked.as_mut().filter(|_| looked && !rewired) {
            *at = self.graph_changes;
        }
        if let Some(r) = self.resolution.get().filter(|_| appended && !rewired) {
            self.past.get_mut().observe(&r.roster);
        }
        if appended && !rewired {
            self.look_up_appended(id);
        }
        let mut added = vec![id];
        let released = self.release_orphans();
        if !appended || rewired || !released.is_empty() {
            self.resolution.take();
        }
        added.extend(released);
        InsertOutcome::Added(added)
    }

    /// How `op`'s parents read against the ops held and the ops refused over the quota here:
    /// each parent held is read as itself; each one refused over the quota and not held as the
    /// parents that op names, again and again while those are such ops (the same reading as
    /// `State::effective_heads` gives an item's heads); any other parent makes the op wait.
    /// A function of the ops held and the refused set, whatever the order of the walk.
    fn reading(&self, op: &Op) -> Reading {
        self.reading_with(op, &mut Blocked::new())
    }

    /// [`MembershipLog::reading`], with what is known of refused ops in this pass (`memo`,
    /// valid while no op joins): an orphan waiting below a chain of refused ops is found
    /// waiting in as many lookups as it names parents, however many orphans wait below the
    /// same chain, so refusals of a flooder's (possibly unsigned) ops cost the orphans waiting
    /// for them lookups, not walks.
    fn reading_with(&self, op: &Op, memo: &mut Blocked) -> Reading {
        if op.parents().iter().all(|p| self.ops.contains_key(p)) {
            return Reading::Named;
        }
        // Read back from this replica's own store: the reading it joined with before a
        // restart (the refused set is not kept), once what it is read as naming is held.
        if let Some((parents, via)) = self.restoring.get(&op.id()) {
            let absent: Vec<OpId> = parents
                .iter()
                .filter(|p| !self.ops.contains_key(p))
                .copied()
                .collect();
            if absent.is_empty() {
                return Reading::Read {
                    parents: parents.clone(),
                    via: via.clone(),
                };
            }
            return Reading::Waits(absent);
        }
        // Lookups only for the common orphan, one whose parent has not arrived yet.
        let absent: Vec<OpId> = op
            .parents()
            .iter()
            .filter(|p| !self.ops.contains_key(p) && !self.stubs.contains_key(p))
            .copied()
            .collect();
        if !absent.is_empty() {
            return Reading::Waits(absent);
        }
        for p in op.parents() {
            if !self.ops.contains_key(p) {
                if let Some(waits) = self.blocked(*p, memo) {
                    return Reading::Waits(vec![waits]);
                }
            }
        }
        let mut parents = BTreeSet::new();
        let mut via = BTreeSet::new();
        let mut stack: Vec<OpId> = op.parents().to_vec();
        while let Some(p) = stack.pop() {
            if self.ops.contains_key(&p) {
                parents.insert(p);
                continue;
            }
            // An op cannot be its own ancestor (its id hashes its parents): never read so.
            let refused = (p != op.id())
                .then(|| self.stubs.get(&p).map(Op::parents))
                .flatten();
            match refused {
                Some(up) => {
                    if via.insert(p) {
                        if via.len() > MAX_READ_THROUGH {
                            return Reading::Over(self.unheld_parents(op));
                        }
                        stack.extend_from_slice(up);
                    }
                }
                // The first id it waits for is enough: when that one arrives or is refused,
                // the op is read again (`wanted`), so the index holds one id per such orphan.
                None => return Reading::Waits(vec![p]),
            }
        }
        if parents.len() > MAX_READ_PARENTS {
            return Reading::Over(self.unheld_parents(op));
        }
        Reading::Read {
            parents: parents.into_iter().collect(),
            via: via.into_iter().collect(),
        }
    }

    /// For `start`, refused over the quota here and not held: the first id (neither held nor
    /// refused) that a reading through it would wait for, `None` if there is none. Each refused
    /// op is looked at once per `memo`.
    fn blocked(&self, start: OpId, memo: &mut Blocked) -> Option<OpId> {
        if let Some(known) = memo.get(&start) {
            return *known;
        }
        let mut settled = self.settled.borrow_mut();
        if settled.contains(&start) {
            return None;
        }
        let mut open: HashSet<OpId> = HashSet::new();
        let mut stack = vec![(start, false)];
        while let Some((id, expanded)) = stack.pop() {
            if memo.contains_key(&id) {
                continue;
            }
            if settled.contains(&id) {
                memo.insert(id, None);
                continue;
            }
            let Some(parents) = self.stubs.get(&id).map(Op::parents) else {
                memo.insert(id, Some(id));
                continue;
            };
            if !expanded {
                open.insert(id);
                stack.push((id, true));
                for p in parents {
                    // (No cycle can be hashed; `open` guards against one all the same.)
                    if !self.ops.contains_key(p)
                        && !memo.contains_key(p)
                        && !open.contains(p)
                        && !settled.contains(p)
                    {
                        stack.push((*p, false));
                    }
                }
                continue;
            }
            let mut waits = None;
            for p in parents {
                if self.ops.contains_key(p) || settled.contains(p) {
                    continue;
                }
                match memo.get(p) {
                    Some(Some(m)) => {
                        waits = Some(*m);
                        break;
                    }
                    Some(None) => {}
                    None if !self.stubs.contains_key(p) => {
                        waits = Some(*p);
                        break;
                    }
                    None => {}
                }
            }
            open.remove(&id);
            memo.insert(id, waits);
            if waits.is_none() {
                settled.insert(id);
            }
        }
        memo.get(&start).copied().flatten()
    }

    fn stubs_changed(&mut self) {
        self.stub_changes += 1;
        self.over.clear();
    }

    fn unheld_parents(&self, op: &Op) -> Vec<OpId> {
        op.parents()
            .iter()
            .filter(|p| !self.ops.contains_key(p))
            .copied()
            .collect()
    }

    /// Put `op` into the log, read as naming `read` (through the refused ops `via`) if given.
    /// If `op` is itself an op some held op was read through (refused here before, and taken
    /// since: an orphan's eviction freed a slot of its author's day), each such edge becomes
    /// real: `op` is added to what that op is read as naming. Its parents were read in its
    /// place, and are its ancestors now, so the causal order is the one a replica that held
    /// `op` all along resolves (the resolver depends only on the ancestry, not on which
    /// ancestors are named). Returns whether another op's reading changed.
    fn join(&mut self, op: Op, read: Option<Vec<OpId>>, via: Vec<OpId>) -> bool {
        let id = op.id();
        self.graph_changes += 1;
        self.kept(&op);
        self.ops.insert(id, op);
        if let Some(stubs) = self.stub_waits.remove(&id) {
            self.stub_retry.extend(stubs);
        }
        if self.remove_stub(&id) {
            self.settled.get_mut().remove(&id);
            self.stubs_changed();
        }
        if let Some(mut read) = read {
            // A refused op read through that joined since the reading was taken (in the same
            // pass over the orphans) is a real parent already (Review 8, R8-8).
            let (held, via): (Vec<OpId>, Vec<OpId>) =
                via.into_iter().partition(|r| self.ops.contains_key(r));
            for r in held {
                if let Err(at) = read.binary_search(&r) {
                    read.insert(at, r);
                }
            }
            let named = self
                .ops
                .get(&id)
                .is_some_and(|op| op.parents().iter().all(|p| self.ops.contains_key(p)));
            if !named {
                for r in &via {
                    if self.through.insert(*r) {
                        self.new_stubs.push(*r);
                    }
                }
                self.read.insert(id, read);
                self.via.insert(id, via);
                self.changed.insert(id);
            }
        }
        if !self.through.remove(&id) {
            return false;
        }
        let mut named = Vec::new();
        for (other, via) in &mut self.via {
            if let Ok(at) = via.binary_search(&id) {
                via.remove(at);
                if let Some(read) = self.read.get_mut(other) {
                    if let Err(at) = read.binary_search(&id) {
                        read.insert(at, id);
                    }
                }
                self.changed.insert(*other);
                if via.is_empty() {
                    named.push(*other);
                }
            }
        }
        // Read through nothing any more: every parent it names is held (each refused op it
        // named joined since, or is below one that did), so it is read as named again.
        for other in named {
            if self
                .ops
                .get(&other)
                .is_some_and(|op| op.parents().iter().all(|p| self.ops.contains_key(p)))
            {
                self.read.remove(&other);
                self.via.remove(&other);
            }
        }
        // Rosters at given heads read through `id` change now it is a real parent: the cached
        // ones and the states kept for key deliveries are dropped alike.
        self.cache.clear();
        *self.past.get_mut() = PastStates::default();
        true
    }

    /// Remember `id`, naming `parents`, as refused over its author's quota here (read so by
    /// items' heads, `State::effective_heads`). Returns whether it is newly remembered. Lookups
    /// only: the quota is checked before the signature, so this may be bytes nobody signed; ops
    /// are read only through refused ops whose signature was checked
    /// ([`MembershipLog::add_stub`]).
    ///
    /// `admits` is the key it proposes to admit, if any (read from its bytes as its parents are,
    /// [`MembershipLog::may_be_admitted`]).
    pub fn refuse_over_quota(
        &mut self,
        id: OpId,
        parents: &[OpId],
        admits: Option<MemberId>,
    ) -> bool {
        !self.ops.contains_key(&id) && self.refused.insert(id, parents, admits)
    }

    /// Whether `key` could be a member at some heads an item may be judged at here: a key the
    /// log knows as a possible author ([`MembershipLog::may_author`]), or one that an op held,
    /// a stub or an op remembered as refused over the quota proposes to admit. Lookups only.
    /// An item read through refused ops whose author is none of these was written by a key
    /// that no op this replica knows of ever proposed (Review 9, R9-8): its refusal needs no
    /// roster at the heads read and may be penalised.
    pub fn may_be_admitted(&self, key: &MemberId) -> bool {
        self.authors.ever_proposed(key)
            || self.stub_admits.contains(key)
            || self.refused.admits(key)
            || self.may_author(key)
    }

    fn insert_stub(&mut self, op: Op) {
        let id = op.id();
        let _ = self
            .refused
            .insert(id, op.parents(), op.body().action.admits());
        if let Some(key) = op.body().action.admits() {
            self.stub_admits.add(key);
        }
        self.vouch(&op);
        // It may be what a deferred look-up's past missed.
        self.stubs_left = true;
        // Only a stub read through is in an op's past (`past_in_graph`).
        if self.through.contains(&id) {
            self.graph_changes += 1;
        }
        if let Some(old) = self.stubs.insert(id, op) {
            self.forget_stub_admits(&old);
        }
    }

    fn remove_stub(&mut self, id: &OpId) -> bool {
        let Some(op) = self.stubs.remove(id) else {
            return false;
        };
        self.forget_stub_admits(&op);
        self.stubs_left = true;
        if self.through.contains(id) {
            self.graph_changes += 1;
        }
        true
    }

    fn forget_stub_admits(&mut self, op: &Op) {
        if let Some(key) = op.body().action.admits() {
            self.stub_admits.remove(&key);
        }
    }

    /// Whether an orphan waits for `id` (so a refused op of that id is worth a signature check).
    pub fn wants(&self, id: &OpId) -> bool {
        self.wanted.contains_key(id)
    }

    /// Record that `orphan` waits for `id`.
    fn want(&mut self, id: OpId, orphan: OpId) {
        let orphans = self.wanted.entry(id).or_default();
        if orphans.is_empty() {
            self.newly_wanted.insert(id);
        }
        orphans.insert(orphan);
    }

    /// The ids an orphan came to wait for since the last call (and still waits for), smallest
    /// first. Whatever changes what orphans wait for (an op held back, a stub added below an
    /// orphan, a pass over the orphans after an op joined) records it here, so a caller that
    /// refused an op of such an id before (over the quota, and deferred until the log changes)
    /// judges it again from this alone: a stub added changes what orphans wait for without
    /// changing [`MembershipLog::generation`].
    pub fn take_newly_wanted(&mut self) -> Vec<OpId> {
        let mut ids: Vec<OpId> = self.newly_wanted.drain().collect();
        ids.sort_unstable();
        ids
    }

    /// Keep `op`, refused over its author's quota here and verified (an orphan waits for it),
    /// as a stub: an op naming it is read as naming its parents. Lets in the orphans that were
    /// waiting for it; returns the ops that joined.
    pub fn add_stub(&mut self, op: Op) -> Vec<OpId> {
        let id = op.id();
        if self.ops.contains_key(&id) || self.stubs.contains_key(&id) {
            return Vec::new();
        }
        // (Not `stubs_changed`: a stub added only lets a reading reach more refused ops, so an
        // orphan over the bounds stays over them, Review 8's R8-6.)
        self.insert_stub(op);
        self.stub_order.push_back(id);
        if let Some(stubs) = self.stub_waits.remove(&id) {
            self.stub_retry.extend(stubs);
        }
        while self.stub_order.len() > MAX_WAITED_STUBS {
            if let Some(old) = self.stub_order.pop_front() {
                if !self.through.contains(&old) {
                    self.remove_stub(&old);
                    // Only it leaves `settled`: stubs above it stay there, though their past
                    // now lacks it. Harmless: `blocked` is a filter before the reading's walk,
                    // which is what decides, stops at `old` (no stub, not held) and waits for
                    // it, within the same bounds (the walk visits part of what it visits with
                    // `old` kept). Emptying `settled` here let a flooder force a walk of every
                    // stub per op with one message each (Review 9, R9-5b).
                    self.settled.get_mut().remove(&old);
                }
            }
        }
        self.newly_wanted.remove(&id);
        let Some(waiting) = self.wanted.remove(&id) else {
            return Vec::new();
        };
        let mut ready = false;
        let mut memo = Blocked::new();
        for orphan in waiting {
            let Some(op) = self.orphans.get(&orphan) else {
                continue;
            };
            match self.reading_with(op, &mut memo) {
                Reading::Waits(missing) | Reading::Over(missing) => {
                    for p in missing {
                        self.want(p, orphan);
                    }
                }
                _ => ready = true,
            }
        }
        if !ready {
            return Vec::new();
        }
        self.release_waiting()
    }

    /// A stub read back from this replica's own store (`take_new_stubs`): verified when it was
    /// kept; call before the ops are restored.
    pub fn restore_stub(&mut self, op: Op) {
        self.insert_stub(op);
    }

    /// The stubs some op held is read through: offered to peers in sync (they fetch them and
    /// judge them themselves: refuse them over their own quota and read through them, or take
    /// them), so an op read through one here can join there too.
    pub fn offered_stubs(&self) -> impl Iterator<Item = &Op> {
        self.stubs
            .iter()
            .filter(|(id, _)| self.through.contains(id))
            .map(|(_, op)| op)
    }

    /// After an orphan was dropped (a slot of its author's day freed): the stubs whose
    /// author-day has room now and that would join at once, smallest id first, for the caller
    /// to insert as ops (a peer that took one will never offer it again: this replica's own
    /// reconciliation set has its id, Review 8's R8-11). Lookups only while no slot is free.
    pub fn stubs_with_room(&mut self) -> Vec<Op> {
        // Each author-day is tried once per slot freed, and a stub that waited then is tried
        // again only when what it waited for joins or becomes a stub (Review 8's R8-13: trying
        // every stub after every op while a slot stayed free cost a walk of all of them each
        // time).
        let room = std::mem::take(&mut self.room);
        let mut candidates: BTreeSet<OpId> =
            std::mem::take(&mut self.stub_retry).into_iter().collect();
        if !room.is_empty() {
            candidates.extend(
                self.stubs
                    .values()
                    .filter(|op| room.contains(&(op.author(), op.body().timestamp / 86_400)))
                    .map(Op::id),
            );
        }
        let mut memo = Blocked::new();
        let mut ready = Vec::new();
        for id in candidates {
            let Some(op) = self.stubs.get(&id) else {
                continue;
            };
            if self.holds(&id) || self.precheck(&op.author(), op.body().timestamp).is_err() {
                continue;
            }
            // Only those that join at once: one that would wait would be an orphan that may
            // push out another, freeing a slot again (no loop of evictions).
            match self.reading_with(op, &mut memo) {
                Reading::Named | Reading::Read { .. } => ready.push(op.clone()),
                Reading::Waits(missing) | Reading::Over(missing) => {
                    if self.stub_waits.len() < 4 * MAX_WAITED_STUBS {
                        for m in missing {
                            self.stub_waits.entry(m).or_default().push(id);
                        }
                    }
                }
            }
        }
        ready
    }

    /// Whether `id` is kept as a stub (a verified op refused over the quota here).
    pub fn is_stub(&self, id: &OpId) -> bool {
        self.stubs.contains_key(id)
    }

    /// A held op or an offered stub, by id: what a peer may fetch.
    pub fn offered(&self, id: &OpId) -> Option<&Op> {
        self.ops
            .get(id)
            .or_else(|| self.stubs.get(id).filter(|_| self.through.contains(id)))
    }

    /// Stubs newly read through since the last call: a node stores them (restored with
    /// [`MembershipLog::restore_stub`] before the ops).
    pub fn take_new_stubs(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.new_stubs)
            .into_iter()
            .filter_map(|id| self.stubs.get(&id).cloned())
            .collect()
    }

    /// Let in every orphan whose parents are now all held or read (and those they complete).
    pub fn release_waiting(&mut self) -> Vec<OpId> {
        let added = self.release_orphans();
        if !added.is_empty() {
            self.generation += 1;
            self.resolution.take();
        }
        added
    }

    /// The readings set or changed since the last call (op id, parents read, refused ops read
    /// through): a node stores them so those ops join again as they did on restart.
    pub fn take_readings(&mut self) -> Vec<(OpId, Vec<OpId>, Vec<OpId>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| {
                let read = self.read.get(&id)?.clone();
                let via = self.via.get(&id).cloned().unwrap_or_default();
                Some((id, read, via))
            })
            .collect()
    }

    /// Readings read back from this replica's own store (`take_readings`), for the ops about
    /// to be restored ([`MembershipLog::extend`]); call [`MembershipLog::restored`] after.
    /// Trusted as this replica's own earlier judgement (the store is its own and
    /// authenticated); a reading names nothing its op's author could not have named anyway.
    pub fn restore_readings(&mut self, readings: Vec<(OpId, Vec<OpId>, Vec<OpId>)>) {
        for (id, mut parents, via) in readings {
            parents.sort();
            parents.dedup();
            // A reading grows by one parent per refused op that joins later (`join`).
            if parents.len() <= MAX_READ_PARENTS + MAX_READ_THROUGH && via.len() <= MAX_READ_THROUGH
            {
                self.restoring.insert(id, (parents, via));
            }
        }
    }

    /// How many pasts this log has resolved for look-ups (each a full resolution of an op's
    /// past; a look-up read from the resolution an op was appended to, or from the store, costs
    /// none): for tests and measurements.
    pub fn past_resolutions(&self) -> u64 {
        self.past_resolutions
    }

    /// Look-ups done since the last call (op id, keys its past admits that were not authors): a
    /// node stores them, so its restart resolves no op's past again
    /// ([`MembershipLog::restore_look_ups`]).
    pub fn take_look_ups(&mut self) -> Vec<(OpId, Vec<MemberId>)> {
        std::mem::take(&mut self.new_look_ups)
    }

    /// Look-ups read back from this replica's own store ([`MembershipLog::take_look_ups`]), for
    /// the ops about to be restored; call [`MembershipLog::restored`] after. An op looked up
    /// before is not resolved again: its past, fixed by its id, admits the same keys.
    pub fn restore_look_ups(&mut self, look_ups: Vec<(OpId, Vec<MemberId>)>) {
        self.restored_look_ups = look_ups.into_iter().collect();
    }

    /// The restore is over: readings read back and not used are dropped (their ops wait for
    /// the refused op to be offered and refused again), and nothing restored is to be stored
    /// again.
    pub fn restored(&mut self) {
        self.restoring = HashMap::new();
        // Look-ups done while restoring (none stored before) stay to be stored.
        self.restored_look_ups = HashMap::new();
        self.changed.clear();
        self.new_stubs.clear();
        let unread: Vec<OpId> = self
            .stubs
            .keys()
            .filter(|id| !self.through.contains(id))
            .copied()
            .collect();
        for id in unread {
            self.remove_stub(&id);
        }
        self.settled.get_mut().clear();
    }

    /// Whether `id` was refused over its author's quota here (and is remembered as such).
    pub fn refused_over_quota(&self, id: &OpId) -> bool {
        self.refused.parents(id).is_some() || self.stubs.contains_key(id)
    }

    /// The parents `id` names if it was refused over the quota here and is not held: an item
    /// or op naming it is read as naming those instead.
    pub fn refused_parents(&self, id: &OpId) -> Option<&[OpId]> {
        if self.ops.contains_key(id) {
            return None;
        }
        // A stub is a refused op too, verified and kept: read through even once a flood of
        // refusals has pushed its id out of the bounded set (Review 9, R9-7).
        self.refused
            .parents(id)
            .or_else(|| self.stubs.get(id).map(Op::parents))
    }

    /// How many ops refused over the quota are remembered.
    pub fn quota_refused_count(&self) -> usize {
        self.refused.len()
    }

    /// What `op` (not held) waits for before it can join: the ids it names, or reads through,
    /// that are neither held nor refused over the quota here (empty: it can join).
    pub fn missing(&self, op: &Op) -> Vec<OpId> {
        match self.reading(op) {
            Reading::Waits(missing) | Reading::Over(missing) => missing,
            Reading::Named | Reading::Read { .. } => Vec::new(),
        }
    }

    /// Add many ops at once, resolving the roster once at the end. Returns the ids added; ops
    /// refused (unknown author, over quota) are left out.
    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) -> Vec<OpId> {
        let mut pending: Vec<Op> = ops
            .into_iter()
            .filter(|op| {
                op.body().collective == self.collective()
                    && !self.ops.contains_key(&op.id())
                    && !self.orphans.contains_key(&op.id())
            })
            .collect();
        // Proposals first, so keys they admit may author the rest of the batch.
        pending.sort_by_key(|op| !matches!(op.body().action, Action::ProposeAdd { .. }));
        let mut added = Vec::new();
        let mut progress = true;
        while progress && !pending.is_empty() {
            progress = false;
            let mut later = Vec::new();
            for op in pending {
                if self.admit_check(&op).is_ok() {
                    self.count(&op);
                    self.orphans.insert(op.id(), op);
                    progress = true;
                } else {
                    later.push(op);
                }
            }
            pending = later;
            let released = self.release_orphans();
            if !released.is_empty() {
                self.resolution.take();
            }
            added.extend(released);
        }
        self.trim_orphans();
        added
    }

    fn hold(&mut self, op: Op) {
        let author = op.author();
        let mine: Vec<OpId> = self
            .orphans
            .iter()
            .filter(|(_, o)| o.author() == author)
            .map(|(id, _)| *id)
            .collect();
        if mine.len() >= MAX_ORPHANS_PER_AUTHOR {
            if let Some(last) = mine.last() {
                if let Some(dropped) = self.orphans.remove(last) {
                    self.uncount(&dropped);
                }
                self.evicted.push(*last);
            }
        }
        self.orphans.insert(op.id(), op);
        self.trim_orphans();
    }

    fn trim_orphans(&mut self) {
        while self.orphans.len() > MAX_ORPHANS {
            if let Some((id, dropped)) = self.orphans.pop_last() {
                self.uncount(&dropped);
                self.evicted.push(id);
            }
        }
    }

    /// Ops dropped from the orphan set since the last call: a node deletes them from its store.
    pub fn take_evicted(&mut self) -> Vec<OpId> {
        std::mem::take(&mut self.evicted)
    }

    /// Move orphans whose parents are now all held (or read, [`MembershipLog::reading`]) into
    /// the log, and then those they complete, in one pass over the orphans: an orphan is read
    /// again only when an id it waits for joins. Rebuilds the index of what orphans wait for.
    fn release_orphans(&mut self) -> Vec<OpId> {
        let mut waiting: HashMap<OpId, usize> = HashMap::new();
        let mut children: HashMap<OpId, BTreeSet<OpId>> = HashMap::new();
        let mut ready: Vec<(OpId, Option<Vec<OpId>>, Vec<OpId>)> = Vec::new();
        let mut memo = Blocked::new();
        let mut over = Vec::new();
        let stubs_at = self.stub_changes;
        for (id, op) in &self.orphans {
            let reading = if self.over.contains(id) {
                Reading::Over(self.unheld_parents(op))
            } else {
                self.reading_with(op, &mut memo)
            };
            match reading {
                Reading::Named => ready.push((*id, None, Vec::new())),
                Reading::Read { parents, via } => ready.push((*id, Some(parents), via)),
                Reading::Over(missing) => {
                    over.push(*id);
                    waiting.insert(*id, missing.len());
                    for p in missing {
                        children.entry(p).or_default().insert(*id);
                    }
                }
                Reading::Waits(missing) => {
                    waiting.insert(*id, missing.len());
                    for p in missing {
                        children.entry(p).or_default().insert(*id);
                    }
                }
            }
        }
        let mut added = Vec::new();
        while let Some((id, read, via)) = ready.pop() {
            let Some(op) = self.orphans.remove(&id) else {
                continue;
            };
            self.join(op, read, via);
            // What refused ops wait for may have just joined.
            memo.clear();
            added.push(id);
            for child in children.remove(&id).unwrap_or_default() {
                let Some(count) = waiting.get_mut(&child) else {
                    continue;
                };
                *count = count.saturating_sub(1);
                if *count > 0 {
                    continue;
                }
                waiting.remove(&child);
                let Some(op) = self.orphans.get(&child) else {
                    continue;
                };
                // Read again: what it waited for is held now, and may be a refused op's
                // parent.
                match self.reading_with(op, &mut memo) {
                    Reading::Named => ready.push((child, None, Vec::new())),
                    Reading::Read { parents, via } => ready.push((child, Some(parents), via)),
                    Reading::Waits(missing) | Reading::Over(missing) => {
                        waiting.insert(child, missing.len());
                        for p in missing {
                            children.entry(p).or_default().insert(child);
                        }
                    }
                }
            }
        }
        children.retain(|_, orphans| {
            orphans.retain(|o| waiting.contains_key(o));
            !orphans.is_empty()
        });
        let old = std::mem::replace(&mut self.wanted, children);
        let wanted = &self.wanted;
        self.newly_wanted.retain(|id| wanted.contains_key(id));
        self.newly_wanted
            .extend(wanted.keys().filter(|id| !old.contains_key(id)));
        // Remembered only if no stub joined during this pass (that may shorten a reading).
        if self.stub_changes == stubs_at {
            self.over.extend(over);
        }
        self.over.retain(|id| waiting.contains_key(id));
        self.look_up_admissions();
        added
    }

    /// The roster of everything held (resolved on first use after a change).
    pub fn roster(&self) -> &Roster {
        &self
            .resolution
            .get_or_init(|| {
                let ops: Vec<&Op> = self.ops.values().collect();
                let stubs: Vec<&Op> = self.graph_stubs().collect();
                let resolution = Resolution::new(&self.genesis, &ops, &stubs, &self.read);
                self.past.borrow_mut().observe(&resolution.roster);
                resolution
            })
            .roster
    }

    /// The heads a new op, post or key delivery by `author` should name: every head when there
    /// are at most [`MAX_PARENTS`]; otherwise a bounded choice that keeps every head holding a
    /// removal first, then one covering the author's own admission, then the latest, so that
    /// no number of concurrent ops can stop anyone from writing. "Latest" goes by the ops' own
    /// timestamps, which their authors choose: that only changes which heads are named first,
    /// never whether a writer can write or whether its own admission is covered.
    pub fn writer_heads(&self, author: &MemberId) -> Vec<OpId> {
        let roster = self.roster();
        let heads = roster.heads();
        if heads.len() <= MAX_PARENTS {
            return heads.to_vec();
        }
        let position = |id: &OpId| self.ops.get(id).map(|op| op.body().timestamp);
        let mut ranked: Vec<OpId> = heads.to_vec();
        ranked.sort_by_key(|id| (!roster.is_lock_op(id), std::cmp::Reverse(position(id)), *id));
        ranked.truncate(MAX_PARENTS);
        if let Some(admission) = roster.admission_op(author) {
            if !self.covers(&ranked, &admission) {
                if let Some(head) = heads
                    .iter()
                    .find(|h| self.covers(std::slice::from_ref(h), &admission))
                {
                    ranked.pop();
                    ranked.push(*head);
                }
            }
        }
        ranked.sort();
        ranked
    }

    /// Whether `target` is one of `from` or among their ancestors (in the resolver's graph:
    /// through the stubs held ops are read through, [`MembershipLog::graph_stubs`]).
    fn covers(&self, from: &[OpId], target: &OpId) -> bool {
        self.past_in_graph(from).contains(target)
    }

    /// The stubs in the resolver's graph: those some held op is read through (`through`), never
    /// those kept only for waiting orphans. Effect-less nodes placed by the parents they name,
    /// so the canonical order is the one a replica holding them as ops computes (Review 8,
    /// R8-7; `docs/design/op-quota-bottom-q.md` §10).
    fn graph_stubs(&self) -> impl Iterator<Item = &Op> {
        self.stubs
            .iter()
            .filter(|(id, _)| self.through.contains(id))
            .map(|(_, op)| op)
    }

    /// `from` and their ancestors in the resolver's graph: held ops and the stubs they are read
    /// through, by the parents each names (and the parents an op is read as naming: the same
    /// ancestors, reached without the stubs, [`Graph::build`](super::resolve)'s fallback).
    fn past_in_graph(&self, from: &[OpId]) -> BTreeSet<OpId> {
        let mut seen: BTreeSet<OpId> = BTreeSet::new();
        let mut stack = from.to_vec();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(op) = self.ops.get(&id) {
                stack.extend(op.parents().iter().copied());
                stack.extend(parents_of(op, &self.read).iter().copied());
            } else if let Some(op) = self.stubs.get(&id).filter(|_| self.through.contains(&id)) {
                stack.extend(op.parents().iter().copied());
            }
        }
        seen
    }

    /// The roster as it was at `heads` (an alert's or key delivery's named membership state),
    /// shared: the same state is named by many items, and a roster of a large collective is
    /// costly to copy. `None` if some of those ops are not held yet: sync first.
    pub fn roster_at(&mut self, heads: &[OpId]) -> Option<Arc<Roster>> {
        let key = state_key(heads);
        if let Some(roster) = self.cached_roster(&key) {
            return Some(roster);
        }
        if key == self.roster().heads() {
            let roster = Arc::new(self.roster().clone());
            self.remember(key, Arc::clone(&roster));
            return Some(roster);
        }
        if key.iter().any(|h| !self.ops.contains_key(h)) {
            return None;
        }
        let seen = self.past_in_graph(&key);
        let subset: Vec<&Op> = seen.iter().filter_map(|id| self.ops.get(id)).collect();
        let stubs: Vec<&Op> = seen
            .iter()
            .filter(|id| self.through.contains(id))
            .filter_map(|id| self.stubs.get(id))
            .collect();
        let roster = Arc::new(Resolution::new(&self.genesis, &subset, &stubs, &self.read).roster);
        self.remember(key, Arc::clone(&roster));
        Some(roster)
    }

    /// What the states kept for key deliveries hold ([`MembershipLog::membership_at`]),
    /// counted by walking them: entries of differences (an id and at most one key each), and
    /// ids of heads and keys (a list of heads shared by several states counted once). For the
    /// tests of the bounds SECURITY.md states.
    pub fn kept_states_footprint(&self) -> (usize, usize) {
        self.past.borrow().footprint()
    }

    /// The roster at `heads` if [`MembershipLog::roster_at`] has it at hand (no resolution).
    pub fn cached_roster_at(&self, heads: &[OpId]) -> Option<Arc<Roster>> {
        self.cached_roster(&state_key(heads))
    }

    fn cached_roster(&self, key: &[OpId]) -> Option<Arc<Roster>> {
        self.cache
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, roster)| Arc::clone(roster))
    }

    /// The members and removals at `heads` (what a key delivery reads), if the roster was
    /// resolved at exactly the state they name and it is still kept ([`PastStates`]); `None`
    /// otherwise: ask [`MembershipLog::roster_at`].
    pub fn membership_at(&mut self, heads: &[OpId]) -> Option<Arc<Membership>> {
        self.past.get_mut().at(&state_key(heads))
    }

    /// Keep what a delivery reads of the roster at `heads` ([`MembershipLog::roster_at`]:
    /// from its cache just after it resolved them; nothing if some of those ops are not
    /// held), for the next delivery naming the same state ([`MembershipLog::membership_at`]):
    /// kept as the difference from the newest state, so far more states than
    /// [`MembershipLog::roster_at`]'s cache of whole rosters holds (two at 1,000 members: in
    /// the 1,000-replica simulation, 346,218 deliveries were answered from such kept states,
    /// against 235,398 resolved in full, docs/BENCHMARKS.md). It takes no roster: what is kept
    /// for `heads` is always the roster there (Review 17's R17-6).
    pub fn keep_membership_at(&mut self, heads: &[OpId]) {
        let Some(roster) = self.roster_at(heads) else {
            return;
        };
        self.past
            .get_mut()
            .remember(state_key(heads), &Membership::of(&roster));
    }

    fn remember(&mut self, heads: Vec<OpId>, roster: Arc<Roster>) {
        let mut members = roster.len() + self.cache.iter().map(|(_, r)| r.len()).sum::<usize>();
        while self.cache.len() >= ROSTER_CACHE
            || (members > ROSTER_CACHE_MEMBERS && !self.cache.is_empty())
        {
            members -= self.cache.pop_front().map_or(0, |(_, r)| r.len());
        }
        self.cache.push_back((heads, roster));
    }

    /// Whether the op is held (with its full history).
    pub fn contains(&self, id: &OpId) -> bool {
        self.ops.contains_key(id)
    }

    /// Whether the op is kept at all, with its full history or waiting for its parents.
    pub fn holds(&self, id: &OpId) -> bool {
        self.ops.contains_key(id) || self.orphans.contains_key(id)
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

    /// The parents an op held is read as naming, where they differ from those it names (it
    /// names an op refused over the quota here: [`MembershipLog::refuse_over_quota`]), sorted.
    pub fn read_parents(&self, id: &OpId) -> Option<&[OpId]> {
        self.read.get(id).map(Vec::as_slice)
    }

    /// Whether some op held is read as naming other parents than it names
    /// ([`MembershipLog::read_parents`]): then a roster at given heads depends on what this
    /// replica refused, not on the heads alone.
    pub fn reads_any(&self) -> bool {
        !self.read.is_empty()
    }

    /// Ops waiting for parents.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }
}

/// A membership state's key: its heads sorted, without repeats (the same ops however an item
/// names them).
pub(crate) fn state_key(heads: &[OpId]) -> Vec<OpId> {
    let mut key = heads.to_vec();
    key.sort();
    key.dedup();
    key
}
