//! Review 10 (adversarial review of branch `prop3`: received posts' store writes held for a
//! window instead of one loop turn). Each test asserts the SAFE behaviour: every read of the
//! replica sees a received post whose writes are still pending (the listing, `check`, and what
//! sync offers and serves). On main the node makes the held writes right after one loop yield,
//! with nothing else on the loop in between (`replica/held.rs`), so these reads never happen
//! while writes are held there; with a window of tens of milliseconds they do.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lookout_node::api::*;
use lookout_node::replica::{Ingested, Replica, SetKind, WireItem};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

const PASS: &[u8] = b"test passphrase";
const PHONE: &str = "07700 900123";

fn draft(description: &str) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: description.into(),
        phones: vec![PHONE.into()],
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

/// Ana (founder) and Bea (member), synced; Ana's post `text` gossiped to Bea, who checked it
/// and holds its writes (not yet written).
fn bea_holding_a_post(dir: &std::path::Path) -> (Replica, Replica, WireItem) {
    let (mut ana, _) = Replica::create(&dir.join("ana"), PASS, "Ana", KdfParams::TESTING).unwrap();
    ana.create_collective("Night Shift", Policy::default())
        .unwrap();
    let (mut bea, _) = Replica::create(&dir.join("bea"), PASS, "Bea", KdfParams::TESTING).unwrap();
    let view = ana.approve(&bea.join_request().to_code()).unwrap();
    bea.join(&view.invite.unwrap()).unwrap();
    sync(&mut ana, &mut bea);
    assert!(bea.status().is_member);
    let _ = (ana.take_events(), bea.take_events(), ana.take_outgoing());
    ana.execute(Request::Post(draft("pending at Bea"))).unwrap();
    let outgoing = ana.take_outgoing();
    assert_eq!(outgoing.len(), 1);
    let item = outgoing.into_iter().next().unwrap();
    let (outcome, writes) = bea.validate(&item);
    assert_eq!(outcome, Ingested::Accepted);
    bea.hold_post_writes(true);
    bea.accept_post(writes).unwrap();
    bea.hold_post_writes(false);
    assert!(bea.holds_writes(), "the post's writes are pending");
    (ana, bea, item)
}

/// R10-P1: while a received post's writes are pending, the alerts listing and `check` show it
/// (its event went to watchers already: a user who opens the list sees it too).
#[test]
fn r10_a_pending_received_post_is_listed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (_ana, bea, _item) = bea_holding_a_post(dir.path());
    let listed = bea.alerts(&AlertFilter::default()).unwrap().len();
    let checked = bea.check(PHONE).unwrap().len();
    assert!(
        listed == 1 && checked == 1,
        "a post shown to watchers is missing from the listing ({listed}) or check ({checked}) while its writes are pending"
    );
}

/// R10-P2: while a received post's writes are pending, what the replica offers in sync it
/// serves: a peer reconciling with it is offered the post's id and must get its bytes.
#[test]
fn r10_a_pending_received_post_is_served_to_a_peer_it_is_offered_to() {
    let dir = tempfile::tempdir().unwrap();
    let (_ana, mut bea, item) = bea_holding_a_post(dir.path());
    let ids: Vec<[u8; 32]> = bea
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    let offered = ids.contains(&item.id());
    let served = bea.fetch(SetKind::Envelopes, &ids).unwrap();
    assert!(
        !offered || served.iter().any(|bytes| *bytes == item.bytes),
        "the pending post is offered in sync ({} ids) but not served ({} items)",
        ids.len(),
        served.len()
    );
}
