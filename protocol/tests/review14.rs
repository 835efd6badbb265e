//! Review 14: attacks on branch `relook` at f37c99c (look-ups of ops naming every head read
//! from the resolution they were appended to, `MembershipLog::look_up_appended`; that resolution
//! forced first by `may_be_looked_up`). Each test asserts the safe behaviour; those that fail on
//! `relook` are left failing (findings in `/work/wt/REVIEW14.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authors_world;
mod names;
mod offer;
mod proptest_seed;

use authors_world::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::replica::{Ingested, SetKind, State};
use lookout_protocol::{MemberId, OpId};
use offer::offer;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeMap;

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
    let resolved = resolved_before_the_last(&mut log, &states);
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
    assert!(
        log.take_look_ups().is_empty(),
        "no op was looked up: no key was ever ripe"
    );
    let states = states_of(&ops);
    let resolved = resolved_before_the_last(&mut log, &states);
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

fn now_for(n: usize) -> u64 {
    NOW + 86_400 * (n as u64 / 100 + 2)
}

fn sorted(mut ids: Vec<OpId>) -> Vec<OpId> {
    ids.sort();
    ids.dedup();
    ids
}

/// How many of `states` but the last (the one read after the batch) `log` resolved on the way,
/// the last being its roster's heads now.
fn resolved_before_the_last(log: &mut MembershipLog, states: &[Vec<OpId>]) -> usize {
    let resolved = states[..states.len() - 1]
        .iter()
        .filter(|heads| log.membership_at(heads).is_some())
        .count();
    assert_eq!(log.roster().heads(), states.last().unwrap().as_slice());
    resolved
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
        // As the node takes a sync response (`ingest_all`): one `State::ingest` per op, the
        // roster read once after the response (`after_change`).
        let mut state = State::new(genesis.clone());
        let started = std::time::Instant::now();
        for b in &bytes {
            let step = state.ingest(SetKind::Ops, b, &pool[n + 2], now);
            assert_eq!(step.outcome, Ingested::Accepted);
        }
        let _ = state.log().roster();
        let one_by_one = started.elapsed();
        println!(
            "R14-2 k = 1, first sync of {} admissions on two moderators' branches: {took:?} \
             (ingest_ops), {one_by_one:?} (one State::ingest each)",
            ops.len()
        );
    }
    // R14-3: n honest admissions (roster read after each op) after R13-2's junk pair and m2's
    // full day, with and without her one op over the quota read through.
    for n in [400usize, 800] {
        for over_quota in [false, true] {
            let (resolved, took) = approvals_after_a_junk_pair(over_quota, n);
            println!(
                "R14-3 k = 2, {n} honest admissions after 262 ops, one stub read through \
                 {over_quota}: {took:?}, {resolved} pasts resolved"
            );
        }
    }
}

/// A random history made op by op against a log `a` that reads its roster after every insert
/// (so every op naming every head is appended and looked up in that resolution): k = 1..=2,
/// seven keys, proposals and approvals by anyone (plain members' make keys ripe), revocations
/// and removals of anyone (heirs), promotions and demotions, ops naming the current heads most
/// of the time and a stale view otherwise. Returns the genesis, the keys, every op made (kept
/// or not) and the log `a` (refused ops offered again, roster read after each, until nothing
/// more joins).
fn history(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
) -> (SignedGenesis, Vec<Identity>, Vec<Op>, MembershipLog) {
    let (genesis, pool, ops, _, a) = history_with(seed, len, k, heirs, false);
    (genesis, pool, ops, a)
}

/// [`history`], and with `stubs` some ops made stubs at `a` (refused over the quota there, as a
/// replica where their authors' days are full would; kept once an op names them) and some later
/// ops naming a stub besides the heads (read through it): from then on `a` looks ops up in the
/// look-ups' view (R14-3). Returns the stubs too, apart from the ops. Without `stubs` the
/// random draws are [`history`]'s.
fn history_with(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
    stubs: bool,
) -> (
    SignedGenesis,
    Vec<Identity>,
    Vec<Op>,
    Vec<Op>,
    MembershipLog,
) {
    let mut stubbed: Vec<Op> = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (genesis, pool) = collective(seed ^ 0x1414, k, usize::from(k), 7 - usize::from(k));
    let mut a = MembershipLog::new(genesis.clone());
    let mut ops: Vec<Op> = Vec::new();
    let mut refused: Vec<Op> = Vec::new();
    for step in 0..len {
        let roster = a.roster().clone();
        let held: Vec<Op> = a.ops().cloned().collect();
        let authors: Vec<usize> = (0..pool.len())
            .filter(|i| a.may_author(&pool[*i].member_id()))
            .collect();
        let author = if rng.gen_bool(0.9) {
            *authors.choose(&mut rng).unwrap()
        } else {
            rng.gen_range(0..pool.len())
        };
        let parents: Vec<OpId> = if stubs && !stubbed.is_empty() && rng.gen_bool(0.3) {
            let mut p = roster.heads().to_vec();
            p.push(stubbed[rng.gen_range(0..stubbed.len())].id());
            sorted(p)
        } else if held.is_empty() || rng.gen_bool(0.7) {
            roster.heads().to_vec()
        } else {
            sorted(
                (0..rng.gen_range(1..=2))
                    .map(|_| held[rng.gen_range(0..held.len())].id())
                    .collect(),
            )
        };
        let target = &pool[rng.gen_range(0..pool.len())];
        let proposals: Vec<OpId> = held
            .iter()
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
        // With `heirs`, a scripted start: the first founder proposes two keys, the others
        // approve them, then every founder's self-revocation: heirs (promoted in the replay,
        // not in Authors) then admit keys that only look-ups find.
        let kk = usize::from(k);
        let script = heirs && step < 2 + 2 * (kk - 1) + kk;
        let (author, parents) = if script {
            (0, roster.heads().to_vec())
        } else {
            (author, parents)
        };
        let pending: Vec<OpId> = held
            .iter()
            .filter(|o| matches!(o.body().action, Action::ProposeAdd { .. }))
            .map(Op::id)
            .collect();
        let (author, scripted) = match step {
            _ if !script => (author, None),
            0 | 1 => (0, Some(add(&pool[kk + step]))),
            s if s < 2 + 2 * (kk - 1) => {
                let (approver, which) = (1 + (s - 2) / 2, (s - 2) % 2);
                (
                    approver,
                    pending.get(which).map(|p| Action::Approve { proposal: *p }),
                )
            }
            s => {
                let founder = s - 2 - 2 * (kk - 1);
                (
                    founder,
                    Some(Action::PublishRevocation {
                        certificate: RevocationCertificate::create(&pool[founder], NOW),
                    }),
                )
            }
        };
        let action = random_action(&mut rng, scripted, target, &proposals, &pool[author]);
        let o = dated(
            &genesis,
            &pool[author],
            &parents,
            action,
            NOW + 60 + step as u64,
        );
        // Only an op whose author may author here is refused over the quota (a replica asks
        // `NeverAMember` first: Review 16's R16-4).
        if stubs
            && !script
            && step >= 2
            && rng.gen_bool(0.15)
            && a.may_author(&pool[author].member_id())
        {
            a.refuse_over_quota(o.id(), o.parents(), o.body().action.admits());
            a.add_stub(o.clone());
            let _ = a.roster();
            stubbed.push(o);
            continue;
        }
        ops.push(o.clone());
        match a.insert(o.clone()) {
            InsertOutcome::Added(_) => {
                let _ = a.roster();
                // Refused ops offered again (sync), each insert followed by a roster read.
                loop {
                    let before = refused.len();
                    refused.retain(|r| {
                        let out = a.insert(r.clone());
                        let _ = a.roster();
                        matches!(out, InsertOutcome::Refused(_))
                    });
                    if refused.len() == before {
                        break;
                    }
                }
            }
            InsertOutcome::Refused(_) => refused.push(o),
            _ => {}
        }
    }
    (genesis, pool, ops, stubbed, a)
}

/// The log that appended (and looked ops up in the resolution it appended them to) keeps the
/// same ops and lets the same keys author as logs that never read their roster between ops
/// (offered in the order made, or shuffled) and a fresh log given them all at once (a restart
/// without stored look-ups: every look-up a resolution of the op's past); and every key known
/// in the roster of some held look-up op's own past (a proposal: its own key) may author there.
fn appended_look_ups_agree(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
    order: u64,
) -> Result<(), TestCaseError> {
    agree(seed, len, k, heirs, order, true, false)
}

/// [`appended_look_ups_agree`], the restart left out if `restart` is false (to search past
/// R14-5 for other differences).
///
/// With `stubs` ([`history_with`]), every other log is given `a`'s stubs first, as refused over
/// the quota there too: the same ops held, the same stubs.
fn agree(
    seed: u64,
    len: usize,
    k: u8,
    heirs: bool,
    order: u64,
    restart: bool,
    stubs: bool,
) -> Result<(), TestCaseError> {
    let (genesis, pool, ops, stubbed, mut a) = history_with(seed, len, k, heirs, stubs);
    let fresh = || {
        let mut log = MembershipLog::new(genesis.clone());
        for s in &stubbed {
            log.refuse_over_quota(s.id(), s.parents(), s.body().action.admits());
            log.add_stub(s.clone());
        }
        log
    };
    // A restart of `a`: the stubs, readings and look-ups it stored (those read from appended
    // resolutions among them) read back, then the ops it holds.
    let mut restarted = MembershipLog::new(genesis.clone());
    for s in a.take_new_stubs() {
        restarted.restore_stub(s);
    }
    restarted.restore_readings(a.take_readings());
    restarted.restore_look_ups(a.take_look_ups());
    restarted.extend(a.ops().cloned().collect::<Vec<_>>());
    restarted.restored();
    let mut b = fresh();
    offer(&mut b, &ops);
    let mut c = fresh();
    c.extend(ops.iter().cloned());
    let mut shuffled = ops.clone();
    shuffled.shuffle(&mut ChaCha20Rng::seed_from_u64(order));
    let mut d = fresh();
    offer(&mut d, &shuffled);
    let mut logs = vec![("in order", &b), ("all at once", &c), ("shuffled", &d)];
    if restart {
        logs.push(("restarted", &restarted));
    }
    for (name, other) in logs {
        prop_assert_eq!(held(&a), held(other), "appending log vs {}: ops kept", name);
        prop_assert_eq!(
            authors_of(&a, &pool),
            authors_of(other, &pool),
            "appending log vs {}: authors",
            name
        );
        prop_assert_eq!(
            a.roster(),
            other.roster(),
            "appending log vs {}: roster",
            name
        );
    }
    // Each look-up's past holds its stubs as ops.
    let by_id: BTreeMap<OpId, Op> = a
        .ops()
        .chain(&stubbed)
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
    Ok(())
}

proptest! {
    #![proptest_config(proptest_seed::config(32))]

    /// R14 convergence check of the append look-up (passes on f37c99c for the fixed seed; a long
    /// random run: `PROPTEST_CASES=2000 PROPTEST_RNG_SEED=random cargo test --release ...`).
    #[test]
    fn r14_appended_look_ups_agree_with_logs_that_resolve_each_past(
        seed in any::<u64>(),
        len in 6usize..40,
        k in 1u8..=2,
        heirs in any::<bool>(),
        order in any::<u64>(),
    ) {
        appended_look_ups_agree(seed, len, k, heirs, order)?;
    }

    /// The same without the restart (R14-5 left out, to find other differences), longer
    /// histories and k up to 3: a search run by hand (release), e.g.
    /// `PROPTEST_CASES=3000 PROPTEST_RNG_SEED=random cargo test --release -p lookout-protocol
    /// --test review14 -- --ignored r14_long`.
    #[test]
    #[ignore = "search, run by hand"]
    fn r14_long_appended_look_ups_agree(
        seed in any::<u64>(),
        len in 40usize..90,
        k in 1u8..=3,
        heirs in any::<bool>(),
        order in any::<u64>(),
    ) {
        agree(seed, len, k, heirs, order, false, false)?;
    }

    /// [`appended_look_ups_agree`] with some ops stubs and read through (R14-3's look-ups'
    /// view): a search by hand as above, `... --ignored r14_stubbed_long`.
    #[test]
    fn r14_look_ups_in_the_view_agree_with_logs_that_resolve_each_past(
        seed in any::<u64>(),
        len in 6usize..40,
        k in 1u8..=2,
        heirs in any::<bool>(),
        order in any::<u64>(),
    ) {
        agree(seed, len, k, heirs, order, true, true)?;
    }

    #[test]
    #[ignore = "search, run by hand"]
    fn r14_stubbed_long_look_ups_agree(
        seed in any::<u64>(),
        len in 40usize..90,
        k in 1u8..=3,
        heirs in any::<bool>(),
        order in any::<u64>(),
    ) {
        agree(seed, len, k, heirs, order, true, true)?;
    }
}

#[test]
#[ignore = "stats of the generator, by hand"]
fn r14_generator_stats() {
    let (mut look_ups, mut admitting, mut appended_only) = (0, 0, 0);
    for seed in 0..200u64 {
        let (_, _, _, mut a) = history(seed, 30, 1 + (seed % 2) as u8, seed % 4 < 2);
        let l = a.take_look_ups();
        look_ups += l.len();
        admitting += l.iter().filter(|(_, k)| !k.is_empty()).count();
        appended_only += l.len() as u64 - a.past_resolutions().min(l.len() as u64);
    }
    println!(
        "look-ups {look_ups}, admitting {admitting}, without a past resolution {appended_only}"
    );
}

/// R14-3. R13-2's world (k = 2, two founders; two plain members vouch for a junk key, ripe for
/// good), and one of those plain members goes over her quota once: she fills a day with 256
/// rotations (kept), signs a 257th op for that day (refused over the quota here, kept as a stub
/// once an op waits for it) and, the next day, one op naming it (kept, read through the stub).
/// `look_up_appended` gave up while any op held was read through a stub (`through`/`read`
/// non-empty): for an op naming every head that is exact (its past is every op, so it holds
/// the stub, which the look-up resolves as an op and the roster as effect-less), but a stub
/// read through never leaves unless it joins, so every later op's past holds it. From then on
/// every honest approval, naming every head, cost a resolution of its whole past again: R13-2's
/// cost, back for good at every replica that refused the 257th op, for the price of one day's
/// quota. Safe: the honest admissions after it (roster read after each, as in R13-2's test)
/// resolve one past between them (the look-ups' view, made at the first and appended to since),
/// and each admitted key authors. Failed before (20 of 20 resolved their past).
#[test]
fn r14_one_stub_read_through_does_not_bring_back_r13_2_for_every_later_approval() {
    // The control: without the op over the quota, no past is resolved (R13-2's fix).
    assert_eq!(approvals_after_a_junk_pair(false, 20).0, 0, "the control");
    let (resolved, _) = approvals_after_a_junk_pair(true, 20);
    assert!(
        resolved <= 1,
        "{resolved} of 20 honest approvals each resolved their whole past (one stub read through, far away)"
    );
}

/// R14-3's world: how many pasts `n` honest admissions' approvals resolved (and how long they
/// took to join), after m2's 256 rotations and (`over_quota`) the op over the quota read
/// through.
fn approvals_after_a_junk_pair(over_quota: bool, n: usize) -> (u64, std::time::Duration) {
    let (genesis, pool) = collective(1405, 2, 2, 5 + n);
    let (f1, f2, m2) = (&pool[0], &pool[1], &pool[3]);
    let mut log = MembershipLog::new(genesis.clone());
    let ops = admissions_and_a_junk_pair(&genesis, &pool, true);
    let ja = ops.last().unwrap().clone();
    offer(&mut log, &ops);
    // m2 fills a day (the day after the admissions), then one op over the quota.
    let day = NOW + 86_400;
    let mut fill = rotations(&genesis, m2, &[ja.id()], 257, day);
    let over = fill.pop().unwrap();
    for r in fill {
        assert!(matches!(log.insert(r), InsertOutcome::Added(_)));
    }
    let next = rotations(&genesis, m2, &[over.id()], 1, day + 86_400).remove(0);
    if over_quota {
        assert!(matches!(
            log.insert(next.clone()),
            InsertOutcome::MissingParents(_)
        ));
        assert_eq!(
            log.insert(over.clone()),
            InsertOutcome::Refused(OpRefusal::OverQuota)
        );
        log.refuse_over_quota(over.id(), over.parents(), None);
        assert_eq!(log.add_stub(over.clone()), vec![next.id()]);
        assert!(
            log.read_parents(&next.id()).is_some(),
            "read through the stub"
        );
    }
    let _ = log.roster();
    // Honest admissions, each completed by k = 2 moderators naming every head.
    let before = log.past_resolutions();
    let started = std::time::Instant::now();
    for (i, m) in pool[5..5 + n].iter().enumerate() {
        let at = day + 2 * 86_400 + 86_400 * (i as u64 / 100);
        let p = dated(&genesis, f1, log.roster().heads(), add(m), at);
        assert!(matches!(log.insert(p.clone()), InsertOutcome::Added(_)));
        let a = dated(&genesis, f2, log.roster().heads(), approve(&p), at);
        assert!(matches!(log.insert(a), InsertOutcome::Added(_)));
        let _ = log.roster();
        assert!(log.may_author(&m.member_id()));
    }
    (log.past_resolutions() - before, started.elapsed())
}

/// A collective run by an heir, its first sync (measurement only:
/// `cargo test --release -p lookout-protocol --test review14 -- --ignored --nocapture r14_heir`).
#[test]
#[ignore = "measurement, run by hand"]
fn r14_heir_first_sync_measured() {
    // R14-1 in a collective run by an heir (k = 1, the founder's self-revocation published):
    // the resolution has a fallback, so no op is ever appended, and every admission by the heir
    // (looked up: Authors does not count her) forces a resolution of all ops on top of its
    // past's.
    for n in [500usize, 1_000] {
        let (genesis, pool) = collective(1406, 1, 1, n + 3);
        let (f, heir) = (&pool[0], &pool[1]);
        let admit = op(&genesis, f, &[], add(heir));
        let revoked = revoke(&genesis, f, f, &[admit.id()]);
        let mut ops = vec![admit, revoked.clone()];
        ops.extend(admissions(&genesis, heir, &pool[2..2 + n], revoked.id()));
        let bytes: Vec<&[u8]> = ops.iter().map(|o| o.encoded()).collect();
        let mut state = State::new(genesis.clone());
        let started = std::time::Instant::now();
        let (outcomes, _) = state.ingest_ops(&bytes, &pool[n + 2], now_for(n));
        let _ = state.log().roster();
        let took = started.elapsed();
        assert!(outcomes.iter().all(|o| *o == Ingested::Accepted));
        assert!(state.log().roster().is_moderator(&heir.member_id()));
        let mut log = state.log().clone();
        let look_ups = log.take_look_ups();
        println!(
            "R14-1 heir, k = 1, first sync of {} ops (the heir's admissions): {took:?}, \
             {} look-ups, {} admitting",
            ops.len(),
            look_ups.len(),
            look_ups.iter().filter(|(_, keys)| !keys.is_empty()).count()
        );
    }
}

/// An heir's admissions (k = 1: the founder's self-revocation published, the longest-standing
/// member promoted in the replay, not in `Authors`) are the look-ups `look_up_appended` decides:
/// every one of them here is read from the resolution it was appended to (no past resolved).
/// Checked: the keys she admits may author, as at a fresh log given the same ops at once (each
/// look-up a resolution of the op's past). Passes on f37c99c.
#[test]
fn r14_an_heirs_admissions_looked_up_in_appended_resolutions_agree_with_a_fresh_log() {
    let n = 50;
    let (genesis, pool) = collective(1406, 1, 1, n + 3);
    let (f, heir) = (&pool[0], &pool[1]);
    let admit = op(&genesis, f, &[], add(heir));
    let revoked = revoke(&genesis, f, f, &[admit.id()]);
    let mut ops = vec![admit, revoked.clone()];
    ops.extend(admissions(&genesis, heir, &pool[2..2 + n], revoked.id()));
    // Taken as a node takes gossip: the roster read after each op (the append look-up uses the
    // resolution only where it is there already, since a27048b).
    let mut log = MembershipLog::new(genesis.clone());
    for o in &ops {
        let out = log.insert(o.clone());
        assert!(matches!(out, InsertOutcome::Added(_)), "{out:?}");
        let _ = log.roster();
    }
    let look_ups = log.take_look_ups();
    assert!(log.roster().is_moderator(&heir.member_id()));
    assert_eq!(
        log.past_resolutions(),
        0,
        "all read from appended resolutions"
    );
    assert_eq!(look_ups.len(), n);
    let mut fresh = MembershipLog::new(genesis.clone());
    fresh.extend(ops.iter().cloned());
    assert_eq!(fresh.past_resolutions(), n as u64);
    for m in &pool[2..2 + n] {
        assert!(log.may_author(&m.member_id()));
        assert!(fresh.may_author(&m.member_id()));
    }
    assert_eq!(log.roster(), fresh.roster());
}

/// The case the random run of `r14_appended_look_ups_agree_with_logs_that_resolve_each_past`
/// found (3,812 cases in; shrunk): R14-5 in a random heir history. An heir's removal of a key it
/// admitted (op 20) is looked up and admits two keys at once; the log restarted from its stored
/// look-ups lets only the first author. Fails on f37c99c and main.
#[test]
fn r14_restart_case_found_by_the_random_run() {
    appended_look_ups_agree(4_088_194_553_106_679_778, 21, 1, true, 0).unwrap();
}

/// Prints the history of `r14_restart_case_found_by_the_random_run` and the look-ups of the
/// live, restarted and fresh logs.
#[test]
#[ignore = "prints a history, by hand"]
fn r14_restart_case_dump() {
    let (genesis, pool, ops, mut a) = history(4_088_194_553_106_679_778, 21, 1, true);
    let name = |m: &MemberId| {
        pool.iter()
            .position(|p| p.member_id() == *m)
            .map_or("?".to_string(), |i| format!("k{i}"))
    };
    let idx: BTreeMap<OpId, usize> = ops.iter().enumerate().map(|(i, o)| (o.id(), i)).collect();
    for (i, o) in ops.iter().enumerate() {
        let act = match &o.body().action {
            Action::ProposeAdd { identity, .. } => format!("add {}", name(&identity.member)),
            Action::Approve { proposal } => format!("approve #{:?}", idx.get(proposal)),
            Action::Remove { member, .. } => format!("remove {}", name(member)),
            Action::PublishRevocation { certificate } => format!("revoke {:?}", certificate),
            Action::ProposePromote { member } => format!("promote {}", name(member)),
            Action::ProposeDemote { member } => format!("demote {}", name(member)),
            Action::RotateAgreementKey { .. } => "rotate".to_string(),
            _ => "other".to_string(),
        };
        let parents: Vec<usize> = o
            .parents()
            .iter()
            .filter_map(|p| idx.get(p).copied())
            .collect();
        println!(
            "#{i} by {} parents {:?} {act} held {}",
            name(&o.author()),
            parents,
            a.contains(&o.id())
        );
    }
    // One log's look-ups (taken) and who may author there.
    let show = |label: &str, log: &mut MembershipLog| {
        let look_ups = log.take_look_ups();
        for (id, keys) in &look_ups {
            println!(
                "{label} look-up #{:?}: {:?}",
                idx.get(id),
                keys.iter().map(&name).collect::<Vec<_>>()
            );
        }
        println!(
            "{label} authors {:?}",
            pool.iter()
                .map(|p| (name(&p.member_id()), log.may_author(&p.member_id())))
                .collect::<Vec<_>>()
        );
        look_ups
    };
    let look_ups = show("a", &mut a);
    let mut restarted = MembershipLog::new(genesis.clone());
    restarted.restore_look_ups(look_ups);
    restarted.extend(a.ops().cloned().collect::<Vec<_>>());
    restarted.restored();
    show("restart", &mut restarted);
    let mut fresh = MembershipLog::new(genesis.clone());
    fresh.extend(a.ops().cloned().collect::<Vec<_>>());
    show("fresh", &mut fresh);
}

/// R14-5. A restart reads back at most one key of each stored look-up. `look_up_admissions`
/// restores a stored look-up with `keys.iter().any(|k| self.looked_up.insert(*k))`: `any` stops
/// at the first key newly inserted, so a look-up that admitted two keys or more restores only
/// the first. k = 1: member h proposes two keys while the founder revokes herself concurrently;
/// h (the heir) then approves naming both branches: in that past the heir's rights make both
/// proposals count (neither proposal's own past did), so the approval's look-up admits both
/// keys at once. Live, both may author; after a restart from the stored look-ups (as a node
/// restarts: `restore_look_ups`, `extend`, `restored`) only one may, and the other's ops are
/// refused (here: her rotation, kept live, not kept after the restart). Safe: the restarted log
/// lets the same keys author and keeps the same ops.
#[test]
fn r14_a_restart_lets_every_key_a_stored_look_up_found_author() {
    let (genesis, pool) = collective(1407, 1, 1, 4);
    let (f, h, k1, k2) = (&pool[0], &pool[1], &pool[2], &pool[3]);
    let admit_h = op(&genesis, f, &[], add(h));
    let p1 = op(&genesis, h, &[admit_h.id()], add(k1));
    let p2 = op(&genesis, h, &[p1.id()], add(k2));
    let revoked = revoke(&genesis, f, f, &[admit_h.id()]);
    let x = op(&genesis, h, &[p2.id(), revoked.id()], approve(&p1));
    let mut live = MembershipLog::new(genesis.clone());
    for o in [&admit_h, &p1, &p2, &revoked, &x] {
        assert!(matches!(live.insert(o.clone()), InsertOutcome::Added(_)));
    }
    let look_ups = live.take_look_ups();
    let found: Vec<&Vec<MemberId>> = look_ups.iter().map(|(_, keys)| keys).collect();
    assert!(
        look_ups
            .iter()
            .any(|(id, keys)| *id == x.id() && keys.len() == 2),
        "the approval's look-up admits both keys: {found:?}"
    );
    let rotation = own(&genesis, k2, &[x.id()]);
    let rotation1 = own(&genesis, k1, &[x.id()]);
    for r in [&rotation, &rotation1] {
        assert!(matches!(live.insert(r.clone()), InsertOutcome::Added(_)));
    }
    // A restart: the stored look-ups read back, then the ops held.
    let mut restarted = MembershipLog::new(genesis.clone());
    restarted.restore_look_ups(look_ups.clone());
    restarted.extend(live.ops().cloned().collect::<Vec<_>>());
    restarted.restored();
    for (key, who) in [(k1, "k1"), (k2, "k2")] {
        assert!(live.may_author(&key.member_id()));
        assert!(
            restarted.may_author(&key.member_id()),
            "{who}, found by one stored look-up with another key, may not author after a restart"
        );
    }
    assert_eq!(
        restarted.len(),
        live.len(),
        "ops kept live and not after the restart"
    );
}
