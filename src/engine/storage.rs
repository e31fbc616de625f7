//! Drives and pools for the IncusOS storage endpoints: pools are made by the board's pool
//! hook and recorded in the data dir; a drive wipe is an operation run on the worker.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use miniserde::json::{self, Value};

use super::{Engine, Error};
use crate::json::{Object, str_array};
use crate::store::atomic;
use crate::store::oplog::{Kind, Operation};
use crate::system::hardware::{self, Drive};
use crate::system::raw::block;

const POOLS_FILE: &str = "pools.json";
const STORAGE_CONFIG_FILE: &str = "incus-storage.json";
pub const DEFAULT_SCRUB: &str = "0 4 * * 0";

#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub name: String,
    pub kind: String,
    /// Drive ids, as `drives` reports them.
    pub devices: Vec<String>,
    /// Base64 of the raw key, when one was imported. Never sent back.
    pub encryption_key: Option<String>,
}

impl Pool {
    pub fn to_json(&self, with_secret: bool) -> String {
        let mut o = Object::new()
            .str("name", &self.name)
            .str("type", &self.kind)
            .raw("devices", &str_array(self.devices.iter().map(String::as_str)));
        if with_secret && let Some(k) = &self.encryption_key {
            o = o.str("encryption_key", k);
        }
        o.finish()
    }
}

fn minimum_devices(kind: &str) -> Option<(usize, bool)> {
    // (fewest devices, must be even)
    match kind {
        "zfs-raid0" => Some((1, false)),
        "zfs-raid1" => Some((2, false)),
        "zfs-raid10" => Some((4, true)),
        "zfs-raidz1" => Some((3, false)),
        "zfs-raidz2" => Some((4, false)),
        "zfs-raidz3" => Some((5, false)),
        _ => None,
    }
}

/// Base64 of exactly 32 bytes (a raw pool key).
fn valid_key(text: &str) -> bool {
    crate::hex::base64_decode(text).is_some_and(|k| k.len() == 32)
}

impl Engine {
    pub fn pools(&self) -> Vec<Pool> {
        let Ok(text) = std::fs::read_to_string(self.data.join(POOLS_FILE)) else { return Vec::new() };
        let Ok(Value::Array(items)) = json::from_str::<Value>(&text) else { return Vec::new() };
        let mut pools = Vec::new();
        for item in items.iter() {
            let Value::Object(m) = item else { continue };
            let text = |k: &str| match m.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let devices = crate::json::strings_in(m.get("devices"));
            if let (Some(name), Some(kind)) = (text("name"), text("type")) {
                pools.push(Pool { name, kind, devices, encryption_key: text("encryption_key") });
            }
        }
        pools
    }

    fn store_pools(&self, pools: &[Pool]) -> Result<(), Error> {
        let body = format!("[{}]", pools.iter().map(|p| p.to_json(true)).collect::<Vec<_>>().join(","));
        atomic::write(&self.data.join(POOLS_FILE), body.as_bytes(), 0o600)
            .map_err(|e| Error::Io(format!("storing the pools: {e}")))
    }

    pub fn scrub_schedule(&self) -> String {
        std::fs::read_to_string(self.data.join(STORAGE_CONFIG_FILE))
            .ok()
            .and_then(|t| match json::from_str::<Value>(&t) {
                Ok(Value::Object(m)) => match m.get("scrub_schedule") {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            })
            .unwrap_or_else(|| DEFAULT_SCRUB.to_owned())
    }

    /// The drive with this id (`/dev/disk/by-id/…` or `/dev/<name>`).
    /// The drives the board offers.
    pub fn drives(&self) -> Vec<Drive> {
        hardware::drives(&self.root, self.board.storage.disks.as_deref())
    }

    pub fn drive(&self, id: &str) -> Option<Drive> {
        self.drives().into_iter().find(|d| d.id == id || d.dev_path == id)
    }

    fn pool_of(&self, drive: &Drive) -> Option<String> {
        self.pools()
            .into_iter()
            .find(|p| p.devices.iter().any(|d| *d == drive.id || *d == drive.dev_path))
            .map(|p| p.name)
    }

    /// The pool a drive belongs to, for the drive list.
    pub fn member_pool(&self, drive: &Drive) -> Option<String> {
        self.pool_of(drive)
    }

    /// Checks a storage PUT completely, then runs the pool hook for each new or changed
    /// pool, recording each pool once its hook has succeeded.
    pub fn storage_put(&mut self, config: &json::Object) -> Result<(), Error> {
        if let Some(k) = config.keys().find(|k| *k != "scrub_schedule" && *k != "pools") {
            return Err(Error::Invalid(format!("config: unknown field {k:?}")));
        }
        let scrub = match config.get("scrub_schedule") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(Error::Invalid("scrub_schedule (a cron expression) is required".into())),
        };
        super::cron::Cron::parse(&scrub).map_err(|e| Error::Invalid(format!("scrub_schedule: {e}")))?;
        let wanted = match config.get("pools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().cloned().collect(),
            Some(_) => return Err(Error::Invalid("pools must be a list".into())),
        };
        let existing = self.pools();
        let mut changes = Vec::new();
        let mut claimed: Vec<String> = Vec::new();
        for item in &wanted {
            let Value::Object(m) = item else { return Err(Error::Invalid("a pool must be an object".into())) };
            if let Some(k) = m.keys().find(|k| !["name", "type", "devices"].contains(&k.as_str())) {
                return Err(Error::Invalid(format!("pool: unknown field {k:?}")));
            }
            let name = match m.get("name") {
                Some(Value::String(s)) if crate::board::valid_id(s) => s.clone(),
                _ => return Err(Error::Invalid("a pool needs a name of letters, digits, '-' or '_'".into())),
            };
            let kind = match m.get("type") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(Error::Invalid(format!("pool {name}: type is required"))),
            };
            let (fewest, even) = minimum_devices(&kind).ok_or_else(|| {
                Error::Invalid(format!(
                    "pool {name}: type must be zfs-raid0, zfs-raid1, zfs-raid10, zfs-raidz1, zfs-raidz2 or zfs-raidz3"
                ))
            })?;
            let devices: Vec<String> = match m.get("devices") {
                Some(Value::Array(d)) => d
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(Error::Invalid(format!("pool {name}: devices must be drive ids"))),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(Error::Invalid(format!("pool {name}: devices is required"))),
            };
            if devices.len() < fewest || (even && devices.len() % 2 != 0) {
                return Err(Error::Invalid(format!(
                    "pool {name}: {kind} needs at least {fewest}{} devices",
                    if even { " (an even number of)" } else { "" }
                )));
            }
            let mut ids = Vec::new();
            for id in &devices {
                let drive = self.drive(id).ok_or_else(|| Error::Invalid(format!("pool {name}: no drive {id:?}")))?;
                if hardware::is_mounted(&self.root, &drive) {
                    return Err(Error::Invalid(format!("pool {name}: drive {id} is in use (mounted)")));
                }
                if let Some(other) = self.pool_of(&drive).filter(|o| *o != name) {
                    return Err(Error::Invalid(format!("pool {name}: drive {id} belongs to pool {other}")));
                }
                if claimed.contains(&drive.id) {
                    return Err(Error::Invalid(format!("pool {name}: drive {id} is named twice")));
                }
                claimed.push(drive.id.clone());
                ids.push(drive.id);
            }
            let before = existing.iter().find(|p| p.name == name);
            if before.is_some_and(|p| p.kind == kind && p.devices == ids) {
                continue;
            }
            let key = before.and_then(|p| p.encryption_key.clone());
            changes.push((
                if before.is_some() { "update" } else { "create" },
                Pool { name, kind, devices: ids, encryption_key: key },
            ));
        }
        let Some(hook) = self.board.storage.pool_hook.clone().filter(|_| !changes.is_empty()) else {
            if !changes.is_empty() {
                return Err(Error::Invalid("this board has no pool backend (storage.pool_hook)".into()));
            }
            return self.store_scrub(&scrub);
        };
        self.store_scrub(&scrub)?;
        for (action, pool) in changes {
            self.run_pool_hook(&hook, action, &pool)?;
            let mut pools = self.pools();
            pools.retain(|p| p.name != pool.name);
            pools.push(pool);
            self.store_pools(&pools)?;
        }
        Ok(())
    }

    fn store_scrub(&self, scrub: &str) -> Result<(), Error> {
        let doc = Object::new().str("scrub_schedule", scrub).finish();
        atomic::write(&self.data.join(STORAGE_CONFIG_FILE), doc.as_bytes(), 0o600)
            .map_err(|e| Error::Io(format!("storing the storage config: {e}")))
    }

    fn run_pool_hook(&self, hook: &[String], action: &str, pool: &Pool) -> Result<(), Error> {
        let devices: Vec<String> = pool
            .devices
            .iter()
            .filter_map(|id| self.drive(id))
            .map(|d| self.root.path(&d.dev_path).display().to_string())
            .collect();
        let status = std::process::Command::new(&hook[0])
            .args(&hook[1..])
            .env("STEWARD_POOL_ACTION", action)
            .env("STEWARD_POOL_NAME", &pool.name)
            .env("STEWARD_POOL_TYPE", &pool.kind)
            .env("STEWARD_POOL_DEVICES", devices.join(" "))
            .stdin(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::Io(format!("cannot run the pool hook: {e}")))?;
        if !status.success() {
            return Err(Error::Io(format!("the pool hook failed to {action} pool {} ({status})", pool.name)));
        }
        Ok(())
    }

    pub fn delete_pool(&mut self, name: &str) -> Result<(), Error> {
        if name == "local" {
            return Err(Error::Invalid("the local pool cannot be deleted".into()));
        }
        let pool = self.pools().into_iter().find(|p| p.name == name).ok_or(Error::NotFound("pool"))?;
        let hook = self.board.storage.pool_hook.clone().ok_or(Error::NotFound("pool"))?;
        self.run_pool_hook(&hook, "delete", &pool)?;
        let mut pools = self.pools();
        pools.retain(|p| p.name != name);
        self.store_pools(&pools)
    }

    /// `:scrub-pool`: the board's pool hook starts a scrub of the pool (`STEWARD_POOL_ACTION`
    /// scrub; `zpool scrub` and `mdadm`'s check both return once it is under way).
    pub fn scrub_pool(&mut self, name: &str) -> Result<(), Error> {
        let hook = self.board.storage.pool_hook.clone().ok_or_else(|| {
            Error::Invalid("this board has no pool backend (storage.pool_hook): there is no pool to scrub".into())
        })?;
        let pool = self.pools().into_iter().find(|p| p.name == name).ok_or(Error::NotFound("pool"))?;
        self.run_pool_hook(&hook, "scrub", &pool)
    }

    pub fn import_pool_key(&mut self, name: &str, key: &str) -> Result<(), Error> {
        if !valid_key(key) {
            return Err(Error::Invalid("encryption_key must be the base64 of a 32-byte raw key".into()));
        }
        let mut pools = self.pools();
        let pool = pools.iter_mut().find(|p| p.name == name).ok_or(Error::NotFound("pool"))?;
        pool.encryption_key = Some(key.to_owned());
        self.store_pools(&pools)
    }

    /// Queues the wipe of a drive after every check: it exists, is not mounted, is in no pool.
    pub fn wipe_job(&mut self, id: &str, secure: bool) -> Result<u64, Error> {
        let drive = self.drive(id).ok_or(Error::NotFound("drive"))?;
        if drive.read_only {
            return Err(Error::Invalid(format!("drive {id} is read-only")));
        }
        if hardware::is_mounted(&self.root, &drive) {
            return Err(Error::Invalid(format!("drive {id} is in use (mounted); it is not wiped")));
        }
        if let Some(pool) = self.pool_of(&drive) {
            return Err(Error::Invalid(format!("drive {id} belongs to pool {pool}; delete the pool first")));
        }
        let mut op = Operation::new(Kind::Wipe, "", crate::time::unix_millis());
        op.drive = drive.id.clone();
        op.secure = secure;
        let id = self.plans.enqueue(op)?;
        self.plans_tick(crate::time::unix_millis());
        Ok(id)
    }
}

/// How much one range ioctl covers: a cancel is noticed between two, and the kernel holds
/// the device's page-cache lock for one at a time.
const WIPE_STEP: u64 = 256 * 1024 * 1024;

/// A wipe refused for what the device is or is doing (not a fault): the answer names it.
pub const REFUSED: &str = "refused: ";

/// Erases a drive. A block device is opened exclusively (the kernel refuses while anything
/// holds it: a mount, a RAID or device-mapper member) and wiped by the device itself:
/// BLKDISCARD to give every block back, then BLKZEROOUT, which leaves it reading zeros
/// (the kernel writes the zeros itself where the device has no write-zeroes command). A
/// secure wipe is BLKSECDISCARD; where the device has none, a spinning disk is overwritten
/// with zeros instead (every sector is then gone, as IncusOS does it), and solid-state
/// storage is refused, since an overwrite never reaches the blocks its controller remapped.
/// The partition table is then read again, so the kernel drops the partitions it erased.
/// A regular file (a file-backed drive) is punched or overwritten. Returns how it was done;
/// a refusal is `Unsupported` or `ResourceBusy`.
pub fn wipe_device(
    path: &Path,
    secure: bool,
    rotational: bool,
    cancel: &std::sync::atomic::AtomicBool,
) -> std::io::Result<String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let is_block = std::fs::metadata(path)?.file_type().is_block_device();
    if !is_block {
        return wipe_file(path, secure, cancel).map(str::to_owned);
    }
    let f = std::fs::OpenOptions::new().write(true).custom_flags(rustix::fs::OFlags::EXCL.bits() as i32).open(path);
    let f = match f {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ResourceBusy,
                "the kernel holds the device (mounted, or part of a RAID or device-mapper volume)",
            ));
        }
        other => other?,
    };
    let geometry = block::geometry(&f)?;
    let errno_is = |e: &std::io::Error, errno: rustix::io::Errno| e.raw_os_error() == Some(errno.raw_os_error());
    let unsupported = |e: &std::io::Error| errno_is(e, rustix::io::Errno::OPNOTSUPP);
    let in_steps = |call: fn(&std::fs::File, u64, u64) -> std::io::Result<()>| -> std::io::Result<()> {
        let mut start = 0;
        while start < geometry.bytes {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other("cancelled"));
            }
            let len = WIPE_STEP.min(geometry.bytes - start);
            call(&f, start, len)?;
            start += len;
        }
        Ok(())
    };
    // The kernel writes zeros itself where the device cannot; a kernel (or emulator) without
    // the ioctl at all (ENOTTY) leaves the writing to us.
    let zero = || match in_steps(|f, s, l| block::zero_out(f, s, l)) {
        Err(e) if errno_is(&e, rustix::io::Errno::NOTTY) || unsupported(&e) => {
            overwrite(f.try_clone()?, geometry.bytes, cancel).map(|()| " (written by steward)")
        }
        other => other.map(|()| ""),
    };
    let how = if secure {
        match in_steps(|f, s, l| block::secure_discard(f, s, l)) {
            Ok(()) => "securely erased by the device".to_owned(),
            Err(e) if (unsupported(&e) || errno_is(&e, rustix::io::Errno::NOTTY)) && rotational => {
                format!("overwritten with zeros{}: the disk has no secure erase", zero()?)
            }
            Err(e) if unsupported(&e) || errno_is(&e, rustix::io::Errno::NOTTY) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the device has no secure erase, and overwriting solid-state storage leaves the blocks its controller remapped",
                ));
            }
            Err(e) => return Err(e),
        }
    } else {
        // Discard is advisory: many devices (and every spinning disk) have none.
        let discarded = match block::discard(&f, 0, geometry.bytes) {
            Ok(()) => true,
            Err(e) if unsupported(&e) || errno_is(&e, rustix::io::Errno::NOTTY) => false,
            Err(e) => return Err(e),
        };
        format!("{}zeroed{}", if discarded { "discarded and " } else { "" }, zero()?)
    };
    f.sync_all()?;
    // EINVAL: a device without partition scanning (a plain loop device); there is nothing
    // to drop then.
    let reread = match block::reread_partitions(&f) {
        Ok(()) => "; partitions re-read".to_owned(),
        Err(e) if errno_is(&e, rustix::io::Errno::INVAL) => String::new(),
        Err(e) => format!("; re-reading the partitions failed: {e}"),
    };
    Ok(format!(
        "{how} ({}-byte logical, {}-byte physical blocks){reread}",
        geometry.logical_block, geometry.physical_block
    ))
}

/// A file-backed drive: punched (the filesystem's discard) or zeroed in place where it can,
/// else (and for a secure wipe, always) overwritten.
fn wipe_file(path: &Path, secure: bool, cancel: &std::sync::atomic::AtomicBool) -> std::io::Result<&'static str> {
    use rustix::fs::FallocateFlags as F;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    if !secure {
        for (flags, how) in [(F::PUNCH_HOLE | F::KEEP_SIZE, "discarded"), (F::ZERO_RANGE | F::KEEP_SIZE, "zeroed")] {
            if rustix::fs::fallocate(&f, flags, 0, size).is_ok() {
                f.sync_all()?;
                return Ok(how);
            }
        }
    }
    overwrite(f, size, cancel)?;
    Ok("overwritten with zeros")
}

/// Writes `size` zeros from the file's start, then syncs.
fn overwrite(f: std::fs::File, size: u64, cancel: &std::sync::atomic::AtomicBool) -> std::io::Result<()> {
    let zeros = vec![0u8; crate::store::bulk::COPY_BUFFER];
    let mut left = size;
    let mut out = crate::store::bulk::EarlyWriteback::new(f);
    while left > 0 {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled"));
        }
        let n = zeros.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        out.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    out.sync().map(drop)
}
