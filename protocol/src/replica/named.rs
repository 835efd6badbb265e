//! The roster at the membership state an item names, without copying the current roster.

use std::sync::Arc;

use crate::membership::{MembershipLog, Roster};
use crate::OpId;

/// The roster at an item's named heads: the log's own current roster when the heads are its
/// current heads (most items name them once membership has settled), else the log's roster at
/// those heads ([`MembershipLog::roster_at`]). The same roster either way: `roster_at` of the
/// current heads is a copy of the current roster, which this spares (a roster of a large
/// collective is costly to copy and to keep in the log's cache).
pub(super) enum Named {
    /// The heads are the log's current heads.
    Current,
    /// The roster at other heads.
    At(Arc<Roster>),
}

impl Named {
    /// The roster at `heads` (`None`: some of those ops are not held yet).
    pub(super) fn of(log: &mut MembershipLog, heads: &[OpId]) -> Option<Self> {
        if is_current(log.roster().heads(), heads) {
            return Some(Self::Current);
        }
        log.roster_at(heads).map(Self::At)
    }

    /// The roster itself, read from `log` when it is the current one.
    pub(super) fn roster<'a>(&'a self, log: &'a MembershipLog) -> &'a Roster {
        match self {
            Self::Current => log.roster(),
            Self::At(roster) => roster,
        }
    }
}

/// Whether `heads`, as a set, are `current` (sorted, without repeats, as a roster's heads are):
/// the key `roster_at` compares.
fn is_current(current: &[OpId], heads: &[OpId]) -> bool {
    if heads.len() < current.len() {
        return false;
    }
    let mut key = heads.to_vec();
    key.sort();
    key.dedup();
    key == current
}

#[cfg(test)]
#[path = "../../tests/proptest_seed/mod.rs"]
mod proptest_seed;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! `Named::of` gives the roster `roster_at` gives, for random histories and any named heads:
    //! the current heads in any order, with repeats, subsets and supersets of them, other ops,
    //! and ids the log lacks.
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::{proptest_seed, Named};
    use crate::identity::Identity;
    use crate::membership::{
        Action, MembershipLog, Op, Policy, RevocationCertificate, SignedGenesis,
    };
    use crate::text::{CollectiveSecret, TextField};
    use crate::{MemberId, OpId};

    const NOW: u64 = 1_790_000_000;

    fn history(seed: u64, len: usize) -> (SignedGenesis, Vec<Op>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = CollectiveSecret::from_bytes([0x5e; 32]);
        let pool: Vec<Identity> = (0..6).map(|_| Identity::generate(&mut rng)).collect();
        let genesis = SignedGenesis::create_with_moderators(
            &pool[0],
            &secret,
            "named",
            "founder",
            Vec::new(),
            Policy::default(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let mut seal = |field| {
            secret
                .text_key()
                .seal(field, &MemberId([0; 32]), &MemberId([0; 32]), "x", &mut rng)
                .unwrap()
        };
        let names: Vec<_> = (0..len).map(|_| seal(TextField::MemberName)).collect();
        let reason = seal(TextField::RemovalReason);
        let mut ops: Vec<Op> = Vec::new();
        for (step, name) in names.into_iter().enumerate() {
            let author = if step < 4 {
                0
            } else {
                rng.gen_range(0..pool.len())
            };
            let target = rng.gen_range(1..pool.len());
            let mut parents = Vec::new();
            for _ in 0..rng.gen_range(0..=ops.len().min(3)) {
                parents.push(ops[rng.gen_range(0..ops.len())].id());
            }
            if !ops.is_empty() && rng.gen_bool(0.6) {
                parents.push(ops[ops.len() - 1].id());
            }
            let action = match (step, rng.gen_range(0..8)) {
                (0 | 1, _) | (_, 0..=2) => Action::ProposeAdd {
                    identity: pool[if step < 2 { step + 1 } else { target }].public(),
                    name,
                },
                (2 | 3, _) | (_, 3) => Action::ProposePromote {
                    member: pool[if step < 4 { step - 1 } else { target }].member_id(),
                },
                (_, 4..=5) => Action::Remove {
                    member: pool[target].member_id(),
                    reason: reason.clone(),
                },
                (_, 6) => Action::ProposeDemote {
                    member: pool[target].member_id(),
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

    proptest! {
        #![proptest_config(proptest_seed::config(64))]

        #[test]
        fn the_named_roster_is_roster_at(seed in any::<u64>(), len in 1usize..24, held in 0usize..24) {
            let (genesis, ops) = history(seed, len);
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6e61_6d65);
            let mut log = MembershipLog::new(genesis);
            // A prefix of the history is held (some ops may wait as orphans).
            for op in ops.iter().take(held.min(ops.len())) {
                let _ = log.insert(op.clone());
            }
            let current = log.roster().heads().to_vec();
            let all: Vec<OpId> = ops.iter().map(Op::id).collect();
            let mut candidates: Vec<Vec<OpId>> = vec![current.clone(), Vec::new()];
            let mut shuffled = current.clone();
            shuffled.shuffle(&mut rng);
            candidates.push(shuffled.clone());
            if let Some(first) = current.first() {
                let mut repeated = shuffled.clone();
                repeated.push(*first);
                candidates.push(repeated);
                candidates.push(current[1..].to_vec());
            }
            for _ in 0..6 {
                let take = rng.gen_range(0..=3.min(all.len()));
                let mut heads: Vec<OpId> = all.choose_multiple(&mut rng, take).copied().collect();
                if rng.gen_bool(0.5) {
                    heads.extend(current.iter().copied());
                }
                candidates.push(heads);
            }
            for heads in candidates {
                let named = Named::of(&mut log, &heads).map(|n| n.roster(&log).clone());
                let at = log.roster_at(&heads).map(|r| (*r).clone());
                prop_assert_eq!(named, at, "heads {:?}", heads);
            }
        }
    }
}
