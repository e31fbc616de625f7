//! TLS client certificates trusted by pinning: one line per certificate in
//! `trusted-clients` in the data dir — the sha256 of its DER, a name, its capabilities.
//! A client presenting one of them needs no token, as IncusOS clients authenticate.

use std::path::Path;

use super::keys::{Cap, Principal};
use crate::store::atomic;

const FILE: &str = "trusted-clients";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedClient {
    pub fingerprint: String,
    pub name: std::sync::Arc<str>,
    pub caps: std::sync::Arc<[Cap]>,
}

impl TrustedClient {
    pub fn principal(&self) -> Principal {
        Principal::Cert { name: self.name.clone(), caps: self.caps.clone() }
    }
}

/// Lines are `FINGERPRINT [NAME [CAP,CAP...]]`; a bare fingerprint is an admin.
pub fn load(data: &Path) -> Vec<TrustedClient> {
    let Ok(text) = std::fs::read_to_string(data.join(FILE)) else { return Vec::new() };
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let fingerprint = parts.next()?.to_ascii_lowercase();
            if !valid(&fingerprint) {
                return None;
            }
            let name = parts.next().unwrap_or(&fingerprint[..12]).into();
            let caps = match parts.next() {
                Some(list) => list.split(',').filter_map(Cap::parse).collect(),
                None => [Cap::Admin].into(),
            };
            Some(TrustedClient { fingerprint, name, caps })
        })
        .collect()
}

pub fn store(data: &Path, clients: &[TrustedClient]) -> std::io::Result<()> {
    let text: String = clients
        .iter()
        .map(|c| {
            let caps: Vec<&str> = c.caps.iter().map(|c| c.name()).collect();
            format!("{} {} {}\n", c.fingerprint, c.name, caps.join(","))
        })
        .collect();
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
    Some(crate::hex::to_hex(ring::digest::digest(&ring::digest::SHA256, der.as_ref()).as_ref()))
}
