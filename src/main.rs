//! steward: one small daemon to administer an appliance over HTTPS.

mod api;
mod board;
mod cli;
mod engine;
mod hex;
mod json;
mod limits;
mod log;
mod server;
mod store;
mod system;
mod time;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Hash(args) => hash(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("steward: {message}");
            ExitCode::FAILURE
        }
    }
}

fn hash(args: cli::Hash) -> Result<(), String> {
    let method = args.method.to_ascii_uppercase();
    if !args.path.starts_with('/') {
        return Err("--path must start with / (e.g. /api/v1/admin/version)".into());
    }
    let key = engine::token::sha256_hex(args.token.as_bytes());
    let mac = engine::token::hmac_hex(&key, &method, &args.path);
    println!("{}", String::from_utf8_lossy(&mac));
    Ok(())
}

fn serve(args: cli::Serve) -> Result<(), String> {
    let board = board::Board::load(&args.board)?;
    let root = system::Root::new(&args.root);
    if !root.dir().is_dir() {
        return Err(format!("--root {} is not a directory", args.root));
    }
    let data = PathBuf::from(&args.data);
    let (engine, passphrase) = engine::Engine::open(board, root, data.clone())?;
    if let Some(passphrase) = passphrase {
        // The console is where an operator looks on first boot; the file is for later.
        log::info(format_args!(
            "first-run passphrase: {passphrase} (also in {}); set your own token with POST /api/v1/admin/setup",
            data.join("first-run-passphrase").display()
        ));
    }
    let tls = if args.plain_http { None } else { Some(server::tls::load_or_create(&data)?) };
    raise_fd_limit();
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut server = server::Server::new(listener, tls.clone()).map_err(|e| format!("server setup: {e}"))?;
    let mut api = api::Api::new(engine);
    log::info(format_args!("board {}, data {}, root {}", api.engine.board.name, data.display(), args.root));
    {
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(out, "listening on {scheme}://{addr}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    }
    server.run(&mut api).map_err(|e| format!("server stopped: {e}"))
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
