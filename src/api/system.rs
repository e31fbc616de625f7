//! IncusOS `/1.0/system/*` configuration resources: `{"config": …, "state": …}` objects where
//! GET returns both with an ETag, PUT replaces `config` (ignoring `state`) after checking it
//! completely and honouring `If-Match`. Network changes can be confirmed or rolled back.

use miniserde::json::{self, Number, Value};

use super::incus::{engine_error, error, sync};
use super::{Api, Call};
use crate::engine::Error;
use crate::json::Object;
use crate::server::Reply;
use crate::store::atomic;

pub fn etag(config: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, config.as_bytes());
    format!("\"{}\"", crate::engine::package::to_hex(&d.as_ref()[..12]))
}

/// `{"config":…,"state":…}` with the config's ETag.
fn resource(config: &str, state: &str) -> Reply {
    sync(&Object::new().raw("config", config).raw("state", state).finish()).header("ETag", etag(config)).into()
}

/// 412 when the client's `If-Match` names another version of the config.
pub fn check_if_match(call: &Call, current: &str, what: &str) -> Result<(), Reply> {
    match call.head.if_match() {
        Some(want) if want.trim() != "*" && !want.split(',').any(|t| t.trim() == etag(current)) => {
            Err(error(412, &format!("the {what} changed since it was read (ETag mismatch)")).into())
        }
        _ => Ok(()),
    }
}

/// The PUT body's `config` object (a `state` next to it is ignored).
fn put_config(call: &mut Call) -> Result<json::Object, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    let Ok(Value::Object(mut body)) = json::from_str::<Value>(&text) else {
        return Err(error(400, "the body must be a JSON object with a config").into());
    };
    if let Some(k) = body.keys().find(|k| *k != "config" && *k != "state") {
        return Err(error(400, &format!("unknown field {k:?}")).into());
    }
    match body.remove("config") {
        Some(Value::Object(c)) => Ok(c),
        Some(Value::Null) | None => Err(error(400, "config is required").into()),
        Some(_) => Err(error(400, "config must be an object").into()),
    }
}

fn only(m: &json::Object, what: &str, known: &[&str]) -> Result<(), Reply> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(error(400, &format!("{what}: unknown field {k:?}")).into()),
        None => Ok(()),
    }
}

fn string_field(m: &json::Object, key: &str) -> Result<Option<String>, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(400, &format!("{key} must be a string")).into()),
    }
}

/// A config document kept in the data dir (`incus-<name>.json`), or its default.
fn stored(api: &Api, name: &str, default: &str) -> String {
    std::fs::read_to_string(api.engine.data.join(format!("incus-{name}.json"))).unwrap_or_else(|_| default.to_owned())
}

fn store(api: &Api, name: &str, config: &str) -> Result<(), Reply> {
    atomic::write(&api.engine.data.join(format!("incus-{name}.json")), config.as_bytes(), 0o600)
        .map_err(|e| engine_error(Error::Io(format!("storing {name}: {e}"))))
}

// --- network ---------------------------------------------------------------------------

fn iface_file(api: &Api, iface: &str, file: &str) -> Option<String> {
    if iface.is_empty() || iface.contains('/') || iface.starts_with('.') {
        return None;
    }
    let bytes = api.engine.root.read_limited(&format!("/sys/class/net/{iface}/{file}"), 4096).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

fn configured_iface(api: &Api) -> String {
    api.engine
        .network_settings()
        .and_then(|t| json::from_str::<Value>(&t).ok())
        .and_then(|v| match v {
            Value::Object(m) => match m.get("network") {
                Some(Value::Object(n)) => match n.get("interface") {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| "eth0".to_owned())
}

pub fn network(api: &mut Api, _call: &mut Call) -> Reply {
    let iface = configured_iface(api);
    let hwaddr = iface_file(api, &iface, "address").unwrap_or_default();
    let config = crate::engine::netconfig::to_incus(api.engine.network_settings().as_deref(), &hwaddr);
    let num = |f: &str| iface_file(api, &iface, f).and_then(|v| v.parse::<i64>().ok());
    let operstate = iface_file(api, &iface, "operstate").unwrap_or_else(|| "unknown".into());
    let mut st = Object::new()
        .str("state", if operstate == "up" { "routable" } else { "off" })
        .str("type", "ethernet")
        .str("hwaddr", &hwaddr);
    if let Some(mtu) = num("mtu") {
        st = st.num("mtu", mtu);
    }
    if let Some(speed) = num("speed").filter(|s| *s > 0) {
        st = st.str("speed", &speed.to_string());
    }
    let stat = |f: &str| num(&format!("statistics/{f}")).unwrap_or(0);
    st = st.raw(
        "stats",
        &Object::new()
            .num("rx_bytes", stat("rx_bytes"))
            .num("rx_errors", stat("rx_errors"))
            .num("tx_bytes", stat("tx_bytes"))
            .num("tx_errors", stat("tx_errors"))
            .finish(),
    );
    let pending = api.engine.network_pending();
    let mut state = Object::new()
        .raw("interfaces", &Object::new().raw(&iface, &st.finish()).finish())
        .bool("configuration_in_process", pending.as_ref().is_some_and(|p| !p.auto_confirm));
    if let Some(p) = pending.filter(|p| !p.auto_confirm) {
        state = state.str("confirmation_deadline", &crate::time::rfc3339_ms(p.deadline_ms));
    }
    resource(&config, &state.finish())
}

pub fn put_network(api: &mut Api, call: &mut Call) -> Reply {
    let iface = configured_iface(api);
    let hwaddr = iface_file(api, &iface, "address").unwrap_or_default();
    let current = crate::engine::netconfig::to_incus(api.engine.network_settings().as_deref(), &hwaddr);
    if let Err(r) = check_if_match(call, &current, "configuration") {
        return r;
    }
    let config = match put_config(call) {
        Ok(c) => Value::Object(c),
        Err(r) => return r,
    };
    let (network, timeout) = match crate::engine::netconfig::from_incus(&config) {
        Ok(n) => n,
        Err(e) => return engine_error(e),
    };
    let Some(waker) = api.waker.clone() else { return error(503, "unavailable").into() };
    let (tx, rx) = std::sync::mpsc::channel();
    let respond = Box::new(move |result: Result<(), String>| {
        let response = match result {
            Ok(()) => sync("{}"),
            Err(e) => error(500, &e),
        };
        let _ = tx.send(response);
        waker.wake();
    });
    if let Err(e) = api.engine.network_put(&network, timeout, crate::time::unix_millis(), respond) {
        return engine_error(e);
    }
    api.engine.audit.record(call.peer, "network.update", if timeout.is_some() { "confirm-pending" } else { "" });
    Reply { response: error(500, "the network change ended without an answer"), not_before: None, pending: Some(rx) }
}

pub fn network_confirm(api: &mut Api, call: &mut Call) -> Reply {
    match api.engine.network_confirm() {
        Ok(()) => {
            api.engine.audit.record(call.peer, "network.confirm", "");
            sync("{}").into()
        }
        Err(e) => engine_error(e),
    }
}

// --- logging, provider, update ---------------------------------------------------------

/// A PUT of a config kept in the data dir: If-Match, the whole config checked by `check`
/// (which returns what to store), stored, audited, answered with the new ETag.
fn replace_stored(
    api: &mut Api,
    call: &mut Call,
    name: &str,
    default: &str,
    action: &str,
    check: fn(json::Object) -> Result<String, Reply>,
) -> Reply {
    if let Err(r) = check_if_match(call, &stored(api, name, default), "configuration") {
        return r;
    }
    let config = match put_config(call).and_then(check) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = store(api, name, &config) {
        return r;
    }
    api.engine.audit.record(call.peer, action, "");
    sync("{}").header("ETag", etag(&config)).into()
}

const LOGGING_DEFAULT: &str = r#"{"syslog":{"address":"","protocol":"udp","log_format":"rfc5424"}}"#;

pub fn logging(api: &mut Api, _call: &mut Call) -> Reply {
    resource(&stored(api, "logging", LOGGING_DEFAULT), "{}")
}

pub fn put_logging(api: &mut Api, call: &mut Call) -> Reply {
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
    let address = string_field(&syslog, "address")?.unwrap_or_default();
    if !address.is_empty() && address.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
        return Err(error(400, &format!("syslog.address {address:?} must be host:port")).into());
    }
    let protocol = string_field(&syslog, "protocol")?.filter(|p| !p.is_empty()).unwrap_or_else(|| "udp".into());
    if !["udp", "tcp", "tls", "dtls"].contains(&protocol.as_str()) {
        return Err(error(400, "syslog.protocol must be udp, tcp, tls or dtls").into());
    }
    let format = string_field(&syslog, "log_format")?.filter(|p| !p.is_empty()).unwrap_or_else(|| "rfc5424".into());
    if !["rfc5424", "rfc3339"].contains(&format.as_str()) {
        return Err(error(400, "syslog.log_format must be rfc5424 or rfc3339").into());
    }
    let syslog = Object::new().str("address", &address).str("protocol", &protocol).str("log_format", &format).finish();
    Ok(Object::new().raw("syslog", &syslog).finish())
}

const PROVIDER_DEFAULT: &str = r#"{"name":"images","config":{}}"#;

pub fn provider(api: &mut Api, _call: &mut Call) -> Reply {
    let config = stored(api, "provider", PROVIDER_DEFAULT);
    // Secrets a provider config may carry never leave the box.
    let shown = redact_provider(&config);
    sync(&Object::new().raw("config", &shown).raw("state", r#"{"registered":false}"#).finish())
        .header("ETag", etag(&config))
        .into()
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

pub fn put_provider(api: &mut Api, call: &mut Call) -> Reply {
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
    let last = stored(api, "update-state", r#"{"last_check":"","status":""}"#);
    let job = api.engine.jobs.state(crate::engine::jobs::Kind::Update);
    let mut state = match json::from_str::<Value>(&last) {
        Ok(Value::Object(m)) => m,
        _ => json::Object::new(),
    };
    if let Some(j) = job {
        let status = match j.status {
            crate::engine::jobs::Status::Running => format!("Applying an update ({}%)", j.percentage),
            crate::engine::jobs::Status::Success => "The update was applied; it takes effect at the next boot".into(),
            crate::engine::jobs::Status::Failed => {
                format!("The update failed: {}", j.error_message.unwrap_or_default())
            }
        };
        state.insert("status".into(), Value::String(status));
        state.insert("needs_reboot".into(), Value::Bool(j.status == crate::engine::jobs::Status::Success));
    } else {
        state.insert("needs_reboot".into(), Value::Bool(false));
    }
    json::to_string(&Value::Object(state))
}

pub fn update(api: &mut Api, _call: &mut Call) -> Reply {
    resource(&stored(api, "update", UPDATE_DEFAULT), &update_state(api))
}

fn small_int(m: &json::Object, key: &str, max: u64) -> Result<u64, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(Number::U64(n))) if *n <= max => Ok(*n),
        Some(_) => Err(error(400, &format!("{key} must be a number from 0 to {max}")).into()),
    }
}

pub fn put_update(api: &mut Api, call: &mut Call) -> Reply {
    replace_stored(api, call, "update", UPDATE_DEFAULT, "update.config", check_update)
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
    if frequency != "never" && crate::engine::netconfig::parse_duration(&frequency).is_none() && frequency != "0" {
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
                if start_day == end_day && (eh, em) < (sh, sm) {
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
pub fn update_check(api: &mut Api, call: &mut Call) -> Reply {
    let state = Object::new()
        .str("last_check", &crate::time::rfc3339(std::time::SystemTime::now()))
        .str("status", "No update feed on this board: upload signed packages to /api/v1/admin/update")
        .finish();
    if let Err(r) = store(api, "update-state", &state) {
        return r;
    }
    api.engine.audit.record(call.peer, "update.check", "");
    sync("{}").into()
}

// --- services ----------------------------------------------------------------------------

fn service_name(api: &Api, call: &Call) -> Result<String, Reply> {
    let name = call.segment(2);
    match api.engine.services().into_iter().find(|(n, _)| *n == name) {
        Some((n, _)) => Ok(n.to_owned()),
        None => Err(error(404, "service not found").into()),
    }
}

fn service_config(api: &Api, name: &str) -> String {
    stored(api, &format!("service-{name}"), r#"{"enabled":true}"#)
}

pub fn services(api: &mut Api, _call: &mut Call) -> Reply {
    let mut urls: Vec<String> = api.engine.services().iter().map(|(n, _)| format!("/1.0/services/{n}")).collect();
    urls.sort();
    sync(&crate::json::str_array(urls.iter().map(String::as_str))).into()
}

pub fn service(api: &mut Api, call: &mut Call) -> Reply {
    let name = match service_name(api, call) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let running = api.engine.services().into_iter().any(|(n, up)| n == name && up);
    resource(&service_config(api, &name), &Object::new().bool("running", running).finish())
}

/// Stores whether the service should be enabled; the board's init system acts on it (the
/// file is in the data dir), steward reports the running state it measures.
pub fn put_service(api: &mut Api, call: &mut Call) -> Reply {
    let name = match service_name(api, call) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(r) = check_if_match(call, &service_config(api, &name), "configuration") {
        return r;
    }
    let c = match put_config(call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = only(&c, "config", &["enabled"]) {
        return r;
    }
    let enabled = match c.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => return error(400, "enabled (true or false) is required").into(),
    };
    if name == "steward" && !enabled {
        return error(400, "steward cannot disable itself").into();
    }
    let config = Object::new().bool("enabled", enabled).finish();
    if let Err(r) = store(api, &format!("service-{name}"), &config) {
        return r;
    }
    api.engine.audit.record(call.peer, "service.update", &name);
    sync("{}").header("ETag", etag(&config)).into()
}

// --- debug -------------------------------------------------------------------------------

pub fn debug_index(_api: &mut Api, _call: &mut Call) -> Reply {
    sync(r#"["/1.0/debug/log"]"#).into()
}

/// The last lines of the board's log files as journal-like records, oldest first.
/// `unit` picks a file by name (without extension), `entries` bounds the answer (default
/// 100, at most 1,000), `boot` takes the current boot (`0`, `-0` or empty) only.
pub fn debug_log(api: &mut Api, call: &mut Call) -> Reply {
    use crate::server::http::query_param;
    const MAX_ENTRIES: usize = 1000;
    const TAIL_BYTES: u64 = 256 * 1024;
    let entries = match query_param(call.head.query(), "entries").as_deref() {
        None | Some("") => 100,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_ENTRIES).contains(&n) => n,
            _ => return error(400, &format!("entries must be from 1 to {MAX_ENTRIES}")).into(),
        },
    };
    if let Some(b) = query_param(call.head.query(), "boot").filter(|b| !matches!(b.as_ref(), "" | "0" | "-0")) {
        return error(400, &format!("boot {b:?}: only the current boot (0) is kept on this board")).into();
    }
    let unit = query_param(call.head.query(), "unit").filter(|u| !u.is_empty());
    let mut files: Vec<(std::time::SystemTime, String, std::path::PathBuf)> = Vec::new();
    for dir in &api.engine.board.logs {
        let Ok(list) = std::fs::read_dir(api.engine.root.path(dir)) else { continue };
        for entry in list.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.split('.').next().unwrap_or(&name).to_owned();
            if unit.as_ref().is_some_and(|u| *u != stem) {
                continue;
            }
            files.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), stem, entry.path()));
        }
    }
    files.sort();
    let mut records: Vec<String> = Vec::new();
    for (modified, stem, path) in files {
        let Ok(mut f) = std::fs::File::open(&path) else { continue };
        use std::io::{Read, Seek, SeekFrom};
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL_BYTES);
        if f.seek(SeekFrom::Start(start)).is_err() {
            continue;
        }
        let mut text = Vec::new();
        let _ = f.take(TAIL_BYTES).read_to_end(&mut text);
        let text = String::from_utf8_lossy(&text);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        let stamp = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0).to_string();
        for line in lines.into_iter().filter(|l| !l.is_empty()) {
            records.push(
                Object::new()
                    .str("MESSAGE", line)
                    .str("PRIORITY", "6")
                    .str("_SYSTEMD_UNIT", &stem)
                    .str("__REALTIME_TIMESTAMP", &stamp)
                    .finish(),
            );
        }
        if records.len() > entries * 4 {
            records.drain(..records.len() - entries);
        }
    }
    let skip = records.len().saturating_sub(entries);
    sync(&format!("[{}]", records[skip..].join(","))).into()
}

/// Writes an operator's message to steward's log (the console and journal on a board).
pub fn write_message(api: &mut Api, call: &mut Call) -> Reply {
    let text = match call.body_text() {
        Ok(t) => t,
        Err(m) => return error(400, m).into(),
    };
    let Ok(Value::Object(m)) = json::from_str::<Value>(&text) else {
        return error(400, "the body must be a JSON object with level and message").into();
    };
    let level = match m.get("level") {
        None | Some(Value::Null) => "INFO".to_owned(),
        Some(Value::String(l)) if ["DEBUG", "INFO", "WARN", "ERROR"].contains(&l.to_ascii_uppercase().as_str()) => {
            l.to_ascii_uppercase()
        }
        Some(Value::Number(n)) => match n {
            Number::I64(-4) => "DEBUG".into(),
            Number::U64(0) => "INFO".into(),
            Number::U64(4) => "WARN".into(),
            Number::U64(8) => "ERROR".into(),
            _ => return error(400, "level must be DEBUG, INFO, WARN or ERROR").into(),
        },
        Some(_) => return error(400, "level must be DEBUG, INFO, WARN or ERROR").into(),
    };
    let message = match m.get("message") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return error(400, "message is required").into(),
    };
    let clean: String = message.chars().take(4096).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if level == "WARN" || level == "ERROR" {
        crate::log::warn(format_args!("operator message [{level}]: {clean}"));
    } else {
        crate::log::info(format_args!("operator message [{level}]: {clean}"));
    }
    api.engine.audit.record(call.peer, "debug.message", &level);
    sync("{}").into()
}

// --- resources, security, storage --------------------------------------------------------

pub fn resources(api: &mut Api, _call: &mut Call) -> Reply {
    sync(&crate::system::hardware::resources(&api.engine.root)).into()
}

const SECURITY_DEFAULT: &str = r#"{"encryption_recovery_keys":[],"custom_ca_certs":[],"retrieved":false}"#;

fn security_doc(api: &Api) -> json::Object {
    match json::from_str::<Value>(&stored(api, "security", SECURITY_DEFAULT)) {
        Ok(Value::Object(m)) => m,
        _ => json::Object::new(),
    }
}

fn list_of(m: &json::Object, key: &str) -> Vec<String> {
    crate::json::strings_in(m.get(key))
}

/// The config as stored (with the keys) and as shown (keys redacted unless `secrets`).
fn security_config(doc: &json::Object, secrets: bool, clients: &[crate::engine::clients::TrustedClient]) -> String {
    let keys = list_of(doc, "encryption_recovery_keys");
    let shown: Vec<&str> = keys.iter().map(|k| if secrets { k.as_str() } else { "[redacted]" }).collect();
    Object::new()
        .raw("encryption_recovery_keys", &crate::json::str_array(shown))
        .raw("custom_ca_certs", &crate::json::str_array(list_of(doc, "custom_ca_certs").iter().map(String::as_str)))
        .raw(
            "client_certificates",
            &format!(
                "[{}]",
                clients
                    .iter()
                    .map(|c| Object::new()
                        .str("name", &c.name)
                        .str("fingerprint", &c.fingerprint)
                        .raw("capabilities", &crate::json::str_array(c.caps.iter().map(|c| c.name())))
                        .finish())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .finish()
}

/// Secure Boot, TPM and PCRs as the machine reports them; a board without UEFI or TPM
/// says so (`secure_boot_available`, `tpm_status: "absent"`) rather than failing.
pub fn security(api: &mut Api, call: &mut Call) -> Reply {
    let secrets =
        crate::server::http::query_param(call.head.query(), "secrets").is_some_and(|v| v == "1" || v == "true");
    // Reading the keys themselves is an admin's business, not a monitor's.
    if secrets && !matches!(&call.auth, super::AuthState::Granted(p) if p.allows(crate::engine::keys::Cap::Admin)) {
        return error(403, "not authorized").into();
    }
    let doc = security_doc(api);
    if secrets {
        api.engine.audit.record(call.peer, "security.secrets.read", "");
    }
    let hw = crate::system::hardware::security(&api.engine.root);
    let mut state = Object::new().bool("secure_boot_available", hw.uefi);
    state = match hw.secure_boot {
        Some(on) => state.bool("secure_boot_enabled", on),
        None => state.bool("secure_boot_enabled", false),
    };
    if let Some(setup) = hw.setup_mode {
        state = state.bool("secure_boot_setup_mode", setup);
    }
    match &hw.tpm {
        Some(tpm) => {
            let mut pcrs = Object::new();
            for (n, value) in &tpm.pcrs {
                pcrs = pcrs.str(&n.to_string(), value);
            }
            state =
                state.str("tpm_status", "ok").str("tpm_version", &tpm.version).raw("tpm_pcrs_sha256", &pcrs.finish());
        }
        None => state = state.str("tpm_status", "absent"),
    }
    let trusted = hw.secure_boot == Some(true) && hw.tpm.is_some();
    state = state
        .raw("encrypted_volumes", "[]")
        .bool("encryption_recovery_keys_retrieved", matches!(doc.get("retrieved"), Some(Value::Bool(true))))
        .bool("system_state_is_trusted", trusted)
        .str(
            "system_state_status",
            if trusted { "Secure Boot is on and a TPM is present" } else { "Secure Boot is off or no TPM is present" },
        );
    let stored_config = security_config(&doc, true, &api.engine.trusted_clients);
    sync(
        &Object::new()
            .raw("config", &security_config(&doc, secrets, &api.engine.trusted_clients))
            .raw("state", &state.finish())
            .finish(),
    )
    .header("ETag", etag(&stored_config))
    .into()
}

/// A recovery passphrase as IncusOS asks for it: at least 15 characters, a symbol, and five
/// different characters.
fn key_problem(key: &str) -> Option<&'static str> {
    let mut unique: Vec<char> = key.chars().collect();
    unique.sort_unstable();
    unique.dedup();
    if key.chars().count() < 15 {
        Some("a recovery key needs at least 15 characters")
    } else if !key.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        Some("a recovery key needs at least one symbol")
    } else if unique.len() < 5 {
        Some("a recovery key needs at least 5 different characters")
    } else {
        None
    }
}

pub fn put_security(api: &mut Api, call: &mut Call) -> Reply {
    let doc = security_doc(api);
    if let Err(r) = check_if_match(call, &security_config(&doc, true, &api.engine.trusted_clients), "configuration") {
        return r;
    }
    let mut new_clients: Option<Vec<crate::engine::clients::TrustedClient>> = None;
    let checked = (|| -> Result<String, Reply> {
        let c = put_config(call)?;
        only(
            &c,
            "config",
            &["encryption_recovery_keys", "custom_ca_certs", "client_fingerprints", "client_certificates"],
        )?;
        let strings = |key: &str| -> Result<Vec<String>, Reply> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(Reply::from(error(400, &format!("{key} must be a list of strings")))),
                    })
                    .collect(),
                Some(_) => Err(error(400, &format!("{key} must be a list of strings")).into()),
            }
        };
        let old = list_of(&doc, "encryption_recovery_keys");
        // Absent: unchanged; given: the whole list, which cannot be empty.
        let keys =
            if c.contains_key("encryption_recovery_keys") { strings("encryption_recovery_keys")? } else { old.clone() };
        if keys.is_empty() && c.contains_key("encryption_recovery_keys") {
            return Err(error(400, "no encryption key provided").into());
        }
        // A GET without ?secrets shows placeholders: sending them back keeps the stored keys.
        let keys: Vec<String> =
            if keys.iter().all(|k| k == "[redacted]") && keys.len() == old.len() { old } else { keys };
        for k in &keys {
            if let Some(problem) = key_problem(k) {
                return Err(error(400, problem).into());
            }
        }
        let certs = strings("custom_ca_certs")?;
        for cert in &certs {
            if !cert.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
                return Err(error(400, "custom_ca_certs must be PEM certificates").into());
            }
        }
        // Trusted TLS clients: left as they are unless either list is given. Entries are a
        // PEM certificate or a fingerprint (an admin), or an object naming one of them with a
        // name and capabilities.
        if c.contains_key("client_fingerprints") || c.contains_key("client_certificates") {
            use crate::engine::clients::{TrustedClient, fingerprint_of_pem, valid};
            use crate::engine::keys::Cap;
            let mut clients: Vec<TrustedClient> = Vec::new();
            let bad = |m: &str| Reply::from(error(400, m));
            let entries = [c.get("client_fingerprints"), c.get("client_certificates")];
            for list in entries.into_iter().flatten() {
                let Value::Array(items) = list else { return Err(bad("client lists must be lists")) };
                for item in items.iter() {
                    let (text, name, caps) = match item {
                        Value::String(t) => (t.clone(), None, vec![Cap::Admin]),
                        Value::Object(o) => {
                            only(o, "client certificate", &["name", "certificate", "fingerprint", "capabilities"])?;
                            let text = string_field(o, "certificate")?
                                .or(string_field(o, "fingerprint")?)
                                .ok_or_else(|| bad("a client needs a certificate or a fingerprint"))?;
                            let caps = match o.get("capabilities") {
                                None => vec![Cap::Admin],
                                v => crate::engine::keys::parse_caps(v).map_err(|m| bad(&m))?,
                            };
                            let name = string_field(o, "name")?;
                            if name.as_ref().is_some_and(|n| !crate::engine::plans::valid_id(n)) {
                                return Err(bad("a client name is 1-64 letters, digits, '-' or '_'"));
                            }
                            (text, name, caps)
                        }
                        _ => return Err(bad("client entries are strings or objects")),
                    };
                    let fingerprint = if text.trim_start().starts_with("-----BEGIN") {
                        fingerprint_of_pem(&text).ok_or_else(|| bad("client_certificates must be PEM certificates"))?
                    } else {
                        let f = text.trim().to_ascii_lowercase();
                        if !valid(&f) {
                            return Err(bad(&format!("{f:?} is not a sha256 fingerprint (64 hex digits)")));
                        }
                        f
                    };
                    let name = name.unwrap_or_else(|| fingerprint[..12].to_owned());
                    clients.retain(|c| c.fingerprint != fingerprint);
                    clients.push(TrustedClient { fingerprint, name, caps });
                }
            }
            new_clients = Some(clients);
        }
        let retrieved = matches!(doc.get("retrieved"), Some(Value::Bool(true)));
        Ok(Object::new()
            .raw("encryption_recovery_keys", &crate::json::str_array(keys.iter().map(String::as_str)))
            .raw("custom_ca_certs", &crate::json::str_array(certs.iter().map(String::as_str)))
            .bool("retrieved", retrieved)
            .finish())
    })();
    let stored_doc = match checked {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(r) = store(api, "security", &stored_doc) {
        return r;
    }
    if let Some(clients) = new_clients {
        if let Err(e) = crate::engine::clients::store(&api.engine.data, &clients) {
            return engine_error(Error::Io(format!("storing the trusted clients: {e}")));
        }
        api.engine.audit.record(call.peer, "security.clients", &clients.len().to_string());
        api.engine.trusted_clients = clients;
    }
    api.engine.audit.record(call.peer, "security.update", "");
    let doc = security_doc(api);
    sync("{}").header("ETag", etag(&security_config(&doc, true, &api.engine.trusted_clients))).into()
}

pub fn security_retrieved(api: &mut Api, call: &mut Call) -> Reply {
    let mut doc = security_doc(api);
    doc.insert("retrieved".into(), Value::Bool(true));
    if let Err(r) = store(api, "security", &json::to_string(&Value::Object(doc))) {
        return r;
    }
    api.engine.audit.record(call.peer, "security.retrieved", "");
    sync("{}").into()
}

/// Nothing on this board is sealed to the TPM (no encrypted volumes), so there is no
/// binding to renew; the answer says which of the two reasons applies.
pub fn tpm_rebind(api: &mut Api, _call: &mut Call) -> Reply {
    match crate::system::hardware::security(&api.engine.root).tpm {
        None => error(400, "this board has no TPM").into(),
        Some(_) => error(400, "no encrypted volume is bound to the TPM on this board; nothing to rebind").into(),
    }
}

fn drive_json(api: &Api, d: &crate::system::hardware::Drive) -> String {
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|p| {
            Object::new()
                .str("name", &p.name)
                .num("number", p.number)
                .num("size_in_bytes", p.size)
                .num("start_sector", p.start)
                .finish()
        })
        .collect();
    let mut o = Object::new()
        .str("id", &d.id)
        .str("model_family", "")
        .str("model_name", &d.model)
        .str("serial_number", &d.serial)
        .str("bus", &d.bus)
        .num("capacity_in_bytes", d.size)
        .bool("boot", false)
        .bool("multipath", false)
        .bool("removable", d.removable)
        .bool("remote", false)
        .bool("rotational", d.rotational)
        .bool("mounted", crate::system::hardware::is_mounted(&api.engine.root, d))
        .raw("partitions", &format!("[{}]", partitions.join(",")));
    if let Some(pool) = api.engine.member_pool(d) {
        o = o.str("member_pool", &pool);
    }
    o.finish()
}

pub fn storage(api: &mut Api, _call: &mut Call) -> Reply {
    let drives = crate::system::hardware::drives(&api.engine.root);
    let drives: Vec<String> = drives.iter().map(|d| drive_json(api, d)).collect();
    let pools: Vec<String> = api
        .engine
        .pools()
        .iter()
        .map(|p| {
            Object::new()
                .str("name", &p.name)
                .str("type", &p.kind)
                .raw("devices", &crate::json::str_array(p.devices.iter().map(String::as_str)))
                .bool("managed", true)
                .str("state", "ONLINE")
                .str("encryption_key_status", if p.encryption_key.is_some() { "available" } else { "NONE" })
                .finish()
        })
        .collect();
    let root = crate::system::health::disk(api.engine.root.dir()).ok();
    let avail = rustix::fs::statvfs(api.engine.root.dir()).map(|s| s.f_bavail * s.f_frsize).unwrap_or(0);
    let config = Object::new().str("scrub_schedule", &api.engine.scrub_schedule()).finish();
    let state = Object::new()
        .raw("drives", &format!("[{}]", drives.join(",")))
        .raw("pools", &format!("[{}]", pools.join(",")))
        .raw(
            "root_partition",
            &Object::new().num("size_in_bytes", root.map_or(0, |r| r.total)).num("available_in_bytes", avail).finish(),
        )
        .finish();
    resource(&config, &state)
}

pub fn put_storage(api: &mut Api, call: &mut Call) -> Reply {
    let current = Object::new().str("scrub_schedule", &api.engine.scrub_schedule()).finish();
    if let Err(r) = check_if_match(call, &current, "configuration") {
        return r;
    }
    let c = match put_config(call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match api.engine.storage_put(&c) {
        Ok(()) => {
            api.engine.audit.record(call.peer, "storage.update", "");
            sync("{}").into()
        }
        Err(e) => engine_error(e),
    }
}

/// A small JSON action body as an object.
fn action_body(call: &mut Call) -> Result<json::Object, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    match json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(400, "the body must be a JSON object").into()),
    }
}

pub fn delete_pool(api: &mut Api, call: &mut Call) -> Reply {
    let name = match action_body(call).and_then(|m| string_field(&m, "name")) {
        Ok(Some(n)) => n,
        Ok(None) => return error(400, "name is required").into(),
        Err(r) => return r,
    };
    match api.engine.delete_pool(&name) {
        Ok(()) => {
            api.engine.audit.record(call.peer, "storage.pool.delete", &name);
            sync("{}").into()
        }
        Err(e) => engine_error(e),
    }
}

pub fn import_key(api: &mut Api, call: &mut Call) -> Reply {
    let m = match action_body(call) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (name, key) = match (string_field(&m, "name"), string_field(&m, "encryption_key")) {
        (Ok(Some(n)), Ok(Some(k))) => (n, k),
        (Err(r), _) | (_, Err(r)) => return r,
        _ => return error(400, "name and encryption_key are required").into(),
    };
    match api.engine.import_pool_key(&name, &key) {
        Ok(()) => {
            api.engine.audit.record(call.peer, "storage.pool.key", &name);
            sync("{}").into()
        }
        Err(e) => engine_error(e),
    }
}

/// `:wipe-drive {"id", "secure_wipe"}`: checked now, done as an operation (202).
pub fn wipe_drive(api: &mut Api, call: &mut Call) -> Reply {
    let m = match action_body(call) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = only(&m, "wipe", &["id", "secure_wipe"]) {
        return r;
    }
    let id = match string_field(&m, "id") {
        Ok(Some(id)) => id,
        Ok(None) => return error(400, "id (the drive) is required").into(),
        Err(r) => return r,
    };
    let secure = match m.get("secure_wipe") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return error(400, "secure_wipe must be true or false").into(),
    };
    match api.engine.wipe_job(&id, secure) {
        Ok(op) => {
            api.engine.audit.record(call.peer, "storage.wipe", &id);
            super::plans::accepted(api, op)
        }
        Err(e) => engine_error(e),
    }
}
