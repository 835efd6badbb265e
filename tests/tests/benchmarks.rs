//! Node benchmarks, ignored by default. Run each in release mode, one per process:
//!
//! ```text
//! cargo test --release -p lookout-tests --test benchmarks -- --ignored --nocapture --exact propagation
//! cargo test --release -p lookout-tests --test benchmarks -- --ignored --nocapture --exact catch_up
//! cargo test --release -p lookout-tests --test benchmarks -- --ignored --nocapture --exact memory
//! ip netns add lkidle && ip -n lkidle link set lo up && ip netns exec lkidle \
//!     target/release/deps/benchmarks-… --ignored --nocapture --exact idle_traffic
//! ```
//!
//! Results go to `docs/BENCHMARKS.md` ("## Node").
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, noise, tcp, yamux, Multiaddr, SwarmBuilder};
use lookout_node::api::Event;
use lookout_node::net::{self, MAX_GOSSIP_BYTES};
use lookout_node::replica::SetKind;
use lookout_node::NodeConfig;
use lookout_protocol::membership::Policy;
use lookout_tests::*;
use tokio::sync::{mpsc, oneshot};

/// Nodes in the propagation benchmark.
const NODES: usize = 20;
/// Alerts timed in the propagation benchmark (`LOOKOUT_BENCH_SAMPLES` sets another count, for a
/// profile of the timed rounds alone).
const SAMPLES: usize = 50;
/// Alerts a node lacks in the catch-up benchmark.
const CATCH_UP: usize = 10_000;
/// Alerts stored in the memory benchmark (`LOOKOUT_BENCH_ALERTS` sets another count), and at
/// most how many each member posts (Policy `posts_per_day` is a u16).
const STORED: usize = 100_000;
const PER_POSTER: usize = 50_000;
/// Longest any one benchmark may run.
const BENCH_TIMEOUT: Duration = Duration::from_secs(900);

/// Production settings, except loopback only and no mDNS.
fn bench_config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        mdns: false,
        ..NodeConfig::default()
    }
}

/// The first dials: a ring of `n` where node i also dials i + 5 (every node has four peers).
/// Lookout nodes then dial the addresses the others announce, until every member is connected
/// to every other (their connection budget is raised to the collective's size, so that they have
/// the bare swarms' topology); the benchmark times them once they are.
fn edges(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| [(i, (i + 1) % n), (i, (i + 5) % n)])
        .collect()
}

/// The topology the Lookout nodes settle in, and the plain swarms are given: every pair.
fn full_mesh(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} alerts",
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}

#[ignore = "benchmark: run in release with --ignored --nocapture"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation() {
    tokio::time::timeout(BENCH_TIMEOUT, propagation_run())
        .await
        .expect("benchmark timed out");
}

/// A pause before each round of the propagation benchmark (`LOOKOUT_BENCH_GAP_MS`, default 0:
/// back to back), the same on both sides: with one, each alert is timed on a process that has
/// finished the work the previous one left (writes and fsyncs made after the alert was shown),
/// as a single alert would be; without, that work overlaps the next round.
fn round_gap() -> Duration {
    Duration::from_millis(
        std::env::var("LOOKOUT_BENCH_GAP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// How many alerts the propagation benchmark times.
fn timed_samples() -> usize {
    std::env::var("LOOKOUT_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SAMPLES)
}

async fn propagation_run() {
    println!(
        "machine: {}; pause before each round: {} ms",
        machine(),
        round_gap().as_millis()
    );
    let lookout = lookout_propagation().await;
    let samples = timed_samples();
    println!(
        "CPU over the {samples} timed alerts (all {NODES} nodes, one process): Lookout {} ms, \
         {:.2} ms per alert; by thread: {}",
        lookout.cpu_ms,
        lookout.cpu_ms as f64 / samples as f64,
        lookout.threads
    );
    println!(
        "CPU inside the windows (post to last arrival): Lookout {:.2} ms per alert; \
         loopback packets {:.1} per alert",
        lookout.window_cpu.as_secs_f64() * 1e3 / samples as f64,
        lookout.window_packets as f64 / samples as f64
    );
    summary(
        &format!("Lookout nodes, one alert to all {NODES}"),
        lookout.all,
    );
    summary("Lookout nodes, first other node", lookout.first);
    summary(
        "Lookout nodes, `post` answered (after its fsync)",
        lookout.answered,
    );
    let bare = bare_gossipsub_propagation().await;
    println!(
        "CPU over the {samples} timed messages (all {NODES} swarms): bare gossipsub {} ms, \
         {:.2} ms per message; by thread: {}",
        bare.cpu_ms,
        bare.cpu_ms as f64 / samples as f64,
        bare.threads
    );
    println!(
        "CPU inside the windows (publish to last arrival): bare gossipsub {:.2} ms per message; \
         loopback packets {:.1} per message",
        bare.window_cpu.as_secs_f64() * 1e3 / samples as f64,
        bare.window_packets as f64 / samples as f64
    );
    summary(
        &format!("bare gossipsub, one message to all {NODES}"),
        bare.all,
    );
    summary("bare gossipsub, first other swarm", bare.first);
}

/// One propagation run's samples, from the start of the post (or publish).
#[derive(Default)]
struct Propagation {
    /// Until the last of the `NODES` nodes told its watcher (the benchmark's figure).
    all: Vec<Duration>,
    /// Until the first node other than the poster did.
    first: Vec<Duration>,
    /// Until `post` returned (Lookout only).
    answered: Vec<Duration>,
    /// CPU time of the whole process (every node) over the timed rounds.
    cpu_ms: u64,
    /// The same, per kind of thread (tokio's workers and blocking threads, sled's, ...), for
    /// the threads alive at both ends of the timed rounds.
    threads: String,
    /// CPU time of the whole process only inside each round's window (from the start of the
    /// post or publish until the last node had it): the CPU the alert's path competed for.
    window_cpu: Duration,
    /// Loopback packets sent inside those windows.
    window_packets: u64,
}

async fn lookout_propagation() -> Propagation {
    let mut collective = Collective::new(NODES - 1, Policy::default());
    collective.share_state();
    let mut nodes = Vec::new();
    for replica in std::mem::take(&mut collective.replicas) {
        let config = NodeConfig {
            member_connections: NODES,
            ..bench_config()
        };
        nodes.push(start_node_with(replica, config).await);
    }
    for (from, to) in edges(NODES) {
        connect(&nodes[from], &nodes[to]).await;
    }
    for node in &nodes {
        eventually("the first dials are up", || async {
            (node.peers().await >= 4).then_some(())
        })
        .await;
    }
    // Each node dials the addresses the others announce after their first sync: wait until
    // every node is connected to every other, so that no dial falls in the timed rounds.
    let settling = Instant::now();
    all_connected(&nodes, Duration::from_secs(300)).await;
    println!(
        "every node connected to every other {:.1} s after the first dials",
        settling.elapsed().as_secs_f64()
    );
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    for (i, node) in nodes.iter().enumerate() {
        let mut events = node.handle.watch().await.unwrap();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let Event::Alert(view) = event {
                    let _ = arrivals.send((i, view.id, Instant::now()));
                }
            }
        });
    }
    // Let the gossip mesh form over a few heartbeats, and warm up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut samples = Propagation::default();
    let mut cpu_start = 0;
    let mut threads_start = ThreadsCpu::default();
    let mut timeline = Timeline::default();
    let mut window = Window::new("lookout");
    let mut last_start: Option<Instant> = None;
    for round in 0..timed_samples() + 3 {
        if round == 3 {
            println!("timed rounds begin");
            cpu_start = cpu_ms();
            threads_start = ThreadsCpu::now();
        }
        tokio::time::sleep(round_gap()).await;
        // The marks since the last round's start are that round's (its alert's writes may
        // come after its last arrival).
        let marks = lookout_node::hop::take();
        if let Some(before) = last_start.filter(|_| round > 3) {
            timeline.round(before, marks);
        }
        let poster = &nodes[round % NODES];
        window.open(round >= 3);
        let start = Instant::now();
        last_start = Some(start);
        let id = poster
            .post(draft(&format!("propagation {round}"), "07700 900600"))
            .await;
        let answered = start.elapsed();
        let mut seen = HashSet::new();
        let mut last = start;
        let mut first: Option<Instant> = None;
        while seen.len() < NODES {
            let (node, got, at) = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
                .await
                .expect("an alert did not reach every node")
                .unwrap();
            if got == id && seen.insert(node) {
                last = last.max(at);
                if node != round % NODES {
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
        }
        window.close();
        if round >= 3 {
            samples.all.push(last - start);
            samples.first.push(first.unwrap() - start);
            samples.answered.push(answered);
        }
    }
    samples.window_cpu = window.cpu;
    samples.window_packets = window.packets;
    samples.cpu_ms = cpu_ms() - cpu_start;
    samples.threads = ThreadsCpu::now().since(&threads_start);
    println!("timed rounds end");
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some(before) = last_start {
        timeline.round(before, lookout_node::hop::take());
    }
    timeline.print();
    let mut peers = Vec::new();
    for node in &nodes {
        peers.push(node.peers().await);
    }
    println!("members connected to each node after the timed rounds: {peers:?}");
    for node in nodes {
        node.stop().await;
    }
    samples
}

/// Plain gossipsub swarms with the node's gossip settings, transport and topology (every pair
/// connected, as the Lookout nodes are once settled); the application accepts every message at
/// once.
async fn bare_gossipsub_propagation() -> Propagation {
    let topic = gossipsub::IdentTopic::new("bench");
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let mut publishers = Vec::new();
    let mut addresses = Vec::new();
    let mut dialers = Vec::new();
    for i in 0..NODES {
        let (publish, mut publishes) = mpsc::unbounded_channel::<Vec<u8>>();
        let (dial, mut dials) = mpsc::unbounded_channel::<Multiaddr>();
        let (listening, address) = oneshot::channel();
        let mut swarm = bare_swarm(&topic);
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let arrivals = arrivals.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut listening = Some(listening);
            loop {
                tokio::select! {
                    Some(data) = publishes.recv() => {
                        let id = net::message_id(&data);
                        let _ = arrivals.send((i, id, Instant::now()));
                        swarm.behaviour_mut().publish(topic.clone(), data).unwrap();
                    }
                    Some(addr) = dials.recv() => swarm.dial(addr).unwrap(),
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::NewListenAddr { address, .. } => {
                            let peer = *swarm.local_peer_id();
                            if let Some(tx) = listening.take() {
                                let _ = tx.send(address.with_p2p(peer).unwrap());
                            }
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::Message {
                            propagation_source,
                            message_id,
                            message,
                        }) => {
                            let _ = arrivals.send((i, net::message_id(&message.data), Instant::now()));
                            swarm.behaviour_mut().report_message_validation_result(
                                &message_id,
                                &propagation_source,
                                gossipsub::MessageAcceptance::Accept,
                            );
                        }
                        _ => {}
                    },
                }
            }
        });
        publishers.push(publish);
        dialers.push(dial);
        addresses.push(address.await.unwrap());
    }
    for (from, to) in full_mesh(NODES) {
        dialers[from].send(addresses[to].clone()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut samples = Propagation::default();
    let mut cpu_start = 0;
    let mut threads_start = ThreadsCpu::default();
    let mut window = Window::new("bare");
    for round in 0..timed_samples() + 3 {
        if round == 3 {
            cpu_start = cpu_ms();
            threads_start = ThreadsCpu::now();
        }
        // Same size as an alert on the wire: a 600-byte envelope in its item framing.
        let mut data = vec![0u8; 603];
        data[..8].copy_from_slice(&(round as u64).to_le_bytes());
        let id = net::message_id(&data);
        tokio::time::sleep(round_gap()).await;
        window.open(round >= 3);
        let start = Instant::now();
        publishers[round % NODES].send(data).unwrap();
        let mut seen = HashSet::new();
        let mut last = start;
        let mut first: Option<Instant> = None;
        while seen.len() < NODES {
            let (node, got, at) = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
                .await
                .expect("a message did not reach every swarm")
                .unwrap();
            if got == id && seen.insert(node) {
                last = last.max(at);
                if node != round % NODES {
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
        }
        window.close();
        if round >= 3 {
            samples.all.push(last - start);
            samples.first.push(first.unwrap() - start);
        }
    }
    samples.window_cpu = window.cpu;
    samples.window_packets = window.packets;
    samples.cpu_ms = cpu_ms() - cpu_start;
    samples.threads = ThreadsCpu::now().since(&threads_start);
    samples
}

/// Each timed round's window, from the start of the post (or publish) until the last node had
/// it: the process's CPU inside the windows, and, with `LOOKOUT_PERF_CTL` naming the control
/// fifo of a `perf record -D -1 --control fifo:PATH` and `LOOKOUT_PERF_SIDE` naming this side
/// (`lookout` or `bare`), perf enabled inside the windows alone.
struct Window {
    cpu: Duration,
    started: Option<Duration>,
    /// Packets sent on the loopback interface inside the windows (every node and swarm talks
    /// over it), and the count when the current window opened.
    packets: u64,
    packets_at: u64,
    perf: Option<std::fs::File>,
}

impl Window {
    fn new(side: &str) -> Self {
        let perf = std::env::var_os("LOOKOUT_PERF_CTL")
            .filter(|_| std::env::var("LOOKOUT_PERF_SIDE").is_ok_and(|s| s == side))
            .map(|path| std::fs::OpenOptions::new().write(true).open(path).unwrap());
        Self {
            cpu: Duration::ZERO,
            started: None,
            packets: 0,
            packets_at: 0,
            perf,
        }
    }

    /// A round begins; `timed` if it counts.
    fn open(&mut self, timed: bool) {
        if !timed {
            return;
        }
        if let Some(perf) = &mut self.perf {
            use std::io::Write;
            perf.write_all(b"enable\n").unwrap();
        }
        self.packets_at = loopback_packets();
        self.started = Some(process_cpu_now());
    }

    /// The last node had the round's alert.
    fn close(&mut self) {
        if let Some(started) = self.started.take() {
            self.cpu += process_cpu_now().saturating_sub(started);
            self.packets += loopback_packets().saturating_sub(self.packets_at);
            if let Some(perf) = &mut self.perf {
                use std::io::Write;
                perf.write_all(b"disable\n").unwrap();
            }
        }
    }
}

/// What settled members send each other while nothing is posted (keep-alives, gossip
/// heartbeats, periodic syncs): a phone on mobile data pays for every byte and every radio
/// wake-up. `LOOKOUT_BENCH_NODES` members (default 10), all connected to each other over
/// `LOOKOUT_BENCH_TRANSPORT` (`tcp`, the default, or `quic`), counted on the loopback
/// interface for `LOOKOUT_BENCH_IDLE_S` seconds (default 120), `LOOKOUT_BENCH_SETTLE_S` (default
/// 20) after every member is connected. Run it in a network namespace
/// of its own (the command at the top of this file), so that nothing else counts on `lo`.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn idle_traffic() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let waits = Duration::from_secs(
        env_or::<u64>("LOOKOUT_BENCH_SETTLE_S", 20) + env_or::<u64>("LOOKOUT_BENCH_IDLE_S", 120),
    );
    runtime.block_on(async {
        tokio::time::timeout(BENCH_TIMEOUT + waits, idle_traffic_run())
            .await
            .expect("benchmark timed out")
    });
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn idle_traffic_run() {
    let n: usize = env_or("LOOKOUT_BENCH_NODES", 10);
    let idle = Duration::from_secs(env_or("LOOKOUT_BENCH_IDLE_S", 120));
    let transport: String = env_or("LOOKOUT_BENCH_TRANSPORT", "tcp".to_owned());
    let listen: Multiaddr = match transport.as_str() {
        "quic" => "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        _ => "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
    };
    println!(
        "machine: {}; {n} members over {transport}, idle for {} s",
        machine(),
        idle.as_secs()
    );
    let mut collective = Collective::new(n - 1, Policy::default());
    collective.share_state();
    let mut nodes = Vec::new();
    for replica in std::mem::take(&mut collective.replicas) {
        let config = NodeConfig {
            listen: vec![listen.clone()],
            sync_interval: std::env::var("LOOKOUT_BENCH_SYNC_S")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(NodeConfig::default().sync_interval, Duration::from_secs),
            ..bench_config()
        };
        nodes.push(start_node_with(replica, config).await);
    }
    for (from, to) in full_mesh(n) {
        connect(&nodes[from], &nodes[to]).await;
    }
    all_connected(&nodes, Duration::from_secs(120)).await;
    // The first syncs, identify exchanges and mesh grafts are over well within 20 s; the
    // periodic syncs reach their longest interval (4 min) about 8 minutes after the last new
    // item (`LOOKOUT_BENCH_SETTLE_S=480` measures that steady state).
    tokio::time::sleep(Duration::from_secs(env_or("LOOKOUT_BENCH_SETTLE_S", 20))).await;
    let (bytes, packets) = (loopback_tx_bytes(), loopback_packets());
    let opens = tcp_active_opens();
    let cpu = process_cpu_now();
    tokio::time::sleep(idle).await;
    let bytes = loopback_tx_bytes() - bytes;
    let packets = loopback_packets() - packets;
    let opens = tcp_active_opens() - opens;
    let cpu = process_cpu_now() - cpu;
    let mut peers = Vec::new();
    for node in &nodes {
        peers.push(node.peers().await);
    }
    assert!(
        peers.iter().all(|&p| p == n - 1),
        "members lost connections while idle: {peers:?}"
    );
    let connections = (n * (n - 1) / 2) as f64;
    let hours = idle.as_secs_f64() / 3600.0;
    // Each byte on loopback is sent by one node and received by another: a node's share of
    // a connection is both directions, as its radio carries both.
    let per_connection_hour = bytes as f64 / connections / hours;
    println!(
        "idle traffic over {} s: {bytes} bytes, {packets} packets on loopback; per member \
         connection (both directions): {:.1} kB and {:.0} packets per hour; a member with 10 \
         connections: {:.1} MB per day; CPU of all {n} members: {:.1} ms per member-hour; \
         TCP connections opened meanwhile: {opens}",
        idle.as_secs(),
        per_connection_hour / 1e3,
        packets as f64 / connections / hours,
        per_connection_hour * 10.0 * 24.0 / 1e6,
        cpu.as_secs_f64() * 1e3 / n as f64 / hours
    );
    for node in nodes {
        node.stop().await;
    }
}

/// TCP connections this network namespace opened so far (`/proc/net/snmp`, `ActiveOpens`):
/// members that reconnect while idle show here.
fn tcp_active_opens() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ActiveOpens")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Wait until every node is connected to every other (at most `limit`).
async fn all_connected(nodes: &[TestNode], limit: Duration) {
    let settling = Instant::now();
    loop {
        let mut peers = Vec::new();
        for node in nodes {
            peers.push(node.peers().await);
        }
        if peers.iter().all(|&p| p == nodes.len() - 1) {
            return;
        }
        assert!(
            settling.elapsed() < limit,
            "the nodes did not connect to every member: {peers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Bytes sent on the loopback interface so far.
fn loopback_tx_bytes() -> u64 {
    loopback_counter(8)
}

/// Packets sent on the loopback interface so far.
fn loopback_packets() -> u64 {
    loopback_counter(9)
}

/// Field `column` (after the name) of the interface `lo` in `/proc/net/dev`: 8 is bytes sent,
/// 9 packets sent.
fn loopback_counter(column: usize) -> u64 {
    std::fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().nth(column)?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this process (every thread), brought up to date when read (`/proc/self/stat`
/// moves at scheduler ticks: too coarse for one round).
fn process_cpu_now() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Where each timed alert was when (`LOOKOUT_HOP_TIMES=1`): per stage, over the nodes that
/// marked it, the first, median and last mark after the round's start; printed as the median
/// over rounds.
#[derive(Default)]
struct Timeline(std::collections::BTreeMap<lookout_node::hop::Stage, Vec<[Duration; 4]>>);

impl Timeline {
    fn round(&mut self, start: Instant, marks: Vec<(lookout_node::hop::Stage, Instant)>) {
        let mut by_stage = std::collections::BTreeMap::<_, Vec<Duration>>::new();
        for (stage, at) in marks {
            by_stage
                .entry(stage)
                .or_default()
                .push(at.saturating_duration_since(start));
        }
        for (stage, mut offsets) in by_stage {
            offsets.sort();
            let n = Duration::from_nanos(offsets.len() as u64);
            let row = [
                offsets[0],
                offsets[offsets.len() / 2],
                offsets[offsets.len() - 1],
                n,
            ];
            self.0.entry(stage).or_default().push(row);
        }
    }

    fn print(&self) {
        if self.0.is_empty() {
            return;
        }
        println!("timeline (ms after `post` began; median over rounds of each round's first / median / last node; marks per round):");
        for (stage, rows) in &self.0 {
            let median = |i: usize| {
                let mut v: Vec<Duration> = rows.iter().map(|r| r[i]).collect();
                v.sort();
                v[v.len() / 2]
            };
            println!(
                "  {stage:?}: {:.2} / {:.2} / {:.2} ms ({} marks, {} rounds)",
                median(0).as_secs_f64() * 1e3,
                median(1).as_secs_f64() * 1e3,
                median(2).as_secs_f64() * 1e3,
                median(3).as_nanos(),
                rows.len()
            );
        }
    }
}

/// CPU time of this process's threads by kind (name without its trailing number), from each
/// thread's `schedstat` (nanoseconds on a CPU).
#[derive(Default)]
struct ThreadsCpu(std::collections::BTreeMap<(String, u64), Duration>);

impl ThreadsCpu {
    fn now() -> Self {
        let mut threads = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
            let Ok(entry) = entry else { continue };
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u64>() else {
                continue;
            };
            let path = entry.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let kind = name.trim().trim_end_matches(|c: char| c.is_ascii_digit());
            let on_cpu = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            threads.insert((kind.to_owned(), tid), Duration::from_nanos(on_cpu));
        }
        Self(threads)
    }

    /// What each kind of thread spent since `before` (threads alive at both ends only).
    fn since(&self, before: &Self) -> String {
        let mut kinds = std::collections::BTreeMap::<&str, Duration>::new();
        for (key, cpu) in &self.0 {
            if let Some(was) = before.0.get(key) {
                *kinds.entry(key.0.as_str()).or_default() += cpu.saturating_sub(*was);
            }
        }
        kinds
            .iter()
            .filter(|(_, cpu)| **cpu >= Duration::from_millis(1))
            .map(|(kind, cpu)| format!("{kind} {} ms", cpu.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn bare_swarm(topic: &gossipsub::IdentTopic) -> libp2p::Swarm<gossipsub::Behaviour> {
    // The node's gossip_config and score parameters (node/src/net/behaviour.rs).
    let heartbeat = net::DEFAULT_GOSSIP_HEARTBEAT;
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::new(&net::message_id(&m.data))
        })
        .flood_publish(true)
        .heartbeat_interval(heartbeat)
        .heartbeat_initial_delay(heartbeat)
        .build()
        .unwrap();
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).unwrap();
    behaviour
        .with_peer_score(score_params(topic.hash()), score_thresholds())
        .unwrap();
    behaviour.subscribe(topic).unwrap();
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(net::DEFAULT_IDLE_TIMEOUT))
        .build()
}

fn score_params(topic: gossipsub::TopicHash) -> gossipsub::PeerScoreParams {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 1000.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            3600,
        )),
        ..gossipsub::TopicScoreParams::default()
    };
    gossipsub::PeerScoreParams {
        topics: [(topic, topic_params)].into_iter().collect(),
        topic_score_cap: 10.0,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        ..gossipsub::PeerScoreParams::default()
    }
}

fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        ..gossipsub::PeerScoreThresholds::default()
    }
}

#[ignore = "benchmark: run in release with --ignored --nocapture"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up() {
    tokio::time::timeout(BENCH_TIMEOUT, catch_up_run())
        .await
        .expect("benchmark timed out");
}

async fn catch_up_run() {
    println!("machine: {}", machine());
    let policy = Policy {
        posts_per_day: 20_000,
        ..Policy::default()
    };
    let mut collective = Collective::new(1, policy);
    collective.share_state();
    let founder = &mut collective.replicas[0];
    let started = Instant::now();
    for i in 0..CATCH_UP {
        founder
            .post(draft(&format!("catch-up {i}"), "07700 900601"))
            .unwrap();
    }
    let posting = started.elapsed();
    let ids: Vec<[u8; 32]> = founder
        .sync_items(SetKind::Envelopes)
        .iter()
        .map(|i| i.id)
        .collect();
    let lacked: usize = founder
        .fetch(SetKind::Envelopes, &ids)
        .unwrap()
        .iter()
        .map(Vec::len)
        .sum();
    founder.take_outgoing();
    founder.take_events();
    // The founder (the sender) runs in a process of its own, so that this process's CPU time
    // is the catching-up node's alone.
    let mut replicas = std::mem::take(&mut collective.replicas).into_iter();
    let founder = replicas.next().unwrap();
    let founder_home = founder.home().to_path_buf();
    founder.close().unwrap();
    let mut sender = Sender::start(&founder_home);
    let back = start_node_with(replicas.next().unwrap(), bench_config()).await;
    let limits_before = verify_limits();
    let cpu_start = process_cpu();
    let written_start = bytes_written();
    let start = Instant::now();
    back.handle.dial(sender.addr.clone()).await.unwrap();
    let mut firsts = None;
    loop {
        let alerts = back.status().await.alerts;
        if alerts > 0 && firsts.is_none() {
            firsts = Some(start.elapsed());
        }
        if alerts == CATCH_UP {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "catch-up stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    let cpu = process_cpu() - cpu_start;
    let written = bytes_written() - written_start;
    let sender_cpu = sender.stop();
    let received = back.handle.stats().await.unwrap().bytes_received;
    println!(
        "offline posting: {CATCH_UP} alerts in {posting:.2?} ({:.0}/s)",
        CATCH_UP as f64 / posting.as_secs_f64()
    );
    println!(
        "catch-up: {CATCH_UP} alerts in {took:.2?} from dial ({:.0} alerts/s; first after {:.2?})",
        CATCH_UP as f64 / took.as_secs_f64(),
        firsts.unwrap_or_default()
    );
    println!(
        "catch-up CPU: receiving node {cpu:.2?} (its whole process, every thread) = {:.0} alerts per CPU-second; \
         sender {sender_cpu:.2?} (its own process, from its node's start until told to stop); \
         both {:.0} alerts per CPU-second",
        CATCH_UP as f64 / cpu.as_secs_f64(),
        CATCH_UP as f64 / (cpu + sender_cpu).as_secs_f64()
    );
    println!(
        "catch-up bytes: received {received} for {lacked} bytes of envelopes lacked ({:.3}x); \
         the receiving process wrote {written} bytes to storage ({:.0} per alert)",
        received as f64 / lacked as f64,
        written as f64 / CATCH_UP as f64
    );
    back.stop().await;
    let limits_after = verify_limits();
    for (when, limits) in [("before", limits_before), ("after", limits_after)] {
        let Limits {
            strict,
            batched,
            large,
            ratio,
            ratio_large,
        } = limits;
        println!(
            "limits {when} the catch-up, per CPU-second of one thread: verify_strict {strict:.0}/s, \
             open_batch of {LIMIT_BATCH} {batched:.0} envelopes/s, of {LARGE_BATCH} {large:.0}/s; \
             median of the per-round ratios (verify_strict time per signature / open_batch time \
             per envelope, same round): {ratio:.2}x at {LIMIT_BATCH}, {ratio_large:.2}x at {LARGE_BATCH}"
        );
    }
    single_verify_limit();
}

/// The catch-up's sending node, run by [`catch_up_sender`] in a child process.
struct Sender {
    child: std::process::Child,
    /// Its listen address with its peer id.
    addr: Multiaddr,
    /// Its CPU time in milliseconds, once told to stop.
    cpu_ms: std::sync::mpsc::Receiver<u64>,
}

impl Sender {
    /// Starts the node of the store in `home` in a child process, and waits for its address.
    fn start(home: &std::path::Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "--nocapture", "catch_up_sender"])
            .env("LOOKOUT_BENCH_HOME", home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the sender exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("sender listens: ") {
                break addr.parse().unwrap();
            }
        };
        // Keep reading its output on a thread (a full pipe would block it).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(ms) = line.strip_prefix("sender CPU ms: ") {
                    let _ = tx.send(ms.parse::<u64>().unwrap());
                }
            }
        });
        Self {
            child,
            addr,
            cpu_ms: rx,
        }
    }

    /// Tells the sender to stop; its CPU time from its node's start until then.
    fn stop(&mut self) -> Duration {
        drop(self.child.stdin.take());
        let ms = self
            .cpu_ms
            .recv_timeout(Duration::from_secs(60))
            .expect("the sender did not report its CPU time");
        let _ = self.child.wait();
        Duration::from_millis(ms)
    }
}

/// Started by [`catch_up`] in a child process: runs the node of the store in
/// `LOOKOUT_BENCH_HOME`, prints its address, and once its standard input closes, the CPU time
/// of this process since its node started.
#[ignore = "started by the catch_up benchmark"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_sender() {
    let Ok(home) = std::env::var("LOOKOUT_BENCH_HOME") else {
        return;
    };
    let node = start_node_with(reopen(std::path::Path::new(&home)), bench_config()).await;
    let addr = listen_addr(&node).await;
    let cpu_start = process_cpu();
    println!("sender listens: {addr}");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await
    .unwrap();
    let cpu = process_cpu() - cpu_start;
    println!("sender CPU ms: {}", cpu.as_millis());
    node.stop().await;
}

/// Envelopes per batch in [`verify_limits`]: the sync runs before branch `catchup`.
const LIMIT_BATCH: usize = 128;
/// A whole fetch ([`lookout_node::sync::MAX_FETCH_IDS`]) as one batch: a sync run now
/// ([`lookout_node::sync::INGEST_BATCH`]).
const LARGE_BATCH: usize = lookout_node::sync::INGEST_BATCH;

/// What [`verify_limits`] measured.
struct Limits {
    /// `verify_strict` signatures per CPU-second.
    strict: f64,
    /// Envelopes per CPU-second through `open_batch` of [`LIMIT_BATCH`].
    batched: f64,
    /// The same in batches of [`LARGE_BATCH`].
    large: f64,
    /// Median over rounds of (`verify_strict` time per signature ÷ `open_batch` time per
    /// envelope) in the same round, at [`LIMIT_BATCH`]: robust to a load that changes between
    /// rounds.
    ratio: f64,
    /// The same at [`LARGE_BATCH`] (every round that ran one).
    ratio_large: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The ceilings of one core in this process, interleaved round by round and timed in CPU time
/// of this thread: raw `verify_strict` (key already decompressed, 600-byte message) and
/// `envelope::open_batch` of [`LIMIT_BATCH`] and of [`LARGE_BATCH`] alerts by one author (as in
/// the catch-up).
fn verify_limits() -> Limits {
    use ed25519_dalek::{Signer, SigningKey};
    use lookout_protocol::content::{Alert, Category, Content, Identifiers, Severity};
    use lookout_protocol::envelope::{self, InnerBody};
    use lookout_protocol::epoch::EpochKey;
    use lookout_protocol::identity::Identity;
    use lookout_protocol::{CollectiveId, OpId};
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let author = Identity::generate(&mut rng);
    let collective = CollectiveId([5; 32]);
    let key = EpochKey::generate(&mut rng);
    let now = 1_790_000_000;
    let mut identifiers = Identifiers {
        phones: vec!["07700 900601".into()],
        plates: Vec::new(),
        names: Vec::new(),
        handles: Vec::new(),
        description: String::new(),
    };
    identifiers.normalise("GB").unwrap();
    // As the catch-up's alerts (`draft`).
    let content = Content::Alert(Alert {
        category: Category::Violence,
        severity: Severity::High,
        description: "catch-up limit".into(),
        identifiers,
        area: "Harbour Street".into(),
        incident_time: None,
        language: "en".into(),
        on_behalf: false,
    });
    let envelopes: Vec<Vec<u8>> = (0..LARGE_BATCH)
        .map(|i| {
            let body = InnerBody {
                collective,
                epoch: key.id(),
                author: author.member_id(),
                seq: i as u64 + 1,
                heads: vec![OpId([3; 32])],
                timestamp: now + i as u64,
                expires: now + 30 * 86_400,
                content: content.clone(),
            };
            envelope::seal(&author, &key, body, &mut rng).unwrap().bytes
        })
        .collect();
    let large: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    let refs = &large[..LIMIT_BATCH];
    let signing = SigningKey::from_bytes(&[9; 32]);
    let public = signing.verifying_key();
    let message = lookout_protocol::sig::signed_message(b"bench", &[7u8; 600]);
    let signature = signing.sign(&message);
    const ROUNDS: usize = 64;
    let (mut strict, mut batched, mut batched_large) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut ratios, mut ratios_large) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let t = thread_cpu();
        for _ in 0..LIMIT_BATCH {
            assert!(public
                .verify_strict(std::hint::black_box(&message), &signature)
                .is_ok());
        }
        let strict_round = thread_cpu() - t;
        strict += strict_round;
        let t = thread_cpu();
        let opened = envelope::open_batch(std::hint::black_box(refs), collective, |e| {
            (*e == key.id()).then_some(&key)
        });
        let batched_round = thread_cpu() - t;
        batched += batched_round;
        assert!(opened.iter().all(Result::is_ok));
        // Both per item, over LIMIT_BATCH items each.
        ratios.push(strict_round.as_secs_f64() / batched_round.as_secs_f64());
        if round % (LARGE_BATCH / LIMIT_BATCH) == 0 {
            let t = thread_cpu();
            let opened = envelope::open_batch(std::hint::black_box(&large), collective, |e| {
                (*e == key.id()).then_some(&key)
            });
            let large_round = thread_cpu() - t;
            batched_large += large_round;
            assert!(opened.iter().all(Result::is_ok));
            ratios_large.push(
                (strict_round.as_secs_f64() / LIMIT_BATCH as f64)
                    / (large_round.as_secs_f64() / LARGE_BATCH as f64),
            );
        }
    }
    let n = (ROUNDS * LIMIT_BATCH) as f64;
    Limits {
        strict: n / strict.as_secs_f64(),
        batched: n / batched.as_secs_f64(),
        large: n / batched_large.as_secs_f64(),
        ratio: median(ratios),
        ratio_large: median(ratios_large),
    }
}

/// Bytes this process has caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`: counted when a page is dirtied, whoever writes it back).
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this whole process (every thread), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    cpu_of("/proc/self/stat")
}

/// CPU time of the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: time on a
/// CPU).
fn thread_cpu() -> Duration {
    // The kernel brings the running thread's time up to date for this clock (unlike
    // /proc/thread-self/schedstat, which moves at scheduler ticks: too coarse for one round).
    Duration::from(
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .expect("thread CPU clock"),
    )
}

/// Fields 14 and 15 (utime, stime) of a `stat` file, in clock ticks (`USER_HZ`, 100 on Linux:
/// a resolution of 10 ms, so sum over enough work).
fn cpu_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).expect("procfs");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("a tick count"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

/// The ceiling of one core for single signature checks, in the same run: `verify_strict`
/// (ed25519-dalek) and the protocol's rule (`sig::verify`, ZIP-215 with a key check), each over
/// a 600-byte message.
fn single_verify_limit() {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[9; 32]);
    let public = key.verifying_key();
    let message = lookout_protocol::sig::signed_message(b"bench", &[7u8; 600]);
    let signature = key.sign(&message);
    const N: u32 = 4000;
    let started = Instant::now();
    for _ in 0..N {
        assert!(public
            .verify_strict(std::hint::black_box(&message), &signature)
            .is_ok());
    }
    let strict = started.elapsed() / N;
    let started = Instant::now();
    for _ in 0..N {
        assert!(lookout_protocol::sig::verify(
            public.as_bytes(),
            b"bench",
            std::hint::black_box(&[7u8; 600]),
            &signature.to_bytes()
        ));
    }
    let rule = started.elapsed() / N;
    println!(
        "single verification on one core: verify_strict {strict:.1?} ({:.0}/s), sig::verify {rule:.1?} ({:.0}/s)",
        1.0 / strict.as_secs_f64(),
        1.0 / rule.as_secs_f64()
    );
}

/// Fills a store with [`STORED`] alerts, then measures a node started on it in a fresh process.
#[ignore = "benchmark: run in release with --ignored --nocapture"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    tokio::time::timeout(BENCH_TIMEOUT, memory_run())
        .await
        .expect("benchmark timed out");
}

async fn memory_run() {
    println!("machine: {}", machine());
    let stored: usize = std::env::var("LOOKOUT_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(STORED);
    let posters = stored.div_ceil(PER_POSTER).max(2);
    let per_poster = stored / posters;
    let policy = Policy {
        posts_per_day: u16::try_from(per_poster + 100).unwrap(),
        ..Policy::default()
    };
    let mut collective = Collective::new(posters - 1, policy);
    collective.share_state();
    let started = Instant::now();
    let replicas = std::mem::take(&mut collective.replicas);
    // Two posters at a time: the machine has two cores.
    let mut posted = Vec::new();
    let mut queue = replicas.into_iter();
    loop {
        let batch: Vec<_> = queue.by_ref().take(2).collect();
        if batch.is_empty() {
            break;
        }
        let handles: Vec<_> = batch
            .into_iter()
            .map(|mut replica| {
                std::thread::spawn(move || {
                    for i in 0..per_poster {
                        replica
                            .post(draft(&format!("stored {i}"), "07700 900602"))
                            .unwrap();
                        if i % 1000 == 0 {
                            replica.take_outgoing();
                            replica.take_events();
                        }
                    }
                    replica
                })
            })
            .collect();
        posted.extend(handles.into_iter().map(|h| h.join().unwrap()));
    }
    println!(
        "filled {} alerts by {posters} members in {:.1?}",
        per_poster * posters,
        started.elapsed()
    );
    // Gather everything in the founder's store.
    let (founder, others) = posted.split_first_mut().unwrap();
    for other in others.iter_mut() {
        let ids: Vec<[u8; 32]> = other
            .sync_items(SetKind::Envelopes)
            .iter()
            .map(|i| i.id)
            .collect();
        for chunk in ids.chunks(1000) {
            let items: Vec<_> = other
                .fetch(SetKind::Envelopes, chunk)
                .unwrap()
                .into_iter()
                .map(|bytes| lookout_node::replica::WireItem {
                    kind: SetKind::Envelopes,
                    bytes,
                })
                .collect();
            founder.ingest_many(&items).unwrap();
            founder.take_events();
        }
    }
    // As after a sync with a member: no post of the founder's is still "unsent" (an outbox of
    // 50,000 offline posts would be walked by every status: +24 MiB at 100,000 alerts).
    founder.clear_outbox().unwrap();
    founder.flush().unwrap();
    let home = founder.home().to_path_buf();
    let empty_home = collective.dir.path().join("empty");
    {
        let mut empty = fresh_identity(&empty_home, "empty");
        empty.create_collective("Empty", Policy::default()).unwrap();
        empty.close().unwrap();
    }
    for replica in posted {
        replica.close().unwrap();
    }
    let size: u64 = dir_size(&home);
    println!(
        "store size on disk with {stored} alerts: {:.1} MiB",
        size as f64 / 1048576.0
    );
    if std::env::var_os("LOOKOUT_BENCH_KEEP").is_some() {
        // Kept for measuring other builds on the same stores (`memory_probe` with
        // LOOKOUT_BENCH_HOME); the caller deletes it.
        let kept = std::mem::replace(&mut collective.dir, tempfile::tempdir().unwrap()).keep();
        println!(
            "kept: stores in {} (alerts: {}, empty: {})",
            kept.display(),
            home.display(),
            empty_home.display()
        );
    }
    let label = format!("{stored} alerts");
    for (label, home) in [("no alerts", &empty_home), (label.as_str(), &home)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "--nocapture", "memory_probe"])
            .env("LOOKOUT_BENCH_HOME", home)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("probe:")).collect();
        if lines.len() < 2 {
            panic!(
                "probe failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for line in lines {
            println!("node with {label}: {line}");
        }
    }
}

/// Started by [`memory`] in a fresh process: open the store, start a node, report memory.
#[ignore = "started by the memory benchmark"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_probe() {
    tokio::time::timeout(BENCH_TIMEOUT, memory_probe_run())
        .await
        .expect("benchmark timed out");
}

async fn memory_probe_run() {
    let Ok(home) = std::env::var("LOOKOUT_BENCH_HOME") else {
        return;
    };
    let before = rss_kib("VmRSS");
    // The database alone first (sled's recovery, no post read), then the replica.
    let (store_open, store_rss) = {
        let opened = Instant::now();
        let store =
            lookout_node::store::Store::open(std::path::Path::new(&home), PASSPHRASE).unwrap();
        let took = opened.elapsed();
        let rss = rss_kib("VmRSS");
        store.close().unwrap();
        (took, rss)
    };
    let cpu_before = cpu_ms();
    let opened = Instant::now();
    let mut replica = reopen(std::path::Path::new(&home));
    let load = opened.elapsed();
    let load_cpu = cpu_ms() - cpu_before;
    let opened_rss = rss_kib("VmRSS");
    // What the first sync session builds (and keeps until the set changes): the sorted
    // reconciliation set of every envelope held.
    let synced = Instant::now();
    let sync_set = replica.sync_items(SetKind::Envelopes).len();
    let sync_build = synced.elapsed();
    let synced_rss = rss_kib("VmRSS");
    let node = start_node_with(replica, bench_config()).await;
    let started_rss = rss_kib("VmRSS");
    let status = node.status().await;
    let status_rss = rss_kib("VmRSS");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = rss_kib("VmRSS");
    let settled_peak = rss_kib("VmHWM");
    // What `lookout alerts` shows first: one page of 500.
    let paged = Instant::now();
    let first_page = match node
        .handle
        .execute(lookout_node::api::Request::AlertsPage {
            filter: lookout_node::api::AlertFilter::default(),
            after: None,
            limit: 500,
        })
        .await
        .unwrap()
    {
        lookout_node::api::Response::AlertsPage { alerts, .. } => alerts.len(),
        other => panic!("unexpected {other:?}"),
    };
    let page = paged.elapsed();
    let listed = Instant::now();
    let alerts = node.alerts().await.len();
    let list = listed.elapsed();
    let checked = Instant::now();
    let found = match node
        .handle
        .execute(lookout_node::api::Request::Check {
            term: "07700 900602".into(),
        })
        .await
        .unwrap()
    {
        lookout_node::api::Response::Alerts { alerts } => alerts.len(),
        other => panic!("unexpected {other:?}"),
    };
    let check = checked.elapsed();
    println!(
        "probe: store alone: open {store_open:.2?}, RSS {} MiB; replica open {load:.2?} (CPU {load_cpu} ms), \
         RSS {} MiB; reconciliation set of {sync_set} built in {sync_build:.2?}, RSS {} MiB; \
         node started, RSS {} MiB; after a status, RSS {} MiB",
        store_rss / 1024,
        opened_rss / 1024,
        synced_rss / 1024,
        started_rss / 1024,
        status_rss / 1024
    );
    println!(
        "probe: {} alerts, open {load:.2?}; RSS {} MiB after start (process before open {} MiB), peak {} MiB; \
         first page {page:.2?} ({first_page} alerts), list all {list:.2?}, check {check:.2?} ({found} found); \
         RSS after listing {} MiB, peak {} MiB",
        status.alerts.max(alerts),
        settled / 1024,
        before / 1024,
        settled_peak / 1024,
        rss_kib("VmRSS") / 1024,
        rss_kib("VmHWM") / 1024
    );
    node.stop().await;
}

/// CPU time of this process so far (user + system), in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the command name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks * 10
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                dir_size(&p)
            } else {
                p.metadata().unwrap().len()
            }
        })
        .sum()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}
