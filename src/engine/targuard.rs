//! A reader between an archive and the tar crate that looks at every tar header as it goes
//! by: the crate reads GNU long-name and long-link entries and PAX extension entries whole
//! into memory, so a header declaring a 1 GiB long name is refused here, before the crate
//! allocates for it.

use std::io::{self, Read};

use crate::limits::MAX_TAR_EXTENSION;

const BLOCK: u64 = 512;

/// Wraps the decompressed byte stream of a tar archive.
pub struct TarGuard<R> {
    inner: R,
    /// The header block being gathered.
    header: [u8; 512],
    filled: usize,
    /// Bytes of the current entry (data and padding) still to pass before the next header.
    skip: u64,
    /// A PAX extension entry is passing: its records are kept to learn a `size=` override.
    pax: Option<Vec<u8>>,
    /// The size the last PAX extension set for the next entry.
    pax_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> TarGuard<R> {
        TarGuard { inner, header: [0; 512], filled: 0, skip: 0, pax: None, pax_size: None }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn observe(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                if let Some(pax) = &mut self.pax {
                    let room = (MAX_TAR_EXTENSION as usize).saturating_sub(pax.len());
                    pax.extend_from_slice(&data[..n.min(room)]);
                }
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0
                    && let Some(records) = self.pax.take()
                {
                    self.pax_size = pax_size(&records)?;
                }
                continue;
            }
            let n = (512 - self.filled).min(data.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == 512 {
                self.filled = 0;
                self.header_complete()?;
            }
        }
        Ok(())
    }

    fn header_complete(&mut self) -> io::Result<()> {
        let h = &self.header;
        if h.iter().all(|&b| b == 0) {
            // The end-of-archive blocks (and any padding after them).
            return Ok(());
        }
        let declared = header_size(&h[124..136]).ok_or_else(|| refused("a tar header has an unreadable size"))?;
        let kind = h[156];
        let size = match kind {
            b'L' | b'K' | b'x' | b'g' => {
                if declared > MAX_TAR_EXTENSION {
                    return Err(refused(format!(
                        "a tar {} entry declares {declared} bytes (at most {MAX_TAR_EXTENSION})",
                        match kind {
                            b'L' => "long-name",
                            b'K' => "long-link",
                            _ => "PAX extension",
                        }
                    )));
                }
                if kind == b'x' {
                    self.pax = Some(Vec::new());
                }
                declared
            }
            // GNU sparse entries carry extension blocks this reader would have to follow;
            // no archive steward reads holds sparse files.
            b'S' => return Err(refused("sparse tar entries are not supported")),
            _ => self.pax_size.take().unwrap_or(declared),
        };
        self.skip = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        if self.skip == 0
            && let Some(records) = self.pax.take()
        {
            self.pax_size = pax_size(&records)?;
        }
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

/// The tar crate skips entry data by seeking forward over it (`entries_with_seek`): the
/// guard follows, and refuses any other seek, which would lose its place among headers.
impl<R: Read + io::Seek> io::Seek for TarGuard<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match pos {
            io::SeekFrom::Current(n) if n >= 0 && (n as u64) <= self.skip && self.pax.is_none() && self.filled == 0 => {
                let at = self.inner.seek(pos)?;
                self.skip -= n as u64;
                Ok(at)
            }
            _ => Err(refused("the archive reader may only skip entry data")),
        }
    }
}

fn refused(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A header's size field: octal digits (NUL/space padded), or GNU base-256 when the top bit
/// of the first byte is set.
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut n: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    let text = field.iter().skip_while(|&&b| b == b' ' || b == 0);
    let mut n: u64 = 0;
    for &b in text {
        match b {
            b'0'..=b'7' => n = n.checked_mul(8)?.checked_add(u64::from(b - b'0'))?,
            b' ' | 0 => break,
            _ => return None,
        }
    }
    Some(n)
}

/// The `size` record of a PAX extension, if it has one ("LEN size=N\n" records).
fn pax_size(mut records: &[u8]) -> io::Result<Option<u64>> {
    let mut size = None;
    while !records.is_empty() {
        let Some(space) = records.iter().position(|&b| b == b' ') else { break };
        let Some(len) = std::str::from_utf8(&records[..space]).ok().and_then(|l| l.parse::<usize>().ok()) else {
            break;
        };
        if len <= space || len > records.len() {
            break;
        }
        let record = &records[space + 1..len];
        if let Some(value) = record.strip_prefix(b"size=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
            size = Some(parsed.ok_or_else(|| refused("a PAX size record is not a number"))?);
        }
        records = &records[len..];
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(TarGuard::new(bytes));
        for entry in archive.entries()? {
            let entry = entry?;
            names.push(entry.path()?.display().to_string());
        }
        Ok(names)
    }

    fn header(kind: tar::EntryType, name: &str, size: u64) -> [u8; 512] {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_cksum();
        *h.as_bytes()
    }

    #[test]
    fn a_huge_long_name_is_refused_before_it_is_read() {
        let mut bytes = header(tar::EntryType::GNULongName, "././@LongLink", 1 << 30).to_vec();
        bytes.extend_from_slice(&[b'a'; 4096]);
        let err = drain(&bytes).unwrap_err();
        assert!(err.to_string().contains("long-name entry declares 1073741824 bytes"), "{err}");
        let mut pax = header(tar::EntryType::XHeader, "pax", MAX_TAR_EXTENSION + 1).to_vec();
        pax.extend_from_slice(&[b'1'; 1024]);
        assert!(drain(&pax).unwrap_err().to_string().contains("PAX extension"));
        let sparse = header(tar::EntryType::GNUSparse, "s", 0).to_vec();
        assert!(drain(&sparse).is_err());
    }

    #[test]
    fn base256_and_bad_size_fields() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 5;
        assert_eq!(header_size(&field), Some(5));
        field[0] = 0xc0;
        assert_eq!(header_size(&field), None, "negative");
        assert_eq!(header_size(b"00000001000\0"), Some(512));
        assert_eq!(header_size(b"  777 \0\0\0\0\0\0"), Some(511));
        assert_eq!(header_size(b"0000000900\0\0"), None);
    }

    #[test]
    fn ordinary_archives_pass_with_long_names_and_pax_sizes() {
        let long = format!("var/lib/app/{}", "n".repeat(300));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut empty = tar::Header::new_gnu();
        empty.set_size(0);
        b.append_data(&mut empty, "empty", &b""[..]).unwrap();
        // A PAX header whose size record overrides the (wrong) ustar size field.
        let record = "12 size=700\n";
        let mut x = header(tar::EntryType::XHeader, "pax", record.len() as u64).to_vec();
        x.extend_from_slice(record.as_bytes());
        x.resize(1024, 0);
        let mut data = b.into_inner().unwrap();
        data.truncate(data.len() - 1024);
        data.extend_from_slice(&x);
        data.extend_from_slice(&header(tar::EntryType::Regular, "big", 1));
        data.extend_from_slice(&[b'z'; 1024]);
        data.extend_from_slice(&header(tar::EntryType::Regular, "after", 0));
        data.extend_from_slice(&[0; 1024]);
        let names = drain(&data).unwrap();
        assert_eq!(names, vec![long, "empty".into(), "big".into(), "after".into()]);
    }
}
