//! The protocol core's hot paths, with the raw primitives they are built on measured in the same
//! run for comparison. Results and the command are in `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p lookout-protocol --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, Envelope, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::{resolve, Action, NewModerator, Op, Policy, SignedGenesis};
use lookout_protocol::text::{CollectiveSecret, SealedText, TextField};
use lookout_protocol::{sig, CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;
const BATCH: usize = 64;
/// Where curve25519-dalek's multi-scalar multiplication switches to Pippenger (≥ 190 points).
const LARGE_BATCH: usize = 256;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A realistic alert: a few identifiers and a paragraph of description.
fn alert() -> Alert {
    let mut identifiers = Identifiers {
        phones: vec!["07700 900123".into()],
        plates: vec!["AB12 CDE".into()],
        names: vec!["Dave".into()],
        handles: Vec::new(),
        description: "tall, grey beard, drives a blue van".into(),
    };
    identifiers
        .normalise("GB")
        .expect("a valid fictional UK number");
    Alert {
        category: Category::Violence,
        severity: Severity::High,
        description: "Became violent when asked to pay, grabbed my wrist and would not let go. \
                      Left in a blue van towards the ring road."
            .into(),
        identifiers,
        area: "Station Road".into(),
        incident_time: Some(NOW - 3_600),
        language: "en".into(),
        on_behalf: false,
    }
}

fn body(collective: CollectiveId, author: &Identity, key: &EpochKey, seq: u64) -> InnerBody {
    InnerBody {
        collective,
        epoch: key.id(),
        author: author.member_id(),
        seq,
        heads: vec![OpId([3; 32])],
        timestamp: NOW + seq,
        expires: NOW + 30 * 86_400,
        content: Content::Alert(alert()),
    }
}

struct Setup {
    collective: CollectiveId,
    key: EpochKey,
    authors: Vec<Identity>,
    envelopes: Vec<Envelope>,
}

fn setup() -> Setup {
    let mut rng = rng(1);
    let authors: Vec<Identity> = (0..8).map(|_| Identity::generate(&mut rng)).collect();
    let genesis = SignedGenesis::create(
        &authors[0],
        &CollectiveSecret::from_bytes([3; 32]),
        "Bench",
        "a",
        Policy::default(),
        NOW,
        &mut rng,
    )
    .unwrap();
    let collective = genesis.id();
    let key = EpochKey::generate(&mut rng);
    let envelopes = (0..LARGE_BATCH)
        .map(|i| {
            let author = &authors[i % authors.len()];
            let body = body(collective, author, &key, i as u64 + 1);
            envelope::seal(author, &key, body, &mut rng).unwrap()
        })
        .collect();
    Setup {
        collective,
        key,
        authors,
        envelopes,
    }
}

fn envelopes(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    let mut r = rng(2);
    group.bench_function("seal (sign + encrypt)", |b| {
        b.iter_batched(
            || body(s.collective, &s.authors[0], &s.key, 1),
            |body| envelope::seal(&s.authors[0], &s.key, body, &mut r).unwrap(),
            BatchSize::SmallInput,
        );
    });
    let bytes = &s.envelopes[0].bytes;
    group.bench_function("open (decrypt + verify)", |b| {
        b.iter(|| envelope::open(black_box(bytes), s.collective, |_| Some(&s.key)).unwrap());
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    let refs: Vec<&[u8]> = s.envelopes[..BATCH]
        .iter()
        .map(|e| e.bytes.as_slice())
        .collect();
    group.bench_function("open_batch of 64 (decrypt + batch verify)", |b| {
        b.iter(|| {
            let opened = envelope::open_batch(black_box(&refs), s.collective, |_| Some(&s.key));
            assert!(opened.iter().all(Result::is_ok));
            opened
        });
    });
    group.throughput(Throughput::Elements(LARGE_BATCH as u64));
    let refs: Vec<&[u8]> = s.envelopes.iter().map(|e| e.bytes.as_slice()).collect();
    group.bench_function("open_batch of 256 (decrypt + batch verify)", |b| {
        b.iter(|| {
            let opened = envelope::open_batch(black_box(&refs), s.collective, |_| Some(&s.key));
            assert!(opened.iter().all(Result::is_ok));
            opened
        });
    });
    group.finish();
}

/// A k = 2 collective of 1,000 members: founder, a second moderator, then 1,000 adds each
/// proposed by the founder and approved by the second moderator (2,002 ops).
fn large_history() -> (SignedGenesis, Vec<Op>) {
    let mut rng = rng(3);
    let founder = Identity::generate(&mut rng);
    let second = Identity::generate(&mut rng);
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    let co = vec![NewModerator {
        identity: second.public(),
        name: "s".into(),
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
    let mut ops: Vec<Op> = Vec::new();
    let push = |ops: &mut Vec<Op>, author: &Identity, action: Action| {
        let parents = ops.last().map(Op::id).into_iter().collect();
        let op = Op::create(author, collective, parents, NOW, action).unwrap();
        let id = op.id();
        ops.push(op);
        id
    };
    let add = |identity: PublicIdentity| Action::ProposeAdd {
        identity,
        name: SealedText {
            nonce: [0; 24],
            ciphertext: vec![0; TextField::MemberName.sealed_bytes()].into(),
        },
    };
    for _ in 0..998 {
        let member = Identity::generate(&mut rng).public();
        let proposal = push(&mut ops, &founder, add(member));
        push(&mut ops, &second, Action::Approve { proposal });
    }
    (genesis, ops)
}

fn membership(c: &mut Criterion) {
    let (genesis, ops) = large_history();
    let refs: Vec<&Op> = ops.iter().collect();
    let roster = resolve(&genesis, &refs);
    assert_eq!(roster.len(), 1_000);
    let mut group = c.benchmark_group("membership");
    group.sample_size(10);
    group.bench_function("resolve 1,000 members, k = 2 (1,996 ops)", |b| {
        b.iter(|| resolve(&genesis, black_box(&refs)));
    });
    group.finish();
}

fn rotation(c: &mut Criterion) {
    let mut rng = rng(4);
    let author = Identity::generate(&mut rng);
    let recipients: Vec<PublicIdentity> = (0..1000)
        .map(|_| Identity::generate(&mut rng).public())
        .collect();
    let key = EpochKey::generate(&mut rng);
    let collective = CollectiveId([5; 32]);
    let mut group = c.benchmark_group("epoch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("seal a rotation to 1,000 members", |b| {
        b.iter(|| {
            KeyDelivery::create(
                &author,
                collective,
                &key,
                DeliveryKind::Rotation,
                vec![OpId([1; 32])],
                NOW,
                black_box(&recipients),
                &mut rng,
            )
            .unwrap()
        });
    });
    group.finish();
}

/// The floor under `open`: one strict Ed25519 verification and one 1 KiB AEAD operation.
fn primitives(c: &mut Criterion) {
    let mut rng = rng(5);
    let signing = SigningKey::generate(&mut rng);
    let verifying: VerifyingKey = signing.verifying_key();
    let message = vec![7u8; 600];
    let signature: Signature = signing.sign(&message);
    let mut group = c.benchmark_group("raw");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519 verify_strict", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&message), &signature)
                .unwrap()
        });
    });
    let bytes = verifying.to_bytes();
    let sig_bytes = signature.to_bytes();
    group.bench_function("ed25519 ZIP-215 verify (sig::verify_message)", |b| {
        b.iter(|| assert!(sig::verify_message(&bytes, black_box(&message), &sig_bytes)));
    });
    // Batches of 64 signatures by 8 keys (as the envelope batch): the one rule's batch
    // (ZIP-215, one term per key) and ed25519-dalek's cofactorless batch it replaced.
    let keys: Vec<SigningKey> = (0..8).map(|_| SigningKey::generate(&mut rng)).collect();
    let signed: Vec<([u8; 32], Vec<u8>, [u8; 64])> = (0..BATCH)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let body = vec![i as u8; 600];
            let sig = key.sign(&sig::signed_message(b"bench", &body)).to_bytes();
            (key.verifying_key().to_bytes(), body, sig)
        })
        .collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("ZIP-215 sig::verify_batch of 64 (8 keys)", |b| {
        b.iter(|| {
            let items: Vec<sig::Item<'_>> = signed
                .iter()
                .map(|(key, body, sig)| sig::Item {
                    key,
                    ctx: b"bench",
                    body,
                    sig,
                })
                .collect();
            assert!(sig::verify_batch(black_box(&items)).iter().all(|ok| *ok));
        });
    });
    let dalek_keys: Vec<VerifyingKey> = signed
        .iter()
        .map(|(key, _, _)| VerifyingKey::from_bytes(key).unwrap())
        .collect();
    let dalek_sigs: Vec<Signature> = signed
        .iter()
        .map(|(_, _, sig)| Signature::from_bytes(sig))
        .collect();
    group.bench_function(
        "ed25519-dalek verify_batch of 64 (cofactorless, replaced)",
        |b| {
            b.iter(|| {
                let messages: Vec<Vec<u8>> = signed
                    .iter()
                    .map(|(_, body, _)| sig::signed_message(b"bench", body))
                    .collect();
                let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                ed25519_dalek::verify_batch(black_box(&refs), &dalek_sigs, &dalek_keys).unwrap();
            });
        },
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519 key decompression", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(&bytes)).unwrap());
    });
    let cipher = XChaCha20Poly1305::new(&[9u8; 32].into());
    let nonce = XNonce::from([1u8; 24]);
    let plaintext = vec![0u8; 1024];
    group.bench_function("xchacha20poly1305 encrypt 1 KiB", |b| {
        b.iter(|| {
            cipher
                .encrypt(&nonce, black_box(plaintext.as_slice()))
                .unwrap()
        });
    });
    let ciphertext = cipher.encrypt(&nonce, plaintext.as_slice()).unwrap();
    group.bench_function("xchacha20poly1305 decrypt 1 KiB", |b| {
        b.iter(|| {
            cipher
                .decrypt(&nonce, black_box(ciphertext.as_slice()))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, envelopes, membership, rotation, primitives);
criterion_main!(benches);
