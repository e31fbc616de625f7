//! Service state for `/services`, by the way the board profile names for each service.

use std::time::Instant;

use super::Root;
use crate::board::Service;
use crate::limits::SERVICE_COMMAND_TIMEOUT;

pub fn is_running(root: &Root, service: &Service) -> bool {
    if let Some(pidfile) = &service.pidfile {
        return pid_from_file(root, pidfile).is_some_and(|pid| pid_alive(root, pid));
    }
    if let Some(name) = &service.process {
        return process_named(root, name);
    }
    if let Some(argv) = &service.command {
        return command_succeeds(argv);
    }
    false
}

fn pid_from_file(root: &Root, pidfile: &str) -> Option<u32> {
    let text = root.read_limited(pidfile, 64).ok()?;
    String::from_utf8_lossy(&text).trim().parse().ok().filter(|&p| p > 0)
}

/// Alive = `/proc/PID/stat` exists and the process is not a zombie.
fn pid_alive(root: &Root, pid: u32) -> bool {
    let Ok(stat) = root.read_limited(&format!("/proc/{pid}/stat"), 4096) else {
        return false;
    };
    let stat = String::from_utf8_lossy(&stat);
    // The state letter follows the parenthesised command name, which may itself hold ')'.
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

fn process_named(root: &Root, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(root.path("/proc")) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        root.read_limited(&format!("/proc/{pid}/comm"), 64)
            .is_ok_and(|comm| String::from_utf8_lossy(&comm).trim_end() == name && pid_alive(root, pid))
    })
}

/// Runs the profile's status command (argv, no shell) and waits at most the time limit.
fn command_succeeds(argv: &[String]) -> bool {
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < SERVICE_COMMAND_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
