#![no_main]
//! The Jidoteki settings and storage validators: accepted values never carry what the
//! rendered key=value file could misread (a newline).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = steward::engine::settings::parse_network(data) {
        assert!(n.fields.iter().all(|(_, v)| !v.contains('\n')));
    }
    let offered = ["local".to_owned(), "nfs".to_owned(), "iscsi".to_owned(), "aoe".to_owned(), "nbd".to_owned()];
    if let Ok(s) = steward::engine::settings::parse_storage(data, &offered) {
        assert!(s.fields.iter().all(|(_, v)| !v.contains('\n')));
    }
});
