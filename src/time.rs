//! Wall-clock formatting (HTTP dates, RFC 3339) without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A Go duration as `time.ParseDuration` reads it (`90s`, `1.5h`, `1h30m`, `300ms`, `-2m`,
/// `0`), in milliseconds (rounded towards zero); what Go refuses is `None`.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, s) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, f64); 7] =
        [("ns", 1e0), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 6e10), ("h", 3.6e12)];
    let mut total_ns = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[digits..];
        // "ms" before "m", "ns"/"us" before "s": UNITS is in that order.
        let (unit, ns) = UNITS.into_iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total_ns += value * ns;
    }
    // Go's durations are int64 nanoseconds: about 292 years.
    if total_ns >= 9.2e18 {
        return None;
    }
    let ms = (total_ns / 1e6) as i64;
    Some(if negative { -ms } else { ms })
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as `journalctl --since` takes it, in Unix seconds (UTC): `@1700000000`,
/// `2026-12-01`, `2026-12-01 10:00[:00]`, RFC 3339 (`2026-12-01T10:00:00Z`, `+02:00`),
/// `now`, `today`, `yesterday`, `-1h` / `+30m` / `2d ago` (s, m, h, d).
pub fn parse_journal_time(text: &str, now_secs: i64) -> Option<i64> {
    let text = text.trim();
    let day_start = now_secs - now_secs.rem_euclid(86_400);
    match text {
        "now" => return Some(now_secs),
        "today" => return Some(day_start),
        "yesterday" => return Some(day_start - 86_400),
        "tomorrow" => return Some(day_start + 86_400),
        _ => {}
    }
    if let Some(secs) = text.strip_prefix('@') {
        return secs.parse().ok();
    }
    let relative = |spec: &str| -> Option<i64> {
        let unit = match spec.as_bytes().last()? {
            b's' => 1,
            b'm' => 60,
            b'h' => 3_600,
            b'd' => 86_400,
            _ => return None,
        };
        spec[..spec.len() - 1].parse::<i64>().ok().filter(|n| *n >= 0)?.checked_mul(unit)
    };
    if let Some(spec) = text.strip_suffix(" ago") {
        return relative(spec.trim()).map(|d| now_secs - d);
    }
    if let Some(spec) = text.strip_prefix('-') {
        return relative(spec).map(|d| now_secs - d);
    }
    if let Some(spec) = text.strip_prefix('+') {
        return relative(spec).map(|d| now_secs + d);
    }
    let (date, rest) = text.split_at(text.find(['T', ' ']).unwrap_or(text.len()));
    let mut d = date.split('-');
    let (year, month, day) =
        (d.next()?.parse::<i64>().ok()?, d.next()?.parse::<u32>().ok()?, d.next()?.parse::<u32>().ok()?);
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) || date.len() != 10 {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let rest = rest.get(1..).unwrap_or("");
    if !rest.is_empty() {
        // A zone: Z, or ±hh:mm after the time.
        let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
            (c, 0)
        } else if let Some(at) = rest.rfind(['+', '-']).filter(|at| *at >= 5) {
            let (h, m) = rest[at + 1..].split_once(':')?;
            let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
            (&rest[..at], if rest.as_bytes()[at] == b'+' { minutes * 60 } else { -minutes * 60 })
        } else {
            (rest, 0)
        };
        let mut c = clock.split(':');
        let h: i64 = c.next()?.parse().ok()?;
        let m: i64 = c.next()?.parse().ok()?;
        let s: f64 = c.next().map_or(Some(0.0), |s| s.parse().ok())?;
        if c.next().is_some() || h > 23 || m > 59 || !(0.0..61.0).contains(&s) {
            return None;
        }
        secs += h * 3_600 + m * 60 + s as i64 - offset;
    }
    Some(secs)
}

/// RFC 3339 of a Unix time in milliseconds (times before 1970 read as 1970).
pub fn rfc3339_ms(ms: i64) -> String {
    rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

pub fn unix_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(_) => 0,
    }
}

pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
}

fn parts(t: SystemTime) -> Parts {
    let secs = unix_seconds(t);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    Parts {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// `Sun, 22 Nov 2026 21:24:23 GMT` (RFC 9110 IMF-fixdate).
/// Written straight into a response head, without a `String` of its own.
pub struct HttpDate(pub SystemTime);

impl std::fmt::Display for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let p = parts(self.0);
        write!(
            f,
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            DAYS[p.weekday],
            p.day,
            MONTHS[p.month as usize - 1],
            p.year,
            p.hour,
            p.minute,
            p.second
        )
    }
}

/// `2026-11-22T21:24:23Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let p = parts(t);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", p.year, p.month, p.day, p.hour, p.minute, p.second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(HttpDate(at(0)).to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        // 2000-02-29 12:34:56 UTC: a leap day in a century leap year.
        assert_eq!(rfc3339(at(951_827_696)), "2000-02-29T12:34:56Z");
        assert_eq!(HttpDate(at(951_827_696)).to_string(), "Tue, 29 Feb 2000 12:34:56 GMT");
        assert_eq!(HttpDate(at(1_795_382_663)).to_string(), "Sun, 22 Nov 2026 21:24:23 GMT");
    }
}

#[cfg(test)]
mod journal_time_tests {
    use super::parse_journal_time as p;

    #[test]
    fn go_durations_as_time_parse_duration_reads_them() {
        use super::parse_go_duration as d;
        for bad in ["", "6", "h", "1.2.3h", "1d", "1hh", ".h", "6 h", "-", "+", "3000000h"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        for (good, ms) in [
            ("0", 0),
            ("6h", 21_600_000),
            ("1.5h", 5_400_000),
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("300ms", 300),
            ("2h45m10.5s", 9_910_500),
            ("+1h", 3_600_000),
            (".5h", 1_800_000),
            ("-2m", -120_000),
            ("1500us", 1),
            ("1µs", 0),
        ] {
            assert_eq!(d(good), Some(ms), "{good:?}");
        }
    }

    #[test]
    fn journalctl_times_parse_and_garbage_does_not() {
        let now = 1_764_633_600 + 3_723; // 2025-12-02 01:02:03 UTC
        for bad in
            ["", "soon", "2025-13-01", "2025-12-32", "2025-12-01 25:00", "2025-12-01 10", "-5x", "@x", "2025-1-1"]
        {
            assert_eq!(p(bad, now), None, "{bad:?}");
        }
        assert_eq!(p("@1700000000", now), Some(1_700_000_000));
        assert_eq!(p("2025-12-02", now), Some(1_764_633_600));
        assert_eq!(p("2025-12-02 01:02", now), Some(1_764_633_600 + 3_720));
        assert_eq!(p("2025-12-02 01:02:03", now), Some(now));
        assert_eq!(p("2025-12-02T01:02:03Z", now), Some(now));
        assert_eq!(p("2025-12-02T03:02:03+02:00", now), Some(now));
        assert_eq!(p("1970-01-01", now), Some(0));
        assert_eq!(p("today", now), Some(1_764_633_600));
        assert_eq!(p("yesterday", now), Some(1_764_633_600 - 86_400));
        assert_eq!(p("-1h", now), Some(now - 3_600));
        assert_eq!(p("2d ago", now), Some(now - 172_800));
        assert_eq!(p("now", now), Some(now));
    }
}
