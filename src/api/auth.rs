//! Credentials on the wire (Jidoteki `?hash=`/`?token=`, form fields, bearer) and the
//! global pause that makes failed setup attempts slow however many connections try.

use std::time::Instant;

use crate::engine::token::Tokens;
use crate::limits::SETUP_FAILURE_PAUSE;
use crate::server::form::Form;
use crate::server::http::{Head, query_param};

pub enum Credential {
    Hash(String),
    Token(String),
    /// A TLS client certificate whose fingerprint is on the trusted list.
    TrustedCert,
    Absent,
}

/// `?hash=` wins over `?token=` (as in the reference implementation); then the bearer header.
pub fn from_head(head: &Head) -> Credential {
    if let Some(h) = query_param(&head.query, "hash") {
        return Credential::Hash(h);
    }
    if let Some(t) = query_param(&head.query, "token") {
        return Credential::Token(t);
    }
    if let Some((scheme, value)) = head.authorization.as_deref().and_then(|v| v.split_once(' ')) {
        if scheme.eq_ignore_ascii_case("bearer") {
            return Credential::Token(value.trim().to_owned());
        }
        // Backrest's documented scripts use `curl -u user:password`: the password is the
        // token, whatever the user name.
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(pair) = crate::server::http::base64_decode(value.trim())
            && let Some((_, password)) = String::from_utf8_lossy(&pair).split_once(':')
        {
            return Credential::Token(password.to_owned());
        }
    }
    Credential::Absent
}

pub fn from_form(form: &Form) -> Credential {
    if let Some(h) = form.text("hash") {
        return Credential::Hash(h.to_owned());
    }
    if let Some(t) = form.text("token") {
        return Credential::Token(t.to_owned());
    }
    Credential::Absent
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Absent,
}

/// The HMAC message is the method and the raw path as sent (a trailing slash is part of it).
pub fn check(tokens: &Tokens, credential: &Credential, head: &Head) -> Verdict {
    match credential {
        Credential::Absent => Verdict::Absent,
        Credential::TrustedCert => Verdict::Valid,
        Credential::Token(t) if tokens.check_token(t.as_bytes()) => Verdict::Valid,
        Credential::Hash(h) if tokens.check_hash(head.method.as_str(), &head.path, h.as_bytes()) => Verdict::Valid,
        _ => Verdict::Invalid,
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
