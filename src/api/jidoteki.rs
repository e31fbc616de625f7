//! The Jidoteki Admin API surface (`/api/v1/admin`): its bodies, status texts and headers.

use super::{Api, AuthState, Call, Handled, auth};
use crate::engine::backup::StartError as BackupStart;
use crate::engine::jobs::Kind;
use crate::engine::license::LicenseError;
use crate::engine::token::SetError;
use crate::engine::update::StartError;
use crate::engine::{Engine, Error};
use crate::json::{self, Object};
use crate::server::Reply;
use crate::server::form::{Form, FormError};
use crate::server::http::{Response, reason};
use crate::system::health::{human_size, mebibytes};

/// `{"Status":"404 Not Found"}`, plus `"Error-Message"` (body and header) when given.
pub fn status(code: u16, message: Option<&str>) -> Response {
    let mut body = Object::new().str("Status", &format!("{code} {}", reason(code)));
    if let Some(m) = message {
        body = body.str("Error-Message", m);
    }
    let response = Response::json(code, body.finish());
    match message {
        Some(m) if code >= 400 => response.header("Error-Message", m.to_owned()),
        _ => response,
    }
}

/// The 403 every failed authentication gets; with first-run configured it also says
/// whether first-run is still pending, as Jidoteki clients expect.
pub fn auth_error(engine: &Engine) -> Response {
    let mut body = Object::new().str("Status", "403 Forbidden").str("Error-Message", "Authentication error");
    if engine.board.first_run_words().is_some() {
        body = body.bool("First-Run", engine.tokens.first_run_pending());
    }
    Response::json(403, body.finish()).header("Error-Message", "Authentication error")
}

fn bad_request(message: &str) -> Reply {
    status(400, Some(message)).into()
}

/// The request's form, allowed to carry only `fields`: unknown fields get 400 with their
/// name, a broken form 400 with the parser's reason, and a body that is no form at all
/// `not_a_form` (each endpoint words that its own way).
fn checked_form(call: &mut Call, fields: &[&str], not_a_form: impl FnOnce() -> Reply) -> Result<Form, Reply> {
    let form = match std::mem::replace(&mut call.form, Err(FormError::NotAForm)) {
        Ok(form) => form,
        Err(FormError::NotAForm) => return Err(not_a_form()),
        Err(FormError::Malformed(m)) => return Err(bad_request(&m)),
    };
    match form.unknown_field(fields) {
        Some(name) => Err(bad_request(&format!("Unknown parameter: {name}"))),
        None => Ok(form),
    }
}

pub fn engine_error(e: Error) -> Reply {
    match e {
        Error::NotFound(_) => status(404, None).into(),
        Error::Invalid(m) => bad_request(&m),
        Error::Conflict(m) => status(409, Some(&m)).into(),
        Error::Forbidden(m) => status(403, Some(&m)).into(),
        Error::Busy(m) => status(503, Some(&m)).header("Retry-After", "5").into(),
        Error::Io(m) => {
            crate::log::warn(format_args!("{m}"));
            status(super::store_failure_status(&m), Some(&m)).into()
        }
    }
}

fn json_ok(body: String) -> Reply {
    Response::json(200, body).into()
}

pub fn setup(api: &mut Api, call: &mut Call) -> Handled {
    let authorized = match &call.auth {
        AuthState::Granted(p) => p.allows(crate::engine::keys::Cap::Admin),
        AuthState::Open => !api.engine.tokens.is_set(),
        AuthState::Pending => {
            let credential = call.form.as_ref().map(auth::from_form).unwrap_or(auth::Credential::Absent);
            matches!(api.check(&credential, call.head), auth::Verdict::Valid(p) if p.allows(crate::engine::keys::Cap::Admin))
                || !api.engine.tokens.is_set()
        }
    };
    if !authorized {
        return Ok(api.setup_refused(call.head, call.peer, call.now));
    }
    let form = checked_form(call, &["newtoken", "token", "hash"], || {
        bad_request("Expected multipart/form-data (or a urlencoded form) with the field newtoken")
    })?;
    let Some(new_token) = form.text("newtoken") else {
        return Ok(bad_request(crate::engine::token::TokenError::Length.message()));
    };
    Ok(match api.engine.tokens.set(new_token) {
        Ok(()) => {
            api.engine.audit.record(&call.who(), "token.update.success", call.head.path());
            status(200, None).into()
        }
        Err(SetError::Invalid(e)) => bad_request(e.message()),
        Err(SetError::Io(e)) => {
            // The machine failed, not the client: 507 for a full disk, 500 otherwise, with
            // the reason (the old token stays: it was replaced atomically or not at all).
            crate::log::warn(format_args!("storing the token failed: {e}"));
            let why = format!("Unable to store the new token: {e}");
            status(super::store_failure_status(&why), Some(&why)).into()
        }
    })
}

/// The one uploaded JSON file a settings-style POST carries, in the field `settings`.
fn settings_file(call: &mut Call) -> Result<Vec<u8>, Reply> {
    let mut form = checked_form(call, &["settings", "token", "hash"], || {
        bad_request("Expected multipart/form-data with the field settings")
    })?;
    match form.take("settings") {
        Some(field) if !field.data.is_empty() => Ok(field.data),
        _ => Err(bad_request("Missing parameter: settings")),
    }
}

fn accepted(endpoint: &str) -> Reply {
    let location = format!("/api/v1/admin/{endpoint}");
    let body = Object::new().str("Status", "202 Accepted").str("Location", &location).finish();
    Response::json(202, body).header("Location", location).into()
}

pub fn post_settings(api: &mut Api, call: &mut Call) -> Handled {
    let file = settings_file(call)?;
    let network = crate::engine::settings::parse_network(&file)?;
    api.engine.set_network(&network)?;
    let mode = if network.is_static() { "static" } else { "dhcp" };
    api.engine.audit.record(&call.who(), "settings.post", mode);
    Ok(accepted("settings"))
}

pub fn get_settings(api: &mut Api, _call: &mut Call) -> Handled {
    let doc = api.engine.network()?;
    Ok(json_ok(doc))
}

pub fn post_storage(api: &mut Api, call: &mut Call) -> Handled {
    let file = settings_file(call)?;
    let storage = crate::engine::settings::parse_storage(&file, &api.engine.board.storage.options)?;
    api.engine.set_storage(&storage)?;
    api.engine.audit.record(&call.who(), "storage.post", &storage.kind);
    Ok(accepted("storage"))
}

pub fn get_storage(api: &mut Api, _call: &mut Call) -> Handled {
    let doc = api.engine.storage()?;
    // The stored document is `{"storage":{...}}` (a JSON object: the engine checked); the
    // answer adds the options offered.
    let options = json::str_array(api.engine.board.storage.options.iter().map(String::as_str));
    let inner = doc.trim().strip_suffix('}').unwrap_or("{").trim_end();
    let sep = if inner.ends_with('{') { "" } else { "," };
    Ok(json_ok(format!("{inner}{sep}\"options\":{options}}}")))
}

/// Starts the update job from the head of `POST /update`, so the package streams into it:
/// one already running is refused (E1004) before a byte of the body is read.
pub fn begin_update(
    api: &mut Api,
) -> Result<(crate::engine::upload::Feed, crate::engine::update::PendingUpdate), Reply> {
    let waker = api.waker.clone();
    let on_room = Box::new(move || {
        if let Some(w) = &waker {
            w.wake();
        }
    });
    match api.engine.begin_update(on_room) {
        Ok(prepared) => Ok(prepared),
        Err(StartError::AlreadyRunning) => Err(update_error("The update process is already running", "E1004")),
        Err(StartError::Engine(e)) => Err(engine_error(e)),
    }
}

pub fn post_update(api: &mut Api, call: &mut Call) -> Handled {
    // Dropped on any early return below: a started job then sees the upload cut off.
    let Some(upload) = call.update.take() else {
        return Ok(update_error("Missing update package", "E1003"));
    };
    if upload.refused {
        return Ok(update_error("The update process is already running", "E1004"));
    }
    let feed = upload.feed;
    let form = checked_form(call, &["update", "token", "hash"], || {
        bad_request("Expected multipart/form-data with the field update")
    })?;
    let size = form.get("update").and_then(|f| f.streamed).unwrap_or(0);
    if size == 0 {
        feed.cancel("E1003", "Missing update package");
        return Ok(update_error("Missing update package", "E1003"));
    }
    feed.finish();
    api.engine.audit.record(&call.who(), "update.post", &size.to_string());
    Ok(accepted("update"))
}

/// 400 with the Jidoteki error code beside the message.
fn update_error(message: &str, code: &str) -> Reply {
    let body =
        Object::new().str("Status", "400 Bad Request").str("Error-Message", message).str("Error-Code", code).finish();
    Response::json(400, body).header("Error-Message", message.to_owned()).into()
}

/// `{"status":…,"percentage":…,"log":…}` (+ error fields), or `{"status":null,"log":null}`.
pub fn job_status(api: &Api, kind: Kind, with_percentage: bool) -> Reply {
    let Some(state) = api.engine.jobs.state(kind) else {
        return json_ok(r#"{"status":null,"log":null}"#.to_owned());
    };
    let mut body = Object::new().str("status", state.status.as_str());
    if with_percentage {
        body = body.num("percentage", state.percentage);
    }
    body = match api.engine.jobs.log_tail(kind, 10) {
        Some(log) => body.str("log", &log),
        None => body.raw("log", "null"),
    };
    if let Some(m) = &state.error_message {
        body = body.str("error-message", m);
    }
    if let Some(c) = &state.error_code {
        body = body.str("error-code", c);
    }
    json_ok(body.finish())
}

pub fn get_update(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(job_status(api, Kind::Update, true))
}

/// A job's whole log as text; 404 when the job never ran.
fn job_log(api: &Api, kind: Kind) -> Reply {
    match std::fs::read(api.engine.jobs.log_file(kind)) {
        Ok(text) => Response::new(200, "text/plain; charset=utf-8", text).header("Cache-Control", "no-cache").into(),
        Err(_) => status(404, None).into(),
    }
}

pub fn update_log(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(job_log(api, Kind::Update))
}

pub fn post_certs(api: &mut Api, call: &mut Call) -> Handled {
    let mut form = checked_form(call, &["public", "private", "ca", "token", "hash"], || {
        bad_request("Expected multipart/form-data with the fields public and private")
    })?;
    let mut take = |name: &str| form.take(name).map(|f| f.data).filter(|d| !d.is_empty());
    let (Some(public), Some(private)) = (take("public"), take("private")) else {
        return Ok(bad_request("Missing parameter: public and private are required"));
    };
    let ca = take("ca");
    Ok(match api.engine.start_certs(public, private, ca) {
        Ok(()) => {
            api.engine.audit.record(&call.who(), "certs.post", "");
            accepted("certs")
        }
        Err(_) => bad_request("A certificate update is already running"),
    })
}

pub fn get_certs(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(job_status(api, Kind::Certs, false))
}

/// No worker is free to produce a download (see `crate::workers`).
fn busy() -> Reply {
    status(503, Some(crate::server::stream::BUSY)).header("Retry-After", "5").into()
}

pub fn logs(api: &mut Api, call: &mut Call) -> Handled {
    let Some(waker) = api.waker.clone() else { return Ok(status(404, None).into()) };
    let Ok((writer, rx)) = crate::server::stream::channel(waker) else { return Ok(busy()) };
    api.engine.stream_logs(writer, |w| w.finish());
    api.engine.audit.record(&call.who(), "logs.get", "");
    Ok(Response::streamed("application/octet-stream", rx)
        .header("Content-Disposition", "attachment; filename=\"logs.tar.gz\"")
        .into())
}

pub fn debug(api: &mut Api, call: &mut Call) -> Handled {
    let Some(waker) = api.waker.clone() else { return Ok(status(404, None).into()) };
    let Ok((writer, rx)) = crate::server::stream::channel(waker) else { return Ok(busy()) };
    if let Err(e) = api.engine.stream_debug(writer, |w| w.finish()) {
        crate::log::warn(format_args!("{e}"));
        return Ok(bad_request("Unable to create the debug bundle"));
    }
    api.engine.audit.record(&call.who(), "debug.get", "");
    Ok(Response::streamed("application/octet-stream", rx)
        .header("Content-Disposition", "attachment; filename=\"debug-bundle.tar\"")
        .into())
}

pub fn post_backup(api: &mut Api, call: &mut Call) -> Handled {
    const INVALID: &str = "Missing or invalid option: action. Expected value 'START' or 'STOP'";
    let form = checked_form(call, &["action", "token", "hash"], || bad_request(INVALID))?;
    let action = form.text("action").unwrap_or("").to_ascii_uppercase();
    let result = match action.as_str() {
        "START" => match api.engine.start_backup() {
            Ok(()) => Ok(()),
            Err(BackupStart::AlreadyRunning) => Err(bad_request("A backup is already running")),
            Err(BackupStart::NoSpace(m)) => Err(bad_request(&m)),
            Err(BackupStart::Io(m)) => Err(engine_error(Error::Io(m))),
        },
        "STOP" => match api.engine.stop_backup() {
            true => Ok(()),
            false => Err(bad_request("There is no backup to stop or delete")),
        },
        _ => Err(bad_request(INVALID)),
    };
    Ok(match result {
        Ok(()) => {
            let (name, target) = if action == "START" { ("backup", "system") } else { ("backup.stop", "") };
            api.engine.audit.record(&call.who(), name, target);
            accepted("backup")
        }
        Err(reply) => reply,
    })
}

pub fn get_backup(api: &mut Api, _call: &mut Call) -> Handled {
    let Some(state) = api.engine.jobs.state(Kind::Backup) else { return Ok(status(404, None).into()) };
    let mut body = Object::new().str("status", state.status.as_str());
    if state.status == crate::engine::jobs::Status::Success {
        match api.engine.backup_result() {
            Some(done) => {
                body = body.display("filesize", human_size(done.filesize)).str("sha256", &done.sha256);
            }
            None => return Ok(status(404, None).into()),
        }
    }
    let response = Response::json(200, body.finish()).header("Cache-Control", "no-cache");
    Ok(response.into())
}

pub fn backup_download(api: &mut Api, call: &mut Call) -> Handled {
    let (Some(waker), Ok(file)) = (api.waker.clone(), std::fs::File::open(api.engine.backup_file())) else {
        return Ok(status(404, None).into());
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else { return Ok(status(404, None).into()) };
    let Ok((writer, rx)) = crate::server::stream::channel(waker) else { return Ok(busy()) };
    crate::server::stream::send_file(file, writer);
    api.engine.audit.record(&call.who(), "backup.download", "");
    Ok(Response::streamed_sized("application/x-tar", rx, len)
        .header("Content-Disposition", "attachment; filename=\"backup.tar\"")
        .into())
}

pub fn backup_restore(api: &mut Api, call: &mut Call) -> Handled {
    let mut form = checked_form(call, &["archive", "token", "hash"], || bad_request("Missing parameter: archive"))?;
    let Some(archive) = form.take("archive").and_then(|f| f.file).filter(|s| s.len > 0) else {
        return Ok(bad_request("Missing parameter: archive"));
    };
    api.engine.audit.record(&call.who(), "restore", "system");
    let plan = api.engine.restore_plan(&call.principal());
    let answer = |result: Result<(), &Error>| match result {
        Ok(()) => status(200, None),
        Err(Error::Forbidden(m)) => status(403, Some(m)),
        Err(Error::Io(m)) => status(500, Some(m)),
        Err(e) => status(400, Some(&e.message())),
    };
    Ok(api.restore_in_background(plan, archive, status(400, Some("A restore is already running")), answer, || {}))
}

pub fn backup_log(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(job_log(api, Kind::Backup))
}

pub fn reboot(api: &mut Api, call: &mut Call) -> Handled {
    if let Err(why) = api.engine.power_ready() {
        return Ok(status(500, Some(&why)).into());
    }
    let what = api.engine.reboot_after_backup();
    api.engine.audit.record(&call.who(), "reboot", what);
    Ok(Response::json(202, r#"{"Status":"202 Accepted"}"#).into())
}

pub fn post_license(api: &mut Api, call: &mut Call) -> Handled {
    let form = checked_form(call, &["license", "token", "hash"], || {
        status(404, Some("Expected multipart/form-data with the field license")).into()
    })?;
    // The API document answers 404 for a license file that is invalid or missing.
    let Some(file) = form.get("license").filter(|f| !f.data.is_empty()) else {
        return Ok(status(404, Some("Missing license file")).into());
    };
    Ok(match api.engine.set_license(&file.data) {
        Ok(json) => {
            api.engine.audit.record(&call.who(), "license.post", "");
            json_ok(json)
        }
        Err(LicenseError::Invalid(m)) => status(404, Some(m)).into(),
        // Storing it failed: the machine's fault (500, or 507 on a full disk), not the file's.
        Err(LicenseError::Store(e)) => return Err(e.into()),
    })
}

pub fn get_license(api: &mut Api, _call: &mut Call) -> Handled {
    let json = api.engine.license()?;
    Ok(json_ok(json))
}

pub fn version(api: &mut Api, _call: &mut Call) -> Handled {
    let v = api.engine.version()?;
    Ok(json_ok(Object::new().str("version", &v).finish()))
}

pub fn changelog(api: &mut Api, _call: &mut Call) -> Handled {
    let text = api.engine.changelog()?;
    Ok(Response::new(200, "text/plain; charset=utf-8", text).header("Cache-Control", "no-cache").into())
}

pub fn build(api: &mut Api, _call: &mut Call) -> Handled {
    let text = api.engine.build()?;
    Ok(Response::json(200, text).header("Cache-Control", "no-cache").into())
}

pub fn health(api: &mut Api, call: &mut Call) -> Handled {
    let (read_at, h) = match api.engine.health(call.now) {
        Ok(h) => h,
        // Jidoteki answers 404 when health figures are unavailable.
        Err(Error::Io(m)) => {
            crate::log::warn(format_args!("health: {m}"));
            return Ok(status(404, None).into());
        }
        Err(e) => return Err(e.into()),
    };
    // The figures change once per HEALTH_MAX_AGE: so does their rendering.
    let body = match &api.health_body {
        Some((at, body)) if *at == read_at => body.clone(),
        _ => {
            let body = render_health(h);
            api.health_body = Some((read_at, body.clone()));
            body
        }
    };
    Ok(Response::json(200, body).header("Cache-Control", "no-cache").into())
}

/// `GET /health`'s body: disk, memory and CPU as the Jidoteki document has them.
fn render_health(h: &crate::engine::info::Health) -> String {
    let [load1, load5, load15] = &h.cpu.load;
    Object::with_capacity(192)
        .object("disk", |o| {
            o.display("used", human_size(h.disk.used))
                .display("total", human_size(h.disk.total))
                .num("percentage", h.disk.percentage())
        })
        .object("memory", |o| {
            o.display("used", mebibytes(h.memory.used))
                .display("total", mebibytes(h.memory.total))
                .num("percentage", h.memory.percentage())
        })
        .object("cpu", |o| {
            o.num("num", h.cpu.num)
                .display("load", format_args!("{load1}, {load5}, {load15}"))
                .num("cpu5min", h.cpu.cpu5min())
        })
        .finish()
}

pub fn services(api: &mut Api, _call: &mut Call) -> Handled {
    let mut list = String::from("[");
    for (i, (name, running)) in api.engine.services().into_iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&Object::new().str(name, if running { "running" } else { "not running" }).finish());
    }
    list.push(']');
    Ok(json_ok(Object::new().raw("services", &list).finish()))
}

pub fn endpoints(api: &mut Api, _call: &mut Call) -> Handled {
    let mut paths = super::routes::top_level(super::routes::Surface::Jidoteki, |r| api.route_enabled(r));
    // The API's own description, as the Jidoteki list ends with it.
    paths.push("/docs".to_owned());
    Ok(json_ok(Object::new().raw("endpoints", &json::str_array(paths.iter().map(String::as_str))).finish()))
}
