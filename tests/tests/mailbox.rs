//! The blind mailbox: who it serves (current members only: admission, sync, reservations,
//! circuits), what it keeps (quotas, restarts, expiry) and what its files reveal (nothing of an
//! alert's text or numbers).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use lookout_node::api::{PostDraft, Request};
use lookout_node::mailbox::{BlindStore, MailboxHome, StoreLimits, Stored};
use lookout_node::replica::{now, Replica, SetKind, WireItem};
use lookout_node::sync::{SyncRequest, SyncResponse};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_tests::mailbox::*;
use lookout_tests::rogue::Forger;
use lookout_tests::*;

const LIMIT: Duration = Duration::from_secs(180);

fn genesis_of(replica: &Replica) -> Vec<u8> {
    replica.membership().unwrap().genesis().encoded().to_vec()
}

fn collective_of(replica: &Replica) -> lookout_protocol::CollectiveId {
    replica.membership().unwrap().collective()
}

/// Every op a replica holds, as wire items.
fn ops_of(replica: &mut Replica) -> Vec<WireItem> {
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Ops)
        .iter()
        .map(|i| i.id)
        .collect();
    replica
        .fetch(SetKind::Ops, &ids)
        .unwrap()
        .into_iter()
        .map(|bytes| WireItem {
            kind: SetKind::Ops,
            bytes,
        })
        .collect()
}

/// A founder, two members; member 2 revoked. The mailbox is bound and holds every op.
struct Stage {
    collective: Collective,
    mailbox_home: tempfile::TempDir,
}

/// Member names the forensic check looks for.
const NAMES: [&str; 3] = ["Quenburga", "Ottoline", "Wilhelmina"];

fn stage() -> Stage {
    let mut collective = Collective::named(&NAMES, Policy::default());
    let revoked = collective.replicas[2].identity().member_id();
    collective.replicas[0]
        .revoke(revoked, "left".into())
        .unwrap();
    collective.share_state();
    let mailbox_home = tempfile::tempdir().unwrap();
    bound_mailbox_home(mailbox_home.path(), &mut collective.replicas[0]);
    Stage {
        collective,
        mailbox_home,
    }
}

/// Finding 5 of the first review: a stranger who reaches a bound mailbox learns from its
/// `Accept` that it is bound, not which collective it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_says_nothing_to_a_stranger() {
    tokio::time::timeout(LIMIT, async {
        let s = stage();
        let id = collective_of(&s.collective.replicas[0]);
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let accept = Client::new().open_only(mbp, &mb.addr).await.unwrap();
        assert_eq!(
            accept.len(),
            lookout_node::net::mailbox_admission::ACCEPT_BYTES
        );
        assert!(
            !accept.windows(8).any(|w| w == &id.0[..8]),
            "a stranger's Accept carries the collective id"
        );
        // A current member is still admitted in full: the signature covers the id it knows.
        let mut member = Client::new();
        assert_eq!(
            member
                .admit(
                    mbp,
                    &mb.addr,
                    &signing_key(&s.collective.replicas[1]),
                    id,
                    &genesis_of(&s.collective.replicas[0])
                )
                .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Full)
        );
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_and_a_revoked_member_get_no_admission_reservation_circuit_or_item() {
    tokio::time::timeout(LIMIT, async {
        let mut s = stage();
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let (genesis, collective) = (
            genesis_of(&s.collective.replicas[0]),
            collective_of(&s.collective.replicas[0]),
        );

        // A current member: admitted, reserves, stores an alert.
        let mut member = Client::new();
        let key = signing_key(&s.collective.replicas[1]);
        assert_eq!(
            member
                .admit(mbp, &mb.addr, &key, collective, &genesis)
                .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Full)
        );
        assert_eq!(member.reserve(mbp, &mb.addr).await, RelayOutcome::Granted);
        let alert = Forger::new(&mut s.collective.replicas[1]).alert("member's alert");
        assert_eq!(member.push(mbp, vec![alert]).await, Ok((1, 0)));

        let outsider_key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let revoked_key = signing_key(&s.collective.replicas[2]);
        for (who, key) in [
            ("non-member", outsider_key),
            ("revoked member", revoked_key),
        ] {
            let mut attacker = Client::new();
            let admitted = attacker
                .admit(mbp, &mb.addr, &key, collective, &genesis)
                .await;
            assert!(admitted.is_err(), "{who} admitted: {admitted:?}");
            // Whatever connection it opens now carries none of the services.
            attacker.connect(mbp, &mb.addr).await.unwrap();
            let fetched = attacker
                .request(
                    mbp,
                    &SyncRequest::Fetch {
                        kind: SetKind::Envelopes,
                        ids: vec![[0; 32]],
                    },
                )
                .await;
            assert!(fetched.is_err(), "{who} was served sync: {fetched:?}");
            let stored = attacker.fetch_all(mbp, SetKind::Envelopes).await;
            assert!(stored.is_err(), "{who} read the stored items: {stored:?}");
            let pushed = attacker
                .push(
                    mbp,
                    vec![Forger::new(&mut s.collective.replicas[1]).alert("x")],
                )
                .await;
            assert!(pushed.is_err(), "{who} stored an item: {pushed:?}");
            attacker.connect(mbp, &mb.addr).await.unwrap();
            assert!(
                matches!(
                    attacker.reserve(mbp, &mb.addr).await,
                    RelayOutcome::Refused(_)
                ),
                "{who} got a reservation"
            );
            attacker.connect(mbp, &mb.addr).await.unwrap();
            let circuit = attacker.circuit(mbp, &mb.addr, member.peer_id()).await;
            assert!(
                matches!(circuit, RelayOutcome::Refused(_)),
                "{who} got a circuit to a member"
            );
        }
        let status = mb.handle.status().await.unwrap();
        assert_eq!(status.envelopes, 1, "only the member's alert is stored");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

/// Issue 10, "its public address may be given or learnt": a mailbox given no address learns
/// the one members observe it at only once two distinct admitted members report it; a
/// non-member, a revoked member and a single member make nothing external.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_or_a_non_member_cannot_make_an_address_external() {
    tokio::time::timeout(LIMIT, async {
        let s = stage();
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let (genesis, collective) = (
            genesis_of(&s.collective.replicas[0]),
            collective_of(&s.collective.replicas[0]),
        );
        let learnt = || {
            let handle = mb.handle.clone();
            async move { handle.status().await.unwrap().learnt }
        };
        let full = Ok(lookout_node::net::mailbox_admission::Welcome::Full);
        let mut clients = Vec::new();
        for (who, key) in [
            (
                "non-member",
                ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
            ),
            ("revoked member", signing_key(&s.collective.replicas[2])),
        ] {
            let mut attacker = Client::new();
            let admitted = attacker
                .admit(mbp, &mb.addr, &key, collective, &genesis)
                .await;
            assert!(admitted.is_err(), "{who} admitted: {admitted:?}");
            attacker.connect(mbp, &mb.addr).await.unwrap();
            attacker.pump(Duration::from_millis(500)).await;
            clients.push(attacker);
        }
        let mut first = Client::new();
        let key = signing_key(&s.collective.replicas[1]);
        assert_eq!(
            first.admit(mbp, &mb.addr, &key, collective, &genesis).await,
            full
        );
        first.connect(mbp, &mb.addr).await.unwrap();
        first.pump(Duration::from_secs(1)).await;
        // A second transport id of the same member adds nothing.
        let mut again = Client::new();
        assert_eq!(
            again.admit(mbp, &mb.addr, &key, collective, &genesis).await,
            full
        );
        again.connect(mbp, &mb.addr).await.unwrap();
        again.pump(Duration::from_secs(1)).await;
        assert_eq!(mb.handle.status().await.unwrap().members_connected, 1);
        assert!(
            learnt().await.is_empty(),
            "one member made its word external"
        );
        // A second member observing the same address confirms it.
        let mut second = Client::new();
        let key = signing_key(&s.collective.replicas[0]);
        assert_eq!(
            second
                .admit(mbp, &mb.addr, &key, collective, &genesis)
                .await,
            full
        );
        second.connect(mbp, &mb.addr).await.unwrap();
        let started = std::time::Instant::now();
        while learnt().await.is_empty() && started.elapsed() < STEP {
            second.pump(Duration::from_millis(200)).await;
        }
        let status = mb.handle.status().await.unwrap();
        assert_eq!(status.learnt, vec![mb.addr.to_string()], "{status:?}");
        assert!(status.external.contains(&mb.addr.to_string()), "{status:?}");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admitted_member_reaches_another_through_a_circuit_and_gets_pushes() {
    tokio::time::timeout(LIMIT, async {
        let mut s = stage();
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let (genesis, collective) = (
            genesis_of(&s.collective.replicas[0]),
            collective_of(&s.collective.replicas[0]),
        );
        let mut a = Client::new();
        let mut b = Client::new();
        let (ka, kb) = (
            signing_key(&s.collective.replicas[0]),
            signing_key(&s.collective.replicas[1]),
        );
        a.admit(mbp, &mb.addr, &ka, collective, &genesis)
            .await
            .unwrap();
        b.admit(mbp, &mb.addr, &kb, collective, &genesis)
            .await
            .unwrap();
        assert_eq!(b.reserve(mbp, &mb.addr).await, RelayOutcome::Granted);
        // A's circuit to B needs B's swarm running to accept it.
        let b_peer = b.peer_id();
        let pump = tokio::spawn(async move {
            b.pump(Duration::from_secs(8)).await;
            b
        });
        assert_eq!(
            a.circuit(mbp, &mb.addr, b_peer).await,
            RelayOutcome::Granted
        );
        let mut b = pump.await.unwrap();

        // Store-and-forward: A's new alert is pushed to B at once.
        let alert = Forger::new(&mut s.collective.replicas[0]).alert("forwarded");
        assert_eq!(a.push(mbp, vec![alert.clone()]).await, Ok((1, 0)));
        let deadline = tokio::time::Instant::now() + STEP;
        while !b.pushed.contains(&alert) && tokio::time::Instant::now() < deadline {
            b.pump(Duration::from_millis(200)).await;
        }
        assert!(b.pushed.contains(&alert), "the mailbox forwarded the alert");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_connected_is_cut_off_with_its_reservation() {
    tokio::time::timeout(LIMIT, async {
        let mut collective = Collective::new(1, Policy::default());
        let mailbox_home = tempfile::tempdir().unwrap();
        bound_mailbox_home(mailbox_home.path(), &mut collective.replicas[0]);
        let mb = start_mailbox(mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let (genesis, cid) = (
            genesis_of(&collective.replicas[0]),
            collective_of(&collective.replicas[0]),
        );
        let mut founder = Client::new();
        let mut member = Client::new();
        founder
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&collective.replicas[0]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        member
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&collective.replicas[1]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        assert_eq!(member.reserve(mbp, &mb.addr).await, RelayOutcome::Granted);

        let removed = collective.replicas[1].identity().member_id();
        collective.replicas[0]
            .revoke(removed, "gone".into())
            .unwrap();
        let ops = ops_of(&mut collective.replicas[0]);
        let (accepted, _) = founder.push(mbp, ops).await.unwrap();
        assert!(accepted >= 1, "the removal is stored");
        let deadline = tokio::time::Instant::now() + STEP;
        while member.connected_to(&mbp) && tokio::time::Instant::now() < deadline {
            member.pump(Duration::from_millis(100)).await;
        }
        assert!(
            !member.connected_to(&mbp),
            "the removed member's connections (and reservation) are closed"
        );
        // And it cannot come back.
        let again = member
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&collective.replicas[1]),
                cid,
                &genesis,
            )
            .await;
        assert!(again.is_err(), "re-admitted after removal: {again:?}");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_bound_to_one_collective_refuses_another() {
    tokio::time::timeout(LIMIT, async {
        let mut a = Collective::new(0, Policy::default());
        let b = Collective::new(0, Policy::default());
        let mailbox_home = tempfile::tempdir().unwrap();
        bound_mailbox_home(mailbox_home.path(), &mut a.replicas[0]);
        let mb = start_mailbox(mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let mut client = Client::new();
        let refused = client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&b.replicas[0]),
                collective_of(&b.replicas[0]),
                &genesis_of(&b.replicas[0]),
            )
            .await;
        assert_eq!(
            refused,
            Err("the mailbox did not prove its key for this connection and our collective".into()),
            "B's member sees the binding and sends nothing about itself"
        );
        // A hostile client that proves B's key anyway (claiming A's collective) is refused.
        let mut hostile = Client::new();
        let refused = hostile
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&b.replicas[0]),
                collective_of(&a.replicas[0]),
                &genesis_of(&a.replicas[0]),
            )
            .await;
        assert!(refused.is_err(), "{refused:?}");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_cap_a_flooding_member_without_losing_other_members_items() {
    tokio::time::timeout(LIMIT, async {
        let mut s = stage();
        let limits = StoreLimits {
            member_items_per_day: 5,
            ..StoreLimits::default()
        };
        let mb = start_mailbox(s.mailbox_home.path(), limits).await;
        let mbp = mb.handle.peer_id();
        let (genesis, cid) = (
            genesis_of(&s.collective.replicas[0]),
            collective_of(&s.collective.replicas[0]),
        );
        let mut flooder = Client::new();
        flooder
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[1]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        let flood: Vec<WireItem> = (0..20)
            .map(|i| Forger::new(&mut s.collective.replicas[1]).alert(&format!("flood {i}")))
            .collect();
        assert_eq!(flooder.push(mbp, flood).await, Ok((5, 0)));
        let mut other = Client::new();
        other
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[0]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        let theirs = Forger::new(&mut s.collective.replicas[0]).alert("another member's alert");
        assert_eq!(other.push(mbp, vec![theirs.clone()]).await, Ok((1, 0)));
        let held = other.fetch_all(mbp, SetKind::Envelopes).await.unwrap();
        assert_eq!(held.len(), 6);
        assert!(held.contains(&theirs));

        // The total cap evicts the oldest envelope, never refusing the newest.
        let dir = tempfile::tempdir().unwrap();
        let mut store = BlindStore::open(
            dir.path(),
            StoreLimits {
                max_items: 3,
                ..StoreLimits::default()
            },
        )
        .unwrap();
        store
            .bind(
                s.collective.replicas[0]
                    .membership()
                    .unwrap()
                    .genesis()
                    .clone(),
            )
            .unwrap();
        let author = s.collective.replicas[0].identity().member_id();
        for op in ops_of(&mut s.collective.replicas[0]) {
            store.put(author, SetKind::Ops, &op.bytes, now()).unwrap();
        }
        let mut ids = Vec::new();
        for i in 0..5u64 {
            let mut forger = Forger::new(&mut s.collective.replicas[0]);
            let key = forger.write_key();
            let heads = forger.heads();
            let t = now() - 3600 * (5 - i);
            let item = forger.post(
                &key,
                heads,
                t,
                t + 86_400,
                lookout_tests::rogue::alert_content("cap"),
            );
            ids.push(item.id());
            assert_eq!(
                store
                    .put(author, SetKind::Envelopes, &item.bytes, now())
                    .unwrap(),
                Stored::New
            );
        }
        let kept: Vec<[u8; 32]> = store
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(kept.len(), 3);
        assert!(
            ids[2..].iter().all(|id| kept.contains(id)),
            "the newest three are kept"
        );
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_items_survive_a_restart_and_expired_ones_are_deleted() {
    tokio::time::timeout(LIMIT, async {
        let mut s = stage();
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let (genesis, cid) = (
            genesis_of(&s.collective.replicas[0]),
            collective_of(&s.collective.replicas[0]),
        );
        let mut client = Client::new();
        client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[1]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        let alert = Forger::new(&mut s.collective.replicas[1]).alert("kept across a restart");
        assert_eq!(client.push(mbp, vec![alert.clone()]).await, Ok((1, 0)));
        let home = mb.stop().await;
        drop(client);

        let mb = start_mailbox(&home, StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        assert_eq!(
            mbp,
            lookout_node::mailbox::load(&home).unwrap().peer_id(),
            "stable peer id"
        );
        let mut client = Client::new();
        client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[1]),
                cid,
                &genesis,
            )
            .await
            .unwrap();
        let held = client.fetch_all(mbp, SetKind::Envelopes).await.unwrap();
        assert_eq!(held, vec![alert.clone()]);
        let home = mb.stop().await;

        // Past its time to live (the policy's longest alert lifetime after its coarse time),
        // the envelope is deleted.
        let mut store =
            BlindStore::open(&MailboxHome::new(&home).db_dir(), StoreLimits::default()).unwrap();
        let ttl = Policy::default().max_alert_secs();
        assert_eq!(store.expire(now()).unwrap(), 0);
        assert_eq!(store.expire(now() + ttl + 600).unwrap(), 1);
        assert!(store.sync_items(SetKind::Envelopes).is_empty());
        assert!(store
            .fetch(SetKind::Envelopes, &[alert.id()])
            .unwrap()
            .is_empty());
        // An envelope already expired (or dated far ahead) is not taken at all.
        let author = s.collective.replicas[1].identity().member_id();
        let mut forger = Forger::new(&mut s.collective.replicas[1]);
        let key = forger.write_key();
        let heads = forger.heads();
        let old = now() - ttl - 3600;
        let stale = forger.post(
            &key,
            heads.clone(),
            old,
            old + 60,
            lookout_tests::rogue::alert_content("old"),
        );
        assert_eq!(
            store
                .put(author, SetKind::Envelopes, &stale.bytes, now())
                .unwrap(),
            Stored::OutOfTime
        );
        let ahead = now() + 86_400;
        let future = forger.post(
            &key,
            heads,
            ahead,
            ahead + 60,
            lookout_tests::rogue::alert_content("ahead"),
        );
        assert_eq!(
            store
                .put(author, SetKind::Envelopes, &future.bytes, now())
                .unwrap(),
            Stored::OutOfTime
        );
    })
    .await
    .expect("timed out");
}

const TEXT: &str = "pulled a knife in the stairwell of the Marlowe";
const PHONE: &str = "07700 900461";
const PLATE: &str = "KX19 QPW";
const CLIENT_NAME: &str = "Barnaby Thistlewood";

fn real_alert() -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: TEXT.into(),
        phones: vec![PHONE.into()],
        phones_as_typed: false,
        plates: vec![PLATE.into()],
        names: vec![CLIENT_NAME.into()],
        handles: Vec::new(),
        physical: "tattoo of a heron on the neck".into(),
        area: "Ropewalk Lane".into(),
        incident_time: None,
        expires_in_days: None,
        language: "en".into(),
        on_behalf: false,
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_files_hold_no_alert_text_or_numbers() {
    tokio::time::timeout(LIMIT, async {
        let mut s = stage();
        // A real alert, posted by a member's replica through its ordinary path.
        s.collective.replicas[1]
            .execute(Request::Post(real_alert()))
            .unwrap();
        let ids: Vec<[u8; 32]> = s.collective.replicas[1]
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        let envelopes: Vec<WireItem> = s.collective.replicas[1]
            .fetch(SetKind::Envelopes, &ids)
            .unwrap()
            .into_iter()
            .map(|bytes| WireItem {
                kind: SetKind::Envelopes,
                bytes,
            })
            .collect();
        assert!(!envelopes.is_empty());
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let mut client = Client::new();
        client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[1]),
                collective_of(&s.collective.replicas[1]),
                &genesis_of(&s.collective.replicas[1]),
            )
            .await
            .unwrap();
        let n = u32::try_from(envelopes.len()).unwrap();
        assert_eq!(client.push(mbp, envelopes).await, Ok((n, 0)));
        let home = mb.stop().await;

        let needles: Vec<&[u8]> = vec![
            TEXT.as_bytes(),
            b"stairwell",
            PHONE.as_bytes(),
            b"7700900461",
            b"+447700900461",
            PLATE.as_bytes(),
            b"KX19QPW",
            CLIENT_NAME.as_bytes(),
            b"Thistlewood",
            b"heron",
            b"Ropewalk",
        ];
        let files = files_under(&home);
        assert!(files.len() > 3, "the store's files are there");
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == *needle),
                    "{} holds {:?}",
                    file.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_request_gets_nothing_and_fetch_serves_only_what_was_stored() {
    tokio::time::timeout(LIMIT, async {
        let s = stage();
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        let mut client = Client::new();
        client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&s.collective.replicas[1]),
                collective_of(&s.collective.replicas[1]),
                &genesis_of(&s.collective.replicas[1]),
            )
            .await
            .unwrap();
        let answer = client
            .request(mbp, &SyncRequest::Keys { epochs: Vec::new() })
            .await
            .unwrap();
        assert!(matches!(answer, SyncResponse::Items { items } if items.is_empty()));
        let ops = client.fetch_all(mbp, SetKind::Ops).await.unwrap();
        assert!(!ops.is_empty(), "the ops are served");
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

// ---- Benchmarks (docs/BENCHMARKS.md, "Mailbox"); run by hand with --release --ignored. ----

const BENCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// A bound mailbox home holding `n` sealed alert envelopes (and the collective's ops), made
/// directly in its store.
fn mailbox_with_alerts(n: usize) -> (Stage, std::time::Duration) {
    let mut s = stage();
    let mut store = BlindStore::open(
        &MailboxHome::new(s.mailbox_home.path()).db_dir(),
        StoreLimits {
            member_items_per_day: u32::MAX,
            member_bytes_per_day: u64::MAX,
            ..StoreLimits::default()
        },
    )
    .unwrap();
    let author = s.collective.replicas[1].identity().member_id();
    let mut forger = Forger::new(&mut s.collective.replicas[1]);
    let key = forger.write_key();
    let heads = forger.heads();
    let started = std::time::Instant::now();
    let base = now() - 86_400;
    for i in 0..n {
        let t = base + (i as u64 % 86_000);
        let item = forger.post(
            &key,
            heads.clone(),
            t,
            t + 30 * 86_400,
            lookout_tests::rogue::alert_content(&format!("benchmark alert {i}")),
        );
        assert_eq!(
            store
                .put(author, SetKind::Envelopes, &item.bytes, now())
                .unwrap(),
            Stored::New
        );
    }
    store.flush().unwrap();
    (s, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p lookout-tests --test mailbox -- --ignored --nocapture --exact mailbox_memory"]
async fn mailbox_memory() {
    let (s, made) = mailbox_with_alerts(100_000);
    let home = s.mailbox_home.path().to_path_buf();
    println!("stored 100,000 envelopes in {made:.2?}");
    for probe in [true, false] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "--nocapture",
                "mailbox_memory_probe",
            ])
            .env("LOOKOUT_BENCH_HOME", &home)
            .env("LOOKOUT_BENCH_EMPTY", if probe { "" } else { "1" })
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines().filter(|l| l.starts_with("mailbox")) {
            println!("{line}");
        }
    }
    println!(
        "mailbox home on disk: {:.1} MiB",
        dir_bytes(&home) as f64 / 1_048_576.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by mailbox_memory"]
async fn mailbox_memory_probe() {
    let Ok(home) = std::env::var("LOOKOUT_BENCH_HOME") else {
        return;
    };
    let empty = std::env::var("LOOKOUT_BENCH_EMPTY").is_ok_and(|v| !v.is_empty());
    let scratch = tempfile::tempdir().unwrap();
    let home = if empty {
        lookout_node::mailbox::init(scratch.path(), &[]).unwrap();
        scratch.path().to_path_buf()
    } else {
        std::path::PathBuf::from(home)
    };
    let before = rss_kib("VmRSS");
    let started = std::time::Instant::now();
    let mb = start_mailbox(&home, StoreLimits::default()).await;
    let load = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = mb.handle.status().await.unwrap();
    println!(
        "mailbox {} envelopes: RSS {} MiB after start (process before: {} MiB), peak {} MiB, start {load:.2?}",
        status.envelopes,
        rss_kib("VmRSS") / 1024,
        before / 1024,
        rss_kib("VmHWM") / 1024
    );
    mb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p lookout-tests --test mailbox -- --ignored --nocapture --exact mailbox_catch_up"]
async fn mailbox_catch_up() {
    tokio::time::timeout(BENCH_TIMEOUT, async {
        let (s, _) = mailbox_with_alerts(10_000);
        let mb = start_mailbox(s.mailbox_home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();
        for run in 0..3 {
            let mut client = Client::new();
            let started = std::time::Instant::now();
            client
                .admit(
                    mbp,
                    &mb.addr,
                    &signing_key(&s.collective.replicas[0]),
                    collective_of(&s.collective.replicas[0]),
                    &genesis_of(&s.collective.replicas[0]),
                )
                .await
                .unwrap();
            let admitted = started.elapsed();
            let items = client.fetch_all(mbp, SetKind::Envelopes).await.unwrap();
            let took = started.elapsed();
            let bytes: usize = items.iter().map(|i| i.bytes.len()).sum();
            assert_eq!(items.len(), 10_000);
            println!(
                "mailbox catch-up run {run}: 10,000 envelopes ({bytes} bytes) in {took:.2?} from dial (admission {admitted:.2?}), {:.0} envelopes/s",
                10_000.0 / took.as_secs_f64()
            );
        }
        mb.stop().await;
    })
    .await
    .expect("benchmark timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_mailbox_binds_to_the_collective_that_added_it_and_then_refuses_another() {
    tokio::time::timeout(LIMIT, async {
        let mut a = Collective::new(1, Policy::default());
        let mut b = Collective::new(0, Policy::default());
        let home = tempfile::tempdir().unwrap();
        let identity = lookout_node::mailbox::init(home.path(), &[]).unwrap();
        let code = lookout_node::mailbox::pairing_code(&identity, now()).unwrap();
        let mb = start_mailbox(home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();

        // Before A adds it, a member of B who got hold of the code offers B: provisional, but
        // the roster does not name the mailbox, so it does not bind.
        let secret = lookout_protocol::mailbox::MailboxPairing::from_code(&code)
            .unwrap()
            .bind_secret;
        let mut bc = Client::new();
        assert_eq!(
            bc.admit_binding(
                mbp,
                &mb.addr,
                &signing_key(&b.replicas[0]),
                collective_of(&b.replicas[0]),
                &genesis_of(&b.replicas[0]),
                Some(&secret),
            )
            .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Provisional)
        );
        // (B has no ops beyond its genesis: the push is empty.)
        bc.push(mbp, ops_of(&mut b.replicas[0])).await.unwrap();
        assert_eq!(mb.handle.status().await.unwrap().collective, None);
        // Nothing but ops while unbound.
        let alert = Forger::new(&mut b.replicas[0]).alert("not before binding");
        let refused = bc
            .request(mbp, &SyncRequest::Push { items: vec![alert] })
            .await;
        assert!(
            matches!(
                refused,
                Ok(SyncResponse::Ack { accepted: 0, .. }) | Ok(SyncResponse::Error { .. }) | Err(_)
            ),
            "{refused:?}"
        );
        assert!(
            matches!(bc.reserve(mbp, &mb.addr).await, RelayOutcome::Refused(_)),
            "no reservation while provisional"
        );

        // A's moderator adds it; its node (holding the bind secret) brings the ops: it binds
        // to A.
        a.replicas[0].mailbox_add(&code).unwrap();
        let kept = a.replicas[0]
            .mailbox_bind_secret(&lookout_protocol::MailboxId(identity.mailbox_id()))
            .unwrap();
        let mut ac = Client::new();
        assert_eq!(
            ac.admit_binding(
                mbp,
                &mb.addr,
                &signing_key(&a.replicas[0]),
                collective_of(&a.replicas[0]),
                &genesis_of(&a.replicas[0]),
                Some(&kept),
            )
            .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Provisional)
        );
        ac.push(mbp, ops_of(&mut a.replicas[0])).await.unwrap();
        let status = mb.handle.status().await.unwrap();
        assert_eq!(
            status.collective,
            Some(collective_of(&a.replicas[0]).short())
        );

        // Now a full member of A is admitted in full; B's member is turned away.
        let mut full = Client::new();
        assert_eq!(
            full.admit(
                mbp,
                &mb.addr,
                &signing_key(&a.replicas[1]),
                collective_of(&a.replicas[1]),
                &genesis_of(&a.replicas[0])
            )
            .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Full)
        );
        assert_eq!(full.reserve(mbp, &mb.addr).await, RelayOutcome::Granted);
        let mut late = Client::new();
        assert_eq!(
            late.admit(
                mbp,
                &mb.addr,
                &signing_key(&b.replicas[0]),
                collective_of(&b.replicas[0]),
                &genesis_of(&b.replicas[0])
            )
            .await,
            Err("the mailbox did not prove its key for this connection and our collective".into())
        );

        // The binding survives a restart.
        let home_path = mb.stop().await;
        let mb = start_mailbox(&home_path, StoreLimits::default()).await;
        assert_eq!(
            mb.handle.status().await.unwrap().collective,
            Some(collective_of(&a.replicas[0]).short())
        );

        // Removed by A: it stops serving, and says so.
        let id = hex::encode(identity.mailbox_id());
        a.replicas[0].mailbox_remove(&id).unwrap();
        assert!(
            a.replicas[0]
                .mailbox_bind_secret(&lookout_protocol::MailboxId(identity.mailbox_id()))
                .is_none(),
            "a removed mailbox's bind secret is forgotten"
        );
        let mut mod_client = Client::new();
        let mbp = mb.handle.peer_id();
        mod_client
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&a.replicas[0]),
                collective_of(&a.replicas[0]),
                &genesis_of(&a.replicas[0]),
            )
            .await
            .unwrap();
        let _ = mod_client.push(mbp, ops_of(&mut a.replicas[0])).await;
        // It passes the removing ops on to the members connected first (a short farewell),
        // then serves nobody.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !mb.handle.status().await.unwrap().removed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the mailbox knows it was removed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut after = Client::new();
        assert!(
            after
                .admit(
                    mbp,
                    &mb.addr,
                    &signing_key(&a.replicas[1]),
                    collective_of(&a.replicas[1]),
                    &genesis_of(&a.replicas[0])
                )
                .await
                .is_err(),
            "a removed mailbox admits no one"
        );
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

/// Finding 5 of the first review: anyone who reaches an unbound mailbox learns its key from the
/// `Accept`, founds a collective of their own whose roster names that key (a `ProposeMailbox`
/// carries no proof of possession) and offers it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_with_a_fake_collective_cannot_bind_an_unbound_mailbox() {
    tokio::time::timeout(LIMIT, async {
        let mut a = Collective::new(1, Policy::default());
        let mut evil = Collective::new(0, Policy::default());
        let home = tempfile::tempdir().unwrap();
        let identity = lookout_node::mailbox::init(home.path(), &[]).unwrap();
        let code = lookout_node::mailbox::pairing_code(&identity, now()).unwrap();
        let mb = start_mailbox(home.path(), StoreLimits::default()).await;
        let mbp = mb.handle.peer_id();

        // The stranger reads the mailbox key off an Accept and names it in its own roster.
        let accept = Client::new().open_only(mbp, &mb.addr).await.unwrap();
        let key: [u8; 32] = accept[33..65].try_into().unwrap();
        assert_eq!(key, identity.mailbox_id());
        let mut evil_ops = ops_of(&mut evil.replicas[0]);
        let mut forger = Forger::new(&mut evil.replicas[0]);
        let heads = forger.heads();
        let propose = forger.op(
            heads,
            lookout_protocol::membership::Action::ProposeMailbox {
                mailbox: key,
                addresses: vec!["/ip4/203.0.113.9/tcp/4001".into()],
            },
        );
        evil.replicas[0].ingest(&propose).unwrap();
        evil_ops.push(propose);
        // Without the bind secret, the stranger's own node offers nothing; with a guessed one
        // (or a hand-made proof), the mailbox refuses the genesis.
        let mut stranger = Client::new();
        let offered = stranger
            .admit(
                mbp,
                &mb.addr,
                &signing_key(&evil.replicas[0]),
                collective_of(&evil.replicas[0]),
                &genesis_of(&evil.replicas[0]),
            )
            .await;
        assert!(offered.is_err(), "{offered:?}");
        let mut guesser = Client::new();
        let offered = guesser
            .admit_binding(
                mbp,
                &mb.addr,
                &signing_key(&evil.replicas[0]),
                collective_of(&evil.replicas[0]),
                &genesis_of(&evil.replicas[0]),
                Some(&[0x5a; 32]),
            )
            .await;
        assert!(offered.is_err(), "{offered:?}");
        for client in [&mut stranger, &mut guesser] {
            let pushed = client.push(mbp, evil_ops.clone()).await;
            assert!(
                !matches!(pushed, Ok((n, _)) if n > 0),
                "an unadmitted stranger pushed ops: {pushed:?}"
            );
        }
        assert_eq!(
            mb.handle.status().await.unwrap().collective,
            None,
            "a stranger bound the mailbox to a collective of its own"
        );

        // The real moderator's node, which kept the bind secret from the pairing code, binds it.
        a.replicas[0].mailbox_add(&code).unwrap();
        let mailbox_id = lookout_protocol::MailboxId(identity.mailbox_id());
        let secret = a.replicas[0].mailbox_bind_secret(&mailbox_id).unwrap();
        assert_eq!(*secret, *identity.bind_secret);
        assert!(a.replicas[1].mailbox_bind_secret(&mailbox_id).is_none());
        let mut moderator = Client::new();
        assert_eq!(
            moderator
                .admit_binding(
                    mbp,
                    &mb.addr,
                    &signing_key(&a.replicas[0]),
                    collective_of(&a.replicas[0]),
                    &genesis_of(&a.replicas[0]),
                    Some(&secret),
                )
                .await,
            Ok(lookout_node::net::mailbox_admission::Welcome::Provisional)
        );
        moderator
            .push(mbp, ops_of(&mut a.replicas[0]))
            .await
            .unwrap();
        assert_eq!(
            mb.handle.status().await.unwrap().collective,
            Some(collective_of(&a.replicas[0]).short())
        );
        mb.stop().await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_files_hold_no_member_or_collective_names() {
    tokio::time::timeout(LIMIT, async {
        let s = stage();
        let home = s.mailbox_home.path();
        let mb = start_mailbox(home, StoreLimits::default()).await;
        mb.stop().await;
        for file in files_under(home) {
            let bytes = std::fs::read(&file).unwrap();
            for needle in NAMES
                .iter()
                .map(|n| n.as_bytes())
                .chain([&b"Test Collective"[..]])
            {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds {:?}",
                    file.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
    })
    .await
    .expect("timed out");
}

/// Review finding: a member's node emptied its outbox (its own posts not yet known to have
/// reached a member) when a mailbox completed a sync session with it or acknowledged a push, so
/// a hostile mailbox could take an alert, drop it, and the alert was never sent again. Only a
/// sync with a member is delivery: the alerts stay unsent while the mailbox alone holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_ack_is_not_delivery() {
    tokio::time::timeout(LIMIT, async {
        // A (the founder) and B; the roster names a mailbox at a loopback address chosen now.
        let mut collective = Collective::new(1, Policy::default());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let mailbox_home = tempfile::tempdir().unwrap();
        let identity =
            lookout_node::mailbox::init(mailbox_home.path(), std::slice::from_ref(&addr)).unwrap();
        let code = lookout_node::mailbox::pairing_code(&identity, now()).unwrap();
        collective.replicas[0].mailbox_add(&code).unwrap();
        collective.share_state();
        {
            // Bound, with every op (the roster naming it included), as a first visit leaves it.
            let mut store = BlindStore::open(
                &MailboxHome::new(mailbox_home.path()).db_dir(),
                StoreLimits::default(),
            )
            .unwrap();
            store
                .bind(
                    collective.replicas[0]
                        .membership()
                        .unwrap()
                        .genesis()
                        .clone(),
                )
                .unwrap();
            let founder = collective.replicas[0].identity().member_id();
            for item in ops_of(&mut collective.replicas[0]) {
                store
                    .put(founder, SetKind::Ops, &item.bytes, now())
                    .unwrap();
            }
            store.flush().unwrap();
        }
        let config = lookout_node::mailbox::MailboxConfig {
            listen: vec![addr.clone()],
            ..lookout_node::mailbox::MailboxConfig::default()
        };
        let (mb, mb_task) = lookout_node::mailbox::start(mailbox_home.path(), config)
            .await
            .unwrap();

        // A posts offline: the alert waits in its outbox.
        let b_replica = collective.replicas.pop().unwrap();
        let mut a_replica = collective.replicas.pop().unwrap();
        a_replica
            .post(draft("offline alert", "07700 900611"))
            .unwrap();
        a_replica.flush().unwrap();
        assert!(a_replica.has_unconfirmed_posts());

        // A's node reaches only the mailbox: the first sync carries the alert there.
        let a = start_node(a_replica).await;
        eventually("the mailbox stores the offline alert", || async {
            (mb.status().await.unwrap().envelopes >= 1).then_some(())
        })
        .await;
        eventually("A completes a sync with the mailbox", || async {
            a.status().await.last_sync.map(|_| ())
        })
        .await;
        assert_eq!(a.peers().await, 0, "A reaches no member");
        // A second alert, posted while admitted: the node pushes it and the mailbox acks.
        let pushed = a.post(draft("pushed alert", "07700 900612")).await;
        eventually("the mailbox acknowledges the pushed alert", || async {
            (mb.status().await.unwrap().envelopes >= 2).then_some(())
        })
        .await;
        let before = a.status().await;
        assert!(
            before.outbox >= 2,
            "a mailbox's sync or ack emptied the outbox: {} unsent",
            before.outbox
        );
        never(
            "A's outbox empties with only the mailbox",
            Duration::from_secs(3),
            || async { a.status().await.outbox < 2 },
        )
        .await;
        let alerts = a.alert_ids().await;
        assert_eq!(alerts.len(), 2);

        // B comes up; A syncs with a member: now the alerts are delivered.
        let b = start_node(b_replica).await;
        connect(&a, &b).await;
        eventually("A's outbox empties after a sync with B", || async {
            (a.status().await.outbox == 0).then_some(())
        })
        .await;
        for id in &alerts {
            eventually("B holds A's alerts", || async {
                b.has_alert(id).await.then_some(())
            })
            .await;
        }
        assert!(b.has_alert(&pushed).await);
        b.stop().await;
        a.stop().await;
        mb.shutdown().await.unwrap();
        let _ = mb_task.await;
    })
    .await
    .expect("timed out");
}

/// Review finding 4: a moderator proposes a "mailbox" whose address is a member's node. Every
/// member dials it as a mailbox, the admission fails (a member's node does not speak the
/// mailbox protocol), and the node used to hang up on every connection with that transport id,
/// its proven member connection included, again at every retry. Only the connection opened for
/// the attempt may close: the member stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_address_that_is_a_member_does_not_cut_that_member() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, nodes) = Collective::new(1, Policy::default()).start().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        eventually("A and B connected", || async {
            (a.peers().await == 1 && b.peers().await == 1).then_some(())
        })
        .await;
        // The founder (a moderator) names B's own address as a mailbox's.
        let b_addr: libp2p::Multiaddr = b.status().await.listening[0].parse().unwrap();
        let mailbox_home = tempfile::tempdir().unwrap();
        let identity =
            lookout_node::mailbox::init(mailbox_home.path(), std::slice::from_ref(&b_addr))
                .unwrap();
        let code = lookout_node::mailbox::pairing_code(&identity, now()).unwrap();
        a.execute(Request::MailboxAdd { code }).await;
        // A tries it (the link leaves `dialing`/`connected` once the admission failed)...
        eventually("A tried the mailbox address", || async {
            let status = a.status().await;
            status
                .mailboxes
                .first()
                .filter(|m| {
                    m.address.is_some() && (m.state == "refused" || m.state == "unreachable")
                })
                .map(|_| ())
        })
        .await;
        // ...and keeps B through every retry (back-off 1, 2, 4 s).
        never(
            "A loses its connection with B",
            Duration::from_secs(8),
            || async { a.peers().await == 0 || b.peers().await == 0 },
        )
        .await;
        for node in nodes {
            node.stop().await;
        }
    })
    .await
    .expect("timed out");
}

/// Review finding 6: a moderator chooses the mailboxes and their addresses, and every member
/// dials them. The roster holds at most 8 (`mailbox add` of a ninth is refused with the reason),
/// and roster addresses obey the dial policy: a private-range address is not dialled on a
/// network where the node did not learn it (here: a node on loopback only never dials
/// `10.255.0.1`), while loopback ones are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_mailboxes_are_capped_and_obey_the_dial_policy() {
    use lookout_protocol::mailbox::MailboxPairing;
    tokio::time::timeout(LIMIT, async {
        let mut collective = Collective::new(1, Policy::default());
        let founder = &mut collective.replicas[0];
        let code = |addr: String| {
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let id = hex::encode(&key.verifying_key().to_bytes()[..8]);
            let code = MailboxPairing::create(&key, vec![addr], [7; 32], now())
                .unwrap()
                .to_code();
            (id, code)
        };
        let (private_id, private_code) = code("/ip4/10.255.0.1/tcp/4001".to_owned());
        founder.mailbox_add(&private_code).unwrap();
        for _ in 0..7 {
            // A loopback port nobody listens on: dialled, refused at once.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            founder
                .mailbox_add(&code(format!("/ip4/127.0.0.1/tcp/{port}")).1)
                .unwrap();
        }
        let ninth = founder.mailbox_add(&code("/ip4/127.0.0.1/tcp/9".to_owned()).1);
        let error = ninth.expect_err("a ninth mailbox was added");
        assert!(
            error.to_string().contains("already has 8 mailboxes"),
            "{error}"
        );
        assert_eq!(
            founder.membership().unwrap().roster().mailboxes().count(),
            8
        );

        let a = start_node(collective.replicas.remove(0)).await;
        eventually("the loopback mailboxes are dialled", || async {
            let status = a.status().await;
            let dialled = status
                .mailboxes
                .iter()
                .filter(|m| m.id != private_id && m.address.is_some())
                .count();
            (status.mailboxes.len() == 8 && dialled == 7).then_some(())
        })
        .await;
        never(
            "the private-range mailbox address is dialled off its network",
            Duration::from_secs(3),
            || async {
                a.status()
                    .await
                    .mailboxes
                    .iter()
                    .any(|m| m.id == private_id && m.address.is_some())
            },
        )
        .await;
        a.stop().await;
    })
    .await
    .expect("timed out");
}

/// Review 2 finding 1: with k = 2, a rogue moderator proposes the real mailbox's key with an
/// address she controls (the op carries no mailbox signature over its addresses). The honest
/// moderator then pastes the genuine pairing code: her node must not approve the rogue's
/// proposal (every member would dial the rogue's address and never the mailbox), but refuse,
/// naming both address lists. The rogue's address never reaches the roster, and the honest
/// moderator's node keeps no bind secret for the refused code.
#[test]
fn a_second_moderator_never_approves_addresses_she_did_not_paste() {
    use lookout_protocol::mailbox::MailboxPairing;
    use lookout_protocol::membership::Action;
    use lookout_protocol::MailboxId;
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    let mut collective = Collective::named(&["ana", "rogue"], policy);
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let genuine = "/ip4/203.0.113.7/tcp/4001".to_owned();
    let rogue_addr = "/ip4/198.51.100.66/tcp/443".to_owned();
    let code = MailboxPairing::create(&key, vec![genuine.clone()], [7; 32], now())
        .unwrap()
        .to_code();
    let mailbox = key.verifying_key().to_bytes();
    let proposal = {
        let mut rogue = Forger::new(&mut collective.replicas[1]);
        let heads = rogue.heads();
        rogue.op(
            heads,
            Action::ProposeMailbox {
                mailbox,
                addresses: vec![rogue_addr.clone()],
            },
        )
    };
    let ana = &mut collective.replicas[0];
    ana.ingest(&proposal).unwrap();
    ana.flush().unwrap();
    assert_eq!(ana.membership().unwrap().roster().pending().len(), 1);

    let result = ana.mailbox_add(&code);
    let roster = ana.membership().unwrap().roster();
    let admitted: Vec<Vec<String>> = roster.mailboxes().map(|m| m.addresses.clone()).collect();
    assert!(
        admitted.iter().all(|a| !a.contains(&rogue_addr)),
        "the genuine code approved the rogue's address: {admitted:?}"
    );
    let error = result.expect_err("a proposal with other addresses was approved");
    let text = error.to_string();
    assert!(
        text.contains(&rogue_addr) && text.contains(&genuine),
        "the refusal names both address lists: {text}"
    );
    assert!(ana.mailbox_bind_secret(&MailboxId(mailbox)).is_none());
    // The pending proposal shows its addresses in `mailbox list`, so a moderator sees them.
    let list = ana.mailboxes().unwrap();
    assert_eq!(list.pending.len(), 1);
    assert_eq!(list.pending[0].addresses, vec![rogue_addr]);
}

/// Review 2 finding 5: the networks each roster mailbox address was first seen on are kept in
/// the sealed store across a restart (the policy side is
/// `a_private_mailbox_address_is_not_dialled_after_a_restart_on_another_network` in
/// `node/src/dial.rs`).
#[test]
fn mailbox_networks_survive_a_reopen() {
    let mut collective = Collective::new(0, Policy::default());
    let home = collective.replicas[0].home().to_path_buf();
    let entries = vec![
        (
            "/ip4/192.168.1.5/tcp/4001".to_owned(),
            "192.168.1.57".to_owned(),
        ),
        ("/ip4/203.0.113.7/tcp/4001".to_owned(), String::new()),
    ];
    assert!(collective.replicas[0].mailbox_networks().is_empty());
    collective.replicas[0]
        .set_mailbox_networks(&entries)
        .unwrap();
    collective.replicas.remove(0).close().unwrap();
    let reopened = reopen(&home);
    assert_eq!(reopened.mailbox_networks(), entries);
}
