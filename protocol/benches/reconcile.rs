//! Full reconciliation sessions, end to end in memory.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// Runs a whole session and returns `(have, need)` counts.
fn session(a: &[Item], b: &[Item]) -> (usize, usize) {
    let mut initiator = Reconciler::new(a, Limits::default()).unwrap();
    let mut responder = Reconciler::new(b, Limits::default()).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut msg = initiator.initiate().unwrap();
    loop {
        let reply = responder.respond(&msg).unwrap();
        match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
            Some(next) => msg = next,
            None => return (have.len(), need.len()),
        }
    }
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_unstable();
    items.dedup();
    items
}

/// 49,900 shared items, then 100 recent items on each side only.
fn recent_difference() -> (Vec<Item>, Vec<Item>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut timestamp = 1_700_000_000;
    let mut next = |rng: &mut ChaCha8Rng| {
        timestamp += rng.gen_range(0..60);
        Item {
            timestamp,
            id: rng.gen(),
        }
    };
    let common: Vec<Item> = (0..49_900).map(|_| next(&mut rng)).collect();
    let a_only: Vec<Item> = (0..100).map(|_| next(&mut rng)).collect();
    let b_only: Vec<Item> = (0..100).map(|_| next(&mut rng)).collect();
    (
        sorted([&common[..], &a_only].concat()),
        sorted([&common[..], &b_only].concat()),
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
    let (a, b) = recent_difference();
    assert_eq!(session(&a, &b), (100, 100));
    c.bench_function("reconcile 50k vs 50k, 200 recent differences", |bench| {
        bench.iter(|| session(black_box(&a), black_box(&b)))
    });

    let (a, b) = random_difference();
    assert_eq!(session(&a, &b), (500, 500));
    c.bench_function("reconcile 10k vs 10k, 1000 random differences", |bench| {
        bench.iter(|| session(black_box(&a), black_box(&b)))
    });
}

criterion_group!(benches, bench_sessions);
criterion_main!(benches);
