//! Backrest's Connect RPCs (`POST /v1.Backrest/<Method>`, `/v1.Authentication/<Method>`)
//! in both codecs: JSON, and binary protobuf transcoded through `super::protobuf` with the
//! schema written from upstream's protos. Unary answers come in the request's codec, the two
//! server streams (`GetOperationEvents`, `GetLogs`) in Connect's enveloped streaming form.
//! Errors are Connect's `{"code", "message"}` with its HTTP status. The README's Backrest
//! section says what each RPC does here.

use miniserde::json::{Number, Value};

use super::protobuf::{self, Schema};
use super::{Api, Call, Handled};
use crate::engine::Error;
use crate::json::Object;
use crate::server::Reply;
use crate::server::http::Response;
use crate::store::oplog::{self, Kind, Operation, Selector, Status};

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

/// Backrest's wire schema: every RPC of v1.14.1's services and the messages they reach,
/// written from upstream's protos by tests/it/protos.rs.
fn schema() -> &'static Schema {
    static SCHEMA: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        // Inflated once, on the first Backrest request, and kept: 12 KB of text.
        use std::io::Read;
        let packed: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/backrest-schema.txt.gz"));
        let mut text = String::new();
        if flate2::read::GzDecoder::new(packed).read_to_string(&mut text).is_err() {
            crate::log::warn(format_args!("the built-in Backrest schema does not inflate"));
        }
        Schema::parse(Box::leak(text.into_boxed_str()))
    })
}

/// One of Connect's two codecs; a request is answered in the one it was sent in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Codec {
    Json,
    Proto,
}

/// The RPC a request calls: its messages and the codec it speaks.
#[derive(Clone, Copy, Debug)]
pub struct Rpc {
    codec: Codec,
    types: protobuf::Rpc,
}

const UNARY_TYPES: &str = "application/json, application/proto";
const STREAM_TYPES: &str = "application/connect+json, application/connect+proto";

impl Rpc {
    /// The RPC of the request's path, in the codec its `Content-Type` names. A unary RPC
    /// takes `application/json` (also when no type is sent, as curl without `-H` does) or
    /// `application/proto`; a streaming one their `connect+` forms. Any other type is 415
    /// with `Accept-Post`, as connect-go answers.
    pub fn of(call: &Call) -> Result<Rpc, Reply> {
        let path = call.head.path().trim_start_matches('/');
        let Some(types) = schema().rpc(path) else {
            return Err(error("unimplemented", &format!("{path} is not served here")).into());
        };
        let media = call.head.content_type().map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let codec = match (media.as_deref(), types.server_streaming) {
            (None | Some("application/json"), false) | (Some("application/connect+json"), true) => Codec::Json,
            (Some("application/proto"), false) | (Some("application/connect+proto"), true) => Codec::Proto,
            _ => {
                let accepted = if types.server_streaming { STREAM_TYPES } else { UNARY_TYPES };
                return Err(Response::new(415, "text/plain", "").header("Accept-Post", accepted).into());
            }
        };
        Ok(Rpc { codec, types })
    }

    /// The request message as protojson, whichever codec carried it; an empty body is the
    /// empty message. A streaming request's one message comes in its envelope.
    pub fn request(&self, call: &mut Call) -> Result<miniserde::json::Object, Reply> {
        let invalid = |m: &str| Reply::from(error("invalid_argument", m));
        let mut bytes = call.body_bytes().map_err(|_| invalid("the body cannot be read"))?;
        if self.types.server_streaming && !bytes.is_empty() {
            bytes = unenvelope(&bytes).map_err(invalid)?.to_vec();
        }
        if self.codec == Codec::Proto {
            return schema()
                .decode(self.types.input, &bytes)
                .map_err(|e| invalid(&format!("the request is not a valid {}: {e}", self.types.input)));
        }
        let text = String::from_utf8(bytes).map_err(|_| invalid("the body is not UTF-8 text"))?;
        if text.trim().is_empty() {
            return Ok(Default::default());
        }
        match miniserde::json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(invalid("the request body is not a JSON object")),
        }
    }

    /// A unary answer: `json` (the response message as protojson) in the request's codec.
    pub fn answer(&self, json: &str) -> Response {
        match self.codec {
            Codec::Json => Response::json(200, json.to_owned()),
            Codec::Proto => match self.binary(json) {
                Ok(bytes) => Response::new(200, "application/proto", bytes),
                Err(e) => error("internal", &e),
            },
        }
    }

    /// `json` as the response message's binary form. Strict: a field the proto lacks is
    /// steward's mistake, and a client decoding strictly would fail on it.
    fn binary(&self, json: &str) -> Result<Vec<u8>, String> {
        let parsed = match miniserde::json::from_str::<Value>(json) {
            Ok(Value::Object(o)) => o,
            _ => return Err("the answer is not a message".into()),
        };
        schema().encode(self.types.output, &parsed, true).map_err(|e| {
            crate::log::warn(format_args!("backrest answer does not fit {}: {e}", self.types.output));
            format!("the answer does not fit {}: {e}", self.types.output)
        })
    }
}

/// A streaming request's single message, out of its envelope (flags, big-endian length).
fn unenvelope(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let (head, message) = bytes.split_at_checked(5).ok_or("the request envelope is cut short")?;
    if head[0] & 1 != 0 {
        return Err("compressed messages are not accepted (no Connect-Content-Encoding is offered)");
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len != message.len() {
        return Err("the request envelope's length is not the message's");
    }
    Ok(message)
}

/// protojson writes 64-bit integers as strings and reads either form.
fn int64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(Number::U64(n)) => Some(*n),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A field as protojson reads it: by its JSON name (`planId`) or its proto name (`plan_id`).
fn named<'a>(m: &'a miniserde::json::Object, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        let proto: String = key
            .chars()
            .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
            .collect();
        m.get(&proto)
    })
}

fn field_bool(m: &miniserde::json::Object, key: &str) -> Result<bool, Reply> {
    match named(m, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(error("invalid_argument", &format!("{key} must be true or false")).into()),
    }
}

fn field_int(m: &miniserde::json::Object, key: &str) -> Result<Option<u64>, Reply> {
    match named(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            int64(v).map(Some).ok_or_else(|| error("invalid_argument", &format!("{key} must be an integer")).into())
        }
    }
}

fn field_str<'a>(m: &'a miniserde::json::Object, key: &str) -> Result<Option<&'a str>, Reply> {
    match named(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error("invalid_argument", &format!("{key} must be a string")).into()),
    }
}

/// `Backup {"value": planId}`: answers when the backup has ended; if the client goes away
/// first, the backup goes on.
pub fn backup(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let plan = match field_str(&m, "value") {
        Ok(Some(p)) if !p.is_empty() => p.to_owned(),
        Ok(_) => return Ok(error("invalid_argument", "value (the plan id) is required").into()),
        Err(r) => return Err(r.into()),
    };
    // A dry run must write nothing and forget nothing; steward has no way to simulate a
    // backup, so it says so rather than take one.
    if field_bool(&m, "dryRun")? {
        return Ok(error("invalid_argument", "dry runs are not offered here: steward would write the backup").into());
    }
    let Some(waker) = api.waker.clone() else { return Ok(error("unavailable", "unavailable").into()) };
    let op = api.engine.plan_run(&plan)?;
    api.engine.audit.record(&call.who(), "plan.run", &plan);
    let (tx, rx) = std::sync::mpsc::channel();
    api.engine.op_wait(
        op,
        Box::new(move |op| {
            let response = match op {
                Some(op) if matches!(op.status, Status::Success | Status::Warning) => rpc.answer("{}"),
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
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let guid = repo_guid(&api.engine.machine_id());
    let last_n = match field_int(&m, "lastN") {
        Ok(n) => n.map(|n| n as usize),
        Err(r) => return Err(r.into()),
    };
    let (sel, none) = match m.get("selector") {
        None | Some(Value::Null) => (Selector::default(), false),
        Some(Value::Object(s)) => selector(s, &guid)?,
        Some(_) => return Ok(error("invalid_argument", "selector must be an object").into()),
    };
    let log = api.engine.plans.log();
    let ids = if none { Vec::new() } else { log.select(&sel, last_n) };
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        // A drive wipe is IncusOS's, with no Backrest message: not in this history.
        if let Some(op) = log.get(id).filter(|op| op.kind != Kind::Wipe) {
            items.push(operation_json(&op, &guid));
        }
    }
    drop(log);
    Ok(rpc.answer(&format!("{{\"operations\":[{}]}}", items.join(","))).into())
}

/// An `OpSelector`; and whether it matches nothing here (another repository or instance).
fn selector(s: &miniserde::json::Object, guid: &str) -> Result<(Selector, bool), Reply> {
    let mut sel = Selector {
        plan_id: field_str(s, "planId")?.map(str::to_owned),
        flow_id: field_int(s, "flowId")?,
        modno_gte: field_int(s, "modnoGte")?,
        ..Default::default()
    };
    let mut none = false;
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
    none |= field_str(s, "repoGuid")?.is_some_and(|g| g != guid);
    none |= field_str(s, "instanceId")?.is_some_and(|i| i != "steward");
    // Operations synced from another instance carry its key id; steward's own carry none.
    none |= field_str(s, "originalInstanceKeyid")?.is_some_and(|k| !k.is_empty());
    Ok((sel, none))
}

/// The one repository's `guid` (Backrest's globally unique repo id): stable for this box.
fn repo_guid(machine_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update("backrest-repo\0local\0").chain_update(machine_id).finalize();
    crate::hex::to_hex(&digest[..16])
}

/// An operation as Backrest's `Operation` message has it, and nothing else: strict decoders
/// (protojson's default, `fromJson` without `ignoreUnknownFields`) refuse unknown fields.
/// steward's details (artifact, steps) are on `/1.0/operations`.
fn operation_json(op: &Operation, repo_guid: &str) -> String {
    let o = oplog::wire_fields(op, Some(repo_guid));
    let snapshot = |id: u64| Object::new().str("id", &oplog::snapshot_id(id)).finish();
    let (member, body) = match op.kind {
        Kind::Backup => {
            let mut b = Object::new();
            // What a restic summary would say of this backup that steward knows: the bytes
            // it read and added (the archive), how long it took, the snapshot it made. A
            // failed backup has a summary too (its duration), and its error in `errors`.
            let seconds = (op.end_ms - op.start_ms).max(0) as f64 / 1000.0;
            if op.status.finished() {
                let mut summary = Object::new();
                if let Some(a) = &op.artifact {
                    summary = summary
                        .str("dataAdded", &a.size.to_string())
                        .str("totalBytesProcessed", &a.size.to_string())
                        .str("snapshotId", &oplog::snapshot_id(op.id));
                }
                let summary = summary.raw("totalDuration", &format!("{seconds}")).finish();
                b = b.raw("lastStatus", &Object::new().raw("summary", &summary).finish());
            }
            if matches!(op.status, Status::Error | Status::SystemCancelled) && !op.message.is_empty() {
                let error = Object::new().str("during", "backup").str("message", &op.message).finish();
                b = b.raw("errors", &format!("[{error}]"));
            }
            ("operationBackup", b.finish())
        }
        Kind::Restore => ("operationRestore", Object::new().finish()),
        Kind::Forget => {
            let forgotten: Vec<String> = op.forgotten.iter().map(|n| snapshot(*n)).collect();
            ("operationForget", Object::new().raw("forget", &format!("[{}]", forgotten.join(","))).finish())
        }
        Kind::Check | Kind::Wipe => ("operationCheck", Object::new().finish()),
    };
    o.raw(member, &body).finish()
}

/// `Cancel {"operationId"}` (v1.14's `CancelOperationRequest`; `{"value"}` before it). As
/// upstream, an operation that already ended or never existed is no error: `{}`.
pub fn cancel(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let id = match (field_int(&m, "operationId")?, field_int(&m, "value")?) {
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Ok(error("invalid_argument", "operationId is required").into()),
    };
    match api.engine.op_cancel(id) {
        Ok(()) => api.engine.audit.record(&call.who(), "operation.cancel", &id.to_string()),
        Err(Error::NotFound(_) | Error::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(rpc.answer("{}").into())
}

/// The paths a plan's backup holds, as Backrest's `Plan.paths` lists them.
fn plan_paths(api: &Api, plan: &crate::engine::plans::Plan) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    if plan.state {
        paths.extend(api.engine.board.backup.paths.iter().cloned());
    }
    for app in api.engine.board.applications.iter().filter(|a| plan.applications.contains(&a.name)) {
        paths.extend(app.paths.iter().cloned());
    }
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// `GetConfig`: Backrest's `Config` as this box has it — one repository (`local`: the
/// plans' destinations, with its stable guid) and the plans. No `auth`: the users and their
/// password hashes are steward's token and keys, never sent.
pub fn get_config(api: &mut Api, call: &mut Call) -> Handled {
    use crate::engine::plans::Schedule;
    let rpc = Rpc::of(call)?;
    let guid = repo_guid(&api.engine.machine_id());
    let repo = Object::new().str("id", "local").str("uri", "steward:local").str("guid", &guid).finish();
    let plans: Vec<String> = api
        .engine
        .plans
        .plans
        .iter()
        .map(|p| {
            let paths = plan_paths(api, p);
            let schedule = match &p.schedule {
                Schedule::Disabled => Object::new().bool("disabled", true),
                Schedule::Cron(c) => Object::new().str("cron", c),
                Schedule::EveryHours(h) => Object::new().num("maxFrequencyHours", *h),
            }
            .str("clock", "CLOCK_LOCAL")
            .finish();
            let r = &p.retention;
            let retention = if r.hourly + r.daily + r.weekly + r.monthly == 0 && r.keep_last_n > 0 {
                Object::new().num("policyKeepLastN", r.keep_last_n).finish()
            } else if r == &Default::default() {
                Object::new().bool("policyKeepAll", true).finish()
            } else {
                let buckets = Object::new()
                    .num("hourly", r.hourly)
                    .num("daily", r.daily)
                    .num("weekly", r.weekly)
                    .num("monthly", r.monthly)
                    .num("keepLastN", r.keep_last_n)
                    .finish();
                Object::new().raw("policyTimeBucketed", &buckets).finish()
            };
            Object::new()
                .str("id", &p.id)
                .str("repo", "local")
                .raw("paths", &crate::json::str_array(paths.iter().map(String::as_str)))
                .raw("schedule", &schedule)
                .raw("retention", &retention)
                .finish()
        })
        .collect();
    let modno = api.engine.plans.plans.len();
    let body = Object::new()
        .num("modno", modno)
        .num("version", 4)
        .str("instance", "steward")
        .raw("repos", &format!("[{repo}]"))
        .raw("plans", &format!("[{}]", plans.join(",")))
        .finish();
    Ok(rpc.answer(&body).into())
}

/// `ListSnapshots {repoId, planId}`: the backups kept (not forgotten), oldest first, as
/// Backrest's `ResticSnapshot`s: the same ids the operations' `snapshotId` carry, the plan's
/// paths, and the `plan:` and `created-by:` tags Backrest puts on its own snapshots.
pub fn list_snapshots(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    if field_str(&m, "repoId")?.is_some_and(|r| !r.is_empty() && r != "local") {
        return Ok(rpc.answer(r#"{"snapshots":[]}"#).into());
    }
    let plan = field_str(&m, "planId")?.filter(|p| !p.is_empty()).map(str::to_owned);
    let kept: Vec<Operation> = {
        let log = api.engine.plans.log();
        log.backups(plan.as_deref())
            .into_iter()
            .filter_map(|id| log.get(id))
            .filter(|op| op.plan_id != crate::engine::planrun::JIDOTEKI_PLAN)
            .filter(Operation::is_kept_backup)
            .collect()
    };
    let hostname = api.engine.current_hostname();
    let snapshots: Vec<String> = kept
        .iter()
        .map(|op| {
            let paths = api.engine.plans.plan(&op.plan_id).map(|p| plan_paths(api, p)).unwrap_or_default();
            let tags = [format!("plan:{}", op.plan_id), "created-by:steward".to_owned()];
            let size = op.artifact.as_ref().map_or(0, |a| a.size);
            Object::new()
                .str("id", &oplog::snapshot_id(op.id))
                .str("unixTimeMs", &op.start_ms.to_string())
                .str("hostname", &hostname)
                .str("username", "steward")
                .raw("paths", &crate::json::str_array(paths.iter().map(String::as_str)))
                .raw("tags", &crate::json::str_array(tags.iter().map(String::as_str)))
                .raw("summary", &Object::new().str("dataAdded", &size.to_string()).finish())
                .finish()
        })
        .collect();
    Ok(rpc.answer(&format!("{{\"snapshots\":[{}]}}", snapshots.join(","))).into())
}

/// `GetSummaryDashboard`: per plan and for the repository, the last 30 days of backups.
pub fn get_summary_dashboard(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    const DAY_MS: i64 = 86_400_000;
    const RECENT: usize = 20;
    let since = crate::time::unix_millis() - 30 * DAY_MS;
    let backups: Vec<Operation> = {
        let log = api.engine.plans.log();
        log.backups(None).into_iter().filter_map(|id| log.get(id)).filter(|op| op.kind == Kind::Backup).collect()
    };
    let summary = |id: &str, ops: &[&Operation], next_ms: Option<i64>| -> String {
        let recent: Vec<&&Operation> = ops.iter().filter(|o| o.start_ms >= since).collect();
        let count = |st: &[Status]| recent.iter().filter(|o| st.contains(&o.status)).count();
        let added = |o: &Operation| o.artifact.as_ref().map_or(0, |a| a.size);
        let bytes_added: u64 = recent.iter().map(|o| added(o)).sum();
        let done = recent.iter().filter(|o| matches!(o.status, Status::Success | Status::Warning)).count();
        let snapshots = ops.iter().filter(|o| o.has_live_artifact()).count();
        let chart: Vec<&&Operation> = ops.iter().rev().take(RECENT).collect::<Vec<_>>().into_iter().rev().collect();
        let strings = |f: &dyn Fn(&Operation) -> String| {
            crate::json::str_array(chart.iter().map(|o| f(o)).collect::<Vec<_>>().iter().map(String::as_str))
        };
        let statuses = crate::json::str_array(chart.iter().map(|o| o.status.wire()));
        let chart = Object::new()
            .raw("flowId", &strings(&|o| o.flow_id.to_string()))
            .raw("timestampMs", &strings(&|o| o.start_ms.to_string()))
            .raw("durationMs", &strings(&|o| (o.end_ms - o.start_ms).max(0).to_string()))
            .raw("status", &statuses)
            .raw("bytesAdded", &strings(&|o| added(o).to_string()))
            .finish();
        let protected =
            ops.iter().rev().find(|o| matches!(o.status, Status::Success | Status::Warning)).map_or(0, |o| added(o));
        let mut s = Object::new()
            .str("id", id)
            .str("backupsFailed30days", &count(&[Status::Error]).to_string())
            .str("backupsWarningLast30days", &count(&[Status::Warning]).to_string())
            .str("backupsSuccessLast30days", &count(&[Status::Success]).to_string())
            .str("bytesAddedLast30days", &bytes_added.to_string())
            .str("totalSnapshots", &snapshots.to_string())
            .str("bytesAddedAvg", &(if done == 0 { 0 } else { bytes_added / done as u64 }).to_string());
        if let Some(ms) = next_ms {
            s = s.str("nextBackupTimeMs", &ms.to_string());
        }
        s.raw("recentBackups", &chart).str("protectedBytes", &protected.to_string()).finish()
    };
    let plans: Vec<String> = api
        .engine
        .plans
        .plans
        .iter()
        .map(|p| {
            let ops: Vec<&Operation> = backups.iter().filter(|o| o.plan_id == p.id).collect();
            summary(&p.id, &ops, api.engine.plans.next_run_ms(p))
        })
        .collect();
    let all: Vec<&Operation> = backups.iter().filter(|o| o.plan_id != crate::engine::planrun::JIDOTEKI_PLAN).collect();
    let repo = summary("local", &all, None);
    let body = Object::new()
        .raw("repoSummaries", &format!("[{repo}]"))
        .raw("planSummaries", &format!("[{}]", plans.join(",")))
        .str("configPath", "")
        .str("dataPath", "")
        .finish();
    Ok(rpc.answer(&body).into())
}

/// The one repository is `local`; naming another finds nothing.
fn check_repo(m: &miniserde::json::Object) -> Result<(), Reply> {
    match field_str(m, "repoId")? {
        None | Some("" | "local") => Ok(()),
        Some(other) => Err(error("not_found", &format!("repo {other} not found (steward has one: local)")).into()),
    }
}

/// A snapshot id as ListSnapshots and the operations give it.
fn snapshot_of(m: &miniserde::json::Object) -> Result<Option<u64>, Reply> {
    match field_str(m, "snapshotId")? {
        None | Some("") => Ok(None),
        Some(s) => oplog::parse_snapshot_id(s)
            .map(Some)
            .ok_or_else(|| error("not_found", &format!("snapshot {s} not found")).into()),
    }
}

fn scheduled(rpc: &Rpc, op: Option<u64>) -> Handled {
    let body = match op {
        Some(id) => Object::new().str("operationId", &id.to_string()).finish(),
        None => "{}".to_owned(),
    };
    Ok(rpc.answer(&body).into())
}

/// `DoRepoTask {repoId, task}` (the task by name or number). CHECK reads every kept backup
/// back against its sha256; PRUNE and FORGET run every plan's retention now. INDEX_SNAPSHOTS,
/// STATS and UNLOCK have nothing to do here (the history is the index, nothing is locked)
/// and answer operation 0, as upstream does when no operation was made.
pub fn do_repo_task(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    check_repo(&m)?;
    let task = match named(&m, "task") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(Number::U64(n))) => match schema().enum_name("v1.DoRepoTaskRequest.Task", *n as i32) {
            Some(name) => name.to_owned(),
            None => return Ok(error("invalid_argument", &format!("task {n} is not a task")).into()),
        },
        _ => String::new(),
    };
    let op = match task.as_str() {
        "TASK_CHECK" => Some(api.engine.repo_check_job()?),
        "TASK_PRUNE" | "TASK_FORGET" => {
            let plans: Vec<String> = api.engine.plans.plans.iter().map(|p| p.id.clone()).collect();
            let mut last = None;
            for p in plans {
                last = api.engine.plan_forget_job(&p)?.or(last);
            }
            last
        }
        "TASK_INDEX_SNAPSHOTS" | "TASK_STATS" | "TASK_UNLOCK" => None,
        "" | "TASK_NONE" => return Ok(error("invalid_argument", "task is required").into()),
        other => return Ok(error("invalid_argument", &format!("{other} is not a task")).into()),
    };
    api.engine.audit.record(&call.who(), "repo.task", &task);
    scheduled(&rpc, op)
}

/// `Forget {repoId, planId, snapshotId}`: that backup deleted, or without a snapshot the
/// plan's retention run now.
pub fn forget(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    check_repo(&m)?;
    let op = match snapshot_of(&m)? {
        Some(backup) => Some(api.engine.backup_delete_job(backup)?),
        None => match field_str(&m, "planId")? {
            Some(plan) if !plan.is_empty() => api.engine.plan_forget_job(plan)?,
            _ => return Ok(error("invalid_argument", "snapshotId or planId is required").into()),
        },
    };
    api.engine.audit.record(&call.who(), "backup.forget", &op.unwrap_or(0).to_string());
    scheduled(&rpc, op)
}

/// `Restore {planId, repoId, snapshotId, path, target}`: the whole backup put back where it
/// came from, as the records' restore task does (and with its capability rule: a backup
/// holding steward's own state needs admin). A path or a target elsewhere is not offered:
/// steward writes only the places a backup was taken from.
pub fn restore(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    check_repo(&m)?;
    if field_str(&m, "path")?.is_some_and(|p| !p.is_empty() && p != "/") {
        return Ok(error("invalid_argument", "steward restores whole backups: path must be empty or /").into());
    }
    if field_str(&m, "target")?.is_some_and(|t| !t.is_empty()) {
        return Ok(error("invalid_argument", "steward restores in place: target must be empty").into());
    }
    let Some(backup) = snapshot_of(&m)? else {
        return Ok(error("invalid_argument", "snapshotId is required").into());
    };
    let op = api.engine.backup_restore_job(backup, &call.principal())?;
    api.engine.audit.record(&call.who(), "backup.restore", &oplog::snapshot_id(backup));
    scheduled(&rpc, Some(op))
}

/// `ClearHistory {selector, onlyFailed}`: finished operations dropped from the history
/// (never a kept backup's record, nor queued or running work).
pub fn clear_history(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let (sel, none) = match m.get("selector") {
        Some(Value::Object(s)) => selector(s, &repo_guid(&api.engine.machine_id()))?,
        None | Some(Value::Null) => (Selector::default(), false),
        Some(_) => return Ok(error("invalid_argument", "selector must be an object").into()),
    };
    let only_failed = field_bool(&m, "onlyFailed")?;
    let cleared = if none { 0 } else { api.engine.clear_history(&sel, only_failed)? };
    api.engine.audit.record(&call.who(), "operations.clear", &cleared.to_string());
    Ok(rpc.answer("{}").into())
}

/// `PathAutocomplete {value}`: the paths a plan can back up that begin with the text typed
/// (the board's and its applications'); the rest of the file system is not shown.
pub fn path_autocomplete(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let typed = field_str(&m, "value")?.unwrap_or("");
    let board = &api.engine.board;
    let mut paths: Vec<&str> = board
        .backup
        .paths
        .iter()
        .chain(board.applications.iter().flat_map(|a| a.paths.iter()))
        .map(String::as_str)
        .filter(|p| p.starts_with(typed))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    Ok(rpc.answer(&Object::new().raw("values", &crate::json::str_array(paths.into_iter())).finish()).into())
}

/// `ListSnapshotFiles {repoId, snapshotId, path}`: the backup's entries directly below the
/// path, as Backrest's `LsEntry`s (at most 1000).
pub fn list_snapshot_files(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    check_repo(&m)?;
    let Some(backup) = snapshot_of(&m)? else {
        return Ok(error("invalid_argument", "snapshotId is required").into());
    };
    let path = field_str(&m, "path")?.filter(|p| !p.is_empty()).unwrap_or("/").to_owned();
    if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
        return Ok(error("invalid_argument", "path must be absolute").into());
    }
    let entries = api.engine.backup_listing(backup, &path, 1000)?;
    let time = |s: u64| crate::time::rfc3339_ms(s as i64 * 1000);
    let listed: Vec<String> = entries
        .iter()
        .map(|e| {
            Object::new()
                .str("name", &e.name)
                .str("type", if e.directory { "directory" } else { "file" })
                .str("path", &e.path)
                .str("uid", &e.uid.to_string())
                .str("gid", &e.gid.to_string())
                .str("size", &e.size.to_string())
                .str("mode", &e.mode.to_string())
                .str("mtime", &if e.mtime > 0 { time(e.mtime) } else { String::new() })
                .finish()
        })
        .collect();
    let body = Object::new().str("path", &path).raw("entries", &format!("[{}]", listed.join(","))).finish();
    Ok(rpc.answer(&body).into())
}

/// `v1.Authentication/Login {username, password}`: the password is checked as every other
/// credential is (the token, or an API key's secret; the user name is not used, as with
/// `curl -u`), under the same failure budget, and is the token answered: Backrest's clients
/// send it back as `Authorization: Bearer`.
pub fn login(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = rpc.request(call)?;
    let password = field_str(&m, "password")?.unwrap_or("").to_owned();
    if password.is_empty() {
        return Ok(error("invalid_argument", "password is required").into());
    }
    let credential = super::auth::Credential::Token(std::borrow::Cow::Borrowed(&password));
    api.may_check(call.head, call.peer, &credential, call.now)?;
    let principal = api.authenticate(call.head, &credential, super::routes::Access::Token, call.peer)?;
    api.engine.audit.record(
        &crate::store::audit::Who { client: call.peer, actor: principal.actor(), surface: "backrest" },
        "auth.login",
        "",
    );
    Ok(rpc.answer(&Object::new().str("token", &password).finish()).into())
}

/// `v1.Authentication/GetAuthInfo`: how to sign in (`local`: Login with the token).
pub fn get_auth_info(_api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    Ok(rpc.answer(r#"{"authDriver":"local"}"#).into())
}

/// An RPC of Backrest's services that steward does not offer (it has no restic to run, no
/// SFTP to set up, no peers to pair with): Connect's `unimplemented`.
pub fn unimplemented(_api: &mut Api, call: &mut Call) -> Handled {
    let path = call.head.path().trim_start_matches('/').to_owned();
    Ok(error("unimplemented", &format!("{path} is not offered by steward")).into())
}

/// A streamed answer's message in its Connect envelope (flags 0), `json` in the codec.
fn envelope(rpc: &Rpc, json: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = match rpc.codec {
        Codec::Json => json.as_bytes().to_vec(),
        Codec::Proto => rpc.binary(json)?,
    };
    out.push(0);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// The end of a stream (flags 2): always JSON, `{}` or `{"error": {code, message}}`.
fn end_of_stream(error: Option<(&str, &str)>, out: &mut Vec<u8>) {
    let body = match error {
        None => "{}".to_owned(),
        Some((code, message)) => {
            Object::new().raw("error", &Object::new().str("code", code).str("message", message).finish()).finish()
        }
    };
    out.push(2);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body.as_bytes());
}

fn stream_type(rpc: &Rpc) -> &'static str {
    match rpc.codec {
        Codec::Json => "application/connect+json",
        Codec::Proto => "application/connect+proto",
    }
}

/// A streaming RPC that fails before its first message: HTTP 200 and the error in the
/// end-of-stream message, as the streaming protocol carries errors.
fn stream_failed(rpc: &Rpc, code: &str, message: &str) -> Reply {
    let mut body = Vec::new();
    end_of_stream(Some((code, message)), &mut body);
    Response::new(200, stream_type(rpc), body).into()
}

/// `GetLogs {ref}`: an operation's log (its `logref`, `op-ID`), as `BytesValue`s of at
/// most 64 KiB each, then the end of the stream.
pub fn get_logs(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    let m = match rpc.request(call) {
        Ok(m) => m,
        Err(_) => return Ok(stream_failed(&rpc, "invalid_argument", "the request is not a LogDataRequest")),
    };
    let logref = field_str(&m, "ref").ok().flatten().unwrap_or("");
    let id = logref.strip_prefix("op-").and_then(|n| n.parse::<u64>().ok());
    let Some(id) = id.filter(|id| api.engine.plans.log().get(*id).is_some()) else {
        return Ok(stream_failed(&rpc, "not_found", &format!("no log {logref:?}")));
    };
    let path = crate::engine::planrun::log_path(api.engine.plans.logs_dir(), id);
    let mut text = Vec::new();
    if let Ok(f) = std::fs::File::open(&path) {
        use std::io::Read;
        let _ = f.take(crate::limits::MAX_LOG_ANSWER).read_to_end(&mut text);
    }
    let mut body = Vec::new();
    for chunk in text.chunks(64 * 1024) {
        let value = Object::new().str("value", &crate::hex::base64_encode(chunk)).finish();
        if let Err(e) = envelope(&rpc, &value, &mut body) {
            return Ok(stream_failed(&rpc, "internal", &e));
        }
    }
    end_of_stream(None, &mut body);
    Ok(Response::new(200, stream_type(&rpc), body).into())
}

/// A client following the history: what it has been told, and where its stream goes.
pub struct EventStream {
    rpc: Rpc,
    tx: std::sync::mpsc::SyncSender<crate::server::stream::Chunk>,
    /// The first modno it has not been told of.
    next_modno: u64,
    /// Ids above this are new to it (`createdOperations`), the rest `updatedOperations`.
    known_max_id: u64,
    last_sent: std::time::Instant,
}

/// `GetOperationEvents`: every change to the history from now on, as `OperationEvent`s
/// (created, updated and deleted operations; a keep-alive when there is nothing to say).
/// The loop looks after the streams (`pump_events`); no worker is held.
pub fn get_operation_events(api: &mut Api, call: &mut Call) -> Handled {
    let rpc = Rpc::of(call)?;
    if rpc.request(call).is_err() {
        return Ok(stream_failed(&rpc, "invalid_argument", "the request is not an Empty"));
    }
    if api.event_streams.len() >= crate::limits::MAX_EVENT_STREAMS {
        return Ok(stream_failed(&rpc, "resource_exhausted", "too many clients follow the operations already"));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let (next_modno, known_max_id) = {
        let log = api.engine.plans.log();
        (log.modno() + 1, log.last_id())
    };
    let mut hello = Vec::new();
    if let Err(e) = envelope(&rpc, r#"{"keepAlive":{}}"#, &mut hello) {
        return Ok(stream_failed(&rpc, "internal", &e));
    }
    let _ = tx.try_send(crate::server::stream::Chunk::Data(hello));
    api.event_streams.push(EventStream { rpc, tx, next_modno, known_max_id, last_sent: call.now });
    Ok(Response::streamed(stream_type(&rpc), rx).into())
}

/// Tells every event stream what changed since it was last told; drops the ones whose
/// client went away or stopped reading. When it next needs a turn, while any are open.
pub fn pump_events(api: &mut Api, now: std::time::Instant) -> Option<std::time::Duration> {
    use crate::server::stream::Chunk;
    use std::sync::mpsc::TrySendError;
    if api.event_streams.is_empty() {
        return None;
    }
    let engine = &api.engine;
    let log = engine.plans.log();
    let modno = log.modno();
    // Worked out (from /etc/machine-id) only on a turn with news to tell.
    let mut guid: Option<String> = None;
    let mut sent = false;
    api.event_streams.retain_mut(|s| {
        let mut body = Vec::new();
        if modno >= s.next_modno {
            let sel = Selector { modno_gte: Some(s.next_modno), ..Default::default() };
            let (mut created, mut updated) = (Vec::new(), Vec::new());
            let guid = guid.get_or_insert_with(|| repo_guid(&engine.machine_id()));
            for op in log.select(&sel, None).into_iter().filter_map(|id| log.get(id)).filter(|op| op.kind != Kind::Wipe)
            {
                let json = operation_json(&op, guid);
                if op.id > s.known_max_id { created.push(json) } else { updated.push(json) }
            }
            s.known_max_id = log.last_id();
            let list = |ops: &[String]| format!("{{\"operations\":[{}]}}", ops.join(","));
            let mut events = Vec::new();
            if !created.is_empty() {
                events.push(format!("{{\"createdOperations\":{}}}", list(&created)));
            }
            if !updated.is_empty() {
                events.push(format!("{{\"updatedOperations\":{}}}", list(&updated)));
            }
            match log.removed_since(s.next_modno) {
                Some(ids) if !ids.is_empty() => {
                    let values = crate::json::str_array(
                        ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().iter().map(String::as_str),
                    );
                    events.push(format!("{{\"deletedOperations\":{{\"values\":{values}}}}}"));
                }
                Some(_) => {}
                // Fallen too far behind to be told what went: it must read the history anew.
                None => {
                    end_of_stream(
                        Some(("aborted", "too many operations were removed at once; read the history again")),
                        &mut body,
                    );
                    let _ = s.tx.try_send(Chunk::Data(body));
                    let _ = s.tx.try_send(Chunk::End);
                    sent = true;
                    return false;
                }
            }
            for e in &events {
                if envelope(&s.rpc, e, &mut body).is_err() {
                    return false;
                }
            }
            s.next_modno = modno + 1;
        }
        if body.is_empty() && now.duration_since(s.last_sent) >= crate::limits::EVENT_KEEPALIVE {
            let _ = envelope(&s.rpc, r#"{"keepAlive":{}}"#, &mut body);
        }
        if body.is_empty() {
            return true;
        }
        s.last_sent = now;
        sent = true;
        // A client that does not read its stream is not waited for: it is cut off.
        !matches!(s.tx.try_send(Chunk::Data(body)), Err(TrySendError::Full(_) | TrySendError::Disconnected(_)))
    });
    drop(log);
    if sent && let Some(w) = &api.waker {
        w.wake();
    }
    (!api.event_streams.is_empty()).then_some(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    //! Request parsing as protojson reads it, bad inputs first.

    use super::*;
    use crate::api::test_call::{call_for, head, refusal};

    fn parsed(body: &str) -> Result<miniserde::json::Object, (u16, String)> {
        let h = head("POST", "/v1.Backrest/GetOperations");
        let mut call = call_for(&h, body.as_bytes());
        Rpc::of(&call).and_then(|rpc| rpc.request(&mut call)).map_err(refusal)
    }

    #[test]
    fn a_message_that_is_not_a_json_object_is_invalid_argument() {
        for bad in ["[]", "\"x\"", "1", "{", "{\"a\":1} trailing", "nul"] {
            let (status, body) = parsed(bad).unwrap_err();
            assert_eq!(status, 400, "{bad}");
            assert!(body.contains("invalid_argument") && body.contains("not a JSON object"), "{bad}: {body}");
        }
        let h = head("POST", "/v1.Backrest/GetOperations");
        let mut call = call_for(&h, b"\xff\xfe");
        let (status, body) = refusal(Rpc::of(&call).and_then(|rpc| rpc.request(&mut call)).unwrap_err());
        assert_eq!((status, body.contains("UTF-8")), (400, true), "{body}");
    }

    #[test]
    fn the_built_in_schema_inflates_and_holds_every_service() {
        for path in ["v1.Backrest/GetConfig", "v1.Backrest/GetOperationEvents", "v1.Authentication/Login"] {
            assert!(schema().rpc(path).is_some(), "{path}");
        }
        assert!(schema().rpc("v1.Backrest/GetOperationEvents").unwrap().server_streaming);
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
