//! Times and durations as people type and read them.
//!
//! Input: `2026-11-20`, `2026-11-20 14:30`, `now`, `today`, `yesterday`, `3h ago`, `2 days ago`
//! for a moment; `24h`, `7d`, `90m`, `2w` for a span. Output: `3 h ago`, `20 Nov 2026`. All
//! calendar arithmetic is UTC (a small civil-date conversion, no time-zone database), and the
//! current time comes in as an argument so every rule is testable.

/// Seconds in a minute, hour, day, week.
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// What the date and duration parsers accept, for help texts and error messages.
pub const TIME_FORMATS: &str =
    "now, today, yesterday, 3h ago, 2d ago, 30m ago, 1w ago, 2026-11-20 or 2026-11-20 14:30 (UTC)";
/// What `--since` accepts.
pub const SPAN_FORMATS: &str = "24h, 7d, 30m, 2w, or a time such as yesterday or 2026-11-20";

/// Parse a moment in the past (or now), as seconds since the Unix epoch.
pub fn parse_time(text: &str, now: u64) -> Result<u64, String> {
    let cleaned = text.trim().to_ascii_lowercase();
    let refuse = || format!("cannot read the time '{}': use {TIME_FORMATS}", text.trim());
    let time = match cleaned.as_str() {
        "now" => now,
        "today" => now - now % DAY,
        "yesterday" => (now - now % DAY).saturating_sub(DAY),
        _ => {
            if let Some(span) = cleaned.strip_suffix("ago") {
                now.saturating_sub(parse_span_only(span).ok_or_else(refuse)?)
            } else {
                parse_date(&cleaned).ok_or_else(refuse)?
            }
        }
    };
    // A minute of slack for clocks that disagree a little.
    if time > now + MINUTE {
        return Err(format!(
            "'{}' is in the future: give when it happened",
            text.trim()
        ));
    }
    Ok(time)
}

/// Parse a span of time such as `24h` or `7d`, in seconds.
pub fn parse_span(text: &str) -> Result<u64, String> {
    parse_span_only(&text.trim().to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "cannot read the duration '{}': use {SPAN_FORMATS}",
            text.trim()
        )
    })
}

/// The start of a `--since` window: a span back from now (`24h`) or a moment (`yesterday`).
pub fn parse_since(text: &str, now: u64) -> Result<u64, String> {
    match parse_span(text) {
        Ok(span) => Ok(now.saturating_sub(span)),
        Err(span_error) => parse_time(text, now).map_err(|_| span_error),
    }
}

/// How long ago, in words: `just now`, `5 min ago`, `3 h ago`, `2 days ago`, or the date.
pub fn ago(time: u64, now: u64) -> String {
    if time > now {
        return in_future(time, now);
    }
    let elapsed = now - time;
    match elapsed {
        0..MINUTE => "just now".into(),
        MINUTE..HOUR => format!("{} min ago", elapsed / MINUTE),
        HOUR..DAY => format!("{} h ago", elapsed / HOUR),
        DAY..=2_592_000 => plural(elapsed / DAY, "day", "ago"),
        _ => date(time),
    }
}

/// How long until, in words: `in 5 min`, `in 3 h`, `in 29 days`.
pub fn in_future(time: u64, now: u64) -> String {
    let left = time.saturating_sub(now);
    match left {
        0..MINUTE => "now".into(),
        MINUTE..HOUR => format!("in {} min", left / MINUTE),
        HOUR..DAY => format!("in {} h", left / HOUR),
        // Rounded: an alert posted a minute ago for 30 days expires "in 30 days".
        _ => format!(
            "in {}",
            plural((left + DAY / 2) / DAY, "day", "").trim_end()
        ),
    }
}

/// A day as `20 Nov 2026` (month names avoid the day/month order confusion between countries).
pub fn date(time: u64) -> String {
    let (year, month, day) = civil_from_days(time / DAY);
    let name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    format!("{day} {name} {year}")
}

/// A moment as `20 Nov 2026 14:30 UTC`.
pub fn date_time(time: u64) -> String {
    let seconds = time % DAY;
    format!(
        "{} {:02}:{:02} UTC",
        date(time),
        seconds / HOUR,
        (seconds % HOUR) / MINUTE
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn plural(count: u64, unit: &str, suffix: &str) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{s} {suffix}")
}

/// `3h`, `3 h`, `2 days`, `90min`: one number and one unit.
fn parse_span_only(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "wk" | "week" | "weeks" => WEEK,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// `2026-11-20`, `2026-11-20 14:30` or `2026-11-20t14:30`, UTC.
fn parse_date(text: &str) -> Option<u64> {
    let (day_part, time_part) = match text.split_once([' ', 't']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (text, None),
    };
    let mut fields = day_part.split('-');
    let year: i64 = fields.next()?.parse().ok()?;
    let month: u32 = fields.next()?.parse().ok()?;
    let day: u32 = fields.next()?.parse().ok()?;
    if fields.next().is_some()
        || !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    let seconds = match time_part {
        None => 0,
        Some(t) => {
            let (h, m) = t.split_once(':')?;
            let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            h * HOUR + m * MINUTE
        }
    };
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * DAY + seconds)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 2026-11-21 10:00:00 UTC.
    const NOW: u64 = 1_795_255_200;

    #[test]
    fn dates_round_trip_through_the_calendar() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-21 10:00"), Some(NOW));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-11-20 25:00"), None);
        assert_eq!(date(NOW), "21 Nov 2026");
        assert_eq!(date_time(NOW + 90), "21 Nov 2026 10:01 UTC");
        for day in [0u64, 59, 60, 365, 10_957, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y as i64, m, d), day as i64);
        }
    }

    #[test]
    fn people_can_say_when() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("3h ago", NOW), Ok(NOW - 3 * HOUR));
        assert_eq!(parse_time("2d ago", NOW), Ok(NOW - 2 * DAY));
        assert_eq!(parse_time("2 days ago", NOW), Ok(NOW - 2 * DAY));
        assert_eq!(parse_time(" Yesterday ", NOW), Ok(NOW - 10 * HOUR - DAY));
        assert_eq!(parse_time("today", NOW), Ok(NOW - 10 * HOUR));
        assert_eq!(parse_time("2026-11-20", NOW), Ok(NOW - 10 * HOUR - DAY));
        let error = parse_time("last tuesday", NOW).unwrap_err();
        assert!(error.contains("yesterday"), "{error}");
        assert!(parse_time("2030-01-01", NOW)
            .unwrap_err()
            .contains("future"));
    }

    #[test]
    fn spans_and_since() {
        assert_eq!(parse_span("24h"), Ok(DAY));
        assert_eq!(parse_span("7d"), Ok(WEEK));
        assert_eq!(parse_span("90 min"), Ok(90 * MINUTE));
        assert!(parse_span("7").is_err());
        assert!(parse_span("d").is_err());
        assert!(parse_span("99999999999999999999w").is_err());
        assert_eq!(parse_since("24h", NOW), Ok(NOW - DAY));
        assert_eq!(parse_since("yesterday", NOW), Ok(NOW - 10 * HOUR - DAY));
        assert!(parse_since("soon", NOW).unwrap_err().contains("24h"));
    }

    #[test]
    fn relative_words() {
        assert_eq!(ago(NOW - 10, NOW), "just now");
        assert_eq!(ago(NOW - 5 * MINUTE, NOW), "5 min ago");
        assert_eq!(ago(NOW - 3 * HOUR, NOW), "3 h ago");
        assert_eq!(ago(NOW - DAY, NOW), "1 day ago");
        assert_eq!(ago(NOW - 2 * DAY, NOW), "2 days ago");
        assert_eq!(ago(NOW - 100 * DAY, NOW), "13 Aug 2026");
        assert_eq!(in_future(NOW + 29 * DAY + 5, NOW), "in 29 days");
        assert_eq!(in_future(NOW + 2 * HOUR, NOW), "in 2 h");
    }
}
