//! Build step: Backrest's wire schema (`src/api/backrest/schema.txt`, written from upstream's
//! protos by tests/it/protos.rs) goes into the binary gzipped: 12 KB of text is 3 KB, and
//! the inflater is in the binary already (restores read .tar.gz).

use std::io::Write;

fn main() {
    let source = "src/api/backrest/schema.txt";
    println!("cargo:rerun-if-changed={source}");
    let text = std::fs::read(source).expect("the Backrest schema");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&text).expect("gzip in memory");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("backrest-schema.txt.gz"), gz.finish().expect("gzip in memory")).expect("OUT_DIR");
}
