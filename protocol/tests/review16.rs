//! Review 16: attacks on the look-ups' view (R14-3's fix, 6d540d8 and e022332,
//! `MembershipLog::look_up_in_view`): while an op held is read through a stub, an op that must
//! be looked up and that named every head is looked up in a second resolution of every op and
//! every stub read through, as ops, made once and appended to. Each test asserts the safe
//! behaviour; findings in `docs/design/REVIEW16.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authors_world;
mod names;
mod offer;
mod proptest_seed;

use authors_world::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{MemberId, OpId};
use offer::offer;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, VecDeque};

// ---------------------------------------------------------------------------------------------
// Convergence: a log using the view against logs that resolve each past.
// ---------------------------------------------------------------------------------------------

/// How a random history is delivered to the log under test, `a`.
#[derive(Clone, Copy, Debug)]
struct Knobs {
    /// Chance an op reaches `a` some steps late.
    late: f64,
    /// Chance `a` reads its roster after a step (else the next inserts find no resolution).
    read: f64,
    /// Chance an op is a stub at `a` (refused over the quota there).
    stub: f64,
    /// Chance a stub's bytes reach `a` late (its id refused at once).
    late_bytes: f64,
    /// Chance per step that a stub joins `a` as an op (a slot of its author's day freed).
    join: f64,
    /// Chance per step that `a` restarts from its store.
    restart: f64,
    /// Whether `a` reads its roster at all (the chances drawn all the same, so the history and
    /// its delivery are the same): without, no look-up is read from a resolution, the roster's
    /// or the view.
    reads: bool,
}

const KNOBS: Knobs = Knobs {
    late: 0.25,
    read: 0.7,
    stub: 0.15,
    late_bytes: 0.3,
    join: 0.05,
    restart: 0.03,
    reads: true,
};

/// The history made and where `a` ended.
struct Run {
    genesis: SignedGenesis,
    pool: Vec<Identity>,
    /// Every op offered to `a` as an op (stubs that joined later included).
    ops: Vec<Op>,
    /// Every op made a stub at `a`.
    stubbed: Vec<Op>,
    a: MembershipLog,
    store: Store,
    /// How many look-ups `a` made, and how many pasts it resolved for them.
    look_ups: usize,
    resolved: u64,
    /// Look-ups made in steps where some op was read through a stub before and after, less the
    /// pasts resolved in those steps (at least: look-ups read from the view), and those of them
    /// that found a key.
    from_view: usize,
    admitting_from_view: usize,
}

/// A random history in the style of review14's `history_with` (k = 1..=3, proposals, approvals,
/// revocations, removals, promotions, demotions by anyone, an heirs' start with `heirs`), made
/// against a shadow log `s` that holds it all in the order made, and delivered to the log under
/// test `a` with `knobs`: ops late (orphans released in bulk), roster read or not, stubs (some
/// with their bytes late, some joining later as ops), restarts from what `a` stored. At the end
/// everything is offered again until nothing more joins.
fn run(seed: u64, len: usize, k: u8, heirs: bool, knobs: Knobs) -> Run {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (genesis, pool) = collective(seed ^ 0x1616, k, usize::from(k), 7 - usize::from(k));
    let mut s = MembershipLog::new(genesis.clone());
    let mut a = MembershipLog::new(genesis.clone());
    let mut store = Store::default();
    let mut ops: Vec<Op> = Vec::new();
    let mut stubbed: Vec<Op> = Vec::new();
    // Stubs at `a` not joined yet.
    let mut stubs_left: Vec<Op> = Vec::new();
    let mut late: VecDeque<(usize, Late)> = VecDeque::new();
    // Ops `a` refused (author not yet an author there), offered again after each op it takes.
    let mut refused_at_a: Vec<Op> = Vec::new();
    let mut s_refused: Vec<Op> = Vec::new();
    let mut resolved = 0u64;
    let (mut from_view, mut admitting_from_view) = (0usize, 0usize);
    let kk = usize::from(k);

    for step in 0..len {
        // Deliveries due now.
        while late.front().is_some_and(|(due, _)| *due <= step) {
            match late.pop_front().unwrap().1 {
                Late::Op(o) => give(&mut a, &o, &mut refused_at_a),
                Late::StubBytes(o) => {
                    a.add_stub(o);
                }
            }
        }
        // A stub joins as an op.
        if !stubs_left.is_empty() && rng.gen_bool(knobs.join) {
            let o = stubs_left.remove(rng.gen_range(0..stubs_left.len()));
            if a.is_stub(&o.id()) {
                ops.push(o.clone());
                give(&mut a, &o, &mut refused_at_a);
            } else {
                stubs_left.push(o);
            }
        }
        let step_start = (a.reads_any(), a.past_resolutions(), store.look_ups.len());
        let roster = s.roster().clone();
        let held: Vec<Op> = s.ops().cloned().collect();
        let authors: Vec<usize> = (0..pool.len())
            .filter(|i| s.may_author(&pool[*i].member_id()))
            .collect();
        let author = if rng.gen_bool(0.9) {
            *authors.choose(&mut rng).unwrap()
        } else {
            rng.gen_range(0..pool.len())
        };
        let parents: Vec<OpId> = if !stubbed.is_empty() && rng.gen_bool(0.3) {
            let mut p = roster.heads().to_vec();
            p.push(stubbed[rng.gen_range(0..stubbed.len())].id());
            p.sort();
            p.dedup();
            p
        } else if held.is_empty() || rng.gen_bool(0.75) {
            roster.heads().to_vec()
        } else {
            let mut p: Vec<OpId> = (0..rng.gen_range(1..=2))
                .map(|_| held[rng.gen_range(0..held.len())].id())
                .collect();
            p.sort();
            p.dedup();
            p
        };
        let (author, parents, action) = step_action(
            &mut rng,
            step,
            heirs,
            kk,
            &pool,
            &held,
            &stubbed,
            roster.heads(),
            author,
            parents,
        );
        let o = dated(
            &genesis,
            &pool[author],
            &parents,
            action,
            NOW + 60 + step as u64,
        );
        // Only an author's op is refused over the quota (`precheck` asks whether its author
        // may author first, and a replica keeps as a stub only ops refused over the quota), so
        // only those are stubs: a stub by a key that may not author yet, joining later as an
        // op, made `a` keep ops no replica can (the first case this property found).
        let stub = !scripted_step(heirs, step, kk) && step >= 2 && rng.gen_bool(knobs.stub);
        // Half the stubs, where there is one, are a moderator's approval of a pending proposal:
        // a stub whose effect a look-up must see (it may complete an admission only the view
        // finds, the stubs counting as ops there).
        let o = match (stub && rng.gen_bool(0.5), roster.pending().first()) {
            (true, Some(p)) => {
                let moderators: Vec<usize> = (0..pool.len())
                    .filter(|i| {
                        roster
                            .members()
                            .any(|m| m.moderator && m.identity.member == pool[*i].member_id())
                            && !p.approvals.contains(&pool[*i].member_id())
                            && a.may_author(&pool[*i].member_id())
                    })
                    .collect();
                match moderators.choose(&mut rng) {
                    Some(m) => dated(
                        &genesis,
                        &pool[*m],
                        &parents,
                        Action::Approve {
                            proposal: p.proposal,
                        },
                        NOW + 60 + step as u64,
                    ),
                    None => o,
                }
            }
            _ => o,
        };
        if stub && a.may_author(&o.author()) {
            // A stub at `a` (and at `s`, whose heads the next ops name).
            s.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
            s.add_stub(o.clone());
            a.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
            if rng.gen_bool(knobs.late_bytes) {
                let due = step + rng.gen_range(1..5);
                let at = late
                    .iter()
                    .position(|(d, _)| *d > due)
                    .unwrap_or(late.len());
                late.insert(at, (due, Late::StubBytes(o.clone())));
            } else {
                a.add_stub(o.clone());
            }
            stubbed.push(o.clone());
            stubs_left.push(o);
        } else {
            give(&mut s, &o, &mut s_refused);
            ops.push(o.clone());
            if rng.gen_bool(knobs.late) {
                let due = step + rng.gen_range(1..5);
                let at = late
                    .iter()
                    .position(|(d, _)| *d > due)
                    .unwrap_or(late.len());
                late.insert(at, (due, Late::Op(o)));
            } else {
                give(&mut a, &o, &mut refused_at_a);
            }
        }
        let _ = s.roster();
        if rng.gen_bool(knobs.read) && knobs.reads {
            let _ = a.roster();
        }
        store.take(&mut a);
        if step_start.0 && a.reads_any() {
            let made = &store.look_ups[step_start.2..];
            let resolved_here = (a.past_resolutions() - step_start.1) as usize;
            if made.len() > resolved_here {
                from_view += made.len() - resolved_here;
                admitting_from_view += made
                    .iter()
                    .filter(|(_, k)| !k.is_empty())
                    .count()
                    .min(made.len() - resolved_here);
            }
        }
        if rng.gen_bool(knobs.restart) {
            resolved += a.past_resolutions();
            let held: Vec<Op> = ops.iter().filter(|o| a.holds(&o.id())).cloned().collect();
            let stubs_before: Vec<Op> = stubbed
                .iter()
                .filter(|o| a.is_stub(&o.id()))
                .cloned()
                .collect();
            a = store.restart(&genesis, held);
            // Stubs kept only for orphans are not stored: sync offers them again.
            for o in stubs_before {
                if !a.is_stub(&o.id()) && !a.contains(&o.id()) {
                    a.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
                    a.add_stub(o);
                }
            }
            store.take(&mut a);
        }
    }
    // Everything delivered, then offered again until nothing more joins.
    while let Some((_, l)) = late.pop_front() {
        match l {
            Late::Op(o) => give(&mut a, &o, &mut refused_at_a),
            Late::StubBytes(o) => {
                a.add_stub(o);
            }
        }
    }
    offer(&mut a, &ops);
    store.take(&mut a);
    let look_ups = store.look_ups.len();
    resolved += a.past_resolutions();
    Run {
        genesis,
        pool,
        ops,
        stubbed,
        a,
        store,
        look_ups,
        resolved,
        from_view,
        admitting_from_view,
    }
}

/// The log under test keeps the same ops and lets the same keys author as a fresh log given the
/// same stubs first and then every op at once (every look-up a resolution of its past), and as
/// its own restart from what it stored; and every key known in the roster of some held look-up
/// op's past (stubs as ops) may author.
fn view_agrees(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
    knobs: Knobs,
) -> Result<(), TestCaseError> {
    let Run {
        genesis,
        pool,
        ops,
        stubbed,
        a,
        store,
        ..
    } = run(seed, len, k, heirs, knobs);
    let stubs_now: Vec<&Op> = stubbed.iter().filter(|o| a.is_stub(&o.id())).collect();
    let mut fresh = MembershipLog::new(genesis.clone());
    for st in &stubs_now {
        fresh.refuse_over_quota(st.id(), st.parents(), st.body().action.admits());
        fresh.add_stub((*st).clone());
    }
    fresh.extend(ops.iter().cloned());
    let held_ops: Vec<Op> = a.ops().cloned().collect();
    let restarted = store.restart(&genesis, held_ops);
    // Another replica using the view: the ops shuffled (orphans released in bulk), the stubs
    // among them at random places, the roster read after most inserts, refused ops offered
    // again.
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xb16);
    let mut items: Vec<(bool, Op)> = ops
        .iter()
        .map(|o| (false, o.clone()))
        .chain(stubs_now.iter().map(|o| (true, (*o).clone())))
        .collect();
    items.shuffle(&mut rng);
    let mut b = MembershipLog::new(genesis.clone());
    let mut refused: Vec<Op> = Vec::new();
    for (stub, o) in items {
        if stub {
            b.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
            b.add_stub(o);
        } else if matches!(b.insert(o.clone()), InsertOutcome::Refused(_)) {
            refused.push(o);
        }
        if rng.gen_bool(0.8) {
            let _ = b.roster();
        }
        refused.retain(|r| {
            let out = b.insert(r.clone());
            let _ = b.roster();
            matches!(out, InsertOutcome::Refused(_))
        });
    }
    offer(&mut b, &ops);
    for (name, other) in [
        ("a fresh log", &fresh),
        ("its restart", &restarted),
        ("a shuffled log", &b),
    ] {
        prop_assert_eq!(
            held(&a),
            held(other),
            "log under test vs {}: ops kept",
            name
        );
        prop_assert_eq!(
            authors_of(&a, &pool),
            authors_of(other, &pool),
            "log under test vs {}: authors",
            name
        );
    }
    let by_id: BTreeMap<OpId, Op> = a
        .ops()
        .chain(stubs_now.iter().copied())
        .map(|o| (o.id(), o.clone()))
        .collect();
    for o in a.ops() {
        let keys: Vec<MemberId> = match &o.body().action {
            Action::ProposeAdd { identity, .. } => vec![identity.member],
            Action::Approve { .. }
            | Action::Remove { .. }
            | Action::ProposeDemote { .. }
            | Action::PublishRevocation { .. } => pool.iter().map(Identity::member_id).collect(),
            _ => continue,
        };
        let roster = resolve(&genesis, &past_of(&by_id, o.id()));
        for key in keys.iter().filter(|key| roster.knows(key)) {
            prop_assert!(
                a.may_author(key),
                "a key known in the past of a held {:?} may not author",
                o.body().action
            );
        }
    }
    let _ = a.roster();
    Ok(())
}

proptest! {
    #![proptest_config(proptest_seed::config(48))]

    /// R16 convergence search. A random run: `PROPTEST_CASES=3000 PROPTEST_RNG_SEED=random
    /// cargo test --release -p lookout-protocol --test review16`.
    #[test]
    fn r16_the_view_agrees_with_a_fresh_log_and_a_restart_whatever_the_delivery(
        seed in any::<u64>(),
        len in 6usize..60,
        k in 1u8..=3,
        heirs in any::<bool>(),
    ) {
        view_agrees(seed, len, k, heirs, KNOBS)?;
    }

    /// The same with the roster always read (every op naming every head appended, so the view
    /// is used as often as it can be) and stubs common.
    #[test]
    fn r16_the_view_agrees_when_every_op_is_appended(
        seed in any::<u64>(),
        len in 6usize..60,
        k in 1u8..=3,
        heirs in any::<bool>(),
    ) {
        let knobs = Knobs { late: 0.1, read: 1.0, stub: 0.25, ..KNOBS };
        view_agrees(seed, len, k, heirs, knobs)?;
    }

    /// Longer histories, more restarts and later deliveries: a search by hand,
    /// `PROPTEST_CASES=2000 PROPTEST_RNG_SEED=random cargo test --release -p lookout-protocol
    /// --test review16 -- --ignored r16_long`.
    #[test]
    #[ignore = "search, run by hand"]
    fn r16_long_view_agrees(
        seed in any::<u64>(),
        len in 60usize..150,
        k in 1u8..=3,
        heirs in any::<bool>(),
        read in 0.3f64..=1.0,
    ) {
        let knobs = Knobs { late: 0.35, read, stub: 0.2, join: 0.08, restart: 0.05, ..KNOBS };
        view_agrees(seed, len, k, heirs, knobs)?;
    }
}

/// How often the generator's logs look ops up, and how many of those were read from a
/// resolution already there (the roster's or the view): `cargo test -p lookout-protocol --test
/// review16 -- --ignored --nocapture r16_generator_stats`.
#[test]
#[ignore = "stats of the generator, by hand"]
fn r16_generator_stats() {
    for (name, knobs) in [
        ("default", KNOBS),
        (
            "appended",
            Knobs {
                late: 0.1,
                read: 1.0,
                stub: 0.25,
                ..KNOBS
            },
        ),
    ] {
        let (mut look_ups, mut resolved, mut from_view, mut admitting) = (0usize, 0u64, 0, 0);
        for seed in 0..100u64 {
            let r = run(seed, 40, 1 + (seed % 3) as u8, seed % 4 < 2, knobs);
            look_ups += r.look_ups;
            resolved += r.resolved;
            from_view += r.from_view;
            admitting += r.admitting_from_view;
        }
        println!(
            "{name}: look-ups {look_ups}, pasts resolved {resolved}, read from the view at least {from_view}, of which found a key at most {admitting}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cost: what makes the view be made again.
// ---------------------------------------------------------------------------------------------

/// R14-3's world (k = 2; two plain members, m1 and m2, vouch for a junk key, ripe for good; m2
/// goes over her quota once and an op of hers is read through the stub), then `n` honest
/// admissions, each completed by the two founders naming every head with the roster read after
/// each op (as a node does). With `interleaved`, m1 (a plain member, within her quota) sends
/// before each approval one rotation of her own key naming an old op (her admission's
/// approval) instead of every head. Returns the pasts resolved for look-ups during the
/// admissions, and how long they took.
fn admissions_after_a_stub(
    over_quota: bool,
    interleaved: bool,
    n: usize,
) -> (u64, std::time::Duration) {
    let (genesis, pool) = collective(1616, 2, 2, 5 + n);
    let (f1, f2, m1, m2) = (&pool[0], &pool[1], &pool[2], &pool[3]);
    let mut log = MembershipLog::new(genesis.clone());
    let ops = admissions_and_a_junk_pair(&genesis, &pool, true);
    let m1_admitted = ops[1].id();
    let ja = ops.last().unwrap().clone();
    offer(&mut log, &ops);
    let day = NOW + 86_400;
    let mut fill = rotations(&genesis, m2, &[ja.id()], 257, day);
    let over = fill.pop().unwrap();
    for r in fill {
        assert!(matches!(log.insert(r), InsertOutcome::Added(_)));
    }
    if over_quota {
        let next = rotations(&genesis, m2, &[over.id()], 1, day + 86_400).remove(0);
        assert!(matches!(
            log.insert(next.clone()),
            InsertOutcome::MissingParents(_)
        ));
        as_stub(&mut log, &over);
        assert!(log.contains(&next.id()));
        assert!(
            log.read_parents(&next.id()).is_some(),
            "read through the stub"
        );
    }
    let _ = log.roster();
    let before = log.past_resolutions();
    let started = std::time::Instant::now();
    for (i, m) in pool[5..5 + n].iter().enumerate() {
        let at = day + 2 * 86_400 + 86_400 * (i as u64 / 100);
        let p = dated(&genesis, f1, log.roster().heads(), add(m), at);
        assert!(matches!(log.insert(p.clone()), InsertOutcome::Added(_)));
        let _ = log.roster();
        if interleaved {
            // m1's own op, naming an old op: held (she may author, within her quota), a head
            // beside the proposal; no look-up of its own.
            let own = dated(
                &genesis,
                m1,
                &[m1_admitted],
                Action::RotateAgreementKey {
                    identity: m1.public(),
                },
                at + i as u64 % 100,
            );
            assert!(matches!(log.insert(own), InsertOutcome::Added(_)));
            let _ = log.roster();
        }
        let a = dated(&genesis, f2, log.roster().heads(), approve(&p), at);
        assert!(matches!(log.insert(a), InsertOutcome::Added(_)));
        let _ = log.roster();
        assert!(log.may_author(&m.member_id()));
    }
    (log.past_resolutions() - before, started.elapsed())
}

/// R16-1 (MEDIUM, cost): SECURITY says the view is "appended to by every operation naming every
/// head after it, so honest approvals after it resolve no past of their own". It is appended to
/// only while nothing else joined: any op that joins without naming every head (or read
/// through a stub, or an orphan released) makes it stale, and the next honest approval naming
/// every head resolves its whole past again. One plain member within her quota, sending one op
/// naming an old op before each honest approval, makes every approval resolve its past: n of n
/// (with no stub read through, the same ops cost no past: the roster read after her op is
/// resolved once, and the approval appended to it). Bounded: one past per op that joined
/// without being appended to the view, so at most one more full resolution per such op than the
/// roster's own (which a node makes after her op anyway). Ignored: fails on the branch.
#[test]
#[ignore = "R16-1: fails on the branch (each op not appended to the view makes the next look-up resolve its past: 20 of 20)"]
fn r16_a_members_ops_naming_old_heads_do_not_make_every_honest_approval_resolve_its_past() {
    assert_eq!(admissions_after_a_stub(false, true, 20).0, 0, "the control");
    let (resolved, _) = admissions_after_a_stub(true, true, 20);
    assert!(
        resolved <= 1,
        "{resolved} of 20 honest approvals resolved their whole past (one op naming an old head before each)"
    );
}

/// R16-1's bound, which holds on the branch: the view is made again at most once per op that
/// joined without being appended to it (here one per op of the member's), and not at all
/// without her ops (R14-3's fix).
#[test]
fn r16_the_view_is_made_again_at_most_once_per_op_not_appended_to_it() {
    assert!(
        admissions_after_a_stub(true, false, 20).0 <= 1,
        "R14-3's fix"
    );
    let (resolved, _) = admissions_after_a_stub(true, true, 20);
    assert!(resolved <= 20, "{resolved} pasts for 20 ops not appended");
}

/// R16-1 measured (release): `cargo test --release -p lookout-protocol --test review16 --
/// --ignored --nocapture r16_measure`.
#[test]
#[ignore = "measurement, run by hand"]
fn r16_measure_ops_naming_old_heads_between_honest_approvals() {
    for (over, inter) in [(false, false), (false, true), (true, false), (true, true)] {
        let (resolved, took) = admissions_after_a_stub(over, inter, 400);
        println!(
            "stub read through {over}, a member's op before each approval {inter}: 400 admissions, {resolved} pasts resolved, {took:?}"
        );
    }
}
