//! POST/GET /settings and /storage: the documented validation, storage and rendering.

use crate::util::{ADMIN, Daemon, Options, cleanup, fixture_root_copy};

const STATIC: &str = r#"{"network":{"interface":"eth0","hostname":"test.host","ip_address":"192.168.1.100","netmask":"255.255.255.0","gateway":"192.168.1.1","dns1":"192.168.1.2","dns2":"192.168.1.3","ntpserver":"pool.ntp.org"},"app":{"name":"testapp"}}"#;
/// `STATIC` as GET returns it: with the mode the reference stores.
const STATIC_STORED: &str = r#"{"network":{"mode":"static","interface":"eth0","hostname":"test.host","ip_address":"192.168.1.100","netmask":"255.255.255.0","gateway":"192.168.1.1","dns1":"192.168.1.2","dns2":"192.168.1.3","ntpserver":"pool.ntp.org"},"app":{"name":"testapp"}}"#;
/// What the dev board ships with (`network.default`), before anything is stored.
const DEV_DEFAULT: &str = r#"{"network":{"mode":"dhcp","interface":"eth0","hostname":"steward.local"}}"#;

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

fn post(d: &Daemon, endpoint: &str, doc: &str) -> crate::util::Resp {
    d.post_form(&format!("{ADMIN}/{endpoint}?token=owner"), &[("settings", doc.as_bytes())])
}

#[test]
fn static_settings_are_accepted_stored_and_rendered() {
    let d = daemon();
    let r = d.get(&format!("{ADMIN}/settings?token=owner"));
    assert_eq!((r.status, r.text()), (200, DEV_DEFAULT.to_owned()), "the board's settings before any are stored");
    let r = post(&d, "settings", STATIC);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/api/v1/admin/settings"));
    assert_eq!(r.text(), r#"{"Status":"202 Accepted","Location":"/api/v1/admin/settings"}"#);
    let r = d.get(&format!("{ADMIN}/settings?token=owner"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), STATIC_STORED);
    let conf = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert!(
        conf.starts_with("mode=\"static\"\ninterface=\"eth0\"\nhostname=\"test.host\"\nip_address=\"192.168.1.100\"\n"),
        "{conf}"
    );
    // DHCP: the static fields are dropped from the rendered file.
    let dhcp = r#"{"network":{"interface":"eth0","hostname":"test.host"},"app":{"name":"testapp"}}"#;
    assert_eq!(post(&d, "settings", dhcp).status, 202);
    let conf = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert_eq!(conf, "mode=\"dhcp\"\ninterface=\"eth0\"\nhostname=\"test.host\"\n");
    assert_eq!(
        d.get(&format!("{ADMIN}/settings?token=owner")).text(),
        r#"{"network":{"mode":"dhcp","interface":"eth0","hostname":"test.host"},"app":{"name":"testapp"}}"#
    );
    cleanup(d);
}

/// What the original Jidoteki dashboard posts: every field, blank where the owner left it
/// (NTP, and the addresses in DHCP mode), with the mode it reads back from GET.
#[test]
fn the_dashboards_blank_fields_are_absent_and_the_mode_it_saved_comes_back() {
    let d = daemon();
    let dhcp = r#"{"network":{"mode":"dhcp","interface":"eth0","hostname":"dash.host","ip_address":"","netmask":"","gateway":"","dns1":"","dns2":"","ntpserver":""}}"#;
    let r = post(&d, "settings", dhcp);
    assert_eq!(r.status, 202, "{}", r.text());
    let got = d.get(&format!("{ADMIN}/settings?token=owner")).text();
    assert_eq!(got, r#"{"network":{"mode":"dhcp","interface":"eth0","hostname":"dash.host"}}"#);
    let fixed = r#"{"network":{"mode":"static","interface":"eth0","hostname":"dash.host","ip_address":"10.0.0.2","netmask":"255.255.255.0","gateway":"10.0.0.1","dns1":"10.0.0.53","dns2":"","ntpserver":""}}"#;
    assert_eq!(post(&d, "settings", fixed).status, 202);
    let got = d.get(&format!("{ADMIN}/settings?token=owner")).text();
    assert!(got.starts_with(r#"{"network":{"mode":"static","#) && !got.contains("ntpserver"), "{got}");
    // A required field sent blank is still refused, with the reference's message.
    let r = post(&d, "settings", r#"{"network":{"interface":"","hostname":"dash.host","ntpserver":""}}"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Invalid string length for option: interface"), "{}", r.text());
    // The stored settings say static; switching back to DHCP with the addresses left in.
    let back = fixed.replace(r#""mode":"static""#, r#""mode":"dhcp""#);
    assert_eq!(post(&d, "settings", &back).status, 202);
    let conf = std::fs::read_to_string(d.options.root.join("etc/steward/network.conf")).unwrap();
    assert!(conf.starts_with("mode=\"dhcp\"\n") && !conf.contains("ip_address"), "{conf}");
    cleanup(d);
}

/// A board without shipped settings keeps the documented 404 until some are stored.
#[test]
fn a_board_without_defaults_answers_404_until_settings_are_stored() {
    let board = crate::util::dev_board_with(
        "no-defaults",
        &[
            (r#""default": { "interface": "eth0", "hostname": "steward.local" }"#, r#""_": null"#),
            (r#""default": { "type": "local" }"#, r#""_": null"#),
        ],
    );
    let d = Daemon::with(Options { board: Some(board), root: fixture_root_copy(), plain: false });
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/settings?token=owner")).status, 404);
    assert_eq!(d.get(&format!("{ADMIN}/storage?token=owner")).status, 404);
    cleanup(d);
}

#[test]
fn every_settings_rule_rejects_a_bad_value_and_keeps_the_old_settings() {
    let d = daemon();
    assert_eq!(post(&d, "settings", STATIC).status, 202);
    let cases = [
        ("interface", r#""e0""#, "Invalid string length for option: interface. Allowed: >= 3 and <= 14"),
        ("interface", r#""eth 0""#, "Missing or invalid string for option: interface. Allowed: a-zA-Z0-9"),
        ("interface", r#""eth0eth0eth0eth""#, "Invalid string length for option: interface. Allowed: >= 3 and <= 14"),
        ("hostname", r#""a_b.host""#, "Missing or invalid string for option: hostname. Allowed: a-zA-Z0-9.-"),
        ("hostname", r#""ab""#, "Invalid string length for option: hostname. Allowed: >= 3 and <= 255"),
        (
            "ip_address",
            r#""192.168.1.x""#,
            "Missing or invalid string for option: ip_address. Allowed: abcdef0123456789ABCDEF.:",
        ),
        ("ip_address", r#""1.""#, "Invalid string length for option: ip_address. Allowed: >= 3 and <= 45"),
        (
            "netmask",
            r#""255 255""#,
            "Missing or invalid string for option: netmask. Allowed: abcdef0123456789ABCDEF.:/",
        ),
        ("netmask", r#""8""#, "Invalid string length for option: netmask. Allowed: >= 2 and <= 45"),
        ("gateway", r#""gw""#, "Missing or invalid string for option: gateway. Allowed: abcdef0123456789ABCDEF.:"),
        ("dns1", r#""8.8.8.8;""#, "Missing or invalid string for option: dns1. Allowed: abcdef0123456789ABCDEF.:"),
        ("dns2", r#""1""#, "Invalid string length for option: dns2. Allowed: >= 3 and <= 45"),
        (
            "ntpserver",
            r#""<script>alert(1)</script>""#,
            "Missing or invalid string for option: ntpserver. Allowed: a-zA-Z0-9.-:",
        ),
        ("ntpserver", r#""ab""#, "Invalid string length for option: ntpserver. Allowed: >= 3 and <= 255"),
    ];
    for (field, value, message) in cases {
        let doc = replace_field(STATIC, field, value);
        let r = post(&d, "settings", &doc);
        assert_eq!(r.status, 400, "{field}={value}: {}", r.text());
        assert_eq!(r.header("Error-Message"), Some(message), "{field}={value}");
        assert!(r.text().contains(message));
    }
    for (doc, what) in [
        (
            r#"{"network":{"interface":"eth0","hostname":"test.host","ip_address":"10.0.0.2","netmask":"255.0.0.0"}}"#,
            "partial static",
        ),
        ("not json", "garbage"),
        (r#"{"network":{"hostname":"test.host"}}"#, "missing interface"),
        (r#"{"network":{"interface":"eth0","hostname":"test.host","extra":"x"}}"#, "unknown key"),
    ] {
        assert_eq!(post(&d, "settings", doc).status, 400, "{what}");
    }
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[]);
    assert_eq!(r.status, 400);
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", STATIC.as_bytes()), ("x", b"1")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        d.get(&format!("{ADMIN}/settings?token=owner")).text(),
        STATIC_STORED,
        "a rejected post changed nothing"
    );
    assert_eq!(post(&d, "settings", STATIC).status, 202);
    cleanup(d);
}

fn replace_field(doc: &str, field: &str, value: &str) -> String {
    let start = doc.find(&format!("\"{field}\":")).unwrap() + field.len() + 3;
    let end = start + doc[start..].find(['"']).unwrap();
    let end = end + 1 + doc[end + 1..].find('"').unwrap() + 1;
    format!("{}{}{}", &doc[..start], value, &doc[end..])
}

#[test]
fn storage_round_trip_and_rules() {
    let d = daemon();
    let r = d.get(&format!("{ADMIN}/storage?token=owner"));
    assert_eq!(r.status, 200, "the board's storage before a choice is stored");
    assert_eq!(r.text(), r#"{"storage":{"type":"local"},"options":["local","nfs","aoe","iscsi","nbd"]}"#);
    let nfs = r#"{"storage":{"type":"nfs","mount_options":"noacl,sync","ip":"192.168.1.100","share":"/nfs/storage"}}"#;
    let r = post(&d, "storage", nfs);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.text(), r#"{"Status":"202 Accepted","Location":"/api/v1/admin/storage"}"#);
    let r = d.get(&format!("{ADMIN}/storage?token=owner"));
    assert_eq!(
        r.text(),
        r#"{"storage":{"type":"nfs","mount_options":"noacl,sync","ip":"192.168.1.100","share":"/nfs/storage"},"options":["local","nfs","aoe","iscsi","nbd"]}"#
    );
    for good in [
        r#"{"storage":{"type":"local"}}"#,
        r#"{"storage":{"type":"aoe","device":"e0.1"}}"#,
        r#"{"storage":{"type":"iscsi","target":"iqn.2016-01.com.example:storage.lun1","ip":"192.168.1.100","username":"user","password":"pass"}}"#,
        r#"{"storage":{"type":"nbd","export_name":"otherexport","ip":"192.168.1.100","port":"1043"}}"#,
    ] {
        assert_eq!(post(&d, "storage", good).status, 202, "{good}");
    }
    let conf = std::fs::read_to_string(d.options.root.join("etc/steward/storage.conf")).unwrap();
    assert_eq!(conf, "type=\"nbd\"\nexport_name=\"otherexport\"\nip=\"192.168.1.100\"\nport=\"1043\"\n");
    for (bad, message) in [
        (r#"{"storage":{"type":"ceph"}}"#, "Missing or invalid option: type. Allowed: local, nfs, aoe, iscsi, nbd"),
        (r#"{"storage":{"type":"local","extra":"$(reboot)"}}"#, "Unknown option: extra"),
        (
            r#"{"storage":{"type":"nfs","mount_options":"no acl","ip":"192.168.1.100","share":"/nfs"}}"#,
            "Missing or invalid string for option: mount_options. Allowed: a-zA-Z0-9.-=,",
        ),
        (
            r#"{"storage":{"type":"nfs","mount_options":"noacl","ip":"192.168.1.100"}}"#,
            "Invalid string length for option: share. Allowed: >= 3 and <= 255",
        ),
        (
            r#"{"storage":{"type":"nfs","mount_options":"noacl","ip":"host","share":"/nfs"}}"#,
            "Missing or invalid string for option: ip. Allowed: abcdef0123456789ABCDEF.:",
        ),
        (
            r#"{"storage":{"type":"aoe","device":"e0"}}"#,
            "Invalid string length for option: device. Allowed: >= 3 and <= 255",
        ),
        (
            r#"{"storage":{"type":"iscsi","target":"iqn.x","ip":"1.2.3.4","username":"us er","password":"pass"}}"#,
            "Missing or invalid string for option: username. Allowed: printable ASCII characters (codes 33-126, no spaces)",
        ),
        (
            r#"{"storage":{"type":"iscsi","target":"iqn x","ip":"1.2.3.4","username":"user","password":"pass"}}"#,
            "Missing or invalid string for option: target. Allowed: a-zA-Z0-9.-_:",
        ),
        (
            r#"{"storage":{"type":"iscsi","target":"iqn.x","ip":"1.2.3.4","username":"user","password":"pw"}}"#,
            "Invalid string length for option: password. Allowed: >= 3 and <= 255",
        ),
        (
            r#"{"storage":{"type":"nbd","export_name":"exp","ip":"1.2.3.4","port":"123456"}}"#,
            "Invalid string length for option: port. Allowed: >= 1 and <= 5",
        ),
        (
            r#"{"storage":{"type":"nbd","export_name":"e p","ip":"1.2.3.4","port":"1"}}"#,
            "Missing or invalid string for option: export_name. Allowed: a-zA-Z0-9.-_/",
        ),
    ] {
        let r = post(&d, "storage", bad);
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.header("Error-Message"), Some(message), "{bad}");
    }
    let conf_after = std::fs::read_to_string(d.options.root.join("etc/steward/storage.conf")).unwrap();
    assert_eq!(conf, conf_after, "rejected posts left the rendered file alone");
    cleanup(d);
}

#[test]
fn disabled_optional_endpoints_are_404_to_the_owner() {
    let board_dir = crate::util::temp_dir("board");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let start = text.find("\"endpoints\": [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let text = format!("{}\"endpoints\": []{}", &text[..start], &text[end..]);
    let board = board_dir.join("minimal.json");
    std::fs::write(&board, text).unwrap();
    let d = Daemon::with(Options { board: Some(board.display().to_string()), root: fixture_root_copy(), plain: false });
    d.setup("owner");
    for endpoint in ["settings", "storage"] {
        assert_eq!(d.get(&format!("{ADMIN}/{endpoint}?token=owner")).status, 404, "{endpoint}");
        assert_eq!(post(&d, endpoint, r#"{"storage":{"type":"local"}}"#).status, 404, "{endpoint}");
        assert_eq!(d.get(&format!("{ADMIN}/{endpoint}")).status, 403, "{endpoint} unauthenticated");
    }
    let list = d.get(&format!("{ADMIN}/endpoints?token=owner")).text();
    assert!(!list.contains("settings") && !list.contains("storage"), "{list}");
    cleanup(d);
    let _ = std::fs::remove_dir_all(board_dir);
}

#[test]
fn the_board_apply_hook_runs_after_the_settings_are_written() {
    let board_dir = crate::util::temp_dir("board");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    let hook = r#""apply": ["/bin/sh", "-c", "cat \"$STEWARD_NETWORK_CONFIG\" > \"$STEWARD_NETWORK_CONFIG.applied\"; echo \"$STEWARD_NETWORK_MODE\" >> \"$STEWARD_NETWORK_CONFIG.applied\""],"#;
    let text = text.replacen("\"network\": {", &format!("\"network\": {{ {hook}"), 1);
    let board = board_dir.join("hook.json");
    std::fs::write(&board, text).unwrap();
    let d = Daemon::with(Options { board: Some(board.display().to_string()), root: fixture_root_copy(), plain: false });
    d.setup("owner");
    assert_eq!(post(&d, "settings", STATIC).status, 202);
    let applied = d.options.root.join("etc/steward/network.conf.applied");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&applied).is_ok_and(|t| t.ends_with("static\n")) {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the hook did not run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let seen = std::fs::read_to_string(&applied).unwrap();
    assert!(seen.starts_with("mode=\"static\"\n"), "the hook saw the rendered file: {seen}");
    cleanup(d);
    let _ = std::fs::remove_dir_all(board_dir);
}

#[test]
fn a_failed_write_is_reported_and_changed_nothing() {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    let before = br#"{"network":{"interface":"eth0","hostname":"before.lan"}}"#;
    assert_eq!(d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", before)]).status, 202);
    let stored = || d.get(&format!("{ADMIN}/settings?token=owner")).text();
    let rendered = d.options.root.join("etc/steward/network.conf");
    let rendered_before = std::fs::read_to_string(&rendered).unwrap();
    // The board's files cannot be written: a directory stands where each one goes.
    for file in ["etc/steward/network.conf", "etc/steward/storage.conf"] {
        let path = d.options.root.join(file);
        let _ = std::fs::remove_file(&path);
        std::fs::create_dir_all(path.join("blocker")).unwrap();
    }
    let after = br#"{"network":{"interface":"eth1","hostname":"after.lan"}}"#;
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", after)]);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(stored().contains("before.lan"), "the settings changed: {}", stored());
    let r = d.connect().send(
        "PUT",
        "/1.0/system/network",
        &[("Authorization", "Bearer owner")],
        br#"{"config":{"interfaces":[{"name":"eth0","addresses":["dhcp4"]}],"dns":{"hostname":"incus.lan"}}}"#,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(stored().contains("before.lan"), "the IncusOS surface changed the settings: {}", stored());
    let storage = br#"{"storage":{"type":"aoe","device":"e0.1"}}"#;
    let r = d.post_form(&format!("{ADMIN}/storage?token=owner"), &[("settings", storage)]);
    assert_eq!(r.status, 500, "{}", r.text());
    let r = d.get(&format!("{ADMIN}/storage?token=owner"));
    assert!(r.status == 200 && !r.text().contains(r#""type":"aoe""#), "storage was stored: {}", r.text());
    // The settings file could be written while the rendered one could not: and the other
    // way round, the rendered file is put back.
    std::fs::remove_dir_all(&rendered).unwrap();
    std::fs::write(&rendered, &rendered_before).unwrap();
    let json = d.data.join("settings.json");
    std::fs::remove_file(&json).unwrap();
    std::fs::create_dir_all(json.join("x")).unwrap();
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", after)]);
    assert!(r.status >= 500, "{}", r.text());
    assert_eq!(std::fs::read_to_string(&rendered).unwrap(), rendered_before, "the rendered file was not put back");
    cleanup(d);
}
