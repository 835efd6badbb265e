//! How results look on a terminal: alerts, members, proposals, status.
//!
//! Every function returns text, so `lookout demo` shows exactly what the commands print.
//! Colour is used only when [`Style::colour`] is on (a terminal, and `NO_COLOR` unset).

use std::fmt::Write as _;
use std::io::IsTerminal;

use lookout_node::api::{
    AlertView, CorroborationView, MembersView, ProposalView, StatusView, UnreadableShareView,
};
use lookout_node::reach::Reachability;
use lookout_node::when::Zone;
use lookout_protocol::content::{display_safe, local_phone, Severity};

use crate::labels::category_meaning;
use crate::when;

/// Characters of an id shown to people; commands accept any unique prefix of 4 or more.
pub const SHORT_ID: usize = 8;

/// How to print: colours, and the time zone times of day are shown in.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Emit ANSI colours.
    pub colour: bool,
    /// The device's time zone (UTC unless read at start).
    pub zone: Zone,
}

impl Style {
    /// Colours when stdout is a terminal and `NO_COLOR` is not set.
    pub fn detect(zone: Zone) -> Self {
        Self {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            zone,
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dimmed, for secondary details.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Green, for success.
    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Yellow, for caution.
    pub fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A severity in its colour, upper case.
    pub fn severity(self, severity: Severity) -> String {
        let text = severity.as_str().to_uppercase();
        match severity {
            Severity::Critical => self.paint("1;31", &text),
            Severity::High => self.paint("31", &text),
            Severity::Medium => self.paint("33", &text),
            Severity::Low => self.paint("36", &text),
        }
    }
}

/// The first characters of an id.
pub fn short(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// A list of alerts, or a sentence saying there are none.
pub fn alerts(list: &[AlertView], now: u64, style: Style) -> String {
    if list.is_empty() {
        return "No live alerts.\n".into();
    }
    let mut out = String::new();
    for (i, alert) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&alert_block(alert, now, style));
    }
    out
}

/// A copy of `alert` with every member-supplied text made safe to show: no control character
/// or text-direction override reaches the terminal or a printed sheet, even from an alert stored
/// before such text was refused on receipt.
pub fn safe(alert: &AlertView) -> AlertView {
    let line = |s: &String| display_safe(s, false).into_owned();
    let lines = |s: &String| display_safe(s, true).into_owned();
    AlertView {
        description: lines(&alert.description),
        phones: alert.phones.iter().map(line).collect(),
        plates: alert.plates.iter().map(line).collect(),
        names: alert.names.iter().map(line).collect(),
        handles: alert.handles.iter().map(line).collect(),
        physical: lines(&alert.physical),
        area: line(&alert.area),
        language: line(&alert.language),
        author: line(&alert.author),
        retracted: alert.retracted.as_ref().map(lines),
        retracted_by: alert.retracted_by.as_ref().map(line),
        corroborated_by: alert
            .corroborated_by
            .iter()
            .map(|c| CorroborationView {
                member: line(&c.member),
                note: lines(&c.note),
                ..c.clone()
            })
            .collect(),
        ..alert.clone()
    }
}

/// What a moderator is asked before withdrawing an alert someone else posted: who posted it,
/// when, how severe and its first line, so she withdraws the alert she means.
pub fn retract_question(alert: &AlertView, now: u64, style: Style) -> String {
    let alert = &safe(alert);
    let first_line = alert.description.lines().next().unwrap_or_default();
    format!(
        "This alert was posted by {}, {} ({}):\n  {} {}{}\n  \"{first_line}\"\n\
         Retracting it withdraws it for every member, and they see that you did.\n\
         Type yes to retract it: ",
        alert.author,
        when::ago(alert.posted, now, style.zone),
        when::date_time(alert.posted, style.zone),
        alert.severity.as_str().to_uppercase(),
        alert.category.as_str(),
        if alert.area.is_empty() {
            String::new()
        } else {
            format!(" · {}", alert.area)
        },
    )
}

/// One alert as a few lines.
pub fn alert_block(alert: &AlertView, now: u64, style: Style) -> String {
    let alert = &safe(alert);
    let mut out = String::new();
    let mut head = format!(
        "{} {} ({})",
        style.severity(alert.severity),
        style.bold(alert.category.as_str()),
        category_meaning(alert.category)
    );
    if !alert.area.is_empty() {
        let _ = write!(head, " · {}", alert.area);
    }
    let _ = writeln!(
        out,
        "{head}  {}",
        style.dim(&format!("[{}]", short(&alert.id)))
    );
    if let Some(reason) = &alert.retracted {
        // Who withdrew it (its author or a moderator), and why if they said (Trial 12's T12-15).
        let by = alert
            .retracted_by
            .as_deref()
            .map(|who| format!(" by {who}"))
            .unwrap_or_default();
        if reason.is_empty() {
            let _ = writeln!(out, "  {}", style.warn(&format!("RETRACTED{by}")));
        } else {
            let _ = writeln!(out, "  {} {reason}", style.warn(&format!("RETRACTED{by}:")));
        }
    }
    let _ = writeln!(out, "  {}", alert.description);
    let identifiers = identifier_line(alert);
    if !identifiers.is_empty() {
        let _ = writeln!(out, "  {identifiers}");
    }
    if !alert.physical.is_empty() {
        let _ = writeln!(out, "  looks like: {}", alert.physical);
    }
    let mut facts = Vec::new();
    if let Some(t) = alert.incident_time {
        facts.push(format!("happened {}", when::happened(t, now, style.zone)));
    }
    facts.push(format!(
        "posted {} by {}",
        when::ago(alert.posted, now, style.zone),
        alert.author
    ));
    if alert.on_behalf {
        facts.push("on behalf of someone".into());
    }
    if alert.corroborations > 0 {
        let s = if alert.corroborations == 1 { "" } else { "s" };
        facts.push(format!("{} corroboration{s}", alert.corroborations));
    }
    facts.push(format!("expires {}", when::in_future(alert.expires, now)));
    let _ = writeln!(out, "  {}", style.dim(&facts.join(" · ")));
    for c in &alert.corroborated_by {
        let line = if c.note.is_empty() {
            format!("{} says it happened to them too", c.member)
        } else {
            format!("{}: \"{}\"", c.member, c.note)
        };
        let _ = writeln!(out, "  {}", style.dim(&line));
    }
    if let Some(how) = &alert.matched {
        let _ = writeln!(out, "  {}", style.warn(&format!("matched by {how}")));
    }
    out
}

/// `phone +447700900123 · plate AB12CDE · name "Dave"`.
pub fn identifier_line(alert: &AlertView) -> String {
    let mut parts = Vec::new();
    parts.extend(alert.phones.iter().map(|p| format!("phone {}", phone(p))));
    parts.extend(alert.plates.iter().map(|p| format!("plate {p}")));
    parts.extend(alert.names.iter().map(|n| format!("name \"{n}\"")));
    parts.extend(alert.handles.iter().map(|h| format!("handle {h}")));
    parts.join(" · ")
}

/// A stored phone number as people recognise it and as it is matched: `07700 900123
/// (+447700900123)`, or a value kept as typed marked `"…" (as typed, unverified)`.
pub fn phone(stored: &str) -> String {
    match local_phone(stored) {
        Some(local) if local != stored => format!("{local} ({stored})"),
        Some(_) => stored.to_owned(),
        None => format!("\"{stored}\" (as typed, unverified)"),
    }
}

/// This device, its collective and its node.
pub fn status(view: &StatusView, now: u64, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<13}{}", "You:", style.bold(&view.name));
    let _ = writeln!(out, "{:<13}{}", "Member id:", view.member);
    let _ = writeln!(out, "{:<13}{}", "Fingerprint:", view.fingerprint);
    match &view.collective {
        None => {
            let _ = writeln!(
                out,
                "{:<13}none yet (found one with `lookout collective create`, or ask a moderator to enrol you: `lookout join-request`)",
                "Collective:"
            );
        }
        Some(name) => {
            let role = if view.is_removed {
                style.warn("removed from it")
            } else if view.is_moderator {
                "moderator".into()
            } else if view.is_member {
                "member".into()
            } else {
                style.warn(if view.running {
                    "not admitted yet: waiting for a member's node to send the member list; if this \
                     lasts, ask a moderator whether they approved your join code"
                } else {
                    "not admitted yet: run `lookout run` so your node fetches the member list"
                })
            };
            let _ = writeln!(out, "{:<13}{} ({role})", "Collective:", style.bold(name));
            let _ = writeln!(out, "{:<13}{}", "Members:", view.members);
            let _ = writeln!(out, "{:<13}{}", "Live alerts:", view.alerts);
            for bad in &view.unreadable_key_shares {
                let _ = writeln!(
                    out,
                    "{:<13}{}",
                    "Warning:",
                    style.warn(&unreadable_share(bad))
                );
            }
            if view.damaged_posts > 0 || view.damaged_index_chunks > 0 {
                let _ = writeln!(
                    out,
                    "{:<13}{}",
                    "Warning:",
                    style.warn(&format!(
                        "this device's store is damaged ({} alert(s), {} index part(s) did not \
                         read): restart the node so the next sync fetches them again from \
                         other members",
                        view.damaged_posts, view.damaged_index_chunks
                    ))
                );
            }
            if view.outbox > 0 && view.members > 1 {
                let s = if view.outbox == 1 { "" } else { "s" };
                let _ = writeln!(
                    out,
                    "{:<13}{} message{s} of yours not yet passed to another member",
                    "Unsent:", view.outbox
                );
            }
        }
    }
    if view.running {
        let sync = view
            .last_sync
            .map(|t| format!(", last sync {}", when::ago(t, now, style.zone)))
            .unwrap_or_default();
        let s = if view.peers == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "{:<13}{} ({} peer{s} connected{sync})",
            "Node:",
            style.good("running"),
            view.peers
        );
        for (i, addr) in view.listening.iter().enumerate() {
            let label = if i == 0 { "Listening:" } else { "" };
            let _ = writeln!(out, "{label:<13}{addr}");
        }
        let synced: Vec<String> = view
            .synced_with
            .iter()
            .filter(|m| m.member != view.member)
            .map(|m| format!("{} {}", m.name, when::ago(m.at, now, style.zone)))
            .collect();
        if view.members > 1 {
            let text = if synced.is_empty() {
                "with nobody yet since the node started".to_owned()
            } else {
                synced.join(", ")
            };
            let _ = writeln!(out, "{:<13}{text}", "Last synced:");
        }
        let reach = match view.reachability {
            Reachability::Direct => "direct (members can connect to this node's own address)",
            Reachability::Relayed => "through a mailbox's relay (not directly)",
            Reachability::Unreachable => {
                "not reachable (this node can still fetch and send, but nobody can call it)"
            }
            Reachability::Unknown => "not known yet",
        };
        let _ = writeln!(out, "{:<13}{reach}", "Reachable:");
        for (i, mailbox) in view.mailboxes.iter().enumerate() {
            let label = if i == 0 { "Mailboxes:" } else { "" };
            let relay = if mailbox.reserved {
                ", relays for you"
            } else {
                ""
            };
            let sync = mailbox
                .last_sync
                .map(|t| format!(", synced {}", when::ago(t, now, style.zone)))
                .unwrap_or_default();
            let at = mailbox
                .address
                .as_deref()
                .map(|a| format!(" at {}", display_safe(a, false)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{label:<13}{}{at}: {}{relay}{sync}",
                mailbox.id, mailbox.state
            );
        }
    } else {
        let _ = writeln!(
            out,
            "{:<13}not running (start it with `lookout run` to exchange alerts)",
            "Node:"
        );
    }
    out
}

/// One line about a key share for this device that did not open: who signed it, and whether
/// the node got the key from another member since.
pub fn unreadable_share(bad: &UnreadableShareView) -> String {
    let after = if bad.recovered {
        "another member has since given you the key"
    } else {
        "your node is asking other members for the key"
    };
    format!(
        "member {} ({}) sent you an unreadable key share for epoch {}: {after}. Moderators should look into it",
        bad.signer_name,
        short(&bad.signer),
        bad.epoch
    )
}

/// Members and removed members.
pub fn members(view: &MembersView, style: Style) -> String {
    let mut out = String::new();
    let width = view
        .members
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "{:<width$}  {:<9}  {:<12}  FINGERPRINT",
            "NAME", "ROLE", "ID"
        ))
    );
    for m in &view.members {
        let role = if m.moderator { "moderator" } else { "member" };
        let you = if m.you { "  (you)" } else { "" };
        let _ = writeln!(
            out,
            "{:<width$}  {role:<9}  {:<12}  {}{you}",
            m.name,
            m.id.get(..12).unwrap_or(&m.id),
            m.fingerprint
        );
    }
    if !view.removed.is_empty() {
        let _ = writeln!(out, "\nRemoved:");
        for m in &view.removed {
            let how = if m.self_revoked {
                "revoked their own identity"
            } else {
                "removed by moderators"
            };
            let you = if m.you { "  (you)" } else { "" };
            let name = if m.name.is_empty() {
                "(never a member)"
            } else {
                &m.name
            };
            let _ = writeln!(
                out,
                "  {name:<width$}  {:<12}  {how}{you}",
                m.id.get(..12).unwrap_or(&m.id)
            );
        }
    }
    out
}

/// Proposals waiting for approvals.
pub fn proposals(list: &[ProposalView]) -> String {
    if list.is_empty() {
        return "Nothing is waiting for approval.\n".into();
    }
    let mut out = String::new();
    for p in list {
        let _ = writeln!(
            out,
            "[{}] {} {}: {} of {} approvals",
            short(&p.id),
            p.action,
            p.subject,
            p.approvals,
            p.needed
        );
    }
    let _ = writeln!(
        out,
        "\nTo approve one: lookout approve --proposal ID (check the fingerprint with the person first)"
    );
    out
}

/// A long code shortened for a transcript: start, end and length.
pub fn abbreviate(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() <= 40 {
        return code.to_owned();
    }
    let head: String = chars.iter().take(24).collect();
    let tail: String = chars.iter().skip(chars.len() - 8).collect();
    format!("{head}…{tail} ({} characters)", chars.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lookout_protocol::content::Category;

    /// Trial 12: a device that joined with an invite but was never approved, its node running,
    /// was told "run `lookout run`" for ever; it now says what it waits for and whom to ask.
    #[test]
    fn a_running_node_not_admitted_says_to_ask_a_moderator() {
        let mut view = StatusView {
            collective: Some("Harbour Collective".into()),
            ..StatusView::default()
        };
        let stopped = status(&view, 1000, Style::default());
        assert!(stopped.contains("run `lookout run`"), "{stopped}");
        view.running = true;
        let running = status(&view, 1000, Style::default());
        assert!(!running.contains("run `lookout run`"), "{running}");
        assert!(running.contains("ask a moderator"), "{running}");
    }

    fn alert() -> AlertView {
        AlertView {
            id: "0123456789abcdef".into(),
            category: Category::Violence,
            severity: Severity::High,
            description: "Pulled a knife".into(),
            phones: vec!["+447700900123".into()],
            plates: vec!["AB12CDE".into()],
            names: vec!["Dave".into()],
            handles: vec![],
            physical: String::new(),
            area: "Harbour Street".into(),
            incident_time: Some(1000),
            posted: 1000,
            expires: 1000 + 30 * 86_400,
            language: "en".into(),
            on_behalf: false,
            author: "Bea".into(),
            yours: false,
            author_id: String::new(),
            seq: 1,
            retracted: None,
            retracted_by: None,
            corroborations: 2,
            corroborated_by: Vec::new(),
            edited: false,
            matched: None,
        }
    }

    #[test]
    fn an_alert_reads_as_a_few_plain_lines() {
        let text = alert_block(&alert(), 1000 + 3 * 3600, Style::default());
        assert!(text.starts_with("HIGH violence (physical violence) · Harbour Street  [01234567]"));
        assert!(text.contains("phone 07700 900123 (+447700900123) · plate AB12CDE · name \"Dave\""));
        assert!(text.contains("posted 3 h ago by Bea"));
        assert!(text.contains("2 corroborations"));
        assert!(!text.contains('\x1b'), "no colour without a terminal");
        let coloured = alert_block(
            &alert(),
            1000,
            Style {
                colour: true,
                ..Style::default()
            },
        );
        assert!(coloured.contains("\x1b[31mHIGH\x1b[0m"));
    }

    /// Stored text with escape sequences or direction overrides (from before they were refused
    /// on receipt) never reaches the terminal or the printed sheet.
    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut hostile = alert();
        hostile.description = "\u{1b}[8mhidden".into();
        hostile.area = "Dock\u{202E}daoR".into();
        hostile.names = vec!["\u{1b}]0;title\u{7}".into()];
        hostile.author = "Bea\u{9b}2J".into();
        let text = alert_block(&hostile, 2000, Style::default());
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202E}'),
            "{text:?}"
        );
        assert!(text.contains("\u{FFFD}[8mhidden"));
        let entry = crate::sheet::Entry::of(&hostile, Zone::UTC);
        assert!(!entry.description.contains('\u{1b}'));
        assert!(!entry.area.contains('\u{202E}'));
    }

    #[test]
    fn status_names_the_signer_of_an_unreadable_key_share() {
        let view = StatusView {
            name: "Vic".into(),
            collective: Some("Harbour".into()),
            is_moderator: true,
            unreadable_key_shares: vec![UnreadableShareView {
                signer: "fedcba9876543210".into(),
                signer_name: "Rogue".into(),
                epoch: "a1b2c3d4".into(),
                recovered: false,
            }],
            ..StatusView::default()
        };
        let text = status(&view, 1000, Style::default());
        assert!(text.contains(
            "Warning:     member Rogue (fedcba98) sent you an unreadable key share for epoch a1b2c3d4: your node is asking other members for the key"
        ));
        let quiet = status(
            &StatusView {
                unreadable_key_shares: Vec::new(),
                ..view
            },
            1000,
            Style::default(),
        );
        assert!(!quiet.contains("Warning:"));
    }

    #[test]
    fn status_shows_reachability_and_mailboxes() {
        let view = StatusView {
            name: "Vic".into(),
            running: true,
            reachability: Reachability::Relayed,
            mailboxes: vec![lookout_node::api::MailboxLinkView {
                id: "0123456789abcdef".into(),
                address: Some("/ip4/198.18.0.10/udp/4001/quic-v1".into()),
                state: "admitted".into(),
                reserved: true,
                last_sync: Some(990),
            }],
            ..StatusView::default()
        };
        let text = status(&view, 1000, Style::default());
        assert!(
            text.contains("Reachable:   through a mailbox's relay"),
            "{text}"
        );
        assert!(text.contains(
            "Mailboxes:   0123456789abcdef at /ip4/198.18.0.10/udp/4001/quic-v1: admitted, relays for you, synced"
        ), "{text}");
        let stopped = status(
            &StatusView {
                running: false,
                ..view
            },
            1000,
            Style::default(),
        );
        assert!(!stopped.contains("Reachable:"));
    }

    #[test]
    fn codes_are_abbreviated_for_transcripts() {
        let code = format!("LKJOIN1-{}", "A".repeat(100));
        let short = abbreviate(&code);
        assert!(short.starts_with("LKJOIN1-AAAA"));
        assert!(short.ends_with("(108 characters)"));
        assert_eq!(abbreviate("LKJOIN1-AB"), "LKJOIN1-AB");
    }
}
