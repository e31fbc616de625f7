//! Block-device ioctls: geometry, discard, zero-out, secure erase and partition re-read,
//! as `blkdiscard`, `blockdev` and `wipefs` reach them, without running either.

use std::io;
use std::os::fd::AsFd;

use rustix::ioctl::{Getter, NoArg, Opcode, Setter, ioctl, opcode};

// linux/fs.h. The range ioctls are declared `_IO` although they take a pointer to
// `u64[2]` (start, length in bytes): that is the number the kernel matches.
const BLKRRPART: Opcode = opcode::none(0x12, 95);
const BLKGETSIZE64: Opcode = opcode::read::<usize>(0x12, 114);
const BLKDISCARD: Opcode = opcode::none(0x12, 119);
const BLKSECDISCARD: Opcode = opcode::none(0x12, 125);
const BLKZEROOUT: Opcode = opcode::none(0x12, 127);

/// What the kernel says of a block device's size and sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub bytes: u64,
    /// The smallest unit the device addresses (BLKSSZGET).
    pub logical_block: u32,
    /// The unit it writes internally (BLKPBSZGET); a smaller write is a read-modify-write.
    pub physical_block: u32,
}

pub fn geometry(dev: impl AsFd) -> io::Result<Geometry> {
    let dev = dev.as_fd();
    // SAFETY: BLKGETSIZE64 writes one u64 (the kernel's `put_u64`, whatever size_t is) to
    // the pointer it is given, and Getter hands it a u64's worth of owned storage.
    let bytes = unsafe { ioctl(dev, Getter::<BLKGETSIZE64, u64>::new()) }?;
    Ok(Geometry {
        bytes,
        logical_block: rustix::fs::ioctl_blksszget(dev)?,
        physical_block: rustix::fs::ioctl_blkpbszget(dev)?,
    })
}

/// The range ioctls: the device is told to drop (`discard`), zero (`zero_out`) or securely
/// erase (`secure_discard`) `len` bytes from `start`, both multiples of 512.
pub fn discard(dev: impl AsFd, start: u64, len: u64) -> io::Result<()> {
    // SAFETY: the kernel copies exactly two u64 (start, length) from the pointer, which
    // Setter owns for the call; nothing is written back.
    unsafe { ioctl(dev, Setter::<BLKDISCARD, [u64; 2]>::new([start, len])) }.map_err(io::Error::from)
}

pub fn zero_out(dev: impl AsFd, start: u64, len: u64) -> io::Result<()> {
    // SAFETY: as `discard`: two u64 read by the kernel, nothing written back.
    unsafe { ioctl(dev, Setter::<BLKZEROOUT, [u64; 2]>::new([start, len])) }.map_err(io::Error::from)
}

pub fn secure_discard(dev: impl AsFd, start: u64, len: u64) -> io::Result<()> {
    // SAFETY: as `discard`: two u64 read by the kernel, nothing written back.
    unsafe { ioctl(dev, Setter::<BLKSECDISCARD, [u64; 2]>::new([start, len])) }.map_err(io::Error::from)
}

/// Asks the kernel to read the partition table again, so partitions a wipe erased go.
pub fn reread_partitions(dev: impl AsFd) -> io::Result<()> {
    // SAFETY: BLKRRPART takes no argument; the pointer passed is null and never read.
    unsafe { ioctl(dev, NoArg::<BLKRRPART>::new()) }.map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers the kernel headers give (linux/fs.h on x86_64 and aarch64).
    #[test]
    fn opcodes_are_the_kernel_s() {
        assert_eq!(BLKRRPART as u64, 0x125f);
        assert_eq!(BLKGETSIZE64 as u64, 0x8008_1272);
        assert_eq!(BLKDISCARD as u64, 0x1277);
        assert_eq!(BLKSECDISCARD as u64, 0x127d);
        assert_eq!(BLKZEROOUT as u64, 0x127f);
    }

    #[test]
    fn a_regular_file_is_no_block_device() {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(geometry(&f).is_err());
        assert!(zero_out(&f, 0, 512).is_err());
    }
}
