//! `/1.0/system/network`: the network settings seen the IncusOS way (this module is their
//! IncusOS wire form: `from_incus` parses a config, `to_incus` renders one), changed with
//! the engine's commit-confirm (rolled back unless confirmed in time).

use super::*;
use crate::engine::netapply::prefix_of;
use crate::engine::netconfig::MAX_CONFIRM_MS;
use crate::engine::settings::{Network, network_from_section};
use crate::json::str_array;

fn prefix_to_netmask(prefix: u32) -> Option<String> {
    if prefix > 32 {
        return None;
    }
    let mask: u32 = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Some(std::net::Ipv4Addr::from(mask).to_string())
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

/// An IncusOS network `config` as steward's network settings, plus the confirmation timeout
/// if one was asked for; the settings pass the same field checks as a Jidoteki POST. This
/// board has one interface. Upstream's config may leave out the
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
        // Upstream reads it with Go's time.ParseDuration.
        Some(Value::String(s)) => match crate::time::parse_go_duration(s) {
            Some(ms) if ms > 0 && ms <= MAX_CONFIRM_MS => Some(ms),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid confirmation_timeout {s:?} (a Go duration: \"90s\", \"1.5m\"; more than 0, at most 24h)"
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
    let mut net = json::Object::new();
    let mut set = |k: &str, v: &str| {
        net.insert(k.to_owned(), Value::String(v.to_owned()));
    };
    set("interface", &name);
    let dns = object(c.get("dns"), "dns")?;
    if let Some(d) = dns {
        only(d, "dns", &["hostname", "domain", "nameservers", "search_domains"])?;
    }
    match dns.and_then(|d| d.get("hostname")) {
        Some(Value::String(h)) if !h.is_empty() => set("hostname", h),
        None | Some(Value::Null) | Some(Value::String(_)) => set("hostname", hostname),
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
                // A route the settings cannot hold is refused, not dropped.
                if !to {
                    return Err(Error::Invalid(
                        "this board takes the default route only (to 0.0.0.0/0 or ::/0 via the gateway)".into(),
                    ));
                }
                if let Some(Value::String(via)) = r.get("via") {
                    gateway = Some(via.clone());
                }
            }
        }
        let gateway = gateway.ok_or_else(|| {
            Error::Invalid("a static address needs a default route (to 0.0.0.0/0 via the gateway)".into())
        })?;
        set("ip_address", ip);
        set("netmask", &netmask);
        set("gateway", &gateway);
    }
    for (i, ns) in nameservers.iter().enumerate() {
        set(if i == 0 { "dns1" } else { "dns2" }, ns);
    }
    if let Some(t) = object(c.get("time"), "time")? {
        only(t, "time", &["ntp_servers", "timezone"])?;
        let ntp = strings(t.get("ntp_servers"), "time.ntp_servers")?;
        if ntp.len() > 1 {
            return Err(Error::Invalid("this board takes one NTP server".into()));
        }
        if let Some(server) = ntp.first() {
            set("ntpserver", server);
        }
    }
    let mut network = network_from_section(&net, None)?;
    network.system.domain = match dns.and_then(|d| d.get("domain")) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) if d.is_empty() || valid_domain(d) => d.clone(),
        Some(Value::String(d)) => return Err(Error::Invalid(format!("dns.domain {d:?} is not a domain name"))),
        Some(_) => return Err(Error::Invalid("dns.domain must be a string".into())),
    };
    network.system.roles = strings(iface.get("roles"), "roles")?;
    network.system.mtu = match iface.get("mtu") {
        None | Some(Value::Null) | Some(Value::Number(json::Number::U64(0))) => None,
        Some(Value::Number(json::Number::U64(n))) if (68..=65535).contains(n) => Some(*n as u32),
        Some(_) => return Err(Error::Invalid("mtu: a number from 68 to 65535 (0 or absent: the link's own)".into())),
    };
    if let Some(r) = network.system.roles.iter().find(|r| !crate::board::valid_id(r)) {
        return Err(Error::Invalid(format!("role {r:?}: letters, digits, - or _ (management, cluster, …)")));
    }
    Ok((network, timeout))
}

/// A DNS domain: dot-separated labels of letters, digits and inner hyphens.
fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The stored settings as an IncusOS network `config`.
pub fn to_incus(settings: Option<&Network>, hwaddr: &str) -> String {
    let get = |k: &str| settings.and_then(|n| n.get(k));
    let mut addresses = Vec::new();
    let mut routes = String::from("[]");
    match (get("ip_address"), get("netmask").and_then(prefix_of), get("gateway")) {
        (Some(ip), Some(prefix), Some(gw)) => {
            addresses.push(format!("{ip}/{prefix}"));
            let to = if ip.contains(':') { "::/0" } else { "0.0.0.0/0" };
            routes = format!("[{}]", Object::new().str("to", to).str("via", gw).finish());
        }
        _ => addresses.push("dhcp4".to_owned()),
    }
    let nameservers: Vec<&str> = [get("dns1"), get("dns2")].into_iter().flatten().collect();
    let system = settings.map(|n| n.system.clone()).unwrap_or_default();
    let mut iface = Object::new()
        .str("name", get("interface").unwrap_or("eth0"))
        .str("hwaddr", hwaddr)
        .raw("addresses", &str_array(addresses.iter().map(String::as_str)))
        .raw("routes", &routes);
    // Upstream omits empty roles (omitempty) and always sends the domain.
    if let Some(mtu) = system.mtu {
        iface = iface.num("mtu", mtu);
    }
    if !system.roles.is_empty() {
        iface = iface.raw("roles", &str_array(system.roles.iter().map(String::as_str)));
    }
    let iface = iface.finish();
    Object::new()
        .raw(
            "dns",
            &Object::new()
                .str("domain", &system.domain)
                .str("hostname", get("hostname").unwrap_or(""))
                .raw("nameservers", &str_array(nameservers))
                .finish(),
        )
        .raw("time", &Object::new().raw("ntp_servers", &str_array(get("ntpserver"))).str("timezone", "UTC").finish())
        .raw("interfaces", &format!("[{iface}]"))
        .finish()
}

fn iface_file(api: &Api, iface: &str, file: &str) -> Option<String> {
    if iface.is_empty() || iface.contains('/') || iface.starts_with('.') {
        return None;
    }
    let bytes = api.engine.root.read_limited(&format!("/sys/class/net/{iface}/{file}"), 4096).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// The interface's MAC: the kernel's on the netlink backend, else sysfs below the root.
fn hwaddr(api: &Api, iface: &str) -> String {
    if api.engine.uses_netlink() {
        return crate::system::netstate::seen(iface).map(|s| s.mac).unwrap_or_default();
    }
    iface_file(api, iface, "address").unwrap_or_default()
}

/// IncusOS's `stats` object.
fn stats_json([rx, rx_errors, tx, tx_errors]: [u64; 4]) -> String {
    Object::new()
        .num("rx_bytes", rx)
        .num("rx_errors", rx_errors)
        .num("tx_bytes", tx)
        .num("tx_errors", tx_errors)
        .finish()
}

/// The interface's state from the kernel itself (netlink backend): link, carrier, MTU, MAC,
/// every address and the routes through it.
fn kernel_state(seen: Option<&crate::system::netstate::Seen>, roles: &[String]) -> String {
    let Some(seen) = seen else {
        return Object::new().str("state", "off").raw("stats", &stats_json([0; 4])).finish();
    };
    let state = match (seen.up, seen.carrier) {
        (true, true) => "routable",
        (true, false) => "no-carrier",
        _ => "off",
    };
    let mut st = Object::new().str("state", state).str("type", "ethernet").str("hwaddr", &seen.mac);
    if !seen.addresses.is_empty() {
        st = st.raw("addresses", &str_array(seen.addresses.iter().map(String::as_str)));
    }
    if !seen.routes.is_empty() {
        let routes: Vec<String> =
            seen.routes.iter().map(|(to, via)| Object::new().str("to", to).str("via", via).finish()).collect();
        st = st.raw("routes", &format!("[{}]", routes.join(",")));
    }
    if !roles.is_empty() {
        st = st.raw("roles", &str_array(roles.iter().map(String::as_str)));
    }
    st.num("mtu", seen.mtu).raw("stats", &stats_json(seen.stats)).finish()
}

/// The interface's state from sysfs and procfs below the root (the other backends).
fn sysfs_state(api: &Api, iface: &str, hwaddr: &str, roles: &[String]) -> String {
    let num = |f: &str| iface_file(api, iface, f).and_then(|v| v.parse::<i64>().ok());
    let operstate = iface_file(api, iface, "operstate").unwrap_or_else(|| "unknown".into());
    let mut st = Object::new()
        .str("state", if operstate == "up" { "routable" } else { "off" })
        .str("type", "ethernet")
        .str("hwaddr", hwaddr);
    let addresses = api.engine.interface_addresses(iface);
    if !addresses.is_empty() {
        st = st.raw("addresses", &str_array(addresses.iter().map(String::as_str)));
    }
    if !roles.is_empty() {
        st = st.raw("roles", &str_array(roles.iter().map(String::as_str)));
    }
    if let Some(mtu) = num("mtu") {
        st = st.num("mtu", mtu);
    }
    if let Some(speed) = num("speed").filter(|s| *s > 0) {
        st = st.str("speed", &speed.to_string());
    }
    let stat = |f: &str| num(&format!("statistics/{f}")).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    st.raw("stats", &stats_json([stat("rx_bytes"), stat("rx_errors"), stat("tx_bytes"), stat("tx_errors")])).finish()
}

fn configured_iface(settings: Option<&Network>) -> String {
    settings.and_then(|n| n.get("interface")).unwrap_or("eth0").to_owned()
}

pub fn network(api: &mut Api, _call: &mut Call) -> Handled {
    let settings = api.engine.network_settings();
    let iface = configured_iface(settings.as_ref());
    let roles = settings.as_ref().map(|n| n.system.roles.clone()).unwrap_or_default();
    // The kernel is read once: its MAC goes in the config, the rest in the state.
    let (hwaddr, iface_state) = if api.engine.uses_netlink() {
        let seen = crate::system::netstate::seen(&iface).ok();
        (seen.as_ref().map(|s| s.mac.clone()).unwrap_or_default(), kernel_state(seen.as_ref(), &roles))
    } else {
        let hwaddr = iface_file(api, &iface, "address").unwrap_or_default();
        let st = sysfs_state(api, &iface, &hwaddr, &roles);
        (hwaddr, st)
    };
    let config = to_incus(settings.as_ref(), &hwaddr);
    let pending = api.engine.network_pending();
    let mut state = Object::new()
        .raw("interfaces", &Object::new().raw(&iface, &iface_state).finish())
        .bool("configuration_in_process", pending.as_ref().is_some_and(|p| !p.auto_confirm));
    if let Some(p) = pending.filter(|p| !p.auto_confirm) {
        state = state.str("confirmation_deadline", &crate::time::rfc3339_ms(p.deadline_ms));
    }
    Ok(resource(&config, &state.finish()))
}

pub fn put_network(api: &mut Api, call: &mut Call) -> Handled {
    let settings = api.engine.network_settings();
    let iface = configured_iface(settings.as_ref());
    let current = to_incus(settings.as_ref(), &hwaddr(api, &iface));
    check_if_match(call, &current, "configuration")?;
    let config = Value::Object(put_config(call)?);
    let hostname = api.engine.current_hostname();
    let (network, timeout) = from_incus(&config, &hostname)?;
    let Some(waker) = api.waker.clone() else { return Ok(error(503, "unavailable").into()) };
    let (tx, rx) = std::sync::mpsc::channel();
    let respond = Box::new(move |result: Result<(), String>| {
        let response = match result {
            Ok(()) => sync("{}"),
            Err(e) => error(500, &e),
        };
        let _ = tx.send(response);
        waker.wake();
    });
    api.engine.network_put(&network, timeout, crate::time::unix_millis(), respond)?;
    api.engine.audit.record(&call.who(), "network.update", if timeout.is_some() { "confirm-pending" } else { "" });
    Ok(Reply {
        response: error(500, "the network change ended without an answer"),
        not_before: None,
        pending: Some(rx),
    })
}

pub fn network_confirm(api: &mut Api, call: &mut Call) -> Handled {
    api.engine.network_confirm()?;
    api.engine.audit.record(&call.who(), "network.confirm", "");
    Ok(sync("{}").into())
}

/// `:flush-dns`: steward boards run no caching resolver (names resolve through the
/// configured nameservers each time), so there is nothing to flush; done.
pub fn flush_dns(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(sync("{}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_masks() {
        assert_eq!(prefix_to_netmask(24).as_deref(), Some("255.255.255.0"));
        assert_eq!(prefix_of("255.255.255.0"), Some(24));
        assert_eq!(prefix_of("255.0.255.0"), None);
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
        let back = to_incus(Some(&net), "52:54:00:12:34:56");
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
