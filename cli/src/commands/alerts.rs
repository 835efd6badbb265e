//! Alerts: post, alerts (and --watch), check, retract, corroborate, export.

use std::io::IsTerminal;
use std::path::PathBuf;

use lookout_node::api::{AlertFilter, AlertView, ApiError, ErrorCode, Event, PostDraft};
use lookout_node::client::Client;
use lookout_node::control::Connection;
use lookout_node::replica::now;
use lookout_node::when::Zone;
use lookout_protocol::content::{Category, Severity};
use serde_json::json;

use super::{interactive, moderation, request, Out, Outcome};
use crate::args::{PostArgs, SheetFormat};
use crate::render::{self, short};
use crate::session::{Context, Session};
use crate::{sheet, when};

/// `lookout post`.
pub async fn post(ctx: &Context, args: PostArgs, out: Out) -> Result<Outcome, ApiError> {
    let now = now();
    let draft =
        if args.is_empty() && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            let country = request(ctx, async |c| c.status().await).await?.0.country;
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let mut output = std::io::stdout();
            match interactive::ask(
                &mut input,
                &mut output,
                now,
                out.style.zone,
                default_language(),
                country.as_deref(),
            )? {
                Some(draft) => draft,
                None => {
                    out.text("Nothing was posted.\n");
                    return Ok(Outcome::Done);
                }
            }
        } else {
            draft_from(args, now, out.style.zone)?
        };
    let (id, through_node) = request(ctx, async |c| c.post(draft).await).await?;
    if out.json {
        out.json(&json!({ "id": id, "sent": through_node }))?;
        return Ok(Outcome::Done);
    }
    let next = if through_node {
        "It is on its way to the other members."
    } else {
        "Your node is not running: the alert is kept here and goes out when you run `lookout run`."
    };
    out.text(&format!(
        "{} Alert {} posted. {next}\n",
        out.style.good("Done."),
        short(&id)
    ));
    Ok(Outcome::Done)
}

/// Build a draft from options (no questions asked).
pub fn draft_from(args: PostArgs, now: u64, zone: Zone) -> Result<PostDraft, ApiError> {
    let category = args.category.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "say what happened with --category, one of: {} (or run `lookout post` on a terminal to be asked step by step)",
                Category::names()
            ),
        )
    })?;
    let description = args
        .description
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "describe what happened with --description \"TEXT\"",
            )
        })?;
    let incident_time = args
        .when
        .map(|w| when::parse_time(&w, now, zone))
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?;
    Ok(PostDraft {
        category,
        severity: args.severity.unwrap_or(Severity::Medium),
        description,
        phones: args.phone,
        phones_as_typed: args.phone_as_typed,
        plates: args.plate,
        names: args.name,
        handles: args.handle,
        physical: args.looks.unwrap_or_default(),
        area: args.area.unwrap_or_default(),
        incident_time,
        expires_in_days: args.expires_in,
        language: args.language.unwrap_or_else(default_language),
        on_behalf: args.on_behalf,
    })
}

/// `lookout alerts`.
pub async fn list(
    ctx: &Context,
    area: Option<String>,
    category: Option<Category>,
    since: Option<String>,
    retracted: bool,
    watch: bool,
    out: Out,
) -> Result<Outcome, ApiError> {
    let now = now();
    let since = since
        .map(|s| when::parse_since(&s, now, out.style.zone))
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?;
    let filter = AlertFilter {
        area,
        category,
        since,
        include_retracted: retracted,
    };
    if watch {
        return watch_alerts(ctx, filter, out).await;
    }
    let (alerts, removed) = request(ctx, async |c| {
        let alerts = c.alerts(filter).await?;
        Ok((alerts, c.status().await?.is_removed))
    })
    .await?
    .0;
    if out.json {
        out.json(&alerts)?;
    } else {
        out.text(&render::alerts(&alerts, now, out.style));
        if removed {
            out.text(&removed_note(out.style));
        }
    }
    Ok(Outcome::Done)
}

/// `lookout alerts --watch`: the current alerts, then new ones as the node receives them.
async fn watch_alerts(ctx: &Context, filter: AlertFilter, out: Out) -> Result<Outcome, ApiError> {
    let not_running = || {
        ApiError::new(
            ErrorCode::InvalidInput,
            "watching needs a running node: start `lookout run` in another terminal first",
        )
    };
    // Subscribe before listing, on a second connection, so nothing falls in between.
    let mut events = Connection::connect(&ctx.home)
        .await
        .ok_or_else(not_running)?;
    events.watch().await?;
    let mut lister = Client::new(
        Connection::connect(&ctx.home)
            .await
            .ok_or_else(not_running)?,
    );
    let alerts = lister.alerts(filter.clone()).await?;
    drop(lister);
    let mut shown: std::collections::HashSet<String> =
        alerts.iter().map(|a| a.id.clone()).collect();
    if out.json {
        for alert in &alerts {
            out.json(&Event::Alert(Box::new(alert.clone())))?;
        }
    } else {
        out.text(&render::alerts(&alerts, now(), out.style));
        out.text(
            &out.style
                .dim("Waiting for new alerts (Ctrl-C to stop)...\n"),
        );
    }
    while let Some(event) = events.next_event().await {
        if let Event::Alert(alert) = &event {
            if !matches_filter(alert, &filter) || !shown.insert(alert.id.clone()) {
                continue;
            }
        }
        if out.json {
            out.json(&event)?;
            continue;
        }
        match event {
            Event::Alert(alert) => {
                out.text(&format!(
                    "\n{}",
                    render::alert_block(&alert, now(), out.style)
                ));
            }
            Event::Retracted { id } => {
                out.text(&format!("\nAlert {} was retracted.\n", short(&id)));
            }
            Event::MembershipChanged { .. } => {}
            Event::UnreadableKeyShare {
                signer,
                signer_name,
                epoch,
            } => {
                out.text(&format!(
                    "\nWarning: member {signer_name} ({}) sent you an unreadable key share for epoch {epoch}; your node asks other members for the key.\n",
                    short(&signer)
                ));
            }
        }
    }
    eprintln!("The node stopped.");
    Ok(Outcome::Done)
}

fn matches_filter(alert: &AlertView, filter: &AlertFilter) -> bool {
    filter.category.is_none_or(|c| c == alert.category)
        && filter.since.is_none_or(|s| alert.posted >= s)
        && filter
            .area
            .as_ref()
            .is_none_or(|a| alert.area.to_lowercase().contains(&a.to_lowercase()))
}

/// What `check` looks for: the argument, or (none, or `-`) a line typed at a prompt or read from
/// standard input, so it never stays in shell history or the process list.
pub fn check_term(value: Option<String>) -> Result<String, ApiError> {
    use std::io::{BufRead as _, Write as _};
    if let Some(value) = value.filter(|v| v.trim() != "-") {
        return Ok(value);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Number, plate, name or handle to look for: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("could not read what to look for: {e}"),
        )
    })?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "nothing to look for: type a phone number, plate, name or handle",
        ));
    }
    Ok(line)
}

/// `lookout check`.
pub async fn check(ctx: &Context, value: &str, out: Out) -> Result<Outcome, ApiError> {
    let term = value.to_owned();
    let (alerts, removed) = request(ctx, async |c| {
        let alerts = c.check(term).await?;
        Ok((alerts, c.status().await?.is_removed))
    })
    .await?
    .0;
    let outcome = if alerts.is_empty() {
        Outcome::NothingFound
    } else {
        Outcome::Done
    };
    if out.json {
        out.json(&alerts)?;
        return Ok(outcome);
    }
    if removed {
        out.text(&removed_note(out.style));
    }
    if alerts.is_empty() {
        out.text(&nothing_found(value));
    } else {
        let (s, verb) = if alerts.len() == 1 {
            ("", "names")
        } else {
            ("s", "name")
        };
        out.text(&format!(
            "{} {} live alert{s} {verb} \"{}\":\n\n{}",
            out.style.warn("Careful:"),
            alerts.len(),
            value.trim(),
            render::alerts(&alerts, now(), out.style)
        ));
    }
    Ok(outcome)
}

/// Said with the alerts of a device whose identity was removed: they stopped coming.
fn removed_note(style: render::Style) -> String {
    format!(
        "{} this identity was removed from the collective: this device receives no new alerts, \
         so what it shows may be out of date.\n",
        style.warn("Careful:")
    )
}

/// What `check` says when no live alert names `value`, with a warning when it looks like a
/// phone number with letters typed for digits (an O for a 0): numbers are matched digit for
/// digit, so such a typo finds nothing although an alert may name the number.
fn nothing_found(value: &str) -> String {
    let value = value.trim();
    let mut text = format!(
        "No live alert names \"{value}\". That does not prove they are safe: trust your instincts.\n"
    );
    if lookout_protocol::content::letters_among_digits(value) {
        text.push_str(
            "Careful: it has letters among the digits. Numbers are matched digit for digit \
             (a letter O is not a 0, an l is not a 1): check what you typed and look again.\n",
        );
    }
    text
}

/// `lookout retract`. On a terminal, a moderator withdrawing someone else's alert is shown
/// what she is about to withdraw for everyone and asked `yes` first (Trial 12's T12-15), and
/// for a reason if she gave none; piped input (scripts) is not asked, as with `approve`.
pub async fn retract(
    ctx: &Context,
    id: String,
    reason: String,
    out: Out,
) -> Result<Outcome, ApiError> {
    let id = pasted_id(&id);
    let target = id.clone();
    let mut session = ctx.open().await?;
    let asked = if !out.json && std::io::stdin().is_terminal() {
        ask_before_retracting(&mut session, &id, reason, now(), out.style).await
    } else {
        Ok(Some(reason))
    };
    let result = match asked {
        Ok(Some(reason)) => session.client().retract(id, reason).await.map(Some),
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    session.close()?;
    let Some(posted) = result? else {
        out.text("Nothing was changed.\n");
        return Ok(Outcome::Done);
    };
    if out.json {
        out.json(&json!({ "retracted": target, "id": posted }))?;
    } else {
        out.text(&format!(
            "{} Alert {} is retracted for everyone.\n",
            out.style.good("Done."),
            short(&target)
        ));
    }
    Ok(Outcome::Done)
}

/// The reason to retract with, or `None` if the moderator did not answer `yes`. Only a
/// moderator's retraction of a live alert someone else posted is asked about; anything else
/// (one's own alert, an id that names no live alert or several) goes to the node as typed, which
/// answers as before.
async fn ask_before_retracting(
    session: &mut Session,
    id: &str,
    reason: String,
    now: u64,
    style: render::Style,
) -> Result<Option<String>, ApiError> {
    let mut client = session.client();
    if !client.status().await?.is_moderator {
        return Ok(Some(reason));
    }
    let prefix = id.to_ascii_lowercase();
    let alerts = client.alerts(AlertFilter::default()).await?;
    let mut named = alerts.iter().filter(|a| a.id.starts_with(&prefix));
    let (Some(alert), None) = (named.next(), named.next()) else {
        return Ok(Some(reason));
    };
    if alert.yours {
        return Ok(Some(reason));
    }
    if !moderation::answered_yes(&render::retract_question(alert, now, style))? {
        return Ok(None);
    }
    if !reason.trim().is_empty() {
        return Ok(Some(reason));
    }
    moderation::answer("Why do you withdraw it? The members see this (Enter to give no reason): ")
        .map(Some)
}

/// `lookout corroborate`.
pub async fn corroborate(
    ctx: &Context,
    id: String,
    note: String,
    out: Out,
) -> Result<Outcome, ApiError> {
    let id = pasted_id(&id);
    let target = id.clone();
    let posted = request(ctx, async |c| c.corroborate(id, note).await)
        .await?
        .0;
    if out.json {
        out.json(&json!({ "corroborated": target, "id": posted }))?;
    } else {
        out.text(&format!(
            "{} Others will see that alert {} happened to you too.\n",
            out.style.good("Thank you."),
            short(&target)
        ));
    }
    Ok(Outcome::Done)
}

/// An alert id as pasted: `lookout alerts` shows ids as `[695ae73b]`, brackets included.
fn pasted_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim()
        .to_owned()
}

/// `lookout export`.
pub async fn export(
    ctx: &Context,
    format: SheetFormat,
    area: Option<String>,
    file: Option<PathBuf>,
    out: Out,
) -> Result<Outcome, ApiError> {
    let filter = AlertFilter {
        area: area.clone(),
        ..AlertFilter::default()
    };
    let alerts = request(ctx, async |c| c.alerts(filter).await).await?.0;
    let now = now();
    let entries = sheet::Entry::all(&alerts, out.style.zone);
    let document = if out.json {
        let mut text = serde_json::to_string(&entries)
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot write JSON: {e}")))?;
        text.push('\n');
        text
    } else {
        match format {
            SheetFormat::Text => sheet::text(&entries, area.as_deref(), now, out.style.zone),
            SheetFormat::Html => sheet::html(&entries, area.as_deref(), now, out.style.zone),
        }
    };
    match file {
        None => out.text(&document),
        Some(path) => {
            write_private(&path, document.as_bytes()).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            eprintln!(
                "Wrote {} alerts to {}, readable only by you. It is NOT encrypted: anyone who \
                 gets this file or a printout reads every alert in it. Delete it when printed, \
                 and keep sheets out of clients' sight.",
                entries.len(),
                path.display()
            );
        }
    }
    Ok(Outcome::Done)
}

/// Write `bytes` to a new or truncated file only its owner may read (0600 on Unix, whatever
/// the umask), so an exported sheet is not left readable by other users of the machine.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // An existing file keeps its mode on open: tighten it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// The language of the system (`LANG=pt_BR.UTF-8` gives `pt`), or `und`.
pub fn default_language() -> String {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.is_empty())
        .and_then(|v| {
            let tag: String = v
                .split(['_', '.', '@'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            (tag.len() >= 2 && tag.len() <= 3 && tag.chars().all(|c| c.is_ascii_alphabetic()))
                .then_some(tag)
        })
        .unwrap_or_else(|| "und".into())
}

#[cfg(test)]
mod tests {
    use super::nothing_found;

    /// Trial 12: `check "07700 9OO 123"` (O for 0) answered only "No live alert names …" while an
    /// alert named 07700 900123; it now says the letters may be the reason.
    #[test]
    fn a_number_with_letters_that_finds_nothing_says_why_it_may_not_match() {
        for typo in ["07700 9OO 123", "O7700 900123", "+44 77OO 900l23"] {
            let text = nothing_found(typo);
            assert!(text.contains("letters among the digits"), "{typo}: {text}");
        }
        for plain in ["07700 900123", "AB12 CDE", "Big John", "john_x", "call me"] {
            let text = nothing_found(plain);
            assert!(text.starts_with("No live alert names"), "{plain}: {text}");
            assert!(!text.contains("letters among"), "{plain}: {text}");
        }
    }
}
