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
    /// The socket was found empty since epoll last said it was readable (see `readable`).
    socket_dry: bool,
    /// The handler asked for no more body for now (`Handler::body_paused`): the socket is
    /// not read until a worker wakes the loop.
    body_paused: bool,
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
            socket_dry: false,
            body_paused: false,
        }
    }

    /// Epoll reported the socket readable: it is worth reading again.
    pub fn readable(&mut self) {
        self.socket_dry = false;
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
        self.stream.is_some() || matches!(self.phase, Phase::Awaiting { .. }) || self.body_paused
    }

    /// Whether the loop should wait for readability (else only writability or time).
    pub fn wants_read(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Body { .. } | Phase::Lingering { .. })
            && !self.peer_done
            && !self.body_paused
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
            let before = (
                self.moved,
                self.inbuf.len(),
                self.out.len(),
                std::mem::discriminant(&self.phase),
                self.stream.is_some(),
            );
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
            let after = (
                self.moved,
                self.inbuf.len(),
                self.out.len(),
                std::mem::discriminant(&self.phase),
                self.stream.is_some(),
            );
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
        match &self.phase {
            Phase::Head => self.step_head(handler, now),
            Phase::Body { .. } => self.step_body(handler, now),
            Phase::Awaiting { .. } => Ok(self.step_awaiting(now)),
            Phase::Paused { .. } => Ok(self.step_paused(now)),
            Phase::Writing => Ok(self.step_writing(now)),
            Phase::Lingering { .. } => Ok(match self.transport.discard_input() {
                Ok(false) => Next::Keep,
                Ok(true) | Err(_) => Next::Drop,
            }),
        }
    }

    /// Reads and parses a request head; a whole one moves to `Body` (or to an answer).
    fn step_head<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Result<Next, ()> {
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

    fn step_body<H: Handler<Admission = A>>(&mut self, handler: &mut H, now: Instant) -> Result<Next, ()> {
        let next = self.on_body_bytes(handler)?;
        self.body_paused = matches!(&self.phase, Phase::Body { admission, .. } if handler.body_paused(admission));
        // Paused, the stall timer keeps running from the last byte read: a consumer that
        // frees no room within BODY_STALL_TIMEOUT ends the request like a silent client.
        if self.body_paused {
            return Ok(next);
        }
        if matches!(self.phase, Phase::Body { .. }) && next == Next::Keep {
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

    /// A worker's answer, once it sends one (its fallback if it went away without).
    fn step_awaiting(&mut self, now: Instant) -> Next {
        use std::sync::mpsc::TryRecvError;
        let Phase::Awaiting { rx, .. } = &self.phase else { return Next::Keep };
        let gone = match rx.try_recv() {
            Err(TryRecvError::Empty) => return Next::Keep,
            Ok(response) => Some(response),
            Err(TryRecvError::Disconnected) => None,
        };
        if let Phase::Awaiting { fallback, head_only, close, .. } = std::mem::replace(&mut self.phase, Phase::Writing) {
            self.mark = now;
            self.respond(gone.unwrap_or(fallback), head_only, close);
        }
        Next::Keep
    }

    /// A held-back answer goes out once its time comes.
    fn step_paused(&mut self, now: Instant) -> Next {
        if !matches!(&self.phase, Phase::Paused { until, .. } if now >= *until) {
            return Next::Keep;
        }
        if let Phase::Paused { response, head_only, .. } = std::mem::replace(&mut self.phase, Phase::Writing) {
            self.mark = now;
            let close = response.close;
            self.respond(response, head_only, close);
        }
        Next::Keep
    }

    /// Drains the answer (and a streamed body); then the next head, or linger and close.
    fn step_writing(&mut self, now: Instant) -> Next {
        if self.wants_write() {
            return Next::Keep;
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
                Err(TryRecvError::Disconnected) => return Next::Drop,
            }
            return Next::Keep;
        }
        if self.close_after_write {
            if self.peer_done {
                return Next::Drop;
            }
            self.transport.close();
            self.phase = Phase::Lingering { until: now + LINGER_TIMEOUT };
            return Next::Keep;
        }
        self.phase = Phase::Head;
        self.mark = now;
        Next::Keep
    }

    fn fill(&mut self, room: usize) -> Result<usize, ()> {
        if self.peer_done {
            return Ok(0);
        }
        match self.transport.read(&mut self.inbuf, room, &mut self.socket_dry) {
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
                    HeadError::Partial => return Ok(Next::Keep), // answered above
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
            return Ok(Next::Keep); // matched at the top: the phase is Body
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

#[cfg(test)]
mod tests {
    //! The phases and their transitions, driven over a real loopback socket by a handler
    //! whose answers each test chooses by path.

    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::Duration;

    #[derive(Default)]
    struct Script {
        /// Body bytes the handler was given, per request.
        bodies: Vec<Vec<u8>>,
        /// For `/worker`: the sender the test answers (or drops) through.
        worker: Option<mpsc::Sender<Response>>,
    }

    impl Handler for Script {
        type Admission = Vec<u8>;

        fn admit(&mut self, head: &Head, _peer: IpAddr, now: Instant) -> Result<Vec<u8>, Reply> {
            match head.path() {
                "/refused" => Err(Response::new(403, "text/plain", "no").into()),
                "/paused" => Err(Reply {
                    response: Response::new(401, "text/plain", "later"),
                    not_before: Some(now + Duration::from_secs(2)),
                    pending: None,
                }),
                _ => Ok(Vec::new()),
            }
        }

        fn body_limit(&self, _admission: &Vec<u8>) -> u64 {
            16
        }

        fn body_chunk(&mut self, admission: &mut Vec<u8>, data: &[u8]) {
            admission.extend_from_slice(data);
        }

        fn handle(&mut self, head: Head, admission: Vec<u8>, _peer: IpAddr, _now: Instant) -> Reply {
            self.bodies.push(admission);
            if head.path() == "/worker" {
                let (tx, rx) = mpsc::channel();
                self.worker = Some(tx);
                return Reply {
                    response: Response::new(500, "text/plain", "fallback"),
                    not_before: None,
                    pending: Some(rx),
                };
            }
            Response::new(200, "text/plain", head.path().to_owned()).into()
        }

        fn protocol_error(&self, _head: Option<&Head>, status: u16, message: &str) -> Response {
            Response::new(status, "text/plain", message.to_owned())
        }
    }

    const NOTHING: &str = "\0nothing expected";

    fn pair() -> (Conn<Vec<u8>>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (Conn::new(Transport::Plain(server), peer.ip(), Instant::now(), false), client)
    }

    /// Drives until the client's answer holds `want` (or the connection is dropped); with
    /// `NOTHING`, drives a few turns and returns what arrived.
    fn drive_until(
        conn: &mut Conn<Vec<u8>>,
        h: &mut Script,
        client: &mut TcpStream,
        now: Instant,
        want: &str,
    ) -> String {
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let turns = if want == NOTHING { 20 } else { 2500 };
        for _ in 0..turns {
            conn.readable(); // as the loop does when epoll reports the socket
            let next = conn.drive(h, now);
            let mut buf = [0u8; 4096];
            while let Ok(n) = client.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if next == Next::Drop || String::from_utf8_lossy(&got).contains(want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        client.set_nonblocking(false).unwrap();
        String::from_utf8_lossy(&got).into_owned()
    }

    fn phase(conn: &Conn<Vec<u8>>) -> &'static str {
        match conn.phase {
            Phase::Head => "head",
            Phase::Body { .. } => "body",
            Phase::Awaiting { .. } => "awaiting",
            Phase::Paused { .. } => "paused",
            Phase::Writing => "writing",
            Phase::Lingering { .. } => "lingering",
        }
    }

    #[test]
    fn a_malformed_head_is_answered_400_and_the_connection_lingers() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        client.write_all(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n").unwrap();
        let answer = drive_until(&mut conn, &mut h, &mut client, Instant::now(), "\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert_eq!(phase(&conn), "lingering", "closed after a bad head");
        assert!(h.bodies.is_empty(), "nothing reached the handler");
    }

    #[test]
    fn a_body_too_large_for_the_route_is_413_before_it_is_read() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        client.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n").unwrap();
        let answer = drive_until(&mut conn, &mut h, &mut client, Instant::now(), "\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(h.bodies.is_empty());
    }

    #[test]
    fn head_then_body_then_the_answer_then_the_next_head() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        let now = Instant::now();
        assert_eq!(phase(&conn), "head");
        client.write_all(b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab").unwrap();
        drive_until(&mut conn, &mut h, &mut client, now, NOTHING);
        assert_eq!(phase(&conn), "body", "the head is in, the body is not");
        // The rest of the body and a pipelined second request in one write.
        client.write_all(b"cdeGET /second HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let answer = drive_until(&mut conn, &mut h, &mut client, now, "/second");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.find("/first").unwrap() < answer.find("/second").unwrap(), "answered in order: {answer}");
        assert_eq!(h.bodies, [b"abcde".to_vec(), b"".to_vec()]);
        assert_eq!(phase(&conn), "head", "kept alive for the next request");
    }

    #[test]
    fn a_refusal_from_the_head_closes_a_connection_whose_body_was_not_read() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        client.write_all(b"POST /refused HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        let answer = drive_until(&mut conn, &mut h, &mut client, Instant::now(), "no");
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert_eq!(phase(&conn), "lingering", "the unread body must not be taken for a request");
    }

    #[test]
    fn a_paused_answer_waits_for_its_time_and_reads_nothing_meanwhile() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        let now = Instant::now();
        client.write_all(b"GET /paused HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let early = drive_until(&mut conn, &mut h, &mut client, now, NOTHING);
        assert_eq!(early, "", "nothing before the pause ends");
        assert_eq!(phase(&conn), "paused");
        assert!(!conn.wants_read());
        assert_eq!(conn.deadline(), now + Duration::from_secs(2));
        let later = drive_until(&mut conn, &mut h, &mut client, now + Duration::from_secs(2), "later");
        assert!(later.starts_with("HTTP/1.1 401"), "{later}");
    }

    #[test]
    fn a_worker_answers_later_or_its_fallback_does() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        let now = Instant::now();
        client.write_all(b"GET /worker HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(drive_until(&mut conn, &mut h, &mut client, now, NOTHING), "");
        assert_eq!(phase(&conn), "awaiting");
        assert!(conn.waits_on_worker());
        h.worker.take().unwrap().send(Response::new(200, "text/plain", "from the worker")).unwrap();
        let answer = drive_until(&mut conn, &mut h, &mut client, now, "from the worker");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // A worker that goes away without answering: the fallback goes out.
        client.write_all(b"GET /worker HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drive_until(&mut conn, &mut h, &mut client, now, NOTHING);
        drop(h.worker.take());
        let answer = drive_until(&mut conn, &mut h, &mut client, now, "fallback");
        assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    }

    #[test]
    fn a_head_that_stops_halfway_times_out_with_408() {
        let (mut conn, mut client) = pair();
        let mut h = Script::default();
        let now = Instant::now();
        client.write_all(b"GET /slow HTTP/1.1\r\nHo").unwrap();
        drive_until(&mut conn, &mut h, &mut client, now, NOTHING);
        assert_eq!(conn.deadline(), conn.mark + HEAD_TIMEOUT);
        let due = conn.deadline();
        let answer = drive_until(&mut conn, &mut h, &mut client, due, "408");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}
