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
    /// Schedules a reboot; returns what will happen, for the audit log.
    pub fn reboot(&mut self) -> &'static str {
        schedule(self.board.power.clone(), Action::Reboot)
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
    let spawned = std::thread::Builder::new().name("power".into()).spawn(move || {
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
