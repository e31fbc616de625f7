//! POST/GET /backup, /backup/download and /backup/log (Jidoteki section 12).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::util::{ADMIN, Daemon, Options, cleanup, fixture_root_copy};

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

fn action(d: &Daemon, value: &str) -> crate::util::Resp {
    d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", value.as_bytes())])
}

fn wait(d: &Daemon) -> String {
    let started = Instant::now();
    loop {
        let r = d.get(&format!("{ADMIN}/backup?token=owner"));
        if r.status != 200 || !r.text().contains("running") {
            return r.text();
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_backup_is_made_downloaded_and_deleted() {
    let d = daemon();
    for path in ["backup", "backup/download", "backup/log"] {
        assert_eq!(d.get(&format!("{ADMIN}/{path}?token=owner")).status, 404, "{path} before any backup");
    }
    let r = action(&d, "start");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.text(), r#"{"Status":"202 Accepted","Location":"/api/v1/admin/backup"}"#);
    assert_eq!(r.header("Location"), Some("/api/v1/admin/backup"));
    let status = wait(&d);
    let v: miniserde::json::Value = miniserde::json::from_str(&status).unwrap();
    let text = |k: &str| match crate::util::field(&v, &[k]) {
        miniserde::json::Value::String(s) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text("status"), "success", "{status}");
    let sha = text("sha256");
    assert_eq!(sha.len(), 64);
    assert!(text("filesize").ends_with('K'), "{status}");

    let r = d.get(&format!("{ADMIN}/backup/download?token=owner"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-tar"));
    assert_eq!(r.header("Content-Disposition"), Some("attachment; filename=\"backup.tar\""));
    assert_eq!(r.header("Content-Length").map(|l| l.parse::<usize>().unwrap()), Some(r.body.len()));
    use sha2::Digest;
    let got: String = sha2::Sha256::digest(&r.body).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, sha, "the download is what the status hashed");
    let mut archive = tar::Archive::new(r.body.as_slice());
    let mut names = Vec::new();
    let mut config = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if name == "var/lib/app/config.ini" {
            entry.read_to_string(&mut config).unwrap();
        }
        names.push(name);
    }
    assert_eq!(names[0], "steward-backup.json", "the manifest comes first");
    assert!(names.contains(&"steward/token".to_owned()), "{names:?}");
    assert!(names.contains(&"var/lib/app/db/records.txt".to_owned()), "{names:?}");
    assert_eq!(config, "app config v1\n");

    let log = d.get(&format!("{ADMIN}/backup/log?token=owner"));
    assert_eq!(log.status, 200);
    assert!(log.text().contains("Backup complete"), "{}", log.text());

    assert_eq!(action(&d, "STOP").status, 202, "STOP deletes the finished backup");
    assert_eq!(d.get(&format!("{ADMIN}/backup?token=owner")).status, 404);
    assert_eq!(d.get(&format!("{ADMIN}/backup/download?token=owner")).status, 404);
    assert!(d.get(&format!("{ADMIN}/backup/log?token=owner")).text().contains("Deleting backup archive"));
    assert_eq!(action(&d, "STOP").status, 400, "nothing left to stop");
    cleanup(d);
}

#[test]
fn bad_actions_are_400_with_the_documented_message() {
    let d = daemon();
    for bad in ["", "begin", "START NOW"] {
        let r = action(&d, bad);
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(
            r.header("Error-Message"),
            Some("Missing or invalid option: action. Expected value 'START' or 'STOP'")
        );
    }
    let r = d.post_form(&format!("{ADMIN}/backup?token=owner"), &[]);
    assert_eq!(r.status, 400);
    assert_eq!(d.get(&format!("{ADMIN}/backup?token=owner")).status, 404, "no backup was started");
    assert_eq!(d.post_form(&format!("{ADMIN}/backup"), &[("action", b"START")]).status, 403);
    cleanup(d);
}

#[test]
fn stop_cancels_a_running_backup_and_leaves_no_archive() {
    let d = daemon();
    // A large (sparse) application file keeps the backup busy for a while.
    let big = std::fs::File::create(d.options.root.join("var/lib/app/big.img")).unwrap();
    big.set_len(2 * 1024 * 1024 * 1024).unwrap();
    drop(big);
    assert_eq!(action(&d, "START").status, 202);
    let r = action(&d, "START");
    let running = r.status == 400;
    assert_eq!(action(&d, "STOP").status, 202);
    let status = wait(&d);
    if running {
        assert!(status.contains(r#""status":"failed""#) || status.contains("404"), "{status}");
    }
    assert!(!d.data.join("backup/backup.tar").exists());
    assert!(!d.data.join("backup/backup.tar.tmp").exists());
    cleanup(d);
}

fn backup_now(d: &Daemon) -> Vec<u8> {
    assert_eq!(action(d, "START").status, 202);
    assert!(wait(d).contains("success"));
    d.get(&format!("{ADMIN}/backup/download?token=owner")).body
}

fn restore(d: &Daemon, token: &str, archive: &[u8]) -> crate::util::Resp {
    d.post_file(&format!("{ADMIN}/backup/restore?token={token}"), "archive", "backup.tar", archive)
}

#[test]
fn restore_brings_back_the_data_and_the_token() {
    let d = daemon();
    let settings = br#"{"network":{"interface":"eth0","hostname":"before.lan"}}"#;
    assert_eq!(d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", settings)]).status, 202);
    let cert_before = std::fs::read(d.data.join("tls/cert.pem")).unwrap();
    let archive = backup_now(&d);
    let other = br#"{"network":{"interface":"eth1","hostname":"after.lan"}}"#;
    assert_eq!(d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", other)]).status, 202);
    let fresh = rcgen::generate_simple_self_signed(vec!["after.lan".to_owned()]).unwrap();
    let r = d.post_form(
        &format!("{ADMIN}/certs?token=owner"),
        &[("public", fresh.cert.pem().as_bytes()), ("private", fresh.signing_key.serialize_pem().as_bytes())],
    );
    assert_eq!(r.status, 202);
    // `connect` trusts only the certificate on disk: while the job swaps it, the file can be
    // new a moment before the server serves it (seen under qemu), and that one poll fails.
    let started = Instant::now();
    loop {
        let poll = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.get(&format!("{ADMIN}/certs?token=owner")).text()
        }));
        if poll.is_ok_and(|t| !t.contains("running")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the certificate job did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), cert_before);
    let app = d.options.root.join("var/lib/app");
    std::fs::write(app.join("config.ini"), "app config v2\n").unwrap();
    std::fs::write(app.join("added-later.txt"), "new").unwrap();
    assert_eq!(d.post_form(&format!("{ADMIN}/setup?token=owner"), &[("newtoken", b"changed")]).status, 200);

    let r = restore(&d, "changed", &archive);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"Status":"200 OK"}"#);
    assert_eq!(std::fs::read_to_string(app.join("config.ini")).unwrap(), "app config v1\n");
    assert!(!app.join("added-later.txt").exists(), "the directory is replaced, not merged");
    assert_eq!(std::fs::read_to_string(app.join("db/records.txt")).unwrap(), "record-1\nrecord-2\n");
    // The token is the one the backup was taken with.
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/version?token=changed")).status, 403);
    assert!(!d.options.root.join("var/lib/app.steward-restore").exists());
    assert!(d.get(&format!("{ADMIN}/settings?token=owner")).text().contains("before.lan"), "settings are back");
    assert_eq!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), cert_before);
    // `connect` trusts only the certificate now on disk: the restored one is being served.
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    assert!(!d.options.root.join("var/lib/app.steward-old").exists());
    cleanup(d);
}

fn raw_tar(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn bad_archives_are_400_and_change_nothing() {
    let d = daemon();
    let manifest: &[u8] = br#"{"format":1,"board":"dev"}"#;
    let file = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a tar archive at all, not even close".repeat(20)),
        ("no manifest", raw_tar(&[(b"var/lib/app/config.ini", file, b"x")])),
        (
            "dot-dot",
            raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/../../../etc/passwd", file, b"x")]),
        ),
        ("absolute", raw_tar(&[(b"steward-backup.json", file, manifest), (b"/etc/passwd", file, b"x")])),
        ("outside the backup paths", raw_tar(&[(b"steward-backup.json", file, manifest), (b"etc/shadow", file, b"x")])),
        (
            "symlink",
            raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/link", tar::EntryType::Symlink, b"")]),
        ),
        ("unknown state file", raw_tar(&[(b"steward-backup.json", file, manifest), (b"steward/../../x", file, b"x")])),
        ("future format", raw_tar(&[(b"steward-backup.json", file, br#"{"format":2,"board":"dev"}"#)])),
        ("another board", raw_tar(&[(b"steward-backup.json", file, br#"{"format":1,"board":"rpi4"}"#)])),
        ("no board", raw_tar(&[(b"steward-backup.json", file, br#"{"format":1}"#)])),
        (
            "hardlink",
            raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/hard", tar::EntryType::Link, b"")]),
        ),
        (
            "device node",
            raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/dev", tar::EntryType::Char, b"")]),
        ),
        (
            "fifo",
            raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/fifo", tar::EntryType::Fifo, b"")]),
        ),
        (
            "symlink to /etc, then a file through it",
            raw_tar(&[
                (b"steward-backup.json", file, manifest),
                (b"var/lib/app/etc", tar::EntryType::Symlink, b""),
                (b"var/lib/app/etc/passwd", file, b"x"),
            ]),
        ),
        ("truncated", {
            let mut t =
                raw_tar(&[(b"steward-backup.json", file, manifest), (b"var/lib/app/config.ini", file, &[b'z'; 5000])]);
            t.truncate(2048);
            t
        }),
    ];
    for (what, archive) in cases {
        let r = restore(&d, "owner", &archive);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.header("Error-Message").unwrap().starts_with("Unable to extract backup archive"), "{what}");
        assert_eq!(std::fs::read_to_string(d.options.root.join("var/lib/app/config.ini")).unwrap(), "app config v1\n");
    }
    assert_eq!(d.post_form(&format!("{ADMIN}/backup/restore?token=owner"), &[]).status, 400, "missing archive");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    cleanup(d);
}

#[test]
fn hostile_sizes_and_counts_are_refused() {
    let d = daemon();
    let manifest: &[u8] = br#"{"format":1,"board":"dev"}"#;
    let file = tar::EntryType::Regular;
    // A header that claims 10 GiB with no data behind it.
    let mut huge = raw_tar(&[(b"steward-backup.json", file, manifest)]);
    let mut h = tar::Header::new_gnu();
    h.set_path("var/lib/app/huge.img").unwrap();
    h.set_size(10 * 1024 * 1024 * 1024);
    h.set_cksum();
    huge.truncate(huge.len() - 1024); // drop the end-of-archive blocks
    huge.extend_from_slice(h.as_bytes());
    huge.extend_from_slice(&[0u8; 4096]);
    // 30,000 tiny entries.
    let mut b = tar::Builder::new(Vec::new());
    let mut mh = tar::Header::new_gnu();
    mh.set_size(manifest.len() as u64);
    mh.set_cksum();
    b.append_data(&mut mh, "steward-backup.json", manifest).unwrap();
    for i in 0..30_000 {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, format!("var/lib/app/f{i}"), &[][..]).unwrap();
    }
    let flood = b.into_inner().unwrap();
    for (what, archive) in [("10 GiB header", huge), ("30,000 entries", flood)] {
        let r = restore(&d, "owner", &archive);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(std::fs::read_to_string(d.options.root.join("var/lib/app/config.ini")).unwrap(), "app config v1\n");
        assert!(!d.options.root.join("var/lib/app/f0").exists());
    }
    cleanup(d);
}

#[test]
fn a_restore_killed_midway_leaves_old_or_new_never_a_mix() {
    let mut d = daemon();
    let app = d.options.root.join("var/lib/app");
    // Enough data that the restore takes a while: 8 × 6 MiB.
    for i in 0..8u8 {
        std::fs::write(app.join(format!("blob-{i}")), vec![i; 6 * 1024 * 1024]).unwrap();
    }
    let archive = std::sync::Arc::new(backup_now(&d));
    let mut token = "owner".to_owned();
    for (round, delay_ms) in [0u64, 150, 400, 800, 1500].into_iter().enumerate() {
        // The state the restore would replace: new config, new token.
        std::fs::write(app.join("config.ini"), format!("round {round}\n")).unwrap();
        let next = format!("changed{round}");
        let r = d.post_form(&format!("{ADMIN}/setup?token={token}"), &[("newtoken", next.as_bytes())]);
        assert_eq!(r.status, 200);
        token = next;
        let (port_token, archive2) = (token.clone(), archive.clone());
        let client = {
            let c = d.connect();
            std::thread::spawn(move || {
                let mut c = c;
                let boundary = "----killtestboundary";
                let mut body = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"b.tar\"\r\n\r\n"
                )
                .into_bytes();
                body.extend_from_slice(&archive2);
                body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                let ct = format!("multipart/form-data; boundary={boundary}");
                let path = format!("{ADMIN}/backup/restore?token={port_token}");
                let mut raw = format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                raw.extend_from_slice(&body);
                let _ = std::io::Write::write_all(&mut c.stream, &raw);
                let _ = c.read_response();
            })
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.restart(); // SIGKILL, then start again
        let _ = client.join();
        let config = std::fs::read_to_string(app.join("config.ini")).unwrap();
        let old_token_works = d.get(&format!("{ADMIN}/version?token={token}")).status == 200;
        let restored_token_works = d.get(&format!("{ADMIN}/version?token=owner")).status == 200;
        eprintln!("round {round} (kill after {delay_ms} ms): restored = {}", config == "app config v1\n");
        if config == "app config v1\n" {
            assert!(restored_token_works && !old_token_works, "round {round}: data restored but not the token");
            token = "owner".to_owned();
        } else {
            assert_eq!(config, format!("round {round}\n"), "round {round}: a third state");
            assert!(old_token_works && !restored_token_works, "round {round}: token restored but not the data");
        }
        assert!(!d.options.root.join("var/lib/app.steward-restore").exists(), "round {round}: staging left behind");
        assert!(!d.options.root.join("var/lib/app.steward-old").exists(), "round {round}: old copy left behind");
    }
    cleanup(d);
}

/// The Jidoteki backup is one of the operations every surface lists: Backrest's
/// `GetOperations` and IncusOS's `/1.0/operations` show it running and finished, with its
/// log, and it can be cancelled there as well as by STOP.
#[test]
fn a_jidoteki_backup_is_in_the_operation_history_of_every_surface() {
    let d = daemon();
    assert_eq!(action(&d, "START").status, 202);
    assert!(wait(&d).contains(r#""status":"success""#));
    let bearer = [("Authorization", "Bearer owner")];
    let r = d.connect().send("POST", "/v1.Backrest/GetOperations", &bearer, br#"{"selector":{"planId":"jidoteki"}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains(r#""planId":"jidoteki""#) && text.contains(r#""status":"STATUS_SUCCESS""#), "{text}");
    assert!(text.contains(r#""operationBackup":{"#), "{text}");
    let sha = {
        let v: miniserde::json::Value = miniserde::json::from_str(&wait(&d)).unwrap();
        match crate::util::field(&v, &["sha256"]) {
            miniserde::json::Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        }
    };
    let r = d.connect().send("GET", "/1.0/operations?plan=jidoteki&recursion=1", &bearer, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha), "the history has the archive's digest: {}", r.text());
    let id = r.text().split(r#""id":""#).nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let log = d.connect().send("GET", &format!("/1.0/operations/{id}/log"), &bearer, b"");
    assert!(log.text().contains("Backup complete"), "{}", log.text());
    // STOP deletes the archive, and the history says so.
    assert_eq!(action(&d, "STOP").status, 202);
    let r = d.connect().send("GET", &format!("/1.0/operations/{id}"), &bearer, b"");
    assert!(r.text().contains("deletedMs"), "{}", r.text());
    // A container backup list is for the integrations' backups: this one is not in it.
    let records = d.connect().send("GET", "/v1/containers/app/backups", &bearer, b"");
    let record_id = format!("{:024x}", id.parse::<u64>().unwrap());
    assert_eq!(records.status, 200, "{}", records.text());
    assert!(!records.text().contains(&record_id), "{}", records.text());
    // A plan cannot take the id the history uses for it.
    let plan = r#"{"id":"jidoteki","sources":{"state":true},"destination":{"path":"/srv/backups/j"}}"#;
    let r = d.connect().send("POST", "/1.0/plans", &bearer, plan.as_bytes());
    assert_eq!(r.status, 409, "{}", r.text());

    // Running, it reads INPROGRESS and DELETE on the operation stops it.
    let big = std::fs::File::create(d.options.root.join("var/lib/app/big.img")).unwrap();
    big.set_len(2 * 1024 * 1024 * 1024).unwrap();
    drop(big);
    assert_eq!(action(&d, "START").status, 202);
    let r = d.connect().send("GET", "/1.0/operations?plan=jidoteki&status=INPROGRESS", &bearer, b"");
    // Recorded when START is answered, and 2 GiB take far longer than this request.
    let running = r.text().split("/1.0/operations/").nth(1).and_then(|s| s.split('"').next()).map(str::to_owned);
    let running = running.unwrap_or_else(|| panic!("no running backup in the history: {}", r.text()));
    let r = d.connect().send("DELETE", &format!("/1.0/operations/{running}"), &bearer, b"");
    assert!(r.status == 200 || r.status == 202, "{}", r.text());
    assert!(wait(&d).contains(r#""status":"failed""#));
    let r = d.connect().send("GET", &format!("/1.0/operations/{running}"), &bearer, b"");
    assert!(r.text().contains("STATUS_USER_CANCELLED"), "{}", r.text());
    assert!(!d.data.join("backup/backup.tar").exists());
    cleanup(d);
}
