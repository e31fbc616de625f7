//! The netlink backend against the real kernel: steward runs in network and UTS namespaces
//! of the test's own, with a veth pair whose steward side is `eth0` and whose other side
//! (the gateway, 10.9.0.1) sits in a second namespace. Every apply, confirm, rollback and
//! restart is checked with `ip -j` and `hostname`, run in the same namespaces. Skipped (and
//! said so) where namespaces cannot be made, except in CI, where they must.

use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use miniserde::json::Value;

use crate::util::{Daemon, Options, Resp, cleanup, dev_board_with, field, fixture_root_copy};

/// Two network namespaces (steward's and the gateway's) and a UTS namespace, removed when
/// dropped. The thread that `enter`s them stays in them.
struct Namespaces {
    net: String,
    peer: String,
    uts: std::path::PathBuf,
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(args: &[&str]) -> String {
    sh(args).unwrap_or_else(|e| panic!("{e}"))
}

impl Namespaces {
    fn make(tag: &str) -> Option<Namespaces> {
        let n = format!("stw{}{tag}", std::process::id());
        let ns =
            Namespaces { net: n.clone(), peer: format!("{n}p"), uts: std::env::temp_dir().join(format!("{n}-uts")) };
        let made = (|| -> Result<(), String> {
            sh(&["ip", "netns", "add", &ns.net])?;
            sh(&["ip", "netns", "add", &ns.peer])?;
            std::fs::write(&ns.uts, b"").map_err(|e| e.to_string())?;
            sh(&["unshare", &format!("--uts={}", ns.uts.display()), "true"])?;
            Ok(())
        })();
        match made {
            Ok(()) => Some(ns),
            Err(why) => {
                drop(ns);
                assert!(std::env::var_os("CI").is_none(), "CI must make network namespaces: {why}");
                eprintln!("skipped: no network namespaces here ({why})");
                None
            }
        }
    }

    /// Moves this thread into steward's namespaces (its children follow), then builds the
    /// link: loopback up, eth0 here, its peer as the gateway in the other namespace.
    fn enter(&self) {
        use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
        let net = std::fs::File::open(format!("/run/netns/{}", self.net)).unwrap();
        move_into_link_name_space(net.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
        let uts = std::fs::File::open(&self.uts).unwrap();
        move_into_link_name_space(uts.as_fd(), Some(LinkNameSpaceType::HostNameAndNISDomainName)).unwrap();
        run(&["hostname", "before.lan"]);
        run(&["ip", "link", "set", "lo", "up"]);
        run(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "gw0"]);
        run(&["ip", "link", "set", "gw0", "netns", &self.peer]);
        run(&["ip", "-n", &self.peer, "addr", "add", "10.9.0.1/24", "dev", "gw0"]);
        run(&["ip", "-n", &self.peer, "link", "set", "gw0", "up"]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.net]);
        let _ = sh(&["ip", "netns", "del", &self.peer]);
        let _ = sh(&["umount", &self.uts.display().to_string()]);
        let _ = std::fs::remove_file(&self.uts);
    }
}

/// eth0's global IPv4 addresses and the default route's gateway, as `ip -j` reports them.
fn kernel() -> (Vec<String>, Option<String>, bool) {
    let addrs = run(&["ip", "-j", "-4", "addr", "show", "dev", "eth0"]);
    let v: Value = miniserde::json::from_str(&addrs).unwrap();
    let mut out = Vec::new();
    let mut up = false;
    if let Value::Array(links) = &v {
        for l in links {
            if let Value::Array(flags) = field(l, &["flags"]) {
                up = flags.iter().any(|f| matches!(f, Value::String(s) if s == "UP"));
            }
            if let Value::Array(infos) = field(l, &["addr_info"]) {
                for a in infos {
                    if let (Value::String(ip), Value::Number(miniserde::json::Number::U64(p))) =
                        (field(a, &["local"]), field(a, &["prefixlen"]))
                    {
                        out.push(format!("{ip}/{p}"));
                    }
                }
            }
        }
    }
    let routes = run(&["ip", "-j", "-4", "route", "show", "default"]);
    let v: Value = miniserde::json::from_str(&routes).unwrap();
    let gateway = match &v {
        Value::Array(rs) => rs.iter().find_map(|r| match (field(r, &["gateway"]), field(r, &["dev"])) {
            (Value::String(g), Value::String(dev)) if dev == "eth0" => Some(g.clone()),
            _ => None,
        }),
        _ => None,
    };
    (out, gateway, up)
}

/// The kernel holds `address` as eth0's one global IPv4 address, the link is up, and the
/// default route goes through the gateway.
#[track_caller]
fn holds(address: &str) {
    assert_eq!(kernel(), (vec![address.to_owned()], Some("10.9.0.1".to_owned()), true));
}

fn call(d: &Daemon, method: &str, path: &str, body: &str) -> Resp {
    d.connect().send(method, path, &[("Authorization", "Bearer owner")], body.as_bytes())
}

fn config(address: &str, gateway: &str, hostname: &str, confirm: &str) -> String {
    format!(
        r#"{{"config":{{"dns":{{"hostname":"{hostname}","nameservers":["10.9.0.53"]}},"time":{{"ntp_servers":["10.9.0.123"]}},
        "interfaces":[{{"name":"eth0","addresses":["{address}"],"routes":[{{"to":"0.0.0.0/0","via":"{gateway}"}}]}}]{confirm}}}}}"#
    )
}

fn link_mtu() -> u64 {
    let link = run(&["ip", "-j", "link", "show", "dev", "eth0"]);
    let Value::Array(links) = miniserde::json::from_str::<Value>(&link).unwrap() else { panic!("{link}") };
    match field(&links[0], &["mtu"]) {
        Value::Number(miniserde::json::Number::U64(n)) => *n,
        other => panic!("mtu {other:?}"),
    }
}

fn hostname() -> String {
    run(&["hostname"]).trim().to_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen in 10 s");
}

fn in_namespaces(tag: &str, test: impl FnOnce(&Namespaces) + Send) {
    let Some(ns) = Namespaces::make(tag) else { return };
    // A thread of its own: the namespaces stay with it and leave with it.
    std::thread::scope(|s| s.spawn(|| test(&ns)).join().unwrap());
}

fn netlink_board() -> String {
    dev_board_with(
        "netlink",
        &[(
            r#""config": "/etc/steward/network.conf","#,
            r#""config": "/etc/steward/network.conf", "backend": "netlink", "ntp_config": "/etc/chrony/sources.d/steward.sources","#,
        )],
    )
}

#[test]
fn the_kernel_takes_the_settings_and_gives_them_back_on_rollback() {
    in_namespaces("a", |ns| {
        ns.enter();
        let root = fixture_root_copy();
        std::fs::create_dir_all(root.join("etc/chrony/sources.d")).unwrap();
        let d = Daemon::with(Options { board: Some(netlink_board()), root: root.clone(), plain: false });
        d.setup("owner");

        // A global IPv6 address the settings do not own (as SLAAC makes): no change of the
        // IPv4 settings takes it off, nor does a rollback.
        run(&["ip", "-6", "addr", "add", "fd00:9::5/64", "dev", "eth0", "nodad"]);
        let keeps_v6 = || run(&["ip", "-j", "-6", "addr", "show", "dev", "eth0"]).contains("fd00:9::5");

        // A change with no confirmation asked: it stands once applied.
        let with_mtu = config("10.9.0.2/24", "10.9.0.1", "after.lan", "")
            .replace(r#""name":"eth0","#, r#""name":"eth0","mtu":1400,"#);
        let r = call(&d, "PUT", "/1.0/system/network", &with_mtu);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(link_mtu(), 1400);
        assert!(keeps_v6(), "the IPv6 address stays");
        let r = call(&d, "PUT", "/1.0/system/network", &with_mtu.replace("1400", "40"));
        assert_eq!(r.status, 400, "an MTU below IPv4's 68: {}", r.text());
        // An interface the kernel does not have is the client's mistake: 400, nothing changed.
        let r = call(
            &d,
            "PUT",
            "/1.0/system/network",
            &config("10.9.0.3/24", "10.9.0.1", "x.lan", "").replace("eth0", "eth9"),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("no interface eth9"), "{}", r.text());
        holds("10.9.0.2/24");
        holds("10.9.0.2/24");
        assert_eq!(hostname(), "after.lan");
        let resolv = std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 10.9.0.53"), "{resolv}");
        let ntp = std::fs::read_to_string(root.join("etc/chrony/sources.d/steward.sources")).unwrap();
        assert!(ntp.contains("server 10.9.0.123 iburst"), "{ntp}");
        assert_eq!(std::fs::read_to_string(root.join("etc/hostname")).unwrap(), "after.lan\n");
        // GET reads the kernel: the address, the route, the link's own MAC.
        let v = call(&d, "GET", "/1.0/system/network", "").json();
        let st = field(&v, &["metadata", "state", "interfaces", "eth0"]);
        let Value::Array(addrs) = field(st, &["addresses"]) else { panic!("no addresses: {st:?}") };
        assert!(addrs.iter().any(|a| matches!(a, Value::String(s) if s == "10.9.0.2/24")), "{addrs:?}");
        let Value::Array(routes) = field(st, &["routes"]) else { panic!("no routes") };
        assert!(routes.iter().any(|r| matches!(field(r, &["via"]), Value::String(v) if v == "10.9.0.1")));
        let link = run(&["ip", "-j", "link", "show", "dev", "eth0"]);
        let Value::Array(links) = miniserde::json::from_str::<Value>(&link).unwrap() else { panic!("{link}") };
        let Value::String(mac) = field(&links[0], &["address"]) else { panic!("{link}") };
        assert!(matches!(field(st, &["hwaddr"]), Value::String(h) if h == mac), "{st:?}");
        assert!(matches!(field(st, &["mtu"]), Value::Number(miniserde::json::Number::U64(1400))), "{st:?}");
        let text = call(&d, "GET", "/1.0/system/network", "").text();
        assert!(
            text.contains(r#""routes":[{"to":"0.0.0.0/0","via":"10.9.0.1"}],"mtu":1400}"#),
            "the config keeps it: {text}"
        );

        // A change on trial: applied, then undone to exactly the kernel state before it.
        let r = call(
            &d,
            "PUT",
            "/1.0/system/network",
            &config("10.9.0.3/24", "10.9.0.1", "trial.lan", r#","confirmation_timeout":"2s""#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(kernel().0, vec!["10.9.0.3/24".to_owned()]);
        assert_eq!(hostname(), "trial.lan");
        wait_for("the rollback", || kernel().0 == vec!["10.9.0.2/24".to_owned()]);
        holds("10.9.0.2/24");
        assert_eq!(link_mtu(), 1400);
        wait_for("the hostname's rollback", || hostname() == "after.lan");
        assert!(std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap().contains("10.9.0.53"));
        assert!(keeps_v6(), "the IPv6 address stays through the rollback");

        // Half-way: the address applies, the route cannot (its gateway is off the subnet),
        // and the answer comes once the address is undone too.
        let r = call(&d, "PUT", "/1.0/system/network", &config("10.9.0.4/24", "192.0.2.1", "half.lan", ""));
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("what was set before is back"), "{}", r.text());
        holds("10.9.0.2/24");
        assert_eq!(hostname(), "after.lan");

        // Confirmed: it stays, and a restart changes nothing.
        let r = call(
            &d,
            "PUT",
            "/1.0/system/network",
            &config("10.9.0.5/24", "10.9.0.1", "kept.lan", r#","confirmation_timeout":"30s""#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(call(&d, "POST", "/1.0/system/network/:confirm", "").status, 200);
        let mut d = d;
        d.restart();
        holds("10.9.0.5/24");
        assert_eq!(hostname(), "kept.lan");

        // Unconfirmed across a restart: the deadline passes while steward is down, and the
        // kernel is put back when it starts.
        let r = call(
            &d,
            "PUT",
            "/1.0/system/network",
            &config("10.9.0.6/24", "10.9.0.1", "gone.lan", r#","confirmation_timeout":"1s""#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        d.stop();
        assert_eq!(kernel().0, vec!["10.9.0.6/24".to_owned()]);
        std::thread::sleep(Duration::from_millis(1200));
        d.restart();
        wait_for("the rollback at start", || kernel().0 == vec!["10.9.0.5/24".to_owned()]);
        assert_eq!(hostname(), "kept.lan");
        cleanup(d);
    });
}

/// dnsmasq on the gateway's side, killed when dropped.
struct Dnsmasq(std::process::Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dhcp_takes_a_lease_from_dnsmasq_and_steward_applies_it() {
    in_namespaces("d", |ns| {
        ns.enter();
        let root = fixture_root_copy();
        let leases = root.join("dnsmasq.leases");
        let dnsmasq = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.peer,
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
            ])
            .args(["--port=0", "--interface=gw0", "--bind-interfaces", "--user=root", "--log-facility=/dev/null"])
            .args(["--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,10m", "--dhcp-option=option:router,10.9.0.1"])
            .args(["--dhcp-option=option:dns-server,10.9.0.53"])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!("--pid-file={}", root.join("dnsmasq.pid").display()))
            .spawn();
        let _dnsmasq = match dnsmasq {
            Ok(child) => Dnsmasq(child),
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "CI must run dnsmasq: {e}");
                eprintln!("skipped: no dnsmasq ({e})");
                return;
            }
        };
        // contrib's script, with each run counted and the lease cut to 4 s (dnsmasq gives two
        // minutes at least) so that a renewal comes within the test.
        let runs = root.join("dhcp-runs");
        let script = root.join("udhcpc.script");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1\" >> {}\nlease=4 exec {} \"$@\"\n",
                runs.display(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/udhcpc/steward.script")
            ),
        )
        .unwrap();
        run(&["chmod", "755", &script.display().to_string()]);
        let script = script.display().to_string();
        let board = dev_board_with(
            "dhcp",
            &[(
                r#""config": "/etc/steward/network.conf","#,
                &format!(
                    r#""config": "/etc/steward/network.conf", "backend": "netlink", "dhcp_client": ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "1", "-s", "{script}"],"#
                ),
            )],
        );
        let d = Daemon::with(Options { board: Some(board), root: root.clone(), plain: false });
        d.setup("owner");
        // A static address first, then DHCP: the static one goes, the lease's comes.
        let r = call(&d, "PUT", "/1.0/system/network", &config("10.9.0.2/24", "10.9.0.1", "static.lan", ""));
        assert_eq!(r.status, 200, "{}", r.text());
        let dhcp =
            r#"{"config":{"dns":{"hostname":"leased.lan"},"interfaces":[{"name":"eth0","addresses":["dhcp4"]}]}}"#;
        let r = call(&d, "PUT", "/1.0/system/network", dhcp);
        assert_eq!(r.status, 200, "{}", r.text());
        let (addrs, gateway, up) = kernel();
        assert!(up);
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        let leased: std::net::Ipv4Addr = addrs[0].trim_end_matches("/24").parse().unwrap();
        assert!((100..=150).contains(&leased.octets()[3]) && addrs[0].ends_with("/24"), "{addrs:?}");
        assert_eq!(gateway.as_deref(), Some("10.9.0.1"));
        let resolv = std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 10.9.0.53"), "the lease's DNS: {resolv}");
        assert_eq!(hostname(), "leased.lan");
        // dnsmasq recorded that address as given.
        let given = std::fs::read_to_string(&leases).unwrap();
        assert!(given.contains(&leased.to_string()), "{given}");
        // GET: the config says DHCP, the state shows the lease as the kernel has it.
        let text = call(&d, "GET", "/1.0/system/network", "").text();
        assert!(text.contains(r#""addresses":["dhcp4"]"#), "{text}");
        assert!(text.contains(&format!(r#""addresses":["{}""#, addrs[0])), "{text}");
        // Renewed at half the lease by running the client again; the address stays.
        let bound = |runs: &std::path::Path| std::fs::read_to_string(runs).unwrap_or_default().matches("bound").count();
        assert_eq!(bound(&runs), 1);
        for _ in 0..300 {
            if bound(&runs) >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(bound(&runs) >= 2, "no renewal in 30 s: {}", d.stderr());
        assert_eq!(kernel().0, addrs, "the same lease, the same address");
        cleanup(d);
    });
}

#[test]
fn ifupdown_reads_what_steward_renders() {
    in_namespaces("i", |ns| {
        ns.enter();
        if sh(&["ifup", "--version"]).is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI must have ifupdown");
            eprintln!("skipped: no ifupdown");
            return;
        }
        let root = fixture_root_copy();
        std::fs::create_dir_all(root.join("etc/network")).unwrap();
        // The board's network script, as a vendor writes it for ifupdown: take the interface
        // down, drop what it held, bring it up from the file steward rendered.
        let state = root.join("ifstate");
        std::fs::create_dir_all(&state).unwrap();
        let hook = root.join("ifupdown-apply");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nset -e\nifdown --force -i \"$STEWARD_NETWORK_CONFIG\" --state-dir {s} eth0 || true\n\
                 ip addr flush dev eth0 scope global\nifup -i \"$STEWARD_NETWORK_CONFIG\" --state-dir {s} eth0\n",
                s = state.display()
            ),
        )
        .unwrap();
        run(&["chmod", "755", &hook.display().to_string()]);
        let board = dev_board_with(
            "ifupdown",
            &[(
                r#""config": "/etc/steward/network.conf","#,
                &format!(
                    r#""config": "/etc/network/interfaces", "backend": "ifupdown", "apply": ["{}"],"#,
                    hook.display()
                ),
            )],
        );
        let d = Daemon::with(Options { board: Some(board), root: root.clone(), plain: false });
        d.setup("owner");
        let r = call(&d, "PUT", "/1.0/system/network", &config("10.9.0.7/24", "10.9.0.1", "ifup.lan", ""));
        assert_eq!(r.status, 200, "{}", r.text());
        let file = std::fs::read_to_string(root.join("etc/network/interfaces")).unwrap();
        assert!(file.contains("iface eth0 inet static\n    address 10.9.0.7/24\n    gateway 10.9.0.1\n"), "{file}");
        holds("10.9.0.7/24");
        assert_eq!(hostname(), "ifup.lan");
        // Unconfirmed: the previous file comes back and the board's script applies it.
        let r = call(
            &d,
            "PUT",
            "/1.0/system/network",
            &config("10.9.0.8/24", "10.9.0.1", "trial.lan", r#","confirmation_timeout":"1s""#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(kernel().0, vec!["10.9.0.8/24".to_owned()]);
        wait_for("the rollback", || kernel().0 == vec!["10.9.0.7/24".to_owned()]);
        holds("10.9.0.7/24");
        wait_for("the hostname's rollback", || hostname() == "ifup.lan");
        cleanup(d);
    });
}

#[test]
fn cap_net_admin_is_all_the_netlink_backend_needs() {
    in_namespaces("c", |ns| {
        ns.enter();
        let root = fixture_root_copy();
        // The files it writes belong to the user it becomes, as an image would arrange.
        run(&["chown", "-R", "65534", &root.join("etc").display().to_string()]);
        let board = dev_board_with(
            "netadmin",
            &[
                (
                    r#""config": "/etc/steward/network.conf","#,
                    r#""config": "/etc/steward/network.conf", "backend": "netlink","#,
                ),
                (
                    r#""name": "dev","#,
                    r#""name": "dev", "run_as": {"user": "65534", "capabilities": ["CAP_NET_ADMIN"]},"#,
                ),
            ],
        );
        let d = Daemon::with(Options { board: Some(board), root: root.clone(), plain: false });
        d.setup("owner");
        assert!(d.stderr().contains("running as uid 65534"), "{}", d.stderr());
        let r = call(&d, "PUT", "/1.0/system/network", &config("10.9.0.9/24", "10.9.0.1", "renamed.lan", ""));
        assert_eq!(r.status, 200, "{}", r.text());
        holds("10.9.0.9/24");
        // Setting the running hostname needs CAP_SYS_ADMIN: it stays, said so, and the file
        // has the new one for the next boot.
        assert_eq!(hostname(), "before.lan");
        assert!(d.stderr().contains("setting it needs CAP_SYS_ADMIN"), "{}", d.stderr());
        assert_eq!(std::fs::read_to_string(root.join("etc/hostname")).unwrap(), "renamed.lan\n");
        cleanup(d);
    });
}

#[test]
fn jidoteki_settings_reach_the_kernel_too() {
    in_namespaces("j", |ns| {
        ns.enter();
        let d = Daemon::with(Options { board: Some(netlink_board()), root: fixture_root_copy(), plain: false });
        d.setup("owner");
        let missing = br#"{"network":{"interface":"eth9","hostname":"jido.lan"}}"#;
        let r = d.post_form(&format!("{}/settings?token=owner", crate::util::ADMIN), &[("settings", missing)]);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("no interface eth9"), "{}", r.text());
        // The field rules let "10.9.0" through; it is no address, and nothing is stored.
        let bad = br#"{"network":{"interface":"eth0","hostname":"jido.lan","ip_address":"10.9.0","netmask":"255.255.255.0","gateway":"10.9.0.1"}}"#;
        let r = d.post_form(&format!("{}/settings?token=owner", crate::util::ADMIN), &[("settings", bad)]);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("is not an address"), "{}", r.text());
        assert!(!d.get(&format!("{}/settings?token=owner", crate::util::ADMIN)).text().contains("10.9.0\""));
        let settings = br#"{"network":{"interface":"eth0","hostname":"jido.lan","ip_address":"10.9.0.11","netmask":"255.255.255.0","gateway":"10.9.0.1","dns1":"10.9.0.53"}}"#;
        let r = d.post_form(&format!("{}/settings?token=owner", crate::util::ADMIN), &[("settings", settings)]);
        assert_eq!(r.status, 202, "{}", r.text());
        // Applied off the request thread, after the 202.
        wait_for("the Jidoteki settings", || kernel().0 == vec!["10.9.0.11/24".to_owned()]);
        holds("10.9.0.11/24");
        assert_eq!(hostname(), "jido.lan");
        // The same settings, seen the IncusOS way, from the kernel.
        let text = call(&d, "GET", "/1.0/system/network", "").text();
        assert!(text.contains(r#""addresses":["10.9.0.11/24""#), "{text}");
        cleanup(d);
    });
}
