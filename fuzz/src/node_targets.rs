//! The body of every fuzz target for the node's decoders that peers reach: sync requests and
//! responses on `/lookout/sync/1`, and gossip items. Arbitrary bytes in, no panic out.
//!
//! Shared by `fuzz/fuzz_targets/{sync_*,wire_item_*}.rs` and, through `#[path]`, by
//! `node/tests/node/fuzz_corpus_replay.rs`. The fixture is a real [`Replica`] (encrypted sled store in
//! a temporary directory) of a two-member collective holding membership ops, key deliveries and
//! posts, so reconciliation and fetches have something to work on. It is built once per process
//! and kept: inputs that change it (a push of a valid item) behave like a peer doing the same.

use std::cell::RefCell;
use std::path::Path;

use lookout_node::api::PostDraft;
use lookout_node::net::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
use lookout_node::replica::{Ingested, Replica, SetKind, WireItem};
use lookout_node::sync::{self, Session, Step, SyncRequest, SyncResponse, RECONCILE_LIMITS};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;
use lookout_protocol::reconcile::Reconciler;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every node target by name, for corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("sync_request_decode", sync_request_decode),
    ("sync_response_decode", sync_response_decode),
    ("wire_item_decode", wire_item_decode),
    ("sync_serve", sync_serve),
];

const PASSPHRASE: &[u8] = b"fuzz passphrase";

/// Two members' replicas of one collective, synced both ways.
pub struct Fixture {
    /// The founder's replica: the one peers talk to.
    pub ana: Replica,
    /// A second member's replica (posts of its own, so sets differ in authors).
    pub bea: Replica,
    /// The temporary directory holding both stores, when the fixture made it.
    _dir: Option<tempfile::TempDir>,
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

/// Run `f` on this thread's fixture, building it on first use (a `Replica` is not `Sync`).
pub fn with_fixture<T>(f: impl FnOnce(&mut Fixture) -> T) -> T {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fixture = slot.get_or_insert_with(|| {
            // Kept in the fixture for the life of the thread (not leaked: LeakSanitizer would
            // report it as a finding).
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut fixture = Fixture::build(dir.path());
            fixture._dir = Some(dir);
            fixture
        });
        f(fixture)
    })
}

impl Fixture {
    /// Found a collective, admit a second member, post from both and sync.
    pub fn build(dir: &Path) -> Self {
        let (mut ana, _) = Replica::create(&dir.join("ana"), PASSPHRASE, "Ana", KdfParams::TESTING)
            .expect("create Ana");
        ana.create_collective("Fuzz", Policy::default())
            .expect("found");
        let (mut bea, _) = Replica::create(&dir.join("bea"), PASSPHRASE, "Bea", KdfParams::TESTING)
            .expect("create Bea");
        let view = ana
            .approve(&bea.join_request().to_code())
            .expect("approve Bea");
        bea.join(&view.invite.expect("invite")).expect("join");
        copy_all(&mut ana, &mut bea);
        for (i, author) in [&mut ana, &mut bea].into_iter().enumerate() {
            for n in 0..3 {
                author
                    .post(draft(&format!("fixture alert {i}.{n}")))
                    .expect("post");
            }
        }
        copy_all(&mut ana, &mut bea);
        copy_all(&mut bea, &mut ana);
        Fixture {
            ana,
            bea,
            _dir: None,
        }
    }
}

/// A post from the fixture's members.
pub fn draft(description: &str) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: description.into(),
        phones: vec!["07700 900123".into()],
        phones_as_typed: false,
        plates: vec!["AB12 CDE".into()],
        names: Vec::new(),
        handles: Vec::new(),
        physical: String::new(),
        area: "Station Road".into(),
        incident_time: None,
        expires_in_days: None,
        language: "en".into(),
        on_behalf: false,
    }
}

/// Every item of `from`, in sync order, as wire items.
pub fn wire_items(from: &mut Replica) -> Vec<WireItem> {
    let mut items = Vec::new();
    for kind in SetKind::ORDER {
        let ids: Vec<[u8; 32]> = from.sync_items(kind).iter().map(|i| i.id).collect();
        for bytes in from.fetch(kind, &ids).unwrap_or_default() {
            items.push(WireItem { kind, bytes });
        }
    }
    items
}

fn copy_all(from: &mut Replica, to: &mut Replica) {
    let items = wire_items(from);
    sync::ingest_all(to, &items);
    let _ = to.retry_held();
}

/// `sync::decode::<SyncRequest>`: a decoded request encodes to something that decodes to the
/// same, and `request_kind` agrees with it.
pub fn sync_request_decode(data: &[u8]) {
    let kind = sync::request_kind(data);
    let Some(request) = sync::decode::<SyncRequest>(data) else {
        assert!(kind.is_none(), "an undecodable request has no kind");
        return;
    };
    let encoded = sync::encode(&request);
    let again = sync::decode::<SyncRequest>(&encoded).expect("an encoded request decodes");
    assert_eq!(sync::encode(&again), encoded, "request round trip");
    match &request {
        SyncRequest::Reconcile { kind: k, .. } | SyncRequest::Fetch { kind: k, .. } => {
            assert_eq!(kind, Some(*k));
        }
        SyncRequest::Push { items } => {
            assert_eq!(kind, None);
            for item in items {
                let _ = item.id();
            }
        }
        SyncRequest::Keys { .. } => assert_eq!(kind, None),
    }
}

/// `sync::decode::<SyncResponse>`, then a fresh initiator session on the fixture taking it as
/// the answer to its first request (the path a hostile responder reaches).
pub fn sync_response_decode(data: &[u8]) {
    if let Some(response) = sync::decode::<SyncResponse>(data) {
        let encoded = sync::encode(&response);
        let again = sync::decode::<SyncResponse>(&encoded).expect("an encoded response decodes");
        assert_eq!(sync::encode(&again), encoded, "response round trip");
    }
    with_fixture(|f| {
        let (mut session, first) = Session::start(&mut f.ana);
        assert!(
            matches!(first, Step::Send(_)),
            "a session starts by sending"
        );
        let mut response = data.to_vec();
        // Follow the session for a few rounds, answering each request with the same bytes, as a
        // peer replaying one message would.
        for _ in 0..4 {
            match session.advance(&mut f.ana, &response) {
                Step::Send(request) => {
                    assert!(request.len() <= MAX_REQUEST_BYTES, "request within the cap");
                    assert!(
                        sync::decode::<SyncRequest>(&request).is_some(),
                        "our own request decodes"
                    );
                    response = data.to_vec();
                }
                Step::Done | Step::Abort(_) => return,
            }
        }
    });
}

/// `WireItem::decode` (a gossip message), then ingesting it into the fixture as the gossip
/// handler does: an item is accepted at most once.
pub fn wire_item_decode(data: &[u8]) {
    let Some(item) = WireItem::decode(data) else {
        return;
    };
    assert_eq!(WireItem::decode(&item.encode()), Some(item.clone()));
    assert_eq!(item.id(), item.kind.id_of(&item.bytes));
    with_fixture(|f| {
        let Ok(first) = f.ana.ingest(&item) else {
            return;
        };
        if first == Ingested::Accepted {
            let _ = f.ana.flush();
        }
        let second = f.ana.ingest(&item);
        assert!(
            !matches!(second, Ok(Ingested::Accepted)),
            "an item is accepted at most once"
        );
        let _ = f.ana.take_events();
        let _ = f.ana.take_outgoing();
    });
}

/// `sync::serve_from` on the fixture, as asked by Bea (a member, so key requests are answered):
/// every request gets a decodable response within the transport cap, and an undecodable one is
/// answered with an error and marked as misbehaviour.
pub fn sync_serve(data: &[u8]) {
    with_fixture(|f| {
        let bea = f.bea.identity().member_id();
        let served = sync::serve_from(&mut f.ana, Some(bea), data);
        assert!(
            served.response.len() <= MAX_RESPONSE_BYTES,
            "response within the cap"
        );
        let response =
            sync::decode::<SyncResponse>(&served.response).expect("our response decodes");
        if sync::decode::<SyncRequest>(data).is_none() {
            assert!(served.misbehaved, "a malformed request is misbehaviour");
            assert!(matches!(response, SyncResponse::Error { .. }));
        }
        if let SyncResponse::Reconcile { message } = &response {
            // What we answer, an honest initiator (Bea) can process.
            assert!(message.len() <= RECONCILE_LIMITS.max_message_bytes);
            if let Some(SyncRequest::Reconcile { kind, .. }) = sync::decode::<SyncRequest>(data) {
                let items = f.bea.sync_items(kind).to_vec();
                if let Ok(mut bea) = Reconciler::new(&items, RECONCILE_LIMITS) {
                    bea.resume_as_initiator();
                    let (mut have, mut need) = (Vec::new(), Vec::new());
                    let _ = bea.reconcile(message, &mut have, &mut need);
                }
            }
        }
        let _ = f.ana.take_events();
        let _ = f.ana.take_outgoing();
    });
}
