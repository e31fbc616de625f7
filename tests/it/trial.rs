//! The whole update cycle on the dev board's file-backed slots with a real bootloader
//! environment: apply, trial boot, commit or rollback. The bootloader's decision is played
//! between two daemon runs with the real tools (`grub-editenv`, `fw_setenv`), the kernel's
//! side through the fixture root's `/proc/cmdline` and boot id.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use miniserde::json::Value;

use crate::update::{pack, payload};
use crate::util::{ADMIN, Daemon, Options, dev_board_with, field, fixture_root_copy, temp_dir};

const DEV_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev-keys");

/// The system image every package here carries.
fn image() -> Vec<u8> {
    payload(300_000, 11)
}

/// A dev board running steward, with its root copy and a work dir for packages.
struct Appliance {
    d: Daemon,
    work: PathBuf,
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
        let _ = std::fs::remove_dir_all(&self.d.options.root);
    }
}

impl Appliance {
    fn root(&self) -> &Path {
        &self.d.options.root
    }

    /// The kernel's view after a boot of `slot` (A or B), boot number `n`.
    fn booted(&self, slot: &str, n: u32) {
        booted(self.root(), slot, n);
    }

    fn status(&self) -> Value {
        let r = self.d.get(&format!("{ADMIN}/update?token=owner"));
        assert_eq!(r.status, 200);
        r.json()
    }

    fn log(&self) -> String {
        self.d.get(&format!("{ADMIN}/update/log?token=owner")).text()
    }

    fn version(&self) -> String {
        self.d.get(&format!("{ADMIN}/version?token=owner")).text()
    }

    fn incus_state(&self) -> Value {
        let r = self.d.with_auth("GET", "/1.0/system/update", "Bearer owner", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        field(&r.json(), &["metadata", "state"]).clone()
    }

    /// Polls `GET /update` until the log holds `line` (bounded).
    fn wait_log(&self, line: &str) -> Value {
        let started = Instant::now();
        loop {
            if self.log().contains(line) {
                return self.status();
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no {line:?} in the log after 60 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn apply(&self, version: &str) -> Value {
        let package = pack(&self.work, DEV_KEYS, version, &image());
        let r = self.d.post_file(&format!("{ADMIN}/update?token=owner"), "update", "p.enc", &package);
        assert_eq!(r.status, 202, "{}", r.text());
        self.wait_log("boots next, on trial")
    }
}

fn booted(root: &Path, slot: &str, n: u32) {
    std::fs::create_dir_all(root.join("proc/sys/kernel/random")).unwrap();
    std::fs::write(root.join("proc/cmdline"), format!("console=ttyS0 root=/dev/slot{slot} steward.slot={slot}\n"))
        .unwrap();
    std::fs::write(root.join("proc/sys/kernel/random/boot_id"), format!("00000000-0000-0000-0000-00000000000{n}\n"))
        .unwrap();
}

fn text(v: &Value, key: &str) -> String {
    match field(v, &[key]) {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn tool(name: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing: CI installs it");
        eprintln!("{name} is not installed: this bootloader's cycle is skipped");
    }
    found
}

/// A bootloader's environment, read and set with its own tool.
trait Env {
    fn list(&self) -> String;
    fn set(&self, name: &str, value: &str);
    fn get(&self, name: &str) -> String {
        let list = self.list();
        list.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or("").to_owned()
    }
}

struct Grub(PathBuf);

impl Env for Grub {
    fn list(&self) -> String {
        run(Command::new("grub-editenv").arg(&self.0).arg("list"))
    }
    fn set(&self, name: &str, value: &str) {
        run(Command::new("grub-editenv").arg(&self.0).arg("set").arg(format!("{name}={value}")));
    }
}

struct Uboot(PathBuf);

impl Env for Uboot {
    fn list(&self) -> String {
        run(Command::new("fw_printenv").arg("-c").arg(&self.0))
    }
    fn set(&self, name: &str, value: &str) {
        run(Command::new("fw_setenv").arg("-c").arg(&self.0).arg(name).arg(value));
    }
}

/// A dev board whose updates boot on trial through `loader`, the environment made with the
/// real tool as the board's image would ship it, booted from slot A.
fn board(loader: &str, health: Option<&str>) -> Option<(Appliance, Box<dyn Env>)> {
    let root = fixture_root_copy();
    let (env_path, env): (&str, Box<dyn Env>) = match loader {
        "grub" => {
            if !tool("grub-editenv") {
                return None;
            }
            std::fs::create_dir_all(root.join("boot/grub")).unwrap();
            let file = root.join("boot/grub/grubenv");
            run(Command::new("grub-editenv").arg(&file).arg("create"));
            let env = Grub(file);
            env.set("ORDER", "A B");
            env.set("A_OK", "1");
            env.set("A_TRY", "0");
            env.set("B_OK", "0");
            env.set("B_TRY", "0");
            ("/boot/grub/grubenv", Box::new(env))
        }
        _ => {
            if !tool("fw_setenv") {
                return None;
            }
            // Two redundant 16 KiB copies in one file, as on a board's SPI flash.
            std::fs::create_dir_all(root.join("boot")).unwrap();
            std::fs::write(root.join("boot/uboot.env"), vec![0u8; 32 * 1024]).unwrap();
            let config = root.join("boot/fw_env.config");
            let device = root.join("boot/uboot.env");
            std::fs::write(&config, format!("{0} 0x0 0x4000\n{0} 0x4000 0x4000\n", device.display())).unwrap();
            // steward reads the config below --root: it names the device by its path there.
            let ours = root.join("etc/fw_env.config");
            std::fs::write(&ours, "/boot/uboot.env 0x0 0x4000\n/boot/uboot.env 0x4000 0x4000\n").unwrap();
            // The first write starts from a default environment, as a board's image ships.
            let defaults = root.join("boot/uboot-default.env");
            std::fs::write(&defaults, "BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=0\n").unwrap();
            run(Command::new("fw_setenv").arg("-c").arg(&config).arg("-f").arg(&defaults).args(["BOOT_B_LEFT", "0"]));
            let env = Uboot(config);
            ("/etc/fw_env.config", Box::new(env))
        }
    };
    let health = health.map(|h| format!(r#", "health_check": ["/bin/sh", "-c", "{h}"]"#)).unwrap_or_default();
    let boot = format!(r#""update": {{ "boot": {{ "loader": "{loader}", "env": "{env_path}"{health} }},"#);
    let board = dev_board_with(&format!("trial-{loader}"), &[("\"update\": {", &boot)]);
    booted(&root, "A", 1);
    let d = Daemon::with(Options { board: Some(board), root, plain: false });
    d.setup("owner");
    Some((Appliance { d, work: temp_dir("trial") }, env))
}

fn slot_b(b: &Appliance) -> String {
    b.root().join("var/lib/steward/slot-b.img").display().to_string()
}

fn active_slot(b: &Appliance) -> String {
    std::fs::read_to_string(b.root().join("var/lib/steward/active-slot")).unwrap_or_default().trim().to_owned()
}

/// Armed: the new slot boots next on trial, nothing of the running system changed yet.
fn check_armed(b: &Appliance, env: &dyn Env, loader: &str) {
    let s = b.status();
    assert_eq!(text(&s, "status"), "success", "{s:?}");
    assert_eq!(text(&b.incus_state(), "needs_reboot"), "true");
    assert_eq!(b.version(), r#"{"version":"1.2.3"}"#, "the version changes at commit");
    assert_eq!(std::fs::read(slot_b(b)).unwrap(), image(), "slot B holds the image");
    if loader == "grub" {
        assert_eq!((env.get("ORDER"), env.get("B_OK"), env.get("B_TRY")), ("B A".into(), "1".into(), "0".into()));
    } else {
        assert_eq!((env.get("BOOT_ORDER"), env.get("BOOT_B_LEFT")), ("B A".into(), "1".into()));
    }
}

/// What the bootloader does when it starts slot B on trial (RAUC's boot scripts).
fn bootloader_tries_b(env: &dyn Env, loader: &str) {
    if loader == "grub" {
        env.set("B_TRY", "1");
    } else {
        env.set("BOOT_B_LEFT", "0");
    }
}

fn success_then_commit(loader: &str) {
    let Some((mut b, env)) = board(loader, None) else { return };
    b.apply("2.0.0");
    check_armed(&b, &*env, loader);
    b.d.restart();
    assert_eq!(text(&b.incus_state(), "needs_reboot"), "true", "still waiting after a restart without reboot");
    b.d.stop();
    bootloader_tries_b(&*env, loader);
    b.booted("B", 2);
    b.d.restart();
    let s = b.wait_log("is committed");
    assert_eq!(text(&s, "status"), "success", "{s:?}");
    assert_eq!(b.version(), r#"{"version":"2.0.0"}"#);
    assert_eq!(active_slot(&b), "/var/lib/steward/slot-b.img");
    assert_eq!(text(&b.incus_state(), "needs_reboot"), "false");
    if loader == "grub" {
        assert_eq!((env.get("ORDER"), env.get("B_OK"), env.get("B_TRY")), ("B A".into(), "1".into(), "0".into()));
    } else {
        assert_eq!((env.get("BOOT_ORDER"), env.get("BOOT_B_LEFT")), ("B A".into(), "3".into()));
    }
    // Any number of restarts later the outcome is the same, and nothing is redone.
    let log = b.log();
    b.d.restart();
    b.d.restart();
    assert_eq!(text(&b.status(), "status"), "success");
    assert_eq!(b.log(), log);
    // An ordinary reboot: the boot script counts the try, steward marks the slot good again
    // (else a few reboots would use up its tries and fall back to the old system).
    b.d.stop();
    if loader == "grub" {
        env.set("B_TRY", "1");
    } else {
        env.set("BOOT_B_LEFT", "2");
    }
    b.booted("B", 3);
    b.d.restart();
    let started = Instant::now();
    let good = || if loader == "grub" { env.get("B_TRY") == "0" } else { env.get("BOOT_B_LEFT") == "3" };
    while !good() {
        assert!(started.elapsed() < Duration::from_secs(30), "the running slot was not marked good:\n{}", env.list());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.log(), log, "nothing about the update changes");
    // The next update goes to slot A, the inactive one now.
    b.apply("2.1.0");
    if loader == "grub" {
        assert_eq!(env.get("ORDER"), "A B");
    } else {
        assert_eq!(env.get("BOOT_ORDER"), "A B");
    }
}

fn failed_health_then_rollback(loader: &str) {
    let Some((mut b, env)) = board(loader, Some("echo database missing >&2; exit 3")) else { return };
    b.apply("2.0.0");
    b.d.stop();
    bootloader_tries_b(&*env, loader);
    b.booted("B", 2);
    b.d.restart();
    let s = b.wait_log("failed its health checks");
    assert_eq!((text(&s, "status"), text(&s, "error-code")), ("failed".into(), "E1002".into()), "{s:?}");
    assert!(text(&s, "error-message").contains("rolled back to slot"), "{s:?}");
    assert_eq!(b.version(), r#"{"version":"1.2.3"}"#);
    assert!(active_slot(&b).is_empty(), "slot A stays active");
    if loader == "grub" {
        assert_eq!((env.get("ORDER"), env.get("B_OK")), ("A B".into(), "0".into()));
    } else {
        assert_eq!((env.get("BOOT_ORDER"), env.get("BOOT_B_LEFT")), ("A B".into(), "0".into()));
    }
    // The box comes back up on A: the outcome stays.
    b.d.stop();
    b.booted("A", 3);
    b.d.restart();
    let s = b.status();
    assert_eq!((text(&s, "status"), text(&s, "error-code")), ("failed".into(), "E1002".into()));
    assert!(text(&b.incus_state(), "status").contains("failed its health checks"));
}

fn bootloader_falls_back_then_failed(loader: &str) {
    let Some((mut b, env)) = board(loader, None) else { return };
    b.apply("2.0.0");
    b.d.stop();
    // B is tried and never comes up (no steward start); the bootloader then takes A.
    bootloader_tries_b(&*env, loader);
    b.booted("A", 2);
    b.d.restart();
    let s = b.wait_log("did not boot");
    assert_eq!((text(&s, "status"), text(&s, "error-code")), ("failed".into(), "E1002".into()), "{s:?}");
    assert!(text(&s, "error-message").contains("rolled back"), "{s:?}");
    assert_eq!(b.version(), r#"{"version":"1.2.3"}"#);
    if loader == "grub" {
        assert_eq!((env.get("ORDER"), env.get("B_OK")), ("A B".into(), "0".into()));
    } else {
        assert_eq!(env.get("BOOT_ORDER"), "A B");
    }
    b.d.restart();
    assert_eq!(text(&b.status(), "error-code"), "E1002");
}

/// systemd-boot has no tool to play it here (`bootctl` needs an ESP): its side is the
/// renames it does, and steward's files are checked as they are.
#[test]
fn systemd_boot_trial_is_counted_blessed_or_spent() {
    let root = fixture_root_copy();
    let entries = root.join("boot/loader/entries");
    std::fs::create_dir_all(&entries).unwrap();
    for slot in ["a", "b"] {
        std::fs::write(entries.join(format!("steward-{slot}.conf")), format!("title steward {slot}\nversion 1.2.3\n"))
            .unwrap();
    }
    let boot = r#""update": { "boot": { "loader": "systemd-boot", "env": "/boot/loader/entries", "names": ["steward-a", "steward-b"], "tries": 2 },"#;
    let board = dev_board_with("trial-sd", &[("\"update\": {", boot)]);
    booted(&root, "steward-a", 1);
    let d = Daemon::with(Options { board: Some(board), root, plain: false });
    d.setup("owner");
    let mut b = Appliance { d, work: temp_dir("trial") };
    b.apply("2.0.0");
    let armed = std::fs::read_to_string(entries.join("steward-b+2.conf")).unwrap();
    assert!(armed.contains("version 2.0.0"), "{armed}");
    // systemd-boot counts one try and boots it; steward blesses it.
    b.d.stop();
    std::fs::rename(entries.join("steward-b+2.conf"), entries.join("steward-b+1-1.conf")).unwrap();
    b.booted("steward-b", 2);
    b.d.restart();
    b.wait_log("is committed");
    assert!(entries.join("steward-b.conf").exists());
    assert_eq!(b.version(), r#"{"version":"2.0.0"}"#);
    // The next one goes to A; it never comes up and systemd-boot falls back to B.
    b.apply("2.1.0");
    b.d.stop();
    std::fs::rename(entries.join("steward-a+2.conf"), entries.join("steward-a+0-2.conf")).unwrap();
    b.booted("steward-b", 3);
    b.d.restart();
    let s = b.wait_log("did not boot");
    assert_eq!(text(&s, "error-code"), "E1002");
    assert!(entries.join("steward-a+0-2.conf").exists(), "stays spent");
    assert_eq!(b.version(), r#"{"version":"2.0.0"}"#);
}

#[test]
fn grub_trial_succeeds_and_is_committed() {
    success_then_commit("grub");
}

#[test]
fn grub_trial_failing_health_is_rolled_back() {
    failed_health_then_rollback("grub");
}

#[test]
fn grub_falling_back_by_itself_fails_the_update() {
    bootloader_falls_back_then_failed("grub");
}

#[test]
fn uboot_trial_succeeds_and_is_committed() {
    success_then_commit("uboot");
}

#[test]
fn uboot_trial_failing_health_is_rolled_back() {
    failed_health_then_rollback("uboot");
}

#[test]
fn uboot_falling_back_by_itself_fails_the_update() {
    bootloader_falls_back_then_failed("uboot");
}

/// A kill between any two steps leaves files each written whole (every write is atomic or
/// goes to the redundant copy): each such state is laid out here as the kill leaves it, and
/// the next start must make it consistent.
#[test]
fn a_kill_at_any_step_of_arming_or_committing_is_settled_at_the_next_start() {
    let Some((mut b, env)) = board("grub", None) else { return };
    let record = b.d.data.join("update/trial.json");
    // Killed after the record said `arming`, with the bootloader already set: undone.
    b.apply("2.0.0");
    b.d.stop();
    let armed = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, armed.replace(r#""phase":"armed""#, r#""phase":"arming""#)).unwrap();
    b.d.restart();
    let s = b.wait_log("interrupted while its slot was set to boot");
    assert_eq!(text(&s, "error-code"), "E1002", "{s:?}");
    assert_eq!((env.get("ORDER"), env.get("B_OK")), ("A B".into(), "0".into()));
    assert!(!record.exists());
    // Killed after arming, before the job's last report: the job read interrupted, yet the
    // new slot boots next; the next start says so.
    b.apply("2.0.0");
    b.d.stop();
    let status = b.d.data.join("jobs/update.status");
    let text_before = std::fs::read_to_string(&status).unwrap();
    std::fs::write(&status, text_before.replacen("success", "running", 1)).unwrap();
    b.d.restart();
    let started = Instant::now();
    while text(&b.status(), "status") != "success" {
        assert!(started.elapsed() < Duration::from_secs(60), "still {:?}", b.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(b.log().contains("interrupted"), "{}", b.log());
    assert_eq!(text(&b.incus_state(), "needs_reboot"), "true");
    assert_eq!(env.get("ORDER"), "B A");
    // Killed after the bootloader committed B but before the version was recorded: the
    // next start (same boot) commits again and records it.
    b.apply("2.0.0");
    b.d.stop();
    bootloader_tries_b(&*env, "grub");
    b.booted("B", 2);
    env.set("B_TRY", "0");
    b.d.restart();
    b.wait_log("is committed");
    assert_eq!(b.version(), r#"{"version":"2.0.0"}"#);
    assert!(!record.exists());
}
