//! Black-box tests: the real binary on 127.0.0.1:0, spoken to over HTTPS.

mod access;
mod auth;
mod backup;
mod boards;
mod ceiling;
mod certs;
mod crash;
mod devboard;
mod fulldisk;
mod goshape;
mod hostile;
mod http;
mod incus;
mod info;
mod integrity;
mod license;
mod logs;
mod metrics;
mod plans;
mod privilege;
mod protos;
mod readme;
mod settings;
mod system;
mod update;
mod util;
