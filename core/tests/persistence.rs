//! SAVE + restart: every key comes back, tensors byte for byte.

mod common;

use common::{bulk, TestServer};
use insitu::protocol::resp::Frame;
use insitu::{Client, DType, Dataset, EngineConfig, Tensor};

#[test]
fn save_and_restart_keep_everything() {
    let srv = TestServer::start();
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let tensors: Vec<(String, Tensor)> = vec![
        (
            "f".into(),
            Tensor::from_vec(
                vec![3, 2],
                vec![1.5f32, -0.0, f32::MAX, f32::MIN_POSITIVE, 7.0, f32::NAN],
            )
            .expect("t"),
        ),
        (
            "d".into(),
            Tensor::from_vec(vec![2], vec![f64::EPSILON, -1e300]).expect("t"),
        ),
        (
            "b".into(),
            Tensor::from_vec(vec![3], vec![true, false, true]).expect("t"),
        ),
        (
            "s".into(),
            Tensor::from_strings(vec![2], &["hello", ""]).expect("t"),
        ),
        (
            "big".into(),
            Tensor::from_vec(vec![1 << 20], (0..1u32 << 20).collect()).expect("t"),
        ),
    ];
    for (n, t) in &tensors {
        c.put_tensor(n, t).expect("put");
    }
    let mut ds = Dataset::new("ds");
    ds.add_tensor(
        "x",
        Tensor::from_vec(vec![2, 2], vec![1i64, 2, 3, 4]).expect("t"),
    );
    ds.add_meta_scalar("step", 42i64).expect("meta");
    ds.add_meta_string("tag", "run-1").expect("meta");
    c.put_dataset(&ds).expect("put ds");
    c.append_to_list("L", &ds).expect("append");
    c.command(&["SET", "plain", "value\0with\0nuls"])
        .expect("set");
    let before = srv.engine.store().len();
    let mut r = srv.raw();
    let Frame::Bulk(info) = r.cmd(&[b"INFO", b"persistence"]) else {
        panic!("info")
    };
    assert!(String::from_utf8_lossy(&info).contains("rdb_changes_since_last_save:"));
    c.save().expect("save");
    drop(c);
    drop(r);
    let dir = srv.stop();

    let srv = TestServer::start_in(EngineConfig::default(), dir);
    assert_eq!(srv.engine.store().len(), before);
    let mut c = Client::connect(&srv.unix()).expect("connect");
    for (n, t) in &tensors {
        let back = c.get_tensor(n).expect("get");
        assert_eq!(back.dtype(), t.dtype());
        assert_eq!(back.shape(), t.shape());
        assert_eq!(back.data(), t.data(), "{n} byte for byte");
    }
    let back = c.get_dataset("ds").expect("ds");
    assert_eq!(
        back.get_tensor("x").expect("x"),
        ds.get_tensor("x").expect("x")
    );
    assert_eq!(back.get_meta_scalars::<i64>("step").expect("step"), &[42]);
    assert_eq!(c.get_datasets_from_list("L").expect("list").len(), 1);
    let mut r = srv.raw();
    assert_eq!(r.cmd(&[b"GET", b"plain"]), bulk(b"value\0with\0nuls"));
    assert_eq!(r.cmd(&[b"TYPE", b"f"]), Frame::simple("AI_TENSOR"));
    let _ = DType::Float32;
}

#[test]
fn a_corrupt_snapshot_refuses_to_load() {
    let dir = common::temp_dir("corrupt");
    std::fs::write(
        dir.join("insitu.snapshot"),
        b"INSITUDB\x01\x00\x00\x00garbage",
    )
    .expect("write");
    let engine = insitu::Engine::new(EngineConfig {
        dir: dir.clone(),
        ..EngineConfig::default()
    });
    let e = engine.load_snapshot().unwrap_err();
    assert!(
        e.text().starts_with(&format!(
            "ERR snapshot {} is corrupt",
            dir.join("insitu.snapshot").display()
        )),
        "{e}"
    );
}

#[test]
fn bgsave_reports_progress_and_writes_the_file() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    r.cmd(&[b"SET", b"k", b"v"]);
    assert_eq!(
        r.cmd(&[b"BGSAVE"]),
        Frame::simple("Background saving started")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let Frame::Bulk(info) = r.cmd(&[b"INFO", b"persistence"]) else {
            panic!("info")
        };
        if String::from_utf8_lossy(&info).contains("rdb_bgsave_in_progress:0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bgsave never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(srv.dir.join("insitu.snapshot").exists());
}
