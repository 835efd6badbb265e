//! This device and its place in a collective: init, collective create, join-request, join,
//! status, members, wipe.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lookout_node::api::{ApiError, ErrorCode};
use lookout_node::replica::{now, Replica};
use lookout_node::store::Store;
use lookout_protocol::invite::JoinRequest;
use lookout_protocol::membership::Policy;
use serde_json::json;

use super::{request, Out, Outcome};
use crate::codes::{self, CodeKind};
use crate::render;
use crate::session::Context;

pub use lookout_node::device::CERTIFICATE_FILE;
use lookout_node::device::STOP_PATIENCE;

/// `lookout init`.
pub fn init(
    ctx: &Context,
    name: &str,
    certificate_path: Option<PathBuf>,
    allow_weak: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    if Store::exists(&ctx.home) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "there is already a Lookout identity in {}: keep using it, choose another --home, or erase it with `lookout wipe`",
                ctx.home.display()
            ),
        ));
    }
    let passphrase = ctx.passphrase(true)?;
    if !allow_weak {
        refuse_weak(&passphrase, name, "nothing was created")?;
    }
    let short_passphrase = passphrase.chars().count() < 10;
    let (replica, certificate) = Replica::create(
        &ctx.home,
        passphrase.as_bytes(),
        name,
        Context::kdf_params(),
    )?;
    drop(passphrase);
    let status = replica.status();
    replica.close()?;
    let code = certificate.to_code();
    // Kept in clear only where the user asks: a file in the home would prove to whoever takes
    // the phone that its owner is a member.
    if let Some(path) = &certificate_path {
        write_private(path, &certificate_text(&code))?;
    }

    if out.json {
        out.json(&json!({
            "member": status.member,
            "name": status.name,
            "fingerprint": status.fingerprint,
            "revocation_certificate": certificate_path,
            "revocation_certificate_code": code,
        }))?;
        return Ok(Outcome::Done);
    }
    let keep = match &certificate_path {
        Some(path) => format!(
            "Self-revocation certificate: written to {}\n\
             Move it away from this device (a USB stick, a trusted friend).",
            path.display()
        ),
        None => format!(
            "Self-revocation certificate (shown this once, not kept in clear on this device):\n\n\
             {code}\n\n\
             Write it down or save it away from this device (a USB stick, a trusted friend). It is not\n\
             shown again (`lookout init --revocation-cert FILE` writes it to a file instead)."
        ),
    };
    let style = out.style;
    let mut text = format!(
        "{} Your Lookout identity \"{}\" is ready.\n\n\
         Member id:    {}\n\
         Fingerprint:  {}  (read it aloud to a moderator when you join)\n\n\
         {keep}\n\
         If this device is lost or taken, any member can publish it with\n\
         `lookout revoke --certificate CODE_OR_FILE` so nobody can use your identity.\n\n\
         Next: found a collective with `lookout collective create --name NAME`,\n\
         or ask a moderator to let you in: `lookout join-request`.\n",
        style.good("Done."),
        status.name,
        status.member,
        style.bold(&status.fingerprint),
    );
    if short_passphrase {
        text.push_str(&format!(
            "\n{} your passphrase is short: someone who takes this device could guess it. A few words are safer.\n",
            style.warn("Note:")
        ));
    }
    out.text(&text);
    Ok(Outcome::Done)
}

/// `lookout collective create`.
/// The rules chosen at `lookout collective create`.
pub struct CollectivePolicy {
    /// Approvals needed (k).
    pub approvals: u8,
    /// Default alert lifetime in days.
    pub alert_days: u16,
    /// Country for phone numbers without +country.
    pub country: String,
}

/// `lookout collective create`.
pub async fn create_collective(
    ctx: &Context,
    name: &str,
    chosen: CollectivePolicy,
    co_moderators: &[String],
    out: Out,
) -> Result<Outcome, ApiError> {
    let CollectivePolicy {
        approvals,
        alert_days,
        country,
    } = chosen;
    let policy = Policy {
        approvals_required: approvals,
        default_alert_days: alert_days,
        max_alert_days: alert_days.max(Policy::default().max_alert_days),
        country: country.trim().to_ascii_uppercase(),
        ..Policy::default()
    };
    policy
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
    let mut founders = Vec::new();
    for code in co_moderators {
        let request = JoinRequest::from_code(code.trim()).map_err(|e| {
            ApiError::new(
                ErrorCode::BadCode,
                format!(
                    "a --co-moderator code cannot be used: {e} (it must be a join code, LKJOIN1-…)"
                ),
            )
        })?;
        founders.push(request);
    }
    if usize::from(approvals) > founders.len() + 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "a collective needing {approvals} approvals must be founded by {approvals} moderators:                  add {} more with --co-moderator JOIN_CODE (their `lookout join-request`)",
                usize::from(approvals) - founders.len() - 1
            ),
        ));
    }
    let mut session = ctx.open().await?;
    if session.through_node() {
        return Err(already_in_collective());
    }
    let replica = session.replica("found a collective")?;
    if replica.membership().is_some() {
        return Err(already_in_collective());
    }
    if founders
        .iter()
        .any(|f| f.identity.member == replica.identity().member_id())
    {
        session.close()?;
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "--co-moderator names your own join code: name the other founding moderators",
        ));
    }
    let names: Vec<String> = founders.iter().map(|f| f.name.clone()).collect();
    let result = replica.create_collective_with(name, policy.clone(), founders);
    let invite = if result.is_ok() && !names.is_empty() {
        replica.invite_code().ok()
    } else {
        None
    };
    let status = replica.status();
    session.close()?;
    result?;
    if out.json {
        out.json(&json!({
            "collective": status.collective,
            "collective_id": status.collective_id,
            "approvals": policy.approvals_required,
            "alert_days": policy.default_alert_days,
            "country": policy.country,
            "co_moderators": names,
            "invite": invite,
        }))?;
        return Ok(Outcome::Done);
    }
    let k = if approvals == 1 {
        "one moderator's approval".to_owned()
    } else {
        format!("the approval of {approvals} moderators")
    };
    let who = if names.is_empty() {
        "and are its first moderator".to_owned()
    } else {
        format!("with {} as founding moderator(s)", names.join(", "))
    };
    let mut text = format!(
        "{} You founded \"{}\" {who}.\n\
         New members need {k}; alerts last {alert_days} days; phone numbers without +country are read as {}.\n\n\
         Next:\n\
         1. Start your node and keep it running:  lookout run\n\
         2. Each new member runs `lookout join-request` and shows you the code.\n\
         \x20  Compare fingerprints with them, then:  lookout approve CODE\n",
        out.style.good("Done."),
        status.collective.unwrap_or_default(),
        policy.country
    );
    if let Some(invite) = invite {
        text.push_str(&format!(
            "\nGive the other founding moderators this invite, privately; they run `lookout join` and paste it when asked:\n\n{invite}\n"
        ));
    }
    out.text(&text);
    Ok(Outcome::Done)
}

/// `lookout join-request`.
pub async fn join_request(
    ctx: &Context,
    qr: Option<Option<PathBuf>>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let mut session = ctx.open().await?;
    if session.through_node() {
        return Err(already_in_collective());
    }
    let replica = session.replica("ask to join")?;
    let code = replica.join_request().to_code();
    let status = replica.status();
    session.close()?;
    if out.json {
        out.json(&json!({
            "code": code,
            "name": status.name,
            "member": status.member,
            "fingerprint": status.fingerprint,
        }))?;
        return Ok(Outcome::Done);
    }
    let mut text = String::new();
    if let Some(collective) = &status.collective {
        text.push_str(&format!(
            "{} this device is already in \"{collective}\".\n\n",
            out.style.warn("Note:")
        ));
    }
    text.push_str(&format!(
        "Your fingerprint: {}\n\n\
         Give this join code to a moderator, in person or by a private message. Before approving,\n\
         they check that the fingerprint they see is the one above.\n\n{code}\n",
        out.style.bold(&status.fingerprint)
    ));
    if let Some(file) = &qr {
        text.push('\n');
        text.push_str(&codes::qr_section(
            &code,
            file.as_deref(),
            out.style.colour,
        )?);
    }
    text.push_str(
        "\nWhen you are approved, the moderator gives you an invite code. Then run:\n  lookout join\nand paste it when asked (kept out of your shell history that way).\n",
    );
    out.text(&text);
    Ok(Outcome::Done)
}

/// `lookout join`.
pub async fn join(ctx: &Context, invite: &str, out: Out) -> Result<Outcome, ApiError> {
    let code = codes::argument(invite)?;
    if let Some(error) = codes::misplaced(codes::kind_of(&code), CodeKind::Invite) {
        return Err(error);
    }
    let mut session = ctx.open().await?;
    if session.through_node() {
        return Err(already_in_collective());
    }
    let replica = session.replica("join")?;
    let result = replica.join(&code);
    session.close()?;
    let invite = result?;
    let genesis = invite.genesis.genesis();
    let key = invite.secret.text_key();
    let collective = genesis.sealed_name().display(Some(&key));
    let founder = genesis
        .founding_moderators()
        .next()
        .map(|(_, name)| name.display(Some(&key)))
        .unwrap_or_default();
    if out.json {
        out.json(&json!({
            "collective": collective,
            "collective_id": invite.genesis.id().to_hex(),
            "addresses": invite.addresses,
        }))?;
        return Ok(Outcome::Done);
    }
    // The invite is the collective's, not a sign of approval: anyone a member gives it to can
    // paste it (Trial 12's T12-11: "Done. You joined" before anyone had approved anything).
    let mut text = format!(
        "{} This device now holds the invite to \"{}\" (founded by {}).\n\n\
         You are a member once a moderator approves your join code; this device does not know yet\n\
         whether that happened. If you have not given your join code to a moderator, show it to one\n\
         now (`lookout join-request` shows it again, with your fingerprint for them to compare).\n\n\
         Next: start your node and keep it running:  lookout run\n\
         It fetches the member list and the alerts from a member's node; `lookout status` then says\n\
         whether you are in.\n",
        out.style.good("Invite saved."),
        collective,
        founder
    );
    if invite.addresses.is_empty() {
        text.push_str(&format!(
            "\n{} the invite has no address of the moderator's node, so your node cannot find it (not even\n\
             on the same Wi-Fi). Ask them for a new invite printed while their node runs (`lookout invite`),\n\
             or for their node's address, and run `lookout run --peer ADDRESS`.\n",
            out.style.warn("Note:")
        ));
    }
    out.text(&text);
    Ok(Outcome::Done)
}

/// `lookout status`.
pub async fn status(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let mut session = ctx.open().await?;
    let result = session.client().status().await;
    session.close()?;
    let view = result?;
    if out.json {
        out.json(&view)?;
    } else {
        out.text(&render::status(&view, now(), out.style));
    }
    Ok(Outcome::Done)
}

/// `lookout members`.
pub async fn members(ctx: &Context, out: Out) -> Result<Outcome, ApiError> {
    let view = request(ctx, async |c| c.members().await).await?.0;
    if out.json {
        out.json(&view)?;
    } else {
        out.text(&render::members(&view, out.style));
    }
    Ok(Outcome::Done)
}

/// `lookout wipe`: erase without the passphrase (it may be forgotten, or there is no time).
pub async fn wipe(ctx: &Context, yes: bool, out: Out) -> Result<Outcome, ApiError> {
    let home = &ctx.home;
    let nothing_there = || {
        ApiError::new(
            ErrorCode::NotInitialized,
            format!("there is no Lookout data in {} to erase", home.display()),
        )
    };
    if !home.is_dir() {
        return Err(nothing_there());
    }
    if !yes && !confirm_wipe(home)? {
        out.text("Nothing was erased.\n");
        return Ok(Outcome::Done);
    }
    let report = erase(ctx).await?;
    if out.json {
        out.json(&json!({
            "wiped": true,
            "files_removed": report.files_removed,
            "bytes_removed": report.bytes_removed,
        }))?;
    } else {
        out.text(&format!(
            "{} Lookout's data on this device is erased ({} files). Nothing it kept can be read any more.\n",
            out.style.good("Done."),
            report.files_removed
        ));
    }
    Ok(Outcome::Done)
}

/// Erase this home (the path `lookout wipe` and the web interface's emergency wipe share): a
/// node serving it from another process is stopped with a signal.
pub(crate) async fn erase(ctx: &Context) -> Result<lookout_node::store::WipeReport, ApiError> {
    lookout_node::device::wipe(&ctx.home, async || stop_node(ctx).await).await
}

fn confirm_wipe(home: &Path) -> Result<bool, ApiError> {
    if !std::io::stdin().is_terminal() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "add --yes to erase without being asked (this cannot be undone)",
        ));
    }
    print!(
        "This erases your identity, your collective and every alert kept in {}, for good.\n\
         Type yes to erase: ",
        home.display()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("cannot read: {e}")))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// Ask the running node (the process serving this home's control socket) to stop, and wait.
pub(crate) async fn stop_node(ctx: &Context) -> Result<(), ApiError> {
    let busy = || {
        ApiError::new(
            ErrorCode::Busy,
            "a Lookout node is running for this home and could not be stopped: stop it (Ctrl-C) and wipe again",
        )
    };
    // The kernel's word for which process serves this home's socket, not the pid file's.
    let pid = crate::session::node_pid(&ctx.home).ok_or_else(busy)?;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        return Err(busy());
    }
    let started = Instant::now();
    while ctx.node_running().await {
        if started.elapsed() > STOP_PATIENCE {
            return Err(busy());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `lookout passphrase change`: re-seal the storage key and the identity under a new passphrase.
pub fn change_passphrase(
    ctx: &Context,
    new_file: Option<PathBuf>,
    allow_weak: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    // Opening the store directly asks the current passphrase and fails clearly while a node
    // holds it.
    let mut replica = ctx.open_replica()?;
    let new = match &new_file {
        Some(path) => crate::session::read_passphrase_file(path)?,
        None if std::io::stdin().is_terminal() => crate::session::prompt(true)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "no new passphrase: type it on a terminal, or give --new-passphrase-file FILE",
            ))
        }
    };
    if new.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the new passphrase is empty",
        ));
    }
    if !allow_weak {
        let name = replica.name().to_owned();
        refuse_weak(&new, &name, "nothing was changed")?;
    }
    let params = Context::kdf_params();
    let result = replica.change_passphrase(new.as_bytes(), params);
    drop(new);
    replica.close()?;
    result?;
    if out.json {
        out.json(&json!({ "changed": true }))?;
    } else {
        out.text(&format!(
            "{} This device's data is now sealed under the new passphrase; the old one opens nothing here any more.\n",
            out.style.good("Done.")
        ));
    }
    Ok(Outcome::Done)
}

/// `lookout passphrase duress`: set (or clear) the passphrase that erases this device's data.
pub fn set_duress(
    ctx: &Context,
    duress_file: Option<PathBuf>,
    clear: bool,
    allow_weak: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    let mut replica = ctx.open_replica()?;
    let result = if clear {
        replica.set_duress(None)
    } else {
        let duress = match &duress_file {
            Some(path) => crate::session::read_passphrase_file(path)?,
            None if std::io::stdin().is_terminal() => crate::session::prompt_labelled(
                "Choose a duress passphrase (typing it erases everything): ",
                true,
            )?,
            None => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "no duress passphrase: type it on a terminal, or give --duress-passphrase-file FILE",
                ))
            }
        };
        if duress.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the duress passphrase is empty",
            ));
        }
        if !allow_weak {
            // A guessable duress passphrase is a way for anyone holding the device to destroy
            // its data: the same bar as the real one.
            let name = replica.name().to_owned();
            refuse_weak(&duress, &name, "nothing was changed")?;
        }
        replica.set_duress(Some(duress.as_bytes()))
    };
    replica.close()?;
    result?;
    if out.json {
        out.json(&json!({ "duress": !clear }))?;
    } else if clear {
        out.text(&format!(
            "{} There is no duress passphrase any more.\n",
            out.style.good("Done.")
        ));
    } else {
        out.text(&format!(
            "{} Typing the duress passphrase wherever Lookout asks for your passphrase now erases everything on this device; Lookout then acts as if it was never set up.\n",
            out.style.good("Done.")
        ));
    }
    Ok(Outcome::Done)
}

/// Refuse a passphrase that someone holding this device could guess (an estimate by zxcvbn of
/// under about 10^10 guesses), in one sentence, before anything is created.
fn refuse_weak(passphrase: &str, name: &str, nothing: &str) -> Result<(), ApiError> {
    let estimate = lookout_node::device::strength(passphrase, name);
    if !estimate.guessable() {
        return Ok(());
    }
    let why = estimate
        .warning
        .map(|w| format!(" ({})", w.trim_end_matches('.').to_lowercase()))
        .unwrap_or_default();
    Err(ApiError::new(
        ErrorCode::InvalidInput,
        format!(
            "this passphrase is too easy to guess{why}: someone who takes this device could find it, so choose four or five unrelated words; {nothing} (--allow-weak-passphrase keeps it anyway)"
        ),
    ))
}

fn already_in_collective() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        "this device is already in a collective (use another --home for another collective)",
    )
}

fn certificate_text(code: &str) -> String {
    format!(
        "Lookout self-revocation certificate\n\
         ====================================\n\n\
         Keep this file away from your phone. If the phone is lost, stolen or taken, give this\n\
         file to any member of your collective; they run:\n\n  \
         lookout revoke --certificate THIS_FILE\n\n\
         and your identity can no longer read or post alerts. It cannot be undone.\n\n\
         {code}\n"
    )
}

fn write_private(path: &Path, text: &str) -> Result<(), ApiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: std::io::Error| {
        ApiError::new(
            ErrorCode::Internal,
            format!(
                "your identity was created, but the certificate could not be written to {}: {e}",
                path.display()
            ),
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}
