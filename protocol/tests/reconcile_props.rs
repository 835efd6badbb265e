//! Property and bandwidth tests for `lookout_protocol::reconcile`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Figures from one complete session.
#[derive(Debug)]
struct Outcome {
    /// Round trips: `respond` calls.
    rounds: usize,
    bytes_to_responder: usize,
    bytes_to_initiator: usize,
    have: Vec<[u8; 32]>,
    need: Vec<[u8; 32]>,
}

/// Runs a session between `a` (initiator) and `b`, failing after `max_rounds`
/// round trips or on any message beyond the limits.
fn run(a: &[Item], b: &[Item], limits: Limits, max_rounds: usize) -> Outcome {
    let mut initiator = Reconciler::new(a, limits).unwrap();
    let mut responder = Reconciler::new(b, limits).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut outcome = Outcome {
        rounds: 0,
        bytes_to_responder: 0,
        bytes_to_initiator: 0,
        have: Vec::new(),
        need: Vec::new(),
    };
    let mut msg = initiator.initiate();
    loop {
        assert!(msg.len() <= limits.max_message_bytes);
        outcome.bytes_to_responder += msg.len();
        outcome.rounds += 1;
        assert!(
            outcome.rounds <= max_rounds,
            "no convergence within {max_rounds} round trips (|A| = {}, |B| = {})",
            a.len(),
            b.len()
        );
        let reply = responder.respond(&msg).unwrap();
        assert!(reply.len() <= limits.max_message_bytes);
        outcome.bytes_to_initiator += reply.len();
        match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
            Some(next) => msg = next,
            None => break,
        }
    }
    have.sort_unstable();
    need.sort_unstable();
    outcome.have = have;
    outcome.need = need;
    outcome
}

fn ids_only_in(x: &[Item], y: &[Item]) -> Vec<[u8; 32]> {
    let mut ids: Vec<_> = x
        .iter()
        .filter(|item| y.binary_search(item).is_err())
        .map(|item| item.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// A generous bound on round trips: one per 16x refinement level, plus the
/// rounds needed to page every id through frames of the given size, twice
/// (ids may travel in both directions).
fn round_bound(a: &[Item], b: &[Item], limits: Limits) -> usize {
    let n = a.len().max(b.len()).max(1);
    let levels = (n as f64).log(16.0).ceil() as usize;
    let pages = (a.len() + b.len()) * 32 / (limits.max_message_bytes - 1024) + 1;
    levels + 3 + 2 * pages
}

/// Splits a universe of items by tag: 0 both, 1 only A, 2 only B. Keeps one
/// item per id, as real ids are content hashes.
fn split_universe(universe: Vec<(Item, u8)>) -> (Vec<Item>, Vec<Item>) {
    let mut universe = universe;
    universe.sort_by_key(|(item, _)| item.id);
    universe.dedup_by_key(|(item, _)| item.id);
    universe.sort_unstable_by_key(|(item, _)| *item);
    let a = universe
        .iter()
        .filter(|(_, t)| *t != 2)
        .map(|(i, _)| *i)
        .collect();
    let b = universe
        .iter()
        .filter(|(_, t)| *t != 1)
        .map(|(i, _)| *i)
        .collect();
    (a, b)
}

fn check_exact(a: &[Item], b: &[Item], limits: Limits) -> Result<(), TestCaseError> {
    let outcome = run(a, b, limits, round_bound(a, b, limits));
    prop_assert_eq!(&outcome.have, &ids_only_in(a, b), "have != A \\ B");
    prop_assert_eq!(&outcome.need, &ids_only_in(b, a), "need != B \\ A");
    Ok(())
}

fn small_frames() -> Limits {
    Limits {
        max_message_bytes: Limits::MIN_MESSAGE_BYTES,
        max_ranges: Limits::MIN_RANGES,
    }
}

/// Items from a tiny alphabet: few timestamps and ids sharing long prefixes,
/// so ties and long bounds are common and shrinking stays readable.
fn tiny_item() -> impl Strategy<Value = Item> {
    (0u64..6, prop::array::uniform4(0u8..3), any::<u8>()).prop_map(|(timestamp, head, last)| {
        let mut id = [0; 32];
        id[..4].copy_from_slice(&head);
        id[31] = last;
        Item { timestamp, id }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Structured sets with heavy tie-breaking on ids.
    #[test]
    fn converges_on_tiny_alphabet(
        universe in prop::collection::vec((tiny_item(), 0u8..3), 0..400),
        small in any::<bool>(),
    ) {
        let (a, b) = split_universe(universe);
        let limits = if small { small_frames() } else { Limits::default() };
        check_exact(&a, &b, limits)?;
    }

    /// Ids repeated under several timestamps break the uniqueness assumption:
    /// results for such ids may be off, but the session still ends in bounded
    /// rounds and reports only ids of the right side.
    #[test]
    fn duplicate_ids_still_terminate(
        a in prop::collection::btree_set(tiny_item(), 0..300),
        b in prop::collection::btree_set(tiny_item(), 0..300),
    ) {
        let (a, b): (Vec<Item>, Vec<Item>) = (a.into_iter().collect(), b.into_iter().collect());
        let limits = small_frames();
        let outcome = run(&a, &b, limits, round_bound(&a, &b, limits));
        prop_assert!(outcome.have.iter().all(|id| a.iter().any(|item| item.id == *id)));
        prop_assert!(outcome.need.iter().all(|id| b.iter().any(|item| item.id == *id)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 80, ..ProptestConfig::default() })]

    /// Larger seeded sets: sizes up to a few thousand, timestamps from a single
    /// value up to a wide spread, optional long shared id prefixes.
    #[test]
    fn converges_on_large_sets(
        seed in any::<u64>(),
        common in 0usize..3000,
        only_a in 0usize..600,
        only_b in 0usize..600,
        spread in prop_oneof![Just(1u64), 2u64..64, 64u64..10_000_000],
        shared_prefix in prop_oneof![Just(0usize), 1usize..31],
        small in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let universe = (0..common + only_a + only_b)
            .map(|i| {
                let mut id: [u8; 32] = rng.gen();
                id[..shared_prefix].fill(0x5a);
                let tag = if i < common { 0 } else if i < common + only_a { 1 } else { 2 };
                (Item { timestamp: rng.gen_range(0..spread), id }, tag)
            })
            .collect();
        let (a, b) = split_universe(universe);
        let limits = if small { small_frames() } else { Limits::default() };
        check_exact(&a, &b, limits)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic either side, and any answer stays in limits.
    #[test]
    fn random_bytes_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 0..700),
        versioned in any::<bool>(),
        seed in any::<u64>(),
    ) {
        if versioned && !bytes.is_empty() {
            bytes[0] = lookout_protocol::reconcile::PROTOCOL_VERSION;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut items: Vec<Item> = (0..rng.gen_range(0..300))
            .map(|_| Item { timestamp: rng.gen_range(0..40), id: rng.gen() })
            .collect();
        items.sort_unstable();
        items.dedup();
        feed(&items, &bytes)?;
    }

    /// Valid messages with a few bytes changed, truncated or extended.
    #[test]
    fn mutated_messages_never_panic(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        mode in 0u8..3,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut gen = |n| {
            let mut items: Vec<Item> = (0..n)
                .map(|_| Item { timestamp: rng.gen_range(0..100), id: rng.gen() })
                .collect();
            items.sort_unstable();
            items
        };
        let (a, b) = (gen(600), gen(100));
        let first = Reconciler::new(&a, Limits::default()).unwrap().initiate();
        let reply = Reconciler::new(&b, Limits::default()).unwrap().respond(&first).unwrap();
        for original in [first, reply] {
            let mut msg = original.clone();
            for (at, byte) in &edits {
                let i = at.index(msg.len());
                msg[i] = *byte;
            }
            match mode {
                0 => msg.truncate(cut.index(msg.len() + 1)),
                1 => msg.extend_from_slice(&original[cut.index(original.len())..]),
                _ => {}
            }
            feed(&a, &msg)?;
            feed(&b, &msg)?;
        }
    }
}

/// Hands `msg` to a fresh responder and to an initiator over `items`.
fn feed(items: &[Item], msg: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    let mut responder = Reconciler::new(items, limits).unwrap();
    if let Ok(reply) = responder.respond(msg) {
        prop_assert!(reply.len() <= limits.max_message_bytes);
    }
    let mut initiator = Reconciler::new(items, limits).unwrap();
    initiator.initiate();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    match initiator.reconcile(msg, &mut have, &mut need) {
        Ok(Some(next)) => prop_assert!(next.len() <= limits.max_message_bytes),
        Ok(None) => {}
        Err(err) => {
            prop_assert!(err.is_peer_fault(), "{}", err);
            prop_assert!(have.is_empty() && need.is_empty());
        }
    }
    Ok(())
}

/// `count` items with distinct random ids and increasing timestamps from
/// `start`, a few seconds apart (alerts created around the same time).
fn timeline(rng: &mut ChaCha8Rng, count: usize, start: u64) -> Vec<Item> {
    let mut timestamp = start;
    let mut items: Vec<Item> = (0..count)
        .map(|_| {
            timestamp += rng.gen_range(0..60);
            Item {
                timestamp,
                id: rng.gen(),
            }
        })
        .collect();
    items.sort_unstable();
    items
}

fn merged(x: &[Item], y: &[Item]) -> Vec<Item> {
    let mut all = [x, y].concat();
    all.sort_unstable();
    all
}

/// Measures bytes, not time: 50,000 vs 50,000 items differing in 200 recent
/// items must cost bandwidth proportional to the difference.
#[test]
fn bandwidth_is_proportional_to_recent_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0100_c0a7);
    let common = timeline(&mut rng, 49_900, 1_700_000_000);
    let start = common.last().unwrap().timestamp;
    // Both sides received 100 alerts the other has not seen, over the same hour.
    let a = merged(&common, &timeline(&mut rng, 100, start));
    let b = merged(&common, &timeline(&mut rng, 100, start));
    assert_eq!((a.len(), b.len()), (50_000, 50_000));

    let outcome = run(&a, &b, Limits::default(), 10);
    assert_eq!(outcome.have, ids_only_in(&a, &b));
    assert_eq!(outcome.need, ids_only_in(&b, &a));
    let total = outcome.bytes_to_responder + outcome.bytes_to_initiator;
    println!(
        "50,000 vs 50,000, d = 200 (100 each way): {} round trips, {} bytes \
         ({} to responder, {} to initiator), {:.1} bytes per differing id",
        outcome.rounds,
        total,
        outcome.bytes_to_responder,
        outcome.bytes_to_initiator,
        total as f64 / 200.0
    );
    assert!(outcome.rounds <= 3, "{} round trips", outcome.rounds);
    // About one id's worth per difference plus a small constant (measured:
    // 4,501 and 1,524 bytes); ids the initiator already has never travel.
    assert!(total < 200 * 32 + 2048, "{total} bytes");

    // One side was offline: it lacks the last 200 alerts the other holds.
    let a = merged(&common, &timeline(&mut rng, 200, start));
    let b = &common[..49_900];
    let outcome = run(&a, b, Limits::default(), 10);
    assert_eq!(outcome.have.len(), 200);
    assert!(outcome.need.is_empty());
    let total = outcome.bytes_to_responder + outcome.bytes_to_initiator;
    println!(
        "50,000 vs 49,800, d = 200 (one way): {} round trips, {} bytes",
        outcome.rounds, total
    );
    assert!(outcome.rounds <= 3, "{} round trips", outcome.rounds);
    // About one id's worth per difference plus a small constant (measured:
    // 4,501 and 1,524 bytes); ids the initiator already has never travel.
    assert!(total < 200 * 32 + 2048, "{total} bytes");
}

/// The same difference against ten times the common history costs about the
/// same: bandwidth does not grow with n.
#[test]
fn bandwidth_does_not_grow_with_history() {
    let measure = |n: usize| {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let common = timeline(&mut rng, n, 1_700_000_000);
        let start = common.last().unwrap().timestamp;
        let a = merged(&common, &timeline(&mut rng, 100, start));
        let b = merged(&common, &timeline(&mut rng, 100, start));
        let outcome = run(&a, &b, Limits::default(), 10);
        outcome.bytes_to_responder + outcome.bytes_to_initiator
    };
    let (small, large) = (measure(5_000), measure(50_000));
    println!("d = 200: {small} bytes at n = 5,000, {large} bytes at n = 50,000");
    assert!(large < small * 3 / 2, "{small} -> {large}");
}
