//! Applying an update package: verify everything before the first write, write the payload
//! to the inactive slot, read it back, run the board's activation hook, then record the new
//! version. Runs as a job; error codes are Jidoteki's E1000–E1005.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::jobs::{AlreadyRunning, Kind, Progress};
use super::package::{self, Manifest, PackageError};
use super::{Engine, Error};
use crate::board::UpdateProfile;
use crate::store::{atomic, bulk};
use crate::system::Root;

/// Everything the worker needs, owned, so it shares nothing with the request thread.
struct Plan {
    package: PathBuf,
    profile: UpdateProfile,
    encryption: [u8; 32],
    signing_public: Vec<u8>,
    root: Root,
    version_file: String,
    changelog_file: String,
    build_file: String,
}

pub enum StartError {
    AlreadyRunning,
    Engine(Error),
}

impl From<AlreadyRunning> for StartError {
    fn from(_: AlreadyRunning) -> Self {
        StartError::AlreadyRunning
    }
}

struct Failure {
    code: &'static str,
    message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

impl Engine {
    /// Takes ownership of the uploaded package file and starts applying it.
    pub fn start_update(&mut self, upload: &Path) -> Result<(), StartError> {
        let profile = self.board.update.clone();
        let encryption: [u8; 32] = crate::hex::parse_hex(&profile.encryption_key, 32)
            .map_err(|e| StartError::Engine(Error::Io(format!("board update.encryption_key: {e}"))))?
            .try_into()
            .expect("32 bytes");
        let signing_public = crate::hex::parse_hex(&profile.signing_public_key, 32)
            .map_err(|e| StartError::Engine(Error::Io(format!("board update.signing_public_key: {e}"))))?;
        let package = self.data.join("jobs/update.pkg");
        if self.jobs.state(Kind::Update).is_some_and(|s| s.status == super::jobs::Status::Running) {
            return Err(StartError::AlreadyRunning);
        }
        std::fs::rename(upload, &package)
            .map_err(|e| StartError::Engine(Error::Io(format!("storing the package: {e}"))))?;
        let plan = Plan {
            package,
            profile,
            encryption,
            signing_public,
            root: self.root.clone(),
            version_file: self.board.info.version.clone(),
            changelog_file: self.board.info.changelog.clone(),
            build_file: self.board.info.build.clone(),
        };
        self.jobs.start(Kind::Update, move |p| {
            p.log("Updating system. Please wait..");
            let result = apply(&plan, &p);
            let _ = std::fs::remove_file(&plan.package);
            match result {
                Ok(version) => {
                    p.log(&format!("Updating system to {version} successful"));
                    p.succeed(100);
                }
                Err(f) => p.fail(Some(f.code), &f.message),
            }
        })?;
        Ok(())
    }
}

fn open_package(plan: &Plan) -> Result<(Manifest, package::Decryptor<File>), Failure> {
    let file = File::open(&plan.package).map_err(|e| fail("E1003", format!("Missing update package: {e}")))?;
    package::open(file, &plan.encryption, &plan.signing_public).map_err(|e| match e {
        PackageError::Invalid(m) => fail("E1005", format!("Error decrypting software update package: {m}")),
        PackageError::Io(e) => fail("E1002", format!("Error reading the update package: {e}")),
    })
}

fn read_err(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::InvalidData {
        fail("E1005", format!("Error decrypting software update package: {e}"))
    } else {
        fail("E1002", format!("Error reading the update package: {e}"))
    }
}

/// Streams `reader` through sha256 into `sink`; returns (bytes, hex digest).
fn hash_copy(reader: &mut impl Read, mut sink: Option<&mut bulk::EarlyWriteback>) -> Result<(u64, String), Failure> {
    // ring's SHA-256 uses the CPU's SHA instructions where they exist: on bulk payloads it
    // is several times the portable implementation built for size.
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; bulk::COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        if let Some(f) = sink.as_deref_mut() {
            f.write_all(&buf[..n]).map_err(|e| fail("E1002", format!("Error writing the update slot: {e}")))?;
        }
        total += n as u64;
    }
    Ok((total, crate::hex::to_hex(hasher.finish().as_ref())))
}

fn apply(plan: &Plan, p: &Progress) -> Result<String, Failure> {
    p.percent(10);
    let (manifest, mut payload) = open_package(plan)?;
    p.log(&format!("Package {} (built {}) is signed by the vendor", manifest.version, manifest.builddate));
    p.percent(30);
    let current =
        plan.root.read_limited(&plan.version_file, 4096).ok().map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    if let Some(current) = current.filter(|c| !c.is_empty()) {
        use std::cmp::Ordering::*;
        match package::version_cmp(&manifest.version, &current) {
            Greater => {}
            _ if manifest.allow_downgrade => {
                p.log(&format!("Installing {} over {current} (downgrade allowed)", manifest.version))
            }
            Equal => {
                return Err(fail(
                    "E1001",
                    format!("software update package v{} already up-to-date.", manifest.version),
                ));
            }
            Less => {
                return Err(fail(
                    "E1001",
                    format!("software update package v{} is older than v{current}.", manifest.version),
                ));
            }
        }
    }
    match manifest.kind.as_str() {
        "image" => {}
        "bundle" if plan.profile.install.is_some() => {}
        "bundle" => return Err(fail("E1002", "this board takes image payloads only (no update.install hook)")),
        other => return Err(fail("E1002", format!("unknown payload kind {other:?}"))),
    }
    p.percent(40);
    // Pass 1: prove the payload is the one the vendor signed before touching any slot.
    let (size, digest) = hash_copy(&mut payload, None)?;
    if size != manifest.payload_size || digest != manifest.payload_sha256 {
        return Err(fail("E1005", "the payload does not match its signed manifest"));
    }
    p.log("Payload verified against the signed manifest");
    p.percent(50);
    if manifest.kind == "bundle" {
        install_bundle(plan, p, &manifest)?;
        return record_version(plan, &manifest, None);
    }
    let (active, target) = slots(plan)?;
    let target_path = plan.root.path(&target);
    if !target_path.exists() {
        // A file-backed slot on its first use (block devices always exist).
        if let Some(dir) = target_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail("E1002", format!("Error creating the slot directory: {e}")))?;
        }
    }
    p.log(&format!("Writing the payload to the inactive slot {target}"));
    let slot = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&target_path)
        .map_err(|e| fail("E1002", format!("Error opening the update slot {target}: {e}")))?;
    let mut slot = bulk::EarlyWriteback::new(slot);
    // Pass 2: decrypt again (every chunk is re-authenticated) and write.
    let (_, mut payload) = open_package(plan)?;
    let (written, digest2) = hash_copy(&mut payload, Some(&mut slot))?;
    let slot = slot.into_file();
    if written != manifest.payload_size || digest2 != manifest.payload_sha256 {
        return Err(fail("E1002", "the package changed while it was being applied"));
    }
    // A file-backed slot must not keep the tail of a longer earlier image.
    if slot.metadata().map(|m| m.file_type().is_file()).unwrap_or(false) {
        slot.set_len(written).map_err(|e| fail("E1002", format!("Error sizing the update slot: {e}")))?;
    }
    slot.sync_all().map_err(|e| fail("E1002", format!("Error flushing the update slot: {e}")))?;
    p.percent(70);
    let mut check = File::open(&target_path).map_err(|e| fail("E1002", format!("Error reading back the slot: {e}")))?;
    check.rewind().ok();
    let (_, readback) = hash_copy(&mut check.take(written), None)?;
    if readback != manifest.payload_sha256 {
        return Err(fail("E1002", "the slot does not read back what was written"));
    }
    p.log("Slot read back and verified");
    p.percent(80);
    if let Some(hook) = plan.profile.activate.as_ref().filter(|h| !h.is_empty()) {
        let mut cmd = std::process::Command::new(&hook[0]);
        cmd.args(&hook[1..])
            .env("STEWARD_SLOT", &target_path)
            .env("STEWARD_SLOT_PREVIOUS", plan.root.path(&active))
            .env("STEWARD_VERSION", &manifest.version);
        run_hook(cmd, "activation")?;
        p.log("Activation hook succeeded");
    } else {
        p.log("No activation hook on this board: the new slot is recorded, nothing else is switched");
    }
    p.percent(90);
    record_version(plan, &manifest, Some(&target))
}

/// Records the installed version (and the new active slot, for images); the version last,
/// since it decides whether the next package is newer.
fn record_version(plan: &Plan, manifest: &Manifest, slot: Option<&str>) -> Result<String, Failure> {
    let record = |path: &str, data: &[u8]| -> Result<(), Failure> {
        let full = plan.root.path(path);
        if let Some(dir) = full.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        atomic::write(&full, data, 0o644).map_err(|e| fail("E1002", format!("Error recording {path}: {e}")))
    };
    if let Some(target) = slot {
        record(&plan.profile.active_slot, format!("{target}\n").as_bytes())?;
    }
    record(&plan.changelog_file, manifest.changelog.as_bytes())?;
    let build = crate::json::Object::new().str("builddate", &manifest.builddate).finish();
    record(&plan.build_file, build.as_bytes())?;
    record(&plan.version_file, format!("{}\n", manifest.version).as_bytes())?;
    Ok(manifest.version.clone())
}

/// A `bundle` payload is a tar: extracted (regular files and directories only, relative
/// paths only) into a staging dir, then handed to the board's install hook.
fn install_bundle(plan: &Plan, p: &Progress, manifest: &Manifest) -> Result<(), Failure> {
    let staging = plan.package.with_file_name("update-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| fail("E1002", format!("Error creating the staging dir: {e}")))?;
    let result = (|| {
        let (_, payload) = open_package(plan)?;
        // The guard refuses a long-name or PAX entry too large before the tar crate reads it.
        let mut tar = tar::Archive::new(super::targuard::TarGuard::new(payload));
        let entries = tar.entries().map_err(|e| fail("E1005", format!("the bundle is not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(read_err)?;
            let kind = entry.header().entry_type();
            if !(kind.is_file() || kind.is_dir()) {
                return Err(fail("E1002", "the bundle holds a link or special file"));
            }
            let path = entry.path().map_err(|e| fail("E1002", e.to_string()))?.into_owned();
            if !path.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
                return Err(fail("E1002", format!("bundle entry {} is not a plain relative path", path.display())));
            }
            let dest = staging.join(&path);
            if kind.is_dir() {
                std::fs::create_dir_all(&dest).map_err(|e| fail("E1002", e.to_string()))?;
                continue;
            }
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail("E1002", e.to_string()))?;
            }
            let mut out = File::create(&dest).map_err(|e| fail("E1002", e.to_string()))?;
            io::copy(&mut entry, &mut out).map_err(read_err)?;
        }
        p.log(&format!("Bundle {} extracted; running the install hook", manifest.version));
        p.percent(70);
        let hook = plan.profile.install.as_ref().expect("checked before");
        let mut cmd = std::process::Command::new(&hook[0]);
        cmd.args(&hook[1..])
            .current_dir(&staging)
            .env("STEWARD_STAGING", &staging)
            .env("STEWARD_ROOT", plan.root.dir())
            .env("STEWARD_VERSION", &manifest.version);
        run_hook(cmd, "install")?;
        p.log("Install hook succeeded");
        p.percent(90);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Runs a board hook to completion; anything but exit 0 is Jidoteki's E1000 (script error).
fn run_hook(mut cmd: std::process::Command, which: &str) -> Result<(), Failure> {
    let status = cmd
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| fail("E1000", format!("cannot run the {which} hook: {e}")))?;
    if !status.success() {
        return Err(fail("E1000", format!("the {which} hook failed ({status})")));
    }
    Ok(())
}

/// (active, inactive) slot paths: the active one is recorded in the profile's state file;
/// without a record the first slot counts as active.
fn slots(plan: &Plan) -> Result<(String, String), Failure> {
    let [a, b] = [&plan.profile.slots[0], &plan.profile.slots[1]];
    let recorded = plan.root.read_limited(&plan.profile.active_slot, 4096).ok();
    let active = recorded.map(|r| String::from_utf8_lossy(&r).trim().to_owned()).unwrap_or_else(|| a.clone());
    if active == *a { Ok((a.clone(), b.clone())) } else { Ok((b.clone(), a.clone())) }
}
