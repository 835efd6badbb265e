//! What members post: alerts about clients and policing, retractions, corroborations, edits, and
//! hints of where members' nodes can be reached.
//!
//! Client identifiers are normalised when an alert is made, so a phone number written
//! `07700 900123` by one member and `+44 7700 900123` by another match, and so do number plates
//! written with or without spaces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::ContentId;

/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 2000;
/// Longest short text field (a name, handle, area, note), in bytes.
pub const MAX_FIELD_BYTES: usize = 200;
/// Most identifiers of one kind on an alert.
pub const MAX_IDENTIFIERS: usize = 8;
/// Most addresses in one reachability hint.
pub const MAX_ADDRESSES: usize = 8;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used on the command line and in JSON.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted names, comma-separated, for help and error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
                Self::ALL
                    .iter()
                    .find(|v| v.as_str() == wanted)
                    .copied()
                    .ok_or_else(|| UnknownName {
                        kind: stringify!($name),
                        given: s.chars().take(40).collect(),
                        accepted: Self::names(),
                    })
            }
        }
    };
}

/// A name that is not one of the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{given}': use one of {accepted}")]
pub struct UnknownName {
    kind: &'static str,
    given: String,
    accepted: String,
}

named_enum!(
    /// What happened.
    Category {
        /// Physical violence.
        Violence => "violence",
        /// Rape or sexual assault.
        SexualAssault => "sexual-assault",
        /// Robbery or theft.
        Robbery => "robbery",
        /// Refused or failed to pay.
        NonPayment => "non-payment",
        /// Removed a condom without consent.
        CondomRemoval => "condom-removal",
        /// Threats, stalking or harassment.
        Threats => "threats",
        /// Drink or drugs spiked.
        Drugging => "drugging",
        /// A fake client, a set-up or an ambush.
        FakeClient => "fake-client",
        /// Wasted time, no-show.
        TimeWaster => "time-waster",
        /// Police raid.
        PoliceRaid => "police-raid",
        /// Police harassment or extortion.
        PoliceHarassment => "police-harassment",
        /// Anything else.
        Other => "other",
    }
);

/// Whether an alert is about a client or about policing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Group {
    /// About a client.
    Client,
    /// About police or other authorities.
    Policing,
    /// Neither.
    Other,
}

impl Category {
    /// The group the category belongs to.
    pub fn group(&self) -> Group {
        match self {
            Category::PoliceRaid | Category::PoliceHarassment => Group::Policing,
            Category::Other => Group::Other,
            _ => Group::Client,
        }
    }
}

named_enum!(
    /// How dangerous.
    Severity {
        /// Be aware.
        Low => "low",
        /// Be careful.
        Medium => "medium",
        /// Dangerous: avoid.
        High => "high",
        /// Immediate danger to life.
        Critical => "critical",
    }
);

/// Ways to recognise a client. All values are normalised (see [`Identifiers::normalise`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    /// Phone numbers in E.164 (`+447700900123`), or as written if they could not be read.
    pub phones: Vec<String>,
    /// Vehicle plates, upper case letters and digits only.
    pub plates: Vec<String>,
    /// Names or aliases, as given.
    pub names: Vec<String>,
    /// Advert handles or email addresses, lower case.
    pub handles: Vec<String>,
    /// Physical description.
    pub description: String,
}

/// An alert about a client or a policing incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What happened.
    pub category: Category,
    /// How dangerous.
    pub severity: Severity,
    /// What happened, in the poster's words.
    pub description: String,
    /// How to recognise the client.
    pub identifiers: Identifiers,
    /// Where (a neighbourhood or street, as coarse as the poster likes).
    pub area: String,
    /// When it happened, seconds since the Unix epoch, if known.
    pub incident_time: Option<u64>,
    /// Language of the text (BCP 47 tag such as `en`, `pt-BR`, `tet`).
    pub language: String,
    /// Posted by an outreach worker on behalf of someone without the app.
    pub on_behalf: bool,
}

/// Anything a member can post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A new alert.
    Alert(Alert),
    /// A new version of an earlier alert by the same author.
    Edit {
        /// The alert being replaced.
        target: ContentId,
        /// Its new text.
        alert: Alert,
    },
    /// Withdraw an alert (its author or a moderator).
    Retraction {
        /// The alert withdrawn.
        target: ContentId,
        /// Why.
        reason: String,
    },
    /// "This happened to me too."
    Corroboration {
        /// The alert corroborated.
        target: ContentId,
        /// Optional note.
        note: String,
    },
    /// Where the author's node can be reached (multiaddresses), for members only.
    Reachability {
        /// Multiaddresses as text.
        addresses: Vec<String>,
    },
}

/// Why content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// A field is too long.
    #[error("{field} is too long (at most {max} bytes)")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The cap.
        max: usize,
    },
    /// Too many identifiers of a kind.
    #[error("too many {field} (at most {max})")]
    TooMany {
        /// Which field.
        field: &'static str,
        /// The cap.
        max: usize,
    },
    /// A required field is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

impl Content {
    /// Check sizes and required fields.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Content::Alert(alert) | Content::Edit { alert, .. } => alert.validate(),
            Content::Retraction { reason, .. } => check_len("reason", reason, MAX_FIELD_BYTES),
            Content::Corroboration { note, .. } => check_len("note", note, MAX_DESCRIPTION_BYTES),
            Content::Reachability { addresses } => {
                check_count("addresses", addresses.len(), MAX_ADDRESSES)?;
                addresses
                    .iter()
                    .try_for_each(|a| check_len("address", a, MAX_FIELD_BYTES))
            }
        }
    }

    /// The alert this content refers to, if any.
    pub fn target(&self) -> Option<ContentId> {
        match self {
            Content::Edit { target, .. }
            | Content::Retraction { target, .. }
            | Content::Corroboration { target, .. } => Some(*target),
            Content::Alert(_) | Content::Reachability { .. } => None,
        }
    }

    /// Whether this counts against the author's posting quota.
    pub fn counts_against_quota(&self) -> bool {
        !matches!(self, Content::Reachability { .. })
    }
}

impl Alert {
    /// Check sizes and required fields.
    pub fn validate(&self) -> Result<(), ContentError> {
        if self.description.trim().is_empty() {
            return Err(ContentError::Empty("description"));
        }
        check_len("description", &self.description, MAX_DESCRIPTION_BYTES)?;
        check_len("area", &self.area, MAX_FIELD_BYTES)?;
        check_len("language", &self.language, 16)?;
        let ids = &self.identifiers;
        check_len(
            "physical description",
            &ids.description,
            MAX_DESCRIPTION_BYTES,
        )?;
        for (field, list) in [
            ("phone numbers", &ids.phones),
            ("plates", &ids.plates),
            ("names", &ids.names),
            ("handles", &ids.handles),
        ] {
            check_count(field, list.len(), MAX_IDENTIFIERS)?;
            for value in list {
                check_len(field, value, MAX_FIELD_BYTES)?;
            }
        }
        Ok(())
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), ContentError> {
    if value.len() > max {
        Err(ContentError::TooLong { field, max })
    } else {
        Ok(())
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), ContentError> {
    if count > max {
        Err(ContentError::TooMany { field, max })
    } else {
        Ok(())
    }
}

impl Identifiers {
    /// Normalise every identifier: phone numbers to E.164 read with `country` (an ISO 3166
    /// alpha-2 code) for numbers written without one, plates to upper-case letters and digits,
    /// handles to lower case, names to single-spaced.
    pub fn normalise(&mut self, country: &str) {
        for phone in &mut self.phones {
            *phone = normalise_phone(phone, country);
        }
        for plate in &mut self.plates {
            *plate = normalise_plate(plate);
        }
        for handle in &mut self.handles {
            *handle = normalise_handle(handle);
        }
        for name in &mut self.names {
            *name = collapse_spaces(name);
        }
        for list in [
            &mut self.phones,
            &mut self.plates,
            &mut self.handles,
            &mut self.names,
        ] {
            list.retain(|v| !v.is_empty());
            list.sort();
            list.dedup();
        }
    }
}

/// A phone number in E.164 if it can be read, else its digits with a leading `+` kept.
pub fn normalise_phone(raw: &str, country: &str) -> String {
    let region = phonenumber::country::Id::from_str(country).ok();
    match phonenumber::parse(region, raw) {
        // Valid per the numbering plan, or at least long enough to be a real subscriber number
        // (fictional and newly allocated ranges are not always in the plan's metadata).
        Ok(number)
            if phonenumber::is_valid(&number)
                || number.national().value().to_string().len() >= 7 =>
        {
            number.format().mode(phonenumber::Mode::E164).to_string()
        }
        _ => raw
            .chars()
            .enumerate()
            .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
            .map(|(_, c)| c)
            .collect(),
    }
}

/// A plate as upper-case letters and digits only.
pub fn normalise_plate(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A handle or email in lower case without a leading `@`.
pub fn normalise_handle(raw: &str) -> String {
    raw.trim().trim_start_matches('@').to_lowercase()
}

fn collapse_spaces(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a search term matched an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchKind {
    /// Same phone number.
    Phone,
    /// Same plate.
    Plate,
    /// Same handle or email.
    Handle,
    /// A name equal or close to the term.
    Name,
}

impl Alert {
    /// Whether `term` (a phone number, plate, handle or name, as a person typed it) names this
    /// alert's client. Names match when equal ignoring case, when one contains the other as a
    /// whole word, or when they are within a small edit distance.
    pub fn matches(&self, term: &str, country: &str) -> Option<MatchKind> {
        let ids = &self.identifiers;
        let digits = term.chars().filter(char::is_ascii_digit).count();
        if digits >= 6 {
            let phone = normalise_phone(term, country);
            if ids.phones.contains(&phone) {
                return Some(MatchKind::Phone);
            }
        }
        let plate = normalise_plate(term);
        if !plate.is_empty() && ids.plates.contains(&plate) {
            return Some(MatchKind::Plate);
        }
        let handle = normalise_handle(term);
        if !handle.is_empty() && ids.handles.contains(&handle) {
            return Some(MatchKind::Handle);
        }
        let name = collapse_spaces(term).to_lowercase();
        if name.chars().count() >= 2 && ids.names.iter().any(|n| names_match(&name, n)) {
            return Some(MatchKind::Name);
        }
        None
    }
}

fn names_match(term: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    if name == term {
        return true;
    }
    let words: Vec<&str> = name.split(' ').collect();
    if term.split(' ').all(|t| words.contains(&t)) {
        return true;
    }
    let allowed = if term.chars().count() <= 5 { 1 } else { 2 };
    strsim::levenshtein(term, &name) <= allowed
        || words
            .iter()
            .any(|w| w.chars().count() > 3 && strsim::levenshtein(term, w) <= allowed.min(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn phones_normalise_across_formats() {
        assert_eq!(normalise_phone("07700 900123", "GB"), "+447700900123");
        assert_eq!(normalise_phone("+44 7700-900123", "GB"), "+447700900123");
        assert_eq!(normalise_phone("0044 7700 900123", "GB"), "+447700900123");
        assert_eq!(normalise_phone("7723 4567", "TL"), "+67077234567");
        assert_eq!(normalise_phone("not a number 12", "GB"), "12");
    }

    #[test]
    fn plates_and_handles_normalise() {
        assert_eq!(normalise_plate("ab12 cde"), "AB12CDE");
        assert_eq!(normalise_plate("AB-12-CDE"), "AB12CDE");
        assert_eq!(normalise_handle(" @Bad_Guy "), "bad_guy");
    }

    #[test]
    fn category_names_parse() {
        assert_eq!("Police Raid".parse::<Category>(), Ok(Category::PoliceRaid));
        assert_eq!(Category::PoliceRaid.group(), Group::Policing);
        assert_eq!(Category::Violence.group(), Group::Client);
        let err = "punching".parse::<Category>().unwrap_err().to_string();
        assert!(err.contains("violence") && err.contains("police-raid"));
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
    }

    fn alert() -> Alert {
        let mut identifiers = Identifiers {
            phones: vec!["07700 900123".into()],
            plates: vec!["ab12 cde".into()],
            names: vec!["Johnny  Smith".into()],
            handles: vec!["@JS_Fun".into()],
            description: String::new(),
        };
        identifiers.normalise("GB");
        Alert {
            category: Category::Violence,
            severity: Severity::High,
            description: "hit me".into(),
            identifiers,
            area: "north".into(),
            incident_time: None,
            language: "en".into(),
            on_behalf: false,
        }
    }

    #[test]
    fn matching_is_normalised_and_fuzzy_for_names() {
        let a = alert();
        assert_eq!(a.matches("+44 7700 900123", "GB"), Some(MatchKind::Phone));
        assert_eq!(a.matches("AB12CDE", "GB"), Some(MatchKind::Plate));
        assert_eq!(a.matches("js_fun", "GB"), Some(MatchKind::Handle));
        assert_eq!(a.matches("johnny", "GB"), Some(MatchKind::Name));
        assert_eq!(a.matches("jonny smith", "GB"), Some(MatchKind::Name));
        assert_eq!(a.matches("Smith", "GB"), Some(MatchKind::Name));
        assert_eq!(a.matches("Peter", "GB"), None);
        assert_eq!(a.matches("07700 900124", "GB"), None);
    }

    #[test]
    fn caps_are_enforced() {
        let mut a = alert();
        a.description = "x".repeat(MAX_DESCRIPTION_BYTES + 1);
        assert!(matches!(a.validate(), Err(ContentError::TooLong { .. })));
        let mut b = alert();
        b.identifiers.phones = vec!["1".into(); MAX_IDENTIFIERS + 1];
        assert!(matches!(b.validate(), Err(ContentError::TooMany { .. })));
        let mut c = alert();
        c.description = "  ".into();
        assert_eq!(c.validate(), Err(ContentError::Empty("description")));
    }
}
