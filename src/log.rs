//! Operator-facing log lines on stderr (stdout carries only the `listening on` line).

use std::fmt::Arguments;
use std::io::Write;

fn emit(level: &str, args: Arguments) {
    let stamp = crate::time::rfc3339(std::time::SystemTime::now());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{stamp} {level} {args}");
}

pub fn info(args: Arguments) {
    emit("INFO", args);
}

pub fn warn(args: Arguments) {
    emit("WARN", args);
}
