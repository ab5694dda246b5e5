//! The `redis` crate (the current release, pinned in Cargo.toml) against insitu, in RESP2
//! and in RESP3: connection set-up (HELLO 3 for RESP3), plain commands, tensors, models
//! and DAGs, each result compared with the reference outputs onnxruntime computed.

mod common;

use common::{assert_close, model_cases, models_dir, TestServer};
use redis::{ProtocolVersion, Value};

/// The pinned version, read from Cargo.lock so the log says which release ran.
fn crate_version() -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock");
    let key = "name = \"redis\"\nversion = \"";
    let at = lock.find(key).expect("redis in Cargo.lock") + key.len();
    lock[at..].split('"').next().unwrap_or_default().to_string()
}

fn connect(srv: &TestServer, proto: ProtocolVersion) -> redis::Connection {
    let suffix = match proto {
        ProtocolVersion::RESP3 => "?protocol=resp3",
        _ => "",
    };
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{}/{suffix}", srv.port())).expect("client");
    client.get_connection().expect("connect")
}

fn bulk(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn run(proto: ProtocolVersion) {
    println!("redis crate {} ({proto:?})", crate_version());
    let srv = TestServer::start();
    let mut c = connect(&srv, proto);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    let want = if proto == ProtocolVersion::RESP3 {
        " resp=3 "
    } else {
        " resp=2 "
    };
    assert!(info.contains(want), "{info}");
    let () = redis::cmd("HSET")
        .arg("h")
        .arg("a")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let h: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg("h").query(&mut c).unwrap();
    assert_eq!(h.get("a").map(String::as_str), Some("1"));
    let none: Option<String> = redis::cmd("GET").arg("missing").query(&mut c).unwrap();
    assert_eq!(none, None);

    // Tensors: a blob round trip and values.
    let data: Vec<u8> = (0..24u8).collect();
    let () = redis::cmd("AI.TENSORSET")
        .arg("t")
        .arg("INT16")
        .arg(3)
        .arg(4)
        .arg("BLOB")
        .arg(&data[..])
        .query(&mut c)
        .unwrap();
    let v: Value = redis::cmd("AI.TENSORGET")
        .arg("t")
        .arg("META")
        .arg("BLOB")
        .query(&mut c)
        .unwrap();
    let items = array(&v);
    assert_eq!(bulk(&items[1]), b"INT16");
    assert_eq!(array(&items[3]), &[Value::Int(3), Value::Int(4)]);
    assert_eq!(bulk(&items[5]), &data[..]);
    let v: Value = redis::cmd("AI.TENSORSET")
        .arg("f")
        .arg("FLOAT")
        .arg(2)
        .arg("VALUES")
        .arg(0.5)
        .arg(-2)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, Value::Okay);
    let v: Value = redis::cmd("AI.TENSORGET")
        .arg("f")
        .arg("VALUES")
        .query(&mut c)
        .unwrap();
    let want = match proto {
        ProtocolVersion::RESP3 => vec![Value::Double(0.5), Value::Double(-2.0)],
        _ => vec![
            Value::BulkString(b"0.5".to_vec()),
            Value::BulkString(b"-2".to_vec()),
        ],
    };
    assert_eq!(array(&v), &want[..]);

    // Models and DAGs, against onnxruntime's reference outputs.
    let Some(dir) = models_dir() else { return };
    let (path, cases) = model_cases(&dir, "mlp");
    let blob = std::fs::read(path).unwrap();
    let () = redis::cmd("AI.MODELSTORE")
        .arg("m")
        .arg("ONNX")
        .arg("CPU")
        .arg("BLOB")
        .arg(blob)
        .query(&mut c)
        .unwrap();
    for case in &cases {
        let x = &case.inputs[0];
        let mut set = redis::cmd("AI.TENSORSET");
        set.arg("x").arg("FLOAT");
        for d in x.shape() {
            set.arg(*d);
        }
        let () = set
            .arg("BLOB")
            .arg(x.data().as_ref())
            .query(&mut c)
            .unwrap();
        let () = redis::cmd("AI.MODELEXECUTE")
            .arg("m")
            .arg("INPUTS")
            .arg(1)
            .arg("x")
            .arg("OUTPUTS")
            .arg(1)
            .arg("y")
            .query(&mut c)
            .unwrap();
        let y: Vec<u8> = redis::cmd("AI.TENSORGET")
            .arg("y")
            .arg("BLOB")
            .query(&mut c)
            .unwrap();
        let want = &case.outputs[0];
        let got = insitu::Tensor::new(insitu::DType::Float32, want.shape(), y.into()).unwrap();
        assert_close(&got, want, "MODELEXECUTE through the redis crate");
        let dag: Value = redis::cmd("AI.DAGEXECUTE")
            .arg("LOAD")
            .arg(1)
            .arg("x")
            .arg("|>")
            .arg("AI.MODELEXECUTE")
            .arg("m")
            .arg("INPUTS")
            .arg(1)
            .arg("x")
            .arg("OUTPUTS")
            .arg(1)
            .arg("o")
            .arg("|>")
            .arg("AI.TENSORGET")
            .arg("o")
            .arg("BLOB")
            .query(&mut c)
            .unwrap();
        let replies = array(&dag);
        assert_eq!(replies[0], Value::Okay);
        assert_eq!(bulk(&replies[1]), got.data().as_ref());
    }
    let err = redis::cmd("AI.MODELEXECUTE")
        .arg("m")
        .arg("INPUTS")
        .arg(1)
        .arg("nope")
        .arg("OUTPUTS")
        .arg(1)
        .arg("y")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("tensor key is empty or in a different shard")
    );
}

#[test]
fn resp2() {
    run(ProtocolVersion::RESP2);
}

#[test]
fn resp3() {
    run(ProtocolVersion::RESP3);
}
