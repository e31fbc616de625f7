//! HTTP/1.1 request heads and responses: parsing with httparse, serialising with CRLF only.

use crate::limits::{MAX_HEAD_BYTES, MAX_HEADERS};
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The parts of a request head the daemon uses, owned so the read buffer can move on.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    /// The request target as sent (path, then `?` and the query if there is one), then the
    /// values of the headers kept below: one string for all of them, one allocation a request.
    text: String,
    /// Where the path starts (after a prefix a proxy added, see `strip_path_prefix`), where
    /// it ends and where the target ends in `text`.
    path_start: usize,
    path_end: usize,
    target_end: usize,
    /// HTTP/1.0 clients cannot take chunked bodies.
    pub http10: bool,
    pub framing: Framing,
    pub expect_continue: bool,
    pub keep_alive: bool,
    /// Where each of the `KEPT` headers' values is in `text` (the last one sent wins).
    kept: [Option<Span>; KEPT.len()],
    /// sha256 (hex) of the TLS client certificate, when the client presented one.
    pub client_cert: Option<String>,
}

/// Where a header value sits in `Head::text`.
#[derive(Debug, Clone, Copy)]
struct Span(u32, u32);

impl Head {
    /// Raw path as sent, without the query; what the Jidoteki HMAC is computed over.
    pub fn path(&self) -> &str {
        &self.text[self.path_start..self.path_end]
    }

    /// Drops `prefix` from the front of the path when the path goes on below it (`/os/1.0/x`
    /// less `/os` is `/1.0/x`); whether it did.
    pub fn strip_path_prefix(&mut self, prefix: &str) -> bool {
        let path = self.path();
        let below = path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
        if below {
            self.path_start += prefix.len();
        }
        below
    }

    /// The prefix `strip_path_prefix` took off, if any.
    pub fn stripped_prefix(&self) -> &str {
        &self.text[..self.path_start]
    }

    /// Raw query string without the '?'.
    pub fn query(&self) -> &str {
        self.text.get(self.path_end + 1..self.target_end).unwrap_or("")
    }

    fn value(&self, span: Option<Span>) -> Option<&str> {
        span.map(|Span(from, to)| &self.text[from as usize..to as usize])
    }

    pub fn content_type(&self) -> Option<&str> {
        self.value(self.kept[CONTENT_TYPE])
    }

    pub fn authorization(&self) -> Option<&str> {
        self.value(self.kept[AUTHORIZATION])
    }

    pub fn if_match(&self) -> Option<&str> {
        self.value(self.kept[IF_MATCH])
    }

    /// The body's sha256 as a signed request claims it (`X-Content-SHA256`), lowercased.
    pub fn content_sha256(&self) -> Option<&str> {
        self.value(self.kept[CONTENT_SHA256])
    }

    pub fn accept(&self) -> Option<&str> {
        self.value(self.kept[ACCEPT])
    }

    /// `X-IncusOS-Proxy`: the path prefix an Incus server's proxy took off (`/os`).
    pub fn incusos_proxy(&self) -> Option<&str> {
        self.value(self.kept[INCUSOS_PROXY])
    }

    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::Length(0))
    }

    /// Appends a kept header's value to `text`.
    fn keep(&mut self, value: &str) -> Span {
        let from = self.text.len() as u32;
        self.text.push_str(value);
        Span(from, self.text.len() as u32)
    }
}

/// Headers whose values a `Head` keeps, in the order of `Head::kept`.
const KEPT: [&str; 6] = ["content-type", "authorization", "if-match", "accept", "x-content-sha256", "x-incusos-proxy"];
const CONTENT_TYPE: usize = 0;
const AUTHORIZATION: usize = 1;
const IF_MATCH: usize = 2;
const ACCEPT: usize = 3;
const CONTENT_SHA256: usize = 4;
const INCUSOS_PROXY: usize = 5;

/// Which of the `KEPT` headers `name` is.
fn kept_slot(name: &str) -> Option<usize> {
    KEPT.iter().position(|k| name.eq_ignore_ascii_case(k))
}

/// Why a head was refused before routing.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Partial,
    /// 431: head larger than the limit or too many headers.
    TooLarge,
    /// 400 with a reason.
    Bad(&'static str),
    /// 417: an expectation other than 100-continue.
    Expectation,
    /// 501: a transfer coding we do not implement.
    NotImplemented(&'static str),
}

/// Parses one head from the front of `buf`; returns it and the number of bytes it used.
pub fn parse_head(buf: &[u8]) -> Result<(Head, usize), HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(if buf.len() >= MAX_HEAD_BYTES { HeadError::TooLarge } else { HeadError::Partial });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Bad("malformed request head")),
    };
    if used > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let (slash, target) = origin_form(req.path.ok_or(HeadError::Bad("missing request target"))?)?;
    let slash = usize::from(slash);
    let path_end = slash + target.find('?').unwrap_or(target.len());
    let http10 = req.version == Some(0);
    let kept: usize = req.headers.iter().filter(|h| kept_slot(h.name).is_some()).map(|h| h.value.len()).sum();
    let mut text = String::with_capacity(slash + target.len() + kept);
    if slash == 1 {
        text.push('/');
    }
    text.push_str(target);
    let mut head = Head {
        method: Method::parse(req.method.unwrap_or("")),
        text,
        path_start: 0,
        path_end,
        target_end: slash + target.len(),
        http10,
        framing: Framing::None,
        expect_continue: false,
        keep_alive: !http10,
        kept: [None; KEPT.len()],
        client_cert: None,
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut hosts = 0;
    for h in req.headers.iter() {
        // RFC 9112 §5.1: optional white space is SP and HTAB only; anything else stays in
        // the value, so `Content-Length: \u{a0}13` is not a length.
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HeadError::Bad("header value is not UTF-8"))?
            .trim_matches([' ', '\t']);
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 19 {
                return Err(HeadError::Bad("invalid Content-Length"));
            }
            let n: u64 = value.parse().map_err(|_| HeadError::Bad("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Bad("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // §6.1: an HTTP/1.0 recipient cannot know the coding; the framing is faulty.
            if http10 {
                return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            let last = value.rsplit(',').next().unwrap_or("").trim_matches([' ', '\t']);
            if !last.eq_ignore_ascii_case("chunked") || value.contains(',') {
                return Err(HeadError::NotImplemented("only the chunked transfer coding is supported"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                head.expect_continue = !http10;
            } else {
                return Err(HeadError::Expectation);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if let Some(slot) = kept_slot(name) {
            let Span(from, to) = head.keep(value);
            if slot == CONTENT_SHA256 {
                head.text[from as usize..to as usize].make_ascii_lowercase();
            }
            head.kept[slot] = Some(Span(from, to));
        }
    }
    // §3.2: exactly one Host in an HTTP/1.1 request (an HTTP/1.0 one may have none).
    if hosts > 1 || (hosts == 0 && !http10) {
        return Err(HeadError::Bad(if hosts > 1 { "more than one Host header" } else { "missing Host header" }));
    }
    head.framing = match (length, chunked) {
        // Both at once is how requests get smuggled past proxies: refuse it.
        (Some(_), true) => return Err(HeadError::Bad("both Content-Length and Transfer-Encoding")),
        (Some(n), false) => Framing::Length(n),
        (None, true) => Framing::Chunked,
        (None, false) => Framing::None,
    };
    Ok((head, used))
}

/// The request target as a path: origin form (`/path?query`) as it is, absolute form
/// (`https://host/path?query`, RFC 9112 §3.2.2) with its scheme and authority dropped.
/// Returns whether a `/` goes before the text returned (an empty absolute path).
fn origin_form(target: &str) -> Result<(bool, &str), HeadError> {
    if target.starts_with('/') {
        return Ok((false, target));
    }
    let scheme_end = target.find("://").ok_or(HeadError::Bad("request target must be an absolute path"))?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(HeadError::Bad("request target must be an absolute path"));
    }
    let rest = &target[scheme_end + 3..];
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    if path_at == 0 {
        return Err(HeadError::Bad("absolute request target without an authority"));
    }
    // An empty path is "/" (§3.2.4): `https://box?x=1` is `/?x=1`.
    match &rest[path_at..] {
        "" => Ok((true, "")),
        p => Ok((!p.starts_with('/'), p)),
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Values are mostly fixed strings: a `Cow` spares them an allocation each.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Vec<u8>,
    /// A body produced elsewhere, sent instead of `body`: with chunked framing, or raw when
    /// its length is known (`stream_len`).
    pub stream: Option<std::sync::mpsc::Receiver<super::stream::Chunk>>,
    pub stream_len: Option<u64>,
    /// Send an unsized stream raw and close after it (for HTTP/1.0 clients).
    pub close_delimited: bool,
    /// Close the connection after this response.
    pub close: bool,
}

thread_local! {
    /// The `Date` value, formatted once a second rather than once a response.
    static DATE: std::cell::RefCell<DateCache> = const { std::cell::RefCell::new(DateCache { second: u64::MAX, text: Vec::new() }) };
}

struct DateCache {
    second: u64,
    text: Vec<u8>,
}

impl DateCache {
    fn append_to(&mut self, out: &mut Vec<u8>) {
        use std::io::Write;
        let now = std::time::SystemTime::now();
        let second = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            self.text.clear();
            let _ = write!(self.text, "{}", crate::time::HttpDate(now));
            self.second = second;
        }
        out.extend_from_slice(&self.text);
    }
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            stream: None,
            stream_len: None,
            close_delimited: false,
            close: false,
        }
    }

    /// A streamed body of known length (a file): sent with Content-Length, unframed.
    pub fn streamed_sized(
        content_type: &'static str,
        stream: std::sync::mpsc::Receiver<super::stream::Chunk>,
        len: u64,
    ) -> Response {
        Response { stream_len: Some(len), ..Response::streamed(content_type, stream) }
    }

    pub fn streamed(content_type: &'static str, stream: std::sync::mpsc::Receiver<super::stream::Chunk>) -> Response {
        Response { stream: Some(stream), ..Response::new(200, content_type, Vec::new()) }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the status line, headers and (unless `head_only`) the body to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, tls: bool) {
        use std::io::Write;
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.extend_from_slice(b"Server: steward\r\n");
        out.extend_from_slice(b"Date: ");
        DATE.with(|d| d.borrow_mut().append_to(out));
        out.extend_from_slice(b"\r\n");
        if !self.content_type.is_empty() {
            let _ = write!(out, "Content-Type: {}\r\n", self.content_type);
        }
        if let Some(len) = self.stream_len {
            let _ = write!(out, "Content-Length: {len}\r\n");
        } else if self.stream.is_some() && !self.close_delimited {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        let mut cache_set = false;
        for (name, value) in &self.headers {
            cache_set |= name.eq_ignore_ascii_case("cache-control");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            // Values may quote a request (an unknown settings key in Error-Message): no
            // control character (CR, LF, NUL...) may reach the wire, only HTAB and text.
            out.extend(value.bytes().filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)));
            out.extend_from_slice(b"\r\n");
        }
        if !cache_set {
            out.extend_from_slice(b"Cache-Control: no-store\r\n");
        }
        out.extend_from_slice(b"X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n");
        // A response with its own policy (the dashboard) keeps only that one: a browser
        // enforces every policy it is sent.
        if !self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-security-policy")) {
            out.extend_from_slice(b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n");
        }
        if tls {
            out.extend_from_slice(b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// Decodes `%XX` escapes; '+' is kept as '+' (tokens may hold it and never hold spaces).
/// Borrows when there is nothing to decode, as with every token steward hands out.
pub fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
            let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The first value of `name` in a raw query string, decoded.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Head, HeadError> {
        parse_head(s.as_bytes()).map(|(h, _)| h)
    }

    #[test]
    fn refuses_bad_heads_first() {
        assert_eq!(parse("GET /x HTTP/1.1\r\n").unwrap_err(), HeadError::Partial);
        assert!(matches!(parse("GET x HTTP/1.1\r\n\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(parse("GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(
            parse("GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HeadError::Bad(_))
        ));
        assert!(matches!(
            parse("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HeadError::Bad(_))
        ));
        assert!(matches!(
            parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HeadError::NotImplemented(_))
        ));
        assert_eq!(parse("POST /x HTTP/1.1\r\nHost: h\r\nExpect: tea\r\n\r\n").unwrap_err(), HeadError::Expectation);
        let big = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(parse(&format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n")).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn reads_the_fields_we_use() {
        let h = parse("POST /api/v1/admin/setup/?token=a%21b HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nExpect: 100-Continue\r\nConnection: close\r\nAuthorization: Bearer x\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path(), "/api/v1/admin/setup/");
        assert_eq!(query_param(h.query(), "token").as_deref(), Some("a!b"));
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.expect_continue && !h.keep_alive);
        assert_eq!(h.authorization(), Some("Bearer x"));
        let h10 = parse("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h10.keep_alive && !h10.expect_continue);
    }

    #[test]
    fn rfc9112_host_absolute_form_te_in_http10_and_whitespace() {
        // §3.2: one Host in HTTP/1.1; none needed in HTTP/1.0.
        assert_eq!(parse("GET / HTTP/1.1\r\n\r\n").unwrap_err(), HeadError::Bad("missing Host header"));
        assert_eq!(
            parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap_err(),
            HeadError::Bad("more than one Host header")
        );
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok());
        // §3.2.2: the absolute form is the origin form after its authority.
        let h = parse("GET https://box:8443/api/v1/admin/version?token=t HTTP/1.1\r\nHost: box\r\n\r\n").unwrap();
        assert_eq!((h.path(), h.query()), ("/api/v1/admin/version", "token=t"));
        let h = parse("GET HTTP://box?x=1 HTTP/1.1\r\nHost: box\r\n\r\n").unwrap();
        assert_eq!((h.path(), h.query()), ("/", "x=1"));
        for bad in ["GET ftp://box/x HTTP/1.1", "GET https:///x HTTP/1.1", "GET box/x HTTP/1.1", "GET * HTTP/1.1"] {
            assert!(matches!(parse(&format!("{bad}\r\nHost: box\r\n\r\n")), Err(HeadError::Bad(_))), "{bad}");
        }
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        assert!(matches!(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), Err(HeadError::Bad(_))));
        // §5.1: only SP and HTAB are trimmed.
        assert_eq!(
            parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \u{a0}13\r\n\r\n").unwrap_err(),
            HeadError::Bad("invalid Content-Length")
        );
        assert!(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\u{a0}\r\n\r\n").is_err());
        let h = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t 3 \t\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(3));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a+b%2B"), Some("a+b+".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(query_param("x=1&token=t&token=u", "token"), Some("t".into()));
        assert_eq!(query_param("tokenx=1", "token"), None);
    }

    #[test]
    fn responses_use_crlf_only() {
        let mut out = Vec::new();
        Response::json(200, "{}").header("X-Evil", "a\r\nb\0c\x7fd\te").write_to(&mut out, false, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("X-Evil: abcd\te\r\n"));
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
