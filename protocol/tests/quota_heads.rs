//! SECURITY.md, H1's residual (a split by a member over the op quota): which of a member's ops of
//! one day pass the quota of 256 depends on the order they arrive in, so a member who signs more
//! and hands them out in different orders makes replica A keep an op that replica B refuses.
//! Every alert and key delivery written on A then named it among its heads, and B held them
//! (waiting for an op it will never take) until its held-item caps dropped them: safety alerts
//! stopped crossing. Now B remembers the ops it refused over the quota and reads such a head as
//! absent, its parents named instead; these tests show alerts and key deliveries cross, that
//! this grants no author more than naming those heads herself, and that the set stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::{
    Action, Op, Policy, SignedGenesis, MAX_OPS_PER_AUTHOR_PER_DAY, MAX_READ_THROUGH,
};
use lookout_protocol::replica::{Effect, Ingested, Refusal, SetKind, State, MAX_QUOTA_REFUSED};
use lookout_protocol::{CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const START: u64 = 1_790_000_000;
/// When the replicas take things in (the same UTC day as every op).
const NOW: u64 = START + 3_000;
/// How many ops the member signs for the day: more than the quota.
const RUN: usize = 300;

/// A collective of a founder (the only moderator, k = 1) and members admitted one after
/// another: `a` (an honest member on side A), `x` (who splits), `b` (replica B's member) and
/// `e` (removed by the founder before x's run). The founder rotates the group key to all but
/// `e`, and x signs a chain of `RUN` agreement-key rotations dated the same day.
struct World {
    rng: ChaCha20Rng,
    founder: Identity,
    a: Identity,
    x: Identity,
    b: Identity,
    e: Identity,
    genesis: SignedGenesis,
    /// The founder's ops, in order: admissions of a, x, b, e, then the removal of e.
    setup: Vec<Op>,
    rotation: KeyDelivery,
    key: EpochKey,
    /// x's chain: each names the one before (the first names the removal of e).
    run: Vec<Op>,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let founder = Identity::generate_at(&mut rng, START);
        let a = Identity::generate_at(&mut rng, START);
        let mut x = Identity::generate_at(&mut rng, START);
        let b = Identity::generate_at(&mut rng, START);
        let e = Identity::generate_at(&mut rng, START);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "Quota",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let mut setup: Vec<Op> = Vec::new();
        let mut actions: Vec<Action> = [&a, &x, &b, &e]
            .iter()
            .enumerate()
            .map(|(i, who)| Action::ProposeAdd {
                identity: who.public(),
                name: names::name(format!("member {i}")),
            })
            .collect();
        actions.push(Action::Remove {
            member: e.member_id(),
            reason: names::reason("removed"),
        });
        for (i, action) in actions.into_iter().enumerate() {
            let parents = setup.last().map(|op| vec![op.id()]).unwrap_or_default();
            let op = Op::create(
                &founder,
                genesis.id(),
                parents,
                START + 60 * (i as u64 + 1),
                action,
            )
            .unwrap();
            setup.push(op);
        }
        let key = EpochKey::generate(&mut rng);
        let rotation = KeyDelivery::create(
            &founder,
            genesis.id(),
            &key,
            DeliveryKind::Rotation,
            vec![setup[4].id()],
            START + 400,
            &[founder.public(), a.public(), x.public(), b.public()],
            &mut rng,
        )
        .unwrap();
        let mut run: Vec<Op> = Vec::with_capacity(RUN);
        for i in 0..RUN as u64 {
            let at = START + 500 + i;
            let identity = x.rotate_agreement(at, &mut rng);
            let parent = run.last().map_or(setup[4].id(), Op::id);
            run.push(
                Op::create(
                    &x,
                    genesis.id(),
                    vec![parent],
                    at,
                    Action::RotateAgreementKey { identity },
                )
                .unwrap(),
            );
        }
        Self {
            rng,
            founder,
            a,
            x,
            b,
            e,
            genesis,
            setup,
            rotation,
            key,
            run,
        }
    }

    fn collective(&self) -> CollectiveId {
        self.genesis.id()
    }

    /// Replica A (its member `a`): the setup, the rotation, then x's run in order, so it keeps
    /// the first 256 (the quota) and refuses the rest.
    fn side_a(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(
                ingest(&mut state, SetKind::Ops, op.encoded(), &self.a),
                Ingested::Accepted
            );
        }
        let rotation = ingest(
            &mut state,
            SetKind::Deliveries,
            self.rotation.encoded(),
            &self.a,
        );
        assert_eq!(rotation, Ingested::Accepted);
        for (i, op) in self.run.iter().enumerate() {
            let outcome = ingest(&mut state, SetKind::Ops, op.encoded(), &self.a);
            if i < MAX_OPS_PER_AUTHOR_PER_DAY {
                assert_eq!(outcome, Ingested::Accepted, "op {i}");
            } else {
                assert_eq!(outcome, Ingested::Ignored(Refusal::OpQuota), "op {i}");
            }
        }
        assert_eq!(state.log().roster().heads(), &[self.run[255].id()]);
        state
    }

    /// Replica B (its member `b`): the setup and rotation, then x hands it her run in another
    /// order: ops 0 to 254, then 256 (waiting for its parent, and counted), so 255, which A
    /// keeps, is over the quota here.
    fn side_b(&self) -> State {
        let mut state = State::new(self.genesis.clone());
        for op in &self.setup {
            assert_eq!(
                ingest(&mut state, SetKind::Ops, op.encoded(), &self.b),
                Ingested::Accepted
            );
        }
        let rotation = ingest(
            &mut state,
            SetKind::Deliveries,
            self.rotation.encoded(),
            &self.b,
        );
        assert_eq!(rotation, Ingested::Accepted);
        for op in &self.run[..255] {
            let outcome = ingest(&mut state, SetKind::Ops, op.encoded(), &self.b);
            assert_eq!(outcome, Ingested::Accepted);
        }
        let outcome = ingest(&mut state, SetKind::Ops, self.run[256].encoded(), &self.b);
        assert_eq!(outcome, Ingested::Held);
        state
    }

    /// A new group key rotated by the founder to every member of `state`'s roster, naming its
    /// current heads.
    fn rotation_on(&mut self, state: &State) -> (EpochKey, KeyDelivery) {
        let key = EpochKey::generate(&mut self.rng);
        let to: Vec<PublicIdentity> = state
            .log()
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let delivery = KeyDelivery::create(
            &self.founder,
            self.collective(),
            &key,
            DeliveryKind::Rotation,
            state.log().roster().heads().to_vec(),
            NOW - 60,
            &to,
            &mut self.rng,
        )
        .unwrap();
        delivery.check_authority(state.log().roster()).unwrap();
        (key, delivery)
    }
}

fn ingest(state: &mut State, kind: SetKind, bytes: &[u8], me: &Identity) -> Ingested {
    state.ingest(kind, bytes, me, NOW).outcome
}

/// An alert by `author` naming `heads`, sealed under `key`.
fn alert(
    key: &EpochKey,
    collective: CollectiveId,
    author: &Identity,
    heads: Vec<OpId>,
    text: &str,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let at = NOW - 30;
    envelope::seal(
        author,
        key,
        InnerBody {
            collective,
            epoch: key.id(),
            author: author.member_id(),
            seq: 1,
            heads,
            timestamp: at,
            expires: at + 86_400,
            content: Content::Alert(Alert {
                category: Category::Robbery,
                severity: Severity::High,
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

/// Everything A holds, as a sync would hand it to B: ops, deliveries, posts.
fn hand_over(from: &mut State, to: &mut State, me: &Identity, posts: &[Vec<u8>]) -> Vec<Ingested> {
    let ops: Vec<Vec<u8>> = from
        .log()
        .ops()
        .chain(from.log().offered_stubs())
        .map(|op| op.encoded().to_vec())
        .collect();
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let _ = to.ingest_ops(&refs, me, NOW);
    let deliveries: Vec<Vec<u8>> = from
        .deliveries()
        .values()
        .map(|d| d.encoded().to_vec())
        .collect();
    for d in &deliveries {
        let _ = to.ingest(SetKind::Deliveries, d, me, NOW);
    }
    posts
        .iter()
        .map(|p| to.ingest(SetKind::Envelopes, p, me, NOW).outcome)
        .collect()
}

/// The attack on main's quota rule: x's run split A and B (A keeps op 255, B refused it over
/// the quota). The founder, on A, rotates the group key naming A's heads (op 255), and an
/// honest member posts an alert under the new key naming them too. B is given everything A
/// has: on main both waited for op 255, which B will never take, so the alert never crossed.
/// Now B reads op 255 as absent (its parent, op 254, named instead): the rotation and the alert
/// are taken in, and B's member reads the alert. Op 255 itself still does not join at B.
/// (Since branch `h1op`, x's op 256 naming op 255 joins at B too.)
#[test]
fn an_alert_and_a_rotation_written_on_a_refused_head_cross_the_split() {
    let mut w = World::new(1);
    let mut a = w.side_a();
    let mut b = w.side_b();
    let refused = w.run[255].id();
    assert!(!b.log().contains(&refused));

    let (key, rotation) = w.rotation_on(&a);
    assert_eq!(rotation.body().heads, vec![refused]);
    assert_eq!(
        ingest(&mut a, SetKind::Deliveries, rotation.encoded(), &w.a),
        Ingested::Accepted
    );
    let heads = a.log().roster().heads().to_vec();
    let co = w.collective();
    let post = alert(&key, co, &w.a, heads, "violent client", &mut w.rng);
    assert_eq!(
        ingest(&mut a, SetKind::Envelopes, &post, &w.a),
        Ingested::Accepted
    );

    let outcomes = hand_over(&mut a, &mut b, &w.b, std::slice::from_ref(&post));
    assert_eq!(
        outcomes,
        vec![Ingested::Accepted],
        "the alert did not cross"
    );
    assert!(
        b.deliveries().contains_key(&rotation.id()),
        "the rotation did not cross"
    );
    assert!(
        b.book().key(&key.id()).is_some(),
        "B's member lacks the new key"
    );
    assert_eq!(b.held_count(), 0, "something still waits");
    // Op 255 itself stays refused over the quota at B (H1's residual); x's op 256, which
    // names it, joins read as naming op 254.
    assert!(!b.log().contains(&refused));
    assert!(b.log().contains(&w.run[256].id()));
}

/// After a restart (the set of ops refused over the quota is not kept), a rotation B took in on
/// a refused head waits for that head again, and is taken in again when sync offers the op
/// and B refuses it once more; B's member then reads alerts under the rotated key again.
#[test]
fn a_rotation_taken_in_on_a_refused_head_is_taken_in_again_after_a_restart() {
    let mut w = World::new(5);
    let mut a = w.side_a();
    let mut b = w.side_b();
    let (key, rotation) = w.rotation_on(&a);
    assert_eq!(
        ingest(&mut a, SetKind::Deliveries, rotation.encoded(), &w.a),
        Ingested::Accepted
    );
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.deliveries().contains_key(&rotation.id()));

    // Restart: the ops and deliveries read back from B's store.
    let mut again = State::new(w.genesis.clone());
    // The store keeps ops waiting for their parents too (op 256).
    let mut stored: Vec<Op> = b.log().ops().cloned().collect();
    if !stored.iter().any(|op| op.id() == w.run[256].id()) {
        stored.push(w.run[256].clone());
    }
    again.restore_ops(stored);
    for delivery in b.deliveries().values() {
        let delivery = delivery.decode(b.log().collective()).unwrap();
        again.restore_delivery(delivery, &w.b).unwrap();
    }
    assert!(again.book().key(&key.id()).is_none());
    assert_eq!(again.held_count(), 1, "the rotation waits for op 255");
    let outcomes = hand_over(&mut a, &mut again, &w.b, &[]);
    assert!(outcomes.is_empty());
    assert!(again.deliveries().contains_key(&rotation.id()));
    assert!(again.book().key(&key.id()).is_some());
    assert!(!again.log().contains(&w.run[255].id()));
    assert!(again.refused_over_quota(&w.run[255].id()));
    let heads = a.log().roster().heads().to_vec();
    let co = w.collective();
    let post = alert(&key, co, &w.a, heads, "after a restart", &mut w.rng);
    assert_eq!(
        ingest(&mut again, SetKind::Envelopes, &post, &w.b),
        Ingested::Accepted
    );
}

/// The same alert arriving at B before B refused op 255 waits for it (an op it has not seen),
/// and is taken in when B refuses op 255 over the quota: the refusal releases what waited.
#[test]
fn an_alert_waiting_for_an_op_is_taken_in_when_the_op_is_refused_over_the_quota() {
    let mut w = World::new(2);
    let a = w.side_a();
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Deliveries, w.rotation.encoded(), &w.b),
        Ingested::Accepted
    );
    let heads = a.log().roster().heads().to_vec();
    let (key, co) = (w.key.clone(), w.collective());
    let post = alert(&key, co, &w.a, heads, "early", &mut w.rng);
    assert_eq!(
        ingest(&mut b, SetKind::Envelopes, &post, &w.b),
        Ingested::Held
    );
    for op in &w.run[..255] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[256].encoded(), &w.b),
        Ingested::Held
    );
    assert!(!b.posts().contains_key(&envelope::id_of(&post).unwrap()));
    let step = b.ingest(SetKind::Ops, w.run[255].encoded(), &w.b, NOW);
    assert_eq!(step.outcome, Ingested::Ignored(Refusal::OpQuota));
    assert!(b.refused_over_quota(&w.run[255].id()));
    assert!(
        b.posts().contains_key(&envelope::id_of(&post).unwrap()),
        "the refusal did not release the alert"
    );
}

/// Outcomes compared without the penalty: a refusal of an item judged with a refused head read
/// as absent penalises nobody (it may be an honest item from the other side).
fn unpenalised(outcome: Ingested) -> Ingested {
    match outcome {
        Ingested::Rejected(why) => Ingested::Ignored(why),
        other => other,
    }
}

/// An item naming heads B refused over the quota is judged exactly as one naming what they are
/// read as (the other heads, and the refused ops' parents): e, removed by the founder before
/// x's run, cannot get an alert taken in by naming a refused op whose history holds her
/// removal (refused as by its parent); an op x signs over the quota naming e's admission
/// (before her removal) as its parent gives e nothing she could not get by naming her admission
/// herself; a refused op with a made-up head waits for the made-up head as that head alone
/// does; and refused heads alone on a replica whose ops they build on read as those ops.
#[test]
fn a_refused_head_is_judged_as_the_heads_it_is_read_as() {
    let mut w = World::new(3);
    let mut b = w.side_b();
    let refused = w.run[255].id();
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[255].encoded(), &w.b),
        Ingested::Ignored(Refusal::OpQuota)
    );
    let co = w.collective();
    let key = w.key.clone();
    // Refused over the quota at B, naming e's admission (before her removal) as its parent.
    let late = Op::create(
        &w.x,
        co,
        vec![w.setup[3].id()],
        NOW - 10,
        Action::ProposeDemote {
            member: w.a.member_id(),
        },
    )
    .unwrap();
    assert_eq!(
        ingest(&mut b, SetKind::Ops, late.encoded(), &w.b),
        Ingested::Ignored(Refusal::OpQuota)
    );
    assert!(b.refused_over_quota(&late.id()) && b.refused_over_quota(&refused));
    let made_up = OpId([0x4d; 32]);

    // (heads naming refused ops, the heads they are read as)
    let cases: Vec<(Vec<OpId>, Vec<OpId>)> = vec![
        (vec![refused], vec![w.run[254].id()]),
        (vec![late.id()], vec![w.setup[3].id()]),
        (
            vec![refused, late.id()],
            vec![w.run[254].id(), w.setup[3].id()],
        ),
        (vec![refused, made_up], vec![w.run[254].id(), made_up]),
        (vec![late.id(), made_up], vec![w.setup[3].id(), made_up]),
    ];
    let mut seen = Vec::new();
    for (i, (named, read)) in cases.into_iter().enumerate() {
        for author in [&w.e, &w.a] {
            let text = format!("case {i}");
            let mut named = named.clone();
            named.sort();
            let mut read = read.clone();
            read.sort();
            let with_refused = alert(&key, co, author, named, &text, &mut w.rng);
            let text = format!("case {i}, as read");
            let as_read = alert(&key, co, author, read, &text, &mut w.rng);
            // Each on a replica of its own in the same state, so neither's outcome (a post
            // taken in counts against its author's daily quota) bears on the other's.
            let mut twin = w.side_b();
            for op in [&w.run[255], &late] {
                let _ = ingest(&mut twin, SetKind::Ops, op.encoded(), &w.b);
            }
            let got = unpenalised(ingest(&mut b, SetKind::Envelopes, &with_refused, &w.b));
            let want = unpenalised(ingest(&mut twin, SetKind::Envelopes, &as_read, &w.b));
            assert_eq!(got, want, "case {i}");
            seen.push(got);
        }
    }
    // The cases reach the rules that matter: e's removal, e's pre-removal heads, waiting.
    assert!(seen.contains(&Ingested::Ignored(Refusal::AuthorRemoved)));
    assert!(seen.contains(&Ingested::Held));
    assert!(seen.contains(&Ingested::Accepted));
}

/// A flood of ops over the quota (x signs thousands more for the day) keeps the set of refused
/// ids at its bound; the oldest are forgotten first, and an item naming a forgotten one waits
/// for it again, as every such item did before: no worse than without the set. A stub (op 255,
/// which op 256 at B is read through) is verified and kept, and stays read whatever the flood
/// (Review 9, R9-7).
#[test]
fn the_refused_set_stays_bounded_under_a_flood() {
    let mut w = World::new(4);
    let mut b = w.side_b();
    let mut a = w.side_a();
    let refused = w.run[255].id();
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&refused));
    let identity = w.x.public();
    let flood = MAX_QUOTA_REFUSED + 500;
    let mut first = None;
    for i in 0..flood as u64 {
        let op = Op::create(
            &w.x,
            w.collective(),
            vec![w.run[(i % 255) as usize].id()],
            START + 1_000 + i / 255,
            Action::RotateAgreementKey {
                identity: identity.clone(),
            },
        )
        .unwrap();
        first.get_or_insert(op.id());
        let outcome = ingest(&mut b, SetKind::Ops, op.encoded(), &w.b);
        assert_eq!(outcome, Ingested::Ignored(Refusal::OpQuota));
        assert!(b.quota_refused_count() <= MAX_QUOTA_REFUSED);
    }
    assert_eq!(b.quota_refused_count(), MAX_QUOTA_REFUSED);
    let first = first.unwrap();
    assert!(
        !b.refused_over_quota(&first),
        "the oldest was not forgotten"
    );
    assert!(b.log().is_stub(&refused) && b.refused_over_quota(&refused));
    // Forgotten: an alert naming the flood's first op waits for it again.
    let heads = vec![first];
    let (key, co) = (w.key.clone(), w.collective());
    let post = alert(&key, co, &w.a, heads, "after the flood", &mut w.rng);
    assert_eq!(
        ingest(&mut b, SetKind::Envelopes, &post, &w.b),
        Ingested::Held
    );
}

/// Only ops refused over their author's quota are read so: an op by a key no member proposed
/// (refused for now) and an op merely missing are not, and an alert naming either waits for it.
#[test]
fn only_ops_refused_over_the_quota_are_read_as_their_parents() {
    let mut w = World::new(6);
    let mut b = w.side_b();
    let stranger = Identity::generate_at(&mut w.rng, START);
    let by_stranger = Op::create(
        &stranger,
        w.collective(),
        vec![w.run[0].id()],
        NOW - 10,
        Action::RotateAgreementKey {
            identity: stranger.public(),
        },
    )
    .unwrap();
    assert_eq!(
        ingest(&mut b, SetKind::Ops, by_stranger.encoded(), &w.b),
        Ingested::Ignored(Refusal::NeverAMember)
    );
    assert!(!b.refused_over_quota(&by_stranger.id()));
    assert_eq!(b.quota_refused_count(), 0);
    let (key, co) = (w.key.clone(), w.collective());
    for (i, head) in [by_stranger.id(), w.run[255].id()].into_iter().enumerate() {
        let post = alert(&key, co, &w.a, vec![head], &format!("{i}"), &mut w.rng);
        assert_eq!(
            ingest(&mut b, SetKind::Envelopes, &post, &w.b),
            Ingested::Held
        );
    }
}

/// An op by `author` naming `parents`, dated `at`.
fn op(w: &World, author: &Identity, parents: Vec<OpId>, at: u64, action: Action) -> Op {
    Op::create(author, w.collective(), parents, at, action).unwrap()
}

/// The founder's removal of `who`, written on A's heads (op 255, which B refused).
fn removal_on(w: &World, a: &State, who: &Identity, at: u64) -> Op {
    op(
        w,
        &w.founder,
        a.log().writer_heads(&w.founder.member_id()),
        at,
        Action::Remove {
            member: who.member_id(),
            reason: names::reason("split"),
        },
    )
}

/// Member ids, moderators and removed member ids of a roster: what two sides of the split must
/// agree on (the refused op's own effect, here x's agreement key, is H1's residual).
fn standing(
    state: &State,
) -> (
    Vec<(lookout_protocol::MemberId, bool)>,
    Vec<lookout_protocol::MemberId>,
) {
    let roster = state.log().roster();
    let members = roster
        .members()
        .map(|m| (m.identity.member, m.moderator))
        .collect();
    let removed = roster.removed().keys().copied().collect();
    (members, removed)
}

/// The rest of the split (SECURITY.md, H1; until this branch "not mitigated"): once anyone
/// writes an op on A's side (here the founder removes x), it names op 255 as its parent. On
/// main it never joined at B, so the rotation naming it and every alert under that rotation were
/// held at B for good. Now B reads the edge to op 255 as edges to op 255's parents (op 254): the
/// removal joins, x is removed at B too, and the rotation and the alert cross.
#[test]
fn an_op_built_on_a_refused_one_and_an_alert_naming_it_cross_the_split() {
    let mut w = World::new(7);
    let mut a = w.side_a();
    let mut b = w.side_b();
    let removal = removal_on(&w, &a, &w.x, NOW - 20);
    assert_eq!(removal.parents(), &[w.run[255].id()]);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    // The founder rotates the key away from x, naming the removal.
    let (key, rotation) = w.rotation_on(&a);
    assert_eq!(
        ingest(&mut a, SetKind::Deliveries, rotation.encoded(), &w.a),
        Ingested::Accepted
    );
    let heads = a.log().roster().heads().to_vec();
    let co = w.collective();
    let post = alert(&key, co, &w.a, heads, "after the removal", &mut w.rng);
    assert_eq!(
        ingest(&mut a, SetKind::Envelopes, &post, &w.a),
        Ingested::Accepted
    );
    let outcomes = hand_over(&mut a, &mut b, &w.b, std::slice::from_ref(&post));
    assert!(b.refused_over_quota(&w.run[255].id()));
    assert!(!b.log().contains(&w.run[255].id()));
    assert!(b.log().contains(&removal.id()), "the removal did not cross");
    assert_eq!(
        b.log().read_parents(&removal.id()),
        Some(&[w.run[254].id()][..])
    );
    assert!(!b.log().roster().is_member(&w.x.member_id()));
    assert!(b.log().roster().is_removed(&w.x.member_id()));
    assert!(!a.log().roster().is_member(&w.x.member_id()));
    assert_eq!(
        outcomes,
        vec![Ingested::Accepted],
        "the alert did not cross"
    );
    assert!(
        b.deliveries().contains_key(&rotation.id()),
        "the rotation did not cross"
    );
    assert!(b.book().key(&key.id()).is_some());
    assert_eq!(standing(&a), standing(&b));
}

/// The removal arriving at B before B refused op 255 waits for it; B's refusal of op 255 over
/// the quota lets it join, and with it x's op 256, the founder's rotation naming the removal
/// and an alert under the rotated key, all of which waited.
#[test]
fn an_op_waiting_for_an_op_joins_when_that_op_is_refused_over_the_quota() {
    let mut w = World::new(8);
    let mut a = w.side_a();
    let removal = removal_on(&w, &a, &w.x, NOW - 20);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    let (key, rotation) = w.rotation_on(&a);
    assert_eq!(
        ingest(&mut a, SetKind::Deliveries, rotation.encoded(), &w.a),
        Ingested::Accepted
    );
    let heads = a.log().roster().heads().to_vec();
    let co = w.collective();
    let post = alert(&key, co, &w.a, heads, "early", &mut w.rng);
    assert_eq!(
        ingest(&mut a, SetKind::Envelopes, &post, &w.a),
        Ingested::Accepted
    );
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Deliveries, w.rotation.encoded(), &w.b),
        Ingested::Accepted
    );
    for op in &w.run[..255] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Ops, removal.encoded(), &w.b),
        Ingested::Held
    );
    assert_eq!(
        ingest(&mut b, SetKind::Deliveries, rotation.encoded(), &w.b),
        Ingested::Held
    );
    assert_eq!(
        ingest(&mut b, SetKind::Envelopes, &post, &w.b),
        Ingested::Held
    );
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[256].encoded(), &w.b),
        Ingested::Held
    );
    let step = b.ingest(SetKind::Ops, w.run[255].encoded(), &w.b, NOW);
    assert_eq!(step.outcome, Ingested::Ignored(Refusal::OpQuota));
    assert!(
        b.log().contains(&removal.id()),
        "the refusal did not release the removal"
    );
    assert!(b.log().contains(&w.run[256].id()));
    assert!(b.posts().contains_key(&envelope::id_of(&post).unwrap()));
    assert!(!b.log().roster().is_member(&w.x.member_id()));
    assert!(b.deliveries().contains_key(&rotation.id()));
    assert_eq!(b.held_count(), 0);
}

/// A vouch chain across the split: the founder admits n on A (her proposal names op 255), n
/// then rotates her agreement key naming her admission. At B both join: n is a member, may
/// author, and her op is held.
#[test]
fn a_vouch_chain_crosses_the_split() {
    let mut w = World::new(9);
    let mut a = w.side_a();
    let mut b = w.side_b();
    let mut n = Identity::generate_at(&mut w.rng, START);
    let admit = op(
        &w,
        &w.founder,
        a.log().writer_heads(&w.founder.member_id()),
        NOW - 30,
        Action::ProposeAdd {
            identity: n.public(),
            name: names::name("n"),
        },
    );
    assert_eq!(admit.parents(), &[w.run[255].id()]);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, admit.encoded(), &w.a),
        Ingested::Accepted
    );
    assert!(a.log().roster().is_member(&n.member_id()));
    let identity = n.rotate_agreement(NOW - 20, &mut w.rng);
    let by_n = op(
        &w,
        &n,
        a.log().writer_heads(&n.member_id()),
        NOW - 20,
        Action::RotateAgreementKey { identity },
    );
    assert_eq!(
        ingest(&mut a, SetKind::Ops, by_n.encoded(), &w.a),
        Ingested::Accepted
    );
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.log().contains(&admit.id()), "the admission did not cross");
    assert!(b.log().contains(&by_n.id()), "n's op did not cross");
    assert!(b.log().may_author(&n.member_id()));
    assert!(b.log().roster().is_member(&n.member_id()));
    assert_eq!(standing(&a), standing(&b));
}

/// Naming a refused op gains its author nothing she would not get by naming what it is read as:
/// e, removed by the founder before x's run, signs ops naming ops B refused over the quota, one
/// whose history stops before her removal (x's `late`, naming e's admission) and one after it
/// (op 255). At B each is judged exactly as the same action naming the read parents itself, on
/// a replica in the same state: the rosters are equal, and e's ops take no effect.
#[test]
fn naming_a_refused_op_gains_no_authority() {
    let mut w = World::new(10);
    let late = op(
        &w,
        &w.x,
        vec![w.setup[3].id()],
        NOW - 100,
        Action::ProposeDemote {
            member: w.a.member_id(),
        },
    );
    let cases = [
        (vec![late.id()], vec![w.setup[3].id()]),
        (vec![w.run[255].id()], vec![w.run[254].id()]),
        (
            vec![late.id(), w.run[255].id()],
            vec![w.setup[3].id(), w.run[254].id()],
        ),
    ];
    for (i, (named, read)) in cases.into_iter().enumerate() {
        let mut b = w.side_b();
        let mut twin = w.side_b();
        for state in [&mut b, &mut twin] {
            for refused in [&w.run[255], &late] {
                assert_eq!(
                    ingest(state, SetKind::Ops, refused.encoded(), &w.b),
                    Ingested::Ignored(Refusal::OpQuota)
                );
            }
        }
        let at = NOW - 50 + i as u64;
        let identity = w.e.rotate_agreement(at, &mut w.rng);
        let actions = [
            Action::RotateAgreementKey { identity },
            Action::Remove {
                member: w.a.member_id(),
                reason: names::reason("grudge"),
            },
            Action::ProposeAdd {
                identity: w.e.public(),
                name: names::name("again"),
            },
        ];
        for action in actions {
            let named_op = op(&w, &w.e, named.clone(), at, action.clone());
            let read_op = op(&w, &w.e, read.clone(), at, action);
            let got = ingest(&mut b, SetKind::Ops, named_op.encoded(), &w.b);
            let want = ingest(&mut twin, SetKind::Ops, read_op.encoded(), &w.b);
            assert_eq!(got, want, "case {i}");
            assert_eq!(got, Ingested::Accepted, "case {i}");
            let mut expected = read.clone();
            expected.sort();
            assert_eq!(b.log().read_parents(&named_op.id()), Some(&expected[..]));
        }
        assert_eq!(standing(&b), standing(&twin), "case {i}");
        let roster = b.log().roster();
        assert!(roster.is_member(&w.a.member_id()), "case {i}");
        assert!(!roster.is_member(&w.e.member_id()), "case {i}");
        assert_eq!(
            roster.removed()[&w.e.member_id()].ops,
            twin.log().roster().removed()[&w.e.member_id()].ops
        );
    }
}

/// B holds x's ops 0 to `kept - 1` and `256 - kept` ops of a side branch of hers for the same
/// day, so it refuses ops `kept` to 255, which A keeps; A's founder removes x on op 255, and B
/// is handed everything A holds. Returns A, B and the removal.
fn chain_split(w: &mut World, kept: usize) -> (State, State, Op) {
    let mut a = w.side_a();
    let removal = removal_on(w, &a, &w.x, NOW - 20);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    for op in &w.run[..kept] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    let mut parent = w.setup[4].id();
    for i in 0..(MAX_OPS_PER_AUTHOR_PER_DAY - kept) as u64 {
        let at = START + 900 + i;
        let identity = w.x.rotate_agreement(at, &mut w.rng);
        let side = op(
            w,
            &w.x,
            vec![parent],
            at,
            Action::RotateAgreementKey { identity },
        );
        parent = side.id();
        assert_eq!(
            ingest(&mut b, SetKind::Ops, side.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    for op in &w.run[kept..256] {
        assert!(b.refused_over_quota(&op.id()));
    }
    (a, b, removal)
}

/// A chain of refused ops is read through: B refuses x's ops 200 to 255, which A keeps. The
/// founder's removal of x, written on A's op 255, joins at B read as naming op 199.
#[test]
fn a_chain_of_refused_ops_is_read_through() {
    let mut w = World::new(11);
    let (a, b, removal) = chain_split(&mut w, 256 - MAX_READ_THROUGH);
    assert!(b.log().contains(&removal.id()), "the removal did not cross");
    assert_eq!(
        b.log().read_parents(&removal.id()),
        Some(&[w.run[255 - MAX_READ_THROUGH].id()][..])
    );
    assert!(b.log().roster().is_removed(&w.x.member_id()));
    assert_eq!(standing(&a), standing(&b));
}

/// The bound: an op whose reading would go through more than `MAX_READ_THROUGH` refused ops
/// waits, as on main (the memory an op read so keeps, and the work of reading an orphan again,
/// stay bounded); it is held, not dropped, and nothing else changes.
#[test]
fn an_op_read_through_more_refused_ops_than_the_bound_waits() {
    let mut w = World::new(15);
    let (_, b, removal) = chain_split(&mut w, 255 - MAX_READ_THROUGH);
    assert!(!b.log().contains(&removal.id()));
    assert!(b.log().holds(&removal.id()));
    assert!(b.log().roster().is_member(&w.x.member_id()));
}

/// Ops written on each side cross to the other: b, on B, writes on x's op 256 (B refused op
/// 255 and keeps 256; A keeps 255 and refused 256), the founder, on A, admits n on op 255.
/// Each side holds the other's op, read through the op it refused, and they agree on who is a
/// member, a moderator and removed.
#[test]
fn ops_written_on_both_sides_of_the_split_join_both_sides() {
    let mut w = World::new(12);
    let mut a = w.side_a();
    let mut b = w.side_b();
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[255].encoded(), &w.b),
        Ingested::Ignored(Refusal::OpQuota)
    );
    assert!(
        b.log().contains(&w.run[256].id()),
        "op 256 did not join at B"
    );
    assert_eq!(b.log().roster().heads(), &[w.run[256].id()]);
    let n = Identity::generate_at(&mut w.rng, START);
    let admit = op(
        &w,
        &w.founder,
        a.log().writer_heads(&w.founder.member_id()),
        NOW - 30,
        Action::ProposeAdd {
            identity: n.public(),
            name: names::name("n"),
        },
    );
    assert_eq!(
        ingest(&mut a, SetKind::Ops, admit.encoded(), &w.a),
        Ingested::Accepted
    );
    let identity = w.b.rotate_agreement(NOW - 25, &mut w.rng);
    let by_b = op(
        &w,
        &w.b,
        b.log().writer_heads(&w.b.member_id()),
        NOW - 25,
        Action::RotateAgreementKey { identity },
    );
    assert_eq!(by_b.parents(), &[w.run[256].id()]);
    assert_eq!(
        ingest(&mut b, SetKind::Ops, by_b.encoded(), &w.b),
        Ingested::Accepted
    );
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    let _ = hand_over(&mut b, &mut a, &w.a, &[]);
    assert!(a.log().contains(&by_b.id()), "b's op did not join at A");
    assert!(
        b.log().contains(&admit.id()),
        "the admission did not join at B"
    );
    assert_eq!(
        a.log().read_parents(&by_b.id()),
        Some(&[w.run[255].id()][..])
    );
    assert_eq!(
        b.log().read_parents(&admit.id()),
        Some(&[w.run[254].id()][..])
    );
    assert!(a.log().roster().is_member(&n.member_id()));
    assert_eq!(standing(&a), standing(&b));
    let b_at_a = a
        .log()
        .roster()
        .member(&w.b.member_id())
        .unwrap()
        .identity
        .clone();
    let b_at_b = b
        .log()
        .roster()
        .member(&w.b.member_id())
        .unwrap()
        .identity
        .clone();
    assert!(b_at_a == b_at_b, "b's rotation differs between the sides");
}

/// The refused op joining after all (an orphan of x's evicted frees a slot of her day at B, and
/// B takes op 255 from the stub it kept): the edge read through it becomes real, and B, holding exactly the ops A
/// holds, resolves exactly A's roster (the same as resolving them with their own parents).
#[test]
fn a_refused_op_joining_later_makes_the_edge_real() {
    let w = World::new(13);
    let mut a = w.side_a();
    let removal = removal_on(&w, &a, &w.x, NOW - 20);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    for op in &w.run[..255] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    // An orphan of x's for the day fills her quota at B.
    let identity = w.x.public();
    let z = op(
        &w,
        &w.x,
        vec![OpId([0x5a; 32])],
        NOW - 5,
        Action::RotateAgreementKey { identity },
    );
    assert_eq!(
        ingest(&mut b, SetKind::Ops, z.encoded(), &w.b),
        Ingested::Held
    );
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&w.run[255].id()));
    assert!(b.log().contains(&removal.id()));
    // x's orphans of the day before push z out.
    let earlier = START - 60_000;
    let mut sent = 0u8;
    while b.log().holds(&z.id()) {
        sent += 1;
        assert!(sent < 250, "z was never evicted");
        let identity = w.x.public();
        let orphan = op(
            &w,
            &w.x,
            vec![OpId([sent; 32])],
            earlier + u64::from(sent),
            Action::RotateAgreementKey { identity },
        );
        let _ = ingest(&mut b, SetKind::Ops, orphan.encoded(), &w.b);
    }
    // B kept op 255 as a stub (the removal is read through it): with a slot of x's day free,
    // it joins from those bytes at once (no peer would offer it again: B offers its id itself).
    assert!(
        b.log().contains(&w.run[255].id()),
        "the stub did not join when the quota allowed it"
    );
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[255].encoded(), &w.b),
        Ingested::Duplicate
    );
    // Every parent the removal names is held now: it is read as named.
    assert_eq!(
        b.log().read_parents(&removal.id()),
        None,
        "the edge did not become real"
    );
    let ops: Vec<&Op> = b.log().ops().collect();
    let plain = lookout_protocol::membership::resolve(&w.genesis, &ops);
    assert_eq!(b.log().roster(), &plain);
    assert_eq!(b.log().roster(), a.log().roster());
}

/// A restart: the refused set is not kept, but the reading of each op read through a refused
/// op is (`Effect::PutReadParents`, stored beside the op): read back before the ops, the
/// founder's removal of x joins again at once, and B's roster is the one it had. Without the
/// readings (a store written before them), the removal is an orphan again and joins again when
/// sync offers op 255 and B refuses it once more.
#[test]
fn an_op_read_through_a_refused_one_joins_again_after_a_restart() {
    let w = World::new(14);
    let mut a = w.side_a();
    let mut b = w.side_b();
    let removal = removal_on(&w, &a, &w.x, NOW - 20);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    let ops: Vec<Vec<u8>> = a.log().ops().map(|op| op.encoded().to_vec()).collect();
    let refs: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
    let (_, effects) = b.ingest_ops(&refs, &w.b, NOW);
    let readings: Vec<(OpId, Vec<OpId>, Vec<OpId>)> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::PutReadParents { id, parents, via } => Some((id, parents, via)),
            _ => None,
        })
        .collect();
    assert!(b.log().contains(&removal.id()));
    assert!(
        readings.iter().any(|(id, parents, via)| *id == removal.id()
            && parents == &[w.run[254].id()]
            && via == &[w.run[255].id()]),
        "the removal's reading was not kept"
    );
    let before = b.log().roster().clone();
    let stored: Vec<Op> = b.log().ops().cloned().collect();

    let mut again = State::new(w.genesis.clone());
    again.restore_read_parents(readings);
    again.restore_ops(stored.clone());
    assert!(
        again.log().contains(&removal.id()),
        "the removal did not join on restart"
    );
    assert_eq!(again.log().roster(), &before);

    let mut older = State::new(w.genesis.clone());
    older.restore_ops(stored);
    assert!(!older.log().contains(&removal.id()));
    assert!(older.log().holds(&removal.id()));
    let _ = hand_over(&mut a, &mut older, &w.b, &[]);
    assert!(older.log().contains(&removal.id()));
    assert_eq!(older.log().roster(), &before);
}

/// An op waiting deep below a chain of refused ops: B holds x's ops 0 to 198 and a side branch
/// filling her day, refuses ops 200 to 255, and then takes the founder's removal (written on
/// op 255), which waits for op 199, the first id below the chain it does not know. When op 199
/// arrives and is refused over the quota too, the removal joins, read as naming op 198.
#[test]
fn an_op_waiting_below_refused_ops_joins_when_the_op_it_waits_for_is_refused() {
    let mut w = World::new(16);
    let mut a = w.side_a();
    let removal = removal_on(&w, &a, &w.x, NOW - 20);
    assert_eq!(
        ingest(&mut a, SetKind::Ops, removal.encoded(), &w.a),
        Ingested::Accepted
    );
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    for op in &w.run[..199] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    let mut parent = w.setup[4].id();
    for i in 0..(MAX_OPS_PER_AUTHOR_PER_DAY - 199) as u64 {
        let at = START + 900 + i;
        let identity = w.x.rotate_agreement(at, &mut w.rng);
        let side = op(
            &w,
            &w.x,
            vec![parent],
            at,
            Action::RotateAgreementKey { identity },
        );
        parent = side.id();
        assert_eq!(
            ingest(&mut b, SetKind::Ops, side.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    for op in w.run[200..256].iter().rev() {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Ignored(Refusal::OpQuota)
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Ops, removal.encoded(), &w.b),
        Ingested::Held
    );
    assert!(!b.log().contains(&removal.id()));
    assert_eq!(
        ingest(&mut b, SetKind::Ops, w.run[199].encoded(), &w.b),
        Ingested::Ignored(Refusal::OpQuota)
    );
    assert!(b.log().contains(&removal.id()), "the removal still waits");
    assert_eq!(
        b.log().read_parents(&removal.id()),
        Some(&[w.run[198].id()][..])
    );
    assert!(b.log().roster().is_removed(&w.x.member_id()));
    assert_eq!(b.held_count(), 0);
}

/// Review 8, R8-4: an op read through a refused op that only this replica saw must not split
/// the honest ops written on it. R (side A) refused x's op 256 over the quota; x then sends R
/// alone an op of hers dated the day before naming op 256. It joins at R, read through op 256,
/// and the founder admits n on R's heads (which name x's op). R keeps op 256's verified bytes
/// as a stub and offers it in sync, so replica K, handed what R offers, judges op 256 itself
/// (refuses it over its own quota, having x's 256 ops of the day) and takes in x's op and the
/// admission. Before stubs were offered, nobody could give K op 256, and the admission and
/// everything written on it waited at K for good.
#[test]
fn an_op_read_through_a_refused_op_only_one_replica_saw_crosses_with_its_stub() {
    let mut w = World::new(17);
    let mut r = w.side_a();
    let y = &w.run[256];
    assert!(r.refused_over_quota(&y.id()));
    let identity = w.x.public();
    let on_y = op(
        &w,
        &w.x,
        vec![y.id()],
        START - 60_000,
        Action::RotateAgreementKey { identity },
    );
    assert_eq!(
        ingest(&mut r, SetKind::Ops, on_y.encoded(), &w.a),
        Ingested::Accepted
    );
    assert_eq!(
        r.log().read_parents(&on_y.id()),
        Some(&[w.run[255].id()][..])
    );
    let n = Identity::generate_at(&mut w.rng, START);
    let admit = op(
        &w,
        &w.founder,
        r.log().writer_heads(&w.founder.member_id()),
        NOW - 10,
        Action::ProposeAdd {
            identity: n.public(),
            name: names::name("n"),
        },
    );
    assert!(admit.parents().contains(&on_y.id()));
    assert_eq!(
        ingest(&mut r, SetKind::Ops, admit.encoded(), &w.a),
        Ingested::Accepted
    );
    assert!(
        r.sync_items(SetKind::Ops).iter().any(|i| i.id == y.id().0),
        "R does not offer the refused op it reads through"
    );
    let mut k = State::new(w.genesis.clone());
    let _ = hand_over(&mut r, &mut k, &w.b, &[]);
    assert!(k.refused_over_quota(&y.id()));
    assert!(k.log().contains(&on_y.id()));
    assert!(k.log().contains(&admit.id()), "the admission did not cross");
    assert!(k.log().roster().is_member(&n.member_id()));
    assert_eq!(r.log().roster(), k.log().roster());
}

/// Review 8, R8-5: bytes nobody signed are never read through. The quota is checked before the
/// signature, so bytes claiming to be x's op of a full day (a real op with its signature
/// spoiled) are refused over the quota at R; x's op naming them is then checked against them,
/// they do not verify, and it waits (as on main) instead of joining at R, where honest writers
/// would build on it while every replica that checked the signature never takes it.
#[test]
fn bytes_nobody_signed_are_not_read_through() {
    let w = World::new(18);
    let mut r = w.side_a();
    let identity = w.x.public();
    let real = op(
        &w,
        &w.x,
        vec![w.run[100].id()],
        START + 2_000,
        Action::RotateAgreementKey { identity },
    );
    let mut g = real.encoded().to_vec();
    *g.last_mut().unwrap() ^= 0x01;
    let g_id = OpId(SetKind::Ops.id_of(&g));
    assert_eq!(
        ingest(&mut r, SetKind::Ops, &g, &w.a),
        Ingested::Ignored(Refusal::OpQuota)
    );
    let identity = w.x.public();
    let on_g = op(
        &w,
        &w.x,
        vec![g_id],
        START - 60_000,
        Action::RotateAgreementKey { identity },
    );
    assert_eq!(
        ingest(&mut r, SetKind::Ops, on_g.encoded(), &w.a),
        Ingested::Held
    );
    assert!(!r.log().contains(&on_g.id()));
    assert!(!r
        .log()
        .writer_heads(&w.founder.member_id())
        .contains(&on_g.id()));
    // The same bytes again, once x's op waits for them: checked, and rejected as forged.
    let again = r.ingest(SetKind::Ops, &g, &w.a, NOW + 1).outcome;
    assert!(
        matches!(again, Ingested::Rejected(_) | Ingested::Duplicate),
        "{again:?}"
    );
    assert!(!r.log().contains(&on_g.id()));
}

// ---- Review 9, R9-7 (copied from branch `rev9`, `protocol/tests/review9.rs`) ----

/// R9-7. An alert (or key delivery) written on a head refused over the quota is read through
/// the bounded refused set only (4,096 ids, 16,384 parents), never through the stubs. x's op 256
/// at B reads through op 255, so B keeps op 255 as a stub for good; then x pushes op 255 out of
/// the refused set with 512 over-quota ops of 32 parents each (the quota is checked before the
/// signature: they may be bytes nobody signed). Op 255 offered again is "kept already" as a
/// stub, so it never enters the refused set again: an honest member's alert written on A's
/// heads (op 255) waits at B for good, however many syncs pass and whatever joins B's log
/// (checked by hand: a membership op joining B does not release it). The safe behaviour: the
/// alert crosses in the sync that offers op 255 again.
#[test]
fn r9_an_alert_on_a_refused_head_crosses_after_the_refused_set_is_flushed() {
    let mut w = World::new(97);
    let mut b = w.side_b();
    let mut a = w.side_a();
    let refused = w.run[255].id();
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&refused));
    assert!(b.log().is_stub(&refused) && b.log().contains(&w.run[256].id()));
    flush_refused(&w, &mut b, 0x10);
    // (On main the flood pushed op 255 out of the refused set; a stub now stays refused over
    // the quota whatever the flood, which is the fix.)
    let heads = a.log().roster().heads().to_vec();
    assert!(heads.contains(&refused));
    let post = alert_on_heads_at_a(&mut w, &mut a, heads);
    crosses_within_3_syncs(&w, &mut a, &mut b, &post, refused);
}

/// Replica B of R9-7b and R9-7c: x's day full with her ops 0 to 254 and a fork z of hers (on op
/// 254), so B refuses op 255 over the quota and nothing of B's reads through it (no stub).
fn side_b_full_without_op_255(w: &World) -> State {
    let mut b = State::new(w.genesis.clone());
    for op in &w.setup {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    assert_eq!(
        ingest(&mut b, SetKind::Deliveries, w.rotation.encoded(), &w.b),
        Ingested::Accepted
    );
    for op in &w.run[..255] {
        assert_eq!(
            ingest(&mut b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Accepted
        );
    }
    let z = Op::create(
        &w.x,
        w.collective(),
        vec![w.run[254].id()],
        START + 2_000,
        Action::RotateAgreementKey {
            identity: w.x.public(),
        },
    )
    .unwrap();
    assert_eq!(
        ingest(&mut b, SetKind::Ops, z.encoded(), &w.b),
        Ingested::Accepted
    );
    b
}

/// R9-7b. The same without a stub: B's day of x's is full with ops 0 to 254 and a fork z of
/// hers, so it refuses op 255 and nothing of B's reads through it. After x's flush of the
/// refused set, op 255 offered again is "deferred until the log changes" and answered as a
/// duplicate without being remembered again, so the alert written on it waits at B until some
/// membership op joins B's log (in a quiet collective: hours or days). Safe: it crosses in the
/// sync that offers op 255 again.
#[test]
fn r9_an_alert_on_a_refused_head_crosses_after_the_refused_set_is_flushed_without_a_stub() {
    let mut w = World::new(98);
    let mut a = w.side_a();
    let mut b = side_b_full_without_op_255(&w);
    let refused = w.run[255].id();
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&refused) && !b.log().is_stub(&refused));
    flush_refused(&w, &mut b, 0x11);
    // (On main the flood pushed op 255 out of the refused set; a stub now stays refused over
    // the quota whatever the flood, which is the fix.)
    let heads = a.log().roster().heads().to_vec();
    assert_eq!(heads, vec![refused]);
    let post = alert_on_heads_at_a(&mut w, &mut a, heads);
    crosses_within_3_syncs(&w, &mut a, &mut b, &post, refused);
}

// ---- Review 9 (docs/design/REVIEW9.md) on this set-up ----

/// R9-8. A key delivery signed by a key that never was a member, naming a head refused over the
/// quota, is refused without penalty (`without_penalty_if(read)`), after a full resolution of
/// the roster at the heads read: a stranger may send such deliveries for ever, each costing a
/// signature check and a resolution, and is never dropped. The same delivery naming the held
/// parent directly is rejected (penalised). Safe: a delivery whose author the log cannot know
/// as a possible author is rejected whatever heads it names. Fixed: before any resolution, a
/// delivery read through refused ops is rejected if no op held, stub or remembered refused op
/// proposes to admit its author (`MembershipLog::may_be_admitted`; its honest side is
/// `a_delivery_by_a_key_admitted_only_by_a_refused_op_is_refused_without_penalty` in
/// review9.rs).
#[test]
fn r9_a_strangers_delivery_on_a_refused_head_is_penalised() {
    let mut w = World::new(99);
    let mut b = w.side_b();
    let mut a = w.side_a();
    let refused = w.run[255].id();
    let _ = hand_over(&mut a, &mut b, &w.b, &[]);
    assert!(b.refused_over_quota(&refused));
    let stranger = Identity::generate_at(&mut w.rng, START);
    assert!(!b.log().may_author(&stranger.member_id()));
    let key = EpochKey::generate(&mut w.rng);
    let forged = |heads: Vec<OpId>, rng: &mut ChaCha20Rng| {
        KeyDelivery::create(
            &stranger,
            w.genesis.id(),
            &key,
            DeliveryKind::Rotation,
            heads,
            NOW - 60,
            &[stranger.public(), w.b.public()],
            rng,
        )
        .unwrap()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(990);
    let direct = forged(vec![w.run[254].id()], &mut rng);
    let control = ingest(&mut b, SetKind::Deliveries, direct.encoded(), &w.b);
    assert!(control.is_rejected(), "control: {control:?}");
    let via_refused = forged(vec![refused], &mut rng);
    let outcome = ingest(&mut b, SetKind::Deliveries, via_refused.encoded(), &w.b);
    assert!(
        outcome.is_rejected(),
        "a stranger's delivery naming a refused head is not penalised: {outcome:?}"
    );
}

/// 512 over-quota ops of x's with 32 made-up parents each (tagged `tag`): enough to push every
/// earlier entry out of the refused set (16,384 parents at most).
fn flush_refused(w: &World, b: &mut State, tag: u8) {
    let identity = w.x.public();
    for i in 0..512u64 {
        let parents: Vec<OpId> = (0..32u64)
            .map(|p| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i * 32 + p).to_le_bytes());
                id[30] = tag;
                id[31] = 0x97;
                OpId(id)
            })
            .collect();
        let op = Op::create(
            &w.x,
            w.collective(),
            parents,
            START + 1_000 + i,
            Action::RotateAgreementKey {
                identity: identity.clone(),
            },
        )
        .unwrap();
        assert_eq!(
            ingest(b, SetKind::Ops, op.encoded(), &w.b),
            Ingested::Ignored(Refusal::OpQuota)
        );
    }
}

/// R9-7c. As R9-7b (no stub), with x flushing the refused set again in every sync round,
/// between the ops and the posts of the round (gossip reaches a node between the parts of a
/// sync). A fix that only puts a refused op offered again back into the refused set (R9-7b)
/// does not help then: the alert must not depend on a bounded FIFO that anyone claiming a full
/// author-day can flush. Safe: the alert crosses in one of the 3 syncs.
#[test]
fn r9_an_alert_on_a_refused_head_crosses_while_the_refused_set_is_flushed_every_round() {
    let mut w = World::new(96);
    let mut a = w.side_a();
    let mut b = side_b_full_without_op_255(&w);
    let refused = w.run[255].id();
    let heads = a.log().roster().heads().to_vec();
    assert_eq!(heads, vec![refused]);
    let post = alert_on_heads_at_a(&mut w, &mut a, heads);
    let id = envelope::id_of(&post).unwrap();
    for round in 0..3u8 {
        let _ = hand_over(&mut a, &mut b, &w.b, &[]);
        flush_refused(&w, &mut b, round);
        let _ = ingest(&mut b, SetKind::Envelopes, &post, &w.b);
        if b.posts().contains_key(&id) {
            break;
        }
    }
    assert!(
        b.posts().contains_key(&id),
        "after 3 syncs, each with the refused set flushed between its ops and its posts, the alert still waits at B"
    );
}

/// A's alert "written on the refused head" naming `heads`, taken in at A.
fn alert_on_heads_at_a(w: &mut World, a: &mut State, heads: Vec<OpId>) -> Vec<u8> {
    let (key, co) = (w.key.clone(), w.collective());
    let post = alert(
        &key,
        co,
        &w.a,
        heads,
        "written on the refused head",
        &mut w.rng,
    );
    assert_eq!(
        ingest(a, SetKind::Envelopes, &post, &w.a),
        Ingested::Accepted
    );
    post
}

/// `post` reaches B within 3 syncs from A that offer op 255 (`refused`) again.
fn crosses_within_3_syncs(w: &World, a: &mut State, b: &mut State, post: &[u8], refused: OpId) {
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes = hand_over(a, b, &w.b, &[post.to_vec()]);
        if outcomes[0] == Ingested::Accepted {
            break;
        }
    }
    assert_eq!(
        outcomes[0],
        Ingested::Accepted,
        "after 3 syncs offering op 255 again, the alert still waits at B (refused set: {})",
        b.refused_over_quota(&refused)
    );
}
