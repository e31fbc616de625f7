//! `logs.tar.gz`: the board's log directories and steward's own logs, archived and
//! compressed on a producer thread while the response streams. Nothing is staged on disk.

use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::Engine;

/// What goes into a logs archive: (name in the archive, path on the system).
pub struct LogSources(Vec<(String, PathBuf)>);

impl LogSources {
    /// Appends every source that exists; a missing one is skipped, a failing one stops.
    pub fn append_to<W: Write>(&self, tar: &mut tar::Builder<W>) -> std::io::Result<()> {
        // Symlinks are archived as links, never followed out of the log dirs.
        tar.follow_symlinks(false);
        for (name, path) in &self.0 {
            if path.is_dir() {
                tar.append_dir_all(name, path)?;
            } else {
                match std::fs::File::open(path) {
                    Ok(mut f) => tar.append_file(name, &mut f)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    pub fn log_sources(&self) -> LogSources {
        let mut sources: Vec<(String, PathBuf)> =
            self.board.logs.iter().map(|d| (d.trim_start_matches('/').to_owned(), self.root.path(d))).collect();
        sources.push(("steward/audit.log".into(), self.data.join("audit.log")));
        sources.push(("steward/update.log".into(), self.data.join("jobs/update.log")));
        sources.push(("steward/certs.log".into(), self.data.join("jobs/certs.log")));
        LogSources(sources)
    }

    /// Starts writing the archive into `out` on a producer thread; `finish` completes the
    /// output when the archive is whole.
    pub fn stream_logs<W: Write + Send + 'static>(
        &self,
        out: W,
        finish: impl FnOnce(W) -> std::io::Result<()> + Send + 'static,
    ) {
        let sources = self.log_sources();
        // The producer's slot is held by `out` (a stream's writer).
        let spawned = crate::workers::detached("logs", move || {
            let result = (|| -> std::io::Result<W> {
                let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
                sources.append_to(&mut tar)?;
                tar.into_inner()?.finish()
            })();
            match result.and_then(finish) {
                Ok(()) => {}
                Err(e) => crate::log::warn(format_args!("logs archive stopped: {e}")),
            }
        });
        if let Err(e) = spawned {
            crate::log::warn(format_args!("cannot start the logs archive: {e}"));
        }
    }
}
