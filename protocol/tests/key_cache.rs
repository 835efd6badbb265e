//! The replica's cache of decompressed author keys (single verifications, the gossip path):
//! it holds only current members' keys, loses a member's key once her removal resolves, and no
//! item, whatever author it claims, can put a key in it that then verifies something the one
//! signature rule would refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::*;
use lookout_protocol::identity::*;
use lookout_protocol::membership::*;
use lookout_protocol::replica::{Ingested, Refusal, SetKind, State};
use lookout_protocol::MemberId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

/// A founder (k = 1) and one member, a replica of the founder's that holds both and the group
/// key, and that key.
struct World {
    rng: ChaCha20Rng,
    log: MembershipLog,
    founder: Identity,
    member: Identity,
    state: State,
    key: EpochKey,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate_at(&mut rng, NOW);
        let member = Identity::generate_at(&mut rng, NOW);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "Night Shift",
            "Ana",
            Policy::default(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let mut log = MembershipLog::new(genesis.clone());
        let add = Op::create(
            &founder,
            log.collective(),
            log.writer_heads(&founder.member_id()),
            NOW + 10,
            Action::ProposeAdd {
                identity: member.public(),
                name: names::name("Bea"),
            },
        )
        .unwrap();
        log.insert(add);
        let key = EpochKey::generate(&mut rng);
        let to: Vec<PublicIdentity> = log.roster().members().map(|m| m.identity.clone()).collect();
        let delivery = KeyDelivery::create(
            &founder,
            log.collective(),
            &key,
            DeliveryKind::Rotation,
            log.roster().heads().to_vec(),
            NOW + 20,
            &to,
            &mut rng,
        )
        .unwrap();
        let mut state = State::new(genesis);
        for op in log.ops() {
            let step = state.ingest(SetKind::Ops, op.encoded(), &founder, NOW + 30);
            assert_eq!(step.outcome, Ingested::Accepted);
        }
        let step = state.ingest(SetKind::Deliveries, delivery.encoded(), &founder, NOW + 30);
        assert_eq!(step.outcome, Ingested::Accepted);
        Self {
            rng,
            log,
            founder,
            member,
            state,
            key,
        }
    }

    /// An alert claiming `author`, signed by `signer` (the member when `None`), naming the
    /// current heads.
    fn post(&mut self, author: MemberId, signer: Option<&Identity>, seq: u64, at: u64) -> Vec<u8> {
        let signer = signer.unwrap_or(&self.member);
        let mut identifiers = Identifiers {
            phones: vec!["07700 900123".into()],
            plates: Vec::new(),
            names: Vec::new(),
            handles: Vec::new(),
            description: String::new(),
        };
        identifiers.normalise("GB").unwrap();
        let body = InnerBody {
            collective: self.log.collective(),
            epoch: self.key.id(),
            author,
            seq,
            heads: self.log.roster().heads().to_vec(),
            timestamp: at,
            expires: at + 7 * 86_400,
            content: Content::Alert(Alert {
                category: Category::Violence,
                severity: Severity::High,
                description: format!("alert {seq}"),
                identifiers,
                area: "Station Road".into(),
                incident_time: None,
                language: "en".into(),
                on_behalf: false,
            }),
        };
        envelope::seal_signed_with(author, &self.key, body, &mut self.rng, |inner| {
            signer.sign(envelope::INNER_SIG_CONTEXT, inner)
        })
        .unwrap()
        .bytes
    }

    fn ingest(&mut self, bytes: &[u8], at: u64) -> Ingested {
        self.state
            .ingest(SetKind::Envelopes, bytes, &self.founder, at)
            .outcome
    }
}

fn bad_signature() -> Ingested {
    Ingested::Rejected(Refusal::BadSignature(SetKind::Envelopes))
}

#[test]
fn a_removed_members_key_leaves_the_cache_when_her_removal_resolves() {
    let mut w = World::new(1);
    let bea = w.member.member_id();
    let post = w.post(bea, None, 1, NOW + 100);
    assert_eq!(w.ingest(&post, NOW + 200), Ingested::Accepted);
    assert!(w.state.key_cached(&bea), "a current member's key is kept");

    let remove = Op::create(
        &w.founder,
        w.log.collective(),
        w.log.writer_heads(&w.founder.member_id()),
        NOW + 300,
        Action::Remove {
            member: bea,
            reason: names::reason("turned"),
        },
    )
    .unwrap();
    w.log.insert(remove.clone());
    let step = w
        .state
        .ingest(SetKind::Ops, remove.encoded(), &w.founder, NOW + 400);
    assert_eq!(step.outcome, Ingested::Accepted);
    assert!(w.state.log().roster().is_removed(&bea));

    // Her post after the removal is refused, and her key is no longer held.
    let after = w.post(bea, None, 2, NOW + 500);
    assert!(
        matches!(
            w.ingest(&after, NOW + 600),
            Ingested::Rejected(_) | Ingested::Ignored(_)
        ),
        "a removed member's post"
    );
    assert!(!w.state.key_cached(&bea), "a removed member's key is gone");
}

#[test]
fn an_item_claiming_an_author_cannot_poison_the_key_cache() {
    let mut w = World::new(2);
    let bea = w.member.member_id();
    let stranger = Identity::generate_at(&mut w.rng, NOW);

    // A stranger's own post: refused, and a non-member's key is not kept.
    let own = w.post(stranger.member_id(), Some(&stranger), 1, NOW + 100);
    assert!(w.ingest(&own, NOW + 200).is_rejected());
    assert!(!w.state.key_cached(&stranger.member_id()));

    // Claiming Bea before her key is cached, then after: refused both times.
    let forged = w.post(bea, Some(&stranger), 2, NOW + 100);
    assert_eq!(w.ingest(&forged, NOW + 200), bad_signature());
    let genuine = w.post(bea, None, 3, NOW + 110);
    assert_eq!(w.ingest(&genuine, NOW + 200), Ingested::Accepted);
    assert!(w.state.key_cached(&bea));
    let forged = w.post(bea, Some(&stranger), 4, NOW + 120);
    assert_eq!(w.ingest(&forged, NOW + 200), bad_signature());
    // Bea's own posts still verify through the cached key.
    let genuine = w.post(bea, None, 5, NOW + 130);
    assert_eq!(w.ingest(&genuine, NOW + 200), Ingested::Accepted);
}
