//! The engine's typed operations, called directly (as the in-process client and the
//! KServe front ends do): the same values and the same errors as the RESP commands that
//! parse into them, on the same engine.

mod common;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{assert_close, model_cases, models_dir, TestServer};
use insitu::engine::{LoadedModel, Run, RunOptions, WaitFor};
use insitu::model::{Device, ModelSpec};
use insitu::protocol::resp::Frame;
use insitu::{Client, Engine, EngineConfig, ErrorCode, Tensor};

fn spec(batchsize: usize) -> ModelSpec {
    ModelSpec {
        backend: "ONNX".into(),
        device: Device::Cpu(None),
        tag: Bytes::new(),
        batchsize,
        minbatchsize: 0,
        minbatchtimeout: 0,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

fn finish<T>(rt: &tokio::runtime::Runtime, run: Run<T>) -> insitu::Result<T> {
    rt.block_on(run.finish())
}

#[test]
fn tensors_put_and_got_with_redisai_errors() {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).expect("tensor");
    engine.put_tensor("t", t.clone()).expect("put");
    let got = engine.get_tensor(b"t").expect("get");
    assert_eq!(got, t);
    // The stored bytes are shared, not copied.
    assert_eq!(got.data().as_ptr(), t.data().as_ptr());

    let e = engine.get_tensor(b"missing").expect_err("missing");
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(e.text(), "ERR tensor key is empty or in a different shard");

    let mut c = Client::inproc(engine.clone()).expect("client");
    c.command(&["SET", "s", "v"]).expect("SET");
    let e = engine.put_tensor("s", t.clone()).expect_err("wrong type");
    assert_eq!(e.code(), ErrorCode::WrongType);
    assert_eq!(
        e.text(),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        engine.get_tensor(b"s").expect_err("wrong type").code(),
        ErrorCode::WrongType
    );
    assert!(engine.holds_other_than_tensor(b"s"));
    assert!(!engine.holds_other_than_tensor(b"t"));
    assert!(engine.exists(b"t"));
    assert!(engine.delete(b"t").expect("delete"));
    assert!(!engine.delete(b"t").expect("delete again"));
    assert!(!engine.exists(b"t"));
}

#[test]
fn a_tensor_put_on_the_engine_is_seen_over_resp_and_back() {
    let srv = TestServer::start();
    let t = Tensor::from_vec(vec![3], vec![7i64, -8, 9]).expect("tensor");
    srv.engine
        .put_tensor("from-engine", t.clone())
        .expect("put");
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    assert_eq!(c.get_tensor("from-engine").expect("get over tcp"), t);
    let u = Tensor::from_vec(vec![1, 2], vec![0.5f64, 0.25]).expect("tensor");
    c.put_tensor("from-resp", &u).expect("put over tcp");
    assert_eq!(srv.engine.get_tensor(b"from-resp").expect("get"), u);
}

/// Load `name` from the generated models onto `engine` under `key`.
fn load(
    engine: &Arc<Engine>,
    rt: &tokio::runtime::Runtime,
    key: &str,
    name: &str,
    batch: usize,
) -> Option<LoadedModel> {
    let dir = models_dir()?;
    let (file, _) = model_cases(&dir, name);
    let onnx = Bytes::from(std::fs::read(file).expect("model file"));
    let run = engine
        .store_model(Bytes::copy_from_slice(key.as_bytes()), spec(batch), onnx)
        .expect("store_model accepted");
    finish(rt, run).expect("model loads");
    Some(engine.model(key.as_bytes()).expect("stored model"))
}

#[test]
fn models_run_on_stored_tensors_and_infer_with_onnxruntime_s_results() {
    let Some(dir) = models_dir() else { return };
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let rt = rt();
    let (_, cases) = model_cases(&dir, "mlp");
    for (batch, inline) in [(0, true), (0, false), (4, true), (4, false)] {
        let key = format!("mlp-{batch}-{inline}");
        let loaded = load(&engine, &rt, &key, "mlp", batch).expect("model");
        let opts = RunOptions {
            deadline: Some(Instant::now() + Duration::from_secs(30)),
            inline,
        };
        for (k, case) in cases.iter().enumerate() {
            let what = format!("{key} case {k}");
            // infer: nothing stored.
            let outs = finish(
                &rt,
                engine
                    .infer(&loaded, Cow::Borrowed(&case.inputs), opts)
                    .expect("infer accepted"),
            )
            .expect("infer");
            assert_eq!(outs.len(), case.outputs.len(), "{what}");
            for (g, w) in outs.iter().zip(&case.outputs) {
                assert_close(g, w, &what);
            }
            // run_model: inputs read from the store, outputs stored.
            let ins: Vec<String> = (0..case.inputs.len())
                .map(|i| format!("{key}.in{i}"))
                .collect();
            let outs: Vec<String> = (0..case.outputs.len())
                .map(|i| format!("{key}.out{i}"))
                .collect();
            for (n, t) in ins.iter().zip(&case.inputs) {
                engine.put_tensor(n.clone(), t.clone()).expect("put input");
            }
            let run = engine
                .run_model(&loaded, &ins, &outs, opts)
                .expect("run accepted");
            finish(&rt, run).expect("run");
            for (n, w) in outs.iter().zip(&case.outputs) {
                assert_close(&engine.get_tensor(n.as_bytes()).expect("output"), w, &what);
            }
        }
        let calls = loaded
            .model
            .stats
            .calls
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(calls, 2 * cases.len() as u64, "{key}: every run counted");
    }
}

#[test]
fn runs_that_do_not_fit_get_redisai_s_texts() {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let rt = rt();
    let e = engine.model(b"nope").err().expect("missing model");
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(e.text(), "ERR model key is empty");
    let Some(loaded) = load(&engine, &rt, "m", "mlp", 0) else {
        return;
    };
    let opts = RunOptions::default();
    let cases = [
        (
            vec!["a", "b"],
            vec!["o"],
            "Number of keys given as INPUTS here does not match model definition",
        ),
        (
            vec!["a"],
            vec![],
            "Number of keys given as OUTPUTS here does not match model definition",
        ),
        (
            vec!["absent"],
            vec!["o"],
            "ERR tensor key is empty or in a different shard",
        ),
    ];
    for (ins, outs, text) in cases {
        let e = engine
            .run_model(&loaded, &ins, &outs, opts)
            .err()
            .expect("refused");
        assert_eq!(e.text(), text, "{ins:?} -> {outs:?}");
        assert!(!engine.exists(b"o"), "nothing stored by a refused run");
    }
    let e = engine
        .infer(&loaded, Cow::Owned(vec![]), opts)
        .err()
        .expect("no inputs");
    assert_eq!(
        e.text(),
        "Number of keys given as INPUTS here does not match model definition"
    );
    // A model that ONNX Runtime refuses stores nothing.
    let run = engine
        .store_model(
            Bytes::from_static(b"bad"),
            spec(0),
            Bytes::from_static(b"not onnx"),
        )
        .expect("accepted for loading");
    let e = finish(&rt, run).expect_err("refused");
    assert_eq!(e.code(), ErrorCode::BadInput, "{}", e.text());
    assert!(!engine.exists(b"bad"));
    // Another kind of value under the key.
    engine
        .put_tensor("t", Tensor::from_vec(vec![1], vec![1u8]).expect("t"))
        .expect("put");
    let e = engine
        .store_model(Bytes::from_static(b"t"), spec(0), Bytes::from_static(b"x"))
        .err()
        .expect("wrong type");
    assert_eq!(e.code(), ErrorCode::WrongType);
    assert_eq!(
        engine.stored_model(b"t").expect_err("wrong type").code(),
        ErrorCode::WrongType
    );
}

#[test]
fn waits_wake_on_the_write_that_meets_them() {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let rt = rt();
    let key = Bytes::from_static(b"late");
    assert!(!engine.holds(&key, &WaitFor::Exists));
    assert!(!rt.block_on(engine.wait_until(&key, &WaitFor::Exists, Duration::ZERO)));
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            engine
                .put_tensor("late", Tensor::from_vec(vec![1], vec![1.0f32]).expect("t"))
                .expect("put");
        })
    };
    let started = Instant::now();
    assert!(rt.block_on(engine.wait_until(&key, &WaitFor::Exists, Duration::from_secs(20))));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "woken, not timed out"
    );
    writer.join().expect("writer");

    let mut c = Client::inproc(engine.clone()).expect("client");
    let list = Bytes::from_static(b"list");
    for (cond, holds) in [
        (WaitFor::ListLen(0), true),
        (WaitFor::ListLenAtMost(0), true),
        (WaitFor::ListLenAtLeast(1), false),
    ] {
        assert_eq!(
            engine.holds(&list, &cond),
            holds,
            "{cond:?} on a missing list"
        );
    }
    c.command(&["RPUSH", "list", "a", "b"]).expect("RPUSH");
    for (cond, holds) in [
        (WaitFor::ListLen(2), true),
        (WaitFor::ListLen(1), false),
        (WaitFor::ListLenAtLeast(2), true),
        (WaitFor::ListLenAtMost(1), false),
    ] {
        assert_eq!(engine.holds(&list, &cond), holds, "{cond:?}");
    }
    c.command(&["HSET", "h", ".COMPLETE", "1"]).expect("HSET");
    assert!(engine.holds(b"h", &WaitFor::HashField(Bytes::from_static(b".COMPLETE"))));
    assert!(!engine.holds(b"h", &WaitFor::HashField(Bytes::from_static(b"other"))));
    assert_eq!(
        c.command(&["INSITU.WAIT", "0", "LLEN", "list", "GE", "2"])
            .expect("wait"),
        Frame::Integer(1)
    );
}

#[test]
fn datasets_and_lists_in_smartredis_layout_seen_over_resp() {
    let srv = TestServer::start();
    let engine = &srv.engine;
    let mut ds = insitu::Dataset::new("step7");
    ds.add_tensor(
        "u",
        Tensor::from_vec(vec![2], vec![1.5f32, -2.5]).expect("u"),
    );
    ds.add_meta_scalar("time", 0.7f64).expect("meta");
    ds.add_meta_string("tag", "run-a").expect("meta");
    engine.put_dataset("{step7}", &ds).expect("put dataset");
    // The layout SmartRedis reads: a meta hash with .COMPLETE, a tensor per name.
    assert!(engine.holds(
        b"{step7}.meta",
        &WaitFor::HashField(Bytes::from_static(b".COMPLETE"))
    ));
    assert_eq!(
        engine.get_tensor(b"{step7}.u").expect("tensor"),
        Tensor::from_vec(vec![2], vec![1.5f32, -2.5]).expect("u")
    );
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let got = c.get_dataset("step7").expect("over tcp");
    assert_eq!(
        got.get_tensor("u").expect("u"),
        ds.get_tensor("u").expect("u")
    );
    let back = engine.get_dataset("step7", "{step7}").expect("get dataset");
    assert_eq!(
        back.get_tensor("u").expect("u"),
        ds.get_tensor("u").expect("u")
    );
    let e = engine.get_dataset("nope", "{nope}").expect_err("missing");
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(
        e.text(),
        "ERR The requested DataSet, \"nope\", does not exist."
    );
    let e = engine
        .put_dataset("{empty}", &insitu::Dataset::new("empty"))
        .expect_err("empty");
    assert_eq!(
        e.text(),
        "ERR dataset 'empty' has no tensors and no metadata: nothing to store"
    );
    // Lists: Redis' LRANGE index rules, WRONGTYPE, and RESP seeing the same list.
    let items: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("e{i}"))).collect();
    assert_eq!(engine.push_list(b"l", &items).expect("push"), 5);
    let range = |a, b| {
        engine
            .list_range(b"l", a, b)
            .expect("range")
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(range(0, -1), ["e0", "e1", "e2", "e3", "e4"]);
    assert_eq!(range(-2, -1), ["e3", "e4"]);
    assert_eq!(range(1, 2), ["e1", "e2"]);
    assert_eq!(range(3, 1), Vec::<String>::new());
    assert_eq!(range(10, 20), Vec::<String>::new());
    assert_eq!(range(-100, 0), ["e0"]);
    assert_eq!(engine.list_len(b"l").expect("len"), 5);
    assert_eq!(engine.list_len(b"missing").expect("len"), 0);
    assert_eq!(
        engine
            .list_len(b"{step7}.u")
            .expect_err("wrong type")
            .code(),
        ErrorCode::WrongType
    );
    assert_eq!(c.get_list_length("l").expect("llen over tcp"), 5);
    assert_eq!(
        c.command(&["LRANGE", "l", "-2", "-1"]).expect("lrange"),
        Frame::Array(vec![Frame::Bulk("e3".into()), Frame::Bulk("e4".into())])
    );
}
