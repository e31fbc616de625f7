//! The IncusOS surface (`/1.0`): its JSON envelope, index lists and the system endpoints
//! that share the engine with the Jidoteki surface (backup, restore, power).

use super::{Api, Call, Handled};
use crate::json::{self, Object};
use crate::server::Reply;
use crate::server::http::{Head, Response};

/// `{"type":"sync","status":"Success",...,"metadata":…}`; `metadata` must be JSON.
pub fn sync(metadata: &str) -> Response {
    let body = Object::new()
        .str("type", "sync")
        .str("status", "Success")
        .num("status_code", 200)
        .str("operation", "")
        .num("error_code", 0)
        .str("error", "")
        .raw("metadata", metadata)
        .finish();
    Response::json(200, body)
}

/// The error envelope; the HTTP status equals `error_code`.
pub fn error(code: u16, message: &str) -> Response {
    let body = Object::new()
        .str("type", "error")
        .str("status", "")
        .num("status_code", 0)
        .str("operation", "")
        .num("error_code", code)
        .str("error", message)
        .raw("metadata", "null")
        .finish();
    Response::json(code, body)
}

/// An engine refusal in the IncusOS envelope; only the machine's own failures are 500s.
pub fn engine_error(e: crate::engine::Error) -> Reply {
    use crate::engine::Error;
    match e {
        Error::NotFound(what) => error(404, &format!("{what} not found")),
        Error::Invalid(m) => error(400, &m),
        Error::Conflict(m) => error(409, &m),
        Error::Forbidden(m) => error(403, &m),
        Error::Busy(m) => error(503, &m),
        Error::Io(m) => {
            crate::log::warn(format_args!("{m}"));
            error(super::store_failure_status(&m), &m)
        }
    }
    .into()
}

/// IncusOS's own wording for the codes it uses without a specific message.
pub fn default_message(code: u16) -> &'static str {
    match code {
        401 => "unauthorized",
        403 => "not authorized",
        404 => "not found",
        405 => "method not allowed",
        409 => "already exists",
        501 => "not implemented",
        503 => "unavailable",
        _ => crate::server::http::reason(code),
    }
}

fn urls(paths: &[&str]) -> String {
    json::str_array(paths.iter().copied())
}

/// The IncusOS API list; a browser asking for HTML gets the dashboard instead.
pub fn root(_api: &mut Api, call: &mut Call) -> Handled {
    if call.head.accept().is_some_and(|a| a.contains("text/html")) {
        return Ok(super::dashboard::index());
    }
    Ok(sync(&urls(&["/1.0"])).into())
}

pub fn environment(api: &mut Api, _call: &mut Call) -> Handled {
    let e = api.engine.environment();
    let mut env = Object::new()
        .str("hostname", &e.hostname)
        .str("machine_id", &e.machine_id)
        .str("os_name", &e.os_name)
        .str("os_version", &e.os_version)
        // What boots next: an applied update records its version at once, so it is the
        // version file's (upstream always sends the field).
        .str("os_version_next", &e.os_version)
        .bool("system_is_ready", true);
    env = env.num("uptime", e.uptime);
    Ok(sync(&Object::new().raw("environment", &env.finish()).finish()).into())
}

/// Upstream's eight sections, in its order (the actions and the fallback listener are
/// served but not listed, as upstream does).
pub fn system_index(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(sync(&urls(&[
        "/1.0/system/kernel",
        "/1.0/system/logging",
        "/1.0/system/network",
        "/1.0/system/provider",
        "/1.0/system/resources",
        "/1.0/system/security",
        "/1.0/system/storage",
        "/1.0/system/update",
    ]))
    .into())
}

/// No worker is free to produce a download (see `crate::workers`).
fn busy() -> Reply {
    error(503, crate::server::stream::BUSY).header("Retry-After", "5").into()
}

pub fn system_backup(api: &mut Api, call: &mut Call) -> Handled {
    let Some(waker) = api.waker.clone() else { return Ok(error(503, "unavailable").into()) };
    let Ok((writer, rx)) = crate::server::stream::channel(waker) else { return Ok(busy()) };
    if let Err(e) = api.engine.stream_backup(writer, |w| w.finish()) {
        return Ok(error(500, &e).into());
    }
    api.engine.audit.record(&call.who(), "backup", "system");
    Ok(Response::streamed("application/gzip", rx)
        .header("Content-Disposition", "attachment; filename=\"backup.tar.gz\"")
        .into())
}

const SKIPPABLE: [&str; 3] = ["encryption-recovery-keys", "local-data-encryption-key", "network-macs"];

pub fn system_restore(api: &mut Api, call: &mut Call) -> Handled {
    // steward keeps none of the three skippable items (no LUKS, no ZFS keys, no MAC
    // pinning): each is accepted and has nothing to skip. Unknown items are refused.
    if let Some(skip) = crate::server::http::query_param(call.head.query(), "skip") {
        if let Some(bad) = skip.split(',').map(str::trim).find(|s| !s.is_empty() && !SKIPPABLE.contains(s)) {
            return Ok(error(400, &format!("unknown skip item {bad:?} (supported: {})", SKIPPABLE.join(", "))).into());
        }
    }
    let Some(archive) = call.raw.take().filter(|s| s.len > 0) else {
        return Ok(error(400, "the request body must be the backup archive").into());
    };
    api.engine.audit.record(&call.who(), "restore", "system");
    let plan = api.engine.restore_plan(&call.principal());
    let power = api.engine.board.power.clone();
    // IncusOS reboots after a restore; so does steward, by the board's power method.
    let busy = error(409, "a restore is already running");
    Ok(api.restore_in_background(plan, archive, busy, restore_answer, move || crate::engine::power::reboot_with(power)))
}

/// `{}` on success, the error envelope with the reason otherwise.
fn restore_answer(result: Result<(), &crate::engine::Error>) -> Response {
    use crate::engine::Error;
    match result {
        Ok(()) => sync("{}"),
        // A restore's own refusals are about the archive sent: 400, whatever their kind.
        Err(e @ (Error::NotFound(_) | Error::Conflict(_))) => error(400, &e.message()),
        Err(e) => engine_error(e.clone()).response,
    }
}

pub fn factory_reset(api: &mut Api, call: &mut Call) -> Handled {
    let body = call.body_bytes().map_err(crate::engine::Error::Io)?;
    let request = crate::engine::reset::parse(&body)?;
    api.engine.factory_reset(request)?;
    api.engine.audit.record(&call.who(), "factory-reset", "system");
    let what = api.engine.reboot();
    api.engine.audit.record(&call.who(), "reboot", what);
    Ok(sync("{}").into())
}

pub fn applications(api: &mut Api, _call: &mut Call) -> Handled {
    let mut names: Vec<String> =
        api.engine.board.applications.iter().map(|a| format!("/1.0/applications/{}", a.name)).collect();
    names.sort();
    Ok(sync(&json::str_array(names.iter().map(String::as_str))).into())
}

/// The `{name}` segment of `/1.0/applications/{name}[/:action]`, if the board has it.
fn app_of(api: &Api, call: &Call) -> Result<crate::board::Application, Reply> {
    api.engine.application(&call.param("name")).ok_or_else(|| error(404, "not found").into())
}

pub fn application(api: &mut Api, call: &mut Call) -> Handled {
    let app = app_of(api, call)?;
    let state = api.engine.app_state(&app);
    // Every field upstream's ApplicationState always sends: one board application is
    // primary (the first), its only version is the one installed.
    let primary = api.engine.board.applications.first().is_some_and(|a| a.name == app.name);
    let state = Object::new()
        .bool("is_primary", primary)
        .bool("initialized", true)
        .str("friendly_version", &state.version)
        .str("version", &state.version)
        .raw("available_versions", &json::str_array(Some(state.version.as_str()).filter(|v| !v.is_empty()).into_iter()))
        .finish();
    Ok(sync(&Object::new().raw("state", &state).raw("config", "{}").finish()).into())
}

/// `PUT /1.0/applications/{name}`: upstream's `ApplicationConfig` has no fields, so the one
/// config there is `{}`.
pub fn put_application(api: &mut Api, call: &mut Call) -> Handled {
    app_of(api, call)?;
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    use miniserde::json::Value;
    let Ok(Value::Object(body)) = miniserde::json::from_str::<Value>(&text) else {
        return Ok(error(400, "the body must be a JSON object with a config").into());
    };
    for (k, v) in body.iter() {
        match (k.as_str(), v) {
            ("state", _) => {}
            ("config", Value::Object(c)) if c.is_empty() => {}
            ("config", Value::Null) => {}
            ("config", _) => return Ok(error(400, "an application has no settings: config must be {}").into()),
            (k, _) => return Ok(error(400, &format!("unknown field {k:?}")).into()),
        }
    }
    Ok(sync("{}").into())
}

/// `:check-update`: an application is updated with the system (signed packages uploaded
/// to `/api/v1/admin/update`); there is no feed to ask, so the check is done at once.
pub fn app_check_update(api: &mut Api, call: &mut Call) -> Handled {
    app_of(api, call)?;
    Ok(sync("{}").into())
}

pub fn app_restart(api: &mut Api, call: &mut Call) -> Handled {
    let app = app_of(api, call)?;
    api.engine.restart_app(&app);
    api.engine.audit.record(&call.who(), "application.restart", &app.name);
    Ok(sync("{}").into())
}

/// A small optional JSON body (`{"complete":true}`); an empty one means the defaults.
fn small_json(call: &mut Call) -> Result<Option<miniserde::json::Object>, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    match miniserde::json::from_str::<miniserde::json::Value>(&text) {
        Ok(miniserde::json::Value::Object(map)) => Ok(Some(map)),
        _ => Err(error(400, "the body is not a JSON object").into()),
    }
}

pub fn app_backup(api: &mut Api, call: &mut Call) -> Handled {
    let app = app_of(api, call)?;
    let complete = match small_json(call) {
        Ok(None) => false,
        Ok(Some(map)) => match map.get("complete") {
            None => false,
            Some(miniserde::json::Value::Bool(b)) => *b,
            Some(_) => return Ok(error(400, "complete must be true or false").into()),
        },
        Err(r) => return Err(r.into()),
    };
    let Some(waker) = api.waker.clone() else { return Ok(error(503, "unavailable").into()) };
    let Ok((writer, rx)) = crate::server::stream::channel(waker) else { return Ok(busy()) };
    if let Err(e) = api.engine.stream_app_backup(&app, complete, writer, |w| w.finish()) {
        return Ok(error(500, &e).into());
    }
    api.engine.audit.record(&call.who(), "backup", &app.name);
    Ok(Response::streamed("application/gzip", rx)
        .header("Content-Disposition", format!("attachment; filename=\"{}.tar.gz\"", app.name))
        .into())
}

pub fn app_restore(api: &mut Api, call: &mut Call) -> Handled {
    let app = app_of(api, call)?;
    let Some(archive) = call.raw.take().filter(|s| s.len > 0) else {
        return Ok(error(400, "the request body must be the backup archive").into());
    };
    api.engine.audit.record(&call.who(), "restore", &app.name);
    let plan = api.engine.app_restore_plan(&app);
    let busy = error(409, "a restore is already running");
    Ok(api.restore_in_background(plan, archive, busy, restore_answer, move || {
        crate::engine::apps::restart(app);
    }))
}

pub fn app_reset(api: &mut Api, call: &mut Call) -> Handled {
    let app = app_of(api, call)?;
    api.engine.reset_app(&app)?;
    api.engine.audit.record(&call.who(), "factory-reset", &app.name);
    Ok(sync("{}").into())
}

pub fn reboot(api: &mut Api, call: &mut Call) -> Handled {
    if let Err(why) = api.engine.power_ready() {
        return Ok(error(500, &why).into());
    }
    let what = api.engine.reboot();
    api.engine.audit.record(&call.who(), "reboot", what);
    Ok(sync("{}").into())
}

pub fn poweroff(api: &mut Api, call: &mut Call) -> Handled {
    if let Err(why) = api.engine.power_ready() {
        return Ok(error(500, &why).into());
    }
    let what = api.engine.poweroff();
    api.engine.audit.record(&call.who(), "poweroff", what);
    Ok(sync("{}").into())
}

/// The path prefix a client reached the IncusOS surface under: `/os` when it asked for
/// `/os/1.0/…` itself, or what an Incus proxy says it took off (`X-IncusOS-Proxy`, a plain
/// path). IncusOS prefixes the URLs it returns with it, so the client can follow them.
fn url_prefix(head: &Head) -> Option<&str> {
    let prefix = head.incusos_proxy().unwrap_or(head.stripped_prefix());
    let plain = prefix.starts_with('/')
        && prefix.len() <= 64
        && prefix[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    (plain && prefix.len() > 1).then(|| prefix.trim_end_matches('/'))
}

/// Prefixes the `/1.0/…` URLs of an answer (its JSON body and Location) with `url_prefix`.
pub fn prefix_urls(head: &Head, response: &mut Response) {
    let Some(prefix) = url_prefix(head) else { return };
    if response.content_type == "application/json" && response.stream.is_none() {
        if let Ok(text) = std::str::from_utf8(&response.body) {
            if text.contains("\"/1.0") {
                response.body = text.replace("\"/1.0", &format!("\"{prefix}/1.0")).into_bytes();
            }
        }
    }
    for (name, value) in &mut response.headers {
        if name.eq_ignore_ascii_case("location") && value.starts_with("/1.0") {
            *value = format!("{prefix}{value}").into();
        }
    }
}
