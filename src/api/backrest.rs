//! Backrest's JSON RPCs (`POST /v1.Backrest/<Method>`, Connect protocol): `Backup` blocks
//! until the plan's backup has ended, `GetOperations` reads the history with an
//! `OpSelector`, `Cancel` stops queued or running work. Errors are Connect's
//! `{"code", "message"}` with its HTTP status.

use miniserde::json::{Number, Value};

use super::{Api, Call, Handled};
use crate::engine::Error;
use crate::json::Object;
use crate::server::Reply;
use crate::server::http::Response;
use crate::store::oplog::{self, Selector, Status};

/// A Connect error: the code name and the HTTP status Connect maps it to.
pub fn error(code: &str, message: &str) -> Response {
    let status = match code {
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "unauthenticated" => 401,
        "permission_denied" => 403,
        "not_found" => 404,
        "already_exists" | "aborted" => 409,
        "resource_exhausted" => 429,
        "canceled" => 499,
        "unimplemented" => 501,
        "unavailable" => 503,
        "deadline_exceeded" => 504,
        _ => 500,
    };
    Response::json(status, Object::new().str("code", code).str("message", message).finish())
}

/// Connect's code for an HTTP status steward itself produced (framing, auth, routing).
pub fn for_status(status: u16, message: &str) -> Response {
    let code = match status {
        400 | 411 | 413 | 431 => "invalid_argument",
        401 | 403 => "unauthenticated",
        404 => "not_found",
        405 => "unimplemented",
        408 => "deadline_exceeded",
        429 => "resource_exhausted",
        503 => "unavailable",
        _ => "internal",
    };
    let mut r = error(code, message);
    // Connect has no code for these; keep the HTTP status the framing layer chose.
    if matches!(status, 405 | 408 | 411 | 413 | 431) {
        r.status = status;
    }
    r
}

pub fn engine_error(e: Error) -> Reply {
    match e {
        Error::NotFound(what) => error("not_found", &format!("{what} not found")),
        Error::Invalid(m) => error("invalid_argument", &m),
        Error::Conflict(m) => error("failed_precondition", &m),
        Error::Forbidden(m) => error("permission_denied", &m),
        Error::Busy(m) => error("unavailable", &m),
        // Connect has no code for a full disk: resource_exhausted says what it is.
        Error::Io(m) if super::store_failure_status(&m) == 507 => error("resource_exhausted", &m),
        Error::Io(m) => error("internal", &m),
    }
    .into()
}

/// The request message; an empty body is the empty message.
fn message(call: &mut Call) -> Result<miniserde::json::Object, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error("invalid_argument", m)))?;
    if text.trim().is_empty() {
        return Ok(Default::default());
    }
    match miniserde::json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error("invalid_argument", "the request body is not a JSON object").into()),
    }
}

/// protojson writes 64-bit integers as strings and reads either form.
fn int64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(Number::U64(n)) => Some(*n),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn field_int(m: &miniserde::json::Object, key: &str) -> Result<Option<u64>, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            int64(v).map(Some).ok_or_else(|| error("invalid_argument", &format!("{key} must be an integer")).into())
        }
    }
}

fn field_str<'a>(m: &'a miniserde::json::Object, key: &str) -> Result<Option<&'a str>, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error("invalid_argument", &format!("{key} must be a string")).into()),
    }
}

/// `Backup {"value": planId}`: answers when the backup has ended; if the client goes away
/// first, the backup goes on.
pub fn backup(api: &mut Api, call: &mut Call) -> Handled {
    let m = message(call)?;
    let plan = match field_str(&m, "value") {
        Ok(Some(p)) if !p.is_empty() => p.to_owned(),
        Ok(_) => return Ok(error("invalid_argument", "value (the plan id) is required").into()),
        Err(r) => return Err(r.into()),
    };
    let Some(waker) = api.waker.clone() else { return Ok(error("unavailable", "unavailable").into()) };
    let op = api.engine.plan_run(&plan)?;
    api.engine.audit.record(&call.who(), "plan.run", &plan);
    let (tx, rx) = std::sync::mpsc::channel();
    api.engine.op_wait(
        op,
        Box::new(move |op| {
            let response = match op {
                Some(op) if matches!(op.status, Status::Success | Status::Warning) => Response::json(200, "{}"),
                Some(op) if op.status == Status::UserCancelled => error("canceled", "the backup was cancelled"),
                Some(op) => error("unknown", &format!("backup failed: {}", op.message)),
                None => error("internal", "the operation is gone"),
            };
            let _ = tx.send(response);
            waker.wake();
        }),
    );
    Ok(Reply { response: error("internal", "the backup ended without an answer"), not_before: None, pending: Some(rx) })
}

pub fn get_operations(api: &mut Api, call: &mut Call) -> Handled {
    let m = message(call)?;
    let mut sel = Selector::default();
    let mut none = false;
    let last_n = match field_int(&m, "lastN") {
        Ok(n) => n.map(|n| n as usize),
        Err(r) => return Err(r.into()),
    };
    match m.get("selector") {
        None | Some(Value::Null) => {}
        Some(Value::Object(s)) => {
            let parsed = (|| -> Result<(), Reply> {
                sel.plan_id = field_str(s, "planId")?.map(str::to_owned);
                sel.flow_id = field_int(s, "flowId")?;
                sel.modno_gte = field_int(s, "modnoGte")?;
                if let Some(snap) = field_str(s, "snapshotId")? {
                    match oplog::parse_snapshot_id(snap) {
                        Some(n) => sel.snapshot = Some(n),
                        None => none = true,
                    }
                }
                match s.get("ids") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(ids)) => {
                        for id in ids {
                            sel.ids.push(int64(id).ok_or_else(|| error("invalid_argument", "ids must be integers"))?);
                        }
                    }
                    Some(_) => return Err(error("invalid_argument", "ids must be a list").into()),
                }
                // One repository and one instance here: naming another matches nothing.
                none |= field_str(s, "repoId")?.is_some_and(|r| r != "local");
                none |= field_str(s, "instanceId")?.is_some_and(|i| i != "steward");
                Ok(())
            })();
            parsed?;
        }
        Some(_) => return Ok(error("invalid_argument", "selector must be an object").into()),
    }
    let log = api.engine.plans.log();
    let ids = if none { Vec::new() } else { log.select(&sel, last_n) };
    let mut body = String::with_capacity(64 + ids.len() * 320);
    body.push_str("{\"operations\":[");
    for (i, id) in ids.iter().enumerate() {
        if let Ok(raw) = log.raw(*id) {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&raw);
        }
    }
    body.push_str("]}");
    drop(log);
    Ok(Response::json(200, body).into())
}

/// `Cancel {"value": operationId}`.
pub fn cancel(api: &mut Api, call: &mut Call) -> Handled {
    let m = message(call)?;
    let id = match field_int(&m, "value") {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(error("invalid_argument", "value (the operation id) is required").into()),
        Err(r) => return Err(r.into()),
    };
    api.engine.op_cancel(id)?;
    api.engine.audit.record(&call.who(), "operation.cancel", &id.to_string());
    Ok(Response::json(200, "{}").into())
}

#[cfg(test)]
mod tests {
    //! Request parsing as protojson reads it, bad inputs first.

    use super::*;
    use crate::api::test_call::{call_for, head, refusal};

    fn parsed(body: &str) -> Result<miniserde::json::Object, (u16, String)> {
        let h = head("POST", "/v1.Backrest/GetOperations");
        message(&mut call_for(&h, body.as_bytes())).map_err(refusal)
    }

    #[test]
    fn a_message_that_is_not_a_json_object_is_invalid_argument() {
        for bad in ["[]", "\"x\"", "1", "{", "{\"a\":1} trailing", "nul"] {
            let (status, body) = parsed(bad).unwrap_err();
            assert_eq!(status, 400, "{bad}");
            assert!(body.contains("invalid_argument") && body.contains("not a JSON object"), "{bad}: {body}");
        }
        let h = head("POST", "/v1.Backrest/GetOperations");
        let (status, body) = refusal(message(&mut call_for(&h, b"\xff\xfe")).unwrap_err());
        assert_eq!((status, body.contains("UTF-8")), (400, true), "{body}");
    }

    #[test]
    fn an_empty_body_is_the_empty_message() {
        assert!(parsed("").unwrap().is_empty());
        assert!(parsed("  \n").unwrap().is_empty());
    }

    #[test]
    fn int64_fields_take_strings_and_numbers_and_nothing_else() {
        let m = parsed(r#"{"a":"42","b":7,"c":null,"d":-1,"e":"x","f":true,"g":1.5}"#).unwrap();
        assert_eq!(field_int(&m, "a").ok().flatten(), Some(42));
        assert_eq!(field_int(&m, "b").ok().flatten(), Some(7));
        assert_eq!(field_int(&m, "c").ok().flatten(), None);
        assert_eq!(field_int(&m, "missing").ok().flatten(), None);
        for bad in ["d", "e", "f", "g"] {
            let (status, body) = refusal(field_int(&m, bad).unwrap_err());
            assert!(status == 400 && body.contains(&format!("{bad} must be an integer")), "{bad}: {body}");
        }
        let (status, body) = refusal(field_str(&m, "b").unwrap_err());
        assert!(status == 400 && body.contains("b must be a string"), "{body}");
        assert_eq!(field_str(&m, "a").ok().flatten(), Some("42"));
    }
}
