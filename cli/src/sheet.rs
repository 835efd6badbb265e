//! The printable alert sheet outreach workers hand to people without a phone.
//!
//! An [`Entry`] holds only what such a person should know: what happened, how dangerous, who
//! to look out for, where, when, until when. It has no field for alert ids, member ids or the
//! reporter's name, so nothing that identifies a member can reach paper. The collective's name
//! is left off too: a sheet found by the wrong person should not name the group.

use std::fmt::Write as _;

use lookout_node::api::{sheet_order, AlertView};
use lookout_node::when::{is_day, Zone};
use lookout_protocol::content::Severity;
use serde::Serialize;

use crate::labels::{category_title, severity_meaning};
use crate::{render, when};

/// One alert as printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Category name (stable).
    pub category: String,
    /// Category in plain words.
    pub title: String,
    /// Severity name (stable).
    pub severity: String,
    /// What the severity asks of the reader.
    pub advice: String,
    /// What happened.
    pub description: String,
    /// Phone numbers, in local form with E.164 beside (`07700 900123 (+447700900123)`).
    pub phones: Vec<String>,
    /// Number plates.
    pub plates: Vec<String>,
    /// Names used.
    pub names: Vec<String>,
    /// Online handles.
    pub handles: Vec<String>,
    /// What they look like.
    pub looks: String,
    /// Where.
    pub area: String,
    /// When it happened (or was reported), as a date.
    pub when: String,
    /// The last day the alert is valid.
    pub valid_until: String,
    /// Whether it is about immediate danger to life (printed so it stands out without colour).
    pub critical: bool,
    /// How many others said it happened to them too.
    pub others: usize,
}

impl Entry {
    /// The printable part of an alert.
    pub fn of(alert: &AlertView, zone: Zone) -> Self {
        let alert = &render::safe(alert);
        Self {
            category: alert.category.as_str().into(),
            title: category_title(alert.category).into(),
            severity: alert.severity.as_str().into(),
            advice: severity_meaning(alert.severity).into(),
            description: alert.description.clone(),
            phones: alert.phones.iter().map(|p| render::phone(p)).collect(),
            plates: alert.plates.clone(),
            names: alert.names.clone(),
            handles: alert.handles.clone(),
            looks: alert.physical.clone(),
            area: alert.area.clone(),
            when: match alert.incident_time {
                Some(t) if is_day(t) => when::date(t, Zone::UTC),
                Some(t) => when::date(t, zone),
                None => when::date(alert.posted, zone),
            },
            valid_until: when::date(alert.expires, zone),
            others: alert.corroborations,
            critical: alert.severity == Severity::Critical,
        }
    }

    /// The printable part of each alert in the sheet's order, the page's too
    /// ([`sheet_order`]: most severe first, then most recent first).
    pub fn all(alerts: &[AlertView], zone: Zone) -> Vec<Entry> {
        let mut alerts: Vec<&AlertView> = alerts.iter().collect();
        alerts.sort_by(|a, b| sheet_order(a, b));
        alerts.into_iter().map(|a| Entry::of(a, zone)).collect()
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![("What happened", self.description.clone())];
        let lists = [
            ("Phone", &self.phones),
            ("Number plate", &self.plates),
            ("Name used", &self.names),
            ("Online", &self.handles),
        ];
        for (label, values) in lists {
            if !values.is_empty() {
                facts.push((label, values.join(", ")));
            }
        }
        if !self.looks.is_empty() {
            facts.push(("Looks like", self.looks.clone()));
        }
        if !self.area.is_empty() {
            facts.push(("Where", self.area.clone()));
        }
        facts.push(("When", self.when.clone()));
        if self.others > 0 {
            facts.push(("Also reported by", format!("{} more", self.others)));
        }
        facts.push(("Valid until", self.valid_until.clone()));
        facts
    }
}

/// The sheet as plain text.
pub fn text(entries: &[Entry], area: Option<&str>, now: u64, zone: Zone) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "SAFETY ALERTS");
    let _ = writeln!(out, "{}", subtitle(entries.len(), area, now, zone));
    let _ = writeln!(
        out,
        "Keep this sheet out of clients' sight. Trust your instincts: no alert does not mean safe."
    );
    let _ = writeln!(out, "{}", "=".repeat(72));
    if entries.is_empty() {
        let _ = writeln!(out, "\nNo live alerts.");
    }
    for (i, entry) in entries.iter().enumerate() {
        // Critical alerts are framed and marked in words, so they stand out in black and white.
        let (mark, margin) = if entry.critical {
            let _ = write!(out, "\n{}", "!".repeat(72));
            ("!!! ", "!  ")
        } else {
            ("", "   ")
        };
        let _ = writeln!(
            out,
            "\n{}. {mark}{} - {} ({})",
            i + 1,
            entry.severity.to_uppercase(),
            entry.title,
            entry.advice
        );
        for (label, value) in entry.facts() {
            let _ = writeln!(out, "{margin}{:<17} {value}", format!("{label}:"));
        }
        if entry.critical {
            let _ = writeln!(out, "{}", "!".repeat(72));
        }
    }
    out
}

/// The sheet as a self-contained web page with print styles.
pub fn html(entries: &[Entry], area: Option<&str>, now: u64, zone: Zone) -> String {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Safety alerts</title>\n<style>\n\
         body { font-family: sans-serif; font-size: 14pt; margin: 1.5em; }\n\
         h1 { margin-bottom: 0; }\n\
         .alert { border: 2px solid #333; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; page-break-inside: avoid; }\n\
         .high { border-color: #b00; border-width: 4px; }\n\
         .critical { border: 8px double #b00; }\n\
         .level { font-weight: bold; font-size: 16pt; }\n\
         .critical .level { background: #000; color: #fff; padding: 0.2em 0.4em; font-size: 20pt; }\n\
         dt { font-weight: bold; float: left; clear: left; width: 9em; }\n\
         dd { margin-left: 9.5em; margin-bottom: 0.2em; }\n\
         @media print { body { margin: 0; } }\n\
         </style>\n</head>\n<body>\n<h1>Safety alerts</h1>\n",
    );
    let _ = writeln!(
        out,
        "<p>{}</p>",
        escape(&subtitle(entries.len(), area, now, zone))
    );
    out.push_str("<p><strong>Keep this sheet out of clients' sight.</strong> Trust your instincts: no alert does not mean safe.</p>\n");
    if entries.is_empty() {
        out.push_str("<p>No live alerts.</p>\n");
    }
    for entry in entries {
        let _ = writeln!(
            out,
            "<div class=\"alert {}\">\n<p class=\"level\">{}{} &mdash; {} ({})</p>\n<dl>",
            escape(&entry.severity),
            if entry.critical { "&#9888; " } else { "" },
            escape(&entry.severity.to_uppercase()),
            escape(&entry.title),
            escape(&entry.advice)
        );
        for (label, value) in entry.facts() {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(&value));
        }
        out.push_str("</dl>\n</div>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn subtitle(count: usize, area: Option<&str>, now: u64, zone: Zone) -> String {
    let s = if count == 1 { "" } else { "s" };
    let place = area
        .map(|a| format!(" in areas matching \"{a}\""))
        .unwrap_or_default();
    format!(
        "{count} live alert{s}{place}, printed {}",
        when::date(now, zone)
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_protocol::content::Category;

    fn alert() -> AlertView {
        AlertView {
            id: "feedfacefeedface".into(),
            category: Category::Robbery,
            severity: Severity::Critical,
            description: "Took the money <script>".into(),
            phones: vec!["+447700900123".into()],
            plates: vec![],
            names: vec![],
            handles: vec![],
            physical: "tall".into(),
            area: "Dock Road".into(),
            incident_time: None,
            posted: 1_795_255_200,
            expires: 1_795_255_200 + 30 * 86_400,
            language: "en".into(),
            on_behalf: false,
            author: "SecretAuthorName".into(),
            yours: false,
            author_id: String::new(),
            seq: 1,
            retracted: None,
            retracted_by: None,
            corroborations: 1,
            corroborated_by: Vec::new(),
            edited: false,
            matched: None,
        }
    }

    #[test]
    fn sheets_never_carry_ids_or_authors() {
        let entries = vec![Entry::of(&alert(), Zone::UTC)];
        for sheet in [
            text(&entries, None, 1_795_255_200, Zone::UTC),
            html(&entries, Some("Dock"), 1_795_255_200, Zone::UTC),
        ] {
            assert!(!sheet.contains("SecretAuthorName"));
            assert!(!sheet.contains("feedface"));
            assert!(sheet.contains("+447700900123"));
            assert!(sheet.contains("21 Dec 2026"), "{sheet}");
        }
        let page = html(&entries, None, 0, Zone::UTC);
        assert!(page.contains("Took the money &lt;script&gt;"));
        let plain = text(&entries, None, 1_795_255_200, Zone::UTC);
        assert!(
            plain.contains("1. !!! CRITICAL - Robbery (danger to life)"),
            "{plain}"
        );
        assert!(plain.contains("!  Where:            Dock Road"), "{plain}");
        assert!(plain.contains("07700 900123 (+447700900123)"), "{plain}");
    }
}
