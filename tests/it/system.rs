//! IncusOS `/1.0/system/*` config resources, services and debug: `{config, state}` with
//! ETag/If-Match, network commit-confirm and rollback, validation, auth on every endpoint.

use std::time::Duration;

use miniserde::json::Value;

use crate::util::{ADMIN, Daemon, Options, Resp, cleanup, field, fixture_root_copy};

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
    crate::util::dev_board_with(
        "apply",
        &[(
            r#""config": "/etc/steward/network.conf","#,
            &format!(r#""config": "/etc/steward/network.conf", "apply": {hook},"#),
        )],
    )
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
    assert!(
        text.contains(
            r#""interfaces":[{"name":"eth0","hwaddr":"52:54:00:12:34:56","addresses":["dhcp4"],"routes":[]}]"#
        ),
        "{text}"
    );
    assert!(text.contains(r#""configuration_in_process":false"#), "{text}");
    // The interface's addresses now, from the fixture's procfs (upstream always sends them).
    assert!(text.contains(r#""addresses":["10.0.2.15/24","fe80::5054:ff:fe12:3456/64"]"#), "{text}");
    assert_eq!(hostname(&d), "before.lan");
    // A change without a timeout stands, and the Jidoteki surface sees it.
    let r = call(&d, "PUT", "/1.0/system/network", &STATIC.replace("CONFIRM", ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = d.get(&format!("{ADMIN}/settings?token=owner")).text();
    assert!(
        settings.contains(r#""ip_address":"10.0.0.2""#) && settings.contains(r#""netmask":"255.255.255.0""#),
        "{settings}"
    );
    let rendered = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert!(rendered.contains("hostname=\"after.lan\""), "{rendered}");
    assert!(call(&d, "GET", "/1.0/system/network", "").text().contains(r#""addresses":["10.0.0.2/24"]"#));
    // Bad changes are refused whole.
    for (body, why) in [
        (r#"{"config":null}"#, "config is required"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[]}}"#, "no interfaces"),
        (
            r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","addresses":["10.0.0.9/24"]}]}}"#,
            "default route",
        ),
        (
            r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0"}],"confirmation_timeout":"-5s"}}"#,
            "confirmation_timeout",
        ),
        (r#"{"config":{"dns":{"hostname":"x"},"interfaces":[{"name":"eth0"}]}}"#, "hostname"),
        (
            r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","addresses":["10.0.0.9/24"],"routes":[{"to":"0.0.0.0/0","via":"10.0.0.1"},{"to":"192.168.5.0/24","via":"10.0.0.7"}]}]}}"#,
            "default route only",
        ),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","mtu":70000}]}}"#, "mtu"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","mtu":"1500"}]}}"#, "mtu"),
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

/// Upstream's config has a DNS domain (always sent) and interface roles; a PUT keeps them, a
/// GET shows them (roles in the state too), and a Jidoteki POST leaves them alone.
#[test]
fn the_dns_domain_and_interface_roles_are_kept() {
    let d = daemon_with(None);
    set_before(&d);
    let text = call(&d, "GET", "/1.0/system/network", "").text();
    assert!(text.contains(r#""dns":{"domain":"","hostname":"before.lan""#), "always sent: {text}");
    for (body, why) in [
        (
            r#"{"config":{"dns":{"hostname":"x.lan","domain":"bad domain"},"interfaces":[{"name":"eth0"}]}}"#,
            "dns.domain",
        ),
        (r#"{"config":{"dns":{"hostname":"x.lan","domain":7},"interfaces":[{"name":"eth0"}]}}"#, "dns.domain"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","roles":["a b"]}]}}"#, "role"),
        (r#"{"config":{"dns":{"hostname":"x.lan"},"interfaces":[{"name":"eth0","roles":"management"}]}}"#, "roles"),
    ] {
        let r = call(&d, "PUT", "/1.0/system/network", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    let put = r#"{"config":{"dns":{"hostname":"box.lan","domain":"example.lan"},"interfaces":[{"name":"eth0","addresses":["dhcp4","slaac"],"roles":["management","instances"],"required_for_online":"no"}]}}"#;
    assert_eq!(call(&d, "PUT", "/1.0/system/network", put).status, 200);
    let got = call(&d, "GET", "/1.0/system/network", "").json();
    assert_eq!(s(&got, &["metadata", "config", "dns", "domain"]), "example.lan");
    let text = call(&d, "GET", "/1.0/system/network", "").text();
    assert!(text.contains(r#""routes":[],"roles":["management","instances"]}"#), "{text}");
    assert_eq!(text.matches(r#""roles":["management","instances"]"#).count(), 2, "in the config and the state: {text}");
    // A Jidoteki POST changes the Jidoteki fields only.
    set_before(&d);
    let text = call(&d, "GET", "/1.0/system/network", "").text();
    assert!(text.contains(r#""domain":"example.lan","hostname":"before.lan""#), "{text}");
    assert_eq!(text.matches(r#""roles":["management","instances"]"#).count(), 2, "config and state: {text}");
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

/// One owner of the network settings: a Jidoteki POST cannot slip in under a pending IncusOS
/// change (whose rollback would silently undo it), and an IncusOS change keeps the settings'
/// `app` section, which only the Jidoteki surface knows.
#[test]
fn a_pending_incus_change_and_a_jidoteki_post_do_not_undo_each_other() {
    let d = daemon_with(None);
    let first = br#"{"network":{"interface":"eth0","hostname":"first.host"},"app":{"name":"a"}}"#;
    assert_eq!(d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", first)]).status, 202);
    let second = STATIC.replace("after.lan", "second.host").replace("CONFIRM", r#","confirmation_timeout":"3s""#);
    let r = call(&d, "PUT", "/1.0/system/network", &second);
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = d.get(&format!("{ADMIN}/settings?token=owner")).text();
    assert!(settings.contains("second.host"), "{settings}");
    assert!(settings.contains(r#""app":{"name":"a"}"#), "the IncusOS change dropped the app section: {settings}");
    let third = br#"{"network":{"interface":"eth0","hostname":"third.host"}}"#;
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", third)]);
    assert_eq!(r.status, 409, "a POST under a pending change: {}", r.text());
    assert!(r.text().contains(":confirm"), "{}", r.text());
    assert!(d.get(&format!("{ADMIN}/settings?token=owner")).text().contains("second.host"), "the refused POST landed");
    // The rollback brings back the whole document from before, app section included.
    let mut back = String::new();
    for _ in 0..100 {
        back = d.get(&format!("{ADMIN}/settings?token=owner")).text();
        if back.contains("first.host") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(back.contains("first.host") && back.contains(r#""app":{"name":"a"}"#), "after the rollback: {back}");
    // With nothing pending the POST is served again.
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", third)]);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(hostname(&d), "third.host");
    cleanup(d);
}

#[test]
fn a_failing_apply_hook_rolls_back_at_once() {
    let d = daemon_with(Some(board_with_apply(
        r#"["/bin/sh", "-c", "grep -q after $STEWARD_NETWORK_CONFIG && exit 3; exit 0"]"#,
    )));
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
            [
                r#"{"config":{"syslog":{"address":"no where:514"}}}"#,
                r#"{"config":{"syslog":{"protocol":"carrier-pigeon"}}}"#,
                r#"{"config":{"loki":{}}}"#,
            ],
        ),
        (
            "/1.0/system/provider",
            r#"{"config":{"name":"operations-center","config":{"server_url":"https://oc.lan","server_token":"tok-secret"}}}"#,
            [r#"{"config":{"name":""}}"#, r#"{"config":{"name":"x","config":{"n":1}}}"#, r#"{"state":{}}"#],
        ),
        (
            "/1.0/system/update",
            r#"{"config":{"auto_reboot":true,"channel":"testing","check_frequency":"12h","maintenance_windows":[{"start_day_of_week":"Saturday","start_hour":22,"end_day_of_week":"Sunday","end_hour":6}]}}"#,
            [
                r#"{"config":{"check_frequency":"often"}}"#,
                r#"{"config":{"maintenance_windows":[{"start_day_of_week":"Saturday","start_hour":22}]}}"#,
                r#"{"config":{"maintenance_windows":[{"start_day_of_week":"Friday","end_day_of_week":"Friday","start_hour":22,"end_hour":6}]}}"#,
            ],
        ),
    ] {
        let got = call(&d, "GET", path, "");
        assert_eq!(got.status, 200, "{path}");
        let etag = got.header("ETag").unwrap().to_owned();
        for b in bad {
            let r = call(&d, "PUT", path, b);
            assert_eq!(r.status, 400, "{path} {b}: {}", r.text());
        }
        let stale = d.connect().send(
            "PUT",
            path,
            &[("Authorization", "Bearer owner"), ("If-Match", "\"nope\"")],
            good.as_bytes(),
        );
        assert_eq!(stale.status, 412, "{path}: {}", stale.text());
        assert_eq!(stale.text(), crate::util::incus_error(412, &s(&stale.json(), &["error"])));
        let ok =
            d.connect().send("PUT", path, &[("Authorization", "Bearer owner"), ("If-Match", &etag)], good.as_bytes());
        assert_eq!(ok.status, 200, "{path}: {}", ok.text());
        let after = call(&d, "GET", path, "");
        assert_ne!(after.header("ETag").unwrap(), etag, "{path}");
        // Replaying the old ETag now loses.
        let replay =
            d.connect().send("PUT", path, &[("Authorization", "Bearer owner"), ("If-Match", &etag)], good.as_bytes());
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
    assert!(
        list.contains(r#""metadata":["/1.0/services/ntpd","/1.0/services/openssh","/1.0/services/steward"]"#),
        "{list}"
    );
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
    for q in ["entries=0", "entries=x", "entries=100000", "boot=-1", "since=soon", "until=2026-13-01"] {
        assert_eq!(call(&d, "GET", &format!("/1.0/debug/log?{q}"), "").status, 400, "{q}");
    }
    // since/until as journalctl takes them, against each record's time (its file's change).
    let count =
        |q: &str| match field(&call(&d, "GET", &format!("/1.0/debug/log?unit=app&{q}"), "").json(), &["metadata"]) {
            Value::Array(r) => r.len(),
            other => panic!("{other:?}"),
        };
    assert!(count("") > 0);
    assert_eq!(count("since=-1h"), count(""), "the root copy's log files were written by this test");
    assert_eq!(count("until=1970-01-02"), 0);
    assert_eq!(count("since=%2B1d"), 0, "nothing from tomorrow");
    assert!(count("since=1970-01-01%2000:00&until=%2B1d") > 0);
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
        ("GET", "/1.0/system/resources"),
        ("GET", "/1.0/system/security"),
        ("PUT", "/1.0/system/security"),
        ("POST", "/1.0/system/security/:retrieved"),
        ("POST", "/1.0/system/security/:tpm-rebind"),
        ("GET", "/1.0/system/storage"),
        ("PUT", "/1.0/system/storage"),
        ("POST", "/1.0/system/storage/:delete-pool"),
        ("POST", "/1.0/system/storage/:import-encryption-key"),
        ("POST", "/1.0/system/storage/:wipe-drive"),
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

#[test]
fn resources_and_security_read_the_fixture_machine() {
    let d = daemon_with(None);
    let r = call(&d, "GET", "/1.0/system/resources", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let num = |path: &[&str]| match field(&v, path) {
        Value::Number(miniserde::json::Number::U64(n)) => *n,
        other => panic!("{path:?} is {other:?}"),
    };
    assert_eq!(num(&["metadata", "cpu", "total"]), 4);
    assert_eq!(num(&["metadata", "memory", "total"]), 1_024_000 * 1024);
    assert_eq!(num(&["metadata", "storage", "total"]), 2);
    assert_eq!(num(&["metadata", "network", "total"]), 1);
    // As a Go client decodes it into api.Resources: every always-sent field, every type (the
    // fixture machine field by field is system::hardware's unit test).
    crate::goshape::assert_decodes(field(&v, &["metadata"]), &crate::goshape::RESOURCES, "GET /1.0/system/resources");
    assert_eq!(num(&["metadata", "load", "Processes"]), 123, "the CLI prints load only when Processes > 0");
    for section in ["gpu", "usb", "pci", "serial"] {
        assert!(num(&["metadata", section, "total"]) > 0, "{section}: the fixture machine has some");
    }

    let sec = call(&d, "GET", "/1.0/system/security", "");
    let v = sec.json();
    let flag = |path: &[&str]| matches!(field(&v, path), Value::Bool(true));
    assert!(flag(&["metadata", "state", "secure_boot_enabled"]));
    assert!(flag(&["metadata", "state", "system_state_is_trusted"]));
    assert_eq!(s(&v, &["metadata", "state", "tpm_status"]), "ok");
    assert_eq!(s(&v, &["metadata", "state", "tpm_version"]), "2.0");
    assert_eq!(
        s(&v, &["metadata", "state", "tpm_pcrs_sha256", "0"]),
        "0f2d3a2a1adaa479aeeca8f5df76aadc41b862ea4a4a4bbae6e4f7c7e4d4a1f0"
    );
    // Recovery keys: policy, redaction, explicit reveal, acknowledgement.
    for (keys, why) in [
        ("[]", "no encryption key"),
        (r#"["short!"]"#, "15 characters"),
        (r#"["aaaaaaaaaaaaaaaaaaaa"]"#, "symbol"),
        (r#"["!!!!!!!!!!!!!!!!"]"#, "5 different"),
    ] {
        let r =
            call(&d, "PUT", "/1.0/system/security", &format!(r#"{{"config":{{"encryption_recovery_keys":{keys}}}}}"#));
        assert_eq!(r.status, 400, "{keys}: {}", r.text());
        assert!(r.text().contains(why), "{keys}: {}", r.text());
    }
    let key = "correct-horse-battery-staple!";
    let r =
        call(&d, "PUT", "/1.0/system/security", &format!(r#"{{"config":{{"encryption_recovery_keys":["{key}"]}}}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = call(&d, "GET", "/1.0/system/security", "").text();
    assert!(!shown.contains(key) && shown.contains("[redacted]"), "{shown}");
    assert!(call(&d, "GET", "/1.0/system/security?secrets=1", "").text().contains(key));
    assert!(shown.contains(r#""encryption_recovery_keys_retrieved":false"#));
    assert_eq!(call(&d, "POST", "/1.0/system/security/:retrieved", "").status, 200);
    assert!(
        call(&d, "GET", "/1.0/system/security", "").text().contains(r#""encryption_recovery_keys_retrieved":true"#)
    );
    assert_eq!(call(&d, "POST", "/1.0/system/security/:tpm-rebind", "").status, 400);
    // The same machine without UEFI or TPM says so plainly.
    std::fs::remove_dir_all(d.options.root.join("sys/firmware")).unwrap();
    std::fs::remove_dir_all(d.options.root.join("sys/class/tpm")).unwrap();
    let bare = call(&d, "GET", "/1.0/system/security", "");
    assert_eq!(bare.status, 200);
    let text = bare.text();
    assert!(text.contains(r#""secure_boot_available":false"#) && text.contains(r#""tpm_status":"absent""#), "{text}");
    assert!(text.contains(r#""system_state_is_trusted":false"#));
    let r = call(&d, "POST", "/1.0/system/security/:tpm-rebind", "");
    assert!(r.status == 400 && r.text().contains("no TPM"), "{}", r.text());
    cleanup(d);
}

fn board_with_pools() -> String {
    crate::util::dev_board_with(
        "pools",
        &[(
            r#""config": "/etc/steward/storage.conf""#,
            r#""config": "/etc/steward/storage.conf", "pool_hook": ["/bin/sh", "-c", "echo $STEWARD_POOL_ACTION $STEWARD_POOL_NAME >> $STEWARD_POOL_DEVICES.hook"]"#,
        )],
    )
}

fn wait_status(d: &Daemon, id: &str) -> String {
    for _ in 0..400 {
        let op = call(d, "GET", &format!("/1.0/operations/{id}"), "").json();
        let st = s(&op, &["metadata", "status"]);
        if st != "STATUS_PENDING" && st != "STATUS_INPROGRESS" {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("operation {id} did not end");
}

#[test]
fn drives_pools_and_wipes() {
    let d = daemon_with(Some(board_with_pools()));
    // The drives' device nodes: sparse files standing in for the disks.
    let nvme = d.options.root.join("dev/nvme0n1");
    let f = std::fs::File::create(&nvme).unwrap();
    f.set_len(128 << 20).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    let mut f = f;
    for at in [0u64, 64 << 20, (128 << 20) - 4096] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[0xa5; 4096]).unwrap();
    }
    drop(f);
    std::fs::File::create(d.options.root.join("dev/sda")).unwrap().set_len(64 << 20).unwrap();

    let r = call(&d, "GET", "/1.0/system/storage", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains(r#""config":{"scrub_schedule":"0 4 * * 0"}"#), "{text}");
    assert!(
        text.contains(r#"{"id":"/dev/disk/by-id/ata-Samsung_SSD_870_S6PNNS0T123456","model_family":"","model_name":"Samsung SSD 870","serial_number":"S6PNNS0T123456","bus":"sata","capacity_in_bytes":67108864"#),
        "{text}"
    );
    assert!(text.contains(r#""mounted":true,"partitions":[{"name":"sda1","number":1"#), "{text}");
    assert!(text.contains(r#""id":"/dev/nvme0n1""#) && text.contains(r#""capacity_in_bytes":134217728"#), "{text}");

    // Refusals come before any write.
    let sda = "/dev/disk/by-id/ata-Samsung_SSD_870_S6PNNS0T123456";
    for (body, status) in [
        (format!(r#"{{"id":"{sda}"}}"#), 400),
        (r#"{"id":"/dev/nope"}"#.to_owned(), 404),
        (r#"{"secure_wipe":true}"#.to_owned(), 400),
        (r#"{"id":"/dev/nvme0n1","secure_wipe":"yes"}"#.to_owned(), 400),
    ] {
        let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    // A pool claims the nvme drive; a drive in a pool is not wiped.
    for (body, why) in [
        (r#"{"config":{"pools":[]}}"#, "scrub_schedule"),
        (r#"{"config":{"scrub_schedule":"61 * * * *","pools":[]}}"#, "minute"),
        (
            r#"{"config":{"scrub_schedule":"0 4 * * 0","pools":[{"name":"tank","type":"zfs-raid1","devices":["/dev/nvme0n1"]}]}}"#,
            "at least 2",
        ),
        (
            r#"{"config":{"scrub_schedule":"0 4 * * 0","pools":[{"name":"tank","type":"zfs-raid5","devices":["/dev/nvme0n1"]}]}}"#,
            "type must be",
        ),
        (
            r#"{"config":{"scrub_schedule":"0 4 * * 0","pools":[{"name":"tank","type":"zfs-raid0","devices":["/dev/disk/by-id/ata-Samsung_SSD_870_S6PNNS0T123456"]}]}}"#,
            "mounted",
        ),
    ] {
        let r = call(&d, "PUT", "/1.0/system/storage", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    let r = call(
        &d,
        "PUT",
        "/1.0/system/storage",
        r#"{"config":{"scrub_schedule":"0 5 * * 6","pools":[{"name":"tank","type":"zfs-raid0","devices":["/dev/nvme0n1"]}]}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hook = std::fs::read_to_string(format!("{}.hook", nvme.display())).unwrap();
    assert_eq!(hook, "create tank\n");
    let text = call(&d, "GET", "/1.0/system/storage", "").text();
    assert!(text.contains(r#""member_pool":"tank""#) && text.contains(r#""scrub_schedule":"0 5 * * 6""#), "{text}");
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", r#"{"id":"/dev/nvme0n1"}"#);
    assert!(r.status == 400 && r.text().contains("belongs to pool tank"), "{}", r.text());
    // A scrub goes to the board's hook, for a pool that exists.
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:scrub-pool", r#"{"name":"nope"}"#).status, 404);
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:scrub-pool", r#"{"name":"tank","x":1}"#).status, 400);
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:scrub-pool", r#"{"name":"tank"}"#).status, 200);
    let hook = std::fs::read_to_string(format!("{}.hook", nvme.display())).unwrap();
    assert_eq!(hook, "create tank\nscrub tank\n");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_eq!(
        call(&d, "POST", "/1.0/system/storage/:import-encryption-key", r#"{"name":"tank","encryption_key":"short"}"#)
            .status,
        400
    );
    let r = call(
        &d,
        "POST",
        "/1.0/system/storage/:import-encryption-key",
        &format!(r#"{{"name":"tank","encryption_key":"{key}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = call(&d, "GET", "/1.0/system/storage", "").text();
    assert!(text.contains(r#""encryption_key_status":"available""#) && !text.contains(key), "{text}");
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:delete-pool", r#"{"name":"local"}"#).status, 400);
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:delete-pool", r#"{"name":"nope"}"#).status, 404);
    assert_eq!(call(&d, "POST", "/1.0/system/storage/:delete-pool", r#"{"name":"tank"}"#).status, 200);

    // Now the wipe: answered as upstream does once it is done (an empty sync answer, which
    // upstream's tests require), recorded in the history, and the drive reads back as zeros.
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", r#"{"id":"/dev/nvme0n1"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s(&r.json(), &["type"]), "sync");
    assert_eq!(r.text().split(r#""metadata":"#).nth(1), Some("{}}"), "{}", r.text());
    let bytes = std::fs::read(&nvme).unwrap();
    assert_eq!(bytes.len(), 128 << 20, "the drive keeps its size");
    assert!(bytes.iter().all(|b| *b == 0), "every byte reads back as zero");
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", r#"{"id":"/dev/nvme0n1","secure_wipe":true}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let ops = call(&d, "GET", "/1.0/operations?recursion=1", "").json();
    let Value::Array(ops) = field(&ops, &["metadata"]) else { panic!("no operations") };
    let wipes: Vec<String> = ops
        .iter()
        .filter(|op| matches!(op, Value::Object(m) if m.contains_key("operationWipe")))
        .map(|op| s(op, &["id"]))
        .collect();
    assert_eq!(wipes.len(), 2, "both wipes are in the history");
    for id in wipes {
        assert_eq!(wait_status(&d, &id), "STATUS_SUCCESS");
        assert!(call(&d, "GET", &format!("/1.0/operations/{id}/log"), "").text().contains("/dev/nvme0n1"));
    }
    cleanup(d);
}

#[test]
fn pinned_client_certificates_stand_in_for_the_token() {
    let d = daemon_with(None);
    let trusted = rcgen::generate_simple_self_signed(vec!["admin-laptop".to_owned()]).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger".to_owned()]).unwrap();
    let with = |c: &rcgen::CertifiedKey<rcgen::KeyPair>, path: &str| {
        d.connect_with_cert(c.cert.der().to_vec(), c.signing_key.serialize_der()).send("GET", path, &[], b"")
    };
    assert_eq!(with(&trusted, "/1.0/system/security").status, 403, "not trusted yet");
    let pem = trusted.cert.pem().replace('\n', "\\n");
    let r = call(&d, "PUT", "/1.0/system/security", &format!(r#"{{"config":{{"client_certificates":["{pem}"]}}}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let fingerprint = {
        use sha2::{Digest, Sha256};
        Sha256::digest(trusted.cert.der()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(call(&d, "GET", "/1.0/system/security", "").text().contains(&fingerprint));
    // The trusted certificate needs no token, on every surface; another one gets nothing.
    assert_eq!(with(&trusted, "/1.0/system/security").status, 200);
    assert_eq!(with(&trusted, &format!("{ADMIN}/version")).status, 200);
    assert_eq!(with(&stranger, "/1.0/system/security").status, 403);
    assert_eq!(with(&stranger, &format!("{ADMIN}/version")).status, 403);
    // A PUT that leaves the lists out keeps them; an empty list clears them.
    assert_eq!(call(&d, "PUT", "/1.0/system/security", r#"{"config":{"custom_ca_certs":[]}}"#).status, 200);
    assert_eq!(with(&trusted, "/1.0").status, 200);
    assert_eq!(call(&d, "PUT", "/1.0/system/security", r#"{"config":{"client_fingerprints":["xyz"]}}"#).status, 400);
    assert_eq!(call(&d, "PUT", "/1.0/system/security", r#"{"config":{"client_fingerprints":[]}}"#).status, 200);
    assert_eq!(with(&trusted, "/1.0").status, 403);
    cleanup(d);
}

/// The security document and the trusted clients are stored as one change: when the document
/// cannot be written, the clients file is put back and the certificate is not trusted.
#[test]
fn a_security_change_that_cannot_be_stored_trusts_no_one() {
    let d = daemon_with(None);
    let laptop = rcgen::generate_simple_self_signed(vec!["laptop".to_owned()]).unwrap();
    let pem = laptop.cert.pem().replace('\n', "\\n");
    let body = format!(r#"{{"config":{{"client_certificates":["{pem}"]}}}}"#);
    // A directory with something in it stands where the security document goes.
    std::fs::create_dir_all(d.data.join("incus-security.json/blocker")).unwrap();
    let r = call(&d, "PUT", "/1.0/system/security", &body);
    assert_eq!(r.status, 500, "{}", r.text());
    let with_cert = || {
        d.connect_with_cert(laptop.cert.der().to_vec(), laptop.signing_key.serialize_der())
            .send("GET", "/1.0/system/security", &[], b"")
            .status
    };
    assert_eq!(with_cert(), 403, "trusted although the change was refused");
    let on_disk = std::fs::read_to_string(d.data.join("trusted-clients")).unwrap_or_default();
    assert!(on_disk.trim().is_empty(), "the clients file kept the refused client: {on_disk}");
    std::fs::remove_dir_all(d.data.join("incus-security.json")).unwrap();
    // The other way round: the clients cannot be stored, and the document is left as it was.
    let _ = std::fs::remove_file(d.data.join("trusted-clients"));
    std::fs::create_dir_all(d.data.join("trusted-clients/blocker")).unwrap();
    let ca = pem.clone();
    let both = format!(r#"{{"config":{{"custom_ca_certs":["{ca}"],"client_certificates":["{pem}"]}}}}"#);
    let r = call(&d, "PUT", "/1.0/system/security", &both);
    assert_eq!(r.status, 500, "{}", r.text());
    let doc = call(&d, "GET", "/1.0/system/security", "").text();
    assert!(!doc.contains("BEGIN CERTIFICATE"), "half of a refused change was stored: {doc}");
    std::fs::remove_dir_all(d.data.join("trusted-clients")).unwrap();
    assert_eq!(call(&d, "PUT", "/1.0/system/security", &body).status, 200);
    assert_eq!(with_cert(), 200, "and once it can be stored, it is");
    cleanup(d);
}
