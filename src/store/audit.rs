//! Append-only audit log: one line per security-relevant event, never a secret.
//!
//! Line format (tab-separated, so targets with commas or spaces need no quoting):
//! `2026-11-22T21:48:55Z<TAB>127.0.0.1<TAB>token.update.success<TAB>/api/v1/admin/setup`

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::time;

pub struct Audit {
    file: Option<File>,
    /// Who the request being handled acts as, logged in the last column.
    pub actor: Actor,
}

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

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        Ok(Audit { file: Some(file), actor: Actor::Nobody })
    }

    /// Records one event. A write failure is reported on stderr but never fails the request:
    /// a full disk must not lock the owner out of the box that needs fixing.
    pub fn record(&mut self, client: IpAddr, action: &str, target: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut line = String::with_capacity(96);
        line.push_str(&time::rfc3339(std::time::SystemTime::now()));
        line.push('\t');
        line.push_str(&client.to_string());
        line.push('\t');
        line.push_str(action);
        line.push('\t');
        // Targets come from the wire (paths); keep the log one line per event.
        line.extend(target.chars().map(|c| if c.is_control() { '?' } else { c }));
        line.push('\t');
        let _ = writeln!(line, "{}", self.actor);
        if let Err(e) = file.write_all(line.as_bytes()) {
            crate::log::warn(format_args!("audit log write failed: {e}"));
        }
    }
}
