//! Review 9 (adversarial review of branches `quota2` and `catchup`; until they had commits, of
//! main's H1 code: ops read through ops refused over the daily quota, "stubs"). Each test
//! asserts the SAFE behaviour, so it fails while the finding it is named after
//! (/work/wt/REVIEW9.md) exists.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;

use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis, MAX_OPS_PER_AUTHOR_PER_DAY};
use lookout_protocol::replica::{Effect, Ingested, Refusal, SetKind, State};
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
