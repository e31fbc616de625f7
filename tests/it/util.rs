//! Test harness: start the real daemon on 127.0.0.1:0 with a temp data dir and the fixture
//! root, and talk HTTP/1.1 over TLS to it, trusting only the certificate it generated.
//!
//! `STEWARD_BIN` names another binary to test (e.g. a cross-built one) and `STEWARD_RUNNER`
//! a prefix to run it with (e.g. `qemu-aarch64-static`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

pub const ADMIN: &str = "/api/v1/admin";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/root")
}

/// The dev board profile with each `(from, to)` replaced once (each must apply), written to a
/// temp file; its path.
pub fn dev_board_with(name: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/board/dev.json")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "board/dev.json has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = temp_dir("board").join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A private copy of the fixture root, for tests that make the daemon write below `--root`.
pub fn fixture_root_copy() -> PathBuf {
    root_copy_of(&fixture_root())
}

/// A private copy of any fixture tree (symlinks and modes kept).
pub fn root_copy_of(from: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                copy(&entry.path(), &target);
            } else if kind.is_symlink() {
                // Links like /dev/disk/by-id/* stay links (their targets may not exist).
                std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), target).unwrap();
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = temp_dir("root");
    copy(from, &dir);
    dir
}

/// Stops a daemon started on a private root copy and removes that copy.
pub fn cleanup(d: Daemon) {
    let root = d.options.root.clone();
    drop(d);
    if root != fixture_root() {
        let _ = std::fs::remove_dir_all(root);
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("steward-it-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Options {
    pub board: Option<String>,
    pub root: PathBuf,
    pub plain: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { board: None, root: fixture_root(), plain: false }
    }
}

pub struct Daemon {
    child: Option<Child>,
    pub data: PathBuf,
    pub port: u16,
    pub options: Options,
    pub stderr_path: PathBuf,
}

/// The steward binary under test (run directly, or by `STEWARD_RUNNER`).
pub fn binary() -> String {
    std::env::var("STEWARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_steward").to_owned())
}

/// Whether an emulator (qemu-user) runs the binary: it adds threads and mappings of its own.
pub fn emulated() -> bool {
    std::env::var("STEWARD_RUNNER").is_ok_and(|r| !r.is_empty())
}

pub fn threads(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
}

fn command() -> Command {
    let bin = binary();
    match std::env::var("STEWARD_RUNNER").ok().filter(|r| !r.is_empty()) {
        Some(runner) => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Runs `steward ARGS` to completion (for the non-serving subcommands).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = command().args(args).output().expect("run steward");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::with(Options::default())
    }

    pub fn with(options: Options) -> Daemon {
        Daemon::with_data(options, temp_dir("data"))
    }

    /// With the data dir at `data` (a small filesystem, say).
    pub fn with_data(options: Options, data: PathBuf) -> Daemon {
        let mut d = Daemon { child: None, stderr_path: data.with_extension("stderr"), data, port: 0, options };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let mut cmd = command();
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&self.data)
            .arg("--root")
            .arg(&self.options.root);
        if let Some(board) = &self.options.board {
            cmd.arg("--board").arg(board);
        }
        if self.options.plain {
            cmd.arg("--plain-http");
        }
        let stderr = std::fs::File::create(&self.stderr_path).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).stdin(Stdio::null()).spawn().expect("spawn steward");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // qemu-user start-up and first-start key generation can take a while.
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let expected =
            if self.options.plain { "listening on http://127.0.0.1:" } else { "listening on https://127.0.0.1:" };
        let Some(port) = line.trim_end().strip_prefix(expected).and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            panic!(
                "unexpected first line {line:?}; stderr: {}",
                std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
            );
        };
        self.port = port;
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn connect(&self) -> Client {
        self.open(None)
    }

    /// A TLS connection that presents a client certificate (DER) with its key (PKCS#8 DER).
    pub fn connect_with_cert(&self, cert: Vec<u8>, key: Vec<u8>) -> Client {
        self.open(Some((cert, key)))
    }

    fn open(&self, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Client {
        connect_to(self.port, &self.data, self.options.plain, client_cert)
    }

    /// One request on a fresh connection.
    pub fn req(&self, method: &str, path: &str) -> Resp {
        self.connect().send(method, path, &[], b"")
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path)
    }

    /// POST a multipart form on a fresh connection.
    pub fn post_form(&self, path: &str, fields: &[(&str, &[u8])]) -> Resp {
        let (ct, body) = multipart(fields);
        self.connect().send("POST", path, &[("Content-Type", &ct)], &body)
    }

    /// POST one file part (as `curl -F field=@file` sends it) on a fresh connection.
    pub fn post_file(&self, path: &str, field: &str, filename: &str, data: &[u8]) -> Resp {
        self.post_file_with(path, &[], field, filename, data)
    }

    /// The same with extra headers (an `Authorization`, say).
    pub fn post_file_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        field: &str,
        filename: &str,
        data: &[u8],
    ) -> Resp {
        let (ct, body) = file_part(field, filename, data);
        let mut all = vec![("Content-Type", ct.as_str())];
        all.extend_from_slice(headers);
        self.connect().send("POST", path, &all, &body)
    }

    /// One request with an `Authorization` header, on a fresh connection.
    pub fn with_auth(&self, method: &str, path: &str, auth: &str, body: &[u8]) -> Resp {
        self.connect().send(method, path, &[("Authorization", auth)], body)
    }

    /// Initial setup with `token`, asserting it worked.
    pub fn setup(&self, token: &str) {
        let r = self.post_form(&format!("{ADMIN}/setup"), &[("newtoken", token.as_bytes())]);
        assert_eq!(r.status, 200, "setup failed: {}", r.text());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// A multipart body with one file part (as `curl -F field=@file` sends it): its
/// Content-Type and bytes.
pub fn file_part(field: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----stewardtestboundaryFILE9q";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A connection to a daemon on 127.0.0.1:`port` whose data dir is `data`: TLS trusting only
/// the certificate there (optionally presenting a client one), or plain HTTP.
pub fn connect_to(port: u16, data: &Path, plain: bool, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Client {
    wrap(TcpStream::connect(("127.0.0.1", port)).expect("connect"), data, plain, client_cert)
}

/// A TCP connection to 127.0.0.1:`port` from another loopback address (127.0.0.0/8 is all
/// this machine's): how a test plays a second client address.
pub fn tcp_from(source: std::net::Ipv4Addr, port: u16) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &std::net::SocketAddrV4::new(source, 0)).expect("bind a loopback source address");
    connect(&fd, &std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)).expect("connect");
    TcpStream::from(fd)
}

impl Daemon {
    /// A connection from the loopback address `source` (e.g. 127.0.0.2).
    pub fn connect_from(&self, source: std::net::Ipv4Addr) -> Client {
        wrap(tcp_from(source, self.port), &self.data, self.options.plain, None)
    }
}

fn wrap(tcp: TcpStream, data: &Path, plain: bool, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Client {
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.set_nodelay(true).unwrap();
    if plain {
        return Client { stream: Box::new(tcp), pending: Vec::new() };
    }
    let config = client_config(&data.join("tls/cert.pem"), client_cert);
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    Client { stream: Box::new(StreamOwned::new(conn, tcp)), pending: Vec::new() }
}

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Client {
    pub stream: Box<dyn Stream>,
    pending: Vec<u8>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> miniserde::json::Value {
        miniserde::json::from_str(&self.text()).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text()))
    }
}

impl Client {
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.write_raw(&bytes);
        self.read_response().expect("response")
    }

    /// Like `send`, for a server that may die mid-request: `None` instead of a panic.
    pub fn try_send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Resp> {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n", body.len());
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).ok()?;
        self.stream.flush().ok()?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.read_response())).ok().flatten()
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Reads one response; `None` if the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Resp> {
        self.read_response_to(false)
    }

    /// Reads the response to a HEAD request: its Content-Length describes a body not sent.
    pub fn read_head_response(&mut self) -> Option<Resp> {
        self.read_response_to(true)
    }

    fn read_response_to(&mut self, head_request: bool) -> Option<Resp> {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("UTF-8 head");
        assert!(!head.replace("\r\n", "").contains('\n'), "bare LF in response head: {head:?}");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "status line {status_line:?}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        self.pending.drain(..head_end + 4);
        if status == 100 {
            return self.read_response_to(head_request);
        }
        if head_request {
            return Some(Resp { status, headers, body: Vec::new() });
        }
        if headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked") {
            assert!(!headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")), "both framings");
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.pending, b"\r\n") {
                        break i;
                    }
                    if !self.fill() {
                        return None; // cut off mid-body: an incomplete transfer
                    }
                };
                let size = usize::from_str_radix(std::str::from_utf8(&self.pending[..line_end]).unwrap(), 16).unwrap();
                self.pending.drain(..line_end + 2);
                while self.pending.len() < size + 2 {
                    if !self.fill() {
                        return None;
                    }
                }
                body.extend_from_slice(&self.pending[..size]);
                assert_eq!(&self.pending[size..size + 2], b"\r\n");
                self.pending.drain(..size + 2);
                if size == 0 {
                    return Some(Resp { status, headers, body });
                }
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("Content-Length");
        while self.pending.len() < len {
            assert!(self.fill(), "connection closed inside a body");
        }
        let body = self.pending.drain(..len).collect();
        Some(Resp { status, headers, body })
    }

    /// Reads one interim or final status line only (for Expect: 100-continue tests).
    pub fn read_status_line(&mut self) -> Option<u16> {
        let end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let status = String::from_utf8_lossy(&self.pending[9..12]).parse().ok();
        if status == Some(100) {
            self.pending.drain(..end + 4);
        }
        status
    }

    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// True if the server has closed the connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        !self.fill()
    }

    /// Reads whatever is buffered until the peer closes: `Some(bytes)` if it closed within
    /// `limit` bytes, `None` if it kept sending (it had not dropped the connection).
    pub fn drain_until_closed(&mut self, limit: usize) -> Option<usize> {
        let mut total = self.pending.len();
        self.pending.clear();
        while total <= limit {
            if !self.fill() {
                return Some(total);
            }
            total += self.pending.len();
            self.pending.clear();
        }
        None
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

pub fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----stewardtestboundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The Jidoteki HMAC computed independently of the daemon (hex key string, METHOD + path).
pub fn hmac(token: &str, method: &str, path: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let key: String = Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{method}{path}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug)]
struct Pinned {
    der: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

/// Trusts only the server certificate in the data dir; optionally presents a client one.
fn client_config(cert_path: &Path, client_cert: Option<(Vec<u8>, Vec<u8>)>) -> Arc<ClientConfig> {
    let der = CertificateDer::from_pem_file(cert_path).expect("server certificate").as_ref().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { der, provider }));
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .unwrap(),
    };
    Arc::new(config)
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server certificate is not the one in the data dir".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads a JSON object field as a string (panics with context otherwise).
/// The string at `path` in a JSON value (panics, naming the path, if it is not one).
pub fn string_at(v: &miniserde::json::Value, path: &[&str]) -> String {
    match field(v, path) {
        miniserde::json::Value::String(s) => s.clone(),
        other => panic!("{path:?} is {other:?}"),
    }
}

/// A daemon on a private copy of the fixture root, set up with the token `owner`.
pub fn owned_daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

pub fn field<'a>(v: &'a miniserde::json::Value, path: &[&str]) -> &'a miniserde::json::Value {
    let mut cur = v;
    for key in path {
        match cur {
            miniserde::json::Value::Object(map) => {
                cur = map.get(*key).unwrap_or_else(|| panic!("no key {key} in {path:?}"))
            }
            _ => panic!("not an object at {key}"),
        }
    }
    cur
}

/// The IncusOS error envelope, as sent.
pub fn incus_error(code: u16, message: &str) -> String {
    format!(
        r#"{{"type":"error","status":"","status_code":0,"operation":"","error_code":{code},"error":"{message}","metadata":null}}"#
    )
}

/// A process's resident anonymous memory (heap, stacks): what a test of memory use controls,
/// unlike VmRSS, which also counts file pages the page cache decides about.
pub fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
