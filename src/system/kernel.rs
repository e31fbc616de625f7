//! The running kernel and its processes as procfs shows them (below `--root`, so tests
//! point it at a fixture tree): what `/1.0/debug/kernel` and `/1.0/debug/processes` report.

use super::Root;

/// procfs files are small; a hostile or broken one is cut here, not read whole.
const MAX_PROC_FILE: u64 = 256 * 1024;
/// Processes listed at most: a box with more is reported in part, not at any cost.
const MAX_PROCESSES: usize = 4096;

pub struct Module {
    pub name: String,
    pub dependencies: Vec<String>,
    pub in_use: bool,
}

pub struct Kernel {
    pub version: String,
    pub architecture: String,
    pub modules: Vec<Module>,
}

fn text(root: &Root, path: &str) -> String {
    root.read_limited(path, MAX_PROC_FILE).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// The kernel release, the machine's architecture (the running system's, as `uname -m`
/// says) and the loaded modules (`/proc/modules`: name, size, refcount, dependencies, …).
pub fn kernel(root: &Root) -> Kernel {
    let version = text(root, "/proc/sys/kernel/osrelease").trim().to_owned();
    let modules = text(root, "/proc/modules")
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let name = f.next()?.to_owned();
            let _size = f.next()?;
            let refs: u64 = f.next()?.parse().unwrap_or(0);
            let dependencies = match f.next()? {
                "-" => Vec::new(),
                deps => deps.split(',').filter(|d| !d.is_empty()).map(str::to_owned).collect(),
            };
            Some(Module { name, dependencies, in_use: refs > 0 })
        })
        .collect();
    let architecture = rustix::system::uname().machine().to_string_lossy().into_owned();
    Kernel { version, architecture, modules }
}

pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub name: String,
    /// Its command line, arguments joined by spaces; empty for kernel threads.
    pub command: String,
}

/// Every process under `/proc`, by pid.
pub fn processes(root: &Root) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir(root.path("/proc")) else { return Vec::new() };
    let mut pids: Vec<u32> = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    pids.truncate(MAX_PROCESSES);
    pids.into_iter()
        .filter_map(|pid| {
            // `pid (comm) state ppid …`: the name may hold spaces and parentheses, so it
            // ends at the last `)`.
            let stat = text(root, &format!("/proc/{pid}/stat"));
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let name = stat.get(open + 1..close)?.to_owned();
            let mut rest = stat.get(close + 1..)?.split_whitespace();
            let state = rest.next()?.chars().next()?;
            let ppid = rest.next()?.parse().ok()?;
            let command = text(root, &format!("/proc/{pid}/cmdline"))
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Some(Process { pid, ppid, state, name, command })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)]) -> (Root, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("steward-kernel-{}-{}", std::process::id(), files.len()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, body) in files {
            let p = dir.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        (Root::new(&dir), dir)
    }

    #[test]
    fn broken_proc_entries_are_skipped_and_odd_names_kept() {
        let (root, dir) = root_with(&[
            ("/proc/1/stat", "1 (init) S 0 1 1"),
            ("/proc/1/cmdline", "/sbin/init\0splash\0"),
            ("/proc/7/stat", "7 (a (b) c) R 1 7"),
            ("/proc/8/stat", "garbage"),
            ("/proc/9/stat", ""),
            ("/proc/modules", "zfs 1 2 spl,znvpair, Live 0x0\nloop 40960 0 - Live 0x0\nbroken\n"),
            ("/proc/sys/kernel/osrelease", "6.18.0\n"),
        ]);
        let p = processes(&root);
        assert_eq!(p.iter().map(|p| p.pid).collect::<Vec<_>>(), [1, 7]);
        assert_eq!((p[0].command.as_str(), p[0].ppid, p[0].state), ("/sbin/init splash", 0, 'S'));
        assert_eq!((p[1].name.as_str(), p[1].state, p[1].command.as_str()), ("a (b) c", 'R', ""));
        let k = kernel(&root);
        assert_eq!(k.version, "6.18.0");
        assert_eq!(k.modules.len(), 2);
        assert_eq!(k.modules[0].dependencies, ["spl", "znvpair"]);
        assert!(k.modules[0].in_use && !k.modules[1].in_use);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
