//! The HTTP(S) server: one thread, one epoll set, a bounded table of connections.

pub mod body;
pub mod conn;
pub mod form;
pub mod http;
pub mod multipart;
pub mod stream;
pub mod transport;

use std::net::{IpAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::event::epoll;

use self::conn::{Conn, Next};
use self::http::{Head, Response};
use self::transport::Transport;
use crate::limits::{MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS, OVERFLOW_CONNECTIONS, TLS_BUFFER};

/// A response, possibly held back until an instant (auth-failure pauses).
pub struct Reply {
    pub response: Response,
    pub not_before: Option<Instant>,
    /// The real response comes later from a worker (which wakes the loop when it sends);
    /// `response` is used if the worker goes away without answering.
    pub pending: Option<std::sync::mpsc::Receiver<Response>>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply { response, not_before: None, pending: None }
    }
}

/// What the API layer provides to the server.
pub trait Handler {
    /// Whatever `admit` learns about a request that `handle` needs (route, auth outcome).
    type Admission;

    /// Adjusts a parsed head before anything else sees it (a path prefix a proxy adds).
    fn normalise(&self, _head: &mut Head) {}

    /// Decides on a request from its head alone, before any body byte is read (and before
    /// `100 Continue` is sent): routing, method, header/query credentials.
    fn admit(&mut self, head: &Head, peer: IpAddr, now: Instant) -> Result<Self::Admission, Reply>;

    /// The largest body this admitted request may carry.
    fn body_limit(&self, admission: &Self::Admission) -> u64;

    /// Decoded body bytes as they arrive (never more in total than `body_limit`).
    fn body_chunk(&mut self, admission: &mut Self::Admission, data: &[u8]);

    /// The consumer of this body (a worker writing it out) is behind: read no more of it
    /// until the loop is woken. The client's bytes wait in its socket, so an upload's
    /// memory stays bounded by what the consumer queues, however fast the client sends.
    fn body_paused(&self, _admission: &Self::Admission) -> bool {
        false
    }

    fn handle(&mut self, head: Head, admission: Self::Admission, peer: IpAddr, now: Instant) -> Reply;

    /// A framing-level error (400, 408, 413, 431, 503...) in the dialect of the surface the
    /// request was for, when its head got that far.
    fn protocol_error(&self, head: Option<&Head>, status: u16, message: &str) -> Response;

    /// Work the loop drives besides requests (schedules), called on every turn with the
    /// number of open connections; returns when it next needs a turn.
    fn tick(&mut self, _now: Instant, _open_connections: usize) -> Option<Instant> {
        None
    }

    /// The loop has had no connection for `IDLE_RELEASE` (or has just started: `start_up`),
    /// a moment to give memory back.
    fn idle(&mut self, _start_up: bool) {}
}

/// After this long without a connection the handler is told it is idle (steward then gives
/// back the code pages the last requests mapped, see `system::raw::pages`): an admin API is idle
/// nearly all the time, and mapping them
/// again costs the next request about a hundred page faults (docs/BENCHMARKS.md).
const IDLE_RELEASE: Duration = Duration::from_secs(5);

const LISTENER_KEY: u64 = u64::MAX;
const WAKE_KEY: u64 = u64::MAX - 1;

pub struct Server {
    listener: TcpListener,
    /// Open connections per client address (an IPv6 /64): one address may not take the
    /// whole table, so the owner elsewhere on the LAN always finds room.
    per_peer: std::collections::HashMap<u128, u32>,
    tls: Option<crate::tls::TlsSlot>,
    epoll: rustix::fd::OwnedFd,
    wake: stream::Waker,
}

struct Slot<A> {
    conn: Conn<A>,
    generation: u32,
    /// Interest currently registered with epoll.
    interest: epoll::EventFlags,
}

impl Server {
    pub fn new(listener: TcpListener, tls: Option<crate::tls::TlsSlot>) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&epoll, listener.as_fd(), epoll::EventData::new_u64(LISTENER_KEY), epoll::EventFlags::IN)?;
        let wake =
            rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK)?;
        epoll::add(&epoll, wake.as_fd(), epoll::EventData::new_u64(WAKE_KEY), epoll::EventFlags::IN)?;
        Ok(Server {
            listener,
            per_peer: Default::default(),
            tls,
            epoll,
            wake: stream::Waker(std::sync::Arc::new(wake)),
        })
    }

    /// For producer threads: wakes this loop when they have output.
    pub fn waker(&self) -> stream::Waker {
        self.wake.clone()
    }

    /// Serves until the process ends.
    pub fn run<H: Handler>(&mut self, handler: &mut H) -> std::io::Result<()> {
        let mut slots: Vec<Option<Slot<H::Admission>>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut generation: u32 = 0;
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        let mut ready: Vec<usize> = Vec::with_capacity(256);
        handler.idle(true);
        // When the last connection was seen, if pages were mapped since the last release.
        let mut busy_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let open = slots.len() - free.len();
            if open > 0 {
                busy_at = Some(now);
            } else if busy_at.is_some_and(|at| now >= at + IDLE_RELEASE) {
                handler.idle(false);
                busy_at = None;
            }
            let wanted = handler.tick(now, open);
            // A connection that used up its turn goes on at once, after the others.
            let more = slots.iter().flatten().any(|s| s.conn.yielded());
            let timeout = slots
                .iter()
                .flatten()
                .map(|s| s.conn.deadline())
                .chain(wanted)
                .chain(busy_at.map(|at| at + IDLE_RELEASE))
                .min()
                .map(|d| d.saturating_duration_since(now) + Duration::from_millis(1));
            let timeout = if more { Some(Duration::ZERO) } else { timeout };
            let timespec = timeout.map(|t| rustix::time::Timespec {
                tv_sec: t.as_secs().min(3600) as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            });
            events.clear();
            match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), timespec.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let now = Instant::now();
            ready.clear();
            let mut accept = false;
            let mut woken = false;
            for ev in &events {
                let (key, flags) = (ev.data.u64(), { ev.flags });
                if key == LISTENER_KEY {
                    accept = true;
                    continue;
                }
                if key == WAKE_KEY {
                    let mut counter = [0u8; 8];
                    let _ = rustix::io::read(&*self.wake.0, &mut counter);
                    woken = true;
                    continue;
                }
                let (index, gen_) = ((key & 0xffff_ffff) as usize, (key >> 32) as u32);
                if let Some(slot) = slots.get_mut(index).and_then(|s| s.as_mut()).filter(|s| s.generation == gen_) {
                    if flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR) {
                        slot.conn.peer_gone();
                    }
                    if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::HUP | epoll::EventFlags::ERR) {
                        slot.conn.readable();
                    }
                    ready.push(index);
                }
            }
            // Connections whose deadline passed are driven too, even without I/O, and so are
            // streaming ones when a producer woke the loop.
            for (index, slot) in slots.iter().enumerate() {
                if let Some(slot) = slot {
                    let due =
                        slot.conn.deadline() <= now || slot.conn.yielded() || (woken && slot.conn.waits_on_worker());
                    if due && !ready.contains(&index) {
                        ready.push(index);
                    }
                }
            }
            for &index in &ready {
                let Some(slot) = slots[index].as_mut() else {
                    continue;
                };
                match slot.conn.drive(handler, now) {
                    Next::Keep => {
                        let want = interest(&slot.conn);
                        if want != slot.interest {
                            let key = (u64::from(slot.generation) << 32) | index as u64;
                            let _ = epoll::modify(
                                &self.epoll,
                                slot.conn.transport.socket().as_fd(),
                                epoll::EventData::new_u64(key),
                                want,
                            );
                            slot.interest = want;
                        }
                    }
                    Next::Drop => {
                        let _ = epoll::delete(&self.epoll, slot.conn.transport.socket().as_fd());
                        release_peer(&mut self.per_peer, slot.conn.peer);
                        slots[index] = None;
                        free.push(index);
                    }
                }
            }
            if accept {
                self.accept_all(handler, &mut slots, &mut free, &mut generation, now);
            }
        }
    }

    fn accept_all<H: Handler>(
        &mut self,
        handler: &mut H,
        slots: &mut Vec<Option<Slot<H::Admission>>>,
        free: &mut Vec<usize>,
        generation: &mut u32,
        now: Instant,
    ) {
        loop {
            let (stream, addr) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for the next round.
                    crate::log::warn(format_args!("accept failed: {e}"));
                    return;
                }
            };
            let open = slots.len() - free.len();
            if open >= MAX_CONNECTIONS + OVERFLOW_CONNECTIONS {
                drop(stream);
                continue;
            }
            // One address over its share is closed at once: kept to be told 503, its flood
            // would still fill the table.
            if self.per_peer.get(&peer_key(addr.ip())).is_some_and(|n| *n >= MAX_CONNECTIONS_PER_ADDRESS) {
                drop(stream);
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let transport = match &self.tls {
                Some(slot) => {
                    match rustls::ServerConnection::new(slot.lock().unwrap_or_else(|e| e.into_inner()).clone()) {
                        Ok(mut tls) => {
                            tls.set_buffer_limit(Some(TLS_BUFFER));
                            Transport::Tls(stream, Box::new(tls))
                        }
                        Err(_) => continue,
                    }
                }
                None => Transport::Plain(stream),
            };
            let refuse = open >= MAX_CONNECTIONS;
            *self.per_peer.entry(peer_key(addr.ip())).or_insert(0) += 1;
            let mut conn = Conn::new(transport, addr.ip(), now, refuse);
            // Give the connection a first chance: the request may already be there.
            if conn.drive(handler, now) == Next::Drop {
                release_peer(&mut self.per_peer, addr.ip());
                continue;
            }
            *generation = generation.wrapping_add(1);
            let index = free.pop().unwrap_or_else(|| {
                slots.push(None);
                slots.len() - 1
            });
            let want = interest(&conn);
            let key = (u64::from(*generation) << 32) | index as u64;
            if epoll::add(&self.epoll, conn.transport.socket().as_fd(), epoll::EventData::new_u64(key), want).is_err() {
                release_peer(&mut self.per_peer, addr.ip());
                free.push(index);
                continue;
            }
            slots[index] = Some(Slot { conn, generation: *generation, interest: want });
        }
    }
}

/// A client address as the limits see it (connections here, failed authentications in the
/// API): IPv4 whole, IPv6 by its /64 (a host is handed a whole /64 and picks from it freely).
pub fn peer_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) >> 64 << 64) | 1 << 32,
        },
    }
}

fn release_peer(per_peer: &mut std::collections::HashMap<u128, u32>, ip: IpAddr) {
    let key = peer_key(ip);
    if let Some(n) = per_peer.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            per_peer.remove(&key);
        }
    }
}

fn interest<A>(conn: &Conn<A>) -> epoll::EventFlags {
    let mut flags = epoll::EventFlags::empty();
    if conn.wants_read() || conn.transport.is_handshaking() {
        flags |= epoll::EventFlags::IN;
    }
    if conn.wants_write() {
        flags |= epoll::EventFlags::OUT;
    }
    flags
}
