//! Writing large files (backups, staged restores, update slots) at the disk's pace.

use std::fs::File;
use std::io::{self, Read, Write};

/// Large enough that a gigabyte is a few thousand system calls, small enough for the budget.
pub const COPY_BUFFER: usize = 256 * 1024;
/// How much may be dirty before its writeback is started.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;

/// A file whose disk writes start as it grows instead of all at the final fsync, so writing
/// overlaps the reading and hashing that feed it; pages already written back are dropped
/// from the cache, so a gigabyte copy does not push the appliance's working set out.
pub struct EarlyWriteback {
    file: File,
    written: u64,
    started_to: u64,
}

impl EarlyWriteback {
    pub fn new(file: File) -> EarlyWriteback {
        EarlyWriteback { file, written: 0, started_to: 0 }
    }

    /// The file, for the caller to finish (size, sync) itself.
    pub fn into_file(self) -> File {
        self.file
    }

    /// Waits for everything written to reach the disk.
    pub fn sync(self) -> io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for EarlyWriteback {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.written += n as u64;
        if self.written - self.started_to >= WRITEBACK_STEP {
            // DONTNEED starts writeback of the dirty range without waiting and drops what is
            // already clean; it is advice, so an error here changes nothing.
            let _ = rustix::fs::fadvise(
                &self.file,
                0,
                std::num::NonZeroU64::new(self.written),
                rustix::fs::Advice::DontNeed,
            );
            self.started_to = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Copies exactly `size` bytes; a source that ends early is an error, not a short copy.
pub fn copy_exact(from: &mut impl Read, to: &mut impl Write, size: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the source ended early")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_and_refuses_a_short_source() {
        let dir = std::env::temp_dir().join(format!("steward-bulk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let data: Vec<u8> = (0..(WRITEBACK_STEP as usize * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let mut out = EarlyWriteback::new(File::create(&path).unwrap());
        let mut buf = vec![0u8; COPY_BUFFER];
        copy_exact(&mut &data[..], &mut out, data.len() as u64, &mut buf).unwrap();
        out.sync().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let err = copy_exact(&mut &data[..10], &mut io::sink(), 11, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
