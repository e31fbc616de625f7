//! A restore writes nothing it has not proved (issue 16, items 3 to 6): state the daemon
//! could not load, a truncated archive, a corrupted gzip stream and a memory bomb are each
//! refused, and leave the box as it was and able to start again.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::ceiling::steward_archive;
use crate::util::{ADMIN, Daemon, Options, Resp, cleanup, fixture_root_copy};

fn daemon() -> Daemon {
    let d = Daemon::with(Options { root: fixture_root_copy(), ..Options::default() });
    d.setup("owner");
    d
}

fn restore(d: &Daemon, archive: &[u8]) -> Resp {
    d.post_file(&format!("{ADMIN}/backup/restore?token=owner"), "archive", "backup.tar", archive)
}

fn system_restore(d: &Daemon, archive: &[u8]) -> Resp {
    d.connect().send("POST", "/1.0/system/:restore", &[("Authorization", "Bearer owner")], archive)
}

fn backup_now(d: &Daemon) -> Vec<u8> {
    assert_eq!(d.post_form(&format!("{ADMIN}/backup?token=owner"), &[("action", b"START")]).status, 202);
    let started = Instant::now();
    while !d.get(&format!("{ADMIN}/backup?token=owner")).text().contains("success") {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    d.get(&format!("{ADMIN}/backup/download?token=owner")).body
}

fn config(d: &Daemon) -> String {
    std::fs::read_to_string(d.options.root.join("var/lib/app/config.ini")).unwrap()
}

/// The box is as it was, and still starts: the refusal left nothing the next start trips on.
fn unchanged_and_restartable(d: &mut Daemon, what: &str) {
    assert_eq!(config(d), "app config v1\n", "{what}: application data changed");
    assert!(d.options.root.join("var/lib/app/db/records.txt").exists(), "{what}: a file was deleted");
    assert!(!d.options.root.join("var/lib/app.steward-restore").exists(), "{what}: staging left");
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "{what}");
    d.restart();
    assert_eq!(d.get(&format!("{ADMIN}/version?token=owner")).status, 200, "{what}: after a restart");
}

#[test]
fn state_the_daemon_cannot_load_is_refused_before_the_swap() {
    let mut d = daemon();
    let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        ("token not a token", vec![("steward/token", b"not a token".to_vec())], "steward/token"),
        ("token upper-case hex", vec![("steward/token", "A".repeat(64).into_bytes())], "steward/token"),
        ("certificate not PEM", vec![("steward/tls/cert.pem", b"junk".to_vec())], "steward/tls"),
        ("key not PEM", vec![("steward/tls/key.pem", b"junk".to_vec())], "steward/tls"),
        (
            "certificate and key that do not match",
            vec![
                ("steward/tls/cert.pem", other.cert.pem().into_bytes()),
                ("steward/tls/key.pem", rcgen::KeyPair::generate().unwrap().serialize_pem().into_bytes()),
            ],
            "steward/tls",
        ),
        ("a certificate without its key", vec![("steward/tls/cert.pem", other.cert.pem().into_bytes())], "steward/tls"),
        ("settings not JSON", vec![("steward/settings.json", b"{not json".to_vec())], "steward/settings.json"),
        (
            "settings the validators refuse",
            vec![("steward/settings.json", br#"{"network":{"interface":"eth0; reboot"}}"#.to_vec())],
            "steward/settings.json",
        ),
        (
            "storage not offered",
            vec![("steward/storage.json", br#"{"storage":{"type":"zfs"}}"#.to_vec())],
            "steward/storage.json",
        ),
        ("license unsigned", vec![("steward/license", b"{\"app\":\"x\"}\n00\n".to_vec())], "steward/license"),
    ];
    for (what, entries, names) in cases {
        let mut all: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        all.push(("var/lib/app/config.ini", b"should not land\n"));
        let archive = steward_archive(&all);
        let r = restore(&d, &archive);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        let message = r.header("Error-Message").unwrap_or_default().to_owned();
        assert!(message.contains(names), "{what}: {message}");
        let r = system_restore(&d, &archive);
        assert_eq!(r.status, 400, "{what} (IncusOS): {}", r.text());
        unchanged_and_restartable(&mut d, what);
    }
    // A good pair and a token hash go in.
    let good = steward_archive(&[
        ("steward/tls/cert.pem", other.cert.pem().as_bytes()),
        ("steward/tls/key.pem", other.signing_key.serialize_pem().as_bytes()),
    ]);
    let r = restore(&d, &good);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_to_string(d.data.join("tls/cert.pem")).unwrap(), other.cert.pem());
    cleanup(d);
}

/// Offsets of each entry's header in a plain tar, and the archive's entry names.
fn entry_offsets(archive: &[u8]) -> Vec<(String, u64)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.raw_header_position())
        })
        .collect()
}

#[test]
fn a_truncated_backup_restores_as_complete_is_refused() {
    let mut d = daemon();
    let archive = backup_now(&d);
    let offsets = entry_offsets(&archive);
    assert_eq!(offsets.last().unwrap().0, "steward-index.json", "the index is the last entry");
    // Cut at every entry boundary (each one a tar a naive reader takes as whole), and
    // inside the index itself.
    let mut cuts: Vec<(String, usize)> =
        offsets.iter().skip(1).map(|(n, o)| (format!("before {n}"), *o as usize)).collect();
    let index_at = offsets.last().unwrap().1 as usize;
    cuts.push(("inside the index".into(), index_at + 512 + 40));
    for (what, cut) in cuts {
        let mut t = archive[..cut].to_vec();
        // Two zero blocks make the cut look like a proper end of archive.
        t.extend_from_slice(&[0u8; 1024]);
        let r = restore(&d, &t);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.header("Error-Message").unwrap().starts_with("Unable to extract backup archive"), "{what}");
    }
    unchanged_and_restartable(&mut d, "truncated");
    // The whole archive still restores.
    assert_eq!(restore(&d, &archive).status, 200);
    cleanup(d);
}

#[test]
fn an_archive_that_differs_from_its_index_is_refused() {
    let mut d = daemon();
    let archive = backup_now(&d);
    let offsets = entry_offsets(&archive);
    let (_, config_at) = offsets.iter().find(|(n, _)| n == "var/lib/app/config.ini").unwrap().clone();
    // One byte of a file's data changed: same size, same headers, another digest.
    let mut flipped = archive.clone();
    flipped[config_at as usize + 512] ^= 0x20;
    let r = restore(&d, &flipped);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.header("Error-Message").unwrap().contains("does not match its sha256"), "{}", r.text());
    // An extra entry, an entry the index lists but the archive lacks, and no index at all.
    let good_entries: &[(&str, &[u8])] = &[("var/lib/app/config.ini", b"app config v1\n")];
    let mut extra = steward_archive(good_entries);
    let index_at = entry_offsets(&extra).last().unwrap().1 as usize;
    let tail = extra.split_off(index_at);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    b.append_data(&mut h, "var/lib/app/smuggled", &b"x"[..]).unwrap();
    let mut smuggled = b.into_inner().unwrap();
    smuggled.truncate(smuggled.len() - 1024);
    extra.extend_from_slice(&smuggled);
    extra.extend_from_slice(&tail);
    let no_index = {
        let mut t = steward_archive(good_entries);
        let at = entry_offsets(&t).last().unwrap().1 as usize;
        t.truncate(at);
        t.extend_from_slice(&[0u8; 1024]);
        t
    };
    for (what, bad, says) in
        [("an entry not in the index", extra, "not in the archive's index"), ("no index", no_index, "no index")]
    {
        let r = restore(&d, &bad);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.header("Error-Message").unwrap().contains(says), "{what}: {}", r.text());
    }
    assert!(!d.options.root.join("var/lib/app/smuggled").exists());
    unchanged_and_restartable(&mut d, "differs from its index");
    cleanup(d);
}

fn system_backup(d: &Daemon) -> Vec<u8> {
    let r = d.connect().send("POST", "/1.0/system/:backup", &[("Authorization", "Bearer owner")], b"");
    assert_eq!(r.status, 200);
    r.body
}

#[test]
fn a_corrupted_tar_gz_restores_silently_is_refused() {
    let mut d = daemon();
    let gz = system_backup(&d);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let n = gz.len();
    let crc = {
        let mut g = gz.clone();
        g[n - 8] ^= 0x01; // the CRC32 of the trailer
        g
    };
    let isize_wrong = {
        let mut g = gz.clone();
        g[n - 1] ^= 0x40; // ISIZE
        g
    };
    let no_trailer = gz[..n - 8].to_vec();
    let trailing = [gz.as_slice(), b"garbage after the stream"].concat();
    let cases =
        vec![("bad CRC", crc), ("bad ISIZE", isize_wrong), ("no trailer", no_trailer), ("trailing garbage", trailing)];
    for (what, bad) in cases {
        let r = system_restore(&d, &bad);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        unchanged_and_restartable(&mut d, what);
    }
    // A flipped bit at several places inside the compressed data: refused, unless the bit
    // was one deflate never reads (the last byte's padding, say) and the archive is the
    // same, CRC and all: then it restores what was backed up.
    let gunzip = |g: &[u8]| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(g), &mut out).map(|_| out).ok()
    };
    let original = gunzip(&gz).unwrap();
    for at in [n / 3, n / 2, 2 * n / 3, n - 9] {
        let mut g = gz.clone();
        g[at] ^= 0x04;
        let r = system_restore(&d, &g);
        let harmless = gunzip(&g).as_ref() == Some(&original);
        assert_eq!(r.status, if harmless { 200 } else { 400 }, "a flipped bit at {at} of {n}: {}", r.text());
        if !harmless {
            unchanged_and_restartable(&mut d, "a flipped bit");
        }
    }
    let r = system_restore(&d, &gz);
    assert_eq!(r.status, 200, "the intact stream restores: {}", r.text());
    cleanup(d);
}

#[test]
fn a_long_name_memory_bomb_is_refused_before_it_is_read() {
    let d = daemon();
    // A manifest, then a GNU long-name entry declaring 1 GiB, then 64 MiB of zeros: a
    // reader that takes the declared size on trust allocates all it gets.
    let mut raw = Vec::new();
    let mut h = tar::Header::new_gnu();
    let manifest = br#"{"format":1,"board":"dev"}"#;
    h.set_path("steward-backup.json").unwrap();
    h.set_size(manifest.len() as u64);
    h.set_cksum();
    raw.extend_from_slice(h.as_bytes());
    raw.extend_from_slice(manifest);
    raw.resize(1024, 0);
    let mut h = tar::Header::new_gnu();
    h.set_path("././@LongLink").unwrap();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(1 << 30);
    h.set_cksum();
    raw.extend_from_slice(h.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let before = crate::util::rss_anon_kib(d.pid());
    let r = system_restore(&d, &bomb);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("long-name entry declares 1073741824 bytes"), "{}", r.text());
    let after = crate::util::rss_anon_kib(d.pid());
    assert!(after < before + 16 * 1024, "anonymous memory {before} -> {after} KiB");
    // PAX extension and long-link entries are bounded the same way.
    for kind in [tar::EntryType::XHeader, tar::EntryType::GNULongLink] {
        let mut t = raw[..1024].to_vec();
        let mut h = tar::Header::new_gnu();
        h.set_path("x").unwrap();
        h.set_entry_type(kind);
        h.set_size(1 << 30);
        h.set_cksum();
        t.extend_from_slice(h.as_bytes());
        t.extend_from_slice(&[0u8; 1 << 16]);
        let r = restore(&d, &t);
        assert_eq!(r.status, 400, "{kind:?}: {}", r.text());
        assert!(r.header("Error-Message").unwrap().contains("declares 1073741824 bytes"), "{kind:?}");
    }
    cleanup(d);
}
