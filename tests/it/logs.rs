//! GET /logs: a tar.gz made on the fly and streamed with chunked framing.

use std::io::Read;

use crate::util::{ADMIN, Daemon};

fn entries(gz: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn logs_stream_as_a_gzipped_tar() {
    let d = Daemon::start();
    d.setup("owner");
    d.get(&format!("{ADMIN}/version?token=wrong")); // something for the audit log
    let mut c = d.connect();
    let r = c.send("GET", &format!("{ADMIN}/logs?token=owner"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(r.header("Content-Disposition"), Some("attachment; filename=\"logs.tar.gz\""));
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    let files = entries(&r.body);
    let app = files.iter().find(|(n, _)| n == "var/log/app/app.log").expect("app log archived");
    assert_eq!(app.1, b"app started\napp ready\n");
    let audit = files.iter().find(|(n, _)| n == "steward/audit.log").expect("audit log archived");
    assert!(String::from_utf8_lossy(&audit.1).contains("token.authenticate.failed"));
    // The connection stays usable after a streamed body.
    assert_eq!(c.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"").status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/logs")).status, 403);
}

#[test]
fn the_debug_bundle_opens_only_with_the_vendor_key() {
    let d = Daemon::start();
    d.setup("owner");
    let r = d.get(&format!("{ADMIN}/debug?token=owner"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Disposition"), Some("attachment; filename=\"debug-bundle.tar\""));
    let work = crate::util::temp_dir("debug");
    let bundle = work.join("debug-bundle.tar");
    std::fs::write(&bundle, &r.body).unwrap();
    // Nothing readable inside without the key: the app log's text is not in the bundle.
    assert!(!r.body.windows(11).any(|w| w == b"app started"));
    let out = work.join("opened");
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev-keys/debug.key");
    let (ok, _, err) =
        crate::util::run_cli(&["open-debug", "--key", key, "--out", out.to_str().unwrap(), bundle.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(out.join("var/log/app/app.log")).unwrap(), b"app started\napp ready\n");
    assert!(out.join("system/proc/meminfo").exists());
    let uname = std::fs::read_to_string(out.join("commands/00-uname.txt")).unwrap();
    assert!(uname.starts_with("$ uname -a\n"), "{uname}");
    // Another vendor key cannot open it.
    let other = work.join("other");
    assert!(crate::util::run_cli(&["keygen", "--out", other.to_str().unwrap()]).0);
    let (ok, _, _) = crate::util::run_cli(&[
        "open-debug",
        "--key",
        other.join("debug.key").to_str().unwrap(),
        "--out",
        work.join("nope").to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert!(!ok);
    // The staged encrypted part is removed once the producer is done (it may still be
    // finishing as the client reads the last bytes).
    let started = std::time::Instant::now();
    while std::fs::read_dir(d.data.join("uploads")).unwrap().count() != 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the staged bundle was left behind");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(work);
}

#[test]
fn http10_clients_get_a_close_delimited_stream() {
    let d = Daemon::start();
    d.setup("owner");
    let mut c = d.connect();
    c.write_raw(format!("GET {ADMIN}/logs?token=owner HTTP/1.0\r\n\r\n").as_bytes());
    let mut raw = Vec::new();
    let started = std::time::Instant::now();
    let _ = c.stream.read_to_end(&mut raw);
    // The end of the body is the close: it must come when the archive is done, not when a
    // timeout fires.
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "closed after {:?}", started.elapsed());
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    let files = entries(&raw[split + 4..]);
    assert!(files.iter().any(|(n, _)| n == "var/log/app/app.log"));
}
