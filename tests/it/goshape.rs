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
