//! Regression tests for two protocol bugs found by the simulation (`tests/simulation.rs`, run
//! with `... many_seeds -- --ignored`), reduced to three members: whether a
//! post was accepted, and whether an epoch could still be written under, depended on which key
//! deliveries a replica happened to have seen. Fixed by retiring epochs by membership history
//! (`EpochInfo::status`) and dropping the recipient check from `authorize`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody, Verdict};
use lookout_protocol::epoch::{DeliveryKind, EpochBook, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::{Action, MembershipLog, Op, Policy, SignedGenesis};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const START: u64 = 1_790_000_000;

/// The smallest setting for the two bugs below: founder F and member A share epoch E1; B joins
/// later and gets E1 by a share from F that A never sees.
struct Trio {
    rng: ChaCha20Rng,
    log: MembershipLog,
    f: Identity,
    a: Identity,
    b: Identity,
    e1: EpochKey,
    /// What A knows: the rotation only.
    a_book: EpochBook,
    /// What F knows: the rotation and the share.
    f_book: EpochBook,
    b_book: EpochBook,
}

impl Trio {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(4242);
        let f = Identity::generate(&mut rng);
        let a = Identity::generate(&mut rng);
        let b = Identity::generate(&mut rng);
        let genesis = SignedGenesis::create(
            &f,
            &names::secret(),
            "Trio",
            "f",
            Policy::default(),
            START,
            &mut rng,
        )
        .unwrap();
        let mut trio = Self {
            rng,
            log: MembershipLog::new(genesis),
            e1: EpochKey::from_bytes([7; 32]),
            f,
            a,
            b,
            a_book: EpochBook::new(),
            f_book: EpochBook::new(),
            b_book: EpochBook::new(),
        };
        let add_a = Action::ProposeAdd {
            identity: trio.a.public(),
            name: names::name("a"),
        };
        trio.op(add_a);
        let members: Vec<_> = [&trio.f, &trio.a].iter().map(|i| i.public()).collect();
        let rotation = trio.deliver(DeliveryKind::Rotation, &members);
        let add_b = Action::ProposeAdd {
            identity: trio.b.public(),
            name: names::name("b"),
        };
        trio.op(add_b);
        let share = trio.deliver(DeliveryKind::Share, &[trio.b.public()]);
        for d in [&rotation, &share] {
            let at = trio.log.roster_at(&d.body().heads).unwrap();
            d.check_authority(&at).unwrap();
            trio.f_book.record(d, &trio.f, &at).unwrap();
            trio.b_book.record(d, &trio.b, &at).unwrap();
        }
        let at = trio.log.roster_at(&rotation.body().heads).unwrap();
        trio.a_book.record(&rotation, &trio.a, &at).unwrap(); // the share to B never reaches A
        trio
    }

    fn op(&mut self, action: Action) {
        let heads = self.log.roster().heads().to_vec();
        let op = Op::create(&self.f, self.log.collective(), heads, START, action).unwrap();
        self.log.insert(op);
    }

    fn deliver(&mut self, kind: DeliveryKind, to: &[PublicIdentity]) -> KeyDelivery {
        KeyDelivery::create(
            &self.f,
            self.log.collective(),
            &self.e1,
            kind,
            self.log.roster().heads().to_vec(),
            START,
            to,
            &mut self.rng,
        )
        .unwrap()
    }

    /// A post by A (`'a'`) or B (`'b'`) under E1, naming the current heads.
    fn post(&mut self, who: char, now: u64) -> envelope::Envelope {
        let author = if who == 'a' { &self.a } else { &self.b };
        let body = InnerBody {
            collective: self.log.collective(),
            epoch: self.e1.id(),
            author: author.member_id(),
            seq: 1,
            heads: self.log.roster().heads().to_vec(),
            timestamp: now,
            expires: now + 86_400,
            content: Content::Alert(alert()),
        };
        envelope::seal(author, &self.e1, body, &mut self.rng).unwrap()
    }
}

/// BUG (protocol): `Opened::authorize` answers `Rejection::NotARecipient` with
/// `Verdict::Reject` when the post's author got the epoch through a share this replica has not
/// seen yet. Whether an honest post is accepted then depends on the order deliveries and posts
/// arrive in, replicas diverge for good (the post is dropped and its sender penalised), and the
/// many-seed simulation without workarounds hits it on about one seed in ten.
///
/// Proposed fix: make `NotARecipient` a `Verdict::Hold` (sync deliveries, then retry), or drop
/// the check: anyone who was a member at the post's heads may legitimately hold a
/// non-retired epoch.
#[test]
fn bug_post_under_shared_epoch_is_rejected_before_the_share_arrives() {
    let mut trio = Trio::new();
    let now = START + 60;
    let post = trio.post('b', now);
    let collective = trio.log.collective();
    let roster = trio.log.roster().clone();

    // F, who saw the share, accepts B's post.
    let at_f = envelope::open(&post.bytes, collective, |e| trio.f_book.key(e)).unwrap();
    let info = trio.f_book.info(&trio.e1.id()).unwrap();
    assert!(at_f.authorize(&roster, &roster, info, now, 0).is_ok());

    // A holds the key too but has not seen the share yet: the post must not be condemned.
    let at_a = envelope::open(&post.bytes, collective, |e| trio.a_book.key(e)).unwrap();
    let info = trio.a_book.info(&trio.e1.id()).unwrap();
    match at_a.authorize(&roster, &roster, info, now, 0) {
        Ok(_) => {}
        Err(rejection) => assert_ne!(
            rejection.verdict(),
            Verdict::Reject,
            "an honest post is rejected for good because a share has not arrived: {rejection}"
        ),
    }
}

/// BUG (protocol, confidentiality): an epoch is *retired* only if a removed member is among the
/// recipients the replica happens to know. A member who missed the share that gave E1 to B
/// learns of B's removal, still finds E1 writable (`EpochBook::write_epoch`), and posts under it:
/// B, removed, reads a post written by someone who knew of the removal. Replicas also diverge:
/// F (who saw the share) rejects the post as `EpochNotWritable`, while A accepted its own.
///
/// Proposed fix: retire by history, not by known recipients. Record in `EpochInfo` the heads of
/// the epoch's rotation (only a rotation delivery creates an epoch); an epoch is retired at a
/// roster that has removed anyone not already removed at the rotation's heads. Removals already
/// force a rotation, so nothing writable is lost; `authorize` checks the same rule at the post's
/// heads (holding the post until the rotation delivery is known), which makes acceptance a
/// function of the op set and the rotation alone.
#[test]
fn bug_writer_who_missed_a_share_writes_under_an_epoch_the_removed_member_holds() {
    let mut trio = Trio::new();
    let remove_b = Action::Remove {
        member: trio.b.member_id(),
        reason: names::reason("phone seized"),
    };
    trio.op(remove_b);
    let roster = trio.log.roster().clone();
    assert!(roster.is_removed(&trio.b.member_id()));
    let now = START + 120;

    // F, who saw the share, knows E1 is compromised.
    assert_eq!(trio.f_book.write_epoch(&roster, now), None);
    // A, who knows of the removal but not of the share, must not write under E1 either.
    let a_choice = trio.a_book.write_epoch(&roster, now);
    assert_eq!(
        a_choice, None,
        "A must not write under E1 after B's removal"
    );
    // A post under E1 that names B's removal is refused alike by A and F (no divergence).
    let post = trio.post('a', now);
    let collective = trio.log.collective();
    for book in [&trio.a_book, &trio.f_book] {
        let opened = envelope::open(&post.bytes, collective, |e| book.key(e)).unwrap();
        let info = book.info(&trio.e1.id()).unwrap();
        let refused = opened
            .authorize(&roster, &roster, info, now, 0)
            .unwrap_err();
        assert_eq!(refused.verdict(), Verdict::Reject, "{refused}");
    }
}

fn alert() -> Alert {
    Alert {
        category: Category::Threats,
        severity: Severity::High,
        description: "followed her home".into(),
        identifiers: Identifiers::default(),
        area: "north".into(),
        incident_time: None,
        language: "en".into(),
        on_behalf: false,
    }
}
