//! A member's replica of a collective as a state machine: the rules for taking in a peer's item.
//!
//! [`State`] holds the membership log, the epoch book, the key deliveries and the posts of one
//! collective, and decides for every item a peer sends whether it is accepted, a duplicate,
//! held until missing state arrives, ignored or rejected ([`Ingested`], with a typed
//! [`Refusal`]). It does no I/O, in the spirit of quinn-proto and iroh-gossip's `proto::State`:
//! time comes in as `now`, and what must happen outside (write an item to disk, delete one,
//! tell the member) comes back as [`Effect`]s for the caller to apply. The node applies them to
//! its encrypted store and event stream; the simulation applies them to nothing and runs the
//! very same rules.

mod deliveries;
mod held;
mod named;
mod posts;
mod refusal;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::envelope::{self, EnvelopeError, InnerBody, Opened, PostMeta, Verdict, Verified};
use crate::epoch::{DeliveryKind, EpochBook, EpochError, EpochStatus, KeyDelivery, Recorded};
use crate::identity::{Identity, PublicIdentity};
use crate::ids::{context, hash};
use crate::membership::{
    InsertOutcome, MembershipLog, Op, OpRefusal, Roster, SharedStates, SignedGenesis,
};
use crate::reconcile::Item;
use crate::sig;
use crate::{ContentId, DeliveryId, EpochId, MemberId, OpId};

pub use crate::membership::{MAX_QUOTA_REFUSED, MAX_QUOTA_REFUSED_PARENTS};
pub use deliveries::{Deliveries, KeptDelivery};
use held::{Form, HeldItems, Hold, Wait};
pub use held::{
    HELD_ITEM_OVERHEAD, MAX_HELD, MAX_HELD_BYTES, MAX_HELD_BYTES_PER_AUTHOR, MAX_HELD_PER_AUTHOR,
    MAX_HELD_UNOPENED,
};
use named::{Named, NamedMembers};
pub use posts::Posts;
pub use refusal::Refusal;
/// Most items remembered as refused (so sync does not fetch them again).
pub const MAX_REFUSED: usize = 16_384;

/// The three kinds of replicated items, synced in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetKind {
    /// Membership ops.
    Ops,
    /// Epoch key deliveries.
    Deliveries,
    /// Posts.
    Envelopes,
}

impl fmt::Display for SetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetKind::Ops => "membership record",
            SetKind::Deliveries => "key delivery",
            SetKind::Envelopes => "envelope",
        })
    }
}

const ENVELOPE_BYTES_CONTEXT: &str = "lookout envelope bytes v1";

impl SetKind {
    /// All kinds in sync order: membership first, then keys, then posts.
    pub const ORDER: [SetKind; 3] = [SetKind::Ops, SetKind::Deliveries, SetKind::Envelopes];

    /// The id of an item of this kind, as the protocol defines it. For a post that is the
    /// content id its envelope carries in clear, a claim until the envelope is opened (an
    /// undecodable envelope gets the hash of its bytes).
    pub fn id_of(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            SetKind::Ops => hash(context::OP_ID, &[bytes]),
            SetKind::Deliveries => hash(context::DELIVERY_ID, &[bytes]),
            SetKind::Envelopes => {
                envelope::id_of(bytes).map_or_else(|_| Self::wire_hash(bytes), |id| id.0)
            }
        }
    }

    /// A hash of exactly these bytes: what refusals and gossip message ids key on. For ops and
    /// deliveries it is their id. An envelope's id is only claimed in clear, so a forgery
    /// claiming a genuine post's id must not get the genuine post refused or its gossip dropped
    /// as a duplicate.
    pub fn wire_hash(bytes: &[u8]) -> [u8; 32] {
        hash(ENVELOPE_BYTES_CONTEXT, &[bytes])
    }

    /// What a refusal of these bytes is remembered by.
    pub fn refusal_key(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            SetKind::Ops | SetKind::Deliveries => self.id_of(bytes),
            SetKind::Envelopes => Self::wire_hash(bytes),
        }
    }
}

/// What happened to an ingested item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// New and accepted (forward it).
    Accepted,
    /// Already held.
    Duplicate,
    /// Needs state we lack; kept aside, sync with the sender.
    Held,
    /// Valid but not for now (expired, over quota, too early): drop quietly.
    Ignored(Refusal),
    /// Invalid: drop and penalise the sender.
    Rejected(Refusal),
}

impl Ingested {
    /// Whether the sender should be penalised.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Ingested::Rejected(_))
    }

    /// The outcome with no penalty for the sender: a refusal of an item judged with a head read
    /// as refused over the quota ([`State::effective_heads`]) may be of an honest item from the other side of a
    /// quota split, which its forwarder could not have judged as this replica does.
    fn without_penalty_if(self, heads_read: bool) -> Self {
        match self {
            Ingested::Rejected(why) if heads_read => Ingested::Ignored(why),
            other => other,
        }
    }

    /// An error judged by the protocol's verdict on it.
    fn judged(verdict: Verdict, refusal: impl Into<Refusal>) -> Self {
        match verdict {
            Verdict::Hold => Ingested::Held,
            Verdict::Ignore => Ingested::Ignored(refusal.into()),
            Verdict::Reject => Ingested::Rejected(refusal.into()),
        }
    }
}

/// A post as a replica keeps it on disk: the envelope as received (what sync sends on) and the
/// verified body (what is shown and re-checked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostRecord {
    /// The envelope's bytes.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// The coarse time in clear (its position in reconciliation).
    pub coarse_time: u64,
    /// The verified post.
    pub body: InnerBody,
    /// When this replica accepted it.
    pub received: u64,
}

/// Something the caller must do after a step of the state machine, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Keep a membership op (kept in the log, joined or waiting for its parents).
    PutOp {
        /// Its id.
        id: OpId,
        /// Its encoding.
        bytes: Vec<u8>,
    },
    /// Delete a membership op the log evicted (an orphan pushed out by newer ones).
    DeleteOp(OpId),
    /// Keep (or replace) the parents a kept op is read as naming, because it names an op
    /// refused over the quota here (`MembershipLog::read_parents`), so that it joins again as it
    /// did on restart ([`State::restore_read_parents`], before [`State::restore_ops`]), not
    /// only once sync offers the refused op again. At most one per op kept.
    PutReadParents {
        /// The op's id.
        id: OpId,
        /// The parents it is read as naming (held ops, sorted).
        parents: Vec<OpId>,
        /// The refused ops the reading went through.
        via: Vec<OpId>,
    },
    /// Keep what an op's own past admits (`MembershipLog::take_look_ups`): the keys (often none)
    /// it lets author, so that a restart resolves no op's past again
    /// ([`State::restore_look_ups`], before [`State::restore_ops`]). At most one per op kept.
    PutLookUp {
        /// The op's id.
        id: OpId,
        /// The keys its past admits that may author because of it.
        keys: Vec<MemberId>,
    },
    /// Keep the bytes of an op refused over the quota here that a kept op is read through (a
    /// *stub*: verified, never effective, offered to peers), beside the ops: restored with
    /// [`State::restore_stubs`] before them. Never deleted with an op (the ops read through it
    /// are never dropped); one refused op that joins later is stored again as an op.
    PutStub {
        /// The refused op's id.
        id: OpId,
        /// Its encoding.
        bytes: Vec<u8>,
    },
    /// Keep a key delivery.
    PutDelivery {
        /// Its id.
        id: DeliveryId,
        /// Its encoding.
        bytes: Vec<u8>,
    },
    /// Delete a key delivery whose epoch expired.
    DeleteDelivery(DeliveryId),
    /// Keep an accepted post.
    PutPost {
        /// Its content id.
        id: ContentId,
        /// What to keep.
        record: Box<PostRecord>,
    },
    /// Delete an expired post.
    DeletePost(ContentId),
    /// Tell the member something.
    Note(Note),
}

/// What a step of the state machine has to tell the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A post was accepted (an alert, an edit, a corroboration or an announcement).
    PostAccepted(ContentId),
    /// A retraction of `target` was accepted.
    Retracted {
        /// The alert it withdraws.
        target: ContentId,
    },
    /// Our share of an epoch key does not open: the key is asked for again in the next sync
    /// ([`State::lacking_epochs`]); its signer is shown so moderators can act.
    UnreadableKeyShare {
        /// The epoch whose key we lack.
        epoch: EpochId,
        /// Who signed the share.
        signer: MemberId,
    },
    /// Membership ops joined the log (the roster may have changed).
    MembershipChanged,
}

/// What [`State::ingest`] decided and what the caller must apply.
#[derive(Debug)]
#[must_use]
pub struct Step {
    /// The outcome for the item.
    pub outcome: Ingested,
    /// Effects of the item and of any held items it released.
    pub effects: Vec<Effect>,
}

/// The state of the collective a replica belongs to.
pub struct State {
    log: MembershipLog,
    book: EpochBook,
    /// Kept encoded, with the few fields read again ([`KeptDelivery`]).
    deliveries: Deliveries,
    /// What is kept in memory of every live post (the posts themselves are the caller's to
    /// keep, from [`Effect::PutPost`]).
    posts: Posts,
    /// Posts referring to each alert (edits, retractions, corroborations).
    refs: HashMap<ContentId, Vec<ContentId>>,
    /// Accepted posts per (author, UTC day, counts against the alert quota): reachability posts
    /// have a quota of their own.
    quota: HashMap<(MemberId, u64, bool), u32>,
    /// Items waiting for missing state (ops waiting for their parents are the log's), in the
    /// form their first check left them, indexed by what they wait for.
    held: HeldItems,
    /// The item just judged `Held`, for [`State::remember`] (an op's is kept by the log).
    hold: Option<Hold>,
    /// What items accepted since the last release may release (ops joined, epochs with a new
    /// delivery, posts): [`State::release`] tries the items held waiting for them.
    released: Vec<Wait>,
    refused: HashSet<[u8; 32]>,
    /// Refusals that may pass later ([`Refusal::may_pass_later`]), by refusal key, with what
    /// must happen first: the same bytes are answered `Duplicate` until then, unverified.
    deferred: HashMap<[u8; 32], Until>,
    /// The date of the item just refused as dated ahead ([`Refusal::ClockSkew`]), for
    /// [`State::remember`].
    skew_date: Option<u64>,
    seq: u64,
    index: Indexes,
    /// New shares made on request per (asker, UTC day of `now`): bounded, so a member who
    /// rotates their encryption key over and over cannot make this replica sign share after
    /// share for them.
    shares_made: HashMap<(MemberId, u64), usize>,
    /// Decompressed keys of members of the roster whose heads are `keys_at`, for single
    /// verifications (gossip): emptied whenever the roster changes, so only current members'
    /// keys are ever held, and each entry comes from the key bytes alone ([`sig::KeyCache`]).
    keys: sig::KeyCache,
    keys_at: Vec<OpId>,
    /// Memberships at named states shared with the other replicas of a simulation (`None` in a
    /// node): [`State::share_named_states`].
    shared: Option<Arc<SharedStates>>,
    /// The bytes of the most recent ops refused over the quota before their signature was
    /// checked: when an op arrives that would be read through one of them, it is verified then
    /// and kept as a stub ([`MembershipLog::add_stub`]), without fetching it again.
    recent_refused: std::collections::VecDeque<(OpId, Vec<u8>)>,
}

/// Most refused ops' bytes kept for [`State::judge_wanted`] (about 190 KB).
const RECENT_REFUSED: usize = 128;

/// Most new shares a replica makes on request for one member per UTC day (twice what one
/// request may name): an honest member asks again only after a junk share or when a share
/// sealed to an encryption key it has since destroyed arrives.
pub const MAX_NEW_SHARES_PER_MEMBER_PER_DAY: usize = 2 * crate::epoch::MAX_KEY_REQUEST_EPOCHS;

/// What a refusal that may pass later waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The membership log to change from this [`MembershipLog::generation`].
    LogChanges(u64),
    /// The clock to come within [`envelope::MAX_CLOCK_SKEW_SECS`] of this date.
    Dated(u64),
}

/// Sorted (timestamp, id) sets for reconciliation, rebuilt lazily.
#[derive(Debug, Clone, Default)]
struct Indexes {
    ops: Option<Vec<Item>>,
    deliveries: Option<Vec<Item>>,
    posts: Option<Vec<Item>>,
}

impl State {
    /// The state of a collective holding only its genesis record.
    pub fn new(genesis: SignedGenesis) -> Self {
        Self {
            log: MembershipLog::new(genesis),
            book: EpochBook::new(),
            deliveries: Deliveries::default(),
            posts: Posts::default(),
            refs: HashMap::new(),
            quota: HashMap::new(),
            held: HeldItems::default(),
            hold: None,
            released: Vec::new(),
            refused: HashSet::new(),
            deferred: HashMap::new(),
            skew_date: None,
            seq: 0,
            index: Indexes::default(),
            shares_made: HashMap::new(),
            keys: sig::KeyCache::new(),
            keys_at: Vec::new(),
            shared: None,
            recent_refused: std::collections::VecDeque::new(),
        }
    }

    /// For a simulation running many replicas in one process: judge key deliveries at states
    /// other replicas already resolved without resolving them again ([`SharedStates`]; the
    /// same answers). A node runs one replica and has no use for it.
    pub fn share_named_states(&mut self, shared: Arc<SharedStates>) {
        self.shared = Some(shared);
    }

    /// The membership log.
    pub fn log(&self) -> &MembershipLog {
        &self.log
    }

    /// The epoch keys and what is known of each epoch.
    pub fn book(&self) -> &EpochBook {
        &self.book
    }

    /// Key deliveries held (their bytes and the fields read again: [`KeptDelivery`]).
    pub fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// What is kept of every post held (verified); the posts' bodies are in the caller's store.
    pub fn posts(&self) -> &Posts {
        &self.posts
    }

    /// Posts referring to `id` (edits, retractions, corroborations).
    pub fn referring(&self, id: &ContentId) -> &[ContentId] {
        self.refs.get(id).map_or(&[], Vec::as_slice)
    }

    /// Items waiting for missing state (besides ops waiting for their parents, which the log
    /// keeps: [`MembershipLog::orphan_count`]).
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// How many op ids are remembered as refused over their author's daily quota (at most
    /// [`MAX_QUOTA_REFUSED`]).
    pub fn quota_refused_count(&self) -> usize {
        self.log.quota_refused_count()
    }

    /// Whether the op `id` is remembered as refused over its author's daily quota: items
    /// naming it among their heads are judged as if they named its parents instead.
    pub fn refused_over_quota(&self, id: &OpId) -> bool {
        self.log.refused_over_quota(id)
    }

    /// The bytes the held items are accounted for (at most [`MAX_HELD_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        self.held.bytes()
    }

    /// Whether the key of `member` is in the cache of decompressed keys single verifications
    /// use (for tests). It holds only keys of members of the roster at the last single
    /// verification: the next one after a roster change empties it first.
    pub fn key_cached(&self, member: &MemberId) -> bool {
        self.keys.contains(&member.0)
    }

    /// The sequence number of this replica's member's last post.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Set the last sequence number (read back from the store).
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The next sequence number for a post of this replica's member.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Load the readings of ops that name an op refused over the quota
    /// ([`Effect::PutReadParents`]), read back from this replica's own store. Call before
    /// [`State::restore_ops`]: an op with a reading joins as it did before the restart once the
    /// parents it is read as naming are held.
    pub fn restore_read_parents(&mut self, readings: Vec<(OpId, Vec<OpId>, Vec<OpId>)>) {
        self.log.restore_readings(readings);
    }

    /// Load the look-ups ([`Effect::PutLookUp`]) read back from this replica's own store. Call
    /// before [`State::restore_ops`].
    pub fn restore_look_ups(&mut self, look_ups: Vec<(OpId, Vec<MemberId>)>) {
        self.log.restore_look_ups(look_ups);
    }

    /// Load the stubs ([`Effect::PutStub`]) read back from this replica's own store. Call before
    /// [`State::restore_read_parents`] and [`State::restore_ops`].
    pub fn restore_stubs(&mut self, stubs: Vec<Op>) {
        for op in stubs {
            self.log.restore_stub(op);
        }
    }

    /// Load ops read back from this replica's own store.
    pub fn restore_ops(&mut self, ops: Vec<Op>) {
        self.log.extend(ops);
        self.log.restored();
        // Evictions while loading are of orphans the store still holds; the next insert that
        // evicts deletes them.
        self.index.ops = None;
    }

    /// Take back epoch keys kept in this replica's own key file: held once a delivery of their
    /// epoch is restored, even if its share for us was sealed to an agreement key since
    /// destroyed. Call before [`State::restore_delivery`].
    pub fn preload_epoch_keys(&mut self, keys: impl IntoIterator<Item = crate::epoch::EpochKey>) {
        self.book.preload(keys);
    }

    /// Load a key delivery read back from this replica's own store. One naming membership ops
    /// the log lacks is held until they arrive (or are refused over the quota again), as one
    /// from a peer would be.
    pub fn restore_delivery(
        &mut self,
        delivery: KeyDelivery,
        me: &Identity,
    ) -> Result<(), &'static str> {
        let Some(named) = NamedMembers::of(
            &mut self.log,
            &delivery.body().heads,
            self.shared.as_deref(),
        ) else {
            // Taken in with a head read as refused over the quota (a set not kept across
            // restarts), or its heads are not all stored: held as a peer's delivery would be,
            // and tried again when they arrive or are refused again (sync offers them again).
            // Judging it at the heads held instead would record fewer removals for a rotation.
            let author = delivery.body().author;
            let waits = self.missing_heads(&delivery.body().heads);
            let hold = Hold {
                form: Form::Delivery(Box::new(delivery)),
                author: Some(author),
                waits,
            };
            return if self
                .held
                .insert(SetKind::Deliveries.id_of(hold.form.bytes()), hold, None)
            {
                Ok(())
            } else {
                Err("stored key delivery names unknown membership state")
            };
        };
        let recorded = self.book.record(&delivery, me, &named.view(&self.log));
        self.deliveries.insert(&delivery);
        self.index.deliveries = None;
        recorded
            .map(|_| ())
            .map_err(|_| "stored key delivery does not open")
    }

    /// Load a post read back from this replica's own store.
    pub fn restore_post(&mut self, verified: &Verified) {
        self.insert_post(verified.id(), verified.meta());
    }

    /// Load what was kept of a post ([`PostMeta::of`] its verified body), read back from this
    /// replica's own authenticated store. Never use it for anything that came from elsewhere.
    pub fn restore_post_meta(&mut self, id: ContentId, meta: PostMeta) {
        self.insert_post(id, meta);
    }

    /// [`State::restore_post_meta`] of many posts at once (a start reading its index back):
    /// the index is built in one pass, more compactly than post by post.
    pub fn restore_post_metas(&mut self, entries: Vec<(ContentId, PostMeta)>) {
        for (id, meta) in self.posts.extend(entries) {
            self.count_post(id, &meta);
        }
        self.index.posts = None;
    }

    /// Take in one item from a peer (or made locally), at time `now`, as `me`. What it releases
    /// (held items waiting for the op, the epoch or the post it is) is tried again.
    pub fn ingest(&mut self, kind: SetKind, bytes: &[u8], me: &Identity, now: u64) -> Step {
        let mut effects = Vec::new();
        let outcome = self.ingest_one(kind, bytes, me, now, &mut effects);
        self.release(me, now, &mut Batch::default(), &mut effects);
        Step { outcome, effects }
    }

    /// Take in a batch of membership ops (a sync fetch), parents first ([`parents_first`]),
    /// judging each as [`State::ingest`] does; the held items they release are tried again once,
    /// after the whole batch, instead of after each op (trying them after each op of a long
    /// chain resolved the roster once per op: the 1,000-replica simulation's enrolment spent
    /// most of its time there). Returns the outcome of each op, in the order given, and the
    /// effects of all.
    pub fn ingest_ops(
        &mut self,
        ops: &[&[u8]],
        me: &Identity,
        now: u64,
    ) -> (Vec<Ingested>, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut outcomes = vec![Ingested::Duplicate; ops.len()];
        let (order, index) = batch_order(ops, self.log.collective());
        let mut batch = Batch {
            ops,
            index,
            judged: vec![false; ops.len()],
        };
        for &i in &order {
            outcomes[i] = self.ingest_one(SetKind::Ops, ops[i], me, now, &mut effects);
            if let Some(judged) = batch.judged.get_mut(i) {
                *judged = true;
            }
            self.judge_wanted(&mut batch, now, &mut effects);
        }
        self.release(me, now, &mut batch, &mut effects);
        (outcomes, effects)
    }

    /// The one place an op refused here is judged again because an orphan came to wait for
    /// it ([`MembershipLog::take_newly_wanted`]: an op held back, a stub added below an
    /// orphan, a pass over the orphans). Its deferral is lifted (a stub added changes what
    /// orphans wait for, not [`MembershipLog::generation`]), and if its bytes are at hand
    /// (kept after a refusal over the quota, or judged earlier in this `batch`) it is judged
    /// again now: over the quota still, it is verified and kept as a stub, which may make an
    /// orphan wait for the op below it, and so on down a chain, whatever the batch's order and
    /// whatever else it holds (Review 9, R9-4: a flooder's junk interleaved in a batch pushed a
    /// chain's bytes out of those kept at hand). Each id is judged so at most once per time it
    /// becomes wanted, each batch entry and each kept bytes at most once (taken when judged),
    /// so at most one signature check each; bytes that do not verify are refused for good.
    fn judge_wanted(&mut self, batch: &mut Batch<'_>, now: u64, effects: &mut Vec<Effect>) {
        let mut judged = false;
        loop {
            let ids = self.log.take_newly_wanted();
            if ids.is_empty() {
                break;
            }
            for id in ids {
                if !self.log.wants(&id) || self.log.holds(&id) || self.refused.contains(&id.0) {
                    continue;
                }
                self.deferred.remove(&id.0);
                // An op held here waiting (dropped from the log's orphans) is tried again
                // when what it waits for arrives.
                if self.held.find(&id.0).is_some() {
                    continue;
                }
                let kept;
                let bytes: &[u8] = match self.recent_refused.iter().position(|(k, _)| *k == id) {
                    Some(at) => match self.recent_refused.remove(at) {
                        Some((_, bytes)) => {
                            kept = bytes;
                            &kept
                        }
                        None => continue,
                    },
                    None => match batch.take(&id) {
                        Some(bytes) => bytes,
                        None => continue,
                    },
                };
                self.skew_date = None;
                self.hold = None;
                let outcome = self.ingest_op(bytes, now, effects);
                self.remember(id.0, &outcome, None);
                judged = true;
            }
        }
        if judged {
            self.keep_readings(effects);
        }
    }

    /// The body of an op's bytes if its author's day is full here (lookups only, on the
    /// unverified body, as the first refusal was decided): `None` for any other op.
    fn over_quota_body(&self, bytes: &[u8]) -> Option<crate::membership::OpBody> {
        let body = Op::peek(bytes, self.log.collective()).ok()?;
        (self.log.precheck(&body.author, body.timestamp) == Err(OpRefusal::OverQuota))
            .then_some(body)
    }

    /// Try every held item again (after the clock moved, say): each from the form its first
    /// check left it in. Returns how many were accepted, and the effects.
    pub fn retry_held(&mut self, me: &Identity, now: u64) -> (usize, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut accepted = 0;
        for at in self.held.all() {
            if self.recheck(at, me, now, &mut effects) == Ingested::Accepted {
                accepted += 1;
            }
        }
        accepted += self.release(me, now, &mut Batch::default(), &mut effects);
        (accepted, effects)
    }

    /// Try again the held items waiting for what was accepted, and for what those release in
    /// turn. Returns how many were accepted.
    /// Ops an orphan came to wait for are judged again first, and again after each round
    /// ([`State::judge_wanted`]).
    fn release(
        &mut self,
        me: &Identity,
        now: u64,
        batch: &mut Batch<'_>,
        effects: &mut Vec<Effect>,
    ) -> usize {
        let mut accepted = 0;
        loop {
            self.judge_wanted(batch, now, effects);
            if self.released.is_empty() {
                break;
            }
            for wait in std::mem::take(&mut self.released) {
                for at in self.held.waiting_for(&wait) {
                    if self.recheck(at, me, now, effects) == Ingested::Accepted {
                        accepted += 1;
                    }
                }
            }
        }
        accepted
    }

    /// Judge a held item again from the form its first check left it in (no signature is
    /// checked again, nothing decrypted again but an envelope whose key had been missing), and
    /// hold it again at its age if it still waits.
    fn recheck(&mut self, at: u64, me: &Identity, now: u64, effects: &mut Vec<Effect>) -> Ingested {
        let Some((hold, key, age)) = self.held.take(at) else {
            return Ingested::Duplicate;
        };
        self.skew_date = None;
        self.hold = None;
        let outcome = match hold.form {
            Form::Sealed(bytes) => self.ingest_envelope(&bytes, now, effects),
            Form::Opened(bytes, opened) => self.accept_opened(&bytes, Ok(*opened), now, effects),
            Form::Delivery(delivery) => self.accept_delivery(*delivery, me, effects),
            Form::Op(op) => self.accept_op(*op, effects),
        };
        self.remember(key, &outcome, Some(age));
        outcome
    }

    fn ingest_one(
        &mut self,
        kind: SetKind,
        bytes: &[u8],
        me: &Identity,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> Ingested {
        let id = kind.refusal_key(bytes);
        // Refused for good (a bad signature, say): never kept at hand nor verified again
        // (Review 9, R9-6).
        if self.refused.contains(&id) {
            return Ingested::Duplicate;
        }
        // (An op refused over the quota that an orphan has come to wait for since is deferred
        // no longer: `State::judge_wanted` lifts it, `quota_ops_props` regression, seed
        // 10121065744911640062.)
        if self.still_deferred(&id, now) {
            // An op refused over the quota and offered again: its bytes are kept at hand (no
            // signature check), so that when an orphan comes to wait for it, it is verified
            // and kept as a stub then (`State::judge_wanted`; in a sync batch, whatever the
            // batch's order, from the batch's bytes). Without this, a chain of
            // refused ops offered parents first was found one link per sync round, and an
            // orphan below a long one waited as long (`quota_ops_props` regressions, seeds
            // 10440444908074376828 and 11762850317557233155).
            // Judged from its bytes (lookups only), not from the bounded refused set a flood
            // may have pushed it out of, and put back in that set, so what waits for it is
            // released (Review 9, R9-4b, R9-7).
            if kind == SetKind::Ops {
                if let Some(body) = self.over_quota_body(bytes) {
                    self.refuse_over_quota(OpId(id), &body, effects);
                    self.keep_refused_bytes(OpId(id), bytes);
                }
            }
            return Ingested::Duplicate;
        }
        // The same bytes as an item held: judged again from what its first check established.
        if let Some(at) = self.held.find(&id) {
            return self.recheck(at, me, now, effects);
        }
        self.deferred.remove(&id);
        self.skew_date = None;
        self.hold = None;
        let outcome = match kind {
            SetKind::Ops => self.ingest_op(bytes, now, effects),
            SetKind::Deliveries => self.ingest_delivery(bytes, me, now, effects),
            SetKind::Envelopes => self.ingest_envelope(bytes, now, effects),
        };
        self.remember(id, &outcome, None);
        outcome
    }

    /// Whether these bytes were refused for a reason that has not changed since.
    fn still_deferred(&self, id: &[u8; 32], now: u64) -> bool {
        match self.deferred.get(id) {
            None => false,
            Some(Until::LogChanges(generation)) => *generation == self.log.generation(),
            Some(Until::Dated(date)) => *date > now.saturating_add(envelope::MAX_CLOCK_SKEW_SECS),
        }
    }

    /// An item that waits for `waits`, in the form its check established, signed by `author`
    /// where known: held, unless the membership log cannot know its signer as a possible author
    /// ([`MembershipLog::may_author`]). Such an item is refused for now (`NeverAMember`) and
    /// remembered until the log changes, so keys a member makes up cannot take held places
    /// from members' items; sync fetches it again once her admission arrives.
    fn hold(&mut self, form: Form, author: Option<MemberId>, waits: Vec<Wait>) -> Ingested {
        if author.is_some_and(|a| !self.log.may_author(&a)) {
            return Ingested::Ignored(Refusal::NeverAMember);
        }
        self.hold = Some(Hold {
            form,
            author,
            waits,
        });
        Ingested::Held
    }

    /// Keep a held item aside (at its `age` if it was held before), and remember a refused one
    /// by its refusal key `id`.
    fn remember(&mut self, id: [u8; 32], outcome: &Ingested, age: Option<u64>) {
        match outcome {
            // Every item judged `Held` leaves its hold; an op the log keeps without one (none
            // now) is the log's alone.
            Ingested::Held => {
                if let Some(hold) = self.hold.take() {
                    // An unopened envelope finding no unopened one to push out is dropped
                    // here: sync fetches it again once its key arrives.
                    let _held = self.held.insert(id, hold, age);
                }
            }
            Ingested::Rejected(why) | Ingested::Ignored(why) if !why.may_pass_later() => {
                if self.refused.len() >= MAX_REFUSED {
                    self.refused.clear();
                }
                self.refused.insert(id);
            }
            // Remembered with what must happen before they may pass, so the same bytes are
            // not verified again until then (Review 3, S1).
            Ingested::Rejected(why) | Ingested::Ignored(why) => {
                let until = match why {
                    Refusal::ClockSkew(_) => self.skew_date.take().map(Until::Dated),
                    _ => Some(Until::LogChanges(self.log.generation())),
                };
                if let Some(until) = until {
                    if self.deferred.len() >= MAX_REFUSED {
                        self.deferred.clear();
                    }
                    self.deferred.insert(id, until);
                }
            }
            Ingested::Accepted | Ingested::Duplicate => {}
        }
    }

    fn ingest_op(&mut self, bytes: &[u8], now: u64, effects: &mut Vec<Effect>) -> Ingested {
        // Lookups first, on the unverified body: an op by a key that may not author, or over
        // its author's quota, costs no signature check (Review 3, S1).
        let body = match Op::peek(bytes, self.log.collective()) {
            Ok(body) => body,
            Err(e) if e.is_peer_fault() => return Ingested::Rejected(e.into()),
            Err(e) => return Ingested::Ignored(e.into()),
        };
        if self.log.holds(&OpId(SetKind::Ops.id_of(bytes))) {
            return Ingested::Duplicate;
        }
        // Dated ahead: refused until the clock gets there, so an author cannot pick future
        // days to escape the daily quota (Review 3, H2).
        if body.timestamp > now.saturating_add(envelope::MAX_CLOCK_SKEW_SECS) {
            self.skew_date = Some(body.timestamp);
            return Ingested::Ignored(Refusal::ClockSkew(SetKind::Ops));
        }
        if let Err(why) = self.log.precheck(&body.author, body.timestamp) {
            if why == OpRefusal::OverQuota {
                let id = OpId(SetKind::Ops.id_of(bytes));
                // An op waits for it: verified now (and kept as a stub), or refused as forged.
                if self.log.is_stub(&id) {
                    // Kept already (a peer offers back the stub this replica offered); back in
                    // the refused set if a flood pushed it out, releasing what waits for it.
                    self.refuse_over_quota(id, &body, effects);
                } else if self.log.wants(&id) {
                    match Op::decode(bytes, self.log.collective()) {
                        Ok(op) => {
                            self.refuse_over_quota(id, &body, effects);
                            self.stubbed(op, effects);
                        }
                        Err(e) if e.is_peer_fault() => return Ingested::Rejected(e.into()),
                        Err(e) => return Ingested::Ignored(e.into()),
                    }
                } else {
                    // An op proposing an admission is verified before the refused set records
                    // whom it admits (`MembershipLog::may_be_admitted`): bytes nobody signed
                    // would otherwise lift a stranger's penalty for her deliveries (Review 10,
                    // R10-6). One signature check per such message, as for any op; forged
                    // bytes are rejected and refused for good.
                    if body.action.admits().is_some() {
                        if let Err(e) = Op::decode(bytes, self.log.collective()) {
                            return if e.is_peer_fault() {
                                Ingested::Rejected(e.into())
                            } else {
                                Ingested::Ignored(e.into())
                            };
                        }
                    }
                    self.refuse_over_quota(id, &body, effects);
                    self.keep_refused_bytes(id, bytes);
                }
            }
            return Ingested::Ignored(why.into());
        }
        let op = match Op::decode(bytes, self.log.collective()) {
            Ok(op) => op,
            Err(e) if e.is_peer_fault() => return Ingested::Rejected(e.into()),
            Err(e) => return Ingested::Ignored(e.into()),
        };
        self.accept_op(op, effects)
    }

    /// The log's rules for a verified op. One waiting for its parents is kept by the log (in
    /// its bounded orphan set) and held here too, so it is tried again when a parent joins
    /// even if the log has dropped it meanwhile (a burst of one author's ops, in any order).
    fn accept_op(&mut self, op: Op, effects: &mut Vec<Effect>) -> Ingested {
        let id = op.id();
        if self.log.contains(&id) {
            return Ingested::Duplicate;
        }
        // Refused ops it would be read through whose bytes are at hand: verified and kept as
        // stubs first, so it is judged (and joins) now.
        loop {
            let missing = self.log.missing(&op);
            let Some(at) = self
                .recent_refused
                .iter()
                .position(|(id, _)| missing.contains(id))
            else {
                break;
            };
            let Some((_, bytes)) = self.recent_refused.remove(at) else {
                break;
            };
            if let Ok(stub) = Op::decode(&bytes, self.log.collective()) {
                self.stubbed(stub, effects);
            }
        }
        // What it waits for: parents neither held nor refused over the quota here (one refused
        // so is read as naming that op's parents, `MembershipLog::refuse_over_quota`).
        let waits: Vec<Wait> = self.log.missing(&op).into_iter().map(Wait::Op).collect();
        if self.log.holds(&id) {
            if !waits.is_empty() {
                // Still an orphan of the log: wait on.
                let author = op.author();
                return self.hold(Form::Op(Box::new(op)), Some(author), waits);
            }
            // An orphan of the log that can join now (what it waited for was refused over the
            // quota since).
            let added = self.log.release_waiting();
            let joined = added.contains(&id);
            self.membership_grew(added, effects);
            return if joined {
                Ingested::Accepted
            } else {
                Ingested::Duplicate
            };
        }
        let waiting = (!waits.is_empty()).then(|| op.clone());
        let verified = op.clone();
        let bytes = op.encoded().to_vec();
        // The log decides first (known author, quota, orphan bounds); only what it keeps is
        // written, and orphans it evicts are deleted, so a peer cannot fill the disk.
        let outcome = self.log.insert(op);
        self.index.ops = None;
        effects.extend(self.log.take_evicted().into_iter().map(Effect::DeleteOp));
        self.keep_readings(effects);
        // A slot freed (an orphan dropped): stubs of that author-day may join as ops now.
        for stub in self.log.stubs_with_room() {
            let _ = self.accept_op(stub, effects);
        }
        if matches!(
            outcome,
            InsertOutcome::Added(_) | InsertOutcome::MissingParents(_)
        ) {
            effects.push(Effect::PutOp { id, bytes });
        }
        match outcome {
            // The roster is resolved lazily, once per batch, when someone next looks.
            InsertOutcome::Added(ids) => {
                self.released.extend(ids.into_iter().map(Wait::Op));
                effects.push(Effect::Note(Note::MembershipChanged));
                Ingested::Accepted
            }
            InsertOutcome::Duplicate => Ingested::Duplicate,
            // Kept in the log's orphan set (and in the store): the caller syncs to fetch the
            // parents.
            InsertOutcome::MissingParents(_) => match waiting {
                Some(op) => {
                    let author = op.author();
                    self.hold(Form::Op(Box::new(op)), Some(author), waits)
                }
                None => Ingested::Held,
            },
            // The forwarder may know a proposal this node lacks yet: not its fault.
            InsertOutcome::Refused(why) => {
                if why == OpRefusal::OverQuota {
                    self.refuse_over_quota(id, verified.body(), effects);
                    if self.log.wants(&id) {
                        self.stubbed(verified, effects);
                    } else {
                        // Kept at hand as a refusal at the precheck keeps it: an op held
                        // (rechecked) and refused now is deferred, so without its bytes an
                        // orphan that comes to wait for it later waited for the next sync.
                        self.keep_refused_bytes(id, verified.encoded());
                    }
                }
                Ingested::Ignored(why.into())
            }
        }
    }

    fn ingest_delivery(
        &mut self,
        bytes: &[u8],
        me: &Identity,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> Ingested {
        // A duplicate costs no signature check.
        if self
            .deliveries
            .contains_key(&DeliveryId(SetKind::Deliveries.id_of(bytes)))
        {
            return Ingested::Duplicate;
        }
        let delivery = match KeyDelivery::decode(bytes, self.log.collective()) {
            Ok(d) => d,
            // A newer peer's format is no fault of the peer.
            Err(e @ EpochError::UnsupportedVersion(_)) => return Ingested::Ignored(e.into()),
            Err(e) => return Ingested::Rejected(e.into()),
        };
        if self.deliveries.contains_key(&delivery.id()) {
            return Ingested::Duplicate;
        }
        // A later-dated rotation of an epoch pushes its write deadline and key deletion later
        // (see `EpochInfo::created`): only as far as now, like a post's date.
        if delivery.body().timestamp > now.saturating_add(envelope::MAX_CLOCK_SKEW_SECS) {
            self.skew_date = Some(delivery.body().timestamp);
            return Ingested::Ignored(Refusal::ClockSkew(SetKind::Deliveries));
        }
        self.accept_delivery(delivery, me, effects)
    }

    /// The rules after a delivery decoded and its signature verified: its authority at its
    /// heads, then what it gives this replica.
    fn accept_delivery(
        &mut self,
        delivery: KeyDelivery,
        me: &Identity,
        effects: &mut Vec<Effect>,
    ) -> Ingested {
        if self.deliveries.contains_key(&delivery.id()) {
            return Ingested::Duplicate;
        }
        let read = self.effective_heads(&delivery.body().heads);
        let heads = read.as_deref().unwrap_or(&delivery.body().heads);
        // Read through refused ops, a delivery is refused without penalty (its honest
        // forwarder may hold the refused op that admitted its author), unless every head read
        // is held and no op this replica knows of (held, a stub, or remembered as refused)
        // ever proposed its author: the op admitting an honest author is in the past of the
        // heads it names, so it is held, or a stub, or a refused op the reading went through,
        // or below a head read that is not held yet. Such a delivery is a stranger's,
        // penalised, and costs no roster at the heads read (Review 9, R9-8).
        if read.is_some()
            && !self.log.may_be_admitted(&delivery.body().author)
            && heads.iter().all(|h| self.log.contains(h))
        {
            return Ingested::Rejected(
                EpochError::NotAllowed("the author was not a member").into(),
            );
        }
        let Some(named) = NamedMembers::of(&mut self.log, heads, self.shared.as_deref()) else {
            let author = delivery.body().author;
            let waits = self.missing_heads(heads);
            return self.hold(Form::Delivery(Box::new(delivery)), Some(author), waits);
        };
        let roster = &named.view(&self.log);
        let penalty = |outcome: Ingested| outcome.without_penalty_if(read.is_some());
        if let Err(e) = delivery.check_authority(roster) {
            return penalty(Ingested::Rejected(e.into()));
        }
        match self.book.record(&delivery, me, roster) {
            Ok(Recorded::NewKey(_) | Recorded::Noted) => {}
            // Valid for everyone else, and nobody but its signer is to blame: kept, forwarded,
            // and the key asked for again in the next sync (`State::lacking_epochs`).
            Ok(Recorded::Unreadable { epoch, signer }) => {
                effects.push(Effect::Note(Note::UnreadableKeyShare { epoch, signer }));
            }
            Err(e) => return penalty(Ingested::Rejected(e.into())),
        }
        effects.push(Effect::PutDelivery {
            id: delivery.id(),
            bytes: delivery.encoded().to_vec(),
        });
        self.released.push(Wait::Epoch(delivery.epoch()));
        self.deliveries.insert(&delivery);
        self.index.deliveries = None;
        Ingested::Accepted
    }

    /// Take in many envelopes at once (a sync batch or a burst of gossip), at time `now`: their
    /// signatures are checked together ([`envelope::open_batch`]), then each is judged
    /// in order exactly as [`State::ingest`] judges it alone, so one bad signature refuses that
    /// envelope and no other. Returns the outcome of each, in order, and the effects of all.
    pub fn ingest_envelopes(
        &mut self,
        envelopes: &[&[u8]],
        me: &Identity,
        now: u64,
    ) -> (Vec<Ingested>, Vec<Effect>) {
        let mut effects = Vec::new();
        // What is already accepted, held or refused is not opened again.
        let fresh: Vec<bool> = envelopes
            .iter()
            .map(|bytes| !self.known_envelope(bytes, now))
            .collect();
        let to_open: Vec<&[u8]> = envelopes
            .iter()
            .zip(&fresh)
            .filter(|(_, fresh)| **fresh)
            .map(|(bytes, _)| *bytes)
            .collect();
        let collective = self.log.collective();
        let book = &self.book;
        let mut opened = envelope::open_batch(&to_open, collective, |e| book.key(e)).into_iter();
        let mut outcomes = Vec::with_capacity(envelopes.len());
        for (bytes, fresh) in envelopes.iter().zip(fresh) {
            let opened = if fresh { opened.next() } else { None };
            let key = SetKind::Envelopes.refusal_key(bytes);
            let outcome = match opened {
                // Duplicates within the batch are found here, as `ingest` finds them.
                Some(_) if self.known_envelope(bytes, now) => {
                    self.known_again(&key, me, now, &mut effects)
                }
                Some(opened) => {
                    self.deferred.remove(&key);
                    self.skew_date = None;
                    self.hold = None;
                    let outcome = self.accept_opened(bytes, opened, now, &mut effects);
                    self.remember(key, &outcome, None);
                    outcome
                }
                None => self.known_again(&key, me, now, &mut effects),
            };
            outcomes.push(outcome);
        }
        self.release(me, now, &mut Batch::default(), &mut effects);
        (outcomes, effects)
    }

    /// An envelope known already: a held one is judged again from its kept form, anything
    /// else is a duplicate.
    fn known_again(
        &mut self,
        key: &[u8; 32],
        me: &Identity,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> Ingested {
        match self.held.find(key) {
            Some(at) => self.recheck(at, me, now, effects),
            None => Ingested::Duplicate,
        }
    }

    /// Whether an envelope is a wrapping of a post already held (a forged id is caught when it
    /// is opened), these very bytes are held, or were refused before.
    fn known_envelope(&self, bytes: &[u8], now: u64) -> bool {
        let key = SetKind::Envelopes.refusal_key(bytes);
        envelope::id_of(bytes).is_ok_and(|id| self.post_known(&id))
            || self.held.find(&key).is_some()
            || self.refused.contains(&key)
            || self.still_deferred(&key, now)
    }

    /// Remember `id` as refused because its author's day is full here, and try again the items
    /// waiting for it: they are judged as if they named its parents ([`State::effective_heads`]).
    /// Ops are read through it only once its signature is checked (`State::stubbed`).
    fn refuse_over_quota(
        &mut self,
        id: OpId,
        body: &crate::membership::OpBody,
        effects: &mut Vec<Effect>,
    ) {
        if self
            .log
            .refuse_over_quota(id, &body.parents, body.action.admits())
        {
            self.released.push(Wait::Op(id));
        }
        self.keep_readings(effects);
    }

    /// Keep the bytes of an op refused over the quota at hand ([`RECENT_REFUSED`], oldest
    /// dropped first; once each), for [`State::judge_wanted`].
    fn keep_refused_bytes(&mut self, id: OpId, bytes: &[u8]) {
        if self.log.is_stub(&id) || self.recent_refused.iter().any(|(kept, _)| *kept == id) {
            return;
        }
        if self.recent_refused.len() >= RECENT_REFUSED {
            self.recent_refused.pop_front();
        }
        self.recent_refused.push_back((id, bytes.to_vec()));
    }

    /// Keep a verified op refused over the quota as a stub ([`MembershipLog::add_stub`]): what
    /// waited for it is tried again (an op held here then waits for what lies below it, or
    /// joins).
    fn stubbed(&mut self, op: Op, effects: &mut Vec<Effect>) {
        let id = op.id();
        let added = self.log.add_stub(op);
        self.released.push(Wait::Op(id));
        self.membership_grew(added, effects);
    }

    /// Store the readings of ops that joined read through refused ops, or whose reading
    /// changed ([`Effect::PutReadParents`]).
    fn keep_readings(&mut self, effects: &mut Vec<Effect>) {
        effects.extend(
            self.log
                .take_new_stubs()
                .into_iter()
                .map(|op| Effect::PutStub {
                    id: op.id(),
                    bytes: op.encoded().to_vec(),
                }),
        );
        effects.extend(
            self.log
                .take_readings()
                .into_iter()
                .map(|(id, parents, via)| Effect::PutReadParents { id, parents, via }),
        );
        effects.extend(
            self.log
                .take_look_ups()
                .into_iter()
                .map(|(id, keys)| Effect::PutLookUp { id, keys }),
        );
    }

    /// Ops that joined the log outside an insert of their own (orphans let in): what waited
    /// for them is tried again, and the roster changed. They are in the store already (kept
    /// there as orphans).
    fn membership_grew(&mut self, added: Vec<OpId>, effects: &mut Vec<Effect>) {
        if added.is_empty() {
            return;
        }
        self.index.ops = None;
        self.released.extend(added.into_iter().map(Wait::Op));
        effects.push(Effect::Note(Note::MembershipChanged));
    }

    /// The heads an item is judged at, when they differ from those it names: each head this
    /// replica refused over its author's daily quota and does not hold is read as absent, and
    /// the parents that op names (fixed by its bytes, hence by its id) as named instead, again
    /// and again while those are such heads (`None`: judged at the heads it names). So an alert
    /// written on a run of the member's ops, naming only the last, keeps the history below.
    ///
    /// Why this grants nothing: an item's author chooses its heads, any ids she likes, so the
    /// heads read here are ones she could have named herself, and every rule reading them is
    /// one she could already play with them: membership and removal of the author and of a
    /// delivery's recipients, a rotation reaching every member, the epoch's status and a
    /// rotation's removals all come from the roster at the heads, `roster_at` of the heads
    /// read exactly as if she had named them (the `Named::Current` shortcut compares those
    /// heads with the current ones, so it gives that roster too); a reference's authority
    /// comes from the current roster; no rule asks that heads be recent or include anything.
    /// So a rotation so judged must still reach every member at the heads read and records the
    /// removals there, as it would had its author named them. Only this replica's state decides
    /// whether a head is read so, and only for the op of exactly those bytes (its id), refused
    /// here. A refusal of an item so judged penalises nobody ([`Ingested::without_penalty_if`]).
    /// Cost: at most the set's ids and parents are visited per item.
    fn effective_heads(&self, heads: &[OpId]) -> Option<Vec<OpId>> {
        let refused = |h: &OpId| self.log.refused_parents(h);
        if !heads.iter().any(|h| refused(h).is_some()) {
            return None;
        }
        let mut read = std::collections::BTreeSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<OpId> = heads.to_vec();
        while let Some(h) = stack.pop() {
            if !seen.insert(h) {
                continue;
            }
            match refused(&h) {
                Some(parents) => stack.extend_from_slice(parents),
                None => {
                    read.insert(h);
                }
            }
        }
        Some(read.into_iter().collect())
    }

    /// The heads of `heads` not in the log with their history, as what an item waits for
    /// (`MembershipLog::roster_at` answers for any heads the log holds, so an item is held for
    /// its heads only when one of them is missing).
    fn missing_heads(&self, heads: &[OpId]) -> Vec<Wait> {
        heads
            .iter()
            .filter(|h| !self.log.contains(h))
            .map(|h| Wait::Op(*h))
            .collect()
    }

    /// Whether the post `id` is accepted, or held opened (its id verified) in another
    /// wrapping: any other wrapping of it is a duplicate, so copies re-encrypted with fresh
    /// nonces by a member who holds the epoch key are neither opened nor held again and take
    /// none of its author's held places (Review 5, H2).
    fn post_known(&self, id: &ContentId) -> bool {
        self.posts.contains_key(id) || self.held.holds_post(id)
    }

    fn ingest_envelope(&mut self, bytes: &[u8], now: u64, effects: &mut Vec<Effect>) -> Ingested {
        // Any wrapping of a post already held is that post (a forged id is caught by `open`;
        // one naming a held post's id is answered as a duplicate while that post is held).
        if envelope::id_of(bytes).is_ok_and(|id| self.post_known(&id)) {
            return Ingested::Duplicate;
        }
        let collective = self.log.collective();
        let roster = self.log.roster();
        if self.keys_at != roster.heads() {
            self.keys.clear();
            self.keys_at = roster.heads().to_vec();
        }
        let book = &self.book;
        let keys = &mut self.keys;
        let opened = envelope::open_verified_by(
            bytes,
            collective,
            |e| book.key(e),
            // Only a current member's key is kept; whose key the post claims decides nothing
            // else (the verdict is the one rule's either way).
            |author, ctx, body, sig| {
                keys.verify(&author.0, ctx, body, sig, roster.is_member(author))
            },
        );
        self.accept_opened(bytes, opened, now, effects)
    }

    /// The rules after an envelope is opened: membership, epoch, quota, target. What waits
    /// is held in its opened form, so trying it again checks no signature.
    fn accept_opened(
        &mut self,
        bytes: &[u8],
        opened: Result<Opened, EnvelopeError>,
        now: u64,
        effects: &mut Vec<Effect>,
    ) -> Ingested {
        let opened = match opened {
            Ok(o) => o,
            // Nobody is known to have signed it until it opens.
            Err(EnvelopeError::UnknownEpoch(epoch)) => {
                return self.hold(Form::Sealed(bytes.to_vec()), None, vec![Wait::Epoch(epoch)]);
            }
            Err(e) => return Ingested::judged(e.verdict(), e),
        };
        // Another wrapping of a post accepted since this one was held, or held now (the first
        // wrapping held is kept).
        if self.post_known(&opened.id) {
            return Ingested::Duplicate;
        }
        // Whoever signed it is who a hold is counted against (it opened, so it is theirs).
        let author = opened.body.author;
        let epoch = opened.body.epoch;
        let read = self.effective_heads(&opened.body.heads);
        let heads = read.as_deref().unwrap_or(&opened.body.heads);
        let Some(named) = Named::of(&mut self.log, heads) else {
            let waits = self.missing_heads(heads);
            return self.hold(
                Form::Opened(bytes.to_vec(), Box::new(opened)),
                Some(author),
                waits,
            );
        };
        let Some(info) = self.book.info(&epoch) else {
            return self.hold(
                Form::Opened(bytes.to_vec(), Box::new(opened)),
                Some(author),
                vec![Wait::Epoch(epoch)],
            );
        };
        let at_heads = named.roster(&self.log);
        let penalty = |outcome: Ingested| outcome.without_penalty_if(read.is_some());
        // What may still be held after `authorize` consumed it: kept only then (rare).
        let missing_target = opened
            .body
            .content
            .target()
            .filter(|t| !self.posts.contains_key(t));
        let keep = (missing_target.is_some() || info.status(at_heads) == EpochStatus::Unconfirmed)
            .then(|| opened.clone());
        let count = self
            .quota
            .get(&quota_key(&opened.body))
            .copied()
            .unwrap_or(0);
        let dated = opened.body.timestamp;
        let (verified, keep) = match (
            opened.authorize(at_heads, self.log.roster(), info, now, count),
            keep,
        ) {
            (Ok(v), keep) => (v, keep),
            (Err(envelope::Rejection::EpochUnconfirmed), Some(kept)) => {
                let form = Form::Opened(bytes.to_vec(), Box::new(kept));
                return self.hold(form, Some(author), vec![Wait::Epoch(epoch)]);
            }
            (Err(e), _) => {
                if e == envelope::Rejection::FromTheFuture {
                    self.skew_date = Some(dated);
                }
                return penalty(Ingested::judged(e.verdict(), e));
            }
        };
        if let (Some(target), Some(kept)) = (missing_target, keep) {
            let form = Form::Opened(bytes.to_vec(), Box::new(kept));
            return self.hold(form, Some(author), vec![Wait::Post(target)]);
        }
        if let Some(outcome) = self.check_target(&verified, named.roster(&self.log)) {
            return penalty(outcome);
        }
        let id = verified.id();
        effects.push(Effect::PutPost {
            id,
            record: Box::new(PostRecord {
                envelope: bytes.to_vec(),
                coarse_time: verified.coarse_time(),
                body: verified.body().clone(),
                received: now,
            }),
        });
        effects.push(Effect::Note(match &verified.body().content {
            Content::Retraction { target, .. } => Note::Retracted { target: *target },
            _ => Note::PostAccepted(id),
        }));
        self.insert_post(id, verified.meta());
        self.released.push(Wait::Post(id));
        Ingested::Accepted
    }

    /// Rules for posts that refer to a post held: [`Verified::check_reference`] against the
    /// current roster.
    fn check_target(&self, verified: &Verified, at_heads: &Roster) -> Option<Ingested> {
        let target = verified.body().content.target()?;
        let Some(original) = self.posts.get(&target) else {
            return Some(Ingested::Held);
        };
        let e = verified
            .check_reference(target, &original, at_heads, self.log.roster())
            .err()?;
        Some(Ingested::judged(e.verdict(), e))
    }

    /// Keep what is needed of an accepted post in memory, with its quota count and reference
    /// index.
    fn insert_post(&mut self, id: ContentId, meta: PostMeta) {
        if self.posts.insert(id, meta) {
            self.count_post(id, &meta);
            self.index.posts = None;
        }
    }

    /// The quota count and reference index of a post just added to `posts`.
    fn count_post(&mut self, id: ContentId, meta: &PostMeta) {
        *self
            .quota
            .entry((
                meta.author,
                envelope::day_of(meta.timestamp),
                meta.counts_against_quota(),
            ))
            .or_insert(0) += 1;
        if let Some(target) = meta.target {
            self.refs.entry(target).or_default().push(id);
        }
    }

    /// Forget a post (expired). Its quota count stays: the day it counted against has passed
    /// for any post that expires.
    fn remove_post(&mut self, id: &ContentId) {
        if let Some(meta) = self.posts.remove(id) {
            if let Some(target) = meta.target {
                if let Some(list) = self.refs.get_mut(&target) {
                    list.retain(|r| r != id);
                    if list.is_empty() {
                        self.refs.remove(&target);
                    }
                }
            }
        }
        self.refs.remove(id);
        self.index.posts = None;
    }

    /// Stop claiming the post `id` because the caller's store lost it (a damaged pack, a write
    /// that failed after the post was accepted): it leaves the reconciliation set, the
    /// duplicate check and the views, and its count against its author's quota is given back,
    /// so the next sync fetches it again and it is judged afresh as any new post (an expired
    /// one is refused then, [`Rejection::Expired`](crate::envelope::Rejection)). The posts that
    /// refer to it stay (each still counted and indexed as referring to it), so a retraction
    /// or edit of it still applies when it comes back. Returns what was kept of it, or `None`
    /// (nothing changed) if it was not held: a post already deleted (expired) is never brought
    /// back by this call. The caller calls it only for posts its store lost, never for a post
    /// it deletes (that is [`State::expire`]'s).
    pub fn forget_post(&mut self, id: &ContentId) -> Option<PostMeta> {
        let meta = self.posts.remove(id)?;
        let key = (
            meta.author,
            envelope::day_of(meta.timestamp),
            meta.counts_against_quota(),
        );
        if let Some(count) = self.quota.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.quota.remove(&key);
            }
        }
        if let Some(target) = meta.target {
            if let Some(list) = self.refs.get_mut(&target) {
                list.retain(|r| r != id);
                if list.is_empty() {
                    self.refs.remove(&target);
                }
            }
        }
        self.index.posts = None;
        Some(meta)
    }

    /// Forget expired posts and the deliveries of epoch keys no longer needed at `now`. The
    /// effects delete them from disk.
    pub fn expire(&mut self, now: u64) -> Vec<Effect> {
        let expired: Vec<ContentId> = self
            .posts
            .expiries()
            .filter(|(_, expires)| *expires <= now)
            .map(|(id, _)| *id)
            .collect();
        let policy = self.log.roster().policy().clone();
        let gone_epochs = self.book.expire(&policy, now);
        let gone_deliveries: Vec<DeliveryId> = self
            .deliveries
            .values()
            .filter(|d| gone_epochs.contains(&d.epoch()))
            .map(KeptDelivery::id)
            .collect();
        let mut effects = Vec::with_capacity(expired.len() + gone_deliveries.len());
        for id in expired {
            self.remove_post(&id);
            effects.push(Effect::DeletePost(id));
        }
        for id in gone_deliveries {
            self.deliveries.remove(&id);
            self.index.deliveries = None;
            effects.push(Effect::DeleteDelivery(id));
        }
        effects
    }

    /// The sorted reconciliation set of one kind.
    pub fn sync_items(&mut self, kind: SetKind) -> &[Item] {
        let slot = match kind {
            SetKind::Ops => &mut self.index.ops,
            SetKind::Deliveries => &mut self.index.deliveries,
            SetKind::Envelopes => &mut self.index.posts,
        };
        if slot.is_none() {
            let mut items: Vec<Item> = match kind {
                // Stubs read through are offered too, so a peer can judge them itself.
                SetKind::Ops => self
                    .log
                    .ops()
                    .chain(self.log.offered_stubs())
                    .map(|op| Item {
                        timestamp: op.body().timestamp,
                        id: op.id().0,
                    })
                    .collect(),
                SetKind::Deliveries => self
                    .deliveries
                    .values()
                    .map(|d| Item {
                        timestamp: d.timestamp(),
                        id: d.id().0,
                    })
                    .collect(),
                SetKind::Envelopes => self
                    .posts
                    .coarse_times()
                    .map(|(id, timestamp)| Item {
                        timestamp,
                        id: id.0,
                    })
                    .collect(),
            };
            items.sort();
            items.dedup();
            *slot = Some(items);
        }
        slot.as_deref().unwrap_or(&[])
    }

    /// Epochs `me` is entitled to whose key this replica lacks (newest first): asked for in
    /// every sync session.
    pub fn lacking_epochs(&self, me: &MemberId, now: u64) -> Vec<EpochId> {
        self.book.lacking(me, self.log.roster(), now)
    }

    /// Answer `requester`'s request (the authenticated peer, never a name in the request) for
    /// the keys of `epochs`, as `me`: for each epoch they are entitled to
    /// ([`EpochBook::shareable`]), a key delivery sealed to their current key. A share `me`
    /// already made for them is sent again rather than a new one made, so however often a
    /// member asks, a replica makes at most one share per member, epoch and agreement key (each
    /// is a new item every member stores), and at most [`MAX_NEW_SHARES_PER_MEMBER_PER_DAY`] new
    /// shares per member and UTC day of `now`, whatever keys they rotate to. New deliveries must
    /// be ingested locally before they are sent.
    pub fn answer_key_request<R: RngCore + CryptoRng>(
        &mut self,
        me: &Identity,
        requester: &MemberId,
        epochs: &[EpochId],
        now: u64,
        rng: &mut R,
    ) -> Vec<KeyAnswer> {
        let roster = self.log.roster();
        let mine = me.member_id();
        if *requester == mine || !roster.is_member(&mine) {
            return Vec::new();
        }
        let Some(current) = roster.member(requester).map(|m| m.identity.clone()) else {
            return Vec::new();
        };
        let today = now / 86_400;
        self.shares_made.retain(|(_, day), _| *day >= today);
        let mut answers = Vec::new();
        for epoch in epochs {
            let Ok(key) = self.book.shareable(epoch, requester, roster) else {
                continue;
            };
            if let Some(delivery) = self.own_share(&mine, epoch, &current) {
                answers.push(KeyAnswer::Again(delivery.encoded().to_vec()));
                continue;
            }
            let made = self.shares_made.entry((*requester, today)).or_default();
            if *made >= MAX_NEW_SHARES_PER_MEMBER_PER_DAY {
                continue;
            }
            *made += 1;
            if let Ok(delivery) = KeyDelivery::create(
                me,
                self.log.collective(),
                key,
                DeliveryKind::Share,
                roster.heads().to_vec(),
                now,
                std::slice::from_ref(&current),
                rng,
            ) {
                answers.push(KeyAnswer::New(delivery.encoded().to_vec()));
            }
        }
        answers
    }

    /// A delivery of `epoch` signed by `me` that carries a share for `member` at their current
    /// agreement key: sent again rather than a new share made. Only `me`'s deliveries of that
    /// epoch are decoded to look (deliveries are kept encoded: [`KeptDelivery`]).
    pub fn own_share(
        &self,
        me: &MemberId,
        epoch: &EpochId,
        member: &PublicIdentity,
    ) -> Option<KeyDelivery> {
        let collective = self.log.collective();
        self.deliveries
            .values()
            .filter(|d| d.epoch() == *epoch && d.author() == *me)
            .filter_map(|d| d.decode(collective).ok())
            .find(|d| {
                d.body()
                    .shares
                    .iter()
                    .any(|s| s.recipient == member.member && s.agreement == member.agreement)
            })
    }
}

/// A key delivery answering a member's request for epoch keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyAnswer {
    /// A share this replica made before, sent again.
    Again(Vec<u8>),
    /// A new share: ingest it locally, then send it.
    New(Vec<u8>),
}

/// The order in which to take in a batch of membership ops (encoded) so that each comes after
/// those of its parents that are in the batch, as indices into `ops`; otherwise the batch's own
/// order. A sync fetches ops in id order, which for a chain of one author's ops is a random
/// order: taken in as fetched, most of a long chain waits for its parents, beyond the log's
/// bound on one author's orphans, and is fetched and verified again by the next sync (found by
/// the 1,000-replica simulation, where enrolment ops spread over hundreds of ticks). Only the
/// order changes: every op is judged by the same rules. Parents are read from the unverified
/// bodies, which is harmless: a false parent list only changes where an op is tried.
pub fn parents_first(ops: &[&[u8]], collective: crate::CollectiveId) -> Vec<usize> {
    batch_order(ops, collective).0
}

/// [`parents_first`], with the batch's ops by id (each hashed once).
fn batch_order(
    ops: &[&[u8]],
    collective: crate::CollectiveId,
) -> (Vec<usize>, HashMap<OpId, usize>) {
    let index: HashMap<OpId, usize> = ops
        .iter()
        .enumerate()
        .map(|(i, bytes)| (OpId(SetKind::Ops.id_of(bytes)), i))
        .collect();
    let mut waiting = vec![0_usize; ops.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (i, bytes) in ops.iter().enumerate() {
        let Ok(body) = Op::peek(bytes, collective) else {
            continue;
        };
        for parent in &body.parents {
            if let Some(&p) = index.get(parent) {
                if p != i {
                    waiting[i] += 1;
                    children[p].push(i);
                }
            }
        }
    }
    // Kahn's algorithm, smallest index first, so the batch's order stands where it can.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..ops.len()).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(ops.len());
    let mut placed = vec![false; ops.len()];
    while let Some(i) = ready.pop_first() {
        order.push(i);
        placed[i] = true;
        for &child in &children[i] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.insert(child);
            }
        }
    }
    // An op naming its own id twice over, or a cycle of made-up parents: last, in batch order.
    order.extend((0..ops.len()).filter(|i| !placed[*i]));
    (order, index)
}

/// The ops of a batch being taken in ([`State::ingest_ops`]), by id, for
/// [`State::judge_wanted`]: those judged already may be judged again once each.
#[derive(Default)]
struct Batch<'a> {
    ops: &'a [&'a [u8]],
    index: HashMap<OpId, usize>,
    /// Judged in the batch, and not taken since.
    judged: Vec<bool>,
}

impl<'a> Batch<'a> {
    /// The bytes of op `id` if the batch judged it already and they were not taken since.
    fn take(&mut self, id: &OpId) -> Option<&'a [u8]> {
        let i = *self.index.get(id)?;
        let judged = self.judged.get_mut(i)?;
        if !std::mem::take(judged) {
            return None;
        }
        self.ops.get(i).copied()
    }
}

/// Which daily quota counter a post counts against.
fn quota_key(body: &InnerBody) -> (MemberId, u64, bool) {
    (
        body.author,
        envelope::day_of(body.timestamp),
        body.content.counts_against_quota(),
    )
}
