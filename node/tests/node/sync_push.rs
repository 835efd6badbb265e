//! A push of forged items costs the node one check, not one per item: serving stops at the
//! first invalid item (found by the flood scenario: a member pushing 256 KiB of ops with altered
//! signatures held the event loop for about 100 ms per request, and reconnected after every fifth).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use lookout_node::replica::{Ingested, SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest, SyncResponse};

use crate::node_targets;

#[test]
fn a_push_stops_at_the_first_invalid_item() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = node_targets::Fixture::build(dir.path());
    // A real op with its signature altered: well formed, so only the signature check finds it.
    let op = node_targets::wire_items(&mut f.ana)
        .into_iter()
        .find(|i| i.kind == SetKind::Ops)
        .unwrap();
    let forged = |n: u32| {
        let mut bytes = op.bytes.clone();
        let len = bytes.len();
        bytes[len - 4..].copy_from_slice(&n.to_le_bytes());
        WireItem {
            kind: SetKind::Ops,
            bytes,
        }
    };
    assert!(f.ana.ingest(&forged(u32::MAX)).unwrap().is_rejected());
    // A new post of Bea's that Ana lacks, after a thousand forgeries.
    let id = f
        .bea
        .post(node_targets::draft("after the forgeries"))
        .unwrap();
    let post = WireItem {
        kind: SetKind::Envelopes,
        bytes: f.bea.fetch(SetKind::Envelopes, &[id.0]).unwrap().remove(0),
    };
    let mut items: Vec<WireItem> = (0..1000).map(forged).collect();
    items.push(post.clone());

    let served = sync::serve(&mut f.ana, &sync::encode(&SyncRequest::Push { items }));
    assert!(served.misbehaved);
    assert!(!served.changed);
    assert!(
        matches!(
            sync::decode::<SyncResponse>(&served.response),
            Some(SyncResponse::Ack {
                accepted: 0,
                rejected: 1
            })
        ),
        "one forgery was checked, and nothing after it"
    );
    // The post was not looked at; alone, it is taken in.
    assert_eq!(f.ana.ingest(&post).unwrap(), Ingested::Accepted);
}
