//! A key delivery whose share for us does not open (only the recipient can check it): held, not
//! rejected; the epoch is not counted as held; the signer is remembered; the key can come from
//! any other member, and who may be given it on request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::epoch::*;
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::membership::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

#[derive(Clone, Copy)]
enum Who {
    F,
    V,
    R,
}

/// Founder F (a moderator), members V (the victim) and R (the rogue).
struct Group {
    rng: ChaCha20Rng,
    log: MembershipLog,
    f: Identity,
    v: Identity,
    r: Identity,
}

impl Group {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let f = Identity::generate(&mut rng);
        let v = Identity::generate(&mut rng);
        let r = Identity::generate(&mut rng);
        let genesis = SignedGenesis::create(
            &f,
            &names::secret(),
            "g",
            "f",
            Policy::default(),
            NOW,
            &mut rng,
        )
        .unwrap();
        let mut group = Self {
            rng,
            log: MembershipLog::new(genesis),
            f,
            v,
            r,
        };
        for who in [group.v.public(), group.r.public()] {
            group.op(Action::ProposeAdd {
                identity: who,
                name: names::name("m"),
            });
        }
        group
    }

    fn op(&mut self, action: Action) {
        let heads = self.log.roster().heads().to_vec();
        let op = Op::create(&self.f, self.log.collective(), heads, NOW, action).unwrap();
        self.log.insert(op);
    }

    fn members(&self) -> Vec<PublicIdentity> {
        self.log
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect()
    }

    fn identity(&self, who: Who) -> &Identity {
        match who {
            Who::F => &self.f,
            Who::V => &self.v,
            Who::R => &self.r,
        }
    }

    fn deliver(
        &mut self,
        author: Who,
        key: &EpochKey,
        kind: DeliveryKind,
        at: u64,
        to: &[PublicIdentity],
    ) -> KeyDelivery {
        let mut rng = self.rng.clone();
        let d = KeyDelivery::create(
            self.identity(author),
            self.log.collective(),
            key,
            kind,
            self.log.roster().heads().to_vec(),
            at,
            to,
            &mut rng,
        )
        .unwrap();
        self.rng = rng;
        d
    }

    /// R's rotation of `key` to every member, with V's share replaced by noise and re-signed.
    fn junk_rotation(&mut self, key: &EpochKey, at: u64) -> KeyDelivery {
        let members = self.members();
        let honest = self.deliver(Who::R, key, DeliveryKind::Rotation, at, &members);
        let mut body = honest.body().clone();
        let victim = self.v.member_id();
        let share = body
            .shares
            .iter_mut()
            .find(|s| s.recipient == victim)
            .unwrap();
        self.rng.fill_bytes(&mut share.ciphertext);
        KeyDelivery::sign_body(&self.r, &body).unwrap()
    }

    fn record(&mut self, book: &mut EpochBook, me: Who, d: &KeyDelivery) -> Recorded {
        let at = self.log.roster_at(&d.body().heads).unwrap();
        d.check_authority(&at).unwrap();
        book.record(d, self.identity(me), &at).unwrap()
    }
}

#[test]
fn a_junk_share_is_held_and_the_key_comes_from_another_member() {
    let mut g = Group::new();
    let old = EpochKey::generate(&mut g.rng);
    let members = g.members();
    let first = g.deliver(Who::F, &old, DeliveryKind::Rotation, NOW, &members);
    let new = EpochKey::generate(&mut g.rng);
    let junk = g.junk_rotation(&new, NOW + 60);
    let roster = g.log.roster().clone();
    let v = g.v.public();

    // Everyone else takes the rogue's rotation and writes under it.
    let mut f_book = EpochBook::new();
    g.record(&mut f_book, Who::F, &first);
    assert_eq!(
        g.record(&mut f_book, Who::F, &junk),
        Recorded::NewKey(new.id())
    );
    assert_eq!(f_book.write_epoch(&roster, NOW + 120), Some(new.id()));

    // The victim: an outcome, not an error (so nobody who forwarded it is penalised); the
    // rotation counts, the key is not held, the signer is remembered.
    let mut v_book = EpochBook::new();
    assert_eq!(
        g.record(&mut v_book, Who::V, &first),
        Recorded::NewKey(old.id())
    );
    assert_eq!(
        g.record(&mut v_book, Who::V, &junk),
        Recorded::Unreadable {
            epoch: new.id(),
            signer: g.r.member_id(),
        }
    );
    let info = v_book.info(&new.id()).unwrap();
    assert!(info.rotation_seen && !info.have_key);
    assert!(info.unreadable_from.contains(&g.r.member_id()));
    assert!(v_book.key(&new.id()).is_none());
    // It does not write under an epoch it cannot read: the older one it holds is still live.
    assert_eq!(v_book.write_epoch(&roster, NOW + 120), Some(old.id()));
    // It knows what to ask for, and F may give it.
    assert_eq!(
        v_book.lacking(&v.member, &roster, NOW + 120),
        vec![new.id()]
    );
    assert!(f_book.shareable(&new.id(), &v.member, &roster).is_ok());

    // F's share opens: the key is held, written under, and no longer asked for.
    let reshare = g.deliver(
        Who::F,
        &new,
        DeliveryKind::Share,
        NOW + 120,
        std::slice::from_ref(&v),
    );
    assert_eq!(
        g.record(&mut v_book, Who::V, &reshare),
        Recorded::NewKey(new.id())
    );
    assert_eq!(v_book.write_epoch(&roster, NOW + 180), Some(new.id()));
    assert!(v_book.lacking(&v.member, &roster, NOW + 180).is_empty());
    // The junk's signer stays on record for moderators.
    assert!(v_book
        .info(&new.id())
        .unwrap()
        .unreadable_from
        .contains(&g.r.member_id()));
}

#[test]
fn the_key_is_shared_on_request_only_with_members_entitled_to_it() {
    let mut g = Group::new();
    let key = EpochKey::generate(&mut g.rng);
    let junk = g.junk_rotation(&key, NOW);
    let mut f_book = EpochBook::new();
    g.record(&mut f_book, Who::F, &junk);
    let v = g.v.member_id();
    let r = g.r.member_id();

    // A key this replica does not hold, and an epoch whose rotation it has not seen.
    let unknown = EpochKey::generate(&mut g.rng);
    let roster = g.log.roster().clone();
    assert_eq!(
        f_book.shareable(&unknown.id(), &v, &roster).err(),
        Some(ShareRefusal::KeyNotHeld)
    );
    let members = g.members();
    let share_only = g.deliver(Who::F, &unknown, DeliveryKind::Share, NOW, &members);
    g.record(&mut f_book, Who::F, &share_only);
    assert_eq!(
        f_book.shareable(&unknown.id(), &v, &roster).err(),
        Some(ShareRefusal::Unconfirmed)
    );

    // The rogue is removed: it gets nothing any more, and the epoch is retired.
    g.op(Action::Remove {
        member: r,
        reason: names::reason("junk shares"),
    });
    let roster = g.log.roster().clone();
    assert_eq!(
        f_book.shareable(&key.id(), &r, &roster).err(),
        Some(ShareRefusal::NotAMember)
    );
    // The victim was named by the epoch's rotation: still entitled to read what was written
    // before the removal.
    assert!(f_book.shareable(&key.id(), &v, &roster).is_ok());

    // Someone admitted after the removal does not get the retired epoch.
    let late = Identity::generate(&mut g.rng);
    g.op(Action::ProposeAdd {
        identity: late.public(),
        name: names::name("late"),
    });
    let roster = g.log.roster().clone();
    assert!(roster.is_member(&late.member_id()));
    assert_eq!(
        f_book
            .shareable(&key.id(), &late.member_id(), &roster)
            .err(),
        Some(ShareRefusal::RetiredBeforeJoining)
    );
    let mut late_book = EpochBook::new();
    let at = g.log.roster_at(&junk.body().heads).unwrap();
    assert_eq!(
        late_book.record(&junk, &late, &at).unwrap(),
        Recorded::Noted
    );
    assert!(late_book
        .lacking(&late.member_id(), &roster, NOW + 60)
        .is_empty());

    // A non-member is refused whatever it asks.
    let stranger = Identity::generate(&mut g.rng).member_id();
    assert_eq!(
        f_book.shareable(&key.id(), &stranger, &roster).err(),
        Some(ShareRefusal::NotAMember)
    );
}

#[test]
fn a_removed_member_lacks_nothing_it_could_ask_for() {
    let mut g = Group::new();
    let key = EpochKey::generate(&mut g.rng);
    let junk = g.junk_rotation(&key, NOW);
    let v = g.v.public();
    let mut v_book = EpochBook::new();
    g.record(&mut v_book, Who::V, &junk);
    assert_eq!(
        v_book.lacking(&v.member, g.log.roster(), NOW),
        vec![key.id()]
    );
    g.op(Action::Remove {
        member: v.member,
        reason: names::reason("left"),
    });
    assert!(v_book.lacking(&v.member, g.log.roster(), NOW).is_empty());
}

#[test]
fn a_junk_share_is_reported_even_after_the_key_arrived() {
    let mut g = Group::new();
    let key = EpochKey::generate(&mut g.rng);
    let junk = g.junk_rotation(&key, NOW);
    let v = g.v.public();
    let share = g.deliver(
        Who::F,
        &key,
        DeliveryKind::Share,
        NOW + 1,
        std::slice::from_ref(&v),
    );
    // The order a store is loaded in (by delivery id) may put the good share first.
    let mut v_book = EpochBook::new();
    assert_eq!(
        g.record(&mut v_book, Who::V, &share),
        Recorded::NewKey(key.id())
    );
    assert_eq!(
        g.record(&mut v_book, Who::V, &junk),
        Recorded::Unreadable {
            epoch: key.id(),
            signer: g.r.member_id(),
        }
    );
    let info = v_book.info(&key.id()).unwrap();
    assert!(info.have_key && info.rotation_seen);
    assert!(info.unreadable_from.contains(&g.r.member_id()));
    assert!(v_book.key(&key.id()).is_some());
}
