//! The TPM through its device: swtpm (`swtpm socket --tpm2`) stands in for `/dev/tpmrm0`
//! below the fixture root, `tpm2-tools` extends and reads its PCRs, and steward must report
//! what they read: identity, banks, the SHA-256 PCRs, and a measured-boot event log replayed
//! against them. Skipped (and said so) without swtpm, except in CI, where it must run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use miniserde::json::Value;
use sha2::{Digest, Sha256};

use crate::util::{Daemon, Options, Resp, cleanup, field, fixture_root_copy};

/// swtpm serving its command channel at `<root>/dev/tpmrm0`, killed when dropped.
struct Swtpm {
    child: Child,
    socket: PathBuf,
}

impl Swtpm {
    fn start(root: &Path) -> Option<Swtpm> {
        let socket = root.join("dev/tpmrm0");
        let state = root.join("tpm-state");
        std::fs::create_dir_all(&state).unwrap();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "startup-clear,not-need-init"])
            .arg("--server")
            .arg(format!("type=unixio,path={}", socket.display()))
            // tcti-swtpm (tpm2-tools) finds the control channel beside the socket.
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}.ctrl", socket.display()))
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            // It says "Data client disconnected" after every client.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "CI must run swtpm: {e}");
                eprintln!("skipped: swtpm is not installed ({e})");
                return None;
            }
        };
        let tpm = Swtpm { child, socket };
        for _ in 0..200 {
            if tpm.socket.exists() {
                return Some(tpm);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("swtpm did not open {}", tpm.socket.display());
    }

    fn tools(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .arg("-T")
            .arg(format!("swtpm:path={}", self.socket.display()))
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("{tool} (tpm2-tools): {e}"));
        assert!(out.status.success(), "{tool} {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    fn extend(&self, pcr: u32, digest: &[u8; 32]) {
        self.tools("tpm2_pcrextend", &[&format!("{pcr}:sha256={}", hex(digest))]);
    }

    /// PCR `pcr` of the SHA-256 bank as tpm2_pcrread prints it, lowercase hex.
    fn read(&self, pcr: u32) -> String {
        let out = self.tools("tpm2_pcrread", &[&format!("sha256:{pcr}")]);
        let line = out
            .lines()
            .find(|l| l.split_once(':').is_some_and(|(n, _)| n.trim() == pcr.to_string()))
            .unwrap_or_else(|| panic!("no PCR {pcr} in {out}"));
        line.rsplit("0x").next().unwrap().trim().to_ascii_lowercase()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn call(d: &Daemon, path: &str) -> Resp {
    d.connect().send("GET", path, &[("Authorization", "Bearer owner")], b"")
}

fn s(v: &Value, path: &[&str]) -> String {
    match field(v, path) {
        Value::String(s) => s.clone(),
        other => panic!("{path:?} is {other:?}"),
    }
}

/// A TCG crypto-agile event log (the firmware's format), written independently of steward's
/// reader: the Spec ID header naming SHA-1 and SHA-256, then each event with both digests.
fn event_log(events: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut header = b"Spec ID Event03\0".to_vec();
    header.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]); // platform class, version 2.0, uintn 64-bit
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&[0x04, 0, 20, 0, 0x0b, 0, 32, 0, 0]); // sha1/20, sha256/32, no vendor info
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes()); // EV_NO_ACTION
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for (pcr, kind, data) in events {
        out.extend_from_slice(&pcr.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&[0x04, 0]);
        out.extend_from_slice(&sha2::Sha256::digest(data)[..20]); // any 20 bytes: SHA-1 is not replayed
        out.extend_from_slice(&[0x0b, 0]);
        out.extend_from_slice(&Sha256::digest(data));
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[test]
fn steward_reads_the_tpm_device_and_replays_the_event_log() {
    let root = fixture_root_copy();
    let Some(tpm) = Swtpm::start(&root) else { return };
    // What the firmware measured: events for PCRs 4 and 7, and one for PCR 1, which the
    // event-log endpoint leaves out as upstream does.
    const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
    const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
    const EV_SEPARATOR: u32 = 4;
    let events: [(u32, u32, &[u8]); 4] = [
        (7, EV_EFI_VARIABLE_DRIVER_CONFIG, b"SecureBoot\x01"),
        (1, 0x8000_0006, b"platform config"),
        (4, EV_EFI_BOOT_SERVICES_APPLICATION, b"\\EFI\\BOOT\\BOOTX64.EFI"),
        (7, EV_SEPARATOR, &[0, 0, 0, 0]),
    ];
    for (pcr, _, data) in &events {
        tpm.extend(*pcr, &Sha256::digest(data).into());
    }
    let log_path = root.join("sys/kernel/security/tpm0/binary_bios_measurements");
    std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
    std::fs::write(&log_path, event_log(&events)).unwrap();

    let d = Daemon::with(Options { board: None, root, plain: false });
    d.setup("owner");
    let r = call(&d, "/1.0/system/security");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let state = |key: &str| s(&v, &["metadata", "state", key]);
    // The device's answers, not the fixture's sysfs files (which hold other values).
    assert_eq!(state("tpm_status"), "swtpm", "a software TPM is no root of trust");
    assert_eq!(state("tpm_manufacturer"), "IBM");
    assert_eq!(state("tpm_vendor"), "SW   TPM");
    let Value::Array(banks) = field(&v, &["metadata", "state", "tpm_pcr_banks"]) else { panic!("no banks") };
    assert!(banks.iter().any(|b| matches!(b, Value::String(s) if s == "sha256")), "{banks:?}");
    for pcr in [0, 1, 4, 7, 23] {
        assert_eq!(s(&v, &["metadata", "state", "tpm_pcrs_sha256", &pcr.to_string()]), tpm.read(pcr), "PCR {pcr}");
    }
    assert!(matches!(field(&v, &["metadata", "state", "system_state_is_trusted"]), Value::Bool(false)));

    let r = call(&d, "/1.0/debug/secureboot/event-log");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(s(&v, &["metadata", "pcr4"]), tpm.read(4));
    assert_eq!(s(&v, &["metadata", "pcr7"]), tpm.read(7));
    let Value::Array(listed) = field(&v, &["metadata", "event_log"]) else { panic!("no event_log") };
    let indexes: Vec<String> = listed.iter().map(|e| format!("{:?}", field(e, &["Index"]))).collect();
    assert_eq!(listed.len(), 3, "PCR 1's event is left out: {indexes:?}");
    let first = &listed[0];
    assert_eq!(s(first, &["Data"]), "U2VjdXJlQm9vdAE=", "base64 of the event's data");
    let digest: [u8; 32] = Sha256::digest(b"SecureBoot\x01").into();
    assert_eq!(s(first, &["Digest"]), base64(&digest));
    assert!(matches!(field(first, &["Type"]), Value::Number(miniserde::json::Number::U64(0x8000_0001))));

    // A measurement the log lacks: the PCRs no longer replay, which outranks "swtpm".
    tpm.extend(7, &[0x66; 32]);
    let v = call(&d, "/1.0/system/security").json();
    assert_eq!(s(&v, &["metadata", "state", "tpm_status"]), "pcr mismatch");
    cleanup(d);
}

#[test]
fn without_an_event_log_the_endpoint_says_so_and_sysfs_stands_in_for_a_missing_device() {
    // The fixture root has sysfs's TPM files and no device: those are read.
    let d = Daemon::with(Options { board: None, root: fixture_root_copy(), plain: false });
    d.setup("owner");
    let r = call(&d, "/1.0/debug/secureboot/event-log");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("no measured-boot event log"), "{}", r.text());
    let v = call(&d, "/1.0/system/security").json();
    assert_eq!(s(&v, &["metadata", "state", "tpm_status"]), "ok");
    assert!(matches!(field(&v, &["metadata", "state"]), Value::Object(m) if !m.contains_key("tpm_manufacturer")));
    // A log that is not one: the answer says why, and nothing panics.
    std::fs::create_dir_all(d.options.root.join("sys/kernel/security/tpm0")).unwrap();
    std::fs::write(d.options.root.join("sys/kernel/security/tpm0/binary_bios_measurements"), b"\x00\x00\x00").unwrap();
    let r = call(&d, "/1.0/debug/secureboot/event-log");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("cut short"), "{}", r.text());
    cleanup(d);
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

#[test]
fn a_tpm_that_does_not_answer_is_left_alone_for_a_while() {
    let root = fixture_root_copy();
    // A "TPM" that takes the connection and never answers.
    let listener = std::os::unix::net::UnixListener::bind(root.join("dev/tpmrm0")).unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    let d = Daemon::with(Options { board: None, root, plain: false });
    d.setup("owner");
    for _ in 0..3 {
        let v = call(&d, "/1.0/system/security").json();
        // sysfs stands in: the fixture's TPM files.
        assert_eq!(s(&v, &["metadata", "state", "tpm_status"]), "ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "asked once, then left alone");
    assert!(d.stderr().contains("the TPM did not answer"), "{}", d.stderr());
    cleanup(d);
}

#[test]
fn a_root_only_event_log_read_without_the_capability_is_explained() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to drop to another user");
        return;
    }
    let root = fixture_root_copy();
    let log = root.join("sys/kernel/security/tpm0/binary_bios_measurements");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, event_log(&[(7, 4, &[0, 0, 0, 0])])).unwrap();
    // As the kernel keeps it.
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let board = crate::util::dev_board_with(
        "nobody",
        &[(r#""name": "dev","#, r#""name": "dev", "run_as": {"user": "65534", "capabilities": []},"#)],
    );
    let d = Daemon::with(Options { board: Some(board), root, plain: false });
    d.setup("owner");
    let r = call(&d, "/1.0/debug/secureboot/event-log");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("CAP_DAC_READ_SEARCH"), "{}", r.text());
    cleanup(d);
}
