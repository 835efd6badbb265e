//! The world of the held-item tests (`held_items.rs`, `forget_post.rs`): a founder and three
//! members admitted one after another, a rotation to all four, and alerts sealed under its key.
#![allow(dead_code)]

use crate::names;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis};
use lookout_protocol::{CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const START: u64 = 1_790_000_000;

/// A collective of a founder and three members admitted one after another (k = 1): the
/// replica's member `r`, an honest member `m`, and `x`, who turns. The founder rotates to all
/// four; the key is returned for members to seal posts with.
pub struct World {
    pub rng: ChaCha20Rng,
    pub founder: Identity,
    pub r: Identity,
    pub m: Identity,
    pub x: Identity,
    pub genesis: SignedGenesis,
    /// The admissions of r, m, x, in order (each names the one before).
    pub admissions: Vec<Op>,
    pub rotation: KeyDelivery,
    pub key: EpochKey,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate(&mut rng);
        let (r, m, x) = (
            Identity::generate(&mut rng),
            Identity::generate(&mut rng),
            Identity::generate(&mut rng),
        );
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "Order",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let mut admissions: Vec<Op> = Vec::new();
        for (i, who) in [&r, &m, &x].into_iter().enumerate() {
            let parents = admissions
                .last()
                .map(|op| vec![op.id()])
                .unwrap_or_default();
            admissions.push(
                Op::create(
                    &founder,
                    genesis.id(),
                    parents,
                    START + 60 * (i as u64 + 1),
                    Action::ProposeAdd {
                        identity: who.public(),
                        name: names::name(format!("member {i}")),
                    },
                )
                .unwrap(),
            );
        }
        let key = EpochKey::generate(&mut rng);
        let rotation = KeyDelivery::create(
            &founder,
            genesis.id(),
            &key,
            DeliveryKind::Rotation,
            vec![admissions[2].id()],
            START + 300,
            &[founder.public(), r.public(), m.public(), x.public()],
            &mut rng,
        )
        .unwrap();
        Self {
            rng,
            founder,
            r,
            m,
            x,
            genesis,
            admissions,
            rotation,
            key,
        }
    }

    pub fn collective(&self) -> CollectiveId {
        self.genesis.id()
    }
}

/// An alert by `author` naming `heads`, sealed under `key`.
pub fn alert(
    key: &EpochKey,
    collective: CollectiveId,
    author: &Identity,
    heads: Vec<OpId>,
    seq: u64,
    text: &str,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let now = START + 600;
    envelope::seal(
        author,
        key,
        InnerBody {
            collective,
            epoch: key.id(),
            author: author.member_id(),
            seq,
            heads,
            timestamp: now,
            expires: now + 86_400,
            content: Content::Alert(Alert {
                category: Category::Robbery,
                severity: Severity::Medium,
                description: text.into(),
                identifiers: Identifiers {
                    phones: vec!["+447700900123".into()],
                    ..Identifiers::default()
                },
                area: "harbour".into(),
                incident_time: None,
                language: "en".into(),
                on_behalf: false,
            }),
        },
        rng,
    )
    .unwrap()
    .bytes
}

pub const NOW: u64 = START + 900;
