//! Scoped API keys against the route table: every route refuses a key without its capability
//! (and every caller without valid credentials), and admits one with it; revoked and expired
//! keys, secrets and downloads, and the replay-resistant signed scheme.

use std::time::Duration;

use crate::util::owned_daemon as daemon;
use crate::util::string_at as s;
use crate::util::{ADMIN, Daemon, Resp, cleanup, run_cli};

const CAPS: [&str; 7] = ["read", "backups-view", "backups-manage", "update", "network", "storage-destructive", "admin"];

fn with(d: &Daemon, method: &str, path: &str, auth: &str, body: &[u8]) -> Resp {
    d.with_auth(method, path, auth, body)
}

/// Creates a key; its secret.
fn key(d: &Daemon, name: &str, caps: &[&str], expires: Option<i64>) -> String {
    let caps: Vec<String> = caps.iter().map(|c| format!("\"{c}\"")).collect();
    let expires = expires.map(|e| format!(r#","expires":{e}"#)).unwrap_or_default();
    let body = format!(r#"{{"name":"{name}","capabilities":[{}]{expires}}}"#, caps.join(","));
    let r = with(d, "POST", "/1.0/keys", "Bearer owner", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    s(&r.json(), &["metadata", "secret"])
}

struct Route {
    method: String,
    path: String,
    cap: String,
}

fn routes() -> Vec<Route> {
    let (ok, out, err) = run_cli(&["routes"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| {
            let mut p = l.split(' ');
            let method = p.next().unwrap().to_owned();
            let pattern = p.next().unwrap();
            let cap = p.next().unwrap().to_owned();
            // Placeholders get values that exist where that matters to routing only.
            let path = pattern
                .replace("{name}", "app")
                .replace("{id}", "1")
                .replace("{container}", "app")
                .replace("{backup}", "000000000000000000000001")
                .replace("{job}", "1");
            Route { method, path, cap }
        })
        .collect()
}

/// What a surface says to a caller it does not let in (429: its failures are throttled).
fn refused(r: &Resp) -> bool {
    r.status == 403 || r.status == 401 || r.status == 429
}

/// Routes that would end the test's box (reset, power, restore) are only ever refused here.
fn harmless(route: &Route) -> bool {
    !["factory-reset", ":reboot", ":poweroff", ":restore", "/restore", "/reboot", "/setup", "/1.0/keys/", "/tasks"]
        .iter()
        .any(|w| route.path.contains(w))
}

#[test]
fn every_route_checks_credentials_and_capabilities() {
    let d = daemon();
    let routes = routes();
    assert!(routes.len() > 80, "the whole table: {}", routes.len());
    let keys: Vec<(&str, String)> = CAPS.iter().map(|c| (*c, key(&d, &format!("k-{c}"), &[c], None))).collect();
    for route in &routes {
        if route.path.ends_with("/setup") {
            continue; // open before the first token; covered by the auth tests
        }
        if route.cap == "public" {
            // Nothing of the box's: the API versions and the dashboard's assets.
            let r = d.connect().send(&route.method, &route.path.replace("{file}", "app.js"), &[], b"");
            // Backrest's Login is public too, and tells an empty request that it lacks a password.
            let want = if route.path.ends_with("/Login") { 400 } else { 200 };
            assert_eq!(r.status, want, "{} {} is public", route.method, route.path);
            continue;
        }
        let what = format!("{} {}", route.method, route.path);
        let body: &[u8] = if route.method == "POST" || route.method == "PUT" { b"{}" } else { b"" };
        // No credentials, a wrong token, a hash made for another path: refused everywhere.
        let wrong_hash = crate::util::hmac("owner", &route.method, "/api/v1/admin/elsewhere");
        let sep = if route.path.contains('?') { '&' } else { '?' };
        // Wrong credentials come from another address: its failures are throttled (429 once
        // its burst is spent, also a refusal) while the keys below are served.
        let guesser = std::net::Ipv4Addr::new(127, 0, 0, 2);
        for (how, r) in [
            ("none", d.connect().send(&route.method, &route.path, &[], body)),
            (
                "wrong token",
                d.connect_from(guesser).send(
                    &route.method,
                    &route.path,
                    &[("Authorization", "Bearer not-the-token")],
                    body,
                ),
            ),
            (
                "foreign hash",
                d.connect_from(guesser).send(
                    &route.method,
                    &format!("{}{sep}hash={wrong_hash}", route.path),
                    &[],
                    body,
                ),
            ),
        ] {
            assert!(refused(&r), "{what} with {how}: {} {}", r.status, r.text());
        }
        for (cap, secret) in &keys {
            let allowed = *cap == route.cap || *cap == "admin";
            if !allowed {
                let r = with(&d, &route.method, &route.path, &format!("Bearer {secret}"), body);
                assert!(refused(&r), "{what} with a {cap} key (needs {}): {} {}", route.cap, r.status, r.text());
            } else if harmless(route) && *cap != "admin" {
                let r = with(&d, &route.method, &route.path, &format!("Bearer {secret}"), body);
                assert!(!refused(&r), "{what} with a {cap} key: {} {}", r.status, r.text());
                // Connect's unimplemented is 501 by its spec: Backrest RPCs steward does not offer.
                let unoffered = r.status == 501 && r.text().contains("\"unimplemented\"");
                assert!(
                    r.status < 500 || route.path.contains("wipe") || unoffered,
                    "{what} with a {cap} key: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
    }
    // Refusals are audited with the key's name.
    let audit = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    assert!(audit.contains("capability.denied.admin") && audit.contains("\tkey:k-read"), "{audit}");
    cleanup(d);
}

#[test]
fn a_denied_key_changes_nothing_and_an_allowed_one_acts() {
    let d = daemon();
    let read = key(&d, "monitor", &["read", "backups-view"], None);
    let net = key(&d, "netops", &["network"], None);
    let body = br#"{"network":{"interface":"eth0","hostname":"denied.lan"}}"#;
    let (ct, form) = crate::util::multipart(&[("settings", body)]);
    let r = d.connect().send(
        "POST",
        &format!("{ADMIN}/settings"),
        &[("Authorization", &format!("Bearer {read}")), ("Content-Type", &ct)],
        &form,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!d.get(&format!("{ADMIN}/settings?token=owner")).text().contains("denied.lan"), "nothing was stored");
    let r = d.connect().send(
        "POST",
        &format!("{ADMIN}/settings"),
        &[("Authorization", &format!("Bearer {net}")), ("Content-Type", &ct)],
        &form,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    // The read key reads health, and the Jidoteki ?hash= scheme works with a key's secret.
    assert_eq!(with(&d, "GET", &format!("{ADMIN}/health"), &format!("Bearer {read}"), b"").status, 200);
    let hash = crate::util::hmac(&read, "GET", "/api/v1/admin/health");
    assert_eq!(d.get(&format!("{ADMIN}/health?hash={hash}")).status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/health?token={read}")).status, 200);
    // But it cannot download a backup or see a secret.
    assert_eq!(d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", b"START")]).status, 202);
    for _ in 0..200 {
        if d.get(&format!("{ADMIN}/backup?token=owner")).text().contains("success") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.get(&format!("{ADMIN}/backup/download?token=owner")).status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/backup/download?token={read}")).status, 403);
    assert_eq!(d.get(&format!("{ADMIN}/backup?token={read}")).status, 200, "the result, not the archive");
    assert_eq!(with(&d, "GET", "/1.0/system/security?secrets=1", &format!("Bearer {read}"), b"").status, 403);
    assert_eq!(with(&d, "GET", "/1.0/system/security", &format!("Bearer {read}"), b"").status, 200);
    assert_eq!(with(&d, "GET", "/1.0/keys", &format!("Bearer {read}"), b"").status, 403);
    // Lists never show a secret.
    let list = with(&d, "GET", "/1.0/keys?recursion=1", "Bearer owner", b"").text();
    assert!(list.contains(r#""name":"monitor","capabilities":["read","backups-view"]"#), "{list}");
    assert!(!list.contains(&read) && !list.contains("stw_"), "{list}");
    assert!(!std::fs::read_to_string(d.data.join("keys.json")).unwrap().contains(&read));
    cleanup(d);
}

#[test]
fn revoked_and_expired_keys_are_refused() {
    let d = daemon();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let soon = key(&d, "soon", &["read"], Some(now + 2));
    let gone = key(&d, "gone", &["read"], None);
    for bad in [
        r#"{"name":"x","capabilities":["root"]}"#,
        r#"{"name":"x","capabilities":[]}"#,
        r#"{"name":"x y","capabilities":["read"]}"#,
        r#"{"name":"x","capabilities":["read"],"expires":1}"#,
        r#"{"capabilities":["read"]}"#,
    ] {
        assert_eq!(with(&d, "POST", "/1.0/keys", "Bearer owner", bad.as_bytes()).status, 400, "{bad}");
    }
    assert_eq!(
        with(&d, "POST", "/1.0/keys", "Bearer owner", br#"{"name":"gone","capabilities":["read"]}"#).status,
        409
    );
    assert_eq!(with(&d, "GET", "/1.0", &format!("Bearer {gone}"), b"").status, 200);
    assert_eq!(with(&d, "DELETE", "/1.0/keys/gone", "Bearer owner", b"").status, 200);
    assert_eq!(with(&d, "GET", "/1.0", &format!("Bearer {gone}"), b"").status, 403, "revoked");
    assert_eq!(with(&d, "DELETE", "/1.0/keys/gone", "Bearer owner", b"").status, 404);
    assert_eq!(with(&d, "GET", "/1.0", &format!("Bearer {soon}"), b"").status, 200);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(with(&d, "GET", "/1.0", &format!("Bearer {soon}"), b"").status, 403, "expired");
    cleanup(d);
}

/// Headers of a signed request, made by `steward sign`.
fn signed(key: &str, secret: &str, method: &str, path: &str, query: &str, body: Option<&[u8]>) -> (String, String) {
    let mut args = vec!["sign", "--key", key, "--secret", secret, "--method", method, "--path", path];
    if !query.is_empty() {
        args.extend(["--query", query]);
    }
    let file = crate::util::temp_dir("sign").join("body");
    if let Some(b) = body {
        std::fs::write(&file, b).unwrap();
        args.extend(["--body-file", file.to_str().unwrap()]);
    }
    let (ok, out, err) = run_cli(&args);
    assert!(ok, "{err}");
    let mut lines = out.lines();
    let auth = lines.next().unwrap().strip_prefix("Authorization: ").unwrap().to_owned();
    let digest = lines.next().unwrap().strip_prefix("X-Content-SHA256: ").unwrap().to_owned();
    (auth, digest)
}

#[test]
fn signed_requests_resist_replay() {
    let d = daemon();
    let secret = key(&d, "ops", &["read", "update"], None);
    let (auth, _) = signed("ops", &secret, "GET", "/1.0/system/update", "", None);
    let send = |auth: &str| d.connect().send("GET", "/1.0/system/update", &[("Authorization", auth)], b"");
    assert_eq!(send(&auth).status, 200);
    assert_eq!(send(&auth).status, 403, "the same nonce twice");
    // The admin token signs as key "token".
    let (admin, _) = signed("token", "owner", "GET", "/1.0/system/update", "", None);
    assert_eq!(send(&admin).status, 200);
    // A signature for another path, a tampered one, an old timestamp: refused.
    let (other, _) = signed("ops", &secret, "GET", "/1.0/system/network", "", None);
    assert_eq!(send(&other).status, 403);
    let (fresh, _) = signed("ops", &secret, "GET", "/1.0/system/update", "", None);
    let tampered = fresh.replace("sig=", "sig=0");
    assert_eq!(send(&tampered).status, 403);
    let ts: i64 = fresh.split("ts=").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    let stale = fresh.replace(&format!("ts={ts}"), &format!("ts={}", ts - 301));
    assert_eq!(send(&stale).status, 403, "outside the window (and the signature no longer matches)");
    assert_eq!(send(&fresh).status, 200, "the untouched one still works once");
    // The body is covered: a different body than the one signed is refused.
    let body = br#"{"config":{"channel":"testing"}}"#;
    let (auth, digest) = signed("ops", &secret, "PUT", "/1.0/system/update", "", Some(body));
    let put = |auth: &str, digest: &str, body: &[u8]| {
        d.connect().send("PUT", "/1.0/system/update", &[("Authorization", auth), ("X-Content-SHA256", digest)], body)
    };
    let r = put(&auth, &digest, br#"{"config":{"channel":"evil!!!"}}"#);
    assert_eq!(r.status, 403, "{}", r.text());
    let (auth, digest) = signed("ops", &secret, "PUT", "/1.0/system/update", "", Some(body));
    let r = put(&auth, &digest, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(with(&d, "GET", "/1.0/system/update", "Bearer owner", b"").text().contains("testing"));
    let audit = std::fs::read_to_string(d.data.join("audit.log")).unwrap();
    assert!(audit.contains("update.config\t\tkey:ops"), "{audit}");
    cleanup(d);
}
