//! Random membership histories for the crate's property tests (k = 1): six keys, the first the
//! founder, who admits and promotes the next two; then any of the six proposing members,
//! promoting, demoting, removing, publishing self-revocations and rotating agreement keys, each op naming a few random earlier ops (often the latest) as parents. Most
//! ops by a non-member or without rights are dropped by the resolver, which is part of the point.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{Action, Op, Policy, RevocationCertificate, SignedGenesis};
use crate::identity::Identity;
use crate::text::{CollectiveSecret, TextField};
use crate::MemberId;

/// The fixed seeds helper (docs/TESTING.md), loaded once for the crate's unit tests.
#[path = "../../tests/proptest_seed/mod.rs"]
pub(crate) mod proptest_seed;

/// When the histories start.
pub(crate) const NOW: u64 = 1_790_000_000;
/// Seconds between consecutive ops: three steps are more than a day, so some agreement-key
/// rotations take effect and some are too soon.
const STEP: u64 = 40_000;

/// A genesis record and `len` ops, from `seed`.
#[allow(clippy::unwrap_used)]
pub(crate) fn history(seed: u64, len: usize) -> (SignedGenesis, Vec<Op>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let secret = CollectiveSecret::from_bytes([0x5e; 32]);
    let mut pool: Vec<Identity> = (0..6).map(|_| Identity::generate(&mut rng)).collect();
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
        let at = NOW + step as u64 * STEP;
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
        let action = match (step, rng.gen_range(0..9)) {
            (0 | 1, _) | (_, 0..=2) => Action::ProposeAdd {
                identity: pool[if step < 2 { step + 1 } else { target }].public(),
                name,
            },
            (2 | 3, _) | (_, 3) => Action::ProposePromote {
                member: pool[if step < 4 { step - 1 } else { target }].member_id(),
            },
            (_, 4) => Action::Remove {
                member: pool[target].member_id(),
                reason: reason.clone(),
            },
            (_, 5) => Action::ProposeDemote {
                member: pool[target].member_id(),
            },
            (_, 6) => Action::PublishRevocation {
                certificate: RevocationCertificate::create(&pool[target], at),
            },
            _ => {
                let mut rng = ChaCha20Rng::seed_from_u64(seed ^ step as u64);
                Action::RotateAgreementKey {
                    identity: pool[author].rotate_agreement(at, &mut rng),
                }
            }
        };
        ops.push(Op::create(&pool[author], genesis.id(), parents, at, action).unwrap());
    }
    (genesis, ops)
}
