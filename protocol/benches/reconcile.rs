//! Full reconciliation sessions, end to end in memory: time per session, and
//! (printed once per scenario) bytes and round trips.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// What one session cost.
struct Session {
    have: usize,
    need: usize,
    round_trips: usize,
    bytes: usize,
}

/// Runs a whole session with the node's frame limit.
fn session(a: &[Item], b: &[Item]) -> Session {
    let limits = Limits {
        max_message_bytes: 60 * 1024,
    };
    let mut initiator = Reconciler::new(a, limits).unwrap();
    let mut responder = Reconciler::new(b, limits).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let (mut round_trips, mut bytes) = (0, 0);
    let mut msg = initiator.initiate().unwrap();
    loop {
        let reply = responder.respond(&msg).unwrap();
        round_trips += 1;
        bytes += msg.len() + reply.len();
        match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
            Some(next) => msg = next,
            None => {
                return Session {
                    have: have.len(),
                    need: need.len(),
                    round_trips,
                    bytes,
                }
            }
        }
    }
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_unstable();
    items.dedup();
    items
}

/// `common` shared items a few seconds apart, then `a_only` recent items on
/// the first side only and `b_only` on the second.
fn recent_difference(common: usize, a_only: usize, b_only: usize) -> (Vec<Item>, Vec<Item>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut timestamp = 1_700_000_000;
    let mut next = |rng: &mut ChaCha8Rng| {
        timestamp += rng.gen_range(0..60);
        Item {
            timestamp,
            id: rng.gen(),
        }
    };
    let shared: Vec<Item> = (0..common).map(|_| next(&mut rng)).collect();
    let a: Vec<Item> = (0..a_only).map(|_| next(&mut rng)).collect();
    let b: Vec<Item> = (0..b_only).map(|_| next(&mut rng)).collect();
    (
        sorted([&shared[..], &a].concat()),
        sorted([&shared[..], &b].concat()),
    )
}

/// 9,500 shared items plus 500 on each side only, spread over the whole range.
fn random_difference() -> (Vec<Item>, Vec<Item>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut item = || Item {
        timestamp: 1_700_000_000 + rng.gen_range(0..2_600_000),
        id: rng.gen(),
    };
    let common: Vec<Item> = (0..9_500).map(|_| item()).collect();
    let a_only: Vec<Item> = (0..500).map(|_| item()).collect();
    let b_only: Vec<Item> = (0..500).map(|_| item()).collect();
    (
        sorted([&common[..], &a_only].concat()),
        sorted([&common[..], &b_only].concat()),
    )
}

fn bench_sessions(c: &mut Criterion) {
    let scenarios = [
        (
            "50k vs 49.8k, the second lacks the 200 most recent",
            recent_difference(49_800, 200, 0),
            (200, 0),
        ),
        (
            "5k vs 5k, 100 recent differences each way",
            recent_difference(4_900, 100, 100),
            (100, 100),
        ),
        (
            "50k vs 50k, 100 recent differences each way",
            recent_difference(49_900, 100, 100),
            (100, 100),
        ),
        (
            "10k vs 10k, 500 random differences each way",
            random_difference(),
            (500, 500),
        ),
    ];
    for (name, (a, b), expected) in &scenarios {
        let s = session(a, b);
        assert_eq!((s.have, s.need), *expected);
        println!(
            "{name}: {} round trips, {} bytes ({:.1} per differing id)",
            s.round_trips,
            s.bytes,
            s.bytes as f64 / (expected.0 + expected.1) as f64
        );
        c.bench_function(&format!("reconcile {name}"), |bench| {
            bench.iter(|| session(black_box(a), black_box(b)))
        });
    }
}

criterion_group!(benches, bench_sessions);
criterion_main!(benches);
