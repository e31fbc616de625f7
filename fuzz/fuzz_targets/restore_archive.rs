#![no_main]
//! The restore validator's first pass over an archive: refuses or accepts, writes nothing,
//! never panics, whatever the tar bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = steward::engine::restore::validate(data, "dev", &["var/lib/app"], true);
});
