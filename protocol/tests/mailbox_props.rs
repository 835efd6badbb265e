//! The collective's mailboxes are a function of the set of membership ops: every replica
//! holding the same ops lists the same mailboxes, whatever order they arrived in, with
//! concurrent admissions, removals, re-proposals, moderators removed mid-approval and keys
//! proposed both as member and as mailbox.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod k_founded;
mod names;
mod proptest_seed;

use ed25519_dalek::SigningKey;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{MailboxId, MemberId, OpId};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

fn random_history(seed: u64, len: usize, k: u8) -> (SignedGenesis, Vec<Op>) {
    random_history_with(seed, len, k, 2, false)
}

/// `extra_boxes` plain mailbox keys plus one that is also a member's; `crowded` makes most
/// steps mailbox proposals and approvals, so the roster reaches [`MAX_MAILBOXES`].
fn random_history_with(
    seed: u64,
    len: usize,
    k: u8,
    extra_boxes: usize,
    crowded: bool,
) -> (SignedGenesis, Vec<Op>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let pool: Vec<Identity> = (0..6).map(|_| Identity::generate(&mut rng)).collect();
    // Mailbox keys, the last one also a member identity's key (pool[5]).
    let mut boxes: Vec<[u8; 32]> = (0..extra_boxes)
        .map(|_| SigningKey::generate(&mut rng).verifying_key().to_bytes())
        .collect();
    boxes.push(pool[5].member_id().0);
    // A collective needing k approvals is founded by k moderators.
    let genesis = k_founded::founded_by_k(&pool, k, "prop", NOW, &mut rng);
    let mut ops: Vec<Op> = Vec::new();
    for step in 0..len {
        let author = if step < 4 {
            0
        } else if crowded {
            // Mostly the founding moderators (pool[1] is one when k = 2, promoted at step 2).
            [0, 0, 1, 1, 2, 3][rng.gen_range(0..6)]
        } else {
            rng.gen_range(0..pool.len())
        };
        let target = rng.gen_range(1..pool.len());
        let mut parents: Vec<OpId> = Vec::new();
        if !ops.is_empty() {
            for _ in 0..rng.gen_range(0..=ops.len().min(3)) {
                parents.push(ops[rng.gen_range(0..ops.len())].id());
            }
            if rng.gen_bool(0.6) {
                parents.push(ops[ops.len() - 1].id());
            }
        }
        let proposals: Vec<OpId> = ops
            .iter()
            .filter(|o| {
                matches!(
                    o.body().action,
                    Action::ProposeAdd { .. }
                        | Action::ProposePromote { .. }
                        | Action::ProposeMailbox { .. }
                        | Action::Remove { .. }
                )
            })
            .map(Op::id)
            .collect();
        let mailbox = *boxes.choose(&mut rng).unwrap();
        let roll = if crowded && step >= 3 {
            // Mostly proposals of mailboxes and approvals, a few removals.
            [5, 6, 5, 6, 2, 3, 4, 7][rng.gen_range(0..8)]
        } else {
            rng.gen_range(0..12)
        };
        let action = match (step, roll) {
            (0 | 1, _) => Action::ProposeAdd {
                identity: pool[step + 1].public(),
                name: names::name("m"),
            },
            (2, _) => Action::ProposePromote {
                member: pool[1].member_id(),
            },
            (_, 0..=1) => Action::ProposeAdd {
                identity: pool[target].public(),
                name: names::name("m"),
            },
            (_, 2..=4) if !proposals.is_empty() => Action::Approve {
                proposal: *proposals.choose(&mut rng).unwrap(),
            },
            (_, 5..=6) => Action::ProposeMailbox {
                mailbox,
                addresses: vec![format!("/ip4/203.0.113.{step}/tcp/4001")],
            },
            (_, 7) => Action::RemoveMailbox { mailbox },
            (_, 8) => Action::Remove {
                member: pool[rng.gen_range(0..pool.len())].member_id(),
                reason: names::reason(String::new()),
            },
            (_, 9) => Action::ProposePromote {
                member: pool[target].member_id(),
            },
            (_, 10) => Action::ProposeDemote {
                member: pool[rng.gen_range(0..pool.len())].member_id(),
            },
            _ => Action::PublishRevocation {
                certificate: RevocationCertificate::create(&pool[target], NOW),
            },
        };
        ops.push(
            Op::create(
                &pool[author],
                genesis.id(),
                parents,
                NOW + step as u64,
                action,
            )
            .unwrap(),
        );
    }
    (genesis, ops)
}

fn replica(genesis: &SignedGenesis, ops: Vec<Op>) -> MembershipLog {
    let mut log = MembershipLog::new(genesis.clone());
    let mut refused = Vec::new();
    for op in ops {
        if let InsertOutcome::Refused(_) = log.insert(op.clone()) {
            refused.push(op);
        }
    }
    loop {
        let before = refused.len();
        refused.retain(|op| matches!(log.insert(op.clone()), InsertOutcome::Refused(_)));
        if refused.len() == before {
            return log;
        }
    }
}

fn mailboxes(roster: &Roster) -> Vec<(MailboxId, Vec<String>, OpId)> {
    roster
        .mailboxes()
        .map(|m| (m.id, m.addresses.clone(), m.admitted_by))
        .collect()
}

proptest! {
    #![proptest_config(proptest_seed::config(96))]

    #[test]
    fn same_ops_same_mailboxes_in_any_order(
        seed in any::<u64>(),
        len in 4usize..40,
        k in 1u8..=2,
        shuffles in proptest::collection::vec(any::<u64>(), 3),
    ) {
        let (genesis, ops) = random_history(seed, len, k);
        let all = replica(&genesis, ops.clone());
        let ops: Vec<Op> = ops.into_iter().filter(|o| all.holds(&o.id())).collect();
        let refs: Vec<&Op> = ops.iter().collect();
        let reference = resolve(&genesis, &refs);
        // The invariants hold on every history.
        for m in reference.mailboxes() {
            prop_assert!(!reference.knows(&MemberId(m.id.0)), "a member's key is a mailbox");
            prop_assert!(!reference.is_removed_mailbox(&m.id));
        }
        for pending in reference.pending() {
            if let PendingKind::AddMailbox { mailbox, .. } = &pending.kind {
                prop_assert!(!reference.is_removed_mailbox(mailbox));
                prop_assert!(!reference.is_mailbox(mailbox));
            }
        }
        for shuffle in shuffles {
            let mut order = ops.clone();
            order.shuffle(&mut ChaCha20Rng::seed_from_u64(shuffle));
            let refs: Vec<&Op> = order.iter().collect();
            let shuffled = resolve(&genesis, &refs);
            prop_assert_eq!(mailboxes(&shuffled), mailboxes(&reference));
            prop_assert_eq!(shuffled.removed_mailboxes(), reference.removed_mailboxes());
            prop_assert_eq!(&shuffled, &reference);
            let log = replica(&genesis, order.clone());
            prop_assert_eq!(mailboxes(log.roster()), mailboxes(&reference));
            prop_assert_eq!(log.roster(), &reference);
            let mut batch = MembershipLog::new(genesis.clone());
            batch.extend(order);
            prop_assert_eq!(batch.roster(), &reference);
        }
    }
}

proptest! {
    #![proptest_config(proptest_seed::config(48))]

    /// Crowded histories (many mailbox keys, mostly mailbox proposals and approvals): never
    /// more than `MAX_MAILBOXES` current, and the same ones whatever the order.
    #[test]
    fn roster_mailboxes_never_exceed_the_cap_in_any_order(
        seed in any::<u64>(),
        len in 10usize..60,
        k in 1u8..=2,
        shuffle in any::<u64>(),
    ) {
        let (genesis, ops) = random_history_with(seed, len, k, 14, true);
        let all = replica(&genesis, ops.clone());
        let ops: Vec<Op> = ops.into_iter().filter(|o| all.holds(&o.id())).collect();
        let refs: Vec<&Op> = ops.iter().collect();
        let reference = resolve(&genesis, &refs);
        prop_assert!(reference.mailboxes().count() <= MAX_MAILBOXES);
        let mut order = ops.clone();
        order.shuffle(&mut ChaCha20Rng::seed_from_u64(shuffle));
        let refs: Vec<&Op> = order.iter().collect();
        prop_assert_eq!(&resolve(&genesis, &refs), &reference);
        let log = replica(&genesis, order);
        prop_assert_eq!(log.roster(), &reference);
    }
}

/// The crowded generator reaches the cap (so the property above is not vacuous).
#[test]
fn crowded_histories_reach_the_mailbox_cap() {
    let full = (0..32)
        .filter(|seed| {
            let (genesis, ops) = random_history_with(*seed, 50, 1 + (*seed % 2) as u8, 14, true);
            let refs: Vec<&Op> = ops.iter().collect();
            resolve(&genesis, &refs).mailboxes().count() == MAX_MAILBOXES
        })
        .count();
    assert!(full >= 4, "{full} of 32 crowded histories reached the cap");
}

/// The generator makes the cases the property is about: histories with admitted mailboxes,
/// removed ones and pending ones (so the property above is not vacuous).
#[test]
fn histories_cover_admitted_removed_and_pending_mailboxes() {
    let (mut admitted, mut removed, mut pending) = (0, 0, 0);
    for seed in 0..64 {
        let (genesis, ops) = random_history(seed, 30, 1 + (seed % 2) as u8);
        let refs: Vec<&Op> = ops.iter().collect();
        let roster = resolve(&genesis, &refs);
        admitted += usize::from(roster.mailboxes().next().is_some());
        removed += usize::from(!roster.removed_mailboxes().is_empty());
        pending += usize::from(
            roster
                .pending()
                .iter()
                .any(|p| matches!(p.kind, PendingKind::AddMailbox { .. })),
        );
    }
    assert!(
        admitted >= 8 && removed >= 8 && pending >= 4,
        "{admitted} {removed} {pending}"
    );
}
