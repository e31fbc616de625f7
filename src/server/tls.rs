//! TLS configuration: the certificate in the data dir, generated self-signed on first start.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::store::atomic;

/// The configuration new connections get; swapped whole when the certificate changes, so
/// connections already open keep the one they started with.
pub type TlsSlot = Arc<std::sync::Mutex<Arc<ServerConfig>>>;

pub const CERT_FILE: &str = "tls/cert.pem";
pub const KEY_FILE: &str = "tls/key.pem";

/// Loads the data dir's certificate, generating and storing a self-signed one first if the
/// data dir has none. The key is written before the certificate, so a crash in between
/// leaves no certificate without its key.
pub fn load_or_create(data: &Path) -> Result<Arc<ServerConfig>, String> {
    finish_or_drop_staged(data).map_err(|e| format!("finishing a certificate change: {e}"))?;
    let cert_path = data.join(CERT_FILE);
    let key_path = data.join(KEY_FILE);
    if !cert_path.exists() {
        atomic::ensure_private_dir(&data.join("tls")).map_err(|e| format!("creating tls dir: {e}"))?;
        let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        if !hostname.is_empty() && hostname != "localhost" {
            names.insert(0, hostname);
        }
        let generated =
            rcgen::generate_simple_self_signed(names).map_err(|e| format!("generating certificate: {e}"))?;
        atomic::write(&key_path, generated.signing_key.serialize_pem().as_bytes(), 0o600)
            .map_err(|e| format!("writing {}: {e}", key_path.display()))?;
        atomic::write(&cert_path, generated.cert.pem().as_bytes(), 0o644)
            .map_err(|e| format!("writing {}: {e}", cert_path.display()))?;
        crate::log::info(format_args!("generated a self-signed certificate in {}", cert_path.display()));
    }
    let cert_pem = std::fs::read(&cert_path).map_err(|e| format!("reading {}: {e}", cert_path.display()))?;
    let key_pem = std::fs::read(&key_path).map_err(|e| format!("reading {}: {e}", key_path.display()))?;
    from_pem(&cert_pem, &key_pem)
}

const STAGED: &str = "tls/staged";
const STAGED_DONE: &str = "complete";

/// Writes a new key and certificate beside the current ones, then marks them complete.
pub fn stage_pair(data: &Path, key: &[u8], chain: &[u8]) -> std::io::Result<()> {
    let dir = data.join(STAGED);
    let _ = std::fs::remove_dir_all(&dir);
    atomic::ensure_private_dir(&dir)?;
    atomic::write(&dir.join("key.pem"), key, 0o600)?;
    atomic::write(&dir.join("cert.pem"), chain, 0o644)?;
    atomic::write(&dir.join(STAGED_DONE), b"", 0o600)
}

/// Moves a complete staged pair into place (each rename can run again after a crash).
pub fn swap_staged(data: &Path) -> std::io::Result<()> {
    let dir = data.join(STAGED);
    for (staged, live) in [("key.pem", KEY_FILE), ("cert.pem", CERT_FILE)] {
        let from = dir.join(staged);
        if from.exists() {
            std::fs::rename(&from, data.join(live))?;
        }
    }
    atomic::sync_dir(&data.join("tls"))?;
    std::fs::remove_dir_all(&dir)
}

/// At start: a staged pair marked complete is swapped in; an incomplete one is dropped.
fn finish_or_drop_staged(data: &Path) -> std::io::Result<()> {
    let dir = data.join(STAGED);
    if dir.join(STAGED_DONE).exists() {
        swap_staged(data)
    } else if dir.exists() {
        std::fs::remove_dir_all(&dir)
    } else {
        Ok(())
    }
}

/// A server configuration from PEM text: a certificate chain (leaf first) and its key
/// (PKCS#8, PKCS#1 RSA or SEC1 EC). Fails when the key does not belong to the certificate.
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in the PEM text".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key is not valid PEM: {e}"))?;
    config(certs, key)
}

pub fn config(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider_for_verify())))
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not form a usable pair: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn provider_for_verify() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client certificates are optional and trusted by pinning, not by a CA: any certificate is
/// accepted here once the client proves it holds its key (the handshake signature checks
/// below), and the request layer compares its sha256 with the trusted list.
#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
