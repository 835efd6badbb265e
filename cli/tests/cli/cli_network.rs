//! The network through the real binary: no mDNS socket unless `--mdns` is given, a fresh
//! transport identity on every run, and logs at the default and `-v` levels without addresses
//! or full peer ids.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;

/// The mDNS port.
const MDNS_PORT: u16 = 5353;

/// Inodes of the UDP sockets bound to the mDNS port in this network namespace.
fn mdns_inodes() -> BTreeSet<String> {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (fields.get(1), fields.get(9)) else {
                continue;
            };
            let port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if port == Some(MDNS_PORT) {
                inodes.insert((*inode).to_owned());
            }
        }
    }
    inodes
}

/// Socket inodes the process holds open.
fn sockets_of(pid: u32) -> BTreeSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect()
}

fn mdns_sockets_of(pid: u32) -> usize {
    mdns_inodes().intersection(&sockets_of(pid)).count()
}

#[test]
fn no_mdns_socket_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let node = Node::start_mdns_default(&ana, &[]);
    // The node holds sockets (its listener, the control socket): the check sees them.
    assert!(!sockets_of(node.pid()).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        mdns_sockets_of(node.pid()),
        0,
        "an mDNS socket without --mdns"
    );
    node.stop();

    // With --mdns (a drop-in centre's Wi-Fi) the same check finds it.
    let node = Node::start_mdns_default(&ana, &["--mdns"]);
    eventually("the mDNS socket is open", || {
        (mdns_sockets_of(node.pid()) > 0).then_some(())
    });
    node.stop();
}

/// The peer id a `run` printed with its addresses (`.../p2p/PEER`).
fn printed_peer(node: &Node) -> String {
    let address = node.addresses.first().expect("an address").clone();
    address.rsplit("/p2p/").next().unwrap().to_owned()
}

#[test]
fn two_runs_show_different_peer_ids_and_logs_show_neither_addresses_nor_peers() {
    let dir = tempfile::tempdir().unwrap();
    let ana = founded(dir.path());
    let member = status(&ana)["member"].as_str().unwrap().to_owned();
    let first = Node::start_args(&ana, |_| {}, &["-v"]);
    let first_peer = printed_peer(&first);
    let logs_first = {
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = logs.clone();
        first.stop_and_then(|l| *keep.lock().unwrap() = l.to_owned());
        let text = logs.lock().unwrap().clone();
        text
    };
    let second = Node::start(&ana);
    let second_peer = printed_peer(&second);
    assert_ne!(
        first_peer, second_peer,
        "two runs share a transport identity"
    );
    assert!(first_peer.len() > 40 && second_peer.len() > 40);
    let logs_second = second.logs();
    second.stop();
    assert!(
        logs_first.contains("listening"),
        "-v logs something: {logs_first}"
    );
    for logs in [&logs_first, &logs_second] {
        for secret in [&first_peer, &second_peer, &member] {
            assert!(
                !logs.contains(secret.as_str()),
                "a log carries {secret}: {logs}"
            );
        }
        assert!(
            !logs.contains("/ip4/") && !logs.contains("127.0.0.1"),
            "{logs}"
        );
    }
}
