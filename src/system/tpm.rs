//! The TPM 2.0 itself, through its resource-managed device (`/dev/tpmrm0`) or a unix socket
//! speaking the same bytes (swtpm's): the handful of unauthenticated commands an admin API
//! reads, marshalled by hand (TPM 2.0 Part 3). Every response is bounded and checked before
//! a field of it is used; a TPM that does not answer within `TIMEOUT` is treated as gone.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

const TIMEOUT_MS: i32 = 2_000;
/// TPM2's largest response buffer (MAX_RESPONSE_SIZE on every TPM seen).
const MAX_RESPONSE: usize = 4096;

const ST_NO_SESSIONS: u16 = 0x8001;
const CC_GET_CAPABILITY: u32 = 0x17a;
const CC_GET_RANDOM: u32 = 0x17b;
const CC_PCR_READ: u32 = 0x17e;
const CAP_PCRS: u32 = 5;
const CAP_TPM_PROPERTIES: u32 = 6;
const PT_MANUFACTURER: u32 = 0x105;
const PT_VENDOR_STRING_1: u32 = 0x106;
const PT_FIRMWARE_VERSION_1: u32 = 0x10b;
const PT_FIRMWARE_VERSION_2: u32 = 0x10c;
pub const ALG_SHA1: u16 = 0x0004;
pub const ALG_SHA256: u16 = 0x000b;
const PCR_COUNT: u32 = 24;

/// What the TPM says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// TPM_PT_MANUFACTURER as its four ASCII letters, trimmed ("IBM", "INTC", "STM").
    pub manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4, trimmed ("SW   TPM" for swtpm).
    pub vendor: String,
    /// "major.minor.build.patch" from TPM_PT_FIRMWARE_VERSION_1 and _2.
    pub firmware: String,
    /// The PCR banks with at least one PCR allocated ("sha1", "sha256", ...).
    pub banks: Vec<&'static str>,
}

pub struct Tpm {
    link: Link,
}

enum Link {
    Device(std::fs::File),
    Socket(std::os::unix::net::UnixStream),
}

impl Tpm {
    /// Opens the device, or connects when `path` is a unix socket.
    pub fn open(path: &Path) -> io::Result<Tpm> {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(path)?.file_type();
        let link = if kind.is_socket() {
            Link::Socket(std::os::unix::net::UnixStream::connect(path)?)
        } else if kind.is_char_device() {
            Link::Device(std::fs::OpenOptions::new().read(true).write(true).open(path)?)
        } else {
            // A command written to a regular file would only corrupt it.
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "neither a TPM device nor a socket"));
        };
        Ok(Tpm { link })
    }

    /// Sends one command (its header is added here) and returns the response's parameters,
    /// after its header, once the TPM answered success.
    fn command(&mut self, code: u32, params: &[u8]) -> io::Result<Vec<u8>> {
        let mut cmd = Vec::with_capacity(10 + params.len());
        cmd.extend_from_slice(&ST_NO_SESSIONS.to_be_bytes());
        cmd.extend_from_slice(&(10 + params.len() as u32).to_be_bytes());
        cmd.extend_from_slice(&code.to_be_bytes());
        cmd.extend_from_slice(params);
        let mut out = vec![0u8; MAX_RESPONSE];
        let declared = match &mut self.link {
            Link::Device(f) => exchange(f, &cmd, &mut out)?,
            Link::Socket(s) => exchange(s, &cmd, &mut out)?,
        };
        out.truncate(declared);
        let rc = u32::from_be_bytes([out[6], out[7], out[8], out[9]]);
        if rc != 0 {
            return Err(io::Error::other(format!("the TPM answered 0x{rc:03x}")));
        }
        out.drain(..10);
        Ok(out)
    }

    pub fn identity(&mut self) -> io::Result<Identity> {
        let props = self.properties(PT_MANUFACTURER, 8)?;
        let prop = |p: u32| props.iter().find(|(k, _)| *k == p).map(|(_, v)| *v);
        let text = |values: &[u32]| -> String {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).filter(|b| *b != 0).collect();
            String::from_utf8_lossy(&bytes).trim().to_owned()
        };
        let manufacturer = text(&[prop(PT_MANUFACTURER).unwrap_or(0)]);
        let vendor: Vec<u32> = (0..4).filter_map(|i| prop(PT_VENDOR_STRING_1 + i)).collect();
        let (fw1, fw2) = (prop(PT_FIRMWARE_VERSION_1).unwrap_or(0), prop(PT_FIRMWARE_VERSION_2).unwrap_or(0));
        let firmware = format!("{}.{}.{}.{}", fw1 >> 16, fw1 & 0xffff, fw2 >> 16, fw2 & 0xffff);
        Ok(Identity { manufacturer, vendor: text(&vendor), firmware, banks: self.banks()? })
    }

    /// TPM_CAP_TPM_PROPERTIES from `first`, at most `count` of them: (property, value).
    fn properties(&mut self, first: u32, count: u32) -> io::Result<Vec<(u32, u32)>> {
        let r = self.command(CC_GET_CAPABILITY, &capability(CAP_TPM_PROPERTIES, first, count))?;
        let mut r = Reader::new(&r);
        r.skip(1 + 4)?; // moreData, capability
        let n = r.u32()?.min(count);
        (0..n).map(|_| Ok((r.u32()?, r.u32()?))).collect()
    }

    fn banks(&mut self) -> io::Result<Vec<&'static str>> {
        let r = self.command(CC_GET_CAPABILITY, &capability(CAP_PCRS, 0, 1))?;
        let mut r = Reader::new(&r);
        r.skip(1 + 4)?;
        let n = r.u32()?.min(16);
        let mut banks = Vec::new();
        for _ in 0..n {
            let alg = r.u16()?;
            let size = r.u8()? as usize;
            let allocated = r.take(size)?.iter().any(|b| *b != 0);
            if let (true, Some(name)) = (allocated, alg_name(alg)) {
                banks.push(name);
            }
        }
        Ok(banks)
    }

    /// The SHA-256 bank, PCRs 0-23 as far as the TPM has them: (index, digest). A TPM answers
    /// at most eight per PCR_Read, and says in its answer which ones.
    pub fn pcrs_sha256(&mut self) -> io::Result<Vec<(u32, [u8; 32])>> {
        let mut wanted: u32 = (1 << PCR_COUNT) - 1;
        let mut pcrs = Vec::new();
        for _ in 0..PCR_COUNT {
            if wanted == 0 {
                break;
            }
            let mut params = Vec::with_capacity(10);
            params.extend_from_slice(&1u32.to_be_bytes());
            params.extend_from_slice(&ALG_SHA256.to_be_bytes());
            params.push(3);
            params.extend_from_slice(&wanted.to_le_bytes()[..3]);
            let r = self.command(CC_PCR_READ, &params)?;
            let mut r = Reader::new(&r);
            r.skip(4)?; // pcrUpdateCounter
            let mut got: u32 = 0;
            for _ in 0..r.u32()?.min(16) {
                let alg = r.u16()?;
                let size = r.u8()? as usize;
                let select = r.take(size)?;
                if alg == ALG_SHA256 {
                    got |= select.iter().take(4).enumerate().fold(0, |m, (i, b)| m | (u32::from(*b) << (8 * i)));
                }
            }
            got &= wanted;
            let indexes: Vec<u32> = (0..PCR_COUNT).filter(|i| got & (1 << i) != 0).collect();
            let digests = r.u32()? as usize;
            if got == 0 || digests != indexes.len() {
                break;
            }
            for index in indexes {
                let size = r.u16()? as usize;
                let digest: [u8; 32] = r.take(size)?.try_into().map_err(|_| bad("a SHA-256 PCR of another size"))?;
                pcrs.push((index, digest));
            }
            wanted &= !got;
        }
        pcrs.sort_by_key(|(i, _)| *i);
        Ok(pcrs)
    }

    /// `n` bytes (at most 32) from the TPM's generator.
    pub fn random(&mut self, n: u16) -> io::Result<Vec<u8>> {
        let r = self.command(CC_GET_RANDOM, &n.min(32).to_be_bytes())?;
        let mut r = Reader::new(&r);
        let size = r.u16()? as usize;
        Ok(r.take(size)?.to_vec())
    }
}

pub fn alg_name(alg: u16) -> Option<&'static str> {
    match alg {
        ALG_SHA1 => Some("sha1"),
        ALG_SHA256 => Some("sha256"),
        0x000c => Some("sha384"),
        0x000d => Some("sha512"),
        0x0012 => Some("sm3_256"),
        _ => None,
    }
}

fn capability(cap: u32, property: u32, count: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&cap.to_be_bytes());
    p[4..8].copy_from_slice(&property.to_be_bytes());
    p[8..].copy_from_slice(&count.to_be_bytes());
    p
}

/// Writes `cmd`, then reads until the response's declared size has arrived; its size.
fn exchange<L: Read + Write + AsFd>(link: &mut L, cmd: &[u8], out: &mut [u8]) -> io::Result<usize> {
    link.write_all(cmd)?;
    let mut have = 0;
    loop {
        let fd = link.as_fd();
        let mut polled = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec { tv_sec: i64::from(TIMEOUT_MS / 1000), tv_nsec: 0 };
        if rustix::event::poll(&mut polled, Some(&timeout))? == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the TPM did not answer"));
        }
        let n = link.read(&mut out[have..])?;
        if n == 0 {
            return Err(bad("the TPM closed the connection mid-answer"));
        }
        have += n;
        if have >= 10 {
            let declared = u32::from_be_bytes([out[2], out[3], out[4], out[5]]) as usize;
            if !(10..=out.len()).contains(&declared) {
                return Err(bad("a response of impossible size"));
            }
            if have >= declared {
                return Ok(declared);
            }
        }
        if have == out.len() {
            return Err(bad("a response larger than any TPM's"));
        }
    }
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TPM: {why}"))
}

/// Big-endian fields, each checked against what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(bad("a response cut short"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn skip(&mut self, n: usize) -> io::Result<()> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_oversized_answer_is_refused_not_read_past() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert_eq!(r.u16().unwrap(), 1);
        assert!(r.u32().is_err());
        // A peer that declares 5 GB, then one that declares less than a header.
        for declared in [u32::MAX, 9] {
            let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let mut answer = vec![0x80, 0x01];
            answer.extend_from_slice(&declared.to_be_bytes());
            answer.extend_from_slice(&[0; 4]);
            b.write_all(&answer).unwrap();
            let mut out = vec![0u8; MAX_RESPONSE];
            let e = exchange(&mut a, b"cmd", &mut out).unwrap_err();
            assert!(e.to_string().contains("impossible size"), "{e}");
        }
    }

    #[test]
    fn a_regular_file_is_not_written_to() {
        let file = std::env::temp_dir().join(format!("steward-not-a-tpm-{}", std::process::id()));
        std::fs::write(&file, b"keep").unwrap();
        assert!(Tpm::open(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_silent_tpm_times_out() {
        let (mut a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut out = vec![0u8; MAX_RESPONSE];
        let e = exchange(&mut a, b"cmd", &mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
