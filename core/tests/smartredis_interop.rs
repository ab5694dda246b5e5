//! Cross-client: the real SmartRedis client writes and insitu's client reads, and the
//! reverse, through one server. Needs a Python with `smartredis` (the project's
//! `.venv`, made by `./dev.sh setup`, or `INSITU_PYTHON`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TestServer;
use insitu::client::{Address, KeyPrefixes};
use insitu::{Client, DType, Dataset, Tensor};

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("INSITU_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

fn peer(py: &PathBuf, mode: &str, address: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/smartredis_peer.py");
    let out = Command::new(py)
        .arg(script)
        .arg(mode)
        .arg(address)
        .env_remove("SSKEYIN")
        .env_remove("SSKEYOUT")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "smartredis {mode} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The values both sides agree on (see smartredis_peer.py).
fn values(dtype: DType) -> Tensor {
    let v = |i: i64, unsigned: bool| i * 37 % 200 - if unsigned { 0 } else { 100 };
    let s = vec![2, 3, 4];
    let r = match dtype {
        DType::Float32 => Tensor::from_vec(s, (0..24).map(|i| v(i, false) as f32 * 0.5).collect()),
        DType::Float64 => Tensor::from_vec(s, (0..24).map(|i| v(i, false) as f64 * 0.5).collect()),
        DType::Int8 => Tensor::from_vec(s, (0..24).map(|i| v(i, false) as i8).collect()),
        DType::Int16 => Tensor::from_vec(s, (0..24).map(|i| v(i, false) as i16).collect()),
        DType::Int32 => Tensor::from_vec(s, (0..24).map(|i| v(i, false) as i32).collect()),
        DType::Int64 => Tensor::from_vec(s, (0..24).map(|i| v(i, false)).collect()),
        DType::UInt8 => Tensor::from_vec(s, (0..24).map(|i| v(i, true) as u8).collect()),
        DType::UInt16 => Tensor::from_vec(s, (0..24).map(|i| v(i, true) as u16).collect()),
        other => panic!("SmartRedis has no {other}"),
    };
    r.expect("tensor")
}

const SR_DTYPES: [DType; 8] = [
    DType::Float32,
    DType::Float64,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
];

fn dataset(name: &str, k: i64) -> Dataset {
    let mut ds = Dataset::new(name);
    let x: Vec<f64> = values(DType::Float64)
        .to_vec::<f64>()
        .expect("f64")
        .iter()
        .map(|v| v + k as f64)
        .collect();
    ds.add_tensor("x", Tensor::from_vec(vec![2, 3, 4], x).expect("x"));
    ds.add_meta_scalar("step", k).expect("meta");
    ds.add_meta_scalar("dt", 0.5 * k as f64).expect("meta");
    ds.add_meta_scalar("n", -k as i32).expect("meta");
    ds.add_meta_scalar("f", 1.5f32).expect("meta");
    ds.add_meta_string("label", format!("sample-{k}"))
        .expect("meta");
    ds
}

fn check_dataset(got: &Dataset, k: i64) {
    let want = dataset(got.name(), k);
    assert_eq!(
        got.get_tensor("x").expect("x"),
        want.get_tensor("x").expect("x")
    );
    for f in ["step", "dt", "n", "f", "label"] {
        assert_eq!(got.meta(f).expect(f), want.meta(f).expect(f), "field {f}");
    }
}

#[test]
fn smartredis_and_insitu_read_each_others_data() {
    let Some(py) = python() else {
        assert!(
            std::env::var("INSITU_REQUIRE_PYTHON").is_err(),
            "INSITU_REQUIRE_PYTHON is set but no Python with smartredis was found"
        );
        eprintln!("skipped: no .venv with smartredis (run ./dev.sh setup) and no INSITU_PYTHON");
        return;
    };
    let srv = TestServer::start();
    for address in srv.addresses() {
        srv.engine.store().clear().unwrap();
        // SmartRedis writes, insitu reads.
        peer(&py, "write", &address);
        let mut c = Client::connect_to(
            Address::parse(&address).expect("addr"),
            KeyPrefixes::new(Some("rs"), Some("sr")).expect("p"),
        )
        .expect("connect");
        for d in SR_DTYPES {
            let t = c.get_tensor(&format!("t_{d}")).expect("get");
            assert_eq!(t, values(d), "{d} written by SmartRedis");
        }
        for k in 0..3 {
            check_dataset(&c.get_dataset(&format!("ds{k}")).expect("ds"), k);
        }
        let list = c.get_datasets_from_list("samples").expect("list");
        assert_eq!(
            list.iter().map(|d| d.name()).collect::<Vec<_>>(),
            ["ds0", "ds1", "ds2"]
        );
        for (k, d) in list.iter().enumerate() {
            check_dataset(d, k as i64);
        }
        // insitu writes, SmartRedis reads.
        for d in SR_DTYPES {
            c.put_tensor(&format!("t_{d}"), &values(d)).expect("put");
        }
        for k in 0..3 {
            let ds = dataset(&format!("ds{k}"), k);
            c.put_dataset(&ds).expect("put ds");
            c.append_to_list("samples", &ds).expect("append");
        }
        peer(&py, "read", &address);
    }
}
