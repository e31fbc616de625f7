//! The update package: a vendor-signed manifest and a payload, encrypted for transit.
//!
//! ```text
//! file      = "STWUPD" 0x00 0x01 | nonce-prefix[4] | chunk*
//! chunk     = last-flag (top bit) and length u32-be | ChaCha20-Poly1305(plaintext ≤ 64 KiB)
//!             (length includes the tag); nonce = nonce-prefix | chunk-counter u64-be;
//!             AAD = the last-flag byte, so flipping the flag fails authentication
//! plaintext = manifest-length u32-be | manifest JSON | Ed25519 signature[64] over the JSON | payload
//! ```
//! Chunks are authenticated one by one, so a tampered byte stops the reader at its chunk;
//! the last-chunk flag makes truncation detectable; the signed manifest names the payload's
//! size and sha256, which the reader checks at the end.

use std::io::{self, Read, Write};

use miniserde::{Deserialize, Serialize, json};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"STWUPD\x00\x01";
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAX_MANIFEST: usize = 1024 * 1024;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub builddate: String,
    pub changelog: String,
    /// `image` (written to the inactive slot) or `bundle`.
    pub kind: String,
    pub payload_sha256: String,
    pub payload_size: u64,
    pub allow_downgrade: bool,
}

#[derive(Debug)]
pub enum PackageError {
    /// Not decryptable, not authentic, or not in our format (E1005).
    Invalid(String),
    Io(io::Error),
}

impl From<io::Error> for PackageError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::InvalidData { PackageError::Invalid(e.to_string()) } else { PackageError::Io(e) }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A short read means a short file (not ours, or cut off); any other error is the input's
/// own (an upload that stopped, a disk error) and is passed on as it is.
fn short(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof { invalid(what) } else { e }
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key"))
}

fn nonce(prefix: [u8; 4], counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&prefix);
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Key material made by `steward keygen`.
pub struct Keys {
    pub signing_pkcs8: Vec<u8>,
    pub signing_public: Vec<u8>,
    pub encryption: [u8; 32],
}

pub fn generate_keys() -> Result<Keys, String> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "key generation failed")?;
    let mut encryption = [0u8; 32];
    rng.fill(&mut encryption).map_err(|_| "no randomness")?;
    Ok(Keys { signing_pkcs8: pkcs8.as_ref().to_vec(), signing_public: pair.public_key().as_ref().to_vec(), encryption })
}

/// Writes plaintext as sealed chunks; `finish` seals the last one.
pub struct Encryptor<W: Write> {
    out: W,
    key: LessSafeKey,
    prefix: [u8; 4],
    counter: u64,
    buf: Vec<u8>,
}

impl<W: Write> Encryptor<W> {
    pub fn new(mut out: W, key: &[u8; 32], magic: &[u8; 8]) -> io::Result<Self> {
        let mut prefix = [0u8; 4];
        SystemRandom::new().fill(&mut prefix).map_err(|_| io::Error::other("no randomness"))?;
        out.write_all(magic)?;
        out.write_all(&prefix)?;
        Ok(Encryptor { out, key: aead(key), prefix, counter: 0, buf: Vec::with_capacity(CHUNK + TAG) })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let aad = Aad::from([u8::from(last)]);
        self.key
            .seal_in_place_append_tag(nonce(self.prefix, self.counter), aad, &mut self.buf)
            .map_err(|_| io::Error::other("seal failed"))?;
        self.counter += 1;
        let header = self.buf.len() as u32 | (u32::from(last) << 31);
        self.out.write_all(&header.to_be_bytes())?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full chunk is sealed only once more data follows, so the last one is always
        // sealed by `finish` with the last-chunk flag.
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the plaintext back, refusing any chunk that does not authenticate.
pub struct Decryptor<R: Read> {
    input: R,
    key: LessSafeKey,
    prefix: [u8; 4],
    counter: u64,
    buf: Vec<u8>,
    pos: usize,
    plain_len: usize,
    finished: bool,
}

impl<R: Read> Decryptor<R> {
    pub fn new(mut input: R, key: &[u8; 32], magic: &[u8; 8]) -> io::Result<Self> {
        let mut head = [0u8; 12];
        input.read_exact(&mut head).map_err(|e| short(e, "too short to be ours"))?;
        if &head[..8] != magic {
            return Err(invalid("bad magic: not this kind of file"));
        }
        let prefix = [head[8], head[9], head[10], head[11]];
        Ok(Decryptor {
            input,
            key: aead(key),
            prefix,
            counter: 0,
            buf: vec![0; CHUNK + TAG],
            pos: 0,
            plain_len: 0,
            finished: false,
        })
    }

    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.finished {
            let mut probe = [0u8; 1];
            if self.input.read(&mut probe)? != 0 {
                return Err(invalid("data after the last chunk"));
            }
            return Ok(false);
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(|e| short(e, "package is truncated"))?;
        let header = u32::from_be_bytes(len);
        let last = header >> 31 == 1;
        let len = (header & 0x7fff_ffff) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(invalid("bad chunk length"));
        }
        self.input.read_exact(&mut self.buf[..len]).map_err(|e| short(e, "package is truncated"))?;
        let n = self
            .key
            .open_in_place(nonce(self.prefix, self.counter), Aad::from([u8::from(last)]), &mut self.buf[..len])
            .map_err(|_| invalid("package does not decrypt with this key (corrupt or tampered)"))?
            .len();
        self.counter += 1;
        self.finished = last;
        self.pos = 0;
        self.plain_len = n;
        Ok(true)
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain_len {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain_len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Builds a package from `payload` (read twice: once to hash it, once to encrypt it).
pub fn pack(
    signing_pkcs8: &[u8],
    encryption: &[u8; 32],
    mut manifest: Manifest,
    payload: &std::path::Path,
    out: impl Write,
) -> Result<(), String> {
    let pair = Ed25519KeyPair::from_pkcs8(signing_pkcs8).map_err(|_| "the signing key is not an Ed25519 PKCS#8 key")?;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(payload).map_err(|e| format!("{}: {e}", payload.display()))?;
    manifest.payload_size = io::copy(&mut file, &mut HashWriter(&mut hasher)).map_err(|e| e.to_string())?;
    manifest.payload_sha256 = crate::hex::to_hex(&hasher.finalize());
    let manifest_json = json::to_string(&manifest);
    let signature = pair.sign(manifest_json.as_bytes());
    let mut enc = Encryptor::new(out, encryption, MAGIC).map_err(|e| e.to_string())?;
    enc.write_all(&(manifest_json.len() as u32).to_be_bytes()).map_err(|e| e.to_string())?;
    enc.write_all(manifest_json.as_bytes()).map_err(|e| e.to_string())?;
    enc.write_all(signature.as_ref()).map_err(|e| e.to_string())?;
    let mut file = std::fs::File::open(payload).map_err(|e| e.to_string())?;
    io::copy(&mut file, &mut enc).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())?;
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens a package: decrypts the head, checks the manifest's signature, and returns the
/// manifest with a reader positioned at the payload.
pub fn open<R: Read>(
    input: R,
    encryption: &[u8; 32],
    signing_public: &[u8],
) -> Result<(Manifest, Decryptor<R>), PackageError> {
    let mut dec = Decryptor::new(input, encryption, MAGIC)?;
    let mut len = [0u8; 4];
    dec.read_exact(&mut len).map_err(|e| short(e, "package is truncated"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MANIFEST {
        return Err(PackageError::Invalid("manifest too large".into()));
    }
    let mut manifest_json = vec![0u8; len];
    dec.read_exact(&mut manifest_json).map_err(|e| short(e, "package is truncated"))?;
    let mut signature = [0u8; 64];
    dec.read_exact(&mut signature).map_err(|e| short(e, "package is truncated"))?;
    UnparsedPublicKey::new(&ED25519, signing_public)
        .verify(&manifest_json, &signature)
        .map_err(|_| PackageError::Invalid("the package is not signed by this system's vendor key".into()))?;
    let text =
        std::str::from_utf8(&manifest_json).map_err(|_| PackageError::Invalid("manifest is not UTF-8".into()))?;
    let manifest: Manifest =
        json::from_str(text).map_err(|_| PackageError::Invalid("manifest is not in the expected shape".into()))?;
    if manifest.format != 1 {
        return Err(PackageError::Invalid(format!("unsupported package format {}", manifest.format)));
    }
    Ok((manifest, dec))
}

/// Dotted version order as `sort -V` sees it for plain versions: numeric parts compare as
/// numbers, other parts as text.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> { s.split(['.', '-', '+']).map(str::to_owned).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (pa.get(i).map(String::as_str).unwrap_or("0"), pb.get(i).map(String::as_str).unwrap_or("0"));
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn sample(dir: &std::path::Path, payload: &[u8]) -> (Keys, Vec<u8>) {
        let keys = generate_keys().unwrap();
        let path = dir.join("payload");
        std::fs::write(&path, payload).unwrap();
        let manifest = Manifest {
            format: 1,
            version: "1.2.4".into(),
            builddate: "1795382659".into(),
            changelog: "fixes".into(),
            kind: "image".into(),
            payload_sha256: String::new(),
            payload_size: 0,
            allow_downgrade: false,
        };
        let mut out = Vec::new();
        pack(&keys.signing_pkcs8, &keys.encryption, manifest, &path, &mut out).unwrap();
        (keys, out)
    }

    fn read_all(keys: &Keys, pkg: &[u8]) -> Result<(Manifest, Vec<u8>), PackageError> {
        let (m, mut r) = open(pkg, &keys.encryption, &keys.signing_public)?;
        let mut payload = Vec::new();
        r.read_to_end(&mut payload)?;
        Ok((m, payload))
    }

    #[test]
    fn refuses_tampered_truncated_and_foreign_packages() {
        let dir = std::env::temp_dir().join(format!("steward-pkg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (keys, pkg) = sample(&dir, &payload);
        let (m, back) = read_all(&keys, &pkg).unwrap();
        assert_eq!(back, payload);
        assert_eq!(m.payload_size, payload.len() as u64);
        let mut tampered = pkg.clone();
        tampered[100_000] ^= 1;
        assert!(read_all(&keys, &tampered).is_err());
        assert!(read_all(&keys, &pkg[..pkg.len() - 70_000]).is_err(), "truncated at a chunk boundary or not");
        assert!(read_all(&keys, &pkg[..pkg.len() - 1]).is_err());
        let mut extra = pkg.clone();
        extra.push(0);
        assert!(read_all(&keys, &extra).is_err());
        let other = generate_keys().unwrap();
        let foreign_signer =
            Keys { signing_pkcs8: vec![], signing_public: other.signing_public, encryption: keys.encryption };
        assert!(matches!(read_all(&foreign_signer, &pkg), Err(PackageError::Invalid(_))));
        let foreign_key =
            Keys { signing_pkcs8: vec![], signing_public: keys.signing_public.clone(), encryption: other.encryption };
        assert!(matches!(read_all(&foreign_key, &pkg), Err(PackageError::Invalid(_))));
        assert!(matches!(read_all(&keys, b"garbage that is not a package"), Err(PackageError::Invalid(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn versions_order_numerically() {
        assert_eq!(version_cmp("1.10.0", "1.9.9"), Ordering::Greater);
        assert_eq!(version_cmp("1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(version_cmp("2.0.0-rc1", "2.0.0-rc2"), Ordering::Less);
        assert_eq!(version_cmp("1.0.0", "1.0.1"), Ordering::Less);
    }
}
