//! The IncusOS view of the network settings, with commit-confirm: a change made with a
//! confirmation timeout is rolled back unless confirmed in time, and at once if applying it
//! fails. The settings themselves are the ones the Jidoteki surface shows and changes: one
//! store, two views.

use miniserde::json::{self, Value};

use super::settings::{Network, parse_network};
use super::{Engine, Error};
use crate::json::{Object, str_array};
use crate::store::atomic;

const PENDING_FILE: &str = "network-pending.json";
const SETTINGS_FILE: &str = "settings.json";
/// The longest a change may wait for its confirmation.
const MAX_CONFIRM_MS: i64 = 24 * 3_600_000;

/// A Go-style duration ("90s", "5m", "1h30m") in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => return None,
        };
        let n: i64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && !text.is_empty()).then_some(total)
}

fn prefix_to_netmask(prefix: u32) -> Option<String> {
    if prefix > 32 {
        return None;
    }
    let mask: u32 = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Some(std::net::Ipv4Addr::from(mask).to_string())
}

fn netmask_to_prefix(mask: &str) -> Option<u32> {
    if let Some(p) = mask.strip_prefix('/') {
        return p.parse().ok().filter(|p| *p <= 128);
    }
    let m: std::net::Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(m);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones())
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, Error> {
    crate::json::string_list(v, what).map_err(Error::Invalid)
}

fn object<'a>(v: Option<&'a Value>, what: &str) -> Result<Option<&'a json::Object>, Error> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(Error::Invalid(format!("{what} must be an object"))),
    }
}

fn only(m: &json::Object, what: &str, known: &[&str]) -> Result<(), Error> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Error::Invalid(format!("{what}: unsupported field {k:?}"))),
        None => Ok(()),
    }
}

/// An IncusOS network `config` turned into the settings document the Jidoteki surface uses,
/// plus the confirmation timeout if one was asked for. This board has one interface.
/// An IncusOS network config as steward's settings. Upstream's config may leave out the
/// hostname (its default network seed has no `dns` at all, and `edit` on a fresh box sends
/// `""` back): then the box keeps `hostname`, the one it has.
pub fn from_incus(config: &Value, hostname: &str) -> Result<(Network, Option<i64>), Error> {
    let Value::Object(c) = config else { return Err(Error::Invalid("config must be an object".into())) };
    only(c, "config", &["dns", "time", "interfaces", "confirmation_timeout", "proxy", "bonds", "vlans", "wireguard"])?;
    for unsupported in ["proxy", "bonds", "vlans", "wireguard"] {
        if c.get(unsupported)
            .is_some_and(|v| !matches!(v, Value::Null) && !matches!(v, Value::Array(a) if a.is_empty()))
        {
            return Err(Error::Invalid(format!("{unsupported} is not supported on this board")));
        }
    }
    let timeout = match c.get("confirmation_timeout") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match parse_duration(s) {
            Some(ms) if ms > 0 && ms <= MAX_CONFIRM_MS => Some(ms),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid confirmation_timeout {s:?} (e.g. \"90s\", \"5m\"; at most 24h)"
                )));
            }
        },
        Some(_) => return Err(Error::Invalid("confirmation_timeout must be a duration string".into())),
    };
    let interfaces = match c.get("interfaces") {
        Some(Value::Array(items)) if items.len() == 1 => items,
        Some(Value::Array(items)) if items.len() > 1 => {
            return Err(Error::Invalid("this board configures one interface".into()));
        }
        _ => return Err(Error::Invalid("no interfaces, bonds or VLANs are configured".into())),
    };
    let Value::Object(iface) = &interfaces[0] else {
        return Err(Error::Invalid("an interface must be an object".into()));
    };
    only(iface, "interface", &["name", "hwaddr", "addresses", "routes", "mtu", "roles", "required_for_online"])?;
    let name = match iface.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(Error::Invalid("an interface needs a name".into())),
    };
    let mut net = Object::new().str("interface", &name);
    let dns = object(c.get("dns"), "dns")?;
    if let Some(d) = dns {
        only(d, "dns", &["hostname", "domain", "nameservers", "search_domains"])?;
    }
    match dns.and_then(|d| d.get("hostname")) {
        Some(Value::String(h)) if !h.is_empty() => net = net.str("hostname", h),
        None | Some(Value::Null) | Some(Value::String(_)) => net = net.str("hostname", hostname),
        Some(_) => return Err(Error::Invalid("dns.hostname must be a string".into())),
    }
    let nameservers = strings(dns.and_then(|d| d.get("nameservers")), "dns.nameservers")?;
    if nameservers.len() > 2 {
        return Err(Error::Invalid("this board takes at most two nameservers".into()));
    }
    let addresses = strings(iface.get("addresses"), "addresses")?;
    let statics: Vec<&String> = addresses.iter().filter(|a| *a != "dhcp4" && *a != "dhcp6" && *a != "slaac").collect();
    if statics.len() > 1 {
        return Err(Error::Invalid("this board takes one static address".into()));
    }
    if let Some(addr) = statics.first() {
        let (ip, prefix) = addr
            .split_once('/')
            .ok_or_else(|| Error::Invalid(format!("address {addr:?} needs a prefix length (10.0.0.2/24)")))?;
        let prefix: u32 = prefix.parse().map_err(|_| Error::Invalid(format!("bad prefix length in {addr:?}")))?;
        let netmask = if ip.contains(':') { Some(format!("/{prefix}")) } else { prefix_to_netmask(prefix) };
        let netmask = netmask.ok_or_else(|| Error::Invalid(format!("bad prefix length in {addr:?}")))?;
        let mut gateway = None;
        if let Some(Value::Array(routes)) = iface.get("routes") {
            for r in routes {
                let Value::Object(r) = r else { return Err(Error::Invalid("a route must be an object".into())) };
                let to =
                    matches!(r.get("to"), Some(Value::String(t)) if t == "0.0.0.0/0" || t == "::/0" || t == "default");
                if let (true, Some(Value::String(via))) = (to, r.get("via")) {
                    gateway = Some(via.clone());
                }
            }
        }
        let gateway = gateway.ok_or_else(|| {
            Error::Invalid("a static address needs a default route (to 0.0.0.0/0 via the gateway)".into())
        })?;
        net = net.str("ip_address", ip).str("netmask", &netmask).str("gateway", &gateway);
    }
    for (i, ns) in nameservers.iter().enumerate() {
        net = net.str(if i == 0 { "dns1" } else { "dns2" }, ns);
    }
    if let Some(t) = object(c.get("time"), "time")? {
        only(t, "time", &["ntp_servers", "timezone"])?;
        let ntp = strings(t.get("ntp_servers"), "time.ntp_servers")?;
        if ntp.len() > 1 {
            return Err(Error::Invalid("this board takes one NTP server".into()));
        }
        if let Some(server) = ntp.first() {
            net = net.str("ntpserver", server);
        }
    }
    let doc = Object::new().raw("network", &net.finish()).finish();
    Ok((parse_network(doc.as_bytes())?, timeout))
}

/// The stored settings as an IncusOS network `config`.
pub fn to_incus(settings: Option<&str>, hwaddr: &str) -> String {
    let net = settings
        .and_then(|t| json::from_str::<Value>(t).ok())
        .and_then(|v| match v {
            Value::Object(mut m) => match m.remove("network") {
                Some(Value::Object(n)) => Some(n),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default();
    let get = |k: &str| match net.get(k) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let mut addresses = Vec::new();
    let mut routes = String::from("[]");
    match (get("ip_address"), get("netmask").and_then(netmask_to_prefix), get("gateway")) {
        (Some(ip), Some(prefix), Some(gw)) => {
            addresses.push(format!("{ip}/{prefix}"));
            let to = if ip.contains(':') { "::/0" } else { "0.0.0.0/0" };
            routes = format!("[{}]", Object::new().str("to", to).str("via", gw).finish());
        }
        _ => addresses.push("dhcp4".to_owned()),
    }
    let nameservers: Vec<&str> = [get("dns1"), get("dns2")].into_iter().flatten().collect();
    let iface = Object::new()
        .str("name", get("interface").unwrap_or("eth0"))
        .str("hwaddr", hwaddr)
        .raw("addresses", &str_array(addresses.iter().map(String::as_str)))
        .raw("routes", &routes)
        .finish();
    Object::new()
        .raw(
            "dns",
            &Object::new()
                .str("hostname", get("hostname").unwrap_or(""))
                .raw("nameservers", &str_array(nameservers))
                .finish(),
        )
        .raw("time", &Object::new().raw("ntp_servers", &str_array(get("ntpserver"))).str("timezone", "UTC").finish())
        .raw("interfaces", &format!("[{iface}]"))
        .finish()
}

#[derive(Debug, PartialEq)]
pub struct Pending {
    pub deadline_ms: i64,
    /// The settings document before the change; `None` if there was none.
    pub previous: Option<String>,
    /// No confirmation was asked for: the change stands once it applies.
    pub auto_confirm: bool,
}

/// Hears how applying a network change went (after any rollback).
pub type Responder = Box<dyn FnOnce(Result<(), String>) + Send>;
pub type Applied = (Result<(), String>, Responder);

impl Engine {
    pub fn network_pending(&self) -> Option<Pending> {
        let text = std::fs::read_to_string(self.data.join(PENDING_FILE)).ok()?;
        let Value::Object(m) = json::from_str::<Value>(&text).ok()? else { return None };
        let deadline_ms = match m.get("deadline_ms")? {
            Value::Number(json::Number::U64(n)) => *n as i64,
            _ => return None,
        };
        let previous = match m.get("previous") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let auto_confirm = matches!(m.get("auto_confirm"), Some(Value::Bool(true)));
        Some(Pending { deadline_ms, previous, auto_confirm })
    }

    /// Applies an IncusOS network change; `respond` hears the outcome once the board's apply
    /// hook has run. The previous settings are kept (durably, before anything changes) until
    /// the change is confirmed — by `:confirm` within the timeout, or by a successful apply
    /// when no timeout was asked for — and restored otherwise, at once if applying fails.
    pub fn network_put(
        &mut self,
        network: &Network,
        timeout_ms: Option<i64>,
        now_ms: i64,
        respond: Responder,
    ) -> Result<(), Error> {
        if self.network_pending().is_some() {
            return Err(Error::Invalid("a network change is waiting for confirmation".into()));
        }
        let previous = std::fs::read_to_string(self.data.join(SETTINGS_FILE)).ok();
        let mut doc = Object::new()
            .num("deadline_ms", now_ms + timeout_ms.unwrap_or(MAX_CONFIRM_MS))
            .bool("auto_confirm", timeout_ms.is_none());
        doc = match &previous {
            Some(p) => doc.str("previous", p),
            None => doc.raw("previous", "null"),
        };
        self.net_deadline = None;
        atomic::write(&self.data.join(PENDING_FILE), doc.finish().as_bytes(), 0o600)
            .map_err(|e| Error::Io(format!("storing the pending network change: {e}")))?;
        // IncusOS's settings cover the network only: the rest of the document stays.
        let network =
            Network { fields: network.fields.clone(), app: network.app.clone().or_else(|| self.stored_app()) };
        if let Err(e) = self.store_network(&network) {
            // A failed store changed nothing (store_rendered puts back what it wrote), so
            // there is nothing to roll back: only the pending mark goes.
            if let Err(r) = atomic::remove(&self.data.join(PENDING_FILE)) {
                crate::log::warn(format_args!("network: dropping the pending mark after a failed store: {r}"));
            }
            return Err(e);
        }
        let tx = self.net_applied.0.clone();
        let wake = self.plans.wake();
        self.apply_network(network.is_static(), move |result| {
            let _ = tx.send((result, respond));
            if let Some(wake) = wake {
                wake();
            }
        })
    }

    pub fn network_settings(&self) -> Option<String> {
        std::fs::read_to_string(self.data.join(SETTINGS_FILE)).ok()
    }

    /// `:confirm`: keeps the change.
    pub fn network_confirm(&mut self) -> Result<(), Error> {
        if self.network_pending().is_none() {
            return Err(Error::Invalid("no network change is waiting for confirmation".into()));
        }
        self.net_deadline = None;
        atomic::remove(&self.data.join(PENDING_FILE)).map_err(|e| Error::Io(format!("confirming: {e}")))
    }

    /// Puts the settings from before the pending change back (also after a failed apply).
    pub fn network_rollback(&mut self) -> Result<(), Error> {
        let Some(p) = self.network_pending() else { return Ok(()) };
        crate::log::warn(format_args!("network: rolling back the unconfirmed change"));
        match &p.previous {
            Some(text) => {
                let network = parse_network(text.as_bytes())?;
                self.store_network(&network)?;
            }
            None => {
                atomic::remove(&self.data.join(SETTINGS_FILE)).map_err(|e| Error::Io(e.to_string()))?;
            }
        }
        self.net_deadline = None;
        atomic::remove(&self.data.join(PENDING_FILE)).map_err(|e| Error::Io(format!("rollback: {e}")))
    }

    /// From the request loop: rolls back a change whose confirmation is overdue. Returns
    /// when to look again.
    pub fn network_tick(&mut self, now_ms: i64) -> Option<i64> {
        while let Ok((result, respond)) = self.net_applied.1.try_recv() {
            match result {
                Ok(()) => {
                    if self.network_pending().is_some_and(|p| p.auto_confirm) {
                        let _ = atomic::remove(&self.data.join(PENDING_FILE));
                        self.net_deadline = None;
                    }
                    respond(Ok(()));
                }
                Err(e) => {
                    let outcome = self.network_rollback().and_then(|()| self.reapply_stored());
                    let note = match outcome {
                        Ok(()) => "the previous settings are back".to_owned(),
                        Err(r) => format!("rolling back failed too: {}", r.message()),
                    };
                    respond(Err(format!("{e}; {note}")));
                }
            }
        }
        // The loop asks on every turn: the deadline is read from disk only after it changed.
        let deadline = match self.net_deadline {
            Some(known) => known,
            None => {
                let read = self.network_pending().map(|p| p.deadline_ms);
                self.net_deadline = Some(read);
                read
            }
        }?;
        if deadline > now_ms {
            return Some(deadline);
        }
        if let Err(e) = self.network_rollback().and_then(|()| self.reapply_stored()) {
            crate::log::warn(format_args!("network rollback: {}", e.message()));
        }
        None
    }

    /// Runs the apply hook for whatever settings are stored now (after a rollback).
    fn reapply_stored(&mut self) -> Result<(), Error> {
        let is_static = std::fs::read_to_string(self.data.join(SETTINGS_FILE))
            .ok()
            .and_then(|t| parse_network(t.as_bytes()).ok())
            .is_some_and(|n| n.is_static());
        self.apply_network(is_static, |r| {
            if let Err(e) = r {
                crate::log::warn(format_args!("network apply after rollback: {e}"));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_masks() {
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(prefix_to_netmask(24).as_deref(), Some("255.255.255.0"));
        assert_eq!(netmask_to_prefix("255.255.255.0"), Some(24));
        assert_eq!(netmask_to_prefix("255.0.255.0"), None);
    }

    #[test]
    fn incus_config_maps_to_settings_and_back() {
        let config: Value = json::from_str(
            r#"{"dns":{"hostname":"box.lan","nameservers":["10.0.0.53"]},"time":{"ntp_servers":["pool.ntp.org"]},
            "interfaces":[{"name":"eth0","hwaddr":"52:54:00:12:34:56","addresses":["10.0.0.2/24"],
            "routes":[{"to":"0.0.0.0/0","via":"10.0.0.1"}]}],"confirmation_timeout":"2m"}"#,
        )
        .unwrap();
        let (net, timeout) = from_incus(&config, "kept.host").unwrap();
        assert_eq!(timeout, Some(120_000));
        let fields: Vec<(&str, &str)> = net.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("interface", "eth0"),
                ("hostname", "box.lan"),
                ("ip_address", "10.0.0.2"),
                ("netmask", "255.255.255.0"),
                ("gateway", "10.0.0.1"),
                ("dns1", "10.0.0.53"),
                ("ntpserver", "pool.ntp.org")
            ]
        );
        let doc = Object::new().raw("network", &crate::engine::settings::object(&net.fields)).finish();
        let back = to_incus(Some(&doc), "52:54:00:12:34:56");
        assert!(
            back.contains(r#""addresses":["10.0.0.2/24"],"routes":[{"to":"0.0.0.0/0","via":"10.0.0.1"}]"#),
            "{back}"
        );
        for bad in [
            r#"{"dns":{"hostname":"b"},"interfaces":[]}"#,
            r#"{"dns":{"hostname":"box"},"interfaces":[{"name":"eth0","addresses":["10.0.0.2/24"]}]}"#,
            r#"{"dns":{"hostname":"box"},"interfaces":[{"name":"eth0"}],"confirmation_timeout":"soon"}"#,
            r#"{"dns":{"hostname":"box"},"interfaces":[{"name":"eth0"}],"bonds":[{"name":"b0"}]}"#,
            r#"{"dns":{"hostname":["box"]},"interfaces":[{"name":"eth0"}]}"#,
        ] {
            assert!(from_incus(&json::from_str(bad).unwrap(), "kept.host").is_err(), "{bad}");
        }
        // No hostname (upstream's default seed has no dns) or an empty one: the box keeps its own.
        for kept in [r#"{"interfaces":[{"name":"eth0"}]}"#, r#"{"dns":{"hostname":""},"interfaces":[{"name":"eth0"}]}"#]
        {
            let (net, _) = from_incus(&json::from_str(kept).unwrap(), "kept.host").unwrap();
            assert!(net.fields.iter().any(|(k, v)| *k == "hostname" && v == "kept.host"), "{kept}");
        }
    }
}
