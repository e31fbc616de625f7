//! The README's first command is safe on any machine (issue 24): the compiled-in dev board
//! with `--root /` reads the host's /proc and /sys but writes nothing outside `--data`, and
//! every documented flow works for an ordinary user.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{ADMIN, connect_to, temp_dir};

/// What the dev board would write were it not sandboxed, none of which exists on a clean
/// machine (nor may after the test).
const HOST_PATHS: [&str; 7] = [
    "/etc/steward",
    "/var/lib/steward",
    "/var/lib/app",
    "/var/cache/app",
    "/srv/backups",
    "/var/log/steward",
    "/mnt/p",
];

struct DevBoard {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Drop for DevBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.data.parent().unwrap());
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `steward serve --root /` on the dev board, as `nobody` when the test runs as root.
fn start() -> DevBoard {
    let dir = temp_dir("devboard");
    let data = dir.join("var");
    let mut bin = std::env::var("STEWARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_steward").to_owned());
    let runner = std::env::var("STEWARD_RUNNER").ok().filter(|r| !r.is_empty());
    let mut argv: Vec<String> = Vec::new();
    if is_root() {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        // The build tree may sit where `nobody` cannot reach: run a copy from the temp dir.
        let copy = dir.join("steward");
        std::fs::copy(&bin, &copy).unwrap();
        bin = copy.display().to_string();
        argv.extend(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"].map(String::from));
    }
    argv.extend(runner);
    argv.push(bin);
    argv.extend(["serve", "--listen", "127.0.0.1:0", "--root", "/", "--data"].map(String::from));
    argv.push(data.display().to_string());
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start steward");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    DevBoard { child, port, data }
}

impl DevBoard {
    /// One request on a new connection. Right after a certificate change the file in the
    /// data dir and the listener's certificate can differ for a moment (a slow emulated
    /// machine shows it): the handshake is tried again until they agree.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> crate::util::Resp {
        for _ in 0..50 {
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                connect_to(self.port, &self.data, false, None).send(method, path, headers, body)
            }));
            if let Ok(r) = attempt {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{method} {path}: no connection with the certificate in the data dir");
    }

    fn form(&self, path: &str, fields: &[(&str, &[u8])]) -> crate::util::Resp {
        let (ct, body) = crate::util::multipart(fields);
        self.send("POST", path, &[("Content-Type", &ct)], &body)
    }

    /// One file part, as `curl -F field=@file` sends it.
    fn upload(&self, path: &str, field: &str, data: &[u8]) -> crate::util::Resp {
        let (ct, body) = crate::util::file_part(field, "f", data);
        self.send("POST", path, &[("Content-Type", &ct)], &body)
    }

    fn bearer(&self, method: &str, path: &str, body: &[u8]) -> crate::util::Resp {
        self.send(method, path, &[("Authorization", "Bearer yourtoken")], body)
    }
}

fn wait_done(d: &DevBoard, path: &str) -> String {
    for _ in 0..500 {
        let text = d.send("GET", &format!("{ADMIN}/{path}?token=yourtoken"), &[], b"").text();
        if !text.contains("\"running\"") {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{path} still running");
}

#[test]
fn the_dev_board_with_root_slash_writes_nothing_outside_data() {
    let before: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    let d = start();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(d.form(&format!("{ADMIN}/setup"), &[("newtoken", b"yourtoken")]).status, 200);
    assert_eq!(
        d.send("GET", &format!("{ADMIN}/version?token=yourtoken"), &[], b"").text(),
        format!(r#"{{"version":"{version}"}}"#)
    );
    // Real health figures from the host's /proc.
    let health = d.send("GET", &format!("{ADMIN}/health?token=yourtoken"), &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    // Settings (the README's DHCP example) and storage.
    let dhcp = br#"{"network":{"interface":"eth0","hostname":"box.lan"}}"#;
    let r = d.form(&format!("{ADMIN}/settings?token=yourtoken"), &[("settings", dhcp)]);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = d.form(&format!("{ADMIN}/storage?token=yourtoken"), &[("settings", br#"{"storage":{"type":"local"}}"#)]);
    assert_eq!(r.status, 202, "{}", r.text());
    // A certificate.
    let cert = rcgen::generate_simple_self_signed(vec!["box.lan".to_owned()]).unwrap();
    let r = d.form(
        &format!("{ADMIN}/certs?token=yourtoken"),
        &[("public", cert.cert.pem().as_bytes()), ("private", cert.signing_key.serialize_pem().as_bytes())],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(wait_done(&d, "certs").contains("success"));
    // An update into the file-backed slots.
    let work = temp_dir("devboard-pkg");
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev-keys");
    let package = crate::update::pack(&work, keys, "9.9.9", &[0x42u8; 1 << 20]);
    let r = d.upload(&format!("{ADMIN}/update?token=yourtoken"), "update", &package);
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(wait_done(&d, "update").contains("success"));
    // Backup, download, restore; a plan's backup.
    assert_eq!(d.form(&format!("{ADMIN}/backup?token=yourtoken"), &[("action", b"START")]).status, 202);
    assert!(wait_done(&d, "backup").contains("success"));
    let archive = d.send("GET", &format!("{ADMIN}/backup/download?token=yourtoken"), &[], b"").body;
    let r = d.upload(&format!("{ADMIN}/backup/restore?token=yourtoken"), "archive", &archive);
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = br#"{"id":"p","sources":{"state":true,"applications":["app"]},"destination":{"path":"/srv/backups/p"}}"#;
    assert_eq!(d.bearer("POST", "/1.0/plans", plan).status, 200);
    let r = d.bearer("POST", "/v1.Backrest/Backup", br#"{"value":"p"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    // A factory reset erases steward's state, inside --data only.
    let r = d.bearer("POST", "/1.0/system/:factory-reset", br#"{"allow_tpm_reset_failure":true}"#);
    assert!(r.status < 500, "{}", r.text());
    drop(d);
    for (path, existed) in HOST_PATHS.iter().zip(before) {
        assert_eq!(Path::new(path).exists(), existed, "{path} was created or removed outside --data");
    }
    let _ = std::fs::remove_dir_all(work);
}
