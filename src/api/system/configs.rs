//! The stored IncusOS configs: `/1.0/system/logging`, `/provider` and `/update` (one PUT path,
//! each resource with its own check).

use super::*;

/// A PUT of a config kept in the data dir: If-Match, the whole config checked by `check`
/// (which returns what to store), stored, audited, answered with the new ETag.
fn replace_stored(
    api: &mut Api,
    call: &mut Call,
    name: &str,
    default: &str,
    action: &str,
    check: fn(json::Object) -> Result<String, Reply>,
) -> Handled {
    check_if_match(call, &stored(api, name, default), "configuration")?;
    let config = put_config(call).and_then(check)?;
    store(api, name, &config)?;
    api.engine.audit.record(&call.who(), action, "");
    Ok(sync("{}").header("ETag", etag(&config)).into())
}

/// A fresh box's logging config, as upstream shows it: nothing set.
const LOGGING_DEFAULT: &str = r#"{"syslog":{"address":"","protocol":"","log_format":""}}"#;

pub fn logging(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(resource(&stored(api, "logging", LOGGING_DEFAULT), "{}"))
}

pub fn put_logging(api: &mut Api, call: &mut Call) -> Handled {
    replace_stored(api, call, "logging", LOGGING_DEFAULT, "logging.update", check_logging)
}

fn check_logging(c: json::Object) -> Result<String, Reply> {
    only(&c, "config", &["syslog"])?;
    let syslog = match c.get("syslog") {
        None | Some(Value::Null) => json::Object::new(),
        Some(Value::Object(s)) => s.clone(),
        Some(_) => return Err(error(400, "syslog must be an object").into()),
    };
    only(&syslog, "syslog", &["address", "protocol", "log_format"])?;
    // As upstream takes them: a host with or without a port (the protocol's default, 514
    // or 6514), and an empty protocol or format for the defaults (udp, rfc5424).
    let address = string_field(&syslog, "address")?.unwrap_or_default();
    let host_ok = |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    let valid = match address.rsplit_once(':') {
        _ if address.is_empty() => true,
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            host_ok(h) && p.parse::<u16>().is_ok_and(|p| p > 0)
        }
        _ => host_ok(&address),
    };
    if !valid {
        return Err(error(400, &format!("syslog.address {address:?} must be a host, or host:port")).into());
    }
    let protocol = string_field(&syslog, "protocol")?.unwrap_or_default();
    if !["", "udp", "tcp", "tls", "dtls"].contains(&protocol.as_str()) {
        return Err(error(400, "syslog.protocol must be udp, tcp, tls or dtls (or empty: udp)").into());
    }
    let format = string_field(&syslog, "log_format")?.unwrap_or_default();
    if !["", "rfc5424", "rfc3339"].contains(&format.as_str()) {
        return Err(error(400, "syslog.log_format must be rfc5424 or rfc3339 (or empty: rfc5424)").into());
    }
    let syslog = Object::new().str("address", &address).str("protocol", &protocol).str("log_format", &format).finish();
    Ok(Object::new().raw("syslog", &syslog).finish())
}

const PROVIDER_DEFAULT: &str = r#"{"name":"images","config":{}}"#;

pub fn provider(api: &mut Api, _call: &mut Call) -> Handled {
    let config = stored(api, "provider", PROVIDER_DEFAULT);
    // Secrets a provider config may carry never leave the box.
    let shown = redact_provider(&config);
    Ok(sync(&Object::new().raw("config", &shown).raw("state", r#"{"registered":false}"#).finish())
        .header("ETag", etag(&config))
        .into())
}

fn redact_provider(config: &str) -> String {
    let Ok(Value::Object(mut c)) = json::from_str::<Value>(config) else { return config.to_owned() };
    if let Some(Value::Object(inner)) = c.get_mut("config") {
        for (k, v) in inner.iter_mut() {
            if ["token", "secret", "password", "key", "api_key"].iter().any(|s| k.contains(s)) {
                *v = Value::String("[redacted]".into());
            }
        }
    }
    json::to_string(&Value::Object(c))
}

pub fn put_provider(api: &mut Api, call: &mut Call) -> Handled {
    replace_stored(api, call, "provider", PROVIDER_DEFAULT, "provider.update", check_provider)
}

fn check_provider(c: json::Object) -> Result<String, Reply> {
    only(&c, "config", &["name", "config"])?;
    let name = string_field(&c, "name")?.unwrap_or_default();
    if name.is_empty() {
        return Err(error(400, "the provider name is required").into());
    }
    let inner = match c.get("config") {
        None | Some(Value::Null) => json::Object::new(),
        Some(Value::Object(o)) => {
            if o.values().any(|v| !matches!(v, Value::String(_))) {
                return Err(error(400, "provider config values must be strings").into());
            }
            o.clone()
        }
        Some(_) => return Err(error(400, "config.config must be an object").into()),
    };
    Ok(Object::new().str("name", &name).raw("config", &json::to_string(&Value::Object(inner))).finish())
}

const UPDATE_DEFAULT: &str =
    r#"{"auto_reboot":false,"channel":"stable","check_frequency":"6h","maintenance_windows":[]}"#;
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn update_state(api: &Api) -> String {
    // upstream's last_check is a Go time.Time: before the first check, its zero value.
    let last = stored(api, "update-state", r#"{"last_check":"0001-01-01T00:00:00Z","status":""}"#);
    let job = api.engine.jobs.state(crate::engine::jobs::Kind::Update);
    let mut state = match json::from_str::<Value>(&last) {
        Ok(Value::Object(m)) => m,
        _ => json::Object::new(),
    };
    if let Some(j) = job {
        use crate::engine::jobs::Status;
        // With a bootloader profile, success is either waiting for its trial boot or done.
        let trial = api.engine.board.update.boot.is_some();
        let pending = if trial { api.engine.update_reboot_pending() } else { j.status == Status::Success };
        let status = match j.status {
            Status::Running => format!("Applying an update ({}%)", j.percentage),
            Status::Success if pending && trial => {
                "The update was applied; it boots on trial at the next reboot".into()
            }
            Status::Success if pending => "The update was applied; it takes effect at the next boot".into(),
            Status::Success => "The update is installed and committed".into(),
            Status::Failed => {
                format!("The update failed: {}", j.error_message.unwrap_or_default())
            }
        };
        state.insert("status".into(), Value::String(status));
        state.insert("needs_reboot".into(), Value::Bool(pending));
    } else {
        state.insert("needs_reboot".into(), Value::Bool(false));
    }
    json::to_string(&Value::Object(state))
}

pub fn update(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(resource(&stored(api, "update", UPDATE_DEFAULT), &update_state(api)))
}

fn small_int(m: &json::Object, key: &str, max: u64) -> Result<u64, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(Number::U64(n))) if *n <= max => Ok(*n),
        Some(_) => Err(error(400, &format!("{key} must be a number from 0 to {max}")).into()),
    }
}

pub fn put_update(api: &mut Api, call: &mut Call) -> Handled {
    replace_stored(api, call, "update", UPDATE_DEFAULT, "update.config", check_update)
}

/// Whether `s` is a non-negative duration as Go's `time.ParseDuration` reads it (what
/// upstream validates `check_frequency` with): `0`, or numbers with optional fractions, each
/// followed by a unit of ns, us, µs, ms, s, m or h (`1.5h`, `1h30m`, `90s`).
/// `check_frequency`: a Go duration that is not negative.
fn is_go_duration(s: &str) -> bool {
    crate::time::parse_go_duration(s).is_some_and(|ms| ms >= 0)
}

fn check_update(c: json::Object) -> Result<String, Reply> {
    only(&c, "config", &["auto_reboot", "channel", "check_frequency", "maintenance_windows"])?;
    let auto_reboot = match c.get("auto_reboot") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(error(400, "auto_reboot must be true or false").into()),
    };
    let channel = string_field(&c, "channel")?.filter(|s| !s.is_empty()).unwrap_or_else(|| "stable".into());
    let frequency = string_field(&c, "check_frequency")?.filter(|s| !s.is_empty()).unwrap_or_else(|| "6h".into());
    if frequency != "never" && !is_go_duration(&frequency) {
        return Err(
            error(400, &format!("check_frequency {frequency:?} must be a duration (\"6h\") or \"never\"")).into()
        );
    }
    let mut windows = Vec::new();
    match c.get("maintenance_windows") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for w in items {
                let Value::Object(w) = w else {
                    return Err(error(400, "a maintenance window must be an object").into());
                };
                only(
                    w,
                    "maintenance window",
                    &["start_day_of_week", "start_hour", "start_minute", "end_day_of_week", "end_hour", "end_minute"],
                )?;
                let start_day = string_field(w, "start_day_of_week")?.filter(|d| !d.is_empty());
                let end_day = string_field(w, "end_day_of_week")?.filter(|d| !d.is_empty());
                if start_day.is_some() != end_day.is_some() {
                    return Err(error(400, "start_day_of_week and end_day_of_week go together").into());
                }
                for d in start_day.iter().chain(end_day.iter()) {
                    if !DAYS.contains(&d.as_str()) {
                        return Err(error(400, &format!("{d:?} is not a day of the week")).into());
                    }
                }
                let (sh, sm, eh, em) = (
                    small_int(w, "start_hour", 23)?,
                    small_int(w, "start_minute", 59)?,
                    small_int(w, "end_hour", 23)?,
                    small_int(w, "end_minute", 59)?,
                );
                // As upstream: a window on one named day must end after it starts; one with no
                // day is daily and may run overnight (22:00 to 06:00).
                if start_day.is_some() && start_day == end_day && (eh, em) < (sh, sm) {
                    return Err(error(400, "a window within one day must end after it starts").into());
                }
                let mut o = Object::new();
                if let (Some(s), Some(e)) = (&start_day, &end_day) {
                    o = o.str("start_day_of_week", s).str("end_day_of_week", e);
                }
                windows.push(
                    o.num("start_hour", sh).num("start_minute", sm).num("end_hour", eh).num("end_minute", em).finish(),
                );
            }
        }
        Some(_) => return Err(error(400, "maintenance_windows must be a list").into()),
    }
    Ok(Object::new()
        .bool("auto_reboot", auto_reboot)
        .str("channel", &channel)
        .str("check_frequency", &frequency)
        .raw("maintenance_windows", &format!("[{}]", windows.join(",")))
        .finish())
}

/// `:check`: steward installs packages the vendor uploads (`POST /api/v1/admin/update`); it
/// has no feed to poll, and says so in the state rather than pretending.
pub fn update_check(api: &mut Api, call: &mut Call) -> Handled {
    let state = Object::new()
        .str("last_check", &crate::time::rfc3339(std::time::SystemTime::now()))
        .str("status", "No update feed on this board: upload signed packages to /api/v1/admin/update")
        .finish();
    store(api, "update-state", &state)?;
    api.engine.audit.record(&call.who(), "update.check", "");
    Ok(sync("{}").into())
}

/// `/1.0/system/kernel`: upstream's kernel settings (console, blacklisted modules, CPU,
/// memory, network tuning, PCI passthrough) are the board's on a steward appliance.
pub fn kernel(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(resource("{}", "{}"))
}

pub fn put_kernel(_api: &mut Api, call: &mut Call) -> Handled {
    empty_config(
        call,
        "kernel settings are the board's on a steward appliance (its kernel command line and sysctl files)",
    )
}

/// `/1.0/system/fallback-listener`: upstream's listener for when its application fails to
/// start; steward is the API itself, so there is no application whose failure it would cover.
pub fn fallback_listener(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(resource("{}", r#"{"active":false}"#))
}

pub fn put_fallback_listener(_api: &mut Api, call: &mut Call) -> Handled {
    empty_config(
        call,
        "steward is the API itself: there is no application whose failure a fallback listener would cover",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations_as_upstream_reads_them() {
        for bad in ["", "6", "h", "-1h", "1.2.3h", "1d", "1hh", ".h", "6 h"] {
            assert!(!super::is_go_duration(bad), "{bad:?}");
        }
        for good in ["0", "6h", "1.5h", "1h30m", "90s", "300ms", "2h45m10.5s", "+1h", ".5h"] {
            assert!(super::is_go_duration(good), "{good:?}");
        }
    }
}
