//! Capabilities are a ceiling on effects, not only on routes: no key runs a command, writes
//! outside what its capability names, reads steward's secrets or restores steward's own
//! state unless it holds `admin` (issue 16, items 1 and 2).

use std::time::Duration;

use miniserde::json::Value;

use crate::util::owned_daemon as daemon;
use crate::util::string_at as s;
use crate::util::{ADMIN, Daemon, Resp, cleanup, field, temp_dir};

const NON_ADMIN: [&str; 6] = ["read", "backups-view", "backups-manage", "update", "network", "storage-destructive"];

fn with(d: &Daemon, method: &str, path: &str, auth: &str, body: &[u8]) -> Resp {
    d.with_auth(method, path, auth, body)
}

/// A key with the capabilities (comma-separated); its bearer header value.
fn key(d: &Daemon, name: &str, caps: &str) -> String {
    let caps: Vec<String> = caps.split(',').map(|c| format!("\"{c}\"")).collect();
    let body = format!(r#"{{"name":"{name}","capabilities":[{}]}}"#, caps.join(","));
    let r = with(d, "POST", "/1.0/keys", "Bearer owner", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    format!("Bearer {}", s(&r.json(), &["metadata", "secret"]))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A well-formed steward backup (manifest, entries, index) of the dev board.
pub fn steward_archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let manifest = br#"{"format":1,"board":"dev"}"#;
    let mut index = vec![format!(
        r#"{{"path":"steward-backup.json","type":"file","size":{},"sha256":"{}"}}"#,
        manifest.len(),
        sha256_hex(manifest)
    )];
    let append = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, data).unwrap();
    };
    append(&mut b, "steward-backup.json", manifest);
    for (name, data) in entries {
        append(&mut b, name, data);
        index.push(format!(
            r#"{{"path":"{name}","type":"file","size":{},"sha256":"{}"}}"#,
            data.len(),
            sha256_hex(data)
        ));
    }
    let index = format!(r#"{{"format":1,"entries":[{}]}}"#, index.join(","));
    append(&mut b, "steward-index.json", index.as_bytes());
    b.into_inner().unwrap()
}

fn restore_form(d: &Daemon, auth: &str, archive: &[u8]) -> Resp {
    d.post_file_with(&format!("{ADMIN}/backup/restore"), &[("Authorization", auth)], "archive", "b.tar", archive)
}

#[test]
fn plan_hooks_run_anything_is_refused_without_admin() {
    let d = daemon();
    let manage = key(&d, "backup-bot", "backups-manage,backups-view");
    let pwned = temp_dir("pwned").join("pwned.txt");
    let exploit = format!(
        r#"{{"id":"esc","sources":{{"state":true}},"destination":{{"path":"/srv/backups/esc"}},
            "hooks":{{"on_success":["/bin/sh","-c","id > {}"]}}}}"#,
        pwned.display()
    );
    let r = with(&d, "POST", "/1.0/plans", &manage, exploit.as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("admin capability"), "{}", r.text());
    let r = with(&d, "POST", "/v1.Backrest/Backup", &manage, br#"{"value":"esc"}"#);
    assert_ne!(r.status, 200, "no such plan: {}", r.text());
    assert!(!pwned.exists(), "the command ran");

    // The board's named hooks are for anyone who may manage backups; an unknown name is 400.
    let named = br#"{"id":"named","sources":{"state":true},"destination":{"path":"/srv/backups/n"},
        "hooks":{"on_failure":"log"}}"#;
    let r = with(&d, "POST", "/1.0/plans", &manage, named);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s(&r.json(), &["metadata", "config", "hooks", "on_failure"]), "log");
    let unknown = br#"{"id":"u","sources":{"state":true},"destination":{"path":"/srv/backups/u"},"hooks":{"on_failure":"rm-rf"}}"#;
    let r = with(&d, "POST", "/1.0/plans", &manage, unknown);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("no hook named"), "{}", r.text());

    // Destinations lie below the board's roots, whoever asks.
    for auth in [manage.as_str(), "Bearer owner"] {
        for dest in ["/etc/cron.d", "/root/.ssh", "/srv", "/srv/backupsx", "/usr/lib/steward/hooks"] {
            let body = format!(r#"{{"id":"d","sources":{{"state":true}},"destination":{{"path":"{dest}"}}}}"#);
            let r = with(&d, "POST", "/1.0/plans", auth, body.as_bytes());
            assert_eq!(r.status, 400, "{dest}: {}", r.text());
            assert!(r.text().contains("board's destinations"), "{dest}: {}", r.text());
        }
    }

    // An admin may give a command; a backups-manage client may then send the plan back
    // with that same hook (a GET's config with another schedule), not with another command.
    let admin_plan = format!(
        r#"{{"id":"adm","sources":{{"state":true}},"destination":{{"path":"/srv/backups/adm"}},
            "hooks":{{"on_success":["/bin/sh","-c","echo ok > {}"]}}}}"#,
        pwned.display()
    );
    let r = with(&d, "POST", "/1.0/plans", "Bearer owner", admin_plan.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let got = with(&d, "GET", "/1.0/plans/adm", &manage, b"");
    let etag = got.header("ETag").unwrap().to_owned();
    let config = miniserde::json::to_string(field(&got.json(), &["metadata", "config"]));
    let rescheduled = config.replace(r#""schedule":{"disabled":true}"#, r#""schedule":{"every_hours":6}"#);
    assert_ne!(rescheduled, config, "{config}");
    let put = |body: &str, etag: &str| {
        d.connect().send("PUT", "/1.0/plans/adm", &[("Authorization", &manage), ("If-Match", etag)], body.as_bytes())
    };
    let r = put(&rescheduled, &etag);
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = with(&d, "GET", "/1.0/plans/adm", &manage, b"").header("ETag").unwrap().to_owned();
    let swapped = rescheduled.replace("echo ok", "id");
    assert_ne!(swapped, rescheduled);
    let r = put(&swapped, &etag);
    assert_eq!(r.status, 403, "{}", r.text());
    // The admin's hook runs when the backup does.
    let r = with(&d, "POST", "/v1.Backrest/Backup", &manage, br#"{"value":"adm"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_to_string(&pwned).unwrap(), "ok\n");
    cleanup(d);
}

#[test]
fn a_restore_mints_an_admin_token_is_refused_without_admin() {
    let d = daemon();
    let manage = key(&d, "backup-bot", "backups-manage");
    let chosen = "attacker-chosen-secret";
    let archive = steward_archive(&[
        ("steward/token", format!("{}\n", sha256_hex(chosen.as_bytes())).as_bytes()),
        ("var/lib/app/config.ini", b"restored by the key\n"),
    ]);
    let r = restore_form(&d, &manage, &archive);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("Error-Message").unwrap().contains("admin capability"), "{}", r.text());
    assert_eq!(d.get(&format!("{ADMIN}/version?token={chosen}")).status, 403, "the chosen secret is nothing");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    let config = d.options.root.join("var/lib/app/config.ini");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "app config v1\n", "nothing restored");
    // The same on the IncusOS surface.
    let r = with(&d, "POST", "/1.0/system/:restore", &manage, &archive);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(d.get(&format!("{ADMIN}/version?token={chosen}")).status, 403);

    // Application data alone is the key's to restore.
    let app_only = steward_archive(&[("var/lib/app/config.ini", b"restored by the key\n")]);
    let r = restore_form(&d, &manage, &app_only);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "restored by the key\n");

    // The admin may restore steward's state: then, and only then, the secret is the token.
    let r = restore_form(&d, "Bearer owner", &archive);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get(&format!("{ADMIN}/version?token={chosen}")).status, 200);
    cleanup(d);
}

/// A plan backup that holds steward's state, made by the admin; its record id.
fn state_record(d: &Daemon) -> String {
    let plan =
        br#"{"id":"sys","sources":{"state":true,"applications":["app"]},"destination":{"path":"/srv/backups/sys"}}"#;
    assert_eq!(with(d, "POST", "/1.0/plans", "Bearer owner", plan).status, 200);
    let r = with(d, "POST", "/v1.Backrest/Backup", "Bearer owner", br#"{"value":"sys"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = with(d, "GET", "/v1/containers/app/backups", "Bearer owner", b"");
    let Value::Array(records) = field(&r.json(), &["data"]).clone() else { panic!("{}", r.text()) };
    s(&records[0], &["id"])
}

/// A key without the route's capability is refused by the route (401 or 403 by surface).
fn refused(r: &Resp) -> bool {
    r.status == 401 || r.status == 403
}

#[test]
fn every_capability_against_every_effect_beyond_it() {
    let d = daemon();
    let record = state_record(&d);
    assert_eq!(d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", b"START")]).status, 202);
    for _ in 0..400 {
        if d.get(&format!("{ADMIN}/backup?token=owner")).text().contains("success") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ran = temp_dir("walk").join("ran.txt");
    let command_plan = format!(
        r#"{{"id":"cmd","sources":{{"state":true}},"destination":{{"path":"/srv/backups/cmd"}},"hooks":{{"on_failure":["/usr/bin/touch","{}"]}}}}"#,
        ran.display()
    );
    let state_archive = steward_archive(&[("steward/token", format!("{}\n", sha256_hex(b"x")).as_bytes())]);
    let task = format!("/v1/containers/app/backups/{record}/tasks");
    for cap in NON_ADMIN {
        let auth = key(&d, &format!("k-{cap}"), cap);
        // What backups-manage may reach, it reaches only to be told admin is needed.
        let beyond = |what: &str, r: Resp| {
            assert!(refused(&r), "{cap}: {what}: {} {}", r.status, r.text());
            if cap == "backups-manage" {
                assert!(r.text().contains("admin capability"), "{cap}: {what}: {}", r.text());
            }
        };
        // Spawning a process of the caller's choosing.
        beyond("plan with a command", with(&d, "POST", "/1.0/plans", &auth, command_plan.as_bytes()));
        // Restoring steward's own state, on each surface that restores.
        beyond("Jidoteki restore", restore_form(&d, &auth, &state_archive));
        beyond("IncusOS restore", with(&d, "POST", "/1.0/system/:restore", &auth, &state_archive));
        beyond("record restore", with(&d, "POST", &task, &auth, br#"{"action":"restore"}"#));
        // Reading steward's secrets: the token hash is the HMAC key of ?hash=.
        let r = with(&d, "GET", &format!("{ADMIN}/backup/download"), &auth, b"");
        assert!(refused(&r), "{cap}: backup download: {}", r.status);
        let r = with(&d, "POST", "/1.0/system/:backup", &auth, b"");
        assert!(refused(&r), "{cap}: system backup stream: {}", r.status);
    }
    assert!(!ran.exists());
    assert_eq!(d.get(&format!("{ADMIN}/version?token=x")).status, 403, "no restore took");
    // A key with admin can do each of them.
    let admin = key(&d, "k-admin", "admin");
    assert_eq!(with(&d, "POST", "/1.0/plans", &admin, command_plan.as_bytes()).status, 200);
    assert_eq!(with(&d, "GET", &format!("{ADMIN}/backup/download"), &admin, b"").status, 200);
    let r = with(&d, "POST", &task, &admin, br#"{"action":"restore"}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    cleanup(d);
}

#[test]
fn backups_are_readable_by_steward_only() {
    let d = daemon();
    state_record(&d);
    let dir = d.options.root.join("srv/backups/sys");
    let tar = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&tar).unwrap().permissions().mode() & 0o777, 0o600, "{}", tar.display());
    cleanup(d);
}
