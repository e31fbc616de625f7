//! Least privilege at run time: started as root, steward binds its port and opens its state,
//! then becomes the board's user with only the capabilities the board names (e.g.
//! CAP_SYS_BOOT to reboot). What a feature lacks is named when it is asked for.

use rustix::thread::{CapabilitySet, CapabilitySets};

/// Capability names as in capabilities(7), and their bits.
const NAMES: [(&str, CapabilitySet); 12] = [
    ("CAP_SYS_BOOT", CapabilitySet::SYS_BOOT),
    ("CAP_NET_BIND_SERVICE", CapabilitySet::NET_BIND_SERVICE),
    ("CAP_NET_ADMIN", CapabilitySet::NET_ADMIN),
    ("CAP_SYS_ADMIN", CapabilitySet::SYS_ADMIN),
    ("CAP_SYS_RAWIO", CapabilitySet::SYS_RAWIO),
    ("CAP_SYS_TIME", CapabilitySet::SYS_TIME),
    ("CAP_DAC_OVERRIDE", CapabilitySet::DAC_OVERRIDE),
    ("CAP_DAC_READ_SEARCH", CapabilitySet::DAC_READ_SEARCH),
    ("CAP_CHOWN", CapabilitySet::CHOWN),
    ("CAP_FOWNER", CapabilitySet::FOWNER),
    ("CAP_KILL", CapabilitySet::KILL),
    ("CAP_MKNOD", CapabilitySet::MKNOD),
];

pub fn parse_capability(name: &str) -> Option<CapabilitySet> {
    NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

/// Whether this process holds the capability now (effective set).
pub fn holds(cap: CapabilitySet) -> bool {
    rustix::thread::capabilities(None).is_ok_and(|s| s.effective.contains(cap))
}

/// A user name (from /etc/passwd) or number, with its primary group.
fn resolve_user(user: &str) -> Result<(u32, u32), String> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok((uid, uid));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == user).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
        .find_map(|(u, g)| Some((u?, g?)))
        .ok_or_else(|| format!("run_as.user {user:?} is not in /etc/passwd"))
}

/// Group names (from /etc/group) or numbers, as gids.
fn resolve_groups(groups: &[String]) -> Result<Vec<rustix::process::Gid>, String> {
    let table = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            let gid = g.parse::<u32>().ok().or_else(|| {
                table.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok()).flatten()
                })
            });
            gid.map(rustix::process::Gid::from_raw).ok_or_else(|| format!("run_as.groups: {g:?} is not in /etc/group"))
        })
        .collect()
}

fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Becomes `user` keeping only `caps`, after giving it the data dir. `main` calls it before
/// any thread starts: the credentials calls change the calling thread only. (A thread count
/// check would be wrong under qemu-user, whose own threads show in /proc/self.)
pub fn drop_to(
    user: &str,
    group: Option<&str>,
    groups: &[String],
    caps: &[String],
    data: &std::path::Path,
) -> Result<String, String> {
    let (uid, mut gid) = resolve_user(user)?;
    let supplementary = resolve_groups(groups)?;
    if let Some(g) = group {
        gid = g.parse().map_err(|_| format!("run_as.group {g:?} must be a number"))?;
    }
    let mut keep = CapabilitySet::empty();
    for c in caps {
        keep |= parse_capability(c).ok_or_else(|| format!("run_as.capabilities: unknown capability {c:?}"))?;
    }
    if !rustix::process::geteuid().is_root() {
        return Ok(format!("not started as root: running as uid {} as is", rustix::process::geteuid().as_raw()));
    }
    chown_tree(data, uid, gid).map_err(|e| format!("giving {} to uid {uid}: {e}", data.display()))?;
    let err = |what: &'static str| move |e: rustix::io::Errno| format!("dropping privileges, {what}: {e}");
    rustix::thread::set_keep_capabilities(true).map_err(err("keep capabilities"))?;
    rustix::thread::set_thread_groups(&supplementary).map_err(err("supplementary groups"))?;
    let (g, u) = (rustix::process::Gid::from_raw(gid), rustix::process::Uid::from_raw(uid));
    rustix::thread::set_thread_res_gid(g, g, g).map_err(err("group"))?;
    rustix::thread::set_thread_res_uid(u, u, u).map_err(err("user"))?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets { effective: keep, permitted: keep, inheritable: CapabilitySet::empty() },
    )
    .map_err(err("capabilities"))?;
    rustix::thread::set_keep_capabilities(false).map_err(err("keep capabilities"))?;
    Ok(format!(
        "running as uid {uid} gid {gid} with {}",
        if caps.is_empty() { "no capabilities".into() } else { caps.join(", ") }
    ))
}
