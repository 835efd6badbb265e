//! Seal a rotation to many members and report the time and the wire size (docs/BENCHMARKS.md).
//!
//! `cargo run --release -p lookout-protocol --example rotation -- [MEMBERS] [RUNS]`
//! (defaults 1,000 members, 21 runs). Prints the median, fastest and slowest time of
//! `KeyDelivery::create` (sealing every share, padding, signing, and decoding + verifying the
//! result, as the author's own node does), the time for one recipient to open its share, and the
//! encoded size, for the member count given and for the padding bucket's neighbours. One thread.
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
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(seal(&mut rng, &recipients));
            start.elapsed()
        })
        .collect();
    times.sort();
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
