//! The debug bundle: logs, system facts and the outputs of the board's debug commands,
//! encrypted so that only the vendor can read them.
//!
//! `debug-bundle.tar` holds `bundle.json` (format, the ephemeral X25519 public key, the
//! vendor key it was made for) and `debug.tar.gz.enc`: a gzipped tar sealed in 64 KiB
//! ChaCha20-Poly1305 chunks (the update package framing) under
//! HKDF-SHA256(X25519(ephemeral, vendor), salt = ephemeral ‖ vendor). The vendor opens it
//! with `steward open-debug --key debug.key`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use miniserde::{Deserialize, Serialize, json};
use ring::hkdf;
use x25519_dalek::{PublicKey, StaticSecret};

use super::Engine;
use super::package::{Decryptor, Encryptor};
use crate::hex::{parse_hex, to_hex};

const MAGIC: &[u8; 8] = b"STWDBG\x00\x01";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_COMMAND_OUTPUT: u64 = 4 * 1024 * 1024;
/// System files every bundle carries when they exist.
const FACTS: [&str; 8] = [
    "/proc/version",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/mounts",
    "/proc/uptime",
    "/etc/os-release",
    "/proc/cmdline",
];

#[derive(Serialize, Deserialize)]
struct BundleHeader {
    format: u32,
    ephemeral_public: String,
    vendor_public: String,
    created: i64,
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(shared: &[u8; 32], ephemeral: &[u8; 32], vendor: &[u8; 32]) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(vendor);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared);
    let mut key = [0u8; 32];
    prk.expand(&[b"steward debug bundle v1"], Len32)
        .and_then(|okm| okm.fill(&mut key))
        .expect("32 bytes fit HKDF-SHA256");
    key
}

/// X25519 key pair for the vendor: (secret, public).
pub fn generate_vendor_key() -> std::io::Result<([u8; 32], [u8; 32])> {
    let mut secret = [0u8; 32];
    super::passphrase::fill_random(&mut secret)?;
    let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
    Ok((secret, public))
}

impl Engine {
    /// Builds the bundle on a producer thread (the encrypted part is staged in the data
    /// dir, since a tar entry needs its size up front) and streams the outer tar.
    pub fn stream_debug<W: Write + Send + 'static>(
        &self,
        out: W,
        finish: impl FnOnce(W) -> std::io::Result<()> + Send + 'static,
    ) -> Result<(), String> {
        let vendor: [u8; 32] = parse_hex(&self.board.debug.public_key, 32)
            .map_err(|e| format!("board debug.public_key: {e}"))?
            .try_into()
            .expect("32");
        let sources = self.log_sources();
        let root = self.root.clone();
        let commands = self.board.debug.commands.clone();
        let stage = self.upload_dir().join(format!("debug-{}.enc", std::process::id()));
        // The producer's slot is held by `out` (a stream's writer).
        crate::workers::detached("debug", move || {
            let result = build(&vendor, &sources, &root, &commands, &stage, out).and_then(finish);
            let _ = std::fs::remove_file(&stage);
            if let Err(e) = result {
                crate::log::warn(format_args!("debug bundle stopped: {e}"));
            }
        })
        .map_err(|e| format!("cannot start the debug bundle: {e}"))
    }
}

fn build<W: Write>(
    vendor: &[u8; 32],
    sources: &super::logs::LogSources,
    root: &crate::system::Root,
    commands: &[Vec<String>],
    stage: &Path,
    out: W,
) -> std::io::Result<W> {
    let mut secret = [0u8; 32];
    super::passphrase::fill_random(&mut secret)?;
    let ephemeral = StaticSecret::from(secret);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*vendor));
    if !shared.was_contributory() {
        return Err(std::io::Error::other("the board's debug public key is not a usable X25519 key"));
    }
    let key = derive(shared.as_bytes(), &ephemeral_public, vendor);
    {
        let file = std::fs::File::create(stage)?;
        let enc = Encryptor::new(std::io::BufWriter::new(file), &key, MAGIC)?;
        let mut tar = tar::Builder::new(GzEncoder::new(enc, Compression::default()));
        sources.append_to(&mut tar)?;
        for fact in FACTS {
            if let Ok(data) = root.read_limited(fact, MAX_COMMAND_OUTPUT) {
                append_bytes(&mut tar, &format!("system{fact}"), &data)?;
            }
        }
        for (i, argv) in commands.iter().enumerate() {
            let output = run(argv);
            append_bytes(&mut tar, &format!("commands/{i:02}-{}.txt", sanitize(&argv[0])), output.as_bytes())?;
        }
        tar.into_inner()?.finish()?.finish()?.flush()?;
    }
    let header = BundleHeader {
        format: 1,
        ephemeral_public: to_hex(&ephemeral_public),
        vendor_public: to_hex(vendor),
        created: crate::time::unix_seconds(std::time::SystemTime::now()),
    };
    let mut outer = tar::Builder::new(out);
    append_bytes(&mut outer, "bundle.json", json::to_string(&header).as_bytes())?;
    outer.append_path_with_name(stage, "debug.tar.gz.enc")?;
    outer.into_inner()
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(crate::time::unix_seconds(std::time::SystemTime::now()).max(0) as u64);
    tar.append_data(&mut header, name, data)
}

fn sanitize(s: &str) -> String {
    s.rsplit('/')
        .next()
        .unwrap_or(s)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

/// A debug command's combined output and exit status, bounded in time and size.
fn run(argv: &[String]) -> String {
    run_within(argv, COMMAND_TIMEOUT)
}

fn run_within(argv: &[String], limit: Duration) -> String {
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return format!("$ {}\ncannot run: {e}\n", argv.join(" ")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    // Read here, between looks at the child, rather than on a thread of its own: a debug
    // bundle is already a producer thread, and the output is what bounds the wait.
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut pipe_open = true;
    let mut exit: Option<String> = None;
    let status = loop {
        if pipe_open {
            let mut fds = [rustix::event::PollFd::new(&stdout, rustix::event::PollFlags::IN)];
            let wait = rustix::time::Timespec { tv_sec: 0, tv_nsec: 20_000_000 };
            if rustix::event::poll(&mut fds, Some(&wait)).unwrap_or(0) > 0 {
                let mut chunk = [0u8; 8192];
                match stdout.read(&mut chunk) {
                    // Past the limit the rest is read and dropped, so the command can finish.
                    Ok(n) if n > 0 => out.extend_from_slice(&chunk[..n.min(MAX_COMMAND_OUTPUT as usize - out.len())]),
                    _ => pipe_open = false,
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        if exit.is_none() {
            exit = child.try_wait().ok().flatten().map(|s| s.to_string());
        }
        match &exit {
            Some(s) if !pipe_open => break s.clone(),
            // Something the command left behind may hold the pipe: the time limit ends that too.
            Some(s) if Instant::now() >= deadline => break s.clone(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break "killed after the time limit".to_owned();
            }
            _ => {}
        }
    };
    format!("$ {}\n{}\n[{status}]\n", argv.join(" "), String::from_utf8_lossy(&out))
}

/// Vendor side: decrypts a bundle into `out_dir`.
pub fn open(bundle: &Path, secret: [u8; 32], out_dir: &Path) -> Result<(), String> {
    let file = std::fs::File::open(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let mut archive = tar::Archive::new(super::targuard::TarGuard::new(file));
    let mut header: Option<BundleHeader> = None;
    let secret = StaticSecret::from(secret);
    let vendor = PublicKey::from(&secret).to_bytes();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry.path().map_err(|e| e.to_string())?.display().to_string();
        match name.as_str() {
            "bundle.json" => {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
                header = Some(json::from_str(&text).map_err(|_| "bundle.json is not a bundle header")?);
            }
            "debug.tar.gz.enc" => {
                let h = header.as_ref().ok_or("bundle.json must come first")?;
                let ephemeral: [u8; 32] = parse_hex(&h.ephemeral_public, 32)?.try_into().expect("32");
                if h.vendor_public != to_hex(&vendor) {
                    return Err(format!("this bundle was made for vendor key {}, not this one", h.vendor_public));
                }
                let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
                let key = derive(shared.as_bytes(), &ephemeral, &vendor);
                let dec = Decryptor::new(entry, &key, MAGIC).map_err(|e| e.to_string())?;
                let mut inner = tar::Archive::new(super::targuard::TarGuard::new(flate2::read::GzDecoder::new(dec)));
                std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
                // unpack refuses absolute paths and `..`.
                inner.unpack(out_dir).map_err(|e| format!("cannot decrypt or unpack the bundle: {e}"))?;
                return Ok(());
            }
            _ => {}
        }
    }
    Err("not a debug bundle (no debug.tar.gz.enc)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn a_command_gives_its_output_and_status() {
        let text = run(&argv(&["sh", "-c", "echo hello; echo not-kept >&2; exit 3"]));
        assert!(text.starts_with("$ sh -c"), "{text}");
        assert!(text.contains("\nhello\n"), "{text}");
        // stderr is not collected: only the command line names it.
        assert_eq!(text.matches("not-kept").count(), 1, "{text}");
        assert!(text.trim_end().ends_with("[exit status: 3]"), "{text}");
    }

    #[test]
    fn output_past_the_limit_is_dropped_and_the_command_still_finishes() {
        let text = run(&argv(&["sh", "-c", "head -c 6000000 /dev/zero | tr '\\0' x; echo; exit 0"]));
        // Between the command line and the status line.
        let output = text.split_once('\n').and_then(|(_, rest)| rest.rsplit_once("\n[")).map_or("", |(out, _)| out);
        let xs = output.bytes().filter(|b| *b == b'x').count();
        assert_eq!(xs as u64, MAX_COMMAND_OUTPUT);
        assert!(text.trim_end().ends_with("[exit status: 0]"), "{}", &text[text.len() - 40..]);
    }

    #[test]
    fn a_command_past_its_time_is_killed_and_one_whose_child_holds_the_pipe_is_left() {
        let t = Instant::now();
        let text = run_within(&argv(&["sh", "-c", "echo started; sleep 30"]), Duration::from_millis(300));
        assert!(text.contains("\nstarted\n") && text.contains("[killed after the time limit]"), "{text}");
        // The command exits at once, but what it started keeps stdout open.
        let text = run_within(&argv(&["sh", "-c", "sleep 30 & echo started"]), Duration::from_millis(300));
        assert!(text.contains("\nstarted\n") && text.contains("[exit status: 0]"), "{text}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_missing_command_says_so() {
        let text = run(&argv(&["/nonexistent/steward-debug-command"]));
        assert!(text.contains("cannot run"), "{text}");
    }
}
