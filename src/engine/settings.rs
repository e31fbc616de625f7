//! Network and storage settings: validated with the Jidoteki rules and wording, stored
//! atomically in the data dir, rendered for the system without ever passing through an
//! unvalidated key or an unquoted value.

use miniserde::json::{self, Value};

use super::{Engine, Error};
use crate::store::atomic;

/// One validation rule: allowed characters (described as the Jidoteki docs do) and length.
struct Rule {
    name: &'static str,
    allowed: fn(u8) -> bool,
    describe: &'static str,
    min: usize,
    max: usize,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn hostname(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}
fn ip(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b'.' || c == b':'
}
fn netmask(c: u8) -> bool {
    ip(c) || c == b'/'
}
fn ntp(c: u8) -> bool {
    hostname(c) || c == b':'
}
fn mount_options(c: u8) -> bool {
    hostname(c) || c == b'=' || c == b','
}
fn path(c: u8) -> bool {
    hostname(c) || c == b'_' || c == b'/'
}
fn iscsi_target(c: u8) -> bool {
    hostname(c) || c == b'_' || c == b':'
}
fn printable(c: u8) -> bool {
    (0x21..=0x7e).contains(&c)
}
fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}

const fn rule(name: &'static str, allowed: fn(u8) -> bool, describe: &'static str, min: usize, max: usize) -> Rule {
    Rule { name, allowed, describe, min, max }
}

const IP: &str = "abcdef0123456789ABCDEF.:";
const NETWORK_RULES: [(Rule, bool); 8] = [
    (rule("interface", alnum, "a-zA-Z0-9", 3, 14), true),
    (rule("hostname", hostname, "a-zA-Z0-9.-", 3, 255), true),
    (rule("ip_address", ip, IP, 3, 45), false),
    (rule("netmask", netmask, "abcdef0123456789ABCDEF.:/", 2, 45), false),
    (rule("gateway", ip, IP, 3, 45), false),
    (rule("dns1", ip, IP, 3, 45), false),
    (rule("dns2", ip, IP, 3, 45), false),
    (rule("ntpserver", ntp, "a-zA-Z0-9.-:", 3, 255), false),
];

fn storage_rules(kind: &str) -> Option<&'static [Rule]> {
    const NFS: [Rule; 3] = [
        rule("mount_options", mount_options, "a-zA-Z0-9.-=,", 3, 255),
        rule("ip", ip, IP, 3, 45),
        rule("share", path, "a-zA-Z0-9.-_/", 3, 255),
    ];
    const AOE: [Rule; 1] = [rule("device", hostname, "a-zA-Z0-9.-", 3, 255)];
    const ISCSI: [Rule; 4] = [
        rule("target", iscsi_target, "a-zA-Z0-9.-_:", 3, 255),
        rule("ip", ip, IP, 3, 45),
        rule("username", printable, "printable ASCII characters (codes 33-126, no spaces)", 3, 255),
        rule("password", printable, "printable ASCII characters (codes 33-126, no spaces)", 3, 255),
    ];
    const NBD: [Rule; 3] = [
        rule("export_name", path, "a-zA-Z0-9.-_/", 3, 255),
        rule("ip", ip, IP, 3, 45),
        rule("port", digit, "0-9", 1, 5),
    ];
    match kind {
        "local" => Some(&[]),
        "nfs" => Some(&NFS),
        "aoe" => Some(&AOE),
        "iscsi" => Some(&ISCSI),
        "nbd" => Some(&NBD),
        _ => None,
    }
}

fn invalid_chars(r: &Rule) -> Error {
    Error::Invalid(format!("Missing or invalid string for option: {}. Allowed: {}", r.name, r.describe))
}

fn invalid_length(r: &Rule) -> Error {
    Error::Invalid(format!("Invalid string length for option: {}. Allowed: >= {} and <= {}", r.name, r.min, r.max))
}

/// Checks one field; `None` (absent) is a length error, as in Jidoteki.
fn check(r: &Rule, value: Option<&Value>) -> Result<Option<String>, Error> {
    let s = match value {
        None | Some(Value::Null) => return Err(invalid_length(r)),
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid_chars(r)),
    };
    if !s.bytes().all(r.allowed) {
        return Err(invalid_chars(r));
    }
    if s.len() < r.min || s.len() > r.max {
        return Err(invalid_length(r));
    }
    Ok(Some(s.clone()))
}

pub type Object = json::Object;

fn parse_document(text: &[u8], section: &str) -> Result<(Object, Object), Error> {
    let text = std::str::from_utf8(text).map_err(|_| Error::Invalid("Settings file is not UTF-8".into()))?;
    let Ok(Value::Object(doc)) = json::from_str::<Value>(text) else {
        return Err(Error::Invalid("Settings file is not a JSON object".into()));
    };
    let Some(Value::Object(section_obj)) = doc.get(section) else {
        return Err(Error::Invalid(format!("Missing or invalid option: {section}")));
    };
    Ok((doc.clone(), section_obj.clone()))
}

fn reject_unknown(section: &Object, known: &[&str]) -> Result<(), Error> {
    match section.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Error::Invalid(format!("Unknown option: {k}"))),
        None => Ok(()),
    }
}

/// Validated network settings, in the documented field order.
pub struct Network {
    pub fields: Vec<(&'static str, String)>,
    pub app: Option<Value>,
    /// What IncusOS's network config has beyond the Jidoteki fields: the DNS domain and the
    /// interface's roles (`management`, …). Stored in the document's `system` section, which
    /// a Jidoteki POST leaves as it is.
    pub system: System,
}

#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct System {
    pub domain: String,
    pub roles: Vec<String>,
    /// The interface's MTU, when one was asked for (68 to 65535).
    pub mtu: Option<u32>,
}

impl System {
    fn from_document(doc: &Object) -> System {
        let Some(Value::Object(s)) = doc.get("system") else { return System::default() };
        let domain = match s.get("domain") {
            Some(Value::String(d)) => d.clone(),
            _ => String::new(),
        };
        let mtu = match s.get("mtu") {
            Some(Value::Number(json::Number::U64(n))) => u32::try_from(*n).ok(),
            _ => None,
        };
        System { domain, roles: crate::json::strings_in(s.get("roles")), mtu }
    }
}

impl Network {
    pub fn is_static(&self) -> bool {
        self.fields.iter().any(|(k, _)| *k == "ip_address")
    }

    /// A field's value, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A settings document (`{"network": {...}, "app": {...}}`, a Jidoteki POST or the stored
/// file) as network settings.
pub fn parse_network(text: &[u8]) -> Result<Network, Error> {
    let (doc, net) = parse_document(text, "network")?;
    let app = match doc.get("app") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(Error::Invalid("Missing or invalid option: app. Expected a JSON object".into())),
    };
    let mut network = network_from_section(&net, app)?;
    network.system = System::from_document(&doc);
    Ok(network)
}

/// The `network` section's fields checked as the Jidoteki document has them checked, whichever
/// surface they came from.
pub fn network_from_section(net: &Object, app: Option<Value>) -> Result<Network, Error> {
    let names: Vec<&str> = NETWORK_RULES.iter().map(|(r, _)| r.name).collect();
    // "mode" is what the reference's GET adds; a client may send it back.
    let mut known = names.clone();
    known.push("mode");
    reject_unknown(net, &known)?;
    // An explicit "dhcp" wins over leftover addresses (the dashboard sends the static
    // fields whatever the mode); "static" still needs all three.
    let (dhcp, wants_static) = match net.get("mode") {
        None | Some(Value::Null) => (false, false),
        Some(Value::String(m)) if m == "dhcp" => (true, false),
        Some(Value::String(m)) if m == "static" => (false, true),
        Some(_) => return Err(Error::Invalid("Invalid option: mode. Allowed: dhcp, static".into())),
    };
    let mut fields = Vec::new();
    for (r, required) in &NETWORK_RULES {
        let value = net.get(r.name);
        // The reference's decoder turns "" into nothing: an optional field sent empty (as
        // the dashboard sends a blank NTP server) is absent, not too short.
        let empty = matches!(value, Some(Value::String(s)) if s.is_empty());
        if !required && (matches!(value, None | Some(Value::Null)) || empty) {
            continue;
        }
        if dhcp && STATIC_FIELDS.contains(&r.name) {
            continue;
        }
        if let Some(v) = check(r, value)? {
            fields.push((r.name, v));
        }
    }
    let has = |n: &str| fields.iter().any(|(k, _)| *k == n);
    let statics = STATIC_FIELDS.iter().filter(|n| has(n)).count();
    if statics != 0 && statics != 3 || (statics == 0 && wants_static) {
        return Err(Error::Invalid(
            "Static network settings need ip_address, netmask and gateway together (omit all three for DHCP)".into(),
        ));
    }
    Ok(Network { fields, app, system: System::default() })
}

/// The fields that make network settings static; without them they are DHCP.
const STATIC_FIELDS: [&str; 3] = ["ip_address", "netmask", "gateway"];

/// A board's shipped settings must pass the checks a client's do, or steward does not start.
pub fn check_board_defaults(board: &crate::board::Board) -> Result<(), String> {
    if let Some(default) = &board.network.default {
        let Value::Object(net) = default else { return Err("board network.default: not a JSON object".into()) };
        network_from_section(net, None).map_err(|e| format!("board network.default: {}", e.message()))?;
    }
    if let Some(default) = &board.storage.default {
        let doc = crate::json::Object::new().raw("storage", &json::to_string(default)).finish();
        parse_storage(doc.as_bytes(), &board.storage.options)
            .map_err(|e| format!("board storage.default: {}", e.message()))?;
    }
    Ok(())
}

pub struct Storage {
    pub kind: String,
    pub fields: Vec<(&'static str, String)>,
}

pub fn parse_storage(text: &[u8], offered: &[String]) -> Result<Storage, Error> {
    let (_, st) = parse_document(text, "storage")?;
    let kind = match st.get("type") {
        Some(Value::String(k)) if storage_rules(k).is_some() => k.clone(),
        _ => {
            return Err(Error::Invalid(format!(
                "Missing or invalid option: type. Allowed: {}",
                crate::board::STORAGE_TYPES.join(", ")
            )));
        }
    };
    if !offered.iter().any(|o| *o == kind) {
        return Err(Error::Invalid(format!(
            "Storage type {kind} is not offered on this system. Allowed: {}",
            offered.join(", ")
        )));
    }
    let rules = storage_rules(&kind).unwrap_or(&[]);
    let mut known: Vec<&str> = rules.iter().map(|r| r.name).collect();
    known.push("type");
    reject_unknown(&st, &known)?;
    let mut fields = Vec::new();
    for r in rules {
        if let Some(v) = check(r, st.get(r.name))? {
            fields.push((r.name, v));
        }
    }
    if kind == "nbd" {
        let port = &fields.iter().find(|(k, _)| *k == "port").map(|(_, v)| v.clone()).unwrap_or_default();
        if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
            return Err(Error::Invalid("Invalid port for option: port. Allowed: 1 to 65535".into()));
        }
    }
    Ok(Storage { kind, fields })
}

/// The fields with `mode` first, as the reference stores and returns them.
fn with_mode(n: &Network) -> Vec<(&'static str, String)> {
    let mode = if n.is_static() { "static" } else { "dhcp" };
    let mut fields = vec![("mode", mode.to_owned())];
    fields.extend(n.fields.iter().cloned());
    fields
}

/// The stored settings document: `network` (with its mode) and the Jidoteki `app` section.
fn network_document(n: &Network) -> String {
    let mut doc = crate::json::Object::new().raw("network", &object(&with_mode(n)));
    if let Some(app) = &n.app {
        doc = doc.raw("app", &json::to_string(app));
    }
    if n.system != System::default() {
        let system = crate::json::Object::new()
            .str("domain", &n.system.domain)
            .raw("roles", &crate::json::str_array(n.system.roles.iter().map(String::as_str)));
        let system = match n.system.mtu {
            Some(mtu) => system.num("mtu", mtu),
            None => system,
        }
        .finish();
        doc = doc.raw("system", &system);
    }
    doc.finish()
}

fn object(fields: &[(&str, String)]) -> String {
    let mut o = crate::json::Object::new();
    for (k, v) in fields {
        o = o.str(k, v);
    }
    o.finish()
}

/// `key="value"` lines for shell-style consumers: keys are fixed names, values are
/// validated and still quoted with `"`, `\`, `$` and `` ` `` escaped.
fn key_value_lines(fields: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("\"\n");
    }
    out
}

pub(super) const NETWORK_FILE: &str = "settings.json";
const STORAGE_FILE: &str = "storage.json";

impl Engine {
    /// Stores validated network settings and renders them under `--root` for the system.
    /// Refused while an IncusOS change waits for its confirmation (or its apply): that
    /// change's rollback would otherwise silently undo this one.
    pub fn set_network(&mut self, n: &Network) -> Result<(), Error> {
        if self.network_pending().is_some() {
            return Err(Error::Conflict(
                "a network change made through /1.0/system/network is waiting for confirmation; \
                 confirm it (POST /1.0/system/network/:confirm) or let it roll back first"
                    .into(),
            ));
        }
        self.check_interface(n)?;
        // The Jidoteki document has no domain or roles: those set through IncusOS stay.
        let kept = self.network_settings().map(|current| current.system).unwrap_or_default();
        let n = Network { fields: n.fields.clone(), app: n.app.clone(), system: kept };
        let n = &n;
        self.store_network(n)?;
        // Applying can take the interface down for a while: off the request thread, and
        // the 202 goes out first.
        self.apply_network(n.is_static(), |status| {
            crate::log::info(format_args!("network apply hook: {status:?}"));
        })
    }

    /// The one writer of the network settings: the stored document (`network` and the
    /// Jidoteki `app` section) and the board's rendered file, as one change.
    pub(super) fn store_network(&self, n: &Network) -> Result<(), Error> {
        self.store_rendered(
            NETWORK_FILE,
            &network_document(n),
            &self.board.network.config.clone(),
            &self.network_lines(n),
        )
    }

    /// Writes the board's network file (key=value lines) for the settings.
    pub fn render_network(&self, n: &Network) -> Result<(), Error> {
        self.render(&self.board.network.config.clone(), &self.network_lines(n))
    }

    /// The board's network file for the settings: key=value lines, or the network
    /// manager's own file on a renderer backend.
    pub fn network_lines(&self, n: &Network) -> String {
        use crate::board::NetBackend;
        match self.board.network.backend() {
            Some(NetBackend::Networkd) => super::netrender::networkd(n),
            Some(NetBackend::Ifupdown) => super::netrender::ifupdown(n),
            _ => key_value_lines(&with_mode(n)),
        }
    }

    /// Stores a settings document and renders the board's file for it as one change: the
    /// rendered file is written first (nothing is stored if that fails), and put back as it
    /// was if storing then fails. A failure never leaves the new settings half in place.
    pub fn store_rendered(&self, stored: &str, doc: &str, target: &str, rendered: &str) -> Result<(), Error> {
        let target_path = self.root.path(target);
        let before = match std::fs::read(&target_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io(format!("reading {target}: {e}"))),
        };
        self.render(target, rendered)?;
        if let Err(e) = atomic::write(&self.data.join(stored), doc.as_bytes(), 0o600) {
            let undone = match &before {
                Some(b) => atomic::write(&target_path, b, 0o644),
                None => atomic::remove(&target_path),
            };
            if let Err(u) = undone {
                crate::log::warn(format_args!("putting {target} back after a failed store: {u}"));
            }
            return Err(Error::Io(format!("storing settings: {e}")));
        }
        Ok(())
    }

    /// Runs the board's network apply hook on a worker and hands its outcome to `done`
    /// there; with no hook, `done` hears success at once.
    pub fn apply_network(
        &self,
        is_static: bool,
        done: impl FnOnce(Result<(), String>) + Send + 'static,
    ) -> Result<(), Error> {
        if self.uses_netlink() {
            let Some(n) = self.network_settings() else {
                done(Ok(()));
                return Ok(());
            };
            let plan = self.network_plan(&n).map_err(Error::Invalid)?;
            let iface = n.get("interface").unwrap_or("eth0").to_owned();
            let before = self
                .network_before(&[&iface], &plan.wanted.families())
                .map_err(|e| Error::Io(format!("reading the interface's state from the kernel: {e}")))?;
            let root = self.root.clone();
            return crate::workers::queue("network-apply", move || done(super::netapply::run(&root, &plan, &before)))
                .map_err(|crate::workers::Refused(why)| {
                    Error::Busy(format!("cannot apply the network settings: {why}"))
                });
        }
        // networkd and ifupdown leave the hostname alone: steward sets it (kernel and file).
        let renderer = matches!(
            self.board.network.backend(),
            Some(crate::board::NetBackend::Networkd | crate::board::NetBackend::Ifupdown)
        );
        let hostname = match self.network_settings().and_then(|n| n.get("hostname").map(str::to_owned)) {
            Some(h) if renderer => Some((h, self.root.path(self.board.network.hostname_file()))),
            _ => None,
        };
        let argv = self.board.network.apply.clone();
        if argv.is_none() && hostname.is_none() {
            done(Ok(()));
            return Ok(());
        }
        let config = self.root.path(&self.board.network.config);
        let mode = if is_static { "static" } else { "dhcp" };
        crate::workers::queue("network-apply", move || {
            if let Some((name, file)) = &hostname {
                let set = super::netapply::set_hostname(name).and_then(|()| {
                    atomic::write(file, format!("{name}\n").as_bytes(), 0o644)
                        .map_err(|e| format!("writing {}: {e}", file.display()))
                });
                if let Err(e) = set {
                    return done(Err(e));
                }
            }
            let Some(argv) = argv else { return done(Ok(())) };
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env("STEWARD_NETWORK_CONFIG", &config)
                .env("STEWARD_NETWORK_MODE", mode)
                .stdin(std::process::Stdio::null())
                .status();
            done(match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("the network apply hook failed ({s})")),
                Err(e) => Err(format!("cannot run the network apply hook: {e}")),
            });
        })
        .map_err(|crate::workers::Refused(why)| Error::Busy(format!("cannot run the network apply hook: {why}")))
    }

    /// The hostname the box has: the stored settings', else the system's, else `steward`.
    pub fn current_hostname(&self) -> String {
        let stored = self.network_settings().and_then(|n| n.get("hostname").map(str::to_owned));
        let system = || Some(rustix::system::uname().nodename().to_string_lossy().into_owned());
        stored
            .or_else(system)
            .filter(|h| (3..=255).contains(&h.len()) && h.bytes().all(hostname))
            .unwrap_or_else(|| "steward".to_owned())
    }

    /// The stored settings document, else the board's shipped one.
    pub fn network(&self) -> Result<String, Error> {
        match self.stored(NETWORK_FILE) {
            Err(Error::NotFound(_)) => {
                self.default_network().map(|n| network_document(&n)).ok_or(Error::NotFound("settings"))
            }
            stored => stored,
        }
    }

    /// The board's shipped network settings (checked when the engine opened).
    pub(super) fn default_network(&self) -> Option<Network> {
        match &self.board.network.default {
            Some(Value::Object(net)) => network_from_section(net, None).ok(),
            _ => None,
        }
    }

    pub fn set_storage(&mut self, s: &Storage) -> Result<(), Error> {
        let mut fields = vec![("type", s.kind.clone())];
        fields.extend(s.fields.iter().cloned());
        let doc = crate::json::Object::new().raw("storage", &object(&fields)).finish();
        self.store_rendered(STORAGE_FILE, &doc, &self.board.storage.config.clone(), &key_value_lines(&fields))
    }

    /// The stored storage settings (a JSON document with a `storage` object).
    /// The stored storage choice, else the board's shipped one.
    pub fn storage(&self) -> Result<String, Error> {
        match (self.stored(STORAGE_FILE), &self.board.storage.default) {
            (Err(Error::NotFound(_)), Some(default)) => {
                Ok(crate::json::Object::new().raw("storage", &json::to_string(default)).finish())
            }
            (stored, _) => stored,
        }
    }

    /// A stored settings document, as written: a JSON object. A file that is not one (edited
    /// by hand, damaged) is an error with the reason, never served as it is.
    fn stored(&self, name: &str) -> Result<String, Error> {
        let text = match std::fs::read_to_string(self.data.join(name)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound("settings")),
            Err(e) => return Err(Error::Io(format!("reading {name}: {e}"))),
        };
        match json::from_str::<Value>(&text) {
            Ok(Value::Object(_)) => Ok(text),
            _ => Err(Error::Io(format!(
                "the stored {name} is not a JSON object (damaged); POST new settings to replace it"
            ))),
        }
    }

    fn render(&self, target: &str, content: &str) -> Result<(), Error> {
        let path = self.root.path(target);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("creating {}: {e}", dir.display())))?;
        }
        atomic::write(&path, content.as_bytes(), 0o644).map_err(|e| Error::Io(format!("writing {target}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(doc: &str) -> Result<Network, String> {
        parse_network(doc.as_bytes()).map_err(|e| match e {
            Error::Invalid(m) => m,
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn network_rules_reject_each_bad_value() {
        let bad = [
            (
                r#"{"network":{"hostname":"test.host"}}"#,
                "Invalid string length for option: interface. Allowed: >= 3 and <= 14",
            ),
            (
                r#"{"network":{"interface":"eth0"}}"#,
                "Invalid string length for option: hostname. Allowed: >= 3 and <= 255",
            ),
            (
                r#"{"network":{"interface":"et","hostname":"test.host"}}"#,
                "Invalid string length for option: interface. Allowed: >= 3 and <= 14",
            ),
            (
                r#"{"network":{"interface":"eth_0","hostname":"test.host"}}"#,
                "Missing or invalid string for option: interface. Allowed: a-zA-Z0-9",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"bad host"}}"#,
                "Missing or invalid string for option: hostname. Allowed: a-zA-Z0-9.-",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","ntpserver":"<script>"}}"#,
                "Missing or invalid string for option: ntpserver. Allowed: a-zA-Z0-9.-:",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","dns1":"1.2.3.x"}}"#,
                "Missing or invalid string for option: dns1. Allowed: abcdef0123456789ABCDEF.:",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","ip_address":"10.0.0.2"}}"#,
                "Static network settings need ip_address, netmask and gateway together (omit all three for DHCP)",
            ),
            (
                r#"{"network":{"interface":7,"hostname":"test.host"}}"#,
                "Missing or invalid string for option: interface. Allowed: a-zA-Z0-9",
            ),
            (r#"{"network":{"interface":"eth0","hostname":"test.host","evil":"x"}}"#, "Unknown option: evil"),
            // "" is absent only for the optional fields.
            (
                r#"{"network":{"interface":"","hostname":"test.host"}}"#,
                "Invalid string length for option: interface. Allowed: >= 3 and <= 14",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"auto"}}"#,
                "Invalid option: mode. Allowed: dhcp, static",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","mode":7}}"#,
                "Invalid option: mode. Allowed: dhcp, static",
            ),
            (
                r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"static","ntpserver":""}}"#,
                "Static network settings need ip_address, netmask and gateway together (omit all three for DHCP)",
            ),
            (r#"{"net":{}}"#, "Missing or invalid option: network"),
            (r#"[]"#, "Settings file is not a JSON object"),
        ];
        for (doc, msg) in bad {
            assert_eq!(net(doc).err().as_deref(), Some(msg), "{doc}");
        }
    }

    /// What the Jidoteki dashboard sends: every field, blank where the owner left it so.
    #[test]
    fn blank_optional_fields_are_absent_and_an_explicit_dhcp_drops_addresses() {
        let d = net(r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"dhcp","ip_address":"","netmask":"","gateway":"","dns1":"","dns2":"","ntpserver":""}}"#).unwrap();
        assert!(!d.is_static());
        assert_eq!(d.fields.len(), 2, "only interface and hostname are set");
        let left = net(r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"dhcp","ip_address":"10.0.0.2","netmask":"255.0.0.0","gateway":"10.0.0.1","ntpserver":""}}"#).unwrap();
        assert!(!left.is_static() && left.get("ip_address").is_none());
        let s = net(r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"static","ip_address":"10.0.0.2","netmask":"255.0.0.0","gateway":"10.0.0.1","ntpserver":""}}"#).unwrap();
        assert!(s.is_static() && s.get("ntpserver").is_none());
        // Stored with its mode, as the reference returns it.
        assert!(network_document(&s).starts_with(r#"{"network":{"mode":"static","interface":"eth0""#));
        assert!(network_document(&d).starts_with(r#"{"network":{"mode":"dhcp","interface":"eth0""#));
    }

    #[test]
    fn a_board_whose_shipped_settings_a_client_could_not_send_is_refused() {
        let dev = include_str!("../../board/dev.json");
        let board = |from: &str, to: &str| {
            assert!(dev.contains(from), "{from}");
            crate::board::Board::parse(&dev.replacen(from, to, 1)).unwrap()
        };
        let bad_host = board(r#""hostname": "steward.local""#, r#""hostname": "a b""#);
        let e = check_board_defaults(&bad_host).unwrap_err();
        assert!(e.starts_with("board network.default: Missing or invalid string for option: hostname"), "{e}");
        let not_offered = board(r#""default": { "type": "local" }"#, r#""default": { "type": "ceph" }"#);
        assert!(check_board_defaults(&not_offered).unwrap_err().starts_with("board storage.default:"));
        let not_object =
            board(r#""default": { "interface": "eth0", "hostname": "steward.local" }"#, r#""default": []"#);
        assert!(check_board_defaults(&not_object).is_err());
        assert_eq!(check_board_defaults(&crate::board::Board::parse(dev).unwrap()), Ok(()));
    }

    #[test]
    fn static_and_dhcp() {
        let s = net(r#"{"network":{"interface":"eth0","hostname":"test.host","ip_address":"192.168.1.100","netmask":"255.255.255.0","gateway":"192.168.1.1","dns1":"192.168.1.2","dns2":"192.168.1.3","ntpserver":"pool.ntp.org"},"app":{"name":"testapp"}}"#).unwrap();
        assert!(s.is_static());
        assert_eq!(s.fields.len(), 8);
        let d = net(r#"{"network":{"interface":"eth0","hostname":"test.host","mode":"dhcp"}}"#).unwrap();
        assert!(!d.is_static() && d.app.is_none());
        let v6 = net(
            r#"{"network":{"interface":"eth0","hostname":"h.example","ip_address":"fe80::1","netmask":"64","gateway":"fe80::ffff"}}"#,
        );
        assert!(v6.is_ok());
    }

    #[test]
    fn storage_rules() {
        let all: Vec<String> = crate::board::STORAGE_TYPES.iter().map(|s| s.to_string()).collect();
        let st = |d: &str| parse_storage(d.as_bytes(), &all).map(|s| s.kind).map_err(|e| format!("{e:?}"));
        assert_eq!(st(r#"{"storage":{"type":"local"}}"#).unwrap(), "local");
        assert!(
            st(
                r#"{"storage":{"type":"nfs","mount_options":"noacl,sync","ip":"192.168.1.100","share":"/nfs/storage"}}"#
            )
            .is_ok()
        );
        assert!(st(r#"{"storage":{"type":"aoe","device":"e0.1"}}"#).is_ok());
        assert!(st(r#"{"storage":{"type":"iscsi","target":"iqn.2016-01.com.example:storage.lun1","ip":"192.168.1.100","username":"user","password":"pass"}}"#).is_ok());
        assert!(
            st(r#"{"storage":{"type":"nbd","export_name":"otherexport","ip":"192.168.1.100","port":"1043"}}"#).is_ok()
        );
        for bad in [
            r#"{"storage":{"type":"ceph"}}"#,
            r#"{"storage":{"type":"local","extra":"$(reboot)"}}"#,
            r#"{"storage":{"type":"nfs","mount_options":"noacl sync","ip":"192.168.1.100","share":"/nfs"}}"#,
            r#"{"storage":{"type":"nfs","mount_options":"noacl","ip":"192.168.1.100"}}"#,
            r#"{"storage":{"type":"aoe","device":"e0"}}"#,
            r#"{"storage":{"type":"iscsi","target":"iqn","ip":"1.2.3.4","username":"us er","password":"pass"}}"#,
            r#"{"storage":{"type":"nbd","export_name":"exp","ip":"1.2.3.4","port":"123456"}}"#,
            r#"{"storage":{"type":"nbd","export_name":"exp","ip":"1.2.3.4","port":"70000"}}"#,
            r#"{"storage":{"type":"nbd","export_name":"exp","ip":"1.2.3.4","port":"10-4"}}"#,
        ] {
            assert!(st(bad).is_err(), "{bad}");
        }
        let only_local = vec!["local".to_string()];
        assert!(parse_storage(br#"{"storage":{"type":"aoe","device":"e0.1"}}"#, &only_local).is_err());
    }

    #[test]
    fn key_value_output_is_quoted_and_escaped() {
        let out = key_value_lines(&[("password", "a\"b$c`d\\".into())]);
        assert_eq!(out, "password=\"a\\\"b\\$c\\`d\\\\\"\n");
    }
}
