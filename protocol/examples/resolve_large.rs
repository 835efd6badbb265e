//! Resolve a large membership history and report time and memory (docs/BENCHMARKS.md).
//!
//! `cargo run --release -p lookout-protocol --example resolve_large -- [OPS] [MEMBERS]`
//! (defaults 100,000 ops from 1,000 members, k = 2). Peak memory: run it under
//! `/usr/bin/time -v` and read "Maximum resident set size"; the figure printed as "history"
//! is the RSS after building the ops, before resolving.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{
    resolve, Action, MembershipLog, NewModerator, Op, Policy, SignedGenesis,
};
use lookout_protocol::text::{CollectiveSecret, SealedText, TextField};
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let members: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let founder = Identity::generate(&mut rng);
    let second = Identity::generate(&mut rng);
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    let co = vec![NewModerator {
        identity: second.public(),
        name: "second".into(),
    }];
    let genesis = SignedGenesis::create_with_moderators(
        &founder,
        &CollectiveSecret::from_bytes([3; 32]),
        "Big",
        "f",
        co,
        policy,
        NOW,
        &mut rng,
    )
    .unwrap();
    let collective = genesis.id();
    let people: Vec<Identity> = (0..members.saturating_sub(2))
        .map(|_| Identity::generate(&mut rng))
        .collect();
    let mut ops: Vec<Op> = Vec::with_capacity(total);
    let started = Instant::now();
    let push = |ops: &mut Vec<Op>, author: &Identity, action: Action| {
        let n = ops.len();
        // Mostly a chain, with some concurrency: every seventh op names an older op too.
        // (Only key rotations fork: approvals and removals name what their author saw.)
        let rotation = matches!(action, Action::RotateAgreementKey { .. });
        let mut parents: Vec<OpId> = ops.last().map(Op::id).into_iter().collect();
        if rotation && n.is_multiple_of(7) && n > 3 {
            parents = vec![ops[n - 3].id()];
        } else if rotation && n % 7 == 1 && n > 4 {
            parents.push(ops[n - 2].id());
        }
        let t = NOW + n as u64 * 300;
        let op = Op::create(author, collective, parents, t, action).unwrap();
        let id = op.id();
        ops.push(op);
        id
    };
    for p in &people {
        let proposal = push(
            &mut ops,
            &founder,
            Action::ProposeAdd {
                identity: p.public(),
                name: SealedText {
                    nonce: [0; 24],
                    ciphertext: vec![0; TextField::MemberName.sealed_bytes()].into(),
                },
            },
        );
        push(&mut ops, &second, Action::Approve { proposal });
    }
    // Members come and go: every 20th of them is removed along the way; the rest of the ops
    // are agreement-key rotations (the most frequent op of a long-lived collective).
    let mut i = 0usize;
    let mut removed = 0usize;
    while ops.len() < total {
        let who = i % people.len();
        if who.is_multiple_of(20) && removed < people.len() / 20 && i >= people.len() * removed {
            push(
                &mut ops,
                &founder,
                Action::Remove {
                    member: people[(removed * 20 + 7) % people.len()].member_id(),
                    reason: SealedText {
                        nonce: [0; 24],
                        ciphertext: vec![0; TextField::RemovalReason.sealed_bytes()].into(),
                    },
                },
            );
            removed += 1;
        } else {
            let p = &people[who];
            push(
                &mut ops,
                p,
                Action::RotateAgreementKey {
                    identity: p.public(),
                },
            );
        }
        i += 1;
    }
    println!(
        "history: {} ops from {} members ({} removals) built in {:.1} s; RSS {:.0} MiB",
        ops.len(),
        members,
        removed,
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    let refs: Vec<&Op> = ops.iter().collect();
    for round in 0..3 {
        let t = Instant::now();
        let roster = resolve(&genesis, &refs);
        println!(
            "resolve #{round}: {:.0} ms, {} members, {} removed, RSS {:.0} MiB",
            t.elapsed().as_secs_f64() * 1000.0,
            roster.len(),
            roster.removed().len(),
            rss_mib()
        );
    }
    // The replica's path: load everything as one batch, then take one op naming every head.
    let t = Instant::now();
    let mut log = MembershipLog::new(genesis.clone());
    log.extend(ops.iter().cloned());
    let members_now = log.roster().len();
    println!(
        "log load (batch) + resolve: {:.0} ms, {members_now} members, RSS {:.0} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_mib()
    );
    let heads = log.writer_heads(&founder.member_id());
    let op = Op::create(
        &founder,
        collective,
        heads,
        NOW + 10_000_000,
        Action::RotateAgreementKey {
            identity: founder.public(),
        },
    )
    .unwrap();
    let t = Instant::now();
    log.insert(op);
    let _ = log.roster().len();
    println!(
        "one more op naming every head: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
