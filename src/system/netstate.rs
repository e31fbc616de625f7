//! The kernel's side of the network settings: each interface's link state, MTU, global
//! addresses and the routes through it, and the hostname. Taken before a change, so that a
//! change failing half-way, or never confirmed, is undone to exactly what was there, not to
//! what steward last wrote. (The files beside it, resolver and NTP, are the engine's.)

use std::io;
use std::net::IpAddr;

use miniserde::json::{self, Value};

use super::netlink::{Address, Netlink, RTPROT_KERNEL, Route, family_of};
use crate::json::Object;

/// What the settings ask of the kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub iface: String,
    /// A static address; None: addressed by DHCP, so steward's own are taken off.
    pub address: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub mtu: Option<u32>,
}

impl Wanted {
    /// The address families the settings manage: IPv4 always (static or DHCPv4), IPv6 only
    /// with a static IPv6 address. Addresses of another family (SLAAC's, say) are not the
    /// settings' to take off.
    pub fn families(&self) -> Vec<u8> {
        let mut families = vec![family_of(&IpAddr::from([0, 0, 0, 0]))];
        if let Some((ip, _)) = self.address.filter(|(ip, _)| ip.is_ipv6()) {
            families.push(family_of(&ip));
        }
        families
    }
}

#[derive(Debug, Clone, PartialEq)]
struct LinkState {
    name: String,
    up: bool,
    mtu: u32,
    addresses: Vec<(IpAddr, u8)>,
    routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    links: Vec<LinkState>,
    hostname: String,
    /// The address families taken, and put back.
    families: Vec<u8>,
}

/// The addresses and routes the settings own: global ones (link-local addresses and the
/// kernel's prefix routes come and go with the link and its addresses).
fn owned_addresses(nl: &mut Netlink, index: u32, families: &[u8]) -> io::Result<Vec<Address>> {
    Ok(nl
        .addresses()?
        .into_iter()
        .filter(|a| a.index == index && a.scope == 0 && families.contains(&family_of(&a.ip)))
        .collect())
}

fn owned_routes(nl: &mut Netlink, index: u32, families: &[u8]) -> io::Result<Vec<Route>> {
    Ok(nl
        .routes()?
        .into_iter()
        .filter(|r| r.oif == Some(index) && r.protocol != RTPROT_KERNEL && families.contains(&r.family))
        .collect())
}

/// The state of `ifaces` (those that exist) in `families`, and the hostname.
pub fn snapshot(ifaces: &[&str], families: &[u8]) -> io::Result<Snapshot> {
    let mut nl = Netlink::open()?;
    let mut links = Vec::new();
    for link in nl.links()? {
        if !ifaces.contains(&link.name.as_str()) || links.iter().any(|l: &LinkState| l.name == link.name) {
            continue;
        }
        let addresses = owned_addresses(&mut nl, link.index, families)?.iter().map(|a| (a.ip, a.prefix)).collect();
        let routes = owned_routes(&mut nl, link.index, families)?;
        links.push(LinkState { name: link.name, up: link.up, mtu: link.mtu, addresses, routes });
    }
    let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
    Ok(Snapshot { links, hostname, families: families.to_vec() })
}

/// Makes the kernel match `w`: the link up with its MTU, the static address the only global
/// one, the default route through the gateway. Stops at the first refusal (the caller
/// restores the snapshot it took).
pub fn apply(w: &Wanted) -> io::Result<()> {
    let mut nl = Netlink::open()?;
    let link = nl.link(&w.iface)?;
    nl.set_link(link.index, true, w.mtu).map_err(|e| step("bringing the link up", e))?;
    let wanted: Vec<(IpAddr, u8)> = w.address.into_iter().collect();
    let routes: Vec<Route> = match (w.address, w.gateway) {
        (Some(_), Some(gw)) => vec![Route::default_via(gw, link.index)],
        _ => Vec::new(),
    };
    converge(&mut nl, link.index, &w.families(), &wanted, &routes)
}

/// Puts back everything `s` holds; carries on past a failure so as much as can be is back,
/// and reports the first.
pub fn restore(s: &Snapshot) -> io::Result<()> {
    let mut first: Option<io::Error> = None;
    let mut note = |r: io::Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    match Netlink::open() {
        Ok(mut nl) => {
            for l in &s.links {
                match nl.link(&l.name) {
                    Ok(link) => {
                        note(nl.set_link(link.index, l.up, Some(l.mtu)));
                        note(converge(&mut nl, link.index, &s.families, &l.addresses, &l.routes));
                    }
                    Err(e) => note(Err(e)),
                }
            }
        }
        Err(e) => note(Err(e)),
    }
    // Without CAP_SYS_ADMIN the hostname was never changed either (engine::netapply).
    if !s.hostname.is_empty() {
        match rustix::system::sethostname(s.hostname.as_bytes()) {
            Ok(()) | Err(rustix::io::Errno::PERM) => {}
            Err(e) => note(Err(e.into())),
        }
    }
    first.map_or(Ok(()), Err)
}

/// Takes off the addresses and routes not wanted, then adds those missing: addresses first,
/// since a gateway is reachable only through one.
fn converge(
    nl: &mut Netlink,
    index: u32,
    families: &[u8],
    addresses: &[(IpAddr, u8)],
    routes: &[Route],
) -> io::Result<()> {
    for a in owned_addresses(nl, index, families)? {
        if !addresses.contains(&(a.ip, a.prefix)) {
            nl.delete_address(&a).map_err(|e| step(&format!("removing {}/{}", a.ip, a.prefix), e))?;
        }
    }
    let have = owned_addresses(nl, index, families)?;
    for (ip, prefix) in addresses {
        if !have.iter().any(|a| a.ip == *ip && a.prefix == *prefix) {
            let a = Address { index, ip: *ip, prefix: *prefix, scope: 0 };
            nl.add_address(&a).map_err(|e| step(&format!("adding {ip}/{prefix}"), e))?;
        }
    }
    let same = |a: &Route, b: &Route| a.dst == b.dst && a.gateway == b.gateway && a.metric == b.metric;
    for r in owned_routes(nl, index, families)? {
        if !routes.iter().any(|w| same(w, &r)) {
            nl.delete_route(&r).map_err(|e| step("removing a route", e))?;
        }
    }
    let have = owned_routes(nl, index, families)?;
    for r in routes {
        if !have.iter().any(|h| same(h, r)) {
            let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            nl.add_route(r).map_err(|e| step(&format!("adding the route{via}"), e))?;
        }
    }
    Ok(())
}

fn step(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn ip_prefix(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok()?))
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        let links: Vec<String> = self
            .links
            .iter()
            .map(|l| {
                let addresses: Vec<String> = l.addresses.iter().map(|(ip, p)| format!("{ip}/{p}")).collect();
                let routes: Vec<String> = l
                    .routes
                    .iter()
                    .map(|r| {
                        let mut o =
                            Object::new().num("family", r.family).num("protocol", r.protocol).num("table", r.table);
                        if let Some((dst, len)) = r.dst {
                            o = o.str("dst", &format!("{dst}/{len}"));
                        }
                        if let Some(gw) = r.gateway {
                            o = o.str("via", &gw.to_string());
                        }
                        if let Some(m) = r.metric {
                            o = o.num("metric", m);
                        }
                        o.finish()
                    })
                    .collect();
                Object::new()
                    .str("name", &l.name)
                    .bool("up", l.up)
                    .num("mtu", l.mtu)
                    .raw("addresses", &crate::json::str_array(addresses.iter().map(String::as_str)))
                    .raw("routes", &format!("[{}]", routes.join(",")))
                    .finish()
            })
            .collect();
        let families: Vec<String> = self.families.iter().map(u8::to_string).collect();
        Object::new()
            .raw("links", &format!("[{}]", links.join(",")))
            .str("hostname", &self.hostname)
            .raw("families", &format!("[{}]", families.join(",")))
            .finish()
    }

    pub fn from_json(v: &Value) -> Option<Snapshot> {
        let Value::Object(m) = v else { return None };
        let str_of = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let num_of = |v: Option<&Value>| match v {
            Some(Value::Number(json::Number::U64(n))) => Some(*n),
            _ => None,
        };
        let mut links = Vec::new();
        let Some(Value::Array(items)) = m.get("links") else { return None };
        for item in items {
            let Value::Object(l) = item else { return None };
            let mut routes = Vec::new();
            if let Some(Value::Array(rs)) = l.get("routes") {
                for r in rs {
                    let Value::Object(r) = r else { return None };
                    routes.push(Route {
                        dst: str_of(r.get("dst")).and_then(|d| ip_prefix(&d)),
                        gateway: str_of(r.get("via")).and_then(|g| g.parse().ok()),
                        oif: None,
                        table: u32::try_from(num_of(r.get("table"))?).ok()?,
                        protocol: u8::try_from(num_of(r.get("protocol"))?).ok()?,
                        metric: num_of(r.get("metric")).and_then(|m| u32::try_from(m).ok()),
                        family: u8::try_from(num_of(r.get("family"))?).ok()?,
                    });
                }
            }
            let addresses = crate::json::strings_in(l.get("addresses")).iter().filter_map(|a| ip_prefix(a)).collect();
            links.push(LinkState {
                name: str_of(l.get("name"))?,
                up: matches!(l.get("up"), Some(Value::Bool(true))),
                mtu: u32::try_from(num_of(l.get("mtu"))?).ok()?,
                addresses,
                routes,
            });
        }
        let families = match m.get("families") {
            Some(Value::Array(fs)) => fs.iter().filter_map(|f| u8::try_from(num_of(Some(f))?).ok()).collect(),
            _ => return None,
        };
        Some(Snapshot { links, hostname: str_of(m.get("hostname")).unwrap_or_default(), families })
    }
}

/// What `GET /1.0/system/network` shows of an interface: the kernel's view.
pub struct Seen {
    pub mac: String,
    pub mtu: u32,
    pub up: bool,
    pub carrier: bool,
    /// rx_bytes, rx_errors, tx_bytes, tx_errors.
    pub stats: [u64; 4],
    /// "10.0.0.2/24", global and link-local alike, IPv4 first.
    pub addresses: Vec<String>,
    /// (to, via) of the routes through it, "default" spelled as upstream does (0.0.0.0/0).
    pub routes: Vec<(String, String)>,
}

pub fn seen(iface: &str) -> io::Result<Seen> {
    let mut nl = Netlink::open()?;
    let link = nl.link(iface)?;
    let mut addrs: Vec<Address> = nl.addresses()?.into_iter().filter(|a| a.index == link.index).collect();
    addrs.sort_by_key(|a| (a.ip.is_ipv6(), a.scope));
    let routes = nl
        .routes()?
        .into_iter()
        .filter(|r| r.oif == Some(link.index))
        .filter_map(|r| {
            let to = match r.dst {
                Some((ip, len)) => format!("{ip}/{len}"),
                None if r.family == super::netlink::family_of(&IpAddr::from([0, 0, 0, 0])) => "0.0.0.0/0".into(),
                None => "::/0".into(),
            };
            // Upstream's state lists routes with a next hop; on-link prefix routes have none.
            Some((to, r.gateway?.to_string()))
        })
        .collect();
    Ok(Seen {
        mac: link.mac,
        mtu: link.mtu,
        up: link.up,
        carrier: link.carrier,
        stats: link.stats,
        addresses: addrs.iter().map(|a| format!("{}/{}", a.ip, a.prefix)).collect(),
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_survives_its_json() {
        let s = Snapshot {
            links: vec![LinkState {
                name: "eth0".into(),
                up: true,
                mtu: 1500,
                addresses: vec![("10.0.0.2".parse().unwrap(), 24), ("fd00::2".parse().unwrap(), 64)],
                routes: vec![
                    Route::default_via("10.0.0.1".parse().unwrap(), 0),
                    Route {
                        dst: Some(("192.168.9.0".parse().unwrap(), 24)),
                        gateway: Some("10.0.0.9".parse().unwrap()),
                        oif: None,
                        table: 254,
                        protocol: 16,
                        metric: Some(100),
                        family: 2,
                    },
                ],
            }],
            hostname: "box".into(),
            families: vec![2, 10],
        };
        let text = s.to_json();
        let back = Snapshot::from_json(&json::from_str::<Value>(&text).unwrap()).unwrap();
        let mut expected = s.clone();
        expected.links[0].routes[0].oif = None; // the link's index is found again by name
        assert_eq!(back, expected);
        assert!(Snapshot::from_json(&json::from_str::<Value>(r#"{"links":[{"name":"x"}]}"#).unwrap()).is_none());
    }
}
