//! Replays every input under `fuzz/corpus/<target>/` (and any crash artifacts under
//! `fuzz/artifacts/<target>/`) for the node's fuzz targets through the targets' own code, so
//! ordinary `cargo test` keeps the sync and gossip decoders panic-free on them without nightly or
//! libFuzzer.
//!
//! The seed inputs are written by
//!
//! ```text
//! LOOKOUT_WRITE_CORPUS=1 cargo test -p lookout-node --test node fuzz_corpus_replay::
//! ```
//!
//! which adds `seed-*` files made from a real two-member collective (their ids and signatures
//! differ from run to run, so they only add: review and commit the new files).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use std::path::{Path, PathBuf};

use lookout_node::replica::{SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest, SyncResponse, RECONCILE_LIMITS};
use lookout_protocol::reconcile::Reconciler;

use crate::node_targets;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn every_corpus_input_runs_without_panicking() {
    if std::env::var("LOOKOUT_WRITE_CORPUS").as_deref() == Ok("1") {
        write_seeds();
    }
    let root = fuzz_dir();
    let mut total = 0;
    for (name, target) in node_targets::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: regenerate with LOOKOUT_WRITE_CORPUS=1"
        );
        let artifacts = inputs(&root.join("artifacts").join(name));
        for (path, bytes) in corpus.iter().chain(&artifacts) {
            if let Err(panic) = std::panic::catch_unwind(|| target(bytes)) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("{name} panicked on {path}: {message}");
            }
            total += 1;
        }
    }
    assert!(total >= node_targets::TARGETS.len());
}

/// The seeds are well formed, so the fuzzers start from inputs that get past decoding: a corpus
/// of garbage would replay "fine" and prove nothing.
#[test]
fn seed_inputs_decode() {
    let root = fuzz_dir().join("corpus");
    let read = |target: &str, name: &str| std::fs::read(root.join(target).join(name)).unwrap();
    for kind in ["ops", "deliveries", "envelopes"] {
        let request = read("sync_serve", &format!("seed-reconcile-{kind}"));
        assert!(matches!(
            sync::decode::<SyncRequest>(&request),
            Some(SyncRequest::Reconcile { .. })
        ));
        let item = read("wire_item_decode", &format!("seed-item-{kind}"));
        assert!(WireItem::decode(&item).is_some());
    }
    assert!(matches!(
        sync::decode::<SyncResponse>(&read("sync_response_decode", "seed-items-ops")),
        Some(SyncResponse::Items { items }) if !items.is_empty()
    ));
    assert!(matches!(
        sync::decode::<SyncRequest>(&read("sync_request_decode", "seed-push")),
        Some(SyncRequest::Push { items }) if !items.is_empty()
    ));
}

/// Write `seed-*` inputs made from a fresh fixture collective.
fn write_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = node_targets::Fixture::build(dir.path());
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let items = node_targets::wire_items(&mut f.bea);
    for kind in SetKind::ORDER {
        let name = match kind {
            SetKind::Ops => "ops",
            SetKind::Deliveries => "deliveries",
            SetKind::Envelopes => "envelopes",
        };
        let set = f.bea.sync_items(kind).to_vec();
        let mut reconciler = Reconciler::new(&set, RECONCILE_LIMITS).unwrap();
        let message = reconciler.initiate().unwrap();
        let reconcile = sync::encode(&SyncRequest::Reconcile {
            kind,
            message: message.clone(),
        });
        let fetch = sync::encode(&SyncRequest::Fetch {
            kind,
            ids: set.iter().map(|i| i.id).collect(),
        });
        let of_kind: Vec<WireItem> = items.iter().filter(|i| i.kind == kind).cloned().collect();
        for target in ["sync_serve", "sync_request_decode"] {
            seeds.push((target, format!("seed-reconcile-{name}"), reconcile.clone()));
            seeds.push((target, format!("seed-fetch-{name}"), fetch.clone()));
        }
        let answer = Reconciler::new(f.ana.sync_items(kind), RECONCILE_LIMITS)
            .unwrap()
            .respond(&message)
            .unwrap();
        seeds.push((
            "sync_response_decode",
            format!("seed-reconcile-{name}"),
            sync::encode(&SyncResponse::Reconcile { message: answer }),
        ));
        seeds.push((
            "sync_response_decode",
            format!("seed-items-{name}"),
            sync::encode(&SyncResponse::Items {
                items: of_kind.clone(),
            }),
        ));
        seeds.push((
            "wire_item_decode",
            format!("seed-item-{name}"),
            of_kind.first().unwrap().encode(),
        ));
    }
    let push = sync::encode(&SyncRequest::Push {
        items: items.clone(),
    });
    seeds.push(("sync_serve", "seed-push".into(), push.clone()));
    seeds.push(("sync_request_decode", "seed-push".into(), push));
    let keys = sync::encode(&SyncRequest::Keys {
        epochs: f.ana.write_epoch().into_iter().collect(),
    });
    seeds.push(("sync_serve", "seed-keys".into(), keys.clone()));
    seeds.push(("sync_request_decode", "seed-keys".into(), keys));
    for response in [
        SyncResponse::Ack {
            accepted: 1,
            rejected: 2,
        },
        SyncResponse::Error {
            reason: "malformed request".into(),
        },
    ] {
        let name = match response {
            SyncResponse::Ack { .. } => "seed-ack",
            _ => "seed-error",
        };
        seeds.push(("sync_response_decode", name.into(), sync::encode(&response)));
    }
    let root = fuzz_dir().join("corpus");
    for (target, name, bytes) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
