//! A small harness for end-to-end scenarios: several real nodes on loopback, each with its own
//! home directory, enrolled into one collective.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod mailbox;
pub mod rogue;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use lookout_node::api::{
    AlertFilter, AlertView, ApiError, MembersView, PostDraft, Request, Response, StatusView,
};
use lookout_node::replica::{Replica, SetKind, WireItem};
use lookout_node::{NodeConfig, NodeHandle};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;
use lookout_protocol::MemberId;

/// The passphrase every test node uses.
pub const PASSPHRASE: &[u8] = b"correct horse battery staple";
/// How long a scenario waits for something to happen before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A node under test.
pub struct TestNode {
    /// Its handle.
    pub handle: NodeHandle,
    /// Its home directory.
    pub home: PathBuf,
    /// Its member id.
    pub member: MemberId,
    /// Display name.
    pub name: String,
    /// The member's self-revocation certificate code, read from the store before start.
    pub revocation: String,
}

/// Offline members of one collective, not yet running.
pub struct Collective {
    /// Keeps the homes alive.
    pub dir: tempfile::TempDir,
    /// The founder's replica (index 0) and the members'.
    pub replicas: Vec<Replica>,
}

/// Copy replica `from`'s membership ops into replica `to`, as a sync would.
fn copy_ops(replicas: &mut [Replica], from: usize, to: usize) {
    let ids: Vec<[u8; 32]> = replicas[from]
        .sync_items(SetKind::Ops)
        .iter()
        .map(|i| i.id)
        .collect();
    let items = replicas[from].fetch(SetKind::Ops, &ids).unwrap();
    for bytes in items {
        replicas[to]
            .ingest(&WireItem {
                kind: SetKind::Ops,
                bytes,
            })
            .unwrap();
    }
    replicas[to].flush().unwrap();
}

impl Collective {
    /// Found a collective and enrol `members` more people (all approved by the founder).
    pub fn new(members: usize, policy: Policy) -> Self {
        let names: Vec<String> = std::iter::once("founder".to_owned())
            .chain((1..=members).map(|i| format!("member{i}")))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Self::named(&names, policy)
    }

    /// Found a collective with `names[0]` as founder and enrol the others. A collective needing
    /// k approvals is founded by k moderators: `names[1..k]` are named in the genesis record;
    /// every later member is approved by the founder and those co-moderators.
    pub fn named(names: &[&str], policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let k = usize::from(policy.approvals_required);
        let mut replicas: Vec<Replica> = names
            .iter()
            .enumerate()
            .map(|(i, name)| fresh_identity(&dir.path().join(format!("node{i}")), name))
            .collect();
        let co = replicas[1..k].iter().map(Replica::join_request).collect();
        replicas[0]
            .create_collective_with("Test Collective", policy, co)
            .unwrap();
        let invite = replicas[0].invite_code().unwrap();
        for member in &mut replicas[1..k] {
            member.join(&invite).unwrap();
        }
        for i in k..names.len() {
            let code = replicas[i].join_request().to_code();
            let mut view = replicas[0].approve(&code).unwrap();
            for j in 1..k {
                copy_ops(&mut replicas, 0, j);
                view = replicas[j].approve(&code).unwrap();
                copy_ops(&mut replicas, j, 0);
            }
            assert!(view.done, "k moderators' approvals admit");
            replicas[i].join(&view.invite.unwrap()).unwrap();
        }
        let mut collective = Self { dir, replicas };
        if k > 1 {
            collective.share_state();
        }
        collective
    }

    /// Start every node; members dial the founder.
    pub async fn start(self) -> (tempfile::TempDir, Vec<TestNode>) {
        let (dir, nodes) = self.start_unconnected().await;
        let founder_addr = listen_addr(&nodes[0]).await;
        for node in &nodes[1..] {
            node.handle.dial(founder_addr.clone()).await.unwrap();
        }
        (dir, nodes)
    }

    /// Copy the founder's membership ops, key deliveries and posts into every member's replica,
    /// as a sync would, so the nodes can start in any topology knowing the whole roster.
    pub fn share_state(&mut self) {
        let (founder, members) = self.replicas.split_first_mut().unwrap();
        for kind in SetKind::ORDER {
            let ids: Vec<[u8; 32]> = founder.sync_items(kind).iter().map(|i| i.id).collect();
            let items = founder.fetch(kind, &ids).unwrap();
            for member in members.iter_mut() {
                for bytes in &items {
                    let item = WireItem {
                        kind,
                        bytes: bytes.clone(),
                    };
                    member.ingest(&item).unwrap();
                }
                member.flush().unwrap();
            }
        }
    }

    /// Start every node without connecting any.
    pub async fn start_unconnected(self) -> (tempfile::TempDir, Vec<TestNode>) {
        let mut nodes = Vec::new();
        for replica in self.replicas {
            nodes.push(start_node(replica).await);
        }
        (self.dir, nodes)
    }
}

/// A new identity with its store in `home`, in no collective yet.
pub fn fresh_identity(home: &Path, name: &str) -> Replica {
    Replica::create(home, PASSPHRASE, name, KdfParams::TESTING)
        .unwrap()
        .0
}

/// Open a stopped node's replica again.
pub fn reopen(home: &Path) -> Replica {
    Replica::open(home, PASSPHRASE).unwrap()
}

/// Node settings for tests: loopback only, fast sync and gossip heartbeat, no mDNS.
pub fn test_config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(1),
        gossip_heartbeat: Duration::from_millis(200),
        ..NodeConfig::default()
    }
}

/// Print the nodes' logs when `LOOKOUT_TEST_LOG` holds a filter (e.g. `lookout_node=debug`).
pub fn debug_logs() {
    if let Ok(filter) = std::env::var("LOOKOUT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Start a node around a replica.
pub async fn start_node(replica: Replica) -> TestNode {
    start_node_with(replica, test_config()).await
}

/// Start a node around a replica with these settings.
pub async fn start_node_with(replica: Replica, config: NodeConfig) -> TestNode {
    debug_logs();
    let home = replica.home().to_path_buf();
    let member = replica.identity().member_id();
    let name = replica.name().to_owned();
    let revocation = replica
        .revocation_certificate()
        .unwrap()
        .unwrap_or_default();
    let handle = lookout_node::start(replica, config).await.unwrap();
    TestNode {
        handle,
        home,
        member,
        name,
        revocation,
    }
}

/// Make `from` dial `to`.
pub async fn connect(from: &TestNode, to: &TestNode) {
    let addr = listen_addr(to).await;
    from.handle.dial(addr).await.unwrap();
}

/// Check for `period` that `check` stays false; fail as soon as it turns true.
pub async fn never<F, Fut>(what: &str, period: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(!check().await, "it happened, but must not: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node's first listen address with its peer id.
pub async fn listen_addr(node: &TestNode) -> Multiaddr {
    let status = eventually("node listens", || async {
        let s = node.handle.status().await.unwrap();
        (!s.listening.is_empty()).then_some(s)
    })
    .await;
    let addr: Multiaddr = status.listening[0].parse().unwrap();
    addr.with_p2p(node.handle.peer_id()).unwrap()
}

/// Poll `check` until it returns `Some`, or fail after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out after {PATIENCE:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A simple alert draft.
pub fn draft(description: &str, phone: &str) -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: description.into(),
        phones: vec![phone.into()],
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

impl TestNode {
    /// Execute a request that must succeed.
    pub async fn execute(&self, request: Request) -> Response {
        let what = format!("{request:?}");
        self.handle
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{} failed to {what}: {e}", self.name))
    }

    /// Execute a request that may fail.
    pub async fn try_execute(&self, request: Request) -> Result<Response, ApiError> {
        self.handle.execute(request).await
    }

    /// Post an alert; returns its id.
    pub async fn post(&self, draft: PostDraft) -> String {
        match self.execute(Request::Post(draft)).await {
            Response::Posted { id } => id,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Current and removed members.
    pub async fn members(&self) -> MembersView {
        match self.execute(Request::Members).await {
            Response::Members(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Ids of current members, sorted.
    pub async fn member_ids(&self) -> BTreeSet<String> {
        self.members()
            .await
            .members
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    /// Ids of the live alerts held.
    pub async fn alert_ids(&self) -> BTreeSet<String> {
        self.alerts().await.into_iter().map(|a| a.id).collect()
    }

    /// Connected member peers.
    pub async fn peers(&self) -> usize {
        self.status().await.peers
    }

    /// Stop the node and wait until its store is closed; returns its home.
    pub async fn stop(self) -> PathBuf {
        self.handle.shutdown().await;
        self.home
    }

    /// Live alerts.
    pub async fn alerts(&self) -> Vec<AlertView> {
        match self
            .handle
            .execute(Request::Alerts(AlertFilter::default()))
            .await
            .unwrap()
        {
            Response::Alerts { alerts } => alerts,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Whether the node holds the alert.
    pub async fn has_alert(&self, id: &str) -> bool {
        self.alerts().await.iter().any(|a| a.id == id)
    }

    /// Status.
    pub async fn status(&self) -> StatusView {
        self.handle.status().await.unwrap()
    }

    /// Wait until this node sees `members` members.
    pub async fn wait_members(&self, members: usize) {
        eventually("membership synced", || async {
            (self.status().await.members == members).then_some(())
        })
        .await;
    }
}
