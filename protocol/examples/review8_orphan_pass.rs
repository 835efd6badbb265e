//! Review 8, R8-6: what one member's orphans that read through refused ops cost every later op
//! insert (docs/BENCHMARKS.md, subsection `rev8`).
//!
//! `cargo run --release -p lookout-protocol --example review8_orphan_pass -- [INSERTS]`
//! (default 100). x fills her day (256 ops), then 480 over-quota ops of hers (15 layers of 32,
//! each naming the whole layer below) are refused (and kept as
//! stubs, as x can make a replica do by re-sending each while an orphan of hers waits for it), then 64 orphans of hers (the per-author cap)
//! dated the day before are inserted: "plain" orphans name a missing id, "heavy" ones name the
//! top layer (every parent refused, so each pass reads them through refused ops until
//! `MAX_READ_THROUGH`). Then the founder inserts INSERTS ops one by one; the time of those
//! inserts is printed for both kinds of orphans (CPU time of this process, and wall time).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use lookout_protocol::membership::{Action, InsertOutcome, MembershipLog, Op};
use lookout_protocol::OpId;

mod review8_common;

use review8_common::{cpu_secs, World, START};

fn main() {
    let inserts: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let w = World::new();
    let (founder, genesis, co, add) = (&w.founder, &w.genesis, w.co, &w.add);
    let xop = |parents: Vec<OpId>, at: u64| w.xop(parents, at);
    for (heavy, churn) in [(false, false), (true, false), (true, true)] {
        let mut log = MembershipLog::new(genesis.clone());
        let _ = log.insert(add.clone());
        let mut prev = add.id();
        for i in 0..256u64 {
            let op = xop(vec![prev], START + 100 + i);
            prev = op.id();
            assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
        }
        let mut layer: Vec<OpId> = vec![add.id()];
        let mut n = 0u64;
        for _ in 0..15 {
            let mut next = Vec::new();
            for _ in 0..32 {
                let op = xop(layer.clone(), START + 1000 + n);
                n += 1;
                assert!(matches!(log.insert(op.clone()), InsertOutcome::Refused(_)));
                let _ = log.refuse_over_quota(op.id(), op.parents(), op.body().action.admits());
                // Since `h1op` 5dbc163 ops are read only through verified refused ops (stubs):
                // x makes R verify each by re-sending it while one of her orphans waits for it.
                let _ = log.add_stub(op.clone());
                next.push(op.id());
            }
            layer = next;
        }
        for i in 0..64u64 {
            let parents = if heavy {
                layer.clone()
            } else {
                vec![OpId([i as u8 + 1; 32])]
            };
            let _ = log.insert(xop(parents, START - 60_000 + i));
        }
        let mut heads = log.roster().heads().to_vec();
        let ops: Vec<Op> = (0..inserts)
            .map(|i| {
                let op = Op::create(
                    founder,
                    co,
                    heads.clone(),
                    START + 2000 + i,
                    Action::RotateAgreementKey {
                        identity: founder.public(),
                    },
                )
                .unwrap();
                heads = vec![op.id()];
                op
            })
            .collect();
        // With churn: before each insert one more of x's over-quota ops becomes a stub (as
        // when an orphan of hers waits for it and she sends it), which empties the set of
        // orphans known to be over the bounds (R8-6's residual).
        let churned: Vec<Op> = (0..inserts)
            .map(|i| xop(vec![add.id()], START + 20_000 + i))
            .collect();
        let cpu = cpu_secs();
        let wall = Instant::now();
        for (op, stub) in ops.into_iter().zip(churned) {
            if churn {
                let _ = log.add_stub(stub);
            }
            let _ = log.insert(op);
        }
        println!(
            "{}{} orphans: {} refused remembered, {} orphans; {inserts} inserts: cpu {:.3} s, wall {:.3} s",
            if heavy { "heavy" } else { "plain" },
            if churn { " (a stub added before each insert)" } else { "" },
            log.quota_refused_count(),
            log.orphan_count(),
            cpu_secs() - cpu,
            wall.elapsed().as_secs_f64()
        );
    }
}
