//! Member-supplied text on its way to the page: control and bidi-override characters removed
//! (escaping itself is the templates' job).

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
pub fn clean_names(t: &crate::i18n::Tr, text: &str) -> String {
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
}
