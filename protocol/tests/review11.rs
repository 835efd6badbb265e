//! Review 11: adversarial tests of branch `r87` (stubs as effect-less nodes of the resolver's
//! graph, ops placed by their named parents; `docs/design/op-quota-bottom-q.md` §10). Findings
//! in `/work/wt/REVIEW11.md`. Each test asserts the safe behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod k_founded;
mod names;
mod proptest_seed;

use std::collections::BTreeMap;

use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{MemberId, OpId};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

fn collective(rng: &mut ChaCha20Rng, k: u8) -> (SignedGenesis, Vec<Identity>) {
    let pool: Vec<Identity> = (0..6).map(|_| Identity::generate(&mut *rng)).collect();
    // A collective needing k approvals is founded by k moderators.
    let genesis = k_founded::founded_by_k(&pool, k, "review11", NOW, rng);
    (genesis, pool)
}

/// Everything a roster decides that an effect-less op cannot change: who is a member, with
/// which seniority and rights, who is removed, what is pending, the mailboxes, and what was
/// dropped (but `ignore`, the ops one side holds as stubs, which the other drops).
type View = (
    Vec<Member>,
    BTreeMap<MemberId, Removed>,
    Vec<Pending>,
    Vec<Mailbox>,
    BTreeMap<OpId, &'static str>,
);

fn view(roster: &Roster, ignore: &[OpId]) -> View {
    (
        roster.members().cloned().collect(),
        roster.removed().clone(),
        roster.pending().to_vec(),
        roster.mailboxes().cloned().collect(),
        roster
            .dropped()
            .iter()
            .filter(|(id, _)| !ignore.contains(id))
            .map(|(id, why)| (*id, *why))
            .collect(),
    )
}

/// What the ops one replica holds as stubs and the other as ops are: both are dropped where they
/// are held as ops, so neither takes effect in a roster.
#[derive(Clone, Copy)]
enum Stubbed {
    /// A rotation to the author's own key (a member already has that encryption key): no
    /// look-up either. The property's kind.
    OwnKeyRotation,
    /// An approval of a proposal that does not exist, the property's kind until the tenth
    /// session: looked up where it is held as an op and not where it is a stub, an effect of
    /// the op that splits the replicas in rare histories (SECURITY.md, Moderators, residual
    /// (d), which is H1's).
    ApprovalOfNothing,
}

fn stubbed_action(
    kind: Stubbed,
    pool: &[Identity],
    author: usize,
    collective: lookout_protocol::CollectiveId,
    step: usize,
) -> Action {
    match kind {
        Stubbed::OwnKeyRotation => Action::RotateAgreementKey {
            identity: pool[author].public(),
        },
        Stubbed::ApprovalOfNothing => {
            let nothing = Op::create(
                &pool[5],
                collective,
                vec![],
                NOW + 1_000_000 + step as u64,
                Action::RotateAgreementKey {
                    identity: pool[5].public(),
                },
            )
            .unwrap();
            Action::Approve {
                proposal: nothing.id(),
            }
        }
    }
}

/// Two replicas R and K hold the same ops but the stubs: R refuses some of an author's ops
/// over the quota and keeps them as stubs (later ops name them, so R reads them through them),
/// K holds them as ops. Each such op is dropped at K: it has no effect anywhere
/// ([`Stubbed`]). So (§10's claim) R and K must decide everything else
/// alike after every op: the canonical order of every shared op is the same. Some stubs join
/// R later as ops (a slot freed), after which R and K must agree on the roster but the heads.
/// Finally R restarts from what a node would have stored (stubs newly read through, readings
/// as `take_readings` gives them, the ops) and must show the very roster it showed.
fn stubs_and_ops_agree(seed: u64, len: usize, k: u8, kind: Stubbed) -> Result<(), TestCaseError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (genesis, pool) = collective(&mut rng, k);
    let mut r = MembershipLog::new(genesis.clone());
    let mut kk = MembershipLog::new(genesis.clone());
    let mut held: Vec<Op> = Vec::new();
    let mut stubs: Vec<Op> = Vec::new();
    let mut stored_stubs: BTreeMap<OpId, Op> = BTreeMap::new();
    let mut stored_readings: BTreeMap<OpId, (Vec<OpId>, Vec<OpId>)> = BTreeMap::new();
    let mut store = |r: &mut MembershipLog| {
        for (id, read, via) in r.take_readings() {
            stored_readings.insert(id, (read, via));
        }
        for s in r.take_new_stubs() {
            stored_stubs.insert(s.id(), s);
        }
    };
    for step in 0..len {
        if !stubs.is_empty() && rng.gen_bool(0.05) {
            let stub = stubs.remove(rng.gen_range(0..stubs.len()));
            if let InsertOutcome::Added(_) = r.insert(stub.clone()) {
                held.push(stub);
            } else {
                stubs.push(stub);
            }
            store(&mut r);
        } else {
            let roster = r.roster().clone();
            let members: Vec<usize> = (0..pool.len())
                .filter(|i| roster.is_member(&pool[*i].member_id()))
                .collect();
            let author = if step < 4 || members.is_empty() {
                0
            } else if rng.gen_bool(0.8) {
                *members.choose(&mut rng).unwrap()
            } else {
                rng.gen_range(0..pool.len())
            };
            let target = rng.gen_range(1..pool.len());
            let parents: Vec<OpId> = if !stubs.is_empty() && rng.gen_bool(0.3) {
                let mut p = roster.heads().to_vec();
                p.push(stubs[rng.gen_range(0..stubs.len())].id());
                if rng.gen_bool(0.3) {
                    // Only the stub (and not the heads): read as naming the stub's parents.
                    p.retain(|id| stubs.iter().any(|s| s.id() == *id));
                }
                p.sort();
                p.dedup();
                p
            } else if held.is_empty() || rng.gen_bool(0.8) {
                roster.heads().to_vec()
            } else {
                let mut p: Vec<OpId> = (0..rng.gen_range(1..=held.len().min(3)))
                    .map(|_| held[rng.gen_range(0..held.len())].id())
                    .collect();
                p.sort();
                p.dedup();
                p
            };
            let stubbed = step >= 4 && rng.gen_bool(0.2) && r.may_author(&pool[author].member_id());
            let pending: Vec<OpId> = roster.pending().iter().map(|p| p.proposal).collect();
            let action = if stubbed {
                stubbed_action(kind, &pool, author, genesis.id(), step)
            } else {
                match (step, rng.gen_range(0..12)) {
                    (0 | 1, _) => Action::ProposeAdd {
                        identity: pool[step + 1].public(),
                        name: names::name("m"),
                    },
                    (2 | 3, _) => Action::ProposePromote {
                        member: pool[step - 1].member_id(),
                    },
                    (_, 0..=2) => Action::ProposeAdd {
                        identity: pool[target].public(),
                        name: names::name("m"),
                    },
                    (_, 3..=5) if !pending.is_empty() => Action::Approve {
                        proposal: *pending.choose(&mut rng).unwrap(),
                    },
                    (_, 3..=6) => Action::Remove {
                        member: pool[rng.gen_range(0..pool.len())].member_id(),
                        reason: names::reason(String::new()),
                    },
                    (_, 7..=8) => Action::ProposePromote {
                        member: pool[target].member_id(),
                    },
                    (_, 9..=10) => Action::ProposeDemote {
                        member: pool[rng.gen_range(0..pool.len())].member_id(),
                    },
                    _ => Action::RotateAgreementKey {
                        identity: pool[author].public(),
                    },
                }
            };
            let op = Op::create(
                &pool[author],
                genesis.id(),
                parents,
                NOW + step as u64,
                action,
            )
            .unwrap();
            if stubbed {
                r.refuse_over_quota(op.id(), op.parents(), None);
                prop_assert_eq!(r.add_stub(op.clone()), Vec::<OpId>::new());
                let at_k = kk.insert(op.clone());
                prop_assert!(matches!(at_k, InsertOutcome::Added(_)), "K: {:?}", at_k);
                stubs.push(op);
            } else {
                let at_r = r.insert(op.clone());
                let at_k = kk.insert(op.clone());
                prop_assert_eq!(
                    matches!(at_r, InsertOutcome::Added(_)),
                    matches!(at_k, InsertOutcome::Added(_)),
                    "R {:?} K {:?} at step {}",
                    at_r,
                    at_k,
                    step
                );
                if let InsertOutcome::Added(_) = at_r {
                    held.push(op);
                }
            }
            store(&mut r);
        }
        let ignore: Vec<OpId> = stubs.iter().map(Op::id).collect();
        prop_assert_eq!(
            view(r.roster(), &ignore),
            view(kk.roster(), &ignore),
            "R (stubs) and K (the same as ops) differ after step {}",
            step
        );
        // The roster at some held heads (an alert's named state): the same at R and K, and at
        // R's own heads the roster R shows (its own rng, so the histories stay as they were).
        let mut pick = ChaCha20Rng::seed_from_u64(seed ^ (step as u64).wrapping_mul(0x9e37));
        if !held.is_empty() {
            let mut key: Vec<OpId> = (0..pick.gen_range(1..=held.len().min(3)))
                .map(|_| held[pick.gen_range(0..held.len())].id())
                .collect();
            key.sort();
            key.dedup();
            let at_r = r.roster_at(&key).map(|x| view(&x, &ignore));
            let at_k = kk.roster_at(&key).map(|x| view(&x, &ignore));
            prop_assert_eq!(at_r, at_k, "roster_at {:?} after step {}", key, step);
        }
        let heads = r.roster().heads().to_vec();
        if !heads.is_empty() {
            let shown = r.roster().clone();
            let at = r.roster_at(&heads).unwrap();
            prop_assert_eq!(&*at, &shown, "R's roster_at its heads after step {}", step);
        }
    }
    // Another delivery order: K's ops all at once, shuffled; R's stubs first, then its ops
    // shuffled (orphans released in bulk): the same decisions, and R's very roster.
    let mut order = ChaCha20Rng::seed_from_u64(seed.rotate_left(17));
    let ignore: Vec<OpId> = stubs.iter().map(Op::id).collect();
    let mut all: Vec<Op> = held.iter().chain(&stubs).cloned().collect();
    all.shuffle(&mut order);
    let mut k2 = MembershipLog::new(genesis.clone());
    k2.extend(all);
    prop_assert_eq!(
        view(k2.roster(), &ignore),
        view(kk.roster(), &ignore),
        "K, shuffled"
    );
    let mut r2 = MembershipLog::new(genesis.clone());
    let mut shuffled_stubs = stubs.clone();
    shuffled_stubs.shuffle(&mut order);
    for s in &shuffled_stubs {
        r2.refuse_over_quota(s.id(), s.parents(), None);
        r2.add_stub(s.clone());
    }
    let mut shuffled = held.clone();
    shuffled.shuffle(&mut order);
    r2.extend(shuffled);
    prop_assert_eq!(r2.roster(), r.roster(), "R, shuffled");
    // Who may author: R looked its ops up as they came, in the resolutions it appended them to
    // (the look-ups' view while an op is read through a stub, R14-3); R2 resolved each past.
    let authors = |log: &MembershipLog| -> Vec<MemberId> {
        pool.iter()
            .map(Identity::member_id)
            .filter(|m| log.may_author(m))
            .collect()
    };
    prop_assert_eq!(authors(&r2), authors(&r), "R, shuffled: authors");
    prop_assert_eq!(authors(&kk), authors(&r), "K and R: authors");
    // Restart R from what it stored.
    let mut again = MembershipLog::new(genesis.clone());
    for s in stored_stubs.values() {
        again.restore_stub(s.clone());
    }
    again.restore_readings(
        stored_readings
            .iter()
            .map(|(id, (read, via))| (*id, read.clone(), via.clone()))
            .collect(),
    );
    again.extend(held.iter().cloned());
    again.restored();
    prop_assert_eq!(again.roster(), r.roster(), "R after a restart");
    prop_assert_eq!(authors(&again), authors(&r), "R after a restart: authors");
    Ok(())
}

proptest! {
    #![proptest_config(proptest_seed::config(128))]

    /// §10's claim at random: a replica holding some ops as stubs (read through) and one
    /// holding them as ops (without effect) decide everything else alike, and a restart
    /// changes nothing.
    #[test]
    fn r11_stubs_held_as_ops_elsewhere_change_nothing_else(
        seed in any::<u64>(),
        len in 4usize..48,
        k in 1u8..=3,
    ) {
        stubs_and_ops_agree(seed, len, k, Stubbed::OwnKeyRotation)?;
    }
}

/// The split the ninth session's random run of the property above found (2,787 cases in;
/// shrunk), with the property's stubbed ops of then (approvals of nothing): an approval held at
/// K and a stub at R (refused over its author's quota there) was the only op whose past merged
/// the branches in which held ops complete a key's admission; K looked it up and let the key
/// author, R looks up no stub and refused her op ("R Refused(NeverAMember) K Added" at step 46).
/// A look-up is an effect of the op looked up, and which ops of an over-quota member a replica
/// holds depends on arrival order: H1's residual (SECURITY.md, Moderators, residual (d), decided
/// in the tenth session). Looking stubs up (branch `stublook`) fixes this case but not Review
/// 15's R15-1 and adds a cost (R15-2); reading the stubs of a stub's past as ops breaks the quota
/// rule (R15-3's mutant).
#[test]
#[ignore = "known split, H1's residual: SECURITY.md Moderators, residual (d) (a stub takes no effect and is not looked up)"]
fn r11_stub_case_found_by_the_ninth_sessions_random_run() {
    stubs_and_ops_agree(13369052757974965410, 47, 2, Stubbed::ApprovalOfNothing).unwrap();
}

/// R11-2 (a measurement, not a pass/fail test: `cargo test --release -p lookout-protocol --test
/// review11 -- --ignored --nocapture r11_measure`). One author's held ops, each read through a
/// chain of `MAX_READ_THROUGH` of her own ops refused over the quota (stubs): since r87 every
/// stub read through is a node of every full resolution's graph, so the graph is up to
/// 1 + `MAX_READ_THROUGH` times her share of the ops held. Prints the time of a full
/// resolution with the chains as stubs and without them (the same held ops naming their
/// parents directly).
#[test]
#[ignore = "measurement: prints numbers for REVIEW11.md (R11-2)"]
fn r11_measure_full_resolution_with_stub_chains() {
    use std::time::Instant;
    let chains: usize = std::env::var("R11_CHAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (genesis, pool) = collective(&mut rng, 1);
    let founder = &pool[0];
    let mk = |parents: Vec<OpId>, at: u64| {
        Op::create(
            founder,
            genesis.id(),
            parents,
            at,
            Action::RotateAgreementKey {
                identity: founder.public(),
            },
        )
        .unwrap()
    };
    let mut with = MembershipLog::new(genesis.clone());
    let base = mk(vec![], NOW);
    with.insert(base.clone());
    let mut last = base.id();
    for c in 0..chains {
        // The chain: MAX_READ_THROUGH refused ops, each naming the one before, from `last`.
        let mut below = last;
        for j in 0..64u64 {
            let stub = mk(vec![below], NOW + 10 + (c as u64) * 100 + j);
            with.refuse_over_quota(stub.id(), stub.parents(), None);
            with.add_stub(stub.clone());
            below = stub.id();
        }
        let held = mk(vec![below], NOW + 86_400 + c as u64);
        assert!(matches!(with.insert(held.clone()), InsertOutcome::Added(_)));
        last = held.id();
    }
    // The same held ops without the chains: a plain chain of `chains` ops.
    let mut plain_log = MembershipLog::new(genesis.clone());
    let mut prev = base.id();
    plain_log.insert(base.clone());
    for c in 0..chains {
        let op = mk(vec![prev], NOW + 86_400 + c as u64);
        plain_log.insert(op.clone());
        prev = op.id();
    }
    let time = |log: &MembershipLog| {
        let mut best = f64::MAX;
        for i in 0..5u64 {
            let mut l = log.clone();
            // A stale op (naming the first op only) forces a full resolution.
            l.insert(mk(vec![base.id()], NOW + 200_000 + i));
            let t = Instant::now();
            let n = l.roster().op_count();
            best = best.min(t.elapsed().as_secs_f64());
            assert!(n > chains);
        }
        best
    };
    // R11-3 on top: a member's op naming an op of hers that another replica held and this one
    // refused (a stub naming this replica's heads, so the op is read as naming the heads: an
    // append before r87), then reading the roster, as a node does after each op.
    let _ = with.roster();
    let honest_op = {
        let mut best = f64::MAX;
        for i in 0..5u64 {
            let mut l = with.clone();
            let _ = l.roster();
            let heads = l.roster().heads().to_vec();
            let elsewhere = mk(heads, NOW + 300 + i);
            l.refuse_over_quota(elsewhere.id(), elsewhere.parents(), None);
            l.add_stub(elsewhere.clone());
            let op = Op::create(
                &pool[0],
                genesis.id(),
                vec![elsewhere.id()],
                NOW + 300_000 + i,
                Action::ProposeAdd {
                    identity: pool[1 + (i as usize % 5)].public(),
                    name: names::name("h"),
                },
            )
            .unwrap();
            let t = Instant::now();
            assert!(matches!(l.insert(op), InsertOutcome::Added(_)));
            let _ = l.roster().op_count();
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    };
    let stubs = with.offered_stubs().count();
    println!(
        "R11-3: one op read through a stub (its reading names the heads), insert and roster: \
         {:.3} ms",
        honest_op * 1e3
    );
    println!(
        "R11-2: {} held ops of hers; with {} stubs read through: full resolution {:.3} ms; \
         without: {:.3} ms",
        chains + 1,
        stubs,
        time(&with) * 1e3,
        time(&plain_log) * 1e3
    );
}
