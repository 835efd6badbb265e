//! Sealed membership text for tests of rules that never read a name: a fixed test secret and
//! names sealed deterministically (the same text seals to the same bytes, so op ids and
//! property-test histories stay reproducible). Tests that show names seal them properly with
//! [`Action::propose_add`](lookout_protocol::membership::Action::propose_add).
#![allow(dead_code, clippy::unwrap_used)]

use lookout_protocol::text::{CollectiveSecret, SealedText, TextField};
use lookout_protocol::MemberId;
use rand_chacha::rand_core::SeedableRng;

/// The test collectives' secret.
pub fn secret() -> CollectiveSecret {
    CollectiveSecret::from_bytes([0x5e; 32])
}

fn seal(field: TextField, text: &str) -> SealedText {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*blake3::hash(text.as_bytes()).as_bytes());
    secret()
        .text_key()
        .seal(
            field,
            &MemberId([0; 32]),
            &MemberId([0; 32]),
            text,
            &mut rng,
        )
        .unwrap()
}

/// A member's name, sealed (it opens for no real author: rules never read it).
pub fn name(text: impl AsRef<str>) -> SealedText {
    seal(TextField::MemberName, text.as_ref())
}

/// A removal reason, sealed.
pub fn reason(text: impl AsRef<str>) -> SealedText {
    seal(TextField::RemovalReason, text.as_ref())
}
