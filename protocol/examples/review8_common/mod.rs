//! The set-up both Review 8 examples share: a founder, a member x admitted by her proposal, and
//! x's ops (key rotations) at any parents and date; and the process's CPU time.

use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis};
use lookout_protocol::text::{CollectiveSecret, SealedText, TextField};
use lookout_protocol::{CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const START: u64 = 1_790_000_000;

/// CPU time of this process (user + system), in seconds, from /proc/self/stat.
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

#[allow(dead_code)] // each example reads the fields it needs
pub struct World {
    pub founder: Identity,
    pub x: Identity,
    pub genesis: SignedGenesis,
    pub co: CollectiveId,
    /// The founder's proposal admitting x (one approval suffices under the default policy).
    pub add: Op,
}

impl World {
    pub fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let founder = Identity::generate_at(&mut rng, START);
        let x = Identity::generate_at(&mut rng, START);
        let genesis = SignedGenesis::create(
            &founder,
            &CollectiveSecret::from_bytes([3; 32]),
            "R8",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let co = genesis.id();
        let add = Op::create(
            &founder,
            co,
            vec![],
            START + 10,
            Action::ProposeAdd {
                identity: x.public(),
                name: SealedText {
                    nonce: [0; 24],
                    ciphertext: vec![0; TextField::MemberName.sealed_bytes()].into(),
                },
            },
        )
        .unwrap();
        Self {
            founder,
            x,
            genesis,
            co,
            add,
        }
    }

    /// An op of x's (a rotation of her agreement key to the same key) naming `parents`.
    pub fn xop(&self, parents: Vec<OpId>, at: u64) -> Op {
        Op::create(
            &self.x,
            self.co,
            parents,
            at,
            Action::RotateAgreementKey {
                identity: self.x.public(),
            },
        )
        .unwrap()
    }
}
