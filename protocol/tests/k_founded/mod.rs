//! A collective needing `k` approvals, founded by `k` moderators of a pool of keys (the pool's
//! first key founds it, the next `k - 1` are co-founding moderators), as the property tests and
//! the reviews build it.
#![allow(dead_code)]

use crate::names;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{NewModerator, Policy, SignedGenesis};
use rand_chacha::ChaCha20Rng;

/// The genesis of a collective named `title`, founded at `at` by `pool[0]` with `pool[1..k]`.
pub fn founded_by_k(
    pool: &[Identity],
    k: u8,
    title: &str,
    at: u64,
    rng: &mut ChaCha20Rng,
) -> SignedGenesis {
    let policy = Policy {
        approvals_required: k,
        ..Policy::default()
    };
    let co: Vec<NewModerator> = pool[1..usize::from(k)]
        .iter()
        .enumerate()
        .map(|(i, m)| NewModerator {
            identity: m.public(),
            name: format!("co{i}"),
        })
        .collect();
    SignedGenesis::create_with_moderators(
        &pool[0],
        &names::secret(),
        title,
        "founder",
        co,
        policy,
        at,
        rng,
    )
    .unwrap()
}
