//! Times and durations as people type and read them.
//!
//! Input: `2026-11-20`, `2026-11-20 14:30`, `now`, `today`, `yesterday`, `yesterday 22:00`,
//! `today 09:15`, `3h ago`, `2 days ago` for a moment; `24h`, `7d`, `90m`, `2w` for a span.
//! Output: `3 h ago`, `20 Nov 2026`, `20 Nov 2026 14:30 (UTC+9)`. Days and times of day are the
//! device's ([`Zone`]: its offsets read when the command starts, each time in its own); the rules an incident time follows
//! (a year back at most, a day kept as a day) are `lookout_node::when`'s, which the web page
//! uses too. The current time comes in as an argument so every rule is testable.

use lookout_node::when::{
    self as rule, parse_day, parse_time_of_day, Typed, Zone, DAY, HOUR, MINUTE,
};

/// Seconds in a week.
const WEEK: u64 = 7 * DAY;

/// What the date and duration parsers accept, for help texts and error messages.
pub const TIME_FORMATS: &str = "now, today, yesterday, yesterday 22:00, today 09:15, 3h ago, \
     2d ago, 30m ago, 1w ago, 2026-11-20 or 2026-11-20 14:30 (times of day in this device's \
     time zone; within the last year)";
/// What `--since` accepts.
pub const SPAN_FORMATS: &str = "24h, 7d, 30m, 2w, or a time such as yesterday or 2026-11-20";

/// When something happened, as the alert stores it (see `lookout_node::when`): a day typed
/// without a time of day is kept as that day; refused if in the future or over a year ago.
pub fn parse_time(text: &str, now: u64, zone: Zone) -> Result<u64, String> {
    parse_typed(text, now, zone)?
        .incident_time(now, zone)
        .map_err(|e| format!("'{}': {e}", text.trim()))
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

/// The start of a `--since` window: a span back from now (`24h`) or a moment (`yesterday`: from
/// the start of that day in `zone`).
pub fn parse_since(text: &str, now: u64, zone: Zone) -> Result<u64, String> {
    match parse_span(text) {
        Ok(span) => Ok(now.saturating_sub(span)),
        Err(span_error) => {
            let start = parse_typed(text, now, zone)
                .map_err(|_| span_error)?
                .start(zone);
            if start > now + rule::CLOCK_SKEW {
                return Err(format!(
                    "'{}' is in the future: give a time in the past",
                    text.trim()
                ));
            }
            Ok(start)
        }
    }
}

/// How long ago, in words: `just now`, `5 min ago`, `3 h ago`, `2 days ago`, or the date in
/// `zone`.
pub fn ago(time: u64, now: u64, zone: Zone) -> String {
    if time > now {
        return in_future(time, now);
    }
    let elapsed = now - time;
    match elapsed {
        0..MINUTE => "just now".into(),
        MINUTE..HOUR => format!("{} min ago", elapsed / MINUTE),
        HOUR..DAY => format!("{} h ago", elapsed / HOUR),
        DAY..=2_592_000 => plural(elapsed / DAY, "day", "ago"),
        _ => date(time, zone),
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

/// A day as `20 Nov 2026` in `zone` (month names avoid the day/month order confusion between
/// countries).
pub fn date(time: u64, zone: Zone) -> String {
    let c = zone.civil(time);
    format!("{} {} {}", c.day, month_name(c.month), c.year)
}

/// A moment as `20 Nov 2026 14:30 (UTC+9)`, the zone named.
pub fn date_time(time: u64, zone: Zone) -> String {
    let c = zone.civil(time);
    format!(
        "{} {} {} {:02}:{:02} ({})",
        c.day,
        month_name(c.month),
        c.year,
        c.hour,
        c.minute,
        zone.name_at(time)
    )
}

/// When an alert's event happened, as stored: a day alone (`20 Nov 2026`, the day typed) or
/// the moment in `zone`.
pub fn incident(time: u64, zone: Zone) -> String {
    if rule::is_day(time) {
        date(time, Zone::UTC)
    } else {
        date_time(time, zone)
    }
}

/// `happened …` in an alert's facts: `on 20 Nov 2026` for a day; `3 h ago` for a moment within
/// a day, else `on 20 Nov 2026 22:00 (UTC+9)` (in `zone`, named).
pub fn happened(time: u64, now: u64, zone: Zone) -> String {
    if rule::is_day(time) {
        format!("on {}", date(time, Zone::UTC))
    } else if now.saturating_sub(time) < DAY {
        ago(time, now, zone)
    } else {
        format!("on {}", date_time(time, zone))
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_name(month: u32) -> &'static str {
    MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???")
}

fn plural(count: u64, unit: &str, suffix: &str) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{s} {suffix}")
}

/// What `text` names, days and times of day read in `zone`.
fn parse_typed(text: &str, now: u64, zone: Zone) -> Result<Typed, String> {
    let cleaned = text.trim().to_ascii_lowercase();
    let refuse = || format!("cannot read the time '{}': use {TIME_FORMATS}", text.trim());
    let today = zone.day_of(now);
    let (first, rest) = match cleaned.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, Some(rest.trim())),
        None => (cleaned.as_str(), None),
    };
    let day = match first {
        "today" => Some(today),
        "yesterday" => Some(today - 1),
        _ => None,
    };
    if let Some(day) = day {
        return match rest {
            None => Ok(Typed::Day(day)),
            Some(time) => Ok(Typed::At {
                day,
                minute: parse_time_of_day(time).ok_or_else(refuse)?,
            }),
        };
    }
    if cleaned == "now" {
        return Ok(Typed::Moment(now));
    }
    if let Some(span) = cleaned.strip_suffix("ago") {
        let span = parse_span_only(span).ok_or_else(refuse)?;
        return Ok(Typed::Moment(now.saturating_sub(span)));
    }
    parse_date(&cleaned).ok_or_else(refuse)
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

/// `2026-11-20` (a day), `2026-11-20 14:30` or `2026-11-20t14:30` (a time of day).
fn parse_date(text: &str) -> Option<Typed> {
    let (day_part, time_part) = match text.split_once([' ', 't']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (text, None),
    };
    let day = parse_day(day_part)?;
    Some(match time_part {
        None => Typed::Day(day),
        Some(time) => Typed::At {
            day,
            minute: parse_time_of_day(time)?,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 2026-11-21 10:00:00 UTC (19:00 in Dili).
    const NOW: u64 = 1_795_255_200;
    const UTC: Zone = Zone::UTC;

    fn dili() -> Zone {
        Zone::east_of_utc(9 * 3600)
    }

    #[test]
    fn dates_read_and_show() {
        assert_eq!(parse_time("2026-11-21 10:00", NOW, UTC), Ok(NOW));
        assert_eq!(parse_time("2026-02-29", NOW, UTC).ok(), None);
        assert!(parse_time("2026-13-01", NOW, UTC).is_err());
        assert!(parse_time("2026-11-20 25:00", NOW, UTC).is_err());
        assert_eq!(date(NOW, UTC), "21 Nov 2026");
        assert_eq!(date_time(NOW + 90, UTC), "21 Nov 2026 10:01 (UTC)");
    }

    #[test]
    fn people_can_say_when() {
        assert_eq!(parse_time("now", NOW, UTC), Ok(NOW));
        assert_eq!(parse_time("3h ago", NOW, UTC), Ok(NOW - 3 * HOUR));
        assert_eq!(parse_time("2d ago", NOW, UTC), Ok(NOW - 2 * DAY));
        assert_eq!(parse_time("2 days ago", NOW, UTC), Ok(NOW - 2 * DAY));
        assert_eq!(
            parse_time(" Yesterday ", NOW, UTC),
            Ok(NOW - 10 * HOUR - DAY)
        );
        assert_eq!(parse_time("today", NOW, UTC), Ok(NOW - 10 * HOUR));
        assert_eq!(
            parse_time("2026-11-20", NOW, UTC),
            Ok(NOW - 10 * HOUR - DAY)
        );
        let error = parse_time("last tuesday", NOW, UTC).unwrap_err();
        assert!(error.contains("yesterday"), "{error}");
        assert!(parse_time("2030-01-01", NOW, UTC)
            .unwrap_err()
            .contains("future"));
    }

    /// Trial 12's T12-17: `--when 1999-01-01` was accepted ("happened 1 Jan 1999"), and a day
    /// typed without a time showed as "2026-11-30 00:00 UTC".
    #[test]
    fn a_date_over_a_year_back_or_ahead_of_the_clock_is_refused_and_a_day_stays_a_day() {
        let old = parse_time("1999-01-01", NOW, UTC).unwrap_err();
        assert!(old.contains("more than a year ago"), "{old}");
        assert!(parse_time("2025-11-19", NOW, UTC).is_err());
        assert!(parse_time("2025-11-22", NOW, UTC).is_ok());
        assert!(parse_time("400d ago", NOW, UTC).is_err());
        let ahead = parse_time("2026-11-21 10:30", NOW, UTC).unwrap_err();
        assert!(ahead.contains("in the future"), "{ahead}");
        assert!(
            parse_time("2026-11-21 10:04", NOW, UTC).is_ok(),
            "clock skew"
        );
        let yesterday = parse_time("yesterday", NOW, UTC).unwrap();
        assert_eq!(incident(yesterday, UTC), "20 Nov 2026");
        assert_eq!(incident(yesterday, dili()), "20 Nov 2026");
        assert_eq!(happened(yesterday, NOW, UTC), "on 20 Nov 2026");
        assert_eq!(incident(NOW - 3 * HOUR, UTC), "21 Nov 2026 07:00 (UTC)");
        assert_eq!(happened(NOW - 3 * HOUR, NOW, UTC), "3 h ago");
    }

    /// Trial 12's T12-16: `--when "yesterday 22:00"` was refused, and a typed time of day was
    /// read as UTC: in Dili (UTC+9) 9 h off.
    #[test]
    fn times_of_day_are_read_and_shown_in_the_devices_zone() {
        // NOW is 19:00 on 21 Nov in Dili.
        let late = parse_time("yesterday 22:00", NOW, dili()).unwrap();
        assert_eq!(late, NOW - 21 * HOUR);
        assert_eq!(incident(late, dili()), "20 Nov 2026 22:00 (UTC+9)");
        assert_eq!(happened(late, NOW, dili()), "3 h ago".replace('3', "21"));
        assert_eq!(
            happened(late - DAY, NOW, dili()),
            "on 19 Nov 2026 22:00 (UTC+9)"
        );
        let morning = parse_time("Today 09:15", NOW, dili()).unwrap();
        assert_eq!(morning, NOW - 9 * HOUR - 45 * MINUTE);
        assert_eq!(date_time(morning, dili()), "21 Nov 2026 09:15 (UTC+9)");
        assert_eq!(parse_time("2026-11-21 18:00", NOW, dili()), Ok(NOW - HOUR));
        assert!(parse_time("2026-11-21 18:00", NOW, UTC)
            .unwrap_err()
            .contains("future"));
        assert!(parse_time("today 23:00", NOW, dili())
            .unwrap_err()
            .contains("future"));
        assert!(parse_time("today 25:00", NOW, dili()).is_err());
        assert!(parse_time("tomorrow", NOW, dili()).is_err());
        assert_eq!(date(NOW + 6 * HOUR, dili()), "22 Nov 2026");
    }

    #[test]
    fn spans_and_since() {
        assert_eq!(parse_span("24h"), Ok(DAY));
        assert_eq!(parse_span("7d"), Ok(WEEK));
        assert_eq!(parse_span("90 min"), Ok(90 * MINUTE));
        assert!(parse_span("7").is_err());
        assert!(parse_span("d").is_err());
        assert!(parse_span("99999999999999999999w").is_err());
        assert_eq!(parse_since("24h", NOW, UTC), Ok(NOW - DAY));
        assert_eq!(
            parse_since("yesterday", NOW, UTC),
            Ok(NOW - 10 * HOUR - DAY)
        );
        assert_eq!(
            parse_since("yesterday", NOW, dili()),
            Ok(NOW - 19 * HOUR - DAY)
        );
        assert!(parse_since("soon", NOW, UTC).unwrap_err().contains("24h"));
        // A window may start long ago.
        assert!(parse_since("2020-01-01", NOW, UTC).is_ok());
    }

    #[test]
    fn relative_words() {
        assert_eq!(ago(NOW - 10, NOW, UTC), "just now");
        assert_eq!(ago(NOW - 5 * MINUTE, NOW, UTC), "5 min ago");
        assert_eq!(ago(NOW - 3 * HOUR, NOW, UTC), "3 h ago");
        assert_eq!(ago(NOW - DAY, NOW, UTC), "1 day ago");
        assert_eq!(ago(NOW - 2 * DAY, NOW, UTC), "2 days ago");
        assert_eq!(ago(NOW - 100 * DAY, NOW, UTC), "13 Aug 2026");
        assert_eq!(in_future(NOW + 29 * DAY + 5, NOW), "in 29 days");
        assert_eq!(in_future(NOW + 2 * HOUR, NOW), "in 2 h");
    }
}
