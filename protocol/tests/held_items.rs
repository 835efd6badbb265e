//! Items a replica holds back until missing state arrives (issue 12 and the trust-core residual
//! "the held-item cap is per signing key"): who can take held places, and that an honest item
//! held or refused for now is taken in once what it waits for arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::envelope::{self};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::{Action, Op, Policy, SignedGenesis};
use lookout_protocol::replica::{Ingested, Refusal, SetKind, State, MAX_HELD};
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod order_world;
use order_world::*;

/// A member holding the epoch key signs posts naming a made-up membership head with keys she
/// makes up, one per post. Each opens (she holds the key) and waits for the head, and the cap
/// per author counted each fresh key apart: her junk filled all 2,048 places, pushing out a
/// member's alert held for an op still in flight, which was then lost when the op came. Now an
/// item whose signer the membership log cannot know as a possible author is not held (refused
/// for now, until the log changes), and the member's alert is taken in when its op arrives.
#[test]
fn junk_under_fresh_keys_does_not_push_out_a_members_held_alert() {
    let mut w = World::new(21);
    let mut state = State::new(w.genesis.clone());
    for op in &w.admissions {
        let step = state.ingest(SetKind::Ops, op.encoded(), &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Accepted);
    }
    let step = state.ingest(SetKind::Deliveries, w.rotation.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);

    // The founder admits someone else; m sees it and posts naming it. The op is still in flight
    // to this replica when m's alert arrives: held.
    let newcomer = Identity::generate(&mut w.rng);
    let in_flight = Op::create(
        &w.founder,
        w.collective(),
        vec![w.admissions[2].id()],
        START + 400,
        Action::ProposeAdd {
            identity: newcomer.public(),
            name: names::name("newcomer"),
        },
    )
    .unwrap();
    let co = w.collective();
    let honest = alert(
        &w.key,
        co,
        &w.m,
        vec![in_flight.id()],
        1,
        "honest",
        &mut w.rng,
    );
    let step = state.ingest(SetKind::Envelopes, &honest, &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Held);

    // x fills the held places: posts naming a made-up head, each under a fresh key, and some
    // under her own key.
    let made_up = OpId([7; 32]);
    let mut fresh_outcomes = Vec::new();
    for seq in 0..(MAX_HELD as u64 + 100) {
        let fresh = Identity::generate(&mut w.rng);
        let text = format!("junk {seq}");
        let junk = alert(&w.key, co, &fresh, vec![made_up], 1, &text, &mut w.rng);
        fresh_outcomes.push(state.ingest(SetKind::Envelopes, &junk, &w.r, NOW).outcome);
    }
    for seq in 1..=200 {
        let text = format!("own junk {seq}");
        let junk = alert(&w.key, co, &w.x, vec![made_up], seq, &text, &mut w.rng);
        let _ = state.ingest(SetKind::Envelopes, &junk, &w.r, NOW);
    }
    // The op arrives: m's alert is taken in.
    let step = state.ingest(SetKind::Ops, in_flight.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);
    let id = envelope::id_of(&honest).unwrap();
    assert!(
        state.posts().contains_key(&id),
        "the member's held alert was lost"
    );
    assert!(
        state.held_count() <= lookout_protocol::replica::MAX_HELD_PER_AUTHOR,
        "{} items held",
        state.held_count()
    );
    assert!(
        fresh_outcomes
            .iter()
            .all(|o| *o == Ingested::Ignored(Refusal::NeverAMember)),
        "junk under fresh keys: {:?}",
        fresh_outcomes
            .iter()
            .find(|o| !matches!(o, Ingested::Ignored(_)))
    );
}

/// An honest alert that gossip brings before its author's admission is refused for now (its
/// signer is no possible author yet), and the same bytes are answered as a duplicate, unopened,
/// until the log changes; once the admission arrives, the next sync that fetches it takes it in.
/// A key delivery whose author is unknown the same way is refused for now too.
#[test]
fn an_alert_that_outran_its_authors_admission_is_taken_in_after_it() {
    let mut w = World::new(22);
    let mut state = State::new(w.genesis.clone());
    let _ = state.ingest(SetKind::Ops, w.admissions[0].encoded(), &w.r, NOW);
    // A rotation naming only r's admission, so it is accepted before m's.
    let rotation = KeyDelivery::create(
        &w.founder,
        w.collective(),
        &w.key,
        DeliveryKind::Rotation,
        vec![w.admissions[0].id()],
        START + 300,
        &[w.founder.public(), w.r.public()],
        &mut w.rng,
    )
    .unwrap();
    let step = state.ingest(SetKind::Deliveries, rotation.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);

    let co = w.collective();
    let heads = vec![w.admissions[1].id()];
    let alert = alert(&w.key, co, &w.m, heads, 1, "before admission", &mut w.rng);
    let first = state.ingest(SetKind::Envelopes, &alert, &w.r, NOW);
    assert_eq!(first.outcome, Ingested::Ignored(Refusal::NeverAMember));
    // m shares the key with r, naming her own admission.
    let share = KeyDelivery::create(
        &w.m,
        co,
        &w.key,
        DeliveryKind::Share,
        vec![w.admissions[1].id()],
        START + 700,
        &[w.r.public()],
        &mut w.rng,
    )
    .unwrap();
    let step = state.ingest(SetKind::Deliveries, share.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Ignored(Refusal::NeverAMember));
    let (outcomes, _) = state.ingest_envelopes(&[&alert], &w.r, NOW);
    assert_eq!(outcomes, vec![Ingested::Duplicate], "verified again");
    assert_eq!(state.held_count(), 0);

    let admitted = state.ingest(SetKind::Ops, w.admissions[1].encoded(), &w.r, NOW);
    assert_eq!(admitted.outcome, Ingested::Accepted);
    // Sync fetches it again (this replica does not hold it).
    let (outcomes, effects) = state.ingest_envelopes(&[&alert], &w.r, NOW);
    assert_eq!(outcomes, vec![Ingested::Accepted], "refused for good");
    assert!(!effects.is_empty());
    let step = state.ingest(SetKind::Deliveries, share.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted, "refused for good");
}

/// What any member holding the epoch key can do to anyone's envelope: decrypt it and encrypt
/// the same plaintext again under a fresh nonce (new bytes, the same signed post).
fn rewrap(bytes: &[u8], key: &EpochKey, rng: &mut ChaCha20Rng) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use rand_chacha::rand_core::RngCore;
    let mut outer = envelope::peek(bytes).expect("an envelope");
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let aad = lookout_protocol::codec::encode(&outer);
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .expect("decrypts");
    rng.fill_bytes(&mut outer.nonce);
    let aad = lookout_protocol::codec::encode(&outer);
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .expect("encrypts");
    lookout_protocol::codec::encode(&outer)
}

/// The world with its admissions and rotation taken in, and an op by the founder still in
/// flight to this replica.
fn world_with_an_op_in_flight(seed: u64) -> (World, State, Op) {
    let mut w = World::new(seed);
    let mut state = State::new(w.genesis.clone());
    for op in &w.admissions {
        let step = state.ingest(SetKind::Ops, op.encoded(), &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Accepted);
    }
    let step = state.ingest(SetKind::Deliveries, w.rotation.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);
    let newcomer = Identity::generate(&mut w.rng);
    let in_flight = Op::create(
        &w.founder,
        w.collective(),
        vec![w.admissions[2].id()],
        START + 400,
        Action::ProposeAdd {
            identity: newcomer.public(),
            name: names::name("newcomer"),
        },
    )
    .unwrap();
    (w, state, in_flight)
}

/// Review 5, H2: x (a member, so she holds the epoch key) re-wraps one of m's held alerts 64
/// times. Each copy was opened and held apart under its own bytes, counted against m's 64
/// places, so m's other held alert was pushed out and not taken in when the op it waited for
/// arrived. Now a wrapping of a post held opened is a duplicate: the first wrapping is kept.
#[test]
fn rewrapped_copies_of_a_held_alert_take_none_of_its_authors_places() {
    let (mut w, mut state, in_flight) = world_with_an_op_in_flight(23);
    let co = w.collective();
    let heads = vec![in_flight.id()];
    let first = alert(&w.key, co, &w.m, heads.clone(), 1, "first", &mut w.rng);
    let second = alert(&w.key, co, &w.m, heads, 2, "second", &mut w.rng);
    for bytes in [&first, &second] {
        let step = state.ingest(SetKind::Envelopes, bytes, &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Held);
    }
    let copies: Vec<Vec<u8>> = (0..64)
        .map(|_| rewrap(&second, &w.key, &mut w.rng))
        .collect();
    for copy in &copies[..32] {
        assert_ne!(copy, &second);
        let step = state.ingest(SetKind::Envelopes, copy, &w.r, NOW);
        assert_eq!(step.outcome, Ingested::Duplicate);
    }
    // The batch path too.
    let batch: Vec<&[u8]> = copies[32..].iter().map(Vec::as_slice).collect();
    let (outcomes, _) = state.ingest_envelopes(&batch, &w.r, NOW);
    assert!(
        outcomes.iter().all(|o| *o == Ingested::Duplicate),
        "{outcomes:?}"
    );
    assert_eq!(
        state.held_count(),
        2,
        "only the first wrapping of each is held"
    );

    let step = state.ingest(SetKind::Ops, in_flight.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);
    assert!(state
        .posts()
        .contains_key(&envelope::id_of(&second).unwrap()));
    assert!(
        state
            .posts()
            .contains_key(&envelope::id_of(&first).unwrap()),
        "m's first alert was pushed out by copies of her second"
    );
    assert_eq!(state.held_count(), 0);
}

/// Review 5, H3: anyone replays a chain of 100 of the founder's ops in reverse order (child
/// first) to a replica that holds her alert waiting for the chain's first op. Her held ops
/// took her 64 places with her alert, so the replay pushed the alert out. Now her ops waiting
/// for parents have 64 places of their own: the alert is taken in when the first op arrives,
/// and at least 64 of the ops join with it (the rest are fetched again by sync).
#[test]
fn a_replay_of_an_authors_ops_does_not_push_out_her_held_alert() {
    let (mut w, mut state, in_flight) = world_with_an_op_in_flight(24);
    let co = w.collective();
    let held = alert(
        &w.key,
        co,
        &w.founder,
        vec![in_flight.id()],
        1,
        "held",
        &mut w.rng,
    );
    let step = state.ingest(SetKind::Envelopes, &held, &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Held);
    let mut chain: Vec<Op> = Vec::new();
    for i in 0..100u64 {
        let parent = chain.last().map_or(in_flight.id(), Op::id);
        let who = Identity::generate(&mut w.rng);
        chain.push(
            Op::create(
                &w.founder,
                co,
                vec![parent],
                START + 401 + i,
                Action::ProposeAdd {
                    identity: who.public(),
                    name: names::name(format!("n{i}")),
                },
            )
            .unwrap(),
        );
    }
    for op in chain.iter().rev() {
        let _ = state.ingest(SetKind::Ops, op.encoded(), &w.r, NOW);
    }
    let before = state.log().len();
    let step = state.ingest(SetKind::Ops, in_flight.encoded(), &w.r, NOW);
    assert_eq!(step.outcome, Ingested::Accepted);
    assert!(
        state.posts().contains_key(&envelope::id_of(&held).unwrap()),
        "her held alert was pushed out by a replay of her own ops"
    );
    let joined = state.log().len() - before - 1;
    assert!(joined >= 64, "only {joined} of the 100 ops joined");
}

/// A sync batch of a long chain of one moderator's ops, fetched in id order (a random order for
/// a chain): `State::ingest_ops` takes it in parents first, so every op joins in one batch,
/// where taking them in as fetched leaves all but the first few waiting for their parents
/// (beyond the log's 64 orphans per author, so a later sync must fetch and verify them again).
#[test]
fn a_chain_fetched_in_id_order_joins_in_one_batch() {
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let founder = Identity::generate(&mut rng);
    let genesis = SignedGenesis::create(
        &founder,
        &names::secret(),
        "Chain",
        "f",
        Policy::default(),
        START,
        &mut rng,
    )
    .unwrap();
    let mut chain: Vec<Op> = Vec::new();
    for i in 0..150 {
        let member = Identity::generate(&mut rng);
        let parents = chain.last().map(|op| vec![op.id()]).unwrap_or_default();
        let action = Action::ProposeAdd {
            identity: member.public(),
            name: names::name(format!("m{i}")),
        };
        chain.push(Op::create(&founder, genesis.id(), parents, START + i, action).unwrap());
    }
    let mut fetched: Vec<&Op> = chain.iter().collect();
    fetched.sort_by_key(|op| op.id());
    let bytes: Vec<&[u8]> = fetched.iter().map(|op| op.encoded()).collect();
    let me = Identity::generate(&mut rng);
    let now = START + 1_000;

    let mut batch = State::new(genesis.clone());
    let (outcomes, _) = batch.ingest_ops(&bytes, &me, now);
    assert!(outcomes.iter().all(|o| *o == Ingested::Accepted));
    assert_eq!(batch.log().len(), chain.len());
    assert_eq!(batch.log().roster().len(), chain.len() + 1);

    // One by one, as fetched: most of the chain waits, and some of it is dropped.
    let mut single = State::new(genesis);
    for b in &bytes {
        let _ = single.ingest(SetKind::Ops, b, &me, now);
    }
    assert!(single.log().len() < chain.len());
    assert!(single.log().len() + single.log().orphan_count() < chain.len());
}
