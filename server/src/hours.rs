//! A team's business hours: weekly opening windows in an IANA time zone, written the way a
//! support lead says them — `"mon-fri 09:00-17:00; sat 10:00-14:00"` in `"Europe/Berlin"` —
//! with daylight saving time handled by the IANA tz database (jiff, bundled).

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// One opening window: a weekday and minutes after local midnight, `start < end ≤ 24 h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    day: Weekday,
    start: u16,
    end: u16,
}

/// Weekly business hours in a time zone.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    spec: String,
    zone_name: String,
    zone: TimeZone,
    windows: Vec<Window>,
}

impl PartialEq for BusinessHours {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.zone_name == other.zone_name
    }
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn day(raw: &str) -> Result<Weekday, String> {
    DAYS.iter()
        .find(|(name, _)| *name == raw)
        .map(|(_, day)| *day)
        .ok_or_else(|| format!("{raw:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
}

fn minutes(raw: &str) -> Result<u16, String> {
    let (h, m) = raw
        .split_once(':')
        .ok_or_else(|| format!("{raw:?} is not a time like 09:00"))?;
    let (h, m): (u16, u16) = (
        h.parse()
            .map_err(|_| format!("{raw:?} is not a time like 09:00"))?,
        m.parse()
            .map_err(|_| format!("{raw:?} is not a time like 09:00"))?,
    );
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(format!("{raw:?} is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}

impl BusinessHours {
    /// Parses `spec` — `;`-separated `DAYS HH:MM-HH:MM`, where `DAYS` is a day (`mon`), a
    /// range (`mon-fri`, wrapping allowed: `sat-sun`) or a comma list (`mon,wed`) — in the IANA
    /// zone `zone` (`Europe/Berlin`, `UTC`).
    ///
    /// Errors: a message naming the part that does not parse.
    pub fn parse(spec: &str, zone: &str) -> Result<Self, String> {
        let tz = TimeZone::get(zone.trim())
            .map_err(|err| format!("{zone:?} is not an IANA time zone ({err})"))?;
        let mut windows = Vec::new();
        let spec_lower = spec.to_ascii_lowercase();
        for part in spec_lower
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            // "mon - fri, sun 09:00 - 17:00": the days end where the first digit starts.
            let split = part
                .find(|c: char| c.is_ascii_digit())
                .ok_or_else(|| format!("{part:?}: expected \"mon-fri 09:00-17:00\""))?;
            let (days, range) = part.split_at(split);
            let days: String = days.chars().filter(|c| !c.is_whitespace()).collect();
            let days = days.as_str();
            if days.is_empty() {
                return Err(format!(
                    "{part:?}: expected days first, like \"mon-fri 09:00-17:00\""
                ));
            }
            let (start, end) = range
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("{part:?}: expected a time range like 09:00-17:00"))?;
            let (start, end) = (minutes(start.trim())?, minutes(end.trim())?);
            if start >= end {
                return Err(format!(
                    "{part:?}: the window must end after it starts (split a night shift at \
                     midnight: \"mon 22:00-24:00; tue 00:00-06:00\")"
                ));
            }
            let mut selected = Vec::new();
            for item in days.split(',').map(str::trim) {
                match item.split_once('-') {
                    Some((from, to)) => {
                        let (from, to) = (day(from)?, day(to)?);
                        let mut current = from;
                        loop {
                            selected.push(current);
                            if current == to {
                                break;
                            }
                            current = current.next();
                        }
                    }
                    None => selected.push(day(item)?),
                }
            }
            windows.extend(selected.into_iter().map(|day| Window { day, start, end }));
        }
        if windows.is_empty() {
            return Err("no opening window (e.g. \"mon-fri 09:00-17:00\")".into());
        }
        Ok(Self {
            spec: spec.trim().to_string(),
            zone_name: zone.trim().to_string(),
            zone: tz,
            windows,
        })
    }

    fn local(&self, at: OffsetDateTime) -> jiff::Zoned {
        // Every OffsetDateTime from the clock is within jiff's range.
        jiff::Timestamp::from_second(at.unix_timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone())
    }

    /// Whether the team is open at `at`.
    pub fn is_open(&self, at: OffsetDateTime) -> bool {
        let local = self.local(at);
        let now = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        self.windows
            .iter()
            .any(|w| w.day == local.weekday() && w.start <= now && now < w.end)
    }

    /// When the team next opens after `at` (within a week), as local time in its zone.
    pub fn next_opening(&self, at: OffsetDateTime) -> Option<jiff::Zoned> {
        let local = self.local(at);
        let today: Date = local.date();
        let mut best: Option<jiff::Zoned> = None;
        for offset in 0..=7i64 {
            let date = today.checked_add(jiff::Span::new().days(offset)).ok()?;
            for window in self.windows.iter().filter(|w| w.day == date.weekday()) {
                let Ok(start) = date
                    .at((window.start / 60) as i8, (window.start % 60) as i8, 0, 0)
                    .to_zoned(self.zone.clone())
                else {
                    continue;
                };
                if start > local && best.as_ref().is_none_or(|b| start < *b) {
                    best = Some(start);
                }
            }
            if best.is_some() {
                break;
            }
        }
        best
    }

    /// "Monday at 09:00 (Europe/Berlin)" for the next opening after `at`.
    pub fn describe_next_opening(&self, at: OffsetDateTime) -> Option<String> {
        let next = self.next_opening(at)?;
        Some(format!(
            "{} at {:02}:{:02} ({})",
            next.strftime("%A"),
            next.hour(),
            next.minute(),
            self.zone_name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn open_and_next_opening_follow_the_zone_and_its_daylight_saving_time() {
        let hours = BusinessHours::parse("mon-fri 09:00-17:00; sat 10:00-14:00", "Europe/Berlin")
            .expect("parses");
        // Wednesday 2 December 2026, 08:30 UTC = 09:30 in Berlin (CET, UTC+1).
        assert!(hours.is_open(datetime!(2026-12-02 08:30 UTC)));
        // 16:30 UTC = 17:30 in Berlin: closed; next opening Thursday 09:00.
        assert!(!hours.is_open(datetime!(2026-12-02 16:30 UTC)));
        assert_eq!(
            hours
                .describe_next_opening(datetime!(2026-12-02 16:30 UTC))
                .as_deref(),
            Some("Thursday at 09:00 (Europe/Berlin)")
        );
        // Saturday 14:30 Berlin: closed until Monday.
        assert_eq!(
            hours
                .describe_next_opening(datetime!(2026-12-05 13:30 UTC))
                .as_deref(),
            Some("Monday at 09:00 (Europe/Berlin)")
        );
        // Summer time (CEST, UTC+2): 07:30 UTC on Wednesday 1 July 2026 is 09:30 in Berlin.
        assert!(hours.is_open(datetime!(2026-07-01 07:30 UTC)));
        assert!(!hours.is_open(datetime!(2026-07-01 06:30 UTC)));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, zone, needle) in [
            ("mon-fri 09:00-17:00", "Mars/Olympus", "time zone"),
            ("weekdays 09:00-17:00", "UTC", "not a day"),
            ("mon 17:00-09:00", "UTC", "end after"),
            ("mon 9-17", "UTC", "time like"),
            ("", "UTC", "no opening window"),
        ] {
            let err = BusinessHours::parse(spec, zone).expect_err(spec);
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
        let lenient = BusinessHours::parse("Mon - Fri, Sun 09:00 - 17:00", "UTC").expect("parses");
        assert!(lenient.is_open(datetime!(2026-12-06 10:00 UTC)), "Sunday");
        let weekend = BusinessHours::parse("sat-sun 00:00-24:00", "UTC").expect("wraps");
        assert!(weekend.is_open(datetime!(2026-12-06 23:59 UTC)));
        assert!(!weekend.is_open(datetime!(2026-12-07 00:00 UTC)));
    }
}
