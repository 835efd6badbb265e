//! The world of the flood reviews (Review 9 and Review 10): a founder, a flooder x and an honest
//! member h, admitted in that order, with helpers to sign x's ops and chains and feed a replica.
//! Each review names its genesis (`title`), so its ids, and what its tests grind, stay its own.
#![allow(dead_code)]

use crate::names;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis};
use lookout_protocol::replica::{Ingested, Refusal, SetKind, State};
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const START: u64 = 1_790_000_000;
/// When the replicas take things in (the same UTC day as START).
pub const NOW: u64 = START + 3_000;
pub const DAY: u64 = 86_400;
/// A time on the UTC day before START's (which began 51,200 s before START), yet within a day
/// of the founding (so not refused as dated before the genesis record).
pub const PREV_DAY: u64 = START - 80_000;

pub struct World {
    pub founder: Identity,
    pub x: Identity,
    pub h: Identity,
    pub genesis: SignedGenesis,
    /// The founder's admissions of x and h, in a chain.
    pub setup: Vec<Op>,
}

impl World {
    pub fn new(seed: u64, title: &str) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate_at(&mut rng, START);
        let x = Identity::generate_at(&mut rng, START);
        let h = Identity::generate_at(&mut rng, START);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            title,
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

    pub fn base(&self) -> OpId {
        self.setup.last().unwrap().id()
    }

    /// An op of x's (an agreement-key "rotation" to the key she has) naming `parents`.
    pub fn x_op(&self, parents: Vec<OpId>, at: u64) -> Op {
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

    /// A chain of `n` ops of x's, the first naming `from`, dated from `at` on (one second
    /// apart).
    pub fn x_chain(&self, from: OpId, n: usize, at: u64) -> Vec<Op> {
        let mut out: Vec<Op> = Vec::with_capacity(n);
        for i in 0..n {
            let parent = out.last().map_or(from, Op::id);
            out.push(self.x_op(vec![parent], at + i as u64));
        }
        out
    }

    /// The founder's removal of x, naming `heads`.
    pub fn removal(&self, heads: Vec<OpId>) -> Op {
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

    /// A replica holding the setup.
    pub fn replica(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(self.feed(&mut state, op).outcome, Ingested::Accepted);
        }
        state
    }

    pub fn feed(&self, state: &mut State, op: &Op) -> lookout_protocol::replica::Step {
        state.ingest(SetKind::Ops, op.encoded(), &self.h, NOW)
    }

    /// How many stubs of x's `state` keeps for good (read through, stored and offered).
    pub fn x_stubs(&self, state: &State) -> usize {
        state
            .log()
            .offered_stubs()
            .filter(|op| op.author() == self.x.member_id())
            .count()
    }
}

pub fn accept_all(w: &World, state: &mut State, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(w.feed(state, op).outcome, Ingested::Accepted, "op {i}");
    }
}

pub fn refuse_all(w: &World, state: &mut State, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(
            w.feed(state, op).outcome,
            Ingested::Ignored(Refusal::OpQuota),
            "op {i}"
        );
    }
}
