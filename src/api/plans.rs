//! Backup plans and their operations as IncusOS-style resources: `/1.0/plans` (CRUD, with
//! ETag / If-Match), `:run` answering 202 with the queued operation, and `/1.0/operations`
//! to poll or cancel it. A plan's `state` is the per-plan summary a monitor polls.

use super::incus::{error, sync};
use super::{Api, Call, Handled};
use crate::engine::plans::Plan;
use crate::json::Object;
use crate::server::Reply;
use crate::server::http::{Response, query_param};
use crate::store::oplog::{self, Kind, Status};
use crate::time::rfc3339_ms;

fn etag(plan: &Plan) -> String {
    super::system::etag(&plan.to_json(true))
}

/// The monitoring summary: the last backup's outcome, the next run, what is kept.
fn plan_state(api: &Api, plan: &Plan) -> String {
    let runner = &api.engine.plans;
    let log = runner.log();
    let mut o = Object::new();
    match log.last_of(&plan.id, Kind::Backup).and_then(|id| log.get(id)) {
        Some(op) => {
            let mut last = Object::new()
                .str("operation_id", &op.id.to_string())
                .str("status", &op.status.wire()[7..])
                .str("started", &rfc3339_ms(op.start_ms));
            if op.end_ms != 0 {
                last = last.str("ended", &rfc3339_ms(op.end_ms)).num("duration_ms", op.end_ms - op.start_ms);
            }
            last = last.str("error", &op.message);
            if let Some(a) = &op.artifact {
                last = last.str("backup_id", &oplog::snapshot_id(op.id)).num("size", a.size);
            }
            o = o.raw("last_backup", &last.finish());
        }
        None => o = o.raw("last_backup", "null"),
    }
    let live: Vec<u64> = log
        .backups(Some(&plan.id))
        .into_iter()
        .filter_map(|id| log.get(id))
        .filter(|op| op.has_live_artifact())
        .map(|op| op.artifact.map_or(0, |a| a.size))
        .collect();
    drop(log);
    o = match runner.next_run_ms(plan) {
        Some(ms) => o.str("next_run", &rfc3339_ms(ms)),
        None => o.raw("next_run", "null"),
    };
    o.num("backups", live.len()).num("backups_size", live.iter().sum::<u64>()).finish()
}

fn plan_object(api: &Api, plan: &Plan) -> String {
    Object::new().raw("config", &plan.to_json(false)).raw("state", &plan_state(api, plan)).finish()
}

pub fn list(api: &mut Api, call: &mut Call) -> Handled {
    let recursion = query_param(call.head.query(), "recursion").is_some_and(|r| r == "1");
    let plans = &api.engine.plans.plans;
    let body = if recursion {
        format!("[{}]", plans.iter().map(|p| plan_object(api, p)).collect::<Vec<_>>().join(","))
    } else {
        let urls: Vec<String> = plans.iter().map(|p| format!("/1.0/plans/{}", p.id)).collect();
        crate::json::str_array(urls.iter().map(String::as_str))
    };
    Ok(sync(&body).into())
}

/// The body is the plan itself, or `{"config": plan}` as a GET returned it.
fn plan_text(call: &mut Call) -> Result<String, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    if let Ok(miniserde::json::Value::Object(mut m)) = miniserde::json::from_str::<miniserde::json::Value>(&text)
        && m.len() <= 2
        && m.contains_key("config")
        && m.keys().all(|k| k == "config" || k == "state")
        && let Some(config) = m.remove("config")
    {
        return Ok(miniserde::json::to_string(&config));
    }
    Ok(text)
}

pub fn create(api: &mut Api, call: &mut Call) -> Handled {
    let text = plan_text(call)?;
    let plan = api.engine.plan_put(&text, None, &call.principal())?;
    api.engine.audit.record(&call.who(), "plan.create", &plan.id);
    let body = plan_object(api, &plan);
    Ok(sync(&body).header("ETag", etag(&plan)).header("Location", format!("/1.0/plans/{}", plan.id)).into())
}

pub fn show(api: &mut Api, call: &mut Call) -> Handled {
    let id = call.param("id");
    Ok(match api.engine.plans.plan(&id) {
        Some(plan) => sync(&plan_object(api, plan)).header("ETag", etag(plan)).into(),
        None => error(404, "plan not found").into(),
    })
}

pub fn replace(api: &mut Api, call: &mut Call) -> Handled {
    let id = call.param("id");
    let Some(current) = api.engine.plans.plan(&id) else { return Ok(error(404, "plan not found").into()) };
    super::system::check_if_match(call, &current.to_json(true), "plan")?;
    let text = plan_text(call)?;
    let plan = api.engine.plan_put(&text, Some(&id), &call.principal())?;
    api.engine.audit.record(&call.who(), "plan.update", &plan.id);
    Ok(sync(&plan_object(api, &plan)).header("ETag", etag(&plan)).into())
}

pub fn delete(api: &mut Api, call: &mut Call) -> Handled {
    let id = call.param("id");
    api.engine.plan_delete(&id)?;
    api.engine.audit.record(&call.who(), "plan.delete", &id);
    Ok(sync("{}").into())
}

/// IncusOS's answer for background work: 202, `type: async`, the operation's URL.
pub fn accepted(api: &Api, op_id: u64) -> Reply {
    let raw = api.engine.plans.log().raw(op_id).unwrap_or_else(|_| "null".into());
    let body = Object::new()
        .str("type", "async")
        .str("status", "Operation created")
        .num("status_code", 100)
        .str("operation", &format!("/1.0/operations/{op_id}"))
        .num("error_code", 0)
        .str("error", "")
        .raw("metadata", &raw)
        .finish();
    Response::json(202, body).header("Location", format!("/1.0/operations/{op_id}")).into()
}

pub fn run(api: &mut Api, call: &mut Call) -> Handled {
    let id = call.param("id");
    let op = api.engine.plan_run(&id)?;
    api.engine.audit.record(&call.who(), "plan.run", &id);
    Ok(accepted(api, op))
}

fn op_id(call: &Call) -> Option<u64> {
    call.param("id").parse().ok()
}

pub fn operations(api: &mut Api, call: &mut Call) -> Handled {
    let sel = oplog::Selector {
        plan_id: query_param(call.head.query(), "plan").map(std::borrow::Cow::into_owned),
        ..Default::default()
    };
    let status = query_param(call.head.query(), "status");
    let status =
        match status.as_deref().map(Status::from_wire) {
            Some(None) => return Ok(error(
                400,
                "status must be one of PENDING, INPROGRESS, SUCCESS, WARNING, ERROR, SYSTEM_CANCELLED, USER_CANCELLED",
            )
            .into()),
            Some(Some(s)) => Some(s),
            None => None,
        };
    let recursion = query_param(call.head.query(), "recursion").is_some_and(|r| r == "1");
    let log = api.engine.plans.log();
    let mut items = Vec::new();
    for id in log.select(&sel, None) {
        let Ok(raw) = log.raw(id) else { continue };
        if let Some(s) = status
            && !raw.contains(&format!("\"status\":\"{}\"", s.wire()))
        {
            continue;
        }
        items.push(if recursion { raw } else { format!("\"/1.0/operations/{id}\"") });
    }
    drop(log);
    Ok(sync(&format!("[{}]", items.join(","))).into())
}

pub fn operation(api: &mut Api, call: &mut Call) -> Handled {
    Ok(match op_id(call).and_then(|id| api.engine.plans.log().raw(id).ok()) {
        Some(raw) => sync(&raw).into(),
        None => error(404, "operation not found").into(),
    })
}

pub fn cancel(api: &mut Api, call: &mut Call) -> Handled {
    let Some(id) = op_id(call) else { return Ok(error(404, "operation not found").into()) };
    api.engine.op_cancel(id)?;
    api.engine.audit.record(&call.who(), "operation.cancel", &id.to_string());
    Ok(sync("{}").into())
}

/// The operation's log (text).
pub fn operation_log(api: &mut Api, call: &mut Call) -> Handled {
    let Some(id) = op_id(call).filter(|id| api.engine.plans.log().get(*id).is_some()) else {
        return Ok(error(404, "operation not found").into());
    };
    let text = std::fs::read(crate::engine::planrun::log_path(api.engine.plans.logs_dir(), id)).unwrap_or_default();
    Ok(Response::new(200, "text/plain; charset=utf-8", text).into())
}
