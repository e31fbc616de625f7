//! Drives as the kernel has them: sparse files attached as real block devices with
//! `losetup`, measured, partitioned, wiped and held, with the daemon's answers checked
//! against `blockdev`, sysfs and the device's bytes. Skipped (and said so) where loop
//! devices cannot be attached, except in CI, where they must.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use miniserde::json::Value;

use crate::util::{Daemon, Options, Resp, cleanup, dev_board_with, field, fixture_root_copy, temp_dir};

const SIZE: u64 = 64 << 20;

/// A loop device over a sparse file, detached when dropped.
struct Loop {
    name: String,
    _file: PathBuf,
}

impl Loop {
    fn attach(sector: u32) -> Option<Loop> {
        let file = temp_dir("loop").join("disk.img");
        std::fs::File::create(&file).unwrap().set_len(SIZE).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show", "--partscan", "--sector-size", &sector.to_string()])
            .arg(&file)
            .output();
        match out {
            Ok(out) if out.status.success() => {
                let dev = String::from_utf8(out.stdout).unwrap().trim().to_owned();
                Some(Loop { name: dev.trim_start_matches("/dev/").to_owned(), _file: file })
            }
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(std::env::var_os("CI").is_none(), "CI must attach loop devices: {why}");
                eprintln!("skipped: no loop device could be attached ({why})");
                None
            }
        }
    }

    fn dev(&self) -> String {
        format!("/dev/{}", self.name)
    }

    fn sys(&self, rel: &str) -> PathBuf {
        Path::new("/sys/block").join(&self.name).join(rel)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(self.dev()).status();
    }
}

/// The daemon on a fixture root whose `/sys` and `/proc` are the kernel's and whose `/dev`
/// holds the loop device, with the board offering that device as its one drive.
fn daemon_for(lo: &Loop) -> Daemon {
    let root = fixture_root_copy();
    for top in ["sys", "proc"] {
        std::fs::remove_dir_all(root.join(top)).unwrap();
        std::os::unix::fs::symlink(format!("/{top}"), root.join(top)).unwrap();
    }
    std::os::unix::fs::symlink(lo.dev(), root.join("dev").join(&lo.name)).unwrap();
    let board = dev_board_with(
        "loop-disks",
        &[(
            r#""config": "/etc/steward/storage.conf","#,
            &format!(r#""config": "/etc/steward/storage.conf", "disks": ["{}"],"#, lo.name),
        )],
    );
    let d = Daemon::with(Options { board: Some(board), root, plain: false });
    d.setup("owner");
    d
}

fn call(d: &Daemon, method: &str, path: &str, body: &str) -> Resp {
    d.connect().send(method, path, &[("Authorization", "Bearer owner")], body.as_bytes())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The object in `array` (at `path` of `v`) whose `key` is `value`.
fn find<'a>(v: &'a Value, path: &[&str], key: &str, value: &str) -> &'a Value {
    let Value::Array(items) = field(v, path) else { panic!("{path:?} is no array") };
    items
        .iter()
        .find(|item| matches!(field(item, &[key]), Value::String(s) if s == value))
        .unwrap_or_else(|| panic!("no {key} {value} in {path:?}"))
}

fn num(v: &Value, path: &[&str]) -> u64 {
    match field(v, path) {
        Value::Number(miniserde::json::Number::U64(n)) => *n,
        other => panic!("{path:?} is {other:?}"),
    }
}

fn write_at(dev: &str, at: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(dev).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn reads_as_zeros(dev: &str) -> bool {
    let mut f = std::fs::File::open(dev).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return false;
        }
        total += n as u64;
    }
    assert_eq!(total, SIZE, "{dev} is read whole");
    true
}

/// The wipe's log in the operation history, from its id.
fn wipe_log(d: &Daemon) -> String {
    let ops = call(d, "GET", "/1.0/operations?recursion=1", "").json();
    let Value::Array(ops) = field(&ops, &["metadata"]) else { panic!("no operations") };
    let id = ops
        .iter()
        .filter(|op| matches!(op, Value::Object(m) if m.contains_key("operationWipe")))
        .filter_map(|op| match field(op, &["id"]) {
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        })
        .max()
        .expect("a wipe in the history");
    call(d, "GET", &format!("/1.0/operations/{id}/log"), "").text()
}

#[test]
fn a_loop_device_is_measured_by_the_kernel_and_wiped_with_its_partitions() {
    let Some(lo) = Loop::attach(4096) else { return };
    let dev = lo.dev();
    // Bytes where the partition's data and the disk's end lie, then a GPT with one partition.
    write_at(&dev, 32 << 20, &[0xa5; 8192]);
    write_at(&dev, SIZE - 8192, &[0x5a; 4096]);
    let mut sfdisk = Command::new("sfdisk").args(["--quiet", &dev]).stdin(Stdio::piped()).spawn().unwrap();
    sfdisk.stdin.take().unwrap().write_all(b"label: gpt\nstart=1MiB, size=16MiB\n").unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk");
    let part = format!("{}p1", lo.name);
    if !lo.sys(&part).exists() {
        // A kernel built without partition-table parsers (this CI's is one) learns the
        // partitions from user space, through BLKPG; a re-read then drops them all the same.
        run(Command::new("partx").args(["--add", &dev]));
    }
    assert!(lo.sys(&part).exists(), "the kernel has the partition");

    let d = daemon_for(&lo);
    // The sizes are the kernel's, as blockdev (the same ioctls) reads them.
    let expected = run(Command::new("blockdev").args(["--getsize64", "--getss", "--getpbsz", &dev]));
    let expected: Vec<u64> = expected.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(expected[0], SIZE);
    let resources = call(&d, "GET", "/1.0/system/resources", "").json();
    let disk = find(&resources, &["metadata", "storage", "disks"], "id", &lo.name);
    assert_eq!(num(disk, &["size"]), expected[0]);
    assert_eq!(num(disk, &["block_size"]), expected[1]);
    assert_eq!(expected[1], 4096, "losetup --sector-size 4096");
    let storage = call(&d, "GET", "/1.0/system/storage", "").json();
    let drive = find(&storage, &["metadata", "state", "drives"], "id", &dev);
    assert_eq!(num(drive, &["capacity_in_bytes"]), SIZE);
    assert!(matches!(field(drive, &["mounted"]), Value::Bool(false)));
    let p1 = find(drive, &["partitions"], "name", &part);
    assert_eq!(num(p1, &["number"]), 1);
    assert_eq!(num(p1, &["size_in_bytes"]), 16 << 20);
    assert_eq!(num(p1, &["start_sector"]), 2048, "sysfs counts 512-byte sectors");
    assert!(!reads_as_zeros(&dev));

    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &format!(r#"{{"id":"{dev}"}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(reads_as_zeros(&dev), "every byte reads back as zero");
    assert!(!lo.sys(&part).exists(), "the partition went with the table (BLKRRPART)");
    let log = wipe_log(&d);
    assert!(
        log.contains(&format!(
            "discarded and zeroed (4096-byte logical, {}-byte physical blocks); partitions re-read",
            expected[2]
        )),
        "{log}"
    );
    let storage = call(&d, "GET", "/1.0/system/storage", "").json();
    let drive = find(&storage, &["metadata", "state", "drives"], "id", &dev);
    assert!(matches!(field(drive, &["partitions"]), Value::Array(p) if p.is_empty()));

    // A secure wipe: a loop device has no secure discard, so a loop over spinning storage is
    // overwritten and one over solid state refused with the reason.
    write_at(&dev, 0, &[0xa5; 4096]);
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &format!(r#"{{"id":"{dev}","secure_wipe":true}}"#));
    let rotational = std::fs::read_to_string(lo.sys("queue/rotational")).unwrap().trim() == "1";
    if rotational {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(reads_as_zeros(&dev));
        assert!(wipe_log(&d).contains("the disk has no secure erase"));
    } else {
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("no secure erase"), "{}", r.text());
        assert!(!reads_as_zeros(&dev), "a refused wipe writes nothing");
    }
    cleanup(d);
}

#[test]
fn a_mounted_or_held_loop_device_is_not_wiped() {
    let Some(lo) = Loop::attach(512) else { return };
    let dev = lo.dev();
    run(Command::new("mkfs.ext4").args(["-q", "-F", &dev]));
    let d = daemon_for(&lo);
    let body = format!(r#"{{"id":"{dev}"}}"#);

    // Mounted: refused before the wipe is queued (the kernel's mountinfo says so).
    let mnt = temp_dir("mnt");
    run(Command::new("mount").arg(&dev).arg(&mnt));
    let storage = call(&d, "GET", "/1.0/system/storage", "").json();
    assert!(matches!(
        field(find(&storage, &["metadata", "state", "drives"], "id", &dev), &["mounted"]),
        Value::Bool(true)
    ));
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("mounted"), "{}", r.text());
    run(Command::new("umount").arg(&mnt));

    // Held by another opener with O_EXCL (as a RAID or device-mapper member is): no mount
    // shows it, the kernel refuses steward's exclusive open, and nothing is written.
    const O_EXCL: i32 = 0o200; // the same on x86_64 and aarch64
    let holder = std::fs::OpenOptions::new().read(true).custom_flags(O_EXCL).open(&dev).unwrap();
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("the kernel holds the device"), "{}", r.text());
    drop(holder);
    let fs = run(Command::new("blkid").args(["-o", "value", "-s", "TYPE", &dev]));
    assert_eq!(fs.trim(), "ext4", "the filesystem is untouched");

    // Free again: wiped, and the filesystem's signature is gone.
    let r = call(&d, "POST", "/1.0/system/storage/:wipe-drive", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(reads_as_zeros(&dev));
    cleanup(d);
}
