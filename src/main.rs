//! steward: one small daemon to administer an appliance over HTTPS.

mod cli;

use steward::{api, board, boardcheck, engine, log, server, store, system, time};

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
        Command::Keygen(args) => keygen(args),
        Command::PackUpdate(args) => pack_update(args),
        Command::SignLicense(args) => sign_license(args),
        Command::OpenDebug(args) => open_debug(args),
        Command::Routes(_) => {
            let mut out = std::io::stdout().lock();
            for r in api::routes::ROUTES {
                // A closed pipe (`| head`) just ends the listing.
                let need = if r.access == api::routes::Access::Public { "public" } else { r.cap.name() };
                if writeln!(out, "{} {}{} {} {}", r.method.as_str(), r.surface.prefix(), r.pattern, need, r.doc)
                    .is_err()
                {
                    break;
                }
            }
            Ok(())
        }
        Command::Sign(args) => sign(args),
        Command::Check(args) => check(args),
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

fn check(args: cli::Check) -> Result<(), String> {
    let board = board::Board::load(&args.board)?;
    let problems = boardcheck::check(&board, &system::Root::new(&args.root));
    for p in &problems {
        eprintln!("{p}");
    }
    match problems.len() {
        0 => {
            println!("board {}: no problems found under {}", board.name, args.root);
            Ok(())
        }
        n => Err(format!("board {}: {n} problem(s)", board.name)),
    }
}

fn sign(args: cli::Sign) -> Result<(), String> {
    use ring::rand::SecureRandom;
    let body = match &args.body_file {
        Some(f) => std::fs::read(f).map_err(|e| format!("{f}: {e}"))?,
        None => Vec::new(),
    };
    let digest = engine::package::to_hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
    let mut raw = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut raw).map_err(|_| "no randomness")?;
    let nonce = engine::package::to_hex(&raw);
    let ts = time::unix_millis() / 1000;
    let message =
        format!("{}\n{}\n{}\n{digest}\n{ts}\n{nonce}", args.method.to_ascii_uppercase(), args.path, args.query);
    let key = engine::token::sha256_hex(args.secret.as_bytes());
    let tag = engine::token::hmac_parts_hex(&key, &[message.as_bytes()]);
    println!(
        "Authorization: Steward-HMAC key={}, ts={ts}, nonce={nonce}, sig={}",
        args.key,
        String::from_utf8_lossy(&tag)
    );
    println!("X-Content-SHA256: {digest}");
    Ok(())
}

fn keygen(args: cli::Keygen) -> Result<(), String> {
    use engine::package::{generate_keys, to_hex};
    let dir = PathBuf::from(&args.out);
    store::atomic::ensure_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let keys = generate_keys()?;
    let (debug_secret, debug_public) = engine::debug::generate_vendor_key().map_err(|e| e.to_string())?;
    for (name, data, mode) in [
        ("signing.key", to_hex(&keys.signing_pkcs8), 0o600),
        ("signing.pub", to_hex(&keys.signing_public), 0o644),
        ("update.key", to_hex(&keys.encryption), 0o600),
        ("debug.key", to_hex(&debug_secret), 0o600),
        ("debug.pub", to_hex(&debug_public), 0o644),
    ] {
        let path = dir.join(name);
        if path.exists() {
            return Err(format!("{} exists; keygen never overwrites keys", path.display()));
        }
        store::atomic::write(&path, format!("{data}\n").as_bytes(), mode)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("signing_public_key {}", to_hex(&keys.signing_public));
    println!(
        "wrote {}/signing.key, signing.pub, update.key, debug.key, debug.pub; boards need signing.pub, update.key and debug.pub",
        dir.display()
    );
    Ok(())
}

fn pack_update(args: cli::PackUpdate) -> Result<(), String> {
    use engine::package::{Manifest, pack, parse_hex};
    let read_hex = |path: &str, len: Option<usize>| -> Result<Vec<u8>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let t = text.trim();
        parse_hex(t, len.unwrap_or(t.len() / 2)).map_err(|e| format!("{path}: {e}"))
    };
    let signing = read_hex(&args.signing_key, None)?;
    let encryption: [u8; 32] = read_hex(&args.encryption_key, Some(32))?.try_into().expect("32 bytes");
    if !matches!(args.kind.as_str(), "image" | "bundle") {
        return Err("--kind must be image or bundle".into());
    }
    let changelog = match &args.changelog {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => String::new(),
    };
    let manifest = Manifest {
        format: 1,
        version: args.version.clone(),
        builddate: args
            .builddate
            .clone()
            .unwrap_or_else(|| time::unix_seconds(std::time::SystemTime::now()).to_string()),
        changelog,
        kind: args.kind.clone(),
        payload_sha256: String::new(),
        payload_size: 0,
        allow_downgrade: args.allow_downgrade,
    };
    let out = std::fs::File::create(&args.out).map_err(|e| format!("{}: {e}", args.out))?;
    pack(&signing, &encryption, manifest, std::path::Path::new(&args.payload), std::io::BufWriter::new(out))?;
    println!("wrote {}", args.out);
    Ok(())
}

fn sign_license(args: cli::SignLicense) -> Result<(), String> {
    let key = std::fs::read_to_string(&args.signing_key).map_err(|e| format!("{}: {e}", args.signing_key))?;
    let key = engine::package::parse_hex(key.trim(), key.trim().len() / 2)?;
    let json = std::fs::read_to_string(&args.license).map_err(|e| format!("{}: {e}", args.license))?;
    let file = engine::license::sign(&json, &key)?;
    std::fs::write(&args.out, file).map_err(|e| format!("{}: {e}", args.out))?;
    println!("wrote {}", args.out);
    Ok(())
}

fn open_debug(args: cli::OpenDebug) -> Result<(), String> {
    let key = std::fs::read_to_string(&args.key).map_err(|e| format!("{}: {e}", args.key))?;
    let secret: [u8; 32] = engine::package::parse_hex(&key, 32)?.try_into().expect("32 bytes");
    engine::debug::open(std::path::Path::new(&args.bundle), secret, std::path::Path::new(&args.out))?;
    println!("opened into {}", args.out);
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
    let tls = match args.plain_http {
        true => None,
        false => Some(std::sync::Arc::new(std::sync::Mutex::new(server::tls::load_or_create(&data)?))),
    };
    raise_fd_limit();
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut server = server::Server::new(listener, tls.clone()).map_err(|e| format!("server setup: {e}"))?;
    let mut engine = engine;
    engine.tls = tls.clone();
    engine.apply_token_seed();
    if let Some(run_as) = engine.board.run_as.clone() {
        let how = system::privilege::drop_to(&run_as.user, run_as.group.as_deref(), &run_as.capabilities, &data)?;
        log::info(format_args!("{how}"));
    }
    let mut api = api::Api::new(engine);
    api.waker = Some(server.waker());
    let waker = server.waker();
    api.engine.plans.set_wake(std::sync::Arc::new(move || waker.wake()));
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
