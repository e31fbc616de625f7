//! Giving back the pages of steward's own executable that the running daemon does not use.
//! Its one `unsafe` call is the madvise below (see `raw`, the module that holds them).
//!
//! Start-up (argument parsing, the board profile, certificate generation, opening the journal
//! and the plans) touches code spread over most of the binary, and the kernel's fault-around
//! maps 64 KiB around each touch: a freshly started daemon has nearly its whole executable
//! mapped (about 2 MiB) although the idle loop runs a few pages of it. Mapped executable pages
//! are the ones the kernel keeps longest under memory pressure. Dropping the mappings leaves
//! the pages in the page cache, cheap to reclaim, and whatever a request needs is mapped again
//! on its first touch.

use std::io;

/// What `release` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Mappings whose pages were dropped.
    pub mappings: usize,
    /// Resident KiB they held.
    pub kib: u64,
}

/// One mapping of /proc/self/smaps, as far as `release` needs it.
#[derive(Debug, PartialEq, Eq)]
struct Mapping<'a> {
    path: &'a str,
    start: usize,
    end: usize,
    writable: bool,
    private: bool,
    dev: (u32, u32),
    inode: u64,
    rss_kib: u64,
    anonymous_kib: u64,
}

/// Drops this process's mappings of its own executable's read-only, never-written segments
/// (code and constants). Writable segments, relocated read-only ones (any anonymous page) and
/// every other mapping are left alone.
pub fn release() -> io::Result<Released> {
    let exe = rustix::fs::stat("/proc/self/exe")?;
    let dev = (rustix::fs::major(exe.st_dev), rustix::fs::minor(exe.st_dev));
    // Overlay and btrfs mounts show other device numbers in the maps than stat does; the
    // path (with " (deleted)" once an update replaced the file) names the executable too.
    let exe_path = std::fs::read_link("/proc/self/exe").ok().and_then(|p| p.to_str().map(str::to_owned));
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = Released::default();
    for m in parse_smaps(&smaps) {
        let ours = (m.dev == dev && m.inode == exe.st_ino) || exe_path.as_deref().is_some_and(|p| p == m.path);
        if !ours || m.writable || !m.private || m.anonymous_kib != 0 || m.rss_kib == 0 {
            continue;
        }
        // SAFETY: the range is a whole private, read-only mapping of this executable file with
        // no anonymous (copied-on-write) page: every page holds exactly the file's bytes, and
        // nothing in steward writes to it or changes its protection. MADV_DONTNEED on such a
        // mapping only unmaps the pages; the next access maps the same bytes from the file
        // again (the kernel refuses writes to a file being executed, ETXTBSY, and an update
        // replaces it by rename, leaving this inode as it is), so no value anyone can read
        // changes.
        let result =
            unsafe { rustix::mm::madvise(m.start as *mut _, m.end - m.start, rustix::mm::Advice::LinuxDontNeed) };
        if result.is_ok() {
            released.mappings += 1;
            released.kib += m.rss_kib;
        }
    }
    Ok(released)
}

fn parse_smaps(text: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(m) = parse_header(line) {
            out.push(m);
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        let kib = |rest: &str| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
        if let Some(rest) = line.strip_prefix("Rss:") {
            last.rss_kib = kib(rest).unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            // Unreadable means unknown: count it as copied, so the mapping is left alone.
            last.anonymous_kib = kib(rest).unwrap_or(u64::MAX);
        }
    }
    out
}

/// `7f00-7f10 r-xp 000c9000 fe:00 5333946   /path` → a mapping (counters still zero).
fn parse_header(line: &str) -> Option<Mapping<'_>> {
    let mut rest = line;
    let mut field = || {
        let (word, after) = rest.trim_start().split_once(' ').unwrap_or((rest.trim_start(), ""));
        rest = after;
        word
    };
    let (start, end) = field().split_once('-')?;
    let perms = field().as_bytes();
    let _offset = field();
    let (major, minor) = field().split_once(':')?;
    let inode = field().parse().ok()?;
    if perms.len() != 4 {
        return None;
    }
    Some(Mapping {
        path: rest.trim(),
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        writable: perms[1] == b'w',
        private: perms[3] == b'p',
        dev: (u32::from_str_radix(major, 16).ok()?, u32::from_str_radix(minor, 16).ok()?),
        inode,
        rss_kib: 0,
        // Unknown until its line is read: treated as copied.
        anonymous_kib: u64::MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55557db1b000-55557db1c000 rw-p 00000000 00:00 0                          [heap]
Size:                  4 kB
Rss:                   4 kB
Anonymous:             4 kB
7fbff1400000-7fbff14ca000 r--p 00000000 fe:00 5333946                    /usr/bin/steward
Size:                808 kB
Rss:                 564 kB
Anonymous:             0 kB
7fbff14ca000-7fbff1662000 r-xp 000c9000 fe:00 5333946                    /usr/bin/steward
Rss:                1464 kB
Anonymous:             0 kB
7fbff1662000-7fbff1673000 r--p 00260000 fe:00 5333946                    /usr/bin/steward
Rss:                  68 kB
Anonymous:            68 kB
7fbff1673000-7fbff1674000 rw-p 00270000 fe:00 5333946                    /usr/bin/steward
Rss:                   4 kB
";

    #[test]
    fn reads_mappings_and_their_counters() {
        let maps = parse_smaps(SAMPLE);
        assert_eq!(maps.len(), 5);
        let text = &maps[2];
        assert_eq!((text.start, text.end), (0x7fbff14ca000, 0x7fbff1662000));
        assert!(!text.writable && text.private);
        assert_eq!((text.dev, text.inode, text.rss_kib, text.anonymous_kib), ((0xfe, 0), 5333946, 1464, 0));
        assert_eq!(text.path, "/usr/bin/steward");
        assert_eq!(maps[0].path, "[heap]");
        // Relocated read-only data has copied pages: never a candidate.
        assert_eq!(maps[3].anonymous_kib, 68);
        // A mapping whose Anonymous line is missing counts as copied.
        assert_eq!(maps[4].anonymous_kib, u64::MAX);
        assert!(maps[0].writable);
    }

    #[test]
    fn reads_paths_with_spaces_and_anonymous_mappings() {
        let m = parse_header("7f00-7f10 r-xp 00000000 08:01 42     /opt/my app/steward (deleted)").unwrap();
        assert_eq!(m.path, "/opt/my app/steward (deleted)");
        let m = parse_header("7f00-7f10 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!((m.path, m.inode), ("", 0));
    }

    #[test]
    fn skips_lines_that_are_not_mappings() {
        assert_eq!(parse_header("Rss:                   4 kB"), None);
        assert_eq!(parse_header("VmFlags: rd ex mr mw me"), None);
        assert!(parse_smaps("garbage\nRss: 5 kB\n").is_empty());
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        // Whatever it drops comes back on the next touch: the code that runs after it (this
        // test, the formatting machinery) must still work and read the same constants.
        let before = format!("{:?}", Released { mappings: 1, kib: 2 });
        let released = release().expect("release");
        let after = format!("{:?}", Released { mappings: 1, kib: 2 });
        assert_eq!(before, after);
        // The test binary's text was mapped and had pages resident.
        assert!(released.mappings >= 1 && released.kib > 0, "{released:?}");
    }
}
