//! One client connection as an explicit state machine: head → body → (pause) → write.

use std::net::IpAddr;
use std::time::Instant;

use super::body::{BodyError, Decoder};
use super::http::{self, Head, HeadError, Method, Response};
use super::transport::Transport;
use super::{Handler, Reply};
use crate::limits::{
    BODY_STALL_TIMEOUT, HANDSHAKE_TIMEOUT, HEAD_TIMEOUT, IDLE_TIMEOUT, LINGER_TIMEOUT, MAX_HEAD_BYTES, READ_CHUNK,
    TURN_BUDGET, WORKER_TIMEOUT, WRITE_STALL_TIMEOUT,
};

enum Phase<A> {
    Head,
    Body {
        head: Head,
        admission: A,
        decoder: Decoder,
    },
    /// The answer is being worked out on another thread; nothing is read meanwhile.
    Awaiting {
        rx: std::sync::mpsc::Receiver<Response>,
        fallback: Response,
        head_only: bool,
        close: bool,
    },
    /// A deliberately delayed answer (auth throttling); nothing is read meanwhile.
    Paused {
        until: Instant,
        response: Response,
        head_only: bool,
    },
    Writing,
    /// The answer is out and our side is shut: the client's remaining bytes are dropped until
    /// it stops sending (or `LINGER_TIMEOUT`), so it sees the answer, not a reset.
    Lingering {
        until: Instant,
    },
}

pub struct Conn<A> {
    pub transport: Transport,
    pub peer: IpAddr,
    phase: Phase<A>,
    inbuf: Vec<u8>,
    /// Decoded body bytes on their way to the handler.
    scratch: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    close_after_write: bool,
    /// When the current phase began or last made progress; drives the timeouts.
    mark: Instant,
    opened: Instant,
    /// Over the connection cap: answer the first request with 503 and close.
    refuse: bool,
    peer_done: bool,
    /// Bytes moved in either direction; `drive` loops while this grows.
    moved: u64,
    /// The rest of a streamed response body, still being produced.
    stream: Option<std::sync::mpsc::Receiver<super::stream::Chunk>>,
    /// The stream's body is chunk-framed (its length was not known up front).
    stream_chunked: bool,
    /// The request being answered is HTTP/1.0.
    http10: bool,
    /// The last turn stopped at `TURN_BUDGET` with work left: drive it again next turn
    /// even if epoll says nothing (TLS may hold decrypted bytes the socket no longer shows).
    yielded: bool,
}

/// What the event loop should do with a connection after driving it.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Keep,
    Drop,
}

impl<A> Conn<A> {
    pub fn new(transport: Transport, peer: IpAddr, now: Instant, refuse: bool) -> Conn<A> {
        Conn {
            transport,
            peer,
            phase: Phase::Head,
            inbuf: Vec::new(),
            scratch: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            close_after_write: false,
            mark: now,
            opened: now,
            refuse,
            peer_done: false,
            moved: 0,
            stream: None,
            stream_chunked: false,
            http10: false,
            yielded: false,
        }
    }

    /// Stopped at its turn's budget with more to do.
    pub fn yielded(&self) -> bool {
        self.yielded
    }

    /// The socket hung up or failed; a paused answer has nobody left to hear it.
    pub fn peer_gone(&mut self) {
        self.peer_done = true;
        if matches!(self.phase, Phase::Paused { .. }) {
            self.close_after_write = true;
            self.phase = Phase::Writing;
        }
    }

    /// Waiting on a worker or producer thread rather than on the socket.
    pub fn waits_on_worker(&self) -> bool {
        self.stream.is_some() || matches!(self.phase, Phase::Awaiting { .. })
    }

    /// Whether the loop should wait for readability (else only writability or time).
    pub fn wants_read(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Body { .. } | Phase::Lingering { .. }) && !self.peer_done
    }

    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len() || self.transport.wants_write()
    }

    /// The instant at which this connection next needs attention without any I/O.
    pub fn deadline(&self) -> Instant {
        match &self.phase {
            Phase::Paused { until, .. } => *until,
            Phase::Head if self.transport.is_handshaking() => self.opened + HANDSHAKE_TIMEOUT,
            Phase::Head if self.inbuf.is_empty() => self.mark + IDLE_TIMEOUT,
            Phase::Head => self.mark + HEAD_TIMEOUT,
            Phase::Body { .. } => self.mark + BODY_STALL_TIMEOUT,
            // Bounded by the worker, not by the client: a restore takes what it takes.
            Phase::Awaiting { .. } => self.mark + WORKER_TIMEOUT,
            Phase::Writing => self.mark + WRITE_STALL_TIMEOUT,
            Phase::Lingering { until } => *until,
        }
    }

    /// Runs the state machine as far as the socket allows.
    pub fn drive<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Next {
        let start = self.moved;
        self.yielded = false;
        loop {
            // Lengths alone can repeat (a chunk consumed, another read) while work is done.
            let before = (self.moved, self.inbuf.len(), self.out.len(), self.phase_id(), self.stream.is_some());
            match self.step(handler, now) {
                Ok(Next::Drop) | Err(()) => {
                    // A lingering connection closed its side already.
                    if !matches!(self.phase, Phase::Lingering { .. }) {
                        self.transport.close();
                    }
                    return Next::Drop;
                }
                Ok(Next::Keep) => {}
            }
            let after = (self.moved, self.inbuf.len(), self.out.len(), self.phase_id(), self.stream.is_some());
            if before == after {
                break;
            }
            // One connection's upload or download must not hold up every other client.
            if self.moved - start >= TURN_BUDGET {
                self.yielded = true;
                break;
            }
        }
        if now >= self.deadline() {
            return self.on_timeout(handler, now);
        }
        Next::Keep
    }

    fn phase_id(&self) -> u8 {
        match self.phase {
            Phase::Head => 0,
            Phase::Body { .. } => 1,
            Phase::Paused { .. } => 2,
            Phase::Writing => 3,
            Phase::Awaiting { .. } => 4,
            Phase::Lingering { .. } => 5,
        }
    }

    fn on_timeout<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Next {
        match &self.phase {
            Phase::Head if !self.inbuf.is_empty() && !self.transport.is_handshaking() => {
                // A slow head (slowloris) gets a 408 on its way out, if the socket takes it.
                self.respond(handler.protocol_error(None, 408, "request head not received in time"), false, true);
                let _ = self.flush_out();
                self.transport.close();
                Next::Drop
            }
            Phase::Paused { .. } => Next::Keep,
            // Already closed on our side.
            Phase::Lingering { .. } => Next::Drop,
            _ => {
                let _ = now;
                self.transport.close();
                Next::Drop
            }
        }
    }

    fn step<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Result<Next, ()> {
        // Output first: a pending response must drain before anything else happens.
        if self.wants_write() {
            let before = self.out_pos;
            self.flush_out()?;
            if self.out_pos != before {
                self.mark = now;
            }
        }
        match self.phase_id() {
            0 => {
                let room = (MAX_HEAD_BYTES + 1).saturating_sub(self.inbuf.len());
                let got = self.fill(room)?;
                if got > 0 && self.inbuf.len() == got {
                    self.mark = now; // the first byte of a new request starts the head timer
                }
                if self.inbuf.is_empty() {
                    return Ok(if self.peer_done { Next::Drop } else { Next::Keep });
                }
                self.on_head_bytes(handler, now)
            }
            1 => {
                let next = self.on_body_bytes(handler)?;
                if self.phase_id() == 1 && next == Next::Keep {
                    // Whatever is left in `inbuf` is an incomplete chunk line: read more.
                    let got = self.fill(READ_CHUNK)?;
                    if got > 0 {
                        self.mark = now;
                    } else if self.peer_done {
                        return Ok(Next::Drop);
                    }
                }
                Ok(next)
            }
            4 => {
                use std::sync::mpsc::TryRecvError;
                let Phase::Awaiting { rx, head_only, close, .. } = &self.phase else { unreachable!() };
                let (head_only, close) = (*head_only, *close);
                let answer = match rx.try_recv() {
                    Ok(response) => Some(response),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        let Phase::Awaiting { fallback, .. } = std::mem::replace(&mut self.phase, Phase::Writing)
                        else {
                            unreachable!()
                        };
                        Some(fallback)
                    }
                };
                if let Some(response) = answer {
                    self.mark = now;
                    self.respond(response, head_only, close);
                }
                Ok(Next::Keep)
            }
            5 => match self.transport.discard_input() {
                Ok(false) => Ok(Next::Keep),
                Ok(true) | Err(_) => Ok(Next::Drop),
            },
            2 => {
                let due = matches!(&self.phase, Phase::Paused { until, .. } if now >= *until);
                if due {
                    let Phase::Paused { response, head_only, .. } = std::mem::replace(&mut self.phase, Phase::Writing)
                    else {
                        unreachable!()
                    };
                    self.mark = now;
                    let close = response.close;
                    self.respond(response, head_only, close);
                }
                Ok(Next::Keep)
            }
            _ => {
                if self.wants_write() {
                    return Ok(Next::Keep);
                }
                if let Some(rx) = &self.stream {
                    use super::stream::Chunk;
                    use std::sync::mpsc::TryRecvError;
                    match rx.try_recv() {
                        Ok(Chunk::Data(data)) if self.stream_chunked => {
                            use std::io::Write;
                            let _ = write!(self.out, "{:x}\r\n", data.len());
                            self.out.extend_from_slice(&data);
                            self.out.extend_from_slice(b"\r\n");
                            self.mark = now;
                        }
                        Ok(Chunk::Data(data)) => {
                            self.out.extend_from_slice(&data);
                            self.mark = now;
                        }
                        Ok(Chunk::End) => {
                            if self.stream_chunked {
                                self.out.extend_from_slice(b"0\r\n\r\n");
                            }
                            self.stream = None;
                        }
                        Err(TryRecvError::Empty) => {}
                        // The producer failed: cut the body short so the client sees an
                        // incomplete transfer rather than a silently truncated file.
                        Err(TryRecvError::Disconnected) => return Ok(Next::Drop),
                    }
                    return Ok(Next::Keep);
                }
                if self.close_after_write {
                    if self.peer_done {
                        return Ok(Next::Drop);
                    }
                    self.transport.close();
                    self.phase = Phase::Lingering { until: now + LINGER_TIMEOUT };
                    return Ok(Next::Keep);
                }
                self.phase = Phase::Head;
                self.mark = now;
                Ok(Next::Keep)
            }
        }
    }

    fn fill(&mut self, room: usize) -> Result<usize, ()> {
        if self.peer_done {
            return Ok(0);
        }
        match self.transport.read(&mut self.inbuf, room) {
            Ok((n, eof)) => {
                self.peer_done |= eof;
                self.moved += n as u64;
                // The handshake may have produced records to send.
                self.transport.flush().map_err(|_| ())?;
                Ok(n)
            }
            Err(_) => Err(()),
        }
    }

    fn on_head_bytes<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Result<Next, ()> {
        // Blank lines between pipelined requests are allowed (RFC 9112 §2.2).
        while self.inbuf.starts_with(b"\r\n") {
            self.inbuf.drain(..2);
        }
        let (head, used) = match http::parse_head(&self.inbuf) {
            Ok(parsed) => parsed,
            Err(HeadError::Partial) => {
                return Ok(if self.peer_done { Next::Drop } else { Next::Keep });
            }
            Err(e) => {
                let (status, msg) = match e {
                    HeadError::TooLarge => (431, "request head too large"),
                    HeadError::Bad(m) => (400, m),
                    HeadError::Expectation => (417, "only 100-continue is supported"),
                    HeadError::NotImplemented(m) => (501, m),
                    HeadError::Partial => unreachable!(),
                };
                self.inbuf.clear();
                self.respond(handler.protocol_error(None, status, msg), false, true);
                return Ok(Next::Keep);
            }
        };
        self.inbuf.drain(..used);
        let mut head = head;
        head.client_cert = self.transport.client_cert_sha256();
        handler.normalise(&mut head);
        self.mark = now;
        self.http10 = head.http10;
        let head_only = head.method == Method::Head;
        if self.refuse {
            let mut response = handler.protocol_error(Some(&head), 503, "too many connections");
            response.close = true;
            self.respond(response, head_only, true);
            return Ok(Next::Keep);
        }
        let admission = match handler.admit(&head, self.peer, now) {
            Ok(a) => a,
            Err(reply) => {
                // The body, if any, is not read: close so its bytes are not taken for a request.
                let close = !head.keep_alive || head.has_body();
                self.reply(reply, head_only, close, now);
                return Ok(Next::Keep);
            }
        };
        let limit = handler.body_limit(&admission);
        let decoder = match Decoder::new(head.framing, limit) {
            Ok(d) => d,
            Err(_) => {
                self.respond(handler.protocol_error(Some(&head), 413, "request body too large"), head_only, true);
                return Ok(Next::Keep);
            }
        };
        if head.expect_continue && head.has_body() {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.phase = Phase::Body { head, admission, decoder };
        Ok(Next::Keep)
    }

    fn on_body_bytes<H: Handler<Admission = A>>(&mut self, handler: &mut H) -> Result<Next, ()> {
        let Phase::Body { decoder, head, admission } = &mut self.phase else { return Ok(Next::Keep) };
        self.scratch.clear();
        match decoder.feed(&self.inbuf, &mut self.scratch) {
            Ok(used) => {
                self.inbuf.drain(..used);
                if !self.scratch.is_empty() {
                    handler.body_chunk(admission, &self.scratch);
                }
            }
            Err(e) => {
                let (status, msg) = match e {
                    BodyError::TooLarge => (413, "request body too large"),
                    BodyError::Bad(m) => (400, m),
                };
                let response = handler.protocol_error(Some(head), status, msg);
                let head_only = head.method == Method::Head;
                self.inbuf.clear();
                self.phase = Phase::Writing;
                self.respond(response, head_only, true);
                return Ok(Next::Keep);
            }
        }
        if !decoder.is_done() {
            return Ok(Next::Keep);
        }
        let Phase::Body { head, admission, .. } = std::mem::replace(&mut self.phase, Phase::Writing) else {
            unreachable!()
        };
        let head_only = head.method == Method::Head;
        let keep_alive = head.keep_alive;
        let reply = handler.handle(head, admission, self.peer, Instant::now());
        self.reply(reply, head_only, !keep_alive, Instant::now());
        Ok(Next::Keep)
    }

    fn reply(&mut self, reply: Reply, head_only: bool, close: bool, now: Instant) {
        let mut response = reply.response;
        response.close |= close;
        if let Some(rx) = reply.pending {
            self.mark = now;
            self.phase = Phase::Awaiting { rx, fallback: response, head_only, close };
            return;
        }
        match reply.not_before {
            Some(until) if until > now => {
                self.phase = Phase::Paused { until, response, head_only };
            }
            _ => {
                let close = response.close;
                self.respond(response, head_only, close);
            }
        }
    }

    fn respond(&mut self, mut response: Response, head_only: bool, close: bool) {
        response.close |= close;
        if self.http10 && response.stream.is_some() && response.stream_len.is_none() {
            // No chunked coding in HTTP/1.0: the end of the body is the end of the connection.
            response.close_delimited = true;
            response.close = true;
        }
        self.close_after_write = response.close;
        self.phase = Phase::Writing;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        response.write_to(&mut self.out, head_only, self.transport.is_tls());
        self.stream = if head_only { None } else { response.stream.take() };
        self.stream_chunked = response.stream_len.is_none() && !response.close_delimited;
    }

    fn flush_out(&mut self) -> Result<(), ()> {
        while self.out_pos < self.out.len() {
            let n = self.transport.write(&self.out[self.out_pos..]).map_err(|_| ())?;
            if n == 0 {
                break;
            }
            self.out_pos += n;
            self.moved += n as u64;
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.transport.flush().map_err(|_| ())?;
        Ok(())
    }
}
