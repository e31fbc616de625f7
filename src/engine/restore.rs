//! Restoring a backup: the archive is checked whole before anything is written, extracted
//! into staging next to each destination, then swapped in. Runs on a worker thread, which
//! also swaps the listener's certificate; the request thread reloads the token before the
//! next request (see `Engine::reload_if_restored`).

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Engine;
use super::backup::STATE_FILES;
use crate::store::{atomic, bulk};
use crate::system::Root;

/// Everything the worker needs, owned.
pub struct Plan {
    data: PathBuf,
    root: Root,
    app_paths: Vec<String>,
    restored: Arc<AtomicBool>,
    /// Steward's own files may be restored (a system restore, not an application's).
    with_state: bool,
    /// The listener's certificate, swapped by the worker itself: the next handshake must
    /// already use the restored certificate, before any request could trigger a reload.
    tls: Option<crate::server::tls::TlsSlot>,
    board: String,
}

/// Where an archive entry goes.
enum Target {
    State(&'static str),
    App { path_index: usize, rest: PathBuf },
}

impl Engine {
    /// A whole-system restore: steward's state and the board's backup paths.
    pub fn restore_plan(&self) -> Plan {
        self.selective_restore_plan(true, &[])
    }

    /// A restore limited to one application's paths.
    pub fn app_restore_plan(&self, app: &crate::board::Application) -> Plan {
        Plan {
            data: self.data.clone(),
            root: self.root.clone(),
            app_paths: app.paths.iter().chain(&app.cache).map(|p| p.trim_start_matches('/').to_owned()).collect(),
            restored: Arc::new(AtomicBool::new(false)),
            with_state: false,
            tls: None,
            board: self.board.name.clone(),
        }
    }

    /// A restore of a plan's backup: steward's state (with the board's backup paths) if the
    /// plan held it, and the named applications' paths.
    pub fn selective_restore_plan(&self, state: bool, apps: &[String]) -> Plan {
        let mut app_paths: Vec<String> = Vec::new();
        if state {
            app_paths.extend(self.board.backup.paths.iter().cloned());
        }
        for app in self.board.applications.iter().filter(|a| apps.contains(&a.name)) {
            app_paths.extend(app.paths.iter().filter(|p| !app_paths.contains(p)).cloned().collect::<Vec<_>>());
        }
        Plan {
            data: self.data.clone(),
            root: self.root.clone(),
            app_paths: app_paths.iter().map(|p| p.trim_start_matches('/').to_owned()).collect(),
            restored: self.restored.clone(),
            with_state: state,
            tls: if state { self.tls.clone() } else { None },
            board: self.board.name.clone(),
        }
    }

    /// After a restore, the token hash on disk is new: load it.
    pub fn reload_if_restored(&mut self) {
        if !self.restored.swap(false, Ordering::AcqRel) {
            return;
        }
        match super::token::Tokens::load(&self.data, None) {
            Ok((tokens, _)) => self.tokens = tokens,
            Err(e) => crate::log::warn(format_args!("after restore, token: {e}")),
        }
    }
}

/// More entries than any appliance's state has; a flood of tiny entries is refused.
const MAX_RESTORE_ENTRIES: usize = 20_000;

/// The archive as a tar stream: plain, or gzip-compressed (IncusOS backups are tar.gz).
fn open_archive(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    use std::io::Seek;
    file.rewind().map_err(|e| bad(e.to_string()))?;
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    Ok(tar::Archive::new(reader))
}

fn bad(msg: impl Into<String>) -> String {
    format!("Unable to extract backup archive: {}", msg.into())
}

/// Checks the archive and restores it; on any error before the swap nothing has changed.
pub fn run(plan: &Plan, archive: &Path) -> Result<(), String> {
    let entries = check(plan, archive)?;
    let staging = plan.data.join(STAGING);
    clean(&plan.data, &plan.root, &plan.app_paths);
    let app_staging: Vec<PathBuf> = plan.app_paths.iter().map(|p| staged_dir(&plan.root, p)).collect();
    if let Err(e) = stage(archive, &entries, &staging, &app_staging) {
        clean(&plan.data, &plan.root, &plan.app_paths);
        return Err(e);
    }
    // Everything is staged and fsynced: from the journal on, the restore is rolled forward
    // even across a crash (`recover` at the next start), so the box ends all-new, never mixed.
    let journal: String = plan.app_paths.iter().map(|p| format!("{p}\n")).collect();
    atomic::write(&plan.data.join(JOURNAL), journal.as_bytes(), 0o600).map_err(|e| format!("restore journal: {e}"))?;
    roll_forward(&plan.data, &plan.root, &plan.app_paths)?;
    if let Some(slot) = &plan.tls {
        match crate::server::tls::load_or_create(&plan.data) {
            Ok(cfg) => *slot.lock().unwrap_or_else(|e| e.into_inner()) = cfg,
            Err(e) => crate::log::warn(format_args!("after restore, certificate: {e}")),
        }
    }
    plan.restored.store(true, Ordering::Release);
    Ok(())
}

const STAGING: &str = "restore-staging";
const JOURNAL: &str = "restore-journal";

fn staged_dir(root: &Root, app: &str) -> PathBuf {
    root.path(&format!("/{app}.steward-restore"))
}

/// Removes staging left by a restore that never reached its journal.
fn clean(data: &Path, root: &Root, app_paths: &[String]) {
    let _ = std::fs::remove_dir_all(data.join(STAGING));
    for app in app_paths {
        let _ = std::fs::remove_dir_all(staged_dir(root, app));
    }
}

/// At start: finishes a restore that was journaled when the process stopped, or throws away
/// one that was not. Returns true if a restore was completed.
pub fn recover(data: &Path, root: &Root, configured_apps: &[String]) -> Result<bool, String> {
    match std::fs::read_to_string(data.join(JOURNAL)) {
        Ok(text) => {
            let apps: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
            roll_forward(data, root, &apps)?;
            crate::log::info(format_args!("completed a restore interrupted by a stop"));
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            clean(data, root, configured_apps);
            Ok(false)
        }
        Err(e) => Err(format!("restore journal: {e}")),
    }
}

/// Moves staged content into place; every step can run again after a crash. Each
/// application directory takes two renames (the old one is kept until the new one is in);
/// each state file one rename within the data dir.
fn roll_forward(data: &Path, root: &Root, app_paths: &[String]) -> Result<(), String> {
    for app in app_paths {
        let staged = staged_dir(root, app);
        let target = root.path(&format!("/{app}"));
        let old = root.path(&format!("/{app}.steward-old"));
        if staged.exists() {
            if target.exists() {
                let _ = std::fs::remove_dir_all(&old);
                std::fs::rename(&target, &old).map_err(|e| format!("restoring {app}: {e}"))?;
            }
            std::fs::rename(&staged, &target).map_err(|e| format!("restoring {app}: {e}"))?;
            if let Some(parent) = target.parent() {
                atomic::sync_dir(parent).map_err(|e| format!("restoring {app}: {e}"))?;
            }
        }
        let _ = std::fs::remove_dir_all(&old);
    }
    let staging = data.join(STAGING);
    for name in STATE_FILES {
        let staged = staging.join(name);
        if !staged.exists() {
            continue;
        }
        let dest = data.join(name);
        let dir = dest.parent().unwrap_or(data);
        atomic::ensure_private_dir(dir).map_err(|e| format!("restoring {name}: {e}"))?;
        let mode = if name.ends_with(".pem") && !name.contains("key") { 0o644 } else { 0o600 };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .and_then(|()| std::fs::rename(&staged, &dest))
            .and_then(|()| atomic::sync_dir(dir))
            .map_err(|e| format!("restoring {name}: {e}"))?;
    }
    atomic::remove(&data.join(JOURNAL)).map_err(|e| format!("restore journal: {e}"))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// Format 1, made on a board with this board's name (a profile defines what a backup
/// holds, so another board's archive would restore the wrong things).
fn check_manifest(text: &str, board: &str) -> Result<(), String> {
    use miniserde::json::{Number, Value};
    let Ok(Value::Object(m)) = miniserde::json::from_str::<Value>(text) else {
        return Err(bad("the backup manifest is not JSON"));
    };
    if !matches!(m.get("format"), Some(Value::Number(Number::U64(1)))) {
        return Err(bad("unsupported backup manifest format"));
    }
    match m.get("board") {
        Some(Value::String(b)) if b == board => Ok(()),
        Some(Value::String(b)) => Err(bad(format!("the backup was made on board {b:?}, this is {board:?}"))),
        _ => Err(bad("the backup manifest names no board")),
    }
}

fn target_of(plan: &Plan, name: &Path) -> Result<Target, String> {
    if !name.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad(format!("entry {} is not a plain relative path", name.display())));
    }
    if let (true, Ok(rest)) = (plan.with_state, name.strip_prefix("steward")) {
        let rest = rest.to_string_lossy();
        return STATE_FILES
            .iter()
            .find(|f| **f == rest)
            .map(|f| Target::State(f))
            .ok_or_else(|| bad(format!("unknown steward file {}", name.display())));
    }
    for (i, app) in plan.app_paths.iter().enumerate() {
        if let Ok(rest) = name.strip_prefix(app) {
            return Ok(Target::App { path_index: i, rest: rest.to_path_buf() });
        }
    }
    Err(bad(format!("{} is not something this board backs up", name.display())))
}

/// First pass: the manifest comes first, every entry is a regular file or directory with a
/// path this board backs up. Returns the entries' targets in archive order.
fn check(plan: &Plan, archive: &Path) -> Result<Vec<Option<Target>>, String> {
    let free = rustix::fs::statvfs(&plan.data).map(|s| s.f_bavail * s.f_frsize).unwrap_or(u64::MAX);
    check_entries(plan, open_archive(archive)?, free)
}

/// The first pass over an archive read from anywhere (the fuzz target feeds it bytes): how
/// many entries pass, or why it is refused. Nothing is written.
pub fn validate(reader: impl Read, board: &str, app_paths: &[&str], with_state: bool) -> Result<usize, String> {
    let plan = Plan {
        data: PathBuf::new(),
        root: Root::new(""),
        app_paths: app_paths.iter().map(|p| (*p).to_owned()).collect(),
        restored: Arc::new(AtomicBool::new(false)),
        with_state,
        tls: None,
        board: board.to_owned(),
    };
    check_entries(&plan, tar::Archive::new(reader), u64::MAX).map(|t| t.len())
}

fn check_entries<R: Read>(plan: &Plan, mut tar: tar::Archive<R>, free: u64) -> Result<Vec<Option<Target>>, String> {
    let mut targets = Vec::new();
    let mut total: u64 = 0;
    for (i, entry) in tar.entries().map_err(|e| bad(e.to_string()))?.enumerate() {
        if i >= MAX_RESTORE_ENTRIES {
            return Err(bad(format!("more than {MAX_RESTORE_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        // Staging needs the room before the old state can be let go.
        total = total.saturating_add(entry.size());
        if total > free {
            return Err(bad("the archive is larger than the free space to restore it"));
        }
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if i == 0 {
            if name != Path::new("steward-backup.json") {
                return Err(bad("not a steward backup (no manifest first)"));
            }
            let mut text = String::new();
            entry.by_ref().take(1024 * 1024).read_to_string(&mut text).map_err(|e| bad(e.to_string()))?;
            check_manifest(&text, &plan.board)?;
            targets.push(None);
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            target_of(plan, &name)?;
            targets.push(None);
        } else if kind.is_file() {
            targets.push(Some(target_of(plan, &name)?));
        } else {
            return Err(bad(format!("{} is a link or special file", name.display())));
        }
    }
    if targets.is_empty() {
        return Err(bad("the archive is empty"));
    }
    Ok(targets)
}

fn stage(archive: &Path, targets: &[Option<Target>], staging: &Path, app_staging: &[PathBuf]) -> Result<(), String> {
    let mut tar = open_archive(archive)?;
    let mut buf = vec![0u8; bulk::COPY_BUFFER];
    for (entry, target) in tar.entries().map_err(|e| bad(e.to_string()))?.zip(targets) {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let dest = match target {
            None => continue,
            Some(Target::State(name)) => staging.join(name),
            Some(Target::App { path_index, rest }) => app_staging[*path_index].join(rest),
        };
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| bad(format!("staging: {e}")))?;
        }
        let file = std::fs::File::create(&dest).map_err(|e| bad(format!("staging: {e}")))?;
        let mut out = bulk::EarlyWriteback::new(file);
        let size = entry.size();
        bulk::copy_exact(&mut entry, &mut out, size, &mut buf).map_err(|e| bad(format!("staging: {e}")))?;
        out.sync().map_err(|e| bad(format!("staging: {e}")))?;
    }
    Ok(())
}
