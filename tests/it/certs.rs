//! POST/GET /certs: validation as a job and a certificate swap seen by a fresh handshake.

use std::time::{Duration, Instant};

use crate::util::{ADMIN, Daemon};

fn form(d: &Daemon, fields: &[(&str, &[u8])]) -> crate::util::Resp {
    d.post_form(&format!("{ADMIN}/certs?token=owner"), fields)
}

fn wait(d: &Daemon) -> String {
    let started = Instant::now();
    loop {
        let body = d.get(&format!("{ADMIN}/certs?token=owner")).text();
        if !body.contains(r#""status":"running""#) {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_new_certificate_is_served_to_new_connections_without_a_restart() {
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/certs?token=owner")).text(), r#"{"status":null,"log":null}"#);
    let mut old_conn = d.connect();
    assert_eq!(old_conn.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"").status, 200);
    let old_cert = std::fs::read(d.data.join("tls/cert.pem")).unwrap();

    let fresh =
        rcgen::generate_simple_self_signed(vec!["appliance.example".to_owned(), "localhost".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
    // A key that is not the certificate's: the job fails and nothing changes.
    let r =
        form(&d, &[("public", fresh.cert.pem().as_bytes()), ("private", other.signing_key.serialize_pem().as_bytes())]);
    assert_eq!(r.status, 202, "{}", r.text());
    let status = wait(&d);
    assert!(status.contains(r#""status":"failed""#), "{status}");
    assert_eq!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), old_cert);
    // Garbage fails the same way.
    assert_eq!(form(&d, &[("public", b"not a certificate"), ("private", b"nor a key")]).status, 202);
    assert!(wait(&d).contains(r#""status":"failed""#));
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "still serving the old certificate");

    // Windows line ends are accepted.
    let crlf_key = fresh.signing_key.serialize_pem().replace('\n', "\r\n");
    let r = form(&d, &[("public", fresh.cert.pem().as_bytes()), ("private", crlf_key.as_bytes())]);
    assert_eq!(r.status, 202);
    assert_eq!(r.header("Location"), Some("/api/v1/admin/certs"));
    let status = wait(&d);
    assert!(status.contains(r#""status":"success""#), "{status}");
    let log = match crate::util::field(&miniserde::json::from_str(&status).unwrap(), &["log"]) {
        miniserde::json::Value::String(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(log.contains("Validating and adding TLS certificates\n"), "a real newline between lines: {log:?}");
    assert_ne!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), old_cert);
    // `connect` trusts only what is now in the data dir: the handshake proves the swap.
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    // The connection opened before the swap keeps working.
    assert_eq!(old_conn.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"").status, 200);
}

#[test]
fn certs_needs_public_and_private() {
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(form(&d, &[("public", b"x")]).status, 400);
    assert_eq!(form(&d, &[("private", b"x")]).status, 400);
    assert_eq!(form(&d, &[("public", b"x"), ("private", b"y"), ("other", b"z")]).status, 400);
    assert_eq!(d.get(&format!("{ADMIN}/certs?token=owner")).text(), r#"{"status":null,"log":null}"#);
}
