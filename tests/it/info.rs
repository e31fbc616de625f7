//! /version, /changelog, /build, /health, /services, /endpoints.

use miniserde::json::Value;

use crate::util::{ADMIN, Daemon, Options, field, fixture_root, temp_dir};

fn authed(d: &Daemon, endpoint: &str) -> crate::util::Resp {
    d.get(&format!("{ADMIN}/{endpoint}?token=owner"))
}

fn started() -> Daemon {
    let d = Daemon::start();
    d.setup("owner");
    d
}

#[test]
fn version_changelog_and_build_come_from_the_profile_files() {
    let d = started();
    assert_eq!(authed(&d, "version").text(), r#"{"version":"1.2.3"}"#);
    let r = authed(&d, "changelog");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"));
    assert_eq!(r.text(), std::fs::read_to_string(fixture_root().join("etc/steward/changelog.txt")).unwrap());
    let r = authed(&d, "build");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(matches!(field(&r.json(), &["builddate"]), Value::String(s) if s == "1795382659"));
}

/// A root without info files, an empty version file and a build file that is not JSON.
#[test]
fn missing_or_broken_info_files_are_404() {
    let root = temp_dir("root");
    for dir in ["proc", "etc/steward"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(fixture_root().join("proc/meminfo"), root.join("proc/meminfo")).unwrap();
    let d = Daemon::with(Options { root: root.clone(), ..Options::default() });
    d.setup("owner");
    for endpoint in ["version", "changelog", "build"] {
        let r = authed(&d, endpoint);
        assert_eq!(r.status, 404, "{endpoint}");
        assert_eq!(r.text(), r#"{"Status":"404 Not Found"}"#);
    }
    std::fs::write(root.join("etc/steward/version"), "\n").unwrap();
    std::fs::write(root.join("etc/steward/build.json"), "not json").unwrap();
    assert_eq!(authed(&d, "version").status, 404);
    assert_eq!(authed(&d, "build").status, 404);
    // Health needs /proc/loadavg, absent here: reported as unavailable, not as a crash.
    assert_eq!(authed(&d, "health").status, 404);
    std::fs::write(root.join("etc/steward/version"), "2.0.0\nsecond line\n").unwrap();
    assert_eq!(authed(&d, "version").text(), r#"{"version":"2.0.0"}"#);
    std::fs::write(root.join("etc/steward/version"), " \t2.0.1 \r\nsecond line\n").unwrap();
    assert_eq!(authed(&d, "version").text(), r#"{"version":"2.0.1"}"#);
    std::fs::write(root.join("etc/steward/version"), "  \r\n2.0.2\n").unwrap();
    assert_eq!(authed(&d, "version").status, 404, "a blank first line is no version");
    drop(d);
    let _ = std::fs::remove_dir_all(root);
}

fn as_str(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

fn as_u64(v: &Value) -> u64 {
    match v {
        Value::Number(miniserde::json::Number::U64(n)) => *n,
        other => panic!("expected an unsigned integer, got {other:?}"),
    }
}

#[test]
fn health_has_the_documented_shape_and_live_figures() {
    let d = started();
    let r = authed(&d, "health");
    assert_eq!(r.status, 200);
    let h = r.json();
    let size = |s: &str| {
        let (num, unit) = s.split_at(s.len() - 1);
        assert!(["K", "M", "G", "T", "P"].contains(&unit) || s.chars().all(|c| c.is_ascii_digit()), "{s}");
        assert!(num.parse::<f64>().is_ok(), "{s}");
    };
    size(as_str(field(&h, &["disk", "used"])));
    size(as_str(field(&h, &["disk", "total"])));
    assert!(as_u64(field(&h, &["disk", "percentage"])) <= 100);
    // From the fixture's /proc/meminfo: 1000 MiB total, 740 MiB available.
    assert_eq!(as_str(field(&h, &["memory", "total"])), "1000M");
    assert_eq!(as_str(field(&h, &["memory", "used"])), "260M");
    assert_eq!(as_u64(field(&h, &["memory", "percentage"])), 26);
    assert_eq!(as_u64(field(&h, &["cpu", "num"])), 4);
    assert_eq!(as_str(field(&h, &["cpu", "load"])), "0.66, 0.28, 0.14");
    assert_eq!(as_u64(field(&h, &["cpu", "cpu5min"])), 0);
}

#[test]
fn services_report_real_state_from_the_fixture_proc() {
    let d = started();
    let r = authed(&d, "services");
    assert_eq!(r.status, 200);
    // sshd has a live /proc entry; ntpd's pidfile names a zombie.
    assert_eq!(r.text(), r#"{"services":[{"steward":"running"},{"openssh":"running"},{"ntpd":"not running"}]}"#);
}

#[test]
fn endpoints_list_what_is_served() {
    let d = started();
    let r = authed(&d, "endpoints");
    assert_eq!(r.status, 200);
    let list: Vec<String> = match field(&r.json(), &["endpoints"]) {
        Value::Array(items) => items.iter().map(|v| as_str(v).to_owned()).collect(),
        other => panic!("{other:?}"),
    };
    for required in ["build", "changelog", "endpoints", "health", "services", "setup", "version"] {
        assert!(list.contains(&format!("{ADMIN}/{required}")), "{required} missing from {list:?}");
    }
    let mut sorted = list.clone();
    sorted.sort();
    assert_eq!(list, sorted);
    // Every listed endpoint is routed: a method it lacks gets 405, where an unknown path
    // would get 404 (a GET could be 404 for "nothing stored yet").
    for path in &list {
        let r = d.req("DELETE", &format!("{path}?token=owner"));
        assert_eq!(r.status, 405, "{path}");
    }
    assert_eq!(d.req("DELETE", &format!("{ADMIN}/nothing?token=owner")).status, 404);
}

/// Start-up gives back the code pages it mapped (system::raw::pages): the daemon says how much,
/// then holds less of its executable than that, and answers as before; after requests it
/// gives back what they mapped once no connection is left for five seconds.
#[test]
fn start_up_gives_back_its_code_pages() {
    let d = Daemon::start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        if let Some(l) = d.stderr().lines().find(|l| l.contains("start-up: gave back")) {
            break l.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no release in {}", d.stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let kib: u64 = line.split("gave back ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(kib > 0, "{line}");
    let resident = executable_resident_kib(d.pid());
    // Under qemu-user the figure counts the emulator's view of the mappings, not the
    // binary's own, so only a native run compares the two.
    if !crate::util::emulated() {
        assert!(resident < kib, "{resident} KiB of the executable resident after giving back {kib} KiB");
    }
    // Requests map code again; five seconds without a connection give it back.
    d.setup("owner");
    assert_eq!(authed(&d, "version").text(), r#"{"version":"1.2.3"}"#);
    let busy = executable_resident_kib(d.pid());
    assert!(busy > resident, "{busy} KiB after requests, {resident} KiB before");
    std::thread::sleep(std::time::Duration::from_millis(6500));
    let idle = executable_resident_kib(d.pid());
    assert!(idle < busy, "{idle} KiB of the executable resident after 6.5 s idle, {busy} KiB busy");
    assert_eq!(authed(&d, "version").text(), r#"{"version":"1.2.3"}"#);
}

/// The resident KiB of a process's mappings of the steward binary (which qemu-user maps for
/// its guest too, so the figure means the same under an emulator).
fn executable_resident_kib(pid: u32) -> u64 {
    let exe = std::fs::canonicalize(crate::util::binary()).unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let (mut ours, mut resident) = (false, 0u64);
    for l in smaps.lines() {
        if l.split_ascii_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
            ours = l.ends_with(exe.to_str().unwrap());
        } else if let Some(v) = l.strip_prefix("Rss:").filter(|_| ours) {
            resident += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap();
        }
    }
    resident
}

/// The Jidoteki dashboard's "Admin API documentation" link goes to `/docs/`: a page to read,
/// with no script; `/docs` stays the OpenAPI document. Both need no credentials.
#[test]
fn docs_slash_is_a_page_and_docs_is_the_openapi_document() {
    let d = started();
    let page = d.get("/docs/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("Content-Type"), Some("text/html; charset=utf-8"));
    let csp = page.header("Content-Security-Policy").unwrap_or_default().to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    let text = page.text();
    for row in ["/api/v1/admin/settings", "/1.0/system/network", "/v1.Backrest/GetOperations", "/v1/jobs/{job}"] {
        assert!(text.contains(row), "{row} is not on the page");
    }
    assert!(!text.contains("<script"), "the page runs nothing");
    let doc = d.get("/docs");
    assert_eq!(doc.status, 200);
    assert!(doc.text().starts_with(r#"{"openapi":"3.0.3""#), "{}", &doc.text()[..80]);
    assert_eq!(d.get("/docs/nope").status, 403, "only the two are served, and the rest is no one's business");
}
