//! `lookout mailbox add|list|remove` (issue 10): a moderator adds a mailbox from its pairing
//! code, lists it, removes it by a short id; every mistake gets its message and exit code.
//! (Approval by k moderators and refusal to plain members are tested through real nodes in
//! `tests/tests/adversarial_membership.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;

use common::*;
use ed25519_dalek::SigningKey;
use lookout_protocol::mailbox::MailboxPairing;

fn pairing(seed: u64) -> MailboxPairing {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x4c;
    let key = SigningKey::from_bytes(&bytes);
    MailboxPairing::create(
        &key,
        vec![format!("/ip4/203.0.113.7/tcp/{}", 4000 + seed % 1000)],
        1_790_000_000,
    )
    .unwrap()
}

/// Two pairings whose ids start with the same 4 hex digits.
fn colliding() -> (MailboxPairing, MailboxPairing) {
    let mut seen: HashMap<String, MailboxPairing> = HashMap::new();
    for seed in 1.. {
        let p = pairing(seed);
        let prefix = p.id().to_hex()[..4].to_owned();
        if let Some(q) = seen.remove(&prefix) {
            return (q, p);
        }
        seen.insert(prefix, p);
    }
    unreachable!()
}

#[test]
fn a_moderator_adds_lists_and_removes_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let empty = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(empty["current"].as_array().unwrap().len(), 0);
    assert!(ok(&ana, &["mailbox", "list"]).stdout.contains("No mailbox"));

    let (first, second) = colliding();
    let first_hex = first.id().to_hex();
    let second_hex = second.id().to_hex();
    let added = ok(&ana, &["mailbox", "add", &first.to_code(), "--json"]).json();
    assert_eq!(added["done"], true, "{added}");
    assert_eq!(added["action"], "add mailbox");
    let text = ok(&ana, &["mailbox", "add", &second.to_code()]).stdout;
    assert!(text.contains("is now a mailbox"), "{text}");
    // The same code again changes nothing.
    let again = ok(&ana, &["mailbox", "add", &first.to_code()]).stdout;
    assert!(again.contains("already a mailbox"), "{again}");

    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    let mut ids: Vec<&str> = listed["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![first_hex.as_str(), second_hex.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    assert_eq!(
        listed["current"][0]["addresses"].as_array().unwrap().len(),
        1
    );
    let text = ok(&ana, &["mailbox", "list"]).stdout;
    assert!(
        text.contains(&first_hex[..8]) && text.contains("/ip4/203.0.113.7/tcp/"),
        "{text}"
    );

    // A prefix matching both is refused; a longer one removes just one.
    fails(
        &ana,
        &["mailbox", "remove", &first_hex[..4]],
        7,
        "several mailboxes match",
    );
    fails(&ana, &["mailbox", "remove", "abc"], 2, "at least 4");
    fails(&ana, &["mailbox", "remove", "zzzz"], 2, "hex");
    let removed = ok(&ana, &["mailbox", "remove", &first_hex[..12], "--json"]).json();
    assert_eq!(removed["mailbox"], first_hex.as_str());
    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(listed["current"].as_array().unwrap().len(), 1);
    assert_eq!(listed["current"][0]["id"], second_hex.as_str());
    assert_eq!(listed["removed"][0]["id"], first_hex.as_str());
    assert_eq!(listed["removed"][0]["removed_by"][0], "Ana");
    let text = ok(&ana, &["mailbox", "list"]).stdout;
    assert!(text.contains("Removed (never added again)"), "{text}");

    // Removed is final: neither adding it again nor removing it twice does anything.
    fails(
        &ana,
        &["mailbox", "add", &first.to_code()],
        5,
        "can never be added again",
    );
    fails(
        &ana,
        &["mailbox", "remove", &first_hex],
        2,
        "already removed",
    );
    fails(
        &ana,
        &["mailbox", "remove", "ffff0000"],
        7,
        "no mailbox matches",
    );
}

#[test]
fn wrong_codes_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let code = pairing(1).to_code();
    // A damaged code (one character changed), a code of another kind, noise.
    let mut chars: Vec<char> = code.chars().collect();
    let at = chars.len() - 5;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let damaged: String = chars.into_iter().collect();
    fails(
        &ana,
        &["mailbox", "add", &damaged],
        8,
        "pairing code cannot be used",
    );
    let bea = dir.path().join("bea");
    init(&bea, "Bea");
    let join = ok(&bea, &["join-request", "--json"]).json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    fails(&ana, &["mailbox", "add", &join], 8, "join request code");
    fails(&ana, &["mailbox", "add", "hello"], 8, "LKMAILBOX1");
    // Nothing was added.
    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(listed["current"].as_array().unwrap().len(), 0);
    assert_eq!(listed["pending"].as_array().unwrap().len(), 0);
}
