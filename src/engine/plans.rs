//! Backup plans: what to back up, where to, when, and how many backups to keep. Stored as
//! one JSON file in the data dir, replaced atomically on every change.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use miniserde::json::{self, Number, Value};

use super::cron::Cron;
use crate::json::{Object, str_array};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Disabled,
    Cron(String),
    EveryHours(u32),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Retention {
    pub keep_last_n: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    /// Steward's own state plus the board's backup paths (what a Jidoteki backup holds).
    pub state: bool,
    pub applications: Vec<String>,
    /// An absolute path below `--root` (a local disk or a mounted share).
    pub destination: String,
    /// `local` or `nfs`: descriptive, for the integration shown with backup records.
    pub vendor: String,
    /// Credentials of the destination (e.g. for a hook that mounts the share). Never sent
    /// back in any answer.
    pub auth: Vec<(String, String)>,
    pub schedule: Schedule,
    pub retention: Retention,
    pub on_success: Hook,
    pub on_failure: Hook,
    pub created_ms: i64,
}

/// What runs after a backup.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Hook {
    #[default]
    None,
    /// One of the board's `backup.hooks`, by name: the board vouches for it, so any plan
    /// author may use it.
    Named(String),
    /// An argument list of the plan's own: it runs any program as steward, so only `admin`
    /// may set one.
    Command(Vec<String>),
}

impl Hook {
    fn parse(v: Option<&Value>, what: &str, board: &crate::board::BackupProfile) -> Result<Hook, String> {
        match v {
            None | Some(Value::Null) => Ok(Hook::None),
            Some(Value::String(name)) => match board.hook(name) {
                Some(_) => Ok(Hook::Named(name.clone())),
                None => Err(format!(
                    "{what}: this board has no hook named {name:?} (it has: {})",
                    board.hook_names().join(", ")
                )),
            },
            v => {
                let argv = strings(v, what)?;
                match argv.first() {
                    None => Ok(Hook::None),
                    Some(c) if c.starts_with('/') => Ok(Hook::Command(argv)),
                    Some(_) => Err("a hook is an argument list whose first item is an absolute path".into()),
                }
            }
        }
    }

    fn to_json(&self) -> String {
        match self {
            Hook::None => "[]".into(),
            Hook::Named(name) => {
                let mut out = String::new();
                crate::json::push_str(&mut out, name);
                out
            }
            Hook::Command(argv) => str_array(argv.iter().map(String::as_str)),
        }
    }
}

const AUTH_KEYS: [&str; 8] =
    ["region", "namespace", "api_key", "key_id", "secret", "subscription_id", "client_id", "base64_config"];

fn want_object<'a>(v: &'a Value, what: &str) -> Result<&'a json::Object, String> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(format!("{what} must be a JSON object")),
    }
}

fn only_keys(m: &json::Object, what: &str, allowed: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unknown field {k:?} (known: {})", allowed.join(", "))),
        None => Ok(()),
    }
}

fn count(m: &json::Object, key: &str, max: u64) -> Result<Option<u32>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(Number::U64(n))) if *n <= max => Ok(Some(*n as u32)),
        Some(_) => Err(format!("{key} must be a whole number from 0 to {max}")),
    }
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    crate::json::string_list(v, what)
}

/// Whether `dest` lies in one of the board's destination roots.
fn below_a_root(dest: &Path, roots: &[String]) -> bool {
    roots.iter().any(|r| dest.starts_with(r))
}

/// A destination is an absolute, plain path below `--root`, inside one of the board's
/// destination roots, and outside what is backed up.
fn check_destination(dest: &str, backed_up: &[String], roots: &[String]) -> Result<(), String> {
    let p = Path::new(dest);
    if !p.is_absolute() || !p.components().skip(1).all(|c| matches!(c, Component::Normal(_))) || dest.len() > 1024 {
        return Err(format!("destination.path {dest:?} must be an absolute path without '..'"));
    }
    if p.components().count() < 2 {
        return Err("destination.path cannot be the root directory".into());
    }
    for b in backed_up {
        let b = Path::new(b);
        if p.starts_with(b) || b.starts_with(p) {
            return Err(format!("destination.path {dest:?} overlaps {}, which the plan backs up", b.display()));
        }
    }
    if roots.is_empty() {
        return Err("this board declares no backup destinations (backup.destinations in its profile)".into());
    }
    if !below_a_root(p, roots) {
        return Err(format!(
            "destination.path {dest:?} must be below one of the board's destinations: {}",
            roots.join(", ")
        ));
    }
    Ok(())
}

impl Plan {
    /// A plan from its JSON form, checked completely; `apps` are the board's applications
    /// and `backup` says what a state backup holds besides steward's files, where backups
    /// may go and which hooks exist.
    pub fn parse(
        text: &str,
        apps: &[crate::board::Application],
        backup: &crate::board::BackupProfile,
        now_ms: i64,
    ) -> Result<Plan, String> {
        let state_paths = &backup.paths;
        let v: Value = json::from_str(text).map_err(|_| "the body is not valid JSON".to_owned())?;
        let m = want_object(&v, "the plan")?;
        only_keys(m, "plan", &["id", "sources", "destination", "schedule", "retention", "hooks"])?;
        let id = match m.get("id") {
            Some(Value::String(s)) if crate::board::valid_id(s) => s.clone(),
            _ => return Err("id must be 1-64 letters, digits, '-' or '_'".into()),
        };
        let sources = want_object(m.get("sources").ok_or("sources is required")?, "sources")?;
        only_keys(sources, "sources", &["state", "applications"])?;
        let state = match sources.get("state") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("sources.state must be true or false".into()),
        };
        let mut applications = strings(sources.get("applications"), "sources.applications")?;
        applications.sort();
        applications.dedup();
        for a in &applications {
            if !apps.iter().any(|x| &x.name == a) {
                return Err(format!("sources.applications: this board has no application {a:?}"));
            }
        }
        if !state && applications.is_empty() {
            return Err("sources: back up the state, some applications, or both".into());
        }
        let dest = want_object(m.get("destination").ok_or("destination is required")?, "destination")?;
        only_keys(dest, "destination", &["path", "vendor", "auth"])?;
        let destination = match dest.get("path") {
            Some(Value::String(s)) => s.trim_end_matches('/').to_owned(),
            _ => return Err("destination.path is required".into()),
        };
        let mut backed_up: Vec<String> = if state { state_paths.to_vec() } else { Vec::new() };
        for a in apps.iter().filter(|a| applications.contains(&a.name)) {
            backed_up.extend(a.paths.iter().cloned());
        }
        check_destination(&destination, &backed_up, backup.destinations())?;
        let vendor = match dest.get("vendor") {
            None | Some(Value::Null) => "local".to_owned(),
            Some(Value::String(s)) if s == "local" || s == "nfs" => s.clone(),
            Some(_) => return Err("destination.vendor must be \"local\" or \"nfs\"".into()),
        };
        let mut auth = Vec::new();
        if let Some(a) = dest.get("auth").filter(|a| !matches!(a, Value::Null)) {
            let a = want_object(a, "destination.auth")?;
            only_keys(a, "destination.auth", &AUTH_KEYS)?;
            for (k, v) in a {
                match v {
                    Value::String(s) => auth.push((k.clone(), s.clone())),
                    _ => return Err(format!("destination.auth.{k} must be a string")),
                }
            }
        }
        let schedule = match m.get("schedule") {
            None | Some(Value::Null) => Schedule::Disabled,
            Some(s) => {
                let s = want_object(s, "schedule")?;
                only_keys(s, "schedule", &["cron", "every_hours", "disabled"])?;
                match (s.get("cron"), s.get("every_hours"), s.get("disabled")) {
                    (Some(Value::String(c)), None, None) => {
                        Cron::parse(c)?;
                        Schedule::Cron(c.trim().to_owned())
                    }
                    (None, Some(_), None) => match count(s, "every_hours", 24 * 366)? {
                        Some(h) if h > 0 => Schedule::EveryHours(h),
                        _ => return Err("schedule.every_hours must be from 1 to 8784".into()),
                    },
                    (None, None, Some(Value::Bool(true))) => Schedule::Disabled,
                    _ => {
                        return Err(
                            "schedule takes one of: cron (string), every_hours (number), disabled (true)".into()
                        );
                    }
                }
            }
        };
        let retention = match m.get("retention") {
            None | Some(Value::Null) => Retention { keep_last_n: 7, ..Default::default() },
            Some(r) => {
                let r = want_object(r, "retention")?;
                only_keys(r, "retention", &["keep_last_n", "hourly", "daily", "weekly", "monthly"])?;
                let c = |k| count(r, k, 100_000).map(Option::unwrap_or_default);
                let ret = Retention {
                    keep_last_n: c("keep_last_n")?,
                    hourly: c("hourly")?,
                    daily: c("daily")?,
                    weekly: c("weekly")?,
                    monthly: c("monthly")?,
                };
                if ret == Retention::default() {
                    return Err("retention must keep at least one backup".into());
                }
                ret
            }
        };
        let (mut on_success, mut on_failure) = (Hook::None, Hook::None);
        if let Some(h) = m.get("hooks").filter(|h| !matches!(h, Value::Null)) {
            let h = want_object(h, "hooks")?;
            only_keys(h, "hooks", &["on_success", "on_failure"])?;
            on_success = Hook::parse(h.get("on_success"), "hooks.on_success", backup)?;
            on_failure = Hook::parse(h.get("on_failure"), "hooks.on_failure", backup)?;
        }
        Ok(Plan {
            id,
            state,
            applications,
            destination,
            vendor,
            auth,
            schedule,
            retention,
            on_success,
            on_failure,
            created_ms: now_ms,
        })
    }

    /// The plan's JSON; credentials only in the stored form (`with_secrets`), never on the wire.
    pub fn to_json(&self, with_secrets: bool) -> String {
        let mut auth = Object::new();
        for (k, v) in &self.auth {
            auth = auth.str(k, if with_secrets { v } else { "[redacted]" });
        }
        let schedule = match &self.schedule {
            Schedule::Disabled => Object::new().bool("disabled", true),
            Schedule::Cron(c) => Object::new().str("cron", c),
            Schedule::EveryHours(h) => Object::new().num("every_hours", h),
        };
        let r = &self.retention;
        let mut retention = Object::new();
        for (k, v) in [
            ("keep_last_n", r.keep_last_n),
            ("hourly", r.hourly),
            ("daily", r.daily),
            ("weekly", r.weekly),
            ("monthly", r.monthly),
        ] {
            if v > 0 {
                retention = retention.num(k, v);
            }
        }
        let mut o = Object::new()
            .str("id", &self.id)
            .raw(
                "sources",
                &Object::new()
                    .bool("state", self.state)
                    .raw("applications", &str_array(self.applications.iter().map(String::as_str)))
                    .finish(),
            )
            .raw(
                "destination",
                &Object::new()
                    .str("path", &self.destination)
                    .str("vendor", &self.vendor)
                    .raw("auth", &auth.finish())
                    .finish(),
            )
            .raw("schedule", &schedule.finish())
            .raw("retention", &retention.finish())
            .raw(
                "hooks",
                &Object::new()
                    .raw("on_success", &self.on_success.to_json())
                    .raw("on_failure", &self.on_failure.to_json())
                    .finish(),
            );
        if with_secrets {
            o = o.num("created_ms", self.created_ms);
        }
        o.finish()
    }

    /// When the plan should next run, given when it last ran (or was created): Unix ms.
    pub fn next_run_ms(&self, last_ms: i64) -> Option<i64> {
        match &self.schedule {
            Schedule::Disabled => None,
            Schedule::EveryHours(h) => Some(last_ms + i64::from(*h) * 3_600_000),
            Schedule::Cron(c) => Cron::parse(c).ok()?.next_after(last_ms.div_euclid(1000)).map(|s| s * 1000),
        }
    }
}

/// Which backups (id, start ms; any order) the policy keeps: the newest `keep_last_n`,
/// plus the newest backup of each of the most recent `hourly` hours, `daily` days, `weekly`
/// ISO-style weeks (from Monday) and `monthly` months that have a backup.
pub fn retained(policy: &Retention, backups: &[(u64, i64)]) -> BTreeSet<u64> {
    let mut newest_first = backups.to_vec();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut keep: BTreeSet<u64> = newest_first.iter().take(policy.keep_last_n as usize).map(|b| b.0).collect();
    let day = |ms: i64| ms.div_euclid(86_400_000);
    let buckets: [(u32, &dyn Fn(i64) -> i64); 4] = [
        (policy.hourly, &|ms: i64| ms.div_euclid(3_600_000)),
        (policy.daily, &day),
        // Day 0 was a Thursday; shifting by 3 makes weeks start on Monday.
        (policy.weekly, &|ms: i64| (day(ms) + 3).div_euclid(7)),
        (policy.monthly, &|ms: i64| {
            let (y, m, _) = crate::time::civil(day(ms));
            y * 12 + i64::from(m)
        }),
    ];
    for (n, bucket) in buckets {
        let mut seen = Vec::new();
        for (id, ms) in &newest_first {
            if seen.len() >= n as usize {
                break;
            }
            let b = bucket(*ms);
            if !seen.contains(&b) {
                seen.push(b);
                keep.insert(*id);
            }
        }
    }
    keep
}

/// The plans file: a JSON array of plans with their secrets, private to steward.
pub fn load(path: &Path) -> Result<Vec<Plan>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let Ok(Value::Array(items)) = json::from_str::<Value>(&text) else {
        return Err(format!("{}: not a JSON array", path.display()));
    };
    let mut plans = Vec::new();
    for item in items {
        let Value::Object(m) = &item else { continue };
        let created = match m.get("created_ms") {
            Some(Value::Number(Number::U64(n))) => *n as i64,
            Some(Value::Number(Number::I64(n))) => *n,
            _ => 0,
        };
        match parse_stored(m, created) {
            Ok(p) => plans.push(p),
            Err(e) => crate::log::warn(format_args!("plans: skipping a stored plan: {e}")),
        }
    }
    Ok(plans)
}

fn strip_created(m: &json::Object) -> Value {
    let mut m = m.clone();
    m.remove("created_ms");
    Value::Object(m)
}

/// Stored plans are re-checked for shape only: one naming an application, a destination
/// root or a hook the board no longer has is still loaded as it was (its runs check those
/// against the board, and say what is missing).
fn parse_stored(m: &json::Object, created: i64) -> Result<Plan, String> {
    let apps: Vec<String> = match m.get("sources") {
        Some(Value::Object(s)) => strings(s.get("applications"), "sources.applications")?,
        _ => Vec::new(),
    };
    let fake: Vec<crate::board::Application> = apps
        .iter()
        .map(|name| crate::board::Application {
            name: name.clone(),
            paths: Vec::new(),
            cache: Vec::new(),
            restart: None,
            version_file: None,
        })
        .collect();
    let named: Vec<crate::board::NamedHook> = match m.get("hooks") {
        Some(Value::Object(h)) => h
            .values()
            .filter_map(|v| match v {
                Value::String(name) => Some(crate::board::NamedHook { name: name.clone(), command: vec!["/".into()] }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let anything =
        crate::board::BackupProfile { paths: Vec::new(), destinations: Some(vec!["/".into()]), hooks: Some(named) };
    Plan::parse(&json::to_string(&strip_created(m)), &fake, &anything, created)
}

/// Whether the plan's destination lies in one of the board's destination roots now (a
/// stored plan is re-checked before every run: the profile may have changed).
pub fn destination_allowed(plan: &Plan, backup: &crate::board::BackupProfile) -> Result<(), String> {
    if below_a_root(Path::new(&plan.destination), backup.destinations()) {
        Ok(())
    } else {
        Err(format!(
            "destination {} is not below any of the board's backup destinations ({})",
            plan.destination,
            backup.destinations().join(", ")
        ))
    }
}

pub fn store(path: &Path, plans: &[Plan]) -> std::io::Result<()> {
    let mut out = String::from("[");
    for (i, p) in plans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&p.to_json(true));
    }
    out.push(']');
    crate::store::atomic::write(path, out.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Vec<crate::board::Application> {
        vec![crate::board::Application {
            name: "app".into(),
            paths: vec!["/var/lib/app".into()],
            cache: vec![],
            restart: None,
            version_file: None,
        }]
    }

    fn profile() -> crate::board::BackupProfile {
        crate::board::BackupProfile {
            paths: vec!["/var/lib/app".into()],
            destinations: Some(vec!["/srv".into(), "/b".into()]),
            hooks: Some(vec![crate::board::NamedHook { name: "notify".into(), command: vec!["/bin/true".into()] }]),
        }
    }

    fn parse(text: &str) -> Result<Plan, String> {
        Plan::parse(text, &apps(), &profile(), 5)
    }

    const GOOD: &str = r#"{"id":"nightly","sources":{"state":true,"applications":["app"]},
        "destination":{"path":"/srv/backups","vendor":"nfs","auth":{"secret":"s3cret"}},
        "schedule":{"cron":"0 3 * * *"},"retention":{"keep_last_n":3,"daily":7},
        "hooks":{"on_failure":["/usr/bin/notify","failed"]}}"#;

    #[test]
    fn a_full_plan_round_trips_and_hides_its_secret() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.schedule, Schedule::Cron("0 3 * * *".into()));
        assert_eq!(p.retention, Retention { keep_last_n: 3, daily: 7, ..Default::default() });
        assert!(!p.to_json(false).contains("s3cret"));
        let dir = std::env::temp_dir().join(format!("steward-plans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        store(&dir.join("plans.json"), std::slice::from_ref(&p)).unwrap();
        assert_eq!(load(&dir.join("plans.json")).unwrap(), vec![p]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        let cases = [
            ("[]", "JSON object"),
            (r#"{"id":"a b","sources":{"state":true},"destination":{"path":"/b"}}"#, "id must be"),
            (r#"{"id":"a","destination":{"path":"/b"}}"#, "sources is required"),
            (r#"{"id":"a","sources":{},"destination":{"path":"/b"}}"#, "back up the state"),
            (r#"{"id":"a","sources":{"applications":["nope"]},"destination":{"path":"/b"}}"#, "no application"),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"b"}}"#, "absolute"),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b/../etc"}}"#, "absolute"),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/var/lib/app/b"}}"#, "overlaps"),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"schedule":{"cron":"61 * * * *"}}"#,
                "minute",
            ),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"schedule":{"every_hours":0}}"#,
                "every_hours",
            ),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"schedule":{"cron":"* * * * *","every_hours":1}}"#,
                "one of",
            ),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"retention":{}}"#, "at least one"),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"retention":{"keep_last_n":-1}}"#,
                "whole number",
            ),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"colour":"red"}"#, "unknown field"),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b","auth":{"password":"x"}}}"#,
                "unknown field",
            ),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"hooks":{"on_success":"nope"}}"#,
                "no hook named",
            ),
            (
                r#"{"id":"a","sources":{"state":true},"destination":{"path":"/b"},"hooks":{"on_success":["sh"]}}"#,
                "absolute path",
            ),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/etc/cron.d"}}"#, "board's destinations"),
            (r#"{"id":"a","sources":{"state":true},"destination":{"path":"/srvx"}}"#, "board's destinations"),
        ];
        for (text, why) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn hooks_are_a_board_name_or_an_argv_and_round_trip() {
        let named = parse(r#"{"id":"a","sources":{"state":true},"destination":{"path":"/srv/x"},"hooks":{"on_success":"notify","on_failure":["/bin/echo","x"]}}"#).unwrap();
        assert_eq!(named.on_success, Hook::Named("notify".into()));
        assert_eq!(named.on_failure, Hook::Command(vec!["/bin/echo".into(), "x".into()]));
        let json = named.to_json(false);
        assert!(json.contains(r#""hooks":{"on_success":"notify","on_failure":["/bin/echo","x"]}"#), "{json}");
        let dir = std::env::temp_dir().join(format!("steward-plans-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        store(&dir.join("plans.json"), std::slice::from_ref(&named)).unwrap();
        assert_eq!(load(&dir.join("plans.json")).unwrap(), vec![named]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retention_keeps_what_the_policy_says() {
        const H: i64 = 3_600_000;
        // Two backups an hour for three days, ids in time order.
        let backups: Vec<(u64, i64)> = (0..144).map(|i| (i as u64, i * H / 2)).collect();
        let last3 = retained(&Retention { keep_last_n: 3, ..Default::default() }, &backups);
        assert_eq!(last3.into_iter().collect::<Vec<_>>(), vec![141, 142, 143]);
        let hourly = retained(&Retention { hourly: 4, ..Default::default() }, &backups);
        assert_eq!(hourly.into_iter().collect::<Vec<_>>(), vec![137, 139, 141, 143], "newest of each hour");
        let daily = retained(&Retention { daily: 5, ..Default::default() }, &backups);
        assert_eq!(daily.into_iter().collect::<Vec<_>>(), vec![47, 95, 143], "only three days have backups");
        let both = retained(&Retention { keep_last_n: 1, daily: 2, ..Default::default() }, &backups);
        assert_eq!(both.into_iter().collect::<Vec<_>>(), vec![95, 143]);
    }

    #[test]
    fn schedules_name_the_next_run() {
        let mut p = parse(GOOD).unwrap();
        // 2026-11-23 00:20 UTC: the next 03:00 is the same day.
        assert_eq!(p.next_run_ms(1_795_393_200_000), Some(1_795_402_800_000));
        p.schedule = Schedule::EveryHours(6);
        assert_eq!(p.next_run_ms(1_000), Some(1_000 + 6 * 3_600_000));
        p.schedule = Schedule::Disabled;
        assert_eq!(p.next_run_ms(1_000), None);
    }
}
