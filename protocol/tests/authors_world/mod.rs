//! The world of the tests of who may author (`may_author.rs`, Reviews 12 and 13): a collective
//! founded by some moderators, and helpers to sign the ops they and further keys make.
#![allow(dead_code)]

use crate::names;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{MemberId, OpId};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};

pub const NOW: u64 = 1_790_000_000;

/// A collective needing `k` approvals, founded by `founders` moderators (pool[0..founders]), and
/// `others` further keys.
pub fn collective(
    seed: u64,
    k: u8,
    founders: usize,
    others: usize,
) -> (SignedGenesis, Vec<Identity>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let pool: Vec<Identity> = (0..founders + others)
        .map(|_| Identity::generate(&mut rng))
        .collect();
    let co = pool[1..founders]
        .iter()
        .enumerate()
        .map(|(i, m)| NewModerator {
            identity: m.public(),
            name: format!("co{i}"),
        })
        .collect();
    let policy = Policy {
        approvals_required: k,
        ..Policy::default()
    };
    let genesis = SignedGenesis::create_with_moderators(
        &pool[0],
        &names::secret(),
        "authors",
        "founder",
        co,
        policy,
        NOW,
        &mut rng,
    )
    .unwrap();
    (genesis, pool)
}

pub fn op(genesis: &SignedGenesis, author: &Identity, parents: &[OpId], action: Action) -> Op {
    let mut parents = parents.to_vec();
    parents.sort();
    parents.dedup();
    Op::create(author, genesis.id(), parents, NOW + 60, action).unwrap()
}

pub fn dated(
    genesis: &SignedGenesis,
    author: &Identity,
    parents: &[OpId],
    action: Action,
    at: u64,
) -> Op {
    Op::create(author, genesis.id(), parents.to_vec(), at, action).unwrap()
}

pub fn add(who: &Identity) -> Action {
    Action::ProposeAdd {
        identity: who.public(),
        name: names::name("m"),
    }
}

pub fn promote(who: &Identity) -> Action {
    Action::ProposePromote {
        member: who.member_id(),
    }
}

pub fn approve(proposal: &Op) -> Action {
    Action::Approve {
        proposal: proposal.id(),
    }
}

/// An op only its author can make, with no effect on anyone else: what a key that may author
/// sends to show it.
pub fn own(genesis: &SignedGenesis, who: &Identity, parents: &[OpId]) -> Op {
    op(
        genesis,
        who,
        parents,
        Action::RotateAgreementKey {
            identity: who.public(),
        },
    )
}

pub fn revoke(genesis: &SignedGenesis, by: &Identity, who: &Identity, parents: &[OpId]) -> Op {
    op(
        genesis,
        by,
        parents,
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(who, NOW),
        },
    )
}

/// `n` rotations by `who` dated `at`, each naming the last (the first naming `first`): with
/// n = 256 and no `first`, her quota for that day filled.
pub fn rotations(
    genesis: &SignedGenesis,
    who: &Identity,
    first: &[OpId],
    n: usize,
    at: u64,
) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::new();
    let mut last: Vec<OpId> = first.to_vec();
    for _ in 0..n {
        let o = dated(
            genesis,
            who,
            &last,
            Action::RotateAgreementKey {
                identity: who.public(),
            },
            at,
        );
        last = vec![o.id()];
        out.push(o);
    }
    out
}

/// Offer `stub` as a node does when an orphan waits for it and its author is over the quota
/// here: refused on insert, remembered as refused, verified and kept as a stub.
pub fn as_stub(log: &mut MembershipLog, stub: &Op) {
    assert!(matches!(
        log.insert(stub.clone()),
        InsertOutcome::Refused(OpRefusal::OverQuota)
    ));
    log.refuse_over_quota(stub.id(), stub.parents(), stub.body().action.admits());
    log.add_stub(stub.clone());
}

/// Review 13's R13-2 world, in a collective founded by `pool[0]` and `pool[1]` with k = 2:
/// `pool[2]` and `pool[3]` admitted (each proposed by the first founder and approved by the
/// second), then, `with_junk`, `pool[2]`'s proposal of `pool[4]` approved by `pool[3]` (two plain
/// members vouching for one key: ripe for good). The ops, in order.
pub fn admissions_and_a_junk_pair(
    genesis: &SignedGenesis,
    pool: &[Identity],
    with_junk: bool,
) -> Vec<Op> {
    let (f1, f2, m1, m2, junk) = (&pool[0], &pool[1], &pool[2], &pool[3], &pool[4]);
    let mut ops: Vec<Op> = Vec::new();
    let mut head: Vec<OpId> = Vec::new();
    for m in [m1, m2] {
        let p = op(genesis, f1, &head, add(m));
        let a = op(genesis, f2, &[p.id()], approve(&p));
        head = vec![a.id()];
        ops.extend([p, a]);
    }
    if with_junk {
        let j = op(genesis, m1, &head, add(junk));
        let ja = op(genesis, m2, &[j.id()], approve(&j));
        ops.extend([j, ja]);
    }
    ops
}

/// The ops `log` holds.
pub fn held(log: &MembershipLog) -> BTreeSet<OpId> {
    log.ops().map(Op::id).collect()
}

/// The keys of `pool` that may author at `log`.
pub fn authors_of(log: &MembershipLog, pool: &[Identity]) -> BTreeSet<MemberId> {
    pool.iter()
        .map(Identity::member_id)
        .filter(|m| log.may_author(m))
        .collect()
}

/// `id` and its ancestors among `ops`.
pub fn past_of(ops: &BTreeMap<OpId, Op>, id: OpId) -> Vec<&Op> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![id];
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        if let Some(o) = ops.get(&x) {
            stack.extend(o.parents().iter().copied());
        }
    }
    seen.iter().filter_map(|x| ops.get(x)).collect()
}

/// A random action of the look-up histories (Reviews 14 and 16): `scripted` if given, otherwise
/// an admission, an approval of one of `proposals`, a revocation, removal, promotion or demotion
/// of `target`, or a rotation of `author`'s own key. One draw of `rng` either way, so a
/// scripted step leaves the draws of the steps after it as they were.
pub fn random_action(
    rng: &mut ChaCha20Rng,
    scripted: Option<Action>,
    target: &Identity,
    proposals: &[OpId],
    author: &Identity,
) -> Action {
    use rand::seq::SliceRandom;
    use rand::Rng;
    match rng.gen_range(0..20) {
        _ if scripted.is_some() => scripted.unwrap(),
        0..=5 => add(target),
        6..=9 if !proposals.is_empty() => Action::Approve {
            proposal: *proposals.choose(rng).unwrap(),
        },
        10..=11 => Action::PublishRevocation {
            certificate: RevocationCertificate::create(target, NOW),
        },
        12..=13 => Action::Remove {
            member: target.member_id(),
            reason: names::reason(String::new()),
        },
        14..=15 => promote(target),
        16 => Action::ProposeDemote {
            member: target.member_id(),
        },
        _ => Action::RotateAgreementKey {
            identity: author.public(),
        },
    }
}

/// What a node stores (Reviews 16 and 17) of its log besides the ops: the stubs read through, the readings and the
/// look-ups (`take_new_stubs`, `take_readings`, `take_look_ups`), taken after every change.
#[derive(Default, Clone)]
pub struct Store {
    pub stubs: BTreeMap<OpId, Op>,
    pub readings: BTreeMap<OpId, (Vec<OpId>, Vec<OpId>)>,
    pub look_ups: Vec<(OpId, Vec<MemberId>)>,
}

impl Store {
    pub fn take(&mut self, log: &mut MembershipLog) {
        for s in log.take_new_stubs() {
            self.stubs.insert(s.id(), s);
        }
        for (id, read, via) in log.take_readings() {
            self.readings.insert(id, (read, via));
        }
        self.look_ups.extend(log.take_look_ups());
    }

    /// A node's restart: stubs, readings and look-ups read back, then every op it held (with
    /// its history or waiting), as `node` does.
    pub fn restart(&self, genesis: &SignedGenesis, held: Vec<Op>) -> MembershipLog {
        let mut log = MembershipLog::new(genesis.clone());
        for s in self.stubs.values() {
            log.restore_stub(s.clone());
        }
        log.restore_readings(
            self.readings
                .iter()
                .map(|(id, (r, v))| (*id, r.clone(), v.clone()))
                .collect(),
        );
        log.restore_look_ups(self.look_ups.clone());
        log.extend(held);
        log.restored();
        log
    }
}

/// Something delivered to the log under test later than it was made.
pub enum Late {
    /// An op (an orphan's parent held back, so what names it waits and is released in bulk).
    Op(Op),
    /// A stub's bytes, its id known as refused over the quota since it was made (ops naming it
    /// wait until the bytes come).
    StubBytes(Op),
}

/// Whether step `step` of a random history of Reviews 16 and 17 is one of the heirs' scripted
/// start ([`step_action`]), for `kk` founders.
pub fn scripted_step(heirs: bool, step: usize, kk: usize) -> bool {
    heirs && step < 2 + 2 * (kk - 1) + kk
}

/// The action of step `step` of a random history of Reviews 16 and 17: while `heirs` scripts the
/// start (two adds, their approvals by the other founders, then the founders' self-revocations),
/// that; else a random action by `author` on `parents`, its target drawn from `pool` and the
/// proposals it may name among `held` and `stubbed`. The same draws, in the same order, as each
/// review made inline, so the same histories. Gives the author, parents and action.
#[allow(clippy::too_many_arguments)]
pub fn step_action(
    rng: &mut ChaCha20Rng,
    step: usize,
    heirs: bool,
    kk: usize,
    pool: &[Identity],
    held: &[Op],
    stubbed: &[Op],
    heads: &[OpId],
    author: usize,
    parents: Vec<OpId>,
) -> (usize, Vec<OpId>, Action) {
    let target = &pool[rng.gen_range(0..pool.len())];
    let proposals: Vec<OpId> = held
        .iter()
        .chain(stubbed)
        .filter(|o| {
            matches!(
                o.body().action,
                Action::ProposeAdd { .. }
                    | Action::ProposePromote { .. }
                    | Action::ProposeDemote { .. }
                    | Action::Remove { .. }
            )
        })
        .map(Op::id)
        .collect();
    let script = scripted_step(heirs, step, kk);
    let pending: Vec<OpId> = held
        .iter()
        .filter(|o| matches!(o.body().action, Action::ProposeAdd { .. }))
        .map(Op::id)
        .collect();
    let (author, parents, scripted) = match step {
        _ if !script => (author, parents, None),
        0 | 1 => (0, heads.to_vec(), Some(add(&pool[kk + step]))),
        st if st < 2 + 2 * (kk - 1) => {
            let (approver, which) = (1 + (st - 2) / 2, (st - 2) % 2);
            (
                approver,
                heads.to_vec(),
                pending.get(which).map(|p| Action::Approve { proposal: *p }),
            )
        }
        st => {
            let founder = st - 2 - 2 * (kk - 1);
            (
                founder,
                heads.to_vec(),
                Some(Action::PublishRevocation {
                    certificate: RevocationCertificate::create(&pool[founder], NOW),
                }),
            )
        }
    };
    let action = random_action(rng, scripted, target, &proposals, &pool[author]);
    (author, parents, action)
}

/// Give `o` to `a`; one refused (its parents missing) waits in `refused`, and every op added
/// lets those waiting be tried again until none more joins (Reviews 16 and 17).
pub fn give(a: &mut MembershipLog, o: &Op, refused: &mut Vec<Op>) {
    match a.insert(o.clone()) {
        InsertOutcome::Refused(_) => refused.push(o.clone()),
        InsertOutcome::Added(_) => loop {
            let before = refused.len();
            refused.retain(|r| matches!(a.insert(r.clone()), InsertOutcome::Refused(_)));
            if refused.len() == before {
                break;
            }
        },
        _ => {}
    }
}
