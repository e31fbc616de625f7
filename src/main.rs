//! steward: one small daemon to administer an appliance over HTTPS.

#![forbid(unsafe_code)]

mod cli;

use steward::{api, board, boardcheck, daemon, engine, store, system, time};

use std::io::Write;
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
    let digest = steward::hex::to_hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
    let mut raw = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut raw).map_err(|_| "no randomness")?;
    let nonce = steward::hex::to_hex(&raw);
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
    use engine::package::generate_keys;
    use steward::hex::to_hex;
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
    use engine::package::{Manifest, pack};
    use steward::hex::parse_hex;
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
    let key = steward::hex::parse_hex(key.trim(), key.trim().len() / 2)?;
    let json = std::fs::read_to_string(&args.license).map_err(|e| format!("{}: {e}", args.license))?;
    let file = engine::license::sign(&json, &key)?;
    std::fs::write(&args.out, file).map_err(|e| format!("{}: {e}", args.out))?;
    println!("wrote {}", args.out);
    Ok(())
}

fn open_debug(args: cli::OpenDebug) -> Result<(), String> {
    let key = std::fs::read_to_string(&args.key).map_err(|e| format!("{}: {e}", args.key))?;
    let secret: [u8; 32] = steward::hex::parse_hex(&key, 32)?.try_into().expect("32 bytes");
    engine::debug::open(std::path::Path::new(&args.bundle), secret, std::path::Path::new(&args.out))?;
    println!("opened into {}", args.out);
    Ok(())
}

fn serve(args: cli::Serve) -> Result<(), String> {
    let mut daemon = daemon::assemble(&daemon::Options {
        board: &args.board,
        root: &args.root,
        data: &args.data,
        listen: &args.listen,
        plain_http: args.plain_http,
    })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", daemon.url()).and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    }
    daemon.run()
}
