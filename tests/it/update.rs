//! POST/GET /update and /update/log with real packages made by `steward pack-update`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miniserde::json::Value;

use crate::util::{ADMIN, Daemon, Options, Resp, field, fixture_root_copy, run_cli, temp_dir};

const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev-keys");

struct Fixture {
    d: Daemon,
    work: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
        let _ = std::fs::remove_dir_all(&self.d.options.root);
    }
}

fn fixture() -> Fixture {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    Fixture { d, work: temp_dir("update") }
}

/// Deterministic, incompressible-looking payload.
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn pack(work: &Path, keys: &str, version: &str, data: &[u8]) -> Vec<u8> {
    pack_with(work, keys, version, data, "image")
}

/// A package made by `steward pack-update`, as a vendor would.
fn pack_with(work: &Path, keys: &str, version: &str, data: &[u8], kind: &str) -> Vec<u8> {
    let payload_path = work.join(format!("payload-{kind}-{version}"));
    std::fs::write(&payload_path, data).unwrap();
    let changelog = work.join("changelog");
    std::fs::write(&changelog, format!("# Changelog\n## {version}\n* tested\n")).unwrap();
    let out = work.join(format!("pkg-{kind}-{version}.enc"));
    let (ok, _, err) = run_cli(&[
        "pack-update",
        "--signing-key",
        &format!("{keys}/signing.key"),
        "--encryption-key",
        &format!("{keys}/update.key"),
        "--version",
        version,
        "--changelog",
        changelog.to_str().unwrap(),
        "--builddate",
        "1800000000",
        "--kind",
        kind,
        "--payload",
        payload_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "pack-update failed: {err}");
    std::fs::read(out).unwrap()
}

fn upload(d: &Daemon, package: &[u8]) -> Resp {
    d.post_file(&format!("{ADMIN}/update?token=owner"), "update", "software_package.enc", package)
}

fn status(d: &Daemon) -> Value {
    let r = d.get(&format!("{ADMIN}/update?token=owner"));
    assert_eq!(r.status, 200);
    r.json()
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

/// Polls until the update is no longer running (bounded).
fn wait_done(d: &Daemon) -> Value {
    let started = Instant::now();
    loop {
        let s = status(d);
        if str_of(field(&s, &["status"])) != "running" {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "update still running after 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn slot(f: &Fixture, name: &str) -> Option<Vec<u8>> {
    std::fs::read(f.d.options.root.join(format!("var/lib/steward/{name}"))).ok()
}

#[test]
fn no_update_yet_reads_null() {
    let f = fixture();
    assert_eq!(f.d.get(&format!("{ADMIN}/update?token=owner")).text(), r#"{"status":null,"log":null}"#);
    assert_eq!(f.d.get(&format!("{ADMIN}/update/log?token=owner")).status, 404);
    assert_eq!(f.d.get(&format!("{ADMIN}/update")).status, 403);
}

#[test]
fn a_signed_package_is_written_to_the_inactive_slot_and_recorded() {
    let f = fixture();
    let data = payload(3 * 1024 * 1024 + 17, 1);
    let r = upload(&f.d, &pack(&f.work, DEV_KEYS, "1.3.0", &data));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/api/v1/admin/update"));
    assert_eq!(r.text(), r#"{"Status":"202 Accepted","Location":"/api/v1/admin/update"}"#);
    let s = wait_done(&f.d);
    assert_eq!(str_of(field(&s, &["status"])), "success", "{s:?}");
    assert!(matches!(field(&s, &["percentage"]), Value::Number(miniserde::json::Number::U64(100))));
    let log = str_of(field(&s, &["log"]));
    assert!(log.contains('\n') && !log.contains("\\n"), "real newlines in the log: {log:?}");
    assert!(log.lines().count() <= 10);
    // The first update goes to slot B (A is active when nothing is recorded).
    assert_eq!(slot(&f, "slot-b.img").as_deref(), Some(data.as_slice()));
    assert!(slot(&f, "slot-a.img").is_none());
    assert_eq!(f.d.get(&format!("{ADMIN}/version?token=owner")).text(), r#"{"version":"1.3.0"}"#);
    assert!(f.d.get(&format!("{ADMIN}/changelog?token=owner")).text().contains("## 1.3.0"));
    assert_eq!(f.d.get(&format!("{ADMIN}/build?token=owner")).text(), r#"{"builddate":"1800000000"}"#);
    let full = f.d.get(&format!("{ADMIN}/update/log?token=owner"));
    assert_eq!(full.status, 200);
    assert!(full.text().contains("successful"));
    // The next one goes to slot A, and B keeps the previous system.
    let data2 = payload(100_000, 2);
    assert_eq!(upload(&f.d, &pack(&f.work, DEV_KEYS, "1.4.0", &data2)).status, 202);
    assert_eq!(str_of(field(&wait_done(&f.d), &["status"])), "success");
    assert_eq!(slot(&f, "slot-a.img").as_deref(), Some(data2.as_slice()));
    assert_eq!(slot(&f, "slot-b.img").as_deref(), Some(data.as_slice()));
}

fn expect_failure(f: &Fixture, package: &[u8], code: &str) -> Value {
    let r = upload(&f.d, package);
    assert_eq!(r.status, 202, "{}", r.text());
    let s = wait_done(&f.d);
    assert_eq!(str_of(field(&s, &["status"])), "failed", "{s:?}");
    assert_eq!(str_of(field(&s, &["error-code"])), code, "{s:?}");
    assert!(!str_of(field(&s, &["error-message"])).is_empty());
    s
}

#[test]
fn bad_packages_fail_with_the_documented_codes_and_leave_the_slots_alone() {
    let f = fixture();
    // Something in slot B already: a failed verification must not touch it.
    let before = b"previous system image".to_vec();
    let slot_b = f.d.options.root.join("var/lib/steward/slot-b.img");
    std::fs::create_dir_all(slot_b.parent().unwrap()).unwrap();
    std::fs::write(&slot_b, &before).unwrap();
    let good = pack(&f.work, DEV_KEYS, "1.3.0", &payload(300_000, 3));

    // Refused before the payload: the manifest's signature, the format, the version.
    let other_keys = f.work.join("other-keys");
    assert!(run_cli(&["keygen", "--out", other_keys.to_str().unwrap()]).0);
    expect_failure(&f, &pack(&f.work, other_keys.to_str().unwrap(), "1.3.0", &payload(1000, 4)), "E1005");
    expect_failure(&f, b"this is not an update package at all", "E1005");
    expect_failure(&f, &pack(&f.work, DEV_KEYS, "1.2.3", &payload(1000, 5)), "E1001");
    expect_failure(&f, &pack(&f.work, DEV_KEYS, "1.0.9", &payload(1000, 6)), "E1001");
    // Refused at its head with megabytes still to come: the rest is read and dropped, and the
    // client gets its answer rather than a stalled upload.
    let started = Instant::now();
    expect_failure(&f, &pack(&f.work, DEV_KEYS, "1.0.8", &payload(8 * 1024 * 1024, 6)), "E1001");
    assert!(started.elapsed() < Duration::from_secs(20), "answered after {:?}", started.elapsed());
    assert_eq!(std::fs::read(&slot_b).unwrap(), before, "slot B untouched by packages refused at their head");
    // Damaged in the payload: it streams into the inactive slot B, which is never made
    // active; slot A (running) is not touched and nothing is recorded.
    let mut tampered = good.clone();
    let i = tampered.len() / 2;
    tampered[i] ^= 0x40;
    expect_failure(&f, &tampered, "E1005");
    expect_failure(&f, &good[..good.len() - 10], "E1005");
    assert!(!f.d.options.root.join("var/lib/steward/slot-a.img").exists());
    assert!(!f.d.options.root.join("var/lib/steward/active-slot").exists(), "no slot switch recorded");
    assert_eq!(f.d.get(&format!("{ADMIN}/version?token=owner")).text(), r#"{"version":"1.2.3"}"#);
    // And the good one still applies afterwards.
    assert_eq!(upload(&f.d, &good).status, 202);
    assert_eq!(str_of(field(&wait_done(&f.d), &["status"])), "success");
}

#[test]
fn missing_package_and_unknown_fields_are_400() {
    let f = fixture();
    let r = f.d.post_form(&format!("{ADMIN}/update?token=owner"), &[]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("E1003"), "{}", r.text());
    let r = f.d.post_file(&format!("{ADMIN}/update?token=owner"), "update", "empty.enc", b"");
    assert_eq!(r.status, 400);
    let r = f.d.post_file(&format!("{ADMIN}/update?token=owner"), "package", "p.enc", b"x");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Error-Message"), Some("Unknown parameter: package"));
    assert_eq!(
        f.d.get(&format!("{ADMIN}/update?token=owner")).text(),
        r#"{"status":null,"log":null}"#,
        "no job was started: a job starts with the package's first byte"
    );
    // Without credentials the upload is refused before it is read.
    let r = f.d.post_file(&format!("{ADMIN}/update"), "update", "p.enc", b"x");
    assert_eq!(r.status, 403);
    // No spooled upload is left behind.
    let left: Vec<_> = std::fs::read_dir(f.d.data.join("uploads")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// An upload held open half-way, as a slow client sends it: the head and `sent` bytes of
/// the body of `POST /update` carrying `package`.
fn start_upload(d: &Daemon, package: &[u8], sent: usize) -> crate::util::Client {
    let (ct, body) = crate::util::file_part("update", "software_package.enc", package);
    let head = format!(
        "POST {ADMIN}/update?token=owner HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut c = d.connect();
    c.write_raw(&[head.as_bytes(), &body[..sent]].concat());
    c
}

/// Polls `GET /update` until `done` holds (bounded).
fn wait_for(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = status(d);
        if done(&s) {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: still {s:?} after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_update_at_a_time_and_a_restart_marks_it_interrupted() {
    let mut f = fixture();
    let big = pack(&f.work, DEV_KEYS, "2.0.0", &payload(4 * 1024 * 1024, 7));
    let held = start_upload(&f.d, &big, 1024 * 1024);
    wait_for(&f.d, "the upload's job", |s| matches!(field(s, &["status"]), Value::String(s) if s == "running"));
    // The second is refused from its head, before its body is read.
    let r = upload(&f.d, b"second package");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("E1004"), "{}", r.text());
    // Killed (SIGKILL) while the first streams in.
    f.d.restart();
    drop(held);
    let s = status(&f.d);
    assert_eq!(str_of(field(&s, &["status"])), "failed", "{s:?}");
    assert!(str_of(field(&s, &["error-message"])).starts_with("interrupted"), "{s:?}");
    assert_eq!(f.d.get(&format!("{ADMIN}/version?token=owner")).text(), r#"{"version":"1.2.3"}"#);
    // A new update can start after the interruption.
    assert_eq!(upload(&f.d, &pack(&f.work, DEV_KEYS, "2.0.1", &payload(1000, 8))).status, 202);
    assert_eq!(str_of(field(&wait_done(&f.d), &["status"])), "success");
}

#[test]
fn an_upload_cut_off_fails_the_job_and_switches_nothing() {
    let f = fixture();
    let good = pack(&f.work, DEV_KEYS, "2.0.0", &payload(2 * 1024 * 1024, 9));
    let held = start_upload(&f.d, &good, good.len() - 100);
    wait_for(&f.d, "the upload's job", |s| matches!(field(s, &["status"]), Value::String(s) if s == "running"));
    drop(held);
    let s = wait_done(&f.d);
    assert_eq!(str_of(field(&s, &["status"])), "failed", "{s:?}");
    assert_eq!(str_of(field(&s, &["error-code"])), "E1003", "{s:?}");
    assert!(!f.d.options.root.join("var/lib/steward/active-slot").exists());
    assert_eq!(f.d.get(&format!("{ADMIN}/version?token=owner")).text(), r#"{"version":"1.2.3"}"#);
}

fn vm_kib(pid: u32, field_name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field_name))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[test]
fn a_50_mib_upload_does_not_grow_the_server() {
    let f = fixture();
    // Warm up: one small upload, so allocator and TLS buffers are at their working size.
    upload(&f.d, b"warm-up");
    wait_done(&f.d);
    let before = vm_kib(f.d.pid(), "VmHWM:");
    let big = payload(50 * 1024 * 1024, 9);
    let r = upload(&f.d, &big);
    assert_eq!(r.status, 202);
    let s = wait_done(&f.d);
    assert_eq!(str_of(field(&s, &["error-code"])), "E1005", "garbage is refused");
    let after = vm_kib(f.d.pid(), "VmHWM:");
    assert!(after < before + 4 * 1024, "peak RSS grew from {before} KiB to {after} KiB for a 50 MiB upload");
}

fn pack_kind(work: &Path, version: &str, data: &[u8], kind: &str) -> Vec<u8> {
    pack_with(work, DEV_KEYS, version, data, kind)
}

fn bundle_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn bundles_go_to_the_install_hook_and_need_one() {
    // The dev board has no install hook: bundles are refused there.
    let f = fixture();
    let bundle = bundle_tar(&[("bin/app", b"#!/bin/sh\necho v2\n"), ("etc/app.conf", b"level=2\n")]);
    expect_failure(&f, &pack_kind(&f.work, "1.5.0", &bundle, "bundle"), "E1002");
    drop(f);

    let board_dir = temp_dir("board");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let hook =
        r#""install": ["/bin/sh", "-c", "mkdir -p \"$STEWARD_ROOT/opt/app\" && cp -r . \"$STEWARD_ROOT/opt/app/\""],"#;
    let board = board_dir.join("bundle.json");
    std::fs::write(&board, text.replacen("\"update\": {", &format!("\"update\": {{ {hook}"), 1)).unwrap();
    let d = Daemon::with(Options { board: Some(board.display().to_string()), root: fixture_root_copy(), plain: false });
    d.setup("owner");
    let f = Fixture { d, work: temp_dir("update") };
    assert_eq!(upload(&f.d, &pack_kind(&f.work, "1.5.0", &bundle, "bundle")).status, 202);
    let s = wait_done(&f.d);
    assert_eq!(str_of(field(&s, &["status"])), "success", "{s:?}");
    assert_eq!(std::fs::read(f.d.options.root.join("opt/app/etc/app.conf")).unwrap(), b"level=2\n");
    assert_eq!(f.d.get(&format!("{ADMIN}/version?token=owner")).text(), r#"{"version":"1.5.0"}"#);
    assert!(slot(&f, "slot-b.img").is_none(), "bundles do not touch the slots");
    // A bundle with an escaping path is refused before the hook runs.
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..11].copy_from_slice(b"../../x.txt");
    h.set_size(1);
    h.set_cksum();
    evil.append(&h, &b"x"[..]).unwrap();
    expect_failure(&f, &pack_kind(&f.work, "1.6.0", &evil.into_inner().unwrap(), "bundle"), "E1002");
    let _ = std::fs::remove_dir_all(board_dir);
}
