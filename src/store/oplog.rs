//! The operation history: an append-only journal of checksummed JSON lines, one line per
//! change of an operation, compacted by rewriting the live records when the file has grown
//! to twice their size.
//!
//! Each record is stored in the wire form the Backrest RPCs answer with (protojson field
//! names, 64-bit integers as strings), so a query copies stored bytes instead of rebuilding
//! them. Memory holds a fixed-size index entry per operation (ids, status, plan, where the
//! record sits in the file), not the records: 10,000 operations cost well under 1 MiB.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use miniserde::{Deserialize, json};

use super::atomic;
use crate::json::Object;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    InProgress,
    Success,
    Warning,
    Error,
    SystemCancelled,
    UserCancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::InProgress,
        Status::Success,
        Status::Warning,
        Status::Error,
        Status::SystemCancelled,
        Status::UserCancelled,
    ];

    /// The Backrest enum name.
    pub fn wire(self) -> &'static str {
        match self {
            Status::Pending => "STATUS_PENDING",
            Status::InProgress => "STATUS_INPROGRESS",
            Status::Success => "STATUS_SUCCESS",
            Status::Warning => "STATUS_WARNING",
            Status::Error => "STATUS_ERROR",
            Status::SystemCancelled => "STATUS_SYSTEM_CANCELLED",
            Status::UserCancelled => "STATUS_USER_CANCELLED",
        }
    }

    pub fn from_wire(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.wire() == s || &st.wire()[7..] == s)
    }

    pub fn finished(self) -> bool {
        !matches!(self, Status::Pending | Status::InProgress)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Backup,
    Restore,
    Forget,
    Check,
    /// Erasing a drive (`/1.0/system/storage/:wipe-drive`); no plan.
    Wipe,
}

impl Kind {
    /// The key of the operation's oneof member in Backrest's JSON.
    fn wire(self) -> &'static str {
        match self {
            Kind::Backup => "operationBackup",
            Kind::Restore => "operationRestore",
            Kind::Forget => "operationForget",
            Kind::Check => "operationCheck",
            Kind::Wipe => "operationWipe",
        }
    }
}

/// One step of a job, for the job descriptors of the container-backups surface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub caption: String,
    pub started_ms: i64,
    pub completed_ms: i64,
}

/// What a backup produced: the file and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The applications (or `steward` for its own state) the archive holds.
    pub containers: Vec<String>,
    pub deleted_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: u64,
    pub modno: u64,
    pub flow_id: u64,
    pub plan_id: String,
    pub kind: Kind,
    pub status: Status,
    pub start_ms: i64,
    pub end_ms: i64,
    pub message: String,
    pub logref: String,
    /// The backup this operation made (backup) or used (restore); a backup's is its own id.
    pub snapshot: Option<u64>,
    pub artifact: Option<Artifact>,
    pub steps: Vec<Step>,
    /// Backups a retention pass removed.
    pub forgotten: Vec<u64>,
    /// The drive a wipe erases (its id), and whether every block is overwritten.
    pub drive: String,
    pub secure: bool,
}

impl Operation {
    /// Its archive is still on disk.
    pub fn has_live_artifact(&self) -> bool {
        self.artifact.as_ref().is_some_and(|a| a.deleted_ms == 0)
    }

    /// A backup that ended well and whose archive is kept: what can be restored or listed.
    pub fn is_kept_backup(&self) -> bool {
        self.kind == Kind::Backup
            && matches!(self.status, Status::Success | Status::Warning)
            && self.has_live_artifact()
    }

    pub fn new(kind: Kind, plan_id: &str, now_ms: i64) -> Operation {
        Operation {
            id: 0,
            modno: 0,
            flow_id: 0,
            plan_id: plan_id.to_owned(),
            kind,
            status: Status::Pending,
            start_ms: now_ms,
            end_ms: 0,
            message: String::new(),
            logref: String::new(),
            snapshot: None,
            artifact: None,
            steps: Vec::new(),
            forgotten: Vec::new(),
            drive: String::new(),
            secure: false,
        }
    }
}

/// Backup ids look like the platform's object ids: 24 hex digits.
pub fn snapshot_id(n: u64) -> String {
    format!("{n:024x}")
}

pub fn parse_snapshot_id(s: &str) -> Option<u64> {
    if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The fields of Backrest's `Operation` message that every form of an operation has, in its
/// order; `repo_guid` where the form carries one (Backrest's own answers do).
pub fn wire_fields(op: &Operation, repo_guid: Option<&str>) -> Object {
    let mut o = Object::new()
        .str("id", &op.id.to_string())
        .str("modno", &op.modno.to_string())
        .str("flowId", &op.flow_id.to_string())
        .str("repoId", "local");
    if let Some(guid) = repo_guid {
        o = o.str("repoGuid", guid);
    }
    o = o
        .str("planId", &op.plan_id)
        .str("instanceId", "steward")
        .str("status", op.status.wire())
        .str("unixTimeStartMs", &op.start_ms.to_string());
    if op.end_ms != 0 {
        o = o.str("unixTimeEndMs", &op.end_ms.to_string());
    }
    if let Some(s) = op.snapshot {
        o = o.str("snapshotId", &snapshot_id(s));
    }
    if !op.message.is_empty() {
        o = o.str("displayMessage", &op.message);
    }
    if !op.logref.is_empty() {
        o = o.str("logref", &op.logref);
    }
    o
}

/// Backrest's protojson form, plus steward's fields (`steps`, the artifact) where a client
/// that does not know them ignores them.
pub fn to_wire(op: &Operation) -> String {
    let mut o = wire_fields(op, None);
    let mut member = Object::new();
    if let Some(a) = &op.artifact {
        member = member
            .str("path", &a.path)
            .str("size", &a.size.to_string())
            .str("sha256", &a.sha256)
            .raw("containers", &crate::json::str_array(a.containers.iter().map(String::as_str)));
        if a.deleted_ms != 0 {
            member = member.str("deletedMs", &a.deleted_ms.to_string());
        }
    }
    if op.kind == Kind::Wipe {
        member = member.str("drive", &op.drive).bool("secureWipe", op.secure);
    }
    if op.kind == Kind::Forget {
        let ids: Vec<String> = op.forgotten.iter().map(|n| snapshot_id(*n)).collect();
        member = member.raw("forgotten", &crate::json::str_array(ids.iter().map(String::as_str)));
    }
    o = o.raw(op.kind.wire(), &member.finish());
    if !op.steps.is_empty() {
        let mut steps = String::from("[");
        for (i, s) in op.steps.iter().enumerate() {
            if i > 0 {
                steps.push(',');
            }
            steps.push_str(
                &Object::new()
                    .str("caption", &s.caption)
                    .str("startedMs", &s.started_ms.to_string())
                    .str("completedMs", &s.completed_ms.to_string())
                    .finish(),
            );
        }
        steps.push(']');
        o = o.raw("steps", &steps);
    }
    o.finish()
}

#[derive(Deserialize, Default)]
struct WireMember {
    path: Option<String>,
    size: Option<String>,
    sha256: Option<String>,
    containers: Option<Vec<String>>,
    #[serde(rename = "deletedMs")]
    deleted_ms: Option<String>,
    forgotten: Option<Vec<String>>,
    drive: Option<String>,
    #[serde(rename = "secureWipe")]
    secure: Option<bool>,
}

#[derive(Deserialize)]
struct WireStep {
    caption: String,
    #[serde(rename = "startedMs")]
    started_ms: String,
    #[serde(rename = "completedMs")]
    completed_ms: String,
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    modno: String,
    #[serde(rename = "flowId")]
    flow_id: String,
    #[serde(rename = "planId")]
    plan_id: String,
    status: String,
    #[serde(rename = "unixTimeStartMs")]
    start_ms: String,
    #[serde(rename = "unixTimeEndMs")]
    end_ms: Option<String>,
    #[serde(rename = "snapshotId")]
    snapshot_id: Option<String>,
    #[serde(rename = "displayMessage")]
    message: Option<String>,
    logref: Option<String>,
    #[serde(rename = "operationBackup")]
    backup: Option<WireMember>,
    #[serde(rename = "operationRestore")]
    restore: Option<WireMember>,
    #[serde(rename = "operationForget")]
    forget: Option<WireMember>,
    #[serde(rename = "operationCheck")]
    check: Option<WireMember>,
    #[serde(rename = "operationWipe")]
    wipe: Option<WireMember>,
    steps: Option<Vec<WireStep>>,
}

pub fn from_wire(text: &str) -> Option<Operation> {
    let w: Wire = json::from_str(text).ok()?;
    let int = |s: &str| s.parse::<i64>().ok();
    let (kind, member) = match (w.backup, w.restore, w.forget, w.check, w.wipe) {
        (Some(m), None, None, None, None) => (Kind::Backup, m),
        (None, Some(m), None, None, None) => (Kind::Restore, m),
        (None, None, Some(m), None, None) => (Kind::Forget, m),
        (None, None, None, Some(m), None) => (Kind::Check, m),
        (None, None, None, None, Some(m)) => (Kind::Wipe, m),
        _ => return None,
    };
    let artifact = match &member.path {
        Some(path) => Some(Artifact {
            path: path.clone(),
            size: member.size.as_deref()?.parse().ok()?,
            sha256: member.sha256.clone().unwrap_or_default(),
            containers: member.containers.clone().unwrap_or_default(),
            deleted_ms: member.deleted_ms.as_deref().map(int).unwrap_or(Some(0))?,
        }),
        None => None,
    };
    let mut steps = Vec::new();
    for s in w.steps.unwrap_or_default() {
        steps.push(Step { caption: s.caption, started_ms: int(&s.started_ms)?, completed_ms: int(&s.completed_ms)? });
    }
    // Each kind reads only its own fields, as `to_wire` writes only those.
    let mut forgotten = Vec::new();
    if kind == Kind::Forget {
        for f in member.forgotten.unwrap_or_default() {
            forgotten.push(parse_snapshot_id(&f)?);
        }
    }
    let (drive, secure) = match kind {
        Kind::Wipe => (member.drive.unwrap_or_default(), member.secure.unwrap_or(false)),
        _ => (String::new(), false),
    };
    Some(Operation {
        id: w.id.parse().ok()?,
        modno: w.modno.parse().ok()?,
        flow_id: w.flow_id.parse().ok()?,
        plan_id: w.plan_id,
        kind,
        status: Status::from_wire(&w.status)?,
        start_ms: int(&w.start_ms)?,
        end_ms: w.end_ms.as_deref().map(int).unwrap_or(Some(0))?,
        message: w.message.unwrap_or_default(),
        logref: w.logref.unwrap_or_default(),
        snapshot: match w.snapshot_id {
            Some(s) => Some(parse_snapshot_id(&s)?),
            None => None,
        },
        artifact,
        steps,
        forgotten,
        drive,
        secure,
    })
}

/// What a query filters on, kept in memory for every operation.
#[derive(Clone, Debug)]
struct Entry {
    modno: u64,
    flow_id: u64,
    plan: u32,
    snapshot: Option<u64>,
    status: Status,
    kind: Kind,
    start_ms: i64,
    live_artifact: bool,
    offset: u64,
    len: u32,
}

/// A Backrest `OpSelector`; empty fields match everything.
#[derive(Default, Debug)]
pub struct Selector {
    pub ids: Vec<u64>,
    pub plan_id: Option<String>,
    pub flow_id: Option<u64>,
    pub snapshot: Option<u64>,
    pub modno_gte: Option<u64>,
}

pub struct OpLog {
    path: PathBuf,
    file: File,
    len: u64,
    live_bytes: u64,
    entries: BTreeMap<u64, Entry>,
    plans: Vec<String>,
    next_id: u64,
    modno: u64,
    /// The latest removals, each with the modno it took: what `removed_since` tells a
    /// follower of the history (Backrest's `deletedOperations`). Bounded; not kept on disk.
    removed: std::collections::VecDeque<(u64, u64)>,
    /// Counted on open: records that failed their checksum or did not parse.
    pub skipped: usize,
}

const META: &str = "M";
/// Removals remembered for followers; one that falls further behind reads the history anew.
const REMEMBERED_REMOVALS: usize = 256;
/// What a line adds to its record: a tab, 16 hex digits of checksum, a newline.
const RECORD_OVERHEAD: u64 = 18;
/// Below this the journal is never worth rewriting.
const COMPACT_FLOOR: u64 = 64 * 1024;

fn checksum(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::hex::to_hex(&d.as_ref()[..8])
}

fn line(text: &str) -> String {
    format!("{text}\t{}\n", checksum(text))
}

/// The record of a line whose checksum holds.
fn verified(line: &str) -> Option<&str> {
    let (text, sum) = line.rsplit_once('\t')?;
    (checksum(text) == sum).then_some(text)
}

impl OpLog {
    /// Loads the journal, skipping records that are torn or corrupt, and settles what a
    /// stop interrupted: INPROGRESS becomes ERROR, PENDING is dropped (nobody waits for it
    /// any more). The journal is rewritten compact, so a torn tail never meets an append.
    /// Read a line at a time: only the index is ever held, never the records.
    pub fn open(path: &Path, now_ms: i64) -> io::Result<OpLog> {
        let file = OpenOptions::new().create(true).append(true).read(true).mode(0o600).open(path)?;
        let mut log = OpLog {
            path: path.to_owned(),
            file,
            len: 0,
            live_bytes: 0,
            entries: BTreeMap::new(),
            plans: Vec::new(),
            next_id: 1,
            modno: 0,
            skipped: 0,
            removed: Default::default(),
        };
        let mut reader = io::BufReader::with_capacity(64 * 1024, log.file.try_clone()?);
        let (mut offset, mut raw, mut meta_bytes) = (0u64, Vec::new(), 0u64);
        loop {
            raw.clear();
            let n = reader.read_until(b'\n', &mut raw)?;
            if n == 0 {
                break;
            }
            let start = offset;
            offset += n as u64;
            let Some(record) = raw.strip_suffix(b"\n").and_then(|r| std::str::from_utf8(r).ok()).and_then(verified)
            else {
                log.skipped += 1;
                continue;
            };
            if let Some(meta) = record.strip_prefix(META) {
                meta_bytes += n as u64;
                let mut it = meta.split_whitespace().map(str::parse::<u64>);
                if let (Some(Ok(n)), Some(Ok(m))) = (it.next(), it.next()) {
                    log.next_id = log.next_id.max(n);
                    log.modno = log.modno.max(m);
                }
                continue;
            }
            match from_wire(record) {
                Some(op) => {
                    log.next_id = log.next_id.max(op.id + 1);
                    log.modno = log.modno.max(op.modno);
                    let entry = log.entry(&op, start, record.len() as u32);
                    log.entries.insert(op.id, entry);
                }
                None => log.skipped += 1,
            }
        }
        drop(reader);
        let loaded = log.entries.len();
        log.entries.retain(|_, e| e.status != Status::Pending);
        let dropped = log.entries.len() != loaded;
        let mut settled = BTreeMap::new();
        let interrupted: Vec<u64> =
            log.entries.iter().filter(|(_, e)| e.status == Status::InProgress).map(|(id, _)| *id).collect();
        for id in interrupted {
            if let Some(mut op) = log.get(id) {
                log.modno += 1;
                op.modno = log.modno;
                op.status = Status::Error;
                op.end_ms = now_ms;
                op.message = "interrupted by restart".into();
                settled.insert(id, op);
            }
        }
        if log.skipped == 0 && !dropped && settled.is_empty() {
            // Nothing to mend: the journal is used as it is (a rewrite at every start would
            // read and write it all, wearing flash for nothing), compacted only if bloated.
            log.len = offset;
            log.live_bytes = meta_bytes + log.entries.values().map(|e| u64::from(e.len) + RECORD_OVERHEAD).sum::<u64>();
            log.compact_if_needed()?;
        } else {
            log.rewrite(|_| true, settled)?;
        }
        Ok(log)
    }

    fn plan_index(&mut self, plan: &str) -> u32 {
        match self.plans.iter().position(|p| p == plan) {
            Some(i) => i as u32,
            None => {
                self.plans.push(plan.to_owned());
                (self.plans.len() - 1) as u32
            }
        }
    }

    fn entry(&mut self, op: &Operation, offset: u64, len: u32) -> Entry {
        Entry {
            modno: op.modno,
            flow_id: op.flow_id,
            plan: self.plan_index(&op.plan_id),
            snapshot: op.snapshot,
            status: op.status,
            kind: op.kind,
            start_ms: op.start_ms,
            live_artifact: op.has_live_artifact(),
            offset,
            len,
        }
    }

    /// Writes the kept operations as the whole journal (temp file, fsync, rename), copying
    /// each record from the current journal unless `changed` has a newer version of it.
    fn rewrite(&mut self, keep: impl Fn(u64) -> bool, mut changed: BTreeMap<u64, Operation>) -> io::Result<()> {
        let mut entries = BTreeMap::new();
        let old: Vec<(u64, Entry)> =
            std::mem::take(&mut self.entries).into_iter().filter(|(id, _)| keep(*id)).collect();
        let mut len = 0u64;
        let meta = line(&format!("{META} {} {}", self.next_id, self.modno));
        let source = &self.file;
        atomic::write_with(&self.path, 0o600, |file| {
            let mut out = io::BufWriter::with_capacity(64 * 1024, file);
            out.write_all(meta.as_bytes())?;
            len = meta.len() as u64;
            for (id, mut entry) in old {
                let text = match changed.remove(&id) {
                    Some(op) => {
                        entry.status = op.status;
                        entry.modno = op.modno;
                        to_wire(&op)
                    }
                    None => {
                        let mut buf = vec![0u8; entry.len as usize];
                        source.read_exact_at(&mut buf, entry.offset)?;
                        String::from_utf8(buf).map_err(|_| io::Error::other("record not UTF-8"))?
                    }
                };
                entry.offset = len;
                entry.len = text.len() as u32;
                let record = format!("{text}\t{}\n", checksum(&text));
                out.write_all(record.as_bytes())?;
                len += record.len() as u64;
                entries.insert(id, entry);
            }
            out.flush()
        })?;
        self.file = OpenOptions::new().append(true).read(true).open(&self.path)?;
        self.len = len;
        self.live_bytes = len;
        self.entries = entries;
        Ok(())
    }

    /// Keeps the journal within twice its live size.
    fn compact_if_needed(&mut self) -> io::Result<()> {
        if self.len < COMPACT_FLOOR || self.len <= 2 * self.live_bytes {
            return Ok(());
        }
        self.rewrite(|_| true, BTreeMap::new())
    }

    /// Stores a new operation, giving it its id (and its flow id, unless it joins a flow).
    pub fn create(&mut self, op: &mut Operation) -> io::Result<u64> {
        op.id = self.next_id;
        self.next_id += 1;
        if op.flow_id == 0 {
            op.flow_id = op.id;
        }
        if op.kind == Kind::Backup && op.snapshot.is_none() {
            op.snapshot = Some(op.id);
        }
        self.put(op)?;
        Ok(op.id)
    }

    /// Stores a change to an operation; every change gets the next modno.
    pub fn put(&mut self, op: &mut Operation) -> io::Result<()> {
        self.modno += 1;
        op.modno = self.modno;
        let wire = to_wire(op);
        let record = line(&wire);
        self.file.write_all(record.as_bytes())?;
        self.file.sync_data()?;
        let offset = self.len;
        self.len += record.len() as u64;
        let entry = self.entry(op, offset, wire.len() as u32);
        let previous = self.entries.insert(op.id, entry);
        self.live_bytes += record.len() as u64;
        if let Some(p) = previous {
            self.live_bytes -= u64::from(p.len) + RECORD_OVERHEAD;
        }
        self.compact_if_needed()
    }

    /// The stored wire form of an operation.
    pub fn raw(&self, id: u64) -> io::Result<String> {
        let e = self.entries.get(&id).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such operation"))?;
        let mut buf = vec![0u8; e.len as usize];
        self.file.read_exact_at(&mut buf, e.offset)?;
        String::from_utf8(buf).map_err(|_| io::Error::other("operation record is not UTF-8"))
    }

    pub fn get(&self, id: u64) -> Option<Operation> {
        from_wire(&self.raw(id).ok()?)
    }

    /// Ids of the operations the selector matches, oldest first; `last_n` keeps the newest N.
    pub fn select(&self, sel: &Selector, last_n: Option<usize>) -> Vec<u64> {
        let plan = match &sel.plan_id {
            Some(p) => match self.plans.iter().position(|x| x == p) {
                Some(i) => Some(i as u32),
                None => return Vec::new(),
            },
            None => None,
        };
        let matches = |id: &u64, e: &Entry| {
            (sel.ids.is_empty() || sel.ids.contains(id))
                && plan.is_none_or(|p| e.plan == p)
                && sel.flow_id.is_none_or(|f| e.flow_id == f)
                && sel.snapshot.is_none_or(|s| e.snapshot == Some(s))
                && sel.modno_gte.is_none_or(|m| e.modno >= m)
        };
        let mut ids: Vec<u64> = match last_n {
            Some(n) => {
                let mut newest: Vec<u64> =
                    self.entries.iter().rev().filter(|(id, e)| matches(id, e)).map(|(id, _)| *id).take(n).collect();
                newest.reverse();
                newest
            }
            None => self.entries.iter().filter(|(id, e)| matches(id, e)).map(|(id, _)| *id).collect(),
        };
        ids.shrink_to_fit();
        ids
    }

    /// The newest operation of a plan of the given kind.
    pub fn last_of(&self, plan_id: &str, kind: Kind) -> Option<u64> {
        let p = self.plans.iter().position(|x| x == plan_id)? as u32;
        self.entries.iter().rev().find(|(_, e)| e.plan == p && e.kind == kind).map(|(id, _)| *id)
    }

    /// Backups whose file is live (or still being written), oldest first.
    pub fn backups(&self, plan_id: Option<&str>) -> Vec<u64> {
        let p = plan_id.map(|p| self.plans.iter().position(|x| x == p).map(|i| i as u32));
        self.entries
            .iter()
            .filter(|(_, e)| e.kind == Kind::Backup && e.snapshot.is_some())
            .filter(|(_, e)| match p {
                None => true,
                Some(Some(i)) => e.plan == i,
                Some(None) => false,
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Drops the oldest history beyond `keep` operations or older than `max_age_ms`, except
    /// backups whose file is still there (their record is how they are found).
    pub fn trim(&mut self, keep: usize, max_age_ms: i64, now_ms: i64) -> io::Result<Vec<u64>> {
        let excess = self.entries.len().saturating_sub(keep);
        let doomed: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.status.finished() && !e.live_artifact)
            .enumerate()
            .filter(|(i, (_, e))| *i < excess || now_ms - e.start_ms > max_age_ms)
            .map(|(_, (id, _))| *id)
            .collect();
        self.remove(&doomed)?;
        Ok(doomed)
    }

    /// Drops these operations from the history; each removal takes a modno.
    pub fn remove(&mut self, ids: &[u64]) -> io::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let gone: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        for id in &gone {
            self.modno += 1;
            if self.removed.len() == REMEMBERED_REMOVALS {
                self.removed.pop_front();
            }
            self.removed.push_back((self.modno, *id));
        }
        self.rewrite(|id| !gone.contains(&id), BTreeMap::new())
    }

    /// Ids removed at or after `modno`; `None` when that is further back than remembered.
    pub fn removed_since(&self, modno: u64) -> Option<Vec<u64>> {
        if self.removed.front().is_some_and(|(m, _)| *m > modno) && self.removed.len() == REMEMBERED_REMOVALS {
            return None;
        }
        Some(self.removed.iter().filter(|(m, _)| *m >= modno).map(|(_, id)| *id).collect())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The newest id given out (ids are never reused; that operation may be gone since).
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    /// The last change's modno: a follower's mark.
    pub fn modno(&self) -> u64 {
        self.modno
    }

    #[cfg(test)]
    /// Bytes in the journal and bytes its live records take.
    pub fn sizes(&self) -> (u64, u64) {
        (self.len, self.live_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("steward-oplog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("operations.log")
    }

    fn backup(log: &mut OpLog, plan: &str, status: Status) -> u64 {
        let mut op = Operation::new(Kind::Backup, plan, 1_000);
        op.status = status;
        op.artifact =
            Some(Artifact { path: format!("/b/{plan}.tar"), size: 10, sha256: "ab".into(), ..Default::default() });
        log.create(&mut op).unwrap()
    }

    #[test]
    fn wire_form_round_trips() {
        let mut op = Operation::new(Kind::Forget, "nightly", 5);
        op.id = 7;
        op.modno = 9;
        op.flow_id = 6;
        op.status = Status::Warning;
        op.message = "tab\there \"quoted\"".into();
        op.forgotten = vec![1, 2];
        op.steps = vec![Step { caption: "Removing".into(), started_ms: 5, completed_ms: 6 }];
        let wire = to_wire(&op);
        assert!(wire.contains(r#""id":"7""#) && wire.contains(r#""status":"STATUS_WARNING""#), "{wire}");
        assert_eq!(from_wire(&wire), Some(op));
    }

    /// Found by the wire_types fuzz target: a backup record carrying a forget's field read
    /// back into something `to_wire` would not write again.
    #[test]
    fn fields_of_another_kind_are_ignored() {
        let text = r#"{"id":"7","modno":"9","flowId":"6","repoId":"local","planId":"ip","status":"STATUS_SUCCESS","unixTimeStartMs":"6","operationBackup":{"forgotten":["000000000000000000000000"],"drive":"/dev/sda"}}"#;
        let op = from_wire(text).unwrap();
        assert!(op.forgotten.is_empty() && op.drive.is_empty());
        assert_eq!(from_wire(&to_wire(&op)), Some(op));
    }

    #[test]
    fn restart_settles_interrupted_work_and_skips_a_torn_tail() {
        let path = temp("restart");
        let mut log = OpLog::open(&path, 0).unwrap();
        let done = backup(&mut log, "a", Status::Success);
        let running = backup(&mut log, "a", Status::InProgress);
        let pending = backup(&mut log, "b", Status::Pending);
        drop(log);
        // A record torn by a crash mid-write, then one whose bytes rotted.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":\"99\",\"modno\":\"1").unwrap();
        drop(f);
        let log = OpLog::open(&path, 42).unwrap();
        assert_eq!(log.skipped, 1);
        assert_eq!(log.get(done).unwrap().status, Status::Success);
        let r = log.get(running).unwrap();
        assert_eq!((r.status, r.message.as_str(), r.end_ms), (Status::Error, "interrupted by restart", 42));
        assert!(log.get(pending).is_none(), "pending work is dropped");
        drop(log);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replacen("STATUS_SUCCESS", "STATUS_SUCCESs", 1);
        std::fs::write(&path, text).unwrap();
        let mut log = OpLog::open(&path, 50).unwrap();
        assert_eq!(log.skipped, 1, "a corrupt record in the middle is skipped too");
        assert!(log.get(done).is_none());
        let next = backup(&mut log, "a", Status::Success);
        assert!(next > pending, "ids are never reused");
    }

    #[test]
    fn selectors_filter_and_modno_tracks_changes() {
        let path = temp("select");
        let mut log = OpLog::open(&path, 0).unwrap();
        let a1 = backup(&mut log, "a", Status::Success);
        let b1 = backup(&mut log, "b", Status::Success);
        let mut forget = Operation::new(Kind::Forget, "a", 2);
        forget.flow_id = a1;
        let f = log.create(&mut forget).unwrap();
        let mark = log.modno() + 1;
        let mut op = log.get(b1).unwrap();
        op.message = "touched".into();
        log.put(&mut op).unwrap();
        let all = |s: Selector| log.select(&s, None);
        assert_eq!(all(Selector::default()), vec![a1, b1, f]);
        assert_eq!(all(Selector { plan_id: Some("a".into()), ..Default::default() }), vec![a1, f]);
        assert_eq!(all(Selector { plan_id: Some("zzz".into()), ..Default::default() }), Vec::<u64>::new());
        assert_eq!(all(Selector { flow_id: Some(a1), ..Default::default() }), vec![a1, f]);
        assert_eq!(all(Selector { ids: vec![f, b1], ..Default::default() }), vec![b1, f]);
        assert_eq!(all(Selector { snapshot: Some(b1), ..Default::default() }), vec![b1]);
        assert_eq!(all(Selector { modno_gte: Some(mark), ..Default::default() }), vec![b1]);
        assert_eq!(log.select(&Selector::default(), Some(2)), vec![b1, f]);
    }

    #[test]
    fn a_clean_journal_is_used_as_it_is() {
        use std::os::unix::fs::MetadataExt;
        let path = temp("clean");
        let mut log = OpLog::open(&path, 0).unwrap();
        let a = backup(&mut log, "a", Status::Success);
        let mut op = log.get(a).unwrap();
        op.message = "touched".into();
        log.put(&mut op).unwrap();
        let sizes = log.sizes();
        drop(log);
        let inode = std::fs::metadata(&path).unwrap().ino();
        let mut log = OpLog::open(&path, 0).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "not rewritten");
        assert_eq!(log.sizes(), sizes, "the same accounting as before the restart");
        assert_eq!(log.get(a).unwrap().message, "touched");
        let b = backup(&mut log, "b", Status::Success);
        drop(log);
        let log = OpLog::open(&path, 0).unwrap();
        assert_eq!(log.select(&Selector::default(), None), vec![a, b]);
    }

    #[test]
    fn the_journal_stays_within_twice_its_live_size_and_trims() {
        let path = temp("compact");
        let mut log = OpLog::open(&path, 0).unwrap();
        let id = backup(&mut log, "a", Status::InProgress);
        let mut op = log.get(id).unwrap();
        for i in 0..2_000 {
            op.message = format!("progress {i}");
            log.put(&mut op).unwrap();
            let (len, live) = log.sizes();
            assert!(len < COMPACT_FLOOR || len <= 2 * live, "{len} > 2 x {live}");
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), log.sizes().0);
        for _ in 0..10 {
            let mut f = Operation::new(Kind::Forget, "a", 0);
            f.status = Status::Success;
            log.create(&mut f).unwrap();
        }
        op.status = Status::Success;
        log.put(&mut op).unwrap();
        assert_eq!(log.trim(3, i64::MAX, 0).unwrap().len(), 8);
        assert_eq!(log.len(), 3);
        assert!(log.get(id).is_some(), "a live backup's record is kept");
        drop(log);
        assert_eq!(OpLog::open(&path, 0).unwrap().len(), 3);
    }
}
