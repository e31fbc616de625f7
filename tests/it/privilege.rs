//! Least privilege: started as root with a board that names a user and capabilities, the
//! process ends up with exactly those (read from /proc/PID/status), still serves, and a
//! feature whose capability it lacks says which one.

use crate::util::{ADMIN, Daemon, Options, cleanup, fixture_root_copy};

fn board(run_as: &str, power: &str) -> String {
    crate::util::dev_board_with(
        "run-as",
        &[
            (r#""power": { "method": "none" }"#, power),
            (r#""name": "dev","#, &format!(r#""name": "dev", "run_as": {run_as},"#)),
        ],
    )
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_else(|| panic!("no {field}")).trim().to_owned()
}

#[test]
fn the_drop_leaves_the_named_user_and_capabilities() {
    let root = rustix_is_root();
    let d = Daemon::with(Options {
        board: Some(board(
            r#"{"user": "65534", "groups": ["disk", "4242"], "capabilities": ["CAP_NET_BIND_SERVICE", "CAP_SYS_TIME"]}"#,
            r#""power": { "method": "syscall" }"#,
        )),
        root: fixture_root_copy(),
        plain: false,
    });
    d.setup("owner");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "{}", d.stderr());
    if root {
        let uid = status_field(d.pid(), "Uid:");
        assert!(uid.split_whitespace().all(|u| u == "65534"), "Uid: {uid}");
        assert!(status_field(d.pid(), "Gid:").split_whitespace().all(|g| g == "65534"));
        // The supplementary groups give device access (disk is 6 on Debian), in the kernel's order.
        assert_eq!(status_field(d.pid(), "Groups:"), "6 4242");
        // CAP_NET_BIND_SERVICE is bit 10, CAP_SYS_TIME bit 25.
        let want = (1u64 << 10) | (1u64 << 25);
        for set in ["CapEff:", "CapPrm:"] {
            let v = u64::from_str_radix(&status_field(d.pid(), set), 16).unwrap();
            assert_eq!(v, want, "{set} {v:x}");
        }
        assert_eq!(u64::from_str_radix(&status_field(d.pid(), "CapInh:"), 16).unwrap(), 0);
        // Rebooting by syscall needs CAP_SYS_BOOT, which this board did not keep: refused, named.
        let r = d.get(&format!("{ADMIN}/reboot?token=owner"));
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("CAP_SYS_BOOT"), "{}", r.text());
        let r = d.connect().send("POST", "/1.0/system/:reboot", &[("Authorization", "Bearer owner")], b"");
        assert!(r.status == 500 && r.text().contains("CAP_SYS_BOOT"), "{}", r.text());
        assert!(d.stderr().contains("running as uid 65534"), "{}", d.stderr());
    } else {
        assert!(d.stderr().contains("not started as root"), "{}", d.stderr());
    }
    cleanup(d);
}

#[test]
fn an_unknown_capability_is_refused_at_start() {
    let (ok, _, err) = crate::util::run_cli(&[
        "check",
        "--board",
        &board(r#"{"user": "65534", "capabilities": ["CAP_EVERYTHING"]}"#, r#""power": { "method": "none" }"#),
        "--root",
        "/",
    ]);
    assert!(!ok);
    assert!(err.contains("run_as.capabilities"), "{err}");
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().nth(1) == Some("0"))
}
