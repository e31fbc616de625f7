//! Trial boots: after an update is written, the new slot boots once, on trial; at the next
//! start steward finds out which slot came up and commits the new one (healthy), sends the
//! box back (unhealthy), or records that the bootloader fell back on its own.
//!
//! The bootloader's state follows the conventions RAUC documents:
//! - GRUB: `ORDER` ("B A": the slots in the order tried), `A_OK`/`B_OK` (1: bootable) and
//!   `A_TRY`/`B_TRY` (set to 1 by the boot script when it tries a slot; a slot whose TRY is
//!   1 is not tried again until committed, which sets it back to 0).
//! - U-Boot: `BOOT_ORDER` ("B A") and `BOOT_A_LEFT`/`BOOT_B_LEFT` (tries left; the boot
//!   script takes the first slot in order with tries left, and counts one off).
//! - systemd-boot: the slot's entry on trial is `NAME+TRIES.conf`; systemd-boot counts the
//!   tries down and passes over an entry with none left; committing blesses it.
//!
//! Every step is recorded in `update/trial.json` before it is taken, so a kill at any point
//! leaves a state the next start completes or undoes (see `settle`).

use std::path::{Path, PathBuf};

use miniserde::{Deserialize, Serialize, json};

use crate::board::{BootProfile, Bootloader};
use crate::store::{atomic, bootenv};
use crate::system::Root;

/// The tries a committed slot gets on U-Boot (RAUC's default), so one failed boot of a good
/// slot does not make it fall back.
const COMMITTED_TRIES: u32 = 3;

/// A trial in progress, as recorded on disk.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// `arming` (the bootloader is being set; undone at the next start) or `armed` (set:
    /// the new slot boots next).
    pub phase: String,
    /// Slot paths (the board's `update.slots`): the new one and the one running now.
    pub target: String,
    pub previous: String,
    pub version: String,
    pub builddate: String,
    pub changelog: String,
    /// The kernel's boot id when the trial was armed: the same id at a start means no reboot
    /// happened yet.
    pub boot_id: String,
}

pub fn record_path(data: &Path) -> PathBuf {
    data.join("update/trial.json")
}

pub fn load(data: &Path) -> Option<Trial> {
    let text = std::fs::read_to_string(record_path(data)).ok()?;
    json::from_str(&text).ok()
}

pub fn store(data: &Path, trial: &Trial) -> Result<(), String> {
    let path = record_path(data);
    if let Some(dir) = path.parent() {
        atomic::ensure_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    atomic::write(&path, json::to_string(trial).as_bytes(), 0o600).map_err(|e| format!("recording the trial: {e}"))
}

pub fn clear(data: &Path) -> Result<(), String> {
    atomic::remove(&record_path(data)).map_err(|e| format!("clearing the trial record: {e}"))
}

pub fn boot_id(root: &Root) -> String {
    root.read_limited("/proc/sys/kernel/random/boot_id", 256)
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default()
}

/// The board's bootloader, with its slot names.
pub struct Loader<'a> {
    pub boot: &'a BootProfile,
    pub root: &'a Root,
    /// The board's slot paths, in the order of `boot.names`.
    pub slots: [&'a str; 2],
}

impl Loader<'_> {
    fn kind(&self) -> Result<Bootloader, String> {
        self.boot.bootloader().ok_or_else(|| format!("unknown bootloader {:?}", self.boot.loader))
    }

    fn name(&self, slot: &str) -> Result<String, String> {
        let names = self.boot.names();
        let i = self.slots.iter().position(|s| *s == slot).ok_or_else(|| format!("{slot} is not an update slot"))?;
        Ok(names[i].clone())
    }

    fn env(&self) -> PathBuf {
        self.root.path(&self.boot.env)
    }

    fn uboot(&self) -> Result<bootenv::UbootConfig, String> {
        let text = self.root.read_limited(&self.boot.env, 64 * 1024).map_err(|e| format!("{}: {e}", self.boot.env))?;
        let mut config = bootenv::parse_fw_env_config(&String::from_utf8_lossy(&text))?;
        // The devices it names are below --root like every other path of the board's.
        for copy in &mut config.copies {
            copy.device = self.root.path(&copy.device.to_string_lossy());
        }
        Ok(config)
    }

    fn vars(&self) -> Result<bootenv::Vars, String> {
        match self.kind()? {
            Bootloader::Grub => match bootenv::grub_read(&self.env()) {
                Err(e) if !self.env().exists() => Err(format!("no GRUB environment: {e}")),
                other => other,
            },
            Bootloader::Uboot => bootenv::uboot_read(&self.uboot()?).map(|(vars, _)| vars),
            // Its state is in the entries' file names, not in variables.
            Bootloader::SystemdBoot => Ok(Vec::new()),
        }
    }

    fn write_vars(&self, vars: &[(String, String)]) -> Result<(), String> {
        match self.kind()? {
            Bootloader::Grub => bootenv::grub_write(&self.env(), vars),
            Bootloader::Uboot => bootenv::uboot_write(&self.uboot()?, vars),
            Bootloader::SystemdBoot => Ok(()),
        }
    }

    /// Sets variables, keeping every other one the environment holds.
    /// Unchanged, nothing is written: marking the running slot good at every start must not
    /// wear a U-Boot board's flash.
    fn set(&self, changes: &[(String, String)]) -> Result<(), String> {
        let mut vars = self.vars()?;
        let before = vars.clone();
        for (k, v) in changes {
            match vars.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => vars.push((k.clone(), v.clone())),
            }
        }
        if vars == before {
            return Ok(());
        }
        self.write_vars(&vars)
    }

    /// The value of one variable, if the environment has it.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars().ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether the environment is there and reads (`steward check`): GRUB's block or U-Boot's
    /// copies, or both slots' systemd-boot entries.
    pub fn readable(&self) -> Result<(), String> {
        if self.kind()? == Bootloader::SystemdBoot {
            for name in self.boot.names() {
                bootenv::counted_state(&self.env(), &name)?;
            }
            return Ok(());
        }
        self.vars().map(|_| ())
    }

    /// The new slot boots next, on trial; the running one stays the fallback.
    pub fn arm(&self, target: &str, previous: &str, version: &str) -> Result<(), String> {
        let (t, p) = (self.name(target)?, self.name(previous)?);
        let tries = self.boot.tries();
        match self.kind()? {
            Bootloader::Grub => self.set(&[
                ("ORDER".into(), format!("{t} {p}")),
                (format!("{t}_OK"), "1".into()),
                (format!("{t}_TRY"), "0".into()),
                (format!("{p}_OK"), "1".into()),
            ]),
            Bootloader::Uboot => {
                self.set(&[("BOOT_ORDER".into(), format!("{t} {p}")), (format!("BOOT_{t}_LEFT"), tries.to_string())])
            }
            Bootloader::SystemdBoot => {
                bootenv::counted_set_version(&self.env(), &t, version)?;
                bootenv::counted_arm(&self.env(), &t, tries)
            }
        }
    }

    /// The new slot is good: it stays first and keeps being chosen.
    pub fn commit(&self, target: &str, previous: &str) -> Result<(), String> {
        let (t, p) = (self.name(target)?, self.name(previous)?);
        match self.kind()? {
            Bootloader::Grub => self.set(&[
                ("ORDER".into(), format!("{t} {p}")),
                (format!("{t}_OK"), "1".into()),
                (format!("{t}_TRY"), "0".into()),
            ]),
            Bootloader::Uboot => self.set(&[
                ("BOOT_ORDER".into(), format!("{t} {p}")),
                (format!("BOOT_{t}_LEFT"), COMMITTED_TRIES.to_string()),
            ]),
            Bootloader::SystemdBoot => bootenv::counted_bless(&self.env(), &t),
        }
    }

    /// The new slot is not to be booted again: the running one goes first.
    pub fn reject(&self, target: &str, previous: &str) -> Result<(), String> {
        let (t, p) = (self.name(target)?, self.name(previous)?);
        match self.kind()? {
            Bootloader::Grub => self.set(&[
                ("ORDER".into(), format!("{p} {t}")),
                (format!("{t}_OK"), "0".into()),
                (format!("{p}_OK"), "1".into()),
                (format!("{p}_TRY"), "0".into()),
            ]),
            Bootloader::Uboot => self.set(&[
                ("BOOT_ORDER".into(), format!("{p} {t}")),
                (format!("BOOT_{t}_LEFT"), "0".into()),
                (format!("BOOT_{p}_LEFT"), COMMITTED_TRIES.to_string()),
            ]),
            Bootloader::SystemdBoot => bootenv::counted_reject(&self.env(), &t),
        }
    }

    /// The slot path the running system booted from, if the board can tell.
    pub fn booted(&self) -> Option<String> {
        let how = self.boot.booted.as_deref().unwrap_or("cmdline:steward.slot");
        let name = match how.split_once(':')? {
            ("env", var) => self.var(var)?,
            (_, key) => {
                let cmdline = self.root.read_limited("/proc/cmdline", 64 * 1024).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
                let prefix = format!("{key}=");
                cmdline.split_whitespace().find_map(|w| w.strip_prefix(&prefix)).map(str::to_owned)?
            }
        };
        let names = self.boot.names();
        names.iter().position(|n| *n == name).map(|i| self.slots[i].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(loader: &str, env: &str) -> BootProfile {
        BootProfile {
            loader: loader.into(),
            env: env.into(),
            names: None,
            booted: Some("env:BOOTED".into()),
            tries: None,
            health_check: None,
        }
    }

    #[test]
    fn grub_arm_commit_and_reject_follow_raucs_variables() {
        let dir = std::env::temp_dir().join(format!("steward-trial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = Root::new(&dir);
        bootenv::grub_write(&dir.join("grubenv"), &[("saved_entry".into(), "x".into())]).unwrap();
        let boot = profile("grub", "/grubenv");
        let loader = Loader { boot: &boot, root: &root, slots: ["/a", "/b"] };
        loader.arm("/b", "/a", "2.0").unwrap();
        let get = |k: &str| loader.var(k).unwrap_or_default();
        assert_eq!(
            (get("ORDER"), get("B_OK"), get("B_TRY"), get("saved_entry")),
            ("B A".into(), "1".into(), "0".into(), "x".into())
        );
        loader.reject("/b", "/a").unwrap();
        assert_eq!((get("ORDER"), get("B_OK")), ("A B".into(), "0".into()));
        loader.arm("/b", "/a", "2.0").unwrap();
        loader.commit("/b", "/a").unwrap();
        assert_eq!((get("ORDER"), get("B_OK"), get("B_TRY")), ("B A".into(), "1".into(), "0".into()));
        assert!(loader.arm("/c", "/a", "2.0").is_err(), "only the board's slots");
        loader.set(&[("BOOTED".into(), "B".into())]).unwrap();
        assert_eq!(loader.booted().as_deref(), Some("/b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn systemd_boot_counts_the_trial_entry_and_blesses_or_spends_it() {
        let dir = std::env::temp_dir().join(format!("steward-trial-sd-{}", std::process::id()));
        let entries = dir.join("loader/entries");
        std::fs::create_dir_all(&entries).unwrap();
        for name in ["slot-a", "slot-b"] {
            std::fs::write(entries.join(format!("{name}.conf")), "title steward\nversion 1.0\nlinux /vmlinuz\n")
                .unwrap();
        }
        let root = Root::new(&dir);
        let mut boot = profile("systemd-boot", "/loader/entries");
        boot.names = Some(vec!["slot-a".into(), "slot-b".into()]);
        boot.tries = Some(2);
        let loader = Loader { boot: &boot, root: &root, slots: ["/a", "/b"] };
        loader.arm("/b", "/a", "2.0").unwrap();
        let armed = std::fs::read_to_string(entries.join("slot-b+2.conf")).unwrap();
        assert!(armed.contains("version 2.0\n") && !armed.contains("version 1.0"), "{armed}");
        loader.commit("/b", "/a").unwrap();
        assert!(entries.join("slot-b.conf").exists());
        loader.arm("/b", "/a", "3.0").unwrap();
        std::fs::rename(entries.join("slot-b+2.conf"), entries.join("slot-b+1-1.conf")).unwrap();
        loader.reject("/b", "/a").unwrap();
        assert!(entries.join("slot-b+0-2.conf").exists(), "spent: passed over by systemd-boot");
        assert!(entries.join("slot-a.conf").exists(), "the running entry is untouched");
        assert!(loader.arm("/b", "/a", "bad\nversion").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
