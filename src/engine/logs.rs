//! `logs.tar.gz`: the board's log directories and steward's own logs, archived and
//! compressed on a producer thread while the response streams. Nothing is staged on disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::Engine;

impl Engine {
    /// Starts writing the archive into `out`; the thread ends when it is done or the client
    /// went away.
    pub fn stream_logs<W: Write + Send + 'static>(
        &self,
        out: W,
        finish: impl FnOnce(W) -> std::io::Result<()> + Send + 'static,
    ) {
        let dirs: Vec<(String, PathBuf)> =
            self.board.logs.iter().map(|d| (d.trim_start_matches('/').to_owned(), self.root.path(d))).collect();
        let own: Vec<(String, PathBuf)> = vec![
            ("steward/audit.log".into(), self.data.join("audit.log")),
            ("steward/update.log".into(), self.data.join("jobs/update.log")),
            ("steward/certs.log".into(), self.data.join("jobs/certs.log")),
        ];
        let spawned = std::thread::Builder::new().name("logs".into()).spawn(move || {
            let result = (|| -> std::io::Result<W> {
                let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
                // Symlinks are archived as links, never followed out of the log dirs.
                tar.follow_symlinks(false);
                for (name, dir) in &dirs {
                    if dir.is_dir() {
                        tar.append_dir_all(name, dir)?;
                    }
                }
                for (name, file) in &own {
                    append_file(&mut tar, name, file)?;
                }
                tar.into_inner()?.finish()
            })();
            match result {
                Ok(out) => {
                    let _ = finish(out);
                }
                Err(e) => crate::log::warn(format_args!("logs archive stopped: {e}")),
            }
        });
        if let Err(e) = spawned {
            crate::log::warn(format_args!("cannot start the logs archive: {e}"));
        }
    }
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(mut f) => tar.append_file(name, &mut f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
