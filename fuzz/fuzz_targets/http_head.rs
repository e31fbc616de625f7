#![no_main]
//! The request-head parser: any bytes give a head, "need more", or a refusal, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((head, used)) = steward::server::http::parse_head(data) {
        assert!(used <= data.len());
        assert!(head.path().starts_with('/'));
        // Path, query and the kept header values are spans of one string: each must slice.
        let _ = (head.query(), head.content_type(), head.authorization(), head.if_match(), head.accept());
        if let Some(digest) = head.content_sha256() {
            assert!(!digest.bytes().any(|b| b.is_ascii_uppercase()));
        }
    }
});
