//! Protobuf's binary wire format, as a transcoding of protojson driven by a schema text.
//!
//! A surface that speaks Connect builds and reads protojson (the JSON its handlers already
//! write); a client that sends `application/proto` gets the same message in binary. One
//! form of each handler, and no generated code: prost's derived messages for Backrest's ~90
//! messages would cost far more code than this walker and the schema's text, and still
//! need a second (JSON) form of every message.
//!
//! The schema is one entry a line (tests/it/protos.rs writes it from upstream's protos):
//! `r PATH IN OUT [stream]`, `e NAME V=0 …`, `m NAME FIELD …`, a field as
//! `name[/json]=number[*|?]type` (`*` repeated, `?` explicit presence, `.Name` a message,
//! `#Name` an enum, else a scalar keyword).

use std::borrow::Cow;

use miniserde::json::{Array, Number, Object, Value};

/// Nesting deeper than this is refused: no message here nests past a handful, and a
/// recursive walk must not be driven into the stack's end by a client.
const MAX_DEPTH: u32 = 32;

pub struct Schema {
    /// `(name, kind, rest of the line)`, sorted by name.
    entries: Vec<(&'static str, u8, &'static str)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scalar {
    Double,
    Float,
    Int64,
    Uint64,
    Int32,
    Uint32,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    Str,
    Bytes,
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    Scalar(Scalar),
    Message(&'static str),
    Enum(&'static str),
}

#[derive(Clone, Copy, Debug)]
struct Field {
    name: &'static str,
    /// The JSON name where it is not the default lowerCamel of `name`.
    json: Option<&'static str>,
    number: u32,
    repeated: bool,
    presence: bool,
    ty: Ty,
}

/// An RPC as the schema has it.
#[derive(Clone, Copy, Debug)]
pub struct Rpc {
    pub input: &'static str,
    pub output: &'static str,
    pub server_streaming: bool,
}

fn scalar(word: &str) -> Option<Scalar> {
    Some(match word {
        "double" => Scalar::Double,
        "float" => Scalar::Float,
        "int64" => Scalar::Int64,
        "uint64" => Scalar::Uint64,
        "int32" => Scalar::Int32,
        "uint32" => Scalar::Uint32,
        "sint32" => Scalar::Sint32,
        "sint64" => Scalar::Sint64,
        "fixed32" => Scalar::Fixed32,
        "fixed64" => Scalar::Fixed64,
        "sfixed32" => Scalar::Sfixed32,
        "sfixed64" => Scalar::Sfixed64,
        "bool" => Scalar::Bool,
        "string" => Scalar::Str,
        "bytes" => Scalar::Bytes,
        _ => return None,
    })
}

/// protoc's default JSON name of a field (proto identifiers are ASCII): each `_` dropped
/// and the byte after it upper-cased.
fn lower_camel(name: &str) -> impl Iterator<Item = u8> + '_ {
    let mut upper = false;
    name.bytes().filter_map(move |b| {
        if b == b'_' {
            upper = true;
            return None;
        }
        let b = if upper { b.to_ascii_uppercase() } else { b };
        upper = false;
        Some(b)
    })
}

fn fields(line: &'static str) -> impl Iterator<Item = Field> {
    line.split(' ').filter(|t| !t.is_empty()).filter_map(parse_field)
}

fn parse_field(token: &'static str) -> Option<Field> {
    let (names, rest) = token.split_once('=')?;
    let (name, json) = match names.split_once('/') {
        Some((n, j)) => (n, Some(j)),
        None => (names, None),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = rest[..digits].parse().ok()?;
    let mut ty = &rest[digits..];
    let (repeated, presence) = match ty.as_bytes().first() {
        Some(b'*') => (true, false),
        Some(b'?') => (false, true),
        _ => (false, false),
    };
    if repeated || presence {
        ty = &ty[1..];
    }
    let ty = if let Some(m) = ty.strip_prefix('.') {
        Ty::Message(m)
    } else if let Some(e) = ty.strip_prefix('#') {
        Ty::Enum(e)
    } else {
        Ty::Scalar(scalar(ty)?)
    };
    Some(Field { name, json, number, repeated, presence, ty })
}

impl Field {
    /// Whether `key` names this field as protojson reads it: its JSON name or its own.
    fn named(&self, key: &str) -> bool {
        if key == self.name {
            return true;
        }
        if let Some(json) = self.json {
            return key == json;
        }
        key.bytes().eq(lower_camel(self.name))
    }

    fn json_name(&self) -> Cow<'static, str> {
        match self.json {
            Some(json) => Cow::Borrowed(json),
            None => Cow::Owned(lower_camel(self.name).map(char::from).collect()),
        }
    }

    fn wire_type(&self) -> u8 {
        match self.ty {
            Ty::Message(_) | Ty::Scalar(Scalar::Str | Scalar::Bytes) => 2,
            Ty::Scalar(Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64) => 1,
            Ty::Scalar(Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32) => 5,
            _ => 0,
        }
    }
}

impl Schema {
    pub fn parse(text: &'static str) -> Schema {
        let mut entries: Vec<(&'static str, u8, &'static str)> = text
            .lines()
            .filter_map(|line| {
                let kind = *line.as_bytes().first()?;
                let rest = line.get(2..)?;
                let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                Some((name, kind, rest))
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        Schema { entries }
    }

    fn entry(&self, name: &str, kind: u8) -> Option<&'static str> {
        let at = self.entries.binary_search_by_key(&name, |e| e.0).ok()?;
        let (_, k, rest) = self.entries[at];
        (k == kind).then_some(rest)
    }

    pub fn rpc(&self, path: &str) -> Option<Rpc> {
        let mut words = self.entry(path, b'r')?.split(' ');
        let (input, output) = (words.next()?, words.next()?);
        Some(Rpc { input, output, server_streaming: words.next() == Some("stream") })
    }

    /// A message's fields, as its schema line lists them.
    fn message(&self, message: &str) -> Result<&'static str, String> {
        self.entry(message, b'm').ok_or_else(|| format!("no message {message} in the schema"))
    }

    fn enum_number(&self, name: &str, value: &str) -> Option<i32> {
        self.entry(name, b'e')?
            .split(' ')
            .find_map(|pair| pair.split_once('=').filter(|(n, _)| *n == value).and_then(|(_, v)| v.parse().ok()))
    }

    pub fn enum_name(&self, name: &str, number: i32) -> Option<&'static str> {
        self.entry(name, b'e')?
            .split(' ')
            .find_map(|pair| pair.split_once('=').filter(|(_, v)| v.parse() == Ok(number)).map(|(n, _)| n))
    }

    /// protojson → binary. `strict`: a member the message does not define is an error (a
    /// response steward wrote), else it is skipped (as protojson's `DiscardUnknown`).
    pub fn encode(&self, message: &str, json: &Object, strict: bool) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.encode_into(message, json, strict, &mut out, 0)?;
        Ok(out)
    }

    fn encode_into(
        &self,
        message: &str,
        json: &Object,
        strict: bool,
        out: &mut Vec<u8>,
        depth: u32,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("the message nests too deeply".into());
        }
        let line = self.message(message)?;
        for (key, value) in json.iter() {
            let Some(field) = fields(line).find(|f| f.named(key)) else {
                if strict {
                    return Err(format!("{message} has no field {key}"));
                }
                continue;
            };
            match value {
                Value::Null => {}
                Value::Array(items) if field.repeated => self.encode_repeated(&field, items, strict, out, depth)?,
                _ if field.repeated => return Err(format!("{key} must be a list")),
                _ => self.encode_one(&field, value, strict, out, depth, !field.presence)?,
            }
        }
        Ok(())
    }

    fn encode_repeated(
        &self,
        f: &Field,
        items: &Array,
        strict: bool,
        out: &mut Vec<u8>,
        depth: u32,
    ) -> Result<(), String> {
        if f.wire_type() == 2 {
            for item in items.iter() {
                self.encode_one(f, item, strict, out, depth, false)?;
            }
            return Ok(());
        }
        // proto3 packs repeated numbers: one length-delimited run of values.
        let mut run = Vec::new();
        for item in items.iter() {
            self.value_bytes(f, item, strict, &mut run, depth)?;
        }
        if !run.is_empty() {
            varint(out, u64::from(f.number) << 3 | 2);
            varint(out, run.len() as u64);
            out.extend_from_slice(&run);
        }
        Ok(())
    }

    /// One value with its tag; an implicit-presence default is left out, as proto3 does.
    fn encode_one(
        &self,
        f: &Field,
        v: &Value,
        strict: bool,
        out: &mut Vec<u8>,
        depth: u32,
        skip_default: bool,
    ) -> Result<(), String> {
        let mut body = Vec::new();
        self.value_bytes(f, v, strict, &mut body, depth)?;
        let wire = f.wire_type();
        if wire == 2 {
            if skip_default && body.is_empty() && !matches!(f.ty, Ty::Message(_)) {
                return Ok(());
            }
            varint(out, u64::from(f.number) << 3 | 2);
            varint(out, body.len() as u64);
        } else {
            if skip_default && body.iter().all(|b| *b == 0) {
                return Ok(());
            }
            varint(out, u64::from(f.number) << 3 | u64::from(wire));
        }
        out.extend_from_slice(&body);
        Ok(())
    }

    /// The value's bytes without a tag (a message's or string's without its length).
    fn value_bytes(&self, f: &Field, v: &Value, strict: bool, out: &mut Vec<u8>, depth: u32) -> Result<(), String> {
        let name = f.name;
        let bad = |what: &str| format!("{name} must be {what}");
        match f.ty {
            Ty::Message(m) => match v {
                Value::Object(o) => self.encode_into(m, o, strict, out, depth + 1)?,
                _ => return Err(bad("an object")),
            },
            Ty::Enum(e) => {
                let n = match v {
                    Value::String(s) => {
                        self.enum_number(e, s).ok_or_else(|| format!("{s} is not a value of {name}"))?
                    }
                    _ => {
                        int_of(v, i64::from(i32::MIN), i64::from(i32::MAX)).ok_or_else(|| bad("an enum value"))? as i32
                    }
                };
                varint(out, n as i64 as u64);
            }
            Ty::Scalar(s) => match s {
                Scalar::Str => match v {
                    Value::String(t) => out.extend_from_slice(t.as_bytes()),
                    _ => return Err(bad("a string")),
                },
                Scalar::Bytes => match v {
                    Value::String(t) => out.extend(
                        crate::hex::base64_decode(&t.replace('-', "+").replace('_', "/"))
                            .ok_or_else(|| bad("base64"))?,
                    ),
                    _ => return Err(bad("base64")),
                },
                Scalar::Bool => match v {
                    Value::Bool(b) => out.push(u8::from(*b)),
                    _ => return Err(bad("true or false")),
                },
                Scalar::Double => out.extend_from_slice(&float_of(v).ok_or_else(|| bad("a number"))?.to_le_bytes()),
                Scalar::Float => {
                    out.extend_from_slice(&(float_of(v).ok_or_else(|| bad("a number"))? as f32).to_le_bytes())
                }
                Scalar::Uint64 | Scalar::Fixed64 => {
                    let n = uint_of(v).ok_or_else(|| bad("an unsigned integer"))?;
                    if s == Scalar::Fixed64 { out.extend_from_slice(&n.to_le_bytes()) } else { varint(out, n) }
                }
                Scalar::Uint32 | Scalar::Fixed32 => {
                    let n = uint_of(v)
                        .filter(|n| *n <= u64::from(u32::MAX))
                        .ok_or_else(|| bad("a 32-bit unsigned integer"))?;
                    if s == Scalar::Fixed32 { out.extend_from_slice(&(n as u32).to_le_bytes()) } else { varint(out, n) }
                }
                Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => {
                    let n = int_of(v, i64::MIN, i64::MAX).ok_or_else(|| bad("an integer"))?;
                    match s {
                        Scalar::Sint64 => varint(out, ((n << 1) ^ (n >> 63)) as u64),
                        Scalar::Sfixed64 => out.extend_from_slice(&n.to_le_bytes()),
                        _ => varint(out, n as u64),
                    }
                }
                Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => {
                    let n =
                        int_of(v, i64::from(i32::MIN), i64::from(i32::MAX)).ok_or_else(|| bad("a 32-bit integer"))?;
                    match s {
                        Scalar::Sint32 => varint(out, u64::from(((n << 1) ^ (n >> 31)) as u32)),
                        Scalar::Sfixed32 => out.extend_from_slice(&(n as i32).to_le_bytes()),
                        _ => varint(out, n as u64),
                    }
                }
            },
        }
        Ok(())
    }

    /// binary → protojson. Unknown fields are skipped, as every protobuf reader does.
    pub fn decode(&self, message: &str, bytes: &[u8]) -> Result<Object, String> {
        self.decode_at(message, bytes, 0)
    }

    fn decode_at(&self, message: &str, mut bytes: &[u8], depth: u32) -> Result<Object, String> {
        if depth > MAX_DEPTH {
            return Err("the message nests too deeply".into());
        }
        let line = self.message(message)?;
        let mut out = Object::new();
        while !bytes.is_empty() {
            let tag = read_varint(&mut bytes)?;
            let (number, wire) = (tag >> 3, (tag & 7) as u8);
            let payload: &[u8] = match wire {
                0 => {
                    let start = bytes;
                    read_varint(&mut bytes)?;
                    &start[..start.len() - bytes.len()]
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    let (p, rest) = bytes.split_at_checked(n).ok_or("the message ends inside a field")?;
                    bytes = rest;
                    p
                }
                2 => {
                    let len = usize::try_from(read_varint(&mut bytes)?).map_err(|_| "a field's length is too large")?;
                    let (p, rest) = bytes.split_at_checked(len).ok_or("the message ends inside a field")?;
                    bytes = rest;
                    p
                }
                _ => return Err(format!("wire type {wire} is not read here")),
            };
            if number == 0 || number > u64::from(u32::MAX >> 3) {
                return Err("a field number is out of range".into());
            }
            let Some(f) = fields(line).find(|f| u64::from(f.number) == number) else { continue };
            let key = f.json_name().into_owned();
            if f.repeated && wire == 2 && f.wire_type() != 2 {
                let mut run = payload;
                let mut values = Vec::new();
                while !run.is_empty() {
                    values.push(self.decode_value(&f, f.wire_type(), &mut run, depth)?);
                }
                push_all(&mut out, key, values);
                continue;
            }
            if wire != f.wire_type() {
                return Err(format!("{} arrives with wire type {wire}", f.name));
            }
            let value = self.decode_value(&f, wire, &mut { payload }, depth)?;
            if f.repeated {
                push_all(&mut out, key, vec![value]);
            } else {
                out.insert(key, value);
            }
        }
        Ok(out)
    }

    /// One value of `f` from `p` (for wire type 2, `p` is the whole payload).
    fn decode_value(&self, f: &Field, wire: u8, p: &mut &[u8], depth: u32) -> Result<Value, String> {
        let fixed = |p: &mut &[u8], n: usize| -> Result<u64, String> {
            let (b, rest) = p.split_at_checked(n).ok_or("the message ends inside a field")?;
            *p = rest;
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(b);
            Ok(u64::from_le_bytes(le))
        };
        let raw = match wire {
            0 => read_varint(p)?,
            1 => fixed(p, 8)?,
            5 => fixed(p, 4)?,
            _ => 0,
        };
        let string = |s: String| Value::String(s);
        Ok(match f.ty {
            Ty::Message(m) => Value::Object(self.decode_at(m, std::mem::take(p), depth + 1)?),
            Ty::Enum(e) => match self.enum_name(e, raw as i32) {
                Some(n) => string(n.to_owned()),
                None => Value::Number(Number::I64(i64::from(raw as i32))),
            },
            Ty::Scalar(s) => match s {
                Scalar::Str => string(
                    String::from_utf8(std::mem::take(p).to_vec()).map_err(|_| format!("{} is not UTF-8", f.name))?,
                ),
                Scalar::Bytes => string(crate::hex::base64_encode(std::mem::take(p))),
                Scalar::Bool => Value::Bool(raw != 0),
                Scalar::Double => float_value(f64::from_bits(raw)),
                Scalar::Float => float_value(f64::from(f32::from_bits(raw as u32))),
                Scalar::Int64 | Scalar::Sfixed64 => string((raw as i64).to_string()),
                Scalar::Sint64 => string(((raw >> 1) as i64 ^ -((raw & 1) as i64)).to_string()),
                Scalar::Uint64 | Scalar::Fixed64 => string(raw.to_string()),
                Scalar::Int32 | Scalar::Sfixed32 => Value::Number(Number::I64(i64::from(raw as i32))),
                Scalar::Sint32 => {
                    let r = raw as u32;
                    Value::Number(Number::I64(i64::from((r >> 1) as i32 ^ -((r & 1) as i32))))
                }
                Scalar::Uint32 | Scalar::Fixed32 => Value::Number(Number::U64(u64::from(raw as u32))),
            },
        })
    }
}

fn push_all(out: &mut Object, key: String, values: Vec<Value>) {
    match out.get_mut(&key) {
        Some(Value::Array(a)) => a.extend(values),
        _ => {
            let mut a = Array::new();
            a.extend(values);
            out.insert(key, Value::Array(a));
        }
    }
}

fn float_value(x: f64) -> Value {
    if x.is_nan() {
        Value::String("NaN".into())
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Value::Number(Number::F64(x))
    }
}

/// protojson's integers: a number or a decimal string.
fn int_of(v: &Value, lo: i64, hi: i64) -> Option<i64> {
    let n = match v {
        Value::Number(Number::U64(n)) => i64::try_from(*n).ok()?,
        Value::Number(Number::I64(n)) => *n,
        Value::Number(Number::F64(x)) if x.fract() == 0.0 && x.abs() < 9.0e15 => *x as i64,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (lo..=hi).contains(&n).then_some(n)
}

fn uint_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(Number::U64(n)) => Some(*n),
        Value::Number(Number::F64(x)) if x.fract() == 0.0 && *x >= 0.0 && *x < 9.0e15 => Some(*x as u64),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(Number::U64(n)) => Some(*n as f64),
        Value::Number(Number::I64(n)) => Some(*n as f64),
        Value::Number(Number::F64(x)) => Some(*x),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

pub fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for i in 0..10 {
        let (&b, rest) = bytes.split_first().ok_or("the message ends inside a varint")?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(n);
        }
    }
    Err("a varint runs past ten bytes".into())
}

#[cfg(test)]
mod tests {
    //! Bad inputs first; then values that cross the wire both ways.

    use super::*;

    const TEXT: &str = "m t.Inner n=1int32\n\
        m t.Msg id=1int64 name=2string flags=3*int64 inner=4.t.Inner list=5*.t.Inner state=6#t.State on=7?bool data=8bytes x=9double s=10sint64 u=11uint64 weird/W=12string\n\
        e t.State A=0 B=1 C=-2\n\
        m t.Deep deep=1.t.Deep\n\
        r t.S/Call t.Msg t.Inner\n\
        r t.S/Watch t.Msg t.Inner stream\n";

    fn schema() -> Schema {
        Schema::parse(TEXT)
    }

    fn obj(text: &str) -> Object {
        match miniserde::json::from_str::<Value>(text).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error_not_a_panic() {
        let s = schema();
        for bad in [
            &[0x0a][..],                                                               // tag, then no length
            &[0x0a, 0x05, b'a'],                                                       // length past the end
            &[0x08, 0xff],                                                             // varint cut short
            &[0x08; 1][..],                                                            // tag, no value
            &[0x0b],                                                                   // start group: refused
            &[0x12, 0x02, 0xff, 0xfe],                                                 // a string that is not UTF-8
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11-byte varint
            &[0x00, 0x01],                                                             // field 0
            &[0x12, 0x01],                   // wire type 2 but nothing follows the length
            &[0x0d, 0x00, 0x00, 0x00, 0x00], // id with the wrong wire type
        ] {
            assert!(s.decode("t.Msg", bad).is_err(), "{bad:?}");
        }
        // A message nested past the bound is refused rather than recursed into.
        let mut deep = Vec::new();
        for _ in 0..40 {
            let mut outer = vec![0x0a];
            varint(&mut outer, deep.len() as u64);
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert!(s.decode("t.Deep", &deep).unwrap_err().contains("deeply"));
        assert!(s.decode("t.Nope", &[]).is_err());
    }

    #[test]
    fn responses_with_fields_the_message_lacks_are_refused_when_strict() {
        let s = schema();
        assert!(s.encode("t.Msg", &obj(r#"{"id":"1","extra":1}"#), true).unwrap_err().contains("extra"));
        assert!(s.encode("t.Msg", &obj(r#"{"id":"1","extra":1}"#), false).is_ok());
        for bad in [
            r#"{"id":"x"}"#,
            r#"{"id":true}"#,
            r#"{"flags":"1"}"#,
            r#"{"state":"Z"}"#,
            r#"{"inner":1}"#,
            r#"{"data":"*"}"#,
        ] {
            assert!(s.encode("t.Msg", &obj(bad), false).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_crosses_the_wire_and_back() {
        let s = schema();
        let json = r#"{"id":"-5","name":"é","flags":["1",2,"300"],"inner":{"n":-3},"list":[{"n":1},{}],
            "state":"C","on":false,"data":"AAEC","x":1.5,"s":"-9","u":"18446744073709551615","W":"w"}"#;
        let bytes = s.encode("t.Msg", &obj(json), true).unwrap();
        let back = s.decode("t.Msg", &bytes).unwrap();
        let text = miniserde::json::to_string(&Value::Object(back));
        for part in [
            r#""id":"-5""#,
            r#""name":"é""#,
            r#""flags":["1","2","300"]"#,
            r#""inner":{"n":-3}"#,
            r#""list":[{"n":1},{}]"#,
            r#""state":"C""#,
            r#""on":false"#,
            r#""data":"AAEC""#,
            r#""x":1.5"#,
            r#""s":"-9""#,
            r#""u":"18446744073709551615""#,
            r#""W":"w""#,
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        // Defaults of implicit-presence fields are not sent; an explicit-presence one is.
        assert_eq!(s.encode("t.Msg", &obj(r#"{"id":"0","name":"","state":"A"}"#), true).unwrap(), b"");
        assert_eq!(s.encode("t.Msg", &obj(r#"{"on":false}"#), true).unwrap(), [0x38, 0x00]);
        // Proto names are read too, and repeated numbers arriving unpacked are kept.
        assert_eq!(s.encode("t.Msg", &obj(r#"{"weird":"w"}"#), true).unwrap(), [0x62, 0x01, b'w']);
        let unpacked = [0x18, 0x01, 0x18, 0x02];
        let text = miniserde::json::to_string(&Value::Object(s.decode("t.Msg", &unpacked).unwrap()));
        assert_eq!(text, r#"{"flags":["1","2"]}"#);
        // Unknown fields are skipped.
        assert!(s.decode("t.Msg", &[0xf8, 0x07, 0x01]).unwrap().is_empty());
    }

    #[test]
    fn rpcs_are_found_by_path() {
        let s = schema();
        let r = s.rpc("t.S/Watch").unwrap();
        assert!(r.server_streaming && r.input == "t.Msg" && r.output == "t.Inner");
        assert!(!s.rpc("t.S/Call").unwrap().server_streaming);
        assert!(s.rpc("t.S/Nope").is_none() && s.rpc("t.Msg").is_none());
    }
}
