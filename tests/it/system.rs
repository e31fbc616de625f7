//! IncusOS `/1.0/system/*` config resources, services and debug: `{config, state}` with
//! ETag/If-Match, network commit-confirm and rollback, validation, auth on every endpoint.

use std::time::Duration;

use miniserde::json::Value;

use crate::util::{ADMIN, Daemon, Options, Resp, cleanup, field, fixture_root_copy, temp_dir};

fn daemon_with(board: Option<String>) -> Daemon {
    let d = Daemon::with(Options { board, root: fixture_root_copy(), plain: false });
    d.setup("owner");
    d
}

fn call(d: &Daemon, method: &str, path: &str, body: &str) -> Resp {
    d.connect().send(method, path, &[("Authorization", "Bearer owner")], body.as_bytes())
}

fn s(v: &Value, path: &[&str]) -> String {
    match field(v, path) {
        Value::String(s) => s.clone(),
        other => panic!("{path:?} is {other:?}"),
    }
}

/// The dev board with a network apply hook.
fn board_with_apply(hook: &str) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let text = text.replacen(
        r#""network": { "config": "/etc/steward/network.conf" }"#,
        &format!(r#""network": {{ "config": "/etc/steward/network.conf", "apply": {hook} }}"#),
        1,
    );
    assert!(text.contains("apply"));
    let path = temp_dir("board").join("apply.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const STATIC: &str = r#"{"config":{"dns":{"hostname":"after.lan","nameservers":["10.0.0.53"]},
    "interfaces":[{"name":"eth0","addresses":["10.0.0.2/24"],"routes":[{"to":"0.0.0.0/0","via":"10.0.0.1"}]}]CONFIRM}}"#;

fn set_before(d: &Daemon) {
    let before = br#"{"network":{"interface":"eth0","hostname":"before.lan"}}"#;
    assert_eq!(d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", before)]).status, 202);
}

fn hostname(d: &Daemon) -> String {
    let r = call(d, "GET", "/1.0/system/network", "");
    assert_eq!(r.status, 200, "{}", r.text());
    s(&r.json(), &["metadata", "config", "dns", "hostname"])
}

#[test]
fn network_is_the_jidoteki_settings_seen_the_incus_way() {
    let d = daemon_with(None);
    set_before(&d);
    let r = call(&d, "GET", "/1.0/system/network", "");
    assert!(r.header("ETag").is_some());
    let text = r.text();
    assert!(text.contains(r#""interfaces":[{"name":"eth0","hwaddr":"52:54:00:12:34:56","addresses":["dhcp4"],"routes":[]}]"#), "{text}");
    assert!(text.contains(r#""configuration_in_process":false"#), "{text}");
    assert_eq!(hostname(&d), "before.lan");
    // A change without a timeout stands, and the Jidoteki surface sees it.
    let r = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = d.get(&format!("{ADMIN}/settings?token=owner")).text();
    assert!(settings.contains(r#""ip_address":"10.0.0.2""#) && settings.contains(r#""netmask":"255.255.255.0""#), "{settings}");
    let rendered = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert!(rendered.contains("hostname=\"after.lan\""), "{rendered}");
    assert!(call(&d, "GET", "/1.0/system/network", "").text().contains(r#""addresses":["10.0.0.2/24"]"#));
    // Bad changes are refused whole.
    for (body, why) in [
        (r#"{"config":null}"#, "config is required"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[]}}"#, "no interfaces"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","addresses":["10.0.0.9/24"]}]}}"#, "default route"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0"}],"confirmation_timeout":"-5s"}}"#, "confirmation_timeout"),
        (r#"{"config":{"dns":{"hostname":"x"},"interfaces":[{"name":"eth0"}]}}"#, "hostname"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0"}]},"extra":1}"#, "unknown field"),
        ("not json", "JSON object"),
    ] {
        let r = call(&d, "PUT", "/1.0/system/network", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    assert_eq!(hostname(&d), "after.lan", "nothing of a refused change is applied");
    assert_eq!(call(&d, "POST", "/1.0/system/network/:confirm", "").status, 400, "nothing to confirm");
    cleanup(d);
}

#[test]
fn an_unconfirmed_network_change_rolls_back_and_a_confirmed_one_stays() {
    let mut d = daemon_with(None);
    set_before(&d);
    let r = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", r#","confirmation_timeout":"2s""#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(hostname(&d), "after.lan");
    let state = call(&d, "GET", "/1.0/system/network", "").text();
    assert!(state.contains(r#""configuration_in_process":true"#), "{state}");
    let again = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", ""));
    assert_eq!(again.status, 400, "one pending change at a time: {}", again.text());
    // The pending rollback survives a restart.
    d.restart();
    let mut back = false;
    for _ in 0..100 {
        if hostname(&d) == "before.lan" {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(back, "rolled back after the timeout");
    assert!(d.get(&format!("{ADMIN}/settings?token=owner")).text().contains("before.lan"));
    assert_eq!(call(&d, "POST", "/1.0/system/network/:confirm", "").status, 400, "nothing left to confirm");

    // Confirmed in time: it stays.
    let r = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", r#","confirmation_timeout":"2s""#));
    assert_eq!(r.status, 200);
    assert_eq!(call(&d, "POST", "/1.0/system/network/:confirm", "").status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(hostname(&d), "after.lan");
    cleanup(d);
}

#[test]
fn a_failing_apply_hook_rolls_back_at_once() {
    let d = daemon_with(Some(board_with_apply(r#"["/bin/sh", "-c", "grep -q after $STEWARD_NETWORK_CONFIG && exit 3; exit 0"]"#)));
    set_before(&d);
    std::thread::sleep(Duration::from_millis(200));
    let r = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", r#","confirmation_timeout":"10m""#));
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("the previous settings are back"), "{}", r.text());
    assert_eq!(hostname(&d), "before.lan");
    let rendered = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert!(rendered.contains("before.lan"), "{rendered}");
    assert!(call(&d, "GET", "/1.0/system/network", "").text().contains(r#""configuration_in_process":false"#));
    cleanup(d);
}

#[test]
fn config_resources_validate_and_honour_if_match() {
    let d = daemon_with(None);
    for (path, good, bad) in [
        (
            "/1.0/system/logging",
            r#"{"config":{"syslog":{"address":"192.0.2.10:514","protocol":"tcp"}}}"#,
            [r#"{"config":{"syslog":{"address":"nowhere"}}}"#, r#"{"config":{"syslog":{"protocol":"carrier-pigeon"}}}"#, r#"{"config":{"loki":{}}}"#],
        ),
        (
            "/1.0/system/provider",
            r#"{"config":{"name":"operations-center","config":{"server_url":"https://oc.lan","server_token":"tok-secret"}}}"#,
            [r#"{"config":{"name":""}}"#, r#"{"config":{"name":"x","config":{"n":1}}}"#, r#"{"state":{}}"#],
        ),
        (
            "/1.0/system/update",
            r#"{"config":{"auto_reboot":true,"channel":"testing","check_frequency":"12h","maintenance_windows":[{"start_day_of_week":"Saturday","start_hour":22,"end_day_of_week":"Sunday","end_hour":6}]}}"#,
            [r#"{"config":{"check_frequency":"often"}}"#, r#"{"config":{"maintenance_windows":[{"start_day_of_week":"Saturday","start_hour":22}]}}"#, r#"{"config":{"maintenance_windows":[{"start_hour":22,"end_hour":6}]}}"#],
        ),
    ] {
        let got = call(&d, "GET", path, "");
        assert_eq!(got.status, 200, "{path}");
        let etag = got.header("ETag").unwrap().to_owned();
        for b in bad {
            let r = call(&d, "PUT", path, b);
            assert_eq!(r.status, 400, "{path} {b}: {}", r.text());
        }
        let stale = d.connect().send("PUT", path, &[("Authorization", "Bearer owner"), ("If-Match", "\"nope\"")], good.as_bytes());
        assert_eq!(stale.status, 412, "{path}: {}", stale.text());
        assert_eq!(stale.text(), crate::util::incus_error(412, &s(&stale.json(), &["error"])));
        let ok = d.connect().send("PUT", path, &[("Authorization", "Bearer owner"), ("If-Match", &etag)], good.as_bytes());
        assert_eq!(ok.status, 200, "{path}: {}", ok.text());
        let after = call(&d, "GET", path, "");
        assert_ne!(after.header("ETag").unwrap(), etag, "{path}");
        // Replaying the old ETag now loses.
        let replay = d.connect().send("PUT", path, &[("Authorization", "Bearer owner"), ("If-Match", &etag)], good.as_bytes());
        assert_eq!(replay.status, 412, "{path}");
    }
    let provider = call(&d, "GET", "/1.0/system/provider", "").text();
    assert!(provider.contains("operations-center") && !provider.contains("tok-secret"), "{provider}");
    let update = call(&d, "GET", "/1.0/system/update", "").text();
    assert!(update.contains(r#""channel":"testing""#) && update.contains(r#""needs_reboot":false"#), "{update}");
    assert_eq!(call(&d, "POST", "/1.0/system/update/:check", "").status, 200);
    assert!(call(&d, "GET", "/1.0/system/update", "").text().contains("last_check"));
    cleanup(d);
}

#[test]
fn services_and_debug() {
    let d = daemon_with(None);
    let list = call(&d, "GET", "/1.0/services", "").text();
    assert!(list.contains(r#""metadata":["/1.0/services/ntpd","/1.0/services/openssh","/1.0/services/steward"]"#), "{list}");
    let sshd = call(&d, "GET", "/1.0/services/openssh", "").text();
    assert!(sshd.contains(r#""config":{"enabled":true},"state":{"running":true}"#), "{sshd}");
    let ntpd = call(&d, "GET", "/1.0/services/ntpd", "").text();
    assert!(ntpd.contains(r#""running":false"#), "a zombie is not running: {ntpd}");
    assert_eq!(call(&d, "GET", "/1.0/services/nope", "").status, 404);
    assert_eq!(call(&d, "PUT", "/1.0/services/ntpd", r#"{"config":{"enabled":false}}"#).status, 200);
    assert!(call(&d, "GET", "/1.0/services/ntpd", "").text().contains(r#""enabled":false"#));
    assert_eq!(call(&d, "PUT", "/1.0/services/ntpd", r#"{"config":{"enabled":"no"}}"#).status, 400);
    assert_eq!(call(&d, "PUT", "/1.0/services/steward", r#"{"config":{"enabled":false}}"#).status, 400);

    assert!(call(&d, "GET", "/1.0/debug", "").text().contains("/1.0/debug/log"));
    let log = call(&d, "GET", "/1.0/debug/log?unit=app&entries=2", "");
    assert_eq!(log.status, 200, "{}", log.text());
    let Value::Array(records) = field(&log.json(), &["metadata"]).clone() else { panic!() };
    assert!(!records.is_empty() && records.len() <= 2, "{}", log.text());
    assert!(records.iter().all(|r| s(r, &["_SYSTEMD_UNIT"]) == "app"));
    for q in ["entries=0", "entries=x", "entries=100000", "boot=-1"] {
        assert_eq!(call(&d, "GET", &format!("/1.0/debug/log?{q}"), "").status, 400, "{q}");
    }
    let r = call(&d, "POST", "/1.0/debug/tui/:write-message", r#"{"level":"WARN","message":"hello from the test"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(100));
    assert!(d.stderr().contains("hello from the test"));
    for bad in [r#"{"message":""}"#, r#"{"level":"LOUD","message":"x"}"#, "[]"] {
        assert_eq!(call(&d, "POST", "/1.0/debug/tui/:write-message", bad).status, 400, "{bad}");
    }
    cleanup(d);
}

#[test]
fn every_incus_endpoint_wants_credentials() {
    let d = daemon_with(None);
    for (method, path) in [
        ("GET", "/1.0/system/network"),
        ("PUT", "/1.0/system/network"),
        ("POST", "/1.0/system/network/:confirm"),
        ("GET", "/1.0/system/logging"),
        ("PUT", "/1.0/system/logging"),
        ("GET", "/1.0/system/provider"),
        ("PUT", "/1.0/system/provider"),
        ("GET", "/1.0/system/update"),
        ("PUT", "/1.0/system/update"),
        ("POST", "/1.0/system/update/:check"),
        ("GET", "/1.0/services"),
        ("GET", "/1.0/services/openssh"),
        ("PUT", "/1.0/services/openssh"),
        ("GET", "/1.0/debug"),
        ("GET", "/1.0/debug/log"),
        ("POST", "/1.0/debug/tui/:write-message"),
        ("GET", "/1.0/plans"),
        ("GET", "/1.0/operations"),
    ] {
        let r = d.connect().send(method, path, &[("Authorization", "Bearer wrong")], b"{}");
        assert_eq!(r.status, 403, "{method} {path}");
        assert_eq!(r.text(), crate::util::incus_error(403, "not authorized"), "{method} {path}");
    }
    cleanup(d);
}
