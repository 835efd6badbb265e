//! Trust rules for posts: one identity per signed post whatever its wrapping, and moderator
//! rights for retractions taken from the current roster, never from the state a post names.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use lookout_protocol::codec;
use lookout_protocol::content::*;
use lookout_protocol::envelope::{self, EnvelopeError, InnerBody, Rejection, Verdict, Verified};
use lookout_protocol::epoch::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{ContentId, OpId};
use rand_chacha::rand_core::{RngCore as _, SeedableRng};
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;
const DAY: u64 = 86_400;

struct Net {
    rng: ChaCha20Rng,
    log: MembershipLog,
    founder: Identity,
    key: EpochKey,
    book: EpochBook,
}

impl Net {
    /// A collective of the founder (a moderator), `moderator` (promoted) and `author`, with one
    /// epoch everybody holds.
    fn new() -> (Self, Identity, Identity, Identity) {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let founder = Identity::generate(&mut rng);
        let genesis = SignedGenesis::create(
            &founder,
            &names::secret(),
            "n",
            "f",
            Policy::default(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let mut net = Self {
            log: MembershipLog::new(genesis),
            key: EpochKey::generate(&mut rng),
            book: EpochBook::new(),
            rng,
            founder,
        };
        let moderator = net.add();
        net.op(Action::ProposePromote {
            member: moderator.member_id(),
        });
        let author = net.add();
        let plain = net.add();
        assert!(net.log.roster().is_moderator(&moderator.member_id()));
        let recipients: Vec<_> = net
            .log
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let delivery = KeyDelivery::create(
            &net.founder,
            net.log.collective(),
            &net.key,
            DeliveryKind::Rotation,
            net.log.roster().heads().to_vec(),
            NOW,
            &recipients,
            &mut net.rng,
        )
        .unwrap();
        let roster = net.log.roster().clone();
        net.book.record(&delivery, &net.founder, &roster).unwrap();
        (net, moderator, author, plain)
    }

    fn op(&mut self, action: Action) -> OpId {
        let op = Op::create(
            &self.founder,
            self.log.collective(),
            self.log.roster().heads().to_vec(),
            NOW,
            action,
        )
        .unwrap();
        let id = op.id();
        self.log.insert(op);
        id
    }

    fn add(&mut self) -> Identity {
        let id = Identity::generate(&mut self.rng);
        self.op(Action::ProposeAdd {
            identity: id.public(),
            name: names::name("m"),
        });
        id
    }

    fn seal(&mut self, author: &Identity, expires: u64, content: Content) -> envelope::Envelope {
        let body = InnerBody {
            collective: self.log.collective(),
            epoch: self.key.id(),
            author: author.member_id(),
            seq: 1,
            heads: self.log.roster().heads().to_vec(),
            timestamp: NOW,
            expires,
            content,
        };
        envelope::seal(author, &self.key, body, &mut self.rng).unwrap()
    }

    /// Open and authorize against the current roster.
    fn verify(&self, bytes: &[u8]) -> Verified {
        let opened = envelope::open(bytes, self.log.collective(), |e| self.book.key(e)).unwrap();
        let at_heads = self.log.clone().roster_at(&opened.body.heads).unwrap();
        let info = self.book.info(&self.key.id()).unwrap().clone();
        opened
            .authorize(&at_heads, self.log.roster(), &info, NOW, 0)
            .unwrap()
    }

    fn roster_at(&self, heads: &[OpId]) -> Roster {
        Roster::clone(&self.log.clone().roster_at(heads).unwrap())
    }
}

fn alert() -> Content {
    Content::Alert(Alert {
        category: Category::Robbery,
        severity: Severity::Medium,
        description: "took the money back at knife point".into(),
        identifiers: Identifiers::default(),
        area: "Quayside".into(),
        incident_time: None,
        language: "en".into(),
        on_behalf: false,
    })
}

fn retraction(target: ContentId) -> Content {
    Content::Retraction {
        target,
        reason: "never happened".into(),
    }
}

/// What any member holding the epoch key can do to anyone's envelope: decrypt it and encrypt the
/// same plaintext again, with a fresh nonce and, optionally, another header.
fn rewrap(
    bytes: &[u8],
    key: &EpochKey,
    rng: &mut ChaCha20Rng,
    edit: impl FnOnce(&mut envelope::Outer),
) -> Vec<u8> {
    let mut outer = envelope::peek(bytes).unwrap();
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &codec::encode(&outer),
            },
        )
        .unwrap();
    rng.fill_bytes(&mut outer.nonce);
    edit(&mut outer);
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &codec::encode(&outer),
            },
        )
        .unwrap();
    codec::encode(&outer)
}

#[test]
fn a_rewrapped_envelope_is_the_same_post() {
    let (mut net, _, author, _) = Net::new();
    let sealed = net.seal(&author, NOW + DAY, alert());
    let copy = rewrap(&sealed.bytes, &net.key, &mut net.rng, |_| {});
    assert_ne!(copy, sealed.bytes, "a different wrapping");
    let collective = net.log.collective();
    let original = envelope::open(&sealed.bytes, collective, |e| net.book.key(e)).unwrap();
    let opened = envelope::open(&copy, collective, |e| net.book.key(e)).unwrap();
    assert_eq!(opened.id, original.id, "one post, one id");
    assert_eq!(opened.id, sealed.id);
    assert_eq!(
        envelope::id_of(&copy).unwrap(),
        sealed.id,
        "readable without the key"
    );
    // The id is the hash of what the author signed: another post of the same author differs.
    let other = net.seal(&author, NOW + 2 * DAY, alert());
    assert_ne!(other.id, sealed.id);
}

#[test]
fn an_envelope_claiming_another_posts_id_is_a_forgery() {
    let (mut net, _, author, _) = Net::new();
    let victim = net.seal(&author, NOW + DAY, alert());
    let own = net.seal(&author, NOW + 2 * DAY, alert());
    // Wrap one post under the other's id: the AEAD passes (the forger holds the key), the id
    // check does not.
    let forged = rewrap(&own.bytes, &net.key, &mut net.rng, |outer| {
        outer.id = victim.id;
    });
    assert_eq!(envelope::id_of(&forged).unwrap(), victim.id);
    let e = envelope::open(&forged, net.log.collective(), |e| net.book.key(e)).unwrap_err();
    assert!(matches!(e, EnvelopeError::WrongId), "{e}");
    assert_eq!(e.verdict(), Verdict::Reject);
    let batch = envelope::open_batch(&[&forged, &victim.bytes], net.log.collective(), |e| {
        net.book.key(e)
    });
    assert!(matches!(batch[0], Err(EnvelopeError::WrongId)));
    assert_eq!(batch[1].as_ref().unwrap().id, victim.id);
    // A relay cannot change the id in clear either: it is part of the AEAD's associated data.
    let mut outer = envelope::peek(&victim.bytes).unwrap();
    outer.id = own.id;
    let e = envelope::open(&codec::encode(&outer), net.log.collective(), |e| {
        net.book.key(e)
    })
    .unwrap_err();
    assert!(matches!(e, EnvelopeError::Decrypt), "{e}");
}

#[test]
fn retraction_rights_come_from_the_current_roster() {
    let (mut net, moderator, author, plain) = Net::new();
    let target = net.seal(&author, NOW + DAY, alert());
    let target = net.verify(&target.bytes);
    let by_moderator = net.seal(&moderator, NOW + DAY, retraction(target.id()));
    let by_moderator = net.verify(&by_moderator.bytes);
    let by_author = net.seal(&author, NOW + DAY, retraction(target.id()));
    let by_author = net.verify(&by_author.bytes);
    let by_plain = net.seal(&plain, NOW + DAY, retraction(target.id()));
    let by_plain = net.verify(&by_plain.bytes);
    let heads = net.log.roster().heads().to_vec();
    let then = net.roster_at(&heads);

    // While a moderator: the retraction is accepted and withdraws the alert.
    assert_eq!(
        by_moderator.check_reference(target.id(), &target.meta(), &then, &then),
        Ok(())
    );
    assert!(by_moderator.retracts(target.id(), &target.meta(), &then));
    let e = by_plain
        .check_reference(target.id(), &target.meta(), &then, &then)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::NotAModerator, Verdict::Reject)
    );
    assert!(!by_plain.retracts(target.id(), &target.meta(), &then));

    // Demoted: the same retraction, naming the state in which its author was a moderator, is
    // no longer accepted (quietly: an honest node may forward one it took earlier), and one
    // already stored no longer withdraws the alert. The author's own retraction still does.
    net.op(Action::ProposeDemote {
        member: moderator.member_id(),
    });
    let demoted = net.log.roster().clone();
    assert!(demoted.is_member(&moderator.member_id()));
    let e = by_moderator
        .check_reference(target.id(), &target.meta(), &then, &demoted)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::NoLongerModerator, Verdict::Ignore)
    );
    assert!(!by_moderator.retracts(target.id(), &target.meta(), &demoted));
    assert_eq!(
        by_author.check_reference(target.id(), &target.meta(), &then, &demoted),
        Ok(())
    );
    assert!(by_author.retracts(target.id(), &target.meta(), &demoted));
}

#[test]
fn a_removed_moderators_retraction_does_not_count() {
    let (mut net, moderator, author, _) = Net::new();
    let target = net.seal(&author, NOW + DAY, alert());
    let target = net.verify(&target.bytes);
    let by_moderator = net.seal(&moderator, NOW + DAY, retraction(target.id()));
    let by_moderator = net.verify(&by_moderator.bytes);
    let then = net.log.roster().clone();
    assert!(by_moderator.retracts(target.id(), &target.meta(), &then));
    net.op(Action::Remove {
        member: moderator.member_id(),
        reason: names::reason("protected a client"),
    });
    let removed = net.log.roster().clone();
    assert!(removed.is_removed(&moderator.member_id()));
    let e = by_moderator
        .check_reference(target.id(), &target.meta(), &then, &removed)
        .unwrap_err();
    assert_eq!(e, Rejection::NoLongerModerator);
    assert!(!by_moderator.retracts(target.id(), &target.meta(), &removed));
}

#[test]
fn edits_and_retractions_keep_to_their_alert() {
    let (mut net, moderator, author, _) = Net::new();
    let target = net.seal(&author, NOW + 2 * DAY, alert());
    let target = net.verify(&target.bytes);
    let roster = net.log.roster().clone();
    let Content::Alert(text) = alert() else {
        unreachable!()
    };
    let edit = |net: &mut Net, who: &Identity| {
        let sealed = net.seal(
            who,
            NOW + 2 * DAY,
            Content::Edit {
                target: target.id(),
                alert: text.clone(),
            },
        );
        net.verify(&sealed.bytes)
    };
    assert_eq!(
        edit(&mut net, &author).check_reference(target.id(), &target.meta(), &roster, &roster),
        Ok(())
    );
    assert_eq!(
        edit(&mut net, &moderator).check_reference(target.id(), &target.meta(), &roster, &roster),
        Err(Rejection::NotTheAuthor)
    );

    // A retraction that would lapse before its alert (which would then show again).
    let short = net.seal(&author, NOW + DAY, retraction(target.id()));
    let short = net.verify(&short.bytes);
    let e = short
        .check_reference(target.id(), &target.meta(), &roster, &roster)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::RetractionExpiresFirst, Verdict::Reject)
    );

    // Only alerts are referred to: not a retraction, nor a post named by another post.
    let full = net.seal(&author, NOW + 2 * DAY, retraction(target.id()));
    let full = net.verify(&full.bytes);
    let of_retraction = net.seal(&author, NOW + 2 * DAY, retraction(full.id()));
    let of_retraction = net.verify(&of_retraction.bytes);
    assert_eq!(
        of_retraction.check_reference(full.id(), &full.meta(), &roster, &roster),
        Err(Rejection::NotAnAlert)
    );
    assert_eq!(
        full.check_reference(full.id(), &full.meta(), &roster, &roster),
        Err(Rejection::NotAnAlert)
    );
}
