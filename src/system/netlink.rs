//! rtnetlink, the kernel's own interface to links, addresses and routes (what `ip` speaks),
//! over a socket of ours: the few messages an appliance's network settings need, marshalled
//! by hand (rtnetlink(7)). Every answer is bounded and each attribute checked against the
//! message it sits in before it is read.

use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x10000;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_STATS64: u16 = 23;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
pub const RT_TABLE_MAIN: u32 = 254;
/// Routes the kernel made itself (an address's prefix route): never ours to add or remove.
pub const RTPROT_KERNEL: u8 = 2;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// One receive; the kernel sizes dump chunks to a page or so, well below it.
const RECV_BUFFER: usize = 32 * 1024;
/// A dump larger than this is not an appliance's (and is not read into memory).
const MAX_DUMP: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Has carrier (IFF_LOWER_UP).
    pub carrier: bool,
    pub mtu: u32,
    /// "aa:bb:cc:dd:ee:ff", empty for links without one.
    pub mac: String,
    /// rx_bytes, rx_errors, tx_bytes, tx_errors (IFLA_STATS64).
    pub stats: [u64; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    /// RT_SCOPE_*: 0 global, 253 link, 254 host.
    pub scope: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// None: the default route.
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    pub protocol: u8,
    pub metric: Option<u32>,
    /// AF_INET or AF_INET6, which a default route cannot say by itself.
    pub family: u8,
}

impl Route {
    pub fn default_via(gateway: IpAddr, oif: u32) -> Route {
        Route {
            dst: None,
            gateway: Some(gateway),
            oif: Some(oif),
            table: RT_TABLE_MAIN,
            protocol: RTPROT_STATIC,
            metric: None,
            family: family_of(&gateway),
        }
    }
}

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A NETLINK_ROUTE socket in this process's network namespace.
    pub fn open() -> io::Result<Netlink> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, netlink::SocketAddrNetlink};
        let fd = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        // A kernel that stops answering is not waited on for ever.
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(std::time::Duration::from_secs(2)),
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends one request and returns the payloads of the messages answering it (a dump's
    /// entries, nothing for an acknowledged change); a kernel error is returned as one.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        rustix::net::send(&self.fd, &msg, rustix::net::SendFlags::empty())?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        let mut total = 0;
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let (n, _) = rustix::net::recv(&self.fd, &mut buf[..], rustix::net::RecvFlags::empty())?;
            total += n;
            if total > MAX_DUMP {
                return Err(bad("an answer larger than any appliance's"));
            }
            let mut rest = &buf[..n];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if len < 16 || len > rest.len() {
                    return Err(bad("a message of impossible length"));
                }
                let payload = &rest[16..len];
                rest = &rest[align(len).min(rest.len())..];
                if seq != self.seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload.get(..4).map(|b| i32::from_ne_bytes(b.try_into().unwrap())).unwrap_or(-1);
                        if code == 0 && !dump {
                            return Ok(out);
                        }
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                    }
                    _ => out.push(payload.to_vec()),
                }
            }
            if n == 0 {
                return Err(bad("the kernel closed the socket"));
            }
        }
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let mut links = Vec::new();
        for m in self.request(RTM_GETLINK, NLM_F_DUMP, &[0u8; 16])? {
            let Some(head) = m.get(..16) else { continue };
            let index = u32::from_ne_bytes(head[4..8].try_into().unwrap());
            let flags = u32::from_ne_bytes(head[8..12].try_into().unwrap());
            let mut link = Link {
                index,
                name: String::new(),
                up: flags & IFF_UP != 0,
                carrier: flags & IFF_LOWER_UP != 0,
                mtu: 0,
                mac: String::new(),
                stats: [0; 4],
            };
            for (kind, value) in attributes(&m[16..]) {
                match kind {
                    IFLA_IFNAME => {
                        link.name = String::from_utf8_lossy(value.split(|b| *b == 0).next().unwrap_or(b"")).into_owned()
                    }
                    IFLA_MTU if value.len() == 4 => link.mtu = u32::from_ne_bytes(value.try_into().unwrap()),
                    // rtnl_link_stats64 starts rx_packets, tx_packets, rx_bytes, tx_bytes,
                    // rx_errors, tx_errors.
                    IFLA_STATS64 if value.len() >= 48 => {
                        let at = |i: usize| u64::from_ne_bytes(value[i * 8..i * 8 + 8].try_into().unwrap());
                        link.stats = [at(2), at(4), at(3), at(5)];
                    }
                    IFLA_ADDRESS if value.len() == 6 => {
                        link.mac = value.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
                    }
                    _ => {}
                }
            }
            links.push(link);
        }
        Ok(links)
    }

    pub fn link(&mut self, name: &str) -> io::Result<Link> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
    }

    pub fn addresses(&mut self) -> io::Result<Vec<Address>> {
        let mut out = Vec::new();
        for m in self.request(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8])? {
            let Some(head) = m.get(..8) else { continue };
            let (family, prefix, scope) = (head[0], head[1], head[3]);
            let index = u32::from_ne_bytes(head[4..8].try_into().unwrap());
            // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on point-to-point
            // links and the same address elsewhere.
            let mut local = None;
            let mut address = None;
            for (kind, value) in attributes(&m[8..]) {
                match kind {
                    IFA_LOCAL => local = ip_of(family, value),
                    IFA_ADDRESS => address = ip_of(family, value),
                    _ => {}
                }
            }
            if let Some(ip) = local.or(address) {
                out.push(Address { index, ip, prefix, scope });
            }
        }
        Ok(out)
    }

    /// The main table's unicast routes.
    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let mut out = Vec::new();
        for m in self.request(RTM_GETROUTE, NLM_F_DUMP, &[0u8; 12])? {
            let Some(head) = m.get(..12) else { continue };
            let (family, dst_len, table, protocol, kind) = (head[0], head[1], head[4], head[5], head[7]);
            if kind != RTN_UNICAST {
                continue;
            }
            let mut r =
                Route { dst: None, gateway: None, oif: None, table: u32::from(table), protocol, metric: None, family };
            for (attr, value) in attributes(&m[12..]) {
                match attr {
                    RTA_DST => r.dst = ip_of(family, value).map(|ip| (ip, dst_len)),
                    RTA_GATEWAY => r.gateway = ip_of(family, value),
                    RTA_OIF if value.len() == 4 => r.oif = Some(u32::from_ne_bytes(value.try_into().unwrap())),
                    RTA_PRIORITY if value.len() == 4 => r.metric = Some(u32::from_ne_bytes(value.try_into().unwrap())),
                    RTA_TABLE if value.len() == 4 => r.table = u32::from_ne_bytes(value.try_into().unwrap()),
                    _ => {}
                }
            }
            if r.table == RT_TABLE_MAIN {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Sets a link up or down, and its MTU when given.
    pub fn set_link(&mut self, index: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(&[0, 0, 0, 0]); // family, pad, type
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend_from_slice(&(if up { IFF_UP } else { 0 }).to_ne_bytes());
        body.extend_from_slice(&IFF_UP.to_ne_bytes()); // change: only IFF_UP
        if let Some(mtu) = mtu {
            attribute(&mut body, IFLA_MTU, &mtu.to_ne_bytes());
        }
        self.request(RTM_NEWLINK, 0, &body).map(drop)
    }

    pub fn add_address(&mut self, a: &Address) -> io::Result<()> {
        self.address(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, a)
    }

    pub fn delete_address(&mut self, a: &Address) -> io::Result<()> {
        self.address(RTM_DELADDR, 0, a)
    }

    fn address(&mut self, kind: u16, flags: u16, a: &Address) -> io::Result<()> {
        let mut body = vec![family_of(&a.ip), a.prefix, 0, a.scope];
        body.extend_from_slice(&a.index.to_ne_bytes());
        let bytes = ip_bytes(&a.ip);
        attribute(&mut body, IFA_LOCAL, &bytes);
        attribute(&mut body, IFA_ADDRESS, &bytes);
        self.request(kind, flags, &body).map(drop)
    }

    /// Adds a route, replacing one to the same destination (so a new gateway takes over).
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        self.route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, r)
    }

    pub fn delete_route(&mut self, r: &Route) -> io::Result<()> {
        self.route(RTM_DELROUTE, 0, r)
    }

    fn route(&mut self, kind: u16, flags: u16, r: &Route) -> io::Result<()> {
        let table = u8::try_from(r.table).unwrap_or(0);
        let dst_len = r.dst.map_or(0, |(_, len)| len);
        let mut body = vec![r.family, dst_len, 0, 0, table, r.protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST];
        body.extend_from_slice(&0u32.to_ne_bytes());
        if let Some((dst, _)) = r.dst {
            attribute(&mut body, RTA_DST, &ip_bytes(&dst));
        }
        if let Some(gw) = r.gateway {
            attribute(&mut body, RTA_GATEWAY, &ip_bytes(&gw));
        }
        if let Some(oif) = r.oif {
            attribute(&mut body, RTA_OIF, &oif.to_ne_bytes());
        }
        if let Some(metric) = r.metric {
            attribute(&mut body, RTA_PRIORITY, &metric.to_ne_bytes());
        }
        if table == 0 {
            attribute(&mut body, RTA_TABLE, &r.table.to_ne_bytes());
        }
        self.request(kind, flags, &body).map(drop)
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn attribute(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
    body.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
    body.extend_from_slice(&kind.to_ne_bytes());
    body.extend_from_slice(value);
    body.resize(align(body.len()), 0);
}

/// The (type, value) attributes in `bytes`; a malformed one ends the list.
fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff; // without NLA_F_NESTED/NET_BYTEORDER
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[align(len).min(bytes.len())..];
    }
    out
}

fn ip_of(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        AF_INET6 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

pub fn family_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_stop_at_a_malformed_one() {
        let mut body = Vec::new();
        attribute(&mut body, IFLA_MTU, &1500u32.to_ne_bytes());
        attribute(&mut body, IFLA_IFNAME, b"eth0\0");
        assert_eq!(attributes(&body), vec![(IFLA_MTU, &1500u32.to_ne_bytes()[..]), (IFLA_IFNAME, &b"eth0\0"[..])]);
        // A length past the end, then one shorter than its own header.
        let mut cut = body.clone();
        cut[8] = 0xff;
        assert_eq!(attributes(&cut).len(), 1);
        assert!(attributes(&[2, 0, 1, 0]).is_empty());
    }

    /// Every namespace has a loopback link with 127.0.0.1: read it back from the kernel.
    #[test]
    fn the_kernel_answers_with_its_loopback() {
        let Ok(mut nl) = Netlink::open() else { return };
        let lo = nl.link("lo").unwrap();
        assert_eq!(lo.mtu, 65536);
        let addrs = nl.addresses().unwrap();
        if lo.up {
            assert!(addrs.iter().any(|a| a.index == lo.index && a.ip == IpAddr::from([127, 0, 0, 1]) && a.prefix == 8));
        }
        nl.routes().unwrap();
        assert_eq!(nl.link("no-such-link0").unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
