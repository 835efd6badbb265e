//! A deterministic many-replica simulation of the protocol core, in the style of iroh-gossip's
//! `src/proto/sim.rs`: seeded randomness, virtual time, a lossy network that reorders, delays and
//! duplicates, a partition that later heals, and periodic anti-entropy.
//!
//! Each replica is one member's device running the core's replica state machine
//! ([`lookout_protocol::replica::State`]), the very code a node runs: it decides what to accept,
//! hold, ignore or reject, and the replica here only applies its effects (keeping the envelopes
//! it must serve) and adds what a node's event loop adds: when to sync, asking peers for epoch
//! keys it lacks, which proposals a moderator approves, rotating and posting. The script adds
//! members (k = 1 and k = 2 collectives), removes one member before the partition, two
//! concurrently on either side of it, publishes a self-revocation and admits a member during it.
//!
//! The large configuration (50 replicas, k = 2) adds adversaries acting at random moments: a
//! moderator who proposes with empty parents to bypass k-of-n and removes a moderator alone
//! naming only old ops, makes 34 concurrent proposals, and once demoted retracts others' alerts
//! naming the heads of when it was a moderator; a member who re-wraps others' alerts (retracted
//! ones too) and rotates with a junk key share for one victim, dated ahead; and a key that was
//! never a member flooding ops.
//!
//! At the end every replica must hold the same roster, every current honest member the same
//! accepted posts (every honest post made by a then-member), no removed member may hold a key of
//! an epoch rotated by someone who already knew of the removal, nor have read a post under such an
//! epoch; every honest member holds the last write epoch's key; retractions stand and forged ones
//! do not; quotas hold; members always have a moderator; honest replicas refuse only adversaries'
//! items.
//!
//! Anti-entropy is modelled by exchanging whole id sets; the real reconciliation is tested in
//! `reconcile_props.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lookout_protocol::codec;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::{
    Action, MembershipLog, NewModerator, Op, PendingKind, Policy, RevocationCertificate, Roster,
    SharedStates, SignedGenesis,
};
use lookout_protocol::replica::{Effect, Ingested, KeyAnswer, Note, Refusal, SetKind, State};
use lookout_protocol::{ContentId, DeliveryId, EpochId, MemberId, OpId};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Virtual time of tick 0.
const START: u64 = 1_790_000_000;
/// Seconds per tick.
const TICK_SECS: u64 = 60;
/// Most members one moderator enrols in a scale run (all on one day, under the daily op quota).
const ADDS_PER_ENROLLER: usize = 200;

/// The scenario's knobs. Times are in ticks.
#[derive(Clone, Debug)]
struct Config {
    seed: u64,
    /// Approvals required (k).
    k: u8,
    /// Replicas.
    n: usize,
    /// Probability that a message (or a whole sync exchange) is lost.
    loss: f64,
    /// Probability that a delivered message is delivered a second time.
    duplicate: f64,
    /// Delivery delay, uniformly in `1..=max_delay` ticks.
    max_delay: u64,
    /// Probability that a member posts in a tick of the active phase.
    post_rate: f64,
    /// Anti-entropy period during the active phase (every tick in the quiet phase).
    sync_every: u64,
    partition: (u64, u64),
    /// Node-side workarounds for two protocol bugs (now fixed; see `tests/delivery_knowledge.rs`):
    /// never write under an epoch rotated before a removal we know of. Off by default so the
    /// simulation checks the protocol's own rules; `SIM_WORKAROUNDS=1` turns it on.
    workarounds: bool,
    /// Members added per scripted tick.
    adds_per_tick: usize,
    /// Whether adversaries act (see the module documentation).
    adversaries: bool,
    /// Posting stops here; only reactions (approvals, shares, rotations) and sync continue.
    quiet_from: u64,
    end: u64,
    /// Quiet ticks allowed past `end` while the replicas have not converged (every replica not
    /// removed holds what each of its links holds); 0: the run ends at `end` whatever. Scale runs
    /// allow `n` (gossip over 3 dialled links takes longer to cross a larger collective).
    settle: u64,
    /// Scale runs (issue 12): each replica dials this many random others, items travel only
    /// along those links (both ways), and a replica forwards to its other links what it accepts
    /// from one (gossip); anti-entropy is with a linked replica. `None`: every replica reaches
    /// every other directly.
    dials: Option<usize>,
    /// Share of the replicas (not the two founding moderators) that go offline once, for
    /// `down_ticks`, between the end of enrolment and the quiet phase: they receive nothing
    /// (what is sent to them is lost), act on nothing, sync with nobody.
    churn: f64,
    down_ticks: u64,
    /// Ticks a plain member without a usable epoch waits for a moderator's rotation before it
    /// rotates itself (longer than gossip takes to cross the collective, or every member who
    /// hears of a removal before the moderator's rotation rotates too).
    member_rotation_wait: u64,
    /// Key deliveries' named states resolved once for all replicas, not once per replica
    /// (`SharedStates`: the same answers; scale runs with `SIM_SHARED_STATES=1`).
    shared_states: bool,
}

impl Config {
    fn new(seed: u64, k: u8) -> Self {
        Self {
            seed,
            k,
            n: 8 + (seed % 5) as usize,
            loss: 0.10,
            duplicate: 0.02,
            max_delay: 5,
            post_rate: 0.05,
            sync_every: 5,
            partition: (70, 140),
            workarounds: false,
            adds_per_tick: 1,
            adversaries: false,
            quiet_from: 200,
            end: 260,
            settle: 0,
            dials: None,
            churn: 0.0,
            down_ticks: 0,
            member_rotation_wait: 3,
            shared_states: false,
        }
    }

    /// Issue 12 at scale: `n` replicas in a k = 1 collective, each dialling 3 others (gossip
    /// along the links, a hop taking 1 or 2 ticks, 10 % of messages lost), a tenth of them
    /// offline for 20 ticks at some point; about one post a tick. No partition, no adversaries.
    fn scale(seed: u64, n: usize) -> Self {
        Self {
            n,
            max_delay: 2,
            post_rate: 1.0 / n as f64,
            adds_per_tick: n.div_ceil(8),
            partition: (0, 0),
            dials: Some(3),
            churn: 0.10,
            down_ticks: 20,
            member_rotation_wait: 30,
            settle: n as u64,
            shared_states: env_number("SIM_SHARED_STATES", 0) == 1,
            ..Self::new(seed, 1)
        }
    }

    /// `n` replicas in a k = 2 collective with adversaries; members post less often so the
    /// number of posts stays near that of the small runs.
    fn large(seed: u64, n: usize) -> Self {
        Self {
            n,
            post_rate: 0.4 / n as f64,
            adds_per_tick: n.div_ceil(8),
            adversaries: true,
            ..Self::new(seed, 2)
        }
    }
}

/// Which half of the partition replica `i` is in: the founder (0) and the second moderator (1)
/// end up on opposite sides.
fn side(i: usize) -> usize {
    i % 2
}

fn time(tick: u64) -> u64 {
    START + tick * TICK_SECS
}

/// What travels between replicas: an item's kind and encoding, judged by the core on arrival.
#[derive(Clone, Debug)]
struct Msg {
    kind: SetKind,
    /// Shared: a copy in flight on each link would not fit a 1,000-replica run in memory.
    bytes: Rc<[u8]>,
}

impl Msg {
    fn new(kind: SetKind, bytes: Vec<u8>) -> Self {
        Self {
            kind,
            bytes: bytes.into(),
        }
    }

    fn refusal_key(&self) -> [u8; 32] {
        self.kind.refusal_key(&self.bytes)
    }
}

/// A post as the simulation saw it made, for the end-of-run checks.
#[derive(Clone, Debug)]
struct Posted {
    author: MemberId,
    heads: Vec<OpId>,
    tick: u64,
}

/// One member's device: the core's state plus what a node adds around it.
struct Replica {
    identity: Identity,
    /// Seconds this device's clock is off by.
    skew: i64,
    state: State,
    /// Envelopes as accepted, by content id: what a node keeps on disk and serves to peers.
    envelopes: BTreeMap<ContentId, Vec<u8>>,
    /// The verified bodies of the posts accepted, by content id: what a node keeps on disk (the
    /// core keeps only [`lookout_protocol::envelope::PostMeta`] of each in memory).
    bodies: BTreeMap<ContentId, InnerBody>,
    /// Items the core ignored or rejected, with why: for honest replicas, only adversaries' items
    /// may be among them.
    refused: Vec<([u8; 32], Refusal)>,
    /// Key shares that did not open, with their signer (what a node shows moderators).
    unreadable: Vec<(EpochId, MemberId)>,
    /// Since when this replica has found no epoch it may write under.
    stuck_since: Option<u64>,
    workarounds: bool,
    honest: bool,
    /// The tick of the item being taken in, and when each post was accepted (for latency).
    tick: u64,
    arrived: HashMap<ContentId, u64>,
}

impl Replica {
    fn new(
        identity: Identity,
        skew: i64,
        genesis: &SignedGenesis,
        workarounds: bool,
        honest: bool,
    ) -> Self {
        Self {
            identity,
            skew,
            state: State::new(genesis.clone()),
            envelopes: BTreeMap::new(),
            bodies: BTreeMap::new(),
            refused: Vec::new(),
            unreadable: Vec::new(),
            stuck_since: None,
            workarounds,
            honest,
            tick: 0,
            arrived: HashMap::new(),
        }
    }

    fn me(&self) -> MemberId {
        self.identity.member_id()
    }

    fn clock(&self, tick: u64) -> u64 {
        time(tick).saturating_add_signed(self.skew)
    }

    fn roster(&self) -> &Roster {
        self.state.log().roster()
    }

    fn is_member(&self) -> bool {
        self.roster().is_member(&self.me())
    }

    /// Hand an item to the core and apply what it says.
    fn ingest(&mut self, msg: &Msg, tick: u64) -> Ingested {
        self.tick = tick;
        let step = self
            .state
            .ingest(msg.kind, &msg.bytes, &self.identity, self.clock(tick));
        self.apply(step.effects);
        if let Ingested::Rejected(why) | Ingested::Ignored(why) = &step.outcome {
            self.refused.push((msg.refusal_key(), why.clone()));
        }
        step.outcome
    }

    /// Hand a sync batch to the core: runs of envelopes go through batched verification
    /// ([`State::ingest_envelopes`]), as a node ingests a sync response. Returns the outcomes.
    fn ingest_batch(&mut self, msgs: &[Msg], tick: u64) -> Vec<Ingested> {
        self.tick = tick;
        // Ops as one batch ([`State::ingest_ops`]: parents first, held items tried once after).
        let ops = msgs.iter().take_while(|m| m.kind == SetKind::Ops).count();
        let bytes: Vec<&[u8]> = msgs[..ops].iter().map(|m| &m.bytes[..]).collect();
        let (mut outcomes, effects) =
            self.state
                .ingest_ops(&bytes, &self.identity, self.clock(tick));
        self.apply(effects);
        for (msg, outcome) in msgs[..ops].iter().zip(&outcomes) {
            if let Ingested::Rejected(why) | Ingested::Ignored(why) = outcome {
                self.refused.push((msg.refusal_key(), why.clone()));
            }
        }
        outcomes.reserve(msgs.len() - ops);
        let mut rest = &msgs[ops..];
        while let Some(first) = rest.first() {
            if first.kind != SetKind::Envelopes {
                outcomes.push(self.ingest(first, tick));
                rest = &rest[1..];
                continue;
            }
            let run = rest
                .iter()
                .position(|m| m.kind != SetKind::Envelopes)
                .unwrap_or(rest.len());
            let (batch, after) = rest.split_at(run);
            rest = after;
            let bytes: Vec<&[u8]> = batch.iter().map(|m| &m.bytes[..]).collect();
            let now = self.clock(tick);
            let (results, effects) = self.state.ingest_envelopes(&bytes, &self.identity, now);
            self.apply(effects);
            for (msg, outcome) in batch.iter().zip(&results) {
                if let Ingested::Rejected(why) | Ingested::Ignored(why) = outcome {
                    self.refused.push((msg.refusal_key(), why.clone()));
                }
            }
            outcomes.extend(results);
        }
        outcomes
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::PutPost { id, record } => {
                    self.arrived.entry(id).or_insert(self.tick);
                    self.envelopes.insert(id, record.envelope);
                    self.bodies.insert(id, record.body);
                }
                Effect::DeletePost(id) => {
                    self.envelopes.remove(&id);
                    self.bodies.remove(&id);
                }
                Effect::Note(Note::UnreadableKeyShare { epoch, signer }) => {
                    self.unreadable.push((epoch, signer));
                }
                // Ops and deliveries are served from the core's own state.
                _ => {}
            }
        }
    }

    /// Make and sign an op naming `parents`, take it in locally, and return it to send.
    fn op_with(&mut self, tick: u64, parents: Vec<OpId>, action: Action) -> Msg {
        let op = Op::create(
            &self.identity,
            self.state.log().collective(),
            parents,
            self.clock(tick),
            action,
        )
        .expect("op");
        let msg = Msg::new(SetKind::Ops, op.encoded().to_vec());
        let outcome = self.ingest(&msg, tick);
        assert_eq!(outcome, Ingested::Accepted, "own op not taken in");
        msg
    }

    /// An op with our current heads.
    fn make_op(&mut self, tick: u64, action: Action) -> Msg {
        let heads = self.state.log().writer_heads(&self.me());
        self.op_with(tick, heads, action)
    }

    /// Deliver an epoch key, take it in locally and return it to send.
    fn make_delivery(
        &mut self,
        tick: u64,
        key: &EpochKey,
        kind: DeliveryKind,
        recipients: &[PublicIdentity],
        rng: &mut ChaCha20Rng,
    ) -> Msg {
        let delivery = KeyDelivery::create(
            &self.identity,
            self.state.log().collective(),
            key,
            kind,
            self.state.log().writer_heads(&self.me()),
            self.clock(tick),
            recipients,
            rng,
        )
        .expect("honest delivery");
        let msg = Msg::new(SetKind::Deliveries, delivery.encoded().to_vec());
        let outcome = self.ingest(&msg, tick);
        assert_eq!(outcome, Ingested::Accepted, "own delivery not taken in");
        msg
    }

    /// One tick of a node's own behaviour.
    fn act(&mut self, tick: u64, world: &mut World, out: &mut Vec<Msg>) {
        if !self.is_member() {
            return;
        }
        let me = self.me();
        // The roster is read where it is used, not cloned: a clone per replica per tick (two,
        // before) copied every member's record, replicas × members a tick, which a node never
        // does (at 300 replicas 10 % of the run's CPU, `BTreeMap::clone`).
        let moderator = self.roster().is_moderator(&me);
        let now = self.clock(tick);

        // Moderators approve what was agreed in person: proposals of vetted people, and the
        // promotions and demotions of the script (those pending before any of these approvals).
        if moderator {
            let agreed: Vec<OpId> = self
                .roster()
                .pending()
                .iter()
                .filter(|pending| {
                    let agreed = match &pending.kind {
                        PendingKind::Add { identity, .. } => {
                            world.vetted.contains(&identity.member)
                        }
                        PendingKind::Promote(member) => world.promotable.contains(member),
                        PendingKind::Demote(member) => world.demotable.contains(member),
                        PendingKind::RemoveModerator(_) | PendingKind::AddMailbox { .. } => false,
                    };
                    agreed && !pending.approvals.contains(&me)
                })
                .map(|pending| pending.proposal)
                .collect();
            for proposal in agreed {
                out.push(self.make_op(tick, Action::Approve { proposal }));
            }
        }

        // Approvals may have changed the roster: act on the new one from here on (the deliveries
        // below change no membership op, so `self.roster()` stays this roster).
        let roster_ops = self.roster().op_count();

        // Moderators give every live epoch they hold to members who lack it.
        if moderator {
            let policy = self.roster().policy().clone();
            let live: Vec<EpochId> = self
                .state
                .book()
                .epochs()
                .filter(|e| e.have_key && e.delete_after(&policy) >= now)
                .map(|e| e.id)
                .collect();
            for epoch in live {
                let missing = self
                    .state
                    .book()
                    .missing_recipients(&epoch, self.state.log().roster());
                if missing.is_empty() {
                    continue;
                }
                let key = self.state.book().key(&epoch).expect("held").clone();
                out.push(self.make_delivery(
                    tick,
                    &key,
                    DeliveryKind::Share,
                    &missing,
                    world.rng(),
                ));
                world.shares += 1;
            }
        }

        // Whoever finds every known epoch retired (or out of date) rotates; the founder creates
        // the first. Plain members give moderators a few ticks to do it first.
        let known = self.state.book().epochs().next().is_some();
        let roster = self.state.log().roster();
        let candidates: Vec<EpochId> = self
            .state
            .book()
            .epochs()
            .filter(|e| !e.retired(roster) && e.writable_at(now, roster.policy()))
            .map(|e| e.id)
            .collect();
        let founder = roster.founder();
        let usable = candidates.into_iter().any(|e| self.fresh(e));
        let needs_rotation = if known { !usable } else { me == founder };
        if needs_rotation {
            let since = *self.stuck_since.get_or_insert(tick);
            if moderator || tick >= since + world.config.member_rotation_wait {
                let key = EpochKey::generate(world.rng());
                let recipients: Vec<_> = self
                    .roster()
                    .members()
                    .map(|m| m.identity.clone())
                    .collect();
                out.push(self.make_delivery(
                    tick,
                    &key,
                    DeliveryKind::Rotation,
                    &recipients,
                    world.rng(),
                ));
                world.rotations.push((tick, me, key.id()));
                self.stuck_since = None;
            }
        } else {
            self.stuck_since = None;
        }
        assert_eq!(
            self.roster().op_count(),
            roster_ops,
            "a delivery changed the roster"
        );

        // Post.
        let post_rate = world.config.post_rate;
        if tick < world.config.quiet_from && world.rng().gen_bool(post_rate) {
            let Some(epoch) = self.state.book().write_epoch(self.roster(), now) else {
                return; // waiting for a share or a rotation
            };
            if !self.fresh(epoch) {
                return; // waiting for a rotation
            }
            let key = self
                .state
                .book()
                .key(&epoch)
                .expect("write epoch is held")
                .clone();
            let content = self.content(world);
            let body = InnerBody {
                collective: self.state.log().collective(),
                epoch,
                author: me,
                seq: self.state.next_seq(),
                heads: self.state.log().writer_heads(&me),
                timestamp: now,
                // Reachability announcements live a day at most.
                expires: now
                    + if content.counts_against_quota() {
                        30 * 86_400
                    } else {
                        envelope::MAX_REACHABILITY_SECS
                    },
                content,
            };
            let heads = body.heads.clone();
            let retracted = match &body.content {
                Content::Retraction { target, .. } => Some(*target),
                _ => None,
            };
            let sealed = envelope::seal(&self.identity, &key, body, world.rng()).expect("seal");
            world.posted.insert(
                sealed.id,
                Posted {
                    author: me,
                    heads,
                    tick,
                },
            );
            let msg = Msg::new(SetKind::Envelopes, sealed.bytes);
            let outcome = self.ingest(&msg, tick);
            assert_eq!(outcome, Ingested::Accepted, "own post refused");
            world.retracted.extend(retracted);
            out.push(msg);
        }
    }

    /// With workarounds on: whether nobody we know to be removed was removed after `epoch` was
    /// rotated (so no removed member can hold it, whichever shares we have or have not seen).
    fn fresh(&mut self, epoch: EpochId) -> bool {
        if !self.workarounds {
            return true;
        }
        let removed: Vec<MemberId> = self.roster().removed().keys().copied().collect();
        let rotations: Vec<Vec<OpId>> = self
            .state
            .deliveries()
            .values()
            .filter(|d| d.epoch() == epoch && d.kind() == DeliveryKind::Rotation)
            .map(|d| d.heads().to_vec())
            .collect();
        let mut log = self.state.log().clone();
        rotations.iter().any(|heads| {
            log.roster_at(heads)
                .is_some_and(|at| removed.iter().all(|m| at.is_removed(m)))
        })
    }

    fn content(&self, world: &mut World) -> Content {
        let me = self.me();
        let alerts: Vec<(&ContentId, &InnerBody)> = self
            .bodies
            .iter()
            .filter(|(_, b)| matches!(b.content, Content::Alert(_)))
            .filter(|(id, _)| world.posted.contains_key(id))
            .collect();
        let mine: Vec<ContentId> = alerts
            .iter()
            .filter(|(id, b)| b.author == me && !world.retracted.contains(id))
            .map(|(id, _)| **id)
            .collect();
        let alerts: Vec<ContentId> = alerts.iter().map(|(id, _)| **id).collect();
        let rng = world.rng();
        let roll = rng.gen_range(0..100);
        match roll {
            0..=9 if !alerts.is_empty() => Content::Corroboration {
                target: *alerts.choose(rng).expect("non-empty"),
                note: "same man, same car".into(),
            },
            10..=14 if !mine.is_empty() => Content::Retraction {
                target: *mine.choose(rng).expect("non-empty"),
                reason: "wrong number".into(),
            },
            15..=19 if !mine.is_empty() => Content::Edit {
                target: *mine.choose(rng).expect("non-empty"),
                alert: alert(rng),
            },
            20..=24 => Content::Reachability {
                addresses: vec![format!("/ip4/10.0.0.{}/udp/4001/quic-v1", rng.gen::<u8>())],
            },
            _ => Content::Alert(alert(rng)),
        }
    }

    /// Everything `peer` holds that we lack, as messages, in sync order.
    fn missing_from(&self, peer: &Replica) -> Vec<Msg> {
        let mut msgs = Vec::new();
        for op in peer.state.log().ops() {
            if !self.state.log().holds(&op.id()) {
                msgs.push(Msg::new(SetKind::Ops, op.encoded().to_vec()));
            }
        }
        for (id, delivery) in peer.state.deliveries() {
            if !self.state.deliveries().contains_key(id) {
                msgs.push(Msg::new(SetKind::Deliveries, delivery.encoded().to_vec()));
            }
        }
        for (id, bytes) in &peer.envelopes {
            if !self.state.posts().contains_key(id) {
                msgs.push(Msg::new(SetKind::Envelopes, bytes.clone()));
            }
        }
        msgs
    }
}

/// Whether `target` is withdrawn at `state`: a retraction of it that stands under the current
/// roster (by its author or a current moderator), as a node shows it.
fn is_retracted(state: &State, target: &ContentId) -> bool {
    let Some(alert) = state.posts().get(target) else {
        return false;
    };
    state.referring(target).iter().any(|r| {
        state
            .posts()
            .get(r)
            .is_some_and(|post| post.retracts(*target, &alert, state.log().roster()))
    })
}

/// What any member holding the epoch key can do to anyone's envelope: decrypt it and encrypt the
/// same plaintext again with a fresh nonce.
fn rewrap(bytes: &[u8], key: &EpochKey, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut outer = envelope::peek(bytes).expect("an envelope");
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &codec::encode(&outer),
            },
        )
        .expect("decrypts");
    rng.fill_bytes(&mut outer.nonce);
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &codec::encode(&outer),
            },
        )
        .expect("encrypts");
    codec::encode(&outer)
}

/// A re-wrapped copy of `bytes` whose author signature has one bit flipped (same content id).
fn break_signature(bytes: &[u8], key: &EpochKey, rng: &mut ChaCha20Rng) -> Msg {
    let mut outer = envelope::peek(bytes).expect("an envelope");
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let mut plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &codec::encode(&outer),
            },
        )
        .expect("decrypts");
    // Plaintext: 2-byte length, then the signed part ending with the 64-byte signature.
    let len = usize::from(u16::from_le_bytes([plaintext[0], plaintext[1]]));
    plaintext[2 + len - 1] ^= 1;
    rng.fill_bytes(&mut outer.nonce);
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &codec::encode(&outer),
            },
        )
        .expect("encrypts");
    Msg::new(SetKind::Envelopes, codec::encode(&outer))
}

fn alert(rng: &mut ChaCha20Rng) -> Alert {
    let category = *Category::ALL.choose(rng).expect("categories");
    let severity = *Severity::ALL.choose(rng).expect("severities");
    Alert {
        category,
        severity,
        description: format!("incident {}", rng.gen::<u32>()),
        identifiers: Identifiers {
            phones: vec![format!("+4477009{:05}", rng.gen_range(0..100_000))],
            ..Identifiers::default()
        },
        area: "north".into(),
        incident_time: None,
        language: "en".into(),
        on_behalf: false,
    }
}

/// Shared simulation state outside the replicas: randomness and the record of what was made.
struct World {
    config: Config,
    rng: ChaCha20Rng,
    /// Identities moderators will approve (checked in person).
    vetted: BTreeSet<MemberId>,
    /// Promotions and demotions moderators agreed on in person.
    promotable: BTreeSet<MemberId>,
    demotable: BTreeSet<MemberId>,
    /// Honest posts.
    posted: BTreeMap<ContentId, Posted>,
    /// Alerts their authors retracted.
    retracted: BTreeSet<ContentId>,
    rotations: Vec<(u64, MemberId, EpochId)>,
    shares: usize,
    /// Ops fetched by syncs, and their outcomes by kind (the progress line of scale runs).
    pulled_ops: BTreeMap<&'static str, usize>,
    /// Refusal keys of what adversaries made: honest replicas may refuse only these.
    adversarial: HashSet<[u8; 32]>,
    /// Content ids of adversaries' posts (which honest replicas may hold).
    adversarial_posts: BTreeSet<ContentId>,
    /// Sync batches in which an envelope with a bad signature was refused while others of the
    /// same batch were accepted.
    bad_signature_batches: usize,
    /// Posts the forger serves with a broken signature.
    broken: BTreeSet<ContentId>,
    /// Alerts a demoted moderator tried to retract.
    forged_retractions: BTreeSet<ContentId>,
    /// Keys an adversary tried to admit or promote past k-of-n.
    spies: Vec<MemberId>,
    /// A key that was never a member and flooded ops.
    flooder: Option<MemberId>,
    /// (victim, signer, epoch) of rotations with a junk share.
    junk: Vec<(MemberId, MemberId, EpochId)>,
    /// What the adversaries managed to do, for the report.
    attacks: BTreeMap<&'static str, usize>,
}

impl World {
    fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    fn attack(&mut self, name: &'static str, msgs: &[Msg]) {
        *self.attacks.entry(name).or_default() += 1;
        self.adversarial.extend(msgs.iter().map(Msg::refusal_key));
    }
}

/// Messages in flight, ordered by arrival tick then send order.
#[derive(Default)]
struct Network {
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    payloads: HashMap<u64, (usize, usize, Msg)>,
    next: u64,
    sent: usize,
    lost: usize,
    /// Envelopes that reached a replica already holding them (gossip runs only).
    duplicates: usize,
}

impl Network {
    fn send(&mut self, tick: u64, from: usize, to: usize, msg: Msg, world: &mut World) {
        self.sent += 1;
        if world.rng.gen_bool(world.config.loss) {
            self.lost += 1;
            return;
        }
        let copies = if world.rng.gen_bool(world.config.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = tick + world.rng.gen_range(1..=world.config.max_delay);
            self.queue.push(Reverse((at, self.next)));
            self.payloads.insert(self.next, (from, to, msg.clone()));
            self.next += 1;
        }
    }

    fn due(&mut self, tick: u64) -> Vec<(usize, usize, Msg)> {
        let mut out = Vec::new();
        while let Some(Reverse((at, id))) = self.queue.peek().copied() {
            if at > tick {
                break;
            }
            self.queue.pop();
            if let Some(entry) = self.payloads.remove(&id) {
                out.push(entry);
            }
        }
        out
    }
}

/// What a run produced, for assertions and the report.
struct Outcome {
    replicas: Vec<Replica>,
    world: World,
    founder: usize,
    removed: Vec<usize>,
    network: Network,
    /// Each replica's offline interval, if it churned.
    down: Vec<Option<(u64, u64)>>,
    /// Replica indices of each replica's links.
    links: Vec<Vec<usize>>,
    /// The last tick run (past `end` when the quiet phase ran on until convergence).
    last_tick: u64,
    /// The named states resolved once for all replicas, if so configured.
    shared: Option<Arc<SharedStates>>,
}

/// The scripted roles, picked from the seed.
struct Cast {
    moderator: usize,
    victims: [usize; 3],
    revoked: usize,
    friend: usize,
    newcomer: usize,
    /// A member promoted to moderator, who attacks while a moderator and after its demotion.
    rogue: Option<usize>,
    /// A member who re-wraps others' alerts and rotates with a junk share.
    forger: Option<usize>,
}

/// When each adversary acts (ticks, from the seed).
struct Plot {
    promote: u64,
    bypass: u64,
    proposals: u64,
    demote: u64,
    forged_retraction: u64,
    rewraps: Vec<u64>,
    /// From when the forger serves posts with broken signatures.
    break_from: u64,
    junk_share: u64,
    flood: u64,
}

impl Plot {
    fn new(rng: &mut ChaCha20Rng, adds_done: u64) -> Self {
        // Once every member is in (approved and heard of).
        let promote = adds_done + 10;
        let mut rewraps: Vec<u64> = (0..6).map(|_| rng.gen_range(60..198)).collect();
        rewraps.sort_unstable();
        Self {
            promote,
            bypass: rng.gen_range(promote + 10..=62),
            proposals: rng.gen_range(promote + 10..=62),
            demote: 150,
            forged_retraction: rng.gen_range(170..=190),
            break_from: rewraps[0],
            rewraps,
            junk_share: rng.gen_range(100..=185),
            flood: rng.gen_range(10..=190),
        }
    }
}

/// The adversaries' moves at `tick`, as messages from the replica that sends them.
fn adversaries(
    tick: u64,
    cast: &Cast,
    plot: &mut Plot,
    replicas: &mut [Replica],
    world: &mut World,
    rogue_heads: &mut Option<Vec<OpId>>,
) -> Vec<(usize, Msg)> {
    let (Some(rogue), Some(forger)) = (cast.rogue, cast.forger) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let rogue_is_moderator = {
        let r = &replicas[rogue];
        r.roster().is_moderator(&r.me())
    };
    if rogue_is_moderator && rogue_heads.is_none() {
        *rogue_heads = Some(
            replicas[rogue]
                .state
                .log()
                .writer_heads(&replicas[rogue].me()),
        );
    }

    // k-of-n with self-chosen parents: admit and promote a spy naming no history, and remove a
    // fellow moderator alone naming none either.
    if tick >= plot.bypass && tick < 70 && rogue_is_moderator {
        plot.bypass = u64::MAX;
        let spy = Identity::generate(world.rng());
        world.spies.push(spy.member_id());
        let r = &mut replicas[rogue];
        let add = r.op_with(
            tick,
            Vec::new(),
            Action::ProposeAdd {
                identity: spy.public(),
                name: names::name("spy"),
            },
        );
        let add_id = Op::decode(&add.bytes, r.state.log().collective())
            .expect("own op")
            .id();
        let promote = r.op_with(
            tick,
            vec![add_id],
            Action::ProposePromote {
                member: spy.member_id(),
            },
        );
        let moderator = replicas[cast.moderator].me();
        let remove = replicas[rogue].op_with(
            tick,
            Vec::new(),
            Action::Remove {
                member: moderator,
                reason: names::reason("alone"),
            },
        );
        let msgs = [add, promote, remove];
        world.attack("k-of-n bypass with empty parents", &msgs);
        out.extend(msgs.into_iter().map(|m| (rogue, m)));
    }

    // 34 concurrent proposals, all naming the same heads.
    if tick >= plot.proposals && tick < 70 && rogue_is_moderator {
        plot.proposals = u64::MAX;
        let heads = replicas[rogue]
            .state
            .log()
            .writer_heads(&replicas[rogue].me());
        let mut msgs = Vec::new();
        for i in 0..34 {
            let stranger = Identity::generate(world.rng());
            msgs.push(replicas[rogue].op_with(
                tick,
                heads.clone(),
                Action::ProposeAdd {
                    identity: stranger.public(),
                    name: names::name(format!("stranger {i}")),
                },
            ));
        }
        world.attack("34 concurrent proposals", &msgs);
        out.extend(msgs.into_iter().map(|m| (rogue, m)));
    }

    // Once demoted, retract someone else's alert naming the heads of when it was a moderator.
    if tick >= plot.forged_retraction && tick < world.config.quiet_from && !rogue_is_moderator {
        if let Some(heads) = rogue_heads.clone() {
            if let Some(msg) = forged_retraction(tick, &mut replicas[rogue], heads, world) {
                plot.forged_retraction = u64::MAX;
                out.push((rogue, msg));
            }
        }
    }

    // Re-wrapped copies of others' alerts, retracted ones first.
    // From the first re-wrap on, the forger serves every second post it holds with its signature
    // broken (same content id), in place of the genuine one: peers fetching a sync batch from it
    // must refuse exactly those envelopes and take the rest of the batch.
    if tick >= plot.break_from {
        let f = &replicas[forger];
        let mut broken = Vec::new();
        for (id, body) in f.bodies.iter().step_by(2) {
            if world.broken.contains(id) {
                continue;
            }
            if let (Some(key), Some(bytes)) = (f.state.book().key(&body.epoch), f.envelopes.get(id))
            {
                broken.push((*id, break_signature(bytes, key, &mut world.rng)));
            }
        }
        if !broken.is_empty() {
            let forged: Vec<Msg> = broken.iter().map(|(_, m)| m.clone()).collect();
            world.attack("envelopes with a broken signature served in sync", &forged);
        }
        for (id, msg) in broken {
            world.broken.insert(id);
            replicas[forger].envelopes.insert(id, msg.bytes.to_vec());
        }
    }

    if plot.rewraps.first().is_some_and(|t| tick >= *t) {
        plot.rewraps.remove(0);
        let f = &replicas[forger];
        let mut targets: Vec<ContentId> = f
            .bodies
            .iter()
            .filter(|(_, b)| matches!(b.content, Content::Alert(_)) && b.author != f.me())
            .map(|(id, _)| *id)
            .collect();
        targets.sort_by_key(|id| !world.retracted.contains(id));
        targets.truncate(3);
        let mut msgs = Vec::new();
        for id in targets {
            let epoch = f.bodies[&id].epoch;
            if let (Some(key), Some(bytes)) = (f.state.book().key(&epoch), f.envelopes.get(&id)) {
                let key = key.clone();
                msgs.push(Msg::new(
                    SetKind::Envelopes,
                    rewrap(bytes, &key, world.rng()),
                ));
            }
        }
        world.attack("re-wrapped copies of others' alerts", &msgs);
        out.extend(msgs.into_iter().map(|m| (forger, m)));
    }

    // A rotation dated ahead, with a junk share for one victim.
    if tick >= plot.junk_share && tick < world.config.quiet_from && replicas[forger].is_member() {
        plot.junk_share = u64::MAX;
        let founder_id = replicas[0].me();
        let moderator = replicas[cast.moderator].me();
        let f = &replicas[forger];
        let victims: Vec<MemberId> = f
            .roster()
            .members()
            .map(|m| m.identity.member)
            .filter(|m| ![founder_id, moderator, f.me()].contains(m))
            .filter(|m| replicas.iter().any(|r| r.me() == *m && r.honest))
            .collect();
        if let Some(victim) = victims.choose(world.rng()).copied() {
            let msg = junk_rotation(tick, &mut replicas[forger], victim, world);
            out.push((forger, msg));
        }
    }

    // An op flood from a key that never was a member.
    if tick == plot.flood {
        let flooder = Identity::generate(world.rng());
        world.flooder = Some(flooder.member_id());
        let collective = replicas[0].state.log().collective();
        let mut msgs = Vec::new();
        for i in 0..300 {
            let stranger = Identity::generate(world.rng());
            let op = Op::create(
                &flooder,
                collective,
                Vec::new(),
                time(tick),
                Action::ProposeAdd {
                    identity: stranger.public(),
                    name: names::name(format!("flood {i}")),
                },
            )
            .expect("op");
            msgs.push(Msg::new(SetKind::Ops, op.encoded().to_vec()));
        }
        world.attack("op flood from a never-member key", &msgs);
        out.extend(msgs.into_iter().map(|m| (forger, m)));
    }
    out
}

/// A retraction of another member's alert by `rogue`, naming `heads` from when it was a
/// moderator.
fn forged_retraction(
    tick: u64,
    rogue: &mut Replica,
    heads: Vec<OpId>,
    world: &mut World,
) -> Option<Msg> {
    let now = rogue.clock(tick);
    let me = rogue.me();
    let target = rogue
        .bodies
        .iter()
        .filter(|(_, b)| matches!(b.content, Content::Alert(_)) && b.author != me)
        .filter(|(id, _)| !world.retracted.contains(id))
        .map(|(id, b)| (*id, b.expires))
        .next()?;
    let epoch = rogue.state.book().write_epoch(rogue.roster(), now)?;
    let key = rogue.state.book().key(&epoch)?.clone();
    let body = InnerBody {
        collective: rogue.state.log().collective(),
        epoch,
        author: me,
        seq: rogue.state.next_seq(),
        heads,
        timestamp: now,
        expires: target.1 + 60,
        content: Content::Retraction {
            target: target.0,
            reason: "not a moderator any more".into(),
        },
    };
    let sealed = envelope::seal(&rogue.identity, &key, body, world.rng()).expect("seal");
    world.forged_retractions.insert(target.0);
    world.adversarial_posts.insert(sealed.id);
    let msg = Msg::new(SetKind::Envelopes, sealed.bytes);
    world.attack(
        "a demoted moderator's retraction",
        std::slice::from_ref(&msg),
    );
    Some(msg)
}

/// A rotation by `forger` to every member, dated ahead, whose share for `victim` is noise.
fn junk_rotation(tick: u64, forger: &mut Replica, victim: MemberId, world: &mut World) -> Msg {
    let key = EpochKey::generate(world.rng());
    let recipients: Vec<PublicIdentity> = forger
        .roster()
        .members()
        .map(|m| m.identity.clone())
        .collect();
    let honest = KeyDelivery::create(
        &forger.identity,
        forger.state.log().collective(),
        &key,
        DeliveryKind::Rotation,
        forger.state.log().writer_heads(&forger.me()),
        time(tick) + 150,
        &recipients,
        world.rng(),
    )
    .expect("delivery");
    let mut body = honest.body().clone();
    let share = body
        .shares
        .iter_mut()
        .find(|s| s.recipient == victim)
        .expect("the victim is a member");
    world.rng.fill_bytes(&mut share.ciphertext);
    let forged = KeyDelivery::sign_body(&forger.identity, &body).expect("signed");
    let msg = Msg::new(SetKind::Deliveries, forged.encoded().to_vec());
    assert_eq!(forger.ingest(&msg, tick), Ingested::Accepted);
    world.junk.push((victim, forger.me(), key.id()));
    *world
        .attacks
        .entry("rotation with a junk share for a victim")
        .or_default() += 1;
    msg
}

fn run(config: Config) -> Outcome {
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let n = config.n;
    let identities: Vec<Identity> = (0..n).map(|_| Identity::generate(&mut rng)).collect();
    let certificates: Vec<RevocationCertificate> = identities
        .iter()
        .map(|id| RevocationCertificate::create(id, START))
        .collect();
    let policy = Policy {
        approvals_required: config.k,
        ..Policy::default()
    };
    // A collective needing k approvals is founded by k moderators: the founder and replica 1.
    let co = identities[1..usize::from(config.k)]
        .iter()
        .map(|m| NewModerator {
            identity: m.public(),
            name: "second".into(),
        })
        .collect();
    let genesis = SignedGenesis::create_with_moderators(
        &identities[0],
        &names::secret(),
        "Sim",
        "founder",
        co,
        policy,
        START,
        &mut rng,
    )
    .unwrap();
    let vetted = identities.iter().map(Identity::member_id).collect();

    // Roles. Replica 0 founds, 1 is promoted to moderator, the last joins during the partition;
    // of the plain members in between, three are removed and one revokes itself, and with
    // adversaries two more turn rogue.
    // Enrolment is shared by enough moderators to keep each under the daily op quota
    // (`MAX_OPS_PER_AUTHOR_PER_DAY`): above 203 replicas the founder, replica 1 and replicas
    // 2.. (admitted and promoted with replica 1) take turns.
    let enrollers = (n - 3).div_ceil(ADDS_PER_ENROLLER).max(1);
    let extra_moderators: Vec<usize> = (2..2 + enrollers.saturating_sub(2)).collect();
    let first_plain = 2 + extra_moderators.len();
    let enrolling: Vec<usize> = std::iter::once(0)
        .chain((enrollers > 1).then_some(1))
        .chain(extra_moderators.iter().copied())
        .collect();
    let mut plain: Vec<usize> = (first_plain..n - 1).collect();
    plain.shuffle(&mut rng);
    let cast = Cast {
        moderator: 1,
        victims: [plain[0], plain[1], plain[2]],
        revoked: plain[3],
        friend: plain.get(4).copied().unwrap_or(1),
        newcomer: n - 1,
        rogue: config.adversaries.then(|| plain[5]),
        forger: config.adversaries.then(|| plain[6]),
    };
    let mut replicas: Vec<Replica> = identities
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let skew = rng.gen_range(-120..=120);
            let honest = Some(i) != cast.rogue && Some(i) != cast.forger;
            Replica::new(id, skew, &genesis, config.workarounds, honest)
        })
        .collect();
    let shared = config
        .shared_states
        .then(|| Arc::new(SharedStates::default()));
    if let Some(shared) = &shared {
        for r in &mut replicas {
            r.state.share_named_states(Arc::clone(shared));
        }
    }
    let batch = config.adds_per_tick;
    let batches = (n - 1 - first_plain).div_ceil(batch) as u64;
    let adds_done = 5 + 3 * batches;
    let mut plot = Plot::new(&mut rng, adds_done);
    let mut rogue_heads = None;
    let mut removals = [
        (45, 0, cast.victims[0]),
        (85, 0, cast.victims[1]),
        (87, cast.moderator, cast.victims[2]),
    ];
    let mut world = World {
        config: config.clone(),
        rng,
        vetted,
        promotable: BTreeSet::new(),
        demotable: BTreeSet::new(),
        posted: BTreeMap::new(),
        retracted: BTreeSet::new(),
        rotations: Vec::new(),
        shares: 0,
        pulled_ops: BTreeMap::new(),
        adversarial: HashSet::new(),
        adversarial_posts: BTreeSet::new(),
        bad_signature_batches: 0,
        broken: BTreeSet::new(),
        forged_retractions: BTreeSet::new(),
        spies: Vec::new(),
        flooder: None,
        junk: Vec::new(),
        attacks: BTreeMap::new(),
    };
    let mut network = Network::default();
    let founder = 0;
    let (split_at, heal_at) = config.partition;
    let partitioned =
        |tick: u64, a: usize, b: usize| (split_at..heal_at).contains(&tick) && side(a) != side(b);
    // Who talks to whom: everyone, or (scale runs) the links each replica dialled, both ways.
    let links: Vec<Vec<usize>> = match config.dials {
        None => (0..n)
            .map(|i| (0..n).filter(|j| *j != i).collect())
            .collect(),
        Some(dials) => {
            let mut linked = vec![BTreeSet::new(); n];
            for i in 0..n {
                for k in rand::seq::index::sample(&mut world.rng, n - 1, dials.min(n - 1)) {
                    let j = if k >= i { k + 1 } else { k };
                    linked[i].insert(j);
                    linked[j].insert(i);
                }
            }
            linked
                .into_iter()
                .map(|l| l.into_iter().collect())
                .collect()
        }
    };
    let gossip = config.dials.is_some();
    // Churn: each churning replica's one offline interval, after enrolment, before the quiet.
    let mut down: Vec<Option<(u64, u64)>> = vec![None; n];
    if config.churn > 0.0 {
        // Not the member who publishes a revocation certificate at tick 95 (its op must find it
        // a member), nor the newcomer.
        let mut churning: Vec<usize> = (2..n)
            .filter(|i| *i != cast.friend && *i != cast.newcomer)
            .collect();
        churning.shuffle(&mut world.rng);
        let count = (config.churn * n as f64).round() as usize;
        let last = config
            .quiet_from
            .saturating_sub(config.down_ticks)
            .max(adds_done + 1);
        for &i in churning.iter().take(count) {
            let from = world.rng.gen_range(adds_done..last);
            down[i] = Some((from, from + config.down_ticks));
        }
    }
    let mut deferred: Vec<(usize, Action)> = Vec::new();
    let offline = |tick: u64, i: usize| down[i].is_some_and(|(a, b)| (a..b).contains(&tick));

    let removed = [
        cast.victims[0],
        cast.victims[1],
        cast.victims[2],
        cast.revoked,
    ];
    let started = std::time::Instant::now();
    let mut last_tick = 0;
    for tick in 0..=config.end + config.settle {
        last_tick = tick;
        if n >= 200 && tick % 20 == 0 {
            progress(tick, started.elapsed(), &replicas, &network, &world);
        }
        // Arrivals.
        // Scale runs: a replica that holds a gossiped item (it lacks what the item names) syncs
        // with its sender in the same tick, once a tick, as a node does (`start_sync` on
        // `Ingested::Held`).
        let mut pull_from: BTreeMap<usize, usize> = BTreeMap::new();
        for (from, to, msg) in network.due(tick) {
            // A link cut while the message was in flight loses it, and so does a replica offline.
            if partitioned(tick, from, to) || offline(tick, to) {
                continue;
            }
            let outcome = replicas[to].ingest(&msg, tick);
            if !gossip {
                continue;
            }
            if outcome == Ingested::Held {
                pull_from.entry(to).or_insert(from);
            }
            match outcome {
                Ingested::Accepted => {
                    for &next in links[to].iter().filter(|next| **next != from) {
                        network.send(tick, to, next, msg.clone(), &mut world);
                    }
                }
                Ingested::Duplicate if msg.kind == SetKind::Envelopes => network.duplicates += 1,
                _ => {}
            }
        }
        // Members always have a moderator.
        assert!(
            replicas[founder].roster().moderator_count() >= 1,
            "tick {tick}: no moderator left"
        );

        // The script.
        let mut outbox: Vec<(usize, Msg)> = Vec::new();
        let add = |i: usize, replicas: &[Replica]| Action::ProposeAdd {
            identity: replicas[i].identity.public(),
            name: names::name(format!("member {i}")),
        };
        let remove = |i: usize, replicas: &[Replica]| Action::Remove {
            member: replicas[i].me(),
            reason: names::reason("phone seized"),
        };
        let mut scripted: Vec<(usize, Action)> = match tick {
            2 => std::iter::once(cast.moderator)
                .chain(extra_moderators.iter().copied())
                .map(|i| (founder, add(i, &replicas)))
                .collect(),
            4 => std::iter::once(cast.moderator)
                .chain(extra_moderators.iter().copied())
                .map(|i| {
                    let member = replicas[i].me();
                    (founder, Action::ProposePromote { member })
                })
                .collect(),
            t if (5..adds_done).contains(&t) && (t - 5) % 3 == 0 => {
                let first = first_plain + ((t - 5) / 3) as usize * batch;
                (first..(first + batch).min(n - 1))
                    .map(|i| (enrolling[i % enrolling.len()], add(i, &replicas)))
                    .collect()
            }
            95 => vec![(
                cast.friend,
                Action::PublishRevocation {
                    certificate: certificates[cast.revoked].clone(),
                },
            )],
            100 => vec![(founder, add(cast.newcomer, &replicas))],
            _ => Vec::new(),
        };
        // Removals, each once the remover has seen the victim admitted (in large collectives
        // admissions take longer than the first removal's tick).
        for removal in &mut removals {
            let (at, remover, victim) = *removal;
            if tick >= at && replicas[remover].roster().is_member(&replicas[victim].me()) {
                removal.0 = u64::MAX;
                scripted.push((remover, remove(victim, &replicas)));
            }
        }
        if let Some(rogue) = cast.rogue {
            let member = replicas[rogue].me();
            // The founder proposes once it sees the rogue's admission (and promotion).
            let seen = replicas[founder]
                .roster()
                .member(&member)
                .map(|m| m.moderator);
            if tick >= plot.promote && seen == Some(false) {
                plot.promote = u64::MAX;
                world.promotable.insert(member);
                scripted.push((founder, Action::ProposePromote { member }));
            }
            if tick >= plot.demote && seen == Some(true) {
                plot.demote = u64::MAX;
                world.demotable.insert(member);
                scripted.push((founder, Action::ProposeDemote { member }));
            }
        }
        // An actor who has not yet heard of its own admission (gossip is slower in large
        // collectives) acts once it has.
        scripted.append(&mut deferred);
        for (who, action) in scripted {
            // A moderator enrolling waits until it has heard of its promotion.
            let waits_for_promotion = who != founder
                && matches!(action, Action::ProposeAdd { .. })
                && !replicas[who].roster().is_moderator(&replicas[who].me());
            if !replicas[who].is_member() || waits_for_promotion {
                assert!(
                    tick < config.quiet_from,
                    "replica {who} never heard it is a member: {} ops, {} orphans (founder {}), {} held, links {:?} holding {:?} ops, down {:?}, refused {:?}",
                    replicas[who].state.log().len(),
                    replicas[who].state.log().orphan_count(),
                    replicas[founder].state.log().len(),
                    replicas[who].state.held_count(),
                    links[who],
                    links[who].iter().map(|j| replicas[*j].state.log().len()).collect::<Vec<_>>(),
                    down[who],
                    replicas[who].refused.iter().map(|r| &r.1).take(5).collect::<Vec<_>>()
                );
                deferred.push((who, action));
                continue;
            }
            outbox.push((who, replicas[who].make_op(tick, action)));
        }
        outbox.extend(adversaries(
            tick,
            &cast,
            &mut plot,
            &mut replicas,
            &mut world,
            &mut rogue_heads,
        ));

        // Each honest replica's own behaviour, in a random order.
        let mut order: Vec<usize> = (0..n)
            .filter(|i| replicas[*i].honest && !offline(tick, *i))
            .collect();
        order.shuffle(&mut world.rng);
        for i in order {
            let mut out = Vec::new();
            replicas[i].act(tick, &mut world, &mut out);
            outbox.extend(out.into_iter().map(|m| (i, m)));
        }
        for (from, msg) in outbox {
            // What an offline replica made (a scripted op) reaches others by sync later.
            if offline(tick, from) {
                continue;
            }
            for &to in &links[from] {
                if !partitioned(tick, from, to) {
                    network.send(tick, from, to, msg.clone(), &mut world);
                }
            }
        }

        // Anti-entropy: each replica pulls what it lacks from one random reachable peer, then
        // asks it for the epoch keys it lacks (as a node does in every sync session it starts).
        let period = if tick >= config.quiet_from {
            1
        } else {
            config.sync_every
        };
        for (i, j) in pull_from {
            if !offline(tick, i) && !offline(tick, j) && !world.rng.gen_bool(config.loss) {
                pull(i, j, tick, &mut replicas, &mut world);
            }
        }
        if tick % period == 0 {
            for (i, linked) in links.iter().enumerate() {
                if offline(tick, i) {
                    continue;
                }
                let peers: Vec<usize> = linked
                    .iter()
                    .copied()
                    .filter(|j| !partitioned(tick, i, *j) && !offline(tick, *j))
                    .collect();
                let Some(&j) = peers.choose(&mut world.rng) else {
                    continue; // every link offline: try next time
                };
                if world.rng.gen_bool(config.loss) {
                    continue;
                }
                pull(i, j, tick, &mut replicas, &mut world);
            }
        }
        if config.settle > 0 && tick >= config.end && settled(&replicas, &links, &removed) {
            break;
        }
    }

    Outcome {
        replicas,
        world,
        founder,
        removed: removed.to_vec(),
        network,
        down,
        links,
        last_tick,
        shared,
    }
}

/// One sync session: replica `i` pulls what it lacks from `j`, then asks it for the epoch keys
/// it lacks (as a node does in every sync session it starts).
fn pull(i: usize, j: usize, tick: u64, replicas: &mut [Replica], world: &mut World) {
    let msgs = replicas[i].missing_from(&replicas[j]);
    // Ops first, then deliveries, then envelopes: the order a sync would fetch them.
    let outcomes = replicas[i].ingest_batch(&msgs, tick);
    for (msg, outcome) in msgs.iter().zip(&outcomes) {
        if msg.kind == SetKind::Ops {
            let what = match outcome {
                Ingested::Accepted => "accepted",
                Ingested::Duplicate => "duplicate",
                Ingested::Held => "held",
                Ingested::Ignored(_) => "ignored",
                Ingested::Rejected(_) => "rejected",
            };
            *world.pulled_ops.entry(what).or_default() += 1;
        }
    }
    let bad_signatures = msgs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| {
            matches!(
                o,
                Ingested::Rejected(Refusal::BadSignature(SetKind::Envelopes))
            )
        })
        .count();
    if bad_signatures > 0 && outcomes.contains(&Ingested::Accepted) {
        world.bad_signature_batches += 1;
    }
    let me = replicas[i].me();
    let lacking = replicas[i]
        .state
        .lacking_epochs(&me, replicas[i].clock(tick));
    if lacking.is_empty() || !replicas[j].honest {
        return;
    }
    let now = replicas[j].clock(tick);
    let answerer = &mut replicas[j];
    let answers =
        answerer
            .state
            .answer_key_request(&answerer.identity, &me, &lacking, now, &mut world.rng);
    for answer in answers {
        let msg = match answer {
            KeyAnswer::Again(bytes) => Msg::new(SetKind::Deliveries, bytes),
            KeyAnswer::New(bytes) => {
                let msg = Msg::new(SetKind::Deliveries, bytes);
                replicas[j].ingest(&msg, tick);
                world.shares += 1;
                msg
            }
        };
        replicas[i].ingest(&msg, tick);
    }
}

/// A scale run's progress line: where the run's items are, per replica (summed) and in the
/// harness, so a growth can be placed.
fn progress(
    tick: u64,
    elapsed: std::time::Duration,
    replicas: &[Replica],
    network: &Network,
    world: &World,
) {
    let sum = |f: &dyn Fn(&Replica) -> usize| replicas.iter().map(f).sum::<usize>();
    let delivery_bytes = sum(&|r| {
        r.state
            .deliveries()
            .values()
            .map(|d| d.encoded().len())
            .sum()
    });
    let mut heads: HashSet<Vec<OpId>> = HashSet::new();
    for d in replicas[0].state.deliveries().values() {
        heads.insert(d.heads().to_vec());
    }
    eprintln!(
        "  tick {tick}: {elapsed:.1?}; made {} shares, {} rotations; replicas hold {} ops, {} \
         orphans, {} deliveries ({} MiB encoded; replica 0: {} distinct named states), {} held \
         items ({} MiB), {} posts, {} refusals logged; {} messages in flight; ops fetched by \
         sync {:?}; {}",
        world.shares,
        world.rotations.len(),
        sum(&|r| r.state.log().len()),
        sum(&|r| r.state.log().orphan_count()),
        sum(&|r| r.state.deliveries().len()),
        delivery_bytes >> 20,
        heads.len(),
        sum(&|r| r.state.held_count()),
        sum(&|r| r.state.held_bytes()) >> 20,
        sum(&|r| r.envelopes.len()),
        sum(&|r| r.refused.len()),
        network.payloads.len(),
        world.pulled_ops,
        process_figures(replicas.len()),
    );
}

/// This process's CPU time and resident memory (now and peak), in all and per replica, from
/// `/proc/self` (Linux; "?" elsewhere). Per replica is the total divided by the replicas: the
/// harness's own state (network queues, posts kept for the checks) is counted in it.
/// What sharing named states across replicas saved, and what it would have cost each replica:
/// full resolutions made (once per state) and answers reused, and the CPU of a resolution at
/// some of those states on the founder's log (timed one after another, each on a fresh copy of
/// the log so no cache answers), so per-replica CPU can be given as a node would spend it.
fn shared_figures(shared: &SharedStates, founder: &Replica, n: usize) -> String {
    let (resolved, reused) = shared.counts();
    let sample = shared.sample(40);
    let mut spent = std::time::Duration::ZERO;
    let mut timed = 0u32;
    for heads in &sample {
        let mut log = founder.state.log().clone();
        let started = std::time::Instant::now();
        if log.roster_at(heads).is_some() {
            spent += started.elapsed();
            timed += 1;
        }
    }
    let each = spent.as_secs_f64() / f64::from(timed.max(1));
    format!(
        "shared named states: {resolved} resolved once, {reused} answers reused ({:.1} per replica); a resolution at {timed} of them on the founder's log: {:.2} ms each, so a replica resolving them itself would spend {:.2} CPU s more",
        reused as f64 / n as f64,
        each * 1e3,
        each * reused as f64 / n as f64,
    )
}

fn process_figures(replicas: usize) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // utime and stime, the 14th and 15th fields, in clock ticks of 1/100 s (USER_HZ on Linux).
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            (fields.len() == 2).then(|| (fields[0] + fields[1]) as f64 / 100.0)
        });
    let n = replicas.max(1) as f64;
    let mib = |k: Option<u64>| {
        k.map_or_else(
            || "?".to_owned(),
            |k| {
                format!(
                    "{:.0} MiB ({:.2} MiB per replica)",
                    k as f64 / 1024.0,
                    k as f64 / 1024.0 / n
                )
            },
        )
    };
    format!(
        "CPU {} s; RSS {}, peak {}",
        cpu.map_or_else(
            || "?".to_owned(),
            |c| format!("{c:.1} ({:.3} per replica)", c / n)
        ),
        mib(kib("VmRSS:")),
        mib(kib("VmHWM:")),
    )
}

/// Whether every replica not removed holds everything its links not removed hold.
fn settled(replicas: &[Replica], links: &[Vec<usize>], removed: &[usize]) -> bool {
    (0..replicas.len())
        .filter(|i| !removed.contains(i))
        .all(|i| {
            links[i]
                .iter()
                .filter(|j| !removed.contains(j))
                .all(|&j| replicas[i].missing_from(&replicas[j]).is_empty())
        })
}

/// The refusal keys of every item `r` holds.
fn held_keys(r: &Replica) -> HashSet<[u8; 32]> {
    let ops = r
        .state
        .log()
        .ops()
        .map(|op| SetKind::Ops.refusal_key(op.encoded()));
    let deliveries = r
        .state
        .deliveries()
        .values()
        .map(|d| SetKind::Deliveries.refusal_key(d.encoded()));
    let envelopes = r
        .envelopes
        .values()
        .map(|bytes| SetKind::Envelopes.refusal_key(bytes));
    ops.chain(deliveries).chain(envelopes).collect()
}

/// Why `r`'s roster differs from `reference`'s: the ops each holds that the other lacks, and
/// whether resolving `r`'s ops from scratch gives the same roster as its log's.
fn roster_difference(r: &Replica, reference: &Replica) -> String {
    let (a, b) = (r.state.log(), reference.state.log());
    let lacking: Vec<String> = b
        .ops()
        .filter(|op| !a.holds(&op.id()))
        .map(|op| {
            let key = SetKind::Ops.refusal_key(op.encoded());
            let why: Vec<&Refusal> = r
                .refused
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, w)| w)
                .collect();
            format!(
                "{:?} by {:?} at {}, refused {why:?}",
                op.body().action,
                op.author(),
                op.body().timestamp
            )
        })
        .collect();
    let extra = a.ops().filter(|op| !b.contains(&op.id())).count();
    let ops: Vec<&Op> = a.ops().collect();
    let fresh = lookout_protocol::membership::resolve(a.genesis(), &ops);
    format!(
        "{} ops against {} (orphans {}, {} extra); lacking {:?}; fresh resolution equal to its \
         log's roster: {}; to the reference's: {}",
        a.len(),
        b.len(),
        a.orphan_count(),
        extra,
        lacking.iter().take(5).collect::<Vec<_>>(),
        &fresh == a.roster(),
        &fresh == b.roster(),
    )
}

/// Check every invariant of a finished run.
fn check(outcome: &mut Outcome) {
    let Outcome {
        replicas,
        world,
        founder,
        removed,
        ..
    } = outcome;

    // 1. Every replica, members, removed and rogues alike, converged on the same roster, and it
    //    has moderators: the founding two were not removed or demoted by anyone alone.
    let reference = replicas[*founder].roster().clone();
    for (i, r) in replicas.iter().enumerate() {
        assert_eq!(r.state.log().orphan_count(), 0, "replica {i} has orphans");
        if r.roster() != &reference {
            panic!(
                "replica {i} roster differs: {}",
                roster_difference(r, &replicas[*founder])
            );
        }
    }
    for i in removed.iter() {
        let id = replicas[*i].me();
        assert!(
            reference.is_removed(&id),
            "replica {i} should be removed; dropped: {:?}",
            reference.dropped()
        );
    }
    let current: Vec<usize> = (0..replicas.len())
        .filter(|i| reference.is_member(&replicas[*i].me()))
        .collect();
    assert_eq!(
        current.len(),
        replicas.len() - removed.len(),
        "everyone else, including the newcomer, is a member"
    );
    for i in [0, 1] {
        assert!(
            reference.is_moderator(&replicas[i].me()),
            "founding moderator {i} lost its rights"
        );
    }
    for spy in &world.spies {
        assert!(!reference.knows(spy), "a spy got past k-of-n");
    }
    if let Some(flooder) = world.flooder {
        for (i, r) in replicas.iter().enumerate() {
            assert!(
                r.state.log().ops().all(|op| op.author() != flooder),
                "replica {i} kept an op of a never-member key"
            );
        }
    }
    let honest_current: Vec<usize> = current
        .iter()
        .copied()
        .filter(|i| replicas[*i].honest)
        .collect();

    // 2. Honest replicas refuse only what adversaries made, but for refusals that hold only until
    //    something else arrives (an op by a member whose admission had not arrived): those items
    //    were taken in later.
    for (i, r) in replicas.iter().enumerate().filter(|(_, r)| r.honest) {
        let held = held_keys(r);
        let honest: Vec<&Refusal> = r
            .refused
            .iter()
            .filter(|(key, _)| !world.adversarial.contains(key))
            .filter(|(key, why)| !(why.may_pass_later() && held.contains(key)))
            .map(|(_, why)| why)
            .collect();
        assert!(
            honest.is_empty(),
            "replica {i} refused honest messages: {honest:?}"
        );
    }

    // 3. Every honest post was made by a then-member, and every current honest member accepted
    //    every one (re-wrapped copies counted once), and nothing else but adversaries' posts.
    let mut log = replicas[*founder].state.log().clone();
    for (id, post) in &world.posted {
        let at = log.roster_at(&post.heads).expect("heads held");
        assert!(at.is_member(&post.author), "post {id:?} by a non-member");
    }
    let all: BTreeSet<ContentId> = world.posted.keys().copied().collect();
    for i in &honest_current {
        let r = &replicas[*i];
        let accepted: BTreeSet<ContentId> = r.state.posts().keys().copied().collect();
        let missing: Vec<_> = all.difference(&accepted).collect();
        assert!(
            missing.is_empty(),
            "current member {i} lacks {} of {} posts: {missing:?}; held {}",
            missing.len(),
            all.len(),
            r.state.held_count()
        );
        let extra: Vec<_> = accepted
            .difference(&all)
            .filter(|id| !world.adversarial_posts.contains(id))
            .collect();
        assert!(
            extra.is_empty(),
            "member {i} accepted something never posted: {extra:?}"
        );
        if !world.config.adversaries {
            assert_eq!(r.state.held_count(), 0, "member {i} holds items back");
        }
    }

    // 4. Retractions by authors stand everywhere; a demoted moderator's do not.
    for i in &honest_current {
        let state = &replicas[*i].state;
        for target in &world.retracted {
            assert!(
                is_retracted(state, target),
                "member {i} shows retracted alert {target:?} again"
            );
        }
        for target in world.forged_retractions.difference(&world.retracted) {
            assert!(
                !is_retracted(state, target),
                "member {i} took a demoted moderator's retraction of {target:?}"
            );
        }
    }

    // 5. Quotas hold at every honest replica.
    let per_day = u32::from(reference.policy().posts_per_day);
    for (i, r) in replicas.iter().enumerate().filter(|(_, r)| r.honest) {
        let mut counts: HashMap<(MemberId, u64), u32> = HashMap::new();
        for post in r.state.posts().values() {
            if post.counts_against_quota() {
                *counts
                    .entry((post.author, envelope::day_of(post.timestamp)))
                    .or_default() += 1;
            }
        }
        assert!(
            counts.values().all(|c| *c <= per_day),
            "replica {i} holds posts over the quota"
        );
    }

    // 6. No honest member is cut off: each holds the key of the epoch the founder writes under,
    //    and the victim of a junk share noted its signer and got the key another way.
    let end = world.config.end;
    let write_epoch = replicas[*founder]
        .state
        .book()
        .write_epoch(&reference, replicas[*founder].clock(end))
        .expect("the founder can write");
    for i in &honest_current {
        assert!(
            replicas[*i].state.book().key(&write_epoch).is_some(),
            "member {i} cannot read the write epoch"
        );
    }
    for (victim, signer, epoch) in &world.junk {
        let r = replicas.iter().find(|r| r.me() == *victim).expect("victim");
        if !reference.is_member(victim) {
            continue;
        }
        assert!(
            r.unreadable.contains(&(*epoch, *signer)),
            "the junk share's signer was not noted"
        );
        assert!(
            r.state.book().key(epoch).is_some(),
            "the victim of a junk share never got the key"
        );
    }

    // 7. Removed members hold no key of an epoch rotated by someone who knew of the removal, and
    //    read no post under one.
    // Deliveries are kept encoded: each distinct one is decoded (and verified) once here.
    let kept: BTreeMap<DeliveryId, &lookout_protocol::replica::KeptDelivery> = replicas
        .iter()
        .flat_map(|r| r.state.deliveries().iter().map(|(k, v)| (*k, v)))
        .collect();
    let deliveries: BTreeMap<DeliveryId, KeyDelivery> = kept
        .into_iter()
        .map(|(id, d)| {
            (
                id,
                d.decode(log.collective()).expect("a held delivery decodes"),
            )
        })
        .collect();
    for i in removed.iter() {
        let r = &replicas[*i];
        let me = r.me();
        for info in r.state.book().epochs().filter(|e| e.have_key) {
            for d in deliveries.values().filter(|d| d.epoch() == info.id) {
                let at = log.roster_at(&d.body().heads).expect("heads held");
                if d.body().kind == DeliveryKind::Rotation {
                    assert!(
                        !at.is_removed(&me),
                        "removed replica {i} holds epoch {:?}, rotated at a state naming its removal",
                        info.id
                    );
                }
                if d.recipients().any(|m| m == me) {
                    assert!(
                        at.is_member(&me),
                        "replica {i} was sent epoch {:?} while not a member",
                        info.id
                    );
                }
            }
        }
        assert_eq!(
            r.bodies.keys().collect::<Vec<_>>(),
            r.state.posts().keys().collect::<Vec<_>>()
        );
        for (id, post) in &r.bodies {
            assert!(
                r.state.book().key(&post.epoch).is_some(),
                "removed replica {i} accepted a post under an epoch it lacks"
            );
            let at = log.roster_at(&post.heads).expect("heads held");
            assert!(
                !at.is_removed(&me),
                "removed replica {i} read post {id:?}, written by an author who knew of the removal",
            );
        }
    }
    for r in replicas.iter() {
        for post in r.bodies.values() {
            // Nobody reads a post under an epoch that was never delivered to them.
            let me = r.me();
            assert!(
                deliveries
                    .values()
                    .any(|d| d.epoch() == post.epoch && d.recipients().any(|m| m == me)),
                "a replica read a post under an epoch never sealed to it"
            );
        }
    }
    assert_eq!(
        check_rosters_agree_at_every_post(&mut log, world),
        world.posted.len()
    );
}

/// Every post's heads resolve identically on a fresh log (a sanity check of `roster_at`).
fn check_rosters_agree_at_every_post(log: &mut MembershipLog, world: &World) -> usize {
    let mut fresh = MembershipLog::new(log.genesis().clone());
    fresh.extend(log.ops().cloned());
    let mut checked = 0;
    for post in world.posted.values() {
        let a: std::sync::Arc<Roster> = log.roster_at(&post.heads).expect("held");
        let b: std::sync::Arc<Roster> = fresh.roster_at(&post.heads).expect("held");
        assert_eq!(a, b);
        checked += 1;
    }
    checked
}

/// The founder's whole history replayed into a fresh state as one sync would bring it, every
/// post in a single batch with one of them also present with its signature broken: exactly that
/// envelope is refused, nothing else in the batch is, and the genuine copy is taken in. (During the run, replicas fetching from the
/// forger meet such batches too: `bad_signature_batches` counts those with accepted posts
/// beside the refused one.)
fn one_bad_signature_in_a_batch(outcome: &Outcome) {
    let r = &outcome.replicas[outcome.founder];
    let now = r.clock(outcome.world.config.end);
    let fresh_state = || {
        let mut fresh = State::new(r.state.log().genesis().clone());
        for op in r.state.log().ops() {
            let _ = fresh.ingest(SetKind::Ops, op.encoded(), &r.identity, now);
        }
        for delivery in r.state.deliveries().values() {
            let _ = fresh.ingest(SetKind::Deliveries, delivery.encoded(), &r.identity, now);
        }
        fresh
    };
    let mut fresh = fresh_state();
    // The same batch without the broken envelope, into another fresh state: what every other
    // envelope's outcome must be.
    let mut control = fresh_state();
    let (victim, body) = r
        .bodies
        .iter()
        .find(|(_, b)| {
            matches!(b.content, Content::Alert(_)) && fresh.book().key(&b.epoch).is_some()
        })
        .expect("an alert under a key the fresh state holds");
    let key = r.state.book().key(&body.epoch).expect("key held");
    let broken = break_signature(
        &r.envelopes[victim],
        key,
        &mut ChaCha20Rng::seed_from_u64(7),
    );
    let mut batch: Vec<&[u8]> = r.envelopes.values().map(Vec::as_slice).collect();
    // Before its genuine copy (after it, it would be a duplicate of a post held, never opened).
    let at = batch
        .iter()
        .position(|b| envelope::id_of(b).ok() == Some(*victim))
        .expect("the victim's envelope");
    batch.insert(at, &broken.bytes);
    let (mut outcomes, _) = fresh.ingest_envelopes(&batch, &r.identity, now);
    assert_eq!(
        outcomes.remove(at),
        Ingested::Rejected(Refusal::BadSignature(SetKind::Envelopes))
    );
    batch.remove(at);
    let (expected, _) = control.ingest_envelopes(&batch, &r.identity, now);
    // Every other envelope, the genuine copy of the victim included, fares exactly as it does
    // in the batch without the broken one.
    assert_eq!(outcomes, expected);
    assert!(!outcomes[at].is_rejected());
    assert_eq!(
        fresh.posts().contains_key(victim),
        control.posts().contains_key(victim)
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| **o == Ingested::Accepted)
            .count()
            > 1
    );
}

fn simulate(mut config: Config) {
    if std::env::var_os("SIM_WORKAROUNDS").is_some() {
        config.workarounds = true;
    }
    let (seed, k, adversaries) = (config.seed, config.k, config.adversaries);
    let started = std::time::Instant::now();
    let partition = config.partition;
    let mut outcome = run(config);
    let summary = format!(
        "seed {seed} k={k}: {} replicas, {} ops, {} posts, {} rotations, {} shares, \
         {} messages sent ({} lost), {} retractions, attacks {:?}, {} batches with a bad \
         signature beside accepted posts, {:.1?}",
        outcome.replicas.len(),
        outcome.replicas[0].state.log().len(),
        outcome.world.posted.len(),
        outcome.world.rotations.len(),
        outcome.world.shares,
        outcome.network.sent,
        outcome.network.lost,
        outcome.world.retracted.len(),
        outcome.world.attacks,
        outcome.world.bad_signature_batches,
        started.elapsed()
    );
    println!("{summary}");
    check(&mut outcome);
    assert!(
        outcome.world.posted.len() >= 20,
        "too few posts to mean much"
    );
    assert!(
        outcome.world.rotations.len() >= 3,
        "removals should have forced rotations"
    );
    if adversaries {
        // Every attack was made, and the junk share's victim was still a member to be cut off.
        assert_eq!(
            outcome.world.attacks.len(),
            7,
            "{:?}; pending {:?}; dropped {:?}",
            outcome.world.attacks,
            outcome.replicas[0].roster().pending(),
            outcome.replicas[0].roster().dropped()
        );
        let roster = outcome.replicas[0].roster();
        assert!(outcome
            .world
            .junk
            .iter()
            .any(|(v, _, _)| roster.is_member(v)));
        assert!(!outcome.world.forged_retractions.is_empty());
        one_bad_signature_in_a_batch(&outcome);
    }
    // The concurrent removals made both halves rotate while they could not hear each other.
    let index_of = |m: &MemberId| outcome.replicas.iter().position(|r| r.me() == *m);
    let rotating_sides: BTreeSet<usize> = outcome
        .world
        .rotations
        .iter()
        .filter(|(tick, _, _)| (partition.0..partition.1).contains(tick))
        .filter_map(|(_, member, _)| index_of(member).map(side))
        .collect();
    assert_eq!(
        rotating_sides.len(),
        2,
        "concurrent rotations on both sides"
    );
}

/// A scale run (issue 12): the invariants of [`check`] (every current member holds every post,
/// rosters agree, removed members read nothing new), and a report of how long posts took to
/// arrive, in ticks (a gossip hop takes 1 or 2), at members online throughout and at members
/// catching up after being offline.
fn simulate_scale(config: Config) {
    let (seed, n, quiet_from) = (config.seed, config.n, config.quiet_from);
    let started = std::time::Instant::now();
    let mut outcome = run(config);
    let ran = started.elapsed();
    check(&mut outcome);
    let checked = started.elapsed();
    let Outcome {
        replicas,
        world,
        founder,
        network,
        down,
        links,
        last_tick,
        ..
    } = &outcome;
    let mut log = replicas[*founder].state.log().clone();
    let roster = replicas[*founder].roster();
    let (mut live, mut caught_up) = (Vec::new(), Vec::new());
    let mut pairs = 0;
    for (id, post) in &world.posted {
        // Members when it was posted (later joiners receive it as part of joining).
        let at = log.roster_at(&post.heads).expect("heads held").clone();
        for (i, r) in replicas.iter().enumerate() {
            let me = r.me();
            if me == post.author || !at.is_member(&me) || !roster.is_member(&me) {
                continue;
            }
            pairs += 1;
            let arrived = r.arrived[id];
            let latency = arrived - post.tick;
            let away = down[i].is_some_and(|(from, to)| post.tick < to && arrived >= from);
            if away {
                caught_up.push(latency);
            } else {
                live.push(latency);
            }
        }
    }
    live.sort_unstable();
    caught_up.sort_unstable();
    let pct = |v: &[u64], p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v.get(rank.clamp(1, v.len().max(1)) - 1)
            .copied()
            .unwrap_or(0)
    };
    let degrees: Vec<usize> = links.iter().map(Vec::len).collect();
    let peak_rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "scale seed {seed}: {n} replicas (links per replica {}..{}, mean {:.1}), converged at tick \
         {last_tick} (quiet from {quiet_from}), {} ops, {} posts, \
         {} rotations, {} shares, {} offline once; {} messages sent ({} lost); {:.2} duplicate \
         envelopes per post and member; every post reached every member ({pairs} pairs). \
         Latency in ticks, members online: p50 {} p90 {} p99 {} max {} ({} pairs); catching up: \
         p50 {} p99 {} max {} ({} pairs). Wall time {:.1?} run + {:.1?} checks; peak RSS {peak_rss} kB; {}",
        degrees.iter().min().unwrap(),
        degrees.iter().max().unwrap(),
        degrees.iter().sum::<usize>() as f64 / n as f64,
        replicas[*founder].state.log().len(),
        world.posted.len(),
        world.rotations.len(),
        world.shares,
        down.iter().flatten().count(),
        network.sent,
        network.lost,
        network.duplicates as f64 / pairs.max(1) as f64,
        pct(&live, 50.0),
        pct(&live, 90.0),
        pct(&live, 99.0),
        live.last().copied().unwrap_or(0),
        live.len(),
        pct(&caught_up, 50.0),
        pct(&caught_up, 99.0),
        caught_up.last().copied().unwrap_or(0),
        caught_up.len(),
        ran,
        checked - ran,
        process_figures(n),
    );
    if let Some(shared) = &outcome.shared {
        eprintln!(
            "{}",
            shared_figures(shared, &outcome.replicas[outcome.founder], n)
        );
    }
    assert!(world.posted.len() >= 20, "too few posts to mean much");
    assert!(
        world.rotations.len() >= 3,
        "removals should have forced rotations"
    );
    assert_eq!(live.len() + caught_up.len(), pairs, "every pair measured");
}

/// The scale run in every `cargo test`: 50 replicas gossiping over 3 dialled links each, with
/// churn. The 1,000-replica run is `scale_1000` (docs/BENCHMARKS.md).
#[test]
fn scale_50_gossip_and_churn() {
    simulate_scale(Config::scale(1, 50));
}

/// Issue 12: `SIM_REPLICAS` (default 1,000) replicas, by hand, in release:
/// `cargo test --release -p lookout-protocol --test simulation -- --ignored --exact scale_1000 --nocapture`.
#[test]
#[ignore = "long: SIM_REPLICAS replicas (default 1,000) with gossip and churn"]
fn scale_1000() {
    let replicas = env_number("SIM_REPLICAS", 1000) as usize;
    for seed in 0..env_number("SIM_SEEDS", 1) {
        simulate_scale(Config::scale(12 + seed, replicas));
    }
}

fn explore(count: u64, config: impl Fn(u64) -> Config + std::panic::RefUnwindSafe) {
    let mut failures = Vec::new();
    for seed in 100..100 + count {
        if let Err(e) = std::panic::catch_unwind(|| simulate(config(seed))) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("seed {seed}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Many more seeds, for exploring: `SIM_SEEDS=200 cargo test --test simulation -- --ignored`.
#[test]
#[ignore = "long: explores SIM_SEEDS seeds (default 64)"]
fn many_seeds() {
    explore(env_number("SIM_SEEDS", 64), |seed| {
        Config::new(seed, 1 + (seed % 2) as u8)
    });
}

/// Larger adversarial runs, by hand:
/// `SIM_SEEDS=20 SIM_REPLICAS=100 cargo test --release --test simulation -- --ignored many_large`.
#[test]
#[ignore = "long: SIM_SEEDS adversarial runs of SIM_REPLICAS replicas (default 8 of 100)"]
fn many_large() {
    let replicas = env_number("SIM_REPLICAS", 100) as usize;
    explore(env_number("SIM_SEEDS", 8), |seed| {
        Config::large(seed, replicas)
    });
}

macro_rules! seeds {
    ($($name:ident: $config:expr;)+) => {
        $(
            #[test]
            fn $name() {
                simulate($config);
            }
        )+
    };
}

seeds! {
    k1_seed_1: Config::new(1, 1);
    k1_seed_2: Config::new(2, 1);
    k1_seed_3: Config::new(3, 1);
    k1_seed_4: Config::new(4, 1);
    k2_seed_5: Config::new(5, 2);
    k2_seed_6: Config::new(6, 2);
    k2_seed_7: Config::new(7, 2);
    k2_seed_8: Config::new(8, 2);
    adversaries_50_seed_1: Config::large(1, 50);
    adversaries_50_seed_2: Config::large(2, 50);
}
