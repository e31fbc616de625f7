//! Append-only audit log: one line per security-relevant event, never a secret.
//!
//! Line format (tab-separated, so targets with commas or spaces need no quoting):
//! `2026-11-22T21:48:55Z<TAB>127.0.0.1<TAB>token.update.success<TAB>/api/v1/admin/setup`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::time;

pub struct Audit {
    file: Option<File>,
    /// Who the request being handled acts as (`token`, `key:NAME`, `cert:NAME`), logged in
    /// the last column; `-` before authentication.
    pub actor: std::borrow::Cow<'static, str>,
}

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        Ok(Audit { file: Some(file), actor: "-".into() })
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
        line.push_str(&self.actor);
        line.push('\n');
        if let Err(e) = file.write_all(line.as_bytes()) {
            crate::log::warn(format_args!("audit log write failed: {e}"));
        }
    }
}
