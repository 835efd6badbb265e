//! Membership ops and key deliveries are padded (docs/PROTOCOL.md §4.1, §5): a rotation's size
//! says the collective's size only to within its power-of-two bucket, every op is the same size
//! whatever it does, and padding an author chose is refused unless it is exactly what the rules
//! fix, without amplification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod names;
use lookout_protocol::codec::{self, DecodeError};
use lookout_protocol::epoch::*;
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::*;
use lookout_protocol::{CollectiveId, MemberId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;
const COLLECTIVE: CollectiveId = CollectiveId([5; 32]);

fn identities(rng: &mut ChaCha20Rng, n: usize) -> Vec<Identity> {
    (0..n).map(|_| Identity::generate(rng)).collect()
}

fn rotation(rng: &mut ChaCha20Rng, author: &Identity, to: &[PublicIdentity]) -> KeyDelivery {
    let key = EpochKey::generate(rng);
    KeyDelivery::create(
        author,
        COLLECTIVE,
        &key,
        DeliveryKind::Rotation,
        vec![OpId([1; 32])],
        NOW,
        to,
        rng,
    )
    .unwrap()
}

/// The signed wrapper as the protocol encodes it: length-prefixed body, then the signature.
fn wrap(body: &[u8], signature: &[u8; 64]) -> Vec<u8> {
    let mut out = codec::encode(&body.to_vec());
    out.extend_from_slice(signature);
    out
}

/// `body` signed as its author would, whatever its padding.
fn signed_delivery(author: &Identity, body: &DeliveryBody) -> Vec<u8> {
    let bytes = codec::encode(body);
    wrap(&bytes, &author.sign(b"lookout key delivery v2", &bytes))
}

#[test]
fn rotations_to_5_and_to_7_members_have_the_same_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let author = Identity::generate(&mut rng);
    let members: Vec<PublicIdentity> = identities(&mut rng, 7)
        .iter()
        .map(Identity::public)
        .collect();
    let five = rotation(&mut rng, &author, &members[..5]);
    let seven = rotation(&mut rng, &author, &members);
    assert_eq!(five.encoded().len(), seven.encoded().len());
    assert_eq!(five.encoded().len(), 3164, "docs/PROTOCOL.md §5");
    // Different heads and dates are absorbed by the padding too.
    let key = EpochKey::generate(&mut rng);
    let other = KeyDelivery::create(
        &author,
        COLLECTIVE,
        &key,
        DeliveryKind::Share,
        (0..40u8).map(|i| OpId([i; 32])).collect(),
        u64::MAX / 3,
        &members[..1],
        &mut rng,
    )
    .unwrap();
    assert_eq!(other.encoded().len(), seven.encoded().len());
    // The bucket is a power of two: 9 members is the next size up.
    let more: Vec<PublicIdentity> = identities(&mut rng, 9)
        .iter()
        .map(Identity::public)
        .collect();
    let nine = rotation(&mut rng, &author, &more);
    assert!(nine.encoded().len() > seven.encoded().len());
    assert_eq!(delivery_slots(5), delivery_slots(7));
    assert_eq!(delivery_slots(600), delivery_slots(1000));
    assert_eq!(delivery_slots(1000), 1024);
}

#[test]
fn a_padded_rotation_to_1000_members_stays_under_150_kb_and_the_largest_fits_the_cap() {
    assert!(padded_body_len(delivery_slots(1000)) + 3 + 64 <= 150_000);
    assert!(padded_body_len(delivery_slots(MAX_RECIPIENTS)) + 3 + 64 <= MAX_DELIVERY_BYTES);
}

#[test]
fn every_recipient_opens_a_padded_delivery_and_nobody_else_does() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let author = Identity::generate(&mut rng);
    let members = identities(&mut rng, 5);
    let publics: Vec<PublicIdentity> = members.iter().map(Identity::public).collect();
    let key = EpochKey::generate(&mut rng);
    let delivery = KeyDelivery::create(
        &author,
        COLLECTIVE,
        &key,
        DeliveryKind::Rotation,
        vec![],
        NOW,
        &publics,
        &mut rng,
    )
    .unwrap();
    for member in &members {
        assert_eq!(delivery.open(member).unwrap().unwrap().id(), key.id());
    }
    assert!(delivery.open(&author).is_none());
    // A share moved to another recipient's slot does not open for them.
    let mut body = delivery.body().clone();
    let (a, b) = (
        body.shares[0].ciphertext.clone(),
        body.shares[1].ciphertext.clone(),
    );
    body.shares[0].ciphertext = b;
    body.shares[1].ciphertext = a;
    let swapped = KeyDelivery::sign_body(&author, &body).unwrap();
    let first = members
        .iter()
        .find(|m| m.member_id() == body.shares[0].recipient)
        .unwrap();
    assert!(matches!(
        swapped.open(first),
        Some(Err(EpochError::BadShare))
    ));
}

#[test]
fn hostile_delivery_padding_is_refused_cleanly() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let author = Identity::generate(&mut rng);
    let members: Vec<PublicIdentity> = identities(&mut rng, 3)
        .iter()
        .map(Identity::public)
        .collect();
    let honest = rotation(&mut rng, &author, &members);
    let body = honest.body().clone();
    // The honest bytes decode, and re-signing the same body gives the same bytes.
    assert_eq!(signed_delivery(&author, &body), honest.encoded());
    let refused = |bytes: &[u8]| KeyDelivery::decode(bytes, COLLECTIVE);
    let padding_error = |r: Result<KeyDelivery, EpochError>| matches!(r, Err(EpochError::Structure(s)) if s.contains("padding"));
    // A byte more, a byte less, a whole bucket more: validly signed, refused.
    for len in [
        body.padding.len() + 1,
        body.padding.len() - 1,
        body.padding.len() + 8 * SHARE_SLOT_BYTES,
    ] {
        let mut bad = body.clone();
        bad.padding = vec![0; len];
        assert!(
            padding_error(refused(&signed_delivery(&author, &bad))),
            "{len}"
        );
    }
    // Padding that carries anything but zeros.
    let mut bad = body.clone();
    bad.padding[7] = 1;
    assert!(padding_error(refused(&signed_delivery(&author, &bad))));
    // Padding that makes a 1-recipient delivery as large as the biggest bucket.
    let mut bad = body.clone();
    bad.padding = vec![0; padded_body_len(2048) - padded_body_len(8)];
    assert!(padding_error(refused(&signed_delivery(&author, &bad))));
    // A length prefix claiming far more padding than there are bytes: a decode error, no
    // allocation of the claimed size.
    let mut bytes = codec::encode(&DeliveryBody {
        padding: Vec::new(),
        ..body.clone()
    });
    bytes.pop(); // the empty padding's length, 0
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let signature = author.sign(b"lookout key delivery v2", &bytes);
    assert!(matches!(
        refused(&wrap(&bytes, &signature)),
        Err(EpochError::Decode(DecodeError::Malformed))
    ));
    // More than the cap is refused before anything is parsed.
    let mut bad = body.clone();
    bad.padding = vec![0; MAX_DELIVERY_BYTES];
    assert!(matches!(
        refused(&signed_delivery(&author, &bad)),
        Err(EpochError::Decode(DecodeError::TooLarge { .. }))
    ));
    // Another version is named as such (a newer peer is no hostile one).
    let mut bad = body;
    bad.version = 3;
    assert!(matches!(
        refused(&signed_delivery(&author, &bad)),
        Err(EpochError::UnsupportedVersion(3))
    ));
}

fn every_kind_of_op(rng: &mut ChaCha20Rng, author: &Identity, parents: Vec<OpId>) -> Vec<Op> {
    let other = Identity::generate(rng);
    let actions = vec![
        Action::ProposeAdd {
            identity: other.public(),
            name: names::name("A"),
        },
        Action::ProposeAdd {
            identity: other.public(),
            name: names::name("N".repeat(MAX_NAME_BYTES)),
        },
        Action::Approve {
            proposal: OpId([3; 32]),
        },
        Action::Remove {
            member: other.member_id(),
            reason: names::reason(String::new()),
        },
        Action::Remove {
            member: other.member_id(),
            reason: names::reason("r".repeat(MAX_REASON_BYTES)),
        },
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(&other, NOW),
        },
        Action::ProposePromote {
            member: other.member_id(),
        },
        Action::ProposeDemote {
            member: MemberId([9; 32]),
        },
    ];
    let mut ops: Vec<Op> = actions
        .into_iter()
        .map(|a| Op::create(author, COLLECTIVE, parents.clone(), NOW, a).unwrap())
        .collect();
    let mut me = Identity::generate(rng);
    let identity = me.rotate_agreement(NOW, rng);
    ops.push(
        Op::create(
            &me,
            COLLECTIVE,
            parents,
            u64::MAX,
            Action::RotateAgreementKey { identity },
        )
        .unwrap(),
    );
    ops
}

#[test]
fn every_op_kind_has_the_same_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let author = Identity::generate(&mut rng);
    let none = every_kind_of_op(&mut rng, &author, vec![]);
    let most = every_kind_of_op(
        &mut rng,
        &author,
        (0..MAX_PARENTS as u8).map(|i| OpId([i; 32])).collect(),
    );
    let size = none[0].encoded().len();
    assert_eq!(size, 1524, "docs/PROTOCOL.md §4.1");
    for op in none.iter().chain(&most) {
        assert_eq!(op.encoded().len(), size, "{:?}", op.body().action);
        assert_eq!(Op::decode(op.encoded(), COLLECTIVE).unwrap(), *op);
    }
    assert!(size <= MAX_OP_BYTES);
}

#[test]
fn hostile_op_padding_is_refused_cleanly() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let author = Identity::generate(&mut rng);
    let honest = Op::create(
        &author,
        COLLECTIVE,
        vec![],
        NOW,
        Action::ProposeDemote {
            member: MemberId([9; 32]),
        },
    )
    .unwrap();
    let sign = |body: &OpBody| {
        let bytes = codec::encode(body);
        wrap(&bytes, &author.sign(b"lookout membership op v3", &bytes))
    };
    assert_eq!(sign(honest.body()), honest.encoded());
    let structure = |bytes: &[u8]| matches!(Op::decode(bytes, COLLECTIVE), Err(OpError::Structure(s)) if s.contains("padding"));
    let len = honest.body().padding.len();
    for bad_len in [0, len - 1, len + 1, 2 * len] {
        let mut bad = honest.body().clone();
        bad.padding = vec![0; bad_len].into();
        assert!(structure(&sign(&bad)), "{bad_len}");
    }
    // A non-zero byte anywhere in padding of the right length, first, middle or last.
    for at in [0, len / 2, len - 1] {
        let mut bytes = honest.body().padding.to_vec();
        bytes[at] = 0x80;
        let mut bad = honest.body().clone();
        bad.padding = bytes.into();
        assert!(!bad.padding.is_zero());
        assert!(structure(&sign(&bad)), "{at}");
    }
    let mut bad = honest.body().clone();
    bad.padding = vec![0; MAX_OP_BYTES].into();
    assert!(matches!(
        Op::decode(&sign(&bad), COLLECTIVE),
        Err(OpError::Decode(DecodeError::TooLarge { .. }))
    ));
}
