//! Credentials on the wire (Jidoteki `?hash=`/`?token=`, form fields, bearer) and the
//! global pause that makes failed setup attempts slow however many connections try.

use std::time::Instant;

use crate::engine::keys::{Keys, Principal};
use crate::engine::token::Tokens;
use crate::limits::SETUP_FAILURE_PAUSE;
use crate::server::form::Form;
use std::borrow::Cow;

use crate::server::http::{Head, query_param};

pub enum Credential<'a> {
    Hash(Cow<'a, str>),
    Token(Cow<'a, str>),
    /// `Authorization: Steward-HMAC key=…, ts=…, nonce=…, sig=…`: replay-resistant.
    Signed(Signed),
    /// A TLS client certificate on the trusted list.
    TrustedCert(Principal),
    Absent,
}

pub struct Signed {
    pub key: String,
    pub ts: i64,
    pub nonce: String,
    pub sig: String,
}

/// How far a signed request's timestamp may be from the clock, either way.
pub const SIGNED_WINDOW_SECS: i64 = 300;
/// Remembered nonces; more live ones than this and signed requests wait for some to expire.
const MAX_NONCES: usize = 100_000;
/// sha256 of nothing: what an empty body's `X-Content-SHA256` is.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `?hash=` wins over `?token=` (as in the reference implementation); then the headers.
pub fn from_head(head: &Head) -> Credential<'_> {
    if let Some(h) = query_param(head.query(), "hash") {
        return Credential::Hash(h);
    }
    if let Some(t) = query_param(head.query(), "token") {
        return Credential::Token(t);
    }
    if let Some((scheme, value)) = head.authorization().and_then(|v| v.split_once(' ')) {
        if scheme.eq_ignore_ascii_case("bearer") {
            return Credential::Token(Cow::Borrowed(value.trim()));
        }
        // Backrest's documented scripts use `curl -u user:password`: the password is the
        // token, whatever the user name.
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(pair) = crate::server::http::base64_decode(value.trim())
            && let Some((_, password)) = String::from_utf8_lossy(&pair).split_once(':')
        {
            return Credential::Token(Cow::Owned(password.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("steward-hmac") {
            let mut signed = Signed { key: String::new(), ts: 0, nonce: String::new(), sig: String::new() };
            for part in value.split(',') {
                match part.trim().split_once('=') {
                    Some(("key", v)) => signed.key = v.to_owned(),
                    Some(("ts", v)) => signed.ts = v.parse().unwrap_or(0),
                    Some(("nonce", v)) => signed.nonce = v.to_owned(),
                    Some(("sig", v)) => signed.sig = v.to_ascii_lowercase(),
                    _ => {}
                }
            }
            return Credential::Signed(signed);
        }
    }
    Credential::Absent
}

pub fn from_form(form: &Form) -> Credential<'_> {
    if let Some(h) = form.text("hash") {
        return Credential::Hash(Cow::Borrowed(h));
    }
    if let Some(t) = form.text("token") {
        return Credential::Token(Cow::Borrowed(t));
    }
    Credential::Absent
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid(Principal),
    Invalid,
    Absent,
}

/// The message a `Steward-HMAC` signature covers.
pub fn signed_message(head: &Head, ts: i64, nonce: &str) -> String {
    let body = head.content_sha256().unwrap_or(EMPTY_SHA256);
    format!("{}\n{}\n{}\n{}\n{}\n{}", head.method.as_str(), head.path(), head.query(), body, ts, nonce)
}

/// Nonces of signed requests seen within the window, so none is accepted twice.
#[derive(Default)]
pub struct Nonces(std::collections::HashMap<String, i64>);

impl Nonces {
    /// Records the nonce; false if it was already used (or the cache is full of live ones).
    fn fresh(&mut self, nonce: &str, now: i64) -> bool {
        if self.0.len() >= MAX_NONCES {
            self.0.retain(|_, expiry| *expiry > now);
            if self.0.len() >= MAX_NONCES {
                return false;
            }
        }
        match self.0.entry(nonce.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(now + 2 * SIGNED_WINDOW_SECS);
                true
            }
        }
    }
}

/// What each credential proves. The Jidoteki token and its HMAC are the admin; API keys
/// work the same two ways with their own secret; a signed request names its key.
pub fn check(
    tokens: &Tokens,
    keys: &Keys,
    nonces: &mut Nonces,
    credential: &Credential,
    head: &Head,
    now: i64,
) -> Verdict {
    let key_principal = crate::engine::keys::Key::principal;
    match credential {
        Credential::Absent => Verdict::Absent,
        Credential::TrustedCert(p) => Verdict::Valid(p.clone()),
        Credential::Token(t) if tokens.check_token(t.as_bytes()) => Verdict::Valid(Principal::Admin),
        Credential::Token(t) => keys.by_secret(t, now).map(key_principal).map_or(Verdict::Invalid, Verdict::Valid),
        Credential::Hash(h) if tokens.check_hash(head.method.as_str(), head.path(), h.as_bytes()) => {
            Verdict::Valid(Principal::Admin)
        }
        Credential::Hash(h) => keys
            .by_hmac(&[head.method.as_str().as_bytes(), head.path().as_bytes()], h.as_bytes(), now)
            .map(key_principal)
            .map_or(Verdict::Invalid, Verdict::Valid),
        Credential::Signed(s) => {
            let nonce_ok =
                (8..=128).contains(&s.nonce.len()) && s.nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !nonce_ok || (now - s.ts).abs() > SIGNED_WINDOW_SECS {
                return Verdict::Invalid;
            }
            let message = signed_message(head, s.ts, &s.nonce);
            let principal = if s.key == "token" {
                tokens.check_signature(message.as_bytes(), s.sig.as_bytes()).then_some(Principal::Admin)
            } else {
                keys.by_name(&s.key)
                    .filter(|k| !k.expired(now))
                    .filter(|k| k.signs(&[message.as_bytes()], s.sig.as_bytes()))
                    .map(key_principal)
            };
            // Only a request whose signature holds spends its nonce.
            match principal {
                Some(p) if nonces.fresh(&s.nonce, now) => Verdict::Valid(p),
                _ => Verdict::Invalid,
            }
        }
    }
}

/// Failed unauthenticated `/setup` attempts are answered one pause apart, in arrival order,
/// across all connections: ten parallel guesses take ten pauses, not one.
pub struct Throttle {
    next_free: Option<Instant>,
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle { next_free: None }
    }

    /// When the answer to a failure that happens `now` may go out.
    pub fn pause(&mut self, now: Instant) -> Instant {
        let start = self.next_free.filter(|t| *t > now).unwrap_or(now);
        let release = start + SETUP_FAILURE_PAUSE;
        self.next_free = Some(release);
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_queue_up() {
        let mut t = Throttle::new();
        let now = Instant::now();
        let first = t.pause(now);
        let second = t.pause(now);
        assert_eq!(first - now, SETUP_FAILURE_PAUSE);
        assert_eq!(second - now, SETUP_FAILURE_PAUSE * 2);
        let later = now + SETUP_FAILURE_PAUSE * 10;
        assert_eq!(t.pause(later) - later, SETUP_FAILURE_PAUSE);
    }
}
