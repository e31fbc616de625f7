#![no_main]
//! The update package reader behind its encryption: the fuzzed bytes are sealed with the
//! dev transit key, so the reader sees them as a genuine package body (length, manifest,
//! signature, payload) and must refuse anything not signed by the dev signing key. The
//! fuzzed bytes are also read as a bundle payload is once its signature holds: through the
//! tar header guard and the tar crate, which must never allocate what a header declares.
use std::io::{Read, Write};

use libfuzzer_sys::fuzz_target;
use steward::engine::package::{Encryptor, MAGIC, open};
use steward::hex::parse_hex;
use steward::engine::targuard::TarGuard;

fuzz_target!(|data: &[u8]| {
    let key: [u8; 32] = parse_hex("7ee195979da33effa651b883091ed902ceda07e2a54328c4dfa56bc6f226da99", 32)
        .unwrap()
        .try_into()
        .unwrap();
    let signing = parse_hex("5b88e10eea84c18b69c2d1c524a6d9c563ce13be64e62500fcd7c9ab877df9ce", 32).unwrap();
    let mut enc = Encryptor::new(Vec::new(), &key, MAGIC).unwrap();
    enc.write_all(data).unwrap();
    let sealed = enc.finish().unwrap();
    if let Ok((_, mut payload)) = open(&sealed[..], &key, &signing) {
        let mut sink = [0u8; 4096];
        while let Ok(n) = payload.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    }
    let mut bundle = tar::Archive::new(TarGuard::new(data));
    if let Ok(entries) = bundle.entries() {
        for entry in entries.take(64) {
            let Ok(mut entry) = entry else { break };
            let _ = entry.path();
            let _ = std::io::copy(&mut entry, &mut std::io::sink());
        }
    }
});
