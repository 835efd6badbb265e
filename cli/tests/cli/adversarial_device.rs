//! A seized or lost device, through the real binary. After a collective's life — alerts with
//! phone numbers, plates, names, handles and places, a corroboration, three members whose nodes
//! learnt each other's addresses — no file in any home holds any of it in the clear, neither
//! while the nodes run nor after they stop. `lookout wipe` leaves nothing the old passphrase
//! opens: not the home, and not the database files put back with what is left of the key file.
//! A passphrase guess costs one Argon2id run with the shipped parameters (measured).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use lookout_node::replica::Replica;
use lookout_node::store::{forensic, Store, STORAGE_KEY_LABEL};
use lookout_protocol::passphrase::{self, KdfParams};
use rand::rngs::OsRng;

const NAMES: [&str; 3] = ["Quenburga", "Ottoline", "Wilhelmina"];
const COLLECTIVE: &str = "Marigold Collective";

#[test]
fn seized_homes_hold_nothing_readable_and_wipe_leaves_nothing_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = ["ana", "bea", "cleo"]
        .iter()
        .map(|h| dir.path().join(h))
        .collect();
    let (ana, bea, cleo) = (&homes[0], &homes[1], &homes[2]);

    init(ana, NAMES[0]);
    ok(ana, &["collective", "create", "--name", COLLECTIVE]);
    let ana_node = Node::start(ana);
    for (home, name) in [(bea, NAMES[1]), (cleo, NAMES[2])] {
        init(home, name);
        let code = code_from(home, &["join-request", "--json"]);
        let approved = ok(ana, &["approve", &code, "--json"]).json();
        ok(home, &["join", approved["invite"].as_str().unwrap()]);
    }
    let bea_node = Node::start(bea);
    let cleo_node = Node::start(cleo);
    for home in &homes {
        eventually("three members, connected", || {
            let s = status(home);
            (s["members"] == 3 && s["peers"].as_u64() >= Some(1)).then_some(())
        });
    }
    let first = post(
        bea,
        "bit my shoulder in the lift",
        &[
            "--phone",
            "07700 900551",
            "--plate",
            "LM62 XHY",
            "--area",
            "Yarrowby Close",
            "--name",
            "Cuthbert Pennyworth",
            "--handle",
            "@cuthbert_quill",
            "--looks",
            "scar through the left eyebrow",
        ],
    );
    let second = post(
        cleo,
        "stole the deposit",
        &[
            "--phone",
            "+44 7700 900552",
            "--plate",
            "WV07 ZTQ",
            "--area",
            "Thistlewick Lane",
            "--name",
            "Ambrose Fettle",
        ],
    );
    for home in &homes {
        eventually("both alerts everywhere", || {
            let ids = alert_ids(home, &[]);
            (ids.contains(&first) && ids.contains(&second)).then_some(())
        });
    }
    ok(
        ana,
        &[
            "corroborate",
            &second[..8],
            "--note",
            "same man outside Gorsebrook station",
        ],
    );
    eventually("the corroboration arrives", || {
        let alerts = ok(bea, &["alerts", "--json"]).json();
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == second.as_str() && a["corroborations"] == 1)
            .then_some(())
    });
    // Let reachability announcements and a few syncs reach the disk.
    std::thread::sleep(Duration::from_secs(3));

    let mut needles: Vec<(String, Vec<u8>)> = [
        "bit my shoulder in the lift",
        "shoulder",
        "07700 900551",
        "07700900551",
        "+447700900551",
        "7700900551",
        "LM62 XHY",
        "LM62XHY",
        "Yarrowby",
        "Cuthbert",
        "Pennyworth",
        "cuthbert_quill",
        "left eyebrow",
        "stole the deposit",
        "+44 7700 900552",
        "+447700900552",
        "7700900552",
        "WV07 ZTQ",
        "WV07ZTQ",
        "Thistlewick",
        "Ambrose Fettle",
        "Fettle",
        "Gorsebrook",
        COLLECTIVE,
        "Marigold",
        "127.0.0.1",
        "/ip4/",
        "/tcp/",
    ]
    .iter()
    .map(|s| (s.to_string(), s.as_bytes().to_vec()))
    .collect();
    needles.extend(NAMES.iter().map(|s| (s.to_string(), s.as_bytes().to_vec())));
    for node in [&ana_node, &bea_node, &cleo_node] {
        for addr in &node.addresses {
            let addr: libp2p::Multiaddr = addr.parse().unwrap();
            let plain: libp2p::Multiaddr = addr
                .iter()
                .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                .collect();
            needles.push((format!("{plain} (binary)"), plain.to_vec()));
            needles.push((addr.to_string(), addr.to_string().into_bytes()));
            let port = plain
                .iter()
                .find_map(|p| match p {
                    libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                    _ => None,
                })
                .unwrap();
            // The address as raw bytes: 127.0.0.1 then the port, big-endian.
            let mut raw = vec![127, 0, 0, 1];
            raw.extend_from_slice(&port.to_be_bytes());
            needles.push((format!("127.0.0.1:{port} (raw)"), raw));
        }
    }

    // A phone taken while its node runs, then after the nodes stopped.
    let scanned_live = scan(&homes, &needles);
    ana_node.stop();
    bea_node.stop();
    cleo_node.stop();
    let scanned = scan(&homes, &needles);
    println!("scanned {scanned_live} bytes with the nodes running, {scanned} after they stopped");
    // Store keys are keyed hashes: no alert id is in any file either. Control: with the
    // passphrase the same files hold the alerts, so the scan looked at the right bytes.
    for home in &homes {
        for id in [&first, &second] {
            let raw = hex(id);
            for file in files_under(home) {
                assert!(
                    !contains(&std::fs::read(&file).unwrap(), &raw),
                    "{} holds an alert id in the clear",
                    file.display()
                );
            }
        }
        let found = forensic::recover(home, PASSPHRASE.as_bytes()).unwrap();
        assert!(
            found.contains(b"bit my shoulder in the lift"),
            "the alert is stored under {}",
            home.display()
        );
    }

    // Wipe bea's device. Keep what a forensic examiner could recover: the database files
    // (copied before), and the key file's inode (a hard link shows what the wipe left in its
    // blocks).
    let copy = dir.path().join("bea-before-wipe");
    copy_dir(bea, &copy);
    let key_inode = dir.path().join("bea-key-inode");
    std::fs::hard_link(bea.join("store.key"), &key_inode).unwrap();
    let sealed_before = std::fs::read(&key_inode).unwrap();
    assert!(
        Replica::open(&copy, PASSPHRASE.as_bytes()).is_ok(),
        "control: the copy opens"
    );

    let wiped = ok(bea, &["wipe", "--yes"]);
    assert!(wiped.stdout.contains("erased"), "{wiped:?}");
    assert!(!bea.exists(), "the home is gone: {:?}", files_under(bea));
    fails(bea, &["status"], 3, "no Lookout identity");
    assert!(Replica::open(bea, PASSPHRASE.as_bytes()).is_err());

    let shredded = std::fs::read(&key_inode).unwrap();
    assert_eq!(shredded.len(), sealed_before.len());
    assert_ne!(
        shredded, sealed_before,
        "the key file was overwritten in place"
    );

    // Put the database back with what is left of the key file: nothing opens with the old
    // passphrase, through the library or the binary.
    std::fs::create_dir_all(bea).unwrap();
    copy_dir(&copy.join("store"), &bea.join("store"));
    std::fs::copy(&key_inode, bea.join("store.key")).unwrap();
    assert!(Store::open(bea, PASSPHRASE.as_bytes()).is_err());
    assert!(Replica::open(bea, PASSPHRASE.as_bytes()).is_err());
    let status = run(bea, &["status"]);
    assert_ne!(status.code, 0, "{status:?}");
    assert!(!status.stderr.contains("panicked"), "{status:?}");
    // And without any key file at all.
    std::fs::remove_file(bea.join("store.key")).unwrap();
    assert!(Replica::open(bea, PASSPHRASE.as_bytes()).is_err());
}

/// The shipped Argon2id parameters are what a real `init` writes (without the tests' fast-KDF
/// switch), and a wrong guess through the binary costs at least one Argon2id run.
#[test]
fn a_real_home_uses_the_shipped_kdf_and_guesses_are_slow() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut real_init = command(&home);
    real_init
        .env_remove("LOOKOUT_INSECURE_FAST_KDF")
        .args(["init", "--name", "Quenburga"]);
    let out = run_command(&mut real_init);
    assert_eq!(out.code, 0, "{out:?}");
    let sealed = std::fs::read(home.join("store.key")).unwrap();
    assert_eq!(&sealed[..5], b"LKSK\x02");
    let param = |at: usize| u32::from_le_bytes(sealed[at..at + 4].try_into().unwrap());
    let params = (param(5), param(9), param(13));
    let shipped = KdfParams::DEFAULT;
    assert_eq!(
        params,
        (shipped.memory_kib, shipped.iterations, shipped.parallelism)
    );

    let wrong_guesses = |home: &Path| -> Vec<Duration> {
        ["hunter2", "password1", "correct horse battery stable"]
            .iter()
            .map(|guess| {
                let mut wrong = command(home);
                wrong.env("LOOKOUT_PASSPHRASE", guess).arg("status");
                let started = Instant::now();
                let out = run_command(&mut wrong);
                assert_eq!(out.code, 4, "wrong passphrase: {out:?}");
                started.elapsed()
            })
            .collect()
    };
    // The same with a test home (8 KiB, 1 pass): what starting the binary costs.
    let fast = dir.path().join("fast");
    init(&fast, "Quenburga");
    let baseline = wrong_guesses(&fast).into_iter().max().unwrap();
    let guesses = wrong_guesses(&home);
    println!("wrong guesses: {guesses:?} with the shipped parameters, at most {baseline:?} with the test ones");
    for guess in &guesses {
        assert!(
            *guess > baseline + Duration::from_millis(50),
            "{guesses:?} vs {baseline:?}"
        );
    }
}

/// Cost of one passphrase guess against a store sealed with [`KdfParams::DEFAULT`], in release:
/// `cargo test --release -p lookout-cli --test cli adversarial_device:: -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run in release"]
fn passphrase_guess_cost_with_default_params() {
    let sealed = passphrase::seal(
        PASSPHRASE.as_bytes(),
        &[7; 32],
        STORAGE_KEY_LABEL,
        KdfParams::DEFAULT,
        &mut OsRng,
    )
    .unwrap();
    let guesses = 10;
    let started = Instant::now();
    for i in 0..guesses {
        let guess = format!("guess number {i}");
        assert!(passphrase::open(guess.as_bytes(), &sealed, STORAGE_KEY_LABEL).is_err());
    }
    let per_guess = started.elapsed() / guesses;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Argon2id m=64 MiB t=3 p=1: {per_guess:?} per guess on one core \
         ({:.1} guesses/s/core, {threads} cores here)",
        1.0 / per_guess.as_secs_f64()
    );
    assert!(per_guess > Duration::from_millis(20), "{per_guess:?}");
}

/// Scan every regular file under the homes for every needle; the number of bytes scanned.
fn scan(homes: &[PathBuf], needles: &[(String, Vec<u8>)]) -> usize {
    let mut scanned = 0;
    let mut files = 0;
    for home in homes {
        for file in files_under(home) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            files += 1;
            scanned += bytes.len();
            for (name, needle) in needles {
                assert!(
                    !contains(&bytes, needle),
                    "{} holds {name:?} in the clear",
                    file.display()
                );
            }
        }
    }
    assert!(files > 10, "the homes hold files");
    scanned
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(id: &str) -> Vec<u8> {
    (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
        .collect()
}
