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
                        nearest: Self::ALL
                            .iter()
                            .map(|v| (strsim::levenshtein(v.as_str(), &wanted), v.as_str()))
                            .filter(|(distance, _)| *distance <= 3)
                            .min()
                            .map(|(_, name)| name),
                        accepted: Self::names(),
                    })
            }
        }
    };
}

/// A name that is not one of the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown {} '{given}': {}use one of {accepted}",
    kind.to_lowercase(),
    nearest.map(|n| format!("did you mean '{n}'? ")).unwrap_or_default()
)]
pub struct UnknownName {
    kind: &'static str,
    given: String,
    nearest: Option<&'static str>,
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
    /// A field holds control characters or bidirectional overrides, which could hide or
    /// rewrite what a terminal or page shows.
    #[error("{0} contains control or text-direction characters")]
    Unprintable(&'static str),
}

/// Whether `c` may not appear in member-supplied text: C0 controls (other than newline and tab
/// in multi-line fields), DEL, C1 controls, and the bidirectional embeddings, overrides and
/// isolates that can reorder what is displayed around them.
pub fn is_unprintable(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    }
}

/// `text` made safe to show: every character [`is_unprintable`] refuses becomes U+FFFD (and, in
/// single-line contexts, newlines and tabs become spaces). Posts that carry such characters are
/// refused on receipt; this is for display of anything stored or typed before that rule.
pub fn display_safe(text: &str, multiline: bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| is_unprintable(c, multiline)) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' | '\t' if !multiline => ' ',
                c if is_unprintable(c, multiline) => '\u{FFFD}',
                c => c,
            })
            .collect(),
    )
}

impl Content {
    /// Check sizes and required fields.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Content::Alert(alert) | Content::Edit { alert, .. } => alert.validate(),
            Content::Retraction { reason, .. } => {
                check_text("reason", reason, MAX_FIELD_BYTES, true)
            }
            Content::Corroboration { note, .. } => {
                check_text("note", note, MAX_DESCRIPTION_BYTES, true)
            }
            Content::Reachability { addresses } => {
                check_count("addresses", addresses.len(), MAX_ADDRESSES)?;
                addresses
                    .iter()
                    .try_for_each(|a| check_text("address", a, MAX_FIELD_BYTES, false))
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
        check_text(
            "description",
            &self.description,
            MAX_DESCRIPTION_BYTES,
            true,
        )?;
        check_text("area", &self.area, MAX_FIELD_BYTES, false)?;
        check_text("language", &self.language, 16, false)?;
        let ids = &self.identifiers;
        check_text(
            "physical description",
            &ids.description,
            MAX_DESCRIPTION_BYTES,
            true,
        )?;
        for (field, list) in [
            ("phone numbers", &ids.phones),
            ("plates", &ids.plates),
            ("names", &ids.names),
            ("handles", &ids.handles),
        ] {
            check_count(field, list.len(), MAX_IDENTIFIERS)?;
            for value in list {
                check_text(field, value, MAX_FIELD_BYTES, false)?;
            }
        }
        Ok(())
    }
}

/// Length, and no character that could hide or rewrite what is displayed.
fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    multiline: bool,
) -> Result<(), ContentError> {
    check_len(field, value, max)?;
    if value.chars().any(|c| is_unprintable(c, multiline)) {
        return Err(ContentError::Unprintable(field));
    }
    Ok(())
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
    /// handles to lower case, names to single-spaced. A phone number that cannot be read
    /// (see [`parse_phone`]) is refused and nothing is changed.
    pub fn normalise(&mut self, country: &str) -> Result<(), PhoneError> {
        let phones = self
            .phones
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_phone(p, country))
            .collect::<Result<Vec<_>, _>>()?;
        self.phones = phones;
        self.normalise_others();
        Ok(())
    }

    /// [`Identifiers::normalise`], but a phone number that cannot be read is kept exactly as
    /// typed (spaces collapsed), never rewritten; it shows as unverified (see [`is_e164`]).
    pub fn normalise_keeping_phones_as_typed(&mut self, country: &str) {
        for phone in &mut self.phones {
            *phone = parse_phone(phone, country).unwrap_or_else(|_| collapse_spaces(phone));
        }
        self.normalise_others();
    }

    fn normalise_others(&mut self) {
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

/// Why a phone number as typed cannot be stored as a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// It has letters in it (such as a letter O for a zero, or words).
    #[error("phone number '{0}' has letters in it: type it in digits only (letters are never read as digits)")]
    Letters(String),
    /// It has no number to speak of.
    #[error("'{0}' is not a phone number: leave the phone out if you do not know it")]
    NotANumber(String),
    /// It is not a number that can exist in the country it was read for.
    #[error("'{given}' is not a valid phone number for {country}: check the digits, or write it with +country code")]
    Invalid {
        /// As typed (shortened).
        given: String,
        /// The country it was read with.
        country: String,
    },
}

/// Read a phone number as typed into E.164 (`07700 900123` read with `GB` gives
/// `+447700900123`). Letters are never turned into digits, and a number that cannot exist in
/// its country is refused rather than rewritten into a different one.
pub fn parse_phone(raw: &str, country: &str) -> Result<String, PhoneError> {
    let given: String = raw.trim().chars().take(40).collect();
    if raw.chars().any(char::is_alphabetic) {
        return Err(PhoneError::Letters(given));
    }
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let punctuation_only = raw
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_whitespace() || "+-.()/".contains(c));
    if digits < 3 || !punctuation_only {
        return Err(PhoneError::NotANumber(given));
    }
    let invalid = || PhoneError::Invalid {
        given: given.clone(),
        country: country.to_owned(),
    };
    let region = phonenumber::country::Id::from_str(country).ok();
    let number = phonenumber::parse(region, raw).map_err(|_| invalid())?;
    if number.extension().is_some() || !phone_exists(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Whether a search term looks like a phone number with a few letters typed among its digits
/// (an O for a 0, an l for a 1): numbers are matched digit for digit, so such a term finds
/// nothing an alert names by that number, and the searcher should be told why.
pub fn letters_among_digits(term: &str) -> bool {
    let digits = term.chars().filter(char::is_ascii_digit).count();
    let letters = term.chars().filter(|c| c.is_alphabetic()).count();
    digits >= 6 && (1..=3).contains(&letters)
}

/// A stored phone number in the form people of its country write it (`+447700900123` gives
/// `07700 900123`); `None` for a value that is not a number in E.164 (kept as typed).
pub fn local_phone(stored: &str) -> Option<String> {
    if !is_e164(stored) {
        return None;
    }
    let number = phonenumber::parse(None, stored).ok()?;
    Some(
        number
            .format()
            .mode(phonenumber::Mode::National)
            .to_string(),
    )
}

/// Whether a stored phone value is a number in E.164 (`+` and digits), as opposed to text kept
/// as typed and unverified.
pub fn is_e164(stored: &str) -> bool {
    stored.len() > 1
        && stored.starts_with('+')
        && stored.chars().skip(1).all(|c| c.is_ascii_digit())
}

/// A phone number kept as typed, read as the digits it was meant to be: O and o as 0, l, I and i
/// as 1, then digits only; `None` unless that leaves nothing but digits, at least 6 of them.
fn read_as_digits(raw: &str) -> Option<String> {
    let mut digits = String::new();
    for c in raw.chars() {
        match c {
            'O' | 'o' => digits.push('0'),
            'l' | 'I' | 'i' => digits.push('1'),
            c if c.is_ascii_digit() => digits.push(c),
            c if c.is_alphanumeric() => return None,
            _ => {}
        }
    }
    (digits.len() >= 6).then_some(digits)
}

/// A phone number kept as typed, for comparing: digits and letters only, lower case.
fn compact(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Valid in the numbering plan, or of a form the plan's general pattern allows (fictional and
/// newly allocated ranges such as the UK's 07700 900xxx are not in the per-type metadata), and
/// in both cases of a length some kind of number in that country has. (The metadata's patterns
/// only match from the start, so without the length check a number with extra digits passes.)
fn phone_exists(number: &phonenumber::PhoneNumber) -> bool {
    let national = number.national().to_string();
    let Some(regions) = phonenumber::metadata::DATABASE.by_code(&number.code().value()) else {
        return false;
    };
    regions.iter().any(|meta| {
        let d = meta.descriptors();
        let kinds = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let length_exists = kinds
            .into_iter()
            .flatten()
            .flat_map(|kind| kind.possible_length().iter())
            .any(|&len| usize::from(len) == national.len());
        length_exists && d.general().is_match(&national)
    })
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
    /// alert's client. A number in E.164 matches the same number however it is typed; a phone
    /// kept as typed (unverified) matches the same letters and digits, and also the number it
    /// reads as with O/o as 0 and l/I/i as 1 (Trial 12's T12-7: `07700 9OO 124` is found by
    /// checking `07700 900 124`). Names match when equal ignoring case, when one contains the
    /// other as a whole word, or when they are within a small edit distance.
    pub fn matches(&self, term: &str, country: &str) -> Option<MatchKind> {
        let ids = &self.identifiers;
        let digits = term.chars().filter(char::is_ascii_digit).count();
        if digits >= 6 {
            let read = parse_phone(term, country).ok();
            let typed = compact(term);
            let typed_digits = read_as_digits(term);
            if ids.phones.iter().any(|p| {
                if is_e164(p) {
                    return read.as_deref() == Some(p.as_str());
                }
                if compact(p) == typed {
                    return true;
                }
                // Only an unverified value is read this way: a number in E.164 never matches
                // another through it.
                read_as_digits(p).is_some_and(|d| {
                    typed_digits.as_ref() == Some(&d)
                        || (read.is_some() && parse_phone(&d, country).ok() == read)
                })
            }) {
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
        let read = |raw: &str, country: &str| parse_phone(raw, country).unwrap();
        assert_eq!(read("07700 900123", "GB"), "+447700900123");
        assert_eq!(read("+44 7700-900123", "GB"), "+447700900123");
        assert_eq!(read("0044 7700 900123", "GB"), "+447700900123");
        assert_eq!(read("(07700) 900.123", "GB"), "+447700900123");
        assert_eq!(read("7723 4567", "TL"), "+67077234567");
        assert_eq!(read("06 12 34 56 78", "FR"), "+33612345678");
        assert_eq!(
            local_phone("+447700900123").as_deref(),
            Some("07700 900123")
        );
        assert_eq!(local_phone("07700 90012"), None);
    }

    #[test]
    fn phones_are_never_rewritten_into_other_numbers() {
        assert!(matches!(
            parse_phone("07700 9OO123", "GB"),
            Err(PhoneError::Letters(_))
        ));
        assert!(matches!(
            parse_phone("1-800-FLOWERS", "US"),
            Err(PhoneError::Letters(_))
        ));
        assert!(matches!(
            parse_phone("call me", "GB"),
            Err(PhoneError::Letters(_))
        ));
        assert!(matches!(
            parse_phone("?? --", "GB"),
            Err(PhoneError::NotANumber(_))
        ));
        for wrong_country in ["06 12 34 56 78", "07700 90012", "07700 9001234567"] {
            assert!(
                matches!(
                    parse_phone(wrong_country, "GB"),
                    Err(PhoneError::Invalid { .. })
                ),
                "{wrong_country}: {:?}",
                parse_phone(wrong_country, "GB")
            );
        }
        let mut ids = Identifiers {
            phones: vec!["07700 9OO123".into(), " 07700  900123 ".into()],
            ..Identifiers::default()
        };
        assert!(ids.clone().normalise("GB").is_err());
        ids.normalise_keeping_phones_as_typed("GB");
        assert_eq!(ids.phones, vec!["+447700900123", "07700 9OO123"]);
        assert!(!is_e164("07700 9OO123"));
    }

    #[test]
    fn plates_and_handles_normalise() {
        assert_eq!(normalise_plate("ab12 cde"), "AB12CDE");
        assert_eq!(normalise_plate("AB-12-CDE"), "AB12CDE");
        assert_eq!(normalise_handle(" @Bad_Guy "), "bad_guy");
    }

    #[test]
    fn misspelt_names_get_a_suggestion() {
        let e = "violance".parse::<Category>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown category 'violance': did you mean 'violence'? use one of"),
            "{e}"
        );
        let far = "xyzzy".parse::<Severity>().unwrap_err().to_string();
        assert!(
            far.starts_with("unknown severity 'xyzzy': use one of"),
            "{far}"
        );
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
        identifiers.normalise("GB").unwrap();
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

    fn kept_as_typed(phone: &str) -> Alert {
        let mut a = alert();
        a.identifiers.phones = vec![phone.into()];
        a.identifiers.normalise_keeping_phones_as_typed("GB");
        a
    }

    /// Trial 12's T12-7: a phone kept as typed with a letter O for a 0 was found only by the
    /// same typo, not by checking the real number.
    #[test]
    fn an_unverified_phone_is_found_by_the_number_it_reads_as() {
        let a = kept_as_typed("07700 9OO 124");
        assert_eq!(a.identifiers.phones, ["07700 9OO 124"], "kept as typed");
        for term in [
            "07700 900 124",
            "07700900124",
            "+44 7700 900124",
            "07700 9oo124",
            "O77OO 9OO 124",
        ] {
            assert_eq!(a.matches(term, "GB"), Some(MatchKind::Phone), "{term}");
        }
        assert_eq!(a.matches("07700 900 125", "GB"), None);
        assert_eq!(
            kept_as_typed("0770l 9OOI24").matches("07701 900124", "GB"),
            Some(MatchKind::Phone)
        );
        // Other letters are not guessed at: "call me", or an L for a 1, read as nothing.
        assert_eq!(
            kept_as_typed("07700 9OO L24").matches("07700 900124", "GB"),
            None
        );
        assert_eq!(
            kept_as_typed("call me 0770").matches("07700 900124", "GB"),
            None
        );
        // A verified number still matches only itself.
        assert_eq!(alert().matches("07700 9OO 123", "GB"), None);
    }

    proptest::proptest! {
        #![proptest_config(crate::membership::random_history::proptest_seed::config(256))]

        /// The reading of letters as digits applies only to values kept as typed: a verified
        /// number never matches a different number (typed, verified or with letters), and an
        /// unverified copy of a number with O for 0 or I for 1 is found by the number and by
        /// no other.
        #[test]
        fn letters_read_as_digits_never_make_two_numbers_match(
            a in 0u32..1000,
            b in 0u32..1000,
            swaps in proptest::collection::vec(proptest::bool::ANY, 11),
        ) {
            proptest::prop_assume!(a != b);
            let local = |n: u32| format!("07700 900{n:03}");
            let verified = |n: u32| {
                let mut x = alert();
                x.identifiers.phones = vec![local(n)];
                x.identifiers.normalise("GB").unwrap();
                x
            };
            // a with some of its 0s typed as O and 1s as I.
            let mut typo = String::new();
            let mut i = 0;
            for c in local(a).chars() {
                let swap = c.is_ascii_digit() && swaps.get(i).copied().unwrap_or(false);
                if c.is_ascii_digit() { i += 1; }
                typo.push(match (c, swap) { ('0', true) => 'O', ('1', true) => 'I', (c, _) => c });
            }
            let unverified = kept_as_typed(&typo);
            for term in [local(b), format!("+447700900{b:03}"), local(b).replace('0', "O")] {
                proptest::prop_assert_eq!(verified(a).matches(&term, "GB"), None, "{}", term);
                proptest::prop_assert_eq!(unverified.matches(&term, "GB"), None, "{} {}", typo, term);
            }
            if typo != local(a) {
                proptest::prop_assert_eq!(verified(a).matches(&typo, "GB"), None, "{}", typo);
            }
            proptest::prop_assert_eq!(unverified.matches(&local(a), "GB"), Some(MatchKind::Phone));
            proptest::prop_assert_eq!(verified(a).matches(&local(a), "GB"), Some(MatchKind::Phone));
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::membership::random_history::proptest_seed::config(256))]

        /// Review 19 (R19-6): the property above compares numbers of one length only, so a
        /// reading that matched by suffix or prefix (an unverified `9OO 124` found by every
        /// number ending in 900124) passed it. An unverified value read as digits matches
        /// those digits exactly: never a longer or shorter number that contains them, either
        /// way round. (The last 10 digits are the number without its trunk 0, the same number:
        /// not cut here.)
        #[test]
        fn an_unverified_phone_matches_no_number_that_only_contains_its_digits(
            a in 0u32..1000,
            cut in 6usize..10,
            extra in 0u32..10,
        ) {
            let local = format!("07700900{a:03}");
            let typo = local.replace('0', "O");
            let unverified = kept_as_typed(&typo);
            let shorter = local[local.len() - cut..].to_owned();
            let longer = format!("{local}{extra}");
            for term in [shorter.clone(), longer.clone(), format!("{extra}{local}")] {
                proptest::prop_assert_eq!(unverified.matches(&term, "GB"), None, "{} {}", typo, term);
            }
            let short_typo = kept_as_typed(&shorter.replace('0', "O"));
            for term in [local.clone(), longer] {
                proptest::prop_assert_eq!(short_typo.matches(&term, "GB"), None, "{} {}", shorter, term);
            }
        }
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

    #[test]
    fn text_that_could_hide_or_rewrite_the_screen_is_refused_and_made_safe() {
        let mut a = sample_alert_for_unprintable();
        a.description = "fine\nsecond line".into();
        assert_eq!(a.validate(), Ok(()));
        for bad in [
            "\u{1b}[8m",
            "\u{202E}gnp.exe",
            "a\u{9b}2J",
            "\u{7f}",
            "x\u{2066}y",
        ] {
            let mut b = a.clone();
            b.description = format!("hit me {bad}");
            assert_eq!(
                b.validate(),
                Err(ContentError::Unprintable("description")),
                "{bad:?}"
            );
            let mut c = a.clone();
            c.area = format!("Dock Road{bad}");
            assert_eq!(
                c.validate(),
                Err(ContentError::Unprintable("area")),
                "{bad:?}"
            );
            assert!(!display_safe(&b.description, true).contains(bad));
        }
        let mut d = a.clone();
        d.area = "Dock\nRoad".into();
        assert_eq!(d.validate(), Err(ContentError::Unprintable("area")));
        assert_eq!(display_safe("Dock\nRoad", false), "Dock Road");
        assert_eq!(display_safe("\u{1b}[8mx", true), "\u{FFFD}[8mx");
        let retraction = Content::Retraction {
            target: crate::ContentId([0; 32]),
            reason: "\u{1b}]0;owned\u{7}".into(),
        };
        assert!(retraction.validate().is_err());
    }

    fn sample_alert_for_unprintable() -> Alert {
        Alert {
            category: Category::Violence,
            severity: Severity::High,
            description: "x".into(),
            identifiers: Identifiers::default(),
            area: "Dock Road".into(),
            incident_time: None,
            language: "en".into(),
            on_behalf: false,
        }
    }
}
