//! Mailboxes in the roster: admitted by k moderators exactly as members are, removed by one,
//! never re-admitted, never sharing a key with a member. Attacker tests in the rogue-member
//! style: every field an op signs is the attacker's choice, parents included.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod names;
use ed25519_dalek::SigningKey;
use lookout_protocol::identity::Identity;
use lookout_protocol::mailbox::{MailboxPairing, MAX_MAILBOX_ADDRESSES};
use lookout_protocol::membership::*;
use lookout_protocol::{CollectiveId, MailboxId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_790_000_000;

struct World {
    rng: ChaCha20Rng,
    genesis: SignedGenesis,
    ops: Vec<Op>,
}

impl World {
    /// A collective needing `k` approvals, founded by k moderators (returned founder first).
    fn new(k: u8) -> (Self, Vec<Identity>) {
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(k) * 17 + 3);
        let founders: Vec<Identity> = (0..k).map(|_| Identity::generate(&mut rng)).collect();
        let co = founders[1..]
            .iter()
            .enumerate()
            .map(|(i, m)| NewModerator {
                identity: m.public(),
                name: format!("co{i}"),
            })
            .collect();
        let policy = Policy {
            approvals_required: k,
            ..Policy::default()
        };
        let genesis = SignedGenesis::create_with_moderators(
            &founders[0],
            &names::secret(),
            "Test",
            "founder",
            co,
            policy,
            NOW,
            &mut rng,
        )
        .unwrap();
        (
            Self {
                rng,
                genesis,
                ops: Vec::new(),
            },
            founders,
        )
    }

    fn id(&self) -> CollectiveId {
        self.genesis.id()
    }

    fn identity(&mut self) -> Identity {
        Identity::generate(&mut self.rng)
    }

    fn mailbox_key(&mut self) -> SigningKey {
        SigningKey::generate(&mut self.rng)
    }

    fn roster(&self) -> Roster {
        let ops: Vec<&Op> = self.ops.iter().collect();
        resolve(&self.genesis, &ops)
    }

    fn heads(&self) -> Vec<OpId> {
        self.roster().heads().to_vec()
    }

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

    /// Propose by the first, approve by the rest.
    fn run(&mut self, moderators: &[&Identity], proposal: Action) -> OpId {
        let p = self.op(moderators[0], proposal);
        for m in &moderators[1..] {
            self.op(m, Action::Approve { proposal: p });
        }
        p
    }

    fn add_member(&mut self, moderators: &[&Identity], who: &Identity) -> OpId {
        self.run(
            moderators,
            Action::ProposeAdd {
                identity: who.public(),
                name: names::name("member"),
            },
        )
    }

    fn promote(&mut self, moderators: &[&Identity], who: &Identity) -> OpId {
        self.run(
            moderators,
            Action::ProposePromote {
                member: who.member_id(),
            },
        )
    }
}

fn propose(mailbox: &SigningKey) -> Action {
    Action::ProposeMailbox {
        mailbox: mailbox.verifying_key().to_bytes(),
        addresses: vec!["/ip4/203.0.113.7/tcp/4001".into()],
    }
}

fn remove(mailbox: &SigningKey) -> Action {
    Action::RemoveMailbox {
        mailbox: mailbox.verifying_key().to_bytes(),
    }
}

fn mid(mailbox: &SigningKey) -> MailboxId {
    MailboxId(mailbox.verifying_key().to_bytes())
}

#[test]
fn moderators_admit_with_k_and_remove_with_one() {
    let (mut w, f) = World::new(2);
    let mb = w.mailbox_key();
    let p = w.run(&[&f[0], &f[1]], propose(&mb));
    let roster = w.roster();
    assert!(roster.is_mailbox(&mid(&mb)));
    let listed: Vec<&Mailbox> = roster.mailboxes().collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].admitted_by, p);
    assert_eq!(listed[0].addresses, vec!["/ip4/203.0.113.7/tcp/4001"]);
    // A mailbox is no member: it holds no rights and receives no key.
    assert!(!roster.is_member(&lookout_protocol::MemberId(mid(&mb).0)));
    assert!(roster.pending().is_empty());
    let r = w.op(&f[1], remove(&mb));
    let roster = w.roster();
    assert!(!roster.is_mailbox(&mid(&mb)));
    let removed = &roster.removed_mailboxes()[&mid(&mb)];
    assert_eq!(removed.by, vec![f[1].member_id()]);
    assert_eq!(removed.ops, vec![r]);
}

#[test]
fn a_plain_member_cannot_add_or_remove_a_mailbox() {
    let (mut w, f) = World::new(1);
    let plain = w.identity();
    w.add_member(&[&f[0]], &plain);
    let rogue_box = w.mailbox_key();
    w.op(&plain, propose(&rogue_box));
    assert!(!w.roster().is_mailbox(&mid(&rogue_box)));
    assert!(
        w.roster().pending().is_empty(),
        "a member's proposal is pending"
    );
    // And cannot remove the collective's real mailbox.
    let mb = w.mailbox_key();
    w.run(&[&f[0]], propose(&mb));
    assert!(w.roster().is_mailbox(&mid(&mb)));
    let cut = w.op(&plain, remove(&mb));
    let roster = w.roster();
    assert!(roster.is_mailbox(&mid(&mb)));
    assert!(roster.removed_mailboxes().is_empty());
    assert!(roster.dropped().contains_key(&cut));
}

#[test]
fn one_moderator_alone_cannot_add_a_mailbox_when_k_is_2() {
    let (mut w, f) = World::new(2);
    let mb = w.mailbox_key();
    let p = w.op(&f[0], propose(&mb));
    // Approving one's own proposal again does not count twice.
    w.op(&f[0], Action::Approve { proposal: p });
    // Nor does a plain member's approval.
    let plain = w.identity();
    w.add_member(&[&f[0], &f[1]], &plain);
    w.op(&plain, Action::Approve { proposal: p });
    let roster = w.roster();
    assert!(
        !roster.is_mailbox(&mid(&mb)),
        "one moderator admitted a mailbox"
    );
    let pending = roster
        .pending()
        .iter()
        .find(|pending| pending.proposal == p)
        .expect("pending");
    assert_eq!(pending.approvals, vec![f[0].member_id()]);
    assert_eq!(pending.needed, 2);
    assert!(matches!(
        &pending.kind,
        PendingKind::AddMailbox { mailbox, .. } if *mailbox == mid(&mb)
    ));
    w.op(&f[1], Action::Approve { proposal: p });
    assert!(w.roster().is_mailbox(&mid(&mb)));
}

#[test]
fn approvals_of_a_moderator_removed_before_the_completing_approval_do_not_count() {
    let (mut w, f) = World::new(2);
    let third = w.identity();
    w.add_member(&[&f[0], &f[1]], &third);
    w.promote(&[&f[0], &f[1]], &third);
    assert!(w.roster().is_moderator(&third.member_id()));
    // f[1] proposes a mailbox (its first approval), then f[1] is removed by the other two.
    let mb = w.mailbox_key();
    let p = w.op(&f[1], propose(&mb));
    w.run(
        &[&f[0], &third],
        Action::Remove {
            member: f[1].member_id(),
            reason: names::reason("phone taken"),
        },
    );
    assert!(!w.roster().is_member(&f[1].member_id()));
    // One standing approval is not two.
    w.op(&third, Action::Approve { proposal: p });
    assert!(
        !w.roster().is_mailbox(&mid(&mb)),
        "a removed moderator's approval was counted"
    );
    w.op(&f[0], Action::Approve { proposal: p });
    assert!(w.roster().is_mailbox(&mid(&mb)));
}

#[test]
fn a_removed_mailbox_proposed_again_stays_removed() {
    let (mut w, f) = World::new(2);
    let mb = w.mailbox_key();
    w.run(&[&f[0], &f[1]], propose(&mb));
    w.op(&f[0], remove(&mb));
    assert!(!w.roster().is_mailbox(&mid(&mb)));
    // Proposed and approved again by all: still removed.
    let again = w.run(&[&f[0], &f[1]], propose(&mb));
    let roster = w.roster();
    assert!(!roster.is_mailbox(&mid(&mb)));
    assert!(roster.is_removed_mailbox(&mid(&mb)));
    assert!(roster.dropped().contains_key(&again));
    assert!(roster.pending().is_empty());

    // A proposal pending when its mailbox is removed cannot complete afterwards either.
    let other = w.mailbox_key();
    let p = w.op(&f[0], propose(&other));
    w.op(&f[1], remove(&other));
    w.op(&f[1], Action::Approve { proposal: p });
    let roster = w.roster();
    assert!(!roster.is_mailbox(&mid(&other)));
    assert!(roster.is_removed_mailbox(&mid(&other)));
    assert!(roster.pending().is_empty());
}

#[test]
fn member_and_mailbox_keys_are_disjoint() {
    let (mut w, f) = World::new(1);
    // A member's key (its Ed25519 key) proposed as a mailbox: refused.
    let member = w.identity();
    w.add_member(&[&f[0]], &member);
    let as_mailbox = Action::ProposeMailbox {
        mailbox: member.member_id().0,
        addresses: vec![],
    };
    let p = w.op(&f[0], as_mailbox.clone());
    assert!(w.roster().dropped().contains_key(&p));
    assert!(!w.roster().is_mailbox(&MailboxId(member.member_id().0)));
    // So is a founder's, and a removed member's.
    let founder_key = Action::ProposeMailbox {
        mailbox: f[0].member_id().0,
        addresses: vec![],
    };
    let p = w.op(&f[0], founder_key);
    assert!(w.roster().dropped().contains_key(&p));
    w.op(
        &f[0],
        Action::Remove {
            member: member.member_id(),
            reason: names::reason("left"),
        },
    );
    w.op(&f[0], as_mailbox);
    assert_eq!(w.roster().mailboxes().count(), 0);

    // A mailbox's key (or a removed mailbox's) proposed as a member: refused. The attacker
    // would need the mailbox's secret key to make an identity, so build one from it.
    let twin = w.identity();
    let mb = SigningKey::from_bytes(&twin.ed25519_seed());
    w.run(&[&f[0]], propose(&mb));
    assert!(w.roster().is_mailbox(&mid(&mb)));
    assert_eq!(twin.member_id().0, mid(&mb).0);
    let add = w.add_member(&[&f[0]], &twin);
    let roster = w.roster();
    assert!(!roster.is_member(&twin.member_id()));
    assert!(roster.dropped().contains_key(&add));
    w.op(&f[0], remove(&mb));
    w.add_member(&[&f[0]], &twin);
    assert!(!w.roster().is_member(&twin.member_id()));
}

#[test]
fn concurrent_member_and_mailbox_proposals_of_one_key_admit_at_most_one() {
    let (mut w, f) = World::new(1);
    let twin = w.identity();
    let mb = SigningKey::from_bytes(&twin.ed25519_seed());
    let base = w.heads();
    w.op_with(
        &f[0],
        base.clone(),
        Action::ProposeAdd {
            identity: twin.public(),
            name: names::name("twin"),
        },
    );
    w.op_with(&f[0], base, propose(&mb));
    let roster = w.roster();
    let as_member = roster.is_member(&twin.member_id());
    let as_mailbox = roster.is_mailbox(&mid(&mb));
    assert!(
        as_member ^ as_mailbox,
        "member {as_member}, mailbox {as_mailbox}"
    );
    // The same set in the other order resolves the same.
    let mut reversed: Vec<&Op> = w.ops.iter().collect();
    reversed.reverse();
    assert_eq!(resolve(&w.genesis, &reversed), roster);
}

#[test]
fn parents_chosen_to_look_earlier_give_no_authority() {
    let (mut w, f) = World::new(1);
    let mb = w.mailbox_key();
    w.run(&[&f[0]], propose(&mb));
    // A moderator promoted and then removed signs mailbox ops naming only the state before its
    // removal, as if it still held its rights.
    let turned = w.identity();
    w.add_member(&[&f[0]], &turned);
    w.promote(&[&f[0]], &turned);
    let before = w.heads();
    w.op(
        &f[0],
        Action::Remove {
            member: turned.member_id(),
            reason: names::reason("turned"),
        },
    );
    assert!(!w.roster().is_member(&turned.member_id()));
    let rogue = w.mailbox_key();
    let add = w.op_with(&turned, before.clone(), propose(&rogue));
    let cut = w.op_with(&turned, before, remove(&mb));
    let roster = w.roster();
    assert!(
        !roster.is_mailbox(&mid(&rogue)),
        "a removed moderator added a mailbox"
    );
    assert!(
        roster.is_mailbox(&mid(&mb)),
        "a removed moderator removed a mailbox"
    );
    assert!(roster.dropped().contains_key(&add));
    assert!(roster.dropped().contains_key(&cut));
    // A plain member naming no parents at all (before anything) gains nothing either.
    let plain = w.identity();
    w.add_member(&[&f[0]], &plain);
    let early = w.op_with(&plain, vec![], propose(&rogue));
    let roster = w.roster();
    assert!(!roster.is_mailbox(&mid(&rogue)));
    assert!(roster.dropped().contains_key(&early));
    // And with k = 2 a single moderator backdating its proposal and its own "approval" still has
    // one approval.
    let (mut w2, f2) = World::new(2);
    let rogue2 = w2.mailbox_key();
    let p = w2.op_with(&f2[0], vec![], propose(&rogue2));
    w2.op_with(&f2[0], vec![p], Action::Approve { proposal: p });
    assert!(!w2.roster().is_mailbox(&mid(&rogue2)));
}

#[test]
fn bad_mailbox_ops_are_refused_at_decode_and_all_ops_keep_one_size() {
    let (w, f) = World::new(1);
    // Too many addresses, a peer id in an address, a weak key: refused when made and decoded.
    let many: Vec<String> = (0..=MAX_MAILBOX_ADDRESSES)
        .map(|i| format!("/ip4/10.0.0.{i}/tcp/1"))
        .collect();
    let key = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
    for (mailbox, addresses) in [
        (key, many),
        (key, vec!["/ip4/1.2.3.4/tcp/1/p2p/12D3KooWA".into()]),
        ([0u8; 32], vec![]),
    ] {
        let made = Op::create(
            &f[0],
            w.id(),
            vec![],
            NOW,
            Action::ProposeMailbox { mailbox, addresses },
        );
        assert!(matches!(made, Err(OpError::Structure(_))), "{made:?}");
    }
    // The largest mailbox proposal fits the one op size, as every other op does.
    let addresses: Vec<String> = (0..MAX_MAILBOX_ADDRESSES)
        .map(|i| format!("/dns4/{}{i}.example/tcp/4001", "m".repeat(40)))
        .collect();
    assert_eq!(addresses.iter().map(String::len).sum::<usize>(), 256);
    let big = Op::create(
        &f[0],
        w.id(),
        (0..32u8).map(|i| OpId([i; 32])).collect(),
        u64::MAX,
        Action::ProposeMailbox {
            mailbox: key,
            addresses,
        },
    )
    .unwrap();
    let small = Op::create(
        &f[0],
        w.id(),
        vec![],
        NOW,
        Action::RemoveMailbox { mailbox: key },
    )
    .unwrap();
    assert_eq!(big.encoded().len(), small.encoded().len());
}

#[test]
fn pairing_codes_carry_what_a_proposal_needs() {
    let key = SigningKey::from_bytes(&[5; 32]);
    let pairing = MailboxPairing::create(
        &key,
        vec!["/ip4/203.0.113.7/udp/4001/quic-v1".into()],
        [6; 32],
        NOW,
    )
    .unwrap();
    let parsed = MailboxPairing::from_code(&pairing.to_code()).unwrap();
    assert_eq!(parsed.id(), mid(&key));
    let (mut w, f) = World::new(1);
    w.op(
        &f[0],
        Action::ProposeMailbox {
            mailbox: parsed.mailbox,
            addresses: parsed.addresses.clone(),
        },
    );
    assert_eq!(
        w.roster().mailbox(&parsed.id()).unwrap().addresses,
        parsed.addresses
    );
}

/// Review finding 6: every member dials every current mailbox, so a moderator's proposals must
/// not make the roster name an unbounded number. At most `MAX_MAILBOXES`: a proposal made while
/// the roster is full is dropped; with k = 2, an approval that would complete one beyond the cap
/// is dropped and the proposal stays pending until a mailbox is removed.
#[test]
fn roster_mailboxes_are_capped() {
    // k = 1: every proposal completes at once.
    let (mut w, f) = World::new(1);
    let keys: Vec<SigningKey> = (0..=MAX_MAILBOXES).map(|_| w.mailbox_key()).collect();
    for key in &keys[..MAX_MAILBOXES] {
        w.op(&f[0], propose(key));
    }
    assert_eq!(w.roster().mailboxes().count(), MAX_MAILBOXES);
    let over = w.op(&f[0], propose(&keys[MAX_MAILBOXES]));
    let roster = w.roster();
    assert_eq!(roster.mailboxes().count(), MAX_MAILBOXES);
    assert!(!roster.is_mailbox(&mid(&keys[MAX_MAILBOXES])));
    assert!(roster.dropped().contains_key(&over));
    assert!(roster.pending().is_empty());
    // A removal makes room: the same key may be proposed again.
    w.op(&f[0], remove(&keys[0]));
    w.op(&f[0], propose(&keys[MAX_MAILBOXES]));
    let roster = w.roster();
    assert_eq!(roster.mailboxes().count(), MAX_MAILBOXES);
    assert!(roster.is_mailbox(&mid(&keys[MAX_MAILBOXES])));

    // k = 2, concurrent: nine proposals all pending, each approved; only eight complete, in
    // the canonical order, and the ninth stays pending until a removal.
    let (mut w, f) = World::new(2);
    let keys: Vec<SigningKey> = (0..=MAX_MAILBOXES).map(|_| w.mailbox_key()).collect();
    let base = w.heads();
    let proposals: Vec<OpId> = keys
        .iter()
        .map(|key| w.op_with(&f[0], base.clone(), propose(key)))
        .collect();
    for p in &proposals {
        w.op(&f[1], Action::Approve { proposal: *p });
    }
    let roster = w.roster();
    assert_eq!(roster.mailboxes().count(), MAX_MAILBOXES);
    let waiting: Vec<&Pending> = roster
        .pending()
        .iter()
        .filter(|p| matches!(p.kind, PendingKind::AddMailbox { .. }))
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].approvals, vec![f[0].member_id()]);
    let left_out = waiting[0].proposal;
    // The same ops in any order give the same eight.
    let mut reversed = w.ops.clone();
    reversed.reverse();
    let refs: Vec<&Op> = reversed.iter().collect();
    assert_eq!(resolve(&w.genesis, &refs), roster);
    // One removed: the second moderator approves again and the ninth is in.
    let current = roster.mailboxes().next().unwrap().id;
    w.op(&f[0], Action::RemoveMailbox { mailbox: current.0 });
    w.op(&f[1], Action::Approve { proposal: left_out });
    let roster = w.roster();
    assert_eq!(roster.mailboxes().count(), MAX_MAILBOXES);
    assert!(roster.mailboxes().any(|m| m.admitted_by == left_out));
}
