//! POST/GET /license with licenses signed by `steward sign-license`, and GET /reboot.

use crate::util::{ADMIN, Daemon, run_cli, temp_dir};

const DEV_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev-keys/signing.key");
const LICENSE: &str = r#"{"app":"enterprise","users":20,"expires":"19 January 2038","name":"Enterprise Company","contact":"cto@enterprise"}"#;

fn signed(dir: &std::path::Path, key: &str, json: &str) -> Vec<u8> {
    let src = dir.join("license.json");
    let out = dir.join("license.asc");
    std::fs::write(&src, json).unwrap();
    let (ok, _, err) = run_cli(&[
        "sign-license",
        "--signing-key",
        key,
        "--license",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    std::fs::read(out).unwrap()
}

fn post(d: &Daemon, file: &[u8]) -> crate::util::Resp {
    d.post_file(&format!("{ADMIN}/license?token=owner"), "license", "license.asc", file)
}

#[test]
fn a_signed_license_is_installed_and_read_back() {
    let work = temp_dir("license");
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/license?token=owner")).status, 404);
    let file = signed(&work, DEV_KEY, LICENSE);
    let r = post(&d, &file);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), LICENSE, "the documented shape, in the vendor's key order");
    let r = d.get(&format!("{ADMIN}/license?token=owner"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), LICENSE);

    // Invalid licenses: 404 as documented, and the installed one stays.
    let tampered = String::from_utf8(file.clone()).unwrap().replace("20", "2000");
    let other_keys = work.join("other");
    assert!(run_cli(&["keygen", "--out", other_keys.to_str().unwrap()]).0);
    let foreign = signed(&work, other_keys.join("signing.key").to_str().unwrap(), LICENSE);
    for bad in [tampered.as_bytes(), &foreign, b"garbage"] {
        let r = post(&d, bad);
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(r.header("Error-Message").is_some());
    }
    let r = d.post_form(&format!("{ADMIN}/license?token=owner"), &[]);
    assert_eq!(r.status, 404, "missing file");
    assert_eq!(d.get(&format!("{ADMIN}/license?token=owner")).text(), LICENSE);
    // A license edited on disk is not a license.
    std::fs::write(d.data.join("license"), tampered).unwrap();
    assert_eq!(d.get(&format!("{ADMIN}/license?token=owner")).status, 404);
    drop(d);
    let _ = std::fs::remove_dir_all(work);
}

#[test]
fn reboot_answers_202_and_the_dev_board_only_logs_it() {
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/reboot")).status, 403);
    let r = d.get(&format!("{ADMIN}/reboot?token=owner"));
    assert_eq!(r.status, 202);
    assert_eq!(r.text(), r#"{"Status":"202 Accepted"}"#);
    assert!(d.stderr().contains("power method is none"), "{}", d.stderr());
    let audit = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    assert!(audit.contains("\treboot\tnone\ttoken\tjidoteki"), "{audit}");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "still up");
}

#[test]
fn reboot_takes_a_backup_first_when_the_board_asks() {
    let board_dir = temp_dir("board");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let text = text.replacen(
        "\"power\": { \"method\": \"none\" }",
        "\"power\": { \"method\": \"none\", \"backup_before_reboot\": true }",
        1,
    );
    assert!(text.contains("backup_before_reboot"));
    let board = board_dir.join("backup-reboot.json");
    std::fs::write(&board, text).unwrap();
    let d = Daemon::with(crate::util::Options {
        board: Some(board.display().to_string()),
        root: crate::util::fixture_root_copy(),
        plain: false,
    });
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/reboot?token=owner")).status, 202);
    let started = std::time::Instant::now();
    while !d.stderr().contains("reboot requested") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "no reboot after the backup");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(d.get(&format!("{ADMIN}/backup?token=owner")).text().contains("success"), "the backup came first");
    let root = d.options.root.clone();
    drop(d);
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(board_dir);
}

/// A valid license the box cannot store is the machine's failure (5xx), not the client's
/// (it was a 400 before one error model mapped every kind once).
#[test]
fn a_license_that_cannot_be_stored_is_a_server_error() {
    let work = temp_dir("license-store");
    let d = Daemon::start();
    d.setup("owner");
    // A directory with something in it stands where the license file goes.
    std::fs::create_dir_all(d.data.join("license/blocker")).unwrap();
    let r = post(&d, &signed(&work, DEV_KEY, LICENSE));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.header("Error-Message").is_some(), "the reason is given");
    std::fs::remove_dir_all(d.data.join("license")).unwrap();
    assert_eq!(post(&d, &signed(&work, DEV_KEY, LICENSE)).status, 200, "and once it can, it is");
    let _ = std::fs::remove_dir_all(work);
}
