//! steward's modules: the daemon (`src/main.rs`) and the fuzz targets (`fuzz/`) build on them.

pub mod api;
pub mod board;
pub mod boardcheck;
pub mod daemon;
pub mod engine;
pub mod hex;
pub mod json;
pub mod limits;
pub mod log;
pub mod server;
pub mod store;
pub mod system;
pub mod time;
