//! Reading the machine: procfs, sysfs, statvfs. Every path goes through `Root`, so tests
//! point the daemon at a fixture tree.

pub mod hardware;
pub mod health;
pub mod pages;
pub mod privilege;
pub mod services;

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// `abs` is an absolute system path such as `/proc/meminfo`.
    pub fn path(&self, abs: &str) -> PathBuf {
        let rel = abs.trim_start_matches('/');
        // Sized up front: `join` would grow the buffer once more on the request path.
        let mut path = PathBuf::with_capacity(self.0.as_os_str().len() + 1 + rel.len());
        path.push(&self.0);
        path.push(rel);
        path
    }

    pub fn dir(&self) -> &Path {
        &self.0
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
