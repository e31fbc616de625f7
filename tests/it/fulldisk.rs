//! A full data disk and damaged stored files (issue 17, items 6 and 7): reads keep working,
//! writes that fail for space say so (507) and change nothing, and a damaged file is never
//! served as if it were JSON.

use crate::util::{ADMIN, Daemon, Options, cleanup, fixture_root_copy, temp_dir};

/// A 4 MiB tmpfs for the data dir, or `None` where this process may not mount (not root).
fn small_filesystem() -> Option<std::path::PathBuf> {
    let dir = temp_dir("small-fs");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(dir)
}

fn unmount(dir: &std::path::Path) {
    let _ = std::process::Command::new("umount").arg(dir).status();
    let _ = std::fs::remove_dir_all(dir);
}

/// Fills the filesystem under `dir` to the last block.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_data_disk_keeps_reads_and_says_507_for_writes() {
    let Some(mount) = small_filesystem() else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let data = mount.join("data");
    let d = Daemon::with_data(Options { root: fixture_root_copy(), ..Options::default() }, data.clone());
    d.setup("owner");
    fill(&mount);
    // Reads work, including read-only RPCs with a JSON body.
    assert_eq!(d.get(&format!("{ADMIN}/health?token=owner")).status, 200);
    let r = d.connect().send("POST", "/v1.Backrest/GetOperations", &[("Authorization", "Bearer owner")], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.connect().send("GET", "/1.0/operations", &[("Authorization", "Bearer owner")], b"").status, 200);
    // A token change fails for space, says so, and the old token stays.
    let r = d.post_form(&format!("{ADMIN}/setup?token=owner"), &[("newtoken", b"another")]);
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.header("Error-Message").unwrap().contains("No space left"), "{:?}", r.header("Error-Message"));
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    assert_eq!(d.get(&format!("{ADMIN}/version?token=another")).status, 403);
    // Settings: a 507 on each surface that stores them.
    let settings = br#"{"network":{"interface":"eth0","hostname":"full.lan"}}"#;
    let r = d.post_form(&format!("{ADMIN}/settings?token=owner"), &[("settings", settings)]);
    assert_eq!(r.status, 507, "{}", r.text());
    let plan = br#"{"id":"p","sources":{"state":true},"destination":{"path":"/srv/backups/p"}}"#;
    let r = d.connect().send("POST", "/1.0/plans", &[("Authorization", "Bearer owner")], plan);
    assert_eq!(r.status, 507, "{}", r.text());
    std::fs::remove_file(mount.join("filler")).unwrap();
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200);
    cleanup(d);
    unmount(&mount);
}

#[test]
fn a_damaged_stored_file_is_never_served_as_json() {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    for (file, path) in [("settings.json", "settings"), ("storage.json", "storage")] {
        std::fs::write(d.data.join(file), "{not json").unwrap();
        let r = d.get(&format!("{ADMIN}/{path}?token=owner"));
        assert_eq!(r.status, 500, "{path}: {}", r.text());
        assert!(r.header("Error-Message").unwrap().contains("damaged"), "{path}");
        let _: miniserde::json::Value = miniserde::json::from_str(&r.text()).expect("the answer is JSON");
    }
    // An empty object is a document too: the storage answer stays JSON.
    std::fs::write(d.data.join("storage.json"), "{}").unwrap();
    let r = d.get(&format!("{ADMIN}/storage?token=owner"));
    assert_eq!(r.status, 200);
    let _: miniserde::json::Value = miniserde::json::from_str(&r.text()).expect("JSON");
    cleanup(d);
}
