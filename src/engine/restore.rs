//! Restoring a backup: the archive is checked whole before anything is written, extracted
//! into staging next to each destination, then swapped in. Runs on a worker thread, which
//! also swaps the listener's certificate; the request thread reloads the token before the
//! next request (see `Engine::reload_if_restored`).

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::backup::{INDEX_NAME, MANIFEST_NAME, STATE_FILES};
use super::keys::{Cap, Principal};
use super::targuard::TarGuard;
use super::{Engine, Error};
use crate::limits::MAX_BACKUP_INDEX;
use crate::store::{atomic, bulk};
use crate::system::Root;

/// Everything the worker needs, owned.
pub struct Plan {
    data: PathBuf,
    root: Root,
    app_paths: Vec<String>,
    restored: Arc<AtomicBool>,
    /// Steward's own files belong in this restore (a system restore, not an application's).
    with_state: bool,
    /// The principal may restore them: the token hash, the TLS key and the settings are
    /// admin powers, so only `admin` restores them; `backups-manage` restores application
    /// data only, and an archive holding steward's state is refused for it.
    state_allowed: bool,
    /// The listener's certificate, swapped by the worker itself: the next handshake must
    /// already use the restored certificate, before any request could trigger a reload.
    tls: Option<crate::tls::TlsSlot>,
    board: String,
    /// What the staged state files are checked against, as the daemon checks them on load.
    storage_options: Vec<String>,
    vendor_key: Vec<u8>,
}

/// Where an archive entry goes.
enum Target {
    State(&'static str),
    App { path_index: usize, rest: PathBuf },
}

impl Engine {
    /// A whole-system restore: steward's state and the board's backup paths.
    pub fn restore_plan(&self, by: &Principal) -> Plan {
        self.selective_restore_plan(true, &[], by)
    }

    /// A restore limited to one application's paths.
    pub fn app_restore_plan(&self, app: &crate::board::Application) -> Plan {
        Plan {
            app_paths: app.paths.iter().chain(&app.cache).map(|p| p.trim_start_matches('/').to_owned()).collect(),
            restored: Arc::new(AtomicBool::new(false)),
            with_state: false,
            state_allowed: false,
            tls: None,
            ..self.selective_restore_plan(false, &[], &Principal::Admin)
        }
    }

    /// A restore of a plan's backup: steward's state (with the board's backup paths) if the
    /// plan held it, and the named applications' paths.
    pub fn selective_restore_plan(&self, state: bool, apps: &[String], by: &Principal) -> Plan {
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
            state_allowed: by.allows(Cap::Admin),
            tls: if state { self.tls.clone() } else { None },
            board: self.board.name.clone(),
            storage_options: self.board.storage.options.clone(),
            vendor_key: crate::hex::parse_hex(&self.board.update.signing_public_key, 32).unwrap_or_default(),
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

/// The archive's bytes as a tar stream: plain, or gzip-compressed (IncusOS backups are
/// tar.gz). Whichever it is, it must end where the archive says it ends.
enum Source<R: Read> {
    Plain(io::BufReader<R>),
    Gzip(flate2::bufread::GzDecoder<io::BufReader<R>>),
}

impl<R: Read> Source<R> {
    fn new(mut reader: io::BufReader<R>) -> Source<R> {
        use std::io::BufRead;
        let gzip = reader.fill_buf().is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
        if gzip { Source::Gzip(flate2::bufread::GzDecoder::new(reader)) } else { Source::Plain(reader) }
    }

    fn is_gzip(&self) -> bool {
        matches!(self, Source::Gzip(_))
    }

    /// After the tar's end: only zero blocks may follow, the gzip stream must end with its
    /// CRC32 and length (checked by the decoder when it reaches its end), and nothing may
    /// follow the gzip stream. A truncated or bit-flipped archive fails here at the latest.
    fn finish(mut self) -> Result<(), Error> {
        let mut buf = [0u8; 8192];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
                Ok(_) => return Err(bad("data follows the end of the tar archive")),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(format!("the compressed stream is damaged: {e}"))),
            }
        }
        if let Source::Gzip(gz) = self {
            use std::io::BufRead;
            let mut rest = gz.into_inner();
            if !rest.fill_buf().map_err(|e| bad(e.to_string()))?.is_empty() {
                return Err(bad("data follows the end of the gzip stream"));
            }
        }
        Ok(())
    }
}

/// A plain tar can skip entry data by seeking: the first pass then reads only headers.
impl<R: Read + io::Seek> io::Seek for Source<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match self {
            Source::Plain(r) => r.seek(pos),
            Source::Gzip(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "a gzip stream cannot seek")),
        }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(g) => g.read(buf),
        }
    }
}

type Tar<R> = tar::Archive<TarGuard<Source<R>>>;

/// The tar reader over the archive, and whether the archive is gzip-compressed.
fn open_reader<R: Read>(reader: R) -> (Tar<R>, bool) {
    let source = Source::new(io::BufReader::with_capacity(64 * 1024, reader));
    let gzip = source.is_gzip();
    (tar::Archive::new(TarGuard::new(source)), gzip)
}

fn open_archive(path: &Path) -> Result<(Tar<std::fs::File>, bool), Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("reading the archive: {e}")))?;
    Ok(open_reader(file))
}

fn finish_archive<R: Read>(tar: Tar<R>) -> Result<(), Error> {
    tar.into_inner().into_inner().finish()
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("Unable to extract backup archive: {}", msg.into()))
}

/// Checks the archive and restores it; on any error before the swap nothing has changed.
pub fn run(plan: &Plan, archive: &Path) -> Result<(), Error> {
    let checked = check(plan, archive)?;
    let staging = plan.data.join(STAGING);
    clean(&plan.data, &plan.root, &plan.app_paths);
    let app_staging: Vec<PathBuf> = plan.app_paths.iter().map(|p| staged_dir(&plan.root, p)).collect();
    if let Err(e) = stage(archive, &checked, &staging, &app_staging).and_then(|()| check_staged_state(plan, &staging)) {
        clean(&plan.data, &plan.root, &plan.app_paths);
        return Err(e);
    }
    // Everything is staged, proved against the index and fsynced: from the journal on, the
    // restore is rolled forward even across a crash (`recover` at the next start), so the
    // box ends all-new, never mixed.
    let journal: String = plan.app_paths.iter().map(|p| format!("{p}\n")).collect();
    atomic::write(&plan.data.join(JOURNAL), journal.as_bytes(), 0o600)
        .map_err(|e| Error::Io(format!("restore journal: {e}")))?;
    roll_forward(&plan.data, &plan.root, &plan.app_paths).map_err(Error::Io)?;
    if let Some(slot) = &plan.tls {
        match crate::store::certfiles::load_or_create(&plan.data) {
            Ok(cfg) => *slot.lock().unwrap_or_else(|e| e.into_inner()) = cfg,
            Err(e) => crate::log::warn(format_args!("after restore, certificate: {e}")),
        }
    }
    plan.restored.store(true, Ordering::Release);
    Ok(())
}

/// Each staged state file passes the check the daemon applies when it loads that file, so a
/// restore can never leave the box unable to start (or serving without its API).
fn check_staged_state(plan: &Plan, staging: &Path) -> Result<(), Error> {
    let staged = |name: &str| -> Result<Option<Vec<u8>>, Error> {
        match std::fs::read(staging.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(format!("reading the staged {name}: {e}"))),
        }
    };
    if let Some(token) = staged("token")? {
        super::token::check_stored_hash(&token).map_err(|e| bad(format!("steward/token: {e}")))?;
    }
    if let Some(text) = staged("settings.json")? {
        super::settings::parse_network(&text).map_err(|e| bad(format!("steward/settings.json: {}", e.message())))?;
    }
    if let Some(text) = staged("storage.json")? {
        super::settings::parse_storage(&text, &plan.storage_options)
            .map_err(|e| bad(format!("steward/storage.json: {}", e.message())))?;
    }
    if let Some(text) = staged("license")? {
        super::license::verify(&text, &plan.vendor_key).map_err(|e| bad(format!("steward/license: {e}")))?;
    }
    let (cert, key) = (staged("tls/cert.pem")?, staged("tls/key.pem")?);
    if cert.is_some() || key.is_some() {
        let live = |name: &str| std::fs::read(plan.data.join(name)).unwrap_or_default();
        let cert = cert.unwrap_or_else(|| live("tls/cert.pem"));
        let key = key.unwrap_or_else(|| live("tls/key.pem"));
        crate::tls::from_pem(&cert, &key).map_err(|e| bad(format!("steward/tls: {e}")))?;
    }
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
fn check_manifest(text: &str, board: &str) -> Result<(), Error> {
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

fn target_of(plan: &Plan, name: &Path) -> Result<Target, Error> {
    if !name.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad(format!("entry {} is not a plain relative path", name.display())));
    }
    if let (true, Ok(rest)) = (plan.with_state, name.strip_prefix("steward")) {
        if !plan.state_allowed {
            return Err(Error::Forbidden(format!(
                "the archive holds steward's own state ({}); restoring it needs the admin capability",
                name.display()
            )));
        }
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

/// One entry as the archive's index describes it.
#[derive(Debug, PartialEq, Eq)]
struct Indexed {
    path: PathBuf,
    dir: bool,
    size: u64,
    sha256: Option<[u8; 32]>,
}

/// What the first pass proved of the archive: each entry's target, and what its data must
/// hash to, in archive order (the index itself is not among them).
struct Checked {
    targets: Vec<Option<Target>>,
    index: Vec<Indexed>,
}

/// First pass: the manifest comes first and the index last, every entry between is a
/// regular file or directory with a path this board backs up, and the entries are exactly
/// those the index lists (paths, types and sizes; the digests are proved while staging).
fn check(plan: &Plan, archive: &Path) -> Result<Checked, Error> {
    let free = rustix::fs::statvfs(&plan.data).map(|s| s.f_bavail * s.f_frsize).unwrap_or(u64::MAX);
    check_tar(plan, open_archive(archive)?, free)
}

/// A plain tar's data is skipped by seeking (the second pass reads it, and proves it
/// against the index); a gzip stream has to be read through.
fn check_tar<R: Read + io::Seek>(plan: &Plan, (mut tar, gzip): (Tar<R>, bool), free: u64) -> Result<Checked, Error> {
    let checked = if gzip {
        check_entries(plan, tar.entries().map_err(|e| bad(e.to_string()))?, free)?
    } else {
        check_entries(plan, tar.entries_with_seek().map_err(|e| bad(e.to_string()))?, free)?
    };
    finish_archive(tar)?;
    Ok(checked)
}

/// The first pass over an archive's bytes (the fuzz target feeds it any): how many entries
/// pass, or why it is refused. Nothing is written.
pub fn validate(data: &[u8], board: &str, app_paths: &[&str], with_state: bool) -> Result<usize, String> {
    let plan = Plan {
        data: PathBuf::new(),
        root: Root::new(""),
        app_paths: app_paths.iter().map(|p| (*p).to_owned()).collect(),
        restored: Arc::new(AtomicBool::new(false)),
        with_state,
        state_allowed: true,
        tls: None,
        board: board.to_owned(),
        storage_options: Vec::new(),
        vendor_key: Vec::new(),
    };
    check_tar(&plan, open_reader(io::Cursor::new(data)), u64::MAX).map(|c| c.targets.len()).map_err(|e| e.message())
}

fn check_entries<'a, R: Read + 'a>(plan: &Plan, entries: tar::Entries<'a, R>, free: u64) -> Result<Checked, Error> {
    let mut targets = Vec::new();
    let mut seen: Vec<Indexed> = Vec::new();
    let mut index: Option<Vec<Indexed>> = None;
    let mut manifest_digest = [0u8; 32];
    let mut total: u64 = 0;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_RESTORE_ENTRIES {
            return Err(bad(format!("more than {MAX_RESTORE_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if index.is_some() {
            return Err(bad(format!("entries follow the index ({INDEX_NAME} must be last)")));
        }
        // Staging needs the room before the old state can be let go.
        total = total.saturating_add(entry.size());
        if total > free {
            return Err(bad("the archive is larger than the free space to restore it"));
        }
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let kind = entry.header().entry_type();
        if i == 0 {
            if name != Path::new(MANIFEST_NAME) || !kind.is_file() {
                return Err(bad("not a steward backup (no manifest first)"));
            }
            let mut text = String::new();
            entry.by_ref().take(1024 * 1024).read_to_string(&mut text).map_err(|e| bad(e.to_string()))?;
            check_manifest(&text, &plan.board)?;
            manifest_digest = sha256(text.as_bytes());
            seen.push(Indexed { path: name, dir: false, size: entry.size(), sha256: None });
            targets.push(None);
            continue;
        }
        if name == Path::new(INDEX_NAME) && kind.is_file() {
            if entry.size() > MAX_BACKUP_INDEX {
                return Err(bad(format!("the index declares {} bytes (at most {MAX_BACKUP_INDEX})", entry.size())));
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|e| bad(format!("the index: {e}")))?;
            index = Some(parse_index(&text)?);
            continue;
        }
        if kind.is_dir() {
            target_of(plan, &name)?;
            targets.push(None);
        } else if kind.is_file() {
            targets.push(Some(target_of(plan, &name)?));
        } else {
            return Err(bad(format!("{} is a link or special file", name.display())));
        }
        seen.push(Indexed { path: name, dir: kind.is_dir(), size: entry.size(), sha256: None });
    }
    if seen.is_empty() {
        return Err(bad("the archive is empty"));
    }
    let Some(index) = index else {
        return Err(bad(format!(
            "the archive has no index ({INDEX_NAME}): it is truncated, or was not made by this steward"
        )));
    };
    compare_with_index(&seen, &index)?;
    if index[0].sha256 != Some(manifest_digest) {
        return Err(bad("the manifest does not match its sha256 in the index"));
    }
    Ok(Checked { targets, index })
}

/// The entries seen are the entries indexed, in order: anything missing, added, resized or
/// of another type is named.
fn compare_with_index(seen: &[Indexed], index: &[Indexed]) -> Result<(), Error> {
    for (i, listed) in index.iter().enumerate() {
        let Some(got) = seen.get(i) else {
            return Err(bad(format!(
                "{} is listed in the index but missing: the archive is truncated",
                listed.path.display()
            )));
        };
        if got.path != listed.path {
            return Err(bad(format!(
                "entry {} is {}, the index lists {}",
                i,
                got.path.display(),
                listed.path.display()
            )));
        }
        if got.dir != listed.dir || got.size != listed.size {
            return Err(bad(format!(
                "{} is a {} of {} bytes, the index says a {} of {} bytes",
                got.path.display(),
                if got.dir { "directory" } else { "file" },
                got.size,
                if listed.dir { "directory" } else { "file" },
                listed.size
            )));
        }
    }
    if let Some(extra) = seen.get(index.len()) {
        return Err(bad(format!("{} is not in the archive's index", extra.path.display())));
    }
    Ok(())
}

fn parse_index(text: &str) -> Result<Vec<Indexed>, Error> {
    use miniserde::json::{Number, Value};
    let Ok(Value::Object(m)) = miniserde::json::from_str::<Value>(text) else {
        return Err(bad("the index is not JSON"));
    };
    if !matches!(m.get("format"), Some(Value::Number(Number::U64(1)))) {
        return Err(bad("unsupported index format"));
    }
    let Some(Value::Array(entries)) = m.get("entries") else { return Err(bad("the index lists no entries")) };
    let mut out = Vec::with_capacity(entries.len().min(MAX_RESTORE_ENTRIES));
    for e in entries {
        let Value::Object(e) = e else { return Err(bad("an index entry is not an object")) };
        let (Some(Value::String(path)), Some(Value::String(kind)), Some(Value::Number(Number::U64(size)))) =
            (e.get("path"), e.get("type"), e.get("size"))
        else {
            return Err(bad("an index entry lacks its path, type or size"));
        };
        let dir = match kind.as_str() {
            "file" => false,
            "dir" => true,
            other => return Err(bad(format!("index entry {path}: unknown type {other:?}"))),
        };
        let sha256 = match e.get("sha256") {
            Some(Value::String(h)) => {
                let bytes = crate::hex::parse_hex(h, 32).map_err(|_| bad(format!("index entry {path}: bad sha256")))?;
                Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad("bad sha256"))?)
            }
            _ if dir => None,
            _ => return Err(bad(format!("index entry {path} has no sha256"))),
        };
        out.push(Indexed { path: PathBuf::from(path), dir, size: *size, sha256 });
    }
    if out.is_empty() {
        return Err(bad("the index lists no entries"));
    }
    Ok(out)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().expect("32 bytes")
}

/// Hashes what is written through it.
struct Hashing<W> {
    out: W,
    hash: ring::digest::Context,
}

impl<W: io::Write> io::Write for Hashing<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.out.write(data)?;
        self.hash.update(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Second pass: every file is written to staging and hashed as it is; each must match its
/// digest in the index, and the archive must be the one the first pass read (same entries,
/// same sizes), or staging is thrown away.
fn stage(archive: &Path, checked: &Checked, staging: &Path, app_staging: &[PathBuf]) -> Result<(), Error> {
    let (mut tar, _) = open_archive(archive)?;
    let mut buf = vec![0u8; bulk::COPY_BUFFER];
    let staging_err = |e: io::Error| Error::Io(format!("staging: {e}"));
    let mut entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for (target, listed) in checked.targets.iter().zip(&checked.index) {
        let mut entry = entries
            .next()
            .ok_or_else(|| bad("the archive changed while it was restored"))?
            .map_err(|e| bad(e.to_string()))?;
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if name != listed.path || entry.size() != listed.size {
            return Err(bad("the archive changed while it was restored"));
        }
        let dest = match target {
            None if name == Path::new(MANIFEST_NAME) => {
                let mut text = Vec::new();
                entry.read_to_end(&mut text).map_err(|e| bad(e.to_string()))?;
                if Some(sha256(&text)) != listed.sha256 {
                    return Err(bad("the archive changed while it was restored"));
                }
                continue;
            }
            None => continue,
            Some(Target::State(name)) => staging.join(name),
            Some(Target::App { path_index, rest }) => app_staging[*path_index].join(rest),
        };
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(staging_err)?;
        }
        let file = std::fs::File::create(&dest).map_err(staging_err)?;
        let mut out =
            Hashing { out: bulk::EarlyWriteback::new(file), hash: ring::digest::Context::new(&ring::digest::SHA256) };
        let size = entry.size();
        bulk::copy_exact(&mut entry, &mut out, size, &mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => bad(e.to_string()),
            _ => staging_err(e),
        })?;
        if out.hash.finish().as_ref() != listed.sha256.as_ref().map_or(&[][..], |d| &d[..]) {
            return Err(bad(format!(
                "{} does not match its sha256 in the index: the archive is corrupt",
                name.display()
            )));
        }
        out.out.sync().map_err(staging_err)?;
    }
    // The index, then the end.
    match entries.next() {
        Some(Ok(e)) if e.path().is_ok_and(|p| p == Path::new(INDEX_NAME)) => {}
        _ => return Err(bad("the archive changed while it was restored")),
    }
    if entries.next().is_some() {
        return Err(bad("the archive changed while it was restored"));
    }
    finish_archive(tar)
}
