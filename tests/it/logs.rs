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
