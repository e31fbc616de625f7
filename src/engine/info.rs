//! Read-only system information: version, changelog, build, health, services, Secure Boot
//! and the TPM.

use super::{Engine, Error};
use std::time::Instant;

use crate::limits::{HEALTH_MAX_AGE, MAX_INFO_FILE};
use crate::system::{health, services};

#[derive(Clone)]
pub struct Health {
    pub disk: health::Usage,
    pub memory: health::Usage,
    pub cpu: health::Cpu,
}

/// An info file as last read, with the stamp it had then.
pub struct CachedInfo {
    path: String,
    stamp: Stamp,
    bytes: Vec<u8>,
}

/// What changes when a file is replaced or written: a rename gives another inode, a write
/// another ctime (fine-grained once looked at, on Linux 6.13 and later) and mostly a size.
#[derive(PartialEq, Eq, Clone, Copy)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// What `GET /1.0` reports about the machine.
pub struct Environment {
    pub hostname: String,
    pub machine_id: String,
    pub os_name: String,
    pub os_version: String,
    pub uptime: u64,
}

impl Engine {
    /// Secure Boot and the TPM, through the board's TPM device. A device that is there but
    /// does not answer (each answer may take the 2 s timeout, on the request thread) is left
    /// alone for a minute, sysfs standing in, so a broken TPM cannot stall every request.
    pub fn security(&self) -> crate::system::hardware::Security {
        use crate::system::hardware;
        let device = self.board.tpm.as_deref().unwrap_or(hardware::TPM_DEVICE);
        let now = crate::time::unix_millis();
        let skip = now < self.tpm_quiet_until.get();
        let security = hardware::security(&self.root, (!skip).then_some(device));
        let answered = security.tpm.as_ref().is_some_and(|t| t.identity.is_some());
        if !skip && !answered && self.root.path(device).exists() {
            self.tpm_quiet_until.set(now + 60_000);
        }
        security
    }

    /// Gives back the executable's pages mapped so far. Only the start-up one is logged,
    /// failure included: every idle spell after a request would otherwise be a log line.
    pub fn give_back_pages(&self, start_up: bool) {
        match (crate::system::raw::pages::release(), start_up) {
            (Ok(r), true) => crate::log::info(format_args!(
                "start-up: gave back {} KiB of code pages ({} mappings)",
                r.kib, r.mappings
            )),
            (Err(e), true) => crate::log::warn(format_args!("start-up: cannot give back code pages: {e}")),
            (_, false) => {}
        }
    }

    /// `/etc/machine-id`, trimmed ("" when it cannot be read): what the surfaces derive the
    /// appliance's ids from.
    pub fn machine_id(&self) -> String {
        self.root
            .read_limited("/etc/machine-id", 4096)
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default()
    }

    pub fn environment(&self) -> Environment {
        let read = |path: &str| {
            self.root.read_limited(path, 64 * 1024).ok().map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        };
        let os_name = read("/etc/os-release")
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("NAME=")).map(|v| v.trim_matches('"').to_owned()))
            .unwrap_or_else(|| "steward".to_owned());
        Environment {
            hostname: read("/proc/sys/kernel/hostname").or_else(|| read("/etc/hostname")).unwrap_or_default(),
            machine_id: read("/etc/machine-id").unwrap_or_default(),
            os_name,
            os_version: self.version().unwrap_or_default(),
            uptime: read("/proc/uptime").and_then(|t| t.split('.').next().and_then(|s| s.parse().ok())).unwrap_or(0),
        }
    }

    /// An info file's bytes: read again only when its stamp (inode, size, change times)
    /// differs from the one read last, so a request costs one `statx`, not open, two reads
    /// and close. Only an update (or a vendor by hand) changes these files.
    fn info_file(&self, path: &str, what: &'static str) -> Result<Vec<u8>, Error> {
        let failed = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(what),
            _ => Error::Io(format!("reading {what}: {e}")),
        };
        let stamp = Stamp::of(&std::fs::metadata(self.root.path(path)).map_err(failed)?);
        let mut cache = self.info_cache.borrow_mut();
        if let Some(hit) = cache.iter().find(|c| c.path == path && c.stamp == stamp) {
            return Ok(hit.bytes.clone());
        }
        let bytes = self.root.read_limited(path, MAX_INFO_FILE).map_err(failed)?;
        cache.retain(|c| c.path != path);
        cache.push(CachedInfo { path: path.to_owned(), stamp, bytes: bytes.clone() });
        Ok(bytes)
    }

    /// First line of the version file; an empty file counts as missing.
    pub fn version(&self) -> Result<String, Error> {
        let bytes = self.info_file(&self.board.info.version, "version")?;
        let mut text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        // Cut down to the first line, trimmed, in place: no second string per request.
        text.truncate(text.find('\n').unwrap_or(text.len()));
        text.truncate(text.trim_end().len());
        text.drain(..text.len() - text.trim_start().len());
        if text.is_empty() { Err(Error::NotFound("version")) } else { Ok(text) }
    }

    pub fn changelog(&self) -> Result<Vec<u8>, Error> {
        self.info_file(&self.board.info.changelog, "changelog")
    }

    /// The build file, checked to be a JSON object so the answer is always valid JSON.
    pub fn build(&self) -> Result<String, Error> {
        let bytes = self.info_file(&self.board.info.build, "build")?;
        let text = String::from_utf8(bytes).map_err(|_| Error::NotFound("build"))?;
        match miniserde::json::from_str::<miniserde::json::Value>(&text) {
            Ok(miniserde::json::Value::Object(_)) => Ok(text.trim().to_owned()),
            _ => Err(Error::NotFound("build")),
        }
    }

    /// The health figures, read at most once per `HEALTH_MAX_AGE`, with when they were read
    /// (a surface may keep its rendering of them as long).
    pub fn health(&mut self, now: Instant) -> Result<(Instant, &Health), Error> {
        let fresh =
            self.health_cache.as_ref().is_some_and(|(at, _)| now.saturating_duration_since(*at) < HEALTH_MAX_AGE);
        if !fresh {
            self.health_cache = Some((now, self.read_health()?));
        }
        let (at, health) = self.health_cache.as_ref().expect("just filled");
        Ok((*at, health))
    }

    fn read_health(&self) -> Result<Health, Error> {
        let io = |what: &str, e: std::io::Error| Error::Io(format!("{what}: {e}"));
        Ok(Health {
            disk: health::disk(&self.data).map_err(|e| io("disk", e))?,
            memory: health::memory(&self.root).map_err(|e| io("memory", e))?,
            cpu: health::cpu(&self.root).map_err(|e| io("cpu", e))?,
        })
    }

    /// steward itself first (it is answering, so it runs), then the profile's services.
    /// The addresses an interface has now (`10.0.2.15/24`, `fe80::…/64`).
    pub fn interface_addresses(&self, iface: &str) -> Vec<String> {
        crate::system::hardware::interface_addresses(&self.root, iface)
    }

    pub fn kernel(&self) -> crate::system::kernel::Kernel {
        crate::system::kernel::kernel(&self.root)
    }

    pub fn processes(&self) -> Vec<crate::system::kernel::Process> {
        crate::system::kernel::processes(&self.root)
    }

    pub fn services(&self) -> Vec<(&str, bool)> {
        let mut list = vec![("steward", true)];
        list.extend(self.board.services.iter().map(|s| (s.name.as_str(), services::is_running(&self.root, s))));
        list
    }
}
