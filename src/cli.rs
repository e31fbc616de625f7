//! Command-line interface; the doc comments here are the `--help` text.

use argh::FromArgs;

/// steward: administer an appliance over HTTPS (Jidoteki Admin API, IncusOS API, backup plans).
#[derive(FromArgs, Debug)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(Serve),
    Hash(Hash),
    Keygen(Keygen),
    PackUpdate(PackUpdate),
    SignLicense(SignLicense),
    OpenDebug(OpenDebug),
    Routes(Routes),
    Sign(Sign),
    Check(Check),
}

/// Check a board profile against the system it will run on: files, directories, hooks, keys.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct Check {
    /// board name (compiled in) or path to a profile file
    #[argh(option)]
    pub board: String,
    /// the system's root directory (default /)
    #[argh(option, default = "String::from(\"/\")")]
    pub root: String,
}

/// Print the route table: method, path, the capability an API key needs, and the doc line.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "routes")]
pub struct Routes {}

/// Print the headers of a replay-resistant signed request (Authorization: Steward-HMAC).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sign")]
pub struct Sign {
    /// the API key's name, or "token" for the admin token
    #[argh(option)]
    pub key: String,
    /// the key's secret (or the admin token)
    #[argh(option)]
    pub secret: String,
    /// HTTP method, e.g. GET or POST
    #[argh(option)]
    pub method: String,
    /// request path, e.g. /1.0/system/update
    #[argh(option)]
    pub path: String,
    /// query string without the '?', if any
    #[argh(option, default = "String::new()")]
    pub query: String,
    /// file holding the exact request body, if any
    #[argh(option)]
    pub body_file: Option<String>,
}

/// Vendor tool: decrypt a debug-bundle.tar downloaded from GET /debug.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "open-debug")]
pub struct OpenDebug {
    /// the vendor's debug.key (from keygen)
    #[argh(option)]
    pub key: String,
    /// directory to unpack the bundle's contents into
    #[argh(option)]
    pub out: String,
    /// the debug-bundle.tar file
    #[argh(positional)]
    pub bundle: String,
}

/// Vendor tool: sign a license (a JSON object) for POST /license.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sign-license")]
pub struct SignLicense {
    /// the vendor's signing.key (from keygen)
    #[argh(option)]
    pub signing_key: String,
    /// file holding the license as one JSON object, e.g. {"app":"enterprise","users":20}
    #[argh(option)]
    pub license: String,
    /// where to write the signed license file
    #[argh(option)]
    pub out: String,
}

/// Vendor tool: make an update signing key pair and an update transit key.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "keygen")]
pub struct Keygen {
    /// directory to write signing.key (secret), signing.pub and update.key (secret) into
    #[argh(option)]
    pub out: String,
}

/// Vendor tool: sign and encrypt an update package.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pack-update")]
pub struct PackUpdate {
    /// the vendor's signing.key (from keygen)
    #[argh(option)]
    pub signing_key: String,
    /// the update.key shared with the boards (from keygen)
    #[argh(option)]
    pub encryption_key: String,
    /// version the package installs, e.g. 1.2.4
    #[argh(option)]
    pub version: String,
    /// changelog file shipped with the version
    #[argh(option)]
    pub changelog: Option<String>,
    /// payload kind: image (default) or bundle
    #[argh(option, default = "String::from(\"image\")")]
    pub kind: String,
    /// build date recorded in the manifest (default: now, in Unix seconds)
    #[argh(option)]
    pub builddate: Option<String>,
    /// allow installing over a newer version
    #[argh(switch)]
    pub allow_downgrade: bool,
    /// the payload file (an image for the inactive slot)
    #[argh(option)]
    pub payload: String,
    /// where to write the package
    #[argh(option)]
    pub out: String,
}

/// Run the daemon.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address to listen on (default 127.0.0.1:8443; port 0 picks a free port)
    #[argh(option, default = "String::from(\"127.0.0.1:8443\")")]
    pub listen: String,
    /// directory for steward's own state: token, certificate, audit log (default ./var)
    #[argh(option, default = "String::from(\"./var\")")]
    pub data: String,
    /// root of the system to administer; /proc, /sys, /etc are read below it (default /)
    #[argh(option, default = "String::from(\"/\")")]
    pub root: String,
    /// board profile: a compiled-in name (dev) or a path to a profile JSON file (default dev)
    #[argh(option, default = "String::from(\"dev\")")]
    pub board: String,
    /// serve plain HTTP instead of HTTPS (for a TLS-terminating proxy in front)
    #[argh(switch)]
    pub plain_http: bool,
}

/// Print the Jidoteki HMAC for a request, to pass as ?hash=.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "hash")]
pub struct Hash {
    /// the API token
    #[argh(option)]
    pub token: String,
    /// HTTP method, e.g. GET or POST
    #[argh(option)]
    pub method: String,
    /// request path, e.g. /api/v1/admin/version (a trailing slash is part of the hash)
    #[argh(option)]
    pub path: String,
}
