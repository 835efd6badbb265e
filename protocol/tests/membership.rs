//! Membership rules: k-of-n admission, removal, strong removal, retaliation, self-revocation.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use lookout_protocol::identity::Identity;
use lookout_protocol::membership::*;
use lookout_protocol::{CollectiveId, MemberId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

struct World {
    rng: ChaCha20Rng,
    genesis: SignedGenesis,
    ops: Vec<Op>,
    /// Founding moderators besides the founder (k - 1 of them).
    co: Vec<Identity>,
}

impl World {
    /// A collective needing `k` approvals, founded by the founder and k - 1 co-moderators.
    fn new(k: u8) -> (Self, Identity) {
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(k) * 31 + 5);
        let founder = Identity::generate(&mut rng);
        let co: Vec<Identity> = (1..k).map(|_| Identity::generate(&mut rng)).collect();
        let policy = Policy {
            approvals_required: k,
            ..Policy::default()
        };
        let founding = co
            .iter()
            .enumerate()
            .map(|(i, m)| NewModerator {
                identity: m.public(),
                name: format!("co{i}"),
            })
            .collect();
        let genesis = SignedGenesis::create_with_moderators(
            &founder,
            &names::secret(),
            "Test",
            "founder",
            founding,
            policy,
            NOW,
            &mut rng,
        )
        .expect("genesis");
        (
            Self {
                rng,
                genesis,
                ops: Vec::new(),
                co,
            },
            founder,
        )
    }

    fn id(&self) -> CollectiveId {
        self.genesis.id()
    }

    fn identity(&mut self) -> Identity {
        Identity::generate(&mut self.rng)
    }

    fn roster(&self) -> Roster {
        let ops: Vec<&Op> = self.ops.iter().collect();
        resolve(&self.genesis, &ops)
    }

    fn heads(&self) -> Vec<OpId> {
        self.roster().heads().to_vec()
    }

    /// An op with the current heads as parents.
    fn op(&mut self, author: &Identity, action: Action) -> OpId {
        let parents = self.heads();
        self.op_with(author, parents, action)
    }

    fn op_with(&mut self, author: &Identity, parents: Vec<OpId>, action: Action) -> OpId {
        let op = Op::create(author, self.id(), parents, NOW, action).expect("op");
        let id = op.id();
        self.ops.push(op);
        id
    }

    fn add(&mut self, moderators: &[&Identity], who: &Identity) -> OpId {
        let proposal = self.op(
            moderators[0],
            Action::ProposeAdd {
                identity: who.public(),
                name: names::name("member"),
            },
        );
        for m in &moderators[1..] {
            self.op(m, Action::Approve { proposal });
        }
        proposal
    }

    fn promote(&mut self, moderators: &[&Identity], who: &Identity) {
        let proposal = self.op(
            moderators[0],
            Action::ProposePromote {
                member: who.member_id(),
            },
        );
        for m in &moderators[1..] {
            self.op(m, Action::Approve { proposal });
        }
    }
}

fn remove(member: &Identity) -> Action {
    Action::Remove {
        member: member.member_id(),
        reason: names::reason("phone seized"),
    }
}

#[test]
fn founder_is_the_first_moderator() {
    let (w, founder) = World::new(1);
    let roster = w.roster();
    assert_eq!(roster.len(), 1);
    assert!(roster.is_moderator(&founder.member_id()));
}

/// A k = 2 collective, founded by two moderators named in its genesis record: every add needs
/// both from the start.
fn k2_with_two_moderators() -> (World, Identity, Identity) {
    let (mut w, founder) = World::new(2);
    let m2 = w.co.remove(0);
    assert!(w.roster().is_moderator(&m2.member_id()));
    (w, founder, m2)
}

#[test]
fn k2_add_with_one_approval_does_not_admit_the_second_does() {
    let (mut w, founder, m2) = k2_with_two_moderators();
    let newbie = w.identity();
    let p = w.add(&[&founder], &newbie);
    let roster = w.roster();
    assert!(!roster.is_member(&newbie.member_id()));
    assert_eq!(roster.pending().len(), 1);
    assert_eq!(roster.pending()[0].approvals, vec![founder.member_id()]);
    // Approving twice does not count twice.
    w.op(&founder, Action::Approve { proposal: p });
    assert!(!w.roster().is_member(&newbie.member_id()));
    // A non-moderator's approval never counts.
    let plain = w.identity();
    let _ = plain;
    w.op(&m2, Action::Approve { proposal: p });
    assert!(w.roster().is_member(&newbie.member_id()));
    assert!(w.roster().pending().is_empty());
}

#[test]
fn k2_approvals_made_concurrently_by_offline_moderators_combine() {
    let (mut w, founder, m2) = k2_with_two_moderators();
    let newbie = w.identity();
    let proposal = w.op(
        &founder,
        Action::ProposeAdd {
            identity: newbie.public(),
            name: names::name("n"),
        },
    );
    let seen = w.heads();
    // m2 approves; then a member proposes nothing; both heads merge later.
    w.op_with(&m2, seen.clone(), Action::Approve { proposal });
    assert!(w.roster().is_member(&newbie.member_id()));
    // An approval by a plain member does not count.
    let (mut w2, f2, _m2b) = k2_with_two_moderators();
    let plain = w2.identity();
    w2.add(&[&f2, &_m2b], &plain);
    let other = w2.identity();
    let p2 = w2.add(&[&f2], &other);
    w2.op(&plain, Action::Approve { proposal: p2 });
    assert!(!w2.roster().is_member(&other.member_id()));
}

#[test]
fn one_moderator_removes_a_member_immediately() {
    let (mut w, f, _m2) = k2_with_two_moderators();
    let m = w.identity();
    w.add(&[&f, &_m2], &m);
    assert!(w.roster().is_member(&m.member_id()));
    w.op(&f, remove(&m));
    let roster = w.roster();
    assert!(!roster.is_member(&m.member_id()));
    assert!(roster.is_removed(&m.member_id()));
    // Removal is final for a key: proposing it again has no effect.
    w.op(
        &f,
        Action::ProposeAdd {
            identity: m.public(),
            name: names::name("again"),
        },
    );
    w.op(
        &_m2,
        Action::ProposeAdd {
            identity: m.public(),
            name: names::name("again"),
        },
    );
    assert!(!w.roster().is_member(&m.member_id()));
}

#[test]
fn removing_a_moderator_takes_k() {
    let (mut w, f, m2) = k2_with_two_moderators();
    let m3 = w.identity();
    w.add(&[&f, &m2], &m3);
    w.promote(&[&f, &m2], &m3);
    assert!(w.roster().is_moderator(&m3.member_id()));
    let proposal = w.op(&f, remove(&m3));
    assert!(
        w.roster().is_member(&m3.member_id()),
        "one of k=2 is not enough"
    );
    w.op(&m2, Action::Approve { proposal });
    assert!(w.roster().is_removed(&m3.member_id()));
}

#[test]
fn removed_members_concurrent_ops_are_dropped() {
    let (mut w, f) = World::new(1);
    let m2 = w.identity();
    w.add(&[&f], &m2);
    w.promote(&[&f], &m2);
    let base = w.heads();
    // m2, concurrently with its removal, admits an accomplice.
    let accomplice = w.identity();
    let sneaky = w.op_with(
        &m2,
        base.clone(),
        Action::ProposeAdd {
            identity: accomplice.public(),
            name: names::name("acc"),
        },
    );
    // The founder removes m2 (a moderator: k = 1 so one removal suffices) without seeing it.
    w.op_with(&f, base, remove(&m2));
    let roster = w.roster();
    assert!(roster.is_removed(&m2.member_id()));
    assert!(!roster.is_member(&accomplice.member_id()));
    assert!(roster.dropped().contains_key(&sneaky));
}

#[test]
fn ops_causally_before_removal_keep_their_effect() {
    let (mut w, f) = World::new(1);
    let m2 = w.identity();
    w.add(&[&f], &m2);
    w.promote(&[&f], &m2);
    let friend = w.identity();
    w.add(&[&m2], &friend);
    w.op(&f, remove(&m2));
    let roster = w.roster();
    assert!(roster.is_removed(&m2.member_id()));
    assert!(roster.is_member(&friend.member_id()));
}

#[test]
fn mutual_removal_removes_both() {
    let (mut w, f) = World::new(1);
    let a = w.identity();
    let b = w.identity();
    w.add(&[&f], &a);
    w.promote(&[&f], &a);
    w.add(&[&f], &b);
    w.promote(&[&f], &b);
    let base = w.heads();
    w.op_with(&a, base.clone(), remove(&b));
    w.op_with(&b, base, remove(&a));
    let roster = w.roster();
    assert!(roster.is_removed(&a.member_id()));
    assert!(roster.is_removed(&b.member_id()));
    assert!(roster.is_moderator(&f.member_id()));
}

#[test]
fn backdated_removal_by_a_removed_moderator_is_dropped() {
    let (mut w, f) = World::new(1);
    let x = w.identity();
    let victim = w.identity();
    w.add(&[&f], &x);
    w.promote(&[&f], &x);
    w.add(&[&f], &victim);
    let before = w.heads();
    w.op(&f, remove(&x));
    // x learns of its removal and back-dates a removal of an innocent member.
    let backdated = w.op_with(&x, before, remove(&victim));
    let roster = w.roster();
    assert!(roster.is_removed(&x.member_id()));
    assert!(roster.is_member(&victim.member_id()));
    assert!(roster.dropped().contains_key(&backdated));
}

#[test]
fn op_naming_its_authors_removal_is_refused() {
    let (mut w, f) = World::new(1);
    let x = w.identity();
    w.add(&[&f], &x);
    w.op(&f, remove(&x));
    let newbie = w.identity();
    let late = w.op(
        &x,
        Action::ProposeAdd {
            identity: newbie.public(),
            name: names::name("n"),
        },
    );
    assert!(w.roster().dropped().contains_key(&late));
}

#[test]
fn self_revocation_certificate_removes_and_anyone_member_can_publish() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    let friend = w.identity();
    w.add(&[&f], &m);
    w.add(&[&f], &friend);
    let cert = RevocationCertificate::create(&m, NOW);
    let code = cert.to_code();
    let cert = RevocationCertificate::from_code(&code).unwrap();
    w.op(&friend, Action::PublishRevocation { certificate: cert });
    let roster = w.roster();
    assert!(roster.is_removed(&m.member_id()));
    assert!(roster.removed()[&m.member_id()].self_revoked);
}

#[test]
fn non_moderators_cannot_remove_or_approve() {
    let (mut w, f) = World::new(1);
    let a = w.identity();
    let b = w.identity();
    w.add(&[&f], &a);
    w.add(&[&f], &b);
    let op = w.op(&a, remove(&b));
    let roster = w.roster();
    assert!(roster.is_member(&b.member_id()));
    assert!(roster.dropped()[&op].contains("moderator"));
}

#[test]
fn forged_and_foreign_ops_are_rejected_with_reasons() {
    let (w, f) = World::new(1);
    let (other, _) = World::new(3);
    let op = Op::create(
        &f,
        w.id(),
        vec![],
        NOW,
        Action::ProposeDemote {
            member: f.member_id(),
        },
    )
    .unwrap();
    assert!(matches!(
        Op::decode(op.encoded(), other.id()),
        Err(OpError::WrongCollective)
    ));
    let mut bytes = op.encoded().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(matches!(
        Op::decode(&bytes, w.id()),
        Err(OpError::BadSignature)
    ));
    bytes.truncate(10);
    assert!(matches!(
        Op::decode(&bytes, w.id()),
        Err(OpError::Decode(_))
    ));
}

#[test]
fn demotion_needs_k_and_drops_concurrent_moderator_actions() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    w.promote(&[&f], &m);
    let base = w.heads();
    let newbie = w.identity();
    let concurrent = w.op_with(
        &m,
        base.clone(),
        Action::ProposeAdd {
            identity: newbie.public(),
            name: names::name("n"),
        },
    );
    w.op_with(
        &f,
        base,
        Action::ProposeDemote {
            member: m.member_id(),
        },
    );
    let roster = w.roster();
    assert!(roster.is_member(&m.member_id()));
    assert!(!roster.is_moderator(&m.member_id()));
    // Proposing an add is a moderator's act: made concurrently with the demotion, it is dropped.
    assert!(roster.dropped().contains_key(&concurrent));
    assert!(!roster.is_member(&newbie.member_id()));
    // A demotion holds for good: promoting her again has no effect, and the refusal says why
    // (Trial 12's T12-12: it said "not a plain member" of someone listed as a member).
    let again = w.op(
        &f,
        Action::ProposePromote {
            member: m.member_id(),
        },
    );
    let roster = w.roster();
    assert!(!roster.is_moderator(&m.member_id()));
    let reason = roster.dropped().get(&again).expect("refused").to_string();
    assert!(reason.contains("was demoted"), "{reason}");
}

#[test]
fn log_holds_orphans_until_parents_arrive() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    w.op(&f, remove(&m));
    let mut log = MembershipLog::new(w.genesis.clone());
    let ops = w.ops.clone();
    let last = ops.last().unwrap().clone();
    assert!(matches!(
        log.insert(last.clone()),
        InsertOutcome::MissingParents(_)
    ));
    assert!(log.roster().is_member(&f.member_id()));
    for op in ops.into_iter().rev().skip(1) {
        log.insert(op);
    }
    assert_eq!(log.orphan_count(), 0);
    assert_eq!(log.roster(), &w.roster());
    assert_eq!(log.insert(last), InsertOutcome::Duplicate);
    let heads = log.roster().heads().to_vec();
    assert!(log.roster_at(&heads).is_some());
    assert!(log.roster_at(&[OpId([9; 32])]).is_none());
    let _: MemberId = f.member_id();
}

// ---- Issue 8: authority comes from the resolved state, not from an op's chosen parents ----

/// A police officer holding the founder's unlocked phone, in a k = 2 collective, sends a
/// proposal to add a spy naming no parents (a state where one moderator "was enough"), then a
/// promotion of the spy on top of it, and the spy's own approval of it.
#[test]
fn captured_founder_cannot_add_or_promote_alone_with_chosen_parents() {
    let (mut w, founder, m2) = k2_with_two_moderators();
    let member = w.identity();
    w.add(&[&founder, &m2], &member);
    let spy = w.identity();
    let add = w.op_with(
        &founder,
        vec![],
        Action::ProposeAdd {
            identity: spy.public(),
            name: names::name("spy"),
        },
    );
    let promote = w.op_with(
        &founder,
        vec![add],
        Action::ProposePromote {
            member: spy.member_id(),
        },
    );
    w.op_with(&spy, vec![promote], Action::Approve { proposal: promote });
    let roster = w.roster();
    assert!(
        !roster.is_member(&spy.member_id()),
        "one approval of k = 2 admitted a spy"
    );
    assert!(!roster.is_moderator(&spy.member_id()));
    // The founder and the spy cannot remove anyone together either.
    let r = w.op(&founder, remove(&m2));
    w.op(&spy, Action::Approve { proposal: r });
    assert!(w.roster().is_moderator(&m2.member_id()));
    assert!(w.roster().is_member(&member.member_id()));
}

/// A k = 2 collective cannot be founded by one moderator: there is no "fewer than k moderators
/// yet" exception left to exploit.
#[test]
fn k2_genesis_needs_two_founding_moderators() {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let founder = Identity::generate(&mut rng);
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    assert!(matches!(
        SignedGenesis::create(&founder, &names::secret(), "T", "f", policy, NOW, &mut rng),
        Err(OpError::BadPolicy(_))
    ));
}

/// A moderator tries to remove a later-promoted moderator on her own by naming only ops from
/// before the promotion.
#[test]
fn later_promoted_moderator_is_not_removed_by_one_with_stale_parents() {
    let (mut w, founder, m2) = k2_with_two_moderators();
    let m3 = w.identity();
    w.add(&[&founder, &m2], &m3);
    let before_promotion = w.heads();
    w.promote(&[&founder, &m2], &m3);
    assert!(w.roster().is_moderator(&m3.member_id()));
    let stale = w.op_with(&founder, before_promotion, remove(&m3));
    let roster = w.roster();
    assert!(roster.is_member(&m3.member_id()), "removed by one of k = 2");
    assert!(roster.is_moderator(&m3.member_id()));
    // It counts as a proposal needing k: a second moderator's approval completes it.
    w.op(&m2, Action::Approve { proposal: stale });
    assert!(w.roster().is_removed(&m3.member_id()));
}

/// Anyone ever promoted is removed only by k, even once demoted.
#[test]
fn demoted_moderator_is_still_removed_only_by_k() {
    let (mut w, founder, m2) = k2_with_two_moderators();
    let m3 = w.identity();
    w.add(&[&founder, &m2], &m3);
    w.promote(&[&founder, &m2], &m3);
    let demote = w.op(
        &founder,
        Action::ProposeDemote {
            member: m3.member_id(),
        },
    );
    w.op(&m2, Action::Approve { proposal: demote });
    assert!(!w.roster().is_moderator(&m3.member_id()));
    w.op(&founder, remove(&m3));
    assert!(w.roster().is_member(&m3.member_id()));
}

#[test]
fn last_two_moderators_removing_each_other_leave_one() {
    let (mut w, f) = World::new(1);
    let a = w.identity();
    let plain = w.identity();
    w.add(&[&f], &a);
    w.promote(&[&f], &a);
    w.add(&[&f], &plain);
    let base = w.heads();
    w.op_with(&a, base.clone(), remove(&f));
    w.op_with(&f, base, remove(&a));
    let roster = w.roster();
    assert_eq!(
        roster.moderator_count(),
        1,
        "members left without a moderator"
    );
    assert!(roster.is_member(&plain.member_id()));
}

#[test]
fn last_moderator_cannot_demote_or_remove_herself() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    let demote = w.op(
        &f,
        Action::ProposeDemote {
            member: f.member_id(),
        },
    );
    let removal = w.op(&f, remove(&f));
    let roster = w.roster();
    assert!(roster.is_moderator(&f.member_id()));
    assert!(roster.dropped()[&demote].contains("without a moderator"));
    assert!(roster.dropped()[&removal].contains("without a moderator"));
}

/// The last moderator's phone is taken and her self-revocation certificate published: the
/// longest-standing member takes over, so the collective can still be administered.
#[test]
fn revoked_last_moderator_hands_over_to_the_longest_standing_member() {
    let (mut w, f) = World::new(1);
    let first = w.identity();
    let second = w.identity();
    w.add(&[&f], &first);
    w.add(&[&f], &second);
    let cert = RevocationCertificate::create(&f, NOW);
    w.op(&second, Action::PublishRevocation { certificate: cert });
    let roster = w.roster();
    assert!(roster.is_removed(&f.member_id()));
    assert!(roster.is_moderator(&first.member_id()));
    assert!(!roster.is_moderator(&second.member_id()));
    // The successor can act.
    let newbie = w.identity();
    w.add(&[&first], &newbie);
    assert!(w.roster().is_member(&newbie.member_id()));
}

/// With k = 2 and one of the two moderators revoked, the one left promotes a member alone (all
/// remaining moderators agree), which restores k; the revoked key's approvals never count.
#[test]
fn fewer_than_k_moderators_left_promote_together() {
    let (mut w, f, m2) = k2_with_two_moderators();
    let member = w.identity();
    w.add(&[&f, &m2], &member);
    let spy = w.identity();
    // The revoked founder's phone proposes a spy before its certificate is published.
    let add = w.op(
        &f,
        Action::ProposeAdd {
            identity: spy.public(),
            name: names::name("spy"),
        },
    );
    let cert = RevocationCertificate::create(&f, NOW);
    w.op(&f, Action::PublishRevocation { certificate: cert });
    assert!(w.roster().is_removed(&f.member_id()));
    assert!(!w.roster().is_member(&spy.member_id()));
    // Adds still need k = 2.
    w.op(&m2, Action::Approve { proposal: add });
    assert!(!w.roster().is_member(&spy.member_id()));
    w.promote(&[&m2], &member);
    let roster = w.roster();
    assert!(roster.is_moderator(&member.member_id()));
    assert_eq!(roster.moderator_count(), 2);
}

#[test]
fn ops_by_keys_that_never_were_members_are_not_kept() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    let stranger = w.identity();
    let mut log = MembershipLog::new(w.genesis.clone());
    log.extend(w.ops.clone());
    let heads = log.roster().heads().to_vec();
    let junk = Op::create(
        &stranger,
        w.id(),
        heads,
        NOW,
        Action::RotateAgreementKey {
            identity: stranger.public(),
        },
    )
    .unwrap();
    assert!(matches!(log.insert(junk), InsertOutcome::Refused(_)));
    // Orphans of a stranger are refused too, so they cannot fill the orphan set.
    let orphan = Op::create(
        &stranger,
        w.id(),
        vec![OpId([7; 32])],
        NOW,
        Action::RotateAgreementKey {
            identity: stranger.public(),
        },
    )
    .unwrap();
    assert!(matches!(log.insert(orphan), InsertOutcome::Refused(_)));
    assert_eq!(log.orphan_count(), 0);
}

#[test]
fn one_member_holds_a_bounded_number_of_orphans_and_ops_a_day() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    let mut log = MembershipLog::new(w.genesis.clone());
    log.extend(w.ops.clone());
    for i in 0..200u32 {
        let mut missing = [0u8; 32];
        missing[..4].copy_from_slice(&i.to_be_bytes());
        let op = Op::create(
            &m,
            w.id(),
            vec![OpId(missing)],
            NOW,
            Action::RotateAgreementKey {
                identity: m.public(),
            },
        )
        .unwrap();
        log.insert(op);
    }
    assert_eq!(log.orphan_count(), MAX_ORPHANS_PER_AUTHOR);
    assert_eq!(log.take_evicted().len(), 200 - MAX_ORPHANS_PER_AUTHOR);
    let mut refused = 0;
    for i in 0..(MAX_OPS_PER_AUTHOR_PER_DAY as u64 + 10) {
        let heads = log.roster().heads().to_vec();
        let op = Op::create(
            &m,
            w.id(),
            heads,
            NOW + i,
            Action::RotateAgreementKey {
                identity: m.public(),
            },
        )
        .unwrap();
        if matches!(log.insert(op), InsertOutcome::Refused(_)) {
            refused += 1;
        }
    }
    assert!(refused > 0, "no daily quota on membership ops");
}

/// A founder enrolling 100 members: her ops reach a replica out of order, again and again (a
/// lost gossip message, then sync batches in id order), so most are held as orphans and evicted
/// (64 per author) each time, six times. Only ops held count against her daily quota: once the first op
/// arrives, every one is taken in. (Before the fix, each evicted copy still counted: after
/// five such rounds the replica refused her ops for the rest of the day.)
#[test]
fn evicted_orphans_do_not_use_up_an_honest_authors_quota() {
    let (mut w, f) = World::new(1);
    for _ in 0..100 {
        let member = w.identity();
        w.add(&[&f], &member);
    }
    let mut log = MembershipLog::new(w.genesis.clone());
    for _ in 0..6 {
        for op in w.ops[1..].iter().rev() {
            log.insert(op.clone());
        }
    }
    assert_eq!(log.orphan_count(), MAX_ORPHANS_PER_AUTHOR);
    for op in &w.ops {
        assert!(
            !matches!(log.insert(op.clone()), InsertOutcome::Refused(_)),
            "an honest founder's op refused"
        );
    }
    assert_eq!(log.len(), w.ops.len());
    assert_eq!(log.roster().members().count(), 101);
}

/// 40 concurrent proposals (a member flooding, or a large partition healing) leave 40 heads,
/// more than an op can name. Writers name a bounded set, so nobody is frozen out.
#[test]
fn many_concurrent_heads_do_not_freeze_the_collective() {
    let (mut w, f) = World::new(1);
    let m = w.identity();
    w.add(&[&f], &m);
    let base = w.heads();
    for _ in 0..40 {
        let newbie = w.identity();
        w.op_with(
            &f,
            base.clone(),
            Action::ProposeAdd {
                identity: newbie.public(),
                name: names::name("n"),
            },
        );
    }
    let mut log = MembershipLog::new(w.genesis.clone());
    log.extend(w.ops.clone());
    assert_eq!(log.roster().heads().len(), 40);
    assert!(Op::create(&f, w.id(), log.roster().heads().to_vec(), NOW, remove(&m)).is_err());
    // Every writer can still act, and the heads merge as they do.
    let heads = log.writer_heads(&f.member_id());
    assert!(heads.len() <= MAX_PARENTS);
    let removal = Op::create(&f, w.id(), heads, NOW, remove(&m)).unwrap();
    assert!(matches!(log.insert(removal), InsertOutcome::Added(_)));
    assert!(log.roster().is_removed(&m.member_id()));
    let mut rounds = 0;
    while log.roster().heads().len() > 1 && rounds < 5 {
        let heads = log.writer_heads(&f.member_id());
        let op = Op::create(
            &f,
            w.id(),
            heads,
            NOW,
            Action::RotateAgreementKey {
                identity: f.public(),
            },
        )
        .unwrap();
        log.insert(op);
        rounds += 1;
    }
    assert_eq!(log.roster().heads().len(), 1, "heads never merged");
}

/// The incremental path (an op naming every head) gives exactly the full resolution.
#[test]
fn incremental_resolution_equals_full_resolution() {
    let (mut w, f) = World::new(1);
    let mut log = MembershipLog::new(w.genesis.clone());
    let mut people = Vec::new();
    for i in 0..30 {
        let p = w.identity();
        let heads = log.roster().heads().to_vec();
        let action = match i % 5 {
            0..=2 => Action::ProposeAdd {
                identity: p.public(),
                name: names::name(format!("p{i}")),
            },
            3 => Action::ProposePromote {
                member: people
                    .last()
                    .map(Identity::member_id)
                    .unwrap_or(f.member_id()),
            },
            _ => remove(people.first().unwrap_or(&f)),
        };
        let op = Op::create(&f, w.id(), heads, NOW, action).unwrap();
        w.ops.push(op.clone());
        log.insert(op);
        people.push(p);
        assert_eq!(log.roster(), &w.roster(), "after op {i}");
    }
}

/// Nobody can post as "Ana": a second member admitted with a name already used (any case) is
/// shown with the start of her member id.
#[test]
fn display_names_are_unique_in_a_collective() {
    let (mut w, f) = World::new(1);
    let key = names::secret().text_key();
    let first = w.identity();
    let second = w.identity();
    for (who, name) in [(&first, "Ana"), (&second, " ana ")] {
        let action =
            Action::propose_add(&key, &f.member_id(), who.public(), name, &mut w.rng).unwrap();
        w.op(&f, action);
    }
    let roster = w.roster();
    let shown = roster.display_names(Some(&key));
    assert_eq!(shown[&first.member_id()], "Ana");
    assert_eq!(shown[&f.member_id()], "founder");
    assert_eq!(
        shown[&second.member_id()],
        format!("ana ({})", &second.member_id().to_hex()[..8])
    );
    // Founding moderators must have distinct names.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let founder = Identity::generate(&mut rng);
    let co = Identity::generate(&mut rng);
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    let twin = vec![NewModerator {
        identity: co.public(),
        name: "FOUNDER".into(),
    }];
    assert!(SignedGenesis::create_with_moderators(
        &founder,
        &names::secret(),
        "T",
        "founder",
        twin,
        policy,
        NOW,
        &mut rng
    )
    .is_err());
}

/// Attacker (REVIEW2 #4): a moderator admits a second "Ana" and then removes the real one.
/// The newcomer must not inherit the plain name: a name stays reserved by everyone admitted
/// earlier, removed members included, and the real Ana's old alerts keep her plain name.
#[test]
fn a_removed_members_name_is_not_inherited_by_a_newcomer() {
    let (mut w, f) = World::new(1);
    let key = names::secret().text_key();
    let ana = w.identity();
    let impostor = w.identity();
    for (who, name) in [(&ana, "Ana"), (&impostor, "Ana")] {
        let action =
            Action::propose_add(&key, &f.member_id(), who.public(), name, &mut w.rng).unwrap();
        w.op(&f, action);
    }
    w.op(&f, remove(&ana));
    let roster = w.roster();
    assert!(roster.is_removed(&ana.member_id()));
    assert!(roster.is_member(&impostor.member_id()));
    let suffixed = format!("Ana ({})", &impostor.member_id().to_hex()[..8]);
    assert_eq!(
        roster.display_names(Some(&key))[&impostor.member_id()],
        suffixed
    );
    assert_eq!(
        roster.display_name(Some(&key), &impostor.member_id()),
        suffixed
    );
    assert!(!roster
        .display_names(Some(&key))
        .contains_key(&ana.member_id()));
    assert_eq!(roster.display_name(Some(&key), &ana.member_id()), "Ana");
    // A newcomer admitted after the removal is suffixed too.
    let later = w.identity();
    let action =
        Action::propose_add(&key, &f.member_id(), later.public(), " ANA", &mut w.rng).unwrap();
    w.op(&f, action);
    let roster = w.roster();
    assert_eq!(
        roster.display_names(Some(&key))[&later.member_id()],
        format!("ANA ({})", &later.member_id().to_hex()[..8])
    );
}

/// Attacker: a node holding the genesis record and every op but not the collective secret (a
/// mailbox, or whoever seizes one) reads no name: every member shows as unreadable, and a wrong
/// secret opens nothing either. The bytes it holds contain no name.
#[test]
fn a_node_without_the_secret_reads_no_name() {
    let (mut w, f) = World::new(2);
    let key = names::secret().text_key();
    let bea = w.identity();
    let action =
        Action::propose_add(&key, &f.member_id(), bea.public(), "Beatriz", &mut w.rng).unwrap();
    let proposal = w.op(&f, action);
    let co = w.co.remove(0);
    w.op(&co, Action::Approve { proposal });
    let roster = w.roster();
    assert!(roster.is_member(&bea.member_id()));
    let wrong = lookout_protocol::text::CollectiveSecret::from_bytes([1; 32]).text_key();
    for key in [None, Some(&wrong)] {
        for (id, name) in roster.display_names(key) {
            assert_eq!(name, format!("unreadable name ({})", &id.to_hex()[..8]));
        }
    }
    assert_eq!(
        roster.display_names(Some(&key))[&bea.member_id()],
        "Beatriz"
    );
    let mut bytes = w.genesis.encoded().to_vec();
    for op in &w.ops {
        bytes.extend_from_slice(op.encoded());
    }
    for needle in ["Beatriz", "founder", "co0", "Test"] {
        assert!(
            !bytes.windows(needle.len()).any(|b| b == needle.as_bytes()),
            "{needle} in clear"
        );
    }
}

/// Attacker: a sealed name copied into another op (another new member), another field (a
/// removal's reason) or passed off under another author does not open, and the copy changes
/// nothing the resolver decides.
#[test]
fn a_sealed_name_copied_elsewhere_does_not_open() {
    let (mut w, f) = World::new(1);
    let key = names::secret().text_key();
    let (ana, bea, cat) = (w.identity(), w.identity(), w.identity());
    let Action::ProposeAdd { name: sealed, .. } =
        Action::propose_add(&key, &f.member_id(), ana.public(), "Ana", &mut w.rng).unwrap()
    else {
        unreachable!()
    };
    w.op(
        &f,
        Action::ProposeAdd {
            identity: ana.public(),
            name: sealed.clone(),
        },
    );
    // Another op, for another member, by the same author.
    w.op(
        &f,
        Action::ProposeAdd {
            identity: bea.public(),
            name: sealed.clone(),
        },
    );
    // Another author (Ana, now a member; k = 1 makes her a moderator only if promoted: promote).
    let promote = w.op(
        &f,
        Action::ProposePromote {
            member: ana.member_id(),
        },
    );
    assert!(!w.roster().dropped().contains_key(&promote));
    w.op(
        &ana,
        Action::ProposeAdd {
            identity: cat.public(),
            name: sealed.clone(),
        },
    );
    let roster = w.roster();
    for m in [&ana, &bea, &cat] {
        assert!(roster.is_member(&m.member_id()), "the rules ignore names");
    }
    let shown = roster.display_names(Some(&key));
    assert_eq!(shown[&ana.member_id()], "Ana");
    for m in [&bea, &cat] {
        assert_eq!(
            shown[&m.member_id()],
            format!("unreadable name ({})", &m.member_id().to_hex()[..8])
        );
    }
    // Another field: the name's bytes as a removal reason (lengths differ, so padded to fit).
    let as_reason = lookout_protocol::text::SealedName {
        text: sealed,
        field: lookout_protocol::text::TextField::RemovalReason,
        author: f.member_id(),
        subject: ana.member_id(),
    };
    assert_eq!(as_reason.open(&key), None);
}

/// Attacker: a hostile moderator seals garbage (or nothing that opens) as a new member's name.
/// It is admitted exactly as with a real name (the rules never read it), shown as an unreadable
/// name, and every other name still shows.
#[test]
fn a_hostile_moderators_garbage_name_shows_unreadable_and_changes_no_roster() {
    let key = names::secret().text_key();
    let run = |garbage: bool| {
        let (mut w, f) = World::new(1);
        let victim = w.identity();
        let name = if garbage {
            lookout_protocol::text::SealedText {
                nonce: [9; 24],
                ciphertext: vec![
                    0xAB;
                    lookout_protocol::text::TextField::MemberName.sealed_bytes()
                ]
                .into(),
            }
        } else {
            names::name("Dee")
        };
        w.op(
            &f,
            Action::ProposeAdd {
                identity: victim.public(),
                name,
            },
        );
        let roster = w.roster();
        let members: Vec<(MemberId, bool)> = roster
            .members()
            .map(|m| (m.identity.member, m.moderator))
            .collect();
        (
            roster.display_names(Some(&key)),
            members,
            victim.member_id(),
            f.member_id(),
        )
    };
    let (shown, with_garbage, victim, f) = run(true);
    let (_, with_name, _, _) = run(false);
    assert_eq!(with_garbage, with_name, "the name changes no roster");
    assert_eq!(
        shown[&victim],
        format!("unreadable name ({})", &victim.to_hex()[..8])
    );
    assert_eq!(shown[&f], "founder");
    // A control character sealed properly is refused at display too.
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let sealed = lookout_protocol::text::SealedName {
        text: key
            .seal(
                lookout_protocol::text::TextField::MemberName,
                &f,
                &victim,
                "A\u{202E}na",
                &mut rng,
            )
            .unwrap(),
        field: lookout_protocol::text::TextField::MemberName,
        author: f,
        subject: victim,
    };
    assert_eq!(sealed.open(&key), None);
    assert!(sealed.display(Some(&key)).starts_with("unreadable name ("));
}
