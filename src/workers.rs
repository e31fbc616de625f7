//! The one budget of background threads. Everything that runs beside the request thread —
//! long jobs (updates, certificate swaps, backups, restores, plan operations, network apply,
//! application restarts) and the producers of streamed downloads — holds one of
//! `limits::WORKERS` slots, so steward has at most `1 + WORKERS` threads whatever its
//! clients ask for at once.
//!
//! Long jobs wait their turn in one FIFO queue: their clients poll a status, so a job that
//! starts a little later is still served. A stream cannot wait (its client is waiting on the
//! answer's first bytes) and is refused when no slot is free; the slot lives in what the
//! producer writes into, so it is free again the moment the body is complete, before the
//! client can ask for the next one. Power actions are never refused: they go on a thread of
//! their own (`detached`), and the box goes down seconds later.
//!
//! A worker that finishes a job takes the next queued one on the same thread, so a queue
//! drains without a thread ending while another starts.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::limits::{MAX_QUEUED_JOBS, WORKERS};

type Job = Box<dyn FnOnce() + Send>;

/// A set of slots and the queue for them. steward has one (`queue`, `Slot::claim`); tests
/// make their own so that other tests' work cannot hold their slots.
pub struct Pool {
    slots: usize,
    max_queued: usize,
    state: Mutex<State>,
}

struct State {
    busy: usize,
    queue: VecDeque<(&'static str, Job)>,
}

static WORKERS_POOL: Pool = Pool::new(WORKERS, MAX_QUEUED_JOBS);

impl Pool {
    pub const fn new(slots: usize, max_queued: usize) -> Pool {
        Pool { slots, max_queued, state: Mutex::new(State { busy: 0, queue: VecDeque::new() }) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A job that panicked left no update half done: the state changes under the lock only.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for work that cannot wait, unless every slot is held or jobs are queued for
    /// one (queued jobs go first).
    pub fn claim(&'static self) -> Option<Slot> {
        let mut s = self.state();
        (s.busy < self.slots && s.queue.is_empty()).then(|| {
            s.busy += 1;
            Slot(self)
        })
    }

    /// Runs `job` on a worker now if a slot is free, else when one is (first come, first
    /// served).
    pub fn queue(&'static self, name: &'static str, job: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
        let mut s = self.state();
        if s.busy < self.slots && s.queue.is_empty() {
            s.busy += 1;
            drop(s);
            return run_on(Slot(self), name, Box::new(job)).map_err(|e| Refused(format!("cannot start {name}: {e}")));
        }
        if s.queue.len() >= self.max_queued {
            return Err(Refused(format!("{} jobs are waiting already; try again later", self.max_queued)));
        }
        s.queue.push_back((name, Box::new(job)));
        Ok(())
    }

    /// Work waiting for a slot.
    pub fn queued(&self) -> usize {
        self.state().queue.len()
    }

    fn next(&self) -> Option<(&'static str, Job)> {
        self.state().queue.pop_front()
    }
}

/// A claimed worker slot. Dropping it hands the slot to the next queued job, or frees it.
pub struct Slot(&'static Pool);

impl Slot {
    /// A slot of steward's pool (see `Pool::claim`).
    pub fn claim() -> Option<Slot> {
        WORKERS_POOL.claim()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let pool = self.0;
        let next = {
            let mut s = pool.state();
            let next = s.queue.pop_front();
            if next.is_none() {
                s.busy -= 1;
            }
            next
        };
        // The slot passes to the queued job: `busy` is unchanged.
        if let Some((name, job)) = next
            && let Err(e) = run_on(Slot(pool), name, job)
        {
            crate::log::warn(format_args!("cannot start queued work ({name}): {e}"));
        }
    }
}

/// Every slot is held and the queue is full, or the system refused a thread.
#[derive(Debug)]
pub struct Refused(pub String);

/// Runs `job` on one of steward's workers (see `Pool::queue`).
pub fn queue(name: &'static str, job: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
    WORKERS_POOL.queue(name, job)
}

fn run_on(slot: Slot, name: &'static str, job: Job) -> std::io::Result<()> {
    // On a failed spawn the closure, and the slot with it, is dropped: the slot is not lost.
    std::thread::Builder::new().name(name.into()).spawn(move || {
        job();
        while let Some((_, job)) = slot.0.next() {
            job();
        }
        drop(slot);
    })?;
    Ok(())
}

/// A thread outside the queue, for work whose slot is held by what it owns (a stream
/// producer's writer) or that must never be refused (power actions).
pub fn detached(name: &'static str, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new().name(name.into()).spawn(job).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    #[test]
    fn jobs_wait_for_a_slot_in_order_and_streams_are_refused_while_they_do() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(2, 16)));
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = std::sync::Arc::new(Mutex::new(release_rx));
        let (started_tx, started_rx) = channel::<u32>();
        for n in 0..2u32 {
            let (rx, tx) = (release_rx.clone(), started_tx.clone());
            pool.queue("test-hold", move || {
                tx.send(n).unwrap();
                let _ = rx.lock().unwrap().recv();
            })
            .unwrap();
        }
        for _ in 0..2 {
            started_rx.recv_timeout(Duration::from_secs(10)).expect("a free slot runs a job at once");
        }
        assert!(pool.claim().is_none(), "every slot is held");
        for n in 10..13 {
            let tx = started_tx.clone();
            pool.queue("test-queued", move || tx.send(n).unwrap()).unwrap();
        }
        assert_eq!(pool.queued(), 3);
        assert!(started_rx.recv_timeout(Duration::from_millis(50)).is_err(), "queued jobs wait");
        release_tx.send(()).unwrap();
        let order: Vec<u32> = (0..3).map(|_| started_rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(order, [10, 11, 12], "first come, first served");
        for _ in 1..2 {
            release_tx.send(()).unwrap();
        }

        let mut held = claim_all_within(pool);
        assert_eq!(held.len(), 2, "a drained queue frees its slots");
        // A stream's slot that is dropped starts what queued meanwhile.
        pool.queue("test-after-stream", move || started_tx.send(99).unwrap()).unwrap();
        assert!(started_rx.recv_timeout(Duration::from_millis(50)).is_err());
        held.pop();
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 99);
        drop(held);

        let held = claim_all_within(pool);
        assert_eq!(held.len(), 2, "slots come back");
        for _ in 0..16 {
            pool.queue("test-fill", || {}).unwrap();
        }
        assert!(pool.queue("test-overflow", || {}).is_err(), "a full queue refuses");
        drop(held);
        assert_eq!(claim_all_within(pool).len(), 2, "the queue drains");
        assert_eq!(pool.queued(), 0);
    }

    /// Every slot, once the workers still finishing have let theirs go (bounded wait).
    fn claim_all_within(pool: &'static Pool) -> Vec<Slot> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut held = Vec::new();
        while held.len() < pool.slots && Instant::now() < deadline {
            match pool.claim() {
                Some(s) => held.push(s),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        held
    }
}
