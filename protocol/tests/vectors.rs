//! Wire-format test vectors, so a second implementation can check itself.
//!
//! `tests/vectors/` holds one lower-case hex file per wire object (a public identity, a signed
//! genesis, one membership op per action, a two-recipient rotation delivery, one envelope per
//! content kind, a passphrase-sealed identity) and `text.txt` with everything that is not wire
//! bytes: the secret keys needed to open the objects, text codes, the fingerprint and every id.
//! `README.md` there describes the inputs.
//!
//! Every vector is built from fixed `ChaCha20Rng` seeds. The tests here check two things:
//! rebuilding each vector gives exactly the committed bytes (so any wire change shows up as a
//! diff), and decoding the committed bytes gives the expected fields (so the files are checked
//! on their own, the way another implementation would use them).
//!
//! To regenerate after an intended wire-format change, run
//!
//! ```text
//! LOOKOUT_WRITE_VECTORS=1 cargo test -p lookout-protocol --test vectors
//! ```
//!
//! which rewrites `tests/vectors/*` and the seed corpus in `fuzz/corpus/` instead of comparing,
//! then review and commit the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use lookout_protocol::codec;
use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
use lookout_protocol::envelope::{self, InnerBody};
use lookout_protocol::epoch::{DeliveryKind, EpochKey, KeyDelivery};
use lookout_protocol::identity::{Identity, PublicIdentity};
use lookout_protocol::invite::Invite;
use lookout_protocol::membership::{
    Action, MembershipLog, Op, Policy, RevocationCertificate, SignedGenesis,
};
use lookout_protocol::passphrase::{self, KdfParams};
use lookout_protocol::reconcile::{Item, Limits, Reconciler};
use lookout_protocol::text::CollectiveSecret;
use lookout_protocol::{CollectiveId, OpId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The time every vector is made at.
const NOW: u64 = 1_790_000_000;
const PASSPHRASE: &str = "correct horse battery staple";
/// The label [`Identity::seal`] binds (part of the sealed-identity format).
const IDENTITY_LABEL: &[u8] = b"lookout identity v1";
/// The context an agreement key is signed under (part of the public-identity format).
const AGREEMENT_CONTEXT: &[u8] = b"lookout agreement key v1";

const OPS: [&str; 7] = [
    "op_propose_add",
    "op_propose_promote",
    "op_approve",
    "op_rotate_agreement_key",
    "op_propose_demote",
    "op_remove",
    "op_publish_revocation",
];
const ENVELOPES: [&str; 5] = [
    "envelope_alert",
    "envelope_edit",
    "envelope_retraction",
    "envelope_corroboration",
    "envelope_reachability",
];

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The three identities: A founds, B and C join.
fn identities() -> [Identity; 3] {
    [0xA, 0xB, 0xC].map(|seed| Identity::generate(&mut rng(seed)))
}

/// B's public identity with a new agreement key, signed by B (what `RotateAgreementKey` carries).
fn b_rotated(b: &Identity) -> PublicIdentity {
    let agreement = Identity::generate(&mut rng(0xB2)).public().agreement;
    PublicIdentity {
        member: b.member_id(),
        agreement,
        agreement_sig: b.sign(AGREEMENT_CONTEXT, &agreement),
    }
}

/// The 64 secret bytes of an identity: Ed25519 seed, then X25519 secret.
fn secret(identity: &Identity) -> Vec<u8> {
    let sealed = identity
        .seal(b"x", KdfParams::TESTING, &mut rng(0))
        .unwrap();
    passphrase::open(b"x", &sealed, IDENTITY_LABEL)
        .unwrap()
        .to_vec()
}

/// The collective's secret (carried by invites, never in the genesis or an op).
fn collective_secret() -> CollectiveSecret {
    CollectiveSecret::generate(&mut rng(0x5C))
}

fn genesis(a: &Identity) -> SignedGenesis {
    SignedGenesis::create(
        a,
        &collective_secret(),
        "Night Shift",
        "Ana",
        Policy::default(),
        NOW,
        &mut rng(0x6E),
    )
    .unwrap()
}

/// The actions of the op vectors, in order; each op names the previous one as its parent.
fn actions(ids: &[Identity; 3], proposal_of_c: Option<OpId>) -> Vec<(usize, Action)> {
    let [a, b, c] = ids;
    let key = collective_secret().text_key();
    vec![
        (
            0,
            Action::propose_add(&key, &a.member_id(), b.public(), "Bea", &mut rng(0xBEA)).unwrap(),
        ),
        (
            0,
            Action::ProposePromote {
                member: b.member_id(),
            },
        ),
        (
            0,
            Action::Approve {
                proposal: proposal_of_c.unwrap_or(OpId([0; 32])),
            },
        ),
        (
            1,
            Action::RotateAgreementKey {
                identity: b_rotated(b),
            },
        ),
        (
            0,
            Action::ProposeDemote {
                member: b.member_id(),
            },
        ),
        (
            0,
            Action::remove(
                &key,
                &a.member_id(),
                c.member_id(),
                "phone seized",
                &mut rng(0x4E),
            )
            .unwrap(),
        ),
        (
            1,
            Action::PublishRevocation {
                certificate: RevocationCertificate::create(c, NOW),
            },
        ),
    ]
}

/// The op history: A adds B and promotes her; B proposes C and A approves; B rotates her
/// agreement key; A proposes demoting B and removes C; B publishes C's revocation certificate.
/// Returns the proposal of C (not a vector itself) and the seven vector ops.
fn ops(ids: &[Identity; 3], collective: CollectiveId) -> (Op, Vec<Op>) {
    let make = |author: &Identity, parents: Vec<OpId>, t: u64, action: Action| {
        Op::create(author, collective, parents, NOW + t, action).unwrap()
    };
    let mut out: Vec<Op> = Vec::new();
    let mut proposal = None;
    for (i, (author, action)) in actions(ids, None).into_iter().enumerate() {
        let parents: Vec<OpId> = out.last().map(Op::id).into_iter().collect();
        if i == 2 {
            // Before A's approval, B proposes C.
            let p = make(
                &ids[1],
                parents,
                10,
                Action::propose_add(
                    &collective_secret().text_key(),
                    &ids[1].member_id(),
                    ids[2].public(),
                    "Cat",
                    &mut rng(0xCA7),
                )
                .unwrap(),
            );
            let approve = Action::Approve { proposal: p.id() };
            out.push(make(&ids[author], vec![p.id()], 11, approve));
            proposal = Some(p);
            continue;
        }
        out.push(make(&ids[author], parents, 1 + i as u64 * 10, action));
    }
    (proposal.unwrap(), out)
}

fn epoch_key() -> EpochKey {
    EpochKey::generate(&mut rng(0xE))
}

fn alert() -> Alert {
    let mut identifiers = Identifiers {
        phones: vec!["07700 900123".into()],
        plates: vec!["ab12 cde".into()],
        names: vec!["  Big   Dave ".into()],
        handles: vec!["@Dave_Escorts".into()],
        description: "tall, grey beard, blue van".into(),
    };
    identifiers
        .normalise("GB")
        .expect("a valid fictional UK number");
    Alert {
        category: Category::Violence,
        severity: Severity::High,
        description: "Became violent when asked to pay".into(),
        identifiers,
        area: "Station Road".into(),
        incident_time: Some(NOW - 7_200),
        language: "en".into(),
        on_behalf: false,
    }
}

/// The envelope bodies, one per content kind; A writes the first three, B the others. The
/// edit, retraction and corroboration target the first (the alert).
fn bodies(
    collective: CollectiveId,
    ids: &[Identity; 3],
    heads: &[OpId],
) -> Vec<(usize, InnerBody)> {
    let body = |i: usize, author: usize, content: Content| {
        let timestamp = NOW + 100 + i as u64 * 60;
        // Reachability announcements live a day at most.
        let lifetime = if content.counts_against_quota() {
            30 * 86_400
        } else {
            envelope::MAX_REACHABILITY_SECS
        };
        InnerBody {
            collective,
            epoch: epoch_key().id(),
            author: ids[author].member_id(),
            seq: 1 + i as u64,
            heads: heads.to_vec(),
            timestamp,
            expires: timestamp + lifetime,
            content,
        }
    };
    let first = body(0, 0, Content::Alert(alert()));
    let target = seal_body(ids, 0, first.clone(), 0).id;
    let edited = Alert {
        severity: Severity::Critical,
        ..alert()
    };
    vec![
        (0, first),
        (
            0,
            body(
                1,
                0,
                Content::Edit {
                    target,
                    alert: edited,
                },
            ),
        ),
        (
            0,
            body(
                2,
                0,
                Content::Retraction {
                    target,
                    reason: "wrong car".into(),
                },
            ),
        ),
        (
            1,
            body(
                3,
                1,
                Content::Corroboration {
                    target,
                    note: "Same man, last week".into(),
                },
            ),
        ),
        (
            1,
            body(
                4,
                1,
                Content::Reachability {
                    addresses: vec![
                        "/ip4/192.0.2.7/udp/4001/quic-v1".into(),
                        "/ip6/2001:db8::7/tcp/4001".into(),
                    ],
                },
            ),
        ),
    ]
}

/// Seal envelope `i` (its nonce comes from seed `0x100 + i`).
fn seal_body(ids: &[Identity; 3], author: usize, body: InnerBody, i: u64) -> envelope::Envelope {
    envelope::seal(&ids[author], &epoch_key(), body, &mut rng(0x100 + i)).unwrap()
}

/// Everything the vectors hold, rebuilt from the seeds.
struct Built {
    /// `name.hex` files.
    hex: BTreeMap<String, Vec<u8>>,
    /// `text.txt` lines, in order.
    text: Vec<(String, String)>,
    /// Seed corpus for the fuzz targets: (target, file name, bytes).
    corpus: Vec<(&'static str, String, Vec<u8>)>,
}

fn build() -> Built {
    let ids = identities();
    let [a, b, c] = &ids;
    let mut hex = BTreeMap::new();
    let mut text = vec![("now".to_owned(), NOW.to_string())];
    for (name, identity) in [("a", a), ("b", b), ("c", c)] {
        text.push((
            format!("identity_{name}_secret"),
            hex::encode(secret(identity)),
        ));
    }
    text.push(("identity_b_rotated_agreement_secret".into(), {
        hex::encode(&secret(&Identity::generate(&mut rng(0xB2)))[33..65])
    }));

    // Identity.
    let public = a.public();
    hex.insert("identity_a".to_owned(), codec::encode(&public));
    text.push(("identity_a_code".into(), public.to_code()));
    text.push(("identity_a_fingerprint".into(), public.fingerprint()));
    let revocation = RevocationCertificate::create(c, NOW);
    text.push(("revocation_c_code".into(), revocation.to_code()));

    // Genesis and ops.
    let genesis = genesis(a);
    let collective = genesis.id();
    hex.insert("genesis".to_owned(), genesis.encoded().to_vec());
    text.push(("collective_id".into(), collective.to_hex()));
    text.push((
        "collective_secret".into(),
        hex::encode(collective_secret().as_bytes()),
    ));
    let invite = Invite {
        genesis: genesis.clone(),
        secret: collective_secret(),
        addresses: vec!["/ip4/192.0.2.1/tcp/4001".into()],
        inviter: Some(a.member_id()),
    };
    text.push(("invite_code".into(), invite.to_code()));
    let (proposal, ops) = ops(&ids, collective);
    hex.insert("op_propose_add_c".to_owned(), proposal.encoded().to_vec());
    text.push(("op_propose_add_c_id".into(), proposal.id().to_hex()));
    for (name, op) in OPS.iter().zip(&ops) {
        hex.insert((*name).to_owned(), op.encoded().to_vec());
        text.push((format!("{name}_id"), op.id().to_hex()));
    }

    // A rotation at the state after B's admission, to A and B.
    let heads = vec![ops[0].id()];
    let key = epoch_key();
    let delivery = KeyDelivery::create(
        a,
        collective,
        &key,
        DeliveryKind::Rotation,
        heads.clone(),
        NOW + 50,
        &[b.public(), a.public()],
        &mut rng(0xD),
    )
    .unwrap();
    hex.insert("delivery_rotation".to_owned(), delivery.encoded().to_vec());
    text.push(("epoch_key".into(), hex::encode(key.to_bytes().as_ref())));
    text.push(("epoch_id".into(), key.id().to_hex()));
    text.push(("delivery_rotation_id".into(), delivery.id().to_hex()));

    // Envelopes.
    for (i, (name, (author, body))) in ENVELOPES
        .iter()
        .zip(bodies(collective, &ids, &heads))
        .enumerate()
    {
        let sealed = seal_body(&ids, author, body, i as u64);
        hex.insert((*name).to_owned(), sealed.bytes);
        text.push((format!("{name}_id"), sealed.id.to_hex()));
    }

    // Sealed identity.
    let sealed = a
        .seal(PASSPHRASE.as_bytes(), KdfParams::TESTING, &mut rng(0x5EA1))
        .unwrap();
    hex.insert("sealed_identity_a".to_owned(), sealed);
    text.push(("passphrase".into(), PASSPHRASE.into()));

    let corpus = corpus(&hex, &text);
    Built { hex, text, corpus }
}

/// Seed inputs for each fuzz target, made from the vectors.
fn corpus(
    hex: &BTreeMap<String, Vec<u8>>,
    text: &[(String, String)],
) -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push((target, name.to_owned(), bytes));
    };
    for name in OPS.iter().chain(&["op_propose_add_c"]) {
        add("op_decode", name, hex[*name].clone());
    }
    add("genesis_decode", "genesis", hex["genesis"].clone());
    add(
        "delivery_decode",
        "delivery_rotation",
        hex["delivery_rotation"].clone(),
    );
    for name in ENVELOPES {
        add("envelope_open", name, hex[name].clone());
    }
    for (name, value) in text {
        if name.ends_with("_code") {
            add("textcode_decode", name, value.clone().into_bytes());
        }
    }
    add(
        "passphrase_open",
        "sealed_identity_a",
        hex["sealed_identity_a"].clone(),
    );
    // Reconciliation: the messages of one real session over small sets.
    let items: Vec<Item> = (0..40u8)
        .map(|i| Item {
            timestamp: 1_000 + u64::from(i) * 7,
            id: [i; 32],
        })
        .collect();
    let theirs: Vec<Item> = items.iter().copied().filter(|i| i.id[0] % 5 != 0).collect();
    let mut initiator = Reconciler::new(&items, Limits::default()).unwrap();
    let mut responder = Reconciler::new(&theirs, Limits::default()).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut msg = initiator.initiate().unwrap();
    for round in 0.. {
        add(
            "reconcile_respond",
            &format!("request_{round}"),
            msg.clone(),
        );
        let reply = responder.respond(&msg).unwrap();
        add(
            "reconcile_respond",
            &format!("reply_{round}"),
            reply.clone(),
        );
        match initiator.reconcile(&reply, &mut have, &mut need).unwrap() {
            Some(next) => msg = next,
            None => break,
        }
    }
    // Membership histories: choice bytes, interpreted by the fuzz target.
    for (i, len) in [8usize, 32, 96, 200].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len)
            .map(|j| (j as u8).wrapping_mul(37).wrapping_add(i as u8 * 11))
            .collect();
        add("membership_resolve", &format!("history_{i}"), bytes);
    }
    out
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn render_text(text: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Lookout test vectors: values that are not wire bytes (see protocol/tests/vectors.rs).\n",
    );
    for (name, value) in text {
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}

/// Write everything when `LOOKOUT_WRITE_VECTORS=1`, once, before any test reads the files.
fn maybe_write() {
    static WRITE: Once = Once::new();
    WRITE.call_once(|| {
        if std::env::var("LOOKOUT_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let built = build();
        std::fs::create_dir_all(dir()).unwrap();
        for (name, bytes) in &built.hex {
            std::fs::write(dir().join(format!("{name}.hex")), hex::encode(bytes) + "\n").unwrap();
        }
        std::fs::write(dir().join("text.txt"), render_text(&built.text)).unwrap();
        let corpus_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (target, name, bytes) in &built.corpus {
            let target_dir = corpus_root.join(target);
            std::fs::create_dir_all(&target_dir).unwrap();
            std::fs::write(target_dir.join(format!("vector-{name}")), bytes).unwrap();
        }
    });
}

/// The bytes of a committed `name.hex`.
fn committed(name: &str) -> Vec<u8> {
    maybe_write();
    let path = dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with LOOKOUT_WRITE_VECTORS=1",
            path.display()
        )
    });
    hex::decode(text.trim()).unwrap()
}

/// A value of the committed `text.txt`.
fn committed_text(name: &str) -> String {
    maybe_write();
    let text = std::fs::read_to_string(dir().join("text.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k == name).then(|| v.to_owned())
        })
        .unwrap_or_else(|| panic!("text.txt has no {name}"))
}

fn committed_id(name: &str) -> [u8; 32] {
    hex::decode(committed_text(name))
        .unwrap()
        .try_into()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Regeneration: the same seeds give the same bytes.

#[test]
fn rebuilt_vectors_equal_the_committed_files() {
    maybe_write();
    let built = build();
    for (name, bytes) in &built.hex {
        assert_eq!(
            hex::encode(committed(name)),
            hex::encode(bytes),
            "{name}.hex differs from what the code produces: a wire-format change?"
        );
    }
    let on_disk = std::fs::read_to_string(dir().join("text.txt")).unwrap();
    assert_eq!(on_disk, render_text(&built.text), "text.txt differs");
    let hex_files = std::fs::read_dir(dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "hex")
        })
        .count();
    assert_eq!(hex_files, built.hex.len(), "stray or missing .hex files");
}

// ---------------------------------------------------------------------------------------------
// Decoding: the committed bytes alone give the expected fields.

#[test]
fn identity_vector_decodes() {
    let [a, ..] = identities();
    let bytes = committed("identity_a");
    let public: PublicIdentity = codec::decode(&bytes, 256).unwrap();
    public.verify().unwrap();
    assert_eq!(bytes.len(), 32 + 32 + 64, "member, agreement, signature");
    assert_eq!(public, a.public());
    let secret = hex::decode(committed_text("identity_a_secret")).unwrap();
    assert_eq!(secret[0], 2, "secret-key format 2");
    assert_eq!(&secret[1..33], a.ed25519_seed().as_slice());
    assert_eq!(
        PublicIdentity::from_code(&committed_text("identity_a_code")).unwrap(),
        public
    );
    let fingerprint = committed_text("identity_a_fingerprint");
    assert_eq!(public.fingerprint(), fingerprint);
    assert_eq!(fingerprint.len(), 23);
    let cert = RevocationCertificate::from_code(&committed_text("revocation_c_code")).unwrap();
    assert_eq!(cert.member, identities()[2].member_id());
    assert_eq!(cert.created, NOW);
}

#[test]
fn genesis_vector_decodes() {
    let [a, ..] = identities();
    let bytes = committed("genesis");
    let genesis = SignedGenesis::decode(&bytes).unwrap();
    assert_eq!(genesis.id().0, committed_id("collective_id"));
    let g = genesis.genesis();
    assert_eq!(g.version, 3);
    assert!(g.co_moderators.is_empty());
    let secret = CollectiveSecret::from_bytes(
        hex::decode(committed_text("collective_secret"))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert!(genesis.matches(&secret));
    let key = secret.text_key();
    assert_eq!(g.sealed_name().open(&key).as_deref(), Some("Night Shift"));
    let (_, founder_name) = g.founding_moderators().next().unwrap();
    assert_eq!(founder_name.open(&key).as_deref(), Some("Ana"));
    // The record holds no name in clear.
    for needle in [&b"Night Shift"[..], b"Ana"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }
    // The invite carries the genesis and the secret.
    let invite = Invite::from_code(&committed_text("invite_code")).unwrap();
    assert_eq!(invite.genesis, genesis);
    assert_eq!(invite.secret, secret);
    assert_eq!(invite.inviter, Some(a.member_id()));
    assert_eq!(g.founder, a.public());
    assert_eq!(g.policy, Policy::default());
    assert_eq!(g.created, NOW);
    // Any flipped bit breaks the signature or the encoding.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(SignedGenesis::decode(&tampered).is_err());
}

#[test]
fn op_vectors_decode() {
    let ids = identities();
    let collective = CollectiveId(committed_id("collective_id"));
    let proposal = Op::decode(&committed("op_propose_add_c"), collective).unwrap();
    assert_eq!(proposal.id().0, committed_id("op_propose_add_c_id"));
    let expected = actions(&ids, Some(proposal.id()));
    let mut previous: Option<OpId> = None;
    let genesis = SignedGenesis::decode(&committed("genesis")).unwrap();
    let mut log = MembershipLog::new(genesis);
    log.insert(proposal.clone());
    for (name, (author, action)) in OPS.iter().zip(expected) {
        let op = Op::decode(&committed(name), collective).unwrap();
        assert_eq!(op.id().0, committed_id(&format!("{name}_id")), "{name}");
        assert_eq!(op.author(), ids[author].member_id(), "{name}");
        assert_eq!(op.body().collective, collective);
        assert_eq!(op.body().action, action, "{name}");
        let parents: Vec<OpId> = match *name {
            "op_approve" => vec![proposal.id()],
            _ => previous.into_iter().collect(),
        };
        assert_eq!(op.parents(), parents.as_slice(), "{name}");
        assert!(op.body().timestamp >= NOW);
        // Ops of another collective are refused.
        assert!(Op::decode(&committed(name), CollectiveId([9; 32])).is_err());
        previous = Some(op.id());
        log.insert(op);
    }
    // C's proposal came first, before anything admitted its author B: refused then, taken when
    // offered again (as a later sync would), releasing the ops waiting for it.
    log.insert(proposal);
    // The history resolves (k = 1): B admitted, promoted, rotated her key and was demoted; C was
    // admitted on B's proposal, then removed by A and revoked by B.
    let roster = log.roster();
    assert_eq!(log.orphan_count(), 0);
    assert!(roster.dropped().is_empty(), "{:?}", roster.dropped());
    assert!(roster.is_moderator(&ids[0].member_id()));
    let b = roster.member(&ids[1].member_id()).unwrap();
    assert!(!b.moderator);
    let key = collective_secret().text_key();
    assert_eq!(roster.display_names(Some(&key))[&ids[1].member_id()], "Bea");
    assert_eq!(
        roster.removed()[&ids[2].member_id()]
            .name
            .as_ref()
            .and_then(|n| n.open(&key))
            .as_deref(),
        Some("Cat")
    );
    assert_eq!(b.identity, b_rotated(&ids[1]));
    let removed = &roster.removed()[&ids[2].member_id()];
    assert!(removed.self_revoked);
    assert_eq!(removed.ops.len(), 2);
    assert!(roster.pending().is_empty());
}

#[test]
fn delivery_vector_decodes_and_opens() {
    let ids = identities();
    let collective = CollectiveId(committed_id("collective_id"));
    let delivery = KeyDelivery::decode(&committed("delivery_rotation"), collective).unwrap();
    assert_eq!(delivery.id().0, committed_id("delivery_rotation_id"));
    let body = delivery.body();
    assert_eq!(body.author, ids[0].member_id());
    assert_eq!(body.kind, DeliveryKind::Rotation);
    assert_eq!(body.heads, vec![OpId(committed_id("op_propose_add_id"))]);
    assert_eq!(body.timestamp, NOW + 50);
    assert_eq!(body.epoch.0, committed_id("epoch_id"));
    let mut recipients = vec![ids[0].member_id(), ids[1].member_id()];
    recipients.sort();
    assert_eq!(delivery.recipients().collect::<Vec<_>>(), recipients);
    let key = committed_text("epoch_key");
    for identity in &ids[..2] {
        let opened = delivery.open(identity).unwrap().unwrap();
        assert_eq!(hex::encode(opened.to_bytes().as_ref()), key);
    }
    assert!(delivery.open(&ids[2]).is_none(), "C is not a recipient");
    // The delivery is allowed at its named state.
    let genesis = SignedGenesis::decode(&committed("genesis")).unwrap();
    let mut log = MembershipLog::new(genesis);
    log.insert(Op::decode(&committed("op_propose_add"), collective).unwrap());
    delivery
        .check_authority(&log.roster_at(&body.heads).unwrap())
        .unwrap();
}

#[test]
fn envelope_vectors_open_and_authorize() {
    let ids = identities();
    let collective = CollectiveId(committed_id("collective_id"));
    let key_bytes: [u8; 32] = hex::decode(committed_text("epoch_key"))
        .unwrap()
        .try_into()
        .unwrap();
    let key = EpochKey::from_bytes(key_bytes);
    let heads = vec![OpId(committed_id("op_propose_add_id"))];
    let genesis = SignedGenesis::decode(&committed("genesis")).unwrap();
    let mut log = MembershipLog::new(genesis);
    log.insert(Op::decode(&committed("op_propose_add"), collective).unwrap());
    let roster = log.roster().clone();
    let mut book = lookout_protocol::epoch::EpochBook::new();
    let delivery = KeyDelivery::decode(&committed("delivery_rotation"), collective).unwrap();
    book.record(&delivery, &ids[0], &roster).unwrap();
    let info = book.info(&key.id()).unwrap().clone();

    for (name, (author, expected)) in ENVELOPES.iter().zip(bodies(collective, &ids, &heads)) {
        let bytes = committed(name);
        let outer = envelope::peek(&bytes).unwrap();
        assert_eq!(outer.version, envelope::VERSION);
        assert_eq!(outer.collective_tag, collective.tag());
        assert_eq!(outer.epoch, key.id());
        assert_eq!(outer.coarse_time, envelope::coarse(expected.timestamp));
        assert!(
            envelope::BUCKETS
                .iter()
                .any(|b| b + 16 == outer.ciphertext.len()),
            "{name}: padded to a bucket"
        );
        let opened = envelope::open(&bytes, collective, |e| (*e == key.id()).then_some(&key))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.id.0, committed_id(&format!("{name}_id")), "{name}");
        assert_eq!(outer.id, opened.id, "{name}: the id in clear is the post's");
        assert_eq!(opened.body, expected, "{name}");
        assert_eq!(opened.body.author, ids[author].member_id());
        let verified = opened
            .authorize(&roster, &roster, &info, expected.timestamp, 0)
            .unwrap();
        assert_eq!(verified.author(), ids[author].member_id());
    }
    // The alert's identifiers were normalised before sealing.
    let alert = envelope::open(&committed("envelope_alert"), collective, |_| Some(&key)).unwrap();
    let Content::Alert(alert) = alert.body.content else {
        panic!("not an alert")
    };
    assert_eq!(alert.identifiers.phones, vec!["+447700900123"]);
    assert_eq!(alert.identifiers.plates, vec!["AB12CDE"]);
    assert_eq!(alert.identifiers.handles, vec!["dave_escorts"]);
    assert_eq!(alert.identifiers.names, vec!["Big Dave"]);
}

#[test]
fn sealed_identity_vector_opens() {
    let [a, ..] = identities();
    let bytes = committed("sealed_identity_a");
    assert_eq!(&bytes[..4], b"LKPS");
    assert_eq!(bytes[4], 1);
    assert_eq!(
        &bytes[5..17],
        &[8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0],
        "TESTING params"
    );
    assert_eq!(bytes.len(), passphrase::MIN_SEALED_LEN + 74);
    let opened = Identity::unseal(committed_text("passphrase").as_bytes(), &bytes).unwrap();
    assert_eq!(opened.public(), a.public());
    let secret = passphrase::open(PASSPHRASE.as_bytes(), &bytes, IDENTITY_LABEL).unwrap();
    assert_eq!(
        hex::encode(secret.as_slice()),
        committed_text("identity_a_secret")
    );
    assert!(Identity::unseal(b"wrong", &bytes).is_err());
}
