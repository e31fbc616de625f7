//! The README runs as written (issue 24): every `curl` and `steward` example in its `sh`
//! blocks is run, in order, against a dev-board daemon, and each must succeed (a 2xx answer,
//! JSON where it says JSON). A README edited into something the binary does not do fails.
//!
//! What the test fills in, as the README says: the address (`https://127.0.0.1:8443`), the
//! `curl ...` options (`--cacert var/tls/cert.pem`), the key secret `stw_…` (from the key the
//! example creates), the operation id `42` and the record id `ID` (from the answers before
//! them), `steward` (the binary under test), the vendor's `keys/` (the dev board's own, after
//! `steward keygen` made a fresh set: the dev board trusts only its own), and the input
//! files `CHANGELOG.md`, `rootfs.img` and `license.json`.

use std::path::Path;
use std::process::Command;

use crate::util::{Daemon, Options, fixture_root_copy, temp_dir};

/// One command from the README, with continuation lines and multi-line quotes joined.
fn commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    let mut quote: Option<char> = None;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh" && !in_sh;
            continue;
        }
        if !in_sh {
            continue;
        }
        if pending.is_empty() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            continue;
        }
        pending.push_str(strip_comment(line, &mut quote).trim_end());
        if let Some(stripped) = pending.strip_suffix('\\') {
            pending = stripped.to_owned();
            continue;
        }
        if quote.is_some() {
            pending.push('\n');
            continue;
        }
        out.push(std::mem::take(&mut pending));
    }
    // The first block's `cargo run` / `cargo test` are how you get here, not examples.
    out.retain(|c| !c.starts_with("cargo "));
    out
}

/// The line without its shell comment (a `#` after white space, outside quotes); `quote`
/// carries an open quote from one line to the next.
fn strip_comment<'a>(line: &'a str, quote: &mut Option<char>) -> &'a str {
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (*quote, c) {
            (None, '\'' | '"') => *quote = Some(c),
            (Some(q), c) if c == q => *quote = None,
            (None, '#') if prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

struct Filled {
    secret: String,
    operation: String,
    record: String,
}

fn fill(command: &str, url: &str, bin: &str, f: &Filled) -> String {
    let mut c = command.replace("https://127.0.0.1:8443", url);
    c = c.replace("curl ...", "curl --cacert var/tls/cert.pem");
    c = c.replace("stw_…", &f.secret);
    c = c.replace("/operations/42", &format!("/operations/{}", f.operation));
    c = c.replace("/backups/ID/", &format!("/backups/{}/", f.record));
    if c.starts_with("steward ") {
        c = format!("{bin}{}", &c["steward".len()..]);
    }
    c.replace("$(steward ", &format!("$({bin} "))
}

fn json_string(body: &str, key: &str) -> Option<String> {
    let at = body.find(&format!("\"{key}\":\""))? + key.len() + 4;
    Some(body[at..].split('"').next()?.to_owned())
}

#[test]
fn every_readme_example_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = commands(&readme);
    assert!(examples.len() >= 25, "only {} examples found", examples.len());
    let work = temp_dir("readme");
    // The daemon's data dir is the README's `var/`, relative to where the commands run.
    let d = Daemon::with_data(Options { root: fixture_root_copy(), ..Options::default() }, work.join("var"));
    let url = format!("https://127.0.0.1:{}", d.port);
    let bin = std::env::var("STEWARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_steward").to_owned());
    let bin = match std::env::var("STEWARD_RUNNER").ok().filter(|r| !r.is_empty()) {
        Some(runner) => format!("{runner} {bin}"),
        None => bin,
    };
    std::fs::write(work.join("CHANGELOG.md"), "# 1.3.0\n- examples\n").unwrap();
    std::fs::write(work.join("rootfs.img"), vec![7u8; 64 * 1024]).unwrap();
    std::fs::write(work.join("license.json"), "{\"customer\":\"example\",\"seats\":5}\n").unwrap();
    let mut filled = Filled { secret: "stw_none".into(), operation: "0".into(), record: "0".into() };
    // Shell state the examples set (B=, H=, U=, key=) is carried from one to the next.
    let mut prelude = String::new();
    for (i, example) in examples.iter().enumerate() {
        let command = fill(example, &url, &bin, &filled);
        let is_assignment = command.split_whitespace().next().is_some_and(|w| w.contains('=') && !w.starts_with('-'));
        if is_assignment && !command.contains("curl") {
            prelude.push_str(&command);
            prelude.push('\n');
            continue;
        }
        let head = work.join(format!("{i}.head"));
        let command = if command.starts_with("curl ") {
            format!("curl -sS -D {} {}", head.display(), &command[5..])
        } else {
            command
        };
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -e\n{prelude}{command}"))
            .current_dir(&work)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "example {i} failed: {example}\n{command}\n{stdout}\n{stderr}");
        if let Ok(head) = std::fs::read_to_string(&head) {
            let status = head.lines().rfind(|l| l.starts_with("HTTP/")).unwrap_or_default().to_owned();
            // The README says a cancel answers 409 once the operation has ended, as the
            // one its `:run` queued has by then.
            let ended = example.contains("/operations/42") && status.contains(" 409");
            assert!(status.contains(" 20") || ended, "example {i}: {example}\n{status}\n{stdout}");
            if head.to_ascii_lowercase().contains("content-type: application/json") && !stdout.is_empty() {
                let _: miniserde::json::Value =
                    miniserde::json::from_str(&stdout).unwrap_or_else(|_| panic!("example {i}: not JSON: {stdout}"));
            }
        }
        // Answers later examples refer to.
        if example.contains("/1.0/keys --data") {
            filled.secret = json_string(&stdout, "secret").expect("the key's secret");
        }
        if example.contains("/:run") {
            filled.operation = json_string(&stdout, "id").expect("the queued operation's id");
        }
        if example.contains("/v1/containers/app/backups ") || example.trim_end().ends_with("/v1/containers/app/backups")
        {
            filled.record = json_string(&stdout, "id").expect("a backup record");
        }
        if example.contains("keygen --out keys/") {
            // The dev board trusts its own vendor keys only.
            let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("board/dev-keys");
            for k in ["signing.key", "update.key", "debug.key"] {
                std::fs::copy(dev.join(k), work.join("keys").join(k)).unwrap();
            }
        }
    }
    drop(d);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn the_readme_extractor_joins_continuations_and_quotes() {
    let text = "```sh\n# a comment\nsteward pack-update --a \\\n    --b\ncurl -X POST --data '{\"a\":1,\n  \"b\":2}'\n```\n```\nnot sh\n```\n";
    assert_eq!(commands(text), vec!["steward pack-update --a     --b", "curl -X POST --data '{\"a\":1,\n  \"b\":2}'"]);
}
