#![no_main]
//! The request-head parser: any bytes give a head, "need more", or a refusal, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((head, used)) = steward::server::http::parse_head(data) {
        assert!(used <= data.len());
        assert!(head.path().starts_with('/'));
    }
});
