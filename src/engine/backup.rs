//! Backups: one tar of steward's own state and the board's application data, written to the
//! data dir through a temp file and renamed into place, hashed while it is written.
//!
//! Layout: `steward-backup.json` first (format, steward version, board, created time, every
//! entry with its size), then `steward/…` (token hash, settings, storage, license, TLS
//! certificate and key) and the application paths without their leading `/`, and last
//! `steward-index.json`: every entry before it with its type, size and sha256, known only
//! once the data has been written. A restore refuses an archive that differs from its
//! index in any way, so a truncated or corrupted archive is never taken for a whole one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use miniserde::{Serialize, json};

use super::Engine;
use super::jobs::{AlreadyRunning, Kind, Status};
use super::planrun::{JIDOTEKI_PLAN, STATE_CONTAINER};
use crate::store::{atomic, bulk, oplog};

/// What steward itself keeps, relative to the data dir.
pub const STATE_FILES: [&str; 6] = ["token", "settings.json", "storage.json", "license", "tls/cert.pem", "tls/key.pem"];
/// Left free on the data filesystem after the backup (as Jidoteki did).
const FREE_SPACE_MARGIN: u64 = 16 * 1024 * 1024;

#[derive(Serialize)]
pub struct Manifest {
    format: u32,
    steward: String,
    board: String,
    created: i64,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    path: String,
    size: u64,
}

/// The archive's last entry.
pub const INDEX_NAME: &str = "steward-index.json";
pub const MANIFEST_NAME: &str = "steward-backup.json";

#[derive(Serialize)]
struct Index {
    format: u32,
    entries: Vec<IndexEntry>,
}

#[derive(Serialize)]
struct IndexEntry {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    sha256: String,
}

pub struct Done {
    pub filesize: u64,
    pub sha256: String,
}

pub enum StartError {
    AlreadyRunning,
    NoSpace(String),
    Io(String),
}

impl Engine {
    fn backup_dir(&self) -> PathBuf {
        self.data.join("backup")
    }

    pub fn backup_file(&self) -> PathBuf {
        self.backup_dir().join("backup.tar")
    }

    /// (archive name, source file, size) for everything a backup holds, walked now.
    fn backup_sources(&self) -> io::Result<Vec<(String, PathBuf, u64)>> {
        sources(&self.data, &self.root, &self.board, true, &[])
    }

    /// The same backup, gzip-compressed and streamed as it is made (IncusOS `:backup`).
    pub fn stream_backup<W: Write + Send + 'static>(
        &self,
        out: W,
        finish: impl FnOnce(W) -> io::Result<()> + Send + 'static,
    ) -> Result<(), String> {
        let sources = self.backup_sources().map_err(|e| format!("reading what to back up: {e}"))?;
        self.stream_sources(sources, out, finish)
    }

    /// One application's backup (IncusOS `/1.0/applications/{name}/:backup`), streamed.
    pub fn stream_app_backup<W: Write + Send + 'static>(
        &self,
        app: &crate::board::Application,
        complete: bool,
        out: W,
        finish: impl FnOnce(W) -> io::Result<()> + Send + 'static,
    ) -> Result<(), String> {
        let mut sources = Vec::new();
        let dirs = app.paths.iter().chain(if complete { app.cache.iter() } else { [].iter() });
        for dir in dirs {
            walk(&self.root.path(dir), dir.trim_start_matches('/'), &mut sources)
                .map_err(|e| format!("reading what to back up: {e}"))?;
        }
        self.stream_sources(sources, out, finish)
    }

    fn stream_sources<W: Write + Send + 'static>(
        &self,
        sources: Vec<(String, PathBuf, u64)>,
        out: W,
        finish: impl FnOnce(W) -> io::Result<()> + Send + 'static,
    ) -> Result<(), String> {
        let manifest = self.backup_manifest(&sources);
        // The producer's slot is held by `out` (a stream's writer).
        crate::workers::detached("backup-stream", move || {
            let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            let result = archive_to(gz, &manifest, &sources, &Arc::new(AtomicBool::new(false)))
                .and_then(|(gz, _)| gz.finish())
                .and_then(finish);
            if let Err(e) = result {
                crate::log::warn(format_args!("streamed backup stopped: {e}"));
            }
        })
        .map_err(|e| format!("cannot start the backup: {e}"))
    }

    fn backup_manifest(&self, sources: &[(String, PathBuf, u64)]) -> Manifest {
        manifest(&self.board.name, sources)
    }

    pub fn start_backup(&mut self) -> Result<(), StartError> {
        if self.jobs.state(Kind::Backup).is_some_and(|s| s.status == Status::Running) {
            return Err(StartError::AlreadyRunning);
        }
        let sources = self.backup_sources().map_err(|e| StartError::Io(format!("reading what to back up: {e}")))?;
        // Each entry costs a 512-byte header plus padding to 512; the manifest is small.
        let estimate: u64 = sources.iter().map(|(_, _, size)| 1024 + size.div_ceil(512) * 512).sum::<u64>() + 64 * 1024;
        let dir = self.backup_dir();
        atomic::ensure_private_dir(&dir).map_err(|e| StartError::Io(e.to_string()))?;
        let free = rustix::fs::statvfs(&dir).map(|s| s.f_bavail * s.f_frsize).unwrap_or(u64::MAX);
        if estimate + FREE_SPACE_MARGIN > free {
            return Err(StartError::NoSpace(format!(
                "Not enough free space for the backup: needs about {} bytes, {} available",
                estimate + FREE_SPACE_MARGIN,
                free
            )));
        }
        let manifest = self.backup_manifest(&sources);
        let cancel = Arc::new(AtomicBool::new(false));
        let target = self.backup_file();
        // The same backup is an operation in the history every surface lists (GetOperations,
        // /1.0/operations), with its outcome; the job below keeps the Jidoteki status and log.
        let mut tracked = self
            .plans
            .track(oplog::Kind::Backup, JIDOTEKI_PLAN, cancel.clone())
            .map_err(|e| StartError::Io(e.message()))?;
        self.backup_cancel = cancel.clone();
        let started = self.jobs.start(Kind::Backup, move |p| {
            let log = |line: &str| {
                p.log(line);
                tracked.log(line);
            };
            log("Validating backup file size");
            log("Starting backup");
            let tmp = dir.join("backup.tar.tmp");
            match write_archive(&tmp, &manifest, &sources, &cancel) {
                Ok(done) => {
                    let finish = std::fs::rename(&tmp, &target).and_then(|()| atomic::sync_dir(&dir)).and_then(|()| {
                        let record = crate::json::Object::new()
                            .num("filesize", done.filesize)
                            .str("sha256", &done.sha256)
                            .finish();
                        atomic::write(&dir.join("backup.json"), record.as_bytes(), 0o600)
                    });
                    match finish {
                        Ok(()) => {
                            log(&format!(
                                "Created file: backup.tar - size: {} - hash: {}",
                                crate::system::health::human_size(done.filesize),
                                done.sha256
                            ));
                            log("Backup complete");
                            p.succeed(100);
                            let artifact = oplog::Artifact {
                                path: target.display().to_string(),
                                size: done.filesize,
                                sha256: done.sha256,
                                containers: vec![STATE_CONTAINER.to_owned()],
                                deleted_ms: 0,
                            };
                            tracked.end(oplog::Status::Success, "", Some(artifact));
                        }
                        Err(e) => {
                            let message = format!("cannot store the backup: {e}");
                            p.fail(None, &message);
                            tracked.end(oplog::Status::Error, &message, None);
                        }
                    }
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    let (status, message) = if cancel.load(Ordering::Relaxed) {
                        (oplog::Status::UserCancelled, "Backup stopped".to_owned())
                    } else {
                        (oplog::Status::Error, format!("backup failed: {e}"))
                    };
                    p.fail(None, &message);
                    tracked.end(status, &message, None);
                }
            }
        });
        started.map_err(|AlreadyRunning| StartError::AlreadyRunning)
    }

    /// STOP: cancels a running backup, or deletes the finished one. False if there was none.
    pub fn stop_backup(&mut self) -> bool {
        match self.jobs.state(Kind::Backup).map(|s| s.status) {
            Some(Status::Running) => {
                self.backup_cancel.store(true, Ordering::Relaxed);
                true
            }
            Some(_) => {
                let _ = atomic::remove(&self.backup_file());
                let _ = atomic::remove(&self.backup_dir().join("backup.json"));
                self.plans.mark_deleted(JIDOTEKI_PLAN);
                crate::engine::jobs::append_log(&self.data.join("jobs"), Kind::Backup, "Deleting backup archive");
                let _ = self.jobs.clear(Kind::Backup);
                true
            }
            None => false,
        }
    }

    /// Size and hash of the finished backup.
    pub fn backup_result(&self) -> Option<Done> {
        let text = std::fs::read_to_string(self.backup_dir().join("backup.json")).ok()?;
        let value: miniserde::json::Value = json::from_str(&text).ok()?;
        let miniserde::json::Value::Object(map) = value else { return None };
        let filesize = match map.get("filesize")? {
            miniserde::json::Value::Number(miniserde::json::Number::U64(n)) => *n,
            _ => return None,
        };
        let sha256 = match map.get("sha256")? {
            miniserde::json::Value::String(s) => s.clone(),
            _ => return None,
        };
        Some(Done { filesize, sha256 })
    }
}

/// What a backup of steward's state (its files and the board's backup paths) and of the
/// named applications' data holds, walked now; each path once.
pub fn sources(
    data: &Path,
    root: &crate::system::Root,
    board: &crate::board::Board,
    state: bool,
    apps: &[String],
) -> io::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut dirs: Vec<&String> = Vec::new();
    if state {
        for name in STATE_FILES {
            let path = data.join(name);
            if let Ok(meta) = std::fs::metadata(&path) {
                out.push((format!("steward/{name}"), path, meta.len()));
            }
        }
        dirs.extend(&board.backup.paths);
    }
    for app in board.applications.iter().filter(|a| apps.contains(&a.name)) {
        dirs.extend(app.paths.iter().filter(|p| !board.backup.paths.contains(p) || !state));
    }
    dirs.dedup();
    for dir in dirs {
        walk(&root.path(dir), dir.trim_start_matches('/'), &mut out)?;
    }
    Ok(out)
}

pub fn manifest(board: &str, sources: &[(String, PathBuf, u64)]) -> Manifest {
    Manifest {
        format: 1,
        steward: env!("CARGO_PKG_VERSION").to_owned(),
        board: board.to_owned(),
        created: crate::time::unix_seconds(std::time::SystemTime::now()),
        entries: sources.iter().map(|(name, _, size)| Entry { path: name.clone(), size: *size }).collect(),
    }
}

/// Regular files and directories under `dir`, in a stable order; symlinks and special files
/// are left out (a backup restores data, not links that could point anywhere).
fn walk(dir: &Path, name: &str, out: &mut Vec<(String, PathBuf, u64)>) -> io::Result<()> {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<_, _>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_type = entry.file_type()?;
        let child = format!("{name}/{}", entry.file_name().to_string_lossy());
        if file_type.is_dir() {
            walk(&entry.path(), &child, out)?;
        } else if file_type.is_file() {
            out.push((child, entry.path(), entry.metadata()?.len()));
        }
    }
    Ok(())
}

/// Hashes what passes through (the whole archive, and the entry being written for the
/// index) and stops when the backup is cancelled.
struct Tee<W: Write> {
    out: W,
    hash: ring::digest::Context,
    entry: Option<ring::digest::Context>,
    written: u64,
    cancel: Arc<AtomicBool>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("backup stopped"));
        }
        let n = self.out.write(data)?;
        self.hash.update(&data[..n]);
        if let Some(entry) = &mut self.entry {
            entry.update(&data[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

pub fn write_archive(
    tmp: &Path,
    manifest: &Manifest,
    sources: &[(String, PathBuf, u64)],
    cancel: &Arc<AtomicBool>,
) -> io::Result<Done> {
    use std::os::unix::fs::OpenOptionsExt;
    // It holds the token hash and the TLS key: readable by steward only, wherever it is.
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(tmp)?;
    std::fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let out = io::BufWriter::with_capacity(bulk::COPY_BUFFER, bulk::EarlyWriteback::new(file));
    let (out, done) = archive_to(out, manifest, sources, cancel)?;
    out.into_inner().map_err(|e| e.into_error())?.sync()?;
    Ok(done)
}

/// Writes the backup tar into `out`, hashing it; the same entries whatever the destination.
fn archive_to<W: Write>(
    out: W,
    manifest: &Manifest,
    sources: &[(String, PathBuf, u64)],
    cancel: &Arc<AtomicBool>,
) -> io::Result<(W, Done)> {
    let sha256 = || ring::digest::Context::new(&ring::digest::SHA256);
    let tee = Tee { out, hash: sha256(), entry: None, written: 0, cancel: cancel.clone() };
    let mut tar = tar::Builder::new(tee);
    let manifest = json::to_string(manifest);
    let now = crate::time::unix_seconds(std::time::SystemTime::now()).max(0) as u64;
    let small_file = |len: usize| {
        let mut header = tar::Header::new_gnu();
        header.set_size(len as u64);
        header.set_mode(0o644);
        header.set_mtime(now);
        header
    };
    tar.append_data(&mut small_file(manifest.len()), MANIFEST_NAME, manifest.as_bytes())?;
    let mut index = Index {
        format: 1,
        entries: vec![IndexEntry {
            path: MANIFEST_NAME.into(),
            kind: "file",
            size: manifest.len() as u64,
            sha256: crate::hex::to_hex(ring::digest::digest(&ring::digest::SHA256, manifest.as_bytes()).as_ref()),
        }],
    };
    let mut buf = vec![0u8; bulk::COPY_BUFFER];
    for (name, path, size) in sources {
        let mut f = std::fs::File::open(path)?;
        let meta = f.metadata()?;
        if meta.len() < *size {
            return Err(io::Error::other(format!("{name} shrank while the backup ran")));
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        // The size the manifest promised: a file that grew is cut there, one that shrank
        // fails the backup rather than produce an archive that lies.
        header.set_size(*size);
        // The header goes through the tar crate (long names, checksum); the data is copied
        // here in large reads, which the crate's 8 KiB copy loop would split 32 times over.
        tar.append_data(&mut header, name, io::empty())?;
        tar.get_mut().entry = Some(sha256());
        bulk::copy_exact(&mut f, tar.get_mut(), *size, &mut buf).map_err(|e| match e.kind() {
            // The source ended early: it shrank. Anything else is the write (a full disk).
            io::ErrorKind::UnexpectedEof => io::Error::other(format!("{name}: {e} (it shrank while the backup ran)")),
            _ => io::Error::new(e.kind(), format!("writing the backup: {e}")),
        })?;
        let digest = tar.get_mut().entry.take().map(|c| c.finish()).expect("set above");
        index.entries.push(IndexEntry {
            path: name.clone(),
            kind: "file",
            size: *size,
            sha256: crate::hex::to_hex(digest.as_ref()),
        });
        let pad = (512 - (*size % 512) as usize) % 512;
        tar.get_mut().write_all(&[0u8; 512][..pad])?;
    }
    let index = json::to_string(&index);
    tar.append_data(&mut small_file(index.len()), INDEX_NAME, index.as_bytes())?;
    let Tee { out, hash, written, .. } = tar.into_inner()?;
    Ok((out, Done { filesize: written, sha256: crate::hex::to_hex(hash.finish().as_ref()) }))
}
