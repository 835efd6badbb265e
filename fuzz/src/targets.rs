//! The body of every fuzz target: arbitrary bytes in, no panic out (a panic is a finding, and
//! the `assert!`s below check invariants that must hold for any input).
//!
//! Shared by `fuzz/fuzz_targets/*.rs` and, through `#[path]`, by
//! `protocol/tests/fuzz_corpus_replay.rs`. The fixture is built from the committed test vectors
//! (`protocol/tests/vectors/`), so seed inputs made from the vectors reach deep into each decoder.

use lookout_protocol::envelope;
use lookout_protocol::epoch::{EpochBook, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::invite::{Invite, JoinRequest};
use lookout_protocol::membership::{
    resolve, Action, InsertOutcome, MembershipLog, NewModerator, Op, OpError, Policy,
    RevocationCertificate, Roster, SignedGenesis,
};
use lookout_protocol::passphrase::{self, KdfParams};
use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use lookout_protocol::text::{CollectiveSecret, SealedText, TextField};
use lookout_protocol::OpId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("op_decode", op_decode),
    ("genesis_decode", genesis_decode),
    ("delivery_decode", delivery_decode),
    ("envelope_open", envelope_open),
    ("reconcile_respond", reconcile_respond),
    ("textcode_decode", textcode_decode),
    ("passphrase_open", passphrase_open),
    ("membership_resolve", membership_resolve),
];

const GENESIS: &str = include_str!("../../protocol/tests/vectors/genesis.hex");
const SEALED_A: &str = include_str!("../../protocol/tests/vectors/sealed_identity_a.hex");
const DELIVERY: &str = include_str!("../../protocol/tests/vectors/delivery_rotation.hex");
const TEXT: &str = include_str!("../../protocol/tests/vectors/text.txt");
const OPS: [&str; 8] = [
    include_str!("../../protocol/tests/vectors/op_propose_add.hex"),
    include_str!("../../protocol/tests/vectors/op_propose_promote.hex"),
    include_str!("../../protocol/tests/vectors/op_propose_add_c.hex"),
    include_str!("../../protocol/tests/vectors/op_approve.hex"),
    include_str!("../../protocol/tests/vectors/op_rotate_agreement_key.hex"),
    include_str!("../../protocol/tests/vectors/op_propose_demote.hex"),
    include_str!("../../protocol/tests/vectors/op_remove.hex"),
    include_str!("../../protocol/tests/vectors/op_publish_revocation.hex"),
];
/// The time the vectors were made at, and so the fixture's clock.
const NOW: u64 = 1_790_000_000;
const IDENTITY_LABEL: &[u8] = b"lookout identity v1";
const AGREEMENT_CONTEXT: &[u8] = b"lookout agreement key v1";
/// Identities the membership fuzzer acts with (A, the vectors' founder, is the first).
const CAST: usize = 5;

struct Fixture {
    genesis: SignedGenesis,
    /// The same founder with k = 2.
    genesis_k2: SignedGenesis,
    /// A log holding the vectors' op history.
    log: MembershipLog,
    /// The roster at the state the vector delivery and envelopes name (A and B members).
    early: Roster,
    epoch_key: EpochKey,
    /// A's book, holding the vector rotation.
    book: EpochBook,
    cast: Vec<Identity>,
    /// Their public identities (computing one signs, so they are made once).
    publics: Vec<PublicIdentity>,
    /// Each cast member's identity with another agreement key, signed.
    rotated: Vec<PublicIdentity>,
    certificates: Vec<RevocationCertificate>,
    items: Vec<Item>,
}

/// Built once per thread (a `MembershipLog` caches its roster in a `OnceCell`, so it is not
/// `Sync`; libFuzzer runs targets on one thread anyway).
fn fixture() -> &'static Fixture {
    thread_local! {
        static FIXTURE: &'static Fixture = Box::leak(Box::new(Fixture::build()));
    }
    FIXTURE.with(|f| *f)
}

impl Fixture {
    fn build() -> Self {
        let unhex = |s: &str| hex::decode(s.trim()).expect("vector hex");
        let genesis = SignedGenesis::decode(&unhex(GENESIS)).expect("vector genesis");
        let collective = genesis.id();
        let passphrase = text("passphrase");
        let a = Identity::unseal(passphrase.as_bytes(), &unhex(SEALED_A)).expect("vector identity");
        let history: Vec<Op> = OPS
            .iter()
            .map(|s| Op::decode(&unhex(s), collective).expect("vector op"))
            .collect();
        let mut log = MembershipLog::new(genesis.clone());
        log.extend(history.iter().cloned());
        let early = log.roster_at(&[history[0].id()]).expect("held");
        let early = Roster::clone(&early);
        let key_bytes: [u8; 32] = unhex(&text("epoch_key")).try_into().expect("32 bytes");
        let epoch_key = EpochKey::from_bytes(key_bytes);
        let delivery = KeyDelivery::decode(&unhex(DELIVERY), collective).expect("vector delivery");
        let mut book = EpochBook::new();
        let at_heads = log.roster_at(&delivery.body().heads).expect("held");
        book.record(&delivery, &a, &at_heads)
            .expect("A's share opens");

        let mut rng = ChaCha20Rng::seed_from_u64(0xF0_22);
        let policy = Policy {
            approvals_required: 2,
            ..Policy::default()
        };
        let second = Identity::generate(&mut rng);
        let co = vec![NewModerator {
            identity: second.public(),
            name: "Bea".into(),
        }];
        let genesis_k2 = SignedGenesis::create_with_moderators(
            &a,
            &fuzz_secret(),
            "Fuzz",
            "Ana",
            co,
            policy,
            NOW,
            &mut rng,
        )
        .expect("genesis");
        let mut cast = vec![a, second];
        cast.extend((2..CAST).map(|_| Identity::generate(&mut rng)));
        let rotated = cast
            .iter()
            .map(|id| {
                let agreement = Identity::generate(&mut rng).public().agreement;
                PublicIdentity {
                    member: id.member_id(),
                    agreement,
                    agreement_sig: id.sign(AGREEMENT_CONTEXT, &agreement),
                }
            })
            .collect();
        let publics = cast.iter().map(Identity::public).collect();
        let certificates = cast
            .iter()
            .map(|id| RevocationCertificate::create(id, NOW))
            .collect();
        let items = (0..40u8)
            .map(|i| Item {
                timestamp: 1_000 + u64::from(i) * 7,
                id: [i; 32],
            })
            .collect();
        Fixture {
            genesis,
            genesis_k2,
            log,
            early,
            epoch_key,
            book,
            cast,
            publics,
            rotated,
            certificates,
            items,
        }
    }
}

/// A value of the vectors' `text.txt`.
fn text(name: &str) -> String {
    TEXT.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(" = ")?;
            (key == name).then(|| value.to_owned())
        })
        .unwrap_or_default()
}

/// `Op::decode`, then insertion into a log holding the vectors' history.
pub fn op_decode(data: &[u8]) {
    let f = fixture();
    let Ok(op) = Op::decode(data, f.genesis.id()) else {
        return;
    };
    let again = Op::decode(op.encoded(), f.genesis.id()).expect("a decoded op decodes again");
    assert_eq!(again.id(), op.id());
    let mut log = f.log.clone();
    log.insert(op.clone());
    let roster = log.roster().clone();
    for id in roster.removed().keys() {
        assert!(!roster.is_member(id));
    }
    let _ = log.roster_at(op.parents());
    let _ = log.roster_at(&[op.id()]);
    // The same op into an empty log: held as an orphan or added, never a panic.
    let mut empty = MembershipLog::new(f.genesis.clone());
    let _ = empty.insert(op);
}

/// `SignedGenesis::decode`, and a log founded on it.
pub fn genesis_decode(data: &[u8]) {
    let Ok(genesis) = SignedGenesis::decode(data) else {
        return;
    };
    let again = SignedGenesis::decode(genesis.encoded()).expect("a decoded genesis decodes again");
    assert_eq!(again.id(), genesis.id());
    let log = MembershipLog::new(genesis.clone());
    assert_eq!(
        log.roster().len(),
        1 + genesis.genesis().co_moderators.len()
    );
    assert!(log.roster().is_moderator(&genesis.genesis().founder.member));
    let secret = fuzz_secret();
    let matches = genesis.matches(&secret);
    let invite = Invite {
        genesis,
        secret,
        addresses: Vec::new(),
        inviter: None,
    };
    match Invite::from_code(&invite.to_code()) {
        Ok(back) => assert!(matches && back == invite),
        Err(error) => assert!(!matches && matches!(error, OpError::WrongSecret)),
    }
}

/// The fuzz collectives' secret (the fixed vectors' own is not known here).
fn fuzz_secret() -> CollectiveSecret {
    CollectiveSecret::from_bytes([0xF2; 32])
}

/// A sealed text of the right length for `field` (the resolver never opens it).
fn fuzz_text(field: TextField) -> SealedText {
    SealedText {
        nonce: [0; 24],
        ciphertext: vec![0; field.sealed_bytes()].into(),
    }
}

/// `KeyDelivery::decode`, its authority at the named state, and recording it in A's book
/// (which opens A's share if there is one).
pub fn delivery_decode(data: &[u8]) {
    let f = fixture();
    let Ok(delivery) = KeyDelivery::decode(data, f.genesis.id()) else {
        return;
    };
    let mut log = f.log.clone();
    let roster = match log.roster_at(&delivery.body().heads) {
        Some(roster) => roster,
        None => std::sync::Arc::new(log.roster().clone()),
    };
    let _ = delivery.check_authority(&roster);
    let mut book = EpochBook::new();
    if let Ok(lookout_protocol::epoch::Recorded::NewKey(epoch)) =
        book.record(&delivery, &f.cast[0], &roster)
    {
        let key = book.key(&epoch).expect("recorded key is held");
        assert_eq!(key.id(), epoch, "an opened share matches its epoch id");
    }
    let _ = book.write_epoch(log.roster(), NOW);
    let _ = book.missing_recipients(&delivery.epoch(), log.roster());
}

/// `envelope::peek`, `open` with the vectors' epoch key, `open_batch`, and `authorize`.
pub fn envelope_open(data: &[u8]) {
    let f = fixture();
    let collective = f.genesis.id();
    let _ = envelope::peek(data);
    let key = &f.epoch_key;
    let single = envelope::open(data, collective, |_| Some(key));
    let batch = envelope::open_batch(&[data, data], collective, |_| Some(key));
    for result in &batch {
        assert_eq!(
            result.is_ok(),
            single.is_ok(),
            "batch and single open agree"
        );
    }
    let Ok(opened) = single else {
        return;
    };
    assert_eq!(Some(opened.id), envelope::id_of(data).ok());
    if let Some(info) = f.book.info(&opened.body.epoch) {
        let _ = opened
            .clone()
            .authorize(&f.early, f.log.roster(), info, NOW, 0);
        let _ = opened.authorize(&f.early, f.log.roster(), info, u64::MAX, u32::MAX);
    }
}

/// `Reconciler::respond` and `reconcile` on a small fixed set.
pub fn reconcile_respond(data: &[u8]) {
    let f = fixture();
    let mut responder = Reconciler::new(&f.items, Limits::default()).expect("sorted items");
    if let Ok(reply) = responder.respond(data) {
        assert!(reply.len() <= Limits::default().max_message_bytes);
        // What we answer, a peer holding half the set can process.
        let half: Vec<Item> = f.items.iter().copied().step_by(2).collect();
        let mut initiator = Reconciler::new(&half, Limits::default()).expect("sorted items");
        initiator.resume_as_initiator();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        initiator
            .reconcile(&reply, &mut have, &mut need)
            .expect("an honest reply is well formed");
    }
    let mut initiator = Reconciler::new(&f.items, Limits::default()).expect("sorted items");
    initiator.resume_as_initiator();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    match initiator.reconcile(data, &mut have, &mut need) {
        Ok(Some(next)) => assert!(next.len() <= Limits::default().max_message_bytes),
        Ok(None) => {}
        // Anything but a peer fault is a bug in the module or the engine.
        Err(err) => assert!(err.is_peer_fault(), "{err}"),
    }
}

/// Every text code parser: identity, revocation certificate, join request, invite.
pub fn textcode_decode(data: &[u8]) {
    let code = String::from_utf8_lossy(data);
    if let Ok(identity) = PublicIdentity::from_code(&code) {
        assert_eq!(
            PublicIdentity::from_code(&identity.to_code()).ok(),
            Some(identity.clone())
        );
        let _ = identity.fingerprint();
    }
    if let Ok(cert) = RevocationCertificate::from_code(&code) {
        assert_eq!(
            RevocationCertificate::from_code(&cert.to_code()).ok(),
            Some(cert)
        );
    }
    if let Ok(request) = JoinRequest::from_code(&code) {
        assert_eq!(
            JoinRequest::from_code(&request.to_code()).ok(),
            Some(request)
        );
    }
    if let Ok(invite) = Invite::from_code(&code) {
        assert_eq!(Invite::from_code(&invite.to_code()).ok(), Some(invite));
    }
}

/// `passphrase::open` and `Identity::unseal`, only ever with the TESTING cost (8 KiB, 1 pass):
/// inputs naming any other *acceptable* parameters are skipped, so the fuzzer can never make
/// Argon2 allocate or spin (parameters `open` refuses are still fed to it, since it must refuse
/// them before deriving anything).
pub fn passphrase_open(data: &[u8]) {
    if let Some(params) = header_params(data) {
        if params.check().is_ok() && params != KdfParams::TESTING {
            return;
        }
    }
    let pass = text("passphrase");
    if let Ok(secret) = passphrase::open(pass.as_bytes(), data, IDENTITY_LABEL) {
        assert_eq!(secret.len() + passphrase::MIN_SEALED_LEN, data.len());
    }
    let _ = passphrase::open(b"", data, b"");
    if let Ok(identity) = Identity::unseal(pass.as_bytes(), data) {
        identity
            .public()
            .verify()
            .expect("an unsealed identity is valid");
    }
}

/// `Op::create`, memoised: signing and verifying dominate the membership target, ops are
/// deterministic (Ed25519 signatures are), and inputs share long prefixes.
fn create_cached(
    author: &Identity,
    collective: lookout_protocol::CollectiveId,
    parents: Vec<OpId>,
    now: u64,
    action: Action,
) -> Option<Op> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    type Key = (
        lookout_protocol::MemberId,
        [u8; 32],
        Vec<OpId>,
        u64,
        Vec<u8>,
    );
    thread_local! {
        static CACHE: RefCell<HashMap<Key, Option<Op>>> = RefCell::new(HashMap::new());
    }
    let key = (
        author.member_id(),
        collective.0,
        parents.clone(),
        now,
        lookout_protocol::codec::encode(&action),
    );
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return hit;
    }
    let op = Op::create(author, collective, parents, now, action).ok();
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= 200_000 {
            cache.clear();
        }
        cache.insert(key, op.clone());
    });
    op
}

fn header_params(data: &[u8]) -> Option<KdfParams> {
    let field = |at: usize| {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    };
    Some(KdfParams {
        memory_kib: field(5)?,
        iterations: field(9)?,
        parallelism: field(13)?,
    })
}

/// Bytes drive a small membership history (five identities, random parents, every action),
/// which must resolve to the same roster whatever order the ops are given in, and a log fed
/// them in reverse must agree.
pub fn membership_resolve(data: &[u8]) {
    const MAX_OPS: usize = 24;
    let f = fixture();
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let Some(first) = next() else {
        return;
    };
    let genesis = if first % 2 == 0 {
        &f.genesis
    } else {
        &f.genesis_k2
    };
    let collective = genesis.id();
    let mut ops: Vec<Op> = Vec::new();
    while ops.len() < MAX_OPS {
        let (Some(who), Some(what), Some(whom), Some(parents)) = (next(), next(), next(), next())
        else {
            break;
        };
        let author = &f.cast[usize::from(who) % CAST];
        let target = usize::from(whom) % CAST;
        let action = match what % 8 {
            0 | 7 => Action::ProposeAdd {
                identity: f.publics[target].clone(),
                name: fuzz_text(TextField::MemberName),
            },
            1 if !ops.is_empty() => Action::Approve {
                proposal: ops[usize::from(whom) % ops.len()].id(),
            },
            2 => Action::Remove {
                member: f.cast[target].member_id(),
                reason: fuzz_text(TextField::RemovalReason),
            },
            3 => Action::PublishRevocation {
                certificate: f.certificates[target].clone(),
            },
            4 => Action::ProposePromote {
                member: f.cast[target].member_id(),
            },
            5 => Action::ProposeDemote {
                member: f.cast[target].member_id(),
            },
            _ => Action::RotateAgreementKey {
                identity: f.rotated[usize::from(who) % CAST].clone(),
            },
        };
        // Parents: bit i names the i-th most recent op; bit 7 clear also names the latest, so
        // most histories are chains with some concurrency.
        let mut chosen: Vec<OpId> = (0..7)
            .filter(|bit| parents & (1 << bit) != 0)
            .filter_map(|bit| ops.len().checked_sub(bit + 1).map(|i| ops[i].id()))
            .collect();
        if parents & 0x80 == 0 {
            chosen.extend(ops.last().map(Op::id));
        }
        let now = NOW + ops.len() as u64;
        if let Some(op) = create_cached(author, collective, chosen, now, action) {
            ops.push(op);
        }
    }
    let forward: Vec<&Op> = ops.iter().collect();
    let backward: Vec<&Op> = ops.iter().rev().collect();
    let roster = resolve(genesis, &forward);
    assert_eq!(
        resolve(genesis, &backward),
        roster,
        "resolution depends on op order"
    );
    // A replica taking the ops one by one, backwards, with refused ops offered again (as later
    // syncs do), resolves what it keeps exactly as a whole resolution of those ops.
    let mut log = MembershipLog::new(genesis.clone());
    let mut refused: Vec<&Op> = Vec::new();
    for op in ops.iter().rev() {
        if matches!(log.insert(op.clone()), InsertOutcome::Refused(_)) {
            refused.push(op);
        }
    }
    loop {
        let before = refused.len();
        refused.retain(|op| matches!(log.insert((*op).clone()), InsertOutcome::Refused(_)));
        if refused.len() == before {
            break;
        }
    }
    let kept: Vec<&Op> = ops.iter().filter(|o| log.contains(&o.id())).collect();
    let roster = resolve(genesis, &kept);
    assert_eq!(log.roster(), &roster, "incremental log disagrees");
    assert!(
        roster.is_empty() || roster.moderator_count() > 0,
        "members and no moderator"
    );
    for id in roster.removed().keys() {
        assert!(!roster.is_member(id), "a removed member is a member");
    }
    assert!(roster.len() <= CAST);
}
