//! IncusOS configuration documents kept in the data dir (`incus-<name>.json`: logging,
//! provider, update, security, services), and the security change that also replaces the
//! trusted client certificates: the engine writes steward's state, the surface checks and
//! renders the documents.

use super::clients::{self, TrustedClient};
use super::{Engine, Error};
use crate::store::atomic;

fn config_path(data: &std::path::Path, name: &str) -> std::path::PathBuf {
    data.join(format!("incus-{name}.json"))
}

impl Engine {
    /// A stored config document, or `default` while none has been stored.
    pub fn stored_config(&self, name: &str, default: &str) -> String {
        std::fs::read_to_string(config_path(&self.data, name)).unwrap_or_else(|_| default.to_owned())
    }

    /// Drops a stored config document: its default is in force again.
    pub fn forget_config(&self, name: &str) -> Result<(), Error> {
        atomic::remove(&config_path(&self.data, name)).map_err(|e| Error::Io(format!("resetting {name}: {e}")))
    }

    pub fn store_config(&self, name: &str, config: &str) -> Result<(), Error> {
        atomic::write(&config_path(&self.data, name), config.as_bytes(), 0o600)
            .map_err(|e| Error::Io(format!("storing {name}: {e}")))
    }

    /// Stores the security document and, when given, the trusted clients with it, as one
    /// change: the clients file is written first and put back as it was if the document then
    /// cannot be stored, so the two never disagree; the clients in force change last.
    pub fn store_security(&mut self, config: &str, clients: Option<Vec<TrustedClient>>) -> Result<(), Error> {
        let Some(clients) = clients else { return self.store_config("security", config) };
        clients::store(&self.data, &clients).map_err(|e| Error::Io(format!("storing the trusted clients: {e}")))?;
        if let Err(e) = self.store_config("security", config) {
            if let Err(undo) = clients::store(&self.data, &self.trusted_clients) {
                crate::log::warn(format_args!("putting the trusted clients back after a failed store: {undo}"));
            }
            return Err(e);
        }
        self.trusted_clients = clients;
        Ok(())
    }
}
