//! `steward check`: a board profile against the system it will run on (`--root`), so a
//! vendor finds a missing file, hook or key before flashing rather than on the device.

use std::os::unix::fs::PermissionsExt;

use crate::board::Board;
use crate::system::Root;

/// Every problem found, each starting with the profile field it concerns.
pub fn check(board: &Board, root: &Root) -> Vec<String> {
    let mut problems = Vec::new();
    let mut need_file = |field: &str, path: &str| {
        if !root.path(path).is_file() {
            problems.push(format!("{field}: {path} does not exist under the root"));
        }
    };
    need_file("info.version", &board.info.version);
    need_file("info.changelog", &board.info.changelog);
    need_file("info.build", &board.info.build);
    let need_dir = |field: &str, path: &str, problems: &mut Vec<String>| {
        if !root.path(path).is_dir() {
            problems.push(format!("{field}: {path} is not a directory under the root"));
        }
    };
    for dir in &board.logs {
        need_dir("logs", dir, &mut problems);
    }
    for dir in &board.backup.paths {
        need_dir("backup.paths", dir, &mut problems);
    }
    for app in &board.applications {
        for dir in &app.paths {
            need_dir(&format!("applications.{}.paths", app.name), dir, &mut problems);
        }
    }
    let mut rendered =
        vec![("network.config", board.network.config.as_str()), ("storage.config", &board.storage.config)];
    if board.network.backend() == Some(crate::board::NetBackend::Netlink) {
        rendered.push(("network.resolv_conf", board.network.resolv_conf()));
        rendered.push(("network.hostname_file", board.network.hostname_file()));
        rendered.extend(board.network.ntp_config.as_deref().map(|f| ("network.ntp_config", f)));
    }
    for (field, file) in rendered {
        let parent = std::path::Path::new(file).parent().map(|p| p.to_string_lossy().into_owned());
        if let Some(parent) = parent {
            need_dir(field, &parent, &mut problems);
        }
    }
    // A file-backed slot is created on its first use; a device must be there.
    for (i, slot) in board.update.slots.iter().enumerate() {
        if slot.starts_with("/dev/") && !root.path(slot).exists() {
            problems.push(format!("update.slots[{i}]: device {slot} does not exist under the root"));
        }
    }
    if let Some(boot) = &board.update.boot {
        let slots = [board.update.slots[0].as_str(), board.update.slots[1].as_str()];
        let loader = crate::engine::trial::Loader { boot, root, slots };
        if let Err(e) = loader.readable() {
            problems.push(format!("update.boot.env: {e}"));
        }
    }
    let mut hooks: Vec<(String, &Vec<String>)> = Vec::new();
    fn add<'a>(hooks: &mut Vec<(String, &'a Vec<String>)>, field: String, argv: Option<&'a Vec<String>>) {
        if let Some(a) = argv {
            hooks.push((field, a));
        }
    }
    add(&mut hooks, "network.apply".into(), board.network.apply.as_ref());
    add(&mut hooks, "network.dhcp_client".into(), board.network.dhcp_client.as_ref());
    add(&mut hooks, "storage.pool_hook".into(), board.storage.pool_hook.as_ref());
    add(&mut hooks, "update.activate".into(), board.update.activate.as_ref());
    add(&mut hooks, "update.install".into(), board.update.install.as_ref());
    add(
        &mut hooks,
        "update.boot.health_check".into(),
        board.update.boot.as_ref().and_then(|b| b.health_check.as_ref()),
    );
    add(&mut hooks, "power.command".into(), board.power.command.as_ref());
    add(&mut hooks, "power.poweroff_command".into(), board.power.poweroff_command.as_ref());
    for app in &board.applications {
        add(&mut hooks, format!("applications.{}.restart", app.name), app.restart.as_ref());
    }
    for s in &board.services {
        add(&mut hooks, format!("services.{}.command", s.name), s.command.as_ref());
    }
    for (field, argv) in hooks {
        let Some(program) = argv.first() else { continue };
        if !program.starts_with('/') {
            problems.push(format!("{field}: {program} must be an absolute path (hooks run without a PATH search)"));
            continue;
        }
        match std::fs::metadata(root.path(program)) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            Ok(_) => problems.push(format!("{field}: {program} is not an executable file")),
            Err(_) => problems.push(format!("{field}: {program} does not exist under the root")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_of_each_problem() {
        let dev = include_str!("../board/dev.json");
        let from = r#""config": "/etc/steward/network.conf","#;
        assert!(dev.contains(from), "the dev board changed: this test must change with it");
        let text = dev.replacen(
            from,
            r#""config": "/etc/steward/network.conf", "apply": ["/usr/lib/steward/missing-hook"],"#,
            1,
        );
        let board = Board::parse(&text).unwrap();
        let root = Root::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/root"));
        let problems = check(&board, &root);
        assert_eq!(problems, ["network.apply: /usr/lib/steward/missing-hook does not exist under the root"]);
        let bare = Root::new(std::env::temp_dir().join("steward-check-nothing-here"));
        let problems = check(&board, &bare);
        assert!(problems.iter().any(|p| p.starts_with("info.version:")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("backup.paths:")), "{problems:?}");
    }
}
