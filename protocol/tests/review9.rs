//! Review 9 (adversarial review of branches `quota2` and `catchup`; until they had commits, of
//! main's H1 code: ops read through ops refused over the daily quota, "stubs"). Each test
//! asserts the SAFE behaviour, so it fails while the finding it is named after exists
//! (docs/design/REVIEW9.md). R9-4's, R9-7's and R9-8's tests live in quota_ops_props.rs and
//! quota_heads.rs; R9-1, not fixed, is `#[ignore]`d with the reason (op-quota-bottom-q.md §9).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;

use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis, MAX_OPS_PER_AUTHOR_PER_DAY};
use lookout_protocol::replica::{Effect, Ingested, Refusal, SetKind, State};
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod flood_world;
use flood_world::*;

/// R9-1. Stubs are bounded per op read through them (64), not per author-day: x fills one day
/// (256 ops), then for each op of hers within another day's quota signs a fresh chain of 64
/// over-quota ops of the full day and names its top. Every replica verifies, keeps in memory,
/// stores (`Effect::PutStub`) and offers in sync all 64 for each of her ops: 64 times the quota,
/// for every day since the founding she backdates to. Here 8 of her ops make 512 stubs of one
/// author-day; the safe bound is at most the quota's worth (256) of stubs per author-day.
#[test]
#[ignore = "known residual (SECURITY.md H1, Review 9 R9-1): stubs are bounded per op read through them, not per author-day; the own-stub charge breaks (op-quota-bottom-q.md §9)"]
fn r9_stubs_of_one_author_day_are_bounded_by_the_quota_not_by_the_ops_read_through_them() {
    let w = World::new(91, "Review 9");
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
    let w = World::new(92, "Review 9");
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
    let w = World::new(93, "Review 9");
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

/// The one "wanted" signal (`MembershipLog::take_newly_wanted`, judged in
/// `State::judge_wanted`), without bytes at hand. x's op o of the day before names c2 of her
/// chain c1 <- c2 of her full day, and waits for it. Then c1 is refused over the quota (deferred
/// until the log changes) and 130 more refusals push its bytes out of those kept at hand
/// (refusals do not change the log's generation). c2 arrives and is kept as a stub, since o
/// waits for it: now o waits for c1, and no op joined, so the generation is unchanged.
/// Offered again, c1 must be verified and kept as a stub (its deferral lifted when o came to
/// want it), and o join; were it not lifted, c1 would be a duplicate and o wait for good.
#[test]
fn an_op_an_orphan_comes_to_want_is_judged_again_when_offered_though_its_bytes_are_gone() {
    let w = World::new(95, "Review 9");
    let mut r = w.replica();
    let fillers = w.x_chain(w.base(), MAX_OPS_PER_AUTHOR_PER_DAY, START + 1_000);
    accept_all(&w, &mut r, &fillers);
    let chain = w.x_chain(w.base(), 2, START + 2_000);
    let o = w.x_op(vec![chain[1].id()], PREV_DAY);
    assert_eq!(w.feed(&mut r, &o).outcome, Ingested::Held);
    refuse_all(&w, &mut r, &chain[..1]);
    let junk: Vec<Op> = (0..130u64)
        .map(|i| w.x_op(vec![w.base()], START + 3_000 + i))
        .collect();
    refuse_all(&w, &mut r, &junk);
    refuse_all(&w, &mut r, &chain[1..]);
    assert!(
        r.log().is_stub(&chain[1].id()),
        "c2, wanted by o, is not kept as a stub"
    );
    assert!(!r.log().contains(&o.id()) && r.log().wants(&chain[0].id()));
    refuse_all(&w, &mut r, &chain[..1]);
    assert!(
        r.log().is_stub(&chain[0].id()),
        "c1, wanted by o since c2 became a stub, is not verified when offered again"
    );
    assert!(
        r.log().contains(&o.id()),
        "o, read through c2 and c1, does not join"
    );
}

/// R9-1's candidate rule (op-quota-bottom-q.md §9), attacked: "stubs of an op's own author
/// that it newly makes a replica keep count against its author-day's quota". x holds 192 ops
/// of day d' everywhere. K also holds her chain of 64 ops of day D and her op c of d' on its
/// top (c costs K one slot: the chain is held there as ops). R holds 256 fillers of D, so it
/// refuses the chain and reads c through 64 stubs of x's. The founder writes h on K's heads
/// (c among them). h is honest and within quota: it must join at R. It does today (c joins at
/// R through the 64 stubs). Under the candidate rule c costs R 1 + 64 slots of (x, d'), and
/// 192 + 65 is over 256, so R refuses c; h then reads through c and the 64 stubs below it, 65 refused ops,
/// over `MAX_READ_THROUGH`, and waits at R: an honest op's fate follows the charge, which
/// depends on what R holds. This test is why the rule was not built (§9).
#[test]
fn an_honest_op_on_an_op_read_through_its_authors_stubs_joins_where_her_day_is_nearly_full() {
    let w = World::new(96, "Review 9");
    let fillers = w.x_chain(w.base(), MAX_OPS_PER_AUTHOR_PER_DAY, START + 1_000);
    let day_before: Vec<Op> = (0..192u64)
        .map(|i| w.x_op(vec![w.base()], PREV_DAY + i))
        .collect();
    let chain = w.x_chain(w.base(), 64, START + 2_000);
    let c = w.x_op(vec![chain[63].id()], PREV_DAY + 500);
    let mut k = w.replica();
    accept_all(&w, &mut k, &day_before);
    accept_all(&w, &mut k, &chain);
    accept_all(&w, &mut k, std::slice::from_ref(&c));
    let h = w.removal(k.log().writer_heads(&w.founder.member_id()));
    assert!(h.parents().contains(&c.id()));
    assert_eq!(w.feed(&mut k, &h).outcome, Ingested::Accepted);

    let mut r = w.replica();
    accept_all(&w, &mut r, &fillers);
    accept_all(&w, &mut r, &day_before);
    refuse_all(&w, &mut r, &chain);
    let at_c = w.feed(&mut r, &c).outcome;
    let at_h = w.feed(&mut r, &h).outcome;
    assert!(
        r.log().contains(&h.id()),
        "the founder's op on K's heads waits at R (c: {at_c:?}, h: {at_h:?})"
    );
    assert!(r.log().roster().is_removed(&w.x.member_id()));
}

/// R9-8's fix (`MembershipLog::may_be_admitted`), its honest side: a key delivery read through
/// a refused op is penalised only if no op the replica knows of ever proposed its author. x,
/// a co-founding moderator (k = 1), fills her day at R; her 257th op y admits s, and R refuses
/// it over the quota (before any signature check). s, a member at K, sends a rotation naming
/// y: at R it is read at y's parents, where s is no member, so it is refused, but without
/// penalty (its honest forwarder holds y). A stranger's delivery naming y is penalised.
#[test]
fn a_delivery_by_a_key_admitted_only_by_a_refused_op_is_refused_without_penalty() {
    use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
    let mut rng = ChaCha20Rng::seed_from_u64(97);
    let founder = Identity::generate_at(&mut rng, START);
    let x = Identity::generate_at(&mut rng, START);
    let s = Identity::generate_at(&mut rng, START);
    let stranger = Identity::generate_at(&mut rng, START);
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
    let mut fillers: Vec<Op> = Vec::new();
    for i in 0..MAX_OPS_PER_AUTHOR_PER_DAY as u64 {
        let parents = fillers.last().map(|o| vec![o.id()]).unwrap_or_default();
        let action = Action::RotateAgreementKey {
            identity: x.public(),
        };
        fillers.push(Op::create(&x, co, parents, START + 1_000 + i, action).unwrap());
    }
    let y = Op::create(
        &x,
        co,
        vec![fillers[MAX_OPS_PER_AUTHOR_PER_DAY - 1].id()],
        START + 2_000,
        Action::ProposeAdd {
            identity: s.public(),
            name: names::name("s"),
        },
    )
    .unwrap();
    let key = EpochKey::generate(&mut rng);
    let delivery = |author: &Identity, rng: &mut ChaCha20Rng, head: OpId| {
        KeyDelivery::create(
            author,
            co,
            &key,
            DeliveryKind::Rotation,
            vec![head],
            NOW - 60,
            &[founder.public(), x.public(), author.public(), me.public()],
            rng,
        )
        .unwrap()
    };
    let by_s = delivery(&s, &mut rng, y.id());
    let by_stranger = delivery(&stranger, &mut rng, y.id());
    let mut r = State::new(genesis);
    for op in &fillers {
        assert_eq!(
            r.ingest(SetKind::Ops, op.encoded(), &me, NOW).outcome,
            Ingested::Accepted
        );
    }
    // Before R has y: s's delivery naming x's op z on y (refused here too) is read at y, a
    // head R lacks, and is not penalised (it waits, or is refused for now as by a key R
    // cannot know yet).
    let z = Op::create(
        &x,
        co,
        vec![y.id()],
        START + 2_001,
        Action::RotateAgreementKey {
            identity: x.public(),
        },
    )
    .unwrap();
    assert_eq!(
        r.ingest(SetKind::Ops, z.encoded(), &me, NOW).outcome,
        Ingested::Ignored(Refusal::OpQuota)
    );
    let early = delivery(&s, &mut rng, z.id());
    let early = r
        .ingest(SetKind::Deliveries, early.encoded(), &me, NOW)
        .outcome;
    assert!(
        !early.is_rejected(),
        "s's delivery on z before y: {early:?}"
    );
    assert_eq!(
        r.ingest(SetKind::Ops, y.encoded(), &me, NOW).outcome,
        Ingested::Ignored(Refusal::OpQuota)
    );
    assert!(r.refused_over_quota(&y.id()) && !r.log().is_stub(&y.id()));
    let honest = r
        .ingest(SetKind::Deliveries, by_s.encoded(), &me, NOW)
        .outcome;
    assert!(
        matches!(honest, Ingested::Ignored(_)),
        "s's delivery, admitted by the refused y, is penalised or taken: {honest:?}"
    );
    let forged = r
        .ingest(SetKind::Deliveries, by_stranger.encoded(), &me, NOW)
        .outcome;
    assert!(
        forged.is_rejected(),
        "a stranger's delivery on y: {forged:?}"
    );
}
