//! Timestamps: unix milliseconds, UTC. Conversion to and from RFC 3339 text is done here,
//! without a clock: the current time is always passed in by the caller.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    pub fn millis(self) -> u64 {
        self.0
    }

    pub fn saturating_add_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Midnight UTC of a `YYYY-MM-DD` date.
    pub fn from_date(s: &str) -> Option<Timestamp> {
        let (y, m, d) = parse_date(s)?;
        let days = days_from_civil(y, m, d);
        u64::try_from(days).ok().map(|d| Timestamp(d * 86_400_000))
    }

    /// `YYYY-MM-DD` part of the timestamp.
    pub fn date(self) -> String {
        let days = (self.0 / 86_400_000) as i64;
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Checks a `YYYY-MM-DD` calendar date and returns its parts.
pub fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y as i64, m) || y < 1970 {
        return None;
    }
    Some((y as i64, m, d))
}

/// Why `s` is no date [`parse_date`] takes, in words for an error message: a date of the
/// right form before 1970 is named as such (dates start at 1970-01-01), not as misformed.
pub fn not_a_date(s: &str) -> String {
    let early = s.len() == 10
        && s.get(..4)
            .and_then(|y| y.parse::<i64>().ok())
            .is_some_and(|y| y < 1970)
        && parse_date(&format!("2000{}", &s[4..])).is_some();
    if early {
        format!("{s:?} is before 1970-01-01, the earliest date a record may give")
    } else {
        format!("{s:?} is not a YYYY-MM-DD date")
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-calendar algorithms (public domain description).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 with millisecond precision, e.g. `2026-11-28T04:23:52.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let sod = secs % 86_400;
        write!(
            f,
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.date(),
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            ms
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = String;
    /// Accepts `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (optionally with `.mmm`), or plain unix ms.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("not a date or time: {s:?} (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
        if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
            return s.parse().map(Timestamp).map_err(|_| bad());
        }
        if s.len() == 10 {
            return Timestamp::from_date(s).ok_or_else(bad);
        }
        let (date, rest) = s.split_at_checked(10).ok_or_else(bad)?;
        let day = Timestamp::from_date(date).ok_or_else(bad)?;
        let rest = rest
            .strip_prefix('T')
            .ok_or_else(bad)?
            .strip_suffix('Z')
            .ok_or_else(bad)?;
        let (hms, frac) = match rest.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.len() != 2 || !p.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(bad());
        }
        let n = |i: usize| parts[i].parse::<u64>().unwrap_or(99);
        let (h, m, sec) = (n(0), n(1), n(2));
        if h > 23 || m > 59 || sec > 59 {
            return Err(bad());
        }
        let ms = match frac {
            None => 0,
            Some(f) if (1..=3).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
                f.parse::<u64>().unwrap_or(0) * 10u64.pow(3 - f.len() as u32)
            }
            Some(_) => return Err(bad()),
        };
        Ok(Timestamp(day.0 + ((h * 60 + m) * 60 + sec) * 1000 + ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A date of the right form before 1970 is named as too early, not as misformed.
    #[test]
    fn a_date_before_1970_is_named_as_such() {
        assert_eq!(
            not_a_date("1965-05-01"),
            "\"1965-05-01\" is before 1970-01-01, the earliest date a record may give"
        );
        assert_eq!(
            not_a_date("1965-02-30"),
            "\"1965-02-30\" is not a YYYY-MM-DD date"
        );
        assert_eq!(
            not_a_date("20250101"),
            "\"20250101\" is not a YYYY-MM-DD date"
        );
        assert_eq!(
            not_a_date("0000-01-01"),
            "\"0000-01-01\" is before 1970-01-01, the earliest date a record may give"
        );
    }

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp::from_date("1970-01-01"), Some(Timestamp(0)));
        assert_eq!(
            Timestamp::from_date("2024-02-29").map(|t| t.0),
            Some(1_709_164_800_000)
        );
        assert_eq!(Timestamp::from_date("2023-02-29"), None);
        assert_eq!(
            Timestamp(1_709_164_800_123).to_string(),
            "2024-02-29T00:00:00.123Z"
        );
        assert_eq!(
            "2024-02-29T01:02:03.5Z".parse::<Timestamp>().map(|t| t.0),
            Ok(1_709_164_800_000 + 3_723_500)
        );
        assert!("2024-13-01".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn roundtrip_many_days() {
        for d in (0..40_000u64).step_by(37) {
            let t = Timestamp(d * 86_400_000 + 1234);
            assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
    }
}
