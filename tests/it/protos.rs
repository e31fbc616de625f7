//! Backrest's own `.proto` files (`../shared/upstream/backrest/`, v1.14.1, with the
//! `Authentication` service restated in `tests/clients/backrest/`), read into tables: the
//! contract the Backrest surface is checked against. It reads the proto3 that upstream's files
//! use (messages, nested messages and enums, `oneof`, `optional`, `repeated`, `json_name`,
//! services with streaming), and nothing else.
//!
//! From the tables come: `src/api/backrest/schema.txt`, the wire schema steward transcodes
//! with (the test below fails when it is stale; `UPDATE_SCHEMA=1` rewrites it), and
//! `strict_json`, which decodes an answer as `protojson.Unmarshal` does by default: an
//! unknown field, a wrong type or an unknown enum name is an error.

use std::collections::BTreeMap;

use miniserde::json::{Number, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar,
    Message,
    Enum,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub json: String,
    pub number: u32,
    pub repeated: bool,
    /// `optional`, or a member of a `oneof`: present even at its default value.
    pub presence: bool,
    /// A scalar's keyword, or the full name of a message or enum.
    pub ty: String,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub struct Rpc {
    /// `v1.Backrest/Backup`.
    pub path: String,
    pub input: String,
    pub output: String,
    pub server_streaming: bool,
}

#[derive(Default)]
pub struct Protos {
    pub messages: BTreeMap<String, Vec<Field>>,
    pub enums: BTreeMap<String, Vec<(String, i32)>>,
    pub rpcs: Vec<Rpc>,
}

const SCALARS: &[&str] = &[
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32",
    "sfixed64", "bool", "string", "bytes",
];

/// Where upstream's protos are: beside the repository, as the brief lays `shared/` out
/// (CI has it there too); `BACKREST_PROTOS` may point elsewhere.
pub fn upstream_dir() -> PathBuf {
    std::env::var_os("BACKREST_PROTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/backrest"))
}

pub fn load() -> Protos {
    let up = upstream_dir();
    assert!(
        up.join("v1/service.proto").exists(),
        "Backrest's protos are not at {} (set BACKREST_PROTOS)",
        up.display()
    );
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/backrest/v1/authentication.proto");
    let mut raw = Raw::default();
    for f in [
        "v1/config.proto",
        "v1/crypto.proto",
        "v1/operations.proto",
        "v1/restic.proto",
        "v1/service.proto",
        "types/value.proto",
    ] {
        parse_file(&std::fs::read_to_string(up.join(f)).unwrap(), &mut raw);
    }
    parse_file(&std::fs::read_to_string(ours).unwrap(), &mut raw);
    raw.messages.insert("google.protobuf.Empty".into(), Vec::new());
    raw.resolve()
}

#[derive(Default)]
struct Raw {
    /// Full message name → fields with their type as written.
    messages: BTreeMap<String, Vec<Field>>,
    enums: BTreeMap<String, Vec<(String, i32)>>,
    /// (scope, rpc) with the types as written.
    rpcs: Vec<(String, Rpc)>,
}

impl Raw {
    /// Resolves a type name as protoc does: innermost scope first, outwards.
    fn lookup(&self, scope: &str, name: &str) -> (String, Kind) {
        if SCALARS.contains(&name) {
            return (name.to_owned(), Kind::Scalar);
        }
        let name = name.trim_start_matches('.');
        let mut scope = scope.to_owned();
        loop {
            let full = if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") };
            if self.messages.contains_key(&full) {
                return (full, Kind::Message);
            }
            if self.enums.contains_key(&full) {
                return (full, Kind::Enum);
            }
            assert!(!scope.is_empty(), "type {name} not found");
            scope = scope.rsplit_once('.').map_or(String::new(), |(outer, _)| outer.to_owned());
        }
    }

    fn resolve(self) -> Protos {
        let mut out = Protos { enums: self.enums.clone(), ..Default::default() };
        for (msg, fields) in &self.messages {
            let resolved = fields
                .iter()
                .map(|f| {
                    let (ty, kind) = self.lookup(msg, &f.ty);
                    Field { ty, kind, ..f.clone() }
                })
                .collect();
            out.messages.insert(msg.clone(), resolved);
        }
        for (scope, rpc) in &self.rpcs {
            let (input, _) = self.lookup(scope, &rpc.input);
            let (output, _) = self.lookup(scope, &rpc.output);
            out.rpcs.push(Rpc { input, output, ..rpc.clone() });
        }
        out
    }
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(b.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |n| i + n + 4);
        } else if c == b'"' || c == b'\'' {
            let end = text[i + 1..].find(c as char).unwrap() + i + 1;
            out.push(text[i..=end].to_owned());
            i = end + 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.-".contains(&b[i])) {
                i += 1;
            }
            out.push(text[start..i].to_owned());
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

struct Cursor {
    t: Vec<String>,
    at: usize,
}

impl Cursor {
    fn next(&mut self) -> String {
        self.at += 1;
        self.t[self.at - 1].clone()
    }
    fn peek(&self) -> &str {
        self.t.get(self.at).map_or("", String::as_str)
    }
    fn expect(&mut self, s: &str) {
        let got = self.next();
        assert_eq!(got, s, "proto syntax: expected {s}");
    }
    /// Skips to the end of a statement (`;`), or past a `{ ... }` block.
    fn skip_statement(&mut self) {
        let mut depth = 0;
        loop {
            match self.next().as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                ";" if depth == 0 => return,
                _ => {}
            }
        }
    }
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_file(text: &str, raw: &mut Raw) {
    let mut c = Cursor { t: tokens(text), at: 0 };
    let mut package = String::new();
    while c.at < c.t.len() {
        match c.peek() {
            "package" => {
                c.next();
                package = c.next();
                c.expect(";");
            }
            "message" => parse_message(&mut c, &package, raw),
            "enum" => parse_enum(&mut c, &package, raw),
            "service" => {
                c.next();
                let service = c.next();
                c.expect("{");
                while c.peek() != "}" {
                    if c.peek() != "rpc" {
                        c.skip_statement();
                        continue;
                    }
                    c.next();
                    let name = c.next();
                    c.expect("(");
                    if c.peek() == "stream" {
                        c.next();
                    }
                    let input = c.next();
                    c.expect(")");
                    c.expect("returns");
                    c.expect("(");
                    let server_streaming = c.peek() == "stream";
                    if server_streaming {
                        c.next();
                    }
                    let output = c.next();
                    c.expect(")");
                    if c.peek() == "{" {
                        c.skip_statement();
                    } else {
                        c.expect(";");
                    }
                    let path = format!("{package}.{service}/{name}");
                    raw.rpcs.push((package.clone(), Rpc { path, input, output, server_streaming }));
                }
                c.next();
            }
            _ => c.skip_statement(),
        }
    }
}

fn parse_enum(c: &mut Cursor, scope: &str, raw: &mut Raw) {
    c.expect("enum");
    let name = format!("{scope}.{}", c.next());
    c.expect("{");
    let mut values = Vec::new();
    while c.peek() != "}" {
        if matches!(c.peek(), "option" | "reserved") {
            c.skip_statement();
            continue;
        }
        let value = c.next();
        c.expect("=");
        let n: i32 = c.next().parse().unwrap();
        values.push((value, n));
        if c.peek() == "[" {
            while c.next() != "]" {}
        }
        c.expect(";");
    }
    c.next();
    raw.enums.insert(name, values);
}

fn parse_message(c: &mut Cursor, scope: &str, raw: &mut Raw) {
    c.expect("message");
    let name = format!("{scope}.{}", c.next());
    c.expect("{");
    let mut fields = Vec::new();
    parse_fields(c, &name, raw, &mut fields, false);
    raw.messages.insert(name, fields);
}

/// The body of a message or a `oneof`, up to and past its `}`.
fn parse_fields(c: &mut Cursor, scope: &str, raw: &mut Raw, fields: &mut Vec<Field>, in_oneof: bool) {
    while c.peek() != "}" {
        match c.peek() {
            "message" => parse_message(c, scope, raw),
            "enum" => parse_enum(c, scope, raw),
            "option" | "reserved" | "extensions" => c.skip_statement(),
            "oneof" => {
                c.next();
                c.next();
                c.expect("{");
                parse_fields(c, scope, raw, fields, true);
            }
            _ => {
                let mut label = c.next();
                let ty = if matches!(label.as_str(), "repeated" | "optional") {
                    c.next()
                } else {
                    std::mem::replace(&mut label, String::new())
                };
                let name = c.next();
                c.expect("=");
                let number: u32 = c.next().parse().unwrap();
                let mut json = camel(&name);
                if c.peek() == "[" {
                    c.next();
                    loop {
                        let key = c.next();
                        if key == "]" {
                            break;
                        }
                        if key == "json_name" {
                            c.expect("=");
                            json = c.next().trim_matches('"').to_owned();
                        }
                    }
                }
                c.expect(";");
                assert!(!ty.starts_with("map<") && ty != "map", "maps are not read here");
                fields.push(Field {
                    name,
                    json,
                    number,
                    repeated: label == "repeated",
                    presence: label == "optional" || in_oneof,
                    ty,
                    kind: Kind::Scalar,
                });
            }
        }
    }
    c.next();
}

impl Protos {
    /// Every message and enum an RPC reaches, with the RPCs: the wire schema steward embeds.
    /// One entry a line, sorted: `r PATH IN OUT [stream]`, `e NAME V=0 ...`, `m NAME FIELD ...`
    /// with a field as `name[/json]=number[*|?]type` (`*` repeated, `?` explicit presence;
    /// `.Name` a message, `#Name` an enum; the JSON name only where it is not the default).
    pub fn schema(&self) -> String {
        let mut reached = std::collections::BTreeSet::new();
        let mut todo: Vec<String> = self.rpcs.iter().flat_map(|r| [r.input.clone(), r.output.clone()]).collect();
        while let Some(name) = todo.pop() {
            if !reached.insert(name.clone()) {
                continue;
            }
            for f in self.messages.get(&name).into_iter().flatten() {
                if f.kind != Kind::Scalar {
                    todo.push(f.ty.clone());
                }
            }
        }
        let mut lines = Vec::new();
        for r in &self.rpcs {
            lines.push(format!(
                "r {} {} {}{}",
                r.path,
                r.input,
                r.output,
                if r.server_streaming { " stream" } else { "" }
            ));
        }
        for name in &reached {
            if let Some(values) = self.enums.get(name) {
                let v: Vec<String> = values.iter().map(|(n, v)| format!("{n}={v}")).collect();
                lines.push(format!("e {name} {}", v.join(" ")).trim_end().to_owned());
            } else {
                let fields: Vec<String> = self.messages[name]
                    .iter()
                    .map(|f| {
                        let json = if f.json == camel(&f.name) { String::new() } else { format!("/{}", f.json) };
                        let flag = if f.repeated {
                            "*"
                        } else if f.presence && f.kind != Kind::Message {
                            "?"
                        } else {
                            ""
                        };
                        let ty = match f.kind {
                            Kind::Scalar => f.ty.clone(),
                            Kind::Message => format!(".{}", f.ty),
                            Kind::Enum => format!("#{}", f.ty),
                        };
                        format!("{}{json}={}{flag}{ty}", f.name, f.number)
                    })
                    .collect();
                lines.push(format!("m {name} {}", fields.join(" ")).trim_end().to_owned());
            }
        }
        lines.sort();
        lines.join("\n") + "\n"
    }

    pub fn rpc(&self, path: &str) -> &Rpc {
        self.rpcs.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("no rpc {path}"))
    }

    /// Decodes `v` as message `ty` the way `protojson.Unmarshal` does by default; the first
    /// problem, with where it is.
    pub fn strict_json(&self, ty: &str, v: &Value) -> Result<(), String> {
        self.strict_at(ty, v, ty)
    }

    fn strict_at(&self, ty: &str, v: &Value, at: &str) -> Result<(), String> {
        let fields = self.messages.get(ty).ok_or_else(|| format!("{at}: no message {ty}"))?;
        let Value::Object(obj) = v else { return Err(format!("{at}: {ty} must be an object")) };
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in obj.iter() {
            let f = fields
                .iter()
                .find(|f| &f.json == key || &f.name == key)
                .ok_or_else(|| format!("{at}: unknown field {key:?} in {ty}"))?;
            if !seen.insert(f.number) {
                return Err(format!("{at}: {key} given twice"));
            }
            let here = format!("{at}.{key}");
            match value {
                Value::Null => {}
                Value::Array(items) if f.repeated => {
                    for (i, item) in items.iter().enumerate() {
                        self.strict_value(f, item, &format!("{here}[{i}]"))?;
                    }
                }
                _ if f.repeated => return Err(format!("{here}: repeated field must be a list")),
                _ => self.strict_value(f, value, &here)?,
            }
        }
        Ok(())
    }

    fn strict_value(&self, f: &Field, v: &Value, at: &str) -> Result<(), String> {
        let int = |v: &Value| -> Option<i128> {
            match v {
                Value::Number(Number::U64(n)) => Some(i128::from(*n)),
                Value::Number(Number::I64(n)) => Some(i128::from(*n)),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
        };
        let in_range = |lo: i128, hi: i128| int(v).is_some_and(|n| (lo..=hi).contains(&n));
        let ok = match f.kind {
            Kind::Message => return self.strict_at(&f.ty, v, at),
            Kind::Enum => match v {
                Value::String(s) => self.enums[&f.ty].iter().any(|(n, _)| n == s),
                Value::Number(Number::U64(_) | Number::I64(_)) => true,
                _ => false,
            },
            Kind::Scalar => match f.ty.as_str() {
                "string" => matches!(v, Value::String(_)),
                "bool" => matches!(v, Value::Bool(_)),
                "bytes" => matches!(v, Value::String(s)
                    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))),
                "double" | "float" => {
                    matches!(v, Value::Number(_))
                        || matches!(v, Value::String(s) if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()))
                }
                "int64" | "sint64" | "sfixed64" => in_range(i128::from(i64::MIN), i128::from(i64::MAX)),
                "uint64" | "fixed64" => in_range(0, i128::from(u64::MAX)),
                "int32" | "sint32" | "sfixed32" => in_range(i128::from(i32::MIN), i128::from(i32::MAX)),
                "uint32" | "fixed32" => in_range(0, i128::from(u32::MAX)),
                other => return Err(format!("{at}: scalar {other} unknown")),
            },
        };
        if ok { Ok(()) } else { Err(format!("{at}: {} is not a {}", miniserde::json::to_string(v), f.ty)) }
    }
}

#[test]
fn the_embedded_wire_schema_is_the_one_upstream_protos_give() {
    let want = load().schema();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/backrest/schema.txt");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "{} is stale: run UPDATE_SCHEMA=1 cargo test --test it protos", path.display());
}

#[test]
fn the_reader_sees_what_upstream_defines() {
    let p = load();
    let op = &p.messages["v1.Operation"];
    let backup = op.iter().find(|f| f.name == "operation_backup").unwrap();
    assert_eq!(
        (backup.number, backup.json.as_str(), backup.ty.as_str()),
        (100, "operationBackup", "v1.OperationBackup")
    );
    assert!(backup.presence);
    let sel = &p.messages["v1.OpSelector"];
    assert!(sel.iter().find(|f| f.name == "flow_id").unwrap().presence);
    assert!(sel.iter().find(|f| f.name == "ids").unwrap().repeated);
    let chart = &p.messages["v1.SummaryDashboardResponse.BackupChart"];
    assert_eq!(chart.iter().find(|f| f.name == "status").unwrap().ty, "v1.OperationStatus");
    assert!(p.rpc("v1.Backrest/GetOperationEvents").server_streaming);
    assert_eq!(p.rpc("v1.Authentication/Login").output, "v1.LoginResponse");
    assert_eq!(p.rpcs.iter().filter(|r| r.path.starts_with("v1.Backrest/")).count(), 22);
}

/// A second protobuf codec, written from the tables here and not from steward's: what the
/// tests decode steward's binary answers with, and encode binary requests with.
impl Protos {
    pub fn encode(&self, ty: &str, v: &Value) -> Vec<u8> {
        let Value::Object(obj) = v else { panic!("{ty}: not an object") };
        let mut out = Vec::new();
        for (key, value) in obj.iter() {
            let f = self.messages[ty].iter().find(|f| &f.json == key || &f.name == key).expect("a known field");
            let items: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                self.encode_field(f, item, &mut out);
            }
        }
        out
    }

    fn encode_field(&self, f: &Field, v: &Value, out: &mut Vec<u8>) {
        let int = |v: &Value| -> i64 {
            match v {
                Value::Number(Number::U64(n)) => *n as i64,
                Value::Number(Number::I64(n)) => *n,
                Value::String(s) => s.parse().expect("an integer"),
                Value::Bool(b) => i64::from(*b),
                _ => panic!("not an integer"),
            }
        };
        let key = |wire: u64, out: &mut Vec<u8>| put_varint(out, u64::from(f.number) << 3 | wire);
        match (&f.kind, f.ty.as_str()) {
            (Kind::Message, _) => {
                let body = self.encode(&f.ty, v);
                key(2, out);
                put_varint(out, body.len() as u64);
                out.extend(body);
            }
            (Kind::Enum, _) => {
                let n = match v {
                    Value::String(s) => self.enums[&f.ty].iter().find(|(n, _)| n == s).expect("a known value").1 as i64,
                    other => int(other),
                };
                key(0, out);
                put_varint(out, n as u64);
            }
            (_, "string") => {
                let Value::String(s) = v else { panic!("not a string") };
                key(2, out);
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            (_, "int64" | "int32" | "uint64" | "uint32" | "bool") => {
                key(0, out);
                put_varint(out, int(v) as u64);
            }
            (_, other) => panic!("the tests do not send {other}"),
        }
    }

    /// Binary → protojson as protojson writes it: JSON names, 64-bit integers as strings,
    /// enums by name. Panics on anything malformed, an unknown field or a wrong wire type:
    /// a strict reader.
    pub fn decode(&self, ty: &str, mut b: &[u8]) -> Value {
        let mut obj = miniserde::json::Object::new();
        while !b.is_empty() {
            let tag = take_varint(&mut b);
            let (number, wire) = ((tag >> 3) as u32, tag & 7);
            let f = self.messages[ty]
                .iter()
                .find(|f| f.number == number)
                .unwrap_or_else(|| panic!("{ty} has no field {number}"))
                .clone();
            let mut values = Vec::new();
            let scalar_wire = match (&f.kind, f.ty.as_str()) {
                (Kind::Message, _) | (_, "string" | "bytes") => 2,
                (_, "double" | "fixed64" | "sfixed64") => 1,
                (_, "float" | "fixed32" | "sfixed32") => 5,
                _ => 0,
            };
            if wire == 2 && scalar_wire != 2 {
                let len = take_varint(&mut b) as usize;
                let (mut run, rest) = b.split_at(len);
                b = rest;
                assert!(f.repeated, "{ty}.{}: packed but not repeated", f.name);
                while !run.is_empty() {
                    values.push(self.scalar(&f, &mut run));
                }
            } else {
                assert_eq!(wire, scalar_wire, "{ty}.{}: wire type", f.name);
                if wire == 2 {
                    let len = take_varint(&mut b) as usize;
                    let (payload, rest) = b.split_at(len);
                    b = rest;
                    values.push(match f.kind {
                        Kind::Message => self.decode(&f.ty, payload),
                        _ if f.ty == "string" => Value::String(String::from_utf8(payload.to_vec()).expect("UTF-8")),
                        _ => Value::String(format!("{} bytes", payload.len())),
                    });
                } else {
                    values.push(self.scalar(&f, &mut b));
                }
            }
            if f.repeated {
                let entry = obj.entry(f.json.clone()).or_insert_with(|| Value::Array(Default::default()));
                let Value::Array(a) = entry else { unreachable!() };
                a.extend(values);
            } else {
                obj.insert(f.json.clone(), values.pop().unwrap());
            }
        }
        Value::Object(obj)
    }

    fn scalar(&self, f: &Field, b: &mut &[u8]) -> Value {
        if f.ty == "double" {
            let (x, rest) = b.split_at(8);
            *b = rest;
            return Value::Number(Number::F64(f64::from_le_bytes(x.try_into().unwrap())));
        }
        let n = take_varint(b);
        match (&f.kind, f.ty.as_str()) {
            (Kind::Enum, _) => {
                let name = self.enums[&f.ty].iter().find(|(_, v)| *v as i64 == n as i64).map(|(n, _)| n.clone());
                Value::String(name.unwrap_or_else(|| panic!("{}: {n} is not a value", f.ty)))
            }
            (_, "int64") => Value::String((n as i64).to_string()),
            (_, "uint64") => Value::String(n.to_string()),
            (_, "int32") => Value::Number(Number::I64(i64::from(n as i32))),
            (_, "bool") => Value::Bool(n != 0),
            (_, other) => panic!("steward sends no {other} here"),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(b: &mut &[u8]) -> u64 {
    let mut n = 0;
    for i in 0..10 {
        let byte = b[0];
        *b = &b[1..];
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return n;
        }
    }
    panic!("varint too long")
}

/// The message as proto3's binary form keeps it: fields at their default value (`""`, `0`,
/// `false`, an empty list, an enum's zero) dropped where presence is implicit, so that an
/// answer in JSON and the same answer in binary compare equal.
pub fn without_defaults(p: &Protos, ty: &str, v: &Value) -> Value {
    let Value::Object(obj) = v else { return v.clone() };
    let mut out = miniserde::json::Object::new();
    for (key, value) in obj.iter() {
        let f = p.messages[ty].iter().find(|f| &f.json == key || &f.name == key).expect("known").clone();
        let zero_enum = f.kind == Kind::Enum
            && p.enums[&f.ty].iter().any(|(n, v)| *v == 0 && matches!(value, Value::String(s) if s == n));
        let default = match value {
            Value::Null => true,
            Value::String(s) => s.is_empty() || (s == "0" && f.kind == Kind::Scalar && f.ty != "string") || zero_enum,
            Value::Number(Number::U64(0) | Number::I64(0)) => true,
            Value::Bool(false) => true,
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if default && !f.presence && (f.kind != Kind::Message || f.repeated) {
            continue;
        }
        let value = match (&f.kind, value) {
            (Kind::Message, Value::Array(a)) => {
                let mut items = miniserde::json::Array::new();
                items.extend(a.iter().map(|x| without_defaults(p, &f.ty, x)));
                Value::Array(items)
            }
            (Kind::Message, x) => without_defaults(p, &f.ty, x),
            (_, Value::Number(Number::U64(n))) if f.ty.ends_with("64") => Value::String(n.to_string()),
            (_, Value::Array(a)) if f.ty.ends_with("64") => {
                let mut items = miniserde::json::Array::new();
                items.extend(a.iter().map(|x| match x {
                    Value::Number(Number::U64(n)) => Value::String(n.to_string()),
                    other => other.clone(),
                }));
                Value::Array(items)
            }
            (_, x) => x.clone(),
        };
        out.insert(f.json.clone(), value);
    }
    Value::Object(out)
}
