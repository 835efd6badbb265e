//! `lookout mailbox add|list|remove` (issue 10): a moderator adds a mailbox from its pairing
//! code, lists it, removes it by a short id; every mistake gets its message and exit code.
//! (Approval by k moderators and refusal to plain members are tested through real nodes in
//! `tests/tests/e2e/adversarial_membership.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::common::*;
use ed25519_dalek::SigningKey;
use lookout_protocol::mailbox::MailboxPairing;
use std::collections::HashMap;

fn pairing(seed: u64) -> MailboxPairing {
    pairing_at(
        seed,
        vec![format!("/ip4/203.0.113.7/tcp/{}", 4000 + seed % 1000)],
        lookout_node::replica::now(),
    )
}

fn pairing_at(seed: u64, addresses: Vec<String>, created: u64) -> MailboxPairing {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x4c;
    let key = SigningKey::from_bytes(&bytes);
    MailboxPairing::create(&key, addresses, [7; 32], created).unwrap()
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

/// A pairing code's date is its maker's choice and its clock's: one dated in the future
/// (beyond clock skew) or older than 30 days is refused with the reason; a DNS address is
/// refused too (members' nodes have no DNS transport: it would be taken and never dialled).
#[test]
fn codes_from_the_future_too_old_or_with_dns_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let now = lookout_node::replica::now();
    let addr = || vec!["/ip4/203.0.113.7/tcp/4001".to_owned()];
    let future = pairing_at(1, addr(), now + 2 * 3600).to_code();
    fails(&ana, &["mailbox", "add", &future], 8, "in the future");
    let old = pairing_at(2, addr(), now - 31 * 86_400).to_code();
    fails(&ana, &["mailbox", "add", &old], 8, "31 days old");
    let dns = pairing_at(3, vec!["/dns4/mb.example.org/tcp/4001".to_owned()], now).to_code();
    fails(&ana, &["mailbox", "add", &dns], 8, "is a DNS name");
    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(listed["current"].as_array().unwrap().len(), 0);
    // Within the skew and the age limit: taken.
    let fine = pairing_at(4, addr(), now + 600).to_code();
    ok(&ana, &["mailbox", "add", &fine]);
    // `mailbox init` refuses a DNS name before making anything.
    let home = dir.path().join("mb");
    fails(
        &home,
        &[
            "mailbox",
            "init",
            "--address",
            "/dns4/mb.example.org/tcp/4001",
        ],
        2,
        "is a DNS name",
    );
    assert!(!home.join("mailbox").exists());
    // A code that aged out: the operator prints a fresh one for the same key.
    let made = ok(
        &home,
        &[
            "mailbox",
            "init",
            "--address",
            "/ip4/203.0.113.9/tcp/4001",
            "--json",
        ],
    )
    .json();
    let fresh = ok(
        &home,
        &[
            "mailbox",
            "code",
            "--address",
            "/ip4/203.0.113.10/tcp/4001",
            "--json",
        ],
    )
    .json();
    assert_eq!(fresh["mailbox"], made["mailbox"]);
    let pairing = MailboxPairing::from_code(fresh["pairing_code"].as_str().unwrap()).unwrap();
    assert_eq!(
        pairing.addresses,
        vec!["/ip4/203.0.113.10/tcp/4001".to_owned()]
    );
    fails(
        &home,
        &[
            "mailbox",
            "code",
            "--address",
            "/dns6/mb.example.org/tcp/4001",
        ],
        2,
        "is a DNS name",
    );
    ok(
        &ana,
        &["mailbox", "add", fresh["pairing_code"].as_str().unwrap()],
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
    fails(&ana, &["mailbox", "add", "hello"], 8, "LKMAILBOX2");
    // Nothing was added.
    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(listed["current"].as_array().unwrap().len(), 0);
    assert_eq!(listed["pending"].as_array().unwrap().len(), 0);
}
