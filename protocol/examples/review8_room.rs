//! Review 8, R8-13: what `MembershipLog::stubs_with_room` costs every op taken in while an
//! author-day with stubs that cannot join has a free slot (docs/BENCHMARKS.md, `rev8`).
//!
//! `cargo run --release -p lookout-protocol --example review8_room -- [CALLS]` (default 100).
//! x fills her day (255 ops and an orphan z), 480 over-quota ops of hers of that day are kept as
//! stubs (15 layers of 32, each naming the whole layer below, the bottom layer naming an op
//! nobody has), then her orphans of the day before evict z: her day has a free slot, and no
//! stub can join. Prints the CPU time of CALLS calls of `stubs_with_room` (one per op a
//! replica takes in, `State::accept_op`) and of CALLS calls with no free slot.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_protocol::membership::{InsertOutcome, MembershipLog};
use lookout_protocol::OpId;

mod review8_common;

use review8_common::{cpu_secs, World, START};

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let w = World::new();
    let (genesis, add) = (&w.genesis, &w.add);
    let xop = |parents: Vec<OpId>, at: u64| w.xop(parents, at);
    let mut log = MembershipLog::new(genesis.clone());
    let _ = log.insert(add.clone());
    let mut prev = add.id();
    for i in 0..255u64 {
        let op = xop(vec![prev], START + 100 + i);
        prev = op.id();
        assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
    }
    let z = xop(vec![OpId([0x5a; 32])], START + 900);
    assert!(matches!(
        log.insert(z.clone()),
        InsertOutcome::MissingParents(_)
    ));
    let mut layer: Vec<OpId> = vec![OpId([0x77; 32])];
    let mut n = 0u64;
    for _ in 0..15 {
        let mut next = Vec::new();
        for _ in 0..32 {
            let op = xop(layer.clone(), START + 1000 + n);
            n += 1;
            assert!(matches!(log.insert(op.clone()), InsertOutcome::Refused(_)));
            let _ = log.refuse_over_quota(op.id(), op.parents(), op.body().action.admits());
            let _ = log.add_stub(op.clone());
            next.push(op.id());
        }
        layer = next;
    }
    let cpu = cpu_secs();
    for _ in 0..calls {
        assert!(log.stubs_with_room().is_empty());
    }
    let full = cpu_secs() - cpu;
    let mut sent = 0u8;
    while log.holds(&z.id()) {
        sent += 1;
        let _ = log.insert(xop(
            vec![OpId([sent; 32])],
            START - 60_000 + u64::from(sent),
        ));
    }
    let cpu = cpu_secs();
    for _ in 0..calls {
        assert!(log.stubs_with_room().is_empty());
    }
    let room = cpu_secs() - cpu;
    println!(
        "{calls} calls of stubs_with_room: day full {full:.3} s CPU; a slot free {room:.3} s CPU"
    );
}
