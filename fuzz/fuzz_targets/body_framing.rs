#![no_main]
//! Body framing (Content-Length and chunked), fed in two pieces at a fuzzed split: never more
//! output than the limit, never a panic.
use libfuzzer_sys::fuzz_target;
use steward::server::body::Decoder;
use steward::server::http::Framing;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = (data[0] as usize) % data.len();
    let limit = 4096;
    for framing in [Framing::Chunked, Framing::Length(u64::from(data[0]) * 16)] {
        let Ok(mut d) = Decoder::new(framing, limit) else { continue };
        let mut out = Vec::new();
        if d.feed(&data[1..split.max(1)], &mut out).is_ok() {
            let _ = d.feed(&data[split.max(1)..], &mut out);
        }
        assert!(out.len() as u64 <= limit);
    }
});
