//! Review 17: attacks on the named states kept (8000d33, 9bedeab, a18510b,
//! `protocol/src/membership/at_heads.rs` `PastStates::remember` / `forget_oldest`,
//! `MembershipLog::keep_membership_at`, `state_key`): after a full resolution at the heads a key
//! delivery names, what a delivery reads there is kept as the difference from the newest state
//! (up to 256 states, 16,384 entries), dropped with the state it is kept against, reset by `join`.
//! Each test asserts the safe behaviour; findings in `docs/design/REVIEW17.md`.
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
use std::collections::{BTreeMap, BTreeSet, VecDeque};

// ---------------------------------------------------------------------------------------------
// What a key delivery reads, as `NamedMembers::of` asks for it (no `SharedStates`: a node).
// ---------------------------------------------------------------------------------------------

/// What a delivery reads of a membership: the members with their agreement keys, the removed.
type Facts = (Vec<(MemberId, [u8; 32])>, Vec<MemberId>);

fn facts(at: &impl MembersAt) -> Facts {
    let members = at
        .member_ids()
        .map(|id| (id, at.agreement(&id).unwrap()))
        .collect();
    (members, at.removed_ids().collect())
}

/// Which path answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Current,
    /// A roster `roster_at` had at hand (asked before the kept states since R17-3's fix).
    Cached,
    Kept,
    Resolved,
}

fn key_of(heads: &[OpId]) -> Vec<OpId> {
    let mut key = heads.to_vec();
    key.sort();
    key.dedup();
    key
}

/// `NamedMembers::of(log, heads, None)` through the public API, step for step: the current
/// roster when the heads are its heads, else a roster `roster_at` has at hand, else a kept
/// state, else `roster_at` (then kept).
fn delivery_reads(log: &mut MembershipLog, heads: &[OpId]) -> Option<(Path, Facts)> {
    let current = log.roster().heads().to_vec();
    if heads.len() >= current.len() && key_of(heads) == current {
        return Some((Path::Current, facts(log.roster())));
    }
    if let Some(roster) = log.cached_roster_at(heads) {
        return Some((Path::Cached, facts(&*roster)));
    }
    if let Some(kept) = log.membership_at(heads) {
        return Some((Path::Kept, facts(&*kept)));
    }
    let roster = log.roster_at(heads)?;
    log.keep_membership_at(heads);
    Some((Path::Resolved, facts(&*roster)))
}

/// `id`s and their ancestors among the ops `log` holds (`None`: one is not held).
fn past_ops<'a>(log: &'a MembershipLog, heads: &[OpId]) -> Option<Vec<&'a Op>> {
    let mut seen = BTreeSet::new();
    let mut stack = heads.to_vec();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(log.get(&id)?.parents().iter().copied());
        }
    }
    Some(seen.iter().filter_map(|id| log.get(id)).collect())
}

// ---------------------------------------------------------------------------------------------
// A node's store and restart (`authors_world::Store`, as review16), the reference a kept state is
// checked against.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Knobs {
    late: f64,
    read: f64,
    stub: f64,
    late_bytes: f64,
    join: f64,
    restart: f64,
    /// Heads named per step.
    names: usize,
}

const KNOBS: Knobs = Knobs {
    late: 0.25,
    read: 0.6,
    stub: 0.15,
    late_bytes: 0.3,
    join: 0.08,
    restart: 0.03,
    names: 6,
};

/// How many answers came from each path, and how many were checked against a pure resolution.
#[derive(Default, Debug)]
struct Tally {
    kept: usize,
    cached: usize,
    resolved: usize,
    current: usize,
    pure: usize,
    /// Members with more than one agreement key among the answers from kept states (rotations
    /// taking effect at some states and not others).
    rotated: usize,
}

/// A random history (review16's kind: k = 1..=3, proposals, approvals, revocations, removals,
/// promotions, demotions, rotations, an heirs' start with `heirs`) made at a shadow log `s`
/// (the makers' replica) and delivered to the log under test `a` late (orphans released in
/// bulk), with stubs (some bytes late, some joining later as ops: `join` resets the kept
/// states), restarts from `a`'s store. After every step, heads are named as key deliveries
/// name them: states `s` was at (a maker's heads, in any order, with repeats), states `a` was
/// at, random sets of held ops (ancestors and descendants together), stubs' ids, no heads. What
/// `a` reads at each (current roster, kept state, or full resolution then kept) must be what a
/// fresh log (its restart from its store, empty caches) reads there by a full resolution, and,
/// when no op is read through a stub, what a pure resolution of the past gives.
fn named_states_agree(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
    knobs: Knobs,
) -> Result<Tally, TestCaseError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (genesis, mut pool) = collective(seed ^ 0x1717, k, usize::from(k), 7 - usize::from(k));
    let mut s = MembershipLog::new(genesis.clone());
    let mut a = MembershipLog::new(genesis.clone());
    let mut store = Store::default();
    let mut ops: Vec<Op> = Vec::new();
    let mut stubbed: Vec<Op> = Vec::new();
    let mut stubs_left: Vec<Op> = Vec::new();
    let mut late: VecDeque<(usize, Late)> = VecDeque::new();
    let mut refused_at_a: Vec<Op> = Vec::new();
    let mut s_refused: Vec<Op> = Vec::new();
    let mut s_states: Vec<Vec<OpId>> = Vec::new();
    let mut a_states: Vec<Vec<OpId>> = Vec::new();
    // Heads named before, named again later (kept states are asked again after ops join).
    let mut named_before: Vec<Vec<OpId>> = Vec::new();
    let mut tally = Tally::default();
    let mut kept_keys: BTreeMap<MemberId, BTreeSet<[u8; 32]>> = BTreeMap::new();
    let kk = usize::from(k);

    for step in 0..len {
        while late.front().is_some_and(|(due, _)| *due <= step) {
            match late.pop_front().unwrap().1 {
                Late::Op(o) => give(&mut a, &o, &mut refused_at_a),
                Late::StubBytes(o) => {
                    a.add_stub(o);
                }
            }
        }
        if !stubs_left.is_empty() && rng.gen_bool(knobs.join) {
            let o = stubs_left.remove(rng.gen_range(0..stubs_left.len()));
            if a.is_stub(&o.id()) {
                ops.push(o.clone());
                give(&mut a, &o, &mut refused_at_a);
            } else {
                stubs_left.push(o);
            }
        }
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
            p
        } else if held.is_empty() || rng.gen_bool(0.7) {
            roster.heads().to_vec()
        } else {
            (0..rng.gen_range(1..=2))
                .map(|_| held[rng.gen_range(0..held.len())].id())
                .collect()
        };
        let mut parents = key_of(&parents);
        parents.truncate(MAX_PARENTS);
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
        // Ops six hours apart, and a rotation to a fresh agreement key (each member's first in a
        // day takes effect; concurrent ones in another order at another state).
        let at = NOW + 60 + step as u64 * 21_600;
        let action = match action {
            Action::RotateAgreementKey { .. } => Action::RotateAgreementKey {
                identity: pool[author].rotate_agreement(at, &mut rng),
            },
            other => other,
        };
        let o = dated(&genesis, &pool[author], &parents, action, at);
        let stub = !scripted_step(heirs, step, kk) && step >= 2 && rng.gen_bool(knobs.stub);
        if stub && a.may_author(&o.author()) {
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
        s_states.push(s.roster().heads().to_vec());
        if rng.gen_bool(knobs.read) {
            a_states.push(a.roster().heads().to_vec());
        }
        store.take(&mut a);
        if rng.gen_bool(knobs.restart) {
            let held: Vec<Op> = ops.iter().filter(|o| a.holds(&o.id())).cloned().collect();
            let stubs_before: Vec<Op> = stubbed
                .iter()
                .filter(|o| a.is_stub(&o.id()))
                .cloned()
                .collect();
            a = store.restart(&genesis, held);
            for o in stubs_before {
                if !a.is_stub(&o.id()) && !a.contains(&o.id()) {
                    a.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
                    a.add_stub(o);
                }
            }
            store.take(&mut a);
        }

        // Heads named now.
        let held_a: Vec<OpId> = a.ops().map(Op::id).collect();
        let mut named: Vec<Vec<OpId>> = Vec::new();
        for _ in 0..knobs.names {
            let mut heads: Vec<OpId> = match rng.gen_range(0..8) {
                0 | 1 if !s_states.is_empty() => s_states.choose(&mut rng).unwrap().clone(),
                2 if !a_states.is_empty() => a_states.choose(&mut rng).unwrap().clone(),
                3 if !named_before.is_empty() => named_before.choose(&mut rng).unwrap().clone(),
                4 => {
                    // The current heads with one of their ancestors or a stub's id.
                    let mut h = a.roster().heads().to_vec();
                    if let Some(x) = held_a.choose(&mut rng) {
                        h.push(*x);
                    }
                    if let Some(st) = stubbed.choose(&mut rng).filter(|_| rng.gen_bool(0.3)) {
                        h.push(st.id());
                    }
                    h
                }
                5 if rng.gen_bool(0.2) => Vec::new(),
                _ => {
                    let take = rng.gen_range(1..=4.min(held_a.len().max(1)));
                    held_a.choose_multiple(&mut rng, take).copied().collect()
                }
            };
            heads.shuffle(&mut rng);
            if let Some(first) = heads.first().copied().filter(|_| rng.gen_bool(0.3)) {
                heads.push(first);
            }
            named.push(heads);
        }
        // Also ask again, later, states named before (kept states after ops joined).
        let mut fresh: Option<MembershipLog> = None;
        for heads in &named {
            let read = delivery_reads(&mut a, heads);
            let fresh = fresh.get_or_insert_with(|| {
                let held: Vec<Op> = a.ops().cloned().collect();
                let f = store.restart(&genesis, held);
                // A stub kept only for orphans is not stored; it changes no roster at held heads.
                let _ = f.roster();
                f
            });
            let full = fresh.roster_at(heads).map(|r| facts(&*r));
            match &read {
                Some((Path::Kept, (members, _))) => {
                    tally.kept += 1;
                    for (m, key) in members {
                        kept_keys.entry(*m).or_default().insert(*key);
                    }
                }
                Some((Path::Resolved, _)) => tally.resolved += 1,
                Some((Path::Current, _)) => tally.current += 1,
                Some((Path::Cached, _)) => tally.cached += 1,
                None => {}
            }
            prop_assert_eq!(
                read.as_ref().map(|(_, f)| f),
                full.as_ref(),
                "step {}: heads {:?} read by {:?} differ from a fresh log's full resolution",
                step,
                heads,
                read.as_ref().map(|(p, _)| *p)
            );
            if !a.reads_any() {
                if let (Some((path, read)), Some(past)) = (&read, past_ops(&a, heads)) {
                    let pure = facts(&resolve(&genesis, &past));
                    tally.pure += 1;
                    prop_assert_eq!(
                        read,
                        &pure,
                        "step {}: heads {:?} by {:?}",
                        step,
                        heads,
                        path
                    );
                }
            }
            if read.is_some() && !named_before.contains(heads) {
                named_before.push(heads.clone());
            }
        }
        if named_before.len() > 64 {
            named_before.drain(..named_before.len() - 64);
        }
    }
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
    // Every state named before, asked once more at the end.
    let held: Vec<Op> = a.ops().cloned().collect();
    let mut fresh = store.restart(&genesis, held);
    for heads in &named_before {
        let read = delivery_reads(&mut a, heads).map(|(_, f)| f);
        let full = fresh.roster_at(heads).map(|r| facts(&*r));
        prop_assert_eq!(read, full, "at the end: heads {:?}", heads);
    }
    tally.rotated = kept_keys.values().filter(|keys| keys.len() > 1).count();
    Ok(tally)
}

proptest! {
    #![proptest_config(proptest_seed::config(48))]

    /// R17 exactness search. A random run: `PROPTEST_CASES=3000 PROPTEST_RNG_SEED=random
    /// cargo test --release -p lookout-protocol --test review17 r17_what_a_delivery`.
    #[test]
    fn r17_what_a_delivery_reads_is_a_fresh_logs_full_resolution(
        seed in any::<u64>(),
        len in 4usize..48,
        k in 1u8..=3,
        heirs in any::<bool>(),
    ) {
        named_states_agree(seed, len, k, heirs, KNOBS)?;
    }

    /// The same with no stub and no restart (so a pure resolution is checked at every answer),
    /// the roster always read and many ops late (orphans released in bulk).
    #[test]
    fn r17_what_a_delivery_reads_is_the_pure_resolution_without_stubs(
        seed in any::<u64>(),
        len in 4usize..48,
        k in 1u8..=3,
        heirs in any::<bool>(),
    ) {
        let knobs = Knobs { stub: 0.0, restart: 0.0, read: 1.0, late: 0.4, ..KNOBS };
        let tally = named_states_agree(seed, len, k, heirs, knobs)?;
        prop_assert!(tally.pure > 0);
    }
}

/// The property reaches the kept path (a test of the kept states must use them): over a fixed
/// set of seeds, answers come from kept states, from full resolutions and the current roster.
#[test]
fn r17_the_property_uses_kept_states() {
    let mut all = Tally::default();
    for seed in 0..12u64 {
        let t = named_states_agree(seed, 30, 1 + (seed % 3) as u8, seed % 2 == 0, KNOBS).unwrap();
        all.kept += t.kept;
        all.resolved += t.resolved;
        all.current += t.current;
        all.pure += t.pure;
        all.rotated += t.rotated;
    }
    eprintln!("{all:?}");
    assert!(all.kept > 100, "{all:?}");
    assert!(all.resolved > 100, "{all:?}");
    assert!(all.current > 10, "{all:?}");
    assert!(all.rotated > 5, "{all:?}");
}

// ---------------------------------------------------------------------------------------------
// Past the bounds: more than 256 states, named states kept against bases that are dropped.
// ---------------------------------------------------------------------------------------------

/// A long history at one log (k = 1, three founders: admissions, removals, rotations; most ops
/// naming every head, some an older op, so states have several heads), the roster read after
/// every op (one state each: far more than the 256 kept), and at every step two sets of heads
/// named (pairs of held ops: states the roster was never at unless one covers the other) and
/// two named before (kept against bases dropped since, or not). Each answer is the pure
/// resolution of its past; named states kept against a dropped base are not answered from it.
fn long_history(seed: u64, len: usize) -> (usize, usize, usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (genesis, mut pool) = collective(seed ^ 0x1718, 1, 3, 0);
    let mut log = MembershipLog::new(genesis.clone());
    let mut made: Vec<OpId> = Vec::new();
    let mut admitted: Vec<Identity> = Vec::new();
    let mut named: Vec<(usize, Vec<OpId>)> = Vec::new();
    let (mut kept, mut kept_old, mut resolved) = (0, 0, 0);
    let mut fresh_rng = ChaCha20Rng::seed_from_u64(seed ^ 0x1d);
    for step in 0..len {
        let heads = log.roster().heads().to_vec();
        let parents: Vec<OpId> = if made.len() > 4 && rng.gen_bool(0.2) {
            vec![made[rng.gen_range(made.len() - 4..made.len())]]
        } else {
            heads
        };
        let action = match rng.gen_range(0..10) {
            0..=5 => {
                let who = Identity::generate(&mut fresh_rng);
                let a = add(&who);
                admitted.push(who);
                a
            }
            6 | 7 if !admitted.is_empty() => Action::Remove {
                member: admitted[rng.gen_range(0..admitted.len())].member_id(),
                reason: names::reason(String::new()),
            },
            _ => Action::RotateAgreementKey {
                identity: pool[step % 3]
                    .rotate_agreement(NOW + step as u64 * 3_600, &mut fresh_rng),
            },
        };
        let author = &pool[step % 3];
        let o = dated(
            &genesis,
            author,
            &parents,
            action,
            NOW + step as u64 * 3_600,
        );
        made.push(o.id());
        assert!(matches!(log.insert(o), InsertOutcome::Added(_)));
        let _ = log.roster();
        let mut ask: Vec<Vec<OpId>> = (0..2)
            .map(|_| {
                let mut h: Vec<OpId> = made.choose_multiple(&mut rng, 2).copied().collect();
                h.shuffle(&mut rng);
                h
            })
            .collect();
        let before: Vec<Vec<OpId>> = named
            .choose_multiple(&mut rng, 2)
            .map(|(_, h)| h.clone())
            .collect();
        ask.extend(before);
        for heads in ask {
            let (path, read) = delivery_reads(&mut log, &heads).expect("held");
            let pure = facts(&resolve(&genesis, &past_ops(&log, &heads).unwrap()));
            assert_eq!(read, pure, "step {step}: heads {heads:?} by {path:?}");
            match path {
                Path::Kept => {
                    kept += 1;
                    // Named (resolved and kept) more than 256 states ago: its base is dropped.
                    if named
                        .iter()
                        .find(|(_, h)| key_of(h) == key_of(&heads))
                        .is_some_and(|(at, _)| step - at > 257)
                    {
                        kept_old += 1;
                    }
                }
                Path::Resolved => {
                    resolved += 1;
                    named.retain(|(_, h)| key_of(h) != key_of(&heads));
                    named.push((step, heads));
                }
                Path::Current | Path::Cached => {}
            }
        }
    }
    (kept, kept_old, resolved)
}

/// Past 256 states: exact answers, and a named state kept against a base 257 states back is no
/// longer answered from it (dropped with its base, `forget_oldest`).
#[test]
fn r17_named_states_past_the_bounds_are_exact_and_dropped_with_their_base() {
    let len = if cfg!(debug_assertions) { 300 } else { 700 };
    let (kept, kept_old, resolved) = long_history(17, len);
    eprintln!(
        "kept {kept}, kept 257+ states after they were named {kept_old}, resolved {resolved}"
    );
    assert!(kept > 50 && resolved > 100, "{kept} {resolved}");
    assert_eq!(kept_old, 0);
}

/// The same over more seeds and longer (release, by hand): `R17_SEEDS=30 cargo test --release
/// -p lookout-protocol --test review17 -- --ignored r17_long`.
#[test]
#[ignore = "search, run by hand (release)"]
fn r17_long_histories_search() {
    let seeds: u64 = std::env::var("R17_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for seed in 0..seeds {
        let (kept, kept_old, resolved) = long_history(1_000 + seed, 700);
        eprintln!("seed {seed}: kept {kept}, kept 257+ after {kept_old}, resolved {resolved}");
        assert_eq!(kept_old, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Memory: the bound counts entries, not the heads each state keeps.
// ---------------------------------------------------------------------------------------------

/// This process's resident set, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A collective (k = 2, two founders) that admitted one plain member, who then made `per` ops
/// on each of `days` days (her quota, 256 a day of the op's date since the day before the
/// founding: a collective `days` days old), each naming only her admission: rotations to the
/// key she has (no effect on anyone), each a head. The log holds them, roster read.
fn wide(days: u64, per: usize) -> (SignedGenesis, Vec<Identity>, MembershipLog, Vec<Op>) {
    let (genesis, pool) = collective(0x1719, 2, 2, 1);
    let mut log = MembershipLog::new(genesis.clone());
    let p = op(&genesis, &pool[0], &[], add(&pool[2]));
    let a = op(&genesis, &pool[1], &[p.id()], approve(&p));
    for o in [p, a.clone()] {
        assert!(matches!(log.insert(o), InsertOutcome::Added(_)));
    }
    assert!(log.roster().is_member(&pool[2].member_id()));
    let mut ops = Vec::new();
    for day in 0..days {
        for j in 0..per {
            let o = dated(
                &genesis,
                &pool[2],
                &[a.id()],
                Action::RotateAgreementKey {
                    identity: pool[2].public(),
                },
                NOW + day * 86_400 + 120 + j as u64,
            );
            assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
            ops.push(o);
        }
    }
    assert_eq!(log.roster().heads().len(), days as usize * per);
    (genesis, pool, log, ops)
}

/// R17-1. A named state whose difference from the newest is empty costs no entry, so the
/// 16,384-entry bound never applies to it; each is still kept with its own key and a copy of
/// the base's heads (all the heads of the newest state when it was resolved). With many heads
/// (here one plain member's 256 ops on each of 8 days, 2,048 heads, before honest ops merge
/// them, 31 per op) 256 deliveries, each naming one of her ops (a state the roster was never
/// at), make the log keep 256 copies of 2,048 heads: 16 MiB, for 0 entries.
/// The safe behaviour asserted: what the named states keep stays within what the bounds SECURITY
/// states allow (16,384 entries of at most 65 bytes, and 256 keys of at most the 64 heads a
/// delivery names: about 1.5 MiB). Run alone: RSS is the process's.
#[test]
#[ignore = "R17-1 (MEDIUM, fixed): failed on main 395e101, passes since; measurement, run alone: cargo test --release -p lookout-protocol --test review17 -- --ignored --nocapture --test-threads=1 r17_named"]
fn r17_named_states_with_no_entries_stay_within_the_stated_bound() {
    let (_, _, mut log, ops) = wide(8, 256);
    let heads = log.roster().heads().len();
    let before = rss_kb();
    let mut kept = 0;
    for o in ops.iter().skip(1).take(256) {
        let (path, _) = delivery_reads(&mut log, &[o.id()]).unwrap();
        assert_eq!(path, Path::Resolved);
        kept += 1;
    }
    let after = rss_kb();
    // Every one is still kept (none pushed out by the entry bound: their differences are empty).
    for o in ops.iter().skip(1).take(256) {
        assert!(log.membership_at(&[o.id()]).is_some());
    }
    let grown = after.saturating_sub(before);
    eprintln!(
        "R17-1: {kept} named states with empty differences against a state of {heads} heads: \
         RSS +{grown} kB (heads kept: {} ids, {} kB)",
        kept * heads,
        kept * heads * 32 / 1024
    );
    let stated = (16_384 * 65 + 256 * 64 * 32) / 1024;
    assert!(
        grown <= stated as u64,
        "named states hold {grown} kB, beyond the {stated} kB the stated bounds allow"
    );
}

/// R17-1, counted rather than measured (so it runs in CI): with one member's 2,048 heads, the
/// roster read after each of 64 honest ops (64 older states of about 2,000 heads each) and 256
/// deliveries each naming one of her ops (256 named states against states of 2,000 heads),
/// what the kept states hold stays within the bounds: 16,384 + 16,384 entries of differences,
/// and 16,384 ids of older states' heads + 16,384 of named keys, besides the newest state's
/// heads and the 4 last rebuilt keys. On main 395e101 each named state copied its base's heads
/// (256 × 2,048 ids) and older states' heads were not bounded (the RSS tests above measured
/// both); walking those structures as they were gives over 600,000 ids.
#[test]
fn r17_what_the_kept_states_hold_is_within_the_bounds() {
    let (genesis, pool, mut log, ops) = wide(8, 256);
    for i in 0..64u64 {
        let heads = log.roster().heads().to_vec();
        let writer: Vec<OpId> = heads.iter().take(2).copied().collect();
        let o = dated(
            &genesis,
            &pool[(i % 2) as usize],
            &writer,
            Action::RotateAgreementKey {
                identity: pool[(i % 2) as usize].public(),
            },
            NOW + 8 * 86_400 + i,
        );
        assert!(matches!(log.insert(o), InsertOutcome::Added(_)));
        let _ = log.roster();
    }
    let newest = log.roster().heads().len();
    assert!(newest > 1_900, "{newest} heads");
    for o in ops.iter().skip(1).take(256) {
        assert!(delivery_reads(&mut log, &[o.id()]).is_some());
    }
    let (entries, ids) = log.kept_states_footprint();
    eprintln!("R17-1 counted: {entries} entries, {ids} ids (newest state {newest} heads)");
    assert!(entries <= 2 * 16_384, "{entries} entries");
    assert!(
        ids <= 2 * 16_384 + newest + 4 * 64,
        "{ids} ids of heads and keys kept"
    );
    // The named states are still answered exactly (kept or resolved again): no stubs here,
    // so the pure resolution of each state's ops is the answer.
    for o in ops.iter().skip(1).take(256).step_by(17) {
        let (_, read) = delivery_reads(&mut log, &[o.id()]).expect("held");
        let pure = facts(&resolve(&genesis, &past_ops(&log, &[o.id()]).unwrap()));
        assert_eq!(read, pure);
    }
}

/// R17-1 through a replica (`State`, as a node runs it): the plain member's 2,048 ops (eight
/// days' quota) taken in by sync, then 256 key deliveries of hers, each a valid rotation to every
/// member at one of her ops (a state the roster was never at), all accepted. The replica keeps
/// 256 named states, each with a copy of the 2,048 heads: RSS grows by about 16 MiB, for deliveries
/// of a few kB each. Asserted as above: within what the stated bounds allow.
#[test]
#[ignore = "R17-1 (MEDIUM, fixed): failed on main 395e101, passes since; measurement, run alone: cargo test --release -p lookout-protocol --test review17 -- --ignored --nocapture --test-threads=1 r17_a_members"]
fn r17_a_members_deliveries_stay_within_the_stated_bound() {
    use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
    use lookout_protocol::replica::{Ingested, SetKind, State};
    let (genesis, pool, _, ops) = wide(8, 256);
    let now = NOW + 9 * 86_400;
    let me = &pool[0];
    let mut r = State::new(genesis.clone());
    let p = op(&genesis, &pool[0], &[], add(&pool[2]));
    let a = op(&genesis, &pool[1], &[p.id()], approve(&p));
    let mut all: Vec<&Op> = vec![&p, &a];
    all.extend(ops.iter());
    for chunk in all.chunks(256) {
        let bytes: Vec<&[u8]> = chunk.iter().map(|o| o.encoded()).collect();
        let (outcomes, _) = r.ingest_ops(&bytes, me, now);
        assert!(
            outcomes.iter().all(|o| *o == Ingested::Accepted),
            "{outcomes:?}"
        );
    }
    let heads = r.log().roster().heads().len();
    assert_eq!(heads, 2_048);
    let recipients: Vec<_> = pool.iter().take(3).map(Identity::public).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(0x171d);
    let deliveries: Vec<KeyDelivery> = ops
        .iter()
        .skip(1)
        .take(256)
        .map(|o| {
            let key = EpochKey::generate(&mut rng);
            KeyDelivery::create(
                &pool[2],
                genesis.id(),
                &key,
                DeliveryKind::Rotation,
                vec![o.id()],
                now - 60,
                &recipients,
                &mut rng,
            )
            .unwrap()
        })
        .collect();
    let bytes: usize = deliveries.iter().map(|d| d.encoded().len()).sum();
    let before = rss_kb();
    for d in &deliveries {
        let out = r.ingest(SetKind::Deliveries, d.encoded(), me, now).outcome;
        assert_eq!(out, Ingested::Accepted);
    }
    let grown = rss_kb().saturating_sub(before);
    eprintln!(
        "R17-1 (replica): 256 accepted deliveries ({bytes} bytes in all) naming one of {heads} \
         heads each: RSS +{grown} kB"
    );
    assert_within_the_stated_bound(grown, bytes);
}

/// The replica's growth `grown` (kB) is within what the stated bounds allow, the `held` bytes
/// of the deliveries themselves besides (what any delivery costs).
fn assert_within_the_stated_bound(grown: u64, held: usize) {
    let stated = (16_384 * 65 + 256 * 64 * 32 + held) / 1024;
    assert!(
        grown <= stated as u64,
        "the replica holds {grown} kB more, beyond the {stated} kB the stated bounds allow \
         (with the deliveries held)"
    );
}

/// R17-1, the keys: a delivery's heads are read through ops refused over the quota
/// (`effective_heads`), so the key a named state is kept under can be far longer than the 64
/// heads a delivery names. The same plain member, her days full, sends 64 more ops (refused over
/// the quota here, remembered with the parents they name: 32 of her held ops each), then 256
/// deliveries each naming 62 of those 64 refused ops (a different pair left out each time): each
/// is read at 1,984 of her ops, resolved in full (as before the change) and kept under a key of
/// 1,984 ids, beside its copy of the 2,048 base heads. Asserted as above.
#[test]
#[ignore = "R17-1 (MEDIUM, fixed): failed on main 395e101, passes since; measurement, run alone: cargo test --release -p lookout-protocol --test review17 -- --ignored --nocapture --test-threads=1 r17_keys"]
fn r17_keys_read_through_refused_ops_stay_within_the_stated_bound() {
    use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
    use lookout_protocol::replica::{Ingested, Refusal, SetKind, State};
    let (genesis, pool, _, ops) = wide(8, 256);
    let now = NOW + 9 * 86_400;
    let me = &pool[0];
    let mut r = State::new(genesis.clone());
    let p = op(&genesis, &pool[0], &[], add(&pool[2]));
    let a = op(&genesis, &pool[1], &[p.id()], approve(&p));
    let mut all: Vec<&Op> = vec![&p, &a];
    all.extend(ops.iter());
    for chunk in all.chunks(256) {
        let bytes: Vec<&[u8]> = chunk.iter().map(|o| o.encoded()).collect();
        let (outcomes, _) = r.ingest_ops(&bytes, me, now);
        assert!(outcomes.iter().all(|o| *o == Ingested::Accepted));
    }
    // 64 ops of hers over the quota (day 0 is full), each naming 32 of her held ops.
    let refused: Vec<Op> = (0..64)
        .map(|j| {
            let parents: Vec<OpId> = ops[32 * j..32 * j + 32].iter().map(Op::id).collect();
            dated(
                &genesis,
                &pool[2],
                &parents,
                Action::RotateAgreementKey {
                    identity: pool[2].public(),
                },
                NOW + 1_000 + j as u64,
            )
        })
        .collect();
    for o in &refused {
        let out = r.ingest(SetKind::Ops, o.encoded(), me, now).outcome;
        assert_eq!(out, Ingested::Ignored(Refusal::OpQuota));
    }
    let recipients: Vec<_> = pool.iter().take(3).map(Identity::public).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(0x171f);
    let pairs: Vec<(usize, usize)> = (0..64)
        .flat_map(|x| (x + 1..64).map(move |y| (x, y)))
        .take(256)
        .collect();
    let deliveries: Vec<KeyDelivery> = pairs
        .iter()
        .map(|(x, y)| {
            let heads: Vec<OpId> = (0..64)
                .filter(|t| t != x && t != y)
                .map(|t| refused[t].id())
                .collect();
            KeyDelivery::create(
                &pool[2],
                genesis.id(),
                &EpochKey::generate(&mut rng),
                DeliveryKind::Rotation,
                heads,
                now - 60,
                &recipients,
                &mut rng,
            )
            .unwrap()
        })
        .collect();
    // The first 16 fill `roster_at`'s cache and reach a resolution's peak: measured after them.
    let mut accepted = 0;
    let mut before = 0;
    for (i, d) in deliveries.iter().enumerate() {
        if i == 16 {
            before = rss_kb();
        }
        let out = r.ingest(SetKind::Deliveries, d.encoded(), me, now).outcome;
        accepted += usize::from(out == Ingested::Accepted);
    }
    let grown = rss_kb().saturating_sub(before);
    eprintln!(
        "R17-1 (keys): 256 deliveries naming 62 refused ops each ({accepted} accepted), read at \
         1,984 held ops each: RSS +{grown} kB over the last 240"
    );
    let held: usize = deliveries[16..].iter().map(|d| d.encoded().len()).sum();
    assert_within_the_stated_bound(grown, held);
}

/// R17-1, the older states (kept since the sim1k change, before the named ones): each state the
/// roster was resolved at keeps its heads; 256 of them with 1,792 heads each cost 14 MiB, with no
/// entry (her ops change nobody's membership). Measured, not asserted (the same bound as above):
/// run once as below and once with `R17_NO_STATES=1`, and compare the final RSS.
#[test]
#[ignore = "R17-1 measurement, run alone: cargo test --release -p lookout-protocol --test review17 -- --ignored --nocapture --test-threads=1 r17_older"]
fn r17_older_states_keep_their_heads() {
    // Freed heap is reused, so growth within one process undercounts: compare the final RSS of
    // two runs, with and without the roster read after each op (R17_NO_STATES=1).
    let states = std::env::var_os("R17_NO_STATES").is_none();
    let (genesis, pool, mut log, _) = wide(7, 256);
    let mut last = log.roster().heads()[0];
    for i in 0..256u64 {
        let o = dated(
            &genesis,
            &pool[2],
            &[last],
            Action::RotateAgreementKey {
                identity: pool[2].public(),
            },
            NOW + 7 * 86_400 + 120 + i,
        );
        last = o.id();
        assert!(matches!(log.insert(o), InsertOutcome::Added(_)));
        if states {
            let _ = log.roster();
        }
    }
    let heads = log.roster().heads().len();
    eprintln!(
        "R17-1 (older): roster read after each op {states}: 256 states of {heads} heads; final \
         RSS {} kB (their heads: {} kB)",
        rss_kb(),
        256 * heads * 32 / 1024
    );
}

// ---------------------------------------------------------------------------------------------
// Cost: a kept state is rebuilt per delivery (clone of the newest, differences applied).
// ---------------------------------------------------------------------------------------------

/// R17-3 (measurement). 1,000 members (four founders' admissions, k = 1), then 256 more ops
/// (rotations and removals: a state each), and deliveries alternating between two named states
/// (so `last` never answers): each rebuilds the newest membership and applies the differences
/// back to its base, where before the change the same two states were answered from
/// `roster_at`'s cache (an `Arc` clone). Printed beside a full resolution at such heads.
#[test]
#[ignore = "R17-3 measurement, run alone: cargo test --release -p lookout-protocol --test review17 -- --ignored --nocapture --test-threads=1 r17_cost"]
fn r17_cost_of_a_kept_state_per_delivery() {
    let (genesis, mut pool) = collective(0x171b, 1, 4, 0);
    let mut rng = ChaCha20Rng::seed_from_u64(0x171c);
    let mut log = MembershipLog::new(genesis.clone());
    let mut admitted = Vec::new();
    let mut made = Vec::new();
    for i in 0..1_000 {
        let who = Identity::generate(&mut rng);
        let heads = log.roster().heads().to_vec();
        let o = dated(&genesis, &pool[i % 4], &heads, add(&who), NOW + i as u64);
        assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
        made.push(o.id());
        admitted.push(who);
    }
    let _ = log.roster();
    // Two named states (pairs of ops from early on: the roster was at neither pair).
    let first = vec![made[10], made[500]];
    let second = vec![made[11], made[600]];
    let _ = delivery_reads(&mut log, &first).unwrap();
    let _ = delivery_reads(&mut log, &second).unwrap();
    for i in 0..256u64 {
        let heads = log.roster().heads().to_vec();
        let at = NOW + 86_400 + i * 86_400 / 64;
        let m = (i % 4) as usize;
        let action = if i % 2 == 0 {
            Action::Remove {
                member: admitted[i as usize].member_id(),
                reason: names::reason(String::new()),
            }
        } else {
            Action::RotateAgreementKey {
                identity: pool[m].rotate_agreement(at, &mut rng),
            }
        };
        let o = dated(&genesis, &pool[m], &heads, action, at);
        assert!(matches!(log.insert(o), InsertOutcome::Added(_)));
        let _ = log.roster();
    }
    let third = vec![made[12], made[700]];
    let fourth = vec![made[13], made[800]];
    let _ = delivery_reads(&mut log, &third).unwrap();
    let _ = delivery_reads(&mut log, &fourth).unwrap();
    let n = 2_000;
    let t = std::time::Instant::now();
    for i in 0..n {
        let heads = if i % 2 == 0 { &third } else { &fourth };
        let (path, _) = delivery_reads(&mut log, heads).unwrap();
        assert!(matches!(path, Path::Kept | Path::Cached), "{path:?}");
    }
    let kept = t.elapsed() / n;
    let t = std::time::Instant::now();
    for i in 0..n {
        let heads = if i % 2 == 0 { &third } else { &fourth };
        let _ = log.roster_at(heads).unwrap();
    }
    let cached = t.elapsed() / n;
    let fresh_heads: Vec<Vec<OpId>> = (0..20).map(|i| vec![made[20 + i], made[900 + i]]).collect();
    let t = std::time::Instant::now();
    for heads in &fresh_heads {
        let (path, _) = delivery_reads(&mut log, heads).unwrap();
        assert_eq!(path, Path::Resolved);
    }
    let full = t.elapsed() / 20;
    eprintln!(
        "R17-3: 1,000 members, 256 states since: a kept named state per delivery {kept:?}, \
         roster_at cache hit {cached:?}, full resolution and keep {full:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The API: `keep_membership_at` trusted the roster it was given (R17-6, fixed: it takes none).
// ---------------------------------------------------------------------------------------------

/// R17-6. `MembershipLog::keep_membership_at(heads, roster)` was public and kept what it was
/// given for `heads`, without checking that `roster` was the roster there: a caller (the node
/// crate, a future app) passing the current roster, or one at other heads, made every later
/// delivery naming `heads` be judged against it (this test, with the roster argument, failed on
/// main 395e101). It now takes only the heads and keeps the roster there. The safe behaviour
/// asserted: what is kept at `heads` is the roster there, whatever the log's current roster.
#[test]
fn r17_a_state_kept_is_the_roster_at_its_heads_whatever_the_caller_passes() {
    let (genesis, pool) = collective(0x171e, 1, 2, 2);
    let mut log = MembershipLog::new(genesis.clone());
    let p = op(&genesis, &pool[0], &[], add(&pool[2]));
    let q = op(&genesis, &pool[1], &[], add(&pool[3]));
    for o in [&p, &q] {
        assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
    }
    let _ = log.roster();
    // The state at p alone (the roster was never there: p and q came in one after the other,
    // q not naming p, so the roster was at {p} only if read between: it was not).
    let current = facts(log.roster());
    log.keep_membership_at(&[p.id()]);
    let kept = log.membership_at(&[p.id()]).map(|m| facts(&*m));
    let mut fresh = MembershipLog::new(genesis.clone());
    fresh.insert(p.clone());
    let at = fresh.roster_at(&[p.id()]).map(|r| facts(&*r));
    assert!(kept.is_some());
    assert_eq!(kept, at);
    assert_ne!(kept, Some(current));
}
