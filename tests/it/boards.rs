//! The shipped board profiles: each passes `steward check` against its fixture root and
//! serves from it; a broken profile is reported with the field at fault.

use crate::util::{Daemon, Options, cleanup, run_cli};

const BOARDS: [&str; 3] = ["dev", "generic-x86_64", "qemu-aarch64"];

fn profile(name: &str) -> String {
    format!("{}/board/{name}.json", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    match name {
        "dev" => format!("{}/tests/fixtures/root", env!("CARGO_MANIFEST_DIR")),
        other => format!("{}/tests/fixtures/boards/{other}", env!("CARGO_MANIFEST_DIR")),
    }
}

#[test]
fn every_shipped_profile_checks_clean_and_serves() {
    for name in BOARDS {
        let (ok, out, err) = run_cli(&["check", "--board", &profile(name), "--root", &fixture(name)]);
        assert!(ok, "{name}: {out}{err}");
        assert!(out.contains("no problems found"), "{name}: {out}");
        let root = crate::util::root_copy_of(std::path::Path::new(&fixture(name)));
        let d = Daemon::with(Options { board: Some(profile(name)), root, plain: false });
        d.setup("owner");
        let version = d.get("/api/v1/admin/version?token=owner");
        assert_eq!(version.status, 200, "{name}: {}", version.text());
        let expected = if name == "dev" { "1.2.3" } else { "2.0.0" };
        assert!(version.text().contains(expected), "{name}: {}", version.text());
        assert_eq!(d.get("/1.0?token=owner").status, 200, "{name}");
        assert_eq!(d.get("/api/v1/admin/services?token=owner").status, 200, "{name}");
        cleanup(d);
    }
}

#[test]
fn a_broken_profile_names_the_field() {
    let dir = crate::util::temp_dir("boards");
    let text = std::fs::read_to_string(profile("generic-x86_64")).unwrap();
    let cases = [
        (
            text.replace("/usr/lib/steward/hooks/healthy", "/usr/lib/steward/hooks/nope"),
            "update.boot.health_check: /usr/lib/steward/hooks/nope does not exist",
        ),
        (text.replace("/boot/grub/grubenv", "/boot/grub/missing"), "update.boot.env: no GRUB environment"),
        (text.replace("\"loader\": \"grub\"", "\"loader\": \"lilo\""), "update.boot.loader: \"lilo\""),
        (
            text.replace("5b88e10eea84c18b69c2d1c524a6d9c563ce13be64e62500fcd7c9ab877df9ce", "5b88"),
            "update.signing_public_key",
        ),
        (text.replace("/var/log/app\"]", "/var/log/missing\"]"), "logs: /var/log/missing is not a directory"),
        (
            text.replace("\"/usr/bin/systemctl\", \"restart\"", "\"systemctl\", \"restart\""),
            "applications.app.restart: systemctl must be an absolute path",
        ),
    ];
    for (i, (broken, why)) in cases.iter().enumerate() {
        assert_ne!(broken, &text, "case {i} changed nothing");
        let path = dir.join(format!("broken-{i}.json"));
        std::fs::write(&path, broken).unwrap();
        let (ok, out, err) =
            run_cli(&["check", "--board", path.to_str().unwrap(), "--root", &fixture("generic-x86_64")]);
        assert!(!ok, "case {i} passed: {out}");
        assert!(err.contains(why), "case {i}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
