//! IncusOS answers checked against upstream's Go types, as `encoding/json` decodes them into
//! a client's structs: every field without `omitempty` must be there, and every field that is
//! there must have the JSON type its Go type takes (a string where Go has `time.Time`, a
//! number where it has `uint64`, …). Written from `../shared/upstream/incusos/` (the
//! `incus-osd/api` types and lxc/incus v7.3.0's `api.Resources`).

use miniserde::json::{Number, Value};

pub enum Shape {
    Str,
    /// Go's unsigned integers: a JSON number that is a non-negative integer.
    Uint,
    /// Go's signed integers.
    Int,
    Float,
    Bool,
    List(&'static Shape),
    /// Go's `map[string]T`.
    Map(&'static Shape),
    Struct(&'static [Field]),
    /// `any`, or a type this check does not go into.
    Any,
    /// A pointer: `null` or the shape.
    Ptr(&'static Shape),
}

/// A struct field: its JSON key, whether it carries `omitempty`, its shape.
pub struct Field(pub &'static str, pub bool, pub &'static Shape);

use Shape::*;

const ALWAYS: bool = false;
const OMITEMPTY: bool = true;

/// Every problem with `v` as `shape`, each with its JSON path.
pub fn check(v: &Value, shape: &Shape, path: &str, problems: &mut Vec<String>) {
    let kind = |ok: bool, want: &str, problems: &mut Vec<String>| {
        if !ok {
            problems.push(format!("{path}: want {want}, got {v:?}"));
        }
    };
    match shape {
        Str => kind(matches!(v, Value::String(_)), "a string", problems),
        Uint => kind(matches!(v, Value::Number(Number::U64(_))), "an unsigned integer", problems),
        Int => kind(matches!(v, Value::Number(Number::U64(_) | Number::I64(_))), "an integer", problems),
        Float => kind(matches!(v, Value::Number(_)), "a number", problems),
        Bool => kind(matches!(v, Value::Bool(_)), "a bool", problems),
        Any => {}
        // Go decodes null into a nil slice, map or pointer.
        Ptr(_) | List(_) | Map(_) if matches!(v, Value::Null) => {}
        Ptr(inner) => check(v, inner, path, problems),
        List(item) => match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    check(it, item, &format!("{path}[{i}]"), problems);
                }
            }
            _ => kind(false, "a list", problems),
        },
        Map(item) => match v {
            Value::Object(m) => {
                for (k, it) in m.iter() {
                    check(it, item, &format!("{path}.{k}"), problems);
                }
            }
            _ => kind(false, "an object", problems),
        },
        Struct(fields) => match v {
            Value::Object(m) => {
                for Field(key, omitempty, shape) in fields.iter() {
                    match m.get(*key) {
                        Some(it) => check(it, shape, &format!("{path}.{key}"), problems),
                        None if !omitempty => problems.push(format!("{path}.{key}: missing (always sent upstream)")),
                        None => {}
                    }
                }
            }
            _ => kind(false, "an object", problems),
        },
    }
}

/// Panics with every problem at once.
pub fn assert_decodes(v: &Value, shape: &Shape, what: &str) {
    let mut problems = Vec::new();
    check(v, shape, "", &mut problems);
    assert!(problems.is_empty(), "{what} does not decode as upstream's type:\n{}", problems.join("\n"));
}

// lxc/incus v7.3.0 shared/api/resource.go
const CPU_THREAD: Shape = Struct(&[
    Field("id", ALWAYS, &Int),
    Field("numa_node", ALWAYS, &Uint),
    Field("thread", ALWAYS, &Uint),
    Field("online", ALWAYS, &Bool),
    Field("isolated", ALWAYS, &Bool),
]);
const CPU_CORE: Shape = Struct(&[
    Field("core", ALWAYS, &Uint),
    Field("cluster", ALWAYS, &Uint),
    Field("die", ALWAYS, &Uint),
    Field("threads", ALWAYS, &List(&CPU_THREAD)),
    Field("frequency", OMITEMPTY, &Uint),
    Field("flags", ALWAYS, &List(&Str)),
]);
const CPU_CACHE: Shape =
    Struct(&[Field("level", ALWAYS, &Uint), Field("type", ALWAYS, &Str), Field("size", ALWAYS, &Uint)]);
const CPU_SOCKET: Shape = Struct(&[
    Field("name", OMITEMPTY, &Str),
    Field("vendor", OMITEMPTY, &Str),
    Field("socket", ALWAYS, &Uint),
    Field("cache", OMITEMPTY, &List(&CPU_CACHE)),
    Field("cores", ALWAYS, &List(&CPU_CORE)),
    Field("frequency", OMITEMPTY, &Uint),
    Field("frequency_minimum", OMITEMPTY, &Uint),
    Field("frequency_turbo", OMITEMPTY, &Uint),
]);
const CPU: Shape = Struct(&[
    Field("architecture", ALWAYS, &Str),
    Field("sockets", ALWAYS, &List(&CPU_SOCKET)),
    Field("total", ALWAYS, &Uint),
]);
const MEMORY_NODE: Shape = Struct(&[
    Field("numa_node", ALWAYS, &Uint),
    Field("hugepages_used", ALWAYS, &Uint),
    Field("hugepages_total", ALWAYS, &Uint),
    Field("used", ALWAYS, &Uint),
    Field("total", ALWAYS, &Uint),
]);
const MEMORY: Shape = Struct(&[
    Field("nodes", OMITEMPTY, &List(&MEMORY_NODE)),
    Field("hugepages_total", ALWAYS, &Uint),
    Field("hugepages_used", ALWAYS, &Uint),
    Field("hugepages_size", ALWAYS, &Uint),
    Field("used", ALWAYS, &Uint),
    Field("total", ALWAYS, &Uint),
]);
const GPU_DRM: Shape = Struct(&[
    Field("id", ALWAYS, &Uint),
    Field("card_name", ALWAYS, &Str),
    Field("card_device", ALWAYS, &Str),
    Field("control_name", OMITEMPTY, &Str),
    Field("render_name", OMITEMPTY, &Str),
]);
const GPU_CARD: Shape = Struct(&[
    Field("driver", OMITEMPTY, &Str),
    Field("driver_version", OMITEMPTY, &Str),
    Field("drm", OMITEMPTY, &Ptr(&GPU_DRM)),
    Field("numa_node", ALWAYS, &Uint),
    Field("pci_address", OMITEMPTY, &Str),
    Field("vendor", OMITEMPTY, &Str),
    Field("vendor_id", OMITEMPTY, &Str),
    Field("product", OMITEMPTY, &Str),
    Field("product_id", OMITEMPTY, &Str),
]);
const NET_PORT: Shape = Struct(&[
    Field("id", ALWAYS, &Str),
    Field("address", OMITEMPTY, &Str),
    Field("port", ALWAYS, &Uint),
    Field("protocol", ALWAYS, &Str),
    Field("auto_negotiation", ALWAYS, &Bool),
    Field("link_detected", ALWAYS, &Bool),
    Field("link_speed", OMITEMPTY, &Uint),
    Field("link_duplex", OMITEMPTY, &Str),
]);
const NET_CARD: Shape = Struct(&[
    Field("driver", OMITEMPTY, &Str),
    Field("ports", OMITEMPTY, &List(&NET_PORT)),
    Field("numa_node", ALWAYS, &Uint),
    Field("pci_address", OMITEMPTY, &Str),
    Field("vendor_id", OMITEMPTY, &Str),
    Field("product_id", OMITEMPTY, &Str),
]);
const PARTITION: Shape = Struct(&[
    Field("id", ALWAYS, &Str),
    Field("device", ALWAYS, &Str),
    Field("read_only", ALWAYS, &Bool),
    Field("size", ALWAYS, &Uint),
    Field("partition", ALWAYS, &Uint),
]);
const DISK: Shape = Struct(&[
    Field("id", ALWAYS, &Str),
    Field("device", ALWAYS, &Str),
    Field("model", OMITEMPTY, &Str),
    Field("type", OMITEMPTY, &Str),
    Field("read_only", ALWAYS, &Bool),
    Field("size", ALWAYS, &Uint),
    Field("removable", ALWAYS, &Bool),
    Field("wwn", OMITEMPTY, &Str),
    Field("numa_node", ALWAYS, &Uint),
    Field("device_path", OMITEMPTY, &Str),
    Field("block_size", ALWAYS, &Uint),
    Field("rpm", ALWAYS, &Uint),
    Field("serial", OMITEMPTY, &Str),
    Field("device_id", ALWAYS, &Str),
    Field("partitions", ALWAYS, &List(&PARTITION)),
]);
const USB_INTERFACE: Shape = Struct(&[
    Field("class", ALWAYS, &Str),
    Field("class_id", ALWAYS, &Uint),
    Field("driver", ALWAYS, &Str),
    Field("driver_version", ALWAYS, &Str),
    Field("number", ALWAYS, &Uint),
    Field("subclass", ALWAYS, &Str),
    Field("subclass_id", ALWAYS, &Uint),
]);
const USB_DEVICE: Shape = Struct(&[
    Field("bus_address", ALWAYS, &Uint),
    Field("device_address", ALWAYS, &Uint),
    Field("serial", ALWAYS, &Str),
    Field("interfaces", ALWAYS, &List(&USB_INTERFACE)),
    Field("vendor", ALWAYS, &Str),
    Field("vendor_id", ALWAYS, &Str),
    Field("product", ALWAYS, &Str),
    Field("product_id", ALWAYS, &Str),
    Field("speed", ALWAYS, &Float),
]);
const PCI_VPD: Shape = Struct(&[Field("product_name", OMITEMPTY, &Str), Field("entries", OMITEMPTY, &Map(&Str))]);
const PCI_DEVICE: Shape = Struct(&[
    Field("driver", ALWAYS, &Str),
    Field("driver_version", ALWAYS, &Str),
    Field("numa_node", ALWAYS, &Uint),
    Field("pci_address", ALWAYS, &Str),
    Field("vendor", ALWAYS, &Str),
    Field("vendor_id", ALWAYS, &Str),
    Field("product", ALWAYS, &Str),
    Field("product_id", ALWAYS, &Str),
    Field("iommu_group", ALWAYS, &Uint),
    Field("vpd", ALWAYS, &PCI_VPD),
]);
const FIRMWARE: Shape =
    Struct(&[Field("vendor", ALWAYS, &Str), Field("date", ALWAYS, &Str), Field("version", ALWAYS, &Str)]);
const CHASSIS: Shape = Struct(&[
    Field("vendor", ALWAYS, &Str),
    Field("type", ALWAYS, &Str),
    Field("serial", ALWAYS, &Str),
    Field("version", ALWAYS, &Str),
]);
const MOTHERBOARD: Shape = Struct(&[
    Field("vendor", ALWAYS, &Str),
    Field("product", ALWAYS, &Str),
    Field("serial", ALWAYS, &Str),
    Field("version", ALWAYS, &Str),
]);
const SYSTEM: Shape = Struct(&[
    Field("uuid", ALWAYS, &Str),
    Field("vendor", ALWAYS, &Str),
    Field("product", ALWAYS, &Str),
    Field("family", ALWAYS, &Str),
    Field("version", ALWAYS, &Str),
    Field("sku", ALWAYS, &Str),
    Field("serial", ALWAYS, &Str),
    Field("type", ALWAYS, &Str),
    Field("firmware", ALWAYS, &Ptr(&FIRMWARE)),
    Field("chassis", ALWAYS, &Ptr(&CHASSIS)),
    Field("motherboard", ALWAYS, &Ptr(&MOTHERBOARD)),
]);
// No JSON tags on ResourcesLoad: encoding/json uses the Go names.
const LOAD: Shape = Struct(&[
    Field("Average1Min", ALWAYS, &Float),
    Field("Average5Min", ALWAYS, &Float),
    Field("Average10Min", ALWAYS, &Float),
    Field("Processes", ALWAYS, &Int),
]);
const SERIAL_DEVICE: Shape = Struct(&[
    Field("id", ALWAYS, &Str),
    Field("device", ALWAYS, &Str),
    Field("device_id", ALWAYS, &Str),
    Field("device_path", ALWAYS, &Str),
    Field("driver", ALWAYS, &Str),
    Field("vendor", ALWAYS, &Str),
    Field("vendor_id", ALWAYS, &Str),
    Field("product", ALWAYS, &Str),
    Field("product_id", ALWAYS, &Str),
]);
const fn listed(item: &'static Shape, key: &'static str) -> [Field; 2] {
    [Field(key, ALWAYS, item), Field("total", ALWAYS, &Uint)]
}
const GPU: Shape = Struct(&listed(&List(&GPU_CARD), "cards"));
const NETWORK: Shape = Struct(&listed(&List(&NET_CARD), "cards"));
const STORAGE: Shape = Struct(&listed(&List(&DISK), "disks"));
const USB: Shape = Struct(&listed(&List(&USB_DEVICE), "devices"));
const PCI: Shape = Struct(&listed(&List(&PCI_DEVICE), "devices"));
const SERIAL: Shape = Struct(&listed(&List(&SERIAL_DEVICE), "devices"));

/// `api.Resources`.
pub const RESOURCES: Shape = Struct(&[
    Field("cpu", ALWAYS, &CPU),
    Field("memory", ALWAYS, &MEMORY),
    Field("gpu", ALWAYS, &GPU),
    Field("network", ALWAYS, &NETWORK),
    Field("storage", ALWAYS, &STORAGE),
    Field("usb", ALWAYS, &USB),
    Field("pci", ALWAYS, &PCI),
    Field("system", ALWAYS, &SYSTEM),
    Field("load", ALWAYS, &LOAD),
    Field("serial", ALWAYS, &SERIAL),
]);

#[test]
fn the_checker_finds_a_missing_field_and_a_wrong_type() {
    let v: Value = miniserde::json::from_str(r#"{"cpu":{"architecture":7,"sockets":[]}}"#).unwrap();
    let mut problems = Vec::new();
    check(&v, &RESOURCES, "", &mut problems);
    assert!(problems.iter().any(|p| p == ".cpu.total: missing (always sent upstream)"), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with(".cpu.architecture: want a string")), "{problems:?}");
    assert!(problems.iter().any(|p| p == ".memory: missing (always sent upstream)"), "{problems:?}");
}

// incus-osd/api. A `time.Time` is a string (RFC 3339; the zero time before it happens).
const WINDOW: Shape = Struct(&[
    Field("start_day_of_week", OMITEMPTY, &Any),
    Field("start_hour", ALWAYS, &Int),
    Field("start_minute", ALWAYS, &Int),
    Field("end_day_of_week", OMITEMPTY, &Any),
    Field("end_hour", ALWAYS, &Int),
    Field("end_minute", ALWAYS, &Int),
]);
const UPDATE_CONFIG: Shape = Struct(&[
    Field("auto_reboot", ALWAYS, &Bool),
    Field("channel", ALWAYS, &Str),
    Field("check_frequency", ALWAYS, &Str),
    Field("maintenance_windows", OMITEMPTY, &List(&WINDOW)),
]);
const UPDATE_STATE: Shape =
    Struct(&[Field("last_check", ALWAYS, &Str), Field("status", ALWAYS, &Str), Field("needs_reboot", ALWAYS, &Bool)]);
pub const UPDATE: Shape = Struct(&[Field("config", ALWAYS, &UPDATE_CONFIG), Field("state", ALWAYS, &UPDATE_STATE)]);

const SYSLOG: Shape =
    Struct(&[Field("address", ALWAYS, &Str), Field("protocol", ALWAYS, &Str), Field("log_format", ALWAYS, &Str)]);
pub const LOGGING: Shape = Struct(&[
    Field("config", ALWAYS, &Struct(&[Field("syslog", ALWAYS, &SYSLOG)])),
    Field("state", ALWAYS, &Struct(&[])),
]);

pub const PROVIDER: Shape = Struct(&[
    Field("config", ALWAYS, &Struct(&[Field("name", ALWAYS, &Str), Field("config", OMITEMPTY, &Map(&Str))])),
    Field("state", ALWAYS, &Struct(&[Field("registered", ALWAYS, &Bool)])),
]);

const SECURE_BOOT_CERT: Shape = Struct(&[
    Field("type", ALWAYS, &Str),
    Field("fingerprint", ALWAYS, &Str),
    Field("subject", ALWAYS, &Str),
    Field("issuer", ALWAYS, &Str),
]);
const ENCRYPTED_VOLUME: Shape = Struct(&[Field("volume", ALWAYS, &Str), Field("state", ALWAYS, &Str)]);
pub const SECURITY: Shape = Struct(&[
    Field(
        "config",
        ALWAYS,
        &Struct(&[
            Field("custom_ca_certs", OMITEMPTY, &List(&Str)),
            Field("encryption_recovery_keys", ALWAYS, &List(&Str)),
        ]),
    ),
    Field(
        "state",
        ALWAYS,
        &Struct(&[
            Field("encrypted_volumes", ALWAYS, &List(&ENCRYPTED_VOLUME)),
            Field("encryption_recovery_keys_retrieved", ALWAYS, &Bool),
            Field("drive_recovery_keys", ALWAYS, &Map(&Str)),
            Field("pool_recovery_keys", ALWAYS, &Map(&Str)),
            Field("secure_boot_certificates", ALWAYS, &List(&SECURE_BOOT_CERT)),
            Field("secure_boot_enabled", ALWAYS, &Bool),
            Field("system_state_is_trusted", ALWAYS, &Bool),
            Field("system_state_status", ALWAYS, &Str),
            Field("tpm_status", ALWAYS, &Str),
            Field("tpm_public_key", OMITEMPTY, &Str),
        ]),
    ),
]);

const POOL_VOLUME: Shape = Struct(&[
    Field("name", ALWAYS, &Str),
    Field("usage_in_bytes", ALWAYS, &Int),
    Field("quota_in_bytes", ALWAYS, &Int),
    Field("use", ALWAYS, &Str),
]);
const POOL: Shape = Struct(&[
    Field("name", ALWAYS, &Str),
    Field("type", ALWAYS, &Str),
    Field("devices", ALWAYS, &List(&Str)),
    Field("managed", ALWAYS, &Bool),
    Field("state", ALWAYS, &Str),
    Field("encryption_key_status", ALWAYS, &Str),
    Field("raw_pool_size_in_bytes", ALWAYS, &Int),
    Field("usable_pool_size_in_bytes", ALWAYS, &Int),
    Field("pool_allocated_space_in_bytes", ALWAYS, &Int),
    Field("volumes", ALWAYS, &List(&POOL_VOLUME)),
]);
const POOL_CONFIG: Shape =
    Struct(&[Field("name", ALWAYS, &Str), Field("type", ALWAYS, &Str), Field("devices", ALWAYS, &List(&Str))]);
const DRIVE: Shape = Struct(&[
    Field("id", ALWAYS, &Str),
    Field("model_family", ALWAYS, &Str),
    Field("model_name", ALWAYS, &Str),
    Field("serial_number", ALWAYS, &Str),
    Field("bus", ALWAYS, &Str),
    Field("capacity_in_bytes", ALWAYS, &Int),
    Field("boot", ALWAYS, &Bool),
    Field("multipath", ALWAYS, &Bool),
    Field("removable", ALWAYS, &Bool),
    Field("remote", ALWAYS, &Bool),
    Field("member_pool", OMITEMPTY, &Str),
]);
pub const STORAGE_RESOURCE: Shape = Struct(&[
    Field(
        "config",
        ALWAYS,
        &Struct(&[Field("scrub_schedule", ALWAYS, &Str), Field("pools", OMITEMPTY, &List(&POOL_CONFIG))]),
    ),
    Field(
        "state",
        ALWAYS,
        &Struct(&[
            Field("drives", ALWAYS, &List(&DRIVE)),
            Field("pools", ALWAYS, &List(&POOL)),
            Field(
                "root_partition",
                ALWAYS,
                &Struct(&[Field("size_in_bytes", ALWAYS, &Int), Field("available_in_bytes", ALWAYS, &Int)]),
            ),
        ]),
    ),
]);

const ROUTE: Shape = Struct(&[Field("to", ALWAYS, &Str), Field("via", ALWAYS, &Str)]);
const INTERFACE: Shape = Struct(&[
    Field("addresses", OMITEMPTY, &List(&Str)),
    Field("hwaddr", ALWAYS, &Str),
    Field("mtu", OMITEMPTY, &Int),
    Field("name", ALWAYS, &Str),
    Field("required_for_online", OMITEMPTY, &Str),
    Field("roles", OMITEMPTY, &List(&Str)),
    Field("routes", OMITEMPTY, &List(&ROUTE)),
]);
const INTERFACE_STATE: Shape = Struct(&[
    Field("addresses", OMITEMPTY, &List(&Str)),
    Field("hwaddr", OMITEMPTY, &Str),
    Field("mtu", OMITEMPTY, &Int),
    Field("roles", OMITEMPTY, &List(&Str)),
    Field("speed", OMITEMPTY, &Str),
    Field("state", ALWAYS, &Str),
    Field(
        "stats",
        ALWAYS,
        &Struct(&[
            Field("rx_bytes", ALWAYS, &Int),
            Field("rx_errors", ALWAYS, &Int),
            Field("tx_bytes", ALWAYS, &Int),
            Field("tx_errors", ALWAYS, &Int),
        ]),
    ),
    Field("type", OMITEMPTY, &Str),
]);
pub const NETWORK_RESOURCE: Shape = Struct(&[
    Field(
        "config",
        ALWAYS,
        &Struct(&[
            Field(
                "dns",
                OMITEMPTY,
                &Ptr(&Struct(&[
                    Field("domain", ALWAYS, &Str),
                    Field("hostname", ALWAYS, &Str),
                    Field("nameservers", OMITEMPTY, &List(&Str)),
                    Field("search_domains", OMITEMPTY, &List(&Str)),
                ])),
            ),
            Field(
                "time",
                OMITEMPTY,
                &Ptr(&Struct(&[Field("ntp_servers", OMITEMPTY, &List(&Str)), Field("timezone", OMITEMPTY, &Str)])),
            ),
            Field("interfaces", OMITEMPTY, &List(&INTERFACE)),
        ]),
    ),
    Field(
        "state",
        ALWAYS,
        &Struct(&[
            Field("interfaces", ALWAYS, &Map(&INTERFACE_STATE)),
            Field("configuration_in_process", ALWAYS, &Bool),
        ]),
    ),
]);

pub const APPLICATION: Shape = Struct(&[
    Field(
        "state",
        ALWAYS,
        &Struct(&[
            Field("is_primary", ALWAYS, &Bool),
            Field("initialized", ALWAYS, &Bool),
            Field("friendly_version", ALWAYS, &Str),
            Field("version", ALWAYS, &Str),
            Field("available_versions", ALWAYS, &List(&Str)),
            Field("last_restored", OMITEMPTY, &Ptr(&Str)),
        ]),
    ),
    Field("config", ALWAYS, &Struct(&[])),
]);

const MODULE: Shape =
    Struct(&[Field("name", ALWAYS, &Str), Field("dependencies", ALWAYS, &List(&Str)), Field("in_use", ALWAYS, &Bool)]);
pub const DEBUG_KERNEL: Shape = Struct(&[
    Field("version", ALWAYS, &Str),
    Field("architecture", ALWAYS, &Str),
    Field("cpu_baseline", ALWAYS, &Str),
    Field("modules", ALWAYS, &List(&MODULE)),
]);

pub const KERNEL: Shape = Struct(&[Field("config", ALWAYS, &Struct(&[])), Field("state", ALWAYS, &Struct(&[]))]);
pub const FALLBACK_LISTENER: Shape = Struct(&[
    Field(
        "config",
        ALWAYS,
        &Struct(&[
            Field("listen_address", OMITEMPTY, &Str),
            Field("trusted_client_certificates", OMITEMPTY, &List(&Str)),
        ]),
    ),
    Field("state", ALWAYS, &Struct(&[Field("active", ALWAYS, &Bool)])),
]);

/// The URL lists (`/1.0/system`, `/1.0/debug`, …): `[]string`.
pub const URLS: Shape = List(&Str);

/// `GET /1.0`: a map upstream builds by hand (`uptime` an int64 of seconds).
pub const ROOT: Shape = Struct(&[Field(
    "environment",
    ALWAYS,
    &Struct(&[
        Field("hostname", ALWAYS, &Str),
        Field("machine_id", ALWAYS, &Str),
        Field("os_name", ALWAYS, &Str),
        Field("os_version", ALWAYS, &Str),
        Field("os_version_next", ALWAYS, &Str),
        Field("os_version_alternate", OMITEMPTY, &Str),
        Field("system_is_ready", ALWAYS, &Bool),
        Field("uptime", ALWAYS, &Int),
    ]),
)]);
