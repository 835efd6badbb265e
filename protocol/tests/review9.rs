//! Review 9 (adversarial review of branches `quota2` and `catchup`; until they had commits, of
//! main's H1 code: ops read through ops refused over the daily quota, "stubs"). Each test
//! asserts the SAFE behaviour, so it fails while the finding it is named after exists
//! (docs/design/REVIEW9.md). R9-4's and R9-7's tests live in quota_ops_props.rs and
//! quota_heads.rs; the two findings not fixed (R9-1, R9-8) are `#[ignore]`d with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;

use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::Identity;
use lookout_protocol::identity::PublicIdentity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis, MAX_OPS_PER_AUTHOR_PER_DAY};
use lookout_protocol::replica::{Effect, Ingested, Refusal, SetKind, State};
use lookout_protocol::CollectiveId;
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const START: u64 = 1_790_000_000;
/// When the replicas take things in (the same UTC day as START).
const NOW: u64 = START + 3_000;
const DAY: u64 = 86_400;
/// A time on the UTC day before START's, yet within a day of the founding (so not refused as
/// dated before the genesis record).
const PREV_DAY: u64 = START - 80_000;

struct World {
    founder: Identity,
    x: Identity,
    h: Identity,
    genesis: SignedGenesis,
    /// The founder's admissions of x and h, in a chain.
    setup: Vec<Op>,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate_at(&mut rng, START);
        let x = Identity::generate_at(&mut rng, START);
        let h = Identity::generate_at(&mut rng, START);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "Review 9",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let mut setup: Vec<Op> = Vec::new();
        for (i, who) in [&x, &h].into_iter().enumerate() {
            let parents = setup.last().map(|op| vec![op.id()]).unwrap_or_default();
            let op = Op::create(
                &founder,
                genesis.id(),
                parents,
                START + 60 * (i as u64 + 1),
                Action::ProposeAdd {
                    identity: who.public(),
                    name: names::name(format!("member {i}")),
                },
            )
            .unwrap();
            setup.push(op);
        }
        Self {
            founder,
            x,
            h,
            genesis,
            setup,
        }
    }

    fn base(&self) -> OpId {
        self.setup.last().unwrap().id()
    }

    /// An op of x's (an agreement-key "rotation" to the key she has) naming `parents`.
    fn x_op(&self, parents: Vec<OpId>, at: u64) -> Op {
        Op::create(
            &self.x,
            self.genesis.id(),
            parents,
            at,
            Action::RotateAgreementKey {
                identity: self.x.public(),
            },
        )
        .unwrap()
    }

    /// A chain of `n` ops of x's, the first naming `from`, dated from `at` on.
    fn x_chain(&self, from: OpId, n: usize, at: u64) -> Vec<Op> {
        let mut out: Vec<Op> = Vec::with_capacity(n);
        for i in 0..n {
            let parent = out.last().map_or(from, Op::id);
            out.push(self.x_op(vec![parent], at + i as u64));
        }
        out
    }

    /// A replica holding the setup.
    fn replica(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(self.feed(&mut state, op).outcome, Ingested::Accepted);
        }
        state
    }

    fn feed(&self, state: &mut State, op: &Op) -> lookout_protocol::replica::Step {
        state.ingest(SetKind::Ops, op.encoded(), &self.h, NOW)
    }
}

fn accept_all(w: &World, state: &mut State, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(w.feed(state, op).outcome, Ingested::Accepted, "op {i}");
    }
}

fn refuse_all(w: &World, state: &mut State, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(
            w.feed(state, op).outcome,
            Ingested::Ignored(Refusal::OpQuota),
            "op {i}"
        );
    }
}

/// R9-1. Stubs are bounded per op read through them (64), not per author-day: x fills one day
/// (256 ops), then for each op of hers within another day's quota signs a fresh chain of 64
/// over-quota ops of the full day and names its top. Every replica verifies, keeps in memory,
/// stores (`Effect::PutStub`) and offers in sync all 64 for each of her ops: 64 times the quota,
/// for every day since the founding she backdates to. Here 8 of her ops make 512 stubs of one
/// author-day; the safe bound is at most the quota's worth (256) of stubs per author-day.
#[test]
#[ignore = "known residual (SECURITY.md H1, Review 9 R9-1): stubs are bounded per op read through them, not per author-day"]
fn r9_stubs_of_one_author_day_are_bounded_by_the_quota_not_by_the_ops_read_through_them() {
    let w = World::new(91);
    let mut r = w.replica();
    let fillers = w.x_chain(w.base(), MAX_OPS_PER_AUTHOR_PER_DAY, START + 1_000);
    accept_all(&w, &mut r, &fillers);
    let mut stored = 0usize;
    for j in 0..8u64 {
        let chain = w.x_chain(w.base(), 64, START + 2_000 + 100 * j);
        refuse_all(&w, &mut r, &chain);
        let carrier = w.x_op(vec![chain[63].id()], PREV_DAY + j);
        let step = w.feed(&mut r, &carrier);
        assert_eq!(step.outcome, Ingested::Accepted, "carrier {j}");
        stored += step
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::PutStub { .. }))
            .count();
    }
    let flooded_day = (START + 2_000) / DAY;
    let stubs = r
        .log()
        .offered_stubs()
        .filter(|op| op.author() == w.x.member_id() && op.body().timestamp / DAY == flooded_day)
        .count();
    assert!(
        stubs <= MAX_OPS_PER_AUTHOR_PER_DAY,
        "one author-day has {stubs} stubs kept, stored ({stored} PutStub) and offered, over the quota of {MAX_OPS_PER_AUTHOR_PER_DAY}"
    );
}

impl World {
    /// The founder's removal of x, naming `heads`.
    fn removal(&self, heads: Vec<OpId>) -> Op {
        Op::create(
            &self.founder,
            self.genesis.id(),
            heads,
            NOW - 20,
            Action::Remove {
                member: self.x.member_id(),
                reason: names::reason("flooding"),
            },
        )
        .unwrap()
    }

    /// An op of x's naming `parent`, dated on `at`'s day, whose id is below `below` (ground by
    /// its timestamp, as an attacker would).
    fn x_op_below(&self, parent: OpId, at: u64, below: &OpId) -> Op {
        (0..10_000u64)
            .map(|i| self.x_op(vec![parent], at + i))
            .find(|op| op.id() < *below)
            .unwrap()
    }
}

/// R9-2 (a test for `quota2`'s per-author-day stub bound; passes on main, where stubs are not
/// bounded, R9-1). Whatever bounds stubs of one author-day must not let the flooder use it up
/// before an honest op needs it: x first makes R keep 384 junk stubs of her full day D (each
/// ground below the id of her op y, and all of them there before y), then the founder, at K
/// where y was kept, removes x writing on K's heads (y among them). At R y is over the quota;
/// the removal must still join at R and x be removed there (otherwise H1's split is back, for
/// the cost of 6 ops of another day's quota).
#[test]
fn r9_a_flooders_junk_stubs_do_not_use_up_what_an_honest_op_needs() {
    let w = World::new(92);
    // y: x's op of day D with a large id (ground), kept at K, refused over the quota at R.
    let y = (0..10_000u64)
        .map(|i| w.x_op(vec![w.base()], START - 45_000 + i))
        .find(|op| op.id().0[0] == 0xff)
        .unwrap();
    let fillers = w.x_chain(w.base(), MAX_OPS_PER_AUTHOR_PER_DAY, START + 1_000);
    let mut k = w.replica();
    accept_all(&w, &mut k, std::slice::from_ref(&y));
    accept_all(&w, &mut k, &fillers[..MAX_OPS_PER_AUTHOR_PER_DAY - 1]);
    let mut r = w.replica();
    accept_all(&w, &mut r, &fillers);

    // Junk: 6 chains of 64 over-quota ops of day D, each op's id below y's, each carried by an
    // op of x's dated the day before (within that day's quota).
    for j in 0..6u64 {
        let mut chain: Vec<Op> = Vec::new();
        for i in 0..64u64 {
            let parent = chain.last().map_or(w.base(), Op::id);
            chain.push(w.x_op_below(parent, START - 30_000 + j * 2_000 + i * 20, &y.id()));
        }
        refuse_all(&w, &mut r, &chain);
        let carrier = w.x_op(vec![chain[63].id()], PREV_DAY + j);
        assert_eq!(
            w.feed(&mut r, &carrier).outcome,
            Ingested::Accepted,
            "carrier {j}"
        );
    }

    let removal = w.removal(k.log().writer_heads(&w.founder.member_id()));
    assert!(removal.parents().contains(&y.id()));
    assert_eq!(w.feed(&mut k, &removal).outcome, Ingested::Accepted);
    assert!(k.log().roster().is_removed(&w.x.member_id()));

    // R is handed what K holds that it lacks (the removal, then y), as a sync would.
    let first = w.feed(&mut r, &removal).outcome;
    let second = w.feed(&mut r, &y).outcome;
    assert!(
        r.log().contains(&removal.id()),
        "the removal of the flooder does not join at R ({first:?}, then y: {second:?}): x stays a member there"
    );
    assert!(r.log().roster().is_removed(&w.x.member_id()));
}

/// R9-2b (a test for `quota2`'s stub bound, as R9-2; passes on main). The same, with junk
/// stubs that no op is read through (kept only because x's own orphans wait for them): 64
/// orphans of hers (dated the day before) each naming 32 over-quota ops of her full day D, every
/// one ground below y's id and naming an op nobody has, so none of her orphans ever joins and
/// 2,048 stubs of day D are kept before y arrives. The founder's removal of x written on y must
/// still join at R.
#[test]
fn r9_a_flooders_waited_junk_stubs_do_not_use_up_what_an_honest_op_needs() {
    let w = World::new(93);
    let y = (0..10_000u64)
        .map(|i| w.x_op(vec![w.base()], START - 45_000 + i))
        .find(|op| op.id().0[0] == 0xff)
        .unwrap();
    let fillers = w.x_chain(w.base(), MAX_OPS_PER_AUTHOR_PER_DAY, START + 1_000);
    let mut k = w.replica();
    accept_all(&w, &mut k, std::slice::from_ref(&y));
    accept_all(&w, &mut k, &fillers[..MAX_OPS_PER_AUTHOR_PER_DAY - 1]);
    let mut r = w.replica();
    accept_all(&w, &mut r, &fillers);

    let mut junk_at = START - 50_000;
    for o in 0..64u64 {
        let nowhere = OpId([0x01; 32]);
        let junk: Vec<Op> = (0..32)
            .map(|_| {
                junk_at += 20;
                w.x_op_below(nowhere, junk_at, &y.id())
            })
            .collect();
        let orphan = w.x_op(junk.iter().map(Op::id).collect(), PREV_DAY + o);
        assert_eq!(
            w.feed(&mut r, &orphan).outcome,
            Ingested::Held,
            "orphan {o}"
        );
        for j in &junk {
            let _ = w.feed(&mut r, j);
            assert!(r.log().is_stub(&j.id()) || r.log().refused_over_quota(&j.id()));
        }
    }

    let removal = w.removal(k.log().writer_heads(&w.founder.member_id()));
    assert!(removal.parents().contains(&y.id()));
    assert_eq!(w.feed(&mut k, &removal).outcome, Ingested::Accepted);
    let first = w.feed(&mut r, &removal).outcome;
    let second = w.feed(&mut r, &y).outcome;
    assert!(
        r.log().contains(&removal.id()),
        "the removal of the flooder does not join at R ({first:?}, then y: {second:?}): x stays a member there"
    );
    assert!(r.log().roster().is_removed(&w.x.member_id()));
}

/// R9-3 (a test for `quota2`'s stubs as nodes of the resolver's graph; passes on main). A stub
/// never takes effect and lets no key author: x, a co-founding moderator (k = 1), fills her day
/// at R, and her 257th op of it admits s. R refuses it over the quota and keeps it as a stub
/// when the founder's op written on it (at K, which took it) arrives. At R s must not be a
/// member, and s's own op must not be taken: otherwise the quota bounds nothing a moderator
/// signs (every over-quota admission takes effect once any honest op is written on it).
#[test]
fn r9_a_stub_takes_no_effect_and_lets_no_key_author() {
    let mut rng = ChaCha20Rng::seed_from_u64(94);
    let founder = Identity::generate_at(&mut rng, START);
    let x = Identity::generate_at(&mut rng, START);
    let s = Identity::generate_at(&mut rng, START);
    let me = Identity::generate_at(&mut rng, START);
    let genesis = SignedGenesis::create_with_moderators(
        &founder,
        &names::secret(),
        "Review 9",
        "f",
        vec![lookout_protocol::membership::NewModerator {
            identity: x.public(),
            name: "x".into(),
        }],
        Policy::default(),
        START,
        &mut rng,
    )
    .unwrap();
    let co = genesis.id();
    let feed =
        |state: &mut State, op: &Op| state.ingest(SetKind::Ops, op.encoded(), &me, NOW).outcome;
    let mut fillers: Vec<Op> = Vec::new();
    for i in 0..MAX_OPS_PER_AUTHOR_PER_DAY as u64 {
        let parents = fillers.last().map(|o| vec![o.id()]).unwrap_or_default();
        let op = Op::create(
            &x,
            co,
            parents,
            START + 1_000 + i,
            Action::RotateAgreementKey {
                identity: x.public(),
            },
        )
        .unwrap();
        fillers.push(op);
    }
    let y = Op::create(
        &x,
        co,
        vec![fillers[MAX_OPS_PER_AUTHOR_PER_DAY - 2].id()],
        START + 2_000,
        Action::ProposeAdd {
            identity: s.public(),
            name: names::name("s"),
        },
    )
    .unwrap();
    let mut k = State::new(genesis.clone());
    for op in fillers[..MAX_OPS_PER_AUTHOR_PER_DAY - 1]
        .iter()
        .chain(std::iter::once(&y))
    {
        assert_eq!(feed(&mut k, op), Ingested::Accepted);
    }
    assert!(k.log().roster().is_member(&s.member_id()));
    let h = Op::create(
        &founder,
        co,
        k.log().writer_heads(&founder.member_id()),
        NOW - 10,
        Action::RotateAgreementKey {
            identity: founder.public(),
        },
    )
    .unwrap();
    assert!(h.parents().contains(&y.id()));
    assert_eq!(feed(&mut k, &h), Ingested::Accepted);
    let by_s = Op::create(
        &s,
        co,
        vec![h.id()],
        NOW - 5,
        Action::RotateAgreementKey {
            identity: s.public(),
        },
    )
    .unwrap();
    assert_eq!(feed(&mut k, &by_s), Ingested::Accepted);

    let mut r = State::new(genesis.clone());
    for op in &fillers {
        assert_eq!(feed(&mut r, op), Ingested::Accepted);
    }
    assert_eq!(feed(&mut r, &y), Ingested::Ignored(Refusal::OpQuota));
    assert_eq!(feed(&mut r, &h), Ingested::Accepted);
    assert!(r.log().contains(&h.id()) && !r.log().contains(&y.id()));
    assert!(
        !r.log().roster().is_member(&s.member_id()),
        "x's admission of s, over her quota at R, took effect there"
    );
    let outcome = feed(&mut r, &by_s);
    assert!(
        !r.log().contains(&by_s.id()) && !r.log().may_author(&s.member_id()),
        "s, admitted only by an op over the quota at R, authors there ({outcome:?})"
    );
}

// ---- R9-7: the alert side (set-up copied from quota_heads.rs) ----

/// How many ops x signs for the day: more than the quota.
const HEADS_RUN: usize = 300;

/// A collective of a founder (the only moderator, k = 1) and members admitted one after
/// another: `a` (an honest member on side A), `x` (who splits), `b` (replica B's member) and
/// `e` (removed by the founder before x's run). The founder rotates the group key to all but
/// `e`, and x signs a chain of `RUN` agreement-key rotations dated the same day.
#[allow(dead_code)] // copied whole from quota_heads.rs
struct HeadsWorld {
    rng: ChaCha20Rng,
    founder: Identity,
    a: Identity,
    x: Identity,
    b: Identity,
    e: Identity,
    genesis: SignedGenesis,
    /// The founder's ops, in order: admissions of a, x, b, e, then the removal of e.
    setup: Vec<Op>,
    rotation: KeyDelivery,
    key: EpochKey,
    /// x's chain: each names the one before (the first names the removal of e).
    run: Vec<Op>,
}

impl HeadsWorld {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate_at(&mut rng, START);
        let a = Identity::generate_at(&mut rng, START);
        let mut x = Identity::generate_at(&mut rng, START);
        let b = Identity::generate_at(&mut rng, START);
        let e = Identity::generate_at(&mut rng, START);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "Quota",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let mut setup: Vec<Op> = Vec::new();
        let mut actions: Vec<Action> = [&a, &x, &b, &e]
            .iter()
            .enumerate()
            .map(|(i, who)| Action::ProposeAdd {
                identity: who.public(),
                name: names::name(format!("member {i}")),
            })
            .collect();
        actions.push(Action::Remove {
            member: e.member_id(),
            reason: names::reason("removed"),
        });
        for (i, action) in actions.into_iter().enumerate() {
            let parents = setup.last().map(|op| vec![op.id()]).unwrap_or_default();
            let op = Op::create(
                &founder,
                genesis.id(),
                parents,
                START + 60 * (i as u64 + 1),
                action,
            )
            .unwrap();
            setup.push(op);
        }
        let key = EpochKey::generate(&mut rng);
        let rotation = KeyDelivery::create(
            &founder,
            genesis.id(),
            &key,
            DeliveryKind::Rotation,
            vec![setup[4].id()],
            START + 400,
            &[founder.public(), a.public(), x.public(), b.public()],
            &mut rng,
        )
        .unwrap();
        let mut run: Vec<Op> = Vec::with_capacity(HEADS_RUN);
        for i in 0..HEADS_RUN as u64 {
            let at = START + 500 + i;
            let identity = x.rotate_agreement(at, &mut rng);
            let parent = run.last().map_or(setup[4].id(), Op::id);
            run.push(
                Op::create(
                    &x,
                    genesis.id(),
                    vec![parent],
                    at,
                    Action::RotateAgreementKey { identity },
                )
                .unwrap(),
            );
        }
        Self {
            rng,
            founder,
            a,
            x,
            b,
            e,
            genesis,
            setup,
            rotation,
            key,
            run,
        }
    }

    fn collective(&self) -> CollectiveId {
        self.genesis.id()
    }

    /// Replica A (its member `a`): the setup, the rotation, then x's run in order, so it keeps
    /// the first 256 (the quota) and refuses the rest.
    fn side_a(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(
                ingest_kind(&mut state, SetKind::Ops, op.encoded(), &self.a),
                Ingested::Accepted
            );
        }
        let rotation = ingest_kind(
            &mut state,
            SetKind::Deliveries,
            self.rotation.encoded(),
            &self.a,
        );
        assert_eq!(rotation, Ingested::Accepted);
        for (i, op) in self.run.iter().enumerate() {
            let outcome = ingest_kind(&mut state, SetKind::Ops, op.encoded(), &self.a);
            if i < MAX_OPS_PER_AUTHOR_PER_DAY {
                assert_eq!(outcome, Ingested::Accepted, "op {i}");
            } else {
                assert_eq!(outcome, Ingested::Ignored(Refusal::OpQuota), "op {i}");
            }
        }
        assert_eq!(state.log().roster().heads(), &[self.run[255].id()]);
        state
    }

    /// Replica B (its member `b`): the setup and rotation, then x hands it her run in another
    /// order: ops 0 to 254, then 256 (waiting for its parent, and counted), so 255, which A
    /// keeps, is over the quota here.
    fn side_b(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(
                ingest_kind(&mut state, SetKind::Ops, op.encoded(), &self.b),
                Ingested::Accepted
            );
        }
        let rotation = ingest_kind(
            &mut state,
            SetKind::Deliveries,
            self.rotation.encoded(),
            &self.b,
        );
        assert_eq!(rotation, Ingested::Accepted);
        for op in &self.run[..255] {
            let outcome = ingest_kind(&mut state, SetKind::Ops, op.encoded(), &self.b);
            assert_eq!(outcome, Ingested::Accepted);
        }
        let outcome = ingest_kind(&mut state, SetKind::Ops, self.run[256].encoded(), &self.b);
        assert_eq!(outcome, Ingested::Held);
        state
    }

    /// A new group key rotated by the founder to every member of `state`'s roster, naming its
    /// current heads.
    #[allow(dead_code)]
    fn rotation_on(&mut self, state: &State) -> (EpochKey, KeyDelivery) {
        let key = EpochKey::generate(&mut self.rng);
        let to: Vec<PublicIdentity> = state
            .log()
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let delivery = KeyDelivery::create(
            &self.founder,
            self.collective(),
            &key,
            DeliveryKind::Rotation,
            state.log().roster().heads().to_vec(),
            NOW - 60,
            &to,
            &mut self.rng,
        )
        .unwrap();
        delivery.check_authority(state.log().roster()).unwrap();
        (key, delivery)
    }
}

fn ingest_kind(state: &mut State, kind: SetKind, bytes: &[u8], me: &Identity) -> Ingested {
    state.ingest(kind, bytes, me, NOW).outcome
}

/// An alert by `author` naming `heads`, sealed under `key`.
fn alert(
    key: &EpochKey,
    collective: CollectiveId,
    author: &Identity,
    heads: Vec<OpId>,
    text: &str,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let at = NOW - 30;
    envelope::seal(
        author,
        key,
        InnerBody {
            collective,
            epoch: key.id(),
            author: author.member_id(),
            seq: 1,
            heads,
            timestamp: at,
            expires: at + 86_400,
            content: Content::Alert(Alert {
                category: Category::Robbery,
                severity: Severity::High,
                description: text.into(),
                identifiers: Identifiers {
                    phones: vec!["+447700900123".into()],
                    ..Identifiers::default()
                },
                area: "harbour".into(),
                incident_time: None,
                language: "en".into(),
                on_behalf: false,
            }),
        },
        rng,
    )
    .unwrap()
    .bytes
}

/// Everything A holds, as a sync would hand it to B: ops, deliveries, posts.
fn hand_over(from: &mut State, to: &mut State, me: &Identity, posts: &[Vec<u8>]) -> Vec<Ingested> {
    let ops: Vec<Vec<u8>> = from
        .log()
        .ops()
        .chain(from.log().offered_stubs())
        .map(|op| op.encoded().to_vec())
        .collect();
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let _ = to.ingest_ops(&refs, me, NOW);
    let deliveries: Vec<Vec<u8>> = from
        .deliveries()
        .values()
        .map(|d| d.encoded().to_vec())
        .collect();
    for d in &deliveries {
        let _ = to.ingest(SetKind::Deliveries, d, me, NOW);
    }
    posts
        .iter()
        .map(|p| to.ingest(SetKind::Envelopes, p, me, NOW).outcome)
        .collect()
}

/// R9-8. A key delivery signed by a key that never was a member, naming a head refused over the
/// quota, is refused without penalty (`without_penalty_if(read)`), after a full resolution of
/// the roster at the heads read: a stranger may send such deliveries for ever, each costing a
/// signature check and a resolution, and is never dropped. The same delivery naming the held
/// parent directly is rejected (penalised). Safe: a delivery whose author the log cannot know
/// as a possible author is rejected whatever heads it names.
#[test]
#[ignore = "known residual (Review 9 R9-8): a stranger's delivery naming a refused head is refused without penalty"]
fn r9_a_strangers_delivery_on_a_refused_head_is_penalised() {
    let mut w = HeadsWorld::new(99);
    let mut b = w.side_b();
    let mut a = w.side_a();
    let refused = w.run[255].id();
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&refused));
    let stranger = Identity::generate_at(&mut w.rng, START);
    assert!(!b.log().may_author(&stranger.member_id()));
    let key = EpochKey::generate(&mut w.rng);
    let forged = |heads: Vec<OpId>, rng: &mut ChaCha20Rng| {
        KeyDelivery::create(
            &stranger,
            w.genesis.id(),
            &key,
            DeliveryKind::Rotation,
            heads,
            NOW - 60,
            &[stranger.public(), w.b.public()],
            rng,
        )
        .unwrap()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(990);
    let direct = forged(vec![w.run[254].id()], &mut rng);
    let control = ingest_kind(&mut b, SetKind::Deliveries, direct.encoded(), &w.b);
    assert!(control.is_rejected(), "control: {control:?}");
    let via_refused = forged(vec![refused], &mut rng);
    let outcome = ingest_kind(&mut b, SetKind::Deliveries, via_refused.encoded(), &w.b);
    assert!(
        outcome.is_rejected(),
        "a stranger's delivery naming a refused head is not penalised: {outcome:?}"
    );
}

/// 512 over-quota ops of x's with 32 made-up parents each (tagged `tag`): enough to push every
/// earlier entry out of the refused set (16,384 parents at most).
fn flush_refused(w: &HeadsWorld, b: &mut State, tag: u8) {
    let identity = w.x.public();
    for i in 0..512u64 {
        let parents: Vec<OpId> = (0..32u64)
            .map(|p| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i * 32 + p).to_le_bytes());
                id[30] = tag;
                id[31] = 0x97;
                OpId(id)
            })
            .collect();
        let op = Op::create(
            &w.x,
            w.collective(),
            parents,
            START + 1_000 + i,
            Action::RotateAgreementKey {
                identity: identity.clone(),
            },
        )
        .unwrap();
        assert_eq!(
            ingest_kind(b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Ignored(Refusal::OpQuota)
        );
    }
}

/// R9-7c. As R9-7b (no stub), with x flushing the refused set again in every sync round,
/// between the ops and the posts of the round (gossip reaches a node between the parts of a
/// sync). A fix that only puts a refused op offered again back into the refused set (R9-7b)
/// does not help then: the alert must not depend on a bounded FIFO that anyone claiming a full
/// author-day can flush. Safe: the alert crosses in one of the 3 syncs.
#[test]
fn r9_an_alert_on_a_refused_head_crosses_while_the_refused_set_is_flushed_every_round() {
    let mut w = HeadsWorld::new(96);
    let mut a = w.side_a();
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest_kind(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest_kind(&mut b, SetKind::Deliveries, w.rotation.encoded(), &w.b),
        Ingested::Accepted
    );
    for op in &w.run[..255] {
        assert_eq!(
            ingest_kind(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    let z = Op::create(
        &w.x,
        w.collective(),
        vec![w.run[254].id()],
        START + 2_000,
        Action::RotateAgreementKey {
            identity: w.x.public(),
        },
    )
    .unwrap();
    assert_eq!(
        ingest_kind(&mut b, SetKind::Ops, z.encoded(), &w.b),
        Ingested::Accepted
    );
    let refused = w.run[255].id();
    let heads = a.log().roster().heads().to_vec();
    assert_eq!(heads, vec![refused]);
    let (key, co) = (w.key.clone(), w.collective());
    let post = alert(
        &key,
        co,
        &w.a,
        heads,
        "written on the refused head",
        &mut w.rng,
    );
    assert_eq!(
        ingest_kind(&mut a, SetKind::Envelopes, &post, &w.a),
        Ingested::Accepted
    );
    let id = envelope::id_of(&post).unwrap();
    for round in 0..3u8 {
        let _ = hand_over(&mut a, &mut b, &w.b, &[]);
        flush_refused(&w, &mut b, round);
        let _ = ingest_kind(&mut b, SetKind::Envelopes, &post, &w.b);
        if b.posts().contains_key(&id) {
            break;
        }
    }
    assert!(
        b.posts().contains_key(&id),
        "after 3 syncs, each with the refused set flushed between its ops and its posts, the alert still waits at B"
    );
}
