//! The applications a board declares: state, restart, and factory reset of their data.

use super::{Engine, Error};
use crate::board::Application;

pub struct AppState {
    pub version: String,
}

impl Engine {
    pub fn application(&self, name: &str) -> Option<Application> {
        self.board.applications.iter().find(|a| a.name == name).cloned()
    }

    pub fn app_state(&self, app: &Application) -> AppState {
        let version = app
            .version_file
            .as_ref()
            .and_then(|f| self.root.read_limited(f, 4096).ok())
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default();
        AppState { version }
    }

    /// Runs the application's restart command on its own thread; false if it has none.
    pub fn restart_app(&self, app: &Application) -> bool {
        restart(app.clone())
    }

    /// Empties the application's data directories (the directories themselves stay), then
    /// restarts it.
    pub fn reset_app(&self, app: &Application) -> Result<(), Error> {
        for dir in &app.paths {
            let path = self.root.path(dir);
            let entries = match std::fs::read_dir(&path) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Io(format!("resetting {dir}: {e}"))),
            };
            for entry in entries.flatten() {
                let p = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let result = if is_dir { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                result.map_err(|e| Error::Io(format!("resetting {}: {e}", p.display())))?;
            }
        }
        restart(app.clone());
        Ok(())
    }
}

/// Restart after the answer went out (the application's clients expect an EOF).
pub fn restart(app: Application) -> bool {
    let Some(argv) = app.restart else {
        crate::log::info(format_args!("application {}: no restart command on this board", app.name));
        return false;
    };
    let queued = crate::workers::queue("app-restart", move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let status = std::process::Command::new(&argv[0]).args(&argv[1..]).stdin(std::process::Stdio::null()).status();
        crate::log::info(format_args!("application {} restart {argv:?}: {status:?}", app.name));
    });
    queued.is_ok()
}
