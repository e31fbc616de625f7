//! Every numeric cap the daemon enforces, each with the reason for its value.

use std::time::Duration;

/// Request line plus headers. Jidoteki clients send short heads (a path, a query with a
/// 64-hex hash, a few headers); 16 KiB leaves room for long bearer keys and proxies'
/// additions while keeping one head per connection cheap. Larger → 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Header count accepted by the parser; more → 431.
pub const MAX_HEADERS: usize = 48;

/// Connections served at once. Above this, a connection gets the canned 503 (up to
/// `OVERFLOW_CONNECTIONS` more of them at a time) and is closed. Sized so that 500 idle
/// keep-alive clients do not lock an administrator out.
pub const MAX_CONNECTIONS: usize = 768;
/// Background threads at once, whatever runs (`crate::workers`): long jobs and the producers
/// of streamed downloads share them, so with the request thread steward has at most three.
/// Two lets one download go on beside a backup; a stream that finds none free is told 503.
pub const WORKERS: usize = 2;

/// Long jobs waiting for a worker. Each kind runs one at a time (an update, a certificate
/// swap, a backup, a plan operation, a restore), so the queue stays short; past this a job
/// is refused rather than held in memory.
pub const MAX_QUEUED_JOBS: usize = 16;

/// Connections one client address (an IPv6 /64) may hold; more are told 503 and closed.
/// Two thirds of the table: one host's flood of idle connections leaves room for the owner.
pub const MAX_CONNECTIONS_PER_ADDRESS: u32 = 512;

/// Connections accepted only to be told 503; past this the socket is closed at once.
pub const OVERFLOW_CONNECTIONS: usize = 32;

/// Body cap for small form posts (`/setup`, actions): a token is at most 255 bytes.
pub const SMALL_FORM_BODY: u64 = 64 * 1024;

/// Largest update package accepted; it is spooled to the data dir as it arrives.
pub const MAX_UPDATE_BODY: u64 = 4 * 1024 * 1024 * 1024;

/// Bytes of an update upload queued for its worker before the client's socket is left
/// unread: the whole of the memory an upload in flight holds (issue 21's bar is 2 MiB).
pub const UPLOAD_QUEUE: usize = 512 * 1024;

/// The first byte of a request must arrive this soon after the connection opens (or after
/// the previous response on a keep-alive connection went out).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A started request head must be complete this soon: slowloris clients are cut off.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A body must make progress at least this often.
pub const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A client that stops reading its response is dropped after this long without progress.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a request may wait for its worker (a synchronous restore) before the
/// connection is dropped.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(3600);

/// The TLS handshake must finish this soon.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After an answer that ends the connection (a 413 to an upload still on its way, say), what
/// the client goes on sending is read and dropped for at most this long: closing with unread
/// bytes sends a reset, and a reset can destroy the answer before the client reads it.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause before a failed unauthenticated `/setup` is answered. The pauses queue up across
/// all connections, so parallel guessing is no faster than serial guessing.
pub const SETUP_FAILURE_PAUSE: Duration = Duration::from_secs(2);
/// Paused `/setup` refusals waiting at once, each holding its connection; more are answered
/// at once and closed (their address's failure budget throttles them further).
pub const SETUP_PAUSE_QUEUE: u32 = 8;

/// Plaintext a TLS connection may hold before we stop feeding it (backpressure).
pub const TLS_BUFFER: usize = 64 * 1024;

/// Bytes read from the socket per read call.
pub const READ_CHUNK: usize = 16 * 1024;

/// Headers of one multipart part (Content-Disposition, Content-Type).
pub const MAX_PART_HEAD: usize = 8 * 1024;
/// Parts in one multipart form: the largest documented form (`/certs`) has four fields,
/// plus credentials. More is not a form anyone sends.
pub const MAX_FORM_PARTS: usize = 32;
/// File parts (each spooled to its own file in uploads/) in one form: one is all any route
/// takes.
pub const MAX_FILE_PARTS: usize = 2;
/// What a part costs the form's memory budget besides its name and data (its record).
pub const PART_OVERHEAD: usize = 64;

/// Longest chunk-size line (hex digits plus extensions) in a chunked body.
pub const MAX_CHUNK_LINE: usize = 256;

/// Largest file read whole into a response (version, changelog, build info).
pub const MAX_INFO_FILE: u64 = 1024 * 1024;

/// Health figures are re-read at most this often. The kernel's load averages move every
/// 5 s; a poller hammering `/health` should not turn into a stream of procfs reads.
pub const HEALTH_MAX_AGE: Duration = Duration::from_secs(1);

/// How long a profile's service status command may run.
pub const SERVICE_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest GNU long-name / long-link or PAX extension entry read from an archive (the tar
/// crate reads these whole): a path is at most 4 KiB on Linux, and PAX records for one
/// entry are a few hundred bytes. Larger is refused before anything is read.
pub const MAX_TAR_EXTENSION: u64 = 64 * 1024;

/// Largest backup index (`steward-index.json`, one line per entry) read whole: 20,000
/// entries of a few hundred bytes each.
pub const MAX_BACKUP_INDEX: u64 = 8 * 1024 * 1024;

/// Bytes one connection may move (read or written) in one turn of the loop before the
/// other ready connections get theirs. Measured (`bench/run 5 hostile`, docs/BENCHMARKS.md):
/// at 1 MiB, /health's p99 stays at 6-10 ms during a 1 GiB TLS upload and download and the
/// upload keeps its speed; at 256 KiB the p99 was 3-4 ms but the upload lost 16-32 %.
pub const TURN_BUDGET: u64 = 1024 * 1024;

/// Failed authentications one client address (an IPv6 /64) may make in a burst, and then
/// one per this interval: about ten guesses a second, against 60-120 thousand before. Past
/// that its credentialed requests are answered 429 without being checked, so a right
/// guess cannot be told from a wrong one.
pub const AUTH_FAILURE_BURST: u32 = 30;
pub const AUTH_FAILURE_INTERVAL: Duration = Duration::from_millis(100);
/// The same across all addresses, for a guesser with many: past it, only addresses that
/// authenticated recently (`AUTH_TRUSTED_FOR`) are still checked.
pub const AUTH_GLOBAL_BURST: u32 = 300;
pub const AUTH_GLOBAL_INTERVAL: Duration = Duration::from_millis(10);
pub const AUTH_TRUSTED_FOR: Duration = Duration::from_secs(600);
/// Addresses whose failures are remembered at once; past this the oldest idle one goes.
pub const AUTH_TRACKED_ADDRESSES: usize = 4096;
/// Refusals of one address are audited as one line per this long ("N refused").
pub const AUDIT_COALESCE: Duration = Duration::from_secs(10);

/// Backrest `GetOperationEvents` streams open at once: each holds a connection and is looked
/// after on every turn of the loop; a dashboard needs one.
pub const MAX_EVENT_STREAMS: usize = 8;

/// An event stream with nothing to say sends a keep-alive this often, well inside the
/// write-stall timeout (and a proxy's idle timeout).
pub const EVENT_KEEPALIVE: Duration = Duration::from_secs(15);

/// `GetLogs` sends an operation's log up to this much (an operation's log is lines of its
/// steps; a hook's output is kept shorter than this).
pub const MAX_LOG_ANSWER: u64 = 1024 * 1024;
