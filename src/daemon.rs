//! The daemon put together: engine, certificate, listener, privilege drop and API, in the
//! order `steward serve` needs them. The in-process allocation test builds it the same way,
//! so what it counts is what the shipped daemon does.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::{api, board, engine, log, server, store, system};

pub struct Options<'a> {
    pub board: &'a str,
    pub root: &'a str,
    pub data: &'a str,
    pub listen: &'a str,
    pub plain_http: bool,
}

pub struct Daemon {
    pub server: server::Server,
    pub api: api::Api,
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Daemon {
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Serves until the process ends.
    pub fn run(&mut self) -> Result<(), String> {
        self.server.run(&mut self.api).map_err(|e| format!("server stopped: {e}"))
    }
}

pub fn assemble(options: &Options) -> Result<Daemon, String> {
    let board = board::Board::load(options.board)?;
    let data = PathBuf::from(options.data);
    let real_root = std::path::Path::new(options.root).canonicalize().ok();
    let root = if board.sandbox == Some(true) && real_root.as_deref() == Some(std::path::Path::new("/")) {
        let sandbox = data.join("dev-root");
        seed_sandbox(&sandbox, &board).map_err(|e| format!("dev root {}: {e}", sandbox.display()))?;
        system::Root::sandboxed("/", sandbox)
    } else {
        system::Root::new(options.root)
    };
    if !root.dir().is_dir() {
        return Err(format!("--root {} is not a directory", options.root));
    }
    let (mut engine, passphrase) = engine::Engine::open(board, root, data.clone())?;
    if let Some(passphrase) = passphrase {
        // The console is where an operator looks on first boot; the file is for later.
        log::info(format_args!(
            "first-run passphrase: {passphrase} (also in {}); set your own token with POST /api/v1/admin/setup",
            data.join("first-run-passphrase").display()
        ));
    }
    let tls = match options.plain_http {
        true => None,
        false => Some(Arc::new(Mutex::new(store::certfiles::load_or_create(&data)?))),
    };
    raise_fd_limit();
    let listener =
        TcpListener::bind(options.listen).map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = server::Server::new(listener, tls.clone()).map_err(|e| format!("server setup: {e}"))?;
    engine.tls = tls.clone();
    engine.apply_token_seed();
    if let Some(run_as) = engine.board.run_as.clone() {
        let how = system::privilege::drop_to(
            &run_as.user,
            run_as.group.as_deref(),
            run_as.groups.as_deref().unwrap_or_default(),
            &run_as.capabilities,
            &data,
        )?;
        log::info(format_args!("{how}"));
    }
    let mut api = api::Api::new(engine);
    api.waker = Some(server.waker());
    let waker = server.waker();
    api.engine.plans.set_wake(Arc::new(move || waker.wake()));
    log::info(format_args!("board {}, data {}, root {}", api.engine.board.name, data.display(), options.root));
    Ok(Daemon { server, api, addr, tls: tls.is_some() })
}

/// Idle keep-alive clients each hold a descriptor; the default soft limit (often 1024) is
/// too close to the connection cap.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(max) = limit.maximum {
        let wanted = max.min(8192);
        if limit.current.is_some_and(|c| c < wanted) {
            limit.current = Some(wanted);
            let _ = setrlimit(Resource::Nofile, limit);
        }
    }
}

/// The files a sandboxed dev board serves before anything changed them: its version,
/// changelog and build, and its application's directories. Existing files are kept.
fn seed_sandbox(sandbox: &std::path::Path, board: &board::Board) -> std::io::Result<()> {
    crate::store::atomic::ensure_private_dir(sandbox.parent().unwrap_or(sandbox))?;
    let version = env!("CARGO_PKG_VERSION");
    let seeds = [
        (&board.info.version, format!("{version}\n")),
        (&board.info.changelog, format!("steward {version} on the dev board (a sandbox below --data)\n")),
        (&board.info.build, "{\"builddate\":\"dev\"}".to_owned()),
    ];
    for (path, text) in seeds {
        let file = sandbox.join(path.trim_start_matches('/'));
        if !file.exists() {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&file, text)?;
        }
    }
    let dirs = board
        .applications
        .iter()
        .flat_map(|a| a.paths.iter().chain(&a.cache))
        .chain(&board.backup.paths)
        .chain(&board.logs);
    for dir in dirs {
        std::fs::create_dir_all(sandbox.join(dir.trim_start_matches('/')))?;
    }
    Ok(())
}
