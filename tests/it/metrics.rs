//! `/metrics`: Prometheus text that a real parser (the Python client's) reads, with counters
//! that move with traffic, behind the `read` capability.

use crate::util::{ADMIN, Daemon, cleanup, fixture_root_copy};

/// Parses the exposition with the Python client's parser when it is installed (CI installs
/// it), else with the strict reading below; returns `name{labels} value` lines.
fn parse(text: &str) -> Vec<String> {
    let have_python_parser = std::process::Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_python_parser {
        eprintln!("prometheus-client is not installed (pip install prometheus-client): using the strict reader");
        return strict(text);
    }
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus-client: pip install prometheus-client)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Prometheus parser refused the output: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// The text format's grammar, strictly: comments are HELP or TYPE lines for the metric that
/// follows, every sample is `name{k="v",...} number`, names and label names are valid.
fn strict(text: &str) -> Vec<String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            && !n.as_bytes()[0].is_ascii_digit()
    };
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut p = c.splitn(3, ' ');
            let (kind, name) = (p.next().unwrap(), p.next().unwrap_or(""));
            assert!(matches!(kind, "HELP" | "TYPE") && name_ok(name), "bad comment: {line}");
            if kind == "TYPE" {
                assert!(matches!(p.next(), Some("counter" | "gauge" | "histogram" | "summary" | "untyped")), "{line}");
            }
            continue;
        }
        let (series, v) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(v == "+Inf" || v.parse::<f64>().is_ok(), "bad value: {line}");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"))),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad name: {line}");
        let mut sorted: Vec<&str> =
            if labels.is_empty() { Vec::new() } else { labels.split("\",").map(|l| l.trim_end_matches('"')).collect() };
        for l in &sorted {
            let (k, v) = l.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
            assert!(name_ok(k) && !v.contains('"'), "bad label: {line}");
        }
        sorted.sort();
        let labels: Vec<String> = sorted.iter().map(|l| format!("{l}\"")).collect();
        let value: f64 = if v == "+Inf" { f64::INFINITY } else { v.parse().unwrap() };
        out.push(format!("{name}{{{}}} {value:?}", labels.join(",")));
    }
    out
}

fn value(samples: &[String], prefix: &str) -> f64 {
    samples
        .iter()
        .find(|s| s.starts_with(prefix))
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in {samples:#?}"))
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    let d = Daemon::with(crate::util::Options { root: fixture_root_copy(), ..Default::default() });
    d.setup("owner");
    let scrape = || {
        let r = d.get("/metrics?token=owner");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"));
        parse(&r.text())
    };
    let health = r#"steward_requests_total{route="GET /api/v1/admin/health",status="200"}"#;
    let before = scrape();
    let count = |s: &[String]| s.iter().find(|l| l.starts_with(health)).map_or(0.0, |l| value(s, &l[..health.len()]));
    let base = count(&before);
    for _ in 0..5 {
        assert_eq!(d.get(&format!("{ADMIN}/health?token=owner")).status, 200);
    }
    assert_eq!(d.get(&format!("{ADMIN}/health?token=nope")).status, 403);
    let _held = d.connect();
    let after = scrape();
    assert_eq!(count(&after) - base, 5.0);
    assert!(value(&after, r#"steward_requests_total{route="GET /api/v1/admin/health",status="403"}"#) >= 1.0);
    assert!(
        value(&after, "steward_request_duration_seconds_count{}")
            > value(&before, "steward_request_duration_seconds_count{}")
    );
    assert!(value(&after, "steward_open_connections{}") >= 1.0);
    assert!(value(&after, "steward_process_resident_memory_bytes{}") > 500_000.0);
    let threads = value(&after, "steward_process_threads{}");
    // Under qemu-user the figure is the emulator's, which has threads of its own.
    let native = !crate::util::emulated();
    assert!(threads >= 1.0 && (!native || threads <= 3.0), "{threads} threads");
    assert_eq!(value(&after, r#"steward_job_running{kind="backup"}"#), 0.0);

    // A plan's last backup shows up once it has run.
    let plan = br#"{"id":"nightly","sources":{"state":true},"destination":{"path":"/srv/backups/b"}}"#;
    let r = d.connect().send("POST", "/1.0/plans", &[("Authorization", "Bearer owner")], plan);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.connect().send(
        "POST",
        "/v1.Backrest/Backup",
        &[("Authorization", "Bearer owner")],
        br#"{"value":"nightly"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after = scrape();
    assert_eq!(value(&after, r#"steward_plan_last_backup_success{plan="nightly"}"#), 1.0);
    assert!(value(&after, r#"steward_plan_last_backup_timestamp_seconds{plan="nightly"}"#) > 1.7e9);

    // Behind auth; a read-only key may scrape.
    assert_eq!(d.get("/metrics").status, 403);
    let r = d.connect().send(
        "POST",
        "/1.0/keys",
        &[("Authorization", "Bearer owner")],
        br#"{"name":"prom","capabilities":["read"]}"#,
    );
    let secret = match crate::util::field(&r.json(), &["metadata", "secret"]) {
        miniserde::json::Value::String(s) => s.clone(),
        _ => panic!(),
    };
    assert_eq!(d.connect().send("GET", "/metrics", &[("Authorization", &format!("Bearer {secret}"))], b"").status, 200);
    cleanup(d);
}
