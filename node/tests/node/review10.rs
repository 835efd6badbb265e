//! Review 10 (adversarial review of branches `prop3` and `packfix`): each test asserts the SAFE
//! behaviour, so it fails while the finding it is named after exists (docs/design/REVIEW10.md).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_node::api::*;
use lookout_node::replica::{Replica, SetKind, WireItem};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

const PASS: &[u8] = b"test passphrase";

fn draft(description: &str) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: description.into(),
        phones: vec!["07700 900123".into()],
        phones_as_typed: false,
        plates: vec![],
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
fn sync(from: &mut Replica, to: &mut Replica) {
    for kind in SetKind::ORDER {
        let ids: Vec<[u8; 32]> = from.sync_items(kind).iter().map(|i| i.id).collect();
        for bytes in from.fetch(kind, &ids).unwrap() {
            let _ = to.ingest(&WireItem { kind, bytes }).unwrap();
        }
    }
    to.retry_held().unwrap();
}

/// R10-K1 (packfix, Review 9's catchup note (c)): a pack of posts damaged on disk loses its
/// posts from this device; the brief asks that their ids be no longer claimed as held in the
/// reconciliation set, so the next sync fetches them again. Here Bea's packs are damaged (each
/// value replaced by bytes that are no pack: the same path as a bit flip that still
/// authenticates, or a pack lacking posts the index places in it); Bea's listing finds them
/// gone, her maintenance runs (`expire`, which rewrites damaged packs), and then, without a
/// restart, she must no longer offer the lost posts in sync: while she does, no peer sends them
/// (each thinks she has them) and they stay lost until the app restarts.
#[test]
fn r10_posts_of_a_damaged_pack_are_no_longer_claimed_before_a_restart() {
    use lookout_node::store::{Store, Tree};
    let dir = tempfile::tempdir().unwrap();
    let (mut ana, _) =
        Replica::create(&dir.path().join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let bea_home = dir.path().join("bea");
    let (mut bea, _) = Replica::create(&bea_home, PASS, "Bea", KdfParams::TESTING).unwrap();
    let view = ana.approve(&bea.join_request().to_code()).unwrap();
    bea.join(&view.invite.unwrap()).unwrap();
    sync(&mut ana, &mut bea);
    for i in 0..5 {
        ana.execute(Request::Post(draft(&format!("packed {i}"))))
            .unwrap();
    }
    // One sync batch: Bea writes the five posts together, in packs.
    let ids: Vec<[u8; 32]> = ana
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    let posts: Vec<WireItem> = ana
        .fetch(SetKind::Envelopes, &ids)
        .unwrap()
        .into_iter()
        .map(|bytes| WireItem {
            kind: SetKind::Envelopes,
            bytes,
        })
        .collect();
    assert_eq!(posts.len(), 5);
    bea.ingest_many(&posts).unwrap();
    assert_eq!(bea.alerts(&AlertFilter::default()).unwrap().len(), 5);
    bea.flush().unwrap();
    bea.close().unwrap();

    // Damage: every value of the alerts tree replaced by bytes that are no pack.
    let store = Store::open(&bea_home, PASS).unwrap();
    let entries: Vec<Vec<u8>> = store.iter(Tree::Alerts).map(|e| e.unwrap().0).collect();
    assert!(!entries.is_empty());
    let later = lookout_node::replica::now() + 7 * 86_400;
    for key in &entries {
        store
            .put_expiring(Tree::Alerts, key, b"no pack here", later)
            .unwrap();
    }
    store.close().unwrap();

    let mut bea = Replica::open(&bea_home, PASS).unwrap();
    let listed = bea.alerts(&AlertFilter::default()).unwrap().len();
    assert!(listed < 5, "the damage was not seen ({listed} listed)");
    bea.expire(lookout_node::replica::now()).unwrap();
    let claimed: Vec<[u8; 32]> = bea
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    let served = bea.fetch(SetKind::Envelopes, &claimed).unwrap().len();
    assert_eq!(
        served,
        claimed.len(),
        "after her maintenance Bea still claims {} posts she cannot serve nor list ({listed} listed): no sync fetches them again before a restart",
        claimed.len() - served
    );
}

/// R10-K2 (packfix 8f45650 / main): an index chunk that does not read is skipped at open and
/// its posts are "not claimed, so sync fetches them again". Not so for a member's own alert
/// that no peer has yet (still in her outbox): nobody can send it back, and the outbox, which
/// is republished at start, serves posts through the core's index, which no longer lists it.
/// The alert's bytes are still on disk under its own id. Here Ana posts with no peer around,
/// her index chunk is replaced by bytes that are no chunk (as a flipped bit is, since
/// 8f45650), and after a restart her alert must still be listed or waiting in her outbox.
#[test]
fn r10_an_own_unsynced_alert_survives_an_unreadable_index_chunk() {
    use lookout_node::store::{Store, Tree};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ana");
    let (mut ana, _) = Replica::create(&home, PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    ana.execute(Request::Post(draft("nobody has this yet")))
        .unwrap();
    let outgoing: Vec<WireItem> = ana
        .take_outgoing()
        .into_iter()
        .filter(|i| i.kind == SetKind::Envelopes)
        .collect();
    assert_eq!(outgoing.len(), 1);
    let post = outgoing.into_iter().next().unwrap();
    assert!(ana.outbox().contains(&post), "in the outbox before");
    ana.flush().unwrap();
    ana.close().unwrap();

    let store = Store::open(&home, PASS).unwrap();
    let chunks: Vec<Vec<u8>> = store.iter(Tree::PostIndex).map(|e| e.unwrap().0).collect();
    assert!(!chunks.is_empty());
    let later = lookout_node::replica::now() + 7 * 86_400;
    for key in &chunks {
        store
            .put_expiring(Tree::PostIndex, key, b"no chunk here", later)
            .unwrap();
    }
    store.close().unwrap();

    let ana = Replica::open(&home, PASS).unwrap();
    let listed = ana.alerts(&AlertFilter::default()).unwrap().len();
    let outbox = ana.outbox();
    assert!(
        listed == 1 || outbox.contains(&post),
        "Ana's own alert, which no peer has, is gone after her index chunk did not read ({listed} listed, {} in the outbox): nobody can send it back",
        outbox.len()
    );
}
