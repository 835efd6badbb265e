//! The one signature rule: every Ed25519 signature Lookout checks is checked here.
//!
//! Rule (docs/PROTOCOL.md §1.3): [ZIP-215] verification, with the cofactored equation
//! `[8]([S]B − R − [k]A) = 0`, `k = SHA-512(R ‖ A ‖ M)`, `S` canonical (`< ℓ`), `A` and `R` any
//! encodings that decompress (non-canonical `y` and small-order points included); plus one
//! Lookout rule: a public key `A` of small order is refused (with such a key, a small-order `R`
//! and `S = 0` "sign" every message).
//!
//! Why not `verify_strict`: cofactorless single verification and a randomized batch do not agree
//! on every input. A signature whose `R` (or key) carries a torsion component fails
//! `verify_strict` yet passes a cofactorless batch whenever that signature's random coefficient
//! is a multiple of 8, so a hostile member could craft an alert one replica accepts and another
//! refuses. With the cofactored equation the torsion component is multiplied away in both the
//! single and the batch check: for any input, a batch accepts exactly when every item would be
//! accepted alone (up to the batch's 2⁻¹²⁸ chance of accepting a bad one), so a node may verify
//! singly or in batches and reach the same verdict as every other node.
//!
//! Signing is unchanged (ed25519-dalek's RFC 8032 signatures; honest signatures verify under both
//! rules).
//!
//! [ZIP-215]: https://zips.z.cash/zip-0215

use std::collections::HashMap;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Verify `sig` by `key` over `body` signed in context `ctx` (the signed bytes are
/// `len(ctx) as u8 ‖ ctx ‖ body`, see [`signed_message`]).
pub fn verify(key: &[u8; 32], ctx: &[u8], body: &[u8], sig: &[u8; 64]) -> bool {
    verify_message(key, &signed_message(ctx, body), sig)
}

/// [`verify`] for a message that already carries its own context in its first bytes (the
/// node's hello proofs). Same rule.
pub fn verify_message(key: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    acceptable_key(key)
        && VerificationKey::try_from(*key)
            .and_then(|k| k.verify(&Signature::from_bytes(sig), message))
            .is_ok()
}

/// Most keys a [`KeyCache`] holds (a roster's members; beyond it, keys are decompressed per
/// verification as without a cache).
pub const MAX_CACHED_KEYS: usize = 4096;

/// Decompressed verification keys, so a key is decompressed once rather than twice per
/// signature ([`verify`] decompresses it for [`acceptable_key`] and again to verify).
///
/// An entry is computed from the key bytes alone (an [`acceptable_key`], decompressed), so a
/// cached verification says exactly what [`verify`] says: nothing an item claims can put a
/// wrong point under a key. Which keys are cached is the caller's choice (a replica caches the
/// keys of its current roster's members and empties the cache when the roster changes), and the
/// cache holds at most [`MAX_CACHED_KEYS`].
#[derive(Default)]
pub struct KeyCache {
    keys: HashMap<[u8; 32], VerificationKey>,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`verify`], with `key` cached for next time if `cache_it` and there is room. Same
    /// verdict as [`verify`] for every input.
    pub fn verify(
        &mut self,
        key: &[u8; 32],
        ctx: &[u8],
        body: &[u8],
        sig: &[u8; 64],
        cache_it: bool,
    ) -> bool {
        let vk = match self.keys.get(key) {
            Some(vk) => *vk,
            None => {
                if !acceptable_key(key) {
                    return false;
                }
                let Ok(vk) = VerificationKey::try_from(*key) else {
                    return false;
                };
                if cache_it && self.keys.len() < MAX_CACHED_KEYS {
                    self.keys.insert(*key, vk);
                }
                vk
            }
        };
        vk.verify(&Signature::from_bytes(sig), &signed_message(ctx, body))
            .is_ok()
    }

    /// Whether `key` is cached.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains_key(key)
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forget every key.
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

/// Whether `key` may sign at all: it decompresses to a curve point that is not of small order.
/// Every verification here checks it; identities check it when they are verified.
pub fn acceptable_key(key: &[u8; 32]) -> bool {
    CompressedEdwardsY(*key)
        .decompress()
        .is_some_and(|point| !point.is_small_order())
}

/// Whether `key` may be *admitted* as a signer (a member's or a mailbox's id): an
/// [`acceptable_key`] that is also torsion-free and in its canonical encoding. Under the
/// cofactored rule a key `A + T` (`T` a torsion point) or a second encoding of `A` verifies the
/// signatures of whoever holds `A`'s secret, so without this one secret could stand behind
/// several ids (eight torsion variants), and a revocation or removal of one id would not cover
/// the others. Honest keys (`[a]B`) always pass. Checked where a key enters (identities,
/// mailbox ids), not on every signature.
pub fn admissible_key(key: &[u8; 32]) -> bool {
    CompressedEdwardsY(*key).decompress().is_some_and(|point| {
        !point.is_small_order() && point.is_torsion_free() && point.compress().0 == *key
    })
}

/// One signature to check in a batch, as for [`verify`].
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The signer's public key.
    pub key: &'a [u8; 32],
    /// The signing context.
    pub ctx: &'a [u8],
    /// The signed body.
    pub body: &'a [u8],
    /// The signature.
    pub sig: &'a [u8; 64],
}

/// Verify many signatures at once: entry `i` of the answer is exactly what [`verify`] says of
/// item `i`. All are checked in one cofactored batch equation (one term per distinct key, so a
/// batch of alerts from a few authors costs little more than one multi-scalar multiplication);
/// only if the batch fails is each checked alone, so one bad signature refuses exactly its item.
///
/// The batch's random coefficients come from a hash of the whole batch (keys, signatures,
/// messages), as in ed25519-dalek: the core stays deterministic, and a forger cannot know them
/// before fixing every input.
pub fn verify_batch(items: &[Item<'_>]) -> Vec<bool> {
    let mut keys: HashMap<[u8; 32], bool> = HashMap::new();
    let mut verifier = batch::Verifier::new();
    let mut queued: Vec<Option<batch::Item>> = Vec::with_capacity(items.len());
    let mut seed = blake3::Hasher::new_derive_key("lookout signature batch coefficients v1");
    for item in items {
        let ok = *keys
            .entry(*item.key)
            .or_insert_with(|| acceptable_key(item.key));
        if !ok {
            queued.push(None);
            continue;
        }
        let message = signed_message(item.ctx, item.body);
        seed.update(item.key)
            .update(item.sig)
            .update(&(message.len() as u64).to_le_bytes())
            .update(&message);
        let queued_item = batch::Item::from((
            VerificationKeyBytes::from(*item.key),
            Signature::from_bytes(item.sig),
            &message[..],
        ));
        verifier.queue(queued_item.clone());
        queued.push(Some(queued_item));
    }
    let rng = ChaCha20Rng::from_seed(*seed.finalize().as_bytes());
    let all_ok = queued.iter().any(Option::is_some) && verifier.verify(rng).is_ok();
    queued
        .into_iter()
        .map(|item| match item {
            None => false,
            Some(_) if all_ok => true,
            Some(item) => item.verify_single().is_ok(),
        })
        .collect()
}

/// The exact bytes a signature covers: context length, context, message.
pub fn signed_message(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + context.len() + message.len());
    out.push(u8::try_from(context.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(context);
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn honest_signatures_verify_and_others_do_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let sig = key.sign(&signed_message(b"ctx", b"body")).to_bytes();
        assert!(verify(&public, b"ctx", b"body", &sig));
        assert!(!verify(&public, b"ctx2", b"body", &sig));
        assert!(!verify(&public, b"ctx", b"bodY", &sig));
        let mut bad = sig;
        bad[40] ^= 1;
        assert!(!verify(&public, b"ctx", b"body", &bad));
        let items = [
            Item {
                key: &public,
                ctx: b"ctx",
                body: b"body",
                sig: &sig,
            },
            Item {
                key: &public,
                ctx: b"ctx",
                body: b"body",
                sig: &bad,
            },
            Item {
                key: &public,
                ctx: b"ctx",
                body: b"body",
                sig: &sig,
            },
        ];
        assert_eq!(verify_batch(&items), vec![true, false, true]);
        assert_eq!(verify_batch(&items[..1]), vec![true]);
        assert!(verify_batch(&[]).is_empty());
    }

    #[test]
    fn a_key_cache_gives_the_rules_verdict_and_keeps_what_it_is_told() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let sig = key.sign(&signed_message(b"ctx", b"body")).to_bytes();
        let mut bad = sig;
        bad[40] ^= 1;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut small = [0u8; 64];
        small[0] = 1;
        let mut cache = KeyCache::new();
        assert!(cache.verify(&public, b"ctx", b"body", &sig, false));
        assert!(cache.is_empty(), "not kept unless asked");
        for _ in 0..2 {
            assert!(cache.verify(&public, b"ctx", b"body", &sig, true));
            assert!(!cache.verify(&public, b"ctx", b"body", &bad, true));
            assert!(!cache.verify(&public, b"ctx2", b"body", &sig, true));
        }
        assert!(cache.contains(&public));
        // A small-order key is refused and never kept.
        assert!(!cache.verify(&identity, b"c", b"any", &small, true));
        assert!(!cache.contains(&identity));
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert!(!cache.contains(&public));
    }

    #[test]
    fn a_small_order_key_signs_nothing() {
        // The identity point as the key, the identity as R and S = 0: the cofactored equation
        // holds for every message, so only the explicit key check stops it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let zebra = VerificationKey::try_from(identity).map(|k| {
            k.verify(&Signature::from_bytes(&sig), &signed_message(b"c", b"any"))
                .is_ok()
        });
        assert_eq!(zebra, Ok(true), "ZIP-215 alone accepts it");
        assert!(!acceptable_key(&identity));
        assert!(!verify(&identity, b"c", b"any", &sig));
        let item = Item {
            key: &identity,
            ctx: b"c",
            body: b"any",
            sig: &sig,
        };
        assert_eq!(verify_batch(&[item]), vec![false]);
    }
}
