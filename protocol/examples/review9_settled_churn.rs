//! Review 9, R9-5b: quota2 e89f87d remembers "settled" stubs across passes over the orphans, and
//! forgets all of them whenever a settled stub that no op reads through is pushed out of the
//! waited stubs (`MAX_WAITED_STUBS`). This measures what one more stub before each honest op
//! (the flooder re-sending one junk op of hers that an orphan of hers waits for) costs then.
//!
//! `cargo run --release -p lookout-protocol --example review9_settled_churn -- [CARRIERS] [INSERTS]`
//! (defaults 190 and 60). As `review9_blocked_walk` (CARRIERS chains of 64 stubs, read through
//! by ops of hers of the day before; hubs of 32 chain tops; t, its id ground high, naming them
//! and an id nobody has), plus 1,015 "decoy" stubs (sent after the chains, before the hubs) of hers
//! (parent: an op everyone holds), the 64 oldest of which 64 orphans of hers name, each beside
//! t, so each is walked and settled on every pass. Then the founder inserts
//! INSERTS ops one by one, two ways: with no churn, and with one new decoy stub added before
//! each insert (it pushes the oldest, settled, decoy out, and with it every settled stub).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use lookout_protocol::membership::{Action, InsertOutcome, MembershipLog, Op};
use lookout_protocol::OpId;

#[path = "review8_common/mod.rs"]
mod review8_common;

use review8_common::{cpu_secs, World, START};

fn main() {
    let mut args = std::env::args().skip(1);
    let carriers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(190);
    let inserts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let w = World::new();
    let (founder, genesis, co, add) = (&w.founder, &w.genesis, w.co, &w.add);
    let prev_day = START - 80_000;
    for churn in [false, true] {
        let mut log = MembershipLog::new(genesis.clone());
        let _ = log.insert(add.clone());
        let mut prev = add.id();
        for i in 0..256u64 {
            let op = w.xop(vec![prev], START + 100 + i);
            prev = op.id();
            assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
        }
        let mut at = START - 51_000;
        let stub = |log: &mut MembershipLog, parents: Vec<OpId>, at: &mut u64| {
            let op = w.xop(parents, *at);
            *at += 1;
            assert!(matches!(log.insert(op.clone()), InsertOutcome::Refused(_)));
            let _ = log.add_stub(op.clone());
            op.id()
        };
        let mut tops = Vec::new();
        for c in 0..carriers {
            let mut below = add.id();
            for _ in 0..64 {
                below = stub(&mut log, vec![below], &mut at);
            }
            tops.push(below);
            let carrier = w.xop(vec![below], prev_day + c);
            assert!(matches!(log.insert(carrier), InsertOutcome::Added(_)));
        }
        // Decoys after the chains and before the hubs (so the oldest waited stubs): 1,015
        // naming an op everyone holds (the FIFO of waited stubs then holds them, the hubs, t).
        let decoys: Vec<OpId> = (0..1015)
            .map(|_| stub(&mut log, vec![add.id()], &mut at))
            .collect();
        let mut hubs: Vec<OpId> = tops
            .chunks(32)
            .map(|group| stub(&mut log, group.to_vec(), &mut at))
            .collect();
        hubs.truncate(31);
        hubs.push(OpId([0x77; 32]));
        // t's id ground high, so an orphan naming decoys and t walks (and settles) every decoy
        // before it reaches t (parents are walked in id order).
        let t_op = (0..100_000u64)
            .map(|g| w.xop(hubs.clone(), at + g))
            .find(|op| op.id().0[0] == 0xff)
            .unwrap();
        assert!(matches!(
            log.insert(t_op.clone()),
            InsertOutcome::Refused(_)
        ));
        let _ = log.add_stub(t_op.clone());
        let t = t_op.id();
        let mut orphan_at = prev_day + 1_000;
        let mut orphan = |log: &mut MembershipLog, parents: Vec<OpId>| {
            let op = w.xop(parents, orphan_at);
            orphan_at += 1;
            assert!(matches!(log.insert(op), InsertOutcome::MissingParents(_)));
        };
        // The 64 oldest decoys, one to an orphan beside t (her cap of orphans): each walked,
        // and settled, on every pass, until it is pushed out (then its orphan is dead, and a
        // new orphan of hers would take its place: one message per decoy).
        for d in decoys.iter().take(64) {
            orphan(&mut log, vec![*d, t]);
        }
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
        // One insert first, so the passes have settled what they can.
        let mut ops = ops.into_iter();
        let first = Instant::now();
        let _ = log.insert(ops.next().unwrap());
        println!(
            "first insert (settles what it can): {:.3} s",
            first.elapsed().as_secs_f64()
        );
        let new_decoys: Vec<Op> = (0..inserts)
            .map(|i| w.xop(vec![add.id()], START - 20_000 + i))
            .collect();
        println!(
            "orphans {}, t a stub {}, decoys kept {}",
            log.orphan_count(),
            log.is_stub(&t),
            decoys.iter().filter(|d| log.is_stub(d)).count()
        );
        let (cpu, wall) = (cpu_secs(), Instant::now());
        for (op, decoy) in ops.zip(new_decoys) {
            if churn {
                assert!(matches!(
                    log.insert(decoy.clone()),
                    InsertOutcome::Refused(_)
                ));
                let _ = log.add_stub(decoy);
            }
            assert!(matches!(log.insert(op), InsertOutcome::Added(_)));
        }
        println!(
            "after: decoys kept {}, t a stub {}, orphans {}",
            decoys.iter().filter(|d| log.is_stub(d)).count(),
            log.is_stub(&t),
            log.orphan_count()
        );
        println!(
            "one new decoy stub before each insert: {churn}; stubs read through: {}; {} inserts: CPU {:.2} s, wall {:.3} s",
            log.offered_stubs().count(),
            inserts - 1,
            cpu_secs() - cpu,
            wall.elapsed().as_secs_f64()
        );
    }
}
