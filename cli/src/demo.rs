//! `lookout demo`: a whole collective on this machine, narrated.
//!
//! Temporary homes, real identities, real join-request, approve and invite codes, real nodes on
//! 127.0.0.1 talking libp2p to each other. Each step prints the command a person would type and
//! what they would see, using the same renderers as the commands. Everything is deleted at the
//! end. A step that does not happen within [`PATIENCE`] fails the demo with a non-zero exit.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use lookout_node::api::{AlertFilter, AlertView, ApiError, ErrorCode, PostDraft};
use lookout_node::client::Client;
use lookout_node::replica::{now, Replica};
use lookout_node::{NodeConfig, NodeHandle};
use lookout_protocol::content::{Category, Severity};
use lookout_protocol::membership::Policy;
use lookout_protocol::passphrase::KdfParams;

use crate::out::{Out, Outcome};
use crate::render::{self, abbreviate, short};

/// How long any one step may take.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long to keep checking that an alert does NOT reach a removed member.
const QUIET: Duration = Duration::from_secs(3);
const NAMES: [&str; 8] = ["Ana", "Bea", "Cleo", "Dina", "Eli", "Fay", "Gia", "Hana"];
const COLLECTIVE: &str = "Harbour Collective";

struct Member {
    name: &'static str,
    handle: NodeHandle,
}

/// Run the demo with `count` members (the first founds the collective).
pub async fn run(count: usize, out: Out) -> Result<Outcome, ApiError> {
    let count = count.clamp(2, NAMES.len());
    let started = Instant::now();
    let dir = tempfile::tempdir()
        .map_err(|e| internal(format!("cannot make a temporary directory: {e}")))?;
    let t = Transcript { out };
    t.say(&format!(
        "Lookout demo: {count} people on this machine, each with their own encrypted home and node.\n\
         Everything below is real (keys, codes, network); it is all deleted at the end.\n"
    ));
    let mut members = Vec::new();
    let result = scenario(dir.path(), count, &t, &mut members).await;
    // Stop every node before the temporary homes are deleted, whether the scenario passed or not.
    for member in members.iter() {
        member.handle.shutdown().await;
    }
    result?;
    let lookout = command_name();
    t.say(&format!(
        "\n{} The demo took {:.1} s. Try it for real: `{lookout} --help`, starting with `{lookout} init`.\n",
        out.style.good("Done."),
        started.elapsed().as_secs_f64()
    ));
    Ok(Outcome::Done)
}

/// The steps; nodes started are pushed to `members` so the caller can stop them.
async fn scenario(
    dir: &Path,
    count: usize,
    t: &Transcript,
    members: &mut Vec<Member>,
) -> Result<(), ApiError> {
    // The founder.
    let founder_name = NAMES[0];
    t.step(founder_name, &format!("lookout init --name {founder_name}"));
    let mut founder = create(dir, founder_name)?;
    let status = founder.status();
    t.show(&format!(
        "Your Lookout identity \"{founder_name}\" is ready.\nFingerprint:  {}",
        status.fingerprint
    ));
    t.step(
        founder_name,
        &format!("lookout collective create --name \"{COLLECTIVE}\""),
    );
    founder.create_collective(COLLECTIVE, Policy::default())?;
    t.show(&format!(
        "You founded \"{COLLECTIVE}\" and are its first moderator."
    ));
    t.step(founder_name, "lookout run");
    let handle = start(founder).await?;
    members.push(Member {
        name: founder_name,
        handle,
    });
    let listening = wait_listening(&members[0].handle).await?;
    t.show(&format!(
        "Lookout is running.\nListening on:\n  {listening}"
    ));

    // Everyone else: join request, approval, invite, join, run.
    for name in NAMES.iter().take(count).skip(1) {
        t.step(name, &format!("lookout init --name {name}"));
        let mut replica = create(dir, name)?;
        t.show(&format!("Your Lookout identity \"{name}\" is ready."));
        t.step(name, "lookout join-request");
        let code = replica.join_request().to_code();
        let fingerprint = replica.status().fingerprint;
        t.show(&format!(
            "Your fingerprint: {fingerprint}\nGive this join code to a moderator:\n{}",
            abbreviate(&code)
        ));
        t.step(
            founder_name,
            &format!("lookout approve {}", abbreviate(&code)),
        );
        let view = client(&members[0].handle).approve(code).await?;
        let Some(invite) = view.invite else {
            return Err(internal("the approval did not admit the member".into()));
        };
        t.show(&format!(
            "Approved. {} is now a member.\nGive them this invite code, privately:\n{}",
            view.subject,
            abbreviate(&invite)
        ));
        t.step(name, &format!("lookout join {}", abbreviate(&invite)));
        replica.join(&invite)?;
        t.show(&format!(
            "You joined \"{COLLECTIVE}\" (founded by {founder_name})."
        ));
        t.step(name, "lookout run");
        let handle = start(replica).await?;
        members.push(Member { name, handle });
        t.show("Lookout is running.");
    }

    let waited = Instant::now();
    for member in members.iter() {
        eventually("every node to learn the member list", || async {
            let s = member.handle.status().await.ok()?;
            (s.members == count && s.is_member && s.epoch.is_some()).then_some(())
        })
        .await?;
    }
    t.note(&format!(
        "after {:.1} s every node knows all {count} members",
        waited.elapsed().as_secs_f64()
    ));
    let poster = &members[1];
    t.step(poster.name, "lookout members");
    let view = client(&poster.handle).members().await?;
    t.show(&render::members(&view, t.out.style));

    // An alert travels.
    t.step(
        poster.name,
        "lookout post --category violence --severity high --description \"Pulled a knife when asked to pay\" --phone \"07700 900123\" --area \"Harbour Street\" --when \"3h ago\"",
    );
    let first = post(&poster.handle, knife_alert()).await?;
    t.show(&format!(
        "Alert {} posted. It is on its way to the other members.",
        short(&first)
    ));
    let waited = Instant::now();
    for member in members.iter() {
        wait_alert(member, &first).await?;
    }
    t.note(&format!(
        "the alert reached all {count} nodes after {:.1} s",
        waited.elapsed().as_secs_f64()
    ));
    let reader = &members[count - 1];
    t.step(reader.name, "lookout alerts");
    let seen = alerts(&reader.handle).await?;
    t.show(&render::alerts(&seen, now(), t.out.style));
    t.step(reader.name, "lookout check \"+44 7700 900123\"");
    let matched = client(&reader.handle).check("+44 7700 900123").await?;
    if matched.is_empty() {
        return Err(internal(
            "`check` did not find the number written another way".into(),
        ));
    }
    t.show(&format!(
        "Careful: {} live alert names \"+44 7700 900123\":\n\n{}",
        matched.len(),
        render::alerts(&matched, now(), t.out.style)
    ));

    // A removal: the removed member's node no longer receives.
    let removed = members[count - 1].name;
    t.step(
        founder_name,
        &format!("lookout revoke {removed} --reason \"phone was stolen\""),
    );
    let epoch = client(&members[0].handle)
        .revoke(removed, "phone was stolen")
        .await?
        .epoch;
    t.show(&format!(
        "Removed. {removed} is no longer a member.\nThe group key was changed (new key {}): they cannot read anything posted from now on.",
        epoch.unwrap_or_default()
    ));
    let second_poster = if count > 2 { 1 } else { 0 };
    for member in members.iter().take(count - 1) {
        eventually("the removal to reach every remaining member", || async {
            let s = member.handle.status().await.ok()?;
            (s.members == count - 1).then_some(())
        })
        .await?;
    }
    let author = &members[second_poster];
    t.step(
        author.name,
        "lookout post --category fake-client --severity critical --description \"Booked via the usual site; three men waiting\" --area \"Dock Road\"",
    );
    let second = post(&author.handle, setup_alert()).await?;
    t.show(&format!(
        "Alert {} posted. It is on its way to the other members.",
        short(&second)
    ));
    for member in members.iter().take(count - 1) {
        wait_alert(member, &second).await?;
    }
    let quiet_until = Instant::now() + QUIET;
    while Instant::now() < quiet_until {
        if has_alert(&members[count - 1].handle, &second).await {
            return Err(internal(format!(
                "the removed member {removed} received a new alert"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.note(&format!(
        "the new alert reached the {} remaining members; after {} s {removed}'s node still does not have it",
        count - 1,
        QUIET.as_secs()
    ));
    t.step(removed, "lookout alerts");
    let seen = alerts(&members[count - 1].handle).await?;
    t.show(&render::alerts(&seen, now(), t.out.style));
    Ok(())
}

struct Transcript {
    out: Out,
}

impl Transcript {
    fn say(&self, text: &str) {
        self.out.text(text);
    }

    fn step(&self, who: &str, command: &str) {
        self.out.text(&format!(
            "\n{} {}\n",
            self.out.style.bold(&format!("[{who}] $")),
            command
        ));
    }

    fn show(&self, text: &str) {
        let indented: String = text
            .trim_end()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect();
        self.out.text(&indented);
    }

    fn note(&self, text: &str) {
        self.out
            .text(&format!("\n{}\n", self.out.style.dim(&format!("({text})"))));
    }
}

fn create(dir: &Path, name: &str) -> Result<Replica, ApiError> {
    // The demo's homes are deleted within a minute: fast key derivation is fine for them.
    let (replica, _) = Replica::create(
        &dir.join(name.to_lowercase()),
        b"demo passphrase",
        name,
        KdfParams::TESTING,
    )?;
    Ok(replica)
}

async fn start(replica: Replica) -> Result<NodeHandle, ApiError> {
    let config = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0"
            .parse()
            .map_err(|_| internal("bad loopback address".into()))?],
        peers: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(1),
        gossip_heartbeat: Duration::from_millis(200),
        ..NodeConfig::default()
    };
    lookout_node::start(replica, config)
        .await
        .map_err(|e| internal(format!("cannot start a node: {e}")))
}

async fn wait_listening(handle: &NodeHandle) -> Result<String, ApiError> {
    let address = eventually("the node to listen", || async {
        handle.status().await.ok()?.listening.first().cloned()
    })
    .await?;
    Ok(format!("{address}/p2p/{}", handle.peer_id()))
}

/// The typed client over a node started in this process.
fn client(handle: &NodeHandle) -> Client<NodeHandle> {
    Client::new(handle.clone())
}

async fn post(handle: &NodeHandle, draft: PostDraft) -> Result<String, ApiError> {
    client(handle).post(draft).await
}

async fn alerts(handle: &NodeHandle) -> Result<Vec<AlertView>, ApiError> {
    client(handle).alerts(AlertFilter::default()).await
}

async fn has_alert(handle: &NodeHandle, id: &str) -> bool {
    alerts(handle)
        .await
        .is_ok_and(|list| list.iter().any(|a| a.id == id))
}

async fn wait_alert(member: &Member, id: &str) -> Result<(), ApiError> {
    eventually(&format!("the alert to reach {}", member.name), || async {
        has_alert(&member.handle, id).await.then_some(())
    })
    .await
}

/// Poll until `check` gives a value, or fail after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if started.elapsed() > PATIENCE {
            return Err(internal(format!(
                "the demo failed: timed out after {} s waiting for {what}",
                PATIENCE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn knife_alert() -> PostDraft {
    PostDraft {
        category: Category::Violence,
        severity: Severity::High,
        description: "Pulled a knife when asked to pay".into(),
        phones: vec!["07700 900123".into()],
        phones_as_typed: false,
        plates: Vec::new(),
        names: Vec::new(),
        handles: Vec::new(),
        physical: String::new(),
        area: "Harbour Street".into(),
        incident_time: Some(now().saturating_sub(3 * 3600)),
        expires_in_days: None,
        language: "en".into(),
        on_behalf: false,
    }
}

fn setup_alert() -> PostDraft {
    PostDraft {
        category: Category::FakeClient,
        severity: Severity::Critical,
        description: "Booked via the usual site; three men waiting".into(),
        area: "Dock Road".into(),
        incident_time: None,
        phones: Vec::new(),
        phones_as_typed: false,
        ..knife_alert()
    }
}

fn internal(message: String) -> ApiError {
    ApiError::new(ErrorCode::Internal, message)
}

/// How the person can run this program again: `lookout` when that is what the shell finds on
/// the PATH, else the full path of this binary (after `cargo run` it is not on the PATH).
fn command_name() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "lookout".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::canonicalize(dir.join("lookout")).is_ok_and(|found| found == me))
    });
    if on_path {
        "lookout".into()
    } else {
        me.display().to_string()
    }
}
