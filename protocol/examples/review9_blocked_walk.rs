//! Review 9, R9-5: what one orphan of a member, waiting below a stub whose DAG holds the stubs
//! of R9-1, costs every later op insert (/work/wt/REVIEW9.md; the numbers there).
//!
//! `cargo run --release -p lookout-protocol --example review9_blocked_walk -- [CARRIERS] [INSERTS]`
//! (defaults 255 and 100). x fills her day D (256 ops). Then, CARRIERS times, she has a chain of
//! 64 over-quota ops of day D kept as stubs and an op of hers of the day before naming its top
//! (it joins, read through the 64: they are kept for good, R9-1). Then 8 more stubs ("hubs")
//! each naming 32 chain tops, and one "t" naming the hubs and an id nobody has, and one orphan
//! of hers naming t: every pass over the orphans reads it again, and the walk below t
//! (`MembershipLog::blocked`) visits every stub before finding what it waits for. Then the
//! founder inserts INSERTS ops one by one: their CPU time is printed with the orphan and without.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use lookout_protocol::membership::{Action, InsertOutcome, MembershipLog, Op};
use lookout_protocol::OpId;

#[path = "review8_common/mod.rs"]
mod review8_common;

use review8_common::{cpu_secs, World, START};

fn main() {
    let mut args = std::env::args().skip(1);
    let carriers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(255);
    let inserts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let w = World::new();
    let (founder, genesis, co, add) = (&w.founder, &w.genesis, w.co, &w.add);
    let prev_day = START - 80_000;
    let build = |with_orphan: bool| {
        let mut log = MembershipLog::new(genesis.clone());
        let _ = log.insert(add.clone());
        let mut prev = add.id();
        for i in 0..256u64 {
            let op = w.xop(vec![prev], START + 100 + i);
            prev = op.id();
            assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
        }
        let mut tops = Vec::new();
        let mut at = START - 51_000;
        for c in 0..carriers {
            let mut below = add.id();
            for _ in 0..64 {
                let op = w.xop(vec![below], at);
                at += 1;
                below = op.id();
                assert!(matches!(log.insert(op.clone()), InsertOutcome::Refused(_)));
                let _ = log.add_stub(op);
            }
            tops.push(below);
            let carrier = w.xop(vec![below], prev_day + c);
            assert!(matches!(log.insert(carrier), InsertOutcome::Added(_)));
        }
        let mut hubs = Vec::new();
        for group in tops.chunks(32) {
            let hub = w.xop(group.to_vec(), at);
            at += 1;
            assert!(matches!(log.insert(hub.clone()), InsertOutcome::Refused(_)));
            let _ = log.add_stub(hub.clone());
            hubs.push(hub.id());
        }
        hubs.truncate(31);
        hubs.push(OpId([0x77; 32]));
        let t = w.xop(hubs, at);
        assert!(matches!(log.insert(t.clone()), InsertOutcome::Refused(_)));
        let _ = log.add_stub(t.clone());
        if with_orphan {
            let orphan = w.xop(vec![t.id()], prev_day + 300);
            assert!(matches!(
                log.insert(orphan),
                InsertOutcome::MissingParents(_)
            ));
        }
        log
    };
    for with_orphan in [false, true] {
        let mut log = build(with_orphan);
        let stubs = log.offered_stubs().count();
        let mut heads = log.writer_heads(&founder.member_id());
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
        let (cpu, wall) = (cpu_secs(), Instant::now());
        for op in ops {
            assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
        }
        println!(
            "orphan below the stubs: {with_orphan}; stubs read through: {stubs}; {inserts} inserts: CPU {:.2} s, wall {:.3} s",
            cpu_secs() - cpu,
            wall.elapsed().as_secs_f64()
        );
    }
}
