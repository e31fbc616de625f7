#![no_main]
//! Form bodies (multipart with a fixed boundary, urlencoded, none), fed in two pieces at a
//! fuzzed split as they arrive from the socket.
use libfuzzer_sys::fuzz_target;
use steward::server::form::FormReader;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = (data[0] as usize) % data.len();
    for ct in [Some("multipart/form-data; boundary=XyZ"), Some("application/x-www-form-urlencoded"), None] {
        let mut reader = FormReader::new(ct, None);
        reader.feed(&data[..split]);
        reader.feed(&data[split..]);
        let _ = reader.finish();
    }
});
