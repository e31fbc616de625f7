//! TLS client certificates trusted by pinning: the sha256 of each certificate (DER), one
//! per line in `trusted-clients` in the data dir. A client presenting one of them needs no
//! token, as IncusOS clients authenticate.

use std::path::Path;

use crate::store::atomic;

const FILE: &str = "trusted-clients";

pub fn load(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join(FILE))
        .map(|t| t.lines().map(|l| l.trim().to_ascii_lowercase()).filter(|l| valid(l)).collect())
        .unwrap_or_default()
}

pub fn store(data: &Path, fingerprints: &[String]) -> std::io::Result<()> {
    let text: String = fingerprints.iter().map(|f| format!("{f}\n")).collect();
    atomic::write(&data.join(FILE), text.as_bytes(), 0o600)
}

pub fn valid(fingerprint: &str) -> bool {
    fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The fingerprint of a PEM certificate.
pub fn fingerprint_of_pem(pem: &str) -> Option<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    Some(crate::engine::package::to_hex(ring::digest::digest(&ring::digest::SHA256, der.as_ref()).as_ref()))
}
