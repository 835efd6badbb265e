//! Seal a rotation to many members and report the time and the wire size (docs/BENCHMARKS.md).
//!
//! `cargo run --release -p lookout-protocol --example rotation -- [MEMBERS] [RUNS]`
//! (defaults 1,000 members, 21 runs). Prints the median, fastest and slowest time of
//! `KeyDelivery::create` (sealing every share, padding, signing, and decoding + verifying the
//! result, as the author's own node does), the time for one recipient to open its share, and the
//! encoded size, for the member count given and for the padding bucket's neighbours. One thread.
//! In the same run, interleaved with it, it times the sealing this replaced (one HPKE
//! `single_shot_seal` per recipient, RFC 9180 base mode, X25519/HKDF-SHA256/ChaCha20-Poly1305,
//! unpadded, no signature) so the two can be compared on a loaded machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use lookout_protocol::epoch::{delivery_slots, DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::{CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let members: usize = args.next().map_or(1000, |a| a.parse().expect("MEMBERS"));
    let runs: usize = args.next().map_or(21, |a| a.parse().expect("RUNS"));
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let author = Identity::generate(&mut rng);
    let identities: Vec<Identity> = (0..members).map(|_| Identity::generate(&mut rng)).collect();
    let recipients: Vec<PublicIdentity> = identities.iter().map(Identity::public).collect();
    let key = EpochKey::generate(&mut rng);
    let collective = CollectiveId([5; 32]);
    let heads = vec![OpId([1; 32])];
    let seal = |rng: &mut ChaCha20Rng, to: &[PublicIdentity]| {
        KeyDelivery::create(
            &author,
            collective,
            &key,
            DeliveryKind::Rotation,
            heads.clone(),
            NOW,
            to,
            rng,
        )
        .unwrap()
    };
    let mut times = Vec::with_capacity(runs);
    let mut hpke_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(seal(&mut rng, &recipients));
        times.push(start.elapsed());
        let start = Instant::now();
        std::hint::black_box(hpke_seal_each(&mut rng, &key, &recipients));
        hpke_times.push(start.elapsed());
    }
    times.sort();
    hpke_times.sort();
    let delivery = seal(&mut rng, &recipients);
    let start = Instant::now();
    let opened = delivery.open(&identities[members / 2]).unwrap().unwrap();
    let open_time = start.elapsed();
    assert_eq!(opened.id(), key.id());
    let median = times[times.len() / 2];
    println!(
        "rotation to {members} members: median {:.1} ms ({:.1} µs per recipient), fastest {:.1} ms, slowest {:.1} ms over {runs} runs",
        ms(median),
        ms(median) * 1000.0 / members as f64,
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    let hpke_median = hpke_times[hpke_times.len() / 2];
    println!(
        "  same run, the old sealing (HPKE per recipient, unpadded, unsigned): median {:.1} ms; new/old = {:.2}",
        ms(hpke_median),
        ms(median) / ms(hpke_median),
    );
    println!(
        "  encoded {} bytes ({:.1} KB), padded to {} slots; one recipient opens its share in {:.0} µs",
        delivery.encoded().len(),
        delivery.encoded().len() as f64 / 1000.0,
        delivery_slots(members),
        open_time.as_secs_f64() * 1e6,
    );
    let slots = delivery_slots(members);
    for n in [slots / 2 + 1, members, slots] {
        if n == 0 || n > recipients.len() {
            continue;
        }
        let size = seal(&mut rng, &recipients[..n]).encoded().len();
        println!("  {n} recipients: {size} bytes");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The sealing a delivery used before format 2: one HPKE base-mode seal per recipient.
fn hpke_seal_each(rng: &mut ChaCha20Rng, key: &EpochKey, to: &[PublicIdentity]) -> usize {
    use hpke::{Deserializable, OpModeS, Serializable};
    type Kem = hpke::kem::X25519HkdfSha256;
    let mut rng09 = Rng09(rng);
    let mut bytes = 0;
    for recipient in to {
        let public = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.agreement).unwrap();
        let (enc, ciphertext) =
            hpke::single_shot_seal::<hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256, Kem, _>(
                &OpModeS::Base,
                &public,
                b"lookout epoch key v1",
                &*key.to_bytes(),
                &recipient.member.0,
                &mut rng09,
            )
            .unwrap();
        bytes += enc.to_bytes().len() + ciphertext.len();
    }
    bytes
}

struct Rng09<'a>(&'a mut ChaCha20Rng);

impl rand_core_09::RngCore for Rng09<'_> {
    fn next_u32(&mut self) -> u32 {
        rand_chacha::rand_core::RngCore::next_u32(self.0)
    }
    fn next_u64(&mut self) -> u64 {
        rand_chacha::rand_core::RngCore::next_u64(self.0)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_chacha::rand_core::RngCore::fill_bytes(self.0, dst);
    }
}

impl rand_core_09::CryptoRng for Rng09<'_> {}
