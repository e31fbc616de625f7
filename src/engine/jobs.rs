//! Background jobs (update, certificates, ...): one of each kind at a time, run on a worker
//! thread so the request thread keeps answering, with status and log kept in the data dir so
//! they survive a restart. A job that was running when the process died is reported failed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::store::atomic;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Update,
    Certs,
    Backup,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Update, Kind::Certs, Kind::Backup];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Update => "update",
            Kind::Certs => "certs",
            Kind::Backup => "backup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    Success,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        match s {
            "running" => Some(Status::Running),
            "success" => Some(Status::Success),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }
}

/// What a job reports; persisted as one small file per kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub percentage: u8,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
}

/// The handle a job's worker uses to report progress.
#[derive(Clone)]
pub struct Progress {
    kind: Kind,
    dir: PathBuf,
    shared: Arc<Mutex<Option<State>>>,
}

impl Progress {
    pub fn log(&self, line: &str) {
        append_log(&self.dir, self.kind, line);
    }

    pub fn percent(&self, percentage: u8) {
        self.set(|s| s.percentage = percentage);
    }

    pub fn succeed(&self, percentage: u8) {
        self.set(|s| {
            s.status = Status::Success;
            s.percentage = percentage;
        });
    }

    pub fn fail(&self, code: Option<&str>, message: &str) {
        self.log(&format!("failed: {message}"));
        self.set(|s| {
            s.status = Status::Failed;
            s.error_message = Some(message.to_owned());
            s.error_code = code.map(str::to_owned);
        });
    }

    /// Settles a finished job's outcome after the fact: a line added to its log, then its
    /// status. A running job is left alone (it will report its own outcome).
    pub fn conclude(&self, failure: Option<(&str, &str)>, line: &str) {
        let mut guard = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(|s| s.status == Status::Running) {
            return;
        }
        append_log(&self.dir, self.kind, line);
        let state = State {
            status: if failure.is_some() { Status::Failed } else { Status::Success },
            percentage: 100,
            error_code: failure.map(|(code, _)| code.to_owned()),
            error_message: failure.map(|(_, message)| message.to_owned()),
        };
        let _ = store(&self.dir, self.kind, &state);
        *guard = Some(state);
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        let mut guard = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = guard.as_mut() {
            change(state);
            let _ = store(&self.dir, self.kind, state);
        }
    }
}

pub struct Jobs {
    dir: PathBuf,
    slots: Vec<(Kind, Arc<Mutex<Option<State>>>)>,
}

fn status_path(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{}.status", kind.name()))
}

pub fn log_path(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{}.log", kind.name()))
}

/// `[unix-time][STEWARD] message`, the Jidoteki log line shape, one line per call.
pub fn append_log(dir: &Path, kind: Kind, line: &str) {
    let stamp = crate::time::unix_seconds(std::time::SystemTime::now());
    let clean: String = line.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    if let Ok(mut f) = OpenOptions::new().append(true).create(true).open(log_path(dir, kind)) {
        let _ = writeln!(f, "[{stamp}][STEWARD] {clean}");
    }
}

/// `status\npercentage\ncode\nmessage\n`: no JSON needed for four fields.
fn store(dir: &Path, kind: Kind, s: &State) -> std::io::Result<()> {
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        s.status.as_str(),
        s.percentage,
        s.error_code.as_deref().unwrap_or(""),
        s.error_message.as_deref().unwrap_or("").replace('\n', " ")
    );
    atomic::write(&status_path(dir, kind), text.as_bytes(), 0o600)
}

fn load(dir: &Path, kind: Kind) -> Option<State> {
    let text = std::fs::read_to_string(status_path(dir, kind)).ok()?;
    let mut lines = text.lines();
    let status = Status::parse(lines.next()?)?;
    let percentage = lines.next()?.parse().ok()?;
    let code = lines.next().filter(|c| !c.is_empty()).map(str::to_owned);
    let message = lines.next().filter(|m| !m.is_empty()).map(str::to_owned);
    Some(State { status, percentage, error_code: code, error_message: message })
}

impl Jobs {
    pub fn open(dir: PathBuf) -> std::io::Result<Jobs> {
        atomic::ensure_private_dir(&dir)?;
        let mut slots = Vec::new();
        for kind in Kind::ALL {
            let mut state = load(&dir, kind);
            if let Some(s) = state.as_mut().filter(|s| s.status == Status::Running) {
                s.status = Status::Failed;
                s.error_message = Some("interrupted: steward stopped while the job was running".into());
                if kind == Kind::Update {
                    s.error_code = Some("E1002".into());
                }
                store(&dir, kind, s)?;
                append_log(&dir, kind, "interrupted: steward stopped while the job was running");
            }
            slots.push((kind, Arc::new(Mutex::new(state))));
        }
        Ok(Jobs { dir, slots })
    }

    fn slot(&self, kind: Kind) -> &Arc<Mutex<Option<State>>> {
        &self.slots.iter().find(|(k, _)| *k == kind).expect("every kind has a slot").1
    }

    /// A handle to read the job's state from another thread.
    pub fn watch(&self, kind: Kind) -> Arc<Mutex<Option<State>>> {
        self.slot(kind).clone()
    }

    pub fn state(&self, kind: Kind) -> Option<State> {
        self.slot(kind).lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last `n` lines of the job's log, newline-joined; `None` when there is no log.
    pub fn log_tail(&self, kind: Kind, n: usize) -> Option<String> {
        let text = std::fs::read_to_string(log_path(&self.dir, kind)).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        Some(lines[lines.len().saturating_sub(n)..].join("\n"))
    }

    /// Forgets the last finished job of this kind (its status; the log stays). A running
    /// job is not touched.
    pub fn clear(&self, kind: Kind) -> std::io::Result<()> {
        let mut guard = self.slot(kind).lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(|s| s.status == Status::Running) {
            return Ok(());
        }
        *guard = None;
        atomic::remove(&status_path(&self.dir, kind))
    }

    /// A handle on this kind's job outside a run (an update's trial boot is settled at the
    /// next start, after its job finished).
    pub fn handle(&self, kind: Kind) -> Progress {
        Progress { kind, dir: self.dir.clone(), shared: self.slot(kind).clone() }
    }

    pub fn log_file(&self, kind: Kind) -> PathBuf {
        log_path(&self.dir, kind)
    }

    /// Queues `work` for a worker (`crate::workers`) unless a job of this kind is running;
    /// it reads as running from now on. The log of the previous run is replaced.
    pub fn start(&self, kind: Kind, work: impl FnOnce(Progress) + Send + 'static) -> Result<(), AlreadyRunning> {
        let shared = self.slot(kind).clone();
        {
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            if guard.as_ref().is_some_and(|s| s.status == Status::Running) {
                return Err(AlreadyRunning);
            }
            let state = State { status: Status::Running, percentage: 0, error_message: None, error_code: None };
            let _ = std::fs::remove_file(log_path(&self.dir, kind));
            let _ = store(&self.dir, kind, &state);
            *guard = Some(state);
        }
        let progress = Progress { kind, dir: self.dir.clone(), shared };
        let queued = crate::workers::queue(kind.name(), {
            let progress = progress.clone();
            move || work(progress)
        });
        if let Err(crate::workers::Refused(why)) = queued {
            progress.fail(Some("E1002"), &format!("cannot start the job: {why}"));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct AlreadyRunning;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_survives_only_as_interrupted() {
        let dir = std::env::temp_dir().join(format!("steward-jobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let jobs = Jobs::open(dir.clone()).unwrap();
        assert_eq!(jobs.state(Kind::Update), None);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        jobs.start(Kind::Update, move |p| {
            p.log("step one");
            p.percent(40);
            let _ = rx.recv();
        })
        .unwrap();
        assert!(jobs.start(Kind::Update, |_| {}).is_err(), "one update at a time");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(jobs.state(Kind::Update).unwrap().percentage, 40);
        // A new process finds the job running: it must report it failed.
        let reopened = Jobs::open(dir.clone()).unwrap();
        let s = reopened.state(Kind::Update).unwrap();
        assert_eq!(s.status, Status::Failed);
        assert!(s.error_message.unwrap().starts_with("interrupted"));
        assert!(reopened.log_tail(Kind::Update, 10).unwrap().contains("interrupted"));
        drop(tx);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
