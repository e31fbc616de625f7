//! Crash-safety: the daemon is killed (SIGKILL) at random moments while it writes its state
//! — token, settings, plans, IncusOS config, keys, the TLS certificate — and restarted each time; every file must
//! parse and hold the old value or the new one, never a mix, and the daemon must come back.
//! `STEWARD_KILLS` sets the number of kills (default 60; the figure in docs is from 500).

use std::time::Duration;

use miniserde::json::{self, Value};

use crate::util::{ADMIN, Daemon, Options, cleanup, fixture_root_copy};

/// A small deterministic generator: the same kill points on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn json_file(d: &Daemon, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(d.data.join(name)).ok()?;
    Some(json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("{name} is torn: {text:?}")))
}

fn hostname_in(v: &Value) -> String {
    let Value::Object(m) = v else { panic!("not an object") };
    let Some(Value::Object(n)) = m.get("network") else { panic!("no network") };
    match n.get("hostname") {
        Some(Value::String(h)) => h.clone(),
        _ => panic!("no hostname"),
    }
}

#[test]
fn killed_while_writing_every_file_is_old_or_new() {
    let kills: u32 = std::env::var("STEWARD_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(60);
    let mut d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("token-0");
    let mut token = "token-0".to_owned();
    let mut rng = Lcg(0x5eed);
    // Kill points spread over twice the time a write takes here and now (a loaded machine
    // is slower), so about half the writes land and half are cut.
    let t = std::time::Instant::now();
    let r = d.connect().send("PUT", "/1.0/system/logging", &[("Authorization", "Bearer token-0")], br#"{"config":{}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let window_us = (t.elapsed().as_micros() as u64 * 2).max(500);
    let mut torn_checks = 0u32;
    let (mut token_rounds, mut token_landed) = (0u32, 0u32);
    let mut cert_swaps = 0u32;
    let mut token_window_us = window_us;
    // Two certificates to swap between: a kill must never leave a key and a certificate
    // that do not belong together (the box would not come back).
    let pairs: Vec<(String, String)> = (0..2)
        .map(|_| {
            let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
            (c.cert.pem(), c.signing_key.serialize_pem())
        })
        .collect();
    for round in 0..kills {
        let kind = round % 6;
        let (cert, key) = pairs[(round / 6 % 2) as usize].clone();
        let next_token = format!("token-{}", round + 1);
        let auth = format!("Bearer {token}");
        // The write, from another thread: the kill may cut it anywhere.
        let conn = d.connect();
        let body_host = format!("host-{round}.lan");
        let writer = std::thread::spawn({
            let auth = auth.clone();
            let next_token = next_token.clone();
            move || {
                let mut c = conn;
                let plan = format!(
                    r#"{{"id":"p","sources":{{"state":true}},"destination":{{"path":"/srv/backups/{body_host}"}}}}"#
                );
                match kind {
                    0 => {
                        let (ct, form) = crate::util::multipart(&[("newtoken", next_token.as_bytes())]);
                        let _ = c.try_send(
                            "POST",
                            "/api/v1/admin/setup",
                            &[("Authorization", &auth), ("Content-Type", &ct)],
                            &form,
                        );
                    }
                    1 => {
                        let settings = format!(r#"{{"network":{{"interface":"eth0","hostname":"{body_host}"}}}}"#);
                        let (ct, form) = crate::util::multipart(&[("settings", settings.as_bytes())]);
                        let _ = c.try_send(
                            "POST",
                            "/api/v1/admin/settings",
                            &[("Authorization", &auth), ("Content-Type", &ct)],
                            &form,
                        );
                    }
                    2 => {
                        let _ = c.try_send("PUT", "/1.0/plans/p", &[("Authorization", &auth)], plan.as_bytes());
                        let _ = c.try_send("POST", "/1.0/plans", &[("Authorization", &auth)], plan.as_bytes());
                    }
                    3 => {
                        let body = format!(r#"{{"config":{{"syslog":{{"address":"{body_host}:514"}}}}}}"#);
                        let _ = c.try_send("PUT", "/1.0/system/logging", &[("Authorization", &auth)], body.as_bytes());
                    }
                    4 => {
                        let body = format!(r#"{{"name":"k{round}","capabilities":["read"]}}"#);
                        let _ = c.try_send("POST", "/1.0/keys", &[("Authorization", &auth)], body.as_bytes());
                    }
                    _ => {
                        let (ct, form) =
                            crate::util::multipart(&[("public", cert.as_bytes()), ("private", key.as_bytes())]);
                        let _ = c.try_send(
                            "POST",
                            "/api/v1/admin/certs",
                            &[("Authorization", &auth), ("Content-Type", &ct)],
                            &form,
                        );
                        // The swap happens on the job's worker: give it a moment to be cut there.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        });
        // A certificate change is a job after its 202: its writes come later. A token change
        // (multipart, a hash) takes longer than the calibrating write and varies with the load:
        // its window adapts, wider after a cut, narrower after a landing, so both occur.
        let window = match kind {
            5 => window_us * 20,
            0 => token_window_us,
            _ => window_us,
        };
        std::thread::sleep(Duration::from_micros(rng.next(window)));
        d.restart();
        let _ = writer.join();
        // Which token holds now tells whether the setup got through.
        if kind == 0 {
            token_rounds += 1;
            if d.get(&format!("{ADMIN}/version?token={next_token}")).status == 200 {
                token = next_token;
                token_landed += 1;
                token_window_us = (token_window_us * 3 / 4).max(200);
            } else {
                token_window_us = (token_window_us * 2).min(2_000_000);
            }
        }
        assert_eq!(d.get(&format!("{ADMIN}/version?token={token}")).status, 200, "round {round}: the box answers");
        let served = std::fs::read_to_string(d.data.join("tls/cert.pem")).unwrap();
        if pairs.iter().any(|(c, _)| c.trim() == served.trim()) {
            cert_swaps += 1;
        }
        let hex = std::fs::read_to_string(d.data.join("token")).unwrap();
        assert!(
            hex.trim().len() == 64 && hex.trim().bytes().all(|b| b.is_ascii_hexdigit()),
            "round {round}: token {hex:?}"
        );
        if let Some(v) = json_file(&d, "settings.json") {
            let h = hostname_in(&v);
            assert!(h.starts_with("host-") && h.ends_with(".lan"), "round {round}: {h}");
        }
        for name in ["plans.json", "incus-logging.json", "keys.json", "pools.json"] {
            if json_file(&d, name).is_some() {
                torn_checks += 1;
            }
        }
        for entry in std::fs::read_dir(&d.data).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "round {round}: a temp file survived the restart? {name}");
        }
    }
    assert!(torn_checks > 0, "the rounds wrote files to check");
    // Both outcomes must occur, or the kills were not landing among the writes.
    eprintln!(
        "{kills} kills: {token_landed} of {token_rounds} token changes landed, a swapped certificate served after {cert_swaps} restarts, none torn"
    );
    // Under an emulator (STEWARD_RUNNER) a kill's timing is too coarse to promise both
    // outcomes in ten rounds (seen: 10 of 10 landed); natively it lands among the writes.
    let emulated = crate::util::emulated();
    assert!(
        emulated || token_rounds < 5 || (token_landed > 0 && token_landed < token_rounds),
        "{token_landed} of {token_rounds}"
    );
    cleanup(d);
}
