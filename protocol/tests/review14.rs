//! Review 14: attacks on branch `relook` at f37c99c (look-ups of ops naming every head read
//! from the resolution they were appended to, `MembershipLog::look_up_appended`; that resolution
//! forced first by `may_be_looked_up`). Each test asserts the safe behaviour; those that fail on
//! `relook` are left failing (findings in `/work/wt/REVIEW14.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authors_world;
mod names;

use authors_world::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::replica::{Ingested, State};
use lookout_protocol::OpId;

/// `n` admissions by `by`, chained after `head`, 100 a day from `NOW + 60` (within the quota).
fn admissions(genesis: &SignedGenesis, by: &Identity, keys: &[Identity], head: OpId) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::new();
    let mut last = head;
    for (i, who) in keys.iter().enumerate() {
        let at = NOW + 60 + 86_400 * (i as u64 / 100);
        let o = dated(genesis, by, &[last], add(who), at);
        last = o.id();
        out.push(o);
    }
    out
}

/// The states (sorted heads) a log passes through while `batch` joins after `before` (the heads
/// before it), each op of the batch naming an old op (so a new head each).
fn states_between(before: &[OpId], batch: &[Op]) -> Vec<Vec<OpId>> {
    let mut heads: Vec<OpId> = before.to_vec();
    let mut out = Vec::new();
    for o in batch {
        heads.retain(|h| !o.parents().contains(h));
        heads.push(o.id());
        heads.sort();
        out.push(heads.clone());
    }
    out
}

/// R14-1. k = 1 (the default policy). The founder has admitted 300 members (a linear history);
/// one plain member signs 40 proposals of fresh keys, each naming her own admission (an old
/// op: a new head each). Every replica keeps them (she may author); a sync hands them over as
/// one batch, which a replica takes in without reading its roster in between ("the roster is
/// resolved lazily, once per batch", `State::accept_op`). `may_be_looked_up` is true for every
/// `ProposeAdd` of a key that may not author in a k = 1 collective, ripe key or not, so each
/// one forces a resolution of *every op held* (`self.roster()`) before it joins, then is not
/// appended (it names an old op), which throws that resolution away; its look-up then resolves
/// its own (small) past as before. On main the batch resolves no roster of all ops (once, when
/// read after it). Probe: each resolution of the whole log is recorded in the log's past states
/// (`membership_at` answers for exactly the heads it was resolved at). Safe: none of the states
/// between the batch's ops was resolved.
#[test]
fn r14_a_members_batch_of_proposals_naming_an_old_op_resolves_no_roster_of_all_ops_per_op() {
    let (genesis, pool) = collective(1401, 1, 1, 360);
    let (f, m) = (&pool[0], &pool[1]);
    let admit_m = op(&genesis, f, &[], add(m));
    let history = admissions(&genesis, f, &pool[2..302], admit_m.id());
    let mut log = MembershipLog::new(genesis.clone());
    assert!(matches!(
        log.insert(admit_m.clone()),
        InsertOutcome::Added(_)
    ));
    for o in &history {
        assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
    }
    let before = log.roster().heads().to_vec();
    let junk: Vec<Op> = pool[302..342]
        .iter()
        .map(|j| op(&genesis, m, &[admit_m.id()], add(j)))
        .collect();
    // As a sync batch is taken in: one insert after another, the roster read after the batch.
    for o in &junk {
        assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
    }
    let states = states_between(&before, &junk);
    // The last state is the one read after the batch (below): not counted.
    let resolved = states[..states.len() - 1]
        .iter()
        .filter(|heads| log.membership_at(heads).is_some())
        .count();
    assert_eq!(log.roster().heads(), states.last().unwrap().as_slice());
    assert_eq!(
        resolved,
        0,
        "{resolved} of the batch's {} ops each forced a resolution of all {} ops held",
        junk.len(),
        log.len()
    );
}

/// R14-2. The same cost for an honest collective, no ripe key anywhere: k = 1, two founding
/// moderators each admitting members on their own branch (each names her own last op; a merge
/// naming both every 20 admissions), as two moderators enrolling a drop-in session on two phones
/// do. A new member's first sync takes the history in as one batch (`State::ingest_ops`,
/// parents first, no roster read in between). Every admission by a moderator makes its key an
/// author at once (`Authors`: k = 1 proposer), so no look-up is ever made; yet each `ProposeAdd`
/// of a key not yet an author forces a resolution of all ops held first, and an op on one
/// branch never names the other's head, so is not appended and throws it away. Safe: the
/// batch resolves no roster of all ops per op (main resolves none until the roster is read).
#[test]
fn r14_an_honest_first_sync_of_two_moderators_branches_resolves_no_roster_per_op() {
    let (genesis, pool) = collective(1402, 1, 2, 80);
    let ops = two_branches(&genesis, &pool[0], &pool[1], &pool[2..82], 20);
    let bytes: Vec<&[u8]> = ops.iter().map(|o| o.encoded()).collect();
    let me = &pool[81];
    let mut state = State::new(genesis.clone());
    let (outcomes, _) = state.ingest_ops(&bytes, me, NOW + 86_400 * 3);
    assert!(
        outcomes.iter().all(|o| *o == Ingested::Accepted),
        "{outcomes:?}"
    );
    // Every state the log passed through (heads after each op, in the order taken: the batch
    // is already parents first), but the last, which is read below.
    let mut log = state.log().clone();
    let states = states_of(&ops);
    let resolved = states[..states.len() - 1]
        .iter()
        .filter(|heads| log.membership_at(heads).is_some())
        .count();
    assert_eq!(log.roster().heads(), states.last().unwrap().as_slice());
    assert_eq!(
        resolved,
        0,
        "{resolved} of {} ops forced a resolution of all ops held (no key ripe, no look-up)",
        ops.len()
    );
}

/// Two moderators `a` and `b` admitting `keys` alternately, each naming her own last op (and,
/// every `merge` admissions, both heads).
fn two_branches(
    genesis: &SignedGenesis,
    a: &Identity,
    b: &Identity,
    keys: &[Identity],
    merge: usize,
) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::new();
    let mut last: [Option<OpId>; 2] = [None, None];
    for (i, who) in keys.iter().enumerate() {
        let side = i % 2;
        let by = if side == 0 { a } else { b };
        let parents: Vec<OpId> = if i % merge == merge - 1 {
            last.iter().flatten().copied().collect()
        } else {
            last[side].into_iter().collect()
        };
        let at = NOW + 60 + 86_400 * (i as u64 / 200);
        let o = dated(genesis, by, &sorted(parents), add(who), at);
        last[side] = Some(o.id());
        out.push(o);
    }
    out
}

fn sorted(mut ids: Vec<OpId>) -> Vec<OpId> {
    ids.sort();
    ids.dedup();
    ids
}

/// The heads after each op of `ops` (taken in this order, parents first).
fn states_of(ops: &[Op]) -> Vec<Vec<OpId>> {
    states_between(&[], ops)
}

/// R14-1 and R14-2 measured, as a node takes a sync batch (`State::ingest_ops`, then the roster
/// read once). Measurement only:
/// `cargo test --release -p lookout-protocol --test review14 -- --ignored --nocapture r14_measure`.
#[test]
#[ignore = "measurement, run by hand (R14-1, R14-2)"]
fn r14_measure_batches_not_naming_every_head() {
    for n in [1_000usize, 2_000, 4_000] {
        // R14-1: n admissions by the founder (taken first), then one plain member's batch of
        // 256 proposals (a day's quota) naming her own admission.
        let (genesis, pool) = collective(1403, 1, 1, n + 258);
        let (f, m) = (&pool[0], &pool[1]);
        let admit_m = op(&genesis, f, &[], add(m));
        let mut history = vec![admit_m.clone()];
        history.extend(admissions(&genesis, f, &pool[2..2 + n], admit_m.id()));
        let me = &pool[n + 2];
        let now = NOW + 86_400 * (n as u64 / 100 + 2);
        let mut state = State::new(genesis.clone());
        let bytes: Vec<&[u8]> = history.iter().map(|o| o.encoded()).collect();
        let _ = state.ingest_ops(&bytes, me, now);
        let _ = state.log().roster();
        let junk: Vec<Op> = pool[2 + n..2 + n + 256]
            .iter()
            .map(|j| op(&genesis, m, &[admit_m.id()], add(j)))
            .collect();
        let bytes: Vec<&[u8]> = junk.iter().map(|o| o.encoded()).collect();
        let started = std::time::Instant::now();
        let (outcomes, _) = state.ingest_ops(&bytes, me, now);
        let _ = state.log().roster();
        let took = started.elapsed();
        assert!(outcomes.iter().all(|o| *o == Ingested::Accepted));
        println!(
            "R14-1 k = 1, {} ops held, one plain member's batch of 256 proposals naming an old op: {took:?}",
            history.len()
        );
        // R14-2: the same number of admissions by two moderators on two branches (a merge every
        // 20), a new member's first sync in one batch.
        let (genesis, pool) = collective(1404, 1, 2, n + 1);
        let ops = two_branches(&genesis, &pool[0], &pool[1], &pool[2..2 + n - 1], 20);
        let bytes: Vec<&[u8]> = ops.iter().map(|o| o.encoded()).collect();
        let mut state = State::new(genesis.clone());
        let started = std::time::Instant::now();
        let (outcomes, _) = state.ingest_ops(&bytes, &pool[n + 2], now);
        let _ = state.log().roster();
        let took = started.elapsed();
        assert!(outcomes.iter().all(|o| *o == Ingested::Accepted));
        println!(
            "R14-2 k = 1, first sync of {} admissions on two moderators' branches: {took:?}",
            ops.len()
        );
    }
}
