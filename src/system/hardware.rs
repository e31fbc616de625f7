//! The machine's hardware as sysfs, procfs and efivarfs describe it: the inventory IncusOS
//! answers at `GET /1.0/system/resources`, the disks an installer or a storage pool may take,
//! and the boot security state (UEFI, Secure Boot, TPM).

use std::collections::BTreeMap;

use super::Root;
use crate::json::Object;

/// The EFI global-variable vendor GUID that SecureBoot and SetupMode live under.
const EFI_GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// sysfs counts block sizes and offsets in 512-byte units whatever the logical block size.
const SECTOR: u64 = 512;
/// Block devices that are never disks: loops, RAM disks, device-mapper targets, optical drives.
const NOT_DISKS: [&str; 5] = ["loop", "ram", "zram", "dm-", "sr"];

#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    pub name: String,
    /// The most stable name for the disk: a `/dev/disk/by-id` link when udev made one, else
    /// `/dev/<name>`.
    pub id: String,
    /// `/dev/<name>`, a system path: resolve it through `Root` before opening it.
    pub dev_path: String,
    pub model: String,
    pub serial: String,
    /// Bytes.
    pub size: u64,
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    /// "nvme", "virtio", "usb", "sata" or "unknown".
    pub bus: String,
    /// "MAJ:MIN", empty if sysfs does not say.
    pub major_minor: String,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub name: String,
    pub number: u32,
    /// Bytes.
    pub size: u64,
    /// First sector, in the 512-byte units sysfs uses.
    pub start: u64,
    pub major_minor: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    pub uefi: bool,
    /// None when the firmware does not say (legacy boot, or the variable is missing).
    pub secure_boot: Option<bool>,
    pub setup_mode: Option<bool>,
    pub tpm: Option<Tpm>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tpm {
    /// "2.0" or "1.2".
    pub version: String,
    /// SHA-256 bank, (index, lowercase hex), by index. Empty when the kernel does not export it
    /// (TPM 1.2, or kernels before 5.12).
    pub pcrs: Vec<(u32, String)>,
}

/// The Incus `api.Resources` subset as a JSON object.
pub fn resources(root: &Root) -> String {
    let drives = drives(root);
    let disks: Vec<String> = drives.iter().map(disk_json).collect();
    let storage = Object::new().raw("disks", &array(&disks)).num("total", disks.len()).finish();
    Object::new()
        .raw("cpu", &cpu_json(root))
        .raw("memory", &memory_json(root))
        .raw("storage", &storage)
        .raw("network", &network_json(root))
        .raw("load", &load_json(root))
        .raw("system", &system_json(root))
        .finish()
}

/// The machine's disks, by name.
pub fn drives(root: &Root) -> Vec<Drive> {
    let by_id = by_id_links(root);
    let mut names: Vec<String> = read_dir_names(root, "/sys/block")
        .into_iter()
        .filter(|name| !NOT_DISKS.iter().any(|prefix| name.starts_with(prefix)))
        .collect();
    names.sort();
    names.into_iter().filter_map(|name| drive(root, &name, &by_id)).collect()
}

pub fn security(root: &Root) -> Security {
    let uefi = root.path("/sys/firmware/efi").exists();
    let efi_flag = |name: &str| -> Option<bool> {
        let bytes = root.read_limited(&format!("/sys/firmware/efi/efivars/{name}-{EFI_GLOBAL}"), 64).ok()?;
        // efivarfs prefixes each variable with its 4-byte attribute mask.
        bytes.get(4).map(|b| *b == 1)
    };
    let (secure_boot, setup_mode) = if uefi { (efi_flag("SecureBoot"), efi_flag("SetupMode")) } else { (None, None) };
    Security { uefi, secure_boot, setup_mode, tpm: tpm(root) }
}

/// True if the drive, one of its partitions, or a device-mapper/md device stacked on either is
/// mounted.
pub fn is_mounted(root: &Root, drive: &Drive) -> bool {
    let Ok(bytes) = root.read_limited("/proc/self/mountinfo", 4 * 1024 * 1024) else {
        return false;
    };
    let mountinfo = String::from_utf8_lossy(&bytes);
    let mounts: Vec<(&str, &str)> = mountinfo.lines().filter_map(mount_line).collect();
    let mut devices: Vec<(String, String)> = vec![(drive.name.clone(), drive.major_minor.clone())];
    devices.extend(drive.partitions.iter().map(|p| (p.name.clone(), p.major_minor.clone())));
    // LUKS and LVM mount a dm device, never the partition itself; follow `holders` a few
    // levels so a disk under an encrypted volume counts as in use.
    let mut frontier: Vec<String> = devices.iter().map(|(name, _)| sys_dir(drive, name)).collect();
    for _ in 0..4 {
        let mut next = Vec::new();
        for dir in &frontier {
            for holder in read_dir_names(root, &format!("{dir}/holders")) {
                let mm = read_trimmed(root, &format!("/sys/block/{holder}/dev")).unwrap_or_default();
                next.push(format!("/sys/block/{holder}"));
                devices.push((holder, mm));
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    mounts.iter().any(|(mm, source)| {
        devices.iter().any(|(name, dev)| {
            (!dev.is_empty() && dev == mm) || source.strip_prefix("/dev/").is_some_and(|rest| rest == name)
        })
    })
}

/// (MAJ:MIN, source) of one mountinfo line.
fn mount_line(line: &str) -> Option<(&str, &str)> {
    let (head, tail) = line.split_once(" - ")?;
    let mm = head.split_whitespace().nth(2)?;
    let source = tail.split_whitespace().nth(1)?;
    Some((mm, source))
}

/// sysfs directory of the drive itself or of one of its partitions.
fn sys_dir(drive: &Drive, name: &str) -> String {
    if name == drive.name { format!("/sys/block/{name}") } else { format!("/sys/block/{}/{name}", drive.name) }
}

fn drive(root: &Root, name: &str, by_id: &BTreeMap<String, String>) -> Option<Drive> {
    let base = format!("/sys/block/{name}");
    let size = read_u64(root, &format!("{base}/size")).unwrap_or(0).saturating_mul(SECTOR);
    if size == 0 {
        return None;
    }
    let link = by_id.get(name);
    let flag = |file: &str| read_trimmed(root, &format!("{base}/{file}")).is_some_and(|v| v == "1");
    let removable = flag("removable");
    let serial = read_trimmed(root, &format!("{base}/device/serial"))
        .filter(|s| !s.is_empty())
        .or_else(|| vpd_serial(root, &base))
        .or_else(|| link.and_then(|l| serial_from_link(l)))
        .unwrap_or_default();
    let mut partitions: Vec<Partition> = read_dir_names(root, &base)
        .into_iter()
        .filter(|entry| entry.starts_with(name))
        .filter_map(|entry| {
            let dir = format!("{base}/{entry}");
            let number = read_u64(root, &format!("{dir}/partition"))?;
            Some(Partition {
                number: u32::try_from(number).ok()?,
                size: read_u64(root, &format!("{dir}/size")).unwrap_or(0).saturating_mul(SECTOR),
                start: read_u64(root, &format!("{dir}/start")).unwrap_or(0),
                major_minor: read_trimmed(root, &format!("{dir}/dev")).unwrap_or_default(),
                read_only: read_trimmed(root, &format!("{dir}/ro")).is_some_and(|v| v == "1"),
                name: entry,
            })
        })
        .collect();
    partitions.sort_by_key(|p| p.number);
    Some(Drive {
        name: name.to_owned(),
        id: link.map_or_else(|| format!("/dev/{name}"), |l| format!("/dev/disk/by-id/{l}")),
        dev_path: format!("/dev/{name}"),
        model: read_trimmed(root, &format!("{base}/device/model")).unwrap_or_default(),
        serial,
        size,
        rotational: flag("queue/rotational"),
        removable,
        read_only: flag("ro"),
        bus: bus(root, name, &base),
        major_minor: read_trimmed(root, &format!("{base}/dev")).unwrap_or_default(),
        partitions,
    })
}

fn bus(root: &Root, name: &str, base: &str) -> String {
    let on_usb = || {
        // /sys/block/X links to its place in the device tree, which names the USB controller
        // the disk hangs off; `device` links only one level up, so check both.
        [base.to_owned(), format!("{base}/device")]
            .iter()
            .any(|p| std::fs::read_link(root.path(p)).is_ok_and(|target| target.to_string_lossy().contains("/usb")))
    };
    let bus = if name.starts_with("nvme") {
        "nvme"
    } else if name.starts_with("vd") {
        "virtio"
    } else if on_usb() {
        "usb"
    } else if name.starts_with("sd") {
        "sata"
    } else {
        "unknown"
    };
    bus.to_owned()
}

/// ATA disks have no `device/serial`; the SCSI layer exposes the serial as VPD page 0x80: a
/// 4-byte header, then the serial, space-padded.
fn vpd_serial(root: &Root, base: &str) -> Option<String> {
    let page = root.read_limited(&format!("{base}/device/vpd_pg80"), 4096).ok()?;
    let serial =
        String::from_utf8_lossy(page.get(4..)?).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_owned();
    (!serial.is_empty()).then_some(serial)
}

/// udev names disks `<bus>-<model>_<serial>`, with spaces in the model turned into `_`.
fn serial_from_link(link: &str) -> Option<String> {
    let rest = link.split_once('-').map_or(link, |(_, rest)| rest);
    let serial = rest.rsplit('_').next()?;
    (!serial.is_empty()).then(|| serial.to_owned())
}

/// Disk name → the by-id link chosen for it.
fn by_id_links(root: &Root) -> BTreeMap<String, String> {
    let mut links = read_dir_names(root, "/dev/disk/by-id");
    // wwn- and eui- names are stable but say nothing to a person; prefer the model_serial one.
    links.sort_by_key(|l| (l.starts_with("wwn-") || l.contains("-eui.") || l.starts_with("nvme-nvme."), l.clone()));
    let mut map = BTreeMap::new();
    for link in links {
        let Ok(target) = std::fs::read_link(root.path(&format!("/dev/disk/by-id/{link}"))) else {
            continue;
        };
        if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
            map.entry(name.to_owned()).or_insert(link);
        }
    }
    map
}

fn tpm(root: &Root) -> Option<Tpm> {
    if !root.path("/sys/class/tpm/tpm0").exists() {
        return None;
    }
    // Kernels before 5.6 lack tpm_version_major; those only ever exposed 1.2 devices there.
    let version = match read_trimmed(root, "/sys/class/tpm/tpm0/tpm_version_major").as_deref() {
        Some("2") => "2.0".to_owned(),
        None | Some("1") | Some("") => "1.2".to_owned(),
        Some(other) => format!("{other}.0"),
    };
    let pcrs = (0..24u32)
        .filter_map(|n| {
            let value = read_trimmed(root, &format!("/sys/class/tpm/tpm0/pcr-sha256/{n}"))?.to_ascii_lowercase();
            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit())).then_some((n, value))
        })
        .collect();
    Some(Tpm { version, pcrs })
}

/// One `processor` block of /proc/cpuinfo.
#[derive(Default)]
struct CpuInfo {
    name: Option<String>,
    vendor: Option<String>,
    package: Option<u32>,
    core: Option<u32>,
    mhz: Option<f64>,
}

struct Thread {
    id: u32,
    online: bool,
    package: u32,
    core: u32,
    /// MHz.
    frequency: Option<u64>,
}

fn cpu_json(root: &Root) -> String {
    let text = root
        .read_limited("/proc/cpuinfo", 4 * 1024 * 1024)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (info, global) = parse_cpuinfo(&text);
    let online_list = read_trimmed(root, "/sys/devices/system/cpu/online").and_then(|l| expand_cpu_list(&l));
    // Offline CPUs are missing from /proc/cpuinfo but keep their sysfs directory.
    let mut ids: Vec<u32> = info.keys().copied().collect();
    ids.extend(
        read_dir_names(root, "/sys/devices/system/cpu")
            .iter()
            .filter_map(|n| n.strip_prefix("cpu").and_then(|n| n.parse::<u32>().ok())),
    );
    ids.extend(online_list.iter().flatten());
    ids.sort_unstable();
    ids.dedup();

    let threads: Vec<Thread> = ids
        .iter()
        .map(|&id| {
            let base = format!("/sys/devices/system/cpu/cpu{id}");
            let entry = info.get(&id);
            // Some arm64 firmware reports package -1: one package.
            let package = read_trimmed(root, &format!("{base}/topology/physical_package_id"))
                .and_then(|v| v.parse::<i64>().ok())
                .map(|v| u32::try_from(v).unwrap_or(0))
                .or_else(|| entry.and_then(|e| e.package))
                .unwrap_or(0);
            let core = read_u64(root, &format!("{base}/topology/core_id"))
                .and_then(|v| u32::try_from(v).ok())
                .or_else(|| entry.and_then(|e| e.core))
                .unwrap_or(id);
            let online = match &online_list {
                Some(list) => list.contains(&id),
                None => info.is_empty() || entry.is_some(),
            };
            let frequency = read_u64(root, &format!("{base}/cpufreq/scaling_cur_freq")).map(|khz| khz / 1000);
            Thread { id, online, package, core, frequency }
        })
        .collect();

    let mut sockets: BTreeMap<u32, BTreeMap<u32, Vec<&Thread>>> = BTreeMap::new();
    for thread in &threads {
        sockets.entry(thread.package).or_default().entry(thread.core).or_default().push(thread);
    }
    let mut socket_json = Vec::new();
    for (package, cores) in &sockets {
        let entries: Vec<&CpuInfo> =
            cores.values().flatten().filter_map(|t| info.get(&t.id)).chain(info.values()).collect();
        let mut socket = Object::new();
        if let Some(name) = entries.iter().find_map(|e| e.name.clone()).or_else(|| global.name.clone()) {
            socket = socket.str("name", &name);
        }
        if let Some(vendor) = entries.iter().find_map(|e| e.vendor.clone()).or_else(|| global.vendor.clone()) {
            socket = socket.str("vendor", &vendor);
        }
        socket = socket.num("socket", package);
        let mut core_json = Vec::new();
        let mut max_mhz: Option<u64> = None;
        for (core, members) in cores {
            let threads_json: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, t)| Object::new().num("id", t.id).num("thread", i).bool("online", t.online).finish())
                .collect();
            let mut obj = Object::new().num("core", core).raw("threads", &array(&threads_json));
            if let Some(mhz) = members.iter().filter_map(|t| t.frequency).max() {
                obj = obj.num("frequency", mhz);
                max_mhz = max_mhz.max(Some(mhz));
            }
            for mhz in members.iter().filter_map(|t| info.get(&t.id)?.mhz) {
                max_mhz = max_mhz.max(Some(mhz.round() as u64));
            }
            core_json.push(obj.finish());
        }
        socket = socket.raw("cores", &array(&core_json));
        if let Some(mhz) = max_mhz.filter(|m| *m > 0) {
            socket = socket.num("frequency", mhz);
        }
        socket_json.push(socket.finish());
    }
    Object::new()
        .str("architecture", architecture())
        .raw("sockets", &array(&socket_json))
        .num("total", threads.len())
        .finish()
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => other,
    }
}

/// Per-processor blocks by `processor` number, and the keys outside any block (arm64 puts
/// `Hardware` and `Model` after the last one).
fn parse_cpuinfo(text: &str) -> (BTreeMap<u32, CpuInfo>, CpuInfo) {
    let mut blocks = BTreeMap::new();
    let mut global = CpuInfo::default();
    let mut current: Option<u32> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                current = None;
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor"
            && let Ok(id) = value.parse::<u32>()
        {
            current = Some(id);
            blocks.insert(id, CpuInfo::default());
            continue;
        }
        let entry = match current.and_then(|id| blocks.get_mut(&id)) {
            Some(entry) => entry,
            None => &mut global,
        };
        match key {
            "model name" | "Model" | "Hardware" if entry.name.is_none() && !value.is_empty() => {
                entry.name = Some(value.to_owned());
            }
            "vendor_id" | "CPU implementer" if entry.vendor.is_none() => entry.vendor = Some(value.to_owned()),
            "physical id" => entry.package = value.parse().ok(),
            "core id" => entry.core = value.parse().ok(),
            "cpu MHz" => entry.mhz = value.parse().ok(),
            _ => {}
        }
    }
    (blocks, global)
}

/// "0-3,6" → [0, 1, 2, 3, 6].
fn expand_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut ids = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let v = part.parse::<u32>().ok()?;
                (v, v)
            }
        };
        // A corrupt list must not make us allocate billions of ids.
        if hi < lo || hi - lo > 65_536 {
            return None;
        }
        ids.extend(lo..=hi);
    }
    Some(ids)
}

fn memory_json(root: &Root) -> String {
    match super::health::memory(root) {
        Ok(m) => Object::new().num("total", m.total).num("used", m.used).num("free", m.total - m.used).finish(),
        Err(_) => Object::new().finish(),
    }
}

fn disk_json(d: &Drive) -> String {
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|p| {
            let mut o = Object::new().str("id", &p.name);
            if !p.major_minor.is_empty() {
                o = o.str("device", &p.major_minor);
            }
            o.num("partition", p.number).num("size", p.size).bool("read_only", p.read_only).finish()
        })
        .collect();
    let mut o = Object::new().str("id", &d.name);
    if !d.major_minor.is_empty() {
        o = o.str("device", &d.major_minor);
    }
    if !d.model.is_empty() {
        o = o.str("model", &d.model);
    }
    o = o
        .str("type", &d.bus)
        .bool("read_only", d.read_only)
        .num("size", d.size)
        .bool("removable", d.removable)
        // Incus reports 1 for a spinning disk of unknown speed, 0 for solid state.
        .num("rpm", u8::from(d.rotational));
    if !d.serial.is_empty() {
        o = o.str("serial", &d.serial);
    }
    if let Some(link) = d.id.strip_prefix("/dev/disk/by-id/") {
        o = o.str("device_id", link);
    }
    o.raw("partitions", &array(&partitions)).finish()
}

fn network_json(root: &Root) -> String {
    let mut names: Vec<String> = read_dir_names(root, "/sys/class/net").into_iter().filter(|n| n != "lo").collect();
    names.sort();
    let cards: Vec<String> = names
        .iter()
        .map(|name| {
            let base = format!("/sys/class/net/{name}");
            let mut port = Object::new().str("id", name);
            if let Some(mac) = read_trimmed(root, &format!("{base}/address")).filter(|m| !m.is_empty()) {
                port = port.str("address", &mac);
            }
            // ARPHRD_INFINIBAND; everything else steward can meet is Ethernet framing.
            let protocol = if read_trimmed(root, &format!("{base}/type")).as_deref() == Some("32") {
                "infiniband"
            } else {
                "ethernet"
            };
            port = port.str("protocol", protocol);
            let up = read_trimmed(root, &format!("{base}/operstate")).is_some_and(|s| s == "up");
            port = port.bool("link_detected", up);
            // The kernel reports -1 (or fails the read) when there is no link.
            if let Some(speed) = read_trimmed(root, &format!("{base}/speed")).and_then(|s| s.parse::<i64>().ok())
                && speed > 0
            {
                port = port.num("link_speed", speed);
            }
            if let Some(mtu) = read_u64(root, &format!("{base}/mtu")) {
                port = port.num("mtu", mtu);
            }
            Object::new().raw("ports", &array(&[port.finish()])).finish()
        })
        .collect();
    Object::new().raw("cards", &array(&cards)).num("total", cards.len()).finish()
}

fn load_json(root: &Root) -> String {
    let text = read_trimmed(root, "/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let mut o = Object::new();
    for (i, key) in ["average_1_min", "average_5_min", "average_15_min"].iter().enumerate() {
        if let Some(v) = fields.get(i).and_then(|f| f.parse::<f64>().ok()).filter(|v| v.is_finite()) {
            o = o.num(key, v);
        }
    }
    if let Some(total) = fields.get(3).and_then(|f| f.split_once('/')).and_then(|(_, t)| t.parse::<u64>().ok()) {
        o = o.num("processes", total);
    }
    o.finish()
}

fn system_json(root: &Root) -> String {
    let mut o = Object::new();
    for (key, file) in [("uuid", "product_uuid"), ("vendor", "sys_vendor"), ("product", "product_name")] {
        // product_uuid is root-only; a non-root steward simply omits it.
        if let Some(value) = read_trimmed(root, &format!("/sys/class/dmi/id/{file}")).filter(|v| !v.is_empty()) {
            o = o.str(key, &value);
        }
    }
    o.str("type", "physical").finish()
}

fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// Names in a directory, unsorted; an unreadable or missing directory is empty.
fn read_dir_names(root: &Root, abs: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.path(abs)) else {
        return Vec::new();
    };
    entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()
}

fn read_trimmed(root: &Root, abs: &str) -> Option<String> {
    let bytes = root.read_limited(abs, 64 * 1024).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

fn read_u64(root: &Root, abs: &str) -> Option<u64> {
    read_trimmed(root, abs)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniserde::json::{Number, Value};
    use std::path::{Path, PathBuf};

    fn fixture() -> Root {
        Root::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/root"))
    }

    fn temp_root(tag: &str) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("steward-hardware-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, rel: &str, content: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// `get(&v, "cpu.sockets.0.name")`, panicking with the path on a miss.
    fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(v, |v, key| match v {
            Value::Object(o) => o.get(key).unwrap_or_else(|| panic!("no {key} in {path}")),
            Value::Array(a) => &a[key.parse::<usize>().unwrap()],
            _ => panic!("{path}: {key} is below a scalar"),
        })
    }

    fn has(v: &Value, path: &str) -> bool {
        let (parent, key) = path.rsplit_once('.').unwrap();
        matches!(get(v, parent), Value::Object(o) if o.contains_key(key))
    }

    fn u(v: &Value, path: &str) -> u64 {
        match get(v, path) {
            Value::Number(Number::U64(n)) => *n,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn f(v: &Value, path: &str) -> f64 {
        match get(v, path) {
            Value::Number(Number::U64(n)) => *n as f64,
            Value::Number(Number::F64(n)) => *n,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn s<'a>(v: &'a Value, path: &str) -> &'a str {
        match get(v, path) {
            Value::String(s) => s,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn b(v: &Value, path: &str) -> bool {
        match get(v, path) {
            Value::Bool(b) => *b,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn len(v: &Value, path: &str) -> usize {
        match get(v, path) {
            Value::Array(a) => a.len(),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn parse(json: &str) -> Value {
        miniserde::json::from_str::<Value>(json).unwrap_or_else(|_| panic!("invalid JSON: {json}"))
    }

    #[test]
    fn fixture_drives() {
        let drives = drives(&fixture());
        assert_eq!(drives.len(), 2);
        assert_eq!(
            drives[0],
            Drive {
                name: "nvme0n1".into(),
                id: "/dev/nvme0n1".into(),
                dev_path: "/dev/nvme0n1".into(),
                model: "WD Blue SN570".into(),
                serial: "22123A456789".into(),
                size: 128 * 1024 * 1024,
                rotational: false,
                removable: false,
                read_only: false,
                bus: "nvme".into(),
                major_minor: "259:0".into(),
                partitions: vec![],
            }
        );
        assert_eq!(
            drives[1],
            Drive {
                name: "sda".into(),
                id: "/dev/disk/by-id/ata-Samsung_SSD_870_S6PNNS0T123456".into(),
                dev_path: "/dev/sda".into(),
                model: "Samsung SSD 870".into(),
                serial: "S6PNNS0T123456".into(),
                size: 64 * 1024 * 1024,
                rotational: false,
                removable: false,
                read_only: false,
                bus: "sata".into(),
                major_minor: "8:0".into(),
                partitions: vec![Partition {
                    name: "sda1".into(),
                    number: 1,
                    size: 32 * 1024 * 1024,
                    start: 2048,
                    major_minor: "8:1".into(),
                    read_only: false,
                }],
            }
        );
        assert!(is_mounted(&fixture(), &drives[1]), "sda1 is mounted at /srv/data");
        assert!(!is_mounted(&fixture(), &drives[0]));
    }

    #[test]
    fn fixture_security() {
        let sec = security(&fixture());
        assert!(sec.uefi);
        assert_eq!(sec.secure_boot, Some(true));
        assert_eq!(sec.setup_mode, Some(false));
        let tpm = sec.tpm.unwrap();
        assert_eq!(tpm.version, "2.0");
        assert_eq!(
            tpm.pcrs,
            vec![
                (0, "0f2d3a2a1adaa479aeeca8f5df76aadc41b862ea4a4a4bbae6e4f7c7e4d4a1f0".to_owned()),
                (4, "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969".to_owned()),
                (7, "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068".to_owned()),
            ]
        );
    }

    #[test]
    fn fixture_resources() {
        let v = parse(&resources(&fixture()));

        assert_eq!(s(&v, "cpu.architecture"), std::env::consts::ARCH);
        assert_eq!(u(&v, "cpu.total"), 4);
        assert_eq!(len(&v, "cpu.sockets"), 1);
        assert_eq!(s(&v, "cpu.sockets.0.name"), "AMD EPYC 7B13");
        assert_eq!(s(&v, "cpu.sockets.0.vendor"), "AuthenticAMD");
        assert_eq!(u(&v, "cpu.sockets.0.socket"), 0);
        // The fastest of cpu0's cpufreq (2450) and the cpuinfo figures (3500.123 on cpu2).
        assert_eq!(u(&v, "cpu.sockets.0.frequency"), 3500);
        assert_eq!(len(&v, "cpu.sockets.0.cores"), 2);
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.core"), 0);
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.frequency"), 2450);
        assert_eq!(len(&v, "cpu.sockets.0.cores.0.threads"), 2);
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.threads.0.id"), 0);
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.threads.0.thread"), 0);
        assert!(b(&v, "cpu.sockets.0.cores.0.threads.0.online"));
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.threads.1.id"), 2);
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.threads.1.thread"), 1);
        assert!(b(&v, "cpu.sockets.0.cores.0.threads.1.online"));
        assert_eq!(u(&v, "cpu.sockets.0.cores.1.core"), 1);
        assert!(!has(&v, "cpu.sockets.0.cores.1.frequency"), "cpu1 and cpu3 have no cpufreq");
        assert_eq!(u(&v, "cpu.sockets.0.cores.1.threads.0.id"), 1);
        assert_eq!(u(&v, "cpu.sockets.0.cores.1.threads.1.id"), 3);

        assert_eq!(u(&v, "memory.total"), 1_024_000 * 1024);
        assert_eq!(u(&v, "memory.free"), 757_760 * 1024);
        assert_eq!(u(&v, "memory.used"), (1_024_000 - 757_760) * 1024);

        assert_eq!(u(&v, "storage.total"), 2);
        assert_eq!(len(&v, "storage.disks"), 2);
        let nvme = get(&v, "storage.disks.0");
        assert_eq!(s(nvme, "id"), "nvme0n1");
        assert_eq!(s(nvme, "device"), "259:0");
        assert_eq!(s(nvme, "model"), "WD Blue SN570");
        assert_eq!(s(nvme, "type"), "nvme");
        assert_eq!(s(nvme, "serial"), "22123A456789");
        assert_eq!(u(nvme, "size"), 128 * 1024 * 1024);
        assert_eq!(u(nvme, "rpm"), 0);
        assert!(!b(nvme, "read_only") && !b(nvme, "removable"));
        assert!(!matches!(nvme, Value::Object(o) if o.contains_key("device_id")));
        assert_eq!(len(nvme, "partitions"), 0);
        let sda = get(&v, "storage.disks.1");
        assert_eq!(s(sda, "id"), "sda");
        assert_eq!(s(sda, "device"), "8:0");
        assert_eq!(s(sda, "model"), "Samsung SSD 870");
        assert_eq!(s(sda, "type"), "sata");
        assert!(!b(sda, "read_only") && !b(sda, "removable"));
        assert_eq!(u(sda, "size"), 64 * 1024 * 1024);
        assert_eq!(u(sda, "rpm"), 0);
        assert_eq!(s(sda, "serial"), "S6PNNS0T123456");
        assert_eq!(s(sda, "device_id"), "ata-Samsung_SSD_870_S6PNNS0T123456");
        assert_eq!(len(sda, "partitions"), 1);
        assert_eq!(s(sda, "partitions.0.id"), "sda1");
        assert_eq!(s(sda, "partitions.0.device"), "8:1");
        assert_eq!(u(sda, "partitions.0.partition"), 1);
        assert_eq!(u(sda, "partitions.0.size"), 32 * 1024 * 1024);
        assert!(!b(sda, "partitions.0.read_only"));

        assert_eq!(u(&v, "network.total"), 1);
        assert_eq!(len(&v, "network.cards"), 1);
        assert_eq!(len(&v, "network.cards.0.ports"), 1);
        let port = get(&v, "network.cards.0.ports.0");
        assert_eq!(s(port, "id"), "eth0");
        assert_eq!(s(port, "address"), "52:54:00:12:34:56");
        assert_eq!(s(port, "protocol"), "ethernet");
        assert!(b(port, "link_detected"));
        assert_eq!(u(port, "link_speed"), 1000);
        assert_eq!(u(port, "mtu"), 1500);

        assert_eq!(f(&v, "load.average_1_min"), 0.66);
        assert_eq!(f(&v, "load.average_5_min"), 0.28);
        assert_eq!(f(&v, "load.average_15_min"), 0.14);
        assert_eq!(u(&v, "load.processes"), 123);

        assert_eq!(s(&v, "system.uuid"), "4c4c4544-0047-3510-8052-b4c04f564433");
        assert_eq!(s(&v, "system.vendor"), "Supermicro");
        assert_eq!(s(&v, "system.product"), "AS-1014S-WTRT");
        assert_eq!(s(&v, "system.type"), "physical");
    }

    #[test]
    fn a_bare_board_has_no_uefi_tpm_or_disks() {
        let dir = temp_root("bare");
        let root = Root::new(&dir);
        assert_eq!(security(&root), Security { uefi: false, secure_boot: None, setup_mode: None, tpm: None });
        assert!(drives(&root).is_empty());
        let v = parse(&resources(&root));
        assert_eq!(u(&v, "cpu.total"), 0);
        assert_eq!(len(&v, "cpu.sockets"), 0);
        assert_eq!(u(&v, "storage.total"), 0);
        assert_eq!(u(&v, "network.total"), 0);
        assert!(matches!(get(&v, "memory"), Value::Object(o) if o.is_empty()));
        assert!(matches!(get(&v, "load"), Value::Object(o) if o.is_empty()));
        assert!(matches!(get(&v, "system"), Value::Object(o) if o.len() == 1), "only the type");

        // UEFI without the variables (a firmware in legacy mode) and a TPM without a version file.
        std::fs::create_dir_all(dir.join("sys/firmware/efi/efivars")).unwrap();
        std::fs::create_dir_all(dir.join("sys/class/tpm/tpm0")).unwrap();
        let sec = security(&root);
        assert!(sec.uefi);
        assert_eq!((sec.secure_boot, sec.setup_mode), (None, None));
        assert_eq!(sec.tpm, Some(Tpm { version: "1.2".into(), pcrs: vec![] }));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn arm_cpuinfo_without_topology_is_one_core_per_cpu() {
        let dir = temp_root("arm");
        write(
            &dir,
            "proc/cpuinfo",
            "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n\
             processor\t: 1\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\n\n\
             Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
        );
        write(&dir, "sys/devices/system/cpu/online", "0-1\n");
        write(&dir, "sys/devices/system/cpu/cpu2/online", "0\n");
        let v = parse(&resources(&Root::new(&dir)));
        assert_eq!(u(&v, "cpu.total"), 3);
        assert_eq!(s(&v, "cpu.sockets.0.vendor"), "0x41");
        assert_eq!(s(&v, "cpu.sockets.0.name"), "BCM2835");
        assert_eq!(len(&v, "cpu.sockets.0.cores"), 3);
        assert!(b(&v, "cpu.sockets.0.cores.1.threads.0.online"));
        assert_eq!(u(&v, "cpu.sockets.0.cores.2.threads.0.id"), 2);
        assert!(!b(&v, "cpu.sockets.0.cores.2.threads.0.online"));
        assert!(!has(&v, "cpu.sockets.0.frequency"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn usb_disks_serials_from_links_and_stacked_mounts() {
        let dir = temp_root("usb");
        let dev = "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb";
        write(&dir, &format!("{dev}/size"), "2048\n");
        write(&dir, &format!("{dev}/dev"), "8:16\n");
        write(&dir, &format!("{dev}/removable"), "1\n");
        write(&dir, &format!("{dev}/queue/rotational"), "1\n");
        write(&dir, &format!("{dev}/sdb2/partition"), "2\n");
        write(&dir, &format!("{dev}/sdb2/size"), "1024\n");
        write(&dir, &format!("{dev}/sdb2/start"), "1024\n");
        write(&dir, &format!("{dev}/sdb2/dev"), "8:18\n");
        std::fs::create_dir_all(dir.join(format!("{dev}/sdb2/holders/dm-0"))).unwrap();
        write(&dir, "sys/block/dm-0/dev", "253:0\n");
        write(&dir, "sys/block/dm-0/size", "1000\n");
        write(&dir, "sys/block/loop0/size", "1000\n");
        write(&dir, "sys/block/vda/size", "0\n");
        std::os::unix::fs::symlink(format!("../{}", dev.trim_start_matches("sys/")), dir.join("sys/block/sdb"))
            .unwrap();
        std::fs::create_dir_all(dir.join("dev/disk/by-id")).unwrap();
        std::os::unix::fs::symlink("../../sdb", dir.join("dev/disk/by-id/wwn-0x5000c500a1b2c3d4")).unwrap();
        std::os::unix::fs::symlink("../../sdb", dir.join("dev/disk/by-id/usb-SanDisk_Cruzer_4C530001")).unwrap();
        std::os::unix::fs::symlink("../../sdb2", dir.join("dev/disk/by-id/usb-SanDisk_Cruzer_4C530001-part2")).unwrap();
        let root = Root::new(&dir);

        let drives = drives(&root);
        assert_eq!(drives.len(), 1, "{drives:?}");
        let sdb = &drives[0];
        assert_eq!(sdb.bus, "usb");
        assert_eq!(sdb.id, "/dev/disk/by-id/usb-SanDisk_Cruzer_4C530001");
        assert_eq!(sdb.serial, "4C530001");
        assert_eq!(sdb.model, "");
        assert!(sdb.removable && sdb.rotational);
        assert_eq!(sdb.size, 2048 * 512);
        assert_eq!(sdb.partitions[0].number, 2);
        assert_eq!(sdb.partitions[0].start, 1024);

        assert!(!is_mounted(&root, sdb), "no mountinfo");
        write(&dir, "proc/self/mountinfo", "30 1 253:0 / /mnt rw - ext4 /dev/mapper/secret rw\n");
        assert!(is_mounted(&root, sdb), "mounted through dm-0");
        write(&dir, "proc/self/mountinfo", "30 1 0:45 / /mnt rw - btrfs /dev/sdb rw\n");
        assert!(is_mounted(&root, sdb), "btrfs reports an anonymous device; the source names the disk");
        write(&dir, "proc/self/mountinfo", "30 1 0:45 / /mnt rw - btrfs /dev/sdb20 rw\n");
        assert!(!is_mounted(&root, sdb));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(expand_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(expand_cpu_list("3-1"), None);
        assert_eq!(expand_cpu_list("0-4294967295"), None);
        assert_eq!(serial_from_link("nvme-WD_Blue_SN570_1TB_22123A456789").as_deref(), Some("22123A456789"));
        assert_eq!(serial_from_link("virtio-abc123").as_deref(), Some("abc123"));
    }
}
