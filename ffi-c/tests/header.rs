//! The committed header must be what cbindgen generates from the sources now.
//! `INSITU_BLESS=1 cargo test -p insitu-ffi --test header` rewrites it.

use std::path::PathBuf;

#[test]
fn committed_header_matches_a_fresh_cbindgen_run() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut fresh);
    let path = crate_dir.join("include/insitu.h");
    if std::env::var("INSITU_BLESS").is_ok() {
        std::fs::write(&path, &fresh).expect("write header");
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/insitu.h is out of date: regenerate it with INSITU_BLESS=1 cargo test -p insitu-ffi --test header"
    );
}
