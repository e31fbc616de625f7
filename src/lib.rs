//! steward's modules: the daemon (`src/main.rs`) and the fuzz targets (`fuzz/`) build on them.
//!
//! Imports point one way: `api` uses `server` (the HTTP layer, a library the surfaces plug
//! into) and `engine`; `engine` uses `system`, `store` and `board`; `server` and `engine`
//! never import each other, and `store`, `system` and `board` import neither. The leaves
//! (`hex`, `json`, `limits`, `log`, `time`, `tls`) import none of the layers above them. The
//! `layering` test below reads the sources and fails when an import runs the wrong way.

#![deny(unsafe_code)]

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
pub mod tls;
pub mod workers;

#[cfg(test)]
mod layering;
