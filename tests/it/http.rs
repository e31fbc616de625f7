//! HTTP framing and limits: 404/405, 413, 431, keep-alive, chunked bodies, plain HTTP.

use std::time::Duration;

use crate::util::{ADMIN, Daemon, Options, multipart};

#[test]
fn wrong_method_is_405_with_allow() {
    let d = Daemon::start();
    let r = d.get(&format!("{ADMIN}/setup"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("POST"));
    let r = d.req("DELETE", &format!("{ADMIN}/version"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    let r = d.connect().send("POST", &format!("{ADMIN}/health"), &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn head_requests_get_headers_only() {
    let d = Daemon::start();
    d.setup("owner");
    let mut c = d.connect();
    c.write_raw(format!("HEAD {ADMIN}/version?token=owner HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let r = c.read_head_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("19"));
    // Had a body followed the HEAD response, this response's status line would not parse.
    let r = c.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"");
    assert_eq!(r.text(), r#"{"version":"1.2.3"}"#);
}

#[test]
fn requests_are_served_by_one_thread() {
    let d = Daemon::start();
    d.setup("owner");
    // Under a qemu-user runner the emulator adds a thread of its own (its RCU worker), so
    // the measure there is that twenty connections add none; natively it is exactly one.
    let idle = crate::util::threads(d.pid());
    if !crate::util::emulated() {
        assert_eq!(idle, 1, "threads before any connection");
    }
    let mut clients: Vec<_> = (0..20).map(|_| d.connect()).collect();
    for c in &mut clients {
        assert_eq!(c.send("GET", &format!("{ADMIN}/health?token=owner"), &[], b"").status, 200);
    }
    assert_eq!(crate::util::threads(d.pid()), idle, "threads with twenty connections open and served");
    drop(clients);
}

#[test]
fn oversize_head_is_431() {
    let d = Daemon::start();
    let long = "a".repeat(20 * 1024);
    let r = d.get(&format!("{ADMIN}/version?token={long}"));
    assert_eq!(r.status, 431);
    let mut c = d.connect();
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    c.write_raw(format!("GET {ADMIN}/version HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    assert_eq!(c.read_response().unwrap().status, 431);
}

#[test]
fn oversize_body_is_413_before_it_is_sent() {
    let d = Daemon::start();
    let mut c = d.connect();
    // Declares 10 MiB but sends none of it: the answer must not wait for the body.
    c.write_raw(
        format!("POST {ADMIN}/setup HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 10485760\r\n\r\n")
            .as_bytes(),
    );
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert!(c.is_closed());
    // A chunked body that grows past the cap is cut off the same way.
    let mut c = d.connect();
    c.write_raw(format!("POST {ADMIN}/setup HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes());
    let chunk = format!("{:x}\r\n{}\r\n", 40_000, "z".repeat(40_000));
    c.write_raw(chunk.as_bytes());
    c.write_raw(chunk.as_bytes());
    assert_eq!(c.read_response().unwrap().status, 413);
}

/// A client that sends its whole body anyway (as most do) reads the 413 instead of meeting
/// a reset: the server drops what follows its answer for a while before it closes.
#[test]
fn a_client_that_keeps_sending_after_a_413_still_reads_it() {
    let d = Daemon::start();
    d.setup("owner");
    for c in [d.connect(), Daemon::with(Options { plain: true, ..Options::default() }).connect()] {
        let mut c = c;
        let body = vec![b'z'; 16 << 20];
        c.write_raw(
            format!(
                "POST {ADMIN}/setup HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        // 16 MiB do not fit in the socket buffers: without the server reading, this write
        // would block, and with the connection closed under it, it would fail.
        c.write_raw(&body);
        let r = c.read_response().expect("the answer, not a reset");
        assert_eq!(r.status, 413, "{}", r.text());
        assert!(c.is_closed());
    }
}

#[test]
fn malformed_requests_get_400_not_silence() {
    let d = Daemon::start();
    let cases: [&[u8]; 4] = [
        b"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/v1/admin/setup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /api/v1/admin/setup HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GARBAGE\x01\x02\r\n\r\n",
    ];
    for raw in cases {
        let mut c = d.connect();
        c.write_raw(raw);
        let r = c.read_response().unwrap_or_else(|| panic!("no answer to {:?}", String::from_utf8_lossy(raw)));
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
    }
    // A chunk that is longer than its declared size.
    let mut c = d.connect();
    c.write_raw(b"POST /api/v1/admin/setup HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 400);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let d = Daemon::start();
    d.setup("owner");
    let mut c = d.connect();
    for _ in 0..3 {
        let r = c.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), None);
    }
    // Pipelined: two requests in one write, two responses in order.
    let two = format!(
        "GET {ADMIN}/version?token=owner HTTP/1.1\r\nHost: x\r\n\r\nGET {ADMIN}/nonexistent?token=owner HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    c.write_raw(two.as_bytes());
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(c.read_response().unwrap().status, 404);
    // Connection: close is honoured.
    let r = c.send("GET", &format!("{ADMIN}/version?token=owner"), &[("Connection", "close")], b"");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn a_chunked_setup_body_works() {
    let d = Daemon::start();
    let (ct, body) = multipart(&[("newtoken", b"chunky")]);
    let (a, b) = body.split_at(body.len() / 2);
    let mut raw =
        format!("POST {ADMIN}/setup HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for part in [a, b] {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut c = d.connect();
    // Sent in small pieces, to exercise partial chunk lines.
    for piece in raw.chunks(7) {
        c.write_raw(piece);
    }
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/version?token=chunky")).status, 200);
}

#[test]
fn a_stalled_head_is_cut_off() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.write_raw(b"GET /api/v1/admin/version HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let started = std::time::Instant::now();
    let r = c.read_response();
    let waited = started.elapsed();
    assert_eq!(r.map(|r| r.status), Some(408));
    assert!(waited >= Duration::from_secs(8) && waited < Duration::from_secs(20), "{waited:?}");
}

#[test]
fn plain_http_mode_says_so_and_serves() {
    let d = Daemon::with(Options { plain: true, ..Options::default() });
    d.setup("owner");
    let r = d.get(&format!("{ADMIN}/version?token=owner"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Strict-Transport-Security"), None);
}

/// Sends raw bytes on a fresh connection; the response's status (None: closed unanswered)
/// and, for a 4xx, whether the server then closed the connection.
fn raw_status(d: &Daemon, bytes: &[u8]) -> (Option<u16>, bool) {
    let mut c = d.connect();
    c.write_raw(bytes);
    let status = c.read_response().map(|r| r.status);
    let closed = status.is_some_and(|s| s >= 400) && c.is_closed();
    (status, closed)
}

#[test]
fn rfc9112_host_is_required_once() {
    let d = Daemon::start();
    d.setup("owner");
    let v = format!("{ADMIN}/version?token=owner");
    assert_eq!(raw_status(&d, format!("GET {v} HTTP/1.1\r\n\r\n").as_bytes()), (Some(400), true), "no Host");
    assert_eq!(raw_status(&d, format!("GET {v} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").as_bytes()).0, Some(400));
    assert_eq!(raw_status(&d, format!("GET {v} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).0, Some(200));
    assert_eq!(raw_status(&d, format!("GET {v} HTTP/1.0\r\n\r\n").as_bytes()).0, Some(200), "HTTP/1.0 needs none");
}

#[test]
fn rfc9112_the_absolute_form_is_accepted() {
    let d = Daemon::start();
    d.setup("owner");
    let port = d.port;
    let r = raw_status(
        &d,
        format!("GET https://127.0.0.1:{port}{ADMIN}/version?token=owner HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.0, Some(200));
    // The ?hash= HMAC is over the path, whichever form carried it.
    let hash = crate::util::hmac("owner", "GET", &format!("{ADMIN}/version"));
    let r =
        raw_status(&d, format!("GET http://box{ADMIN}/version?hash={hash} HTTP/1.1\r\nHost: box\r\n\r\n").as_bytes());
    assert_eq!(r.0, Some(200));
    let r =
        raw_status(&d, format!("GET ftp://box{ADMIN}/version?token=owner HTTP/1.1\r\nHost: box\r\n\r\n").as_bytes());
    assert_eq!(r.0, Some(400));
}

#[test]
fn rfc9112_transfer_encoding_in_http10_is_400_then_close() {
    let d = Daemon::start();
    let r = raw_status(
        &d,
        format!("POST {ADMIN}/setup HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Type: multipart/form-data; boundary=x\r\n\r\n0\r\n\r\n").as_bytes(),
    );
    assert_eq!(r, (Some(400), true));
}

#[test]
fn rfc9112_field_values_are_trimmed_of_sp_and_htab_only() {
    let d = Daemon::start();
    d.setup("owner");
    let body = "--x\r\nContent-Disposition: form-data; name=\"newtoken\"\r\n\r\nsmuggled\r\n--x--\r\n";
    for header in [format!("Content-Length: \u{a0}{}", body.len()), "Transfer-Encoding: chunked\u{a0}".to_owned()] {
        let raw = format!(
            "POST {ADMIN}/setup?token=owner HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n{header}\r\n\r\n{body}"
        );
        let (status, _) = raw_status(&d, raw.as_bytes());
        assert!(matches!(status, Some(400) | Some(501) | None), "{header:?}: {status:?}");
    }
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "the token did not change");
    // SP and HTAB around a value are fine.
    let raw = format!(
        "POST {ADMIN}/setup?token=owner HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length:\t {} \t\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(&d, raw.as_bytes()).0, Some(200));
    assert_eq!(d.get(&format!("{ADMIN}/version?token=smuggled")).status, 200);
}

#[test]
fn head_never_has_side_effects() {
    let d = Daemon::start();
    d.setup("owner");
    for path in ["reboot", "debug", "logs", "backup/download"] {
        let mut c = d.connect();
        c.write_raw(format!("HEAD {ADMIN}/{path}?token=owner HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read_head_response().unwrap();
        assert_eq!(r.status, 405, "HEAD /{path}");
        assert_eq!(r.header("Allow"), Some("GET"), "HEAD /{path}");
    }
    // No download slot was taken: both producers are free for GETs.
    let (a, b) = (d.get(&format!("{ADMIN}/logs?token=owner")), d.get(&format!("{ADMIN}/logs?token=owner")));
    assert_eq!((a.status, b.status), (200, 200));
    assert!(!std::fs::read_to_string(d.data.join("audit.log")).unwrap_or_default().contains("reboot"));
}

#[test]
fn nothing_from_a_request_reaches_a_response_header_raw() {
    let d = Daemon::start();
    d.setup("owner");
    let settings = "{\"network\":{\"interface\":\"eth0\",\"hostname\":\"h.lan\",\"a\\u0000b\\u001bc\":\"x\"}}";
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", settings.as_bytes())]);
    assert_eq!(r.status, 400);
    let message = r.header("Error-Message").unwrap();
    assert!(message.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80), "{message:?}");
    assert!(message.contains("Unknown option: abc"), "{message:?}");
}
