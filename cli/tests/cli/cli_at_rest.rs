//! No clear-text identity or collective on disk (issue 9), through the real binary: two members
//! of one collective post, sync and stop; then no file in either home holds a member's name, the
//! collective's name or id, a member's public keys, or any op, key-delivery or alert id (the
//! store keys entries by a keyed hash, so two seized phones cannot be matched by their keys),
//! in any form (raw bytes or hex). Control: the passphrase opens the same files and finds them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use crate::common::*;
use lookout_node::replica::{Replica, SetKind};
use lookout_node::store::forensic;

const NAMES: [&str; 2] = ["Quenburga", "Ottoline"];
const COLLECTIVE: &str = "Marigold Collective";

#[test]
fn no_file_in_a_home_names_the_member_the_collective_or_any_id() {
    let dir = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = ["ana", "bea"].iter().map(|h| dir.path().join(h)).collect();
    let (ana, bea) = (&homes[0], &homes[1]);
    init(ana, NAMES[0]);
    ok(ana, &["collective", "create", "--name", COLLECTIVE]);
    let ana_node = Node::start(ana);
    init(bea, NAMES[1]);
    let code = code_from(bea, &["join-request", "--json"]);
    let approved = ok(ana, &["approve", &code, "--json"]).json();
    ok(bea, &["join", approved["invite"].as_str().unwrap()]);
    let bea_node = Node::start(bea);
    for home in &homes {
        eventually("two members, connected", || {
            let s = status(home);
            (s["members"] == 2 && s["peers"].as_u64() >= Some(1)).then_some(())
        });
    }
    let id = post(ana, "kept following me home", &["--phone", "07700 900551"]);
    eventually("the alert reaches bea", || {
        alert_ids(bea, &[]).contains(&id).then_some(())
    });
    ana_node.stop();
    bea_node.stop();

    // Everything the two homes have in common that a clear-text store would key by.
    let mut ids: Vec<(String, Vec<u8>)> = Vec::new();
    // What the passphrase opens: the names, sealed under the collective secret in the store
    // and opened with the secret the secrets file holds (control for the search below).
    let mut opened: Vec<Vec<String>> = Vec::new();
    for home in &homes {
        let mut replica = Replica::open(home, PASSPHRASE.as_bytes()).unwrap();
        let key = replica.text_key();
        let log = replica.membership().unwrap();
        let mut shown: Vec<String> = log
            .roster()
            .display_names(key.as_ref())
            .into_values()
            .collect();
        shown.push(log.genesis().genesis().sealed_name().display(key.as_ref()));
        opened.push(shown);
        ids.push(("collective id".into(), log.collective().0.to_vec()));
        for member in log.roster().members() {
            ids.push(("member key".into(), member.identity.member.0.to_vec()));
            ids.push(("agreement key".into(), member.identity.agreement.to_vec()));
        }
        for kind in SetKind::ORDER {
            for item in replica.sync_items(kind) {
                ids.push((format!("{kind:?} id"), item.id.to_vec()));
            }
        }
        replica.close().unwrap();
    }
    assert!(ids.len() >= 8, "{ids:?}");
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, raw) in ids {
        needles.push((format!("{what} (hex)"), hex(&raw).into_bytes()));
        needles.push((format!("{what} (first 16 bytes)"), raw[..16].to_vec()));
        needles.push((what, raw));
    }
    for text in NAMES.iter().chain([&COLLECTIVE, &"Marigold"]) {
        needles.push((text.to_string(), text.as_bytes().to_vec()));
    }

    for home in &homes {
        for file in files_under(home) {
            let bytes = std::fs::read(&file).unwrap();
            for (what, needle) in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "{} holds {what} in the clear",
                    file.display()
                );
            }
        }
        // Control: with the passphrase the same files hold the alert, and the names open (in
        // the store they are sealed under the collective secret too, so they are looked for
        // through the replica above).
        let found = forensic::recover(home, PASSPHRASE.as_bytes()).unwrap();
        assert!(
            found.contains(b"kept following me home"),
            "{}",
            home.display()
        );
    }
    for shown in &opened {
        assert!(shown.iter().any(|n| n == COLLECTIVE), "{shown:?}");
        for name in NAMES {
            assert!(shown.iter().any(|n| n == name), "{shown:?}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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
