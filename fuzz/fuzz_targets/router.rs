#![no_main]
//! The router: any path, any method, finds at most one route and never panics.
use libfuzzer_sys::fuzz_target;
use steward::api::routes::{Lookup, ROUTES, Surface, lookup};
use steward::server::http::Method;

fuzz_target!(|data: &[u8]| {
    let path = String::from_utf8_lossy(data);
    let Some(surface) = Surface::of_path(&path) else { return };
    for method in [Method::Get, Method::Head, Method::Post, Method::Put, Method::Delete] {
        if let Lookup::Found(i) = lookup(surface, &path, method, |_| true) {
            assert!(i < ROUTES.len());
        }
    }
});
