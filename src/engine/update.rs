//! Applying an update package as it is uploaded: the request's bytes go through decryption
//! (each chunk authenticated before its plaintext is used) and the payload hash straight
//! into the inactive slot, with nothing spooled. Only once the signature, every chunk's tag
//! and the payload hash have checked out does the new slot become bootable: on a board with
//! a bootloader profile it boots once, on trial (`trial`), and is committed at the next
//! start; otherwise the board's activation hook switches slots. Runs as a job; error codes
//! are Jidoteki's E1000–E1005.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::jobs::{AlreadyRunning, Kind, Progress};
use super::package::{self, Manifest, PackageError};
use super::trial::{self, Loader, Trial};
use super::upload::{self, Ended, Feed, Upload};
use super::{Engine, Error, power};
use crate::board::UpdateProfile;
use crate::store::{atomic, bulk};
use crate::system::Root;

/// Everything the worker needs, owned, so it shares nothing with the request thread.
struct Plan {
    data: PathBuf,
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

/// An update admitted but not yet started: its job and its end of the upload.
pub struct PendingUpdate {
    plan: Plan,
    upload: Upload,
}

/// How an apply ended well.
enum Applied {
    /// The version runs once the box reboots (hook boards: the hook switched slots).
    Installed(String),
    /// The new slot boots next, on trial.
    Armed(String),
}

impl Engine {
    /// Prepares an update whose package arrives through the returned feed as it is
    /// uploaded; `on_room` wakes the request loop when the worker has caught up with the
    /// upload. Refused at once while one runs. The job itself starts with the package's first
    /// byte (`launch_update`), so a request that brings none leaves the last job's record.
    pub fn begin_update(&mut self, on_room: Box<dyn Fn() + Send>) -> Result<(Feed, PendingUpdate), StartError> {
        let plan = self.update_plan().map_err(StartError::Engine)?;
        if self.update_running() {
            return Err(StartError::AlreadyRunning);
        }
        let (feed, upload) = upload::channel_pair(on_room);
        Ok((feed, PendingUpdate { plan, upload }))
    }

    /// Starts the job of a prepared update (refused if another one started meanwhile).
    pub fn launch_update(&mut self, pending: PendingUpdate) -> Result<(), StartError> {
        let PendingUpdate { plan, upload } = pending;
        self.jobs.start(Kind::Update, move |p| {
            p.log("Updating system. Please wait..");
            match apply(&plan, &p, upload) {
                Ok(Applied::Installed(version)) => {
                    p.log(&format!("Updating system to {version} successful"));
                    p.succeed(100);
                }
                Ok(Applied::Armed(version)) => {
                    p.log(&format!(
                        "Version {version} is installed and boots next, on trial: reboot to finish the update"
                    ));
                    p.succeed(100);
                }
                Err(f) => p.fail(Some(f.code), &f.message),
            }
        })?;
        Ok(())
    }

    fn update_plan(&self) -> Result<Plan, Error> {
        let profile = self.board.update.clone();
        let encryption: [u8; 32] = crate::hex::parse_hex(&profile.encryption_key, 32)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| Error::Io("board update.encryption_key is not 32 hex bytes".into()))?;
        let signing_public = crate::hex::parse_hex(&profile.signing_public_key, 32)
            .map_err(|e| Error::Io(format!("board update.signing_public_key: {e}")))?;
        Ok(Plan {
            data: self.data.clone(),
            profile,
            encryption,
            signing_public,
            root: self.root.clone(),
            version_file: self.board.info.version.clone(),
            changelog_file: self.board.info.changelog.clone(),
            build_file: self.board.info.build.clone(),
        })
    }

    /// Finishes what an update's trial left at the last start, on a worker (a health check
    /// may take a while). Called once the request loop runs, so the API is answering.
    pub fn settle_update(&mut self) {
        let Some(boot) = self.board.update.boot.clone() else { return };
        let Ok(plan) = self.update_plan() else { return };
        let Some(record) = trial::load(&self.data) else {
            // No trial: the slot running is good. The boot scripts count every boot (GRUB's
            // TRY, U-Boot's LEFT), so it is marked good at every start, as RAUC's mark-good
            // service does, or a few ordinary reboots would use up its tries.
            let queued = crate::workers::queue("update-mark-good", move || mark_running_good(&plan, &boot));
            if let Err(crate::workers::Refused(why)) = queued {
                crate::log::warn(format_args!("update: cannot mark the running slot good now: {why}"));
            }
            return;
        };
        let job = self.jobs.handle(Kind::Update);
        // Failed by being interrupted, not by a package of its own (a later upload refused).
        let interrupted = self.jobs.state(Kind::Update).is_some_and(|s| {
            s.status == super::jobs::Status::Failed
                && s.error_message.as_deref().is_some_and(|m| m.starts_with("interrupted"))
        });
        let power = self.board.power.clone();
        let queued =
            crate::workers::queue("update-trial", move || settle(&plan, &boot, record, &job, interrupted, power));
        if let Err(crate::workers::Refused(why)) = queued {
            crate::log::warn(format_args!("update: cannot settle the trial boot now: {why}"));
        }
    }

    pub fn update_running(&self) -> bool {
        self.jobs.state(Kind::Update).is_some_and(|s| s.status == super::jobs::Status::Running)
    }

    /// Whether an applied update waits for a reboot to boot on trial.
    pub fn update_reboot_pending(&self) -> bool {
        trial::load(&self.data).is_some_and(|t| t.phase == "armed" && t.boot_id == trial::boot_id(&self.root))
    }
}

fn mark_running_good(plan: &Plan, boot: &crate::board::BootProfile) {
    let loader = loader(plan, boot);
    let Some(running) = loader.booted() else {
        crate::log::warn(format_args!("update: cannot tell which slot booted; its boot count is left as it is"));
        return;
    };
    let other = if running == plan.profile.slots[0] { &plan.profile.slots[1] } else { &plan.profile.slots[0] };
    if let Err(e) = loader.commit(&running, other) {
        crate::log::warn(format_args!("update: marking the running slot {running} good: {e}"));
    }
}

/// The outcome of a trial, worked out from which slot the box came up on. Each branch is
/// safe to run again from its start: a kill half-way is completed at the next start.
fn settle(
    plan: &Plan,
    boot: &crate::board::BootProfile,
    record: Trial,
    job: &Progress,
    job_failed: bool,
    power: crate::board::Power,
) {
    let loader = loader(plan, boot);
    let (target, previous, version) = (&record.target, &record.previous, &record.version);
    // After a failed health check, once the outcome is recorded.
    let mut reboot = false;
    let outcome: Result<Option<String>, String> = if record.phase != "armed" {
        // Stopped while the bootloader was being set: it may be half set, so it is put back.
        let message =
            format!("the update to {version} was interrupted while its slot was set to boot; {previous} stays");
        loader.reject(target, previous).map(|()| Some(message))
    } else if record.boot_id == trial::boot_id(&plan.root) {
        // No reboot since the trial was armed. Killed between arming and the job's last
        // report, the job reads interrupted although the new slot boots next: it says so.
        if job_failed {
            job.conclude(
                None,
                &format!("Version {version} is installed and boots next, on trial: reboot to finish the update"),
            );
        }
        return;
    } else {
        match loader.booted() {
            Some(booted) if booted == *target => match health_check(boot, version, &plan.root.path(target)) {
                Ok(()) => {
                    let committed = loader.commit(target, previous).map_err(|e| format!("committing slot {target}: {e}"));
                    let recorded = committed.and_then(|()| {
                        record_version(plan, version, &record.changelog, &record.builddate, Some(target))
                            .map_err(|f| f.message)
                    });
                    match recorded {
                        Ok(()) => {
                            job.conclude(
                                None,
                                &format!("Version {version} booted on trial from slot {target}, passed its health checks and is committed"),
                            );
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(why) => loader.reject(target, previous).map(|()| {
                    reboot = true;
                    Some(format!(
                        "version {version} booted from slot {target} but failed its health checks ({why}); rolled back to slot {previous}, rebooting"
                    ))
                }),
            },
            Some(booted) if booted == *previous => loader.reject(target, previous).map(|()| {
                Some(format!(
                    "version {version} did not boot from slot {target}: the bootloader fell back and the update was rolled back to slot {previous}"
                ))
            }),
            other => {
                crate::log::warn(format_args!(
                    "update: cannot tell which slot booted ({other:?}); the trial of {version} stays as it is"
                ));
                return;
            }
        }
    };
    match outcome {
        Ok(failure) => {
            if let Some(message) = &failure {
                job.conclude(Some(("E1002", message)), &format!("failed: {message}"));
            }
            if let Err(e) = trial::clear(&plan.data) {
                crate::log::warn(format_args!("update: {e}"));
            }
            if reboot {
                power::reboot_with(power);
            }
        }
        // Left recorded: the next start tries again.
        Err(e) => crate::log::warn(format_args!("update: settling the trial of {version}: {e}")),
    }
}

/// The board's health check for a trial boot: steward's own part is that it got this far
/// (its state opened, its API answering); the hook, if any, checks the rest.
fn health_check(boot: &crate::board::BootProfile, version: &str, slot: &std::path::Path) -> Result<(), String> {
    let Some(hook) = boot.health_check.as_ref().filter(|h| !h.is_empty()) else { return Ok(()) };
    let mut cmd = std::process::Command::new(&hook[0]);
    cmd.args(&hook[1..]).env("STEWARD_VERSION", version).env("STEWARD_SLOT", slot);
    run_hook(cmd, "health check").map_err(|f| f.message)
}

fn read_err(e: io::Error) -> Failure {
    if let Some(ended) = e.get_ref().and_then(|e| e.downcast_ref::<Ended>()) {
        return fail(ended.code, ended.message.clone());
    }
    if e.kind() == io::ErrorKind::InvalidData {
        fail("E1005", format!("Error decrypting software update package: {e}"))
    } else {
        fail("E1002", format!("Error reading the update package: {e}"))
    }
}

/// Passes a reader's bytes through SHA-256 on their way.
struct Hashed<R> {
    inner: R,
    // ring's SHA-256 uses the CPU's SHA instructions where they exist: on bulk payloads it
    // is several times the portable implementation built for size.
    hasher: ring::digest::Context,
    total: u64,
}

impl<R: Read> Hashed<R> {
    fn new(inner: R) -> Self {
        Hashed { inner, hasher: ring::digest::Context::new(&ring::digest::SHA256), total: 0 }
    }

    /// Reads the rest (a tar's padding after its end marker, the package's end) and checks
    /// the whole against the signed manifest.
    fn verify(mut self, manifest: &Manifest) -> Result<(), Failure> {
        io::copy(&mut self, &mut io::sink()).map_err(read_err)?;
        let digest = crate::hex::to_hex(self.hasher.finish().as_ref());
        if self.total != manifest.payload_size || digest != manifest.payload_sha256 {
            return Err(fail("E1005", "the payload does not match its signed manifest"));
        }
        Ok(())
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }
}

fn apply(plan: &Plan, p: &Progress, upload: Upload) -> Result<Applied, Failure> {
    let (manifest, payload) = package::open(upload, &plan.encryption, &plan.signing_public).map_err(|e| match e {
        PackageError::Invalid(m) => fail("E1005", format!("Error decrypting software update package: {m}")),
        PackageError::Io(e) => read_err(e),
    })?;
    p.log(&format!("Package {} (built {}) is signed by the vendor", manifest.version, manifest.builddate));
    p.percent(5);
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
    let payload = Hashed::new(payload);
    match manifest.kind.as_str() {
        "image" => write_image(plan, p, &manifest, payload),
        "bundle" if plan.profile.install.is_some() => {
            install_bundle(plan, p, &manifest, payload)?;
            record_version(plan, &manifest.version, &manifest.changelog, &manifest.builddate, None)?;
            Ok(Applied::Installed(manifest.version))
        }
        "bundle" => Err(fail("E1002", "this board takes image payloads only (no update.install hook)")),
        other => Err(fail("E1002", format!("unknown payload kind {other:?}"))),
    }
}

fn loader<'a>(plan: &'a Plan, boot: &'a crate::board::BootProfile) -> Loader<'a> {
    Loader { boot, root: &plan.root, slots: [&plan.profile.slots[0], &plan.profile.slots[1]] }
}

fn write_image(
    plan: &Plan,
    p: &Progress,
    manifest: &Manifest,
    mut payload: Hashed<package::Decryptor<Upload>>,
) -> Result<Applied, Failure> {
    // A trial armed earlier and not yet booted is given up: its slot is the one rewritten.
    if let (Some(boot), Some(armed)) = (&plan.profile.boot, trial::load(&plan.data)) {
        loader(plan, boot)
            .reject(&armed.target, &armed.previous)
            .map_err(|e| fail("E1002", format!("Error disarming the earlier update: {e}")))?;
        trial::clear(&plan.data).map_err(|e| fail("E1002", e))?;
        p.log(&format!("Version {} waiting for its trial boot is replaced", armed.version));
    }
    let (active, target) = slots(plan);
    let target_path = plan.root.path(&target);
    if !target_path.exists() {
        // A file-backed slot on its first use (block devices always exist).
        if let Some(dir) = target_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail("E1002", format!("Error creating the slot directory: {e}")))?;
        }
    }
    p.log(&format!("Writing the payload to the inactive slot {target} as it arrives"));
    let slot = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&target_path)
        .map_err(|e| fail("E1002", format!("Error opening the update slot {target}: {e}")))?;
    let mut slot = bulk::EarlyWriteback::new(slot);
    // One decrypted chunk at a time: the decryptor hands out at most 64 KiB per read.
    let mut buf = vec![0u8; 64 * 1024];
    let size = manifest.payload_size.max(1);
    let mut shown = 5;
    loop {
        let n = match payload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        if payload.total > manifest.payload_size {
            return Err(fail("E1005", "the payload is longer than its signed manifest says"));
        }
        slot.write_all(&buf[..n]).map_err(|e| fail("E1002", format!("Error writing the update slot: {e}")))?;
        let percent = (5 + payload.total * 85 / size).min(90) as u8;
        if percent >= shown + 5 {
            p.percent(percent);
            shown = percent;
        }
    }
    let written = payload.total;
    payload.verify(manifest)?;
    p.log("Payload verified against the signed manifest");
    let slot = slot.into_file();
    // A file-backed slot must not keep the tail of a longer earlier image.
    if slot.metadata().map(|m| m.file_type().is_file()).unwrap_or(false) {
        slot.set_len(written).map_err(|e| fail("E1002", format!("Error sizing the update slot: {e}")))?;
    }
    slot.sync_all().map_err(|e| fail("E1002", format!("Error flushing the update slot: {e}")))?;
    p.percent(90);
    if let Some(boot) = &plan.profile.boot {
        arm_trial(plan, p, boot, manifest, &active, &target)?;
        return Ok(Applied::Armed(manifest.version.clone()));
    }
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
    record_version(plan, &manifest.version, &manifest.changelog, &manifest.builddate, Some(&target))?;
    Ok(Applied::Installed(manifest.version.clone()))
}

/// Recorded as `arming` before the bootloader is touched and `armed` after: a kill between
/// the two is undone at the next start (`Engine::settle_update`).
fn arm_trial(
    plan: &Plan,
    p: &Progress,
    boot: &crate::board::BootProfile,
    manifest: &Manifest,
    active: &str,
    target: &str,
) -> Result<(), Failure> {
    let mut record = Trial {
        phase: "arming".into(),
        target: target.to_owned(),
        previous: active.to_owned(),
        version: manifest.version.clone(),
        builddate: manifest.builddate.clone(),
        changelog: manifest.changelog.clone(),
        boot_id: trial::boot_id(&plan.root),
    };
    trial::store(&plan.data, &record).map_err(|e| fail("E1002", e))?;
    let loader = loader(plan, boot);
    if let Err(e) = loader.arm(target, active, &manifest.version) {
        let _ = loader.reject(target, active);
        let _ = trial::clear(&plan.data);
        return Err(fail("E1002", format!("Error setting the new slot to boot on trial ({}): {e}", boot.loader)));
    }
    record.phase = "armed".into();
    trial::store(&plan.data, &record).map_err(|e| fail("E1002", e))?;
    p.log(&format!("The {} bootloader boots slot {target} next, on trial; {active} stays the fallback", boot.loader));
    Ok(())
}

/// Records the installed version (and the new active slot, for images); the version last,
/// since it decides whether the next package is newer.
fn record_version(
    plan: &Plan,
    version: &str,
    changelog: &str,
    builddate: &str,
    slot: Option<&str>,
) -> Result<(), Failure> {
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
    record(&plan.changelog_file, changelog.as_bytes())?;
    let build = crate::json::Object::new().str("builddate", builddate).finish();
    record(&plan.build_file, build.as_bytes())?;
    record(&plan.version_file, format!("{version}\n").as_bytes())?;
    Ok(())
}

/// A `bundle` payload is a tar: extracted as it arrives (regular files and directories
/// only, relative paths only) into a staging dir, and handed to the board's install hook only
/// once the whole payload has checked out against the signed manifest. The staging dir is
/// the one copy on disk: a hook installs files, so they must exist somewhere first.
fn install_bundle(
    plan: &Plan,
    p: &Progress,
    manifest: &Manifest,
    payload: Hashed<package::Decryptor<Upload>>,
) -> Result<(), Failure> {
    let staging = plan.data.join("jobs/update-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| fail("E1002", format!("Error creating the staging dir: {e}")))?;
    let result = (|| {
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
        tar.into_inner().into_inner().verify(manifest)?;
        p.log("Payload verified against the signed manifest");
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
fn slots(plan: &Plan) -> (String, String) {
    let [a, b] = [&plan.profile.slots[0], &plan.profile.slots[1]];
    let recorded = plan.root.read_limited(&plan.profile.active_slot, 4096).ok();
    let active = recorded.map(|r| String::from_utf8_lossy(&r).trim().to_owned()).unwrap_or_else(|| a.clone());
    if active == *a { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }
}
