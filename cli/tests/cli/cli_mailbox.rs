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
    let join = code_from(&bea, &["join-request", "--json"]);
    fails(&ana, &["mailbox", "add", &join], 8, "join request code");
    fails(&ana, &["mailbox", "add", "hello"], 8, "LKMAILBOX2");
    // Nothing was added.
    let listed = ok(&ana, &["mailbox", "list", "--json"]).json();
    assert_eq!(listed["current"].as_array().unwrap().len(), 0);
    assert_eq!(listed["pending"].as_array().unwrap().len(), 0);
}

/// A `lookout mailbox run` process on loopback, killed when dropped.
struct MailboxProcess(std::process::Child);

impl Drop for MailboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback TCP port nothing listens on (just freed).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lookout mailbox status` asks the running mailbox over its control socket (0600, in a directory
/// made 0700 before the socket is bound even when it existed as 0755): unbound and empty at
/// first, and never with the pairing code or the bind secret; bound, storing the collective's items,
/// with the member connected and its reservation once a member's node met it; a clear error
/// when no mailbox runs.
#[test]
fn mailbox_status_is_answered_by_the_running_mailbox() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mbx = dir.path().join("mailbox");
    let address = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let made = ok(&mbx, &["mailbox", "init", "--json", "--address", &address]).json();
    let code = made["pairing_code"].as_str().unwrap().to_owned();
    fails(&mbx, &["mailbox", "status"], 2, "is not running");
    // A mailbox directory left group- and world-readable (copied, restored from a backup).
    let mbx_dir = mbx.join("mailbox");
    std::fs::set_permissions(&mbx_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bind_secret = std::fs::read(mbx_dir.join("bind.key")).unwrap();
    assert_eq!(bind_secret.len(), 32);
    let nobody = dir.path().join("nobody");
    fails(&nobody, &["mailbox", "status"], 2, "no mailbox in");

    let child = command(&mbx)
        .args(["mailbox", "run", "--listen", &address])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mailbox = MailboxProcess(child);
    let socket = mbx.join("mailbox").join("control.sock");
    let first = eventually("the mailbox answers on its control socket", || {
        let out = run(&mbx, &["mailbox", "status", "--json"]);
        (out.code == 0).then(|| out.json())
    });
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let mode = std::fs::metadata(&mbx_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "mailbox directory mode {mode:o}");
    // No secret in the status: no pairing code, nothing of the bind secret.
    let secret_hex: String = bind_secret.iter().map(|b| format!("{b:02x}")).collect();
    let raw = first.to_string();
    assert!(first.get("pairing_code").is_none(), "{first}");
    assert!(!raw.contains("LKMAILBOX"), "{first}");
    assert!(!raw.to_lowercase().contains(&secret_hex), "{first}");
    assert!(!raw.contains(&code), "{first}");
    assert_eq!(first["bound"], false, "{first}");
    assert_eq!(first["removed"], false, "{first}");
    assert_eq!(first["items"], 0, "{first}");
    assert_eq!(first["members_connected"], 0, "{first}");
    assert_eq!(first["reservations"], 0, "{first}");
    assert_eq!(first["circuits"], 0, "{first}");
    // The mailbox it names is the one of the pairing code `init` printed.
    let id = MailboxPairing::from_code(&code).unwrap().id().to_hex();
    assert_eq!(first["mailbox"].as_str().unwrap(), id, "{first}");
    assert!(first["listening"].to_string().contains(&address), "{first}");
    let text = ok(&mbx, &["mailbox", "status"]).stdout;
    assert!(text.contains("Bound to a collective: no"), "{text}");
    assert!(!text.contains("LKMAILBOX"), "{text}");

    let ana = founded(dir.path());
    ok(&ana, &["mailbox", "add", &code]);
    let node = Node::start(&ana);
    let bound = eventually(
        "the member's node binds the mailbox and reserves on it",
        || {
            let s = ok(&mbx, &["mailbox", "status", "--json"]).json();
            (s["bound"] == true
                && s["members_connected"] == 1
                && s["reservations"] == 1
                && s["items"].as_u64()? > 0)
                .then_some(s)
        },
    );
    assert!(bound["bytes"].as_u64().is_some(), "{bound}");
    assert_eq!(bound["circuits"], 0, "{bound}");
    let text = ok(&mbx, &["mailbox", "status"]).stdout;
    assert!(text.contains("Bound to a collective: yes"), "{text}");
    assert!(text.contains("Members connected: 1"), "{text}");
    node.stop();
    drop(mailbox);
}
