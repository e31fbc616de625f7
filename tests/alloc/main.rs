//! Allocations per request on the hot path (auth + health/version), counted in-process: the
//! daemon is assembled as `steward serve` does it and its loop runs on a thread whose
//! allocations alone are counted, while this thread is the client.
//!
//! Run `cargo test --test alloc -- --nocapture` to see the figures; with
//! `STEWARD_ALLOC_TRACE=1` each allocation of one extra request per case is printed with the
//! frames that asked for it.

#[allow(dead_code)]
#[path = "../it/util.rs"]
mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use util::{ADMIN, Client};

// The one unsafe block of the test suite: a global allocator has to be an `unsafe impl`.
struct Counting;

// Which daemon's counters this thread's allocations go to (0: none). The tests run at once,
// each with its own daemon, so each has its own counters.
thread_local!(static COUNTED: Cell<usize> = const { Cell::new(0) });
static ALLOCATIONS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static BYTES: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// Bytes allocated and not yet freed by the daemon's thread.
static LIVE: [AtomicI64; 4] = [const { AtomicI64::new(0) }; 4];

static TRACING: AtomicBool = AtomicBool::new(false);

fn note(size: usize) {
    note_live(size as i64);
    let daemon = COUNTED.try_with(Cell::get).unwrap_or(0);
    if daemon != 0 {
        if TRACING.load(Ordering::Relaxed) {
            trace(size);
        }
        ALLOCATIONS[daemon].fetch_add(1, Ordering::Relaxed);
        BYTES[daemon].fetch_add(size as u64, Ordering::Relaxed);
    }
}

fn note_live(delta: i64) {
    let daemon = COUNTED.try_with(Cell::get).unwrap_or(0);
    if daemon != 0 {
        LIVE[daemon].fetch_add(delta, Ordering::Relaxed);
    }
}

/// Prints the steward and rustls frames behind one allocation (the capture itself is not counted).
fn trace(size: usize) {
    let daemon = COUNTED.with(|c| c.replace(0));
    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
    let frames: Vec<&str> = backtrace
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("at ") && (l.contains("steward::") || l.contains("rustls::")))
        .take(4)
        .collect();
    eprintln!("  {size} bytes: {}", frames.join(" < "));
    COUNTED.with(|c| c.set(daemon));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        note_live(-(layout.size() as i64));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_live(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TOKEN: &str = "alloc-count-token";

/// A daemon on 127.0.0.1:0 serving from its own thread (it lives as long as the test process).
/// The counters of the plain-HTTP daemon or of the TLS one.
fn counters(plain_http: bool) -> usize {
    if plain_http { 1 } else { 2 }
}

fn start(plain_http: bool) -> (u16, std::path::PathBuf) {
    start_counted(plain_http, counters(plain_http))
}

fn start_counted(plain_http: bool, counted: usize) -> (u16, std::path::PathBuf) {
    let data = util::temp_dir("alloc-data");
    let root = util::fixture_root_copy();
    let (tx, rx) = std::sync::mpsc::channel();
    let data_dir = data.clone();
    std::thread::spawn(move || {
        let mut daemon = steward::daemon::assemble(&steward::daemon::Options {
            board: "dev",
            root: root.to_str().unwrap(),
            data: data_dir.to_str().unwrap(),
            listen: "127.0.0.1:0",
            plain_http,
        })
        .expect("assemble the daemon");
        tx.send(daemon.addr.port()).unwrap();
        COUNTED.with(|c| c.set(counted));
        daemon.run().expect("serve");
    });
    let port = rx.recv().expect("daemon started");
    let client = util::connect_to(port, &data, plain_http, None);
    let mut client = client;
    let (ct, body) = util::multipart(&[("newtoken", TOKEN.as_bytes())]);
    let r = client.send("POST", &format!("{ADMIN}/setup"), &[("Content-Type", &ct)], &body);
    assert_eq!(r.status, 200, "setup: {}", r.text());
    (port, data)
}

struct Figure {
    allocations: u64,
    bytes: u64,
    output: usize,
}

/// Allocations and bytes the server asked for per request, over `n` requests on one
/// keep-alive connection after a warm-up.
fn per_request(daemon: usize, client: &mut Client, path: &str, headers: &[(&str, &str)], n: u64) -> Figure {
    let mut output = 0;
    for _ in 0..20 {
        let r = client.send("GET", path, headers, b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        output = r.body.len();
    }
    let (a0, b0) = (ALLOCATIONS[daemon].load(Ordering::SeqCst), BYTES[daemon].load(Ordering::SeqCst));
    for _ in 0..n {
        let r = client.send("GET", path, headers, b"");
        assert_eq!(r.status, 200);
    }
    let (a1, b1) = (ALLOCATIONS[daemon].load(Ordering::SeqCst), BYTES[daemon].load(Ordering::SeqCst));
    if std::env::var_os("STEWARD_ALLOC_TRACE").is_some() {
        eprintln!("{path}:");
        TRACING.store(true, Ordering::SeqCst);
        client.send("GET", path, headers, b"");
        TRACING.store(false, Ordering::SeqCst);
    }
    Figure { allocations: (a1 - a0) / n, bytes: (b1 - b0) / n, output }
}

fn hash_for(path: &str) -> String {
    let key = steward::engine::token::sha256_hex(TOKEN.as_bytes());
    String::from_utf8(steward::engine::token::hmac_hex(&key, "GET", path).to_vec()).unwrap()
}

fn measure(plain_http: bool) {
    let (port, data) = start(plain_http);
    let mut client = util::connect_to(port, &data, plain_http, None);
    let padding: Vec<(String, String)> = (0..40).map(|i| (format!("X-Padding-{i}"), "p".repeat(64))).collect();
    let padded: Vec<(&str, &str)> = padding.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let padding_bytes: u64 = padding.iter().map(|(n, v)| (n.len() + v.len() + 4) as u64).sum();
    let bearer = format!("Bearer {TOKEN}");
    // A scoped API key that may only read, as a monitoring script would use.
    let created = client.send(
        "POST",
        &format!("/1.0/keys?token={TOKEN}"),
        &[("Content-Type", "application/json")],
        br#"{"name":"monitor","capabilities":["read"]}"#,
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let key_secret = match util::field(&created.json(), &["metadata", "secret"]) {
        miniserde::json::Value::String(s) => s.clone(),
        other => panic!("no secret in {other:?}"),
    };
    let key_bearer = format!("Bearer {key_secret}");
    let scheme = if plain_http { "http" } else { "https" };
    for what in ["health", "version"] {
        let path = format!("{ADMIN}/{what}");
        let cases = [
            ("?token=", format!("{path}?token={TOKEN}"), vec![]),
            ("?hash=", format!("{path}?hash={}", hash_for(&path)), vec![]),
            ("bearer", path.clone(), vec![("Authorization", bearer.as_str())]),
            ("API key (read)", path.clone(), vec![("Authorization", key_bearer.as_str())]),
            ("?token= +40 headers", format!("{path}?token={TOKEN}"), padded.clone()),
        ];
        let mut base: Option<Figure> = None;
        for (how, url, headers) in cases {
            let f = per_request(counters(plain_http), &mut client, &url, &headers, 200);
            println!(
                "{scheme} GET /{what} {how:<20} {:>2} allocations, {:>5} bytes per request ({} bytes of body)",
                f.allocations, f.bytes, f.output
            );
            // The request target, the answer's body and its header list, and over TLS one
            // buffer each way inside rustls: a handful, whatever the request carries.
            assert!(f.allocations <= 6, "{scheme} /{what} {how}: {} allocations per request", f.allocations);
            let Some(b) = &base else {
                base = Some(f);
                continue;
            };
            // Over TLS, rustls' buffered API copies each received record into a buffer of its
            // size: the padding's bytes once, never per header.
            let allowed = if plain_http || headers.len() < 40 { 0 } else { padding_bytes };
            assert!(
                f.allocations <= b.allocations + 1 && f.bytes <= b.bytes + allowed + 128,
                "{scheme} /{what} {how}: {} allocations / {} bytes vs {} / {} with ?token=",
                f.allocations,
                f.bytes,
                b.allocations,
                b.bytes
            );
        }
    }
}

#[test]
fn hot_path_allocations_over_tls() {
    measure(false);
}

#[test]
fn hot_path_allocations_over_plain_http() {
    measure(true);
}

/// What an idle keep-alive TLS connection keeps on the heap after its first request: 100 of
/// them must fit the 6 MiB budget with the daemon's own 2 MiB.
#[test]
fn idle_keep_alive_connections_hold_little() {
    const DAEMON: usize = 3;
    let (port, data) = start_counted(false, DAEMON);
    let path = format!("{ADMIN}/health?token={TOKEN}");
    let mut warm = util::connect_to(port, &data, false, None);
    assert_eq!(warm.send("GET", &path, &[], b"").status, 200);
    let before = LIVE[DAEMON].load(Ordering::SeqCst);
    let mut clients: Vec<Client> = (0..100).map(|_| util::connect_to(port, &data, false, None)).collect();
    for c in &mut clients {
        assert_eq!(c.send("GET", &path, &[], b"").status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let per_connection = (LIVE[DAEMON].load(Ordering::SeqCst) - before) / 100;
    println!("an idle keep-alive TLS connection holds {per_connection} bytes of heap");
    assert!(per_connection <= 40 * 1024, "{per_connection} bytes per idle connection");
    drop(clients);
}
