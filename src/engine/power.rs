//! Rebooting or powering off the box, by the board's power method, shortly after the answer
//! went out.

use std::time::Duration;

use super::Engine;
use crate::board::Power;

/// Time for the answer to reach the client before the system goes down.
const POWER_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Reboot,
    PowerOff,
}

impl Engine {
    /// Whether the board's power method can work with this process's privileges: the
    /// missing capability or command, named, if not.
    pub fn power_ready(&self) -> Result<(), String> {
        match self.board.power.method.as_str() {
            "syscall" if !crate::system::privilege::holds(rustix::thread::CapabilitySet::SYS_BOOT) => {
                Err("rebooting needs CAP_SYS_BOOT, which steward does not hold (board run_as.capabilities)".into())
            }
            _ => Ok(()),
        }
    }

    /// Schedules a reboot; returns what will happen, for the audit log.
    pub fn reboot(&mut self) -> &'static str {
        schedule(self.board.power.clone(), Action::Reboot)
    }

    /// Jidoteki's `/reboot`: a backup first when the board asks for one, then the reboot once
    /// that backup has ended (whatever its outcome: the reboot was asked for).
    pub fn reboot_after_backup(&mut self) -> &'static str {
        if self.board.power.backup_before_reboot != Some(true) {
            return self.reboot();
        }
        if let Err(e) = self.start_backup() {
            let why = match e {
                super::backup::StartError::AlreadyRunning => "a backup is already running".to_owned(),
                super::backup::StartError::NoSpace(m) | super::backup::StartError::Io(m) => m,
            };
            crate::log::warn(format_args!("backup before reboot not taken: {why}"));
        }
        let watch = self.jobs.watch(super::jobs::Kind::Backup);
        let power = self.board.power.clone();
        // Outside the worker budget: it waits for a backup that may need a worker itself.
        let spawned = crate::workers::detached("backup-then-reboot", move || {
            let running = || {
                watch
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_some_and(|s| s.status == super::jobs::Status::Running)
            };
            while running() {
                std::thread::sleep(Duration::from_millis(100));
            }
            schedule(power, Action::Reboot);
        });
        if let Err(e) = spawned {
            crate::log::warn(format_args!("cannot schedule the reboot: {e}"));
        }
        "after-backup"
    }

    pub fn poweroff(&mut self) -> &'static str {
        schedule(self.board.power.clone(), Action::PowerOff)
    }
}

/// For workers that finish with a reboot (IncusOS restore).
pub fn reboot_with(power: Power) {
    schedule(power, Action::Reboot);
}

fn schedule(power: Power, action: Action) -> &'static str {
    let what = if action == Action::Reboot { "reboot" } else { "power-off" };
    if power.method == "none" {
        crate::log::info(format_args!("{what} requested: this board's power method is none, nothing happens"));
        return "none";
    }
    // Outside the worker budget: a power action is never refused.
    let spawned = crate::workers::detached("power", move || {
        std::thread::sleep(POWER_DELAY);
        match power.method.as_str() {
            "syscall" => {
                rustix::fs::sync();
                let cmd = match action {
                    Action::Reboot => rustix::system::RebootCommand::Restart,
                    Action::PowerOff => rustix::system::RebootCommand::PowerOff,
                };
                if let Err(e) = rustix::system::reboot(cmd) {
                    crate::log::warn(format_args!("{what} failed (needs CAP_SYS_BOOT): {e}"));
                }
            }
            _ => {
                let argv = match action {
                    Action::Reboot => power.command.unwrap_or_default(),
                    Action::PowerOff => power.poweroff_command.unwrap_or_default(),
                };
                if argv.is_empty() {
                    crate::log::warn(format_args!("{what}: the board names no command for it"));
                    return;
                }
                let result = std::process::Command::new(&argv[0]).args(&argv[1..]).status();
                crate::log::info(format_args!("{what} command {argv:?}: {result:?}"));
            }
        }
    });
    if let Err(e) = spawned {
        crate::log::warn(format_args!("cannot schedule the {what}: {e}"));
    }
    "scheduled"
}
