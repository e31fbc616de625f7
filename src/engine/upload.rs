//! An upload handed, as it arrives, from the request thread to the worker that consumes it
//! (an update streaming into its slot). The request thread never blocks: it queues what it
//! read and asks, before reading more, whether the worker is behind (`Feed::full`); the
//! worker wakes the loop when it has caught up. So an upload holds at most
//! `UPLOAD_QUEUE` bytes in memory whatever the client's speed, and nothing on disk.
//!
//! The stream ends only when the request thread says so (`finish`, once the whole body is
//! in and, for a signed request, its digest has checked out). A request that ends any other
//! way, or is refused late, leaves the worker with an error, never with an end of file: what
//! the worker built from it must not be taken for whole.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::limits::UPLOAD_QUEUE;

enum Message {
    Data(Vec<u8>),
    End,
    /// The request ended without this upload (no file part): the worker stops with this.
    Cancel(&'static str, String),
}

/// Why an upload stopped short, carried inside the `io::Error` the worker's reader returns,
/// with the error code the job reports.
#[derive(Debug)]
pub struct Ended {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Ended {}

/// The request thread's end. Clones share one queue (the form's part sink and the request's
/// admission both hold one).
#[derive(Clone)]
pub struct Feed {
    tx: Option<Sender<Message>>,
    queued: Arc<AtomicUsize>,
    /// Some byte was pushed (by any clone): the upload has begun.
    begun: Arc<std::sync::atomic::AtomicBool>,
}

/// The worker's end: a `Read` of the upload's bytes.
pub struct Upload {
    rx: Receiver<Message>,
    queued: Arc<AtomicUsize>,
    /// Wakes the request loop, so it reads the client again.
    on_room: Box<dyn Fn() + Send>,
    current: Vec<u8>,
    pos: usize,
    ended: bool,
}

pub fn channel_pair(on_room: Box<dyn Fn() + Send>) -> (Feed, Upload) {
    let (tx, rx) = channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let upload = Upload { rx, queued: queued.clone(), on_room, current: Vec::new(), pos: 0, ended: false };
    (Feed { tx: Some(tx), queued, begun: Default::default() }, upload)
}

impl Feed {
    /// Queues bytes for the worker; once the worker has gone (it failed), they are dropped:
    /// the request still reads its body to the end so its answer can be given.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.begun.store(true, Ordering::Release);
        if let Some(tx) = &self.tx {
            self.queued.fetch_add(data.len(), Ordering::AcqRel);
            if tx.send(Message::Data(data.to_vec())).is_err() {
                self.tx = None;
                self.queued.store(0, Ordering::Release);
            }
        }
    }

    pub fn begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    /// The worker is behind: read no more of the client for now.
    pub fn full(&self) -> bool {
        self.tx.is_some() && self.queued.load(Ordering::Acquire) >= UPLOAD_QUEUE
    }

    /// The whole upload is in and may be trusted as far as the request goes.
    pub fn finish(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Message::End);
        }
    }

    pub fn cancel(mut self, code: &'static str, message: &str) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Message::Cancel(code, message.to_owned()));
        }
    }
}

fn ended(code: &'static str, message: String) -> io::Error {
    io::Error::other(Ended { code, message })
}

/// A worker that stops early (a package refused at its head) must not leave the request
/// paused on a full queue nobody drains: the queue reads empty and the loop is woken, so
/// the rest of the body is read and dropped and the request gets its answer.
impl Drop for Upload {
    fn drop(&mut self) {
        self.queued.store(0, Ordering::Release);
        (self.on_room)();
    }
}

impl Read for Upload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Message::Data(data)) => {
                    let before = self.queued.fetch_sub(data.len(), Ordering::AcqRel);
                    // Woken once per crossing of half the queue, not per chunk.
                    let half = UPLOAD_QUEUE / 2;
                    if before >= half && before - data.len() < half {
                        (self.on_room)();
                    }
                    self.current = data;
                    self.pos = 0;
                }
                Ok(Message::End) => self.ended = true,
                Ok(Message::Cancel(code, message)) => return Err(ended(code, message)),
                Err(_) => return Err(ended("E1003", "the upload did not complete".into())),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.current.len() {
            // A finished chunk's memory goes back now, not when the next one arrives.
            self.current = Vec::new();
            self.pos = 0;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Feed, Upload, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let (feed, upload) = channel_pair(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        (feed, upload, wakes)
    }

    #[test]
    fn ends_only_when_finished() {
        let (mut feed, mut upload, _) = pair();
        feed.push(b"abc");
        feed.clone().finish();
        let mut out = Vec::new();
        upload.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn a_dropped_or_cancelled_feed_is_an_error_not_an_end() {
        let (mut feed, mut upload, _) = pair();
        feed.push(b"abc");
        drop(feed);
        let mut out = Vec::new();
        let e = upload.read_to_end(&mut out).unwrap_err();
        let why = e.get_ref().and_then(|e| e.downcast_ref::<Ended>()).unwrap();
        assert_eq!((why.code, out.as_slice()), ("E1003", b"abc".as_slice()));
        let (feed, mut upload, _) = pair();
        feed.cancel("E1003", "Missing update package");
        let e = upload.read(&mut [0; 4]).unwrap_err();
        assert_eq!(e.to_string(), "Missing update package");
    }

    #[test]
    fn full_past_the_queue_bound_and_wakes_once_drained_below_half() {
        let (mut feed, mut upload, wakes) = pair();
        let chunk = vec![7u8; UPLOAD_QUEUE / 4];
        for _ in 0..4 {
            assert!(!feed.full());
            feed.push(&chunk);
        }
        assert!(feed.full());
        let mut buf = vec![0u8; chunk.len()];
        upload.read_exact(&mut buf).unwrap();
        assert!(!feed.full());
        assert_eq!(wakes.load(Ordering::Relaxed), 0);
        upload.read_exact(&mut buf).unwrap();
        upload.read_exact(&mut buf).unwrap();
        assert_eq!(wakes.load(Ordering::Relaxed), 1);
        // The worker gone, nothing is queued, the loop is woken, nothing blocks the request.
        for _ in 0..3 {
            feed.push(&chunk);
        }
        assert!(feed.full());
        drop(upload);
        assert!(!feed.full());
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
        feed.push(&chunk);
        assert!(!feed.full());
    }
}
