//! The netlink backend (`network.backend: netlink`): network settings applied to the kernel
//! by steward itself (system::netstate) with the resolver, hostname and NTP files beside
//! them. Whatever a change touches is taken first, so that a step failing undoes the steps
//! before it, and a change left unconfirmed is undone to exactly what was there.

use std::net::IpAddr;

use miniserde::json::Value;

use super::Engine;
use super::settings::Network;
use crate::json::Object;
use crate::system::Root;
use crate::system::netstate::{self, Snapshot, Wanted};

/// Files are small; a larger one is not read into the snapshot.
const MAX_FILE: u64 = 64 * 1024;

/// A lease is a few lines; more is not one.
const MAX_LEASE: u64 = 4096;

/// One change, ready to run on a worker.
pub struct Plan {
    pub(super) wanted: Wanted,
    hostname: Option<String>,
    /// (system path, the content it gets).
    files: Vec<(String, String)>,
    dhcp: Option<Dhcp>,
}

/// The board's DHCP client, and where its script leaves the lease for steward to apply.
struct Dhcp {
    argv: Vec<String>,
    lease: std::path::PathBuf,
    /// Nameservers come from the lease unless the settings name their own.
    resolv_conf: Option<String>,
}

/// What a lease gives, read from the KEY=VALUE lines the client's script wrote (busybox
/// udhcpc's names: `ip`, `subnet` or `mask`, `router`, `dns`).
#[derive(Debug, PartialEq)]
struct Lease {
    address: (IpAddr, u8),
    router: Option<IpAddr>,
    dns: Vec<IpAddr>,
    /// Its length, seconds (`lease`); renewed at half of it.
    seconds: Option<u64>,
}

/// How often the lease file is looked at again: it changes only when a client ran.
const LEASE_LOOK_MS: i64 = 10_000;

/// When the lease is to be renewed, as last read, and whether a renewal is running.
#[derive(Default)]
pub struct Renewal {
    looked_ms: i64,
    due_ms: Option<i64>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn parse_lease(text: &str) -> Result<Lease, String> {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"'))
    };
    let ip: IpAddr = get("ip").and_then(|v| v.parse().ok()).ok_or("the lease has no ip")?;
    let prefix = get("mask")
        .and_then(|m| m.parse::<u8>().ok())
        .or_else(|| get("subnet").and_then(prefix_of))
        .filter(|p| *p <= 32)
        .ok_or("the lease has no subnet")?;
    // Several routers or servers come space-separated; the first router is the gateway.
    let router = get("router").and_then(|r| r.split_whitespace().next()).and_then(|r| r.parse().ok());
    let dns =
        get("dns").map(|d| d.split_whitespace().filter_map(|s| s.parse().ok()).take(3).collect()).unwrap_or_default();
    let seconds = get("lease").and_then(|l| l.parse().ok()).filter(|s| *s > 0);
    Ok(Lease { address: (ip, prefix), router, dns, seconds })
}

/// What was there before a change: the kernel's side and the files, as (path, content;
/// None: absent).
pub struct Before {
    kernel: Snapshot,
    files: Vec<(String, Option<String>)>,
}

/// A netmask as the settings hold it (dotted IPv4, or `/N` for IPv6) as a prefix length.
pub fn prefix_of(netmask: &str) -> Option<u8> {
    if let Some(p) = netmask.strip_prefix('/') {
        return p.parse().ok().filter(|p| *p <= 128);
    }
    let m: std::net::Ipv4Addr = netmask.parse().ok()?;
    let bits = u32::from(m);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones() as u8)
}

impl Engine {
    pub fn uses_netlink(&self) -> bool {
        self.board.network.backend() == Some(crate::board::NetBackend::Netlink)
    }

    /// On the netlink backend, refuses settings it could not apply (an address or gateway
    /// that the field rules let through but is none, an interface the kernel does not have):
    /// the client's mistake, found before anything is stored or changed.
    pub(super) fn check_interface(&self, n: &Network) -> Result<(), super::Error> {
        if !self.uses_netlink() {
            return Ok(());
        }
        self.network_plan(n).map_err(super::Error::Invalid)?;
        let iface = n.get("interface").unwrap_or("eth0");
        match crate::system::netlink::Netlink::open().and_then(|mut nl| nl.link(iface)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(super::Error::Invalid(format!("this box has no interface {iface}")))
            }
            Err(e) => Err(super::Error::Io(format!("reading the interfaces from the kernel: {e}"))),
        }
    }

    /// The files the netlink backend writes, as system paths.
    fn network_files(&self) -> Vec<String> {
        let b = &self.board.network;
        let mut files = vec![b.resolv_conf().to_owned(), b.hostname_file().to_owned()];
        files.extend(b.ntp_config.clone());
        files
    }

    pub(super) fn network_plan(&self, n: &Network) -> Result<Plan, String> {
        let iface = n.get("interface").unwrap_or("eth0").to_owned();
        let address = match (n.get("ip_address"), n.get("netmask")) {
            (Some(ip), Some(mask)) => {
                let ip: IpAddr = ip.parse().map_err(|_| format!("ip_address {ip:?} is not an address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = prefix_of(mask).filter(|p| *p <= max).ok_or_else(|| format!("netmask {mask:?}"))?;
                Some((ip, prefix))
            }
            _ => None,
        };
        let gateway = match n.get("gateway") {
            Some(g) => Some(g.parse::<IpAddr>().map_err(|_| format!("gateway {g:?} is not an address"))?),
            None => None,
        };
        let mut resolv = String::from("# written by steward from the network settings\n");
        if !n.system.domain.is_empty() {
            resolv.push_str(&format!("search {}\n", n.system.domain));
        }
        for ns in [n.get("dns1"), n.get("dns2")].into_iter().flatten() {
            resolv.push_str(&format!("nameserver {ns}\n"));
        }
        let b = &self.board.network;
        let hostname = n.get("hostname").map(str::to_owned);
        let mut files = vec![(b.resolv_conf().to_owned(), resolv)];
        if let Some(h) = &hostname {
            files.push((b.hostname_file().to_owned(), format!("{h}\n")));
        }
        if let (Some(path), Some(server)) = (&b.ntp_config, n.get("ntpserver")) {
            files.push((
                path.clone(),
                format!("# written by steward from the network settings\nserver {server} iburst\n"),
            ));
        }
        let has_dns = n.get("dns1").is_some();
        let dhcp = match (address, &b.dhcp_client) {
            (None, Some(argv)) => Some(Dhcp {
                argv: argv.clone(),
                lease: self.data.join("network-lease"),
                resolv_conf: (!has_dns).then(|| b.resolv_conf().to_owned()),
            }),
            _ => None,
        };
        Ok(Plan { wanted: Wanted { iface, address, gateway, mtu: n.system.mtu }, hostname, files, dhcp })
    }

    /// The state a change to `ifaces` in `families` would touch.
    pub(super) fn network_before(&self, ifaces: &[&str], families: &[u8]) -> std::io::Result<Before> {
        let kernel = netstate::snapshot(ifaces, families)?;
        let files = self
            .network_files()
            .into_iter()
            .map(|f| {
                let content =
                    self.root.read_limited(&f, MAX_FILE).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
                (f, content)
            })
            .collect();
        Ok(Before { kernel, files })
    }
}

/// Runs a change; a failing step puts back everything before it, and the error says both.
pub fn run(root: &Root, plan: &Plan, before: &Before) -> Result<(), String> {
    let outcome = (|| -> Result<(), String> {
        netstate::apply(&plan.wanted).map_err(|e| format!("{}: {e}", plan.wanted.iface))?;
        if let Some(h) = &plan.hostname {
            set_hostname(h)?;
        }
        for (path, content) in &plan.files {
            crate::store::atomic::write(&through_links(root, path), content.as_bytes(), 0o644)
                .map_err(|e| format!("writing {path}: {e}"))?;
        }
        if let Some(dhcp) = &plan.dhcp {
            take_lease(root, &plan.wanted, dhcp)?;
        }
        Ok(())
    })();
    outcome.map_err(|e| match restore(root, before) {
        Ok(()) => format!("{e}; what was set before is back"),
        Err(r) => format!("{e}; putting back what was set before failed too: {r}"),
    })
}

/// Runs the DHCP client and applies the lease it left: address, gateway, and its
/// nameservers unless the settings name their own.
fn take_lease(root: &Root, wanted: &Wanted, dhcp: &Dhcp) -> Result<(), String> {
    let _ = std::fs::remove_file(&dhcp.lease);
    let status = std::process::Command::new(&dhcp.argv[0])
        .args(&dhcp.argv[1..])
        .env("STEWARD_INTERFACE", &wanted.iface)
        .env("STEWARD_LEASE", &dhcp.lease)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the DHCP client: {e}"))?;
    if !status.success() {
        return Err(format!("the DHCP client got no lease ({status})"));
    }
    let lease = parse_lease(&read_lease(&dhcp.lease)?)?;
    let leased = Wanted { address: Some(lease.address), gateway: lease.router, ..wanted.clone() };
    netstate::apply(&leased).map_err(|e| format!("applying the lease: {e}"))?;
    if let (Some(path), false) = (&dhcp.resolv_conf, lease.dns.is_empty()) {
        let mut resolv = String::from("# written by steward from the DHCP lease\n");
        for ns in &lease.dns {
            resolv.push_str(&format!("nameserver {ns}\n"));
        }
        crate::store::atomic::write(&through_links(root, path), resolv.as_bytes(), 0o644)
            .map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}

impl Engine {
    /// From the request loop: renews the DHCP lease at half its length by running the
    /// client again (the address stays on the interface meanwhile, and stays if the
    /// renewal fails, to be tried again). Returns when to look again.
    pub(super) fn dhcp_tick(&mut self, now_ms: i64) -> Option<i64> {
        use std::sync::atomic::Ordering;
        if !self.uses_netlink() || self.board.network.dhcp_client.is_none() {
            return None;
        }
        // Looked at every LEASE_LOOK_MS whatever the settings: a change to DHCP arrives
        // through a request, and its lease some time after the answer.
        if now_ms - self.dhcp.looked_ms >= LEASE_LOOK_MS || now_ms < self.dhcp.looked_ms {
            self.dhcp.looked_ms = now_ms;
            let dhcp = self.network_settings().is_some_and(|n| !n.is_static());
            self.dhcp.due_ms = if dhcp { renewal_due(&self.data.join("network-lease")) } else { None };
        }
        let next_look = self.dhcp.looked_ms + LEASE_LOOK_MS;
        let Some(due) = self.dhcp.due_ms else { return Some(next_look) };
        if due > now_ms {
            return Some(due.min(next_look));
        }
        // Due, but a renewal is running or a change waits for its confirmation: the next look.
        if self.dhcp.running.load(Ordering::Acquire) || self.network_pending().is_some() {
            return Some(next_look);
        }
        let settings = self.network_settings().filter(|n| !n.is_static());
        let Some(Ok(Plan { wanted, dhcp: Some(dhcp), .. })) = settings.map(|n| self.network_plan(&n)) else {
            return Some(next_look);
        };
        let running = self.dhcp.running.clone();
        running.store(true, Ordering::Release);
        let root = self.root.clone();
        let queued = crate::workers::queue("dhcp-renew", move || {
            if let Err(e) = take_lease(&root, &wanted, &dhcp) {
                crate::log::warn(format_args!("network: renewing the DHCP lease: {e}; the address stays, tried again"));
            }
            running.store(false, Ordering::Release);
        });
        if queued.is_err() {
            self.dhcp.running.store(false, Ordering::Release);
        }
        // The renewal rewrites the lease: it is read again at the next look.
        self.dhcp.due_ms = None;
        Some(next_look)
    }
}

/// Half the lease's length after the client left it.
fn renewal_due(lease: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(lease).ok()?.modified().ok()?;
    let at = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    let lease = parse_lease(&read_lease(lease).ok()?).ok()?;
    Some(at + lease.seconds? as i64 * 500)
}

/// Sets the running hostname. Without CAP_SYS_ADMIN (or under systemd's ProtectHostname)
/// the kernel refuses: that is logged, not a failure, since the hostname file steward writes
/// beside it takes effect at the next boot and the capability is a large one to hold.
pub(super) fn set_hostname(name: &str) -> Result<(), String> {
    match rustix::system::sethostname(name.as_bytes()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM) => {
            crate::log::warn(format_args!(
                "network: the running hostname stays (setting it needs CAP_SYS_ADMIN); {name} is in the hostname file for the next boot"
            ));
            Ok(())
        }
        Err(e) => Err(format!("setting the hostname: {e}")),
    }
}

/// Where writing `abs` must go so that a symlink stays one: `/etc/resolv.conf` is often a
/// link into `/tmp` or `/run` on a read-only root, and replacing it by rename would both
/// need `/etc` writable and cut the link. Links are followed below the root, a few deep.
fn through_links(root: &Root, abs: &str) -> std::path::PathBuf {
    let mut abs = std::path::PathBuf::from(abs);
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(root.path(&abs.to_string_lossy())) else { break };
        let joined =
            if target.is_absolute() { target } else { abs.parent().unwrap_or(std::path::Path::new("/")).join(target) };
        // Lexically, so `..` can never climb above the root.
        abs = std::path::PathBuf::from("/");
        for part in joined.components() {
            match part {
                std::path::Component::Normal(p) => abs.push(p),
                std::path::Component::ParentDir => {
                    abs.pop();
                }
                _ => {}
            }
        }
    }
    root.path(&abs.to_string_lossy())
}

fn read_lease(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_LEASE).read_to_string(&mut text))
        .map_err(|e| format!("the DHCP client left no lease ({}): {e}", path.display()))?;
    Ok(text)
}

pub fn restore(root: &Root, before: &Before) -> Result<(), String> {
    let mut first = netstate::restore(&before.kernel).err().map(|e| e.to_string());
    for (path, content) in &before.files {
        let target = through_links(root, path);
        let r = match content {
            Some(text) => crate::store::atomic::write(&target, text.as_bytes(), 0o644),
            None => crate::store::atomic::remove(&target),
        };
        if let Err(e) = r {
            first.get_or_insert(format!("{path}: {e}"));
        }
    }
    first.map_or(Ok(()), Err)
}

impl Before {
    pub fn to_json(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(path, content)| {
                let o = Object::new().str("path", path);
                match content {
                    Some(c) => o.str("content", c),
                    None => o.raw("content", "null"),
                }
                .finish()
            })
            .collect();
        Object::new().raw("kernel", &self.kernel.to_json()).raw("files", &format!("[{}]", files.join(","))).finish()
    }

    pub fn from_json(v: &Value) -> Option<Before> {
        let Value::Object(m) = v else { return None };
        let kernel = Snapshot::from_json(m.get("kernel")?)?;
        let mut files = Vec::new();
        if let Some(Value::Array(items)) = m.get("files") {
            for f in items {
                let Value::Object(f) = f else { return None };
                let Some(Value::String(path)) = f.get("path") else { return None };
                let content = match f.get("content") {
                    Some(Value::String(c)) => Some(c.clone()),
                    _ => None,
                };
                files.push((path.clone(), content));
            }
        }
        Some(Before { kernel, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_resolver_file_is_written_where_the_link_points() {
        let dir = std::env::temp_dir().join(format!("steward-links-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::os::unix::fs::symlink("../tmp/resolv.conf", dir.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/tmp/hosts", dir.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink("../../../../x", dir.join("etc/escape")).unwrap();
        let root = Root::new(&dir);
        assert_eq!(through_links(&root, "/etc/resolv.conf"), dir.join("tmp/resolv.conf"));
        assert_eq!(through_links(&root, "/etc/hosts"), dir.join("tmp/hosts"), "absolute links stay below the root");
        assert_eq!(through_links(&root, "/etc/hostname"), dir.join("etc/hostname"));
        assert_eq!(through_links(&root, "/etc/escape"), dir.join("x"), "no climbing out of the root");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lease_is_read_as_udhcpc_leaves_it() {
        let lease = parse_lease(
            "ip=10.9.0.120\nsubnet=255.255.255.0\nrouter=10.9.0.1 10.9.0.2\ndns=10.9.0.53 bogus 10.9.0.54\n",
        )
        .unwrap();
        assert_eq!(lease.address, ("10.9.0.120".parse().unwrap(), 24));
        assert_eq!(lease.router, Some("10.9.0.1".parse().unwrap()));
        assert_eq!(lease.dns.len(), 2);
        assert_eq!(lease.seconds, None);
        assert_eq!(parse_lease("ip=10.0.0.5\nmask=16\nlease=600\n").unwrap().seconds, Some(600));
        assert_eq!(parse_lease("ip=10.0.0.5\nmask=16\n").unwrap().address.1, 16);
        for bad in
            ["", "ip=x\nsubnet=255.0.0.0", "ip=10.0.0.5", "ip=10.0.0.5\nsubnet=255.0.255.0", "ip=10.0.0.5\nmask=40"]
        {
            assert!(parse_lease(bad).is_err(), "{bad:?}");
        }
    }
}
