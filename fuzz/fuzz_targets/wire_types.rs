#![no_main]
//! The JSON the daemon reads from clients and from its own files: operations, plans, board
//! profiles, IncusOS network config, factory-reset requests, key capabilities.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = steward::engine::reset::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(op) = steward::store::oplog::from_wire(text) {
        // What it reads back it writes the same way.
        let again = steward::store::oplog::to_wire(&op);
        assert_eq!(steward::store::oplog::from_wire(&again), Some(op));
    }
    let backup = steward::board::BackupProfile {
        paths: vec!["/var/lib/app".to_owned()],
        destinations: Some(vec!["/srv/backups".to_owned()]),
        hooks: Some(vec![steward::board::NamedHook { name: "log".into(), command: vec!["/bin/true".into()] }]),
    };
    let _ = steward::engine::plans::Plan::parse(text, &[], &backup, 0);
    let _ = steward::board::Board::parse(text);
    if let Ok(v) = miniserde::json::from_str::<miniserde::json::Value>(text) {
        let _ = steward::api::system::network::from_incus(&v, "kept.host");
        let _ = steward::engine::keys::parse_caps(Some(&v));
    }
});
