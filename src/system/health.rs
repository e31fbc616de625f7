//! Live health figures: disk of the data dir's filesystem, memory, CPU count and load.

use std::path::Path;

use super::Root;

#[derive(Debug, PartialEq, Clone)]
pub struct Usage {
    pub used: u64,
    pub total: u64,
}

impl Usage {
    /// Percentage used, rounded up as `df` does, so a nearly full disk never shows 99.
    pub fn percentage(&self) -> u64 {
        if self.total == 0 { 0 } else { (self.used * 100).div_ceil(self.total).min(100) }
    }
}

#[derive(Debug, PartialEq, Clone)]
pub struct Cpu {
    pub num: u32,
    /// The three load averages as the kernel prints them.
    pub load: [String; 3],
}

impl Cpu {
    /// Jidoteki's `cpu5min`: the five-minute load average, truncated to an integer (the
    /// documented example pairs load 0.28 with cpu5min 0).
    pub fn cpu5min(&self) -> u64 {
        self.load[1].split('.').next().and_then(|i| i.parse().ok()).unwrap_or(0)
    }
}

/// Used and total bytes of the filesystem holding `dir`. Used = total − free, like `df`.
pub fn disk(dir: &Path) -> std::io::Result<Usage> {
    let s = rustix::fs::statvfs(dir)?;
    let frsize = s.f_frsize;
    Ok(Usage { used: s.f_blocks.saturating_sub(s.f_bfree) * frsize, total: s.f_blocks * frsize })
}

/// Used = MemTotal − MemAvailable (what `free` calls used, caches excluded).
pub fn memory(root: &Root) -> std::io::Result<Usage> {
    let text = String::from_utf8_lossy(&root.read_limited("/proc/meminfo", 64 * 1024)?).into_owned();
    parse_meminfo(&text).ok_or_else(|| bad_data("/proc/meminfo lacks MemTotal"))
}

fn parse_meminfo(text: &str) -> Option<Usage> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
        let kib: u64 = line.split(':').nth(1)?.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal")?;
    // Kernels before 3.14 lack MemAvailable; free + buffers + cached is the old estimate.
    let available = field("MemAvailable")
        .or_else(|| Some(field("MemFree")? + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0)))?;
    Some(Usage { used: total.saturating_sub(available), total })
}

pub fn cpu(root: &Root) -> std::io::Result<Cpu> {
    let loadavg = String::from_utf8_lossy(&root.read_limited("/proc/loadavg", 4096)?).into_owned();
    let mut fields = loadavg.split_whitespace();
    let mut load: [String; 3] = Default::default();
    for slot in &mut load {
        let value = fields.next().filter(|f| f.parse::<f64>().is_ok()).ok_or_else(|| bad_data("bad /proc/loadavg"))?;
        *slot = value.to_owned();
    }
    Ok(Cpu { num: cpu_count(root), load })
}

/// Online CPUs from sysfs ("0-3,6"), else the `processor` lines of /proc/cpuinfo, else 1.
fn cpu_count(root: &Root) -> u32 {
    if let Ok(online) = root.read_limited("/sys/devices/system/cpu/online", 4096) {
        if let Some(n) = parse_cpu_list(String::from_utf8_lossy(&online).trim()) {
            return n;
        }
    }
    if let Ok(info) = root.read_limited("/proc/cpuinfo", 4 * 1024 * 1024) {
        let n = String::from_utf8_lossy(&info).lines().filter(|l| l.starts_with("processor")).count() as u32;
        if n > 0 {
            return n;
        }
    }
    1
}

fn parse_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let v = part.parse::<u32>().ok()?;
                (v, v)
            }
        };
        n = n.checked_add(hi.checked_sub(lo)? + 1)?;
    }
    (n > 0).then_some(n)
}

/// `df -h` style: binary units, one decimal below 10, rounded up ("3.4G", "234G").
pub fn human_size(bytes: u64) -> HumanSize {
    HumanSize(bytes)
}

pub struct HumanSize(u64);

impl std::fmt::Display for HumanSize {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
        let bytes = self.0;
        if bytes < 1024 {
            return write!(f, "{bytes}");
        }
        let mut value = bytes as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if value < 10.0 {
            let tenths = (value * 10.0).ceil();
            if tenths < 100.0 {
                return write!(f, "{:.1}{}", tenths / 10.0, UNITS[unit]);
            }
            return write!(f, "10{}", UNITS[unit]);
        }
        write!(f, "{}{}", value.ceil() as u64, UNITS[unit])
    }
}

/// `free -m` style: whole MiB ("260M").
pub fn mebibytes(bytes: u64) -> impl std::fmt::Display {
    struct Mebibytes(u64);
    impl std::fmt::Display for Mebibytes {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "{}M", self.0 / (1024 * 1024))
        }
    }
    Mebibytes(bytes)
}

fn bad_data(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(human_size(512).to_string(), "512");
        assert_eq!(human_size(3_650_722_201).to_string(), "3.4G");
        assert_eq!(human_size(234 * 1024 * 1024 * 1024).to_string(), "234G");
        assert_eq!(human_size(128 * 1024).to_string(), "128K");
        assert_eq!(human_size(1024 * 1024 * 10 - 1).to_string(), "10M");
        assert_eq!(mebibytes(1000 * 1024 * 1024 + 5).to_string(), "1000M");
    }

    #[test]
    fn meminfo_with_and_without_memavailable() {
        let m = parse_meminfo("MemTotal:       1024000 kB\nMemFree: 1 kB\nMemAvailable:    757760 kB\n").unwrap();
        assert_eq!(m, Usage { used: 266_240 * 1024, total: 1_024_000 * 1024 });
        assert_eq!(m.percentage(), 26);
        assert_eq!(Usage { used: 261, total: 1000 }.percentage(), 27);
        let old = parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 5 kB\n").unwrap();
        assert_eq!(old.used, 80 * 1024);
        assert!(parse_meminfo("garbage").is_none());
    }

    #[test]
    fn cpu_lists_and_load() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,6"), Some(5));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list(""), None);
        let cpu = Cpu { num: 1, load: ["0.66".into(), "0.28".into(), "0.14".into()] };
        assert_eq!(cpu.cpu5min(), 0);
        assert_eq!(Usage { used: 0, total: 0 }.percentage(), 0);
    }
}
