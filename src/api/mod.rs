//! Request → engine → response: routing, authentication, and one module per surface.

pub mod auth;
pub mod backrest;
pub mod dashboard;
pub mod incus;
pub mod jidoteki;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod plans;
pub mod protobuf;
pub mod records;
pub mod routes;
pub mod system;

use std::net::IpAddr;
use std::time::Instant;

use self::auth::{Credential, FailureLimiter, Throttle, Throttled, Verdict};
use self::routes::{Access, Body, Lookup, ROUTES, Route, Surface};
use crate::engine::Engine;
use crate::engine::keys::{Cap, Principal};
use crate::limits::SMALL_FORM_BODY;
use crate::server::form::{Form, FormError, FormReader, RawSpool, Spool, Spooled, StreamedPart};
use crate::server::http::{Head, Method, Response};
use crate::server::{Handler, Reply};

pub struct Api {
    pub engine: Engine,
    pub throttle: Throttle,
    /// Failed authentications per client address and overall.
    limiter: FailureLimiter,
    /// Lets producer threads (downloads) wake the server loop.
    pub waker: Option<crate::server::stream::Waker>,
    /// Nonces of signed requests within their window.
    nonces: auth::Nonces,
    pub metrics: metrics::Metrics,
    /// `GET /health`'s body, rendered from the health figures read at that instant.
    health_body: Option<(Instant, String)>,
    /// Backrest clients following the operation history (`GetOperationEvents`).
    pub event_streams: Vec<backrest::EventStream>,
    /// An update's trial boot was looked at (once, on the loop's first turn).
    update_settled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    /// Valid credentials were in the head (or the form), acting as this principal.
    Granted(Principal),
    /// No credentials in the head; they may be in the form body.
    Pending,
    /// `/setup` while no token exists: open to anyone on the network, as documented.
    Open,
}

pub struct Admission {
    /// When the head arrived, for the latency histogram.
    started: Instant,
    /// For a signed request: the body digest it claims, and the digest being computed.
    digest: Option<(String, ring::digest::Context)>,
    route: usize,
    auth: AuthState,
    body: BodyReader,
    /// An update streaming in (`Body::Update`): its job reads what the form's part sends,
    /// and starts with the part's first byte.
    update: Option<UpdateUpload>,
}

pub struct UpdateUpload {
    pub feed: crate::engine::upload::Feed,
    /// Taken when the job starts.
    pending: Option<crate::engine::update::PendingUpdate>,
    /// Another update started between this one's head and its first byte.
    pub refused: bool,
}

enum BodyReader {
    Form(FormReader),
    Raw(RawSpool),
    /// A small raw body (a JSON request): kept in memory, so a read-only RPC works on a full
    /// data disk and no small body is written to uploads/ and read back.
    Small(Vec<u8>),
}

/// Why a handler did not give its answer: a refusal of the engine's, which the route's
/// surface words in its one match (`engine_error` in each surface module), or an answer the
/// surface already worded (a parse error in its own dialect).
pub enum Failure {
    Engine(crate::engine::Error),
    /// Boxed: error paths are rare and `Handled` stays the size of a `Reply`.
    Answer(Box<Reply>),
}

impl From<crate::engine::Error> for Failure {
    fn from(e: crate::engine::Error) -> Failure {
        Failure::Engine(e)
    }
}

impl From<Reply> for Failure {
    fn from(r: Reply) -> Failure {
        Failure::Answer(Box::new(r))
    }
}

/// What a handler returns: `?` works on engine calls and on a surface's own parse steps.
pub type Handled = Result<Reply, Failure>;

/// Everything a handler gets about its request.
pub struct Call<'a> {
    pub head: &'a Head,
    pub form: Result<Form, FormError>,
    /// The spooled body of a raw-body route (an archive), if it had one.
    pub raw: Option<Spooled>,
    /// The body of a raw-body route small enough to be kept in memory.
    pub small: Option<Vec<u8>>,
    pub peer: IpAddr,
    pub now: Instant,
    pub auth: AuthState,
    /// The route the request matched: its pattern names the path's captures.
    pub route: &'static Route,
    /// The update job this request's body streamed into (`Body::Update`): the handler ends
    /// its upload, or the job sees the upload cut off.
    pub update: Option<UpdateUpload>,
}

impl Call<'_> {
    /// The path segment the route's pattern names `{name}`, percent-decoded; empty if the
    /// pattern has none of that name (a handler asking for one is a bug the route tests
    /// catch: every route with a capture is requested in them).
    pub fn param(&self, name: &str) -> String {
        let rest = &self.head.path()[self.route.surface.prefix().len()..];
        let at = self
            .route
            .pattern
            .split('/')
            .position(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) == Some(name));
        debug_assert!(at.is_some(), "{} has no {{{name}}}", self.route.pattern);
        let raw = at.and_then(|i| rest.split('/').nth(i)).unwrap_or("");
        crate::server::http::percent_decode(raw).map(std::borrow::Cow::into_owned).unwrap_or_default()
    }

    /// Who an audit line says did it.
    pub fn who(&self) -> crate::store::audit::Who {
        crate::store::audit::Who {
            client: self.peer,
            actor: self.principal().actor(),
            surface: self.route.surface.name(),
        }
    }

    /// Who the request acts as: what its effects are bounded by.
    pub fn principal(&self) -> Principal {
        match &self.auth {
            AuthState::Granted(p) => p.clone(),
            AuthState::Pending | AuthState::Open => Principal::nobody(),
        }
    }

    /// The body of a raw-body route as text (empty when there was none).
    pub fn body_text(&mut self) -> Result<String, &'static str> {
        String::from_utf8(self.body_bytes().map_err(|_| "the body cannot be read")?)
            .map_err(|_| "the body is not UTF-8 text")
    }

    /// The body of a raw-body route (empty when there was none).
    pub fn body_bytes(&mut self) -> Result<Vec<u8>, String> {
        if let Some(bytes) = self.small.take() {
            return Ok(bytes);
        }
        match self.raw.take() {
            None => Ok(Vec::new()),
            Some(spooled) => std::fs::read(&spooled.path).map_err(|e| format!("reading the request: {e}")),
        }
    }
}

/// An audit line's `Who` for a request that has no `Call` (yet): its surface from the path.
fn who_from(head: &Head, peer: IpAddr, actor: crate::store::audit::Actor) -> crate::store::audit::Who {
    let surface = Surface::of_path(head.path()).map_or("-", Surface::name);
    crate::store::audit::Who { client: peer, actor, surface }
}

/// 507 when the data disk is full (the client cannot fix that, and should not retry at
/// once), 500 for any other failure to store.
pub fn store_failure_status(message: &str) -> u16 {
    if message.contains("No space left") || message.contains("Disk quota exceeded") { 507 } else { 500 }
}

impl Api {
    pub fn new(engine: Engine) -> Api {
        Api {
            engine,
            throttle: Throttle::new(),
            limiter: FailureLimiter::new(Instant::now()),
            waker: None,
            nonces: Default::default(),
            metrics: Default::default(),
            health_body: None,
            event_streams: Vec::new(),
            update_settled: false,
        }
    }

    pub fn route_enabled(&self, route: &Route) -> bool {
        route.optional.is_none_or(|name| self.engine.board.endpoint_enabled(name))
    }

    fn auth_failed(&mut self, head: &Head, peer: IpAddr, action: &str) -> Reply {
        self.refused_as(head, peer, crate::store::audit::Actor::Nobody, action, None)
    }

    /// A refusal audited as `actor` (a known key without the capability `lacking`, or
    /// nobody).
    fn refused_as(
        &mut self,
        head: &Head,
        peer: IpAddr,
        actor: crate::store::audit::Actor,
        action: &str,
        lacking: Option<Cap>,
    ) -> Reply {
        self.engine.audit.record_refusal(&who_from(head, peer, actor), action, head.path());
        match Surface::of_path(head.path()) {
            Some(Surface::Incus) => incus::error(403, "not authorized").into(),
            Some(Surface::Backrest) => backrest::error("unauthenticated", "a valid token is required").into(),
            // Cycle's clients tell a bad key (401) from a weak one (403, naming what it lacks).
            Some(Surface::Records) => match lacking {
                Some(cap) => records::lacking(cap).into(),
                None => records::error(401, "a valid token is required").into(),
            },
            _ => jidoteki::auth_error(&self.engine).into(),
        }
    }

    /// A status-only error in the dialect of the surface `head` is for.
    fn surface_error(head: Option<&Head>, status: u16, message: Option<&str>) -> Response {
        match head.and_then(|h| Surface::of_path(h.path())) {
            Some(Surface::Incus) => incus::error(status, message.unwrap_or(incus::default_message(status))),
            Some(Surface::Backrest) => {
                backrest::for_status(status, message.unwrap_or(crate::server::http::reason(status)))
            }
            Some(Surface::Records) => records::error(status, message.unwrap_or(crate::server::http::reason(status))),
            _ => jidoteki::status(status, message),
        }
    }

    /// Credentials from the head, with first-run enforced for everything but `/setup`.
    fn authenticate(
        &mut self,
        head: &Head,
        credential: &Credential,
        access: Access,
        peer: IpAddr,
    ) -> Result<Principal, Reply> {
        let now = Instant::now();
        match self.check(credential, head) {
            Verdict::Valid(Principal::Admin) if access == Access::Token && self.engine.tokens.first_run_pending() => {
                Err(self.auth_failed(head, peer, "token.firstrun.failed"))
            }
            Verdict::Valid(p) => {
                self.limiter.succeeded(peer, now);
                Ok(p)
            }
            Verdict::Invalid => {
                self.limiter.failed(peer, now);
                Err(self.auth_failed(head, peer, "token.authenticate.failed"))
            }
            Verdict::Absent => Err(self.auth_failed(head, peer, "token.authenticate.failed")),
        }
    }

    /// Credentials are about to be checked: refused unchecked (429) while `peer` is over its
    /// failure budget, so a right guess looks like a wrong one.
    fn may_check(&mut self, head: &Head, peer: IpAddr, credential: &Credential, now: Instant) -> Result<(), Reply> {
        if matches!(credential, Credential::Absent | Credential::TrustedCert(_)) {
            return Ok(());
        }
        self.limiter.admit(peer, now).map_err(|t| self.throttled(head, peer, t))
    }

    fn throttled(&mut self, head: &Head, peer: IpAddr, t: Throttled) -> Reply {
        if let Some(count) = t.audit {
            let who = who_from(head, peer, crate::store::audit::Actor::Nobody);
            self.engine.audit.record(&who, "auth.throttled", &format!("{count} refused"));
        }
        let secs = t.retry_after.as_secs() + u64::from(t.retry_after.subsec_nanos() > 0);
        let mut response = Self::surface_error(Some(head), 429, Some("too many failed authentications; retry later"))
            .header("Retry-After", secs.max(1).to_string());
        response.close = true;
        response.into()
    }

    pub fn check(&mut self, credential: &Credential, head: &Head) -> Verdict {
        let now = crate::time::unix_millis() / 1000;
        auth::check(&self.engine.tokens, &self.engine.keys, &mut self.nonces, credential, head, now)
    }

    /// The principal may not do what the route does: audited, answered as an auth failure.
    fn denied(&mut self, head: &Head, peer: IpAddr, principal: &Principal, need: Cap) -> Reply {
        self.refused_as(head, peer, principal.actor(), &format!("capability.denied.{}", need.name()), Some(need))
    }
}

impl Api {
    /// Routing from the head alone: the route, and the credentials the head carries.
    fn route_of<'h>(&mut self, head: &'h Head, peer: IpAddr, now: Instant) -> Result<(usize, Credential<'h>), Reply> {
        self.engine.reload_if_restored();
        let Some(surface) = Surface::of_path(head.path()) else {
            return Err(Self::surface_error(Some(head), 404, None).into());
        };
        let mut credential = auth::from_head(head);
        if matches!(credential, Credential::Absent)
            && let Some(client) = head
                .client_cert
                .as_ref()
                .and_then(|fp| self.engine.trusted_clients.iter().find(|c| c.fingerprint == *fp))
        {
            credential = Credential::TrustedCert(client.principal());
        }
        self.may_check(head, peer, &credential, now)?;
        let index = match routes::lookup(surface, head.path(), head.method, |r| self.route_enabled(r)) {
            Lookup::Found(index) => index,
            // Which methods a documented path takes is no secret.
            Lookup::WrongMethod(allowed) => {
                let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                return Err(Self::surface_error(Some(head), 405, None).header("Allow", allow.join(", ")).into());
            }
            // Which paths exist is: only an authenticated caller learns that this one does not.
            Lookup::NotFound => {
                self.authenticate(head, &credential, Access::Token, peer)?;
                return Err(Self::surface_error(Some(head), 404, None).into());
            }
        };
        Ok((index, credential))
    }

    /// Authentication and the body's reader, for the route the head matched.
    fn admit_route(
        &mut self,
        head: &Head,
        peer: IpAddr,
        now: Instant,
        index: usize,
        credential: Credential<'_>,
    ) -> Result<Admission, Reply> {
        let route = &ROUTES[index];
        let takes_form_credentials = head.method == Method::Post && route.body_limit <= SMALL_FORM_BODY;
        let auth = match (&credential, route.access) {
            (_, Access::Public) => AuthState::Open,
            (Credential::Absent, Access::Setup) if !self.engine.tokens.is_set() => AuthState::Open,
            (Credential::Absent, _) if takes_form_credentials && !head.expect_continue => AuthState::Pending,
            (_, Access::Setup) => match self.check(&credential, head) {
                Verdict::Valid(p) => AuthState::Granted(p),
                _ if !self.engine.tokens.is_set() => AuthState::Open,
                _ => return Err(self.setup_refused(head, peer, now)),
            },
            (_, Access::Token) => AuthState::Granted(self.authenticate(head, &credential, Access::Token, peer)?),
        };
        if let AuthState::Granted(p) = &auth
            && !p.allows(route.cap)
        {
            let p = p.clone();
            return Err(self.denied(head, peer, &p, route.cap));
        }
        // A signed request's signature covers the body's digest: the body must match it.
        let digest = match (&credential, head.content_sha256()) {
            (Credential::Signed(_), Some(claimed)) => {
                Some((claimed.to_owned(), ring::digest::Context::new(&ring::digest::SHA256)))
            }
            (Credential::Signed(_), None) if head.has_body() => {
                return Err(self.auth_failed(head, peer, "signature.body.undeclared"));
            }
            _ => None,
        };
        let mut update = None;
        let body = match route.body {
            Body::Json => BodyReader::Small(Vec::new()),
            Body::Archive => BodyReader::Raw(RawSpool::new(self.engine.upload_dir())),
            Body::Uploads => BodyReader::Form(FormReader::new(
                head.content_type(),
                Some(Spool { dir: self.engine.upload_dir(), stream: None }),
            )),
            Body::Update => {
                let (feed, pending) = jidoteki::begin_update(self)?;
                let mut part = feed.clone();
                let stream = StreamedPart { field: "update", sink: Box::new(move |bytes| part.push(bytes)) };
                update = Some(UpdateUpload { feed, pending: Some(pending), refused: false });
                BodyReader::Form(FormReader::new(
                    head.content_type(),
                    Some(Spool { dir: self.engine.upload_dir(), stream: Some(stream) }),
                ))
            }
            // A GET's query credentials and a small form's fields are read the same way.
            Body::None | Body::Form => BodyReader::Form(FormReader::new(head.content_type(), None)),
        };
        Ok(Admission { route: index, auth, body, digest, started: now, update })
    }
}

impl Handler for Api {
    type Admission = Admission;

    /// `incus admin os …` reaches IncusOS through an Incus server at `/os/1.0/…`, and a
    /// proxy in front of it may send the same: both are the IncusOS surface's `/1.0/…`.
    fn normalise(&self, head: &mut Head) {
        head.strip_path_prefix("/os");
    }

    fn admit(&mut self, head: &Head, peer: IpAddr, now: Instant) -> Result<Admission, Reply> {
        // A refusal is counted under the route it was for, when the head got that far.
        let (route, result) = match self.route_of(head, peer, now) {
            Ok((index, credential)) => (Some(index), self.admit_route(head, peer, now, index, credential)),
            Err(reply) => (None, Err(reply)),
        };
        if let Err(reply) = &result {
            self.metrics.observe(route, reply.response.status, now.elapsed());
        }
        result
    }

    fn body_limit(&self, admission: &Admission) -> u64 {
        ROUTES[admission.route].body_limit
    }

    fn body_paused(&self, admission: &Admission) -> bool {
        admission.update.as_ref().is_some_and(|u| u.feed.full())
    }

    fn body_chunk(&mut self, admission: &mut Admission, data: &[u8]) {
        if let Some((_, ctx)) = admission.digest.as_mut() {
            ctx.update(data);
        }
        match &mut admission.body {
            BodyReader::Form(f) => f.feed(data),
            BodyReader::Raw(r) => r.feed(data),
            BodyReader::Small(b) => b.extend_from_slice(data),
        }
        if let Some(upload) = admission.update.as_mut().filter(|u| u.pending.is_some() && u.feed.begun())
            && let Some(pending) = upload.pending.take()
        {
            // Refused, the job's end of the upload is dropped with `pending`: the rest of the
            // part is discarded and the handler answers E1004.
            upload.refused = self.engine.launch_update(pending).is_err();
        }
    }

    fn handle(&mut self, head: Head, admission: Admission, peer: IpAddr, now: Instant) -> Reply {
        let route = &ROUTES[admission.route];
        let (form, raw, small) = match admission.body {
            BodyReader::Form(f) => (f.finish(), None, None),
            BodyReader::Raw(r) => match r.finish() {
                Ok(spooled) => (Err(FormError::NotAForm), spooled, None),
                Err(e) => return Self::surface_error(Some(&head), store_failure_status(&e), Some(&e)).into(),
            },
            BodyReader::Small(b) => (Err(FormError::NotAForm), None, Some(b)),
        };
        if let Some((claimed, ctx)) = admission.digest {
            let actual = crate::hex::to_hex(ctx.finish().as_ref());
            if !crate::hex::ct_eq(actual.as_bytes(), claimed.as_bytes()) {
                return self.auth_failed(&head, peer, "signature.body.mismatch");
            }
        }
        let mut auth = admission.auth;
        if auth == AuthState::Pending && route.access == Access::Token {
            let credential = form.as_ref().map(auth::from_form).unwrap_or(Credential::Absent);
            if let Err(reply) = self.may_check(&head, peer, &credential, now) {
                return reply;
            }
            match self.authenticate(&head, &credential, Access::Token, peer) {
                Ok(p) if !p.allows(route.cap) => return self.denied(&head, peer, &p, route.cap),
                Ok(p) => auth = AuthState::Granted(p),
                Err(reply) => return reply,
            }
        }
        let mut call = Call { head: &head, form, raw, small, peer, now, auth, route, update: admission.update };
        let mut reply = match (route.handler)(self, &mut call) {
            Ok(reply) => reply,
            Err(Failure::Answer(reply)) => *reply,
            Err(Failure::Engine(e)) => match route.surface {
                Surface::Jidoteki => jidoteki::engine_error(e),
                Surface::Incus => incus::engine_error(e),
                Surface::Backrest => backrest::engine_error(e),
                Surface::Records => records::engine_error(e),
            },
        };
        if route.surface == Surface::Incus {
            incus::prefix_urls(&head, &mut reply.response);
        }
        let status = if reply.pending.is_some() { 0 } else { reply.response.status };
        self.metrics.observe(Some(admission.route), status, admission.started.elapsed());
        reply
    }

    fn protocol_error(&self, head: Option<&Head>, status: u16, message: &str) -> Response {
        Self::surface_error(head, status, Some(message))
    }

    fn idle(&mut self, start_up: bool) {
        self.engine.give_back_pages(start_up);
    }

    fn tick(&mut self, now: Instant, open_connections: usize) -> Option<Instant> {
        self.metrics.open_connections = open_connections;
        if !self.update_settled {
            // On the first turn the listener is up and answering: a trial boot can be judged.
            self.update_settled = true;
            self.engine.settle_update();
        }
        let now_ms = crate::time::unix_millis();
        let plans = self.engine.plans_tick(now_ms);
        let network = self.engine.network_tick(now_ms);
        let events = backrest::pump_events(self, now).map(|d| now_ms + d.as_millis() as i64);
        let due_ms = plans.into_iter().chain(network).chain(events).min()?;
        // Wall-clock time can jump; a minute at most between looks keeps the schedule true.
        let wait = (due_ms - now_ms).clamp(0, 60_000) as u64;
        Some(now + std::time::Duration::from_millis(wait))
    }
}

impl Api {
    /// Runs a restore on a worker and answers when it is done: `answer` turns the outcome into
    /// the surface's response (`busy` while another restore runs). `after` runs on success
    /// just before the answer is sent; what it starts (a reboot, a restart) must itself wait
    /// long enough for the answer to get out, as the power and restart helpers do.
    pub fn restore_in_background(
        &mut self,
        plan: crate::engine::restore::Plan,
        archive: Spooled,
        busy: Response,
        answer: fn(Result<(), &crate::engine::Error>) -> Response,
        after: impl FnOnce() + Send + 'static,
    ) -> Reply {
        use crate::engine::Error;
        use std::sync::atomic::Ordering;
        let Some(waker) = self.waker.clone() else {
            return answer(Err(&Error::Io("restore is unavailable".into()))).into();
        };
        if self.engine.restoring.swap(true, Ordering::AcqRel) {
            return busy.into();
        }
        let restoring = self.engine.restoring.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let queued = crate::workers::queue("restore", move || {
            let result = crate::engine::restore::run(&plan, &archive.path);
            drop(archive);
            if let Err(e) = &result {
                crate::log::warn(format_args!("restore: {}", e.message()));
            }
            if result.is_ok() {
                after();
            }
            restoring.store(false, Ordering::Release);
            let _ = tx.send(answer(result.as_ref().map(|_| ())));
            waker.wake();
        });
        if queued.is_err() {
            self.engine.restoring.store(false, Ordering::Release);
            return answer(Err(&Error::Io("cannot start the restore".into()))).into();
        }
        let stopped = Error::Io("the restore stopped unexpectedly".into());
        Reply { response: answer(Err(&stopped)), not_before: None, pending: Some(rx) }
    }

    /// A failed `/setup` by someone without the token: audited, and answered after the
    /// shared pause.
    pub fn setup_refused(&mut self, head: &Head, peer: IpAddr, now: Instant) -> Reply {
        let who = who_from(head, peer, crate::store::audit::Actor::Nobody);
        self.engine.audit.record(&who, "token.setup.failed", head.path());
        self.limiter.failed(peer, now);
        let mut response = jidoteki::auth_error(&self.engine);
        // The client may still be sending a body we will not read.
        response.close |= head.has_body();
        // Paused answers hold their connections: past a short queue, the refusal goes out
        // at once and the connection closes, so a burst cannot fill the connection table.
        match self.throttle.pause(now) {
            Some(release) => Reply { response, not_before: Some(release), pending: None },
            None => {
                response.close = true;
                response.into()
            }
        }
    }
}

/// A `Call` for a path and a small body, for the surfaces' parse tests.
#[cfg(test)]
pub(crate) mod test_call {
    use super::*;

    pub fn head(method: &str, path: &str) -> Head {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        crate::server::http::parse_head(raw.as_bytes()).unwrap().0
    }

    pub fn call_for<'a>(head: &'a Head, body: &[u8]) -> Call<'a> {
        let surface = Surface::of_path(head.path()).unwrap();
        let Lookup::Found(index) = routes::lookup(surface, head.path(), head.method, |_| true) else {
            panic!("no route for {}", head.path())
        };
        Call {
            head,
            form: Err(FormError::NotAForm),
            raw: None,
            small: Some(body.to_vec()),
            peer: IpAddr::from([127, 0, 0, 1]),
            now: Instant::now(),
            auth: AuthState::Pending,
            route: &ROUTES[index],
            update: None,
        }
    }

    /// The status and body of a refusal.
    pub fn refusal(reply: Reply) -> (u16, String) {
        (reply.response.status, String::from_utf8_lossy(&reply.response.body).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::test_call::{call_for, head};

    #[test]
    fn captures_are_named_by_the_route_and_percent_decoded() {
        let h = head("GET", "/v1/containers/app/backups/00000000000000000000002a/logs");
        let call = call_for(&h, b"");
        assert_eq!(call.param("container"), "app");
        assert_eq!(call.param("backup"), "00000000000000000000002a");
        let h = head("GET", "/1.0/plans/night%2Dly/");
        assert_eq!(call_for(&h, b"").param("id"), "night-ly", "decoded, trailing slash tolerated");
    }
}
