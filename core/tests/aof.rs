//! Append-only persistence: every kind of change comes back after a restart, rewrites
//! compact the journal without losing writes made meanwhile, a record cut short at the
//! end is dropped while damage elsewhere stops the start, and a snapshot becomes the
//! journal's first base. (The kill -9 test runs the binary: server/tests/aof_kill.rs.)

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{err, ok, temp_dir, TestServer};
use insitu::persistence::journal::{AofConfig, FsyncPolicy};
use insitu::protocol::resp::Frame;
use insitu::store::Value;
use insitu::{Client, Dataset, Engine, EngineConfig, Tensor};

fn aof_config(fsync: FsyncPolicy) -> EngineConfig {
    EngineConfig {
        aof: AofConfig {
            enabled: true,
            fsync,
            ..AofConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// The whole store, ordered by key, for comparison.
fn contents(e: &Engine) -> BTreeMap<Bytes, Value> {
    e.store().snapshot().into_iter().collect()
}

fn info_field(srv: &TestServer, field: &str) -> String {
    let Frame::Bulk(info) = srv.raw().cmd(&[b"INFO", b"persistence"]) else {
        panic!("INFO")
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("{field} not in {info}"))
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .expect("aof dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Changes of every kind the journal records, through the client and raw commands.
fn write_everything(srv: &TestServer) {
    let mut c = Client::connect(&srv.unix()).expect("connect");
    let big = Tensor::from_vec(vec![256, 1024], (0..256 * 1024u32).collect()).expect("t");
    c.put_tensor("big", &big)
        .expect("put big (written from where it is)");
    c.put_tensor(
        "small",
        &Tensor::from_vec(vec![2, 2], vec![1.5f64, -0.0, f64::MAX, 4.0]).expect("t"),
    )
    .expect("put");
    c.put_tensor(
        "s",
        &Tensor::from_strings(vec![2], &["hello", ""]).expect("t"),
    )
    .expect("put strings");
    let mut ds = Dataset::new("ds");
    ds.add_tensor("x", Tensor::from_vec(vec![3], vec![1i32, 2, 3]).expect("t"));
    ds.add_meta_scalar("step", 7i64).expect("meta");
    ds.add_meta_string("tag", "run").expect("meta");
    c.put_dataset(&ds).expect("dataset");
    c.append_to_list("L", &ds).expect("append");
    let mut r = srv.raw();
    for (cmd, want) in [
        (vec![&b"SET"[..], b"k", b"v\0\xff"], ok()),
        (vec![&b"SET"[..], b"k2", b"gone soon"], ok()),
        (vec![&b"DEL"[..], b"k2", b"nosuch"], Frame::Integer(1)),
        (vec![&b"RPUSH"[..], b"list", b"a", b"b"], Frame::Integer(2)),
        (vec![&b"LPUSH"[..], b"list", b"z"], Frame::Integer(3)),
        (
            vec![&b"HSET"[..], b"h", b"f1", b"1", b"f2", b"2"],
            Frame::Integer(2),
        ),
        (vec![&b"HDEL"[..], b"h", b"f1"], Frame::Integer(1)),
        (vec![&b"SET"[..], b"r1", b"renamed"], ok()),
        (vec![&b"RENAME"[..], b"r1", b"r2"], ok()),
        (vec![&b"SET"[..], b"r3", b"x"], ok()),
        (vec![&b"RENAME"[..], b"r2", b"r3"], ok()),
        (
            vec![
                &b"AI.TENSORSET"[..],
                b"t",
                b"FLOAT",
                b"2",
                b"VALUES",
                b"1",
                b"2",
            ],
            ok(),
        ),
        (
            vec![&b"AI.TENSORSET"[..], b"t", b"INT8", b"1", b"VALUES", b"9"],
            ok(),
        ),
    ] {
        assert_eq!(r.cmd(&cmd), want, "{:?}", String::from_utf8_lossy(cmd[0]));
    }
    c.copy_tensor("small", "small_copy").expect("copy");
    c.rename_dataset("ds", "ds2").expect("rename dataset");
    if let Some(dir) = common::models_dir() {
        let blob = std::fs::read(dir.join("mlp.onnx")).expect("model");
        c.set_model("m", &blob, &Default::default()).expect("model");
    }
}

#[test]
fn every_kind_of_change_comes_back_after_a_restart() {
    for fsync in [FsyncPolicy::EverySec, FsyncPolicy::Always, FsyncPolicy::No] {
        let srv = TestServer::start_with(aof_config(fsync));
        write_everything(&srv);
        assert_eq!(info_field(&srv, "aof_enabled"), "1");
        assert_eq!(info_field(&srv, "aof_last_write_status"), "ok");
        let before = contents(&srv.engine);
        let keys: Vec<&[u8]> = before
            .keys()
            .map(|k| k.as_ref())
            .filter(|k| *k != b"m")
            .collect();
        let want: [&[u8]; 12] = [
            b"L",
            b"big",
            b"h",
            b"k",
            b"list",
            b"r3",
            b"s",
            b"small",
            b"small_copy",
            b"t",
            b"{ds2}.meta",
            b"{ds2}.x",
        ];
        assert_eq!(keys, want);
        assert_eq!(
            before[&Bytes::from_static(b"r3")],
            Value::String("renamed".into())
        );
        assert!(!before.contains_key(&Bytes::from_static(b"r1")));
        assert!(!before.contains_key(&Bytes::from_static(b"k2")));
        let dir = srv.stop();
        let srv = TestServer::start_in(aof_config(fsync), dir);
        assert_eq!(contents(&srv.engine), before, "{fsync:?}");
        // And the journal goes on where it was: a FLUSHALL and new writes survive too.
        let mut r = srv.raw();
        assert_eq!(r.cmd(&[b"FLUSHALL"]), ok());
        assert_eq!(r.cmd(&[b"SET", b"after", b"flush"]), ok());
        drop(r);
        let dir = srv.stop();
        let srv = TestServer::start_in(aof_config(fsync), dir);
        let after = contents(&srv.engine);
        assert_eq!(after.len(), 1);
        assert_eq!(
            after[&Bytes::from_static(b"after")],
            Value::String("flush".into())
        );
        let dir = srv.stop();
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}

#[test]
fn rewrite_compacts_the_journal_and_keeps_writes_made_meanwhile() {
    let srv = TestServer::start_with(aof_config(FsyncPolicy::EverySec));
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    for i in 0..200u32 {
        let t = Tensor::from_vec(vec![1024], vec![i; 1024]).expect("t");
        c.put_tensor("same", &t).expect("overwrite");
    }
    let grown: u64 = info_field(&srv, "aof_current_size").parse().expect("size");
    assert!(grown > 200 * 4096, "200 records of 4 KiB: {grown}");
    // Writes from another client while the rewrite runs.
    let addr = srv.tcp();
    let writer = std::thread::spawn(move || {
        let mut c = Client::connect(&addr).expect("connect");
        for i in 0..300u32 {
            c.command(&["RPUSH", "during", &i.to_string()])
                .expect("push");
        }
    });
    assert_eq!(
        srv.raw().cmd(&[b"BGREWRITEAOF"]),
        Frame::Simple("Background append only file rewriting started".into())
    );
    writer.join().expect("writer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&srv, "aof_rewrite_in_progress") != "0" {
        assert!(Instant::now() < deadline, "rewrite never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&srv, "aof_last_bgrewrite_status"), "ok");
    let compact: u64 = info_field(&srv, "aof_current_size").parse().expect("size");
    assert!(compact < grown / 10, "{compact} after, {grown} before");
    let names = files(&srv.dir);
    assert_eq!(names.len(), 3, "base, incr, manifest: {names:?}");
    assert!(names.iter().any(|n| n.ends_with(".base")), "{names:?}");
    let manifest = std::fs::read_to_string(srv.dir.join("appendonlydir/insitu.aof.manifest"))
        .expect("manifest");
    assert!(
        manifest.starts_with("insitu-aof 1\nbase insitu.aof."),
        "{manifest}"
    );
    let before = contents(&srv.engine);
    drop(c);
    let dir = srv.stop();
    let srv = TestServer::start_in(aof_config(FsyncPolicy::EverySec), dir);
    assert_eq!(contents(&srv.engine), before);
    let mut c = Client::connect(&srv.unix()).expect("connect");
    assert_eq!(
        c.get_tensor("same").expect("get").data(),
        Tensor::from_vec(vec![1024], vec![199u32; 1024])
            .expect("t")
            .data()
    );
    let Frame::Array(items) = srv.raw().cmd(&[b"LRANGE", b"during", b"0", b"-1"]) else {
        panic!("list")
    };
    let want: Vec<Frame> = (0..300)
        .map(|i: u32| Frame::Bulk(i.to_string().into()))
        .collect();
    assert_eq!(items, want, "every push, in order");
    let dir = srv.stop();
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn a_cut_short_last_record_is_dropped_damage_elsewhere_stops_the_start() {
    let srv = TestServer::start_with(aof_config(FsyncPolicy::Always));
    let mut r = srv.raw();
    for i in 0..10u8 {
        assert_eq!(r.cmd(&[b"SET", &[b'k', b'0' + i], b"value"]), ok());
    }
    drop(r);
    let before = contents(&srv.engine);
    let dir = srv.stop();
    let incr = dir.join("appendonlydir/insitu.aof.1.incr");
    let whole = std::fs::read(&incr).expect("incr");
    // A record cut short (the process died while writing it; never acknowledged).
    let mut cut = whole.clone();
    cut.extend_from_slice(&40u64.to_le_bytes());
    cut.extend_from_slice(&[1, 2, 3, 4, 5]);
    std::fs::write(&incr, &cut).expect("write");
    let srv = TestServer::start_in(aof_config(FsyncPolicy::Always), dir);
    assert_eq!(contents(&srv.engine), before);
    let dir = srv.stop();
    assert_eq!(std::fs::read(&incr).expect("incr"), whole, "truncated back");
    // A flipped byte in the first record, with more after it: refuse to start.
    let mut bad = whole.clone();
    bad[8 + 12 + 3] ^= 0x40;
    std::fs::write(&incr, &bad).expect("write");
    let mut config = aof_config(FsyncPolicy::Always);
    config.dir = dir.clone();
    let e = std::sync::Arc::new(Engine::new(config))
        .load_persistence()
        .unwrap_err();
    assert_eq!(
        e.text(),
        format!(
            "ERR append-only file {} is corrupt at byte 8: checksum mismatch",
            incr.display()
        )
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn a_snapshot_becomes_the_first_base_and_names_stay_inside_dir() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    assert_eq!(r.cmd(&[b"SET", b"from", b"snapshot"]), ok());
    assert_eq!(r.cmd(&[b"SAVE"]), ok());
    assert_eq!(
        r.cmd(&[b"BGREWRITEAOF"]),
        err("ERR append-only persistence is off (start the server with --appendonly yes)")
    );
    drop(r);
    let dir = srv.stop();
    let srv = TestServer::start_in(aof_config(FsyncPolicy::EverySec), dir);
    assert_eq!(
        contents(&srv.engine)[&Bytes::from_static(b"from")],
        Value::String("snapshot".into())
    );
    let names = files(&srv.dir);
    assert!(names.iter().any(|n| n.ends_with(".base")), "{names:?}");
    let mut r = srv.raw();
    assert_eq!(r.cmd(&[b"SET", b"then", b"journal"]), ok());
    for (cmd, want) in [
        (
            vec![&b"CONFIG"[..], b"SET", b"appenddirname", b"/etc"],
            "ERR CONFIG SET failed (possibly related to argument 'appenddirname') - can't set protected config",
        ),
        (
            vec![&b"CONFIG"[..], b"SET", b"appendonly", b"no"],
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set protected config",
        ),
    ] {
        assert_eq!(r.cmd(&cmd), err(want));
    }
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"append*"]),
        Frame::Array(
            [
                "appendonly",
                "yes",
                "appendfsync",
                "everysec",
                "appenddirname",
                "appendonlydir",
                "appendfilename",
                "insitu.aof"
            ]
            .iter()
            .map(|s| Frame::Bulk(Bytes::from_static(s.as_bytes())))
            .collect()
        )
    );
    drop(r);
    // The snapshot file is no longer read: the journal is.
    std::fs::remove_file(srv.dir.join("insitu.snapshot")).expect("rm snapshot");
    let dir = srv.stop();
    let srv = TestServer::start_in(aof_config(FsyncPolicy::EverySec), dir.clone());
    assert_eq!(srv.engine.store().len(), 2);
    srv.stop();
    // File names are plain names inside dir.
    let mut config = aof_config(FsyncPolicy::EverySec);
    config.dir = temp_dir("aofname");
    config.aof.dirname = "../elsewhere".into();
    let e = std::sync::Arc::new(Engine::new(config.clone()))
        .load_persistence()
        .unwrap_err();
    assert_eq!(
        e.text(),
        "ERR appenddirname must be a plain file name, not '../elsewhere'"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
    std::fs::remove_dir_all(config.dir).expect("cleanup");
}

#[test]
fn everything_comes_back_even_under_a_lowered_maxmemory() {
    let srv = TestServer::start_with(aof_config(FsyncPolicy::EverySec));
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let t = Tensor::from_vec(vec![64 << 10], vec![3u8; 64 << 10]).expect("t");
    c.put_tensor("t", &t).expect("put");
    c.command(&["SAVE"]).expect("save");
    drop(c);
    let before = contents(&srv.engine);
    let dir = srv.stop();
    // Restart with a limit below what is stored: for the journal and for the snapshot.
    for aof in [true, false] {
        let mut config = aof_config(FsyncPolicy::EverySec);
        config.aof.enabled = aof;
        config.maxmemory = 1024;
        let srv = TestServer::start_in(config, dir.clone());
        assert_eq!(contents(&srv.engine), before, "appendonly {aof}");
        assert_eq!(
            srv.raw().cmd(&[b"SET", b"more", b"x"]),
            err("OOM command not allowed when used memory > 'maxmemory'.")
        );
        assert_eq!(contents(&srv.engine), before);
        srv.stop();
    }
    std::fs::remove_dir_all(dir).expect("cleanup");
}
