//! When an alert's event happened, as members type and read it: in the device's time zone, with
//! the zone named, within a year back, and a day given without a time of day kept as a day.
//!
//! The wire carries an incident time as seconds since the Unix epoch and nothing more, so the
//! day-only rule is a convention of every view (docs/PROTOCOL.md §7): a day typed without a
//! time of day is stored as midnight UTC of that calendar day, and a time exactly on midnight UTC
//! is shown as that day alone. A moment typed with a time of day that would fall exactly on
//! midnight UTC (09:00 in Dili) is stored one second later, so it is never read back as a day.
//!
//! Pure: the current time and the zone come in as arguments (the CLI reads the device's offsets
//! over a span of years once at start, before any thread runs, as [`Offsets`]; the web page gets
//! the zone from the CLI).

/// Seconds in a minute.
pub const MINUTE: u64 = 60;
/// Seconds in an hour.
pub const HOUR: u64 = 60 * MINUTE;
/// Seconds in a day.
pub const DAY: u64 = 24 * HOUR;
/// How far ahead of this device's clock an incident time may be: clocks disagree a little.
pub const CLOCK_SKEW: u64 = 5 * MINUTE;
/// How far back an incident time may be: a year (a leap year's day counted in).
pub const OLDEST: u64 = 366 * DAY;

/// A time zone: its UTC offset at each instant. A fixed offset, or the device's offsets over a
/// span of years ([`Offsets`], read when the program starts), so a time on the other side of a
/// daylight-saving change is shown and read in the offset in force then, not in today's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    rule: Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Fixed(i32),
    Changes(&'static Offsets),
}

impl Default for Rule {
    fn default() -> Self {
        Rule::Fixed(0)
    }
}

/// Most a zone is from UTC, either way.
const MAX_OFFSET: i32 = 18 * 3600;

impl Zone {
    /// UTC itself.
    pub const UTC: Zone = Zone {
        rule: Rule::Fixed(0),
    };

    /// The zone `seconds` east of UTC (negative: west) at every instant, kept within ±18 h.
    pub fn east_of_utc(seconds: i32) -> Self {
        Zone {
            rule: Rule::Fixed(seconds.clamp(-MAX_OFFSET, MAX_OFFSET)),
        }
    }

    /// The zone whose offsets are `offsets` (the device's, read once; leaked so the zone stays
    /// a small copyable value).
    pub fn following(offsets: &'static Offsets) -> Self {
        Zone {
            rule: Rule::Changes(offsets),
        }
    }

    /// Seconds east of UTC at `time` (seconds since the Unix epoch).
    pub fn offset_at(self, time: u64) -> i32 {
        match self.rule {
            Rule::Fixed(offset) => offset,
            Rule::Changes(offsets) => offsets.at(i64::try_from(time).unwrap_or(i64::MAX)),
        }
    }

    /// The instant (seconds since the Unix epoch) at which clocks in this zone show `local`
    /// (seconds since 1970-01-01 00:00 on those clocks). A time skipped when clocks went
    /// forward is read with the offset before the change (so it lands after it); a time shown
    /// twice when they went back, as the first.
    pub fn instant_of(self, local: i64) -> i64 {
        let offset = |time: i64| i64::from(self.offset_at(u64::try_from(time).unwrap_or(0)));
        let guess = local - offset(local);
        let at = local - offset(guess);
        // Shown twice: the earlier instant if it shows the same.
        let earlier = local - offset(at - 3 * 3600);
        if earlier < at && earlier + offset(earlier) == local {
            earlier
        } else {
            at
        }
    }

    /// The name of its offset at `time`, as shown beside a time: `UTC`, `UTC+9`, `UTC+5:30`,
    /// `UTC-3:30`.
    pub fn name_at(self, time: u64) -> String {
        offset_name(self.offset_at(time))
    }

    /// The civil date and time of `time` (seconds since the Unix epoch) in this zone.
    pub fn civil(self, time: u64) -> Civil {
        // Any value a peer signed is shown: saturating, never past `i64::MAX` (R19-4).
        Civil::of(
            i64::try_from(time)
                .unwrap_or(i64::MAX)
                .saturating_add(i64::from(self.offset_at(time))),
        )
    }

    /// `2026-11-20 14:30 (UTC+9)`.
    pub fn date_time(self, time: u64) -> String {
        let c = self.civil(time);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} ({})",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            self.name_at(time)
        )
    }

    /// Days since 1970-01-01 of the day `time` falls on here.
    pub fn day_of(self, time: u64) -> i64 {
        i64::try_from(time)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::from(self.offset_at(time)))
            .div_euclid(DAY as i64)
    }
}

/// `UTC`, `UTC+9`, `UTC+5:30`, `UTC-3:30`.
fn offset_name(offset: i32) -> String {
    if offset == 0 {
        return "UTC".into();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    match minutes % 60 {
        0 => format!("UTC{sign}{}", minutes / 60),
        m => format!("UTC{sign}{}:{m:02}", minutes / 60),
    }
}

/// A device's UTC offsets over a span of time: the offset before the first change, and each
/// change (the first second of the new offset, the new offset). Before the span the first
/// offset holds, after it the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offsets {
    first: i32,
    changes: Vec<(i64, i32)>,
}

impl Offsets {
    /// The offsets `offset_at` gives from `from` to `to` (seconds since the Unix epoch): asked
    /// every `step` seconds, each change found narrowed to the second. Two changes within one
    /// step would be missed: a step of a week finds every daylight-saving rule in use (their
    /// changes are weeks or months apart). `None` if `offset_at` cannot tell at `from`; an
    /// instant it cannot tell later ends the span there.
    pub fn sampled(
        from: i64,
        to: i64,
        step: i64,
        mut offset_at: impl FnMut(i64) -> Option<i32>,
    ) -> Option<Offsets> {
        let mut read = |time: i64| offset_at(time).map(|o| o.clamp(-MAX_OFFSET, MAX_OFFSET));
        let first = read(from)?;
        let mut changes = Vec::new();
        let (mut before, mut offset) = (from, first);
        while before < to {
            let next = before.saturating_add(step.max(1)).min(to);
            let Some(then) = read(next) else { break };
            if then != offset {
                // The change is in (before, next]: halve until it is one second.
                let (mut low, mut high) = (before, next);
                while high - low > 1 {
                    let middle = low + (high - low) / 2;
                    match read(middle) {
                        Some(o) if o == offset => low = middle,
                        Some(_) => high = middle,
                        None => break,
                    }
                }
                changes.push((high, then));
                offset = then;
            }
            before = next;
        }
        Some(Offsets { first, changes })
    }

    /// The offset at `time`.
    pub fn at(&self, time: i64) -> i32 {
        match self.changes.partition_point(|(from, _)| *from <= time) {
            0 => self.first,
            n => self.changes[n - 1].1,
        }
    }
}

/// A civil date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, from 1.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
}

impl Civil {
    /// The civil date and time `seconds` after 1970-01-01 00:00 (Howard Hinnant's algorithm).
    pub fn of(seconds: i64) -> Civil {
        let days = seconds.div_euclid(DAY as i64);
        let rest = seconds.rem_euclid(DAY as i64);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
        let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
        let year = yoe + era * 400 + i64::from(month <= 2);
        let rest = u32::try_from(rest).unwrap_or(0);
        Civil {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, or `None` if there is no such date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `2026-11-20` (as a date box sends it): days since 1970-01-01, or `None`.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut fields = text.trim().split('-');
    let year: i64 = fields.next()?.parse().ok()?;
    let month: u32 = fields.next()?.parse().ok()?;
    let day: u32 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || !(1970..=9999).contains(&year) {
        return None;
    }
    days_from_civil(year, month, day)
}

/// `14:30`, `9:15` (as a time box sends it): minutes after midnight, or `None`.
pub fn parse_time_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    (h <= 23 && m <= 59).then_some(h * 60 + m)
}

/// What a member said about when something happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typed {
    /// A calendar day, no time of day (`2026-11-20`, `yesterday`), as days since 1970-01-01.
    Day(i64),
    /// A calendar day and a time of day in the device's zone (`yesterday 22:00`).
    At {
        /// Days since 1970-01-01.
        day: i64,
        /// Minutes after midnight, local.
        minute: u32,
    },
    /// A moment (`now`, `3h ago`), seconds since the Unix epoch.
    Moment(u64),
}

/// Why a time cannot be an alert's incident time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WhenError {
    /// Later than this device's clock (beyond [`CLOCK_SKEW`]).
    #[error("it is in the future: give when it happened")]
    InTheFuture,
    /// More than a year ago ([`OLDEST`]).
    #[error("it is more than a year ago: alerts are for recent danger; check the year")]
    TooLongAgo,
}

impl Typed {
    /// The moment it names in `zone` (a day: its first second there), for a `--since` window.
    pub fn start(self, zone: Zone) -> u64 {
        let local = match self {
            Typed::Day(day) => day.saturating_mul(DAY as i64),
            Typed::At { day, minute } => {
                day.saturating_mul(DAY as i64) + i64::from(minute) * MINUTE as i64
            }
            Typed::Moment(time) => return time,
        };
        u64::try_from(zone.instant_of(local)).unwrap_or(0)
    }

    /// The incident time to store, or why not: a day as midnight UTC of that day (shown as the
    /// day, see the module's docs), refused if after today in `zone` or more than a year
    /// before; a moment refused if later than `now` beyond [`CLOCK_SKEW`] or more than
    /// [`OLDEST`] before it.
    pub fn incident_time(self, now: u64, zone: Zone) -> Result<u64, WhenError> {
        if let Typed::Day(day) = self {
            let today = zone.day_of(now);
            if day > today {
                return Err(WhenError::InTheFuture);
            }
            if today - day > (OLDEST / DAY) as i64 {
                return Err(WhenError::TooLongAgo);
            }
            return u64::try_from(day * DAY as i64).map_err(|_| WhenError::TooLongAgo);
        }
        let time = self.start(zone);
        if time > now.saturating_add(CLOCK_SKEW) {
            return Err(WhenError::InTheFuture);
        }
        if time < now.saturating_sub(OLDEST) {
            return Err(WhenError::TooLongAgo);
        }
        // Exactly midnight UTC reads back as a day: one second later reads as the moment.
        Ok(if is_day(time) { time + 1 } else { time })
    }
}

/// Whether `time` is an incident time a writer following the rule could have made at `now`
/// (the node checks what it is asked to sign: Review 19's R19-8). A day (midnight UTC) may be
/// up to a day after `now` (today in a zone up to 18 h east of UTC) and [`OLDEST`] plus a day
/// before it; a moment at most [`CLOCK_SKEW`] ahead and [`OLDEST`] back. Readers accept any
/// value.
///
/// # Errors
///
/// [`WhenError::InTheFuture`] or [`WhenError::TooLongAgo`].
pub fn check_written(time: u64, now: u64) -> Result<(), WhenError> {
    let (ahead, back) = if is_day(time) {
        (DAY, OLDEST + DAY)
    } else {
        (CLOCK_SKEW, OLDEST)
    };
    if time > now.saturating_add(ahead) {
        return Err(WhenError::InTheFuture);
    }
    if time < now.saturating_sub(back) {
        return Err(WhenError::TooLongAgo);
    }
    Ok(())
}

/// Whether a stored incident time is a day without a time of day (exactly midnight UTC).
pub fn is_day(time: u64) -> bool {
    time.is_multiple_of(DAY)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 2026-11-21 10:00:00 UTC (19:00 in Dili, UTC+9).
    const NOW: u64 = 1_795_255_200;
    const DILI: Zone = Zone {
        rule: Rule::Fixed(9 * 3600),
    };

    #[test]
    fn zones_are_named_by_their_offset() {
        assert_eq!(Zone::UTC.name_at(NOW), "UTC");
        assert_eq!(DILI.name_at(NOW), "UTC+9");
        assert_eq!(Zone::east_of_utc(19_800).name_at(NOW), "UTC+5:30");
        assert_eq!(Zone::east_of_utc(-12_600).name_at(NOW), "UTC-3:30");
        assert_eq!(Zone::east_of_utc(i32::MAX).name_at(NOW), "UTC+18");
        assert_eq!(DILI.date_time(NOW), "2026-11-21 19:00 (UTC+9)");
        assert_eq!(Zone::UTC.date_time(NOW), "2026-11-21 10:00 (UTC)");
    }

    /// Central Europe in 2026 as the device's rules say it: UTC+1, UTC+2 from 29 Mar 01:00 UTC
    /// to 25 Oct 01:00 UTC.
    fn berlin(time: i64) -> Option<i32> {
        const SUMMER: i64 = 1_774_746_000; // 2026-03-29 01:00 UTC
        const WINTER: i64 = 1_792_890_000; // 2026-10-25 01:00 UTC
        Some(if (SUMMER..WINTER).contains(&time) {
            7200
        } else {
            3600
        })
    }

    fn berlin_zone() -> Zone {
        let offsets = Offsets::sampled(
            NOW as i64 - 400 * DAY as i64,
            NOW as i64,
            7 * DAY as i64,
            berlin,
        )
        .unwrap();
        Zone::following(Box::leak(Box::new(offsets)))
    }

    /// A `lookout run` or `lookout ui` started in winter showed summer times an hour off: the
    /// offset was the one at start, for every time. Each time now has its own offset.
    #[test]
    fn each_time_is_shown_and_read_in_the_offset_in_force_then() {
        let zone = berlin_zone();
        // NOW (21 Nov) is winter; 20 Jul 12:00 UTC is summer.
        let july = 1_784_548_800;
        assert_eq!(zone.date_time(NOW), "2026-11-21 11:00 (UTC+1)");
        assert_eq!(zone.date_time(july), "2026-07-20 14:00 (UTC+2)");
        // The change found to the second.
        assert_eq!(zone.offset_at(1_774_746_000 - 1), 3600);
        assert_eq!(zone.offset_at(1_774_746_000), 7200);
        assert_eq!(zone.offset_at(1_792_890_000), 3600);
        // 14:00 on 20 Jul typed in Berlin is 12:00 UTC, not 13:00.
        let day = days_from_civil(2026, 7, 20).unwrap();
        let at = Typed::At {
            day,
            minute: 14 * 60,
        };
        assert_eq!(at.incident_time(NOW, zone), Ok(july));
        // 02:30 on 29 Mar was skipped (clocks went 02:00 -> 03:00): read in winter time, it is
        // 01:30 UTC, shown as 03:30 summer time.
        let skipped = Typed::At {
            day: days_from_civil(2026, 3, 29).unwrap(),
            minute: 150,
        }
        .start(zone);
        assert_eq!(zone.date_time(skipped), "2026-03-29 03:30 (UTC+2)");
        // 02:30 on 25 Oct was shown twice: the first, in summer time (00:30 UTC).
        let twice = Typed::At {
            day: days_from_civil(2026, 10, 25).unwrap(),
            minute: 150,
        }
        .start(zone);
        assert_eq!(twice, 1_792_890_000 - 1800);
        assert_eq!(zone.date_time(twice), "2026-10-25 02:30 (UTC+2)");
        // Outside the span read, the nearest end's offset holds.
        assert_eq!(zone.offset_at(0), 3600);
        assert_eq!(zone.offset_at(u64::MAX), 3600);
    }

    /// Review 21: `day_of` added the offset to a time as `civil` does not, unsaturated, so a
    /// time near the end of `u64` (any value a peer signed; `civil` saturates since R19-4)
    /// overflowed. It is only given the clock's time today; it now saturates as `civil` does.
    #[test]
    fn the_day_of_any_time_is_told_without_overflow() {
        let east = Zone::east_of_utc(9 * 3600);
        assert_eq!(east.day_of(u64::MAX), i64::MAX.div_euclid(DAY as i64));
        let c = east.civil(NOW);
        assert_eq!(
            Some(east.day_of(NOW)),
            days_from_civil(c.year, c.month, c.day)
        );
    }

    /// Review 21: a half-hour zone whose clocks move by half an hour (Lord Howe Island: UTC+11
    /// in summer, UTC+10:30 in winter). Every minute around both changes reads back: a time
    /// shown once is read as that instant, a time shown twice as the first.
    #[test]
    fn a_half_hour_change_reads_every_shown_time_back() {
        let at = |y, m, d, h: i64, min: i64| {
            days_from_civil(y, m, d).unwrap() * DAY as i64 + h * 3600 + min * 60
        };
        let winter = at(2026, 4, 4, 15, 0); // 02:00 (UTC+11) becomes 01:30 (UTC+10:30)
        let summer = at(2026, 10, 3, 15, 30); // 02:00 (UTC+10:30) becomes 02:30 (UTC+11)
        let lord_howe = |t: i64| {
            Some(if (winter..summer).contains(&t) {
                37_800
            } else {
                39_600
            })
        };
        let offsets = Offsets::sampled(
            winter - 400 * DAY as i64,
            summer + 30 * DAY as i64,
            7 * DAY as i64,
            lord_howe,
        )
        .unwrap();
        let zone = Zone::following(Box::leak(Box::new(offsets)));
        assert_eq!(zone.name_at(winter as u64), "UTC+10:30");
        assert_eq!(zone.name_at(summer as u64), "UTC+11");
        for change in [winter, summer] {
            for t in (change - 3 * 3600..change + 3 * 3600).step_by(60) {
                let local = t + i64::from(zone.offset_at(t as u64));
                let read = zone.instant_of(local);
                assert_eq!(read + i64::from(zone.offset_at(read as u64)), local, "{t}");
                let twice = (winter..winter + 1800).contains(&t);
                assert_eq!(read, if twice { t - 1800 } else { t }, "{t}");
            }
        }
        // 02:15 on 4 Oct was skipped: read in winter time, shown as 02:45 summer time.
        let skipped = zone.instant_of(at(2026, 10, 4, 2, 15));
        assert_eq!(zone.date_time(skipped as u64), "2026-10-04 02:45 (UTC+11)");
    }

    #[test]
    fn offsets_that_cannot_be_read_give_no_rule_or_end_the_span() {
        assert_eq!(Offsets::sampled(0, 100, 10, |_| None), None);
        let cut = Offsets::sampled(0, 100, 10, |t| (t < 50).then_some(3600)).unwrap();
        assert_eq!(cut.at(1_000), 3600);
        let fixed = Offsets::sampled(0, 100, 10, |_| Some(-12_600)).unwrap();
        assert!(fixed.changes.is_empty());
        assert_eq!(
            Zone::following(Box::leak(Box::new(fixed))).name_at(5),
            "UTC-3:30"
        );
    }

    #[test]
    fn the_calendar_round_trips() {
        for day in [-1_000i64, 0, 59, 60, 365, 10_957, 20_000, 30_000] {
            let c = Civil::of(day * DAY as i64);
            assert_eq!(days_from_civil(c.year, c.month, c.day), Some(day));
        }
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(2026, 13, 1), None);
    }

    /// Trial 12's T12-16: a time of day typed in Dili was read as UTC, 9 h off.
    #[test]
    fn a_time_of_day_is_read_in_the_devices_zone() {
        let day = days_from_civil(2026, 11, 20).unwrap();
        let at = Typed::At {
            day,
            minute: 22 * 60,
        };
        // 22:00 in Dili is 13:00 UTC.
        let stored = at.incident_time(NOW, DILI).unwrap();
        assert_eq!(stored, day as u64 * DAY + 13 * HOUR);
        assert_eq!(DILI.date_time(stored), "2026-11-20 22:00 (UTC+9)");
        assert_eq!(at.incident_time(NOW, Zone::UTC).unwrap(), stored + 9 * HOUR);
        // 09:00 in Dili is midnight UTC: stored a second later, so not shown as a day.
        let nine = Typed::At {
            day,
            minute: 9 * 60,
        }
        .incident_time(NOW, DILI)
        .unwrap();
        assert!(!is_day(nine));
        assert_eq!(DILI.date_time(nine), "2026-11-20 09:00 (UTC+9)");
    }

    /// Trial 12's T12-17: `--when 1999-01-01` was accepted, and a day was shown as midnight UTC.
    #[test]
    fn a_day_is_kept_as_a_day_within_a_year_back() {
        let today_in_dili = days_from_civil(2026, 11, 21).unwrap();
        let stored = Typed::Day(today_in_dili).incident_time(NOW, DILI).unwrap();
        assert!(is_day(stored));
        assert_eq!(Civil::of(stored as i64).day, 21);
        // At 08:00 on 22 Nov in Dili it is still 21 Nov in UTC: "today" in Dili is allowed.
        let early = NOW + 13 * HOUR;
        let tomorrow = Typed::Day(today_in_dili + 1);
        assert!(tomorrow.incident_time(early, DILI).is_ok());
        assert_eq!(
            tomorrow.incident_time(early, Zone::UTC),
            Err(WhenError::InTheFuture)
        );
        let old = Typed::Day(days_from_civil(1999, 1, 1).unwrap());
        assert_eq!(old.incident_time(NOW, DILI), Err(WhenError::TooLongAgo));
        let year_ago = Typed::Day(today_in_dili - 365);
        assert!(year_ago.incident_time(NOW, DILI).is_ok());
        assert_eq!(
            Typed::Day(today_in_dili - 367).incident_time(NOW, DILI),
            Err(WhenError::TooLongAgo)
        );
        assert_eq!(
            Typed::Moment(NOW + CLOCK_SKEW + 1).incident_time(NOW, DILI),
            Err(WhenError::InTheFuture)
        );
        assert!(Typed::Moment(NOW + CLOCK_SKEW)
            .incident_time(NOW, DILI)
            .is_ok());
        assert_eq!(
            Typed::Moment(NOW - OLDEST - 1).incident_time(NOW, DILI),
            Err(WhenError::TooLongAgo)
        );
    }

    #[test]
    fn a_day_starts_at_local_midnight_for_a_window() {
        let day = days_from_civil(2026, 11, 21).unwrap();
        assert_eq!(Typed::Day(day).start(DILI), day as u64 * DAY - 9 * HOUR);
        assert_eq!(Typed::Moment(NOW).start(DILI), NOW);
    }

    /// R19-4 (docs/design/REVIEW19.md): readers accept any incident time a member signs, and
    /// showing one near the end of `u64` in a zone east of UTC added the offset past `i64::MAX`:
    /// a panic in a debug build (the page's handler, `lookout alerts`), a date thousands of
    /// millions of years before the epoch in a release build.
    #[test]
    fn a_peers_far_future_time_is_shown_in_any_zone_without_overflow() {
        for zone in [
            Zone::east_of_utc(18 * 3600),
            DILI,
            Zone::UTC,
            Zone::east_of_utc(-12 * 3600),
        ] {
            for time in [u64::MAX, i64::MAX as u64, i64::MAX as u64 - 1, 1 << 62] {
                let c = zone.civil(time);
                assert!(c.year > 2026, "{time} in {zone:?}: {c:?}");
                assert!(!zone.date_time(time).starts_with('-'), "{time} in {zone:?}");
            }
        }
    }
}
