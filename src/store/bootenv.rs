//! Bootloader environments, read and written by steward itself (no `grub-editenv` or
//! `fw_setenv` shell-out), so that an update can set a slot to boot on trial and commit or
//! roll it back (issue 21):
//! - GRUB's environment block: `# GRUB Environment Block\n`, `key=value` lines (`\` and
//!   newline escaped with `\`), `#` padding to the block's size (1024 bytes as grub-editenv
//!   makes it). Replaced atomically: a temp file, fsync, rename, fsync of the directory.
//! - U-Boot's environment as `fw_env.config` describes it: one copy (CRC32, then
//!   `key=value\0` pairs, `\0` after the last, padding), or two redundant copies that also
//!   carry a flags byte after the CRC. A write goes to the copy not in use, with the next
//!   flag, and is synced before it counts: a torn write leaves the other copy valid.
//! - systemd-boot's boot counting: an entry `NAME.conf` on trial is `NAME+LEFT-DONE.conf`
//!   (`+LEFT` alone before the first try); the boot loader counts the tries down, and an
//!   entry blessed good has no counter. Renamed with rename(2), then the directory synced.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Variables in their order in the environment.
pub type Vars = Vec<(String, String)>;

const GRUB_HEADER: &str = "# GRUB Environment Block\n";
/// The size grub-editenv gives a new block.
pub const GRUB_BLOCK: usize = 1024;

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b == b'=' || b == b'\n' || b == 0)
}

/// The variables of a GRUB environment block.
pub fn grub_parse(block: &[u8]) -> Result<Vars, String> {
    let text = std::str::from_utf8(block).map_err(|_| "the GRUB environment block is not text".to_owned())?;
    let body = text.strip_prefix(GRUB_HEADER).ok_or("not a GRUB environment block (no header)")?;
    let mut vars = Vars::new();
    let mut rest = body;
    // Lines that start with `#` are comments (grub-editenv writes a warning) or, unended at
    // the end, the padding.
    while !rest.is_empty() {
        if rest.starts_with('#') {
            match rest.find('\n') {
                Some(n) => {
                    rest = &rest[n + 1..];
                    continue;
                }
                None if rest.bytes().all(|b| b == b'#') => break,
                None => return Err("the GRUB environment block's padding holds something else".into()),
            }
        }
        let mut line = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => line.push(escaped),
                    None => return Err("the GRUB environment block ends inside an escape".into()),
                },
                '\n' => {
                    end = Some(i + 1);
                    break;
                }
                c => line.push(c),
            }
        }
        let Some(end) = end else { return Err("the GRUB environment block's last line is cut short".into()) };
        rest = &rest[end..];
        let (name, value) = line.split_once('=').ok_or_else(|| format!("a line without '=': {line:?}"))?;
        vars.push((name.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// A GRUB environment block of `size` bytes holding `vars`.
pub fn grub_render(vars: &[(String, String)], size: usize) -> Result<Vec<u8>, String> {
    let mut out = GRUB_HEADER.as_bytes().to_vec();
    for (name, value) in vars {
        if !valid_name(name) {
            return Err(format!("{name:?} cannot be a GRUB variable's name"));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        for b in value.bytes() {
            if b == b'\\' || b == b'\n' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'\n');
    }
    if out.len() > size {
        return Err(format!("the variables take {} bytes; the block has {size}", out.len()));
    }
    out.resize(size, b'#');
    Ok(out)
}

pub fn grub_read(path: &Path) -> Result<Vars, String> {
    let block = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    grub_parse(&block)
}

/// Replaces the block with `vars`, keeping its size (a new one is `GRUB_BLOCK` bytes).
pub fn grub_write(path: &Path, vars: &[(String, String)]) -> Result<(), String> {
    let size = std::fs::metadata(path).map(|m| m.len() as usize).unwrap_or(GRUB_BLOCK).max(GRUB_BLOCK);
    let block = grub_render(vars, size)?;
    super::atomic::write(path, &block, 0o644).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where U-Boot's environment lives: one copy, or two redundant ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbootConfig {
    pub copies: Vec<UbootCopy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbootCopy {
    pub device: PathBuf,
    pub offset: u64,
    pub size: usize,
}

/// Environments larger than this are refused: U-Boot's are kilobytes (128 KiB is large).
const MAX_UBOOT_ENV: usize = 1024 * 1024;

fn number(word: &str) -> Option<u64> {
    match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

/// `fw_env.config`: `device offset size [erase-size [sectors]]` a line, `#` comments; one
/// line for a single copy, two for redundant copies.
pub fn parse_fw_env_config(text: &str) -> Result<UbootConfig, String> {
    let mut copies = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [device, offset, size, ..] = words[..] else {
            return Err(format!("fw_env.config: {line:?} needs a device, an offset and a size"));
        };
        let offset = number(offset).ok_or_else(|| format!("fw_env.config: bad offset in {line:?}"))?;
        let size = number(size)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| (16..=MAX_UBOOT_ENV).contains(s))
            .ok_or_else(|| format!("fw_env.config: bad size in {line:?}"))?;
        copies.push(UbootCopy { device: PathBuf::from(device), offset, size });
    }
    match copies.len() {
        1 | 2 => Ok(UbootConfig { copies }),
        0 => Err("fw_env.config names no environment".into()),
        _ => Err("fw_env.config names more than two copies".into()),
    }
}

/// One copy's content: whether its CRC holds, its flags byte (redundant copies), its data.
struct Image {
    valid: bool,
    flags: u8,
    data: Vec<u8>,
}

fn read_copy(copy: &UbootCopy, redundant: bool) -> io::Result<Image> {
    let mut f = std::fs::File::open(&copy.device)?;
    f.seek(SeekFrom::Start(copy.offset))?;
    let mut raw = vec![0u8; copy.size];
    f.read_exact(&mut raw)?;
    let header = if redundant { 5 } else { 4 };
    let crc = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let data = raw.split_off(header);
    let mut sum = flate2::Crc::new();
    sum.update(&data);
    Ok(Image { valid: sum.sum() == crc, flags: if redundant { raw[4] } else { 0 }, data })
}

/// Which of two valid redundant copies is current: the one whose flag is one past the
/// other's (counting on past 255), else the larger.
fn current(a: u8, b: u8) -> usize {
    if b == a.wrapping_add(1) {
        1
    } else if a == b.wrapping_add(1) {
        0
    } else if b > a {
        1
    } else {
        0
    }
}

fn parse_uboot_data(data: &[u8]) -> Result<Vars, String> {
    let mut vars = Vars::new();
    for pair in data.split(|b| *b == 0) {
        if pair.is_empty() {
            break;
        }
        let text = std::str::from_utf8(pair).map_err(|_| "a U-Boot variable is not text".to_owned())?;
        let (name, value) = text.split_once('=').ok_or_else(|| format!("a U-Boot entry without '=': {text:?}"))?;
        vars.push((name.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// The current environment, and which copy it came from. A copy whose CRC fails (corrupt,
/// or a write cut short) is passed over for the other.
pub fn uboot_read(config: &UbootConfig) -> Result<(Vars, usize), String> {
    let redundant = config.copies.len() == 2;
    let images: Vec<Option<Image>> = config.copies.iter().map(|c| read_copy(c, redundant).ok()).collect();
    let valid: Vec<usize> = (0..images.len()).filter(|i| images[*i].as_ref().is_some_and(|m| m.valid)).collect();
    let chosen = match valid[..] {
        [] => return Err("no copy of the U-Boot environment has a valid CRC".into()),
        [one] => one,
        _ => current(images[0].as_ref().map_or(0, |m| m.flags), images[1].as_ref().map_or(0, |m| m.flags)),
    };
    let image = images[chosen].as_ref().expect("chosen among the valid");
    Ok((parse_uboot_data(&image.data)?, chosen))
}

/// Writes `vars` as the new current environment: into the copy not in use (redundant, with
/// the next flag), else in place; synced before this returns.
pub fn uboot_write(config: &UbootConfig, vars: &[(String, String)]) -> Result<(), String> {
    let redundant = config.copies.len() == 2;
    let (target, flags) = if redundant {
        let images: Vec<Option<Image>> = config.copies.iter().map(|c| read_copy(c, true).ok()).collect();
        let flag = |i: usize| images[i].as_ref().filter(|m| m.valid).map(|m| m.flags);
        match (flag(0), flag(1)) {
            (Some(a), Some(b)) => {
                let now = current(a, b);
                (1 - now, [a, b][now].wrapping_add(1))
            }
            (Some(a), None) => (1, a.wrapping_add(1)),
            (None, Some(b)) => (0, b.wrapping_add(1)),
            (None, None) => (0, 1),
        }
    } else {
        (0, 0)
    };
    let copy = &config.copies[target];
    let header = if redundant { 5 } else { 4 };
    let mut data = Vec::with_capacity(copy.size - header);
    for (name, value) in vars {
        if !valid_name(name) || value.bytes().any(|b| b == 0) {
            return Err(format!("{name:?} cannot be a U-Boot variable"));
        }
        data.extend_from_slice(name.as_bytes());
        data.push(b'=');
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    data.push(0);
    if data.len() > copy.size - header {
        return Err(format!("the variables take {} bytes; the environment has {}", data.len(), copy.size - header));
    }
    data.resize(copy.size - header, 0);
    let mut sum = flate2::Crc::new();
    sum.update(&data);
    let mut image = sum.sum().to_le_bytes().to_vec();
    if redundant {
        image.push(flags);
    }
    image.extend_from_slice(&data);
    let io = |e: io::Error| format!("{}: {e}", copy.device.display());
    let mut f = std::fs::OpenOptions::new().write(true).open(&copy.device).map_err(io)?;
    f.seek(SeekFrom::Start(copy.offset)).map_err(io)?;
    f.write_all(&image).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A systemd-boot entry's boot-counting state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// No counter: blessed (or never on trial).
    Good,
    /// On trial: tries left, tries made.
    Trial { left: u32, done: u32 },
    /// Every try used: the boot loader passes it over.
    Bad { done: u32 },
}

/// `NAME+LEFT-DONE.conf`, `NAME+LEFT.conf` or `NAME.conf`: the name and its state.
pub fn parse_counted(file: &str) -> Option<(&str, Counted)> {
    let stem = file.strip_suffix(".conf")?;
    let Some((name, counter)) = stem.rsplit_once('+') else { return Some((stem, Counted::Good)) };
    let (left, done) = match counter.split_once('-') {
        Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
        None => (counter.parse().ok()?, 0),
    };
    (!name.is_empty()).then_some((name, if left == 0 { Counted::Bad { done } } else { Counted::Trial { left, done } }))
}

/// The entry file of `name` in `dir`, whatever its counter says.
fn counted_entry(dir: &Path, name: &str) -> Result<(String, Counted), String> {
    let list = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    list.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|f| parse_counted(&f).filter(|(n, _)| *n == name).map(|(_, c)| (f.clone(), c)))
        .ok_or_else(|| format!("no boot entry {name} in {}", dir.display()))
}

pub fn counted_state(dir: &Path, name: &str) -> Result<Counted, String> {
    counted_entry(dir, name).map(|(_, c)| c)
}

fn rename_entry(dir: &Path, from: &str, to: &str) -> Result<(), String> {
    if from != to {
        std::fs::rename(dir.join(from), dir.join(to)).map_err(|e| format!("renaming {from} to {to}: {e}"))?;
    }
    super::atomic::sync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Puts the entry on trial with `tries` boots to prove itself (`NAME+TRIES.conf`).
pub fn counted_arm(dir: &Path, name: &str, tries: u32) -> Result<(), String> {
    if tries == 0 {
        return Err("a trial needs at least one try".into());
    }
    let (file, _) = counted_entry(dir, name)?;
    rename_entry(dir, &file, &format!("{name}+{tries}.conf"))
}

/// Blesses the entry: the counter goes, as systemd-bless-boot does.
pub fn counted_bless(dir: &Path, name: &str) -> Result<(), String> {
    let (file, _) = counted_entry(dir, name)?;
    rename_entry(dir, &file, &format!("{name}.conf"))
}

/// Marks the entry bad (`NAME+0-DONE.conf`), as systemd-boot does once its tries are
/// spent: it is passed over for the next entry.
pub fn counted_reject(dir: &Path, name: &str) -> Result<(), String> {
    let (file, state) = counted_entry(dir, name)?;
    let done = match state {
        Counted::Good => 1,
        Counted::Trial { left, done } => done + left,
        Counted::Bad { done } => done.max(1),
    };
    rename_entry(dir, &file, &format!("{name}+0-{done}.conf"))
}

/// Sets the entry's `version` line: systemd-boot boots the highest version first, so the
/// slot on trial must carry the newer one.
pub fn counted_set_version(dir: &Path, name: &str, version: &str) -> Result<(), String> {
    if version.contains(['\n', '\r']) {
        return Err("a version is one line".into());
    }
    let (file, _) = counted_entry(dir, name)?;
    let path = dir.join(&file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines: Vec<String> =
        text.lines().filter(|l| l.split_whitespace().next() != Some("version")).map(str::to_owned).collect();
    lines.push(format!("version {version}"));
    let body = lines.join("\n") + "\n";
    super::atomic::write(&path, body.as_bytes(), 0o644).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    //! Against the real tools where the machine has them (CI installs Debian's grub-common
    //! and libubootenv-tool; without them, and outside CI, these say so and check only our
    //! own reading of what we wrote).

    use super::*;
    use std::process::Command;

    fn tool(name: &str) -> bool {
        let found =
            Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success());
        if !found {
            assert!(std::env::var_os("CI").is_none(), "{name} is missing: CI installs it");
            eprintln!("{name} is not installed: the cross-check with it is skipped");
        }
        found
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("steward-bootenv-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_bad_grub_block_is_refused() {
        assert!(grub_parse(b"hello").is_err());
        assert!(grub_parse(b"# GRUB Environment Block\nnoequals\n###").is_err());
        assert!(grub_parse(b"# GRUB Environment Block\na=b").is_err(), "cut short");
        assert!(grub_parse(b"# GRUB Environment Block\na=b\n##x#").is_err());
        assert!(grub_parse(b"# GRUB Environment Block\na=b\\").is_err());
        assert!(grub_render(&vars(&[("a=b", "c")]), 1024).is_err());
        assert!(grub_render(&vars(&[("a", &"x".repeat(1100))]), 1024).is_err());
        let block = grub_render(&vars(&[("slot", "b"), ("odd", "back\\slash\nnewline")]), 1024).unwrap();
        assert_eq!(block.len(), 1024);
        assert_eq!(grub_parse(&block).unwrap(), vars(&[("slot", "b"), ("odd", "back\\slash\nnewline")]));
    }

    #[test]
    fn grub_editenv_reads_what_steward_writes_and_the_other_way_round() {
        let d = dir("grub");
        let env = d.join("grubenv");
        grub_write(&env, &vars(&[("boot_once", "b"), ("b_TRY", "1")])).unwrap();
        assert_eq!(std::fs::metadata(&env).unwrap().len(), 1024);
        if tool("grub-editenv") {
            let out = Command::new("grub-editenv").arg(&env).arg("list").output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "boot_once=b\nb_TRY=1\n");
            let set = Command::new("grub-editenv").arg(&env).args(["set", "ORDER=b a"]).status().unwrap();
            assert!(set.success());
            let ours = grub_read(&env).unwrap();
            assert!(
                ours.contains(&("ORDER".into(), "b a".into())) && ours.contains(&("b_TRY".into(), "1".into())),
                "{ours:?}"
            );
            let fresh = d.join("made-by-grub");
            assert!(Command::new("grub-editenv").arg(&fresh).arg("create").status().unwrap().success());
            assert_eq!(grub_read(&fresh).unwrap(), Vars::new());
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_fw_env_config_is_refused() {
        assert!(parse_fw_env_config("").is_err());
        assert!(parse_fw_env_config("/dev/mtd0 0x0").is_err());
        assert!(parse_fw_env_config("/dev/mtd0 zz 0x4000").is_err());
        assert!(parse_fw_env_config("/dev/mtd0 0 0x4\n").is_err(), "too small");
        assert!(parse_fw_env_config("a 0 0x4000\nb 0 0x4000\nc 0 0x4000").is_err());
        let c = parse_fw_env_config("# comment\n/dev/mmcblk0 0x3fe000 0x2000 0x200\n").unwrap();
        assert_eq!(c.copies, vec![UbootCopy { device: "/dev/mmcblk0".into(), offset: 0x3fe000, size: 0x2000 }]);
    }

    fn uboot_setup(d: &Path, redundant: bool) -> (PathBuf, UbootConfig) {
        let mut text = String::new();
        for name in if redundant { &["env-a", "env-b"][..] } else { &["env-a"][..] } {
            let path = d.join(name);
            std::fs::write(&path, vec![0xffu8; 0x4000]).unwrap();
            text.push_str(&format!("{} 0x0 0x4000\n", path.display()));
        }
        let config = d.join("fw_env.config");
        std::fs::write(&config, &text).unwrap();
        (config, parse_fw_env_config(&text).unwrap())
    }

    fn printenv(config: &Path) -> String {
        let out = Command::new("fw_printenv").arg("-c").arg(config).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn fw_printenv_reads_what_steward_writes_and_the_other_way_round() {
        for redundant in [false, true] {
            let d = dir(if redundant { "uboot2" } else { "uboot1" });
            let (config_path, config) = uboot_setup(&d, redundant);
            assert!(uboot_read(&config).is_err(), "blank flash has no valid copy");
            uboot_write(&config, &vars(&[("BOOT_ORDER", "A B"), ("BOOT_B_LEFT", "3")])).unwrap();
            uboot_write(&config, &vars(&[("BOOT_ORDER", "B A"), ("BOOT_B_LEFT", "3")])).unwrap();
            assert_eq!(uboot_read(&config).unwrap().0, vars(&[("BOOT_ORDER", "B A"), ("BOOT_B_LEFT", "3")]));
            if tool("fw_printenv") {
                // fw_printenv lists them sorted.
                assert_eq!(printenv(&config_path), "BOOT_B_LEFT=3\nBOOT_ORDER=B A\n");
                let set =
                    Command::new("fw_setenv").arg("-c").arg(&config_path).args(["BOOT_B_LEFT", "2"]).status().unwrap();
                assert!(set.success());
                let ours = uboot_read(&config).unwrap().0;
                assert!(ours.contains(&("BOOT_B_LEFT".into(), "2".into())), "{ours:?}");
                assert!(ours.contains(&("BOOT_ORDER".into(), "B A".into())), "{ours:?}");
            }
            std::fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn a_torn_or_corrupt_copy_is_passed_over_for_the_other() {
        let d = dir("torn");
        let (config_path, config) = uboot_setup(&d, true);
        uboot_write(&config, &vars(&[("v", "1")])).unwrap();
        uboot_write(&config, &vars(&[("v", "2")])).unwrap();
        let (_, now) = uboot_read(&config).unwrap();
        // The current copy's data is damaged (a write cut short): the other one is read.
        let damaged = &config.copies[now].device;
        let mut bytes = std::fs::read(damaged).unwrap();
        bytes[8] ^= 0x55;
        std::fs::write(damaged, &bytes).unwrap();
        let (got, from) = uboot_read(&config).unwrap();
        assert_eq!((got, from), (vars(&[("v", "1")]), 1 - now));
        if tool("fw_printenv") {
            assert_eq!(printenv(&config_path), "v=1\n");
        }
        // The next write replaces the damaged copy and becomes current.
        uboot_write(&config, &vars(&[("v", "3")])).unwrap();
        assert_eq!(uboot_read(&config).unwrap(), (vars(&[("v", "3")]), now));
        // Both damaged: an error, never a guess.
        for c in &config.copies {
            let mut bytes = std::fs::read(&c.device).unwrap();
            bytes[0] ^= 1;
            std::fs::write(&c.device, &bytes).unwrap();
        }
        assert!(uboot_read(&config).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn systemd_boot_counters_are_read_armed_and_blessed() {
        assert_eq!(parse_counted("b.conf"), Some(("b", Counted::Good)));
        assert_eq!(parse_counted("b+3.conf"), Some(("b", Counted::Trial { left: 3, done: 0 })));
        assert_eq!(parse_counted("my+entry+1-2.conf"), Some(("my+entry", Counted::Trial { left: 1, done: 2 })));
        assert_eq!(parse_counted("b+0-3.conf"), Some(("b", Counted::Bad { done: 3 })));
        for bad in ["b", "b+x.conf", "b+1-y.conf", "+1.conf", "b+-1.conf"] {
            assert_eq!(parse_counted(bad), None, "{bad}");
        }
        let d = dir("sdboot");
        std::fs::write(d.join("slot-a.conf"), "title A\n").unwrap();
        std::fs::write(d.join("slot-b.conf"), "title B\n").unwrap();
        counted_arm(&d, "slot-b", 3).unwrap();
        assert!(d.join("slot-b+3.conf").exists() && !d.join("slot-b.conf").exists());
        // The boot loader counts a try down, as systemd-boot renames it.
        std::fs::rename(d.join("slot-b+3.conf"), d.join("slot-b+2-1.conf")).unwrap();
        assert_eq!(counted_state(&d, "slot-b").unwrap(), Counted::Trial { left: 2, done: 1 });
        counted_bless(&d, "slot-b").unwrap();
        assert_eq!(counted_state(&d, "slot-b").unwrap(), Counted::Good);
        assert_eq!(std::fs::read_to_string(d.join("slot-b.conf")).unwrap(), "title B\n");
        assert_eq!(counted_state(&d, "slot-a").unwrap(), Counted::Good);
        assert!(counted_arm(&d, "slot-c", 3).is_err());
        assert!(counted_arm(&d, "slot-a", 0).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn flags_count_on_past_255() {
        assert_eq!(current(255, 0), 1);
        assert_eq!(current(0, 255), 0);
        assert_eq!(current(3, 4), 1);
        assert_eq!(current(9, 8), 0);
    }
}
