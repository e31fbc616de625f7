//! Board profiles: what an appliance has and how steward reaches it. Data only; the engine
//! asks the profile, it never checks which board it runs on.

use miniserde::{Deserialize, json};

const DEV_PROFILE: &str = include_str!("../board/dev.json");

/// The storage kinds a board may offer (`storage_options`) and a settings file may name.
pub const STORAGE_TYPES: [&str; 5] = ["local", "nfs", "aoe", "iscsi", "nbd"];

/// A name a client or a board gives a plan, repository, hook or key: 1 to 64 of
/// `[A-Za-z0-9_-]`, so it is safe in a path, a log line and a URL.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Deserialize, Debug, Clone)]
pub struct Board {
    pub name: String,
    pub jidoteki: Jidoteki,
    pub info: InfoFiles,
    pub services: Vec<Service>,
    pub network: NetworkBackend,
    pub storage: StorageBackend,
    pub update: UpdateProfile,
    pub power: Power,
    /// Directories (below `--root`) whose files `/logs` archives.
    pub logs: Vec<String>,
    pub debug: DebugProfile,
    pub backup: BackupProfile,
    /// Applications with the IncusOS shared application API.
    pub applications: Vec<Application>,
    /// Who steward becomes once its port and state are open, when started as root.
    pub run_as: Option<RunAs>,
    /// A development profile: run with `--root /` (the default), it reads the host's
    /// `/proc` and `/sys` but keeps every other path below `--data/dev-root`, so nothing it
    /// writes (rendered settings, update slots, application data, restores, resets) lands
    /// in the host. Seeded with the info files on first start.
    pub sandbox: Option<bool>,
    /// The TPM's device (a system path, default `/dev/tpmrm0`), or a unix socket speaking
    /// the TPM's command bytes (swtpm's `--server type=unixio`). sysfs is read when it is
    /// absent or does not answer.
    pub tpm: Option<String>,
}

/// The user (name or number) and the only capabilities (`CAP_SYS_BOOT`...) kept.
#[derive(Deserialize, Debug, Clone)]
pub struct RunAs {
    pub user: String,
    pub group: Option<String>,
    /// Supplementary groups (names from /etc/group, or numbers): device access without a
    /// capability, e.g. `disk` for the drives and update slots, `tss` for `/dev/tpmrm0`.
    pub groups: Option<Vec<String>>,
    pub capabilities: Vec<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Application {
    pub name: String,
    /// Its state and configuration (below `--root`): backed up, restored, wiped by a reset.
    pub paths: Vec<String>,
    /// Cached artifacts, added to a backup only with `complete: true`.
    pub cache: Vec<String>,
    /// Restarts it (argv, no shell), after a restore or a reset too.
    pub restart: Option<Vec<String>>,
    /// File (below `--root`) holding its version, shown in its state.
    pub version_file: Option<String>,
}

/// What a backup holds besides steward's own state (application data directories below
/// `--root`), where plans may write backups, and the commands plans may run.
#[derive(Deserialize, Debug, Clone)]
pub struct BackupProfile {
    pub paths: Vec<String>,
    /// Directories (below `--root`) a plan's destination must lie in: a destination is a
    /// place steward writes to, so the board says where that may be. Without any, plans
    /// cannot be created.
    pub destinations: Option<Vec<String>>,
    /// Commands a plan may run after a backup, by name (`"hooks":{"on_failure":"notify"}`),
    /// whatever the plan's author may do. A plan may also give an argument list of its own,
    /// but only with the `admin` capability: that runs any program as steward.
    pub hooks: Option<Vec<NamedHook>>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct NamedHook {
    pub name: String,
    /// argv, no shell; STEWARD_PLAN, STEWARD_STATUS, STEWARD_BACKUP... in its environment.
    pub command: Vec<String>,
}

impl BackupProfile {
    pub fn destinations(&self) -> &[String] {
        self.destinations.as_deref().unwrap_or(&[])
    }

    pub fn hook(&self, name: &str) -> Option<&NamedHook> {
        self.hooks.as_deref().unwrap_or(&[]).iter().find(|h| h.name == name)
    }

    pub fn hook_names(&self) -> Vec<&str> {
        self.hooks.as_deref().unwrap_or(&[]).iter().map(|h| h.name.as_str()).collect()
    }
}

/// The debug bundle: encrypted to the vendor's X25519 public key (hex, from keygen's
/// debug.pub), with the output of these commands (argv, no shell) added.
#[derive(Deserialize, Debug, Clone)]
pub struct DebugProfile {
    pub public_key: String,
    pub commands: Vec<Vec<String>>,
}

/// The bootloaders steward drives (`update.boot.loader`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bootloader {
    Grub,
    Uboot,
    SystemdBoot,
}

impl BootProfile {
    /// `None` only for a profile `validate` refused.
    pub fn bootloader(&self) -> Option<Bootloader> {
        match self.loader.as_str() {
            "grub" => Some(Bootloader::Grub),
            "uboot" => Some(Bootloader::Uboot),
            "systemd-boot" => Some(Bootloader::SystemdBoot),
            _ => None,
        }
    }

    pub fn names(&self) -> [String; 2] {
        match self.names.as_deref() {
            Some([a, b]) => [a.clone(), b.clone()],
            _ => ["A".into(), "B".into()],
        }
    }

    pub fn tries(&self) -> u32 {
        self.tries.unwrap_or(1)
    }

    fn validate(&self) -> Result<(), String> {
        if self.bootloader().is_none() {
            return Err(format!("update.boot.loader: {:?} is not grub, uboot or systemd-boot", self.loader));
        }
        if !self.env.starts_with('/') || self.env.split('/').any(|p| p == "..") {
            return Err("update.boot.env must be an absolute path below --root".into());
        }
        // Names go into variable names and file names: plain words only.
        let plain = |n: &String| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        match self.names.as_deref() {
            None => {}
            Some([a, b]) if plain(a) && plain(b) && a != b => {}
            Some(_) => return Err("update.boot.names must be two different plain names".into()),
        }
        match self.booted.as_deref().map(|b| b.split_once(':')) {
            None | Some(Some(("cmdline" | "env", _))) => {}
            _ => return Err("update.boot.booted must be cmdline:KEY or env:NAME".into()),
        }
        if !(1..=9).contains(&self.tries()) {
            return Err("update.boot.tries must be from 1 to 9".into());
        }
        if self.health_check.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("update.boot.health_check: empty command".into());
        }
        Ok(())
    }
}

/// How `/reboot` reboots: `none` (a dev board: logged, nothing happens), `syscall`
/// (sync, then the reboot system call; needs CAP_SYS_BOOT) or `command` (argv, no shell).
#[derive(Deserialize, Debug, Clone)]
pub struct Power {
    pub method: String,
    pub command: Option<Vec<String>>,
    /// With method `command`: how to power off (IncusOS `:poweroff`).
    pub poweroff_command: Option<Vec<String>>,
    /// Jidoteki's `/reboot` takes a backup first when this is true.
    pub backup_before_reboot: Option<bool>,
}

/// How updates reach this board: the vendor's keys (public signing key and transit key, hex)
/// and the A/B slots (files or block devices below `--root`).
#[derive(Deserialize, Debug, Clone)]
pub struct UpdateProfile {
    pub signing_public_key: String,
    pub encryption_key: String,
    pub slots: Vec<String>,
    /// File recording which slot holds the running system.
    pub active_slot: String,
    /// Run after the new slot is written and verified (argv, no shell); it switches the boot
    /// slot. Environment: STEWARD_SLOT, STEWARD_SLOT_PREVIOUS, STEWARD_VERSION.
    pub activate: Option<Vec<String>>,
    /// Run for `bundle` payloads (argv, no shell) in the staging dir they were extracted to;
    /// env STEWARD_STAGING, STEWARD_ROOT, STEWARD_VERSION. Without it, bundles are refused.
    pub install: Option<Vec<String>>,
    /// How a new slot boots on trial and is committed or rolled back; without it, the
    /// `activate` hook switches slots and nothing checks that the new one boots.
    pub boot: Option<BootProfile>,
}

/// The bootloader steward drives for trial boots (board/README.md has a worked example of
/// each, with the boot script that goes with it).
#[derive(Deserialize, Debug, Clone)]
pub struct BootProfile {
    /// `grub` (a grubenv block), `uboot` (an environment image) or `systemd-boot` (boot
    /// counting on loader entries).
    pub loader: String,
    /// Below `--root`: the grubenv file, the `fw_env.config` file, or the loader entries dir.
    pub env: String,
    /// The two slots' names as the bootloader knows them, in `slots`' order (default
    /// `["A","B"]`; for systemd-boot, the entry file names without counter or `.conf`).
    pub names: Option<Vec<String>>,
    /// How steward learns which slot it booted: `cmdline:KEY` (the value of `KEY=` on
    /// `/proc/cmdline`, the default `cmdline:steward.slot`) or `env:NAME` (a variable the
    /// bootloader set in its environment).
    pub booted: Option<String>,
    /// Boots a trial gets before the bootloader falls back (default 1; GRUB's scheme has one).
    pub tries: Option<u32>,
    /// Run on a trial boot before the slot is committed (argv, no shell); non-zero exit
    /// rolls the update back. STEWARD_VERSION and STEWARD_SLOT in its environment.
    pub health_check: Option<Vec<String>>,
}

/// Where validated network settings are rendered (below `--root`), as quoted key="value"
/// lines a board's network script can source safely.
#[derive(Deserialize, Debug, Clone)]
pub struct NetworkBackend {
    pub config: String,
    /// Run after the file is written (argv, no shell; STEWARD_NETWORK_CONFIG and
    /// STEWARD_NETWORK_MODE in its environment), e.g. the board's network restart script.
    pub apply: Option<Vec<String>>,
    /// The settings the appliance ships with (a Jidoteki `network` section): what `GET
    /// /settings` answers until settings are stored. Without it, that answer is 404.
    pub default: Option<json::Value>,
    /// `hook` (the default: `config` gets key="value" lines, then `apply` runs), `networkd`
    /// or `ifupdown` (`config` is rendered as a `.network` unit or an interfaces file, then
    /// `apply` runs; the hostname is set), or `netlink`: steward sets the kernel itself
    /// (link, address, default route, hostname) and writes `resolv_conf`, `hostname_file`
    /// and `ntp_config`.
    pub backend: Option<String>,
    /// The resolver file the netlink backend writes (default /etc/resolv.conf).
    pub resolv_conf: Option<String>,
    /// The hostname file the netlink backend writes (default /etc/hostname).
    pub hostname_file: Option<String>,
    /// Where the netlink backend writes the NTP server (`server NAME iburst`, which chrony,
    /// ntpd and openntpd read); without it the server is stored and shown only.
    pub ntp_config: Option<String>,
    /// DHCP on the netlink backend: the board's DHCP client for the interface (argv, no
    /// shell; STEWARD_INTERFACE in its environment), e.g. `["udhcpc", "-i", "eth0", "-n",
    /// "-q"]`, run once the link is up and steward's static address is off.
    pub dhcp_client: Option<Vec<String>>,
}

/// How network settings reach the system (`network.backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetBackend {
    Hook,
    Netlink,
    /// `config` is a systemd-networkd `.network` unit.
    Networkd,
    /// `config` is ifupdown's interfaces file.
    Ifupdown,
}

impl NetworkBackend {
    /// `None` only for a profile `validate` refused.
    pub fn backend(&self) -> Option<NetBackend> {
        match self.backend.as_deref() {
            None | Some("hook") => Some(NetBackend::Hook),
            Some("netlink") => Some(NetBackend::Netlink),
            Some("networkd") => Some(NetBackend::Networkd),
            Some("ifupdown") => Some(NetBackend::Ifupdown),
            Some(_) => None,
        }
    }

    pub fn resolv_conf(&self) -> &str {
        self.resolv_conf.as_deref().unwrap_or("/etc/resolv.conf")
    }

    pub fn hostname_file(&self) -> &str {
        self.hostname_file.as_deref().unwrap_or("/etc/hostname")
    }
}

/// The storage types this appliance offers (Jidoteki's storage-options.json) and where the
/// chosen one is rendered for the next boot.
#[derive(Deserialize, Debug, Clone)]
pub struct StorageBackend {
    pub options: Vec<String>,
    pub config: String,
    /// Creates, changes or deletes a pool of drives (argv, no shell; STEWARD_POOL_ACTION,
    /// STEWARD_POOL_NAME, STEWARD_POOL_TYPE, STEWARD_POOL_DEVICES in its environment), e.g.
    /// the board's zpool or mdadm script. Without it, `/1.0/system/storage` takes no pools.
    pub pool_hook: Option<Vec<String>>,
    /// Name prefixes of the block devices offered as drives (listed, wiped, pooled), e.g.
    /// `["nvme", "sd"]` to keep the eMMC the system boots from out of reach. Without it,
    /// every disk but loop, RAM, zram, device-mapper and optical devices.
    pub disks: Option<Vec<String>>,
    /// The storage the appliance ships with (a Jidoteki `storage` section, e.g. `{"type":
    /// "local"}`): what `GET /storage` answers until a choice is stored. Without it, 404.
    pub default: Option<json::Value>,
}

/// The options Jidoteki kept in `/usr/local/etc/jidoteki-admin-api.json`, with its key names
/// so a vendor's existing file can be pasted in.
#[derive(Deserialize, Debug, Clone)]
pub struct Jidoteki {
    /// Optional endpoints switched on: settings, certs, license, storage, backup.
    pub endpoints: Vec<String>,
    #[serde(rename = "first-run")]
    pub first_run: Option<FirstRun>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct FirstRun {
    pub enabled: bool,
    #[serde(rename = "word-length")]
    pub word_length: u32,
}

/// Files (below `--root`) that `/version`, `/changelog` and `/build` serve.
#[derive(Deserialize, Debug, Clone)]
pub struct InfoFiles {
    pub version: String,
    pub changelog: String,
    pub build: String,
}

/// A service reported by `/services`; exactly one way of telling its state is given.
#[derive(Deserialize, Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Running if the file holds the pid of a live, non-zombie process.
    pub pidfile: Option<String>,
    /// Running if a process with this command name (`/proc/PID/comm`) exists.
    pub process: Option<String>,
    /// Running if this command exits 0 within the time limit (argv, no shell).
    pub command: Option<Vec<String>>,
}

pub const OPTIONAL_ENDPOINTS: [&str; 5] = ["settings", "certs", "license", "storage", "backup"];

/// The longest first-run passphrase we generate; more words add nothing but typing.
const MAX_WORDS: u32 = 16;

impl Board {
    /// `spec` is a compiled-in board name or a path to a profile file.
    pub fn load(spec: &str) -> Result<Board, String> {
        let text = if spec == "dev" {
            DEV_PROFILE.to_owned()
        } else if spec.contains('/') || spec.ends_with(".json") {
            std::fs::read_to_string(spec).map_err(|e| format!("board profile {spec}: {e}"))?
        } else {
            return Err(format!("unknown board {spec:?}: compiled-in boards are: dev; or give a path"));
        };
        Board::parse(&text).map_err(|e| format!("board profile {spec}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Board, String> {
        let board: Board = json::from_str(text).map_err(|_| "not a valid profile (JSON shape)".to_owned())?;
        board.validate()?;
        Ok(board)
    }

    fn validate(&self) -> Result<(), String> {
        for e in &self.jidoteki.endpoints {
            if !OPTIONAL_ENDPOINTS.contains(&e.as_str()) {
                return Err(format!("unknown optional endpoint {e:?} (known: {})", OPTIONAL_ENDPOINTS.join(", ")));
            }
        }
        if let Some(fr) = &self.jidoteki.first_run {
            if fr.enabled && !(1..=MAX_WORDS).contains(&fr.word_length) {
                return Err(format!("first-run word-length must be 1 to {MAX_WORDS}"));
            }
        }
        for (what, path) in
            [("version", &self.info.version), ("changelog", &self.info.changelog), ("build", &self.info.build)]
        {
            if !path.starts_with('/') {
                return Err(format!("info.{what} must be an absolute path below --root"));
            }
        }
        for (what, path) in [("network.config", &self.network.config), ("storage.config", &self.storage.config)] {
            if !path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err(format!("{what} must be an absolute path below --root"));
            }
        }
        if self.update.slots.len() != 2 {
            return Err("update.slots must name exactly two slots (A and B)".into());
        }
        for (field, key) in [
            ("update.signing_public_key", &self.update.signing_public_key),
            ("update.encryption_key", &self.update.encryption_key),
        ] {
            crate::hex::parse_hex(key, 32).map_err(|e| format!("{field}: {e}"))?;
        }
        if let Some(r) = &self.run_as {
            if let Some(c) = r.capabilities.iter().find(|c| crate::system::privilege::parse_capability(c).is_none()) {
                return Err(format!("run_as.capabilities: unknown capability {c:?}"));
            }
        }
        if self.storage.pool_hook.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("storage.pool_hook: empty command".into());
        }
        if self.network.backend().is_none() {
            return Err(format!(
                "network.backend: {:?} is not hook, netlink, networkd or ifupdown",
                self.network.backend
            ));
        }
        for (field, path) in [
            ("network.resolv_conf", &self.network.resolv_conf),
            ("network.hostname_file", &self.network.hostname_file),
            ("network.ntp_config", &self.network.ntp_config),
        ] {
            if path.as_ref().is_some_and(|p| !p.starts_with('/')) {
                return Err(format!("{field}: an absolute path"));
            }
        }
        if self.network.backend() == Some(NetBackend::Netlink) && self.network.apply.is_some() {
            return Err("network.apply: the netlink backend applies the settings itself; drop the hook".into());
        }
        if self.network.dhcp_client.is_some() && self.network.backend() != Some(NetBackend::Netlink) {
            return Err("network.dhcp_client: only the netlink backend runs a DHCP client".into());
        }
        if self.network.dhcp_client.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("network.dhcp_client: empty command".into());
        }
        if self.tpm.as_ref().is_some_and(|t| !t.starts_with('/')) {
            return Err("tpm: an absolute path (e.g. /dev/tpmrm0)".into());
        }
        // An empty prefix offers every block device, the system's own disk and loops too.
        if self
            .storage
            .disks
            .as_ref()
            .is_some_and(|d| d.is_empty() || d.iter().any(|p| p.is_empty() || p.contains('/')))
        {
            return Err("storage.disks: name prefixes of block devices, none empty (e.g. [\"nvme\", \"sd\"])".into());
        }
        if self.network.apply.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("network.apply: empty command".into());
        }
        if self.update.install.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("update.install: empty command".into());
        }
        if self.update.activate.as_ref().is_some_and(|a| a.is_empty()) {
            return Err("update.activate: empty command".into());
        }
        if let Some(boot) = &self.update.boot {
            boot.validate()?;
        }
        crate::hex::parse_hex(&self.debug.public_key, 32).map_err(|e| format!("debug.public_key: {e}"))?;
        if self.debug.commands.iter().any(|c| c.is_empty()) {
            return Err("debug.commands: empty command".into());
        }
        for app in &self.applications {
            if app.name.is_empty() || !app.name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                return Err(format!("application name {:?} must be letters, digits, - or _", app.name));
            }
            if app.paths.iter().chain(&app.cache).any(|p| !p.starts_with('/') || p.split('/').any(|s| s == "..")) {
                return Err(format!("application {}: paths must be absolute paths below --root", app.name));
            }
            if app.restart.as_ref().is_some_and(|r| r.is_empty()) {
                return Err(format!("application {}: empty restart command", app.name));
            }
        }
        if self.backup.paths.iter().any(|p| !p.starts_with('/') || p.split('/').any(|s| s == "..")) {
            return Err("backup.paths must be absolute paths below --root".into());
        }
        for d in self.backup.destinations() {
            if !d.starts_with('/') || d.split('/').any(|s| s == "..") || d.trim_end_matches('/').is_empty() {
                return Err(format!("backup.destinations: {d:?} must be an absolute directory below --root, not /"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for h in self.backup.hooks.as_deref().unwrap_or(&[]) {
            if h.command.first().is_none_or(|c| !c.starts_with('/')) {
                return Err(format!("backup.hooks: {:?} needs a command whose first item is an absolute path", h.name));
            }
            if !valid_id(&h.name) || !names.insert(h.name.as_str()) {
                return Err(format!("backup.hooks: {:?} must be a unique name of letters, digits, - or _", h.name));
            }
        }
        match (self.power.method.as_str(), &self.power.command) {
            ("none" | "syscall", None) => {}
            ("command", Some(c)) if !c.is_empty() => {}
            _ => return Err("power.method must be none, syscall, or command with a non-empty power.command".into()),
        }
        for o in &self.storage.options {
            if !STORAGE_TYPES.contains(&o.as_str()) {
                return Err(format!("unknown storage option {o:?}"));
            }
        }
        for s in &self.services {
            let ways =
                usize::from(s.pidfile.is_some()) + usize::from(s.process.is_some()) + usize::from(s.command.is_some());
            if s.name.is_empty() || ways != 1 {
                return Err(format!("service {:?} needs a name and exactly one of pidfile, process, command", s.name));
            }
            if s.command.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(format!("service {:?}: empty command", s.name));
            }
        }
        Ok(())
    }

    pub fn endpoint_enabled(&self, name: &str) -> bool {
        self.jidoteki.endpoints.iter().any(|e| e == name)
    }

    /// Number of passphrase words when first-run is on.
    pub fn first_run_words(&self) -> Option<u32> {
        self.jidoteki.first_run.as_ref().filter(|f| f.enabled).map(|f| f.word_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_dev_profile_is_valid() {
        let b = Board::load("dev").unwrap();
        assert_eq!(b.name, "dev");
    }

    #[test]
    fn rejects_bad_profiles() {
        let base = r#"{"name":"x","jidoteki":{"endpoints":[ENDPOINTS]FIRSTRUN},"info":{"version":"/v","changelog":"/c","build":"/b"},"services":[SERVICES],"network":{"config":"/n"},"storage":{"options":["local"],"config":"/s"},"update":{"signing_public_key":"KEY","encryption_key":"KEY","slots":["/a","/b"],"active_slot":"/s"},"power":{"method":"none"},"logs":[],"debug":{"public_key":"KEY","commands":[]},"backup":{"paths":[]},"applications":[]}"#.replace("KEY", &"0".repeat(64));
        let make =
            |e: &str, f: &str, s: &str| base.replace("ENDPOINTS", e).replace("FIRSTRUN", f).replace("SERVICES", s);
        assert!(Board::parse(&make("", "", "")).is_ok());
        assert!(Board::parse(&make(r#""nope""#, "", "")).is_err());
        assert!(Board::parse(&make("", r#","first-run":{"enabled":true,"word-length":0}"#, "")).is_err());
        assert!(Board::parse(&make("", r#","first-run":{"enabled":false,"word-length":0}"#, "")).is_ok());
        assert!(Board::parse(&make("", "", r#"{"name":"a"}"#)).is_err());
        assert!(Board::parse(&make("", "", r#"{"name":"a","pidfile":"/p","process":"p"}"#)).is_err());
        assert!(Board::parse(&make("", "", r#"{"name":"a","command":[]}"#)).is_err());
        let disks =
            |list: &str| make("", "", "").replace(r#""config":"/s"}"#, &format!(r#""config":"/s","disks":{list}}}"#));
        Board::parse(&disks(r#"["nvme","sd"]"#)).unwrap();
        for bad in ["[]", r#"[""]"#, r#"["nvme",""]"#, r#"["../sda"]"#] {
            let e = Board::parse(&disks(bad)).unwrap_err();
            assert!(e.contains("storage.disks"), "{bad}: {e}");
        }
        let network = |extra: &str| {
            make("", "", "").replace(r#""network":{"config":"/n"}"#, &format!(r#""network":{{"config":"/n"{extra}}}"#))
        };
        Board::parse(&network(r#","backend":"netlink","dhcp_client":["/sbin/udhcpc"],"ntp_config":"/etc/ntp.conf""#))
            .unwrap();
        for (bad, field) in [
            (r#","backend":"nm""#, "network.backend"),
            (r#","backend":"netlink","apply":["/x"]"#, "network.apply"),
            (r#","dhcp_client":["/sbin/udhcpc"]"#, "network.dhcp_client"),
            (r#","backend":"netlink","dhcp_client":[]"#, "network.dhcp_client"),
            (r#","backend":"netlink","resolv_conf":"etc/resolv.conf""#, "network.resolv_conf"),
        ] {
            let e = Board::parse(&network(bad)).unwrap_err();
            assert!(e.contains(field), "{bad}: {e}");
        }
        let relative_tpm = make("", "", "").replace(r#""name":"x","#, r#""name":"x","tpm":"dev/tpm0","#);
        assert!(Board::parse(&relative_tpm).unwrap_err().starts_with("tpm:"));
        assert!(Board::parse("{").is_err());
        assert!(Board::load("nosuchboard").is_err());
    }
}
