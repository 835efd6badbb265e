//! Batched decrypt + verify per envelope against raw single `verify_strict`, interleaved round by
//! round in one run so the ratios hold on a loaded machine (docs/BENCHMARKS.md, issue 12).
//!
//! `cargo run --release -p lookout-protocol --example verify_ratio -- [ROUNDS]` (default 31).
//! Each round times, one after another on one thread: 256 raw `verify_strict` calls (key
//! already decompressed, 600-byte message), 256 ZIP-215 single verifications
//! (`sig::verify_message`), 256 single `envelope::open`, four `envelope::open_batch` of 64 and
//! one of 256 (256 realistic alerts by 8 authors), and the same 256 signatures through
//! `sig::verify_batch` (ZIP-215) and ed25519-dalek's cofactorless `verify_batch` (replaced).
//! Prints the median per-item time of each and the median of the per-round ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::EpochKey;
use lookout_protocol::identity::Identity;
use lookout_protocol::{sig, CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;
const N: usize = 256;

fn alert() -> Alert {
    let mut identifiers = Identifiers {
        phones: vec!["07700 900123".into()],
        plates: vec!["AB12 CDE".into()],
        names: vec!["Dave".into()],
        handles: Vec::new(),
        description: "tall, grey beard, drives a blue van".into(),
    };
    identifiers.normalise("GB").unwrap();
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(31, |a| a.parse().expect("ROUNDS"));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let authors: Vec<Identity> = (0..8).map(|_| Identity::generate(&mut rng)).collect();
    let collective = CollectiveId([5; 32]);
    let key = EpochKey::generate(&mut rng);
    let envelopes: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let author = &authors[i % authors.len()];
            let body = InnerBody {
                collective,
                epoch: key.id(),
                author: author.member_id(),
                seq: i as u64 + 1,
                heads: vec![OpId([3; 32])],
                timestamp: NOW + i as u64,
                expires: NOW + 30 * 86_400,
                content: Content::Alert(alert()),
            };
            envelope::seal(author, &key, body, &mut rng).unwrap().bytes
        })
        .collect();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let signers: Vec<SigningKey> = (0..8).map(|_| SigningKey::generate(&mut rng)).collect();
    let signed: Vec<([u8; 32], Vec<u8>, [u8; 64])> = (0..N)
        .map(|i| {
            let k = &signers[i % signers.len()];
            let body = vec![i as u8; 600];
            let s = k.sign(&sig::signed_message(b"bench", &body)).to_bytes();
            (k.verifying_key().to_bytes(), body, s)
        })
        .collect();
    let messages: Vec<Vec<u8>> = signed
        .iter()
        .map(|(_, b, _)| sig::signed_message(b"bench", b))
        .collect();
    let dalek_keys: Vec<VerifyingKey> = signed
        .iter()
        .map(|(k, _, _)| VerifyingKey::from_bytes(k).unwrap())
        .collect();
    let dalek_sigs: Vec<Signature> = signed
        .iter()
        .map(|(_, _, s)| Signature::from_bytes(s))
        .collect();

    let names = [
        "raw verify_strict (key decompressed)",
        "ZIP-215 sig::verify_message",
        "envelope::open (single)",
        "envelope::open_batch of 64",
        "envelope::open_batch of 256",
        "ZIP-215 sig::verify_batch of 256 (8 keys)",
        "dalek verify_batch of 256 (replaced)",
    ];
    let mut per_item: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let per = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / N as f64;
    for _ in 0..rounds {
        let t = Instant::now();
        for (i, m) in messages.iter().enumerate() {
            dalek_keys[i].verify_strict(m, &dalek_sigs[i]).unwrap();
        }
        per_item[0].push(per(t));
        let t = Instant::now();
        for (i, (k, _, s)) in signed.iter().enumerate() {
            assert!(sig::verify_message(k, &messages[i], s));
        }
        per_item[1].push(per(t));
        let t = Instant::now();
        for e in &refs {
            envelope::open(e, collective, |_| Some(&key)).unwrap();
        }
        per_item[2].push(per(t));
        let t = Instant::now();
        for chunk in refs.chunks(64) {
            let opened = envelope::open_batch(chunk, collective, |_| Some(&key));
            assert!(opened.iter().all(Result::is_ok));
        }
        per_item[3].push(per(t));
        let t = Instant::now();
        let opened = envelope::open_batch(&refs, collective, |_| Some(&key));
        assert!(opened.iter().all(Result::is_ok));
        per_item[4].push(per(t));
        let t = Instant::now();
        let items: Vec<sig::Item<'_>> = signed
            .iter()
            .map(|(key, body, sig)| sig::Item {
                key,
                ctx: b"bench",
                body,
                sig,
            })
            .collect();
        assert!(sig::verify_batch(&items).iter().all(|ok| *ok));
        per_item[5].push(per(t));
        let t = Instant::now();
        let msg_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&msg_refs, &dalek_sigs, &dalek_keys).unwrap();
        per_item[6].push(per(t));
    }
    let ratios = |a: usize, b: usize| {
        let mut r: Vec<f64> = per_item[a]
            .iter()
            .zip(&per_item[b])
            .map(|(x, y)| x / y)
            .collect();
        median(&mut r)
    };
    println!("{rounds} rounds of {N} items, one thread; median per item:");
    for (name, times) in names.iter().zip(per_item.iter()) {
        let mut t = times.clone();
        println!("  {name:45} {:8.1} µs", median(&mut t));
    }
    println!("median per-round ratios:");
    println!(
        "  raw verify_strict / open_batch of 64:   {:.2}",
        ratios(0, 3)
    );
    println!(
        "  raw verify_strict / open_batch of 256:  {:.2}",
        ratios(0, 4)
    );
    println!(
        "  open (single) / open_batch of 64:       {:.2}",
        ratios(2, 3)
    );
    println!(
        "  open (single) / open_batch of 256:      {:.2}",
        ratios(2, 4)
    );
    println!(
        "  ZIP-215 single / verify_strict:         {:.2}",
        ratios(1, 0)
    );
    println!(
        "  dalek batch / ZIP-215 batch (256):      {:.2}",
        ratios(6, 5)
    );
}
