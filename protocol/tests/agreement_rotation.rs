//! Periodic rotation of a member's X25519 agreement key (docs/PROTOCOL.md §4.3): who may
//! rotate, how often it takes effect, where new deliveries are sealed, and that a replaced
//! secret, once destroyed, opens nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::epoch::*;
use lookout_protocol::identity::*;
use lookout_protocol::membership::*;
use lookout_protocol::passphrase::KdfParams;
use lookout_protocol::replica::{
    Ingested, KeyAnswer, SetKind, State, MAX_NEW_SHARES_PER_MEMBER_PER_DAY,
};
use lookout_protocol::CollectiveId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;
const DAY: u64 = 86_400;

struct World {
    rng: ChaCha20Rng,
    log: MembershipLog,
    founder: Identity,
    member: Identity,
}

impl World {
    /// A founder (moderator, k = 1) and one admitted member.
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
        let mut world = Self {
            rng,
            log: MembershipLog::new(genesis),
            founder,
            member,
        };
        let add = Action::ProposeAdd {
            identity: world.member.public(),
            name: names::name("Bea"),
        };
        world.op(true, NOW + 10, add);
        assert!(world.log.roster().is_member(&world.member.member_id()));
        world
    }

    fn id(&self) -> CollectiveId {
        self.log.collective()
    }

    /// An op by the founder (`true`) or the member, naming the current heads, inserted.
    fn op(&mut self, by_founder: bool, at: u64, action: Action) -> Op {
        let author = if by_founder {
            &self.founder
        } else {
            &self.member
        };
        let heads = self.log.writer_heads(&author.member_id());
        let op = Op::create(author, self.id(), heads, at, action).unwrap();
        self.log.insert(op.clone());
        op
    }

    /// The member rotates their agreement key at `at` and publishes it.
    fn member_rotates(&mut self, at: u64) -> Op {
        let identity = self.member.rotate_agreement(at, &mut self.rng);
        self.op(false, at, Action::RotateAgreementKey { identity })
    }

    fn roster_key(&self) -> [u8; 32] {
        self.log
            .roster()
            .member(&self.member.member_id())
            .unwrap()
            .identity
            .agreement
    }

    /// The founder rotates the group key to every member of the current roster.
    fn rotation(&mut self, at: u64) -> (EpochKey, KeyDelivery) {
        let key = EpochKey::generate(&mut self.rng);
        let to: Vec<PublicIdentity> = self
            .log
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let delivery = KeyDelivery::create(
            &self.founder,
            self.id(),
            &key,
            DeliveryKind::Rotation,
            self.log.roster().heads().to_vec(),
            at,
            &to,
            &mut self.rng,
        )
        .unwrap();
        delivery.check_authority(self.log.roster()).unwrap();
        (key, delivery)
    }

    /// A copy of the member's identity as a seizure at this moment would find it.
    fn seize_member(&mut self) -> Identity {
        let sealed = self
            .member
            .seal_without_agreement(b"pw", KdfParams::TESTING, &mut self.rng)
            .unwrap();
        Identity::unseal_with_agreement(b"pw", &sealed, Some(&self.member.agreement_keys()))
            .unwrap()
    }
}

#[test]
fn rotation_replaces_the_key_in_the_roster() {
    let mut w = World::new(1);
    let before = w.roster_key();
    assert_eq!(before, w.member.agreement_public());
    let op = w.member_rotates(NOW + 8 * DAY);
    assert!(!w.log.roster().dropped().contains_key(&op.id()));
    assert_ne!(w.roster_key(), before);
    assert_eq!(w.roster_key(), w.member.agreement_public());
    // Every replica holding the same ops agrees, in whatever order they came.
    assert_eq!(
        resolve(w.log.genesis(), &w.log.ops().collect::<Vec<_>>()),
        *w.log.roster()
    );
}

#[test]
fn deliveries_after_rotation_open_only_with_the_new_secret() {
    let mut w = World::new(2);
    let (old_key, old_delivery) = w.rotation(NOW + DAY);
    let seized_before = w.seize_member();
    w.member_rotates(NOW + 8 * DAY);
    let (new_key, new_delivery) = w.rotation(NOW + 8 * DAY + 60);
    // Sealed to the new key: the member opens it, the identity as it was before cannot.
    assert_eq!(
        new_delivery.open(&w.member).unwrap().unwrap().id(),
        new_key.id()
    );
    assert!(matches!(
        new_delivery.open(&seized_before),
        Some(Err(EpochError::BadShare))
    ));
    // During the overlap, the old delivery still opens (it may have been in flight).
    assert_eq!(
        old_delivery.open(&w.member).unwrap().unwrap().id(),
        old_key.id()
    );
    // A delivery still naming the old key is allowed only at heads where it was current.
    assert!(old_delivery.check_authority(w.log.roster()).is_err());
}

#[test]
fn after_the_overlap_the_old_secret_is_gone_and_a_captured_delivery_stays_shut() {
    let mut w = World::new(3);
    let (_, captured) = w.rotation(NOW + DAY); // what a watcher of the network keeps
    let old_public = w.member.agreement_public();
    let old_secret = w.seize_member().agreement_keys()[..32].to_vec();
    w.member_rotates(NOW + 8 * DAY);
    let roster_key = w.roster_key();
    // Within the overlap the old secret is kept; the policy says not to rotate again yet.
    let within = agreement_policy(&w.member, Some(&roster_key), NOW + 9 * DAY);
    assert_eq!(
        within,
        AgreementActions {
            rotate: false,
            forget: vec![]
        }
    );
    // After it, the policy destroys it.
    let after = NOW + 8 * DAY + AGREEMENT_OVERLAP_SECS;
    let actions = agreement_policy(&w.member, Some(&roster_key), after);
    assert_eq!(actions.forget, vec![old_public]);
    for public in &actions.forget {
        assert!(w.member.forget_agreement(public));
    }
    // What a seizure now finds: the sealed record and the agreement keys hold no trace of the
    // old secret, and the captured delivery does not open with them.
    let stored = w.member.agreement_keys();
    assert!(!stored
        .windows(32)
        .any(|window| window == old_secret.as_slice()));
    let sealed = w
        .member
        .seal_without_agreement(b"pw", KdfParams::TESTING, &mut w.rng)
        .unwrap();
    let seized = Identity::unseal_with_agreement(b"pw", &sealed, Some(&stored)).unwrap();
    assert!(!seized.holds_agreement(&old_public));
    assert!(matches!(
        captured.open(&seized),
        Some(Err(EpochError::BadShare))
    ));
    // A week after the rotation, the next one is due.
    let due = agreement_policy(&seized, Some(&roster_key), NOW + 15 * DAY);
    assert!(due.rotate);
}

#[test]
fn the_policy_keeps_a_key_the_roster_still_names_and_never_more_than_a_few() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut me = Identity::generate_at(&mut rng, NOW);
    let first = me.agreement_public();
    assert!(!agreement_policy(&me, Some(&first), NOW + DAY).rotate);
    assert!(agreement_policy(&me, Some(&first), NOW + AGREEMENT_ROTATION_SECS).rotate);
    assert!(
        !agreement_policy(&me, None, NOW + 100 * DAY).rotate,
        "not a member"
    );
    // Rotations published but not (yet) taken in: the key the roster names is kept whatever
    // its age, the others beyond the cap are destroyed.
    for i in 1..=5 {
        me.rotate_agreement(NOW + i * AGREEMENT_ROTATION_SECS, &mut rng);
    }
    let actions = agreement_policy(&me, Some(&first), NOW + 5 * AGREEMENT_ROTATION_SECS + 1);
    assert!(!actions.forget.contains(&first));
    assert_eq!(
        me.retired_agreements().len() - actions.forget.len(),
        MAX_RETIRED_AGREEMENTS
    );
}

#[test]
fn a_member_cannot_rotate_another_members_key() {
    let mut w = World::new(5);
    // An op naming someone else's identity does not even decode.
    let founder_new = w.founder.rotate_agreement(NOW + 8 * DAY, &mut w.rng);
    let heads = w.log.writer_heads(&w.member.member_id());
    let forged = Op::create(
        &w.member,
        w.id(),
        heads,
        NOW + 8 * DAY,
        Action::RotateAgreementKey {
            identity: founder_new,
        },
    );
    assert!(matches!(forged, Err(OpError::Structure(_))));
    // Taking over another member's current key (signing it as one's own) has no effect.
    let founder_key = w
        .log
        .roster()
        .member(&w.founder.member_id())
        .unwrap()
        .identity
        .agreement;
    let mut copy = w.member.public();
    copy.agreement = founder_key;
    let signer = &w.member;
    copy.agreement_sig = sign_agreement(signer, &founder_key);
    copy.verify().unwrap();
    let before = w.roster_key();
    let op = w.op(
        false,
        NOW + 8 * DAY,
        Action::RotateAgreementKey { identity: copy },
    );
    assert!(w.log.roster().dropped().contains_key(&op.id()));
    assert_eq!(w.roster_key(), before);
}

/// The member's signature over an X25519 key, as `PublicIdentity` carries it.
fn sign_agreement(signer: &Identity, agreement: &[u8; 32]) -> [u8; 64] {
    signer.sign(b"lookout agreement key v1", agreement)
}

#[test]
fn rotations_by_a_removed_member_are_ignored() {
    let mut w = World::new(6);
    let member = w.member.member_id();
    w.op(
        true,
        NOW + DAY,
        Action::Remove {
            member,
            reason: names::reason("turned"),
        },
    );
    assert!(w.log.roster().is_removed(&member));
    let op = w.member_rotates(NOW + 8 * DAY);
    assert!(w.log.roster().dropped().contains_key(&op.id()));
    assert!(!w.log.roster().is_member(&member));
    // A removed member's key never reaches a delivery's recipients.
    let (_, delivery) = w.rotation(NOW + 8 * DAY + 60);
    assert!(delivery.recipients().all(|r| r != member));
}

#[test]
fn a_flood_of_rotations_is_bounded() {
    let mut w = World::new(7);
    // A hundred rotations a minute apart: the first takes effect, the rest are dropped.
    let ops: Vec<Op> = (0..100)
        .map(|i| w.member_rotates(NOW + 8 * DAY + 60 * i))
        .collect();
    let dropped = w.log.roster().dropped();
    assert!(!dropped.contains_key(&ops[0].id()));
    assert!(ops[1..].iter().all(|op| dropped.contains_key(&op.id())));
    let first = match &ops[0].body().action {
        Action::RotateAgreementKey { identity } => identity.agreement,
        _ => unreachable!(),
    };
    assert_eq!(w.roster_key(), first);
    // A day later by its date, one more may.
    let next = w.member_rotates(NOW + 9 * DAY + 60);
    assert!(!w.log.roster().dropped().contains_key(&next.id()));
    // The log keeps at most its daily quota of such ops per author and day of their dates.
    let mut w = World::new(8);
    let ops: Vec<Op> = (0..MAX_OPS_PER_AUTHOR_PER_DAY as u64 + 20)
        .map(|i| w.member_rotates(NOW + 8 * DAY + i))
        .collect();
    let kept = ops.iter().filter(|op| w.log.holds(&op.id())).count();
    assert!(kept <= MAX_OPS_PER_AUTHOR_PER_DAY);
}

#[test]
fn a_member_who_keeps_rotating_gets_a_bounded_number_of_new_shares() {
    let mut w = World::new(9);
    let (mut founder_state, delivery) = founder_with_a_rotation(&mut w);
    let epoch = delivery.epoch();
    let mut made = 0;
    // Each day by the ops' dates one rotation takes effect; on one day of the answerer's clock
    // the member asks again after each. (Ops dated ahead of the clock are refused since
    // Review 3, H2, so each rotation is taken in at its own date: the bound on shares must
    // hold whatever the rotations' dates.)
    for day in 0..(MAX_NEW_SHARES_PER_MEMBER_PER_DAY as u64 + 10) {
        let dated = NOW + (8 + 2 * day) * DAY;
        let op = w.member_rotates(dated);
        accepted(
            &mut founder_state,
            SetKind::Ops,
            op.encoded(),
            &w.founder,
            dated,
        );
        let answers = founder_state.answer_key_request(
            &w.founder,
            &w.member.member_id(),
            &[epoch],
            NOW + 2 * DAY,
            &mut w.rng,
        );
        for answer in answers {
            if let KeyAnswer::New(bytes) = answer {
                accepted(
                    &mut founder_state,
                    SetKind::Deliveries,
                    &bytes,
                    &w.founder,
                    NOW + 2 * DAY,
                );
                made += 1;
            }
        }
    }
    assert_eq!(made, MAX_NEW_SHARES_PER_MEMBER_PER_DAY);
}

/// The founder's replica with every op of `w` and a rotation dated a day on, and that rotation.
fn founder_with_a_rotation(w: &mut World) -> (State, KeyDelivery) {
    let mut founder_state = State::new(w.log.genesis().clone());
    let (_, delivery) = w.rotation(NOW + DAY);
    for op in w.log.ops() {
        accepted(
            &mut founder_state,
            SetKind::Ops,
            op.encoded(),
            &w.founder,
            NOW + DAY,
        );
    }
    accepted(
        &mut founder_state,
        SetKind::Deliveries,
        delivery.encoded(),
        &w.founder,
        NOW + DAY,
    );
    (founder_state, delivery)
}

fn accepted(state: &mut State, kind: SetKind, bytes: &[u8], me: &Identity, now: u64) {
    assert_eq!(
        state.ingest(kind, bytes, me, now).outcome,
        Ingested::Accepted
    );
}

/// Deliveries are kept encoded only (branch `sim`, `replica::KeptDelivery`): what is kept is the
/// accepted bytes with the fields of their verified body, and a share of one's own asked for
/// again is found by decoding those bytes and sent again byte for byte, while a member whose
/// key has since rotated gets a new share, not the old one.
#[test]
fn a_kept_delivery_is_its_bytes_and_is_sent_again_from_them() {
    let mut w = World::new(10);
    let (mut founder_state, delivery) = founder_with_a_rotation(&mut w);
    let kept = founder_state.deliveries().get(&delivery.id()).unwrap();
    assert_eq!(kept.encoded(), delivery.encoded());
    assert_eq!(kept.epoch(), delivery.epoch());
    assert_eq!(kept.author(), delivery.body().author);
    assert_eq!(kept.kind(), DeliveryKind::Rotation);
    assert_eq!(kept.heads(), delivery.body().heads.as_slice());
    assert_eq!(kept.timestamp(), delivery.body().timestamp);
    assert_eq!(&kept.decode(w.id()).unwrap(), &delivery);

    let ask = |state: &mut State, w: &mut World| {
        state.answer_key_request(
            &w.founder,
            &w.member.member_id(),
            &[delivery.epoch()],
            NOW + 2 * DAY,
            &mut w.rng,
        )
    };
    let again = ask(&mut founder_state, &mut w);
    assert_eq!(again, vec![KeyAnswer::Again(delivery.encoded().to_vec())]);
    // Once the member's agreement key has rotated, the kept rotation no longer carries a share
    // for it: a new one is made.
    let op = w.member_rotates(NOW + 8 * DAY);
    accepted(
        &mut founder_state,
        SetKind::Ops,
        op.encoded(),
        &w.founder,
        NOW + 8 * DAY,
    );
    let answers = ask(&mut founder_state, &mut w);
    assert!(
        matches!(answers.as_slice(), [KeyAnswer::New(_)]),
        "{answers:?}"
    );
}
