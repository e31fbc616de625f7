//! Response bodies made elsewhere (log archives, backups): a producer thread writes chunks
//! into a bounded channel and wakes the event loop, which sends them as HTTP chunks. The
//! request thread never waits on a disk or a compressor; a slow client slows the producer
//! (the channel is bounded) and a gone client stops it (the channel closes).

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::workers::Slot;

/// Chunks in flight per stream: memory per stream is bounded by this × `CHUNK`.
const DEPTH: usize = 4;
const CHUNK: usize = 64 * 1024;

pub enum Chunk {
    Data(Vec<u8>),
    /// The producer finished; anything else (a dropped sender) means it failed.
    End,
}

/// Wakes the event loop (an eventfd it watches).
#[derive(Clone)]
pub struct Waker(pub Arc<OwnedFd>);

impl Waker {
    pub fn wake(&self) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }
}

/// The producer's end: a `Write` that ships full chunks and wakes the loop.
pub struct ChunkWriter {
    tx: SyncSender<Chunk>,
    buf: Vec<u8>,
    waker: Waker,
    /// The producer's worker slot, held until the body is complete.
    slot: Option<Slot>,
}

/// Every worker slot is held (by downloads being produced or long jobs).
#[derive(Debug)]
pub struct Busy;

/// What a surface says when `channel` is `Busy`.
pub const BUSY: &str =
    "every worker is busy (downloads being prepared, or a backup, restore or update running); try again shortly";

/// A new stream, unless no worker slot is free for its producer (`crate::workers`).
pub fn channel(waker: Waker) -> Result<(ChunkWriter, Receiver<Chunk>), Busy> {
    let slot = Slot::claim().ok_or(Busy)?;
    let (tx, rx) = sync_channel(DEPTH);
    Ok((ChunkWriter { tx, buf: Vec::with_capacity(CHUNK), waker, slot: Some(slot) }, rx))
}

impl ChunkWriter {
    fn ship(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(Chunk::Data(data)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        self.waker.wake();
        Ok(())
    }

    fn free_slot(&mut self) {
        self.slot = None;
    }

    /// Ships what is buffered and marks the body complete.
    pub fn finish(mut self) -> io::Result<()> {
        self.ship()?;
        // The slot is free before the client can see the end and ask for the next download.
        self.free_slot();
        self.tx.send(Chunk::End).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        self.waker.wake();
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            self.ship()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        // Without `finish`, the receiver sees the channel close without `End`: a failure.
        self.waker.wake();
        self.free_slot();
    }
}

/// Streams an open file on a producer thread (a download of a finished artifact).
pub fn send_file(mut file: std::fs::File, mut writer: ChunkWriter) {
    let spawned = crate::workers::detached("download", move || {
        if io::copy(&mut file, &mut writer).is_ok() {
            let _ = writer.finish();
        }
    });
    if let Err(e) = spawned {
        crate::log::warn(format_args!("cannot start a download: {e}"));
    }
}
