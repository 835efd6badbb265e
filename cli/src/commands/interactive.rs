//! `lookout post` with no options on a terminal: one short question at a time, numbers to pick
//! from lists, Enter to skip, and a summary to confirm before anything is sent.

use std::io::{BufRead, Write};

use lookout_node::api::{ApiError, ErrorCode, PostDraft};
use lookout_protocol::content::{parse_phone, Category, Severity};

use crate::labels::{category_meaning, severity_meaning};
use crate::{render, when};
use lookout_node::when::Zone;

/// How many times a question is asked again after an answer it cannot use.
const RETRIES: usize = 3;

/// Ask for an alert. `Ok(None)` when the person cancels (or input ends).
pub fn ask(
    input: &mut impl BufRead,
    output: &mut impl Write,
    now: u64,
    zone: Zone,
    language: String,
    country: Option<&str>,
) -> Result<Option<PostDraft>, ApiError> {
    let mut q = Questions { input, output };
    q.say("Post an alert to everyone in your collective. Press Enter to skip a question, Ctrl-C to stop.\n")?;

    let categories: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("{:<18} {}", c.as_str(), category_meaning(*c)))
        .collect();
    let Some(category) = q.choose("What happened?", &categories, None)? else {
        return Ok(None);
    };
    let category = Category::ALL[category];

    let severities: Vec<String> = Severity::ALL
        .iter()
        .map(|s| format!("{:<9} {}", s.as_str(), severity_meaning(*s)))
        .collect();
    let medium = Severity::ALL.iter().position(|s| *s == Severity::Medium);
    let Some(severity) = q.choose("How dangerous?", &severities, medium)? else {
        return Ok(None);
    };
    let severity = Severity::ALL[severity];

    let mut description = String::new();
    for _ in 0..RETRIES {
        match q.line("Describe what happened, in one line:")? {
            None => return Ok(None),
            Some(text) if !text.is_empty() => {
                description = text;
                break;
            }
            Some(_) => {
                q.say("  Please write a few words, so others know what to look out for.\n")?
            }
        }
    }
    if description.is_empty() {
        return Ok(None);
    }
    let Some((phones, phones_as_typed)) = q.phones(country)? else {
        return Ok(None);
    };
    let plates = q.list("Car number plate(s):")?;
    let names = q.list("Name(s) or nickname(s) they used:")?;
    let handles = q.list("Online handle(s) or email:")?;
    let physical = q.line("What do they look like?")?.unwrap_or_default();
    let area = q
        .line("Where did it happen (area, street, venue)?")?
        .unwrap_or_default();

    let mut incident_time = None;
    for _ in 0..RETRIES {
        let prompt = "When did it happen? (today, yesterday 22:00, 3h ago, 2026-11-20; your time zone; Enter = just now)";
        match q.line(prompt)? {
            None => return Ok(None),
            Some(text) if text.is_empty() => break,
            Some(text) => match when::parse_time(&text, now, zone) {
                Ok(time) => {
                    incident_time = Some(time);
                    break;
                }
                Err(e) => q.say(&format!("  {e}\n"))?,
            },
        }
    }

    let draft = PostDraft {
        category,
        severity,
        description,
        phones,
        phones_as_typed,
        plates,
        names,
        handles,
        physical,
        area,
        incident_time,
        expires_in_days: None,
        language,
        on_behalf: false,
    };
    q.say(&summary(&draft, country, zone))?;
    match q.line("Send this alert to everyone? Type y for yes:")? {
        Some(answer) if matches!(answer.to_lowercase().as_str(), "y" | "yes") => Ok(Some(draft)),
        _ => Ok(None),
    }
}

struct Questions<'a, R, W> {
    input: &'a mut R,
    output: &'a mut W,
}

impl<R: BufRead, W: Write> Questions<'_, R, W> {
    fn say(&mut self, text: &str) -> Result<(), ApiError> {
        self.output
            .write_all(text.as_bytes())
            .and_then(|()| self.output.flush())
            .map_err(io_error)
    }

    /// One line of answer, trimmed; `None` when input ended.
    fn line(&mut self, question: &str) -> Result<Option<String>, ApiError> {
        self.say(&format!("\n{question}\n> "))?;
        let mut answer = String::new();
        let read = self.input.read_line(&mut answer).map_err(io_error)?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some(answer.trim().to_owned()))
    }

    /// Comma-separated values; empty when skipped.
    fn list(&mut self, question: &str) -> Result<Vec<String>, ApiError> {
        Ok(split_list(&self.line(question)?.unwrap_or_default()))
    }

    /// Phone numbers, each read as a number for `country` or asked again: never changed into
    /// another number, never dropped without saying so. The flag is whether the person chose to
    /// keep one that cannot be read exactly as typed. `None` when input ended.
    fn phones(&mut self, country: Option<&str>) -> Result<Option<(Vec<String>, bool)>, ApiError> {
        let mut question = "Phone number(s) they used (separate with commas):".to_owned();
        // A number typed again where y or Enter was asked for: read it, do not drop it.
        let mut typed_again: Option<String> = None;
        for _ in 0..RETRIES {
            let answer = match typed_again.take() {
                Some(answer) => answer,
                None => match self.line(&question)? {
                    Some(answer) => answer,
                    None => return Ok(None),
                },
            };
            let phones = split_list(&answer);
            let Some(country) = country else {
                return Ok(Some((phones, false)));
            };
            let refused: Vec<String> = phones
                .iter()
                .filter_map(|p| parse_phone(p, country).err())
                .map(|e| format!("  {e}\n"))
                .collect();
            if refused.is_empty() {
                return Ok(Some((phones, false)));
            }
            self.say(&refused.concat())?;
            let keep = format!(
                "Type y to keep {} exactly as typed, marked unverified (no other number is matched); or type the number(s) again:",
                if refused.len() == 1 { "it" } else { "them" }
            );
            match self.line(&keep)? {
                None => return Ok(None),
                Some(yes) if matches!(yes.to_lowercase().as_str(), "y" | "yes") => {
                    return Ok(Some((phones, true)));
                }
                Some(again) if !again.is_empty() => typed_again = Some(again),
                Some(_) => {}
            }
            question = "Phone number(s) again, in digits (Enter = leave the phone out):".to_owned();
        }
        Ok(None)
    }

    /// Pick from a numbered list (by number or by name); `default` is taken on Enter.
    fn choose(
        &mut self,
        question: &str,
        options: &[String],
        default: Option<usize>,
    ) -> Result<Option<usize>, ApiError> {
        let mut text = String::new();
        for (i, option) in options.iter().enumerate() {
            text.push_str(&format!("  {:>2}. {option}\n", i + 1));
        }
        let hint = match default {
            Some(d) => format!("Type a number (Enter = {}):", d + 1),
            None => "Type a number:".to_owned(),
        };
        for _ in 0..RETRIES {
            let Some(answer) = self.line(&format!("{question}\n{text}{hint}"))? else {
                return Ok(None);
            };
            if answer.is_empty() && default.is_some() {
                return Ok(default);
            }
            let by_number = answer
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=options.len()).contains(n))
                .map(|n| n - 1);
            let by_name = options.iter().position(|o| {
                o.split_whitespace()
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(&answer))
            });
            if let Some(choice) = by_number.or(by_name) {
                return Ok(Some(choice));
            }
            self.say(&format!(
                "  Please type a number from 1 to {}.\n",
                options.len()
            ))?;
        }
        Ok(None)
    }
}

fn split_list(answer: &str) -> Vec<String> {
    answer
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Each phone number as it will be stored and matched.
fn stored_phones(draft: &PostDraft, country: Option<&str>) -> String {
    draft
        .phones
        .iter()
        .map(|p| match country.map(|c| parse_phone(p, c)) {
            Some(Ok(number)) => render::phone(&number),
            Some(Err(_)) => render::phone(&collapse(p)),
            None => p.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn collapse(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn summary(draft: &PostDraft, country: Option<&str>, zone: Zone) -> String {
    let mut text = format!(
        "\nYour alert:\n  {} {} ({})\n  {}\n",
        draft.severity.as_str().to_uppercase(),
        draft.category,
        category_meaning(draft.category),
        draft.description
    );
    let fields = [
        ("phone", stored_phones(draft, country)),
        ("plate", draft.plates.join(", ")),
        ("name", draft.names.join(", ")),
        ("handle", draft.handles.join(", ")),
        ("looks like", draft.physical.clone()),
        ("where", draft.area.clone()),
        (
            "when",
            draft
                .incident_time
                .map(|t| when::incident(t, zone))
                .unwrap_or_default(),
        ),
    ];
    for (label, value) in fields {
        if !value.is_empty() {
            text.push_str(&format!("  {label}: {value}\n"));
        }
    }
    text
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        format!("cannot read your answer: {e}"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: u64 = 1_795_255_200;

    fn run(answers: &str) -> (Option<PostDraft>, String) {
        let mut input = answers.as_bytes();
        let mut output = Vec::new();
        let draft = ask(
            &mut input,
            &mut output,
            NOW,
            Zone::UTC,
            "en".into(),
            Some("GB"),
        )
        .unwrap();
        (draft, String::from_utf8(output).unwrap())
    }

    #[test]
    fn step_by_step_builds_the_alert() {
        let answers = "1\n\nPulled a knife\n07700 900123, 07700 900124\nAB12 CDE\n\n\ntall\nHarbour St\n3h ago\ny\n";
        let (draft, shown) = run(answers);
        let draft = draft.unwrap();
        assert_eq!(draft.category, Category::Violence);
        assert_eq!(draft.severity, Severity::Medium, "Enter takes the default");
        assert_eq!(draft.phones, vec!["07700 900123", "07700 900124"]);
        assert_eq!(draft.plates, vec!["AB12 CDE"]);
        assert!(draft.names.is_empty());
        assert_eq!(draft.physical, "tall");
        assert_eq!(draft.incident_time, Some(NOW - 3 * 3600));
        assert!(shown.contains("sexual-assault"));
        assert!(shown.contains("danger to life"));
        assert!(shown.contains("Your alert:"));
        assert!(shown.contains("phone: 07700 900123 (+447700900123), 07700 900124 (+447700900124)"));
    }

    #[test]
    fn a_phone_that_is_not_a_number_is_asked_again_or_kept_as_typed_on_request() {
        let answers = "1\n\nPulled a knife\nno idea, withheld\n\n07700 9OO123\ny\n\n\n\n\n\n\ny\n";
        let (draft, shown) = run(answers);
        let draft = draft.unwrap();
        assert!(shown.contains("'no idea' has letters in it"), "{shown}");
        assert_eq!(draft.phones, vec!["07700 9OO123"]);
        assert!(draft.phones_as_typed);
        assert!(
            shown.contains("phone: \"07700 9OO123\" (as typed, unverified)"),
            "{shown}"
        );
    }

    /// Trial 12: the corrected number typed at "Type y to keep it…; Enter to type the number(s)
    /// again" was thrown away, and the alert went out without a phone.
    #[test]
    fn a_number_typed_again_instead_of_y_or_enter_is_read() {
        let answers = "1\n\nPulled a knife\n07700 9OO 123\n07700 900 123\n\n\n\n\n\n\ny\n";
        let (draft, shown) = run(answers);
        let draft = draft.unwrap();
        assert_eq!(draft.phones, vec!["07700 900 123"], "{shown}");
        assert!(!draft.phones_as_typed);
        assert!(
            shown.contains("phone: 07700 900123 (+447700900123)"),
            "{shown}"
        );
    }

    #[test]
    fn wrong_answers_are_asked_again_and_no_means_nothing_is_sent() {
        let answers = "99\nrobbery\ncritical\n\nTook my phone\n\n\n\n\n\n\nlast week\n\nn\n";
        let (draft, shown) = run(answers);
        assert!(draft.is_none());
        assert!(shown.contains("Please type a number from 1 to 12"));
        assert!(shown.contains("Please write a few words"));
        assert!(shown.contains("cannot read the time"));
    }

    #[test]
    fn input_ending_cancels() {
        assert!(run("1\n").0.is_none());
    }
}
