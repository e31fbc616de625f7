//! Append-only audit log: one line per security-relevant event, never a secret.
//!
//! Line format (tab-separated, so targets with commas or spaces need no quoting): time,
//! client, action, target, actor, surface —
//! `2026-11-22T21:48:55Z<TAB>127.0.0.1<TAB>restore<TAB>app<TAB>token<TAB>incus`.
//! One operation has one action name whichever surface asked for it; the surface is a field.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::time;

pub struct Audit {
    file: Option<File>,
    path: std::path::PathBuf,
    /// Bytes in the current file, for rotation.
    size: u64,
    max_size: u64,
    /// Refusals per client address within their window: the first is written, the rest
    /// counted and summed up in one line when the window ends.
    refusals: Vec<(IpAddr, std::time::Instant, u32)>,
}

/// The audit log and its one rotated copy (`audit.log.1`) together stay under twice this.
pub const AUDIT_MAX_BYTES: u64 = 1024 * 1024;
/// What a line quotes from a request (a path, a key name) is cut here: a 16,000-byte path
/// must not cost 16,000 bytes of log per request.
pub const AUDIT_QUOTE_MAX: usize = 200;
/// Addresses whose refusals are being counted at once.
const REFUSAL_SLOTS: usize = 256;

/// Who an audited action was done as: `-` before authentication, `token`, `key:NAME`,
/// `cert:NAME`. The names are shared with the key or certificate, not copied per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Actor {
    #[default]
    Nobody,
    Token,
    Key(std::sync::Arc<str>),
    Cert(std::sync::Arc<str>),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Actor::Nobody => f.write_str("-"),
            Actor::Token => f.write_str("token"),
            Actor::Key(name) => write!(f, "key:{name}"),
            Actor::Cert(name) => write!(f, "cert:{name}"),
        }
    }
}

/// Who did an audited thing, and through which surface: passed with each event rather than
/// kept in the log between requests.
#[derive(Clone, Debug)]
pub struct Who {
    pub client: IpAddr,
    pub actor: Actor,
    /// `jidoteki`, `incus`, `backrest`, `records`, or `-` outside any surface.
    pub surface: &'static str,
}

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        Audit::open_with_limit(path, AUDIT_MAX_BYTES)
    }

    pub fn open_with_limit(path: &Path, max_size: u64) -> std::io::Result<Audit> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Audit { file: Some(file), path: path.to_owned(), size, max_size, refusals: Vec::new() })
    }

    /// Records a refused request: the first from an address in `crate::limits::AUDIT_COALESCE`
    /// is written, the rest of that window become one "N more refused" line. A refusal of a
    /// known principal (a key without the capability) is always written.
    pub fn record_refusal(&mut self, who: &Who, action: &str, target: &str) {
        if who.actor != Actor::Nobody {
            return self.record(who, action, target);
        }
        let client = who.client;
        let now = std::time::Instant::now();
        let window = crate::limits::AUDIT_COALESCE;
        if let Some(i) = self.refusals.iter().position(|(a, _, _)| *a == client) {
            let (_, since, count) = self.refusals[i];
            if now.duration_since(since) < window {
                self.refusals[i].2 += 1;
                return;
            }
            self.refusals.swap_remove(i);
            if count > 0 {
                self.record(who, "request.refused.more", &format!("{count} more refused in {} s", window.as_secs()));
            }
        }
        if self.refusals.len() >= REFUSAL_SLOTS {
            let (i, _) = self.refusals.iter().enumerate().min_by_key(|(_, r)| r.1).expect("full");
            let (addr, _, count) = self.refusals.swap_remove(i);
            if count > 0 {
                let other = Who { client: addr, ..who.clone() };
                self.record(&other, "request.refused.more", &format!("{count} more refused"));
            }
        }
        self.refusals.push((client, now, 0));
        self.record(who, action, target);
    }

    /// Records one event. A write failure is reported on stderr but never fails the request:
    /// a full disk must not lock the owner out of the box that needs fixing.
    pub fn record(&mut self, who: &Who, action: &str, target: &str) {
        if self.size >= self.max_size {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut line = String::with_capacity(96);
        line.push_str(&time::rfc3339(std::time::SystemTime::now()));
        line.push('\t');
        line.push_str(&who.client.to_string());
        line.push('\t');
        line.push_str(action);
        line.push('\t');
        // Targets come from the wire (paths); keep the log one line per event, and short.
        for (quoted, (at, c)) in target.char_indices().enumerate() {
            if quoted == AUDIT_QUOTE_MAX {
                let _ = write!(line, "…(+{} bytes)", target.len() - at);
                break;
            }
            line.push(if c.is_control() { '?' } else { c });
        }
        line.push('\t');
        let _ = writeln!(line, "{}\t{}", who.actor, who.surface);
        match file.write_all(line.as_bytes()) {
            Ok(()) => self.size += line.len() as u64,
            Err(e) => crate::log::warn(format_args!("audit log write failed: {e}")),
        }
    }

    /// The current file becomes `audit.log.1` (replacing the previous one) and a new one
    /// starts: the log's room on the data filesystem is bounded.
    fn rotate(&mut self) {
        let old = self.path.with_extension("log.1");
        self.file = None;
        if let Err(e) = std::fs::rename(&self.path, &old) {
            crate::log::warn(format_args!("audit log rotation failed: {e}"));
        }
        match open_append(&self.path) {
            Ok(f) => {
                self.size = 0;
                self.file = Some(f);
            }
            Err(e) => crate::log::warn(format_args!("audit log reopen failed: {e}")),
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_quotes_short_and_coalesces_refusals() {
        let dir = std::env::temp_dir().join(format!("steward-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let mut a = Audit::open_with_limit(&path, 4096).unwrap();
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        a.record(&Who { client: peer, actor: Actor::Nobody, surface: "-" }, "x", &"A".repeat(16_000));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 400 && text.contains("…(+15800 bytes)"), "{text}");
        for _ in 0..1000 {
            a.record_refusal(
                &Who { client: peer, actor: Actor::Nobody, surface: "-" },
                "token.authenticate.failed",
                "/api/v1/admin/x",
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("token.authenticate.failed").count(), 1, "{text}");
        for i in 0..200 {
            a.record(&Who { client: peer, actor: Actor::Nobody, surface: "-" }, "y", &format!("line {i}"));
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 4096 + 200 && size(&dir.join("audit.log.1")) <= 4096 + 400);
        assert!(std::fs::read_to_string(&path).unwrap().contains("line 199"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
