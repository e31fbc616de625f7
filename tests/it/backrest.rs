//! The Backrest surface as Backrest's own clients see it: Connect in both codecs, every
//! answer decoded strictly into upstream's message type (tests/it/protos.rs reads
//! `../shared/upstream/backrest/`), the streaming RPCs, and the RPCs third-party tools call.

use std::io::Read;
use std::time::{Duration, Instant};

use miniserde::json::{self, Value};

use crate::protos;
use crate::util::{Daemon, Options, Resp, cleanup, fixture_root_copy};

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    let r = d.connect().send(
        "POST",
        "/1.0/plans",
        &[("Authorization", "Bearer owner"), ("Content-Type", "application/json")],
        br#"{"id":"p1","sources":{"state":true,"applications":["app"]},"destination":{"path":"/srv/backups/p1"},"retention":{"keep_last_n":5}}"#,
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    d
}

fn rpc(d: &Daemon, path: &str, content_type: &str, body: &[u8]) -> Resp {
    d.connect().send("POST", path, &[("Authorization", "Bearer owner"), ("Content-Type", content_type)], body)
}

fn json_rpc(d: &Daemon, method: &str, body: &str) -> Resp {
    rpc(d, &format!("/v1.Backrest/{method}"), "application/json", body.as_bytes())
}

fn parse(text: &str) -> Value {
    json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn backup(d: &Daemon) {
    let r = json_rpc(d, "Backup", r#"{"value":"p1"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The first item of the list at `key`, if any.
fn first(v: &Value, key: &str) -> Option<Value> {
    match v {
        Value::Object(o) => match o.get(key) {
            Some(Value::Array(a)) => a.first().cloned(),
            _ => None,
        },
        _ => None,
    }
}

fn first_snapshot(d: &Daemon) -> String {
    let v = json_rpc(d, "ListSnapshots", r#"{"planId":"p1"}"#).json();
    first(&v, "snapshots").map(|s| crate::util::string_at(&s, &["id"])).unwrap_or_default()
}

/// Every unary RPC steward serves, in JSON and in binary: each answer decodes strictly into
/// upstream's message, and the binary answer is the JSON one.
#[test]
fn every_unary_rpc_answers_in_both_codecs_and_decodes_strictly() {
    let p = protos::load();
    let d = daemon();
    backup(&d);
    let snap = first_snapshot(&d);
    let cases: Vec<(&str, String)> = vec![
        ("v1.Backrest/GetConfig", "{}".into()),
        ("v1.Backrest/GetOperations", r#"{"selector":{"planId":"p1"},"lastN":"5"}"#.into()),
        ("v1.Backrest/GetOperations", r#"{"selector":{"plan_id":"p1","ids":["1",2]}}"#.into()),
        ("v1.Backrest/ListSnapshots", r#"{"planId":"p1","repoId":"local"}"#.into()),
        ("v1.Backrest/GetSummaryDashboard", "{}".into()),
        ("v1.Backrest/ListSnapshotFiles", format!(r#"{{"repoId":"local","snapshotId":"{snap}","path":"/var"}}"#)),
        ("v1.Backrest/PathAutocomplete", r#"{"value":"/var"}"#.into()),
        ("v1.Backrest/Cancel", r#"{"operationId":"999"}"#.into()),
        ("v1.Backrest/DoRepoTask", r#"{"repoId":"local","task":"TASK_STATS"}"#.into()),
        ("v1.Authentication/GetAuthInfo", "{}".into()),
        ("v1.Authentication/Login", r#"{"username":"admin","password":"owner"}"#.into()),
    ];
    for (path, request) in &cases {
        let rpc_def = p.rpc(path);
        let r = rpc(&d, &format!("/{path}"), "application/json", request.as_bytes());
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        let answer = parse(&r.text());
        p.strict_json(&rpc_def.output, &answer).unwrap_or_else(|e| panic!("{path}: {e}\n{}", r.text()));

        let binary = p.encode(&rpc_def.input, &parse(request));
        let b = rpc(&d, &format!("/{path}"), "application/proto", &binary);
        assert_eq!(b.status, 200, "{path} (proto): {}", b.text());
        assert_eq!(b.header("content-type"), Some("application/proto"), "{path}");
        let decoded = p.decode(&rpc_def.output, &b.body);
        let want = protos::without_defaults(&p, &rpc_def.output, &answer);
        assert_eq!(json::to_string(&decoded), json::to_string(&want), "{path}: binary and JSON answers differ");
    }
    // The answers say something: the config names the plan, the history has its backup.
    let config = json_rpc(&d, "GetConfig", "{}").text();
    assert!(config.contains(r#""id":"p1""#) && config.contains(r#""repo":"local""#), "{config}");
    let files = json_rpc(&d, "ListSnapshotFiles", &format!(r#"{{"snapshotId":"{snap}","path":"/var/lib"}}"#)).text();
    assert!(files.contains(r#""name":"app""#) && files.contains(r#""type":"directory""#), "{files}");
    cleanup(d);
}

#[test]
fn bad_requests_get_connect_errors_never_a_guess() {
    let p = protos::load();
    let d = daemon();
    // A content type neither codec reads: 415 naming the ones it does, as connect-go does.
    let r = rpc(&d, "/v1.Backrest/GetConfig", "text/plain", b"{}");
    assert_eq!(r.status, 415);
    assert_eq!(r.header("accept-post"), Some("application/json, application/proto"));
    let r = rpc(&d, "/v1.Backrest/GetConfig", "application/x-www-form-urlencoded", b"{}");
    assert_eq!(r.status, 415);
    // A streaming RPC takes only the streaming forms.
    let r = rpc(&d, "/v1.Backrest/GetLogs", "application/json", b"{}");
    assert_eq!((r.status, r.header("accept-post")), (415, Some("application/connect+json, application/connect+proto")));
    // Binary that is not the message: cut short, a wrong wire type, a string not UTF-8.
    let good = p.encode("v1.GetOperationsRequest", &parse(r#"{"selector":{"planId":"p1"},"lastN":"3"}"#));
    for bad in [&good[..good.len() - 1], &[0x10, 0x80][..], &[0x0d, 0, 0, 0, 0], &[0x0a, 0x03, 0x1a, 0x01, 0xff]] {
        let r = rpc(&d, "/v1.Backrest/GetOperations", "application/proto", bad);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert_eq!(parse(&r.text()).get_code(), "invalid_argument", "{bad:?}");
    }
    // JSON: a wrong type is refused, an unknown field is ignored (as protojson's
    // DiscardUnknown), both spellings of a field are read.
    assert_eq!(json_rpc(&d, "GetOperations", r#"{"lastN":"many"}"#).status, 400);
    assert_eq!(json_rpc(&d, "GetOperations", r#"{"somethingNew":1}"#).status, 200);
    let none = json_rpc(&d, "GetOperations", r#"{"selector":{"plan_id":"nope"}}"#).text();
    assert_eq!(none, r#"{"operations":[]}"#);
    // What steward does not offer is said so: unimplemented, 501.
    for path in
        ["/v1.Backrest/RunCommand", "/v1.Backrest/SetupSftp", "/v1.Backrest/AddRepo", "/v1.Authentication/HashPassword"]
    {
        let r = rpc(&d, path, "application/json", b"{}");
        assert_eq!((r.status, parse(&r.text()).get_code()), (501, "unimplemented".into()), "{path}");
    }
    // Tasks and repositories that are not there.
    let r = json_rpc(&d, "DoRepoTask", r#"{"task":"TASK_EXPLODE"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(json_rpc(&d, "DoRepoTask", r#"{"task":99}"#).status, 400);
    assert_eq!(json_rpc(&d, "DoRepoTask", "{}").status, 400);
    assert_eq!(json_rpc(&d, "DoRepoTask", r#"{"repoId":"elsewhere","task":"TASK_CHECK"}"#).status, 404);
    assert_eq!(json_rpc(&d, "Forget", "{}").status, 400);
    assert_eq!(json_rpc(&d, "Forget", r#"{"snapshotId":"ffffffffffffffffffffffff"}"#).status, 404);
    assert_eq!(json_rpc(&d, "ListSnapshotFiles", r#"{"snapshotId":"nope"}"#).status, 404);
    // A dry run still writes nothing.
    assert_eq!(json_rpc(&d, "Backup", r#"{"value":"p1","dryRun":true}"#).status, 400);
    assert_eq!(json_rpc(&d, "ListSnapshots", "{}").text(), r#"{"snapshots":[]}"#);
    // Restoring elsewhere than in place is not offered.
    backup(&d);
    let snap = first_snapshot(&d);
    let r = json_rpc(&d, "Restore", &format!(r#"{{"snapshotId":"{snap}","target":"/tmp/x"}}"#));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = json_rpc(&d, "Restore", &format!(r#"{{"snapshotId":"{snap}","path":"/etc"}}"#));
    assert_eq!(r.status, 400, "{}", r.text());
    cleanup(d);
}

trait Code {
    fn get_code(&self) -> String;
}

impl Code for Value {
    fn get_code(&self) -> String {
        crate::util::string_at(self, &["code"])
    }
}

#[test]
fn login_hands_out_the_token_only_for_the_right_password() {
    let d = daemon();
    let login = |body: &str| {
        d.connect().send("POST", "/v1.Authentication/Login", &[("Content-Type", "application/json")], body.as_bytes())
    };
    let r = login(r#"{"username":"admin","password":"wrong"}"#);
    assert_eq!((r.status, parse(&r.text()).get_code()), (401, "unauthenticated".into()));
    assert_eq!(login(r#"{"username":"admin"}"#).status, 400);
    let r = login(r#"{"username":"admin","password":"owner"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let token = crate::util::string_at(&r.json(), &["token"]);
    let bearer = format!("Bearer {token}");
    let r = d.connect().send(
        "POST",
        "/v1.Backrest/GetConfig",
        &[("Authorization", &bearer), ("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 200);
    // GetAuthInfo needs no credentials: it is how a client learns to log in.
    let r = d.connect().send("POST", "/v1.Authentication/GetAuthInfo", &[("Content-Type", "application/json")], b"{}");
    assert_eq!(r.text(), r#"{"authDriver":"local"}"#);
    cleanup(d);
}

/// A streamed answer's envelopes: (flags, message).
fn envelopes(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "a torn envelope");
    out
}

#[test]
fn get_logs_streams_an_operations_log_in_either_codec() {
    let p = protos::load();
    let d = daemon();
    backup(&d);
    let want = d.connect().send("GET", "/1.0/operations/1/log", &[("Authorization", "Bearer owner")], b"").body;
    assert!(!want.is_empty());
    let request = p.encode("v1.LogDataRequest", &parse(r#"{"ref":"op-1"}"#));
    let mut enveloped = vec![0];
    enveloped.extend_from_slice(&(request.len() as u32).to_be_bytes());
    enveloped.extend_from_slice(&request);
    let r = rpc(&d, "/v1.Backrest/GetLogs", "application/connect+proto", &enveloped);
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/connect+proto")));
    let frames = envelopes(&r.body);
    let (last, messages) = frames.split_last().unwrap();
    assert_eq!((last.0, last.1.as_slice()), (2, &b"{}"[..]));
    let mut got = Vec::new();
    for (flags, m) in messages {
        assert_eq!(*flags, 0);
        // types.BytesValue: field 1, bytes.
        let mut b = &m[..];
        assert_eq!(b[0], 0x0a);
        b = &b[1..];
        let mut len = 0usize;
        for i in 0.. {
            len |= usize::from(b[0] & 0x7f) << (7 * i);
            let more = b[0] & 0x80 != 0;
            b = &b[1..];
            if !more {
                break;
            }
        }
        assert_eq!(len, b.len());
        got.extend_from_slice(b);
    }
    assert_eq!(got, want);
    // In JSON, bytes are base64; an unknown log is an error in the end-of-stream message.
    let r = rpc(&d, "/v1.Backrest/GetLogs", "application/connect+json", b"\0\0\0\0\x0c{\"ref\":\"x1\"}");
    assert_eq!(r.status, 200);
    let frames = envelopes(&r.body);
    assert_eq!(frames.len(), 1);
    let end = parse(std::str::from_utf8(&frames[0].1).unwrap());
    assert_eq!((frames[0].0, crate::util::string_at(&end, &["error", "code"])), (2, "not_found".into()));
    cleanup(d);
}

/// Reads a chunked streaming body (kept in `raw` from one call to the next) until `enough`
/// says so, or the deadline passes: every envelope since the stream began, in order.
fn follow(
    client: &mut crate::util::Client,
    raw: &mut Vec<u8>,
    deadline: Duration,
    enough: impl Fn(&[(u8, Vec<u8>)]) -> bool,
) -> Vec<(u8, Vec<u8>)> {
    let start = Instant::now();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = client.stream.read(&mut buf).expect("the stream stays open");
        assert!(n > 0, "the stream ended");
        raw.extend_from_slice(&buf[..n]);
        let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"), "{head}");
        // De-chunk what has arrived so far.
        let mut body = Vec::new();
        let mut rest = &raw[head_end + 4..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            if rest.len() < eol + 2 + size + 2 {
                break;
            }
            body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        let mut frames = Vec::new();
        let mut b = &body[..];
        while b.len() >= 5 {
            let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
            if b.len() < 5 + len {
                break;
            }
            frames.push((b[0], b[5..5 + len].to_vec()));
            b = &b[5 + len..];
        }
        if enough(&frames) {
            return frames;
        }
        assert!(start.elapsed() < deadline, "not told in time: {} frames", frames.len());
    }
}

#[test]
fn operation_events_tell_a_follower_of_each_new_and_finished_operation() {
    let p = protos::load();
    let d = daemon();
    let mut follower = d.connect();
    let mut raw = Vec::new();
    follower.write_raw(
        b"POST /v1.Backrest/GetOperationEvents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer owner\r\n\
          Content-Type: application/connect+json\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0",
    );
    // The stream opens with a keep-alive before anything has happened.
    let frames = follow(&mut follower, &mut raw, Duration::from_secs(30), |f| !f.is_empty());
    assert_eq!(frames[0].1, br#"{"keepAlive":{}}"#);
    backup(&d);
    let frames = follow(&mut follower, &mut raw, Duration::from_secs(60), |f| {
        f.iter().any(|(_, m)| {
            let t = String::from_utf8_lossy(m);
            t.contains("updatedOperations") && t.contains("STATUS_SUCCESS")
                || t.contains("createdOperations") && t.contains("STATUS_SUCCESS")
        })
    });
    let mut created = false;
    for (flags, m) in &frames {
        assert_eq!(*flags, 0, "no end of stream while the client follows");
        let event = parse(std::str::from_utf8(m).unwrap());
        p.strict_json("v1.OperationEvent", &event).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(m)));
        created |= String::from_utf8_lossy(m).contains("createdOperations");
    }
    assert!(created, "the backup was announced as created");
    // ClearHistory drops the finished operations the selector names, and followers are told.
    let r = json_rpc(&d, "ClearHistory", r#"{"selector":{"planId":"p1"}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = follow(&mut follower, &mut raw, Duration::from_secs(30), |f| {
        f.iter().any(|(_, m)| String::from_utf8_lossy(m).contains("deletedOperations"))
    });
    for (_, m) in &frames {
        p.strict_json("v1.OperationEvent", &parse(std::str::from_utf8(m).unwrap())).unwrap();
    }
    // The backup itself is still kept: its record stays.
    assert!(!first_snapshot(&d).is_empty());
    cleanup(d);
}

/// Waits for an operation to finish; its Backrest form.
fn finished(d: &Daemon, id: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = json_rpc(d, "GetOperations", &format!(r#"{{"selector":{{"ids":["{id}"]}}}}"#));
        if let Some(op) = first(&r.json(), "operations") {
            let status = crate::util::string_at(&op, &["status"]);
            if !matches!(status.as_str(), "STATUS_PENDING" | "STATUS_INPROGRESS") {
                return op;
            }
        }
        assert!(Instant::now() < until, "operation {id} did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_repository_check_reads_every_backup_back_and_names_a_damaged_one() {
    let d = daemon();
    backup(&d);
    let r = json_rpc(&d, "DoRepoTask", r#"{"repoId":"local","task":"TASK_CHECK"}"#);
    let id = crate::util::string_at(&r.json(), &["operationId"]);
    let op = finished(&d, &id);
    assert_eq!(crate::util::string_at(&op, &["status"]), "STATUS_SUCCESS", "{}", json::to_string(&op));
    // Damage the archive in place (same size): the check must notice.
    let archive = find_tar(&d.options.root.join("srv/backups/p1")).expect("the backup archive");
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    // By number this time, as some tools send it.
    let r = json_rpc(&d, "DoRepoTask", r#"{"repoId":"local","task":3}"#);
    let id = crate::util::string_at(&r.json(), &["operationId"]);
    let op = finished(&d, &id);
    assert_eq!(crate::util::string_at(&op, &["status"]), "STATUS_ERROR");
    let message = crate::util::string_at(&op, &["displayMessage"]);
    assert!(message.contains("1 of 1 backups failed verification"), "{message}");
    cleanup(d);
}

fn find_tar(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        if path.is_dir() {
            if let Some(found) = find_tar(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|x| x == "tar") {
            return Some(path);
        }
    }
    None
}

#[test]
fn forget_deletes_the_named_backup_and_listings_follow() {
    let d = daemon();
    backup(&d);
    backup(&d);
    let snap = first_snapshot(&d);
    let r = json_rpc(&d, "Forget", &format!(r#"{{"repoId":"local","planId":"p1","snapshotId":"{snap}"}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let id = crate::util::string_at(&r.json(), &["operationId"]);
    assert_eq!(crate::util::string_at(&finished(&d, &id), &["status"]), "STATUS_SUCCESS");
    let list = json_rpc(&d, "ListSnapshots", r#"{"planId":"p1"}"#).text();
    assert!(!list.contains(&snap) && list.contains("plan:p1"), "{list}");
    // Forgetting it again: it is gone.
    let r = json_rpc(&d, "Forget", &format!(r#"{{"snapshotId":"{snap}"}}"#));
    assert_eq!(r.status, 400, "{}", r.text());
    cleanup(d);
}
