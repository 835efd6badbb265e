//! Issue 12 at scale with real processes (ignored: a benchmark). `SCALE_NODES` (default 100)
//! `lookout run` processes of the binary under test on loopback, each with its own `--home`:
//!
//! ```text
//! LOOKOUT_SCALE_BENCH=1 CARGO_TARGET_DIR=target/scale-bench \
//!   cargo test --release -p lookout-cli --features insecure-test-kdf --test scale -- --ignored --nocapture
//! SCALE_NODES=10 SCALE_POST_SECS=60 cargo test -p lookout-cli --test scale -- --ignored --nocapture
//! ```
//!
//! `insecure-test-kdf` (a non-default feature of lookout-cli, for this benchmark only) lets the
//! release binary honour `LOOKOUT_INSECURE_FAST_KDF=1` as debug builds do, so enrolment costs
//! 8 KiB Argon2id derivations instead of four 64 MiB ones per member; without the feature a
//! release binary ignores the variable and the run takes the production derivations.
//! `cli/build.rs` refuses to build the feature unless `LOOKOUT_SCALE_BENCH=1` is set (so
//! `--all-features` cannot turn it on by accident), and the command above builds into its own
//! `target/scale-bench`, so the `target/release/lookout` the README points to is never this
//! build. Such a binary says `INSECURE TEST KDF BUILD` in `lookout --version`. Delete
//! `target/scale-bench` after the run.
//!
//! Enrolment is the real one, command by command: a founding moderator (k = 1) runs her node;
//! each other member runs `init`, `join-request`, the founder runs `approve CODE` (through her
//! node), the member runs `join INVITE` and then `lookout run --peer ...` naming up to
//! `SCALE_PEERS` (3) random members started before it (no mDNS), and `--connections
//! SCALE_CONNECTIONS` if set (the node's default budget of member connections otherwise). Then
//! for `SCALE_POST_SECS` (180) a random running member posts an alert every second (through its
//! control socket, as `lookout post` does), while `SCALE_CHURN` (10 %) of the members are stopped (SIGTERM) at a
//! random moment and restarted `SCALE_DOWN_SECS` (15) later with the same arguments. Afterwards
//! the driver waits up to `SCALE_CATCH_UP_SECS` (240) for every member to hold every alert.
//!
//! Arrival times: the driver holds a `watch` connection on every node's control socket (what
//! `lookout alerts --watch --json` uses) and notes when each alert event arrives. After a restart
//! it reconnects and lists the node's alerts; an alert first seen in that listing is counted as
//! arrived at the listing ("catch-up"). Latency is from just before the post request was sent
//! to the event. The node dedups before it emits an event, so duplicates are not visible here;
//! `bytes_received` per node (from `status`) stands in for the traffic they cost.
//! CPU seconds and RSS come from `/proc/PID/stat` and `/proc/PID/status` of the processes
//! running at the end (a restarted member: its second life only).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "cli/common.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{command, init, ok};
use lookout_node::api::{AlertFilter, Event, PostDraft};
use lookout_node::client::Client;
use lookout_node::control::Connection;
use lookout_protocol::content::{Category, Severity};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Longest a node may take to start serving commands.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// One member's process and how to start it again.
struct Member {
    home: PathBuf,
    port: u16,
    peers: Vec<u16>,
    child: Option<Child>,
    /// Starts so far (1 + restarts).
    lives: u32,
}

impl Member {
    fn spawn(&mut self) {
        let log = |name: &str| {
            File::options()
                .create(true)
                .append(true)
                .open(self.home.with_extension(name))
                .unwrap()
        };
        let mut cmd = command(&self.home);
        cmd.stdout(Stdio::from(log("out")))
            .stderr(Stdio::from(log("err")))
            .args(["run", "--no-mdns", "--listen"])
            .arg(format!("/ip4/127.0.0.1/tcp/{}", self.port));
        if let Ok(secs) = std::env::var("SCALE_SYNC_SECS") {
            cmd.args(["--sync-interval", &secs]);
        }
        if let Ok(n) = std::env::var("SCALE_CONNECTIONS") {
            cmd.args(["--connections", &n]);
        }
        for peer in &self.peers {
            cmd.arg("--peer").arg(format!("/ip4/127.0.0.1/tcp/{peer}"));
        }
        self.child = Some(cmd.spawn().expect("start lookout run"));
        self.lives += 1;
    }

    /// Wait until this life printed that it serves commands.
    fn wait_ready(&mut self) {
        let started = Instant::now();
        let out = self.home.with_extension("out");
        loop {
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            if printed.matches("Press Ctrl-C").count() >= self.lives as usize {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "lookout run exited with {status}: {}",
                    std::fs::read_to_string(self.home.with_extension("err")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < START_PATIENCE,
                "{} did not start",
                self.home.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, as Ctrl-C would, and wait for the exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// (CPU seconds, VmRSS KiB, VmHWM KiB) of a process.
fn usage(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on Linux.
    Some((ticks as f64 / 100.0, kib("VmRSS:"), kib("VmHWM:")))
}

fn percentile<T: Copy + Ord>(sorted: &[T], p: f64) -> T {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn draft(n: usize) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: format!("Scale test alert {n}: pulled a knife when asked to pay"),
        phones: vec![format!("07700 9{:05}", n % 100_000)],
        phones_as_typed: false,
        plates: Vec::new(),
        names: Vec::new(),
        handles: Vec::new(),
        physical: String::new(),
        area: "Harbour Street".into(),
        incident_time: None,
        expires_in_days: None,
        language: "en".into(),
        on_behalf: false,
    }
}

/// When each node first showed each alert: (node, alert id) -> (when, by a catch-up listing).
type Arrivals = Arc<Mutex<HashMap<(usize, String), (Instant, bool)>>>;

/// Keep a watch connection on node `i`'s control socket, reconnecting after restarts.
async fn watch(i: usize, home: PathBuf, arrivals: Arrivals, done: Arc<Mutex<bool>>) {
    loop {
        if *done.lock().unwrap() {
            return;
        }
        let Some(mut events) = Connection::connect(&home).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if events.watch().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // What arrived while no watch was on (before the first watch, or during a restart).
        if let Some(lister) = Connection::connect(&home).await {
            if let Ok(list) = Client::new(lister).alerts(AlertFilter::default()).await {
                let now = Instant::now();
                let mut map = arrivals.lock().unwrap();
                for alert in list {
                    map.entry((i, alert.id)).or_insert((now, true));
                }
            }
        }
        while let Some(event) = events.next_event().await {
            if let Event::Alert(alert) = event {
                let now = Instant::now();
                arrivals
                    .lock()
                    .unwrap()
                    .entry((i, alert.id))
                    .or_insert((now, false));
            }
        }
    }
}

#[ignore = "benchmark: run in release with --ignored --nocapture (see docs/BENCHMARKS.md)"]
#[test]
fn collective_of_real_processes() {
    let n = env_number("SCALE_NODES", 100) as usize;
    let post_secs = env_number("SCALE_POST_SECS", 180);
    let fanout = env_number("SCALE_PEERS", 3) as usize;
    let churn = env_number("SCALE_CHURN_PERCENT", 10) as usize * n / 100;
    let down = Duration::from_secs(env_number("SCALE_DOWN_SECS", 15));
    let catch_up = Duration::from_secs(env_number("SCALE_CATCH_UP_SECS", 240));
    let seed = env_number("SCALE_SEED", 12);
    let mut rng = StdRng::seed_from_u64(seed);
    let base = std::env::var_os("SCALE_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::Builder::new()
        .prefix("lookout-scale-")
        .tempdir_in(base)
        .unwrap();
    println!(
        "scale: {n} processes, {fanout} dials each, {churn} restarted ({down:?} down), a post a second for {post_secs} s, seed {seed}; load {}",
        loadavg()
    );

    // Enrolment through the real commands.
    let started = Instant::now();
    let home = |i: usize| dir.path().join(format!("m{i:03}"));
    let founder = home(0);
    init(&founder, "founder");
    ok(
        &founder,
        &["collective", "create", "--name", "Scale Collective"],
    );
    let mut members: Vec<Member> = Vec::new();
    let mut f = Member {
        home: founder.clone(),
        port: free_port(),
        peers: Vec::new(),
        child: None,
        lives: 0,
    };
    f.spawn();
    f.wait_ready();
    members.push(f);
    for i in 1..n {
        let h = home(i);
        init(&h, &format!("member {i}"));
        let request = ok(&h, &["join-request", "--json"]).json();
        let approved = ok(
            &founder,
            &["approve", request["code"].as_str().unwrap(), "--json"],
        )
        .json();
        assert_eq!(approved["done"], true, "{approved}");
        ok(&h, &["join", approved["invite"].as_str().unwrap()]);
        let mut earlier: Vec<u16> = members.iter().map(|m| m.port).collect();
        earlier.shuffle(&mut rng);
        earlier.truncate(fanout);
        let mut m = Member {
            home: h,
            port: free_port(),
            peers: earlier,
            child: None,
            lives: 0,
        };
        m.spawn();
        m.wait_ready();
        members.push(m);
        if i % 10 == 0 {
            println!(
                "  {i} joined after {:.0} s (load {})",
                started.elapsed().as_secs_f64(),
                loadavg()
            );
        }
    }
    let enrolled = started.elapsed();
    println!(
        "enrolment: {n} members and nodes in {:.0} s; load {}",
        enrolled.as_secs_f64(),
        loadavg()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let homes: Vec<PathBuf> = members.iter().map(|m| m.home.clone()).collect();
    let members = Arc::new(Mutex::new(members));
    runtime.block_on(async {
        // Every node learns the whole roster.
        let waited = Instant::now();
        loop {
            let mut knowing = 0;
            for h in &homes {
                if let Some(c) = Connection::connect(h).await {
                    if let Ok(s) = Client::new(c).status().await {
                        if s.members == n && s.epoch.is_some() {
                            knowing += 1;
                        }
                    }
                }
            }
            if knowing == n {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(600),
                "only {knowing} of {n} nodes know the whole roster"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        println!(
            "roster: all {n} nodes know {n} members and hold an epoch key {:.0} s after the last start",
            waited.elapsed().as_secs_f64()
        );

        let arrivals: Arrivals = Arc::default();
        let done = Arc::new(Mutex::new(false));
        let watchers: Vec<_> = homes
            .iter()
            .enumerate()
            .map(|(i, h)| tokio::spawn(watch(i, h.clone(), arrivals.clone(), done.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;

        // Churn: who stops when.
        let mut churned: Vec<usize> = (0..n).collect();
        churned.shuffle(&mut rng);
        churned.truncate(churn);
        let down_now: Arc<Mutex<HashSet<usize>>> = Arc::default();
        let mut downtimes: BTreeMap<usize, (Duration, Duration)> = BTreeMap::new();
        let t0 = Instant::now();
        let mut churners = Vec::new();
        for &c in &churned {
            let at = Duration::from_secs_f64(rng.gen_range(0.1..0.6) * post_secs as f64);
            let members = members.clone();
            let down_now = down_now.clone();
            let times = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO)));
            let record = times.clone();
            churners.push((
                c,
                times,
                tokio::spawn(async move {
                    tokio::time::sleep(at).await;
                    down_now.lock().unwrap().insert(c);
                    let stopped = t0.elapsed();
                    let ms = members.clone();
                    tokio::task::spawn_blocking(move || ms.lock().unwrap()[c].stop())
                        .await
                        .unwrap();
                    tokio::time::sleep(down).await;
                    let ms = members.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut guard = ms.lock().unwrap();
                        guard[c].spawn();
                        // Ready check outside the lock would be nicer; a start takes ~1 s.
                        guard[c].wait_ready();
                    })
                    .await
                    .unwrap();
                    *record.lock().unwrap() = (stopped, t0.elapsed());
                    down_now.lock().unwrap().remove(&c);
                }),
            ));
        }

        // A post a second from a random running member.
        let mut posted: Vec<(String, Instant, usize)> = Vec::new();
        let mut failed_posts = 0;
        let mut loads = vec![loadavg()];
        for s in 0..post_secs {
            let tick = t0 + Duration::from_secs(s);
            tokio::time::sleep_until(tick.into()).await;
            let author = loop {
                let a = rng.gen_range(0..n);
                if !down_now.lock().unwrap().contains(&a) {
                    break a;
                }
            };
            let sent = Instant::now();
            let result = match Connection::connect(&homes[author]).await {
                Some(c) => Client::new(c).post(draft(s as usize)).await.ok(),
                None => None,
            };
            match result {
                Some(id) => posted.push((id, sent, author)),
                None => failed_posts += 1,
            }
            if s % 30 == 29 {
                loads.push(loadavg());
                println!(
                    "  {} posts after {:.0} s, {} down, load {}",
                    posted.len(),
                    t0.elapsed().as_secs_f64(),
                    down_now.lock().unwrap().len(),
                    loads.last().unwrap()
                );
            }
        }
        for (c, times, task) in churners {
            task.await.unwrap();
            downtimes.insert(c, *times.lock().unwrap());
        }
        println!(
            "posting: {} alerts posted in {:.0} s ({failed_posts} post requests failed); load {}",
            posted.len(),
            t0.elapsed().as_secs_f64(),
            loadavg()
        );

        // Catch-up: every node holds every alert (asked of the node itself, not the watcher).
        let ids: HashSet<String> = posted.iter().map(|p| p.0.clone()).collect();
        let ended = Instant::now();
        let mut held = vec![0usize; n];
        loop {
            for (i, h) in homes.iter().enumerate() {
                if held[i] == ids.len() {
                    continue;
                }
                if let Some(c) = Connection::connect(h).await {
                    if let Ok(list) = Client::new(c).alerts(AlertFilter::default()).await {
                        held[i] = list.iter().filter(|a| ids.contains(&a.id)).count();
                    }
                }
            }
            let complete = held.iter().filter(|h| **h == ids.len()).count();
            if complete == n || ended.elapsed() > catch_up {
                println!(
                    "catch-up: {complete} of {n} nodes hold all {} alerts {:.0} s after the last post",
                    ids.len(),
                    ended.elapsed().as_secs_f64()
                );
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let delivered: usize = held.iter().sum();
        let expected = ids.len() * n;
        println!(
            "delivery ratio: {delivered} / {expected} = {:.6}",
            delivered as f64 / expected as f64
        );
        if delivered < expected {
            for (i, h) in held.iter().enumerate().filter(|(_, h)| **h < ids.len()) {
                println!(
                    "  node {i} holds {h} of {}; churned: {:?}",
                    ids.len(),
                    downtimes.get(&i)
                );
            }
        }

        // Latency, per (alert, member other than its author).
        *done.lock().unwrap() = true;
        let arrivals = arrivals.lock().unwrap().clone();
        let mut live = Vec::new();
        let mut caught_up = Vec::new();
        let mut missing_arrival = 0;
        for (id, sent, author) in &posted {
            let at = sent.duration_since(t0);
            for i in (0..n).filter(|i| i != author) {
                let Some((when, listed)) = arrivals.get(&(i, id.clone())) else {
                    missing_arrival += 1;
                    continue;
                };
                let latency = when.saturating_duration_since(*sent);
                // A member down at the post (or restarted while it travelled) catches up.
                let away = downtimes
                    .get(&i)
                    .is_some_and(|(stop, start)| at < *start + Duration::from_secs(1) && at + latency > *stop);
                if *listed || away {
                    caught_up.push(latency);
                } else {
                    live.push(latency);
                }
            }
        }
        live.sort();
        caught_up.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if !live.is_empty() {
            println!(
                "latency (members running throughout): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} arrivals",
                ms(percentile(&live, 50.0)),
                ms(percentile(&live, 90.0)),
                ms(percentile(&live, 99.0)),
                ms(*live.last().unwrap()),
                live.len()
            );
        }
        if !caught_up.is_empty() {
            println!(
                "latency (a restarted member catching up): p50 {:.1} s, p99 {:.1} s, max {:.1} s over {} arrivals",
                percentile(&caught_up, 50.0).as_secs_f64(),
                percentile(&caught_up, 99.0).as_secs_f64(),
                caught_up.last().unwrap().as_secs_f64(),
                caught_up.len()
            );
        }
        println!("arrivals not seen by a watcher (found only by the final listing): {missing_arrival}");

        // Per-node cost and connectivity.
        let mut cpu = Vec::new();
        let mut rss = Vec::new();
        let mut hwm = Vec::new();
        let mut peers = Vec::new();
        let mut bytes = Vec::new();
        let pids: Vec<Option<u32>> = members.lock().unwrap().iter().map(Member::pid).collect();
        for (i, pid) in pids.iter().enumerate() {
            if let Some((c, r, h)) = pid.and_then(usage) {
                cpu.push((c * 100.0) as u64);
                rss.push(r);
                hwm.push(h);
                if i == 0 {
                    println!("founder: {c:.1} CPU s, RSS {} MiB, peak {} MiB", r / 1024, h / 1024);
                }
            }
            if let Some(c) = Connection::connect(&homes[i]).await {
                if let Ok(s) = Client::new(c).status().await {
                    peers.push(s.peers);
                    bytes.push(s.bytes_received);
                }
            }
        }
        for v in [&mut cpu, &mut rss, &mut hwm] {
            v.sort_unstable();
        }
        peers.sort_unstable();
        bytes.sort_unstable();
        let run_secs = started.elapsed().as_secs_f64();
        println!(
            "per node (over {:.0} s since enrolment began): CPU s p50 {:.1} p90 {:.1} max {:.1}; RSS MiB p50 {} p90 {} max {}; peak RSS MiB p50 {} max {}",
            run_secs,
            percentile(&cpu, 50.0) as f64 / 100.0,
            percentile(&cpu, 90.0) as f64 / 100.0,
            *cpu.last().unwrap() as f64 / 100.0,
            percentile(&rss, 50.0) / 1024,
            percentile(&rss, 90.0) / 1024,
            rss.last().unwrap() / 1024,
            percentile(&hwm, 50.0) / 1024,
            hwm.last().unwrap() / 1024,
        );
        println!(
            "connected peers per node: min {} p50 {} max {}; bytes received per node: p50 {} KiB, max {} KiB ({} alerts)",
            peers[0],
            percentile(&peers, 50.0),
            peers.last().unwrap(),
            percentile(&bytes, 50.0) / 1024,
            bytes.last().unwrap() / 1024,
            ids.len()
        );
        let du = std::process::Command::new("du")
            .args(["-sh", dir.path().to_str().unwrap()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        println!("homes on disk: {du}; load {}", loadavg());
        for w in watchers {
            w.abort();
        }
        assert_eq!(delivered, expected, "every alert reaches every member");
    });
    for m in members.lock().unwrap().iter_mut() {
        m.stop();
    }
}
