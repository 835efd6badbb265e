//! The one signature rule (ZIP-215 plus refusal of small-order keys, `lookout_protocol::sig`):
//! single and batched verification give the same verdict on every input, including signatures
//! whose R or key carries a torsion component, and mangled ones.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod proptest_seed;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use lookout_protocol::sig;
use proptest::prelude::*;
use sha2::{Digest, Sha512};

const CTX: &[u8] = b"lookout test v1";

#[derive(Clone, Copy, Debug)]
enum Mangle {
    None,
    /// One bit of S flipped.
    S,
    /// One bit of R flipped.
    R,
    /// The body changed after signing.
    Body,
    /// S + ℓ: the same scalar, non-canonically encoded.
    NonCanonicalS,
    /// The key replaced by a small-order point, with R small-order and S = 0.
    SmallOrderKey,
}

#[derive(Clone, Debug)]
struct Crafted {
    key: [u8; 32],
    body: Vec<u8>,
    sig: [u8; 64],
    honest: bool,
}

/// Sign `body` with secret scalar `a` (from `seed`), the key and R carrying the torsion points
/// `key_torsion` and `r_torsion` (0 is the identity: none), then apply `mangle`.
fn craft(
    seed: u8,
    key_torsion: usize,
    r_torsion: usize,
    body: &[u8],
    mangle: Mangle,
    bit: u8,
) -> Crafted {
    let a = Scalar::from_hash(Sha512::new().chain_update([seed, 1]));
    let key = (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[key_torsion]).compress();
    let message = sig::signed_message(CTX, body);
    let r = Scalar::from_hash(Sha512::new().chain_update([seed, 2]).chain_update(&message));
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[r_torsion]).compress();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(key.as_bytes())
            .chain_update(&message),
    );
    let s = r + k * a;
    let mut out = Crafted {
        key: key.to_bytes(),
        body: body.to_vec(),
        sig: [0; 64],
        honest: matches!(mangle, Mangle::None),
    };
    out.sig[..32].copy_from_slice(big_r.as_bytes());
    out.sig[32..].copy_from_slice(s.as_bytes());
    let bit = usize::from(bit);
    match mangle {
        Mangle::None => {}
        Mangle::S => out.sig[32 + (bit % 252) / 8] ^= 1 << (bit % 8),
        Mangle::R => out.sig[(bit % 255) / 8] ^= 1 << (bit % 8),
        Mangle::Body => out.body.push(bit as u8),
        Mangle::NonCanonicalS => {
            // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
            const L: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut carry = 0u16;
            for (i, l) in L.iter().enumerate() {
                let sum = u16::from(out.sig[32 + i]) + u16::from(*l) + carry;
                out.sig[32 + i] = sum as u8;
                carry = sum >> 8;
            }
        }
        Mangle::SmallOrderKey => {
            out.key = EIGHT_TORSION[key_torsion].compress().to_bytes();
            out.sig = [0; 64];
            out.sig[..32].copy_from_slice(EIGHT_TORSION[r_torsion].compress().as_bytes());
        }
    }
    out
}

fn single(c: &Crafted) -> bool {
    sig::verify(&c.key, CTX, &c.body, &c.sig)
}

fn batch(cs: &[Crafted]) -> Vec<bool> {
    let items: Vec<sig::Item<'_>> = cs
        .iter()
        .map(|c| sig::Item {
            key: &c.key,
            ctx: CTX,
            body: &c.body,
            sig: &c.sig,
        })
        .collect();
    sig::verify_batch(&items)
}

#[test]
fn torsion_in_r_or_the_key_is_accepted_singly_and_in_batches() {
    // verify_strict (cofactorless) refuses each of these; ZIP-215 accepts each, alone or batched.
    for t in 1..8 {
        let with_r = craft(1, 0, t, b"alert", Mangle::None, 0);
        let with_key = craft(2, t, 0, b"alert", Mangle::None, 0);
        let with_both = craft(3, t, 8 - t, b"alert", Mangle::None, 0);
        // A torsioned R always fails the cofactorless equation (a torsioned key only when the
        // torsion survives multiplication by k).
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&with_r.key).unwrap();
        let message = sig::signed_message(CTX, &with_r.body);
        let dalek_sig = ed25519_dalek::Signature::from_bytes(&with_r.sig);
        assert!(strict.verify_strict(&message, &dalek_sig).is_err());
        for c in [&with_r, &with_key, &with_both] {
            assert!(single(c), "torsion {t}");
        }
        assert_eq!(batch(&[with_r, with_key, with_both]), vec![true; 3]);
    }
}

#[test]
fn a_small_order_key_is_refused_singly_and_in_batches() {
    for t in 0..8 {
        let c = craft(4, t, (t + 3) % 8, b"anything", Mangle::SmallOrderKey, 0);
        assert!(!single(&c));
        let honest = craft(5, 0, 0, b"fine", Mangle::None, 0);
        assert_eq!(batch(&[honest, c]), vec![true, false]);
    }
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        4 => Just(Mangle::None),
        1 => Just(Mangle::S),
        1 => Just(Mangle::R),
        1 => Just(Mangle::Body),
        1 => Just(Mangle::NonCanonicalS),
        1 => Just(Mangle::SmallOrderKey),
    ]
}

proptest! {
    #![proptest_config(proptest_seed::config(64))]

    /// For every batch of valid, invalid and mangled signatures with torsion added to R and the
    /// key (a few signers, so keys repeat and the batch coalesces their terms), the batch's
    /// verdict on each item is the single verdict, and an untouched signature always verifies.
    #[test]
    fn single_and_batch_verdicts_agree(
        items in prop::collection::vec(
            (0u8..3, 0usize..8, 0usize..8, prop::collection::vec(any::<u8>(), 0..40), mangle(), any::<u8>()),
            1..12,
        )
    ) {
        let crafted: Vec<Crafted> = items
            .iter()
            .map(|(seed, kt, rt, body, m, bit)| craft(*seed, *kt, *rt, body, *m, *bit))
            .collect();
        let singles: Vec<bool> = crafted.iter().map(single).collect();
        prop_assert_eq!(batch(&crafted), singles.clone());
        for (c, ok) in crafted.iter().zip(&singles) {
            if c.honest {
                prop_assert!(*ok);
            }
        }
    }
}
