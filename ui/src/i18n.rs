//! Messages in Fluent, one file per language in `ui/locales/` (embedded in the binary).
//!
//! Each file names itself (`language-name`) and the language to fall back to for a message it
//! lacks (`language-fallback`; English, the complete set, is always last). Adding a language is
//! adding one file. The language comes from the session's switch, else the browser's
//! `Accept-Language`, else English.

use std::collections::HashMap;
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use rust_embed::RustEmbed;
use unic_langid::LanguageIdentifier;

#[derive(RustEmbed)]
#[folder = "locales/"]
struct Locales;

/// The language every chain ends in.
pub const BASE: &str = "en";
/// Longest fallback chain followed.
const MAX_CHAIN: usize = 4;

/// Every language's messages.
pub struct Catalog {
    bundles: HashMap<String, Arc<FluentBundle<FluentResource>>>,
    /// (code, own name), sorted by code.
    languages: Vec<(String, String)>,
}

/// Messages in one language, with its fallbacks.
#[derive(Clone)]
pub struct Tr {
    /// The language code chosen.
    pub lang: String,
    chain: Vec<Arc<FluentBundle<FluentResource>>>,
}

impl Catalog {
    /// Load the embedded files. A file that does not parse is a build defect, caught by the
    /// tests; it is skipped here rather than taking the interface down.
    pub fn load() -> Self {
        let mut bundles = HashMap::new();
        for file in Locales::iter() {
            let Some(code) = file.strip_suffix(".ftl") else {
                continue;
            };
            let Some(data) = Locales::get(&file) else {
                continue;
            };
            let Ok(text) = String::from_utf8(data.data.into_owned()) else {
                continue;
            };
            let Ok(resource) = FluentResource::try_new(text) else {
                tracing::error!(language = code, "a message file does not parse");
                continue;
            };
            let langid: LanguageIdentifier = code.parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![langid]);
            // Member text is stripped of bidi controls before display; isolation marks
            // around numbers would only get in the way of tests and screen readers.
            bundle.set_use_isolating(false);
            if bundle.add_resource(resource).is_err() {
                tracing::error!(language = code, "a message file repeats a message");
                continue;
            }
            bundles.insert(code.to_owned(), Arc::new(bundle));
        }
        let mut languages: Vec<(String, String)> = bundles
            .iter()
            .map(|(code, bundle)| {
                (
                    code.clone(),
                    plain(bundle, "language-name").unwrap_or_else(|| code.clone()),
                )
            })
            .collect();
        languages.sort();
        Self { bundles, languages }
    }

    /// (code, own name) of every language, for the switch.
    pub fn languages(&self) -> &[(String, String)] {
        &self.languages
    }

    /// Whether this language has a file.
    pub fn has(&self, code: &str) -> bool {
        self.bundles.contains_key(code)
    }

    /// The messages for `code` and its fallbacks.
    pub fn tr(&self, code: &str) -> Tr {
        let mut chain = Vec::new();
        let mut names = Vec::new();
        let mut next = Some(code.to_owned());
        while let Some(code) = next.take() {
            if names.contains(&code) || names.len() >= MAX_CHAIN {
                break;
            }
            let Some(bundle) = self.bundles.get(&code) else {
                break;
            };
            next = plain(bundle, "language-fallback");
            names.push(code);
            chain.push(bundle.clone());
        }
        if !names.iter().any(|n| n == BASE) {
            if let Some(base) = self.bundles.get(BASE) {
                chain.push(base.clone());
            }
        }
        Tr {
            lang: if chain.is_empty() || !self.has(code) {
                BASE.to_owned()
            } else {
                code.to_owned()
            },
            chain,
        }
    }

    /// The best language for an `Accept-Language` header.
    pub fn negotiate(&self, accept: &str) -> String {
        let mut wanted: Vec<(f32, usize, String)> = accept
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.trim().split(';');
                let tag = pieces.next()?.trim().to_ascii_lowercase();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                    .unwrap_or(1.0);
                Some((q, i, tag))
            })
            .filter(|(q, _, _)| *q > 0.0)
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanted
            .into_iter()
            .find_map(|(_, _, tag)| {
                let primary = tag.split(['-', '_']).next().unwrap_or_default().to_owned();
                [tag, primary].into_iter().find(|t| self.has(t))
            })
            .unwrap_or_else(|| BASE.to_owned())
    }
}

fn plain(bundle: &FluentBundle<FluentResource>, id: &str) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let mut errors = Vec::new();
    Some(
        bundle
            .format_pattern(pattern, None, &mut errors)
            .into_owned(),
    )
}

impl Tr {
    /// A message without arguments.
    pub fn msg(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// A message with one number (plurals are chosen by the language's rules).
    pub fn count(&self, id: &str, n: impl std::borrow::Borrow<usize>) -> String {
        let mut args = FluentArgs::new();
        args.set("n", FluentValue::from(*n.borrow()));
        self.format(id, Some(&args))
    }

    /// A message with one text argument `$value`.
    pub fn with(&self, id: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set("value", FluentValue::from(value.to_owned()));
        self.format(id, Some(&args))
    }

    /// A message with a member's name `$who` and one text argument `$value`.
    pub fn by(&self, id: &str, who: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set("who", FluentValue::from(who.to_owned()));
        args.set("value", FluentValue::from(value.to_owned()));
        self.format(id, Some(&args))
    }

    /// A message with two numbers `$n` of `$k` (such as approvals so far of those needed).
    pub fn of(
        &self,
        id: &str,
        n: impl std::borrow::Borrow<usize>,
        k: impl std::borrow::Borrow<usize>,
    ) -> String {
        let mut args = FluentArgs::new();
        args.set("n", FluentValue::from(*n.borrow()));
        args.set("k", FluentValue::from(*k.borrow()));
        self.format(id, Some(&args))
    }

    /// A message with named text arguments.
    pub fn args(&self, id: &str, args: &[(&str, &str)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(*name, FluentValue::from((*value).to_owned()));
        }
        self.format(id, Some(&fluent))
    }

    /// The language to try after this one for dates formatted in the browser.
    pub fn fallback(&self) -> String {
        self.chain
            .get(1)
            .and_then(|b| plain(b, "language-code"))
            .unwrap_or_else(|| BASE.to_owned())
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        for bundle in &self.chain {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle
                    .format_pattern(pattern, args, &mut errors)
                    .into_owned();
            }
        }
        // A missing message shows its id, which the tests catch.
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_language_loads_and_tetum_falls_back_to_portuguese_then_english() {
        let catalog = Catalog::load();
        for code in ["en", "pt", "tet", "es", "fr"] {
            assert!(catalog.has(code), "{code} missing");
        }
        let tet = catalog.tr("tet");
        assert_eq!(tet.lang, "tet");
        assert_eq!(tet.fallback(), "pt");
        assert_eq!(tet.msg("nav-alerts"), "Alerta sira");
        assert_eq!(catalog.tr("xx").lang, "en");
        assert_eq!(catalog.tr("xx").msg("nav-alerts"), "Alerts");
    }

    #[test]
    fn every_language_has_exactly_the_message_ids_english_has() {
        let catalog = Catalog::load();
        let ids = |code: &str| -> Vec<String> {
            let text = String::from_utf8(
                Locales::get(&format!("{code}.ftl"))
                    .unwrap()
                    .data
                    .into_owned(),
            )
            .unwrap();
            text.lines()
                .filter(|l| !l.starts_with([' ', '#', '.', '*', '[', '}']) && l.contains(" ="))
                .map(|l| l.split(" =").next().unwrap().trim().to_owned())
                .collect()
        };
        let english = ids("en");
        for (code, _) in catalog.languages() {
            let own = ids(code);
            for id in &own {
                assert!(english.contains(id), "{code} has {id}, English does not");
            }
            for id in &english {
                assert!(own.contains(id), "{code} lacks {id}, which English has");
            }
        }
        // Tetum has no plural categories in CLDR: its messages use a default variant only, so
        // no selector at all.
        let tet = String::from_utf8(Locales::get("tet.ftl").unwrap().data.into_owned()).unwrap();
        assert!(
            !tet.contains("->") && !tet.contains("[one]"),
            "Tetum messages must not use plural selectors"
        );
    }

    #[test]
    fn accept_language_picks_the_best_known_language() {
        let catalog = Catalog::load();
        assert_eq!(catalog.negotiate("pt-BR,pt;q=0.9,en;q=0.8"), "pt");
        assert_eq!(catalog.negotiate("de-DE, fr;q=0.5"), "fr");
        assert_eq!(catalog.negotiate("tet"), "tet");
        assert_eq!(catalog.negotiate("xx, yy"), "en");
        assert_eq!(catalog.negotiate(""), "en");
    }

    #[test]
    fn plurals_follow_the_language() {
        let catalog = Catalog::load();
        assert_eq!(catalog.tr("en").count("alerts-count", 1), "1 alert");
        assert_eq!(catalog.tr("en").count("alerts-count", 3), "3 alerts");
        assert_eq!(catalog.tr("tet").count("alerts-count", 3), "alerta 3");
    }
}
