//! One connection's byte stream: plain TCP or TLS over it, non-blocking either way.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;

use rustls::ServerConnection;

use crate::limits::READ_CHUNK;

pub enum Transport {
    Plain(TcpStream),
    Tls(TcpStream, Box<ServerConnection>),
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// A socket reader that notes when a read came back short or would block: with level-triggered
/// epoll that means the socket's queue is empty, and reading again before epoll says otherwise
/// would be a wasted syscall (one per request on a keep-alive connection).
struct NoteDry<'a> {
    sock: &'a mut TcpStream,
    dry: &'a mut bool,
}

impl Read for NoteDry<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.sock.read(out) {
            Ok(n) => {
                *self.dry |= n > 0 && n < out.len();
                Ok(n)
            }
            Err(e) => {
                *self.dry |= would_block(&e);
                Err(e)
            }
        }
    }
}

enum Drained {
    /// The source ended (EOF or TLS close_notify) after this many bytes.
    Eof(usize),
    /// The source has nothing more for now (or `room` is filled) after this many bytes.
    Dry(usize),
}

/// Appends up to `room` bytes to `buf` from a non-blocking source that `read_into` reads
/// (appending at most its second argument's bytes, returning how many; 0 at the end).
fn drain(
    buf: &mut Vec<u8>,
    room: usize,
    mut read_into: impl FnMut(&mut Vec<u8>, usize) -> io::Result<usize>,
) -> io::Result<Drained> {
    let mut total = 0;
    while total < room {
        match read_into(buf, room - total) {
            Ok(0) => return Ok(Drained::Eof(total)),
            Ok(n) => total += n,
            Err(e) if would_block(&e) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Drained::Dry(total))
}

thread_local! {
    /// Where socket reads land before the bytes read are appended to the connection's
    /// buffer. Growing that buffer with zeros to read into it cost 16 KiB of memset per
    /// read, a third of a small request's CPU; one buffer for the loop's thread costs none.
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

fn read_socket(sock: &mut NoteDry, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    if *sock.dry {
        // Nothing to read until epoll says so: as if the socket would block.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    READ_SCRATCH.with_borrow_mut(|scratch| {
        let n = sock.read(&mut scratch[..max.min(READ_CHUNK)])?;
        buf.extend_from_slice(&scratch[..n]);
        Ok(n)
    })
}

/// rustls holds the decrypted bytes already: they are copied from there, once.
fn read_plaintext(tls: &mut ServerConnection, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut reader = tls.reader();
    let chunk = reader.fill_buf()?;
    let n = chunk.len().min(max);
    buf.extend_from_slice(&chunk[..n]);
    reader.consume(n);
    Ok(n)
}

impl Transport {
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) | Transport::Tls(s, _) => s,
        }
    }

    /// The hex sha256 of the client's certificate (its possession of the key was proven
    /// in the handshake).
    pub fn client_cert_sha256(&self) -> Option<String> {
        let Transport::Tls(_, tls) = self else { return None };
        let cert = tls.peer_certificates()?.first()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Some(crate::hex::to_hex(digest.as_ref()))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(..))
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self, Transport::Tls(_, tls) if tls.is_handshaking())
    }

    /// Appends up to `room` plaintext bytes to `buf`. Returns how many, and whether the peer
    /// has finished sending. With `room == 0` it still advances a TLS handshake. `dry` says the
    /// socket was found empty since epoll last reported it readable: it is not read again
    /// (decrypted bytes TLS holds still are handed out); a short read sets it.
    pub fn read(&mut self, buf: &mut Vec<u8>, room: usize, dry: &mut bool) -> io::Result<(usize, bool)> {
        match self {
            Transport::Plain(sock) => {
                match drain(buf, room, |buf, max| read_socket(&mut NoteDry { sock, dry }, buf, max))? {
                    Drained::Eof(total) => Ok((total, true)),
                    Drained::Dry(total) => Ok((total, false)),
                }
            }
            Transport::Tls(sock, tls) => {
                let mut total = 0;
                loop {
                    // Hand out what is already decrypted before pulling more records.
                    match drain(buf, room.saturating_sub(total), |buf, max| read_plaintext(tls, buf, max))? {
                        Drained::Eof(n) => return Ok((total + n, true)),
                        Drained::Dry(n) => total += n,
                    }
                    if (total >= room && !tls.is_handshaking()) || !tls.wants_read() || *dry {
                        return Ok((total, false));
                    }
                    match tls.read_tls(&mut NoteDry { sock, dry }) {
                        Ok(0) => return Ok((total, true)),
                        Ok(_) => {
                            if let Err(e) = tls.process_new_packets() {
                                // Send the alert that tells the peer why, then give up.
                                let _ = tls.write_tls(sock);
                                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                            }
                        }
                        Err(e) if would_block(&e) => return Ok((total, false)),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Writes as much of `data` as the socket (or TLS buffer) takes now; returns how much.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => match sock.write(data) {
                Ok(n) => Ok(n),
                Err(e) if would_block(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(0),
                Err(e) => Err(e),
            },
            Transport::Tls(_, tls) => {
                let n = tls.writer().write(data)?;
                self.flush()?;
                Ok(n)
            }
        }
    }

    /// Pushes pending TLS records to the socket; true when nothing is left pending.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            Transport::Tls(sock, tls) => {
                while tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(_) => {}
                        Err(e) if would_block(&e) => return Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
        }
    }

    pub fn wants_write(&self) -> bool {
        matches!(self, Transport::Tls(_, tls) if tls.wants_write())
    }

    /// After `close`: reads and drops what the peer still sends, raw (TLS records need no
    /// decrypting to be thrown away); true once the peer has finished. At most 1 MiB a call,
    /// so a fast sender cannot hold the loop.
    pub fn discard_input(&mut self) -> io::Result<bool> {
        let mut sock = self.socket();
        READ_SCRATCH.with_borrow_mut(|scratch| {
            for _ in 0..(1 << 20) / READ_CHUNK {
                match sock.read(scratch) {
                    Ok(0) => return Ok(true),
                    Ok(_) => {}
                    Err(e) if would_block(&e) => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(false)
        })
    }

    /// Best-effort orderly close: TLS close_notify, then FIN.
    pub fn close(&mut self) {
        if let Transport::Tls(_, tls) = self {
            tls.send_close_notify();
            let _ = self.flush();
        }
        let _ = self.socket().shutdown(std::net::Shutdown::Write);
    }
}
