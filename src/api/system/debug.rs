//! `/1.0/debug`: the board's log files, and messages to the console.

use super::*;

pub fn debug_index(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(sync(r#"["/1.0/debug/kernel","/1.0/debug/log","/1.0/debug/processes","/1.0/debug/secureboot"]"#).into())
}

/// Upstream's `DebugKernel`: release, architecture, loaded modules (procfs).
pub fn debug_kernel(api: &mut Api, _call: &mut Call) -> Handled {
    let k = api.engine.kernel();
    let modules: Vec<String> = k
        .modules
        .iter()
        .map(|m| {
            Object::new()
                .str("name", &m.name)
                .raw("dependencies", &crate::json::str_array(m.dependencies.iter().map(String::as_str)))
                .bool("in_use", m.in_use)
                .finish()
        })
        .collect();
    // The x86-64 microarchitecture level upstream reads from its build; steward's binary
    // asks for the baseline only.
    let baseline = if k.architecture == "x86_64" { "x86-64" } else { "" };
    let body = Object::new()
        .str("version", &k.version)
        .str("architecture", &k.architecture)
        .str("cpu_baseline", baseline)
        .raw("modules", &format!("[{}]", modules.join(",")))
        .finish();
    Ok(sync(&body).into())
}

/// What upstream's `ps fauxww` string holds, read from procfs: one process a line.
pub fn debug_processes(api: &mut Api, _call: &mut Call) -> Handled {
    let mut out = String::from("PID PPID S COMMAND\n");
    for p in api.engine.processes() {
        let command = if p.command.is_empty() { format!("[{}]", p.name) } else { p.command };
        out.push_str(&format!("{} {} {} {command}\n", p.pid, p.ppid, p.state));
    }
    let mut text = String::new();
    crate::json::push_str(&mut text, &out);
    Ok(sync(&text).into())
}

/// Upstream lists its Secure Boot debug endpoints here: steward serves the event log.
pub fn secureboot_index(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(sync(r#"["/1.0/debug/secureboot/event-log"]"#).into())
}

/// The measured-boot event log as upstream answers it: the events of PCRs 4 (boot loaders),
/// 7 (Secure Boot policy) and 11 (the unified kernel image) in go-eventlog's `tcg.Event`
/// shape (its Go field names; data and digest base64), and PCRs 4 and 7 from the TPM.
pub fn secureboot_event_log(api: &mut Api, _call: &mut Call) -> Handled {
    use crate::system::eventlog;
    let bytes = match api.engine.root.read_limited(eventlog::PATH, eventlog::MAX_LOG) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // 400, as every endpoint a board cannot serve answers: 404 is for paths that
            // do not exist, and a client tells the two apart.
            return Ok(error(400, "no measured-boot event log: the firmware kept none, or there is no TPM").into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok(error(
                400,
                "the measured-boot event log is root-only and steward runs without CAP_DAC_READ_SEARCH",
            )
            .into());
        }
        Err(e) => return Ok(error(500, &format!("reading the event log: {e}")).into()),
    };
    let log = match eventlog::parse(&bytes) {
        Ok(log) => log,
        Err(e) => return Ok(error(500, &format!("the event log cannot be read: {e}")).into()),
    };
    let Some(tpm) = api.engine.security().tpm else {
        return Ok(error(500, "the event log has no TPM to check it against").into());
    };
    let pcr = |n: u32| tpm.pcrs.iter().find(|(i, _)| *i == n).map(|(_, v)| v.clone());
    let (Some(pcr4), Some(pcr7)) = (pcr(4), pcr(7)) else {
        return Ok(error(500, "the TPM does not give PCRs 4 and 7 of its SHA-256 bank").into());
    };
    let events: Vec<String> = log
        .events
        .iter()
        .filter(|e| matches!(e.index, 4 | 7 | 11))
        .map(|e| {
            Object::new()
                .num("Index", e.index)
                .num("Type", e.kind)
                .str("Data", &crate::hex::base64_encode(&e.data))
                .str("Digest", &crate::hex::base64_encode(&e.digest))
                .finish()
        })
        .collect();
    let body = Object::new().raw("event_log", &format!("[{}]", events.join(","))).str("pcr4", &pcr4).str("pcr7", &pcr7);
    Ok(sync(&body.finish()).into())
}

/// The last lines of the board's log files as journal-like records, oldest first.
/// `unit` picks a file by name (without extension), `entries` bounds the answer (default
/// 100, at most 1,000), `boot` takes the current boot (`0`, `-0` or empty) only.
pub fn debug_log(api: &mut Api, call: &mut Call) -> Handled {
    use crate::server::http::query_param;
    const MAX_ENTRIES: usize = 1000;
    const TAIL_BYTES: u64 = 256 * 1024;
    let entries = match query_param(call.head.query(), "entries").as_deref() {
        None | Some("") => 100,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_ENTRIES).contains(&n) => n,
            _ => return Ok(error(400, &format!("entries must be from 1 to {MAX_ENTRIES}")).into()),
        },
    };
    if let Some(b) = query_param(call.head.query(), "boot").filter(|b| !matches!(b.as_ref(), "" | "0" | "-0")) {
        return Ok(error(400, &format!("boot {b:?}: only the current boot (0) is kept on this board")).into());
    }
    let unit = query_param(call.head.query(), "unit").filter(|u| !u.is_empty());
    // `since` and `until` as journalctl takes them; a record's time is its file's last change
    // (these logs carry no time of their own steward could trust).
    let now = crate::time::unix_millis() / 1000;
    let bound = |name: &str| -> Result<Option<i64>, Reply> {
        match query_param(call.head.query(), name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => crate::time::parse_journal_time(&v, now).map(Some).ok_or_else(|| {
                error(
                    400,
                    &format!("{name} {v:?}: a time as journalctl takes it (2026-12-01 10:00, @1764633600, -1h, today)"),
                )
                .into()
            }),
        }
    };
    let (since, until) = (bound("since")?, bound("until")?);
    let mut files: Vec<(std::time::SystemTime, String, std::path::PathBuf)> = Vec::new();
    for dir in &api.engine.board.logs {
        let Ok(list) = std::fs::read_dir(api.engine.root.path(dir)) else { continue };
        for entry in list.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.split('.').next().unwrap_or(&name).to_owned();
            if unit.as_ref().is_some_and(|u| *u != stem) {
                continue;
            }
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            let secs = crate::time::unix_seconds(modified);
            if since.is_some_and(|s| secs < s) || until.is_some_and(|u| secs > u) {
                continue;
            }
            files.push((modified, stem, entry.path()));
        }
    }
    files.sort();
    let mut records: Vec<String> = Vec::new();
    for (modified, stem, path) in files {
        let Ok(mut f) = std::fs::File::open(&path) else { continue };
        use std::io::{Read, Seek, SeekFrom};
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL_BYTES);
        if f.seek(SeekFrom::Start(start)).is_err() {
            continue;
        }
        let mut text = Vec::new();
        let _ = f.take(TAIL_BYTES).read_to_end(&mut text);
        let text = String::from_utf8_lossy(&text);
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        let stamp = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0).to_string();
        for line in lines.into_iter().filter(|l| !l.is_empty()) {
            records.push(
                Object::new()
                    .str("MESSAGE", line)
                    .str("PRIORITY", "6")
                    // `incus admin os debug log` skips records without a string identifier.
                    .str("SYSLOG_IDENTIFIER", &stem)
                    .str("_SYSTEMD_UNIT", &stem)
                    .str("__REALTIME_TIMESTAMP", &stamp)
                    .finish(),
            );
        }
        if records.len() > entries * 4 {
            records.drain(..records.len() - entries);
        }
    }
    let skip = records.len().saturating_sub(entries);
    Ok(sync(&format!("[{}]", records[skip..].join(","))).into())
}

/// Writes an operator's message to steward's log (the console and journal on a board).
pub fn write_message(api: &mut Api, call: &mut Call) -> Handled {
    let text = match call.body_text() {
        Ok(t) => t,
        Err(m) => return Ok(error(400, m).into()),
    };
    let Ok(Value::Object(m)) = json::from_str::<Value>(&text) else {
        return Ok(error(400, "the body must be a JSON object with level and message").into());
    };
    let level = match m.get("level") {
        None | Some(Value::Null) => "INFO".to_owned(),
        Some(Value::String(l)) if ["DEBUG", "INFO", "WARN", "ERROR"].contains(&l.to_ascii_uppercase().as_str()) => {
            l.to_ascii_uppercase()
        }
        Some(Value::Number(n)) => match n {
            Number::I64(-4) => "DEBUG".into(),
            Number::U64(0) => "INFO".into(),
            Number::U64(4) => "WARN".into(),
            Number::U64(8) => "ERROR".into(),
            _ => return Ok(error(400, "level must be DEBUG, INFO, WARN or ERROR").into()),
        },
        Some(_) => return Ok(error(400, "level must be DEBUG, INFO, WARN or ERROR").into()),
    };
    let message = match m.get("message") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Ok(error(400, "message is required").into()),
    };
    let clean: String = message.chars().take(4096).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if level == "WARN" || level == "ERROR" {
        crate::log::warn(format_args!("operator message [{level}]: {clean}"));
    } else {
        crate::log::info(format_args!("operator message [{level}]: {clean}"));
    }
    api.engine.audit.record(&call.who(), "debug.message", &level);
    Ok(sync("{}").into())
}
