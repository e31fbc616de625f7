//! A small JSON writer for bodies whose keys are not fixed (optional keys must be absent, not
//! `null`, which miniserde cannot express) and the one escaping routine everything shares.

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

fn escape_into(out: &mut String, s: &str) {
    // Runs that need no escape (nearly all of any text) are copied whole; only the bytes
    // below 0x20, `"` and `\` are looked at, all of them ASCII, so the cuts are char
    // boundaries.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Escapes whatever a `Display` writes, so a formatted value becomes a JSON string without
/// an intermediate `String`.
struct Escaping<'a>(&'a mut String);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Builds one JSON object, keys in insertion order. Nested objects are written into the same
/// buffer, so a whole answer costs one allocation when its size is known ahead.
pub struct Object {
    buf: String,
    /// Where this object's `{` is in `buf` (nested objects share their parent's buffer).
    start: usize,
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

impl Object {
    pub fn new() -> Object {
        // Most answers are a few hundred bytes; starting there saves the doubling steps.
        Object::with_capacity(256)
    }

    pub fn with_capacity(capacity: usize) -> Object {
        let mut buf = String::with_capacity(capacity.max(2));
        buf.push('{');
        Object { buf, start: 0 }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > self.start + 1 {
            self.buf.push(',');
        }
        push_str(&mut self.buf, key);
        self.buf.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        push_str(&mut self.buf, value);
        self
    }

    /// A string value from anything `Display`, formatted straight into the answer.
    pub fn display(mut self, key: &str, value: impl std::fmt::Display) -> Object {
        self.key(key);
        self.buf.push('"');
        let _ = write!(Escaping(&mut self.buf), "{value}");
        self.buf.push('"');
        self
    }

    pub fn num(mut self, key: &str, value: impl std::fmt::Display) -> Object {
        self.key(key);
        let _ = write!(self.buf, "{value}");
        self
    }

    pub fn bool(self, key: &str, value: bool) -> Object {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// `value` must already be valid JSON.
    pub fn raw(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        self.buf.push_str(value);
        self
    }

    /// A nested object built by `build` in this object's buffer.
    pub fn object(mut self, key: &str, build: impl FnOnce(Object) -> Object) -> Object {
        self.key(key);
        let start = self.buf.len();
        self.buf.push('{');
        let mut inner = build(Object { buf: std::mem::take(&mut self.buf), start });
        inner.buf.push('}');
        self.buf = inner.buf;
        self
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

/// `["a","b"]` from string items.
pub fn str_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, item);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_quote_characters() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn every_text_survives_a_round_trip() {
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é中🦀\u{7f}\u{2028}");
        for text in [all.as_str(), "", "plain", "\"", "tail\\", "\u{1f}start", "ü\nü"] {
            let mut s = String::new();
            push_str(&mut s, text);
            let back: String = miniserde::json::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(back, text);
        }
    }

    #[test]
    fn builds_objects_in_order() {
        let o = Object::new().str("Status", "403 Forbidden").bool("First-Run", true).num("n", 2).finish();
        assert_eq!(o, r#"{"Status":"403 Forbidden","First-Run":true,"n":2}"#);
        assert_eq!(str_array(["x", "y"]), r#"["x","y"]"#);
    }

    #[test]
    fn nests_objects_and_formats_values_in_one_buffer() {
        let o = Object::with_capacity(64)
            .object("a", |o| o.num("x", 1).display("y", format_args!("{}M", 5)))
            .object("empty", |o| o)
            .display("q", "say \"hi\"\n")
            .finish();
        assert_eq!(o, r#"{"a":{"x":1,"y":"5M"},"empty":{},"q":"say \"hi\"\n"}"#);
    }
}

/// A JSON list of strings: absent or null is empty; anything else is refused, naming `what`.
pub fn string_list(v: Option<&miniserde::json::Value>, what: &str) -> Result<Vec<String>, String> {
    use miniserde::json::Value;
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("{what} must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(format!("{what} must be a list of strings")),
    }
}

/// The strings of a stored list, skipping anything else (for files steward wrote itself).
pub fn strings_in(v: Option<&miniserde::json::Value>) -> Vec<String> {
    use miniserde::json::Value;
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
