//! Snapshot and append-only files from untrusted bytes (a damaged disk, a truncated copy,
//! a file from elsewhere): loading fails cleanly or succeeds, never panics, and a journal
//! that loaded (its cut-short last record dropped) loads again to the same contents.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use insitu::persistence::journal::{AofConfig, Journal};
use insitu::store::{Store, Value};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("insitu-fuzz-files-{}", std::process::id()))
    })
}

fn contents(s: &Store) -> BTreeMap<bytes::Bytes, Value> {
    s.snapshot().into_iter().collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch dir");
    if which % 2 == 0 {
        let path = dir.join("snapshot");
        std::fs::write(&path, rest).expect("write");
        let _ = insitu::persistence::snapshot::load(&path);
        return;
    }
    std::fs::write(
        dir.join("insitu.aof.manifest"),
        "insitu-aof 1\nincr insitu.aof.1.incr\n",
    )
    .expect("manifest");
    let mut incr = b"INSITUJ1".to_vec();
    incr.extend_from_slice(rest);
    std::fs::write(dir.join("insitu.aof.1.incr"), &incr).expect("incr");
    let cfg = AofConfig {
        enabled: true,
        ..AofConfig::default()
    };
    let first = Store::new(0);
    if Journal::open(dir, &cfg, &first).is_ok() {
        let again = Store::new(0);
        Journal::open(dir, &cfg, &again).expect("a journal that loaded loads again");
        assert_eq!(contents(&first), contents(&again));
    }
});
