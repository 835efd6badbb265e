//! Review 13: attacks on branch `lookup` at fe19709 (ripe keys; the stubs of an op's past
//! resolved as ops in its look-up; look-ups stored). Each test asserts the safe behaviour; those
//! that fail on `lookup` are left failing (findings in `/work/wt/REVIEW13.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod authors_world;
mod names;
mod offer;

use authors_world::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::OpId;
use offer::offer;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// R13-1. k = 1. A moderator fills her quota for one day (256 ops, kept), then signs 64 more
/// proposals for that day, each admitting a sybil, chained: every replica refuses them over the
/// quota (they are over it whatever the order: the 256 kept ones come first everywhere). The
/// next day, within her quota, she signs ONE approval (of anything) naming the last of them:
/// kept, read through the 64 stubs. Its look-up resolves the stubs as ops: all 64 sybils are
/// admitted in its past and become authors for good, each with 256 ops a day, though no replica
/// holds any of their proposals as an op (the roster has none as a member). SECURITY residual (c)
/// says "an over-quota member's stubs admit there only what her operations within the quota
/// could": her one op within the quota admits at most one key as an op (a proposal). Safe: at
/// most one sybil authors.
#[test]
#[ignore = "documented residual: SECURITY.md Moderators, lookup residual (c) (stubs take effect in look-ups)"]
fn r13_an_over_quota_moderators_stubs_make_no_more_authors_than_her_ops_within_the_quota() {
    let (genesis, pool) = collective(1301, 1, 2, 64);
    let flooder = &pool[1];
    let sybils = &pool[2..66];
    let mut log = MembershipLog::new(genesis.clone());
    let day = NOW + 60;
    let filler = rotations(&genesis, flooder, &[], 256, day);
    offer(&mut log, &filler);
    assert_eq!(log.len(), 256);
    let mut stubs = Vec::new();
    let mut last = filler.last().unwrap().id();
    for s in sybils {
        let o = dated(&genesis, flooder, &[last], add(s), day);
        last = o.id();
        stubs.push(o);
    }
    let x = dated(&genesis, flooder, &[last], approve(&stubs[0]), day + 86_400);
    assert!(matches!(
        log.insert(x.clone()),
        InsertOutcome::MissingParents(_)
    ));
    for s in stubs.iter().rev() {
        as_stub(&mut log, s);
    }
    assert!(log.holds(&x.id()), "the approval within the quota is kept");
    for s in sybils {
        assert!(!log.roster().knows(&s.member_id()), "no sybil is a member");
    }
    let authors = sybils
        .iter()
        .filter(|s| log.may_author(&s.member_id()))
        .count();
    assert!(
        authors <= 1,
        "{authors} sybils that no replica holds a proposal of as an op may author"
    );
}

/// R13-2. k = 2, two founding moderators, two plain members. One plain member proposes a key and
/// the other approves it: the resolver gives neither op effect (plain members neither propose nor
/// approve), so nothing can ever admit the key, yet it has two vouchers and is *ripe* for good.
/// From then on every honest approval (and removal, demotion, revocation) costs a resolution of
/// its whole past (R12-2's cost, which SECURITY says k >= 2 collectives do not pay: "none in a
/// collective whose admissions k proposers complete", "a proposal nobody approves is never ripe
/// with k >= 2"). Safe: the honest admissions after it, taken as a node takes them (the roster
/// read after each), resolve no past (`MembershipLog::past_resolutions`): each is looked up in
/// the resolution it was appended to. (The first version of this test counted look-ups, which
/// still happen, now without a resolution of their own.)
#[test]
fn r13_two_plain_members_do_not_make_every_approval_resolve_its_past() {
    let (genesis, pool) = collective(1302, 2, 2, 8);
    let (f1, f2, m2, junk) = (&pool[0], &pool[1], &pool[3], &pool[4]);
    let mut log = MembershipLog::new(genesis.clone());
    let ops = admissions_and_a_junk_pair(&genesis, &pool, true);
    let mut at: Vec<OpId> = vec![ops.last().unwrap().id()];
    offer(&mut log, &ops);
    assert!(log.may_author(&m2.member_id()));
    assert!(log.holds(&at[0]));
    assert!(!log.roster().knows(&junk.member_id()));
    let _ = log.take_look_ups();
    // Honest admissions, each completed by k = 2 moderators.
    let mut honest = Vec::new();
    for m in &pool[5..8] {
        let p = op(&genesis, f1, &at, add(m));
        let a = op(&genesis, f2, &[p.id()], approve(&p));
        at = vec![a.id()];
        honest.extend([p, a]);
    }
    let before = log.past_resolutions();
    for o in &honest {
        assert!(matches!(log.insert(o.clone()), InsertOutcome::Added(_)));
        let _ = log.roster();
    }
    for m in &pool[5..8] {
        assert!(log.may_author(&m.member_id()));
    }
    let resolved = log.past_resolutions() - before;
    assert_eq!(
        resolved, 0,
        "{resolved} honest ops each resolved their whole past (ripe for good: a proposal no rule admits)"
    );
}

/// R13-2 measured: k = 2, the honest admissions of R13-2 (f1 proposes, f2 approves, 100 a day)
/// inserted one by one, with and without the two plain members' junk pair first. Measurement
/// only: `cargo test -p lookout-protocol --test review13 -- --ignored --nocapture r13_measure`.
#[test]
#[ignore = "measurement, run by hand (R13-2)"]
fn r13_measure_two_plain_members_junk_pair() {
    for n in [200usize, 400, 800] {
        let (genesis, pool) = collective(1303, 2, 2, n + 5);
        let (f1, f2) = (&pool[0], &pool[1]);
        for with_junk in [false, true] {
            let mut ops = admissions_and_a_junk_pair(&genesis, &pool, with_junk);
            let mut head: Vec<OpId> = vec![ops.last().unwrap().id()];
            for (i, who) in pool[5..5 + n].iter().enumerate() {
                let at = NOW + 60 + 86_400 * (i as u64 / 100);
                let p = dated(&genesis, f1, &head, add(who), at);
                let a = dated(&genesis, f2, &[p.id()], approve(&p), at);
                head = vec![a.id()];
                ops.extend([p, a]);
            }
            let started = std::time::Instant::now();
            let mut live = MembershipLog::new(genesis.clone());
            for o in &ops {
                assert!(matches!(live.insert(o.clone()), InsertOutcome::Added(_)));
            }
            let one_by_one = started.elapsed();
            let look_ups = live.take_look_ups().len();
            // As a node takes them: the roster read after each insert.
            let started = std::time::Instant::now();
            let mut node = MembershipLog::new(genesis.clone());
            for o in &ops {
                assert!(matches!(node.insert(o.clone()), InsertOutcome::Added(_)));
                let _ = node.roster();
            }
            let read_each = started.elapsed();
            println!(
                "k = 2, ops {:4}, plain members' junk pair {with_junk:5}: one by one {one_by_one:?}, \
                 look-ups {look_ups}; reading the roster after each {read_each:?}",
                ops.len()
            );
        }
    }
}

/// R13-1 at a restart: a fresh log given the same stubs (as a node restores them) and ops
/// (`extend`) lets the same sybils author as the live one. Passes on fe19709 (no split: the
/// look-up is a function of the op's past), kept as a check of the convergence claim.
#[test]
fn r13_the_stub_sybils_author_alike_after_a_restart() {
    let (genesis, pool) = collective(1304, 1, 2, 8);
    let flooder = &pool[1];
    let sybils = &pool[2..10];
    let day = NOW + 60;
    let filler = rotations(&genesis, flooder, &[], 256, day);
    let mut stubs = Vec::new();
    let mut last = filler.last().unwrap().id();
    for s in sybils {
        let o = dated(&genesis, flooder, &[last], add(s), day);
        last = o.id();
        stubs.push(o);
    }
    let x = dated(&genesis, flooder, &[last], approve(&stubs[0]), day + 86_400);
    let mut live = MembershipLog::new(genesis.clone());
    offer(&mut live, &filler);
    let _ = live.insert(x.clone());
    for s in stubs.iter().rev() {
        as_stub(&mut live, s);
    }
    assert!(live.holds(&x.id()));
    let stored = live.take_new_stubs();
    let mut fresh = MembershipLog::new(genesis.clone());
    for s in stored {
        fresh.restore_stub(s);
    }
    let mut ops: Vec<Op> = filler.clone();
    ops.push(x.clone());
    fresh.extend(ops);
    fresh.restored();
    assert!(fresh.holds(&x.id()));
    for s in sybils {
        assert_eq!(
            live.may_author(&s.member_id()),
            fresh.may_author(&s.member_id())
        );
    }
}

/// A random history of concurrent admissions, promotions and removals by four founding
/// moderators (k = 1 for even seeds, 2 for odd), targets among ten keys.
fn random_history(seed: u64) -> (SignedGenesis, Vec<Identity>, Vec<Op>) {
    use rand_chacha::rand_core::RngCore;
    let k = 1 + (seed % 2) as u8;
    let (genesis, pool) = collective(13_000 + seed, k, 4, 6);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut ops: Vec<Op> = Vec::new();
    let mut proposals: Vec<Op> = Vec::new();
    let n = 8 + (rng.next_u32() % 16) as usize;
    for _ in 0..n {
        let author = &pool[(rng.next_u32() % 4) as usize];
        let mut parents = Vec::new();
        if !ops.is_empty() {
            for _ in 0..1 + rng.next_u32() % 2 {
                // Mostly recent ops: concurrent branches.
                let back = (rng.next_u32() % 8) as usize;
                let i = ops.len().saturating_sub(1 + back);
                parents.push(ops[i].id());
            }
        }
        let target = &pool[(rng.next_u32() % pool.len() as u32) as usize];
        let action = match rng.next_u32() % 5 {
            0 => add(target),
            1 | 2 => Action::Remove {
                member: target.member_id(),
                reason: names::reason("r"),
            },
            3 => Action::ProposePromote {
                member: target.member_id(),
            },
            _ if !proposals.is_empty() => {
                let p = &proposals[(rng.next_u32() % proposals.len() as u32) as usize];
                approve(p)
            }
            _ => add(target),
        };
        let o = op(&genesis, author, &parents, action);
        if matches!(
            o.body().action,
            Action::ProposeAdd { .. } | Action::ProposePromote { .. }
        ) {
            proposals.push(o.clone());
        }
        ops.push(o);
    }
    (genesis, pool, ops)
}

/// Search (run by hand, `R13_CASES=20000`): random histories whose roster `knows` a key it
/// never admitted (a removal kept from an oscillating fixpoint: `Roster::removed` with no
/// seniority). Found in 9 of 20,000 (all k = 1; first seeds 638, 886, 1304, 5168): each such key was a member
/// in some round over the same past, so its vouchers are there (and with k = 1 a founder's
/// proposal makes it an author anyway): no split from it (REVIEW13, open lead closed).
#[test]
#[ignore = "search, run by hand"]
fn r13_search_a_roster_knowing_a_key_never_admitted() {
    let cases: u64 = std::env::var("R13_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for seed in 0..cases {
        let (genesis, _, ops) = random_history(seed);
        let mut log = MembershipLog::new(genesis.clone());
        log.extend(ops.clone());
        for (key, removed) in log.roster().removed() {
            if removed.seniority.is_none() {
                println!(
                    "seed {seed}: knows {key:?} never admitted ({} ops)",
                    ops.len()
                );
            }
        }
    }
}
