//! Backup records in the container-backups model (`/v1/containers/{id}/backups...`), with
//! the board's applications (and `steward` for its own state) in the role of containers:
//! records with their target, state and events, restore and delete as 202 job descriptors
//! (`/v1/jobs/{id}` to poll), and one log per backup or restore run. Destinations appear as
//! integrations with their credentials redacted.

use miniserde::json::Value;

use super::{Api, Call, Handled};
use sha2::{Digest, Sha256};

use crate::engine::Error;
use crate::engine::keys::Cap;
use crate::engine::planrun::{JIDOTEKI_PLAN, STATE_CONTAINER};
use crate::hex::to_hex;
use crate::json::Object;
use crate::server::Reply;
use crate::server::http::Response;
use crate::store::oplog::{self, Kind, Operation, Selector, Status};
use crate::time::rfc3339_ms;

/// Cycle's zero time: what its API sends for an event that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn when(ms: i64) -> String {
    if ms == 0 { ZERO_TIME.to_owned() } else { rfc3339_ms(ms) }
}

/// The platform's error envelope, `{"error":{…},"data":null}`, with the code its spec gives
/// the status.
pub fn error(status: u16, title: &str) -> Response {
    let code = match status {
        400 | 417 => "400.invalid-syntax",
        401 => "401.auth-invalid",
        403 => "403.permissions",
        404 => "404.uri",
        405 => "403.not-allowed",
        409 => "409.duplicate-found",
        413 => "422.max-exceeded",
        415 => "415.invalid-content-type",
        429 => "429.rate-limiting",
        503 => "503.not-ready",
        504 => "504.not-available",
        _ => "500.unknown",
    };
    coded(status, code, title, None)
}

fn coded(status: u16, code: &str, title: &str, extra: Option<String>) -> Response {
    let mut inner = Object::new().num("status", status).str("code", code).str("title", title);
    if let Some(extra) = extra {
        inner = inner.raw("extra", &extra);
    }
    Response::json(status, Object::new().raw("error", &inner.finish()).raw("data", "null").finish())
}

/// A key that is valid but lacks `cap`: 403 naming the capability as Cycle's platform does.
pub fn lacking(cap: Cap) -> Response {
    let name = match cap {
        Cap::BackupsView => "containers-backups-view",
        Cap::BackupsManage => "containers-backups-manage",
        other => other.name(),
    };
    let extra = Object::new().str("capability", name).finish();
    coded(403, "403.permissions", &format!("this key lacks the capability {name}"), Some(extra))
}

/// A 404 for the resource kind the spec has a code for.
fn missing(what: &str) -> Response {
    let code = match what {
        "container" => "404.container",
        "backup" => "404.container.backup",
        "job" => "404.job",
        "instance" => "404.instance",
        _ => "404.uri",
    };
    coded(404, code, &format!("{what} not found"), None)
}

pub fn engine_error(e: Error) -> Reply {
    match e {
        Error::NotFound(what) => missing(what),
        Error::Invalid(m) => error(400, &m),
        Error::Conflict(m) => error(409, &m),
        Error::Forbidden(m) => error(403, &m),
        Error::Busy(m) => error(503, &m),
        Error::Io(m) => error(super::store_failure_status(&m), &m),
    }
    .into()
}

/// A 24-hex id (Cycle's `ID`) for a name steward keeps in another form.
fn object_id(kind: &str, name: &str) -> String {
    let digest = Sha256::new().chain_update(kind).chain_update([0]).chain_update(name).finalize();
    to_hex(&digest[..12])
}

/// The appliance's id, as a 24-hex `ID`: the start of its machine id (only that file is
/// read), or one made from whatever the file holds.
fn hub_id(api: &Api) -> String {
    let id = api.engine.machine_id().to_ascii_lowercase();
    match id.get(..24) {
        Some(start) if start.bytes().all(|b| b.is_ascii_hexdigit()) => start.to_owned(),
        _ => object_id("hub", &id),
    }
}

/// The integration a plan's destination is shown as.
fn integration_id(plan_id: &str) -> String {
    object_id("integration", plan_id)
}

/// The container named in the path: an application of the board, or steward itself.
fn container(api: &Api, call: &Call) -> Result<String, Reply> {
    let name = call.param("container");
    if name == STATE_CONTAINER || api.engine.application(&name).is_some() {
        Ok(name)
    } else {
        Err(missing("container").into())
    }
}

/// The container and the backup record the path names.
fn container_record(api: &Api, call: &Call) -> Result<(String, Operation), Reply> {
    let container = container(api, call)?;
    let op = record(api, call, &container)?;
    Ok((container, op))
}

/// The backup record named in the path, if it holds that container.
fn record(api: &Api, call: &Call, container: &str) -> Result<Operation, Reply> {
    oplog::parse_snapshot_id(&call.param("backup"))
        .and_then(|id| api.engine.plans.log().get(id))
        .filter(|op| {
            op.kind == Kind::Backup
                && op.plan_id != JIDOTEKI_PLAN
                && op.artifact.as_ref().is_none_or(|a| a.containers.iter().any(|c| c == container))
        })
        .filter(|op| op.artifact.is_some() || !op.status.finished())
        .ok_or_else(|| missing("backup").into())
}

fn record_json(api: &Api, op: &Operation, container: &str, hub: &str) -> String {
    let (current, changed) = match (&op.artifact, op.status) {
        (_, Status::Pending | Status::InProgress) => ("saving", op.start_ms),
        (Some(a), _) if a.deleted_ms != 0 => ("deleted", a.deleted_ms),
        (Some(_), _) if api.engine.plans.deleting.contains_key(&op.id) => ("deleting", op.end_ms),
        _ => ("live", op.end_ms),
    };
    let mut state = Object::new().str("current", current).str("changed", &when(changed));
    if op.status == Status::Warning {
        state =
            state.raw("error", &Object::new().str("message", &op.message).str("time", &rfc3339_ms(op.end_ms)).finish());
    }
    let a = op.artifact.clone().unwrap_or_default();
    let file = a.path.rsplit('/').next().unwrap_or("").to_owned();
    let target = Object::new()
        .str("integration_id", &integration_id(&op.plan_id))
        .str("path", &a.path)
        .str("file_id", &file)
        .num("size", a.size)
        .str("sha256", &a.sha256)
        .finish();
    let events = Object::new()
        .str("created", &when(op.start_ms))
        .str("updated", &when(op.end_ms.max(op.start_ms)))
        .str("deleted", &when(a.deleted_ms));
    Object::new()
        .str("id", &oplog::snapshot_id(op.id))
        .str("hub_id", hub)
        .str("container_id", container)
        .str("instance_id", hub)
        .str("plan_id", &op.plan_id)
        .raw("target", &target)
        .raw("state", &state.finish())
        .raw("events", &events.finish())
        .finish()
}

/// Each destination once, as an integration; credentials are never sent back.
fn integrations(api: &Api, plan_ids: &[String], hub: &str) -> String {
    let mut all = Object::new();
    for id in plan_ids {
        let Some(plan) = api.engine.plans.plan(id) else { continue };
        let mut auth = Object::new();
        for (k, _) in &plan.auth {
            auth = auth.str(k, "[redacted]");
        }
        let created = when(plan.created_ms);
        let id = integration_id(&plan.id);
        let extra = Object::new().str("path", &plan.destination).str("plan_id", &plan.id).finish();
        let events = Object::new().str("created", &created).str("updated", &created).str("deleted", ZERO_TIME);
        let integration = Object::new()
            .str("id", &id)
            .str("name", &format!("{} destination of plan {}", plan.vendor, plan.id))
            .str("vendor", &plan.vendor)
            .str("identifier", if plan.vendor == "nfs" { "nfs-share" } else { "local-disk" })
            .raw("auth", &auth.finish())
            .raw("extra", &extra)
            .raw("creator", &Object::new().str("id", hub).str("type", "platform").finish())
            .str("hub_id", hub)
            .raw("state", &Object::new().str("current", "live").str("changed", &created).finish())
            .raw("events", &events.finish())
            .finish();
        all = all.raw(&id, &integration);
    }
    Object::new().raw("integrations", &all.finish()).finish()
}

pub fn list(api: &mut Api, call: &mut Call) -> Handled {
    let container = container(api, call)?;
    let hub = hub_id(api);
    let ops: Vec<Operation> = {
        let log = api.engine.plans.log();
        // The Jidoteki backup is the appliance's one downloadable archive (GET /backup), not
        // a container backup an integration keeps: it is in the history, not in this list.
        log.backups(None).into_iter().filter_map(|id| log.get(id)).filter(|op| op.plan_id != JIDOTEKI_PLAN).collect()
    };
    let mut plans: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for op in ops.iter().rev() {
        let holds = match &op.artifact {
            Some(a) => a.containers.iter().any(|c| *c == container),
            // Still saving: the plan says what it will hold.
            None if !op.status.finished() => api
                .engine
                .plans
                .plan(&op.plan_id)
                .is_some_and(|p| (container == STATE_CONTAINER && p.state) || p.applications.contains(&container)),
            None => false,
        };
        if !holds {
            continue;
        }
        if !plans.contains(&op.plan_id) {
            plans.push(op.plan_id.clone());
        }
        items.push(record_json(api, op, &container, &hub));
    }
    let body = Object::new()
        .raw("data", &format!("[{}]", items.join(",")))
        .raw("includes", &integrations(api, &plans, &hub))
        .finish();
    Ok(Response::json(200, body).into())
}

pub fn show(api: &mut Api, call: &mut Call) -> Handled {
    let (container, op) = container_record(api, call)?;
    let hub = hub_id(api);
    let body = Object::new()
        .raw("data", &record_json(api, &op, &container, &hub))
        .raw("includes", &integrations(api, std::slice::from_ref(&op.plan_id), &hub))
        .finish();
    Ok(Response::json(200, body).into())
}

/// A restore or delete job as Cycle's `Job` and its one task. A job is an operation in the
/// history: its id is the operation's in 24-hex, its task's the same with a leading `1`.
struct JobView<'a> {
    op: &'a Operation,
    action: &'static str,
    hub: String,
}

impl JobView<'_> {
    fn of<'o>(api: &Api, op: &'o Operation) -> JobView<'o> {
        let action = if op.kind == Kind::Restore { "restore" } else { "delete" };
        JobView { op, action, hub: hub_id(api) }
    }

    fn id(&self) -> String {
        oplog::snapshot_id(self.op.id)
    }

    fn caption(&self) -> &'static str {
        if self.op.kind == Kind::Restore { "Restore backup" } else { "Delete backup" }
    }

    fn header(&self) -> String {
        format!("container.backups.{}", self.action)
    }

    /// The steps this kind goes through, with their times once known.
    fn steps(&self) -> String {
        let planned: &[&str] = match self.op.kind {
            Kind::Restore => &["Verifying the backup", "Restoring"],
            _ => &["Deleting the backup"],
        };
        let steps: Vec<String> = planned
            .iter()
            .map(|caption| {
                let done = self.op.steps.iter().find(|s| s.caption == *caption);
                Object::new()
                    .str("caption", caption)
                    .str("description", "")
                    .str("started", &when(done.map_or(0, |d| d.started_ms)))
                    .str("completed", &when(done.map_or(0, |d| d.completed_ms)))
                    .finish()
            })
            .collect();
        format!("[{}]", steps.join(","))
    }

    fn input(&self) -> String {
        let op = self.op;
        let backup = op.snapshot.or(op.forgotten.first().copied()).map(oplog::snapshot_id).unwrap_or_default();
        Object::new().str("backup_id", &backup).str("instance_id", &self.hub).finish()
    }

    fn failed(&self) -> bool {
        matches!(self.op.status, Status::Error | Status::SystemCancelled | Status::UserCancelled)
    }

    fn error(&self) -> String {
        if self.failed() { Object::new().str("message", &self.op.message).finish() } else { "null".to_owned() }
    }

    fn events(&self) -> String {
        let started = self.op.steps.first().map_or(0, |s| s.started_ms);
        Object::new()
            .str("queued", &when(self.op.start_ms))
            .str("started", &when(started))
            .str("completed", &when(self.op.end_ms))
            .finish()
    }

    fn changed(&self) -> String {
        when(self.op.end_ms.max(self.op.start_ms))
    }

    /// What `POST …/tasks` and `DELETE` answer: the action and the job as queued.
    fn descriptor(&self) -> String {
        let task = Object::new()
            .str("caption", self.caption())
            .str("header", &self.header())
            .raw("steps", &self.steps())
            .raw("input", &self.input())
            .finish();
        let job = Object::new()
            .str("id", &self.id())
            .bool("accepted", true)
            .str("queue", "backups")
            .str("schedule", &when(self.op.start_ms))
            .raw("parallel", &Object::new().raw("sub_queue", "null").bool("tasks", false).finish())
            .raw("tasks", &format!("[{task}]"))
            .finish();
        Object::new().str("action", self.action).raw("job", &job).finish()
    }

    /// What `GET /v1/jobs/{id}` answers.
    fn job(&self) -> String {
        let (job_state, task_state) = match self.op.status {
            Status::Pending => ("queued", "pending"),
            Status::InProgress => ("running", "running"),
            Status::Success | Status::Warning => ("completed", "completed"),
            _ => ("error", "error"),
        };
        let task = Object::new()
            .str("id", &format!("1{:023x}", self.op.id))
            .str("caption", self.caption())
            .str("header", &self.header())
            .raw("events", &self.events())
            .raw("error", &self.error())
            .raw("steps", &self.steps())
            .raw("state", &Object::new().str("current", task_state).str("changed", &self.changed()).finish())
            .raw("input", &self.input())
            .raw("output", "null")
            .finish();
        let state = Object::new()
            .str("current", job_state)
            .str("changed", &self.changed())
            .raw("error", &self.error())
            .finish();
        let hash = Sha256::new().chain_update(self.header()).chain_update(self.input()).finalize();
        Object::new()
            .str("id", &self.id())
            .str("hub_id", &self.hub)
            .str("queue", "backups")
            .str("caption", self.caption())
            .raw("events", &self.events())
            .str("schedule", &when(self.op.start_ms))
            // The history keeps an operation for a year (fewer when it is long).
            .str("expires", &when(self.op.start_ms + crate::engine::planrun::KEEP_MS))
            .raw("tasks", &format!("[{task}]"))
            .str("hash", &to_hex(&hash))
            .bool("limit_duplicates", false)
            .raw("creator", &Object::new().str("id", &self.hub).str("type", "platform").finish())
            .raw("state", &state)
            .finish()
    }
}

fn descriptor(api: &Api, op_id: u64) -> Reply {
    let Some(op) = api.engine.plans.log().get(op_id) else { return error(500, "the job was not recorded").into() };
    Response::json(202, Object::new().raw("data", &JobView::of(api, &op).descriptor()).finish()).into()
}

/// `POST .../backups/{id}/tasks {"action":"restore","contents":{"instance_id":…}}`.
pub fn task(api: &mut Api, call: &mut Call) -> Handled {
    let (_, op) = container_record(api, call)?;
    let text = match call.body_text() {
        Ok(t) => t,
        Err(m) => return Ok(error(400, m).into()),
    };
    let Ok(Value::Object(body)) = miniserde::json::from_str::<Value>(&text) else {
        return Ok(error(400, "the body must be a JSON object with action and contents").into());
    };
    match body.get("action") {
        Some(Value::String(a)) if a == "restore" => {}
        Some(Value::String(a)) => {
            return Ok(error(400, &format!("unknown action {a:?}: the one action is \"restore\"")).into());
        }
        _ => return Ok(error(400, "action is required").into()),
    }
    let hub = hub_id(api);
    match body.get("contents") {
        None | Some(Value::Null) => {}
        Some(Value::Object(c)) => match c.get("instance_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(i)) if *i == hub => {}
            Some(_) => return Ok(missing("instance").into()),
        },
        Some(_) => return Ok(error(400, "contents must be an object").into()),
    }
    let job = api.engine.backup_restore_job(op.id, &call.principal())?;
    api.engine.audit.record(&call.who(), "restore", &oplog::snapshot_id(op.id));
    Ok(descriptor(api, job))
}

pub fn delete(api: &mut Api, call: &mut Call) -> Handled {
    let (_, op) = container_record(api, call)?;
    let job = api.engine.backup_delete_job(op.id)?;
    api.engine.audit.record(&call.who(), "backup.delete", &oplog::snapshot_id(op.id));
    Ok(descriptor(api, job))
}

/// One log per backup or restore run of this backup.
pub fn logs(api: &mut Api, call: &mut Call) -> Handled {
    let (container, op) = container_record(api, call)?;
    let hub = hub_id(api);
    let runs: Vec<Operation> = {
        let log = api.engine.plans.log();
        log.select(&Selector { snapshot: Some(op.id), ..Default::default() }, None)
            .into_iter()
            .filter_map(|id| log.get(id))
            .filter(|r| matches!(r.kind, Kind::Backup | Kind::Restore))
            .collect()
    };
    let mut items = Vec::new();
    for run in runs {
        let text =
            std::fs::read(crate::engine::planrun::log_path(api.engine.plans.logs_dir(), run.id)).unwrap_or_default();
        let mut o = Object::new()
            .str("id", &oplog::snapshot_id(run.id))
            .str("container_id", &container)
            .str("instance_id", &hub)
            .str("backup_id", &oplog::snapshot_id(op.id))
            .str("hub_id", &hub)
            .str("type", if run.kind == Kind::Restore { "restore" } else { "backup" })
            .str("status", &run.status.wire()[7..])
            .str("log", &String::from_utf8_lossy(&text));
        if matches!(run.status, Status::Error | Status::SystemCancelled | Status::UserCancelled) {
            let kind = match run.status {
                Status::Error => "failed",
                _ => "cancelled",
            };
            o = o.raw("error", &Object::new().str("message", &run.message).str("message_internal", kind).finish());
        }
        let events = Object::new()
            .str("created", &when(run.start_ms))
            .str("updated", &when(run.end_ms.max(run.start_ms)))
            .str("deleted", ZERO_TIME);
        items.push(o.raw("events", &events.finish()).finish());
    }
    Ok(Response::json(200, Object::new().raw("data", &format!("[{}]", items.join(","))).finish()).into())
}

/// `GET /v1/jobs/{id}`: a restore or delete job's progress.
pub fn job(api: &mut Api, call: &mut Call) -> Handled {
    let op = oplog::parse_snapshot_id(&call.param("job"))
        .and_then(|id| api.engine.plans.log().get(id))
        .filter(|op| matches!(op.kind, Kind::Restore | Kind::Forget))
        .ok_or_else(|| Reply::from(missing("job")))?;
    Ok(Response::json(200, Object::new().raw("data", &JobView::of(api, &op).job()).finish()).into())
}
