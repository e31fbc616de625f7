//! Running plans: the scheduler (checked from the request loop, no thread of its own), a
//! queue of work, and one worker thread at a time doing the backup, restore or delete. Every
//! piece of work is an operation in the history; its progress is written there as it goes.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::plans::{self, Plan};
use super::{Engine, Error};
use crate::store::atomic;
use crate::store::oplog::{Artifact, Kind, OpLog, Operation, Status, Step, snapshot_id};

/// One entry of a backup's listing.
#[derive(Debug, Default, Clone)]
pub struct ListedEntry {
    pub name: String,
    pub path: String,
    pub directory: bool,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// The plan Backrest files repository-wide work under (its `_system_`).
pub const SYSTEM_PLAN: &str = "_system_";

/// The plan id under which the Jidoteki surface's backup (`POST /backup` START) is recorded
/// in the history; no plan may take it.
pub const JIDOTEKI_PLAN: &str = "jidoteki";

/// The container id under which steward's own state is listed.
pub const STATE_CONTAINER: &str = "steward";
/// History kept: operations beyond this count, or older than a year, are trimmed.
const KEEP_OPERATIONS: usize = 20_000;
pub const KEEP_MS: i64 = 366 * 86_400_000;

pub type Waiter = Box<dyn FnOnce(Option<&Operation>) + Send>;

pub struct Runner {
    pub plans: Vec<Plan>,
    plans_path: PathBuf,
    pub ops: Arc<Mutex<OpLog>>,
    logs: PathBuf,
    queue: VecDeque<u64>,
    running: Option<(u64, Arc<AtomicBool>)>,
    done_tx: Sender<u64>,
    done_rx: Receiver<u64>,
    waiters: Vec<(u64, Waiter)>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    /// The earliest scheduled run, recomputed when plans or their history change.
    next_due_ms: Option<Option<i64>>,
    /// Backups whose delete is queued or running, with the deleting operation.
    pub deleting: BTreeMap<u64, u64>,
    /// Recorded work another mechanism runs (the Jidoteki backup job), with its cancel flag.
    tracked: Vec<(u64, Arc<AtomicBool>)>,
}

/// An operation in the history for work run outside the queue (the Jidoteki backup job, which
/// keeps its own documented status and log): it reads IN_PROGRESS while the work runs, can be
/// cancelled like queued work, and gets its outcome from `end`.
pub struct Tracked {
    ops: Arc<Mutex<OpLog>>,
    logs: PathBuf,
    op: Operation,
    done: Sender<u64>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    ended: bool,
}

impl Tracked {
    pub fn log(&self, line: &str) {
        append(&self.logs, self.op.id, line);
    }

    pub fn end(&mut self, status: Status, message: &str, artifact: Option<Artifact>) {
        self.ended = true;
        self.op.status = status;
        self.op.end_ms = crate::time::unix_millis();
        self.op.message = message.to_owned();
        self.op.artifact = artifact;
        self.log(if message.is_empty() { status.wire() } else { message });
        if let Err(e) = self.ops.lock().unwrap_or_else(|e| e.into_inner()).put(&mut self.op) {
            crate::log::warn(format_args!("operation {}: {e}", self.op.id));
        }
        let _ = self.done.send(self.op.id);
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

/// Work that went away without an outcome (it panicked, or never started) does not read
/// IN_PROGRESS for ever.
impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.ended {
            self.end(Status::Error, "the work ended without an outcome", None);
        }
    }
}

pub fn log_path(logs: &Path, op: u64) -> PathBuf {
    logs.join(format!("op-{op}.log"))
}

fn append(logs: &Path, op: u64, line: &str) {
    use std::io::Write;
    let stamp = crate::time::unix_millis() / 1000;
    let clean: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(log_path(logs, op)) {
        let _ = writeln!(f, "[{stamp}][STEWARD] {clean}");
    }
}

impl Runner {
    pub fn open(data: &Path, now_ms: i64) -> Result<Runner, String> {
        let logs = data.join("oplogs");
        atomic::ensure_private_dir(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let ops = OpLog::open(&data.join("operations.log"), now_ms).map_err(|e| format!("operation history: {e}"))?;
        if ops.skipped > 0 {
            crate::log::warn(format_args!("operation history: skipped {} damaged records", ops.skipped));
        }
        let plans_path = data.join("plans.json");
        let plans = plans::load(&plans_path)?;
        let (done_tx, done_rx) = channel();
        Ok(Runner {
            plans,
            plans_path,
            ops: Arc::new(Mutex::new(ops)),
            logs,
            queue: VecDeque::new(),
            running: None,
            done_tx,
            done_rx,
            waiters: Vec::new(),
            wake: None,
            next_due_ms: None,
            deleting: BTreeMap::new(),
            tracked: Vec::new(),
        })
    }

    pub fn set_wake(&mut self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.wake = Some(wake);
    }

    /// Wakes the request loop (set once it runs).
    pub fn wake(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        self.wake.clone()
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, OpLog> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn logs_dir(&self) -> &Path {
        &self.logs
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    fn save(&mut self) -> Result<(), Error> {
        self.next_due_ms = None;
        plans::store(&self.plans_path, &self.plans).map_err(|e| Error::Io(format!("cannot store the plans: {e}")))
    }

    /// When the plan's schedule counts from: its last backup's start, else its creation.
    fn last_run_ms(&self, plan: &Plan) -> i64 {
        let log = self.log();
        log.last_of(&plan.id, Kind::Backup).and_then(|id| log.get(id)).map(|op| op.start_ms).unwrap_or(plan.created_ms)
    }

    pub fn next_run_ms(&self, plan: &Plan) -> Option<i64> {
        plan.next_run_ms(self.last_run_ms(plan))
    }

    fn earliest_due(&self) -> Option<i64> {
        self.plans.iter().filter_map(|p| self.next_run_ms(p)).min()
    }

    fn has_pending_backup(&self, plan_id: &str) -> Option<u64> {
        let log = self.log();
        self.queue
            .iter()
            .copied()
            .find(|id| log.get(*id).is_some_and(|op| op.kind == Kind::Backup && op.plan_id == plan_id))
    }

    /// Records work that starts now outside the queue; `cancel` is what stops it.
    pub fn track(&mut self, kind: Kind, plan_id: &str, cancel: Arc<AtomicBool>) -> Result<Tracked, Error> {
        let mut op = Operation::new(kind, plan_id, crate::time::unix_millis());
        op.status = Status::InProgress;
        self.log().create(&mut op).map_err(|e| Error::Io(format!("operation history: {e}")))?;
        self.tracked.push((op.id, cancel));
        Ok(Tracked {
            ops: self.ops.clone(),
            logs: self.logs.clone(),
            op,
            done: self.done_tx.clone(),
            wake: self.wake.clone(),
            ended: false,
        })
    }

    /// Marks the latest backup of a plan deleted (its file was removed outside the queue).
    pub fn mark_deleted(&mut self, plan_id: &str) {
        let mut log = self.log();
        let Some(mut op) = log.last_of(plan_id, Kind::Backup).and_then(|id| log.get(id)) else { return };
        if let Some(a) = op.artifact.as_mut().filter(|a| a.deleted_ms == 0) {
            a.deleted_ms = crate::time::unix_millis();
            if let Err(e) = log.put(&mut op) {
                crate::log::warn(format_args!("operation {}: {e}", op.id));
            }
        }
    }

    pub fn enqueue(&mut self, mut op: Operation) -> Result<u64, Error> {
        op.status = Status::Pending;
        let id = self.log().create(&mut op).map_err(|e| Error::Io(format!("operation history: {e}")))?;
        self.queue.push_back(id);
        Ok(id)
    }
}

impl Engine {
    /// Creates or replaces a plan for `by`. A hook of the plan's own (an argument list) runs
    /// any program as steward, so it needs `admin` — unless the plan already had that very
    /// hook, which an admin set: a `backups-manage` client may send a GET's config back
    /// with only the schedule changed.
    pub fn plan_put(
        &mut self,
        text: &str,
        replacing: Option<&str>,
        by: &super::keys::Principal,
    ) -> Result<Plan, Error> {
        let now = crate::time::unix_millis();
        let mut plan =
            plans::Plan::parse(text, &self.board.applications, &self.board.backup, now).map_err(Error::Invalid)?;
        if plan.id == JIDOTEKI_PLAN {
            return Err(Error::Conflict(format!(
                "the plan id {JIDOTEKI_PLAN:?} is taken: the history records the Jidoteki backup under it"
            )));
        }
        if !by.allows(super::keys::Cap::Admin) {
            let current = replacing.and_then(|id| self.plans.plan(id));
            for (what, hook, before) in [
                ("on_success", &plan.on_success, current.map(|p| &p.on_success)),
                ("on_failure", &plan.on_failure, current.map(|p| &p.on_failure)),
            ] {
                if matches!(hook, plans::Hook::Command(_)) && before != Some(hook) {
                    return Err(Error::Forbidden(format!(
                        "hooks.{what}: a command of the plan's own runs any program, which needs the admin capability; name one of the board's hooks instead ({})",
                        self.board.backup.hook_names().join(", ")
                    )));
                }
            }
        }
        let runner = &mut self.plans;
        match replacing {
            Some(id) => {
                if plan.id != id {
                    return Err(Error::Invalid(format!("the plan's id is {id:?}; it cannot be renamed")));
                }
                let slot = runner.plans.iter_mut().find(|p| p.id == id).ok_or(Error::NotFound("plan"))?;
                plan.created_ms = slot.created_ms;
                *slot = plan.clone();
            }
            None => {
                if runner.plan(&plan.id).is_some() {
                    return Err(Error::Conflict(format!("a plan named {:?} exists", plan.id)));
                }
                runner.plans.push(plan.clone());
            }
        }
        runner.save()?;
        Ok(plan)
    }

    pub fn plan_delete(&mut self, id: &str) -> Result<(), Error> {
        let runner = &mut self.plans;
        let before = runner.plans.len();
        runner.plans.retain(|p| p.id != id);
        if runner.plans.len() == before {
            return Err(Error::NotFound("plan"));
        }
        runner.save()
    }

    /// Queues a backup of the plan (or returns the one already queued); its operation id.
    pub fn plan_run(&mut self, id: &str) -> Result<u64, Error> {
        if self.plans.plan(id).is_none() {
            return Err(Error::NotFound("plan"));
        }
        if let Some(op) = self.plans.has_pending_backup(id) {
            return Ok(op);
        }
        let op = self.plans.enqueue(Operation::new(Kind::Backup, id, crate::time::unix_millis()))?;
        self.plans_tick(crate::time::unix_millis());
        Ok(op)
    }

    /// Queues a restore of a live backup; the restore's operation id. A backup holding
    /// steward's own state restores it too, which only `admin` may do (checked here, when
    /// the principal is known; the worker runs what was allowed).
    pub fn backup_restore_job(&mut self, backup: u64, by: &super::keys::Principal) -> Result<u64, Error> {
        let b = self.live_backup(backup)?;
        let holds_state = b.artifact.as_ref().is_some_and(|a| a.containers.iter().any(|c| c == STATE_CONTAINER));
        if holds_state && !by.allows(super::keys::Cap::Admin) {
            return Err(Error::Forbidden(
                "this backup holds steward's own state (token, TLS key, settings); restoring it needs the admin capability"
                    .into(),
            ));
        }
        let mut op = Operation::new(Kind::Restore, &b.plan_id, crate::time::unix_millis());
        op.snapshot = Some(backup);
        op.flow_id = b.flow_id;
        let id = self.plans.enqueue(op)?;
        self.plans_tick(crate::time::unix_millis());
        Ok(id)
    }

    /// Queues the deletion of a backup's file; the forget operation's id.
    pub fn backup_delete_job(&mut self, backup: u64) -> Result<u64, Error> {
        let b = self.live_backup(backup)?;
        let mut op = Operation::new(Kind::Forget, &b.plan_id, crate::time::unix_millis());
        op.forgotten = vec![backup];
        op.flow_id = b.flow_id;
        let id = self.plans.enqueue(op)?;
        self.plans.deleting.insert(backup, id);
        self.plans_tick(crate::time::unix_millis());
        Ok(id)
    }

    /// Queues a verification of every live backup against its recorded sha256 (Backrest's
    /// repository check); the check's operation id.
    pub fn repo_check_job(&mut self) -> Result<u64, Error> {
        let id = self.plans.enqueue(Operation::new(Kind::Check, SYSTEM_PLAN, crate::time::unix_millis()))?;
        self.plans_tick(crate::time::unix_millis());
        Ok(id)
    }

    /// Queues the plan's retention now (as after a backup): a forget operation's id, or
    /// `None` when the retention keeps every backup there is.
    pub fn plan_forget_job(&mut self, plan_id: &str) -> Result<Option<u64>, Error> {
        let plan = self.plans.plan(plan_id).cloned().ok_or(Error::NotFound("plan"))?;
        let (_, doomed) = doomed_by_retention(&self.plans.log(), &plan);
        let doomed: Vec<u64> = doomed.into_iter().filter(|id| !self.plans.deleting.contains_key(id)).collect();
        if doomed.is_empty() {
            return Ok(None);
        }
        let mut op = Operation::new(Kind::Forget, plan_id, crate::time::unix_millis());
        op.forgotten = doomed.clone();
        let id = self.plans.enqueue(op)?;
        for backup in doomed {
            self.plans.deleting.insert(backup, id);
        }
        self.plans_tick(crate::time::unix_millis());
        Ok(Some(id))
    }

    /// Drops finished operations the selector matches from the history (only failed ones if
    /// asked), with their logs; never a backup whose file is still kept, nor queued or
    /// running work. How many went.
    pub fn clear_history(&mut self, sel: &crate::store::oplog::Selector, only_failed: bool) -> Result<usize, Error> {
        let mut log = self.plans.log();
        let doomed: Vec<u64> = log
            .select(sel, None)
            .into_iter()
            .filter_map(|id| log.get(id))
            .filter(|op| op.status.finished())
            .filter(|op| !only_failed || matches!(op.status, Status::Error | Status::SystemCancelled))
            .filter(|op| !(op.kind == Kind::Backup && op.has_live_artifact()))
            .map(|op| op.id)
            .collect();
        log.remove(&doomed).map_err(|e| Error::Io(format!("operation history: {e}")))?;
        drop(log);
        for id in &doomed {
            let _ = std::fs::remove_file(log_path(&self.plans.logs, *id));
        }
        Ok(doomed.len())
    }

    /// What a live backup holds directly below `dir` (`/` its top), read from the archive's
    /// headers: at most `limit` entries, directories first made up from the paths below them.
    pub fn backup_listing(&self, backup: u64, dir: &str, limit: usize) -> Result<Vec<ListedEntry>, Error> {
        /// Headers read at most: a listing is an answer on the request thread.
        const MAX_HEADERS_READ: usize = 100_000;
        let b = self.live_backup(backup)?;
        let a = b.artifact.ok_or(Error::NotFound("backup"))?;
        let mut file =
            std::fs::File::open(self.root.path(&a.path)).map_err(|e| Error::Io(format!("reading the backup: {e}")))?;
        let mut magic = [0u8; 2];
        if std::io::Read::read_exact(&mut file, &mut magic).is_ok() && magic == [0x1f, 0x8b] {
            // The Jidoteki backup is one gzip stream: listing it means inflating all of it.
            return Err(Error::Conflict("this backup is compressed; its files are not listed".into()));
        }
        std::io::Seek::rewind(&mut file).map_err(|e| Error::Io(format!("reading the backup: {e}")))?;
        let dir = format!("{}/", dir.trim_end_matches('/'));
        let mut archive = tar::Archive::new(file);
        let entries = archive.entries_with_seek().map_err(|e| Error::Io(format!("reading the backup: {e}")))?;
        let mut out: Vec<ListedEntry> = Vec::new();
        for entry in entries.take(MAX_HEADERS_READ) {
            let entry = entry.map_err(|e| Error::Io(format!("reading the backup: {e}")))?;
            let path = format!("/{}", String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./"));
            let Some(rest) = path.strip_prefix(&dir).filter(|r| !r.is_empty()) else { continue };
            let h = entry.header();
            let (name, listed) = match rest.split_once('/') {
                Some((child, _)) => (child, ListedEntry { directory: true, ..Default::default() }),
                None => (
                    rest.trim_end_matches('/'),
                    ListedEntry {
                        directory: h.entry_type().is_dir(),
                        size: h.size().unwrap_or(0),
                        mode: h.mode().unwrap_or(0),
                        uid: h.uid().unwrap_or(0),
                        gid: h.gid().unwrap_or(0),
                        mtime: h.mtime().unwrap_or(0),
                        ..Default::default()
                    },
                ),
            };
            if out.iter().any(|e| e.name == name) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(ListedEntry { name: name.to_owned(), path: format!("{dir}{name}"), ..listed });
        }
        Ok(out)
    }

    fn live_backup(&self, backup: u64) -> Result<Operation, Error> {
        let op = self.plans.log().get(backup).filter(|op| op.kind == Kind::Backup).ok_or(Error::NotFound("backup"))?;
        if self.plans.deleting.contains_key(&backup) {
            return Err(Error::Conflict("the backup is being deleted".into()));
        }
        if !op.is_kept_backup() {
            return Err(Error::Conflict("the backup is not live (still saving, failed or deleted)".into()));
        }
        Ok(op)
    }

    /// Cancels queued or running work. Finished work cannot be cancelled.
    pub fn op_cancel(&mut self, id: u64) -> Result<(), Error> {
        // The worker may have finished it a moment before the loop heard so.
        if self.plans.log().get(id).is_some_and(|op| op.status.finished()) {
            return Err(Error::Conflict("the operation has already finished".into()));
        }
        if let Some((_, cancel)) = self.plans.running.iter().chain(&self.plans.tracked).find(|(r, _)| *r == id) {
            cancel.store(true, Ordering::Relaxed);
            return Ok(());
        }
        if let Some(pos) = self.plans.queue.iter().position(|q| *q == id) {
            self.plans.queue.remove(pos);
            let mut log = self.plans.log();
            let mut op = log.get(id).ok_or(Error::NotFound("operation"))?;
            op.status = Status::UserCancelled;
            op.end_ms = crate::time::unix_millis();
            op.message = "cancelled before it started".into();
            log.put(&mut op).map_err(|e| Error::Io(format!("operation history: {e}")))?;
            drop(log);
            self.plans.done_tx.send(id).ok();
            return Ok(());
        }
        match self.plans.log().get(id) {
            None => Err(Error::NotFound("operation")),
            Some(_) => Err(Error::Conflict("the operation has already finished".into())),
        }
    }

    /// Calls `waiter` once the operation has finished (at once if it already has).
    pub fn op_wait(&mut self, id: u64, waiter: Waiter) {
        let op = self.plans.log().get(id);
        match op {
            Some(op) if op.status.finished() => waiter(Some(&op)),
            None => waiter(None),
            Some(_) => self.plans.waiters.push((id, waiter)),
        }
    }

    /// The scheduler's beat, from the request loop: hands finished operations to their
    /// waiters, queues plans that are due at `now_ms`, and starts the next work when idle.
    /// Returns when it next needs to run (Unix ms), if ever. Cheap when nothing changed: the
    /// next due time is cached until a plan or the history moves.
    pub fn plans_tick(&mut self, now_ms: i64) -> Option<i64> {
        let mut finished = false;
        while let Ok(id) = self.plans.done_rx.try_recv() {
            finished = true;
            self.operation_finished(id);
        }
        if finished {
            self.plans_trim(now_ms);
            self.plans.next_due_ms = None;
        }
        let due = match self.plans.next_due_ms {
            Some(d) => d,
            None => self.plans.earliest_due(),
        };
        self.plans.next_due_ms = Some(due);
        if due.is_some_and(|d| d <= now_ms) {
            let runner = &self.plans;
            let due_plans: Vec<String> = runner
                .plans
                .iter()
                .filter(|p| runner.next_run_ms(p).is_some_and(|d| d <= now_ms))
                .map(|p| p.id.clone())
                .collect();
            for id in due_plans {
                if self.plans.has_pending_backup(&id).is_none() && !self.backup_running_for(&id) {
                    // Stamped with now: a plan missed while the box was off runs once, and
                    // its schedule counts on from this run.
                    if let Err(e) = self.plans.enqueue(Operation::new(Kind::Backup, &id, now_ms)) {
                        crate::log::warn(format_args!("plan {id}: {}", e.message()));
                    }
                }
            }
            self.plans.next_due_ms = Some(self.plans.earliest_due().filter(|d| *d > now_ms));
        }
        if self.plans.running.is_none()
            && let Some(next) = self.plans.queue.pop_front()
        {
            self.start_work(next, now_ms);
        }
        self.plans.next_due_ms.flatten()
    }

    fn operation_finished(&mut self, id: u64) {
        let runner = &mut self.plans;
        if runner.running.as_ref().is_some_and(|(r, _)| *r == id) {
            runner.running = None;
        }
        runner.deleting.retain(|_, op| *op != id);
        runner.tracked.retain(|(t, _)| *t != id);
        let op = runner.log().get(id);
        let (ready, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut runner.waiters).into_iter().partition(|(w, _)| *w == id);
        runner.waiters = waiting;
        for (_, waiter) in ready {
            waiter(op.as_ref());
        }
    }

    fn backup_running_for(&self, plan: &str) -> bool {
        self.plans.running.as_ref().is_some_and(|(id, _)| {
            self.plans.log().get(*id).is_some_and(|op| op.kind == Kind::Backup && op.plan_id == plan)
        })
    }

    fn start_work(&mut self, id: u64, now_ms: i64) {
        let Some(mut op) = self.plans.log().get(id) else { return };
        let cancel = Arc::new(AtomicBool::new(false));
        let plan = self.plans.plan(&op.plan_id).cloned();
        let ctx = Ctx {
            ops: self.plans.ops.clone(),
            logs: self.plans.logs.clone(),
            root: self.root.clone(),
            data: self.data.clone(),
            board: self.board.clone(),
            cancel: cancel.clone(),
            done: self.plans.done_tx.clone(),
            wake: self.plans.wake.clone(),
        };
        op.status = Status::InProgress;
        op.start_ms = now_ms;
        op.logref = format!("op-{id}");
        if let Err(e) = ctx.put(&mut op) {
            crate::log::warn(format_args!("operation {id}: {e}"));
        }
        let restore = match op.kind {
            Kind::Restore => Some(self.record_restore_plan(&op)),
            _ => None,
        };
        let restoring = self.restoring.clone();
        self.plans.running = Some((id, cancel));
        let queued = crate::workers::queue("operation", move || {
            let mut op = op;
            match op.kind {
                Kind::Backup => run_backup(&ctx, &mut op, plan.as_ref()),
                Kind::Restore => run_restore(&ctx, &mut op, restore, &restoring),
                Kind::Forget => run_delete(&ctx, &mut op),
                Kind::Wipe => run_wipe(&ctx, &mut op),
                Kind::Check => run_check(&ctx, &mut op),
            }
            ctx.finish(op.id);
        });
        if let Err(crate::workers::Refused(why)) = queued {
            let ctx_err = format!("cannot start a worker: {why}");
            if let Some(mut op) = self.plans.log().get(id) {
                op.status = Status::Error;
                op.message = ctx_err;
                let _ = self.plans.log().put(&mut op);
            }
            let _ = self.plans.done_tx.send(id);
        }
    }

    fn record_restore_plan(&self, op: &Operation) -> Option<(super::restore::Plan, Artifact)> {
        let backup = self.plans.log().get(op.snapshot?)?;
        let artifact = backup.artifact?;
        let state = artifact.containers.iter().any(|c| c == STATE_CONTAINER);
        let apps: Vec<String> = artifact.containers.iter().filter(|c| *c != STATE_CONTAINER).cloned().collect();
        Some((self.selective_restore_plan(state, &apps, &super::keys::Principal::Admin), artifact))
    }

    /// Trims the history (and the logs of what was trimmed).
    pub fn plans_trim(&mut self, now_ms: i64) {
        let trimmed = self.plans.log().trim(KEEP_OPERATIONS, KEEP_MS, now_ms);
        match trimmed {
            Ok(ids) => {
                for id in ids {
                    let _ = std::fs::remove_file(log_path(&self.plans.logs, id));
                }
            }
            Err(e) => crate::log::warn(format_args!("trimming the operation history: {e}")),
        }
    }
}

/// What a worker owns.
struct Ctx {
    ops: Arc<Mutex<OpLog>>,
    logs: PathBuf,
    root: crate::system::Root,
    data: PathBuf,
    board: crate::board::Board,
    cancel: Arc<AtomicBool>,
    done: Sender<u64>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Ctx {
    fn put(&self, op: &mut Operation) -> std::io::Result<()> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).put(op)
    }

    fn log(&self, op: &Operation, line: &str) {
        append(&self.logs, op.id, line);
    }

    fn step(&self, op: &mut Operation, caption: &str) {
        let now = crate::time::unix_millis();
        if let Some(last) = op.steps.last_mut().filter(|s| s.completed_ms == 0) {
            last.completed_ms = now;
        }
        op.steps.push(Step { caption: caption.to_owned(), started_ms: now, completed_ms: 0 });
        self.log(op, caption);
        let _ = self.put(op);
    }

    fn end(&self, op: &mut Operation, status: Status, message: &str) {
        let now = crate::time::unix_millis();
        if let Some(last) = op.steps.last_mut().filter(|s| s.completed_ms == 0) {
            last.completed_ms = now;
        }
        op.status = status;
        op.end_ms = now;
        op.message = message.to_owned();
        self.log(op, if message.is_empty() { status.wire() } else { message });
        if let Err(e) = self.put(op) {
            crate::log::warn(format_args!("operation {}: {e}", op.id));
        }
    }

    fn finish(&self, id: u64) {
        let _ = self.done.send(id);
        if let Some(wake) = &self.wake {
            wake();
        }
    }

    fn hook(&self, plan: &Plan, op: &Operation, succeeded: bool, path: &str) -> Result<(), String> {
        let argv = match if succeeded { &plan.on_success } else { &plan.on_failure } {
            plans::Hook::None => return Ok(()),
            plans::Hook::Command(argv) => argv,
            plans::Hook::Named(name) => match self.board.backup.hook(name) {
                Some(h) => &h.command,
                None => return Err(format!("the board has no hook named {name:?} any more")),
            },
        };
        let Some((program, args)) = argv.split_first() else { return Ok(()) };
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env("STEWARD_PLAN", &plan.id)
            .env("STEWARD_OPERATION", op.id.to_string())
            // The success hook runs before the operation is marked done.
            .env("STEWARD_STATUS", if succeeded { Status::Success.wire() } else { op.status.wire() })
            .env("STEWARD_ERROR", &op.message)
            .env("STEWARD_BACKUP", path)
            .stdin(std::process::Stdio::null());
        for (k, v) in &plan.auth {
            cmd.env(format!("STEWARD_DESTINATION_{}", k.to_ascii_uppercase()), v);
        }
        // Its own process group, so that a cancel stops what the hook started too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| format!("cannot run the hook: {e}"))?;
        // A cancel reaches a running hook: it is stopped, and the operation says so.
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if self.cancel.load(Ordering::Relaxed) => {
                    if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
                        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HOOK_CANCELLED.to_owned());
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for the hook: {e}")),
            }
        };
        match status {
            s if s.success() => Ok(()),
            s => Err(format!("the {} hook failed ({s})", if succeeded { "on_success" } else { "on_failure" })),
        }
    }
}

/// What `Ctx::hook` says when a cancel stopped the hook.
const HOOK_CANCELLED: &str = "cancelled while its hook ran (the hook was stopped)";

fn stamp(ms: i64) -> String {
    crate::time::rfc3339_ms(ms).replace(['-', ':'], "")
}

fn run_backup(ctx: &Ctx, op: &mut Operation, plan: Option<&Plan>) {
    let Some(plan) = plan else {
        return ctx.end(op, Status::Error, "the plan was deleted before its backup started");
    };
    let snapshot = op.snapshot.unwrap_or(op.id);
    let dest = ctx.root.path(&plan.destination);
    let name = format!("{}-{}-{}.tar", plan.id, stamp(op.start_ms), snapshot_id(snapshot));
    let partial = dest.join(format!(".{}.partial", snapshot_id(snapshot)));
    let mut containers: Vec<String> = Vec::new();
    if plan.state {
        containers.push(STATE_CONTAINER.to_owned());
    }
    containers.extend(plan.applications.iter().cloned());
    ctx.step(op, "Archiving");
    let result = (|| -> Result<(u64, String), String> {
        plans::destination_allowed(plan, &ctx.board.backup)?;
        std::fs::create_dir_all(&dest).map_err(|e| format!("destination {}: {e}", plan.destination))?;
        let sources = super::backup::sources(&ctx.data, &ctx.root, &ctx.board, plan.state, &plan.applications)
            .map_err(|e| format!("reading what to back up: {e}"))?;
        let need: u64 = sources.iter().map(|(_, _, s)| 1024 + s.div_ceil(512) * 512).sum::<u64>() + 64 * 1024;
        let free = rustix::fs::statvfs(&dest).map(|s| s.f_bavail * s.f_frsize).unwrap_or(u64::MAX);
        if need > free {
            return Err(format!(
                "not enough free space at {}: needs about {need} bytes, {free} available",
                plan.destination
            ));
        }
        let manifest = super::backup::manifest(&ctx.board.name, &sources);
        let done =
            super::backup::write_archive(&partial, &manifest, &sources, &ctx.cancel).map_err(|e| e.to_string())?;
        std::fs::rename(&partial, dest.join(&name)).map_err(|e| format!("storing the backup: {e}"))?;
        atomic::write(&dest.join(format!("{name}.sha256")), format!("{}  {name}\n", done.sha256).as_bytes(), 0o644)
            .map_err(|e| format!("storing the checksum: {e}"))?;
        atomic::sync_dir(&dest).map_err(|e| format!("storing the backup: {e}"))?;
        Ok((done.filesize, done.sha256))
    })();
    let path = format!("{}/{name}", plan.destination);
    match result {
        Ok((size, sha256)) => {
            op.artifact =
                Some(Artifact { path: path.clone(), size, sha256: sha256.clone(), containers, deleted_ms: 0 });
            ctx.log(op, &format!("Created {path} ({size} bytes, sha256 {sha256})"));
            match ctx.hook(plan, op, true, &path) {
                Ok(()) => ctx.end(op, Status::Success, ""),
                // A cancelled backup leaves no backup: the archive its hook was given goes.
                Err(e) if e == HOOK_CANCELLED => {
                    let file = ctx.root.path(&path);
                    let _ = atomic::remove(&file);
                    let _ = atomic::remove(&PathBuf::from(format!("{}.sha256", file.display())));
                    op.artifact = None;
                    ctx.log(op, &format!("Removed {path}: the backup was cancelled"));
                    return ctx.end(op, Status::UserCancelled, HOOK_CANCELLED);
                }
                Err(e) => ctx.end(op, Status::Warning, &e),
            }
            forget(ctx, op, plan);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            if ctx.cancel.load(Ordering::Relaxed) {
                ctx.end(op, Status::UserCancelled, "cancelled");
            } else {
                ctx.end(op, Status::Error, &e);
            }
            if let Err(h) = ctx.hook(plan, op, false, "") {
                ctx.log(op, &h);
            }
        }
    }
}

/// The plan's live backups, and those of them its retention does not keep.
fn doomed_by_retention(log: &OpLog, plan: &Plan) -> (usize, Vec<u64>) {
    let live: Vec<(u64, i64)> = log
        .backups(Some(&plan.id))
        .into_iter()
        .filter_map(|id| log.get(id))
        .filter(Operation::is_kept_backup)
        .map(|op| (op.id, op.start_ms))
        .collect();
    let keep = plans::retained(&plan.retention, &live);
    (live.len(), live.iter().map(|b| b.0).filter(|id| !keep.contains(id)).collect())
}

/// The retention pass after a backup: one forget operation in the backup's flow.
fn forget(ctx: &Ctx, backup: &Operation, plan: &Plan) {
    let (live, doomed) = doomed_by_retention(&ctx.ops.lock().unwrap_or_else(|e| e.into_inner()), plan);
    let mut op = Operation::new(Kind::Forget, &plan.id, crate::time::unix_millis());
    op.flow_id = backup.flow_id;
    op.status = Status::InProgress;
    let created = ctx.ops.lock().unwrap_or_else(|e| e.into_inner()).create(&mut op);
    if created.is_err() {
        return;
    }
    op.logref = format!("op-{}", op.id);
    ctx.log(&op, &format!("Retention keeps {} of {live} backups", live - doomed.len()));
    let failures = remove_backups(ctx, &mut op, &doomed);
    match failures {
        None => ctx.end(&mut op, Status::Success, ""),
        Some(e) => ctx.end(&mut op, Status::Warning, &e),
    }
}

/// Deletes backup files and marks their records deleted; the first failure, if any.
fn remove_backups(ctx: &Ctx, op: &mut Operation, ids: &[u64]) -> Option<String> {
    let mut failure = None;
    for id in ids {
        let Some(mut b) = ctx.ops.lock().unwrap_or_else(|e| e.into_inner()).get(*id) else { continue };
        let Some(a) = b.artifact.as_mut() else { continue };
        let file = ctx.root.path(&a.path);
        let sum = PathBuf::from(format!("{}.sha256", file.display()));
        let removed = atomic::remove(&file).and_then(|()| atomic::remove(&sum));
        if let Err(e) = removed {
            failure.get_or_insert(format!("removing {}: {e}", a.path));
            continue;
        }
        a.deleted_ms = crate::time::unix_millis();
        ctx.log(op, &format!("Removed backup {} ({})", snapshot_id(*id), a.path));
        let _ = ctx.put(&mut b);
        op.forgotten.push(*id);
    }
    op.forgotten.dedup();
    failure
}

fn run_delete(ctx: &Ctx, op: &mut Operation) {
    ctx.step(op, "Deleting the backup");
    let ids = std::mem::take(&mut op.forgotten);
    match remove_backups(ctx, op, &ids) {
        None => ctx.end(op, Status::Success, ""),
        Some(e) => ctx.end(op, Status::Error, &e),
    }
}

/// Reads every live backup back and compares it with the sha256 recorded when it was made.
fn run_check(ctx: &Ctx, op: &mut Operation) {
    ctx.step(op, "Verifying every kept backup against its sha256");
    let live: Vec<Operation> = {
        let log = ctx.ops.lock().unwrap_or_else(|e| e.into_inner());
        log.backups(None).into_iter().filter_map(|id| log.get(id)).filter(Operation::is_kept_backup).collect()
    };
    let mut bad = Vec::new();
    for b in &live {
        if ctx.cancel.load(Ordering::Relaxed) {
            return ctx.end(op, Status::UserCancelled, "cancelled");
        }
        let Some(a) = &b.artifact else { continue };
        let verdict = match sha256_of(&ctx.root.path(&a.path)) {
            Ok(sum) if sum == a.sha256 => Ok(()),
            Ok(sum) => Err(format!("its sha256 is {sum}, not the {} recorded", a.sha256)),
            Err(e) => Err(format!("cannot be read: {e}")),
        };
        match verdict {
            Ok(()) => ctx.log(op, &format!("Backup {} ({}) is intact", snapshot_id(b.id), a.path)),
            Err(why) => {
                ctx.log(op, &format!("Backup {} ({}) {why}", snapshot_id(b.id), a.path));
                bad.push(snapshot_id(b.id));
            }
        }
    }
    if bad.is_empty() {
        ctx.end(op, Status::Success, &format!("{} backups verified", live.len()))
    } else {
        ctx.end(
            op,
            Status::Error,
            &format!("{} of {} backups failed verification: {}", bad.len(), live.len(), bad.join(", ")),
        )
    }
}

fn run_wipe(ctx: &Ctx, op: &mut Operation) {
    let Some(drive) = crate::system::hardware::drives(&ctx.root, ctx.board.storage.disks.as_deref())
        .into_iter()
        .find(|d| d.id == op.drive)
    else {
        return ctx.end(op, Status::Error, "the drive is gone");
    };
    // Checked when queued; checked again now, just before the first write.
    if crate::system::hardware::is_mounted(&ctx.root, &drive) {
        return ctx.end(op, Status::Error, "the drive was mounted since the wipe was asked for");
    }
    ctx.step(op, "Wiping");
    match super::storage::wipe_device(&ctx.root.path(&drive.dev_path), op.secure, drive.rotational, &ctx.cancel) {
        Ok(how) => {
            ctx.log(op, &format!("{} ({} bytes) {how}", drive.id, drive.size));
            ctx.end(op, Status::Success, "")
        }
        Err(_) if ctx.cancel.load(Ordering::Relaxed) => ctx.end(op, Status::UserCancelled, "cancelled"),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::Unsupported | std::io::ErrorKind::ResourceBusy) => {
            ctx.end(op, Status::Error, &format!("{}{} is not wiped: {e}", super::storage::REFUSED, drive.id))
        }
        Err(e) => ctx.end(op, Status::Error, &format!("wiping {}: {e}", drive.id)),
    }
}

fn run_restore(
    ctx: &Ctx,
    op: &mut Operation,
    restore: Option<Option<(super::restore::Plan, Artifact)>>,
    restoring: &AtomicBool,
) {
    let Some(Some((plan, artifact))) = restore else {
        return ctx.end(op, Status::Error, "the backup to restore is gone");
    };
    ctx.step(op, "Verifying the backup");
    let file = ctx.root.path(&artifact.path);
    match sha256_of(&file) {
        Ok(sum) if sum == artifact.sha256 => {}
        Ok(_) => return ctx.end(op, Status::Error, "the backup file does not match its sha256"),
        Err(e) => return ctx.end(op, Status::Error, &format!("reading the backup: {e}")),
    }
    if ctx.cancel.load(Ordering::Relaxed) {
        return ctx.end(op, Status::UserCancelled, "cancelled");
    }
    if restoring.swap(true, Ordering::AcqRel) {
        return ctx.end(op, Status::Error, "another restore is running");
    }
    ctx.step(op, "Restoring");
    let result = super::restore::run(&plan, &file);
    restoring.store(false, Ordering::Release);
    match result {
        Ok(()) => ctx.end(op, Status::Success, ""),
        Err(e) => ctx.end(op, Status::Error, &e.message()),
    }
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; crate::store::bulk::COPY_BUFFER];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(crate::hex::to_hex(hash.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(name: &str) -> (Engine, PathBuf) {
        let dir = std::env::temp_dir().join(format!("steward-planrun-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/var/lib/app")).unwrap();
        std::fs::write(dir.join("root/var/lib/app/config.ini"), "v1\n").unwrap();
        let board = crate::board::Board::load("dev").unwrap();
        let (engine, _) = Engine::open(board, crate::system::Root::new(dir.join("root")), dir.join("data")).unwrap();
        (engine, dir)
    }

    /// Ticks at the injected time until the queue is drained and nothing runs.
    fn settle(e: &mut Engine, now_ms: i64) {
        for _ in 0..1000 {
            e.plans_tick(now_ms);
            if e.plans.running.is_none() && e.plans.queue.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the work did not finish");
    }

    fn backups(e: &Engine) -> Vec<Operation> {
        let log = e.plans.log();
        log.backups(Some("minutely")).into_iter().filter_map(|id| log.get(id)).collect()
    }

    #[test]
    fn a_one_minute_cron_runs_on_schedule_and_retention_keeps_the_newest() {
        let (mut e, dir) = engine("cron");
        let plan = r#"{"id":"minutely","sources":{"state":true},"destination":{"path":"/srv/backups"},
            "schedule":{"cron":"* * * * *"},"retention":{"keep_last_n":1}}"#;
        let created = e.plan_put(plan, None, &crate::engine::keys::Principal::Admin).unwrap().created_ms;
        let minute = (created / 60_000 + 1) * 60_000;
        assert_eq!(e.plans_tick(created), Some(minute), "the first run is at the next minute");
        settle(&mut e, minute - 1);
        assert!(backups(&e).is_empty(), "nothing before it is due");
        settle(&mut e, minute);
        let first = backups(&e);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].status, Status::Success, "{}", first[0].message);
        let a = first[0].artifact.clone().unwrap();
        let file = dir.join("root").join(a.path.trim_start_matches('/'));
        let sum = std::fs::read_to_string(format!("{}.sha256", file.display())).unwrap();
        assert!(sum.starts_with(&a.sha256) && a.size == std::fs::metadata(&file).unwrap().len());
        settle(&mut e, minute + 30_000);
        assert_eq!(backups(&e).len(), 1, "not again within the minute");
        settle(&mut e, minute + 60_000);
        let both = backups(&e);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].status, Status::Success);
        // keep_last_n 1: the first backup's file is gone and its record says when.
        assert!(!file.exists());
        assert!(both[0].artifact.as_ref().unwrap().deleted_ms > 0);
        let log = e.plans.log();
        let forgets =
            log.select(&crate::store::oplog::Selector { flow_id: Some(both[1].flow_id), ..Default::default() }, None);
        let forget = log.get(*forgets.last().unwrap()).unwrap();
        assert_eq!((forget.kind, forget.forgotten.clone()), (Kind::Forget, vec![both[0].id]));
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_missed_while_off_runs_once_at_start() {
        let (mut e, dir) = engine("missed");
        let plan = r#"{"id":"minutely","sources":{"state":true},"destination":{"path":"/srv/backups"},
            "schedule":{"every_hours":1}}"#;
        let created = e.plan_put(plan, None, &crate::engine::keys::Principal::Admin).unwrap().created_ms;
        // Three hours later: three slots were missed, one backup is made.
        let later = created + 3 * 3_600_000 + 5;
        settle(&mut e, later);
        settle(&mut e, later + 1000);
        assert_eq!(backups(&e).len(), 1);
        assert_eq!(e.plans_tick(later + 2000), Some(later + 3_600_000), "the schedule counts on from that run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hooks_hear_how_the_backup_went() {
        let (mut e, dir) = engine("hooks");
        let out = dir.join("hook.out");
        let hook = |status: &str| {
            format!(
                r#"["/bin/sh","-c","echo {status} $STEWARD_PLAN $STEWARD_STATUS $STEWARD_DESTINATION_SECRET >> {}"]"#,
                out.display()
            )
        };
        let plan = format!(
            r#"{{"id":"p","sources":{{"state":true}},"destination":{{"path":"/srv/backups","auth":{{"secret":"s"}}}},
            "hooks":{{"on_success":{},"on_failure":{}}}}}"#,
            hook("ok"),
            hook("failed")
        );
        e.plan_put(&plan, None, &crate::engine::keys::Principal::Admin).unwrap();
        e.plan_run("p").unwrap();
        settle(&mut e, crate::time::unix_millis());
        // A destination that cannot be created fails the next backup.
        std::fs::write(dir.join("root/srv/backups/blocker"), "").unwrap();
        let broken = plan.replace("\"/srv/backups\"", "\"/srv/backups/blocker/x\"");
        e.plan_put(&broken, Some("p"), &crate::engine::keys::Principal::Admin).unwrap();
        e.plan_run("p").unwrap();
        settle(&mut e, crate::time::unix_millis());
        let heard = std::fs::read_to_string(&out).unwrap();
        assert_eq!(heard, "ok p STATUS_SUCCESS s\nfailed p STATUS_ERROR s\n");
        // A failing success hook turns the backup into a warning, not a failure.
        let failing = plan.replace(&hook("ok"), r#"["/bin/false"]"#);
        e.plan_put(&failing, Some("p"), &crate::engine::keys::Principal::Admin).unwrap();
        let id = e.plan_run("p").unwrap();
        settle(&mut e, crate::time::unix_millis());
        let op = e.plans.log().get(id).unwrap();
        assert_eq!(op.status, Status::Warning, "{}", op.message);
        assert!(op.message.contains("on_success hook failed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cancel_during_the_success_hook_stops_it_and_leaves_no_backup() {
        let (mut e, dir) = engine("hook-cancel");
        let started = dir.join("hook.started");
        let plan = format!(
            r#"{{"id":"p","sources":{{"state":true}},"destination":{{"path":"/srv/backups"}},
            "hooks":{{"on_success":["/bin/sh","-c","touch {} && sleep 30 && echo late"]}}}}"#,
            started.display()
        );
        e.plan_put(&plan, None, &crate::engine::keys::Principal::Admin).unwrap();
        let id = e.plan_run("p").unwrap();
        let t = std::time::Instant::now();
        while !started.exists() {
            e.plans_tick(crate::time::unix_millis());
            assert!(t.elapsed() < std::time::Duration::from_secs(20), "the hook never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        e.op_cancel(id).unwrap();
        settle(&mut e, crate::time::unix_millis());
        assert!(t.elapsed() < std::time::Duration::from_secs(25), "the hook ran on: it was not stopped");
        let op = e.plans.log().get(id).unwrap();
        assert_eq!(op.status, Status::UserCancelled, "{}", op.message);
        assert!(op.artifact.is_none());
        let left: Vec<_> =
            std::fs::read_dir(dir.join("root/srv/backups")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "a cancelled backup leaves nothing: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
