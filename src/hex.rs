//! Lowercase hex, standard base64 and constant-time comparison: encodings every layer uses
//! (digests in logs and records, keys in board files, credentials in heads).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

pub fn encode32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// Equal length and equal bytes, in time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub fn is_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn parse_hex(text: &str, len: usize) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.len() != len * 2 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected {len} bytes as hex"));
    }
    (0..len).map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())).collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (protojson's `bytes`).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Standard base64 (padding optional), for `Authorization: Basic`; `None` if malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_compares() {
        let mut raw = [0u8; 32];
        raw[31] = 0x5a;
        assert!(encode32(&raw).ends_with(b"5a"));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(is_lower_hex(b"09af"));
        assert!(!is_lower_hex(b"09AF"));
    }
}

#[cfg(test)]
mod base64_tests {
    #[test]
    fn decodes_basic_credentials() {
        assert_eq!(super::base64_decode("dXNlcjpwYXNz").as_deref(), Some(&b"user:pass"[..]));
        assert_eq!(super::base64_decode("YTpi").as_deref(), Some(&b"a:b"[..]));
        assert_eq!(super::base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert!(super::base64_decode("Y").is_none());
        assert!(super::base64_decode("a*b").is_none());
        for raw in [&b""[..], b"a", b"ab", b"abc", b"\xff\x00\xfe\x01"] {
            let text = super::base64_encode(raw);
            assert_eq!(text.len() % 4, 0, "{text}");
            assert_eq!(super::base64_decode(&text).as_deref(), Some(raw), "{text}");
        }
        assert_eq!(super::base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }
}
