//! Words for categories and severities, for people rather than programs.
//!
//! The command line takes the protocol's stable names (`sexual-assault`, `high`); help texts,
//! the step-by-step `post` and the printed sheet explain them in plain words.

use lookout_protocol::content::{Category, Severity};

/// What a category means, in a few plain words.
pub fn category_meaning(category: Category) -> &'static str {
    match category {
        Category::Violence => "physical violence",
        Category::SexualAssault => "rape or sexual assault",
        Category::Robbery => "robbery or theft",
        Category::NonPayment => "did not pay",
        Category::CondomRemoval => "removed the condom without consent",
        Category::Threats => "threats, stalking or harassment",
        Category::Drugging => "drink or drugs spiked",
        Category::FakeClient => "fake client, set-up or ambush",
        Category::TimeWaster => "time-waster or no-show",
        Category::PoliceRaid => "police raid",
        Category::PoliceHarassment => "police harassment or extortion",
        Category::Other => "anything else",
    }
}

/// A short title for the printed sheet.
pub fn category_title(category: Category) -> &'static str {
    match category {
        Category::Violence => "Violence",
        Category::SexualAssault => "Sexual assault",
        Category::Robbery => "Robbery",
        Category::NonPayment => "Did not pay",
        Category::CondomRemoval => "Removed condom",
        Category::Threats => "Threats / stalking",
        Category::Drugging => "Spiked drink or drugs",
        Category::FakeClient => "Fake client / set-up",
        Category::TimeWaster => "Time-waster",
        Category::PoliceRaid => "Police raid",
        Category::PoliceHarassment => "Police harassment",
        Category::Other => "Other",
    }
}

/// What a severity asks of the reader.
pub fn severity_meaning(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "be aware",
        Severity::Medium => "be careful",
        Severity::High => "dangerous: avoid",
        Severity::Critical => "danger to life",
    }
}

/// Help text listing every category with its meaning.
pub fn category_help() -> String {
    let lines: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("  {:<18} {}", c.as_str(), category_meaning(*c)))
        .collect();
    format!("What happened. One of:\n{}", lines.join("\n"))
}

/// Help text listing every severity with its meaning.
pub fn severity_help() -> String {
    let lines: Vec<String> = Severity::ALL
        .iter()
        .map(|s| format!("  {:<18} {}", s.as_str(), severity_meaning(*s)))
        .collect();
    format!(
        "How dangerous [default: medium]. One of:\n{}",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_accepted_name() {
        let help = category_help();
        for name in Category::names().split(", ") {
            assert!(help.contains(name), "{name} missing from the category help");
        }
        let help = severity_help();
        for name in Severity::names().split(", ") {
            assert!(help.contains(name), "{name} missing from the severity help");
        }
    }
}
