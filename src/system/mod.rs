//! Reading the machine: procfs, sysfs, statvfs. Every path goes through `Root`, so tests
//! point the daemon at a fixture tree.

pub mod eventlog;
pub mod hardware;
pub mod health;
pub mod kernel;
pub mod netlink;
pub mod netstate;
pub mod privilege;
#[allow(unsafe_code)] // the one module that needs it: see its header
pub mod raw;
pub mod services;
pub mod tpm;

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Root {
    base: PathBuf,
    /// Where every path but the kernel's (`/proc`, `/sys`) goes instead of `base`: the dev
    /// board on a developer's machine reads the real figures and writes nothing outside
    /// its data dir.
    sandbox: Option<PathBuf>,
}

/// The kernel's read-only views, which a sandboxed root still reads from the real system.
const PASSED_THROUGH: [&str; 2] = ["proc", "sys"];

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { base: dir.into(), sandbox: None }
    }

    /// `/proc` and `/sys` from `dir`, every other path below `sandbox`.
    pub fn sandboxed(dir: impl Into<PathBuf>, sandbox: impl Into<PathBuf>) -> Root {
        Root { base: dir.into(), sandbox: Some(sandbox.into()) }
    }

    /// `abs` is an absolute system path such as `/proc/meminfo`.
    pub fn path(&self, abs: &str) -> PathBuf {
        let rel = abs.trim_start_matches('/');
        let top = rel.split('/').next().unwrap_or("");
        let base = match &self.sandbox {
            Some(sandbox) if !PASSED_THROUGH.contains(&top) => sandbox,
            _ => &self.base,
        };
        // Sized up front: `join` would grow the buffer once more on the request path.
        let mut path = PathBuf::with_capacity(base.as_os_str().len() + 1 + rel.len());
        path.push(base);
        path.push(rel);
        path
    }

    /// The tree that holds the system's files (a hook's STEWARD_ROOT): the sandbox, if any.
    pub fn dir(&self) -> &Path {
        self.sandbox.as_deref().unwrap_or(&self.base)
    }

    pub fn is_sandboxed(&self) -> bool {
        self.sandbox.is_some()
    }

    /// Reads a small file whole, refusing anything larger than `limit` bytes.
    pub fn read_limited(&self, abs: &str, limit: u64) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        std::fs::File::open(self.path(abs))?.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "file too large"));
        }
        Ok(out)
    }
}
