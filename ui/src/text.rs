//! Member-supplied text on its way to the page: control and bidi-override characters removed
//! (escaping itself is the templates' job), and what the node says as data put in the reader's
//! language.

use lookout_node::api::{ApiError, CodeKind, Detail, ProposalView};

use crate::i18n::Tr;

/// `text` without control characters (newlines and tabs kept) and without the characters that
/// reorder or hide text (bidi embeddings, overrides and isolates, zero-width marks).
pub fn clean(text: &str) -> String {
    text.chars().filter(|c| !hidden(*c)).collect()
}

fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{061C}'
                | '\u{FEFF}'
        )
}

/// `text` cleaned, with every name the node could not open (`unreadable name (1a2b3c4d)`: no
/// collective secret, or a hostile moderator's garbage) said in the reader's language
/// (`name-unreadable`).
pub fn clean_names(t: &Tr, text: &str) -> String {
    const MARK: &str = "unreadable name (";
    let text = clean(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let id = after
            .get(..8)
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
        match id {
            Some(id) if after[8..].starts_with(')') => {
                out.push_str(&rest[..at]);
                out.push_str(&t.with("name-unreadable", id));
                rest = &after[9..];
            }
            _ => {
                out.push_str(&rest[..at + MARK.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What the node refused, in the reader's language when the node said exactly what it was
/// (its [`Detail`]); otherwise its English message, cleaned (Trial 12's T12-19).
pub fn refusal(t: &Tr, error: &ApiError) -> String {
    let Some(detail) = &error.detail else {
        return clean(&error.message);
    };
    match detail {
        Detail::Name { max } => t.count("error-name", *max),
        Detail::TooLong { field, max, given } => {
            let field = t.msg(match field.as_str() {
                "description" => "field-description",
                "area" => "field-area",
                "physical description" => "field-physical",
                "phone numbers" | "plates" | "names" | "handles" => "field-identifier",
                _ => "field-other",
            });
            let (max, given) = (max.to_string(), given.to_string());
            t.args(
                "error-too-long",
                &[("field", &field), ("max", &max), ("given", &given)],
            )
        }
        Detail::WrongCode { expected, found } => t.msg(match (found, expected) {
            (CodeKind::JoinRequest, _) => "error-code-is-join-code",
            (CodeKind::Invite, _) => "error-code-is-invite",
            (CodeKind::Revocation, _) => "error-code-is-emergency-code",
            (_, CodeKind::JoinRequest) => "error-code-not-join-code",
            _ => "error-code-not-invite",
        }),
        Detail::DamagedCode { .. } => t.msg("error-code-damaged"),
        Detail::OldInvite => t.msg("error-old-invite"),
        Detail::OtherCollective => t.msg("error-other-collective"),
        _ => clean(&error.message),
    }
}

/// Who or what a proposal is about, in the reader's language: the node's English `subject`
/// says "fingerprint", "former member", "mailbox … at …" (Trial 12's T12-19).
pub fn subject(t: &Tr, view: &ProposalView) -> String {
    let about = &view.about;
    if about.id.is_empty() {
        // An older node: only its English.
        return clean_names(t, &view.subject);
    }
    let id = clean(&about.id);
    let name = about.name.as_deref().map(|n| clean_names(t, n));
    if let Some(fingerprint) = &about.fingerprint {
        let name = name.unwrap_or_default();
        return t.args(
            "proposal-subject-join",
            &[
                ("name", &name),
                ("id", &id),
                ("fingerprint", &clean(fingerprint)),
            ],
        );
    }
    if !about.addresses.is_empty() {
        let addresses = clean(&about.addresses.join(" "));
        return t.args(
            "proposal-subject-mailbox",
            &[("id", &id), ("addresses", &addresses)],
        );
    }
    match name {
        Some(name) => name,
        None => t.with("proposal-subject-former", &id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_controls_are_removed() {
        assert_eq!(clean("07700\u{202E}321\u{202C} 900"), "07700321 900");
        assert_eq!(clean("a\u{0007}b\u{2066}c\u{200F}"), "abc");
        assert_eq!(clean("line one\nline\ttwo"), "line one\nline\ttwo");
        assert_eq!(
            clean("<script>"),
            "<script>",
            "escaping is the template's job"
        );
    }

    /// Review 21: a join request's name is chosen by whoever made the code, and 64 bytes hold
    /// "Ana (3fa9c2, fingerprint 11111 22222 33333 44444)". Listed as "name (id, fingerprint
    /// …)", a code swapped on its way to the moderator showed the real member's fingerprint
    /// first, and the moderator compared that one. The fingerprint now comes first, before the
    /// name, in every language.
    #[test]
    fn a_name_made_to_look_like_a_fingerprint_comes_after_the_real_one() {
        let catalog = crate::i18n::Catalog::load();
        let real = "55555 66666 77777 88888";
        let view = ProposalView {
            id: "ab".repeat(32),
            action: "add".into(),
            subject: String::new(),
            approvals: 1,
            needed: 2,
            done: false,
            invite: None,
            already: false,
            about: lookout_node::api::Subject {
                name: Some("Ana (3fa9c2, fingerprint 11111 22222 33333 44444)".into()),
                id: "9f8e7d".into(),
                fingerprint: Some(real.into()),
                addresses: Vec::new(),
            },
        };
        for code in ["en", "pt", "tet", "es", "fr"] {
            let shown = subject(&catalog.tr(code), &view);
            let (Some(at_real), Some(at_fake)) = (shown.find(real), shown.find("11111")) else {
                panic!("{code}: {shown}");
            };
            assert!(at_real < at_fake, "{code}: {shown}");
        }
    }
}
