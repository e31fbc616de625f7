//! Token setup, token/hash/bearer authentication, first-run and the setup throttle.

use std::time::{Duration, Instant};

use crate::util::{ADMIN, Daemon, Options, hmac, multipart, run_cli, temp_dir};

fn version(token_query: &str) -> String {
    format!("{ADMIN}/version?{token_query}")
}

#[test]
fn setup_then_token_then_hash_then_bearer() {
    let d = Daemon::start();
    assert_eq!(d.get(&version("token=yourtoken")).status, 403, "no token is set yet");
    d.setup("yourtoken");
    let r = d.get(&version("token=yourtoken"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"version":"1.2.3"}"#);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let hash = hmac("yourtoken", "GET", "/api/v1/admin/version");
    assert_eq!(hash, "b714a60732e096ccef06e360eefe0f1ba4fa5d16ef7da726612e2026e5523241");
    assert_eq!(d.get(&version(&format!("hash={hash}"))).status, 200);
    let r = d.connect().send("GET", &format!("{ADMIN}/version"), &[("Authorization", "Bearer yourtoken")], b"");
    assert_eq!(r.status, 200);
    let r = d.connect().send("GET", &format!("{ADMIN}/version"), &[("Authorization", "Bearer wrong")], b"");
    assert_eq!(r.status, 403);
}

#[test]
fn the_documented_hmac_vector_from_the_cli() {
    let (ok, out, _) = run_cli(&["hash", "--token", "yourtoken", "--method", "GET", "--path", "/api/v1/admin/version"]);
    assert!(ok);
    assert_eq!(out.trim(), "b714a60732e096ccef06e360eefe0f1ba4fa5d16ef7da726612e2026e5523241");
    let (ok, _, err) = run_cli(&["hash", "--token", "t", "--method", "GET", "--path", "api/v1/admin/version"]);
    assert!(!ok && err.contains("--path"));
}

#[test]
fn failures_are_403_with_the_documented_body() {
    let d = Daemon::start();
    d.setup("yourtoken");
    let good = hmac("yourtoken", "GET", "/api/v1/admin/version");
    let cases = [
        version("token=wrong"),
        version(&format!("hash={}", good.to_uppercase())),
        version(&format!("hash={}", hmac("yourtoken", "GET", "/api/v1/admin/health"))),
        version(&format!("hash={}", hmac("yourtoken", "POST", "/api/v1/admin/version"))),
        version(&format!("hash={}", &good[..63])),
        version("hash="),
        version("token="),
        format!("{ADMIN}/version"),
        // ?hash= wins over ?token=: a bad hash is not rescued by a good token.
        version(&format!("hash={}&token=yourtoken", "0".repeat(64))),
    ];
    for path in &cases {
        let r = d.get(path);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.text(), r#"{"Status":"403 Forbidden","Error-Message":"Authentication error"}"#, "{path}");
        assert_eq!(r.header("Error-Message"), Some("Authentication error"));
    }
}

#[test]
fn a_trailing_slash_needs_its_own_hash() {
    let d = Daemon::start();
    d.setup("yourtoken");
    let plain = hmac("yourtoken", "GET", "/api/v1/admin/version");
    let slashed = hmac("yourtoken", "GET", "/api/v1/admin/version/");
    assert_eq!(d.get(&format!("{ADMIN}/version/?hash={slashed}")).status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/version/?hash={plain}")).status, 403);
    assert_eq!(d.get(&format!("{ADMIN}/version?hash={slashed}")).status, 403);
}

#[test]
fn changing_the_token_invalidates_the_old_one_and_its_hashes() {
    let d = Daemon::start();
    d.setup("first");
    let old_hash = hmac("first", "GET", "/api/v1/admin/version");
    // Change with hash auth for POST /setup, new token in the form.
    let setup_hash = hmac("first", "POST", "/api/v1/admin/setup");
    let r = d.post_form(&format!("{ADMIN}/setup?hash={setup_hash}"), &[("newtoken", b"second")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"Status":"200 OK"}"#);
    assert_eq!(d.get(&version("token=first")).status, 403);
    assert_eq!(d.get(&version(&format!("hash={old_hash}"))).status, 403);
    assert_eq!(d.get(&version("token=second")).status, 200);
    // Change with the token as a form field (the reference accepts that too).
    let r = d.post_form(&format!("{ADMIN}/setup"), &[("token", b"second"), ("newtoken", b"third")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get(&version("token=third")).status, 200);
    // Change with ?token= and a urlencoded body, as `curl -d` sends it.
    let r = d.connect().send(
        "POST",
        &format!("{ADMIN}/setup?token=third"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"newtoken=fo%2Burth",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get(&version("token=fo%2Burth")).status, 200);
    assert_eq!(d.get(&version("token=fo+urth")).status, 200, "'+' in a query is literal, tokens hold no spaces");
}

#[test]
fn bad_new_tokens_are_400_and_change_nothing() {
    let d = Daemon::start();
    d.setup("keepme");
    let long = "a".repeat(256);
    let cases: [(&str, &[(&str, &[u8])]); 6] = [
        ("space", &[("newtoken", b"has space")]),
        ("256 chars", &[("newtoken", long.as_bytes())]),
        ("empty", &[("newtoken", b"")]),
        ("missing", &[]),
        ("non-ascii", &[("newtoken", "caf\u{e9}".as_bytes())]),
        ("unknown field", &[("newtoken", b"fine"), ("extra", b"1")]),
    ];
    for (what, fields) in cases {
        let r = d.post_form(&format!("{ADMIN}/setup?token=keepme"), fields);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        let body = r.json();
        assert!(
            matches!(crate::util::field(&body, &["Status"]), miniserde::json::Value::String(s) if s == "400 Bad Request"),
            "{what}"
        );
        assert!(r.header("Error-Message").is_some(), "{what}");
        assert_eq!(d.get(&version("token=keepme")).status, 200, "{what} changed the token");
    }
    // 255 characters is still fine; so is every printable character.
    let max = "~".repeat(255);
    assert_eq!(d.post_form(&format!("{ADMIN}/setup?token=keepme"), &[("newtoken", max.as_bytes())]).status, 200);
    let all: String = (0x21u8..=0x7e).map(char::from).collect();
    let r = d.post_form(
        &format!("{ADMIN}/setup?hash={}", hmac(&max, "POST", "/api/v1/admin/setup")),
        &[("newtoken", all.as_bytes())],
    );
    assert_eq!(r.status, 200);
    assert_eq!(d.get(&version(&format!("hash={}", hmac(&all, "GET", "/api/v1/admin/version")))).status, 200);
}

#[test]
fn invalid_initial_setup_leaves_the_box_unset() {
    let d = Daemon::start();
    assert_eq!(d.post_form(&format!("{ADMIN}/setup"), &[("newtoken", b"bad token")]).status, 400);
    assert!(!d.data.join("token").exists());
    d.setup("good");
}

#[test]
fn a_wrong_token_on_setup_is_refused_after_a_pause() {
    let d = Daemon::start();
    d.setup("owner");
    let started = Instant::now();
    let r = d.post_form(&format!("{ADMIN}/setup?token=guess"), &[("newtoken", b"mine")]);
    assert_eq!(r.status, 403);
    assert!(started.elapsed() >= Duration::from_millis(1900), "answered after {:?}", started.elapsed());
    let r = d.post_form(&format!("{ADMIN}/setup"), &[("newtoken", b"mine")]);
    assert_eq!(r.status, 403, "no credentials once a token exists");
    assert_eq!(d.get(&version("token=owner")).status, 200);
    // The right token is not slowed down.
    let started = Instant::now();
    assert_eq!(d.post_form(&format!("{ADMIN}/setup?token=owner"), &[("newtoken", b"owner2")]).status, 200);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn parallel_setup_guesses_queue_behind_one_another_without_blocking_others() {
    let d = Daemon::start();
    d.setup("owner");
    let started = Instant::now();
    let port_data = std::sync::Arc::new(d);
    let guesses: Vec<_> = (0..10)
        .map(|i| {
            let d = port_data.clone();
            std::thread::spawn(move || {
                let r = d.post_form(&format!("{ADMIN}/setup?token=guess{i}"), &[("newtoken", b"x")]);
                assert_eq!(r.status, 403);
            })
        })
        .collect();
    // Meanwhile another client is served at once.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(port_data.get(&version("token=owner")).status, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "health took {:?} during the throttle", t.elapsed());
    for g in guesses {
        g.join().unwrap();
    }
    // Eight pauses queue one behind another (SETUP_PAUSE_QUEUE); the two beyond the queue
    // are refused at once rather than hold a connection each.
    let total = started.elapsed();
    assert!(total >= Duration::from_secs(15), "ten failures took only {total:?}");
    assert!(total < Duration::from_secs(40), "ten failures took {total:?}");
}

fn first_run_board(words: u32) -> std::path::PathBuf {
    let dir = temp_dir("board");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let text = text.replacen(
        "\"jidoteki\": {",
        &format!("\"jidoteki\": {{\n    \"first-run\": {{\"enabled\": true, \"word-length\": {words}}},"),
        1,
    );
    let path = dir.join("first-run.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn first_run_passphrase_only_opens_setup() {
    let board = first_run_board(4);
    let mut d = Daemon::with(Options { board: Some(board.display().to_string()), ..Options::default() });
    let passphrase = std::fs::read_to_string(d.data.join("first-run-passphrase")).unwrap().trim().to_owned();
    assert_eq!(passphrase.split('-').count(), 4, "{passphrase}");
    assert!(d.stderr().contains(&passphrase), "the passphrase is shown on the console");
    // The passphrase is right, but until it is replaced nothing else opens.
    let r = d.get(&version(&format!("token={passphrase}")));
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), r#"{"Status":"403 Forbidden","Error-Message":"Authentication error","First-Run":true}"#);
    // Without credentials /setup is closed: a token (the passphrase) exists.
    assert_eq!(d.post_form(&format!("{ADMIN}/setup"), &[("newtoken", b"mine")]).status, 403);
    // A bad new token does not end first-run.
    let r = d.post_form(&format!("{ADMIN}/setup?token={passphrase}"), &[("newtoken", b"bad token")]);
    assert_eq!(r.status, 400);
    assert!(d.get(&version(&format!("token={passphrase}"))).text().contains("\"First-Run\":true"));
    let r = d.post_form(&format!("{ADMIN}/setup?token={passphrase}"), &[("newtoken", b"mine")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get(&version("token=mine")).status, 200);
    let r = d.get(&version(&format!("token={passphrase}")));
    assert_eq!(r.text(), r#"{"Status":"403 Forbidden","Error-Message":"Authentication error","First-Run":false}"#);
    assert!(!d.data.join("first-run-passphrase").exists());
    // A restart does not start first-run again.
    d.restart();
    assert_eq!(d.get(&version("token=mine")).status, 200);
    let _ = std::fs::remove_dir_all(board.parent().unwrap());
}

#[test]
fn a_restart_keeps_the_token_and_the_certificate() {
    let mut d = Daemon::start();
    d.setup("persist");
    let cert = std::fs::read(d.data.join("tls/cert.pem")).unwrap();
    let stored = std::fs::read_to_string(d.data.join("token")).unwrap();
    assert!(!stored.contains("persist"), "the token is not stored in clear");
    d.restart();
    // The client trusts only the certificate from before the restart.
    assert_eq!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), cert);
    assert_eq!(d.get(&version("token=persist")).status, 200);
}

#[test]
fn the_audit_log_records_events_without_secrets() {
    let d = Daemon::start();
    d.setup("s3cret-token");
    d.get(&version("token=wrong-guess"));
    let log = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().any(|l| l.contains("\t127.0.0.1\ttoken.update.success\t/api/v1/admin/setup")), "{log}");
    assert!(lines.iter().any(|l| l.contains("\ttoken.authenticate.failed\t/api/v1/admin/version")), "{log}");
    assert!(!log.contains("s3cret") && !log.contains("wrong-guess"), "{log}");
}

#[test]
fn expect_continue_is_answered_only_after_auth() {
    let d = Daemon::start();
    d.setup("owner");
    let (ct, body) = multipart(&[("newtoken", b"next")]);
    // Wrong token: the final 403 comes instead of 100 Continue, and the body is never read.
    let mut c = d.connect();
    c.write_raw(
        format!("POST {ADMIN}/setup?token=bad HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len())
            .as_bytes(),
    );
    assert_eq!(c.read_status_line(), Some(403));
    // Right token: 100 first, then the body, then 200.
    let mut c = d.connect();
    c.write_raw(
        format!("POST {ADMIN}/setup?token=owner HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len())
            .as_bytes(),
    );
    assert_eq!(c.read_status_line(), Some(100));
    c.write_raw(&body);
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(d.get(&version("token=next")).status, 200);
}

#[test]
fn unknown_paths_do_not_leak_to_the_unauthenticated() {
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/nonexistent")).status, 403);
    assert_eq!(d.get(&format!("{ADMIN}/nonexistent?token=owner")).status, 404);
    assert_eq!(d.get(&format!("{ADMIN}/nonexistent?token=owner")).text(), r#"{"Status":"404 Not Found"}"#);
    assert_eq!(d.get("/elsewhere").status, 404);
}

/// One operation has one name in the audit log whichever surface asked for it, and the
/// surface is a field of its own.
#[test]
fn an_operation_is_audited_under_one_name_with_its_surface() {
    let d = Daemon::start();
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/reboot?token=owner")).status, 202);
    let r = d.connect().send("POST", "/1.0/system/:reboot", &[("Authorization", "Bearer owner")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let log = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    let reboots: Vec<&str> = log.lines().filter(|l| l.split('\t').nth(2) == Some("reboot")).collect();
    assert_eq!(reboots.len(), 2, "{log}");
    assert!(reboots[0].ends_with("\ttoken\tjidoteki") && reboots[1].ends_with("\ttoken\tincus"), "{log}");
    // Before any route is known the surface comes from the path.
    d.get(&format!("{ADMIN}/version?token=wrong"));
    let log = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("\ttoken.authenticate.failed\t") && l.ends_with("\t-\tjidoteki")), "{log}");
}
