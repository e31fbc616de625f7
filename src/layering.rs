//! The import rules of `lib.rs`, checked against the sources: a `crate::` path in a module
//! names the layers it depends on, so a wrong-way import is a line this test can point at.

use std::path::{Path, PathBuf};

/// Which layers each part of the tree must not name.
const RULES: &[(&str, &[&str])] = &[
    ("src/server", &["api", "engine", "store", "system", "board"]),
    ("src/engine", &["api", "server"]),
    ("src/store", &["api", "server", "engine", "system"]),
    ("src/system", &["api", "server", "engine", "store"]),
    ("src/board.rs", &["api", "server", "engine", "store"]),
    ("src/hex.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/json.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/limits.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/log.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/time.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/tls.rs", &["api", "server", "engine", "store", "system", "board"]),
    ("src/workers.rs", &["api", "server", "engine", "store", "system", "board"]),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("source dir").flatten() {
            rust_files(&entry.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The layers a source text names through `crate::layer` or `use crate::{…, layer, …}`.
fn layers_named(text: &str) -> Vec<(usize, String)> {
    let mut named = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    named.push((n + 1, name.to_owned()));
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                named.push((n + 1, name));
            }
        }
    }
    named
}

#[test]
fn imports_point_one_way() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for (part, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&base.join(part), &mut files);
        assert!(!files.is_empty(), "{part}: no sources found, so the rule would pass vacuously");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source file");
            for (line, layer) in layers_named(&text) {
                if forbidden.contains(&layer.as_str()) {
                    wrong
                        .push(format!("{}:{line}: crate::{layer}", file.strip_prefix(base).unwrap_or(&file).display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports that run the wrong way:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_both_import_forms() {
    let named = layers_named("use crate::{engine, log};\nlet x = crate::server::http::Head; // crate::api\n");
    let names: Vec<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["engine", "log", "server"]);
}

/// Lines of a source's non-test code that start a thread themselves.
fn thread_starts(text: &str) -> Vec<usize> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            code.contains("thread::Builder") || code.contains("thread::spawn")
        })
        .map(|(n, _)| n + 1)
        .collect()
}

/// Threads start in `workers` only, so its budget is the whole of steward's threads.
#[test]
fn threads_start_only_in_workers() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&base.join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let name = file.strip_prefix(base).unwrap_or(&file).display().to_string();
        if name == "src/workers.rs" || name == "src/layering.rs" {
            continue;
        }
        for line in thread_starts(&std::fs::read_to_string(&file).expect("source file")) {
            wrong.push(format!("{name}:{line}"));
        }
    }
    assert!(wrong.is_empty(), "threads started outside crate::workers:\n{}", wrong.join("\n"));
    let workers = std::fs::read_to_string(base.join("src/workers.rs")).expect("workers.rs");
    assert!(!thread_starts(&workers).is_empty(), "the checker must see workers' own thread starts");
}
