//! The network settings as the files other network managers read: systemd-networkd's
//! `.network` unit and ifupdown's `/etc/network/interfaces` (`network.backend` `networkd`
//! or `ifupdown`; the board's `apply` then reloads them). Every value has passed the
//! settings' character rules, so none can break a line or a section.

use super::netapply::prefix_of;
use super::settings::Network;

const HEADER: &str = "# written by steward from the network settings: changes here are replaced\n";

fn address(n: &Network) -> Option<(String, u8)> {
    let ip = n.get("ip_address")?;
    Some((ip.to_owned(), prefix_of(n.get("netmask")?)?))
}

fn nameservers(n: &Network) -> Vec<&str> {
    [n.get("dns1"), n.get("dns2")].into_iter().flatten().collect()
}

/// A `.network` unit matching the interface by name.
pub fn networkd(n: &Network) -> String {
    let mut out = format!("{HEADER}[Match]\nName={}\n\n[Network]\n", n.get("interface").unwrap_or("eth0"));
    match address(n) {
        Some((ip, prefix)) => {
            out.push_str(&format!("Address={ip}/{prefix}\n"));
            if let Some(gw) = n.get("gateway") {
                out.push_str(&format!("Gateway={gw}\n"));
            }
        }
        None => out.push_str("DHCP=ipv4\n"),
    }
    for ns in nameservers(n) {
        out.push_str(&format!("DNS={ns}\n"));
    }
    if !n.system.domain.is_empty() {
        out.push_str(&format!("Domains={}\n", n.system.domain));
    }
    if let Some(ntp) = n.get("ntpserver") {
        out.push_str(&format!("NTP={ntp}\n"));
    }
    if let Some(mtu) = n.system.mtu {
        out.push_str(&format!("\n[Link]\nMTUBytes={mtu}\n"));
    }
    out
}

/// `/etc/network/interfaces` with the loopback and the one interface, brought up at boot.
pub fn ifupdown(n: &Network) -> String {
    let iface = n.get("interface").unwrap_or("eth0");
    let mut out = format!("{HEADER}auto lo\niface lo inet loopback\n\nauto {iface}\n");
    match address(n) {
        Some((ip, prefix)) => {
            let family = if ip.contains(':') { "inet6" } else { "inet" };
            out.push_str(&format!("iface {iface} {family} static\n    address {ip}/{prefix}\n"));
            if let Some(gw) = n.get("gateway") {
                out.push_str(&format!("    gateway {gw}\n"));
            }
        }
        None => {
            out.push_str(&format!("iface {iface} inet dhcp\n"));
            if let Some(h) = n.get("hostname") {
                out.push_str(&format!("    hostname {h}\n"));
            }
        }
    }
    // Read by resolvconf's ifupdown hook where it is installed.
    let dns = nameservers(n);
    if !dns.is_empty() {
        out.push_str(&format!("    dns-nameservers {}\n", dns.join(" ")));
    }
    if !n.system.domain.is_empty() {
        out.push_str(&format!("    dns-search {}\n", n.system.domain));
    }
    if let Some(mtu) = n.system.mtu {
        out.push_str(&format!("    mtu {mtu}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fields: &[(&'static str, &str)], domain: &str) -> Network {
        let mut n = Network {
            fields: fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            app: None,
            system: Default::default(),
        };
        n.system.domain = domain.to_owned();
        n
    }

    #[test]
    fn static_and_dhcp_render_as_each_manager_reads_them() {
        let fixed = settings(
            &[
                ("interface", "eth0"),
                ("hostname", "box.lan"),
                ("ip_address", "10.0.0.2"),
                ("netmask", "255.255.255.0"),
                ("gateway", "10.0.0.1"),
                ("dns1", "10.0.0.53"),
                ("dns2", "10.0.0.54"),
                ("ntpserver", "pool.ntp.org"),
            ],
            "example.com",
        );
        assert_eq!(
            networkd(&fixed),
            format!(
                "{HEADER}[Match]\nName=eth0\n\n[Network]\nAddress=10.0.0.2/24\nGateway=10.0.0.1\nDNS=10.0.0.53\nDNS=10.0.0.54\nDomains=example.com\nNTP=pool.ntp.org\n"
            )
        );
        assert_eq!(
            ifupdown(&fixed),
            format!(
                "{HEADER}auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 10.0.0.2/24\n    gateway 10.0.0.1\n    dns-nameservers 10.0.0.53 10.0.0.54\n    dns-search example.com\n"
            )
        );
        let dhcp = settings(&[("interface", "eth1"), ("hostname", "box.lan")], "");
        assert_eq!(networkd(&dhcp), format!("{HEADER}[Match]\nName=eth1\n\n[Network]\nDHCP=ipv4\n"));
        assert_eq!(
            ifupdown(&dhcp),
            format!(
                "{HEADER}auto lo\niface lo inet loopback\n\nauto eth1\niface eth1 inet dhcp\n    hostname box.lan\n"
            )
        );
        let mut mtu = settings(&[("interface", "eth0")], "");
        mtu.system.mtu = Some(9000);
        assert!(networkd(&mtu).ends_with("\n[Link]\nMTUBytes=9000\n"));
        assert!(ifupdown(&mtu).ends_with("    mtu 9000\n"));
        let v6 = settings(
            &[("interface", "eth0"), ("ip_address", "fd00::2"), ("netmask", "/64"), ("gateway", "fd00::1")],
            "",
        );
        assert!(ifupdown(&v6).contains("iface eth0 inet6 static\n    address fd00::2/64\n    gateway fd00::1\n"));
    }
}
