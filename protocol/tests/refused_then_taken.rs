//! Regression tests for a convergence bug found by the simulation's scale run (`scale_1000` with
//! 200 replicas, seed 12): a replica remembered every refusal by the refused bytes and answered
//! `Duplicate` when they came again, including refusals that hold only until something else
//! arrives. A member's op that gossip brought before her admission was refused ("never a
//! member"), and every later sync that fetched it again got `Duplicate`: that replica's roster
//! never took the op in (the run ended with the moderator lacking a published revocation every
//! other replica held). The same held for an item dated ahead of the replica's clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, RevocationCertificate, SignedGenesis};
use lookout_protocol::replica::{Ingested, Refusal, SetKind, State};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const START: u64 = 1_790_000_000;

fn founded(rng: &mut ChaCha20Rng, founder: &Identity) -> SignedGenesis {
    SignedGenesis::create(
        founder,
        &names::secret(),
        "Order",
        "f",
        Policy::default(),
        START,
        rng,
    )
    .unwrap()
}

/// `by`'s op proposing `who` for admission under the display name `name`.
fn propose_add(
    by: &Identity,
    collective: lookout_protocol::CollectiveId,
    parents: Vec<lookout_protocol::OpId>,
    at: u64,
    who: &Identity,
    name: &str,
) -> Op {
    Op::create(
        by,
        collective,
        parents,
        at,
        Action::ProposeAdd {
            identity: who.public(),
            name: names::name(name),
        },
    )
    .unwrap()
}

#[test]
fn an_op_that_arrived_before_its_authors_admission_is_taken_in_when_fetched_again() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let founder = Identity::generate(&mut rng);
    let member = Identity::generate(&mut rng);
    let observer = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();

    // The founder admits the member (k = 1); the member then writes an op naming it.
    let admission = propose_add(&founder, collective, Vec::new(), START + 60, &member, "m");
    let members_op = Op::create(
        &member,
        collective,
        vec![admission.id()],
        START + 120,
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(&observer, START),
        },
    )
    .unwrap();

    let mut state = State::new(genesis);
    let now = START + 180;
    // Gossip brings the member's op first: not hers to write yet, as far as this replica knows.
    let first = state.ingest(SetKind::Ops, members_op.encoded(), &observer, now);
    assert_eq!(first.outcome, Ingested::Ignored(Refusal::NeverAMember));
    // Then her admission, then a sync fetches her op again (a peer holds it).
    let admitted = state.ingest(SetKind::Ops, admission.encoded(), &observer, now);
    assert_eq!(admitted.outcome, Ingested::Accepted);
    let again = state.ingest(SetKind::Ops, members_op.encoded(), &observer, now);
    assert_eq!(again.outcome, Ingested::Accepted, "refused for good");
    assert!(state.log().contains(&members_op.id()));
}

#[test]
fn a_delivery_dated_ahead_of_the_clock_is_taken_in_once_the_clock_gets_there() {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let founder = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let heads = genesis.id();
    let key = EpochKey::generate(&mut rng);
    let dated = START + 3_600;
    let rotation = KeyDelivery::create(
        &founder,
        heads,
        &key,
        DeliveryKind::Rotation,
        Vec::new(),
        dated,
        &[founder.public()],
        &mut rng,
    )
    .unwrap();

    let mut state = State::new(genesis);
    let early = state.ingest(SetKind::Deliveries, rotation.encoded(), &founder, START);
    assert_eq!(
        early.outcome,
        Ingested::Ignored(Refusal::ClockSkew(SetKind::Deliveries))
    );
    let later = state.ingest(SetKind::Deliveries, rotation.encoded(), &founder, dated);
    assert_eq!(later.outcome, Ingested::Accepted, "refused for good");
}

#[test]
fn a_bad_signature_is_still_remembered() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let founder = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let op = Op::create(
        &founder,
        genesis.id(),
        Vec::new(),
        START,
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(&founder, START),
        },
    )
    .unwrap();
    let mut bytes = op.encoded().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // inside the signature
    let mut state = State::new(genesis);
    let first = state.ingest(SetKind::Ops, &bytes, &founder, START);
    assert!(
        matches!(first.outcome, Ingested::Rejected(_)),
        "{:?}",
        first.outcome
    );
    let again = state.ingest(SetKind::Ops, &bytes, &founder, START);
    assert_eq!(again.outcome, Ingested::Duplicate);
}

/// Review 3, S1: a member who turns signs an op with a key no op proposed and pushes the same
/// bytes again and again. Each copy must not be verified again until the log changes: the
/// second copy is answered from memory (`Duplicate`), and the author check comes before any
/// signature check (a never-member op with a broken signature is refused as never a member,
/// not verified). Once the log changes (the author's admission arrives) the op is taken in.
#[test]
fn the_same_never_member_op_is_verified_once_until_the_log_changes() {
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let founder = Identity::generate(&mut rng);
    let stranger = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();
    let admission = propose_add(&founder, collective, Vec::new(), START + 60, &stranger, "s");
    let strangers_op = Op::create(
        &stranger,
        collective,
        vec![admission.id()],
        START + 120,
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(&founder, START),
        },
    )
    .unwrap();
    let mut state = State::new(genesis);
    let now = START + 180;

    // The author check needs no signature: a forged copy is refused without being verified.
    let mut forged = strangers_op.encoded().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let step = state.ingest(SetKind::Ops, &forged, &founder, now);
    assert_eq!(step.outcome, Ingested::Ignored(Refusal::NeverAMember));

    let first = state.ingest(SetKind::Ops, strangers_op.encoded(), &founder, now);
    assert_eq!(first.outcome, Ingested::Ignored(Refusal::NeverAMember));
    for _ in 0..1_000 {
        let again = state.ingest(SetKind::Ops, strangers_op.encoded(), &founder, now);
        assert_eq!(again.outcome, Ingested::Duplicate, "verified again");
    }
    // The log changes: the refusal is forgotten and the op passes.
    let admitted = state.ingest(SetKind::Ops, admission.encoded(), &founder, now);
    assert_eq!(admitted.outcome, Ingested::Accepted);
    let taken = state.ingest(SetKind::Ops, strangers_op.encoded(), &founder, now);
    assert_eq!(taken.outcome, Ingested::Accepted);
}

/// Review 3, S1: an item dated far ahead is remembered with its date and not opened again
/// until the clock gets within the skew of it.
#[test]
fn an_item_dated_ahead_is_not_verified_again_until_its_date_nears() {
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let founder = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let heads = genesis.id();
    let key = EpochKey::generate(&mut rng);
    let dated = START + 10 * 365 * 86_400;
    let rotation = KeyDelivery::create(
        &founder,
        heads,
        &key,
        DeliveryKind::Rotation,
        Vec::new(),
        dated,
        &[founder.public()],
        &mut rng,
    )
    .unwrap();
    let mut state = State::new(genesis);
    let early = state.ingest(SetKind::Deliveries, rotation.encoded(), &founder, START);
    assert_eq!(
        early.outcome,
        Ingested::Ignored(Refusal::ClockSkew(SetKind::Deliveries))
    );
    for step in 1..100 {
        let again = state.ingest(
            SetKind::Deliveries,
            rotation.encoded(),
            &founder,
            START + step,
        );
        assert_eq!(again.outcome, Ingested::Duplicate, "verified again");
    }
    let later = state.ingest(SetKind::Deliveries, rotation.encoded(), &founder, dated);
    assert_eq!(later.outcome, Ingested::Accepted);
}

/// Review 3, S3: a member signs many valid posts naming a made-up membership head. Each is
/// held (its roster cannot be resolved), and every accepted op, delivery or alert tries every
/// held item again. One author's held items are capped, so one member costs each retry at most
/// that many items, however many it sends.
#[test]
fn one_members_junk_held_posts_are_capped() {
    use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
    use lookout_protocol::envelope::{self, InnerBody};
    use lookout_protocol::replica::MAX_HELD_PER_AUTHOR;
    use lookout_protocol::OpId;

    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let founder = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();
    let key = EpochKey::generate(&mut rng);
    let rotation = KeyDelivery::create(
        &founder,
        collective,
        &key,
        DeliveryKind::Rotation,
        Vec::new(),
        START,
        &[founder.public()],
        &mut rng,
    )
    .unwrap();
    let mut state = State::new(genesis);
    let now = START + 60;
    let step = state.ingest(SetKind::Deliveries, rotation.encoded(), &founder, now);
    assert_eq!(step.outcome, Ingested::Accepted);
    for seq in 1..=200u64 {
        let sealed = envelope::seal(
            &founder,
            &key,
            InnerBody {
                collective,
                epoch: key.id(),
                author: founder.member_id(),
                seq,
                heads: vec![OpId([7; 32])],
                timestamp: now,
                expires: now + 86_400,
                content: Content::Alert(Alert {
                    category: Category::Robbery,
                    severity: Severity::Medium,
                    description: format!("junk {seq}"),
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
            &mut rng,
        )
        .unwrap();
        let step = state.ingest(SetKind::Envelopes, &sealed.bytes, &founder, now);
        assert_eq!(step.outcome, Ingested::Held);
    }
    assert!(
        state.held_count() <= MAX_HELD_PER_AUTHOR,
        "one member holds {} items",
        state.held_count()
    );
}

/// Review 3, H2: op dates were unchecked, so the per-author-day quota bounded nothing (the
/// author picks the day). An op dated further ahead than the clock skew is refused until the
/// clock gets there; an op dated before the collective's founding is refused for good.
#[test]
fn ops_dated_far_ahead_or_before_genesis_are_not_kept() {
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let founder = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();
    let now = START + 86_400;
    let revocation = |rng: &mut ChaCha20Rng| Action::PublishRevocation {
        certificate: RevocationCertificate::create(&Identity::generate(rng), START),
    };
    let ahead = Op::create(
        &founder,
        collective,
        Vec::new(),
        now + 86_400,
        revocation(&mut rng),
    )
    .unwrap();
    let before = Op::create(
        &founder,
        collective,
        Vec::new(),
        START - 30 * 86_400,
        revocation(&mut rng),
    )
    .unwrap();
    let mut state = State::new(genesis);
    let step = state.ingest(SetKind::Ops, ahead.encoded(), &founder, now);
    assert_ne!(step.outcome, Ingested::Accepted, "a far-future op was kept");
    assert!(!state.log().holds(&ahead.id()));
    let step = state.ingest(SetKind::Ops, before.encoded(), &founder, now);
    assert_ne!(
        step.outcome,
        Ingested::Accepted,
        "an op before genesis was kept"
    );
    assert!(!state.log().holds(&before.id()));
    // Once the clock gets there, the op dated ahead is taken in.
    let step = state.ingest(SetKind::Ops, ahead.encoded(), &founder, now + 86_400);
    assert_eq!(step.outcome, Ingested::Accepted);
}

/// Review 3, H2: an orphan `ProposeAdd` (made-up parents) made its key a permitted author at
/// every replica that saw it, even once the orphan was evicted. Only proposals kept in the log
/// with their history count.
#[test]
fn evicted_orphans_leave_no_trace() {
    use lookout_protocol::membership::{InsertOutcome, MembershipLog, OpRefusal};
    use lookout_protocol::OpId;

    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let founder = Identity::generate(&mut rng);
    let member = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();
    let mut log = MembershipLog::new(genesis);
    let admission = propose_add(&founder, collective, Vec::new(), START + 60, &member, "m");
    assert!(matches!(
        log.insert(admission.clone()),
        InsertOutcome::Added(_)
    ));
    let mut keys = Vec::new();
    for i in 0..100u64 {
        let key = Identity::generate(&mut rng);
        let orphan = propose_add(
            &member,
            collective,
            vec![OpId([9; 32])],
            START + 120 + i,
            &key,
            "k",
        );
        assert!(matches!(
            log.insert(orphan),
            InsertOutcome::MissingParents(_)
        ));
        keys.push(key);
    }
    // The first key's orphan was evicted, the last one's is still waiting: neither may author.
    for key in [&keys[0], &keys[99]] {
        let op = Op::create(
            key,
            collective,
            vec![admission.id()],
            START + 300,
            Action::PublishRevocation {
                certificate: RevocationCertificate::create(key, START),
            },
        )
        .unwrap();
        assert_eq!(
            log.insert(op),
            InsertOutcome::Refused(OpRefusal::NeverAMember),
            "an orphan's proposal let its key author"
        );
    }
}

/// Review 3, H2: a plain member's `ProposeAdd` completes nothing, yet it made its key a permitted
/// author of ops at every replica (and that key's proposals the next, without bound). Now a
/// proposal lets its key author only if its author may propose (a founder, or promoted by one
/// who may), or once the resolved roster admitted it.
#[test]
fn proposals_by_a_plain_member_do_not_let_their_keys_author_ops() {
    use lookout_protocol::membership::{InsertOutcome, MembershipLog, OpRefusal};

    let mut rng = ChaCha20Rng::seed_from_u64(20);
    let founder = Identity::generate(&mut rng);
    let member = Identity::generate(&mut rng);
    let sock = Identity::generate(&mut rng);
    let genesis = founded(&mut rng, &founder);
    let collective = genesis.id();
    let mut log = MembershipLog::new(genesis);
    let admission = propose_add(&founder, collective, Vec::new(), START + 60, &member, "m");
    assert!(matches!(
        log.insert(admission.clone()),
        InsertOutcome::Added(_)
    ));
    let proposal = propose_add(
        &member,
        collective,
        vec![admission.id()],
        START + 120,
        &sock,
        "s",
    );
    assert!(matches!(
        log.insert(proposal.clone()),
        InsertOutcome::Added(_)
    ));
    let socks_op = Op::create(
        &sock,
        collective,
        vec![proposal.id()],
        START + 180,
        Action::PublishRevocation {
            certificate: RevocationCertificate::create(&sock, START),
        },
    )
    .unwrap();
    assert_eq!(
        log.insert(socks_op.clone()),
        InsertOutcome::Refused(OpRefusal::NeverAMember),
        "a plain member's proposal let its key author"
    );
    // A plain member's proposal is dropped by the resolver (only moderators propose); once a
    // moderator proposes the key (k = 1: the admission completes), it may author.
    let by_moderator = propose_add(
        &founder,
        collective,
        vec![proposal.id()],
        START + 240,
        &sock,
        "s",
    );
    assert!(matches!(log.insert(by_moderator), InsertOutcome::Added(_)));
    assert!(log.roster().is_member(&sock.member_id()));
    assert!(matches!(log.insert(socks_op), InsertOutcome::Added(_)));
}
