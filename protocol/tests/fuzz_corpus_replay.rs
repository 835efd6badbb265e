//! Replays every input under `fuzz/corpus/<target>/` (and any crash artifacts under
//! `fuzz/artifacts/<target>/`) through the fuzz targets' own code, so ordinary `cargo test`
//! keeps every decoder panic-free on them without needing nightly or libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use std::path::Path;

#[path = "../../fuzz/src/targets.rs"]
mod targets;

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: regenerate with LOOKOUT_WRITE_VECTORS=1"
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
    assert!(total >= targets::TARGETS.len());
}

/// The seed inputs made from the vectors are valid, so each target's deep path runs: a corpus
/// of garbage would replay "fine" and prove nothing.
#[test]
fn seed_inputs_reach_past_decoding() {
    use lookout_protocol::membership::{Op, SignedGenesis};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let read = |target: &str, name: &str| std::fs::read(root.join(target).join(name)).unwrap();
    let genesis = SignedGenesis::decode(&read("genesis_decode", "vector-genesis")).unwrap();
    Op::decode(&read("op_decode", "vector-op_remove"), genesis.id()).unwrap();
    lookout_protocol::epoch::KeyDelivery::decode(
        &read("delivery_decode", "vector-delivery_rotation"),
        genesis.id(),
    )
    .unwrap();
    lookout_protocol::envelope::peek(&read("envelope_open", "vector-envelope_alert")).unwrap();
    let code = String::from_utf8(read("textcode_decode", "vector-identity_a_code")).unwrap();
    lookout_protocol::identity::PublicIdentity::from_code(&code).unwrap();
}
