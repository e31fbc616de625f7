//! Rebooting the box, by the board's power method, shortly after the answer went out.

use std::time::Duration;

use super::Engine;

/// Time for the 202 to reach the client before the system goes down.
const REBOOT_DELAY: Duration = Duration::from_secs(1);

impl Engine {
    /// Schedules the reboot; returns what will happen, for the log.
    pub fn reboot(&mut self) -> &'static str {
        let power = self.board.power.clone();
        if power.method == "none" {
            crate::log::info(format_args!("reboot requested: this board's power method is none, nothing happens"));
            return "none";
        }
        let spawned = std::thread::Builder::new().name("reboot".into()).spawn(move || {
            std::thread::sleep(REBOOT_DELAY);
            match power.method.as_str() {
                "syscall" => {
                    rustix::fs::sync();
                    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::Restart) {
                        crate::log::warn(format_args!("reboot failed (needs CAP_SYS_BOOT): {e}"));
                    }
                }
                _ => {
                    let argv = power.command.unwrap_or_default();
                    let result = std::process::Command::new(&argv[0]).args(&argv[1..]).status();
                    crate::log::info(format_args!("reboot command {argv:?}: {result:?}"));
                }
            }
        });
        if let Err(e) = spawned {
            crate::log::warn(format_args!("cannot schedule the reboot: {e}"));
        }
        "scheduled"
    }
}
