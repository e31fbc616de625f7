//! The core: state, background work and errors shared by every surface. No HTTP here; JSON
//! only as the format of steward's own files (settings, plans, keys, manifests, the backup
//! index), which some surfaces serve as they are stored (a plan's config, the storage
//! document). A surface's own wire shapes live in its `api/` module.

pub mod apps;
pub mod backup;
pub mod certs;
pub mod clients;
pub mod configs;
pub mod cron;
pub mod debug;
pub mod info;
pub mod jobs;
pub mod keys;
pub mod license;
pub mod logs;
pub mod netapply;
pub mod netconfig;
pub mod netrender;
pub mod package;
pub mod passphrase;
pub mod planrun;
pub mod plans;
pub mod power;
pub mod reset;
pub mod restore;
pub mod settings;
pub mod storage;
pub mod targuard;
pub mod token;
pub mod trial;
pub mod update;
pub mod upload;

use std::path::PathBuf;

use crate::board::Board;
use crate::store::audit::Audit;
use crate::system::Root;

pub struct Engine {
    pub board: Board,
    pub root: Root,
    pub data: PathBuf,
    pub tokens: token::Tokens,
    pub audit: Audit,
    pub jobs: jobs::Jobs,
    /// The listener's certificate, when serving TLS; replaced by a certificate upload.
    pub tls: Option<crate::tls::TlsSlot>,
    /// Set by STOP to end the running backup.
    backup_cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by a restore worker when it has replaced state on disk.
    restored: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A restore is running (one at a time).
    pub restoring: std::sync::Arc<std::sync::atomic::AtomicBool>,
    health_cache: Option<(std::time::Instant, info::Health)>,
    /// The version, changelog and build files as last read (see `info_file`).
    info_cache: std::cell::RefCell<Vec<info::CachedInfo>>,
    /// Backup plans, their schedule and the operation history.
    pub plans: planrun::Runner,
    /// Outcomes of network apply hooks, for the request loop to answer (and roll back).
    net_applied: (std::sync::mpsc::Sender<netconfig::Applied>, std::sync::mpsc::Receiver<netconfig::Applied>),
    /// TLS client certificates that stand in for a token, with their capabilities.
    pub trusted_clients: Vec<clients::TrustedClient>,
    /// Named API keys with capabilities.
    pub keys: keys::Keys,
    /// When a pending network change rolls back: `None` until read from disk.
    net_deadline: Option<Option<i64>>,
    /// The DHCP lease's renewal on the netlink backend.
    dhcp: netapply::Renewal,
    /// Until when the TPM device, having failed to answer, is not asked (unix ms).
    tpm_quiet_until: std::cell::Cell<i64>,
}

/// Why an operation did not happen. Each surface maps every variant to its own status and
/// wording in one exhaustive match.
#[derive(Debug, Clone)]
pub enum Error {
    /// The thing asked for does not exist (a missing file, an absent setting).
    NotFound(&'static str),
    /// The request itself is wrong; the text says how.
    #[allow(dead_code)] // raised by the settings and job routes
    Invalid(String),
    /// The request clashes with the current state (a name taken, work already finished).
    Conflict(String),
    /// The acting principal's capabilities do not cover an effect the request would have
    /// (a command to run, steward's own state to restore); the text names the capability.
    Forbidden(String),
    /// Every worker is busy and the queue is full (`crate::workers`): try again later.
    Busy(String),
    /// The machine failed us (I/O); not the client's fault.
    Io(String),
}

impl Error {
    /// The text for an answer or a log line.
    pub fn message(&self) -> String {
        match self {
            Error::NotFound(what) => format!("{what} not found"),
            Error::Invalid(m) | Error::Conflict(m) | Error::Forbidden(m) | Error::Busy(m) | Error::Io(m) => m.clone(),
        }
    }
}

impl Engine {
    /// Where uploads are spooled while they arrive: inside the data dir, so a finished upload
    /// can be renamed into place on the same filesystem.
    pub fn upload_dir(&self) -> PathBuf {
        self.data.join("uploads")
    }

    pub fn open(board: Board, root: Root, data: PathBuf) -> Result<(Engine, Option<String>), String> {
        settings::check_board_defaults(&board)?;
        crate::store::atomic::ensure_private_dir(&data).map_err(|e| format!("data dir {}: {e}", data.display()))?;
        // A restore cut short by a stop is finished (or its staging dropped) before any state
        // is read.
        let app_paths: Vec<String> = board
            .backup
            .paths
            .iter()
            .chain(board.applications.iter().flat_map(|a| a.paths.iter().chain(&a.cache)))
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect();
        restore::recover(&data, &root, &app_paths)?;
        let (tokens, passphrase) =
            token::Tokens::load(&data, board.first_run_words()).map_err(|e| format!("token store: {e}"))?;
        crate::store::atomic::ensure_private_dir(&data.join("uploads")).map_err(|e| format!("uploads dir: {e}"))?;
        // Parts left by a crash mid-upload are garbage: nothing refers to them.
        if let Ok(entries) = std::fs::read_dir(data.join("uploads")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        // A temp file left by a write a crash cut short: the real file is whole (old or new).
        if let Ok(entries) = std::fs::read_dir(&data) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let jobs = jobs::Jobs::open(data.join("jobs")).map_err(|e| format!("jobs dir: {e}"))?;
        // No job runs at start, so a package left by an interrupted update is garbage.
        let _ = std::fs::remove_file(data.join("jobs/update.pkg"));
        let audit = Audit::open(&data.join("audit.log")).map_err(|e| format!("audit log: {e}"))?;
        let plans = planrun::Runner::open(&data, crate::time::unix_millis())?;
        let trusted_clients = clients::load(&data);
        let keys_dir = data.clone();
        // A backup cut short by a stop left a partial file; its operation now reads ERROR.
        for plan in &plans.plans {
            if let Ok(entries) = std::fs::read_dir(root.path(&plan.destination)) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with('.') && name.ends_with(".partial") {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        Ok((
            Engine {
                board,
                root,
                data,
                tokens,
                audit,
                jobs,
                tls: None,
                backup_cancel: Default::default(),
                restored: Default::default(),
                restoring: Default::default(),
                health_cache: None,
                info_cache: Default::default(),
                plans,
                net_applied: std::sync::mpsc::channel(),
                trusted_clients,
                keys: keys::Keys::load(&keys_dir),
                net_deadline: None,
                dhcp: Default::default(),
                tpm_quiet_until: Default::default(),
            },
            passphrase,
        ))
    }
}
