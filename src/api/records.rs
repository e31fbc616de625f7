//! Backup records in the container-backups model (`/v1/containers/{id}/backups...`), with
//! the board's applications (and `steward` for its own state) in the role of containers:
//! records with their target, state and events, restore and delete as 202 job descriptors
//! (`/v1/jobs/{id}` to poll), and one log per backup or restore run. Destinations appear as
//! integrations with their credentials redacted.

use miniserde::json::Value;

use super::{Api, Call, Handled};
use crate::engine::Error;
use crate::engine::planrun::{JIDOTEKI_PLAN, STATE_CONTAINER};
use crate::json::Object;
use crate::server::Reply;
use crate::server::http::Response;
use crate::store::oplog::{self, Kind, Operation, Selector, Status};
use crate::time::rfc3339_ms;

/// The platform's general error response.
pub fn error(status: u16, title: &str) -> Response {
    let code = match status {
        400 => "400.invalid_input",
        401 | 403 => "401.auth_invalid",
        404 => "404.not_found",
        405 => "405.method_not_allowed",
        409 => "409.conflict",
        413 => "413.too_large",
        _ => "500.unknown",
    };
    let inner = Object::new().num("status", status).str("code", code).str("title", title).finish();
    Response::json(status, Object::new().raw("error", &inner).finish())
}

pub fn engine_error(e: Error) -> Reply {
    match e {
        Error::NotFound(what) => error(404, &format!("{what} not found")),
        Error::Invalid(m) => error(400, &m),
        Error::Conflict(m) => error(409, &m),
        Error::Forbidden(m) => error(403, &m),
        Error::Busy(m) => error(503, &m),
        Error::Io(m) => error(super::store_failure_status(&m), &m),
    }
    .into()
}

/// The appliance's id: its machine id (only that file is read, not the whole environment).
fn hub_id(api: &Api) -> String {
    let id =
        api.engine.root.read_limited("/etc/machine-id", 4096).map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    match id {
        Ok(id) if !id.is_empty() => id,
        _ => "local".to_owned(),
    }
}

/// The container named in the path: an application of the board, or steward itself.
fn container(api: &Api, call: &Call) -> Result<String, Reply> {
    let name = call.param("container");
    if name == STATE_CONTAINER || api.engine.application(&name).is_some() {
        Ok(name)
    } else {
        Err(error(404, "container not found").into())
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
        .ok_or_else(|| error(404, "backup not found").into())
}

fn record_json(api: &Api, op: &Operation, container: &str, hub: &str) -> String {
    let (current, changed) = match (&op.artifact, op.status) {
        (_, Status::Pending | Status::InProgress) => ("saving", op.start_ms),
        (Some(a), _) if a.deleted_ms != 0 => ("deleted", a.deleted_ms),
        (Some(_), _) if api.engine.plans.deleting.contains_key(&op.id) => ("deleting", op.end_ms),
        _ => ("live", op.end_ms),
    };
    let mut state = Object::new().str("current", current).str("changed", &rfc3339_ms(changed));
    if op.status == Status::Warning {
        state =
            state.raw("error", &Object::new().str("message", &op.message).str("time", &rfc3339_ms(op.end_ms)).finish());
    }
    let a = op.artifact.clone().unwrap_or_default();
    let file = a.path.rsplit('/').next().unwrap_or("").to_owned();
    let target = Object::new()
        .str("integration_id", &op.plan_id)
        .str("path", &a.path)
        .str("file_id", &file)
        .num("size", a.size)
        .str("sha256", &a.sha256)
        .finish();
    let mut events =
        Object::new().str("created", &rfc3339_ms(op.start_ms)).str("updated", &rfc3339_ms(op.end_ms.max(op.start_ms)));
    if a.deleted_ms != 0 {
        events = events.str("deleted", &rfc3339_ms(a.deleted_ms));
    }
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
        let created = rfc3339_ms(plan.created_ms);
        let integration = Object::new()
            .str("id", &plan.id)
            .str("name", &format!("{} destination of plan {}", plan.vendor, plan.id))
            .str("vendor", &plan.vendor)
            .str("identifier", if plan.vendor == "nfs" { "nfs-share" } else { "local-disk" })
            .raw("auth", &auth.finish())
            .raw("extra", &Object::new().str("path", &plan.destination).finish())
            .raw("creator", &Object::new().str("id", hub).str("type", "account").finish())
            .str("hub_id", hub)
            .raw("state", &Object::new().str("current", "live").str("changed", &created).finish())
            .raw("events", &Object::new().str("created", &created).str("updated", &created).finish())
            .finish();
        all = all.raw(id, &integration);
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

/// The steps a job of this kind goes through, with their times once known.
fn job_json(api: &Api, op: &Operation, action: &str) -> String {
    let planned: &[&str] = match op.kind {
        Kind::Restore => &["Verifying the backup", "Restoring"],
        Kind::Forget => &["Deleting the backup"],
        _ => &["Archiving"],
    };
    let mut steps = Vec::new();
    for caption in planned {
        let mut s = Object::new().str("caption", caption).str("description", "");
        if let Some(done) = op.steps.iter().find(|s| s.caption == *caption) {
            s = s.str("started", &rfc3339_ms(done.started_ms));
            if done.completed_ms != 0 {
                s = s.str("completed", &rfc3339_ms(done.completed_ms));
            }
        }
        steps.push(s.finish());
    }
    let input = Object::new()
        .str("backup_id", &op.snapshot.or(op.forgotten.first().copied()).map(oplog::snapshot_id).unwrap_or_default())
        .str("instance_id", &hub_id(api))
        .finish();
    let task = Object::new()
        .str("caption", if op.kind == Kind::Restore { "Restore backup" } else { "Delete backup" })
        .str("header", &format!("container.backups.{action}"))
        .raw("steps", &format!("[{}]", steps.join(",")))
        .raw("input", &input)
        .finish();
    let current = match op.status {
        Status::Pending => "queued",
        Status::InProgress => "running",
        Status::Success | Status::Warning => "completed",
        _ => "error",
    };
    let mut state = Object::new().str("current", current).str("changed", &rfc3339_ms(op.end_ms.max(op.start_ms)));
    if matches!(op.status, Status::Error | Status::SystemCancelled | Status::UserCancelled) {
        state = state.raw("error", &Object::new().str("message", &op.message).finish());
    }
    let mut events = Object::new().str("queued", &rfc3339_ms(op.start_ms));
    if let Some(first) = op.steps.first() {
        events = events.str("started", &rfc3339_ms(first.started_ms));
    }
    if op.end_ms != 0 {
        events = events.str("completed", &rfc3339_ms(op.end_ms));
    }
    Object::new()
        .str("id", &op.id.to_string())
        .bool("accepted", true)
        .str("queue", "backups")
        .str("schedule", &rfc3339_ms(op.start_ms))
        .raw("parallel", &Object::new().str("sub_queue", "").bool("tasks", false).finish())
        .raw("tasks", &format!("[{task}]"))
        .raw("state", &state.finish())
        .raw("events", &events.finish())
        .finish()
}

fn descriptor(api: &Api, op_id: u64, action: &str) -> Reply {
    let Some(op) = api.engine.plans.log().get(op_id) else { return error(500, "the job was not recorded").into() };
    let data = Object::new().str("action", action).raw("job", &job_json(api, &op, action)).finish();
    Response::json(202, Object::new().raw("data", &data).finish()).into()
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
            Some(_) => return Ok(error(404, "instance not found: this appliance is the only instance").into()),
        },
        Some(_) => return Ok(error(400, "contents must be an object").into()),
    }
    let job = api.engine.backup_restore_job(op.id, &call.principal())?;
    api.engine.audit.record(&call.who(), "restore", &oplog::snapshot_id(op.id));
    Ok(descriptor(api, job, "restore"))
}

pub fn delete(api: &mut Api, call: &mut Call) -> Handled {
    let (_, op) = container_record(api, call)?;
    let job = api.engine.backup_delete_job(op.id)?;
    api.engine.audit.record(&call.who(), "backup.delete", &oplog::snapshot_id(op.id));
    Ok(descriptor(api, job, "delete"))
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
            .str("created", &rfc3339_ms(run.start_ms))
            .str("updated", &rfc3339_ms(run.end_ms.max(run.start_ms)));
        items.push(o.raw("events", &events.finish()).finish());
    }
    Ok(Response::json(200, Object::new().raw("data", &format!("[{}]", items.join(","))).finish()).into())
}

/// `GET /v1/jobs/{id}`: a restore or delete job's progress.
pub fn job(api: &mut Api, call: &mut Call) -> Handled {
    let op = call
        .param("job")
        .parse::<u64>()
        .ok()
        .and_then(|id| api.engine.plans.log().get(id))
        .filter(|op| matches!(op.kind, Kind::Restore | Kind::Forget));
    Ok(match op {
        Some(op) => {
            let action = if op.kind == Kind::Restore { "restore" } else { "delete" };
            Response::json(200, Object::new().raw("data", &job_json(api, &op, action)).finish()).into()
        }
        None => error(404, "job not found").into(),
    })
}
