//! Hostile clients on loopback: many idle connections, a huge header line, pipelining, TLS
//! garbage and a stalled handshake. The daemon keeps answering everyone else throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{ADMIN, Daemon, rss_anon_kib};

#[test]
fn five_hundred_idle_connections_do_not_slow_health() {
    let d = Daemon::start();
    d.setup("owner");
    let idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(("127.0.0.1", d.port)).unwrap()).collect();
    let mut times = Vec::new();
    let mut client = d.connect();
    for _ in 0..100 {
        let t = Instant::now();
        let r = client.send("GET", &format!("{ADMIN}/health?token=owner"), &[], b"");
        times.push(t.elapsed());
        assert_eq!(r.status, 200);
    }
    times.sort();
    let p99 = times[98];
    eprintln!("health with 500 idle connections: p50 {:?}, p99 {p99:?}", times[49]);
    assert!(p99 <= Duration::from_millis(100), "p99 {p99:?} with 500 idle connections");
    drop(idle);
}

#[test]
fn a_one_mib_header_line_is_431_and_costs_nothing() {
    // Plain HTTP, so the answer can be read while the rest of the line is still being sent
    // (a TLS client library would insist on finishing its write first).
    let d = Daemon::with(crate::util::Options { plain: true, ..Default::default() });
    // Anonymous memory only: what a buffered header would cost. VmRSS also counts the
    // executable's file pages, which the first requests map and a busy machine's page cache
    // decides about. Measured after a first request, so start-up's allocations are done.
    assert_eq!(d.get("/api/v1/admin/health").status, 403, "no token set yet");
    let before = rss_anon_kib(d.pid());
    let sock = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut raw = b"GET /api/v1/admin/version HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        raw.extend_from_slice(b"\r\n\r\n");
        // The server answers and closes long before the megabyte is through.
        let _ = writer.write_all(&raw);
    });
    let mut reader = sock;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = sender.join();
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
    let after = rss_anon_kib(d.pid());
    assert!(after < before + 512, "anonymous RSS {before} -> {after} KiB for a refused 1 MiB header line");
    let mut again = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    again.write_all(b"GET /api/v1/admin/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = again.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 "), "still serving: {answer:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = Daemon::start();
    d.setup("owner");
    let mut c = d.connect();
    let mut raw = Vec::new();
    for path in ["version", "build", "nope"] {
        raw.extend_from_slice(format!("GET {ADMIN}/{path}?token=owner HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    c.write_raw(&raw);
    let statuses: Vec<u16> = (0..3).map(|_| c.read_response().expect("an answer").status).collect();
    assert_eq!(statuses, [200, 200, 404]);
}

#[test]
fn tls_garbage_and_a_stalled_handshake_are_dropped() {
    let d = Daemon::start();
    d.setup("owner");
    let mut garbage = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    garbage.write_all(b"\x16\x03\x01\x00\x05hello this is not TLS at all\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    // An alert or a close, and then nothing more: the connection is over.
    let mut total = 0;
    loop {
        match garbage.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the garbage connection was left open: {e}"),
        }
        assert!(total < 4096, "more than an alert came back");
    }
    // A client that connects and says nothing is cut off after the handshake timeout (10 s).
    let mut stalled = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t = Instant::now();
    // At most a TLS alert, then the close.
    let mut got = 0;
    while let Ok(n) = stalled.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
        assert!(got < 64, "more than an alert came back");
    }
    assert!(t.elapsed() >= Duration::from_secs(8) && t.elapsed() < Duration::from_secs(14), "{:?}", t.elapsed());
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
}

#[test]
fn over_the_connection_cap_a_client_gets_503_and_the_rest_are_refused_at_accept() {
    let d = Daemon::start();
    d.setup("owner");
    // 768 idle connections fill the cap (they sit in the TLS handshake), from two addresses
    // since one may hold at most 512.
    let idle: Vec<TcpStream> = (0..768)
        .map(|i| crate::util::tcp_from(std::net::Ipv4Addr::new(127, 0, 0, 10 + (i % 2) as u8), d.port))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = d.connect().send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    drop(idle);
    let mut served = false;
    for _ in 0..50 {
        if d.get(&format!("{ADMIN}/version?token=owner")).status == 200 {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served, "served again once the idle connections went");
}

#[test]
fn a_client_that_stops_reading_a_download_is_dropped_and_others_are_served() {
    let d = Daemon::with(crate::util::Options { root: crate::util::fixture_root_copy(), ..Default::default() });
    d.setup("owner");
    // A debug bundle or logs archive is small; a streamed system backup of a large sparse
    // file is not: it cannot fit in the socket buffers.
    let big = std::fs::File::create(d.options.root.join("var/lib/app/big.img")).unwrap();
    big.set_len(256 << 20).unwrap();
    let mut stuck = d.connect();
    stuck.write_raw(
        b"POST /1.0/system/:backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer owner\r\nContent-Length: 0\r\n\r\n",
    );
    // It never reads. Meanwhile others are answered promptly.
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
        assert!(t.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(100));
    }
    // After the write-stall timeout (30 s) the stuck client is dropped: reading now drains
    // what was buffered and then meets the end.
    std::thread::sleep(Duration::from_secs(33));
    let drained = stuck.drain_until_closed(64 << 20);
    assert!(drained.is_some(), "the stalled download was not dropped (it kept streaming)");
    crate::util::cleanup(d);
}

/// Each streamed download has a producer thread; two at once is the limit, so threads stay
/// at three (the request thread and two producers). A third is told to come back later, on
/// either surface, and once a producer ends another download starts.
#[test]
fn streamed_downloads_are_two_at_once_and_a_third_is_told_to_retry() {
    let d = Daemon::with(crate::util::Options { root: crate::util::fixture_root_copy(), ..Default::default() });
    d.setup("owner");
    // Incompressible bytes: the archive cannot fit in the socket buffers, so a producer
    // whose client does not read stays blocked, alive.
    let mut noise = vec![0u8; 32 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(d.options.root.join("var/lib/app/noise.bin"), &noise).unwrap();
    let request =
        b"POST /1.0/system/:backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer owner\r\nContent-Length: 0\r\n\r\n";
    let mut stuck: Vec<crate::util::Client> = (0..2).map(|_| d.connect()).collect();
    for c in &mut stuck {
        c.write_raw(request);
    }
    std::thread::sleep(Duration::from_millis(500));
    let r = d.connect().send("POST", "/1.0/system/:backup", &[("Authorization", "Bearer owner")], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("5"));
    assert!(r.text().contains("every worker is busy"), "{}", r.text());
    let r = d.get(&format!("{ADMIN}/logs?token=owner"));
    assert_eq!(r.status, 503);
    assert!(r.header("Error-Message").is_some_and(|m| m.contains("every worker is busy")));
    // qemu-user adds one thread of its own.
    let threads = crate::util::threads(d.pid());
    assert!(threads <= 3 + u32::from(crate::util::emulated()), "{threads} threads with two downloads held open");
    // One client goes: its producer meets the closed stream and ends, and a download can start.
    drop(stuck.pop());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = d.get(&format!("{ADMIN}/logs?token=owner"));
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "no download slot came free");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stuck);
    crate::util::cleanup(d);
}

#[test]
fn one_upload_stalls_every_client_no_more() {
    // Plain HTTP: the upload's socket has data at every turn of the loop, as a fast client's
    // does. Before each connection's turn was bounded, /health waited for the whole upload.
    let d = Daemon::with(crate::util::Options { plain: true, ..Default::default() });
    d.setup("owner");
    let total: usize = 512 * 1024 * 1024;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let uploader = {
        let (sent, done, port) = (sent.clone(), done.clone(), d.port);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let boundary = "xyzzy";
            let head = format!(
                "POST {ADMIN}/update?token=owner HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"update\"; filename=\"u.enc\"\r\n\r\n",
                total + 200
            );
            s.write_all(head.as_bytes()).unwrap();
            let chunk = vec![0x5au8; 1 << 20];
            let mut n = head.len();
            while n < total {
                if s.write_all(&chunk).is_err() {
                    break;
                }
                n += chunk.len();
                sent.store(n, std::sync::atomic::Ordering::Relaxed);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    while sent.load(std::sync::atomic::Ordering::Relaxed) < 32 << 20 {
        assert!(started.elapsed() < Duration::from_secs(60), "the upload did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut answered_during_upload = 0;
    let mut c = d.connect();
    for _ in 0..5 {
        assert_eq!(c.send("GET", &format!("{ADMIN}/health?token=owner"), &[], b"").status, 200);
        if !done.load(std::sync::atomic::Ordering::Relaxed) {
            answered_during_upload += 1;
        }
    }
    let _ = uploader.join();
    assert!(
        answered_during_upload >= 3,
        "only {answered_during_upload} of 5 health checks were answered while the upload ran"
    );
}

/// Wrong guesses from `from` until one is throttled: the checks its budget had earned back
/// are spent. Bounded: each wrong guess charges the budget, so the 429 comes within a few.
fn spend_checks(d: &Daemon, from: std::net::Ipv4Addr, version: &str) {
    let spent =
        (0..100).any(|_| d.connect_from(from).send("GET", &format!("{version}?token=x"), &[], b"").status == 429);
    assert!(spent, "100 wrong guesses from {from} and none throttled");
}

#[test]
fn wrong_credentials_are_throttled_per_address_on_every_scheme() {
    let d = Daemon::start();
    d.setup("owner");
    let guesser = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let version = format!("{ADMIN}/version");
    let started = Instant::now();
    let (mut checked, mut throttled) = (0, 0);
    let mut c = d.connect_from(guesser);
    for n in 0..300 {
        let r = match c.try_send("GET", &format!("{version}?token=guess{n}"), &[], b"") {
            Some(r) => r,
            None => {
                c = d.connect_from(guesser);
                c.send("GET", &format!("{version}?token=guess{n}"), &[], b"")
            }
        };
        match r.status {
            403 => checked += 1,
            429 => {
                throttled += 1;
                assert!(r.header("Retry-After").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
                c = d.connect_from(guesser); // a throttled answer closes the connection
            }
            other => panic!("guess {n}: {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, then about ten a second.
    let allowed = 30.0 + 10.0 * elapsed + 2.0;
    assert!(f64::from(checked) <= allowed, "{checked} guesses checked in {elapsed:.1} s");
    assert!(throttled > 0);
    // While it is throttled, even the right token is not checked from there. The budget
    // earns one check back every 100 ms, and a slow machine (qemu) may take that long between
    // two requests: spend it, then ask at once, a few times.
    let right_token_refused = (0..5).any(|_| {
        spend_checks(&d, guesser, &version);
        let r = d.connect_from(guesser).send("GET", &format!("{version}?token=owner"), &[], b"");
        assert!(r.status == 429 || r.status == 200, "{}", r.status);
        r.status == 429
    });
    assert!(right_token_refused, "the right token from the throttled address was checked every time");
    // ...nor any other scheme; but another address is served as ever.
    let key = crate::util::hmac("owner", "GET", &version);
    let basic = format!("Basic {}", "YWRtaW46b3duZXI="); // admin:owner
    for (how, path, auth) in [
        ("hash", format!("{version}?hash={key}"), ""),
        ("bearer", version.clone(), "Bearer owner"),
        ("basic", version.clone(), basic.as_str()),
        ("api key", version.clone(), "Bearer stw_not-a-key"),
        ("signed", version.clone(), "Steward-HMAC key=token, ts=1, nonce=n, sig=00"),
    ] {
        let headers: Vec<(&str, &str)> = if auth.is_empty() { vec![] } else { vec![("Authorization", auth)] };
        // The budget earns one check back every 100 ms: spend it, then ask at once (a few
        // tries, for a machine too busy to send two requests within 100 ms).
        let throttled_now = (0..5).any(|_| {
            spend_checks(&d, guesser, &version);
            d.connect_from(guesser).send("GET", &path, &headers, b"").status == 429
        });
        assert!(throttled_now, "{how} from the throttled address was checked");
        assert_eq!(
            d.connect().send("GET", &path, &headers, b"").status,
            if how == "api key" || how == "signed" { 403 } else { 200 },
            "{how} from another address"
        );
    }
    let mut owner = d.connect();
    for _ in 0..50 {
        assert_eq!(owner.send("GET", &format!("{version}?token=owner"), &[], b"").status, 200);
    }
    // The refusals are audited as a few coalesced lines, not one per guess.
    let audit = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    let lines = audit.lines().filter(|l| l.contains("auth.throttled")).count();
    assert!((1..=3).contains(&lines), "{lines} throttled lines:\n{audit}");
}

#[test]
fn a_burst_of_failed_setups_does_not_lock_the_owner_out() {
    // Plain HTTP so the flood's connections can be raw sockets.
    let d = Daemon::with(crate::util::Options { plain: true, ..Default::default() });
    d.setup("owner");
    let flooder = std::net::Ipv4Addr::new(127, 0, 0, 3);
    let port = d.port;
    // 400 connections that each send a failing setup and then wait for the answer.
    let conns: Vec<TcpStream> = (0..400)
        .map(|_| {
            let mut s = crate::util::tcp_from(flooder, port);
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.write_all(
                format!("POST {ADMIN}/setup?token=wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    // The owner is served meanwhile, from another address.
    let mut owner = d.connect();
    for _ in 0..10 {
        assert_eq!(owner.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"").status, 200);
    }
    // Every flood connection is answered (403 or 429) and closed; at most the pause queue's
    // worth wait for their pause.
    let mut waited = 0;
    for mut s in conns {
        let t = Instant::now();
        // The status line is enough (a paused 403 keeps its connection alive afterwards).
        let mut buf = [0u8; 12];
        let read = s.read_exact(&mut buf);
        let head = String::from_utf8_lossy(&buf);
        assert!(head.starts_with("HTTP/1.1 403") || head.starts_with("HTTP/1.1 429"), "{read:?} {head:?}");
        if t.elapsed() > Duration::from_millis(500) {
            waited += 1;
        }
    }
    // SETUP_PAUSE_QUEUE (8) pauses, give or take the one being released as the burst arrives.
    assert!(waited <= 10, "{waited} connections waited for a pause");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
}

#[test]
fn the_audit_log_cannot_be_filled_without_credentials() {
    let d = Daemon::with(crate::util::Options { plain: true, ..Default::default() });
    d.setup("owner");
    let before = std::fs::metadata(d.data.join("audit.log")).unwrap().len();
    let request = format!("GET {ADMIN}/{} HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(16_000));
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let reader = {
        let mut r = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        })
    };
    for _ in 0..2000 {
        if s.write_all(request.as_bytes()).is_err() {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let answered = reader.join().unwrap();
    assert!(answered > 0);
    let grown = std::fs::metadata(d.data.join("audit.log")).unwrap().len() - before;
    // 32 MB of refused requests: one line, cut short, and a count later.
    assert!(grown < 4096, "audit.log grew by {grown} bytes");
    let audit = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    assert!(audit.lines().all(|l| l.len() < 400), "{audit}");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
}

#[test]
fn multipart_has_a_part_count_and_its_header_limit_holds_in_one_read() {
    let d = Daemon::start();
    d.setup("owner");
    let setup = format!("{ADMIN}/setup?token=owner");
    let send = |body: &[u8]| {
        let ct = "multipart/form-data; boundary=b";
        d.connect().send("POST", &setup, &[("Content-Type", ct)], body)
    };
    // A 9 KiB part header in one read: refused, the token unchanged.
    let padded = format!(
        "--b\r\nContent-Disposition: form-data; name=\"newtoken\"\r\nX-Pad: {}\r\n\r\nchanged\r\n--b--\r\n",
        "p".repeat(9 * 1024)
    );
    assert_eq!(send(padded.as_bytes()).status, 400);
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    // Many parts with long names, on a route whose body may be large: refused long before
    // the names cost memory.
    let many: String = (0..2000)
        .map(|i| format!("--b\r\nContent-Disposition: form-data; name=\"{}{i}\"\r\n\r\n\r\n", "n".repeat(1000)))
        .collect();
    let r = d.connect().send(
        "POST",
        &format!("{ADMIN}/update?token=owner"),
        &[("Content-Type", "multipart/form-data; boundary=b")],
        format!("{many}--b--\r\n").as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Many empty file parts on an upload route: no spool file is left, none piles up.
    let files: String = (0..500)
        .map(|i| format!("--b\r\nContent-Disposition: form-data; name=\"update\"; filename=\"f{i}\"\r\n\r\n\r\n"))
        .collect();
    let r = d.connect().send(
        "POST",
        &format!("{ADMIN}/update?token=owner"),
        &[("Content-Type", "multipart/form-data; boundary=b")],
        format!("{files}--b--\r\n").as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let left = std::fs::read_dir(d.data.join("uploads")).unwrap().count();
    assert_eq!(left, 0, "spool files left in uploads/");
}

#[test]
fn one_address_cannot_take_the_whole_connection_table() {
    let d = Daemon::start();
    d.setup("owner");
    let flooder = std::net::Ipv4Addr::new(127, 0, 0, 4);
    // More idle connections from one address than the whole table holds.
    let flood: Vec<TcpStream> = (0..900).filter_map(|_| Some(crate::util::tcp_from(flooder, d.port))).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut owner = d.connect();
    for _ in 0..5 {
        assert_eq!(owner.send("GET", &format!("{ADMIN}/version?token=owner"), &[], b"").status, 200);
    }
    drop(flood);
}

/// Long jobs and downloads share two workers: with a Jidoteki backup and a plan's backup
/// running, a download is told to come back, threads stay at three, and once the jobs end a
/// download is served again.
#[test]
fn a_backup_a_plan_run_and_downloads_at_once_stay_within_three_threads() {
    let d = Daemon::with(crate::util::Options { root: crate::util::fixture_root_copy(), ..Default::default() });
    d.setup("owner");
    let bearer = [("Authorization", "Bearer owner")];
    // 2 GiB take seconds to archive, far longer than the checks below.
    let big = std::fs::File::create(d.options.root.join("var/lib/app/big.img")).unwrap();
    big.set_len(2 * 1024 * 1024 * 1024).unwrap();
    drop(big);
    let plan = br#"{"id":"p","sources":{"applications":["app"]},"destination":{"path":"/srv/backups/p"}}"#;
    assert_eq!(d.connect().send("POST", "/1.0/plans", &bearer, plan).status, 200);
    let r = d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", b"START")]);
    assert_eq!(r.status, 202, "{}", r.text());
    // The Backup RPC answers when the backup ends: sent, not waited for.
    let mut blocking = d.connect();
    let body = br#"{"value":"p"}"#;
    blocking.write_raw(
        format!(
            "POST /v1.Backrest/Backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer owner\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    blocking.write_raw(body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = |d: &Daemon| {
        let r = d.connect().send("GET", "/1.0/operations?status=INPROGRESS", &bearer, b"");
        r.text().matches("/1.0/operations/").count()
    };
    while running(&d) < 2 {
        assert!(Instant::now() < deadline, "the two backups did not both start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut most = 0;
    for _ in 0..4 {
        let r = d.get(&format!("{ADMIN}/logs?token=owner"));
        assert_eq!(r.status, 503, "a download while two jobs hold the workers");
        assert_eq!(r.header("Retry-After"), Some("5"));
        let r = d.connect().send("POST", "/1.0/system/:backup", &bearer, b"");
        assert_eq!(r.status, 503, "{}", r.text());
        most = most.max(crate::util::threads(d.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("most threads with two jobs running and downloads asked for: {most}");
    // qemu-user adds one thread of its own.
    assert!(most <= 3 + u32::from(crate::util::emulated()), "{most} threads with two jobs and downloads asked for");
    // Both are stopped; a download is served again once a worker is free.
    assert_eq!(d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", b"STOP")]).status, 202);
    let r = d.connect().send("GET", "/1.0/operations?status=INPROGRESS", &bearer, b"");
    for id in r.text().split("/1.0/operations/").skip(1).filter_map(|s| s.split('"').next()) {
        d.connect().send("DELETE", &format!("/1.0/operations/{id}"), &bearer, b"");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = d.get(&format!("{ADMIN}/logs?token=owner"));
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "no worker came free after the jobs were stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(blocking);
    crate::util::cleanup(d);
}
