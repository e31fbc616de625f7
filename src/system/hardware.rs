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
    /// Logical and physical block sizes, bytes.
    pub block_size: (u32, u32),
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
    /// SHA-256 bank, (index, lowercase hex), by index. Empty when neither the device answers
    /// nor the kernel exports them (TPM 1.2, or kernels before 5.12).
    pub pcrs: Vec<(u32, String)>,
    /// What the device says of itself; None when only sysfs could be read.
    pub identity: Option<super::tpm::Identity>,
    /// The first PCR the measured-boot event log does not replay to, when there is a log.
    pub log_mismatch: Option<u32>,
}

impl Tpm {
    /// IncusOS's `tpm_status`: "pcr mismatch" when the PCRs hold measurements the event log
    /// lacks (the stronger warning, so it comes first), "swtpm" for a software TPM (no root
    /// of trust), else "ok".
    pub fn status(&self) -> &'static str {
        let software = self.identity.as_ref().is_some_and(|i| i.vendor.contains("SW") && i.vendor.contains("TPM"));
        match (self.log_mismatch, software) {
            (Some(_), _) => "pcr mismatch",
            (None, true) => "swtpm",
            (None, false) => "ok",
        }
    }
}

/// The TPM's device when the board names none: the kernel's resource manager, which lets
/// several programs share the TPM.
pub const TPM_DEVICE: &str = "/dev/tpmrm0";

/// Incus's `api.Resources` as a JSON object, every field its Go type always sends, in its
/// order; what sysfs cannot tell is the type's zero value (as Incus sends it).
pub fn resources(root: &Root, offered: Option<&[String]>) -> String {
    let drives = drives(root, offered);
    let disks: Vec<String> = drives.iter().map(|d| disk_json(root, d)).collect();
    let storage = Object::new().raw("disks", &array(&disks)).num("total", disks.len()).finish();
    Object::new()
        .raw("cpu", &cpu_json(root))
        .raw("memory", &memory_json(root))
        .raw("gpu", &gpu_json(root))
        .raw("network", &network_json(root))
        .raw("storage", &storage)
        .raw("usb", &usb_json(root))
        .raw("pci", &pci_json(root))
        .raw("system", &system_json(root))
        .raw("load", &load_json(root))
        .raw("serial", &serial_json(root))
        .finish()
}

/// The machine's disks, by name: those whose names start with one of `offered` (the board's
/// `storage.disks`), else all but `NOT_DISKS`.
pub fn drives(root: &Root, offered: Option<&[String]>) -> Vec<Drive> {
    let by_id = by_id_links(root);
    let names = sorted_names(root, "/sys/block", |name| match offered {
        Some(prefixes) => prefixes.iter().any(|prefix| name.starts_with(prefix.as_str())),
        None => !NOT_DISKS.iter().any(|prefix| name.starts_with(prefix)),
    });
    names.into_iter().filter_map(|name| drive(root, &name, &by_id)).collect()
}

/// `tpm_device` (a system path) is read first, unless `None`; sysfs is the fallback.
pub fn security(root: &Root, tpm_device: Option<&str>) -> Security {
    let uefi = root.path("/sys/firmware/efi").exists();
    let efi_flag = |name: &str| -> Option<bool> {
        let bytes = root.read_limited(&format!("/sys/firmware/efi/efivars/{name}-{EFI_GLOBAL}"), 64).ok()?;
        // efivarfs prefixes each variable with its 4-byte attribute mask.
        bytes.get(4).map(|b| *b == 1)
    };
    let (secure_boot, setup_mode) = if uefi { (efi_flag("SecureBoot"), efi_flag("SetupMode")) } else { (None, None) };
    Security { uefi, secure_boot, setup_mode, tpm: tpm(root, tpm_device) }
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

/// The device's own answer (BLKGETSIZE64, BLKSSZGET, BLKPBSZGET) where its node opens, else
/// sysfs's (a fixture tree, or no permission to open the node).
fn geometry(root: &Root, name: &str, base: &str) -> (u64, (u32, u32)) {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    if let Ok(dev) = rustix::fs::open(root.path(&format!("/dev/{name}")), flags, Mode::empty()) {
        let is_block =
            rustix::fs::fstat(&dev).is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_block_device());
        if let Some(g) = is_block.then(|| super::raw::block::geometry(&dev).ok()).flatten() {
            return (g.bytes, (g.logical_block, g.physical_block));
        }
    }
    let size = read_u64(root, &format!("{base}/size")).unwrap_or(0).saturating_mul(SECTOR);
    let block = |file: &str| read_u64(root, &format!("{base}/queue/{file}")).and_then(|n| u32::try_from(n).ok());
    let logical = block("logical_block_size").unwrap_or(SECTOR as u32);
    (size, (logical, block("physical_block_size").unwrap_or(logical)))
}

fn drive(root: &Root, name: &str, by_id: &BTreeMap<String, String>) -> Option<Drive> {
    let base = format!("/sys/block/{name}");
    let (size, block_size) = geometry(root, name, &base);
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
        block_size,
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

fn tpm(root: &Root, device: Option<&str>) -> Option<Tpm> {
    let mut tpm = device.and_then(|d| tpm_device(root, d)).or_else(|| tpm_sysfs(root))?;
    if let Ok(bytes) = root.read_limited(super::eventlog::PATH, super::eventlog::MAX_LOG) {
        let pcrs: Vec<(u32, [u8; 32])> = tpm
            .pcrs
            .iter()
            .filter_map(|(i, hex)| Some((*i, crate::hex::parse_hex(hex, 32).ok()?.try_into().ok()?)))
            .collect();
        match super::eventlog::parse(&bytes) {
            Ok(log) => tpm.log_mismatch = log.mismatch(&pcrs),
            Err(e) => crate::log::warn(format_args!("tpm: the measured-boot event log: {e}")),
        }
    }
    Some(tpm)
}

/// The TPM through its device: who it is, its SHA-256 PCRs, and an answer from its random
/// generator (a TPM that cannot give eight bytes is not working).
fn tpm_device(root: &Root, device: &str) -> Option<Tpm> {
    let path = root.path(device);
    if !path.exists() {
        return None;
    }
    let read = || -> std::io::Result<Tpm> {
        let mut dev = super::tpm::Tpm::open(&path)?;
        let identity = dev.identity()?;
        let pcrs = dev.pcrs_sha256()?.into_iter().map(|(i, d)| (i, crate::hex::to_hex(&d))).collect();
        if dev.random(8)?.len() != 8 {
            return Err(std::io::Error::other("GetRandom gave short"));
        }
        Ok(Tpm { version: "2.0".into(), pcrs, identity: Some(identity), log_mismatch: None })
    };
    match read() {
        Ok(tpm) => Some(tpm),
        Err(e) => {
            crate::log::warn(format_args!("tpm: {device}: {e}; reading sysfs instead"));
            None
        }
    }
}

fn tpm_sysfs(root: &Root) -> Option<Tpm> {
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
    Some(Tpm { version, pcrs, identity: None, log_mismatch: None })
}

/// One `processor` block of /proc/cpuinfo.
#[derive(Default)]
struct CpuInfo {
    name: Option<String>,
    vendor: Option<String>,
    package: Option<u32>,
    core: Option<u32>,
    mhz: Option<f64>,
    /// `flags` (x86) or `Features` (arm64).
    flags: Vec<String>,
}

struct Thread {
    id: u32,
    online: bool,
    package: u32,
    core: u32,
    die: u64,
    cluster: u64,
    numa_node: u64,
    isolated: bool,
    /// MHz.
    frequency: Option<u64>,
}

/// The NUMA node a sysfs device directory sits on: its `numa_node` file (-1, no NUMA: 0).
fn numa_node_of(root: &Root, dir: &str) -> u64 {
    read_trimmed(root, &format!("{dir}/numa_node")).and_then(|v| v.parse::<i64>().ok()).map_or(0, |n| n.max(0) as u64)
}

/// The node a CPU belongs to: its `nodeN` link in sysfs.
fn cpu_numa_node(root: &Root, base: &str) -> u64 {
    read_dir_names(root, base).iter().find_map(|n| n.strip_prefix("node")?.parse().ok()).unwrap_or(0)
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
    let isolated =
        read_trimmed(root, "/sys/devices/system/cpu/isolated").and_then(|l| expand_cpu_list(&l)).unwrap_or_default();

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
            let die = read_u64(root, &format!("{base}/topology/die_id")).unwrap_or(0);
            let cluster = read_u64(root, &format!("{base}/topology/cluster_id")).unwrap_or(0);
            let numa_node = cpu_numa_node(root, &base);
            let isolated = isolated.contains(&id);
            Thread { id, online, package, core, die, cluster, numa_node, isolated, frequency }
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
                .map(|(i, t)| {
                    Object::new()
                        .num("id", t.id)
                        .num("numa_node", t.numa_node)
                        .num("thread", i)
                        .bool("online", t.online)
                        .bool("isolated", t.isolated)
                        .finish()
                })
                .collect();
            let first = members.first();
            let flags = members.iter().find_map(|t| info.get(&t.id).filter(|i| !i.flags.is_empty())).map(|i| &i.flags);
            let mut obj = Object::new()
                .num("core", core)
                .num("cluster", first.map_or(0, |t| t.cluster))
                .num("die", first.map_or(0, |t| t.die))
                .raw("threads", &array(&threads_json))
                .raw("flags", &crate::json::str_array(flags.into_iter().flatten().map(String::as_str)));
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
            "flags" | "Features" => entry.flags = value.split_whitespace().map(str::to_owned).collect(),
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
    let (total, used) = super::health::memory(root).map(|m| (m.total, m.used)).unwrap_or((0, 0));
    let meminfo = read_trimmed(root, "/proc/meminfo").unwrap_or_default();
    let field = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let hugepage_bytes = field("Hugepagesize") * 1024;
    let (huge_total, huge_free) = (field("HugePages_Total"), field("HugePages_Free"));
    Object::new()
        .num("hugepages_total", huge_total * hugepage_bytes)
        .num("hugepages_used", huge_total.saturating_sub(huge_free) * hugepage_bytes)
        .num("hugepages_size", hugepage_bytes)
        .num("used", used)
        .num("total", total)
        .finish()
}

/// A sysfs link's last component (`device/driver` → `nvme`), or "".
fn link_name(root: &Root, abs: &str) -> String {
    std::fs::read_link(root.path(abs))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// A hex id file (`0x8086` → `8086`), or "".
fn hex_id(root: &Root, abs: &str) -> String {
    read_trimmed(root, abs).map(|v| v.trim_start_matches("0x").to_ascii_lowercase()).unwrap_or_default()
}

/// The PCI address of a device directory whose `device` link points into a PCI bus, or "".
fn pci_address_of(root: &Root, dir: &str) -> String {
    let name = link_name(root, &format!("{dir}/device"));
    if is_pci_address(&name) { name } else { String::new() }
}

/// The PCI address and vendor and product ids of the device behind a sysfs class entry
/// (a GPU or a network card), each only when sysfs has it (they are `omitempty` upstream).
fn device_ids(root: &Root, base: &str, mut o: Object) -> Object {
    let pci = pci_address_of(root, base);
    if !pci.is_empty() {
        o = o.str("pci_address", &pci);
    }
    for (key, file) in [("vendor_id", "vendor"), ("product_id", "device")] {
        let id = hex_id(root, &format!("{base}/device/{file}"));
        if !id.is_empty() {
            o = o.str(key, &id);
        }
    }
    o
}

/// `0000:00:1f.2`.
fn is_pci_address(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.'
}

fn gpu_json(root: &Root) -> String {
    let names = sorted_names(root, "/sys/class/drm", |n| {
        n.strip_prefix("card").is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    });
    let cards: Vec<String> = names
        .iter()
        .map(|name| {
            let base = format!("/sys/class/drm/{name}");
            let drm = Object::new()
                .num("id", name[4..].parse::<u64>().unwrap_or(0))
                .str("card_name", name)
                .str("card_device", &read_trimmed(root, &format!("{base}/dev")).unwrap_or_default())
                .finish();
            let mut card = Object::new();
            let driver = link_name(root, &format!("{base}/device/driver"));
            if !driver.is_empty() {
                card = card.str("driver", &driver);
            }
            card = card.raw("drm", &drm).num("numa_node", numa_node_of(root, &format!("{base}/device")));
            device_ids(root, &base, card).finish()
        })
        .collect();
    Object::new().raw("cards", &array(&cards)).num("total", cards.len()).finish()
}

fn pci_json(root: &Root) -> String {
    let names = sorted_names(root, "/sys/bus/pci/devices", is_pci_address);
    let devices: Vec<String> = names
        .iter()
        .map(|name| {
            let base = format!("/sys/bus/pci/devices/{name}");
            Object::new()
                .str("driver", &link_name(root, &format!("{base}/driver")))
                .str(
                    "driver_version",
                    &read_trimmed(root, &format!("{base}/driver/module/version")).unwrap_or_default(),
                )
                .num("numa_node", numa_node_of(root, &base))
                .str("pci_address", name)
                // Names come from the pci.ids database, which this appliance does not carry.
                .str("vendor", "")
                .str("vendor_id", &hex_id(root, &format!("{base}/vendor")))
                .str("product", "")
                .str("product_id", &hex_id(root, &format!("{base}/device")))
                .num("iommu_group", link_name(root, &format!("{base}/iommu_group")).parse::<u64>().unwrap_or(0))
                .raw("vpd", "{}")
                .finish()
        })
        .collect();
    Object::new().raw("devices", &array(&devices)).num("total", devices.len()).finish()
}

fn usb_json(root: &Root) -> String {
    let entries = read_dir_names(root, "/sys/bus/usb/devices");
    // Devices are `1-2` or `usb1`; their interfaces `1-2:1.0`.
    let mut names: Vec<String> = entries.iter().filter(|n| !n.contains(':')).cloned().collect();
    names.sort();
    let devices: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let base = format!("/sys/bus/usb/devices/{name}");
            let text = |f: &str| read_trimmed(root, &format!("{base}/{f}")).unwrap_or_default();
            let bus = read_u64(root, &format!("{base}/busnum"))?;
            let mut interfaces: Vec<&String> =
                entries.iter().filter(|e| e.split(':').next() == Some(name.as_str()) && e.contains(':')).collect();
            interfaces.sort();
            let interfaces: Vec<String> = interfaces
                .iter()
                .map(|i| {
                    let ib = format!("/sys/bus/usb/devices/{i}");
                    let hex = |f: &str| {
                        u64::from_str_radix(&read_trimmed(root, &format!("{ib}/{f}")).unwrap_or_default(), 16)
                            .unwrap_or(0)
                    };
                    Object::new()
                        .str("class", "")
                        .num("class_id", hex("bInterfaceClass"))
                        .str("driver", &link_name(root, &format!("{ib}/driver")))
                        .str("driver_version", "")
                        .num("number", hex("bInterfaceNumber"))
                        .str("subclass", "")
                        .num("subclass_id", hex("bInterfaceSubClass"))
                        .finish()
                })
                .collect();
            let speed: f64 = text("speed").parse().unwrap_or(0.0);
            Some(
                Object::new()
                    .num("bus_address", bus)
                    .num("device_address", read_u64(root, &format!("{base}/devnum")).unwrap_or(0))
                    .str("serial", &text("serial"))
                    .raw("interfaces", &array(&interfaces))
                    .str("vendor", &text("manufacturer"))
                    .str("vendor_id", &text("idVendor"))
                    .str("product", &text("product"))
                    .str("product_id", &text("idProduct"))
                    .num("speed", speed)
                    .finish(),
            )
        })
        .collect();
    Object::new().raw("devices", &array(&devices)).num("total", devices.len()).finish()
}

/// Serial ports with hardware behind them (a `device` link): 8250 UARTs, USB serial adapters.
fn serial_json(root: &Root) -> String {
    let names = sorted_names(root, "/sys/class/tty", |n| {
        ["ttyS", "ttyUSB", "ttyACM", "ttyAMA"].iter().any(|p| n.starts_with(p))
            && root.path(&format!("/sys/class/tty/{n}/device")).exists()
    });
    let devices: Vec<String> = names
        .iter()
        .map(|name| {
            let base = format!("/sys/class/tty/{name}");
            Object::new()
                .str("id", name)
                .str("device", &read_trimmed(root, &format!("{base}/dev")).unwrap_or_default())
                .str("device_id", "")
                .str("device_path", &format!("/dev/{name}"))
                .str("driver", &link_name(root, &format!("{base}/device/driver")))
                .str("vendor", "")
                .str("vendor_id", "")
                .str("product", "")
                .str("product_id", "")
                .finish()
        })
        .collect();
    Object::new().raw("devices", &array(&devices)).num("total", devices.len()).finish()
}

fn disk_json(root: &Root, d: &Drive) -> String {
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|p| {
            Object::new()
                .str("id", &p.name)
                .str("device", &p.major_minor)
                .bool("read_only", p.read_only)
                .num("size", p.size)
                .num("partition", p.number)
                .finish()
        })
        .collect();
    let base = format!("/sys/block/{}", d.name);
    let mut o = Object::new().str("id", &d.name).str("device", &d.major_minor);
    if !d.model.is_empty() {
        o = o.str("model", &d.model);
    }
    o = o
        .str("type", &d.bus)
        .bool("read_only", d.read_only)
        .num("size", d.size)
        .bool("removable", d.removable)
        .num("numa_node", numa_node_of(root, &format!("{base}/device")))
        .num("block_size", d.block_size.0)
        // Incus reports 1 for a spinning disk of unknown speed, 0 for solid state.
        .num("rpm", u8::from(d.rotational));
    if !d.serial.is_empty() {
        o = o.str("serial", &d.serial);
    }
    o = o.str("device_id", d.id.strip_prefix("/dev/disk/by-id/").unwrap_or(""));
    o.raw("partitions", &array(&partitions)).finish()
}

fn network_json(root: &Root) -> String {
    let names = sorted_names(root, "/sys/class/net", |n| n != "lo");
    let cards: Vec<String> = names
        .iter()
        .map(|name| {
            let base = format!("/sys/class/net/{name}");
            let mut port = Object::new().str("id", name);
            if let Some(mac) = read_trimmed(root, &format!("{base}/address")).filter(|m| !m.is_empty()) {
                port = port.str("address", &mac);
            }
            port = port.num("port", 0);
            // ARPHRD_INFINIBAND; everything else steward can meet is Ethernet framing.
            let protocol = if read_trimmed(root, &format!("{base}/type")).as_deref() == Some("32") {
                "infiniband"
            } else {
                "ethernet"
            };
            port = port.str("protocol", protocol);
            // Whether the link negotiates is an ethtool ioctl away; sysfs does not say.
            port = port.bool("auto_negotiation", false);
            let up = read_trimmed(root, &format!("{base}/operstate")).is_some_and(|s| s == "up");
            port = port.bool("link_detected", up);
            // The kernel reports -1 (or fails the read) when there is no link.
            if let Some(speed) = read_trimmed(root, &format!("{base}/speed")).and_then(|s| s.parse::<i64>().ok())
                && speed > 0
            {
                port = port.num("link_speed", speed);
            }
            if let Some(duplex) = read_trimmed(root, &format!("{base}/duplex")).filter(|d| d == "full" || d == "half") {
                port = port.str("link_duplex", &duplex);
            }
            if let Some(mtu) = read_u64(root, &format!("{base}/mtu")) {
                port = port.num("mtu", mtu);
            }
            let mut card = Object::new();
            let driver = link_name(root, &format!("{base}/device/driver"));
            if !driver.is_empty() {
                card = card.str("driver", &driver);
            }
            card = card
                .raw("ports", &array(&[port.finish()]))
                .num("numa_node", numa_node_of(root, &format!("{base}/device")));
            device_ids(root, &base, card).finish()
        })
        .collect();
    Object::new().raw("cards", &array(&cards)).num("total", cards.len()).finish()
}

/// Incus's `ResourcesLoad` has no JSON tags, so its keys are the Go field names; its
/// `Average10Min` holds /proc/loadavg's third figure (the 15-minute average), as Incus reads it.
fn load_json(root: &Root) -> String {
    let text = read_trimmed(root, "/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let mut o = Object::new();
    for (i, key) in ["Average1Min", "Average5Min", "Average10Min"].iter().enumerate() {
        let v = fields.get(i).and_then(|f| f.parse::<f64>().ok()).filter(|v| v.is_finite()).unwrap_or(0.0);
        o = o.num(key, v);
    }
    let total = fields.get(3).and_then(|f| f.split_once('/')).and_then(|(_, t)| t.parse::<u64>().ok()).unwrap_or(0);
    o.num("Processes", total).finish()
}

fn system_json(root: &Root) -> String {
    // product_uuid and the serials are root-only; a non-root steward sends them empty.
    let dmi = |file: &str| read_trimmed(root, &format!("/sys/class/dmi/id/{file}")).unwrap_or_default();
    let mut o = Object::new();
    for (key, file) in [
        ("uuid", "product_uuid"),
        ("vendor", "sys_vendor"),
        ("product", "product_name"),
        ("family", "product_family"),
        ("version", "product_version"),
        ("sku", "product_sku"),
        ("serial", "product_serial"),
    ] {
        o = o.str(key, &dmi(file));
    }
    let virtual_machine = root.read_limited("/proc/cpuinfo", 4 * 1024 * 1024).is_ok_and(|c| {
        String::from_utf8_lossy(&c).lines().any(|l| l.starts_with("flags") && l.contains(" hypervisor"))
    });
    o = o.str("type", if virtual_machine { "virtual-machine" } else { "physical" });
    let part =
        |fields: [(&str, &str); 4]| fields.iter().fold(Object::new(), |o, (key, file)| o.str(key, &dmi(file))).finish();
    o.raw(
        "firmware",
        &Object::new()
            .str("vendor", &dmi("bios_vendor"))
            .str("date", &dmi("bios_date"))
            .str("version", &dmi("bios_version"))
            .finish(),
    )
    .raw(
        "chassis",
        &part([
            ("vendor", "chassis_vendor"),
            ("type", "chassis_type"),
            ("serial", "chassis_serial"),
            ("version", "chassis_version"),
        ]),
    )
    .raw(
        "motherboard",
        &part([
            ("vendor", "board_vendor"),
            ("product", "board_name"),
            ("serial", "board_serial"),
            ("version", "board_version"),
        ]),
    )
    .finish()
}

fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// The addresses an interface has now, as `address/prefix`, read from procfs (no netlink
/// here): IPv4 from the kernel's FIB (`/proc/net/fib_trie`'s local entries, placed on an
/// interface by `/proc/net/route`'s connected routes), IPv6 from `/proc/net/if_inet6`.
pub fn interface_addresses(root: &Root, iface: &str) -> Vec<String> {
    let mut out = Vec::new();
    let route = read_trimmed(root, "/proc/net/route").unwrap_or_default();
    // (destination, mask) of the routes through the interface, as numbers.
    let connected: Vec<(u32, u32)> = route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The kernel prints each __be32 as a native integer: its bytes are the address's.
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| u32::from_be_bytes(v.to_ne_bytes()));
            (f.len() >= 8 && f[0] == iface).then(|| Some((hex(f[1])?, hex(f[7])?)))?
        })
        .filter(|(_, mask)| *mask != 0)
        .collect();
    let trie = read_trimmed(root, "/proc/net/fib_trie").unwrap_or_default();
    let lines: Vec<&str> = trie.lines().collect();
    for pair in lines.windows(2) {
        let Some(addr) = pair[0].trim().strip_prefix("|-- ") else { continue };
        if !pair[1].contains("/32 host LOCAL") {
            continue;
        }
        let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() else { continue };
        let bits = u32::from(ip);
        let best = connected.iter().filter(|(dest, mask)| bits & mask == *dest).map(|(_, mask)| *mask).max();
        let text = match best {
            Some(mask) => format!("{ip}/{}", mask.count_ones()),
            None => continue,
        };
        if !out.contains(&text) {
            out.push(text);
        }
    }
    for l in read_trimmed(root, "/proc/net/if_inet6").unwrap_or_default().lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || f[5] != iface || f[0].len() != 32 {
            continue;
        }
        let Ok(raw) = u128::from_str_radix(f[0], 16) else { continue };
        let Ok(prefix) = u8::from_str_radix(f[2], 16) else { continue };
        out.push(format!("{}/{prefix}", std::net::Ipv6Addr::from(raw)));
    }
    out
}

/// The names in a directory that `keep` keeps, sorted.
fn sorted_names(root: &Root, abs: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = read_dir_names(root, abs).into_iter().filter(|n| keep(n)).collect();
    names.sort();
    names
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
        let drives = drives(&fixture(), None);
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
                block_size: (4096, 4096),
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
                // sysfs's queue has no block sizes here: a 512-byte disk, as the kernel's default.
                block_size: (512, 512),
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
        let sec = security(&fixture(), Some(TPM_DEVICE));
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
        let v = parse(&resources(&fixture(), None));

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
        // The topology and flags upstream always sends.
        assert_eq!((u(&v, "cpu.sockets.0.cores.0.die"), u(&v, "cpu.sockets.0.cores.0.cluster")), (0, 0));
        assert_eq!(len(&v, "cpu.sockets.0.cores.0.flags"), 12);
        assert_eq!(s(&v, "cpu.sockets.0.cores.0.flags.11"), "lm");
        assert_eq!(u(&v, "cpu.sockets.0.cores.0.threads.0.numa_node"), 0);
        assert!(!b(&v, "cpu.sockets.0.cores.0.threads.0.isolated"));
        assert!(b(&v, "cpu.sockets.0.cores.1.threads.1.isolated"), "cpu3 is in the isolated list");

        assert_eq!(u(&v, "memory.total"), 1_024_000 * 1024);
        assert!(!has(&v, "memory.free"), "not in upstream's type");
        assert_eq!(u(&v, "memory.used"), (1_024_000 - 757_760) * 1024);
        assert_eq!(u(&v, "memory.hugepages_size"), 2048 * 1024);
        assert_eq!(u(&v, "memory.hugepages_total"), 4 * 2048 * 1024);
        assert_eq!(u(&v, "memory.hugepages_used"), 3 * 2048 * 1024);

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
        assert_eq!(s(nvme, "device_id"), "", "always sent; no by-id link for this one");
        assert_eq!((u(nvme, "numa_node"), u(nvme, "block_size")), (1, 4096));
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
        assert_eq!((u(sda, "numa_node"), u(sda, "block_size")), (0, 512), "no NUMA file, no block size: the defaults");
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
        assert_eq!(u(port, "port"), 0);
        assert!(!b(port, "auto_negotiation"));
        assert_eq!(s(port, "link_duplex"), "full");
        let card = get(&v, "network.cards.0");
        assert_eq!(s(card, "driver"), "virtio-pci");
        assert_eq!(s(card, "pci_address"), "0000:00:03.0");
        assert_eq!((s(card, "vendor_id"), s(card, "product_id")), ("1af4", "1000"));
        assert_eq!(u(card, "numa_node"), 0, "-1 (no NUMA) reads as node 0");

        assert_eq!(u(&v, "gpu.total"), 1, "card0, not its connector card0-Virtual-1");
        let gpu = get(&v, "gpu.cards.0");
        assert_eq!((s(gpu, "driver"), s(gpu, "pci_address")), ("bochs-drm", "0000:00:02.0"));
        assert_eq!((s(gpu, "vendor_id"), s(gpu, "product_id")), ("1234", "1111"));
        assert_eq!((u(gpu, "drm.id"), s(gpu, "drm.card_name"), s(gpu, "drm.card_device")), (0, "card0", "226:0"));

        assert_eq!(u(&v, "pci.total"), 2);
        let pci = get(&v, "pci.devices.1");
        assert_eq!((s(pci, "pci_address"), s(pci, "driver")), ("0000:00:03.0", "virtio-pci"));
        assert_eq!((s(pci, "vendor_id"), s(pci, "product_id"), u(pci, "iommu_group")), ("1af4", "1000", 7));
        assert_eq!((s(pci, "vendor"), s(pci, "driver_version")), ("", ""));
        assert!(matches!(get(pci, "vpd"), Value::Object(o) if o.is_empty()));

        assert_eq!(u(&v, "usb.total"), 1);
        let usb = get(&v, "usb.devices.0");
        assert_eq!((u(usb, "bus_address"), u(usb, "device_address")), (1, 2));
        assert_eq!((s(usb, "vendor"), s(usb, "vendor_id"), s(usb, "product_id")), ("Kingston", "0951", "1666"));
        assert_eq!((s(usb, "product"), s(usb, "serial")), ("DataTraveler 3.0", "AA00000000012345"));
        assert_eq!(f(usb, "speed"), 480.0);
        assert_eq!(len(usb, "interfaces"), 1);
        let intf = get(usb, "interfaces.0");
        assert_eq!((u(intf, "class_id"), u(intf, "subclass_id"), u(intf, "number")), (8, 6, 0));
        assert_eq!(s(intf, "driver"), "usb-storage");

        assert_eq!(u(&v, "serial.total"), 1, "ttyS0 has hardware behind it, tty1 is a console");
        let tty = get(&v, "serial.devices.0");
        assert_eq!((s(tty, "id"), s(tty, "device"), s(tty, "driver")), ("ttyS0", "4:64", "serial8250"));
        assert_eq!(s(tty, "device_path"), "/dev/ttyS0");

        // No JSON tags upstream: the Go field names. Average10Min is loadavg's third figure.
        assert_eq!(f(&v, "load.Average1Min"), 0.66);
        assert_eq!(f(&v, "load.Average5Min"), 0.28);
        assert_eq!(f(&v, "load.Average10Min"), 0.14);
        assert_eq!(u(&v, "load.Processes"), 123);

        assert_eq!(s(&v, "system.uuid"), "4c4c4544-0047-3510-8052-b4c04f564433");
        assert_eq!(s(&v, "system.vendor"), "Supermicro");
        assert_eq!(s(&v, "system.product"), "AS-1014S-WTRT");
        assert_eq!(
            (s(&v, "system.family"), s(&v, "system.sku"), s(&v, "system.serial")),
            ("Server", "AS-1014S-SKU", "S12345678")
        );
        assert_eq!(s(&v, "system.version"), "0123456789");
        assert_eq!(s(&v, "system.type"), "physical");
        assert_eq!(
            (s(&v, "system.firmware.vendor"), s(&v, "system.firmware.date"), s(&v, "system.firmware.version")),
            ("American Megatrends Inc.", "03/14/2024", "2.6a")
        );
        assert_eq!((s(&v, "system.chassis.type"), s(&v, "system.chassis.serial")), ("17", "C1234"));
        assert_eq!((s(&v, "system.motherboard.product"), s(&v, "system.motherboard.version")), ("H12SSW-NT", "1.01"));
    }

    #[test]
    fn an_interface_has_its_fib_and_if_inet6_addresses() {
        let root = fixture();
        assert_eq!(interface_addresses(&root, "eth0"), ["10.0.2.15/24", "fe80::5054:ff:fe12:3456/64"]);
        assert_eq!(
            interface_addresses(&root, "lo"),
            ["::1/128"],
            "127.0.0.1 has no route through lo in the main table"
        );
        assert!(interface_addresses(&root, "nope").is_empty());
        assert!(interface_addresses(&Root::new(temp_root("no-net")), "eth0").is_empty());
    }

    #[test]
    fn a_bare_board_has_no_uefi_tpm_or_disks() {
        let dir = temp_root("bare");
        let root = Root::new(&dir);
        assert_eq!(
            security(&root, Some(TPM_DEVICE)),
            Security { uefi: false, secure_boot: None, setup_mode: None, tpm: None }
        );
        assert!(drives(&root, None).is_empty());
        let v = parse(&resources(&root, None));
        assert_eq!(u(&v, "cpu.total"), 0);
        assert_eq!(len(&v, "cpu.sockets"), 0);
        assert_eq!(u(&v, "storage.total"), 0);
        assert_eq!(u(&v, "network.total"), 0);
        // Upstream's types always send their fields: zeros and empty strings here.
        assert_eq!((u(&v, "memory.total"), u(&v, "memory.hugepages_size")), (0, 0));
        assert_eq!((f(&v, "load.Average1Min"), u(&v, "load.Processes")), (0.0, 0));
        assert_eq!(
            (s(&v, "system.vendor"), s(&v, "system.type"), s(&v, "system.firmware.vendor")),
            ("", "physical", "")
        );
        for section in ["gpu", "usb", "pci", "serial"] {
            assert_eq!(u(&v, &format!("{section}.total")), 0, "{section}");
        }

        // UEFI without the variables (a firmware in legacy mode) and a TPM without a version file.
        std::fs::create_dir_all(dir.join("sys/firmware/efi/efivars")).unwrap();
        std::fs::create_dir_all(dir.join("sys/class/tpm/tpm0")).unwrap();
        let sec = security(&root, Some(TPM_DEVICE));
        assert!(sec.uefi);
        assert_eq!((sec.secure_boot, sec.setup_mode), (None, None));
        assert_eq!(sec.tpm, Some(Tpm { version: "1.2".into(), pcrs: vec![], identity: None, log_mismatch: None }));
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
        let v = parse(&resources(&Root::new(&dir), None));
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

        let drives = drives(&root, None);
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
