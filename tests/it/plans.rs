//! Backup plans (`/1.0/plans`), the operation history (`/1.0/operations`, Backrest's
//! `GetOperations`), the blocking `Backup` RPC, and backup records with restore jobs and logs
//! (`/v1/containers/...`).

use std::time::Duration;

use miniserde::json::{self, Value};

use crate::util::{ADMIN, Daemon, Options, Resp, cleanup, field, fixture_root_copy};

const SECRET: &str = "hunter2-very-secret";

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

fn call(d: &Daemon, method: &str, path: &str, body: &str) -> Resp {
    d.connect().send(
        method,
        path,
        &[("Authorization", "Bearer owner"), ("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn rpc(d: &Daemon, method: &str, body: &str) -> Resp {
    call(d, "POST", &format!("/v1.Backrest/{method}"), body)
}

fn plan_json(id: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","sources":{{"state":true,"applications":["app"]}},
        "destination":{{"path":"/srv/backups/{id}","vendor":"nfs","auth":{{"secret":"{SECRET}","key_id":"k1"}}}}{extra}}}"#
    )
}

fn create(d: &Daemon, id: &str, extra: &str) {
    let r = call(d, "POST", "/1.0/plans", &plan_json(id, extra));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn operations(d: &Daemon, body: &str) -> Vec<Value> {
    let r = rpc(d, "GetOperations", body);
    assert_eq!(r.status, 200, "{body}: {}", r.text());
    match field(&r.json(), &["operations"]) {
        Value::Array(ops) => ops.iter().cloned().collect(),
        other => panic!("operations is {other:?}"),
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    match field(v, path) {
        Value::String(s) => s,
        other => panic!("{path:?} is {other:?}"),
    }
}

fn ids(ops: &[Value]) -> Vec<String> {
    ops.iter().map(|o| s(o, &["id"]).to_owned()).collect()
}

#[test]
fn plans_are_validated_stored_and_guarded_by_etags() {
    let mut d = daemon();
    let bad = [
        ("not json", "not valid JSON"),
        (r#"{"id":"x"}"#, "sources is required"),
        (r#"{"id":"../x","sources":{"state":true},"destination":{"path":"/srv/backups/b"}}"#, "id must be"),
        (r#"{"id":"x","sources":{"applications":["nope"]},"destination":{"path":"/srv/backups/b"}}"#, "no application"),
        (r#"{"id":"x","sources":{"state":true},"destination":{"path":"/b/../../etc"}}"#, "without '..'"),
        (r#"{"id":"x","sources":{"state":true},"destination":{"path":"/var/lib/app/in"}}"#, "overlaps"),
        (
            r#"{"id":"x","sources":{"state":true},"destination":{"path":"/srv/backups/b"},"schedule":{"cron":"* * *"}}"#,
            "5 fields",
        ),
        (
            r#"{"id":"x","sources":{"state":true},"destination":{"path":"/srv/backups/b"},"retention":{"keep_last_n":0}}"#,
            "at least one",
        ),
        (r#"{"id":"x","sources":{"state":true},"destination":{"path":"/srv/backups/b"},"extra":1}"#, "unknown field"),
    ];
    for (body, why) in bad {
        let r = call(&d, "POST", "/1.0/plans", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
        assert!(r.text().starts_with(r#"{"type":"error""#));
    }
    create(&d, "nightly", r#","schedule":{"cron":"0 3 * * *"},"retention":{"keep_last_n":3}"#);
    assert_eq!(call(&d, "POST", "/1.0/plans", &plan_json("nightly", "")).status, 409);
    let list = call(&d, "GET", "/1.0/plans", "");
    assert!(list.text().contains(r#""metadata":["/1.0/plans/nightly"]"#), "{}", list.text());
    let got = call(&d, "GET", "/1.0/plans/nightly", "");
    assert_eq!(got.status, 200);
    let etag = got.header("ETag").unwrap().to_owned();
    let meta = field(&got.json(), &["metadata"]).clone();
    assert_eq!(s(&meta, &["config", "schedule", "cron"]), "0 3 * * *");
    assert!(s(&meta, &["state", "next_run"]).ends_with("T03:00:00Z"));
    // A stale ETag loses; the current one wins; the id cannot change.
    let changed = plan_json("nightly", r#","schedule":{"every_hours":6}"#);
    let stale = d.connect().send(
        "PUT",
        "/1.0/plans/nightly",
        &[("Authorization", "Bearer owner"), ("If-Match", "\"0000\"")],
        changed.as_bytes(),
    );
    assert_eq!(stale.status, 412, "{}", stale.text());
    let ok = d.connect().send(
        "PUT",
        "/1.0/plans/nightly",
        &[("Authorization", "Bearer owner"), ("If-Match", &etag)],
        changed.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_ne!(ok.header("ETag").unwrap(), etag);
    assert_eq!(call(&d, "PUT", "/1.0/plans/nightly", &plan_json("other", "")).status, 400);
    assert_eq!(call(&d, "PUT", "/1.0/plans/missing", &plan_json("missing", "")).status, 404);
    // Stored across a restart.
    d.restart();
    let got = call(&d, "GET", "/1.0/plans/nightly", "");
    assert!(got.text().contains(r#""every_hours":6"#), "{}", got.text());
    assert_eq!(call(&d, "DELETE", "/1.0/plans/nightly", "").status, 200);
    assert_eq!(call(&d, "GET", "/1.0/plans/nightly", "").status, 404);
    assert_eq!(call(&d, "DELETE", "/1.0/plans/nightly", "").status, 404);
    cleanup(d);
}

#[test]
fn the_blocking_backup_rpc_answers_after_the_backup_and_the_history_says_so() {
    let d = daemon();
    create(&d, "nightly", "");
    let r = d.connect().send(
        "POST",
        "/v1.Backrest/Backup",
        // Backrest's documented scripts authenticate with `curl -u user:password`.
        &[("Authorization", "Basic YWRtaW46b3duZXI="), ("Content-Type", "application/json")],
        br#"{"value": "nightly"}"#,
    );
    assert_eq!((r.status, r.text().as_str()), (200, "{}"));
    let ops = operations(&d, r#"{"selector": {"planId": "nightly"}}"#);
    let listed = ops.iter().find(|o| matches!(o, Value::Object(m) if m.contains_key("operationBackup"))).unwrap();
    assert_eq!(s(listed, &["status"]), "STATUS_SUCCESS");
    // Backrest's message only there; steward's details (the archive) on /1.0/operations.
    assert!(!matches!(field(listed, &["operationBackup"]), Value::Object(m) if m.contains_key("path")));
    let one = call(&d, "GET", &format!("/1.0/operations/{}", s(listed, &["id"])), "").json();
    let backup = field(&one, &["metadata"]);
    let path = s(backup, &["operationBackup", "path"]);
    let file = d.options.root.join(path.trim_start_matches('/'));
    let tar = std::fs::read(&file).unwrap();
    assert_eq!(s(backup, &["operationBackup", "size"]), tar.len().to_string());
    let sum = std::fs::read_to_string(format!("{}.sha256", file.display())).unwrap();
    assert!(sum.starts_with(s(backup, &["operationBackup", "sha256"])), "{sum}");
    // The archive is a steward backup of the state and the application.
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names[0], "steward-backup.json");
    assert!(
        names.contains(&"steward/token".to_owned()) && names.contains(&"var/lib/app/config.ini".to_owned()),
        "{names:?}"
    );

    // Bad requests get Connect errors with their HTTP status.
    let r = rpc(&d, "Backup", r#"{"value": "nope"}"#);
    assert_eq!(r.status, 404);
    assert_eq!(s(&r.json(), &["code"]), "not_found");
    for body in ["", "{}", r#"{"value": ""}"#, r#"{"value": 5}"#, "[1]", "{"] {
        let r = rpc(&d, "Backup", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(s(&r.json(), &["code"]), "invalid_argument", "{body}");
    }
    let anon = d.connect().send("POST", "/v1.Backrest/Backup", &[], br#"{"value": "nightly"}"#);
    assert_eq!(anon.status, 401);
    assert_eq!(s(&anon.json(), &["code"]), "unauthenticated");
    let wrong = d.connect().send("POST", "/v1.Backrest/GetOperations", &[("Authorization", "Basic YTpi")], b"{}");
    assert_eq!(wrong.status, 401);
    assert_eq!(call(&d, "GET", "/v1.Backrest/Backup", "").status, 405);
    assert_eq!(rpc(&d, "NoSuchMethod", "{}").status, 404);
    cleanup(d);
}

#[test]
fn get_operations_selectors_each_filter() {
    let d = daemon();
    create(&d, "a", r#","retention":{"keep_last_n":1}"#);
    create(&d, "b", "");
    for plan in ["a", "b", "a"] {
        assert_eq!(rpc(&d, "Backup", &format!(r#"{{"value":"{plan}"}}"#)).status, 200);
    }
    let all = operations(&d, "{}");
    // Per backup: the backup and its retention pass.
    assert_eq!(all.len(), 6, "{all:?}");
    let by_plan = operations(&d, r#"{"selector":{"planId":"a"}}"#);
    assert_eq!(by_plan.len(), 4);
    assert!(by_plan.iter().all(|o| s(o, &["planId"]) == "a"));
    assert!(operations(&d, r#"{"selector":{"planId":"zzz"}}"#).is_empty());
    // The second backup of plan a: its flow holds it and the forget that removed the first.
    let second_a = &by_plan[2];
    let flow = s(second_a, &["flowId"]).to_owned();
    let in_flow = operations(&d, &format!(r#"{{"selector":{{"flowId":"{flow}"}}}}"#));
    assert_eq!(in_flow.len(), 2);
    let forget = &in_flow[1];
    // Backrest's OperationForget: the snapshots it forgot, each a ResticSnapshot.
    let Value::Array(forgotten) = field(forget, &["operationForget", "forget"]) else { panic!() };
    assert_eq!(forgotten.len(), 1);
    assert_eq!(s(&forgotten[0], &["id"]), s(&by_plan[0], &["snapshotId"]));
    // Numbers are accepted where protojson writes strings.
    assert_eq!(ids(&operations(&d, &format!(r#"{{"selector":{{"flowId":{flow}}}}}"#))), ids(&in_flow));
    let picked = operations(&d, &format!(r#"{{"selector":{{"ids":["{}", {}]}}}}"#, ids(&all)[5], ids(&all)[0]));
    assert_eq!(ids(&picked), vec![ids(&all)[0].clone(), ids(&all)[5].clone()]);
    let snap = s(&all[2], &["snapshotId"]).to_owned();
    let by_snap = operations(&d, &format!(r#"{{"selector":{{"snapshotId":"{snap}"}}}}"#));
    assert_eq!(ids(&by_snap), vec![ids(&all)[2].clone()]);
    assert!(operations(&d, r#"{"selector":{"snapshotId":"nonsense"}}"#).is_empty());
    assert_eq!(ids(&operations(&d, r#"{"lastN": 2}"#)), ids(&all)[4..].to_vec());
    assert_eq!(
        ids(&operations(&d, r#"{"selector":{"planId":"b"},"lastN":"1"}"#)),
        vec![ids(&all)[3].clone()],
        "b's newest: its forget"
    );
    // modnoGte: only what changed since.
    let top: u64 = all.iter().map(|o| s(o, &["modno"]).parse::<u64>().unwrap()).max().unwrap();
    assert!(operations(&d, &format!(r#"{{"selector":{{"modnoGte":"{}"}}}}"#, top + 1)).is_empty());
    assert_eq!(rpc(&d, "Backup", r#"{"value":"b"}"#).status, 200);
    let since = operations(&d, &format!(r#"{{"selector":{{"modnoGte":"{}"}}}}"#, top + 1));
    assert_eq!(since.len(), 2, "the new backup and its forget, nothing older: {since:?}");
    assert!(since.iter().all(|o| s(o, &["modno"]).parse::<u64>().unwrap() > top));
    for bad in
        [r#"{"selector":{"flowId":"x"}}"#, r#"{"selector":[]}"#, r#"{"lastN":-1}"#, r#"{"selector":{"ids":"1"}}"#]
    {
        assert_eq!(rpc(&d, "GetOperations", bad).status, 400, "{bad}");
    }
    cleanup(d);
}

fn wait_op(d: &Daemon, id: &str) -> Value {
    for _ in 0..600 {
        let r = call(d, "GET", &format!("/1.0/operations/{id}"), "");
        let op = field(&r.json(), &["metadata"]).clone();
        if !matches!(s(&op, &["status"]), "STATUS_PENDING" | "STATUS_INPROGRESS") {
            return op;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("operation {id} did not finish");
}

fn big_app_file(d: &Daemon) {
    // Sparse: the archive still carries every byte, which takes the backup a while.
    let f = std::fs::File::create(d.options.root.join("var/lib/app/big.img")).unwrap();
    f.set_len(1 << 30).unwrap();
}

#[test]
fn a_non_blocking_run_can_be_polled_and_cancelled() {
    let d = daemon();
    create(&d, "nightly", "");
    big_app_file(&d);
    let r = call(&d, "POST", "/1.0/plans/nightly/:run", "");
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_eq!(s(&v, &["type"]), "async");
    let id = s(&v, &["metadata", "id"]).to_owned();
    assert_eq!(s(&v, &["operation"]), format!("/1.0/operations/{id}"));
    // A second run while one is queued or running is another operation or the same queued one.
    let cancel = call(&d, "DELETE", &format!("/1.0/operations/{id}"), "");
    assert_eq!(cancel.status, 200, "{}", cancel.text());
    let op = wait_op(&d, &id);
    assert_eq!(s(&op, &["status"]), "STATUS_USER_CANCELLED");
    let dest = d.options.root.join("srv/backups/nightly");
    let left: Vec<_> =
        std::fs::read_dir(&dest).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing is left of a cancelled backup: {left:?}");
    assert_eq!(call(&d, "DELETE", &format!("/1.0/operations/{id}"), "").status, 409, "finished work");
    // Backrest's Cancel: finished or unknown work is no error, as upstream; both request forms.
    for body in [
        format!(r#"{{"value":"{id}"}}"#),
        format!(r#"{{"operationId":"{id}"}}"#),
        format!(r#"{{"operation_id":{id}}}"#),
        r#"{"operationId":"999999"}"#.to_owned(),
    ] {
        let r = rpc(&d, "Cancel", &body);
        assert_eq!((r.status, r.text()), (200, "{}".to_owned()), "{body}");
    }
    assert_eq!(rpc(&d, "Cancel", "{}").status, 400, "an operation id is required");
    assert_eq!(rpc(&d, "Cancel", r#"{"operationId":"x"}"#).status, 400);
    assert_eq!(call(&d, "GET", "/1.0/operations/999999", "").status, 404);
    let log = call(&d, "GET", &format!("/1.0/operations/{id}/log"), "");
    assert!(log.text().contains("cancelled"), "{}", log.text());
    let state = call(&d, "GET", "/1.0/plans/nightly", "").json();
    assert_eq!(s(&state, &["metadata", "state", "last_backup", "status"]), "USER_CANCELLED");
    cleanup(d);
}

#[test]
fn a_backup_killed_midway_reads_error_after_restart_and_leaves_nothing_live() {
    let mut d = daemon();
    create(&d, "nightly", "");
    big_app_file(&d);
    let r = call(&d, "POST", "/1.0/plans/nightly/:run", "");
    let id = s(&r.json(), &["metadata", "id"]).to_owned();
    for _ in 0..400 {
        let op = call(&d, "GET", &format!("/1.0/operations/{id}"), "").json();
        if s(&op, &["metadata", "status"]) == "STATUS_INPROGRESS" {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    d.restart();
    let op = field(&call(&d, "GET", &format!("/1.0/operations/{id}"), "").json(), &["metadata"]).clone();
    // A gigabyte takes far longer than the kill.
    assert_eq!(s(&op, &["status"]), "STATUS_ERROR");
    assert_eq!(s(&op, &["displayMessage"]), "interrupted by restart");
    let dest = d.options.root.join("srv/backups/nightly");
    let left: Vec<_> =
        std::fs::read_dir(&dest).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "no partial file is left: {left:?}");
    let records = call(&d, "GET", "/v1/containers/app/backups", "");
    assert_eq!(records.text(), r#"{"data":[],"includes":{"integrations":{}}}"#);
    std::fs::remove_file(d.options.root.join("var/lib/app/big.img")).unwrap();
    // A damaged journal tail (a crash mid-append) is skipped, not fatal.
    d.stop();
    let journal = d.data.join("operations.log");
    let mut text = std::fs::read(&journal).unwrap();
    text.extend_from_slice(b"{\"id\":\"77\",\"modno\":\"9");
    std::fs::write(&journal, text).unwrap();
    d.restart();
    let ops = operations(&d, "{}");
    assert!(ids(&ops).contains(&id), "{ops:?}");
    assert_eq!(rpc(&d, "Backup", r#"{"value":"nightly"}"#).status, 200, "{}", d.stderr());
    cleanup(d);
}

fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn a_restore_job_from_a_record_brings_the_state_back() {
    let d = daemon();
    create(&d, "nightly", "");
    assert_eq!(rpc(&d, "Backup", r#"{"value":"nightly"}"#).status, 200);
    let list = call(&d, "GET", "/v1/containers/app/backups", "");
    assert_eq!(list.status, 200);
    let v = list.json();
    let Value::Array(records) = field(&v, &["data"]) else { panic!() };
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(s(rec, &["container_id"]), "app");
    assert_eq!(s(rec, &["state", "current"]), "live");
    let backup = s(rec, &["id"]).to_owned();
    assert_eq!(backup.len(), 24);
    // Cycle's ids are 24-hex: the plan's destination is an integration with one, and the
    // record points at it.
    let integration_id = s(rec, &["target", "integration_id"]).to_owned();
    assert!(is_object_id(&integration_id), "{integration_id}");
    let integration = field(&v, &["includes", "integrations", &integration_id]);
    assert_eq!(s(integration, &["id"]), integration_id);
    assert_eq!(s(integration, &["extra", "plan_id"]), "nightly");
    assert_eq!(s(integration, &["vendor"]), "nfs");
    assert_eq!(s(integration, &["auth", "secret"]), "[redacted]");
    assert!(is_object_id(s(integration, &["hub_id"])) && is_object_id(s(integration, &["creator", "id"])));
    // Events not yet happened read as Cycle's zero time; they are always there.
    assert_eq!(s(rec, &["events", "deleted"]), "0001-01-01T00:00:00Z");
    // The same record under steward's own container; not under an unknown one.
    assert_eq!(call(&d, "GET", &format!("/v1/containers/steward/backups/{backup}"), "").status, 200);
    // Errors come in the spec's envelope with its codes.
    for (path, code) in [
        ("/v1/containers/nope/backups".to_owned(), "404.container"),
        ("/v1/containers/app/backups/000000000000000000000fff".to_owned(), "404.container.backup"),
        ("/v1/jobs/000000000000000000000fff".to_owned(), "404.job"),
        ("/v1/jobs/12".to_owned(), "404.job"),
    ] {
        let r = call(&d, "GET", &path, "");
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(s(&r.json(), &["error", "code"]), code, "{path}: {}", r.text());
        assert!(matches!(field(&r.json(), &["data"]), Value::Null), "{}", r.text());
    }
    let r = d.connect().send("GET", "/v1/containers/app/backups", &[("Authorization", "Bearer wrong")], b"");
    assert_eq!((r.status, s(&r.json(), &["error", "code"])), (401, "401.auth-invalid"), "{}", r.text());
    // A key made with Cycle's name for the view capability views, and is told what it lacks.
    let made = call(&d, "POST", "/1.0/keys", r#"{"name":"viewer","capabilities":["containers-backups-view"]}"#);
    assert!(made.status < 300, "{}", made.text());
    let viewer = format!("Bearer {}", s(&made.json(), &["metadata", "secret"]));
    let r = d.connect().send("GET", "/v1/containers/app/backups", &[("Authorization", &viewer)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r =
        d.connect().send("DELETE", &format!("/v1/containers/app/backups/{backup}"), &[("Authorization", &viewer)], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s(&r.json(), &["error", "code"]), "403.permissions");
    assert_eq!(s(&r.json(), &["error", "extra", "capability"]), "containers-backups-manage");

    // Change the state, then restore the record.
    let app = d.options.root.join("var/lib/app");
    std::fs::write(app.join("config.ini"), "changed\n").unwrap();
    assert_eq!(d.post_form(&format!("{ADMIN}/setup?token=owner"), &[("newtoken", b"changed")]).status, 200);
    let path = format!("/v1/containers/app/backups/{backup}/tasks");
    let auth = [("Authorization", "Bearer changed")];
    for (body, status) in [
        ("{}", 400),
        (r#"{"action":"explode"}"#, 400),
        ("nope", 400),
        (r#"{"action":"restore","contents":{"instance_id":"elsewhere"}}"#, 404),
    ] {
        let r = d.connect().send("POST", &path, &auth, body.as_bytes());
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().starts_with(r#"{"error":{"status":"#), "{}", r.text());
    }
    let r = d.connect().send("POST", &path, &auth, br#"{"action":"restore","contents":{}}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let v = r.json();
    assert_eq!(s(&v, &["data", "action"]), "restore");
    let job = s(&v, &["data", "job", "id"]).to_owned();
    assert!(is_object_id(&job), "{job}");
    let Value::Array(tasks) = field(&v, &["data", "job", "tasks"]) else { panic!() };
    let Value::Array(steps) = field(&tasks[0], &["steps"]) else { panic!() };
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|st| !s(st, &["started"]).is_empty()), "a step always has started: {}", r.text());
    let mut done = None;
    // The restored token is back as soon as the job completes: ask with the current one until
    // it is refused, then with the restored one (one failure, not one a poll: the throttle
    // counts them, and under qemu a restore takes many polls).
    let mut token = "Bearer changed";
    for _ in 0..400 {
        let r = d.connect().send("GET", &format!("/v1/jobs/{job}"), &[("Authorization", token)], b"");
        if r.status == 401 && token == "Bearer changed" {
            token = "Bearer owner";
            continue;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if s(&v, &["data", "state", "current"]) == "completed" {
            done = Some(v);
            break;
        }
        assert_ne!(s(&v, &["data", "state", "current"]), "error", "{}", r.text());
        std::thread::sleep(Duration::from_millis(25));
    }
    let v = done.expect("the restore job completes");
    // The job as Cycle's trackJob reads it: its state, and each task's.
    assert!(matches!(field(&v, &["data", "state", "error"]), Value::Null));
    assert_eq!(s(&v, &["data", "caption"]), "Restore backup");
    assert!(is_object_id(s(&v, &["data", "hub_id"])));
    let Value::Array(tasks) = field(&v, &["data", "tasks"]) else { panic!() };
    assert_eq!(s(&tasks[0], &["state", "current"]), "completed");
    assert!(is_object_id(s(&tasks[0], &["id"])));
    let Value::Array(steps) = field(&tasks[0], &["steps"]) else { panic!() };
    assert!(steps.iter().all(|st| !s(st, &["completed"]).is_empty()));
    assert_eq!(std::fs::read_to_string(app.join("config.ini")).unwrap(), "app config v1\n");
    assert_eq!(call(&d, "GET", &format!("{ADMIN}/version"), "").status, 200, "the backed-up token is back");

    // One log per run: the backup and the restore.
    let logs = call(&d, "GET", &format!("/v1/containers/app/backups/{backup}/logs"), "");
    let v = logs.json();
    let Value::Array(items) = field(&v, &["data"]) else { panic!() };
    assert_eq!(items.iter().map(|i| s(i, &["type"]).to_owned()).collect::<Vec<_>>(), ["backup", "restore"]);
    assert!(s(&items[1], &["log"]).contains("Restoring"), "{}", logs.text());

    // Delete: a 202 job, then the record reads deleted and the file is gone.
    let r = call(&d, "DELETE", &format!("/v1/containers/app/backups/{backup}"), "");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(s(&r.json(), &["data", "action"]), "delete");
    let file = d.options.root.join(s(rec, &["target", "path"]).trim_start_matches('/'));
    for _ in 0..400 {
        if !file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let got = call(&d, "GET", &format!("/v1/containers/app/backups/{backup}"), "").json();
    assert_eq!(s(&got, &["data", "state", "current"]), "deleted");
    assert!(!s(&got, &["data", "events", "deleted"]).is_empty());
    assert!(!file.exists());
    assert_eq!(call(&d, "DELETE", &format!("/v1/containers/app/backups/{backup}"), "").status, 409);
    let r = call(&d, "POST", &path, r#"{"action":"restore"}"#);
    assert_eq!(r.status, 409, "a deleted backup cannot be restored: {}", r.text());
    assert_eq!(d.get("/v1/containers/app/backups").status, 401);
    cleanup(d);
}

#[test]
fn credentials_never_appear_in_any_answer() {
    let d = daemon();
    create(&d, "nightly", "");
    assert_eq!(rpc(&d, "Backup", r#"{"value":"nightly"}"#).status, 200);
    let backup = s(&operations(&d, "{}")[0], &["snapshotId"]).to_owned();
    let answers = [
        call(&d, "GET", "/1.0/plans", ""),
        call(&d, "GET", "/1.0/plans?recursion=1", ""),
        call(&d, "GET", "/1.0/plans/nightly", ""),
        call(&d, "PUT", "/1.0/plans/nightly", &plan_json("nightly", "")),
        call(&d, "GET", "/1.0/operations?recursion=1", ""),
        call(&d, "GET", "/1.0/operations/1/log", ""),
        rpc(&d, "GetOperations", "{}"),
        call(&d, "GET", "/v1/containers/app/backups", ""),
        call(&d, "GET", &format!("/v1/containers/app/backups/{backup}"), ""),
        call(&d, "GET", &format!("/v1/containers/app/backups/{backup}/logs"), ""),
        call(&d, "GET", "/api/v1/admin/endpoints", ""),
    ];
    for r in &answers {
        assert!(r.status < 300, "{}", r.text());
        assert!(!r.text().contains(SECRET), "{}", r.text());
    }
    let created = call(&d, "POST", "/1.0/plans", &plan_json("second", ""));
    assert!(created.status == 200 && !created.text().contains(SECRET));
    assert!(!std::fs::read_to_string(d.data.join("audit.log")).unwrap().contains(SECRET));
    // The secret is kept (for the hooks), privately.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(d.data.join("plans.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o077, 0);
    cleanup(d);
}

#[test]
fn operations_list_filters_by_plan_and_status() {
    let d = daemon();
    create(&d, "a", "");
    assert_eq!(rpc(&d, "Backup", r#"{"value":"a"}"#).status, 200);
    let all = call(&d, "GET", "/1.0/operations", "");
    assert_eq!(all.text().matches("/1.0/operations/").count(), 2, "{}", all.text());
    let ok = call(&d, "GET", "/1.0/operations?plan=a&status=SUCCESS&recursion=1", "");
    assert_eq!(ok.text().matches("\"operationBackup\"").count(), 1, "{}", ok.text());
    assert_eq!(call(&d, "GET", "/1.0/operations?plan=zzz", "").text().matches("/1.0/operations/").count(), 0);
    assert_eq!(call(&d, "GET", "/1.0/operations?status=BOGUS", "").status, 400);
    let parsed: Value = json::from_str(&ok.text()).unwrap();
    assert_eq!(s(&parsed, &["type"]), "sync");
    cleanup(d);
}

/// The JSON names of Backrest's `Operation` (v1/operations.proto) and of the members steward
/// fills: a strict decoder (protojson's default, `fromJson` with `ignoreUnknownFields:false`)
/// refuses any other key.
const OPERATION_FIELDS: &[&str] = &[
    "id",
    "originalId",
    "modno",
    "flowId",
    "originalFlowId",
    "repoId",
    "repoGuid",
    "planId",
    "instanceId",
    "originalInstanceKeyid",
    "snapshotId",
    "status",
    "unixTimeStartMs",
    "unixTimeEndMs",
    "displayMessage",
    "logref",
    "operationBackup",
    "operationIndexSnapshot",
    "operationForget",
    "operationPrune",
    "operationRestore",
    "operationStats",
    "operationRunHook",
    "operationCheck",
    "operationRunCommand",
];
const MEMBER_FIELDS: &[(&str, &[&str])] = &[
    ("operationBackup", &["lastStatus", "errors", "dryRun"]),
    ("operationForget", &["forget", "policy"]),
    ("operationRestore", &["path", "target", "lastStatus"]),
    ("operationCheck", &["output", "outputLogref"]),
];
const SUMMARY_FIELDS: &[&str] = &[
    "filesNew",
    "filesChanged",
    "filesUnmodified",
    "dirsNew",
    "dirsChanged",
    "dirsUnmodified",
    "dataBlobs",
    "treeBlobs",
    "dataAdded",
    "totalFilesProcessed",
    "totalBytesProcessed",
    "totalDuration",
    "snapshotId",
];

fn strictly_an_operation(op: &Value) {
    let Value::Object(m) = op else { panic!("{op:?}") };
    for (k, v) in m.iter() {
        assert!(OPERATION_FIELDS.contains(&k.as_str()), "Operation has no field {k:?}: {op:?}");
        if let Some((_, allowed)) = MEMBER_FIELDS.iter().find(|(name, _)| name == k) {
            let Value::Object(member) = v else { panic!("{k}: {v:?}") };
            for key in member.keys() {
                assert!(allowed.contains(&key.as_str()), "{k} has no field {key:?}: {v:?}");
            }
        }
    }
    if let Value::Object(summary) = field_or_null(op, &["operationBackup", "lastStatus", "summary"]) {
        for key in summary.keys() {
            assert!(SUMMARY_FIELDS.contains(&key.as_str()), "BackupProgressSummary has no field {key:?}");
        }
    }
}

fn field_or_null<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter()
        .try_fold(v, |v, k| match v {
            Value::Object(m) => m.get(*k),
            _ => None,
        })
        .unwrap_or(&NULL)
}

#[test]
fn get_operations_answers_only_what_the_protos_define_and_reads_requests_as_protojson_does() {
    let d = daemon();
    create(&d, "a", r#","retention":{"keep_last_n":1}"#);
    for _ in 0..2 {
        assert_eq!(rpc(&d, "Backup", r#"{"value":"a"}"#).status, 200);
    }
    let all = operations(&d, "{}");
    assert!(all.len() >= 3, "two backups and a forget: {all:?}");
    all.iter().for_each(strictly_an_operation);
    let summary = field(&all[0], &["operationBackup", "lastStatus", "summary"]);
    assert!(s(summary, &["dataAdded"]).parse::<u64>().unwrap() > 0);
    // Proto field names are read as protojson reads them, not ignored (which widened results).
    assert_eq!(operations(&d, r#"{"selector":{"plan_id":"zzz"}}"#).len(), 0);
    assert_eq!(operations(&d, r#"{"selector":{"plan_id":"a"},"last_n":"1"}"#).len(), 1);
    let flow = s(&all[0], &["flowId"]).to_owned();
    let by_proto_name = ids(&operations(&d, &format!(r#"{{"selector":{{"flow_id":"{flow}"}}}}"#)));
    assert!(by_proto_name.len() < all.len(), "flow_id filters");
    assert_eq!(by_proto_name, ids(&operations(&d, &format!(r#"{{"selector":{{"flowId":"{flow}"}}}}"#))));
    assert_eq!(operations(&d, r#"{"selector":{"modno_gte":"999999"}}"#).len(), 0);
    // The repository's guid is stable and selects; another repo's, or a synced instance's, nothing.
    let guid = s(&all[0], &["repoGuid"]).to_owned();
    assert_eq!(guid.len(), 32);
    assert!(all.iter().all(|o| s(o, &["repoGuid"]) == guid));
    assert_eq!(operations(&d, &format!(r#"{{"selector":{{"repoGuid":"{guid}"}}}}"#)).len(), all.len());
    assert_eq!(operations(&d, r#"{"selector":{"repo_guid":"0123"}}"#).len(), 0);
    assert_eq!(operations(&d, r#"{"selector":{"originalInstanceKeyid":"peer-key"}}"#).len(), 0);
    // A dry run writes nothing and forgets nothing: it is refused, and the history is unchanged.
    let dest = d.options.root.join("srv/backups/a");
    let before: Vec<_> = std::fs::read_dir(&dest).unwrap().flatten().map(|e| e.file_name()).collect();
    for body in [r#"{"value":"a","dryRun":true}"#, r#"{"value":"a","dry_run":true}"#] {
        let r = rpc(&d, "Backup", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains("dry run"), "{}", r.text());
    }
    let after: Vec<_> = std::fs::read_dir(&dest).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(before.len(), after.len(), "nothing written or forgotten");
    assert_eq!(operations(&d, "{}").len(), all.len());
    assert_eq!(rpc(&d, "Backup", r#"{"value":"a","dryRun":"yes"}"#).status, 400);
    cleanup(d);
}

/// What the tools built on Backrest read (Home Assistant integrations, dashboard widgets):
/// GetConfig's repos and plans, GetSummaryDashboard's plan summaries, in the protos' JSON.
#[test]
fn get_config_and_the_summary_dashboard_answer_what_tools_read() {
    let d = daemon();
    create(&d, "nightly", r#","schedule":{"cron":"0 3 * * *"},"retention":{"keep_last_n":3}"#);
    create(&d, "hourly", r#","schedule":{"every_hours":6},"retention":{"daily":7,"keep_last_n":1}"#);
    assert_eq!(rpc(&d, "Backup", r#"{"value":"nightly"}"#).status, 200);
    assert_eq!(rpc(&d, "Backup", r#"{"value":"nightly"}"#).status, 200);

    let config = rpc(&d, "GetConfig", "{}");
    assert_eq!(config.status, 200, "{}", config.text());
    let v = config.json();
    assert_eq!(s(&v, &["instance"]), "steward");
    assert!(!config.text().contains("\"auth\""), "no users or password hashes: {}", config.text());
    let Value::Array(repos) = field(&v, &["repos"]) else { panic!() };
    assert_eq!((s(&repos[0], &["id"]), s(&repos[0], &["guid"]).len()), ("local", 32));
    let ops = operations(&d, "{}");
    assert_eq!(s(&ops[0], &["repoGuid"]), s(&repos[0], &["guid"]), "the operations name the same repository");
    let Value::Array(plans) = field(&v, &["plans"]) else { panic!() };
    let nightly = plans.iter().find(|p| s(p, &["id"]) == "nightly").unwrap();
    assert_eq!(s(nightly, &["repo"]), "local");
    assert_eq!(s(nightly, &["schedule", "cron"]), "0 3 * * *");
    assert!(matches!(field(nightly, &["retention", "policyKeepLastN"]), Value::Number(_)));
    let Value::Array(paths) = field(nightly, &["paths"]) else { panic!() };
    assert!(paths.iter().any(|p| matches!(p, Value::String(s) if s == "/var/lib/app")), "{paths:?}");
    let hourly = plans.iter().find(|p| s(p, &["id"]) == "hourly").unwrap();
    assert!(matches!(field(hourly, &["schedule", "maxFrequencyHours"]), Value::Number(_)));
    assert!(matches!(field(hourly, &["retention", "policyTimeBucketed", "daily"]), Value::Number(_)));

    let dash = rpc(&d, "GetSummaryDashboard", "");
    assert_eq!(dash.status, 200, "{}", dash.text());
    let v = dash.json();
    let Value::Array(summaries) = field(&v, &["planSummaries"]) else { panic!() };
    let n = summaries.iter().find(|p| s(p, &["id"]) == "nightly").unwrap();
    assert_eq!(s(n, &["backupsSuccessLast30days"]), "2");
    assert_eq!(s(n, &["backupsFailed30days"]), "0");
    assert!(s(n, &["bytesAddedLast30days"]).parse::<u64>().unwrap() > 0);
    assert!(s(n, &["nextBackupTimeMs"]).parse::<i64>().unwrap() > 0);
    let Value::Array(statuses) = field(n, &["recentBackups", "status"]) else { panic!() };
    assert_eq!(statuses.len(), 2);
    let h = summaries.iter().find(|p| s(p, &["id"]) == "hourly").unwrap();
    assert_eq!(s(h, &["backupsSuccessLast30days"]), "0");
    let Value::Array(repos) = field(&v, &["repoSummaries"]) else { panic!() };
    assert_eq!(s(&repos[0], &["backupsSuccessLast30days"]), "2");
    // ListSnapshots: the backups kept, as ResticSnapshots, with the ids operations carry.
    let snaps = rpc(&d, "ListSnapshots", r#"{"planId":"nightly"}"#);
    assert_eq!(snaps.status, 200, "{}", snaps.text());
    let Value::Array(list) = field(&snaps.json(), &["snapshots"]).clone() else { panic!() };
    assert_eq!(list.len(), 2, "{}", snaps.text());
    let ids: Vec<String> = operations(&d, r#"{"selector":{"planId":"nightly"}}"#)
        .iter()
        .filter(|o| matches!(o, Value::Object(m) if m.contains_key("operationBackup")))
        .map(|o| s(o, &["snapshotId"]).to_owned())
        .collect();
    assert_eq!(list.iter().map(|x| s(x, &["id"]).to_owned()).collect::<Vec<_>>(), ids);
    let Value::Array(tags) = field(&list[0], &["tags"]) else { panic!() };
    assert!(tags.iter().any(|t| matches!(t, Value::String(t) if t == "plan:nightly")));
    let hourly = rpc(&d, "ListSnapshots", r#"{"plan_id":"hourly"}"#);
    assert_eq!(hourly.text(), r#"{"snapshots":[]}"#, "proto names select too; hourly has none");
    let other_repo = rpc(&d, "ListSnapshots", r#"{"repoId":"elsewhere"}"#);
    assert_eq!(other_repo.text(), r#"{"snapshots":[]}"#);
    assert_eq!(rpc(&d, "ListSnapshots", r#"{"planId":7}"#).status, 400);
    // Read-only: a view key may ask, an unauthenticated caller may not.
    assert_eq!(d.connect().send("POST", "/v1.Backrest/GetSummaryDashboard", &[], b"{}").status, 401);
    cleanup(d);
}
