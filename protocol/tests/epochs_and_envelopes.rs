//! Key epochs and envelopes: removal locks members out of later alerts; every validation rule.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::content::*;
use lookout_protocol::envelope::{self, EnvelopeError, InnerBody, Rejection, Verdict};
use lookout_protocol::epoch::*;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

struct Net {
    rng: ChaCha20Rng,
    log: MembershipLog,
    founder: Identity,
}

impl Net {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
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
        Self {
            rng,
            log: MembershipLog::new(genesis),
            founder,
        }
    }

    fn op(&mut self, author_is_founder: bool, author: Option<&Identity>, action: Action) -> OpId {
        let who = if author_is_founder {
            &self.founder
        } else {
            author.unwrap()
        };
        let op = Op::create(
            who,
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
        self.op(
            true,
            None,
            Action::ProposeAdd {
                identity: id.public(),
                name: names::name("m"),
            },
        );
        id
    }

    fn rotate(&mut self, now: u64) -> (EpochKey, KeyDelivery) {
        let key = EpochKey::generate(&mut self.rng);
        let recipients: Vec<_> = self
            .log
            .roster()
            .members()
            .map(|m| m.identity.clone())
            .collect();
        let d = KeyDelivery::create(
            &self.founder,
            self.log.collective(),
            &key,
            DeliveryKind::Rotation,
            self.log.roster().heads().to_vec(),
            now,
            &recipients,
            &mut self.rng,
        )
        .unwrap();
        d.check_authority(self.log.roster()).unwrap();
        (key, d)
    }

    fn post(
        &mut self,
        author: &Identity,
        key: &EpochKey,
        timestamp: u64,
        expires: u64,
    ) -> envelope::Envelope {
        envelope::seal(
            author,
            key,
            InnerBody {
                collective: self.log.collective(),
                epoch: key.id(),
                author: author.member_id(),
                seq: 1,
                heads: self.log.roster().heads().to_vec(),
                timestamp,
                expires,
                content: Content::Alert(alert("+447700900123")),
            },
            &mut self.rng,
        )
        .unwrap()
    }
}

fn alert(phone: &str) -> Alert {
    Alert {
        category: Category::Robbery,
        severity: Severity::Medium,
        description: "took the money back at knife point".into(),
        identifiers: Identifiers {
            phones: vec![phone.into()],
            ..Identifiers::default()
        },
        area: "harbour".into(),
        incident_time: Some(NOW - 3600),
        language: "en".into(),
        on_behalf: false,
    }
}

#[test]
fn removed_member_cannot_decrypt_alerts_of_later_epochs() {
    let mut net = Net::new();
    let alice = net.add();
    let mallory = net.add();
    let (k1, d1) = net.rotate(NOW);
    let mut mallory_book = EpochBook::new();
    assert_eq!(
        mallory_book
            .record(&d1, &mallory, &net.log.roster_at(&d1.body().heads).unwrap())
            .unwrap(),
        Recorded::NewKey(k1.id())
    );

    // Mallory's phone is seized: the founder removes her and rotates.
    net.op(
        true,
        None,
        Action::Remove {
            member: mallory.member_id(),
            reason: names::reason("seized"),
        },
    );
    let mut founder_book = EpochBook::new();
    founder_book
        .record(
            &d1,
            &net.founder,
            &net.log.roster_at(&d1.body().heads).unwrap(),
        )
        .unwrap();
    assert_eq!(
        founder_book.write_epoch(net.log.roster(), NOW),
        None,
        "old epoch is retired"
    );
    let (k2, d2) = net.rotate(NOW + 60);
    assert!(!d2.recipients().any(|r| r == mallory.member_id()));
    founder_book
        .record(
            &d2,
            &net.founder,
            &net.log.roster_at(&d2.body().heads).unwrap(),
        )
        .unwrap();
    assert_eq!(
        founder_book.write_epoch(net.log.roster(), NOW + 60),
        Some(k2.id())
    );

    // Alice posts under the new epoch: Mallory cannot open it with anything she has.
    let sealed = net.post(&alice, &k2, NOW + 120, NOW + 86_400);
    assert!(
        mallory_book
            .record(&d2, &mallory, &net.log.roster_at(&d2.body().heads).unwrap())
            .unwrap()
            == Recorded::Noted
    );
    assert!(d2.open(&mallory).is_none());
    let err = envelope::open(&sealed.bytes, net.log.collective(), |id| {
        mallory_book.key(id)
    })
    .unwrap_err();
    assert!(matches!(err, EnvelopeError::UnknownEpoch(_)));
    // Even trying the old key as if it were the new epoch's fails to decrypt.
    let err = envelope::open(&sealed.bytes, net.log.collective(), |_| Some(&k1)).unwrap_err();
    assert!(matches!(err, EnvelopeError::Decrypt));
    // Alice reads it.
    let mut alice_book = EpochBook::new();
    alice_book
        .record(&d2, &alice, &net.log.roster_at(&d2.body().heads).unwrap())
        .unwrap();
    let opened =
        envelope::open(&sealed.bytes, net.log.collective(), |id| alice_book.key(id)).unwrap();
    assert_eq!(opened.body.author, alice.member_id());
}

#[test]
fn authorize_enforces_every_rule() {
    let mut net = Net::new();
    let alice = net.add();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let info = book.info(&k1.id()).unwrap().clone();
    let roster = net.log.roster().clone();
    let collective = net.log.collective();
    let open = |bytes: &[u8], book: &EpochBook| {
        envelope::open(bytes, collective, |id| book.key(id)).unwrap()
    };

    let ok = net.post(&alice, &k1, NOW, NOW + 86_400);
    assert!(open(&ok.bytes, &book)
        .authorize(&roster, &roster, &info, NOW, 0)
        .is_ok());

    let expired = net.post(&alice, &k1, NOW, NOW + 10);
    let e = open(&expired.bytes, &book)
        .authorize(&roster, &roster, &info, NOW + 11, 0)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::Expired, Verdict::Ignore)
    );

    let too_long = net.post(&alice, &k1, NOW, NOW + 91 * 86_400);
    let e = open(&too_long.bytes, &book)
        .authorize(&roster, &roster, &info, NOW, 0)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::LifetimeTooLong, Verdict::Reject)
    );

    let future = net.post(&alice, &k1, NOW + 3600, NOW + 86_400);
    let e = open(&future.bytes, &book)
        .authorize(&roster, &roster, &info, NOW, 0)
        .unwrap_err();
    assert_eq!(e, Rejection::FromTheFuture);

    let e = open(&ok.bytes, &book)
        .authorize(&roster, &roster, &info, NOW, 50)
        .unwrap_err();
    assert_eq!(e, Rejection::OverQuota);

    let late = net.post(&alice, &k1, NOW + 9 * 86_400, NOW + 10 * 86_400);
    let e = open(&late.bytes, &book)
        .authorize(&roster, &roster, &info, NOW + 9 * 86_400, 0)
        .unwrap_err();
    assert_eq!(
        e,
        Rejection::EpochNotWritable,
        "epochs stop being writable after rotation_days + grace"
    );

    // An outsider with the key (leaked) is not a member.
    let outsider = Identity::generate(&mut ChaCha20Rng::seed_from_u64(5));
    let leak = net.post(&outsider, &k1, NOW, NOW + 86_400);
    let e = open(&leak.bytes, &book)
        .authorize(&roster, &roster, &info, NOW, 0)
        .unwrap_err();
    assert_eq!(e, Rejection::NotAMember);

    // After Alice's removal, a post naming the removal is refused, and the epoch is retired.
    net.op(
        true,
        None,
        Action::Remove {
            member: alice.member_id(),
            reason: names::reason("left"),
        },
    );
    let after = net.log.roster().clone();
    let late_post = net.post(&alice, &k1, NOW + 60, NOW + 86_400);
    let e = open(&late_post.bytes, &book)
        .authorize(&after, &after, &info, NOW + 60, 0)
        .unwrap_err();
    assert_eq!(e, Rejection::AuthorRemoved);
    assert!(info.retired(&after));
}

#[test]
fn tampering_is_detected_and_penalised() {
    let mut net = Net::new();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let founder = Identity::unseal(
        b"x",
        &net.founder
            .seal(
                b"x",
                lookout_protocol::passphrase::KdfParams::TESTING,
                &mut ChaCha20Rng::seed_from_u64(1),
            )
            .unwrap(),
    )
    .unwrap();
    let sealed = net.post(&founder, &k1, NOW, NOW + 100);
    let collective = net.log.collective();
    for i in [
        0usize,
        5,
        20,
        sealed.bytes.len() / 2,
        sealed.bytes.len() - 1,
    ] {
        let mut bytes = sealed.bytes.clone();
        bytes[i] ^= 0x40;
        // Any flipped bit is an error, never a different valid post.
        assert!(envelope::open(&bytes, collective, |id| book.key(id)).is_err());
    }
    let mut bytes = sealed.bytes.clone();
    bytes.push(0);
    assert_eq!(
        envelope::open(&bytes, collective, |id| book.key(id))
            .unwrap_err()
            .verdict(),
        Verdict::Reject
    );
    // Padding hides the size: a short and a long alert land in the same bucket.
    assert!(envelope::BUCKETS
        .iter()
        .any(|b| b + 16 == envelope::peek(&sealed.bytes).unwrap().ciphertext.len()));
}

#[test]
fn batch_open_matches_single_open_and_isolates_bad_ones() {
    let mut net = Net::new();
    let alice = net.add();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let mut envs: Vec<Vec<u8>> = (0..8)
        .map(|i| net.post(&alice, &k1, NOW + i, NOW + 1000).bytes)
        .collect();
    envs[3][40] ^= 1;
    let refs: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
    let batch = envelope::open_batch(&refs, net.log.collective(), |id| book.key(id));
    for (i, (result, bytes)) in batch.iter().zip(&envs).enumerate() {
        let single = envelope::open(bytes, net.log.collective(), |id| book.key(id));
        assert_eq!(result.is_ok(), single.is_ok(), "envelope {i}");
        assert_eq!(result.is_ok(), i != 3);
    }
}

#[test]
fn new_member_gets_live_epochs_by_share() {
    let mut net = Net::new();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let late = net.add();
    let missing = book.missing_recipients(&k1.id(), net.log.roster());
    assert_eq!(missing.len(), 1);
    let share = KeyDelivery::create(
        &net.founder,
        net.log.collective(),
        &k1,
        DeliveryKind::Share,
        net.log.roster().heads().to_vec(),
        NOW + 5,
        &missing,
        &mut net.rng,
    )
    .unwrap();
    share.check_authority(net.log.roster()).unwrap();
    let mut late_book = EpochBook::new();
    assert_eq!(
        late_book
            .record(
                &share,
                &late,
                &net.log.roster_at(&share.body().heads).unwrap()
            )
            .unwrap(),
        Recorded::NewKey(k1.id())
    );
    book.record(
        &share,
        &net.founder,
        &net.log.roster_at(&share.body().heads).unwrap(),
    )
    .unwrap();
    assert!(book
        .missing_recipients(&k1.id(), net.log.roster())
        .is_empty());
    // A rotation that leaves a member out is refused.
    let partial = KeyDelivery::create(
        &net.founder,
        net.log.collective(),
        &EpochKey::generate(&mut net.rng),
        DeliveryKind::Rotation,
        net.log.roster().heads().to_vec(),
        NOW,
        &[net.founder.public()],
        &mut net.rng,
    )
    .unwrap();
    assert!(partial.check_authority(net.log.roster()).is_err());
    // Keys are deleted once every alert under them has expired.
    let policy = net.log.roster().policy().clone();
    let deadline = book.info(&k1.id()).unwrap().delete_after(&policy);
    assert!(book.expire(&policy, deadline).is_empty());
    assert_eq!(book.expire(&policy, deadline + 1), vec![k1.id()]);
    assert!(book.key(&k1.id()).is_none());
}

/// Regression: reachability posts were exempt from every quota and could live as long as an
/// alert, so one member could store any number of them on every device (found by
/// `tests/tests/e2e/adversarial_members.rs`). They now have their own daily quota and live a
/// day.
#[test]
fn reachability_posts_have_their_own_quota_and_live_a_day() {
    let mut net = Net::new();
    let alice = net.add();
    let (key, delivery) = net.rotate(NOW);
    let mut book = EpochBook::new();
    let roster = net.log.roster().clone();
    book.record(&delivery, &net.founder, &roster).unwrap();
    let info = book.info(&key.id()).unwrap().clone();
    let collective = net.log.collective();
    let heads = roster.heads().to_vec();
    let mut reachability = |expires: u64| {
        let body = InnerBody {
            collective,
            epoch: key.id(),
            author: alice.member_id(),
            seq: 1,
            heads: heads.clone(),
            timestamp: NOW,
            expires,
            content: Content::Reachability {
                addresses: vec!["/ip4/192.0.2.7/tcp/4001".into()],
            },
        };
        let sealed = envelope::seal(&alice, &key, body, &mut net.rng).unwrap();
        envelope::open(&sealed.bytes, collective, |id| book.key(id)).unwrap()
    };
    let day = reachability(NOW + 86_400);
    let limit = envelope::MAX_REACHABILITY_PER_DAY;
    assert!(day
        .clone()
        .authorize(&roster, &roster, &info, NOW, limit - 1)
        .is_ok());
    let e = day
        .authorize(&roster, &roster, &info, NOW, limit)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::OverQuota, Verdict::Ignore)
    );
    let e = reachability(NOW + 86_401)
        .authorize(&roster, &roster, &info, NOW, 0)
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.verdict()),
        (Rejection::LifetimeTooLong, Verdict::Reject)
    );
}

/// Regression: any member holding an epoch's key could sign a delivery that retired it (a share
/// to someone removed before the rotation) or moved its write deadline earlier (a copy of the
/// rotation, back-dated, naming an older membership state), so a replica that saw it before an
/// honest post refused that post and penalised the honest node that sent it (found by
/// `tests/tests/e2e/adversarial_epochs.rs`: a catching-up node never received the alerts and
/// struck its honest peers). More deliveries now only widen what may be written under an epoch.
#[test]
fn deliveries_a_member_forges_never_narrow_an_epoch() {
    let mut net = Net::new();
    let alice = net.add();
    let yan = net.add();
    let before_removal = net.log.roster().heads().to_vec();
    net.op(
        true,
        None,
        Action::Remove {
            member: yan.member_id(),
            reason: names::reason("seized"),
        },
    );
    let (key, rotation) = net.rotate(NOW);
    let mut book = EpochBook::new();
    let roster = net.log.roster().clone();
    book.record(&rotation, &alice, &roster).unwrap();
    let post = net.post(&alice, &key, NOW + 3_600, NOW + 86_400);
    let collective = net.log.collective();
    let check = |book: &EpochBook| {
        let info = book.info(&key.id()).unwrap().clone();
        envelope::open(&post.bytes, collective, |id| book.key(id))
            .unwrap()
            .authorize(&roster, &roster, &info, NOW + 3_600, 0)
    };
    assert!(check(&book).is_ok());
    let deadline = book
        .info(&key.id())
        .unwrap()
        .write_deadline(roster.policy());

    // Alice, holding the key, forges a share to yan and a rotation copy dated a week earlier,
    // both naming the state before yan's removal (in which yan was a member).
    let old_roster = net.log.roster_at(&before_removal).unwrap();
    let share = KeyDelivery::create(
        &alice,
        collective,
        &key,
        DeliveryKind::Share,
        before_removal.clone(),
        NOW,
        &[yan.public()],
        &mut net.rng,
    )
    .unwrap();
    let everyone: Vec<_> = old_roster.members().map(|m| m.identity.clone()).collect();
    let back_dated = KeyDelivery::create(
        &alice,
        collective,
        &key,
        DeliveryKind::Rotation,
        before_removal,
        NOW - 7 * 86_400,
        &everyone,
        &mut net.rng,
    )
    .unwrap();
    for forged in [&share, &back_dated] {
        forged.check_authority(&old_roster).unwrap();
        book.record(forged, &alice, &old_roster).unwrap();
        assert!(check(&book).is_ok(), "the honest post stays valid");
        assert_eq!(book.write_epoch(&roster, NOW + 3_600), Some(key.id()));
        let info = book.info(&key.id()).unwrap();
        assert!(info.write_deadline(roster.policy()) >= deadline);
    }
}

/// A signature made by the author's own key with a mixed-order R (`r·B + T`, `T` of order 8):
/// what a hostile member can send. Cofactorless single verification (`verify_strict`) refuses it;
/// a randomized cofactorless batch accepts it whenever its coefficient for that signature is a
/// multiple of 8 (one time in eight, and the author can grind the message until it is). Replicas
/// that verify singly and replicas that verify in batches must reach the same verdict.
fn mixed_order_signature(author: &Identity, message: &[u8], torsion: usize) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};
    let h = Sha512::digest(author.ed25519_seed().as_slice());
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&h[..32]);
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let public = (ED25519_BASEPOINT_POINT * a).compress();
    assert_eq!(public.to_bytes(), author.member_id().0);
    let r = Scalar::from_hash(Sha512::new().chain_update(&h[32..]).chain_update(message));
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion]).compress();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public.as_bytes())
            .chain_update(message),
    );
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

#[test]
fn a_mixed_order_signature_gets_one_verdict_singly_and_in_batches() {
    let mut net = Net::new();
    let mallory = net.add();
    let honest = net.add();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&mallory.member_id().0).unwrap();
    // Grind the timestamp until the cofactorless batch (ed25519-dalek's `verify_batch`, which
    // an older release used) would accept the crafted signature.
    let mut found = None;
    for i in 0..200u64 {
        let mut signed = None;
        let envelope = envelope::seal_signed_with(
            mallory.member_id(),
            &k1,
            InnerBody {
                collective: net.log.collective(),
                epoch: k1.id(),
                author: mallory.member_id(),
                seq: 1,
                heads: net.log.roster().heads().to_vec(),
                timestamp: NOW + i,
                expires: NOW + 1000,
                content: Content::Alert(alert("+447700900123")),
            },
            &mut net.rng,
            |inner| {
                let mut message = vec![u8::try_from(envelope::INNER_SIG_CONTEXT.len()).unwrap()];
                message.extend_from_slice(envelope::INNER_SIG_CONTEXT);
                message.extend_from_slice(inner);
                let sig = mixed_order_signature(&mallory, &message, 1 + (i as usize % 7));
                signed = Some((message, sig));
                sig
            },
        )
        .unwrap();
        let (message, sig) = signed.unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        assert!(key.verify_strict(&message, &sig).is_err());
        if ed25519_dalek::verify_batch(&[&message[..]], &[sig], &[key]).is_ok() {
            found = Some(envelope);
            break;
        }
    }
    let crafted = found.expect("one in eight batches accepts a mixed-order R");
    let fine = net.post(&honest, &k1, NOW, NOW + 1000);
    let collective = net.log.collective();
    let single = envelope::open(&crafted.bytes, collective, |id| book.key(id));
    for batch in [
        vec![&crafted.bytes[..]],
        vec![&fine.bytes[..], &crafted.bytes[..]],
    ] {
        let results = envelope::open_batch(&batch, collective, |id| book.key(id));
        let last = results.last().unwrap();
        assert_eq!(
            last.is_ok(),
            single.is_ok(),
            "a batch and a single check disagree on a mixed-order R: {last:?} vs {single:?}"
        );
        assert!(results[0].is_ok());
    }
    // ZIP-215 (cofactored) accepts it: the torsion component of R is multiplied away.
    assert!(single.is_ok(), "{single:?}");
}

/// `bytes` re-encrypted under `key` with one bit of the author's signature flipped: it decrypts
/// and decodes, and its content id still matches the body; only the signature is wrong.
fn with_broken_signature(bytes: &[u8], key: &EpochKey) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use lookout_protocol::codec;
    let mut outer = envelope::peek(bytes).unwrap();
    let cipher = XChaCha20Poly1305::new(key.to_bytes().as_ref().into());
    let ciphertext = std::mem::take(&mut outer.ciphertext);
    let aad = codec::encode(&outer);
    let mut plaintext = cipher
        .decrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .unwrap();
    let len = usize::from(u16::from_le_bytes([plaintext[0], plaintext[1]]));
    plaintext[2 + len - 1] ^= 1;
    outer.ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&outer.nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    codec::encode(&outer)
}

#[test]
fn one_bad_signature_in_a_batch_fails_exactly_that_envelope() {
    let mut net = Net::new();
    let alice = net.add();
    let bob = net.add();
    let (k1, d1) = net.rotate(NOW);
    let mut book = EpochBook::new();
    book.record(
        &d1,
        &net.founder,
        &net.log.roster_at(&d1.body().heads).unwrap(),
    )
    .unwrap();
    let collective = net.log.collective();
    for bad in [0, 3, 7] {
        let mut envs: Vec<Vec<u8>> = (0..8)
            .map(|i| {
                let author = if i % 2 == 0 { &alice } else { &bob };
                net.post(author, &k1, NOW + i, NOW + 1000).bytes
            })
            .collect();
        envs[bad] = with_broken_signature(&envs[bad], &k1);
        assert!(matches!(
            envelope::open(&envs[bad], collective, |id| book.key(id)),
            Err(EnvelopeError::BadSignature)
        ));
        let refs: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
        let batch = envelope::open_batch(&refs, collective, |id| book.key(id));
        for (i, result) in batch.iter().enumerate() {
            if i == bad {
                assert!(matches!(result, Err(EnvelopeError::BadSignature)), "{i}");
            } else {
                assert!(result.is_ok(), "envelope {i} refused beside a bad one");
            }
        }
    }
}
