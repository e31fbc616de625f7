//! The IncusOS surface: envelope, auth, index, system backup/restore and power.

use std::io::Read;

use crate::util::{Daemon, Options, cleanup, fixture_root_copy};

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

fn bearer(d: &Daemon, method: &str, path: &str, body: &[u8]) -> crate::util::Resp {
    d.connect().send(method, path, &[("Authorization", "Bearer owner")], body)
}

#[test]
fn the_envelope_and_its_errors() {
    let d = daemon();
    let r = bearer(&d, "GET", "/1.0", b"");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.starts_with(r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"environment":{"#), "{text}");
    assert!(text.contains(r#""os_version":"1.2.3""#), "{text}");
    assert!(text.contains(r#""system_is_ready":true"#));
    assert!(text.contains(r#""os_version_next":"1.2.3""#), "{text}");
    assert_eq!(
        bearer(&d, "GET", "/", b"").text(),
        r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":["/1.0"]}"#
    );
    // Hash auth works here too, over the IncusOS path.
    let hash = crate::util::hmac("owner", "GET", "/1.0/system");
    let r = d.get(&format!("/1.0/system?hash={hash}"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("/1.0/system/update"), "{}", r.text());

    let r = d.get("/1.0");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":403,"error":"not authorized","metadata":null}"#
    );
    let r = bearer(&d, "GET", "/1.0/nothing-here", b"");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text(),
        r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"not found","metadata":null}"#
    );
    let r = bearer(&d, "DELETE", "/1.0", b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    assert!(r.text().contains(r#""error_code":405"#));
    assert_eq!(d.get("/1.0/nothing-here").status, 403, "no probing without credentials");
    cleanup(d);
}

fn names(archive: &[u8], gzip: bool) -> Vec<String> {
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
    let mut tar = tar::Archive::new(reader);
    tar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

#[test]
fn system_backup_matches_the_jidoteki_backup_and_restores() {
    let d = daemon();
    let r = bearer(&d, "POST", "/1.0/system/:backup", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/gzip"));
    let incus_archive = r.body;
    // The Jidoteki backup of the same state holds the same entries.
    assert_eq!(d.post_form("/api/v1/admin/backup?token=owner", &[("action", b"START")]).status, 202);
    let started = std::time::Instant::now();
    while d.get("/api/v1/admin/backup?token=owner").text().contains("running") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let jidoteki_archive = d.get("/api/v1/admin/backup/download?token=owner").body;
    assert_eq!(names(&incus_archive, true), names(&jidoteki_archive, false));

    let config = d.options.root.join("var/lib/app/config.ini");
    std::fs::write(&config, "changed\n").unwrap();
    let r = bearer(&d, "POST", "/1.0/system/:restore?skip=network-macs", &incus_archive);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with(r#""metadata":{}}"#));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "app config v1\n");
    assert!(d.stderr().contains("reboot requested"), "restore ends with a reboot by the power method");

    let r = bearer(&d, "POST", "/1.0/system/:restore?skip=everything", &incus_archive);
    assert_eq!(r.status, 400);
    assert!(r.text().contains(r#""error_code":400"#));
    let r = bearer(&d, "POST", "/1.0/system/:restore", b"garbage bytes, not an archive");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Unable to extract backup archive"));
    assert_eq!(bearer(&d, "POST", "/1.0/system/:restore", b"").status, 400);
    cleanup(d);
}

#[test]
fn power_actions_answer_with_an_empty_object() {
    let d = daemon();
    for action in [":reboot", ":poweroff"] {
        let r = bearer(&d, "POST", &format!("/1.0/system/{action}"), b"");
        assert_eq!(r.status, 200, "{action}");
        assert!(r.text().ends_with(r#""metadata":{}}"#));
    }
    assert!(d.stderr().contains("power-off requested"));
    cleanup(d);
}

#[test]
fn factory_reset_erases_state_and_the_seeded_token_works() {
    let mut d = daemon();
    let settings = br#"{"network":{"interface":"eth0","hostname":"box.lan"}}"#;
    assert_eq!(d.post_form("/api/v1/admin/settings?token=owner", &[("settings", settings)]).status, 202);
    let old_cert = std::fs::read(d.data.join("tls/cert.pem")).unwrap();
    // Bad requests change nothing.
    for bad in [
        &b"not json"[..],
        br#"{"seeds":{"x":null}}"#,
        br#"{"seeds":{"steward":{"token":"has space"}}}"#,
        br#"{"reboot":true}"#,
        br#"{"wipe_existing_seeds":"yes"}"#,
    ] {
        let r = bearer(&d, "POST", "/1.0/system/:factory-reset", bad);
        assert_eq!(r.status, 400, "{}: {}", String::from_utf8_lossy(bad), r.text());
        assert!(r.text().contains(r#""type":"error""#));
    }
    assert_eq!(d.get("/api/v1/admin/settings?token=owner").status, 200, "nothing erased by a refused reset");

    let plan = br#"{"id":"p","sources":{"state":true},"destination":{"path":"/srv/backups/b"}}"#;
    assert_eq!(bearer(&d, "POST", "/1.0/plans", plan).status, 200);
    let client = rcgen::generate_simple_self_signed(vec!["laptop".to_owned()]).unwrap();
    let body = format!(
        r#"{{"allow_tpm_reset_failure":true,"wipe_existing_seeds":true,"seeds":{{"steward":{{"token":"seeded","client_certificates":["{}"]}},"network":{{"interface":"eth0"}}}}}}"#,
        client.cert.pem().replace('\n', "\\n")
    );
    let body = body.as_bytes();
    let bad_seed = br#"{"seeds":{"steward":{"client_certificates":["not a certificate"]}}}"#;
    assert_eq!(bearer(&d, "POST", "/1.0/system/:factory-reset", bad_seed).status, 400);
    let r = bearer(&d, "POST", "/1.0/system/:factory-reset", body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with(r#""metadata":{}}"#));
    assert_eq!(d.get("/api/v1/admin/version?token=owner").status, 403, "the old token is gone");
    let r = d.get("/api/v1/admin/settings?token=seeded");
    assert!(r.text().contains("steward.local"), "settings erased: the board's are back: {}", r.text());
    assert_ne!(std::fs::read(d.data.join("tls/cert.pem")).unwrap(), old_cert, "a new certificate");
    assert!(d.data.join("seeds/network.json").exists());
    assert!(d.stderr().contains("reboot requested"));
    assert!(d.get("/1.0/plans?token=seeded").text().contains(r#""metadata":[]"#), "plans erased too");
    // After the (simulated) reboot the seeded token and client certificate still open the box.
    d.restart();
    assert_eq!(d.get("/api/v1/admin/version?token=seeded").status, 200);
    let by_cert = d.connect_with_cert(client.cert.der().to_vec(), client.signing_key.serialize_der()).send(
        "GET",
        "/1.0",
        &[],
        b"",
    );
    assert_eq!(by_cert.status, 200);
    cleanup(d);
}

#[test]
fn factory_reset_without_seeds_reopens_setup() {
    let d = daemon();
    assert_eq!(bearer(&d, "POST", "/1.0/system/:factory-reset", b"").status, 200);
    assert_eq!(d.get("/api/v1/admin/version?token=owner").status, 403);
    d.setup("fresh");
    assert_eq!(d.get("/api/v1/admin/version?token=fresh").status, 200);
    cleanup(d);
}

#[test]
fn applications_show_back_up_restore_and_reset() {
    let d = daemon();
    assert!(bearer(&d, "GET", "/1.0/applications", b"").text().ends_with(r#""metadata":["/1.0/applications/app"]}"#));
    let r = bearer(&d, "GET", "/1.0/applications/app", b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text().ends_with(r#""metadata":{"state":{"is_primary":true,"initialized":true,"friendly_version":"2.1.0","version":"2.1.0","available_versions":["2.1.0"]},"config":{}}}"#),
        "{}",
        r.text()
    );
    assert_eq!(bearer(&d, "GET", "/1.0/applications/nope", b"").status, 404);
    assert_eq!(bearer(&d, "POST", "/1.0/applications/nope/:restart", b"").status, 404);

    let r = bearer(&d, "POST", "/1.0/applications/app/:backup", br#"{"complete":false}"#);
    assert_eq!(r.status, 200);
    let plain = r.body;
    let entries = names(&plain, true);
    assert_eq!(entries[0], "steward-backup.json");
    assert!(entries.contains(&"var/lib/app/config.ini".to_owned()));
    assert!(!entries.iter().any(|e| e.starts_with("steward/")), "no steward state in an application backup");
    assert!(!entries.iter().any(|e| e.starts_with("var/cache/")), "cache only with complete");
    let complete = names(&bearer(&d, "POST", "/1.0/applications/app/:backup", br#"{"complete":true}"#).body, true);
    assert!(complete.contains(&"var/cache/app/artifact.bin".to_owned()), "{complete:?}");
    assert_eq!(bearer(&d, "POST", "/1.0/applications/app/:backup", br#"{"complete":"yes"}"#).status, 400);

    let config = d.options.root.join("var/lib/app/config.ini");
    std::fs::write(&config, "changed\n").unwrap();
    let r = bearer(&d, "POST", "/1.0/applications/app/:restore", &plain);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "app config v1\n");
    // A system backup holds steward state, which an application restore refuses.
    let system = bearer(&d, "POST", "/1.0/system/:backup", b"").body;
    assert_eq!(bearer(&d, "POST", "/1.0/applications/app/:restore", &system).status, 400);
    assert_eq!(d.get("/api/v1/admin/version?token=owner").status, 200);

    assert_eq!(bearer(&d, "POST", "/1.0/applications/app/:restart", b"").status, 200);
    let r = bearer(&d, "POST", "/1.0/applications/app/:factory-reset", b"");
    assert_eq!(r.status, 200);
    assert!(d.options.root.join("var/lib/app").is_dir());
    assert_eq!(std::fs::read_dir(d.options.root.join("var/lib/app")).unwrap().count(), 0, "data erased");
    cleanup(d);
}

#[test]
fn the_cli_reaches_steward_under_os_and_gets_os_urls_back() {
    let d = daemon();
    // `incus admin os` sends /os/1.0/<endpoint>; an Incus proxy in front sends /1.0/... with
    // X-IncusOS-Proxy: /os. Either way the answers' URLs carry /os.
    let r = bearer(&d, "GET", "/os/1.0/system/network", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with(r#"{"type":"sync""#), "{}", r.text());
    let r = bearer(&d, "GET", "/os/1.0/applications", b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains(r#""/os/1.0/applications/app""#), "{}", r.text());
    let proxied = d.connect().send(
        "GET",
        "/1.0/applications",
        &[("Authorization", "Bearer owner"), ("X-IncusOS-Proxy", "/os")],
        b"",
    );
    assert!(proxied.text().contains(r#""/os/1.0/applications/app""#), "{}", proxied.text());
    // Without either, URLs are as they were; a header that is not a plain path is ignored.
    assert!(bearer(&d, "GET", "/1.0/applications", b"").text().contains(r#""/1.0/applications/app""#));
    let odd = d.connect().send(
        "GET",
        "/1.0/applications",
        &[("Authorization", "Bearer owner"), ("X-IncusOS-Proxy", "/os\"injected")],
        b"",
    );
    assert!(odd.text().contains(r#""/1.0/applications/app""#), "{}", odd.text());
    // Unknown paths under /os/ answer in the envelope, as under /1.0/.
    let r = bearer(&d, "GET", "/os/1.0/nope", b"");
    assert_eq!(r.status, 404);
    assert!(r.text().contains(r#""type":"error""#), "{}", r.text());
    // /osx is not /os.
    assert_ne!(bearer(&d, "GET", "/osx/1.0", b"").status, 200);
}

#[test]
fn upstream_names_and_types_the_cli_relies_on() {
    let d = daemon();
    // last_check is a Go time.Time: RFC 3339, the zero time before the first check.
    let r = bearer(&d, "GET", "/1.0/system/update", b"");
    assert!(r.text().contains(r#""last_check":"0001-01-01T00:00:00Z""#), "{}", r.text());
    // `import-storage-pool` sends :import-pool with upstream's SystemStoragePoolKey.
    let r = bearer(
        &d,
        "POST",
        "/os/1.0/system/storage/:import-pool",
        br#"{"name":"p","type":"btrfs","encryption_key":"k"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unsupported pool type"), "{}", r.text());
    // Fields upstream's SystemSecurityState always sends, with their types.
    let r = bearer(&d, "GET", "/1.0/system/security", b"");
    let v = r.json();
    for (field, object) in
        [("drive_recovery_keys", true), ("pool_recovery_keys", true), ("secure_boot_certificates", false)]
    {
        let got = crate::util::field(&v, &["metadata", "state", field]);
        assert!(
            matches!(
                (got, object),
                (miniserde::json::Value::Object(_), true) | (miniserde::json::Value::Array(_), false)
            ),
            "{field}: {got:?}"
        );
    }
    // Every debug log record has the string SYSLOG_IDENTIFIER the CLI filters on.
    let r = bearer(&d, "GET", "/1.0/debug/log", b"");
    assert_eq!(r.status, 200);
    let v = r.json();
    let miniserde::json::Value::Array(records) = crate::util::field(&v, &["metadata"]).clone() else { panic!() };
    assert!(!records.is_empty(), "the fixture root has logs: {}", r.text());
    for rec in &records {
        assert!(
            matches!(crate::util::field(rec, &["SYSLOG_IDENTIFIER"]), miniserde::json::Value::String(s) if !s.is_empty())
        );
    }
}

#[test]
fn logging_as_upstream_shows_and_takes_it() {
    let d = daemon();
    // A fresh box: nothing set, as upstream shows it.
    let r = bearer(&d, "GET", "/1.0/system/logging", b"");
    assert!(r.text().contains(r#""syslog":{"address":"","protocol":"","log_format":""}"#), "{}", r.text());
    // The GET's config sent back, and a host without a port, are what the CLI's edit sends.
    for body in [
        r#"{"config":{"syslog":{"address":"","protocol":"","log_format":""}}}"#,
        r#"{"config":{"syslog":{"address":"127.0.0.1","protocol":"","log_format":""}}}"#,
        r#"{"config":{"syslog":{"address":"[2001:db8::1]:6514","protocol":"tls","log_format":"rfc3339"}}}"#,
    ] {
        let r = bearer(&d, "PUT", "/1.0/system/logging", body.as_bytes());
        assert_eq!(r.status, 200, "{body}: {}", r.text());
    }
    assert!(bearer(&d, "GET", "/1.0/system/logging", b"").text().contains("[2001:db8::1]:6514"));
    for bad in [
        r#"{"config":{"syslog":{"address":"a b"}}}"#,
        r#"{"config":{"syslog":{"address":"host:0"}}}"#,
        r#"{"config":{"syslog":{"address":"host:99999"}}}"#,
    ] {
        assert_eq!(bearer(&d, "PUT", "/1.0/system/logging", bad.as_bytes()).status, 400, "{bad}");
    }
}

#[test]
fn update_config_as_upstream_validates_it() {
    let d = daemon();
    for good in [
        r#"{"config":{"check_frequency":"1.5h"}}"#,
        r#"{"config":{"check_frequency":"1h30m","maintenance_windows":[{"start_hour":22,"start_minute":0,"end_hour":6,"end_minute":0}]}}"#,
    ] {
        let r = bearer(&d, "PUT", "/1.0/system/update", good.as_bytes());
        assert_eq!(r.status, 200, "{good}: {}", r.text());
    }
    for bad in [
        r#"{"config":{"check_frequency":"-1h"}}"#,
        r#"{"config":{"check_frequency":"1d"}}"#,
        r#"{"config":{"maintenance_windows":[{"start_day_of_week":"Monday","end_day_of_week":"Monday","start_hour":22,"end_hour":6}]}}"#,
    ] {
        assert_eq!(bearer(&d, "PUT", "/1.0/system/update", bad.as_bytes()).status, 400, "{bad}");
    }
}

#[test]
fn network_round_trips_the_cli_does_and_upstreams_default_seed() {
    let d = daemon();
    // Upstream's default network seed: no dns at all, DHCP and SLAAC, a timezone.
    let seed = br#"{"config":{"time":{"timezone":"UTC"},"interfaces":[{"name":"eth0","hwaddr":"52:54:00:12:34:56","addresses":["dhcp4","slaac"],"required_for_online":"no"}]}}"#;
    let r = bearer(&d, "PUT", "/1.0/system/network", seed);
    assert_eq!(r.status, 200, "{}", r.text());
    // `edit` on a fresh box sends back the GET's empty hostname: the box keeps its own.
    let got = bearer(&d, "GET", "/1.0/system/network", b"");
    let hostname = match crate::util::field(&got.json(), &["metadata", "config", "dns", "hostname"]) {
        miniserde::json::Value::String(h) => h.clone(),
        other => panic!("{other:?}"),
    };
    assert!(hostname.len() >= 3, "{}", got.text());
    let edited = br#"{"config":{"dns":{"hostname":""},"interfaces":[{"name":"eth0","addresses":["dhcp4"]}]}}"#;
    let r = bearer(&d, "PUT", "/1.0/system/network", edited);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(bearer(&d, "GET", "/1.0/system/network", b"").text().contains(&format!(r#""hostname":"{hostname}""#)));
    let r = bearer(
        &d,
        "PUT",
        "/1.0/system/network",
        br#"{"config":{"dns":{"hostname":7},"interfaces":[{"name":"eth0"}]}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn security_edit_adds_a_key_to_the_redacted_list() {
    let d = daemon();
    let first = "first-recovery-key!";
    let r = bearer(
        &d,
        "PUT",
        "/1.0/system/security",
        format!(r#"{{"config":{{"encryption_recovery_keys":["{first}"]}}}}"#).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(bearer(&d, "GET", "/1.0/system/security", b"").text().contains(r#"["[redacted]"]"#));
    // What the CLI's edit sends: the GET's placeholder, plus one new key.
    let added = r#"{"config":{"encryption_recovery_keys":["[redacted]","second-recovery-key#"]}}"#;
    let r = bearer(&d, "PUT", "/1.0/system/security", added.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = bearer(&d, "GET", "/1.0/system/security?secrets=1", b"").text();
    assert!(shown.contains(&format!(r#"["{first}","second-recovery-key#"]"#)), "{shown}");
    // More placeholders than stored keys, or a weak new key: 400.
    for bad in [
        r#"{"config":{"encryption_recovery_keys":["[redacted]","[redacted]","[redacted]"]}}"#,
        r#"{"config":{"encryption_recovery_keys":["[redacted]","short"]}}"#,
    ] {
        assert_eq!(bearer(&d, "PUT", "/1.0/system/security", bad.as_bytes()).status, 400, "{bad}");
    }
}

/// Every path+verb upstream's router serves (incus-osd internal/rest/server.go), with the
/// bodies its clients send: each answers in the envelope, never 404 or 405, and never a 5xx.
/// Where steward has the feature it acts; where a steward board has none the answer says so.
const UPSTREAM: &[(&str, &str, &str)] = &[
    ("GET", "/1.0", ""),
    ("GET", "/1.0/applications", ""),
    ("POST", "/1.0/applications", r#"{"name":"incus"}"#),
    ("GET", "/1.0/applications/app", ""),
    ("PUT", "/1.0/applications/app", r#"{"config":{}}"#),
    ("POST", "/1.0/applications/app/:action", r#"{"action":"x"}"#),
    ("POST", "/1.0/applications/app/:check-update", ""),
    ("POST", "/1.0/applications/app/:debug", ""),
    ("POST", "/1.0/applications/app/:remove", ""),
    ("POST", "/1.0/applications/app/:restart", ""),
    ("POST", "/1.0/applications/app/:switch-version", r#"{"version":"2"}"#),
    ("GET", "/1.0/debug", ""),
    ("GET", "/1.0/debug/kernel", ""),
    ("GET", "/1.0/debug/log", ""),
    ("GET", "/1.0/debug/processes", ""),
    ("POST", "/1.0/debug/:run-script", "#!/bin/sh\necho hi\n"),
    ("GET", "/1.0/debug/secureboot", ""),
    ("GET", "/1.0/debug/secureboot/event-log", ""),
    ("POST", "/1.0/debug/secureboot/:update", ""),
    ("GET", "/1.0/services", ""),
    ("GET", "/1.0/services/openssh", ""),
    ("PUT", "/1.0/services/openssh", r#"{"config":{"enabled":true}}"#),
    ("POST", "/1.0/services/openssh/:reset", ""),
    ("GET", "/1.0/system", ""),
    ("POST", "/1.0/system/:suspend", ""),
    ("GET", "/1.0/system/fallback-listener", ""),
    ("PUT", "/1.0/system/fallback-listener", r#"{"config":{}}"#),
    ("GET", "/1.0/system/kernel", ""),
    ("PUT", "/1.0/system/kernel", r#"{"config":{}}"#),
    ("GET", "/1.0/system/logging", ""),
    ("GET", "/1.0/system/network", ""),
    ("POST", "/1.0/system/network/:flush-dns", ""),
    ("GET", "/1.0/system/provider", ""),
    ("GET", "/1.0/system/resources", ""),
    ("GET", "/1.0/system/security", ""),
    ("POST", "/1.0/system/security/:tpm-rebind", ""),
    ("GET", "/1.0/system/storage", ""),
    ("POST", "/1.0/system/storage/:cleanup-root", ""),
    ("POST", "/1.0/system/storage/:create-volume", r#"{"pool":"local","name":"v"}"#),
    ("POST", "/1.0/system/storage/:delete-volume", r#"{"pool":"local","name":"v"}"#),
    ("POST", "/1.0/system/storage/:encrypt-drive", r#"{"id":"/dev/sda"}"#),
    ("POST", "/1.0/system/storage/:import-encrypted-drive", r#"{"id":"/dev/sda"}"#),
    ("POST", "/1.0/system/storage/:scrub-pool", r#"{"name":"nope"}"#),
    ("GET", "/1.0/system/update", ""),
    ("POST", "/1.0/system/update/:check", ""),
];

#[test]
fn every_upstream_path_answers_in_the_envelope() {
    let d = daemon();
    for (method, path, body) in UPSTREAM {
        for prefix in ["", "/os"] {
            let r = bearer(&d, method, &format!("{prefix}{path}"), body.as_bytes());
            let text = r.text();
            assert!(
                ![404, 405, 501].contains(&r.status) && r.status < 500,
                "{method} {prefix}{path}: {} {text}",
                r.status
            );
            assert!(text.starts_with(r#"{"type":""#), "{method} {path}: not the envelope: {text}");
            if r.status == 400 {
                assert!(
                    text.contains(r#""error":""#) && !text.contains(r#""error":"""#),
                    "{method} {path}: no reason: {text}"
                );
            }
        }
    }
    cleanup(d);
}

#[test]
fn the_added_upstream_endpoints_do_what_they_say() {
    let d = daemon();
    // The kernel as procfs shows it, decoded as upstream's DebugKernel.
    let r = bearer(&d, "GET", "/1.0/debug/kernel", b"");
    let text = r.text();
    assert!(text.contains(r#""version":"6.18.0-steward""#), "{text}");
    assert!(
        text.contains(
            r#"{"name":"zfs","dependencies":["zunicode","zavl","icp","zcommon","znvpair","spl"],"in_use":true}"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"{"name":"loop","dependencies":[],"in_use":false}"#), "{text}");
    assert!(text.contains(r#""architecture":""#) && text.contains(r#""cpu_baseline":""#), "{text}");
    // Processes: a string, as upstream's is, one line each.
    let text = bearer(&d, "GET", "/1.0/debug/processes", b"").text();
    assert!(text.contains(r#""metadata":"PID PPID S COMMAND\n"#), "{text}");
    assert!(text.contains(r#"4242 1 S /usr/sbin/sshd -D\n"#) && text.contains(r#"77 1 Z [ntpd]\n"#), "{text}");
    // A service's reset brings the board's default back.
    assert_eq!(bearer(&d, "PUT", "/1.0/services/openssh", br#"{"config":{"enabled":false}}"#).status, 200);
    assert!(bearer(&d, "GET", "/1.0/services/openssh", b"").text().contains(r#""enabled":false"#));
    assert_eq!(bearer(&d, "POST", "/1.0/services/openssh/:reset", b"").status, 200);
    assert!(bearer(&d, "GET", "/1.0/services/openssh", b"").text().contains(r#""enabled":true"#));
    assert_eq!(bearer(&d, "POST", "/1.0/services/nope/:reset", b"").status, 404);
    // Configs a steward board does not have: the empty one (a client's edit) is taken.
    for path in ["/1.0/system/kernel", "/1.0/system/fallback-listener", "/1.0/applications/app"] {
        assert_eq!(bearer(&d, "PUT", path, br#"{"config":{},"state":{}}"#).status, 200, "{path}");
        let r = bearer(&d, "PUT", path, br#"{"config":{"blacklist_modules":["x"]}}"#);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(bearer(&d, "PUT", path, b"[]").status, 400, "{path}");
    }
    assert!(bearer(&d, "GET", "/1.0/system/fallback-listener", b"").text().contains(r#""state":{"active":false}"#));
    let sections = bearer(&d, "GET", "/1.0/system", b"").text();
    let eight = r#""metadata":["/1.0/system/kernel","/1.0/system/logging","/1.0/system/network","/1.0/system/provider","/1.0/system/resources","/1.0/system/security","/1.0/system/storage","/1.0/system/update"]"#;
    assert!(sections.contains(eight), "upstream's eight sections: {sections}");
    // A scrub needs a pool that exists; the board's hook starts it.
    // A scrub runs the board's pool hook (system::drives_pools_and_wipes); this board has none.
    let r = bearer(&d, "POST", "/1.0/system/storage/:scrub-pool", br#"{"name":"nope"}"#);
    assert!(r.status == 400 && r.text().contains("no pool backend"), "{}", r.text());
    assert_eq!(bearer(&d, "POST", "/1.0/system/storage/:scrub-pool", br#"{}"#).status, 400);
    assert_eq!(bearer(&d, "PUT", "/1.0/applications/nope", br#"{"config":{}}"#).status, 404);
    cleanup(d);
}

/// Every `/1.0` GET decoded as a Go client decodes it into upstream's type.
#[test]
fn every_answer_decodes_into_upstreams_types() {
    use crate::goshape::*;
    let d = daemon();
    let cases: &[(&str, &Shape)] = &[
        ("/1.0", &ROOT),
        ("/1.0/system", &URLS),
        ("/1.0/debug", &URLS),
        ("/1.0/debug/secureboot", &URLS),
        ("/1.0/applications", &URLS),
        ("/1.0/services", &URLS),
        ("/1.0/applications/app", &APPLICATION),
        ("/1.0/debug/kernel", &DEBUG_KERNEL),
        ("/1.0/system/kernel", &KERNEL),
        ("/1.0/system/fallback-listener", &FALLBACK_LISTENER),
        ("/1.0/system/logging", &LOGGING),
        ("/1.0/system/network", &NETWORK_RESOURCE),
        ("/1.0/system/provider", &PROVIDER),
        ("/1.0/system/resources", &RESOURCES),
        ("/1.0/system/security", &SECURITY),
        ("/1.0/system/storage", &STORAGE_RESOURCE),
        ("/1.0/system/update", &UPDATE),
    ];
    for (path, shape) in cases {
        let r = bearer(&d, "GET", path, b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json();
        assert_decodes(crate::util::field(&v, &["metadata"]), shape, path);
    }
    cleanup(d);
}
