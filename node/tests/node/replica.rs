//! The replica without the network: found, enrol, post, sync by hand, revoke, reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_node::api::*;
use lookout_node::replica::{Ingested, Replica, SetKind, WireItem};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

const PASS: &[u8] = b"test passphrase";

fn draft(description: &str, phone: &str) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: description.into(),
        phones: vec![phone.into()],
        phones_as_typed: false,
        plates: vec!["ab12 cde".into()],
        names: vec![],
        handles: vec![],
        physical: String::new(),
        area: "Station Road".into(),
        incident_time: None,
        expires_in_days: None,
        language: "en".into(),
        on_behalf: false,
    }
}

/// Copy every item `from` has that `to` lacks, in sync order.
fn sync(from: &mut Replica, to: &mut Replica) -> usize {
    let mut moved = 0;
    for kind in SetKind::ORDER {
        let ids: Vec<[u8; 32]> = from.sync_items(kind).iter().map(|i| i.id).collect();
        for bytes in from.fetch(kind, &ids).unwrap() {
            if to.ingest(&WireItem { kind, bytes }).unwrap() == Ingested::Accepted {
                moved += 1;
            }
        }
    }
    to.retry_held().unwrap();
    moved
}

#[test]
fn found_enrol_post_sync_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _cert) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    ana.set_listen_addresses(&["/ip4/127.0.0.1/tcp/4001".into()])
        .unwrap();
    assert!(ana.status().is_moderator);

    let (mut bea, bea_cert) =
        Replica::create(&dir.path().join("bea"), PASS, "Bea", KdfParams::TESTING).unwrap();
    let request = bea.join_request().to_code();
    let view = ana.approve(&request).unwrap();
    assert!(view.done);
    let invite = view.invite.expect("invite for admitted member");
    bea.join(&invite).unwrap();
    assert!(
        !bea.status().is_member,
        "not a member until membership syncs"
    );
    sync(&mut ana, &mut bea);
    assert!(bea.status().is_member);

    let id = ana.post(draft("hit a worker", "07700 900123")).unwrap();
    sync(&mut ana, &mut bea);
    let alerts = bea.alerts(&AlertFilter::default()).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].id, id.to_hex());
    assert_eq!(alerts[0].phones, vec!["+447700900123".to_string()]);
    let hits = bea.check("+44 7700 900123").unwrap();
    assert_eq!(hits.len(), 1);
    assert!(bea.check("AB12CDE").unwrap().len() == 1);
    assert!(bea.check("07700 900999").unwrap().is_empty());

    // Bea corroborates; Ana retracts.
    bea.execute(Request::Corroborate {
        id: id.to_hex()[..8].into(),
        note: "me too".into(),
    })
    .unwrap();
    sync(&mut bea, &mut ana);
    assert_eq!(
        ana.alerts(&AlertFilter::default()).unwrap()[0].corroborations,
        1
    );
    let err = bea
        .execute(Request::Retract {
            id: id.to_hex(),
            reason: "x".into(),
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotModerator, "{err}");

    // Revocation: Ana removes Bea; posts afterwards are under an epoch Bea never gets.
    let bea_id = bea.identity().member_id().to_hex();
    let before = bea.status().epoch.clone();
    let revoked = ana
        .execute(Request::Revoke {
            member: bea_id[..10].into(),
            reason: "phone seized".into(),
        })
        .unwrap();
    let Response::Revoked {
        epoch: Some(new_epoch),
        ..
    } = revoked
    else {
        panic!("no rotation")
    };
    assert_ne!(Some(new_epoch), before);
    ana.post(draft("after removal", "07700 900555")).unwrap();
    sync(&mut ana, &mut bea);
    let seen = bea.alerts(&AlertFilter::default()).unwrap();
    assert!(seen.iter().all(|a| a.description != "after removal"));
    assert!(bea.status().is_removed);
    let err = bea.post(draft("x", "1")).unwrap_err();
    assert_eq!(err.code, ErrorCode::Revoked);
    let _ = bea_cert;

    // Everything survives a reopen; a wrong passphrase is refused.
    let home = ana.home().to_path_buf();
    ana.close().unwrap();
    assert_eq!(
        Replica::open(&home, b"nope").err().unwrap().code,
        ErrorCode::WrongPassphrase
    );
    // A missing secrets file with the right passphrase is damage, never "wrong passphrase"
    // (whose advice is to wipe: Trial 12's T12-8); put back, the store opens again.
    let secrets = home.join("secrets");
    let kept = std::fs::read(&secrets).unwrap();
    std::fs::remove_file(&secrets).unwrap();
    let err = Replica::open(&home, PASS).err().unwrap();
    assert_eq!(err.code, ErrorCode::Internal, "{err:?}");
    assert!(err.message.contains("secrets file is missing"), "{err:?}");
    assert!(err.message.contains("do not wipe"), "{err:?}");
    std::fs::write(&secrets, kept).unwrap();
    let ana = Replica::open(&home, PASS).unwrap();
    let alerts = ana.alerts(&AlertFilter::default()).unwrap();
    assert_eq!(alerts.len(), 2);
    let first = alerts.iter().find(|a| a.id == id.to_hex()).unwrap();
    assert_eq!(first.corroborations, 1, "references are rebuilt on reopen");
    let removed = ana.members().unwrap().removed;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].name, "Bea", "removed members keep their name");
    // A retracted alert is no longer counted live by `status`, as `alerts` no longer lists it
    // (Trial 12's T12-18), and it says who withdrew it (T12-15).
    let mut ana = ana;
    assert_eq!(ana.status().alerts, 2);
    ana.execute(Request::Retract {
        id: id.to_hex(),
        reason: String::new(),
    })
    .unwrap();
    assert_eq!(ana.status().alerts, 1);
    assert_eq!(ana.alerts(&AlertFilter::default()).unwrap().len(), 1);
    let all = ana
        .alerts(&AlertFilter {
            include_retracted: true,
            ..AlertFilter::default()
        })
        .unwrap();
    let withdrawn = all.iter().find(|a| a.id == id.to_hex()).unwrap();
    assert_eq!(withdrawn.retracted.as_deref(), Some(""));
    assert_eq!(withdrawn.retracted_by.as_deref(), Some("Ana"));
    // A code of the wrong kind pasted into approve says so.
    ana.close().unwrap();
    let err = ana_approve_invite(&home);
    assert_eq!(err, ErrorCode::BadCode);
}

#[test]
fn non_member_items_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _) =
        Replica::create(&dir.path().join("a"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("C", Policy::default()).unwrap();
    for kind in SetKind::ORDER {
        let outcome = ana
            .ingest(&WireItem {
                kind,
                bytes: vec![1, 2, 3],
            })
            .unwrap();
        assert!(outcome.is_rejected(), "{kind:?}: {outcome:?}");
    }
    // A post by an outsider who somehow holds nothing: cannot even decrypt -> held, not accepted.
    let (mut eve, _) =
        Replica::create(&dir.path().join("e"), PASS, "Eve", KdfParams::TESTING).unwrap();
    eve.create_collective("Evil", Policy::default()).unwrap();
    let id = eve.post(draft("fake", "07700 900000")).unwrap();
    let bytes = eve.fetch(SetKind::Envelopes, &[id.0]).unwrap().remove(0);
    let outcome = ana
        .ingest(&WireItem {
            kind: SetKind::Envelopes,
            bytes,
        })
        .unwrap();
    assert!(!matches!(outcome, Ingested::Accepted), "{outcome:?}");
    assert!(ana.alerts(&AlertFilter::default()).unwrap().is_empty());
}

fn ana_approve_invite(home: &std::path::Path) -> ErrorCode {
    let mut ana = Replica::open(home, PASS).unwrap();
    let invite = ana.invite_code().unwrap();
    ana.approve(&invite).unwrap_err().code
}

/// Follow the pages of a listing to the end through the control requests.
/// A listing of n items in pages of 3 takes at least ceil(n / 3) pages (one more when the last
/// full page cannot tell it is the last).
fn all_pages(ana: &mut Replica, request: impl Fn(Option<String>) -> Request) -> Vec<AlertView> {
    let mut out = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let Response::AlertsPage { alerts, next } = ana.execute(request(after.take())).unwrap()
        else {
            panic!("not a page");
        };
        assert!(alerts.len() <= 3);
        out.extend(alerts);
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert!(
        pages >= out.len().div_ceil(3),
        "{pages} pages for {}",
        out.len()
    );
    assert!(pages > 1, "a listing longer than a page took {pages} page");
    out
}

#[test]
fn alerts_and_check_page_through_the_same_listing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _cert) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    for i in 0..8 {
        let phone = if i % 4 == 3 {
            "07700 900999"
        } else {
            "07700 900123"
        };
        ana.post(draft(&format!("alert {i}"), phone)).unwrap();
    }
    let whole = ana.alerts(&AlertFilter::default()).unwrap();
    assert_eq!(whole.len(), 8);
    let paged = all_pages(&mut ana, |after| Request::AlertsPage {
        filter: AlertFilter::default(),
        after,
        limit: 3,
    });
    assert_eq!(paged, whole);
    let whole = ana.check("07700 900123").unwrap();
    assert_eq!(whole.len(), 6);
    let paged = all_pages(&mut ana, |after| Request::CheckPage {
        term: "07700 900123".into(),
        after,
        limit: 3,
    });
    assert_eq!(paged, whole);
    let err = ana
        .execute(Request::AlertsPage {
            filter: AlertFilter::default(),
            after: Some("not a cursor".into()),
            limit: 3,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
}

/// Every epoch key `replica`'s member opens from the deliveries it holds.
fn epoch_keys(
    replica: &mut Replica,
) -> std::collections::BTreeMap<lookout_protocol::EpochId, lookout_protocol::epoch::EpochKey> {
    let collective = replica.membership().unwrap().collective();
    let ids: Vec<[u8; 32]> = replica
        .sync_items(SetKind::Deliveries)
        .iter()
        .map(|i| i.id)
        .collect();
    replica
        .fetch(SetKind::Deliveries, &ids)
        .unwrap()
        .iter()
        .filter_map(|bytes| {
            let delivery = lookout_protocol::epoch::KeyDelivery::decode(bytes, collective).unwrap();
            delivery.open(replica.identity())?.ok()
        })
        .map(|key| (key.id(), key))
        .collect()
}

/// A batch of envelopes from a sync goes through one batched signature check; a post in it
/// whose signature is not its author's (here: a copy of a member's alert, re-dated and signed
/// by another key) is refused, and exactly it: every honest post beside it is taken in, first,
/// middle or last.
#[test]
fn one_forged_signature_in_an_ingested_batch_refuses_exactly_that_post() {
    use lookout_protocol::envelope;
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let (mut bea, _) =
        Replica::create(&dir.path().join("bea"), PASS, "Bea", KdfParams::TESTING).unwrap();
    let view = ana.approve(&bea.join_request().to_code()).unwrap();
    bea.join(&view.invite.unwrap()).unwrap();
    sync(&mut ana, &mut bea);
    let collective = bea.membership().unwrap().collective();
    let keys = epoch_keys(&mut bea);
    let stranger = lookout_protocol::identity::Identity::generate_at(
        &mut rand::rngs::OsRng,
        lookout_node::replica::now(),
    );
    let mut held = 0;
    for bad in [0, 3, 7] {
        let ids: Vec<[u8; 32]> = (0..8)
            .map(|i| bea.post(draft(&format!("batch {bad} post {i}"), "07700 900321")))
            .map(|id| id.unwrap().0)
            .collect();
        let mut items: Vec<WireItem> = bea
            .fetch(SetKind::Envelopes, &ids)
            .unwrap()
            .into_iter()
            .map(|bytes| WireItem {
                kind: SetKind::Envelopes,
                bytes,
            })
            .collect();
        let mut body = envelope::open(&items[bad].bytes, collective, |e| keys.get(e))
            .unwrap()
            .body;
        body.timestamp -= 1;
        let key = keys.get(&body.epoch).unwrap();
        let author = body.author;
        let forged =
            envelope::seal_signed_with(author, key, body, &mut rand::rngs::OsRng, |inner| {
                stranger.sign(envelope::INNER_SIG_CONTEXT, inner)
            })
            .unwrap();
        items[bad].bytes = forged.bytes;
        let outcomes = ana.ingest_many(&items).unwrap();
        for (i, outcome) in outcomes.iter().enumerate() {
            if i == bad {
                assert_eq!(
                    *outcome,
                    Ingested::Rejected(lookout_protocol::replica::Refusal::BadSignature(
                        SetKind::Envelopes
                    )),
                    "the forged post, at {bad}"
                );
            } else {
                assert_eq!(
                    *outcome,
                    Ingested::Accepted,
                    "post {i} beside a forged one at {bad}"
                );
            }
        }
        held += 7;
        assert_eq!(ana.alerts(&AlertFilter::default()).unwrap().len(), held);
    }
}

/// The collective secret is kept sealed in the secrets file: a reopened device still shows every
/// name and can still invite; the invite carries the same secret; the emergency wipe removes the
/// file with everything else. No name is in the clear in any file of the home.
#[test]
fn the_collective_secret_survives_reopening_and_goes_with_the_wipe() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    let (mut ana, _) = Replica::create(&home, PASS, "Anastasia", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift Collective", Policy::default())
        .unwrap();
    let (mut bea, _) = Replica::create(
        &dir.path().join("bea"),
        PASS,
        "Beatrice",
        KdfParams::TESTING,
    )
    .unwrap();
    let view = ana.approve(&bea.join_request().to_code()).unwrap();
    let invite = lookout_protocol::invite::Invite::from_code(&view.invite.unwrap()).unwrap();
    assert_eq!(Some(&invite.secret), ana.collective_secret());
    assert_eq!(
        ana.status().collective.as_deref(),
        Some("Night Shift Collective")
    );
    ana.flush().unwrap();
    drop(ana);
    let ana = Replica::open(&home, PASS).unwrap();
    assert_eq!(Some(&invite.secret), ana.collective_secret());
    let names: Vec<String> = ana
        .members()
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.contains(&"Anastasia".to_owned()), "{names:?}");
    assert!(names.contains(&"Beatrice".to_owned()), "{names:?}");
    bea.join(&invite.to_code()).unwrap();
    for file in walk(&home) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [&b"Beatrice"[..], b"Night Shift Collective"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a name",
                file.display()
            );
        }
    }
    assert!(home.join("secrets").exists());
    ana.wipe().unwrap();
    assert!(!home.join("secrets").exists());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A reachability announcement the node makes on its own (outside any command) leaves no
/// pending fsync behind for the next, unrelated command: before `take_unflushed`, the next
/// command's answer waited for a group commit and, if that fsync failed, came back as "the
/// alert was sent …" (REVIEW3 P1).
#[test]
fn a_reachability_announcement_leaves_no_fsync_owed_to_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _cert) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let announced = ana
        .announce_reachability(&["/ip4/192.0.2.7/tcp/4001".into()])
        .unwrap();
    assert!(announced.is_some(), "a member announces where she is");
    let (answer, unflushed) = ana.execute_unflushed(Request::Members);
    assert!(answer.is_ok());
    assert!(!unflushed, "a members listing owes no fsync");
    let (_, unflushed) =
        ana.execute_unflushed(Request::Post(draft("hit a worker", "07700 900123")));
    assert!(unflushed, "a post owes one");
}

/// The node's write-behind (`node/src/replica/held.rs`): with holding on (the event loop turns
/// it on around a `post` and a gossiped post), an accepted post is shown (its event is out) and
/// queued for gossip before any of its store writes; `write_held` makes them all, and they
/// survive a reopen (the post, the poster's outbox mark). With holding off, a post is written
/// at once.
#[test]
fn a_held_post_is_shown_before_its_writes_and_written_by_write_held() {
    let dir = tempfile::tempdir().unwrap();
    let (ana_home, bea_home) = (dir.path().join("ana"), dir.path().join("bea"));
    let (mut ana, _) = Replica::create(&ana_home, PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let (mut bea, _) = Replica::create(&bea_home, PASS, "Bea", KdfParams::TESTING).unwrap();
    let view = ana.approve(&bea.join_request().to_code()).unwrap();
    bea.join(&view.invite.unwrap()).unwrap();
    sync(&mut ana, &mut bea);
    assert!(bea.status().is_member);
    let _ = (ana.take_events(), bea.take_events(), ana.take_outgoing());
    let shown = |events: Vec<Event>| events.iter().any(|e| matches!(e, Event::Alert(_)));
    let listed = |r: &Replica| r.alerts(&AlertFilter::default()).unwrap().len();

    // Ana's own post: shown and queued for gossip, nothing of it written yet.
    ana.hold_post_writes(true);
    let (answer, unflushed) = ana.execute_unflushed(Request::Post(draft("held", "07700 900123")));
    ana.hold_post_writes(false);
    assert!(answer.is_ok() && unflushed, "{answer:?}");
    assert!(ana.holds_writes());
    assert!(shown(ana.take_events()), "shown before it is written");
    let outgoing = ana.take_outgoing();
    assert_eq!(outgoing.len(), 1, "queued for gossip before it is written");
    assert_eq!(listed(&ana), 0, "nothing of the post is in the store yet");
    assert!(ana.write_held().unwrap());
    assert!(!ana.holds_writes());
    assert!(!ana.write_held().unwrap(), "nothing is written twice");
    assert_eq!(listed(&ana), 1);

    // Bea takes it from gossip: checked, shown, then written.
    let (outcome, writes) = bea.validate(&outgoing[0]);
    assert_eq!(outcome, Ingested::Accepted);
    bea.hold_post_writes(true);
    bea.accept_post(writes).unwrap();
    bea.hold_post_writes(false);
    assert!(shown(bea.take_events()));
    assert_eq!(listed(&bea), 0);
    assert!(bea.write_held().unwrap());
    assert_eq!(listed(&bea), 1);

    // Durable once flushed: both still hold it after a reopen, and Ana's outbox still has it
    // (no member has synced with her since).
    ana.flush().unwrap();
    bea.flush().unwrap();
    ana.close().unwrap();
    bea.close().unwrap();
    let mut ana = Replica::open(&ana_home, PASS).unwrap();
    let bea = Replica::open(&bea_home, PASS).unwrap();
    assert_eq!(listed(&ana), 1);
    assert_eq!(listed(&bea), 1);
    assert!(
        ana.outbox().contains(&outgoing[0]),
        "the post's outbox mark was written with it"
    );

    // Holding off (every other path): written at once.
    let (answer, _) = ana.execute_unflushed(Request::Post(draft("at once", "07700 900456")));
    assert!(answer.is_ok());
    assert!(!ana.holds_writes());
    assert_eq!(listed(&ana), 2);
}

/// SECURITY.md, H1: Bea floods more membership ops for one day than the quota; Ana keeps 255
/// of her chain and op 256 (waiting for its parent), so op 255, which other replicas keep, is
/// refused over the quota here. Ana's own removal of Bea, written (elsewhere) on op 255, joins
/// read as naming op 254, and Bea is removed. After a reopen (the set of refused ops is in
/// memory only) the removal's reading is read back from the store: Bea is still removed.
#[test]
fn an_op_read_through_a_refused_op_stays_joined_after_a_reopen() {
    use lookout_protocol::membership::{Action, Op};
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _cert) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let (bea, _bea_cert) =
        Replica::create(&dir.path().join("bea"), PASS, "Bea", KdfParams::TESTING).unwrap();
    assert!(ana.approve(&bea.join_request().to_code()).unwrap().done);
    let log = ana.membership().unwrap();
    let co = log.collective();
    let mut parent = log.roster().heads()[0];
    let now = lookout_node::replica::now();
    let day = now - now % 86_400;
    let step = (now - day) / 400;
    let run: Vec<Op> = (0..300u64)
        .map(|i| {
            let op = Op::create(
                bea.identity(),
                co,
                vec![parent],
                day + i * step,
                Action::RotateAgreementKey {
                    identity: bea.identity().public(),
                },
            )
            .unwrap();
            parent = op.id();
            op
        })
        .collect();
    let put = |ana: &mut Replica, op: &Op| {
        ana.ingest(&WireItem {
            kind: SetKind::Ops,
            bytes: op.encoded().to_vec(),
        })
        .unwrap()
    };
    for op in &run[..255] {
        assert_eq!(put(&mut ana, op), Ingested::Accepted);
    }
    assert_eq!(put(&mut ana, &run[256]), Ingested::Held);
    assert_ne!(put(&mut ana, &run[255]), Ingested::Accepted);
    assert!(ana.membership().unwrap().contains(&run[256].id()));
    let reason = ana
        .text_key()
        .unwrap()
        .seal(
            lookout_protocol::text::TextField::RemovalReason,
            &ana.identity().member_id(),
            &bea.identity().member_id(),
            "flood",
            &mut rand::rngs::OsRng,
        )
        .unwrap();
    let removal = Op::create(
        ana.identity(),
        co,
        vec![run[255].id()],
        now,
        Action::Remove {
            member: bea.identity().member_id(),
            reason,
        },
    )
    .unwrap();
    assert_eq!(put(&mut ana, &removal), Ingested::Accepted);
    let removed = |ana: &Replica| {
        ana.membership()
            .unwrap()
            .roster()
            .is_removed(&bea.identity().member_id())
    };
    assert!(removed(&ana));
    let home = ana.home().to_path_buf();
    ana.close().unwrap();
    let ana = Replica::open(&home, PASS).unwrap();
    let log = ana.membership().unwrap();
    assert!(log.contains(&removal.id()), "the removal is waiting again");
    assert_eq!(log.read_parents(&removal.id()), Some(&[run[254].id()][..]));
    assert!(removed(&ana));
}

/// Review 21: a join request's name is chosen by whoever made the code, and 64 bytes hold
/// "Ana (3fa9c2, fingerprint …)". The English subject of a join waiting for approvals (what
/// `lookout pending` shows) said "name (id, fingerprint …)", so a code swapped on its way
/// showed the real member's fingerprint first. The real fingerprint now comes first.
#[test]
fn a_waiting_join_shows_its_fingerprint_before_the_name_its_maker_chose() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    let (cid, _) =
        Replica::create(&dir.path().join("cid"), PASS, "Cid", KdfParams::TESTING).unwrap();
    let policy = Policy {
        approvals_required: 2,
        ..Policy::default()
    };
    ana.create_collective_with("Night Shift", policy, vec![cid.join_request()])
        .unwrap();
    let crafted = "Bea (3fa9c2, fingerprint 11111 22222 33333 44444)";
    assert!(crafted.len() <= 64);
    let (mallory, _) =
        Replica::create(&dir.path().join("m"), PASS, crafted, KdfParams::TESTING).unwrap();
    let real = mallory.status().fingerprint;
    let view = ana.approve(&mallory.join_request().to_code()).unwrap();
    assert!(!view.done);
    assert!(
        view.subject.starts_with(&format!("fingerprint {real}")),
        "{}",
        view.subject
    );
}
