//! The listener's certificate and key in the data dir: generated self-signed on first start,
//! changed by staging a complete pair beside the live one and renaming it in.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use super::atomic;

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
    crate::tls::from_pem(&cert_pem, &key_pem)
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
