//! POST/GET /backup, /backup/download and /backup/log (Jidoteki section 12).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::util::{ADMIN, Daemon, Options, fixture_root_copy};

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

fn cleanup(d: Daemon) {
    let root = d.options.root.clone();
    drop(d);
    let _ = std::fs::remove_dir_all(root);
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
