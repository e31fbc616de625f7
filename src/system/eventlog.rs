//! The firmware's measured-boot event log (securityfs' `binary_bios_measurements`), in the
//! TCG PC Client crypto-agile format, and its replay: what the PCRs must hold if every
//! measurement that reached the TPM is in the log.

use sha2::{Digest, Sha256};

use super::tpm::ALG_SHA256;

/// Where the kernel exports the log.
pub const PATH: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// Firmware logs run to tens of KiB; a file beyond this is not one.
pub const MAX_LOG: u64 = 1024 * 1024;
/// Not extended into any PCR: the log's header and other annotations.
const EV_NO_ACTION: u32 = 3;
const SPEC_ID: &[u8] = b"Spec ID Event03\0";
const STARTUP_LOCALITY: &[u8] = b"StartupLocality\0";

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub index: u32,
    pub kind: u32,
    pub data: Vec<u8>,
    /// The event's SHA-256 digest, the one replayed against the SHA-256 bank.
    pub digest: [u8; 32],
}

#[derive(Debug)]
pub struct Log {
    pub events: Vec<Event>,
    /// PCR 0's value before its first extension: the locality the firmware started in.
    locality: u8,
}

/// Parses a crypto-agile log. A SHA-1-only log (TPM 1.2 firmware) has no SHA-256 digests
/// to replay and is refused.
pub fn parse(bytes: &[u8]) -> Result<Log, String> {
    let mut r = Reader { rest: bytes };
    // The first event is in the old SHA-1 format and carries the header naming the
    // algorithms and their digest sizes, which the rest need to be read at all.
    let (index, kind) = (r.u32()?, r.u32()?);
    r.take(20)?;
    let header = r.sized()?;
    if index != 0 || kind != EV_NO_ACTION || !header.starts_with(SPEC_ID) {
        return Err("not a crypto-agile event log (no Spec ID Event03 header): SHA-1 only".into());
    }
    let mut h = Reader { rest: &header[SPEC_ID.len()..] };
    h.take(4 + 4)?; // platform class, spec version, errata, uintn size
    let algorithms = h.u32()?;
    if algorithms > 16 {
        return Err("the log's header lists more algorithms than exist".into());
    }
    let mut sizes = Vec::new();
    for _ in 0..algorithms {
        sizes.push((h.u16()?, h.u16()? as usize));
    }
    if !sizes.iter().any(|(alg, size)| *alg == ALG_SHA256 && *size == 32) {
        return Err("the log has no SHA-256 digests".into());
    }
    let mut log = Log { events: Vec::new(), locality: 0 };
    while !r.rest.is_empty() {
        let (index, kind) = (r.u32()?, r.u32()?);
        let count = r.u32()?;
        if count as usize > sizes.len() {
            return Err(format!("event {} has more digests than the log's algorithms", log.events.len()));
        }
        let mut sha256 = None;
        for _ in 0..count {
            let alg = r.u16()?;
            let size =
                sizes.iter().find(|(a, _)| *a == alg).map(|(_, s)| *s).ok_or("a digest of an unlisted algorithm")?;
            let digest = r.take(size)?;
            if alg == ALG_SHA256 {
                sha256 = digest.try_into().ok();
            }
        }
        let data = r.sized()?;
        if kind == EV_NO_ACTION {
            if index == 0 && data.starts_with(STARTUP_LOCALITY) && data.len() > STARTUP_LOCALITY.len() {
                log.locality = data[STARTUP_LOCALITY.len()];
            }
            continue;
        }
        let digest = sha256.ok_or_else(|| format!("event {} has no SHA-256 digest", log.events.len()))?;
        if index >= 24 {
            return Err(format!("event {} extends PCR {index}", log.events.len()));
        }
        log.events.push(Event { index, kind, data: data.to_vec(), digest });
    }
    Ok(log)
}

impl Log {
    /// Each PCR's value after replaying its events, for the PCRs the log extends.
    pub fn replay(&self) -> Vec<(u32, [u8; 32])> {
        let mut pcrs: Vec<(u32, [u8; 32])> = Vec::new();
        for e in &self.events {
            let at = match pcrs.iter().position(|(i, _)| *i == e.index) {
                Some(at) => at,
                None => {
                    let mut start = [0u8; 32];
                    if e.index == 0 {
                        start[31] = self.locality;
                    }
                    pcrs.push((e.index, start));
                    pcrs.len() - 1
                }
            };
            let mut h = Sha256::new();
            h.update(pcrs[at].1);
            h.update(e.digest);
            pcrs[at].1 = h.finalize().into();
        }
        pcrs.sort_by_key(|(i, _)| *i);
        pcrs
    }

    /// The first PCR whose replayed value differs from the TPM's, if any.
    pub fn mismatch(&self, tpm: &[(u32, [u8; 32])]) -> Option<u32> {
        self.replay()
            .into_iter()
            .find(|(i, value)| tpm.iter().find(|(j, _)| j == i).is_none_or(|(_, v)| v != value))
            .map(|(i, _)| i)
    }
}

/// Little-endian fields, each checked against what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err("the event log is cut short".into());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u32 length, then that many bytes.
    fn sized(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Builds logs for tests (here and black-box): the header, then events.
#[cfg(test)]
pub fn build(events: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut header = SPEC_ID.to_vec();
    header.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
    header.extend_from_slice(&2u32.to_le_bytes());
    for (alg, size) in [(0x0004u16, 20u16), (ALG_SHA256, 32)] {
        header.extend_from_slice(&alg.to_le_bytes());
        header.extend_from_slice(&size.to_le_bytes());
    }
    header.push(0);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for (index, kind, data) in events {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&0x0004u16.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&ALG_SHA256.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(data));
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_replays_to_its_pcrs() {
        let log = parse(&build(&[(7, 0x8000_0001, b"SecureBoot"), (4, 0x8000_0003, b"shim"), (7, 4, b"sep")])).unwrap();
        assert_eq!(log.events.len(), 3);
        let step = |from: [u8; 32], data: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(from);
            h.update(Sha256::digest(data));
            h.finalize().into()
        };
        let pcr7 = step(step([0; 32], b"SecureBoot"), b"sep");
        let pcr4 = step([0; 32], b"shim");
        assert_eq!(log.replay(), vec![(4, pcr4), (7, pcr7)]);
        assert_eq!(log.mismatch(&[(4, pcr4), (7, pcr7)]), None);
        assert_eq!(log.mismatch(&[(4, pcr4), (7, [0; 32])]), Some(7));
        assert_eq!(log.mismatch(&[(7, pcr7)]), Some(4));
    }

    #[test]
    fn truncated_or_foreign_logs_are_refused() {
        let whole = build(&[(7, 1, b"x")]);
        for cut in [0, 3, 40, whole.len() - 1] {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut pcr99 = build(&[(99, 1, b"x")]);
        assert!(parse(&pcr99).unwrap_err().contains("PCR 99"));
        pcr99[4] = 1; // the header is no EV_NO_ACTION: a SHA-1 log
        assert!(parse(&pcr99).unwrap_err().contains("SHA-1"));
    }
}
