//! Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC, with
//! the usual `*`, lists, ranges, steps and the `@daily`-style shorthands.

/// One field as a bit set of the values it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    bits: u64,
    star: bool,
}

impl Field {
    fn has(self, v: u32) -> bool {
        self.bits & (1u64 << v) != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

fn field(text: &str, name: &str, lo: u32, hi: u32) -> Result<Field, String> {
    let mut bits = 0u64;
    let bad = |why: &str| format!("cron {name} field {text:?}: {why}");
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| bad("bad step"))?),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else {
            let num = |s: &str| s.parse::<u32>().ok().filter(|v| (lo..=hi).contains(v));
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) =
                        (num(a).ok_or_else(|| bad("out of range"))?, num(b).ok_or_else(|| bad("out of range"))?);
                    if a > b {
                        return Err(bad("range runs backwards"));
                    }
                    (a, b)
                }
                None => {
                    let v = num(range).ok_or_else(|| bad(&format!("not a number in {lo}-{hi}")))?;
                    // `5/15` means from 5 to the end in steps of 15.
                    (v, if part.contains('/') { hi } else { v })
                }
            }
        };
        let mut v = from;
        while v <= to {
            bits |= 1u64 << v;
            v += step;
        }
    }
    Ok(Field { bits, star: text == "*" || text.starts_with("*/") })
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let text = text.trim();
        let expanded = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            t if t.starts_with('@') => return Err(format!("unknown cron shorthand {t:?}")),
            t => t,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts[..] else {
            return Err(format!("a cron expression has 5 fields (minute hour day month weekday), not {}", parts.len()));
        };
        let mut dow = field(dow, "weekday", 0, 7)?;
        // 7 is Sunday too.
        if dow.has(7) {
            dow.bits |= 1;
        }
        Ok(Cron {
            minute: field(m, "minute", 0, 59)?,
            hour: field(h, "hour", 0, 23)?,
            dom: field(dom, "day", 1, 31)?,
            month: field(mon, "month", 1, 12)?,
            dow,
        })
    }

    /// Vixie cron: when both day fields are restricted, either may match.
    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        match (self.dom.star, self.dow.star) {
            (true, true) => true,
            (true, false) => self.dow.has(weekday),
            (false, true) => self.dom.has(day),
            (false, false) => self.dom.has(day) || self.dow.has(weekday),
        }
    }

    /// The first minute strictly after `after` (Unix seconds) that the expression names;
    /// `None` when it names none within five years (e.g. February 31st).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut t = (after.div_euclid(60) + 1) * 60;
        let limit = after + 5 * 366 * 86_400;
        while t <= limit {
            let days = t.div_euclid(86_400);
            let (_, month, day) = crate::time::civil(days);
            // 1970-01-01 was a Thursday (4).
            let weekday = (days + 4).rem_euclid(7) as u32;
            if !self.month.has(month) || !self.day_matches(day, weekday) {
                t = (days + 1) * 86_400;
                continue;
            }
            let secs = t.rem_euclid(86_400);
            let (hour, minute) = ((secs / 3600) as u32, ((secs % 3600) / 60) as u32);
            if !self.hour.has(hour) {
                t = days * 86_400 + (i64::from(hour) + 1) * 3600;
                continue;
            }
            if !self.minute.has(minute) {
                t += 60;
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 00:20:00 UTC, a Monday.
    const MON: i64 = 1_795_393_200;

    fn next(expr: &str, after: i64) -> Option<i64> {
        Cron::parse(expr).unwrap().next_after(after)
    }

    #[test]
    fn finds_the_next_minute_named() {
        assert_eq!(next("* * * * *", MON), Some(MON + 60));
        assert_eq!(next("* * * * *", MON + 59), Some(MON + 60));
        assert_eq!(next("*/15 * * * *", MON), Some(MON + 10 * 60));
        assert_eq!(next("0 3 * * *", MON), Some(MON - 20 * 60 + 3 * 3600));
        assert_eq!(next("@daily", MON), Some(MON - 20 * 60 + 86_400));
        // Next Sunday (day 6 after Monday) at 00:00, written as 0 and as 7.
        assert_eq!(next("0 0 * * 0", MON), Some(MON - 20 * 60 + 6 * 86_400));
        assert_eq!(next("0 0 * * 7", MON), Some(MON - 20 * 60 + 6 * 86_400));
        assert_eq!(next("30 1 1 1 *", MON), Some(1_798_767_000), "2027-01-01 01:30");
        assert_eq!(next("0 0 31 2 *", MON), None);
        // Day 1 of the month OR a Wednesday, whichever comes first.
        assert_eq!(next("0 0 1 * 3", MON), Some(MON - 20 * 60 + 2 * 86_400));
    }

    #[test]
    fn refuses_what_is_not_cron() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "5-1 * * * *",
            "*/0 * * * *",
            "@often",
            "a * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Cron::parse("0,30 8-18/2 1-15 1,6 1-5").is_ok());
    }
}
