//! `GET /metrics`: Prometheus text format. Counters are kept in fixed arrays and a small map
//! keyed by (route, status), filled as requests are answered; a scrape writes them into
//! one string and allocates nothing else.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::routes::ROUTES;
use super::{Api, Call, Handled};
use crate::server::http::Response;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    /// (route index or `None` for requests no route took, status) → count.
    requests: BTreeMap<(Option<u16>, u16), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: Duration,
    pub open_connections: usize,
}

impl Metrics {
    /// `status` 0 stands for an answer that comes later from a worker.
    pub fn observe(&mut self, route: Option<usize>, status: u16, took: Duration) {
        *self.requests.entry((route.map(|r| r as u16), status)).or_insert(0) += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += took;
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// Prometheus label values escape backslash, quote and newline.
fn label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A figure of the process's own /proc/self/status (not the board's: not read under --root).
fn own_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

pub fn metrics(api: &mut Api, _call: &mut Call) -> Handled {
    let m = &api.metrics;
    let mut out = String::with_capacity(4096 + m.requests.len() * 96);
    help(
        &mut out,
        "steward_requests_total",
        "counter",
        "Requests answered, by route and status (status 0: answered later by a worker).",
    );
    for ((route, status), n) in &m.requests {
        out.push_str("steward_requests_total{route=\"");
        match route.and_then(|r| ROUTES.get(r as usize)) {
            Some(r) => {
                label(&mut out, r.method.as_str());
                out.push(' ');
                label(&mut out, r.surface.prefix());
                label(&mut out, r.pattern);
            }
            None => out.push_str("unmatched"),
        }
        let _ = writeln!(out, "\",status=\"{status}\"}} {n}");
    }
    help(&mut out, "steward_request_duration_seconds", "histogram", "Time from a request's head to its answer.");
    for (bound, n) in BUCKETS.iter().zip(m.buckets) {
        let _ = writeln!(out, "steward_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "steward_request_duration_seconds_bucket{{le=\"+Inf\"}} {}", m.count);
    let _ = writeln!(out, "steward_request_duration_seconds_sum {}", m.sum.as_secs_f64());
    let _ = writeln!(out, "steward_request_duration_seconds_count {}", m.count);
    help(&mut out, "steward_open_connections", "gauge", "Client connections open now.");
    let _ = writeln!(out, "steward_open_connections {}", m.open_connections);

    help(&mut out, "steward_job_running", "gauge", "1 while a job of this kind runs.");
    let jobs: Vec<_> = crate::engine::jobs::Kind::ALL.iter().map(|k| (k.name(), api.engine.jobs.state(*k))).collect();
    for (kind, state) in &jobs {
        let running = state.as_ref().is_some_and(|s| s.status == crate::engine::jobs::Status::Running);
        let _ = writeln!(out, "steward_job_running{{kind=\"{kind}\"}} {}", u8::from(running));
    }
    help(
        &mut out,
        "steward_job_last_success",
        "gauge",
        "1 if the last finished job of this kind succeeded, 0 if it failed.",
    );
    for (kind, state) in &jobs {
        match state.as_ref().map(|s| s.status) {
            Some(crate::engine::jobs::Status::Success) => {
                let _ = writeln!(out, "steward_job_last_success{{kind=\"{kind}\"}} 1");
            }
            Some(crate::engine::jobs::Status::Failed) => {
                let _ = writeln!(out, "steward_job_last_success{{kind=\"{kind}\"}} 0");
            }
            _ => {}
        }
    }
    let needs_reboot = jobs
        .iter()
        .any(|(k, s)| *k == "update" && s.as_ref().is_some_and(|s| s.status == crate::engine::jobs::Status::Success));
    help(&mut out, "steward_update_needs_reboot", "gauge", "1 when an applied update waits for a reboot.");
    let _ = writeln!(out, "steward_update_needs_reboot {}", u8::from(needs_reboot));

    help(
        &mut out,
        "steward_plan_last_backup_success",
        "gauge",
        "1 if the plan's last backup succeeded (or warned), 0 if not.",
    );
    let mut timestamps = String::new();
    let mut durations = String::new();
    let log = api.engine.plans.log();
    for plan in &api.engine.plans.plans {
        let Some(op) = log.last_of(&plan.id, crate::store::oplog::Kind::Backup).and_then(|id| log.get(id)) else {
            continue;
        };
        if !op.status.finished() {
            continue;
        }
        let ok = matches!(op.status, crate::store::oplog::Status::Success | crate::store::oplog::Status::Warning);
        let _ = writeln!(out, "steward_plan_last_backup_success{{plan=\"{}\"}} {}", plan.id, u8::from(ok));
        let _ = writeln!(
            timestamps,
            "steward_plan_last_backup_timestamp_seconds{{plan=\"{}\"}} {}",
            plan.id,
            op.end_ms / 1000
        );
        let _ = writeln!(
            durations,
            "steward_plan_last_backup_duration_seconds{{plan=\"{}\"}} {}",
            plan.id,
            (op.end_ms - op.start_ms).max(0) as f64 / 1000.0
        );
    }
    drop(log);
    help(
        &mut out,
        "steward_plan_last_backup_timestamp_seconds",
        "gauge",
        "When the plan's last backup ended (Unix time).",
    );
    out.push_str(&timestamps);
    help(&mut out, "steward_plan_last_backup_duration_seconds", "gauge", "How long the plan's last backup took.");
    out.push_str(&durations);
    help(&mut out, "steward_process_resident_memory_bytes", "gauge", "Resident memory of the steward process.");
    let _ = writeln!(out, "steward_process_resident_memory_bytes {}", own_status("VmRSS:") * 1024);
    help(
        &mut out,
        "steward_process_threads",
        "gauge",
        "Threads of the steward process (the request thread and its workers).",
    );
    let _ = writeln!(out, "steward_process_threads {}", own_status("Threads:"));
    Ok(Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out).into())
}
