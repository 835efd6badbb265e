//! Flood: a member's key in a hostile program sends thousands of bogus messages per second at one
//! node — undecodable gossip, forged envelopes and ops, envelopes under made-up epochs, oversized
//! gossip, junk, oversized and truncated sync frames, requests that break the rules — for a
//! bounded time, and keeps coming back when it is disconnected. Meanwhile the flooded node and
//! an honest member exchange alerts. The node must stay up, its memory bounded, the attacker
//! penalised and disconnected, and honest alerts must keep arriving within seconds.
//!
//! The attacker runs in a child process (this test binary again, running the ignored
//! `flooder_process` helper), so the resident memory measured here is the two nodes' alone.
//!
//! The 60-second run is `#[ignore]`d; its figures are in `SECURITY.md`:
//!
//! ```text
//! cargo test -p lookout-tests --test flood a_flooding_member_is_survived_for_a_minute -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, noise, tcp, yamux, Multiaddr, PeerId, SwarmBuilder};
use lookout_node::net::{Credentials, Gated, MemberGate};
use lookout_node::net::{MAX_GOSSIP_BYTES, SYNC_PROTOCOL};
use lookout_node::replica::{SetKind, WireItem};
use lookout_node::sync::{self, SyncRequest};
use lookout_protocol::envelope::{Outer, MAX_ENVELOPE_BYTES, VERSION};
use lookout_protocol::membership::Policy;
use lookout_protocol::EpochId;
use lookout_tests::rogue::{hello_behaviour, HelloDriver, RawCodec};
use lookout_tests::*;

/// Most growth of the test process's resident memory (the two nodes; the attacker runs in its
/// own process) between before the flood and its peak. The node's own caps (held items, refused
/// ids, gossip caches, stream counts) come to well under this.
const MAX_RSS_GROWTH_BYTES: u64 = 64 * 1024 * 1024;
/// Longest an honest alert may take to reach the other honest node during the flood.
const MAX_HONEST_LATENCY: Duration = Duration::from_secs(5);
/// The attacker's pace: every tick, this many gossip messages and sync requests.
const TICK: Duration = Duration::from_millis(5);
const GOSSIP_PER_TICK: u64 = 20;
const SYNC_PER_TICK: u64 = 4;
/// One gossip message in this many is over the node's gossip size cap.
const OVERSIZED_EVERY: u64 = 1000;
/// Sync requests the attacker keeps in flight at most (its own memory counts in ours).
const MAX_ATTACKER_IN_FLIGHT: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_member_is_survived_for_20_seconds() {
    let report = flood(Duration::from_secs(20)).await;
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute long; run by hand, the figures are in SECURITY.md"]
async fn a_flooding_member_is_survived_for_a_minute() {
    let report = flood(Duration::from_secs(60)).await;
    report.check();
}

/// What one flood did and what the flooded node went through.
#[derive(Debug)]
struct Report {
    duration: Duration,
    gossip_sent: u64,
    gossip_refused_locally: u64,
    sync_sent: u64,
    sync_answered: u64,
    sync_failed: u64,
    attacker_connections: u64,
    attacker_disconnections: u64,
    attacker_peak_rss: u64,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    latencies: Vec<Duration>,
    rejected_by_node: u64,
}

impl Report {
    fn messages(&self) -> u64 {
        self.gossip_sent + self.sync_sent
    }

    fn check(&self) {
        println!("{}", self.summary());
        let rate = self.messages() as f64 / self.duration.as_secs_f64();
        assert!(
            rate >= 500.0,
            "the attacker managed only {rate:.0} messages/s: not a flood"
        );
        assert!(
            self.attacker_disconnections >= 1,
            "the flooded node never disconnected the attacker"
        );
        assert!(self.rejected_by_node >= 1, "no gossip was rejected");
        let growth = self.rss_peak.saturating_sub(self.rss_before);
        assert!(
            growth < MAX_RSS_GROWTH_BYTES,
            "memory grew by {} MiB during the flood",
            growth >> 20
        );
        assert!(
            !self.latencies.is_empty(),
            "no honest alert was exchanged during the flood"
        );
        let worst = self.latencies.iter().max().copied().unwrap_or_default();
        assert!(
            worst <= MAX_HONEST_LATENCY,
            "an honest alert took {worst:?} during the flood"
        );
    }

    fn summary(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let worst = sorted.last().copied().unwrap_or_default();
        let secs = self.duration.as_secs_f64();
        format!(
            "flood {secs:.0} s: {} messages ({:.0}/s): {} gossip ({} more refused by the \
             attacker's own full queues), {} sync requests ({} answered, {} failed); attacker \
             connected {} times, disconnected {} times; node rejected {} gossip messages; \
             nodes' RSS before {} MiB, peak {} MiB, after {} MiB (attacker process peak {} MiB); \
             {} honest alerts, latency median {} ms, worst {} ms",
            self.messages(),
            self.messages() as f64 / secs,
            self.gossip_sent,
            self.gossip_refused_locally,
            self.sync_sent,
            self.sync_answered,
            self.sync_failed,
            self.attacker_connections,
            self.attacker_disconnections,
            self.rejected_by_node,
            self.rss_before >> 20,
            self.rss_peak >> 20,
            self.rss_after >> 20,
            self.attacker_peak_rss >> 20,
            self.latencies.len(),
            median.as_millis(),
            worst.as_millis(),
        )
    }
}

async fn flood(length: Duration) -> Report {
    tokio::time::timeout(length + Duration::from_secs(120), async {
        let policy = Policy {
            posts_per_day: 1000,
            ..Policy::default()
        };
        let mut collective = Collective::new(2, policy);
        collective.share_state();
        // Member 2's key goes into the flooder instead of a node.
        let mut hostile = collective.replicas.pop().unwrap();
        // A real membership op, whose signature the flooder alters to forge well-formed ops.
        let ids: Vec<[u8; 32]> = hostile
            .sync_items(SetKind::Ops)
            .iter()
            .map(|i| i.id)
            .collect();
        let op = hostile.fetch(SetKind::Ops, &ids).unwrap().remove(0);
        let log = hostile.membership().unwrap();
        let topic = log.collective().topic();
        let tag = log.collective().tag();
        let (_dir, nodes) = collective.start().await;
        let (victim, honest) = (&nodes[0], &nodes[1]);
        victim.wait_members(3).await;
        eventually("the honest member connects", || async {
            (victim.peers().await >= 1).then_some(())
        })
        .await;
        let target = listen_addr(victim).await;

        // Warm up: one alert each way before measuring.
        for (from, to) in [(honest, victim), (victim, honest)] {
            let id = from.post(draft("warm up", "07700 900600")).await;
            eventually("warm-up alert arrives", || async {
                to.has_alert(&id).await.then_some(())
            })
            .await;
        }
        let rss_before = rss_bytes();
        let rss_peak = Arc::new(AtomicU64::new(rss_before));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, on) = (rss_peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while on.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };

        let flooder = Flooder::spawn(
            (
                &hostile.identity().ed25519_seed()[..],
                &hostile.hello_secret().unwrap()[..],
            ),
            &topic,
            tag,
            &op,
            &target,
            victim.handle.peer_id(),
            length,
        );

        // Honest traffic: an alert every second, alternating direction, timed until it shows
        // up on the other node.
        let mut latencies = Vec::new();
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < length {
            let (from, to) = if n.is_multiple_of(2) {
                (honest, victim)
            } else {
                (victim, honest)
            };
            let posted = Instant::now();
            let id = from
                .post(draft(&format!("honest alert {n}"), "07700 900601"))
                .await;
            eventually("an honest alert arrives during the flood", || async {
                to.has_alert(&id).await.then_some(())
            })
            .await;
            latencies.push(posted.elapsed());
            n += 1;
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(posted.elapsed())).await;
        }
        let c = tokio::task::spawn_blocking(move || flooder.wait())
            .await
            .unwrap();
        let duration = start.elapsed();

        // The node is still up and still takes alerts.
        let id = honest.post(draft("after the flood", "07700 900602")).await;
        eventually("an alert arrives after the flood", || async {
            victim.has_alert(&id).await.then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        sampling.store(false, Ordering::Relaxed);
        sampler.await.unwrap();
        let rss_after = rss_bytes();
        let stats = victim.handle.stats().await.unwrap();
        let status = victim.status().await;
        assert_eq!(
            status.alerts,
            2 + latencies.len() + 1,
            "only honest alerts were taken in"
        );
        Report {
            duration,
            gossip_sent: c.gossip_sent,
            gossip_refused_locally: c.gossip_refused,
            sync_sent: c.sync_sent,
            sync_answered: c.sync_answered,
            sync_failed: c.sync_failed,
            attacker_connections: c.connections,
            attacker_disconnections: c.disconnections,
            attacker_peak_rss: c.peak_rss,
            rss_before,
            rss_peak: rss_peak.load(Ordering::Relaxed).max(rss_after),
            rss_after,
            latencies,
            rejected_by_node: stats.rejected,
        }
    })
    .await
    .expect("flood scenario timed out")
}

/// This process's resident set size, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// A memory figure of this process from `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// The environment variable that tells `flooder_process` what to flood.
const FLOOD_ENV: &str = "LOOKOUT_FLOOD";

/// The helper the flood tests spawn as the attacker's process; does nothing when run by hand.
#[test]
#[ignore = "helper: the attacker process the flood tests spawn"]
fn flooder_process() {
    let Ok(config) = std::env::var(FLOOD_ENV) else {
        return;
    };
    let fields: Vec<&str> = config.split(' ').collect();
    let [seed, hello_secret, topic, tag, op, target, victim, secs] = fields[..] else {
        panic!("bad {FLOOD_ENV}: {config}");
    };
    let seed: [u8; 32] = hex_bytes(seed).try_into().unwrap();
    let hello_secret: [u8; 32] = hex_bytes(hello_secret).try_into().unwrap();
    let creds = Credentials::new(&hello_secret, &seed);
    let tag: [u8; 8] = hex_bytes(tag).try_into().unwrap();
    let attack = Attack {
        creds,
        topic: topic.to_owned(),
        collective_tag: tag,
        op: hex_bytes(op),
        target: target.parse().unwrap(),
        victim: victim.parse().unwrap(),
        length: Duration::from_secs(secs.parse().unwrap()),
    };
    let c = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run_flooder(attack));
    println!(
        "FLOOD-COUNTERS {} {} {} {} {} {} {} {}",
        c.gossip_sent,
        c.gossip_refused,
        c.sync_sent,
        c.sync_answered,
        c.sync_failed,
        c.connections,
        c.disconnections,
        proc_status_bytes("VmHWM:"),
    );
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The attacker's process.
struct Flooder {
    child: std::process::Child,
}

/// What the attacker sent and saw (and, reported by its process, its peak memory).
#[derive(Default)]
struct Sent {
    gossip_sent: u64,
    gossip_refused: u64,
    sync_sent: u64,
    sync_answered: u64,
    sync_failed: u64,
    connections: u64,
    disconnections: u64,
    peak_rss: u64,
}

impl Flooder {
    /// Start flooding `victim` at `target` with the member key `seed` of the collective with
    /// hello secret `hello_secret`, for `length`.
    fn spawn(
        (seed, hello_secret): (&[u8], &[u8]),
        topic: &str,
        tag: [u8; 8],
        op: &[u8],
        target: &Multiaddr,
        victim: PeerId,
        length: Duration,
    ) -> Self {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let config = format!(
            "{} {} {topic} {} {} {target} {victim} {}",
            hex(seed),
            hex(hello_secret),
            hex(&tag),
            hex(op),
            length.as_secs()
        );
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "flooder_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FLOOD_ENV, config)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Wait for the flood to end and read the attacker's figures.
    fn wait(self) -> Sent {
        let output = self.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("FLOOD-COUNTERS ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("the flooder reported nothing: {stdout}"));
        let n: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
        Sent {
            gossip_sent: n[0],
            gossip_refused: n[1],
            sync_sent: n[2],
            sync_answered: n[3],
            sync_failed: n[4],
            connections: n[5],
            disconnections: n[6],
            peak_rss: n[7],
        }
    }
}

/// What to flood, and with what key.
struct Attack {
    /// The member's key and collective, proved in the hello.
    creds: Credentials,
    topic: String,
    collective_tag: [u8; 8],
    /// A real membership op to forge copies of.
    op: Vec<u8>,
    target: Multiaddr,
    victim: PeerId,
    length: Duration,
}

#[derive(NetworkBehaviour)]
struct FloodInner {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

#[derive(NetworkBehaviour)]
struct FloodBehaviour {
    hello: request_response::Behaviour<lookout_node::net::HelloCodec>,
    gate: MemberGate<FloodInner>,
}

/// Flood the victim for the attack's length, redialling whenever it hangs up.
async fn run_flooder(attack: Attack) -> Sent {
    let Attack {
        creds,
        topic,
        collective_tag,
        op,
        target,
        victim,
        length,
    } = attack;
    let mut sent = Sent::default();
    let gossip = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .max_transmit_size(1024 * 1024)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::new(&lookout_node::net::message_id(&m.data))
        })
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip).unwrap();
    let topic = gossipsub::IdentTopic::new(topic);
    gossipsub.subscribe(&topic).unwrap();
    let sync = request_response::Behaviour::with_codec(
        RawCodec,
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(5))
            .with_max_concurrent_streams(MAX_ATTACKER_IN_FLIGHT),
    );
    let mut driver = HelloDriver::new(Some(creds));
    let mut swarm = SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| FloodBehaviour {
            hello: hello_behaviour(),
            gate: MemberGate::new(FloodInner { gossipsub, sync }, Default::default()),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();

    let mut junk = Junk::new(collective_tag, op);
    let mut in_flight: HashSet<OutboundRequestId> = HashSet::new();
    let mut connected = false;
    let mut dialing = false;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let deadline = tokio::time::Instant::now() + length;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return sent,
            _ = ticker.tick() => {
                if !connected {
                    if !dialing {
                        dialing = swarm.dial(target.clone()).is_ok();
                    }
                    continue;
                }
                for _ in 0..GOSSIP_PER_TICK {
                    match swarm.behaviour_mut().gate.inner.gossipsub.publish(topic.clone(), junk.gossip()) {
                        Ok(_) => sent.gossip_sent += 1,
                        Err(_) => sent.gossip_refused += 1,
                    };
                }
                for _ in 0..SYNC_PER_TICK {
                    if in_flight.len() >= MAX_ATTACKER_IN_FLIGHT {
                        break;
                    }
                    let id = swarm.behaviour_mut().gate.inner.sync.send_request(&victim, junk.sync_frame());
                    in_flight.insert(id);
                    sent.sync_sent += 1;
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } if peer_id == victim => {
                    let local = *swarm.local_peer_id();
                    let b = swarm.behaviour_mut();
                    let (member, old) = driver.on_connected(local, &mut b.hello, &b.gate, peer_id, connection_id, &endpoint);
                    if let Some(old) = old {
                        swarm.close_connection(old);
                    }
                    if member {
                        connected = true;
                        dialing = false;
                        sent.connections += 1;
                    }
                }
                SwarmEvent::Behaviour(FloodBehaviourEvent::Hello(
                    request_response::Event::Message {
                        peer,
                        message: request_response::Message::Response { response, .. },
                        ..
                    },
                )) => {
                    let b = swarm.behaviour_mut();
                    if let Some(dial) = driver.on_response(&mut b.hello, &mut b.gate, peer, &response) {
                        let _ = swarm.dial(dial);
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                    if peer_id == victim =>
                {
                    connected = false;
                    sent.disconnections += 1;
                }
                SwarmEvent::OutgoingConnectionError { .. } => dialing = false,
                SwarmEvent::Behaviour(FloodBehaviourEvent::Gate(Gated::Inner(FloodInnerEvent::Sync(event)))) => match event {
                    request_response::Event::Message {
                        message: request_response::Message::Response { request_id, .. },
                        ..
                    } => {
                        in_flight.remove(&request_id);
                        sent.sync_answered += 1;
                    }
                    request_response::Event::OutboundFailure { request_id, .. } => {
                        in_flight.remove(&request_id);
                        sent.sync_failed += 1;
                    }
                    // Requests from the victim go unanswered (the channel is dropped).
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

/// The attacker's bogus messages, from a cheap deterministic generator (every one distinct, so
/// gossip deduplication does not absorb them).
struct Junk {
    state: u64,
    count: u64,
    collective_tag: [u8; 8],
    /// A real membership op to forge copies of.
    op: Vec<u8>,
}

impl Junk {
    fn new(collective_tag: [u8; 8], op: Vec<u8>) -> Self {
        Self {
            state: 0x9E37_79B9_7F4A_7C15,
            count: 0,
            collective_tag,
            op,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A gossip message: garbage, a forged envelope or op, an envelope under a made-up epoch
    /// (which the node must hold, not reject: it may be honest and early), or, rarely, an
    /// oversized one (the node's gossipsub drops the stream that carries it, which would
    /// silence the rest of this connection's gossip if it came often).
    fn gossip(&mut self) -> Vec<u8> {
        self.count += 1;
        if self.count.is_multiple_of(OVERSIZED_EVERY) {
            return self.bytes(2 * MAX_GOSSIP_BYTES);
        }
        match self.count % 4 {
            0 => {
                let len = 64 + (self.next() % 900) as usize;
                self.bytes(len)
            }
            1 => WireItem {
                kind: SetKind::Envelopes,
                bytes: self.bytes(600),
            }
            .encode(),
            2 => WireItem {
                kind: SetKind::Ops,
                bytes: self.bytes(300),
            }
            .encode(),
            _ => WireItem {
                kind: SetKind::Envelopes,
                bytes: self.unknown_epoch_envelope(),
            }
            .encode(),
        }
    }

    /// A push request of about 250 KiB of copies of a real op, each with its signature's last
    /// eight bytes replaced (so each has a new id and must be checked).
    fn forged_op_push(&mut self) -> Vec<u8> {
        let mut items = Vec::new();
        let mut size = 0;
        while size + self.op.len() + 8 < 250 * 1024 {
            let mut bytes = self.op.clone();
            let len = bytes.len();
            bytes[len - 8..].copy_from_slice(&self.next().to_le_bytes());
            size += bytes.len() + 8;
            items.push(WireItem {
                kind: SetKind::Ops,
                bytes,
            });
        }
        sync::encode(&SyncRequest::Push { items })
    }

    fn unknown_epoch_envelope(&mut self) -> Vec<u8> {
        let epoch = self.bytes(32).try_into().unwrap();
        let nonce = self.bytes(24).try_into().unwrap();
        lookout_protocol::codec::encode(&Outer {
            version: VERSION,
            collective_tag: self.collective_tag,
            epoch: EpochId(epoch),
            coarse_time: lookout_node::replica::now() / 600 * 600,
            id: lookout_protocol::ContentId(self.bytes(32).try_into().unwrap()),
            nonce,
            ciphertext: self.bytes(MAX_ENVELOPE_BYTES - 200),
        })
    }

    /// One sync stream's bytes, framed or not: junk, a frame claiming 4 GiB, a truncated frame,
    /// and well-framed requests that break the rules, among them a full push of well-formed ops
    /// with altered signatures (each costs a signature check to find out).
    fn sync_frame(&mut self) -> Vec<u8> {
        self.count += 1;
        let body = match self.count % 8 {
            7 => self.forged_op_push(),
            0 => return u32::MAX.to_be_bytes().to_vec(),
            1 => {
                let mut frame = 100_000u32.to_be_bytes().to_vec();
                frame.extend(self.bytes(1000));
                return frame;
            }
            2 => self.bytes(256),
            3 => sync::encode(&SyncRequest::Fetch {
                kind: SetKind::Envelopes,
                ids: vec![[0; 32]; sync::MAX_FETCH_IDS + 1],
            }),
            4 => sync::encode(&SyncRequest::Reconcile {
                kind: SetKind::Envelopes,
                message: self.bytes(512),
            }),
            5 => sync::encode(&SyncRequest::Push {
                items: (0..8)
                    .map(|_| WireItem {
                        kind: SetKind::Envelopes,
                        bytes: self.bytes(700),
                    })
                    .collect(),
            }),
            _ => sync::encode(&SyncRequest::Push {
                items: (0..8)
                    .map(|_| WireItem {
                        kind: SetKind::Envelopes,
                        bytes: self.unknown_epoch_envelope(),
                    })
                    .collect(),
            }),
        };
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        frame
    }
}
