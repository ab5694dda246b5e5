//! The bad-input catalogue (core/tests/BAD_INPUTS.md), one case per row: each is sent on
//! its own connection to a server holding canary data; each must get its exact error (or
//! an error and a clean close), and afterwards the server answers a new connection and
//! every canary byte is unchanged. The catalogue document and this table are checked
//! against each other.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{models_dir, TestServer};
use insitu::protocol::limits::Limits;
use insitu::protocol::resp::Frame;
use insitu::{Client, EngineConfig, ModelOptions, Tensor};

/// What a case must get back.
enum Expect {
    /// This error reply; the connection stays open (a PING on it still answers).
    Error(&'static str),
    /// This error reply, then the server closes the connection.
    ErrorThenClose(&'static str),
    /// This reply (the input is odd but valid).
    Reply(Frame),
    /// No reply: the client goes away mid-frame or mid-command.
    Disconnect,
}

struct Case {
    id: &'static str,
    wire: Vec<u8>,
    expect: Expect,
    needs_models: bool,
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    Frame::command(args.iter().map(|a| bytes::Bytes::copy_from_slice(a)))
        .to_bytes()
        .to_vec()
}

fn case(id: &'static str, wire: Vec<u8>, expect: Expect) -> Case {
    Case {
        id,
        wire,
        expect,
        needs_models: false,
    }
}

fn model_case(id: &'static str, wire: Vec<u8>, expect: Expect) -> Case {
    Case {
        needs_models: true,
        ..case(id, wire, expect)
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let f = |s: &'static str| ErrorThenClose(s);
    let big_dim = b"4294967296";
    vec![
        // ----- framing -----
        case("resp-negative-bulk-length", b"*1\r\n$-5\r\n".to_vec(), f("ERR Protocol error: invalid bulk length")),
        case("resp-non-numeric-bulk-length", b"*1\r\n$abc\r\n".to_vec(), f("ERR Protocol error: invalid bulk length")),
        case("resp-non-numeric-array-length", b"*x\r\n".to_vec(), f("ERR Protocol error: invalid multibulk length")),
        case("resp-negative-array-length", b"*-3\r\nPING\r\n".to_vec(), Reply(Frame::simple("PONG"))),
        case("resp-huge-array-length", b"*99999999999\r\n".to_vec(), f("ERR Protocol error: expected '$', got '*'")),
        case("resp-array-over-limit", cmd(&[b"DEL".as_slice(); 20]), Error("ERR command of 20 arguments exceeds the limit of 16 (max-array-len)")),
        case("resp-bulk-over-limit", cmd(&[b"SET", b"k", &[b'x'; 2000]]), Error("ERR argument of 2000 bytes exceeds the limit of 1024 bytes (proto-max-bulk-len)")),
        case("resp-missing-crlf-after-bulk", b"*1\r\n$4\r\nPINGxx".to_vec(), f("ERR Protocol error: bulk string not terminated by CRLF")),
        case("resp-nested-array", b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(), f("ERR Protocol error: expected '$', got '*'")),
        case("resp-integer-argument", b"*1\r\n:5\r\n".to_vec(), f("ERR Protocol error: expected '$', got ':'")),
        case("resp-header-without-crlf", [b"*1\r\n$".as_slice(), &[b'9'; 100]].concat(), f("ERR Protocol error: header line too long")),
        case("resp-inline-quotes-are-literal", b"EXISTS \"canary\"\r\n".to_vec(), Reply(Frame::Integer(0))),
        case("resp-inline-over-limit", [&[b'A'; 300][..], b"\r\n"].concat(), f("ERR Protocol error: too big inline request")),
        case("resp-empty-array", b"*0\r\nPING\r\n".to_vec(), Reply(Frame::simple("PONG"))),
        case("client-disconnects-mid-frame", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly a part".to_vec(), Disconnect),
        // ----- commands -----
        case("unknown-command", cmd(&[b"NOSUCH", b"x"]), Error("ERR unknown command 'NOSUCH', with args beginning with: 'x' ")),
        case("wrong-arity-get", cmd(&[b"GET"]), Error("ERR wrong number of arguments for 'GET' command")),
        case("wrong-arity-tensorset", cmd(&[b"AI.TENSORSET", b"t"]), Error("ERR wrong number of arguments for 'AI.TENSORSET' command")),
        case("invalid-dtype", cmd(&[b"AI.TENSORSET", b"t", b"COMPLEX", b"2", b"BLOB", b"12345678"]), Error("ERR invalid data type")),
        case("dims-overflow-when-multiplied", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", big_dim, big_dim, big_dim]), Error("ERR tensor too large: shape [4294967296, 4294967296, 4294967296] of FLOAT exceeds the limit of 4096 bytes")),
        case("zero-dim", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"0"]), Error("ERR invalid or negative value found in tensor shape")),
        case("negative-dim", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"-2"]), Error("ERR invalid or negative value found in tensor shape")),
        case("non-numeric-dim", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"two"]), Error("ERR invalid or negative value found in tensor shape")),
        case("too-many-dims", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"1", b"1", b"1", b"1", b"1"]), Error("ERR tensor has more than 4 dims, which exceeds the limit of 4")),
        case("tensor-over-max-bytes", cmd(&[b"AI.TENSORSET", b"t", b"DOUBLE", b"1024"]), Error("ERR tensor too large: shape [1024] of DOUBLE exceeds the limit of 4096 bytes")),
        case("blob-shorter-than-shape", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"4", b"BLOB", b"1234"]), Error("ERR data length does not match tensor shape and type")),
        case("blob-longer-than-shape", cmd(&[b"AI.TENSORSET", b"t", b"INT8", b"2", b"BLOB", b"123"]), Error("ERR data length does not match tensor shape and type")),
        case("values-count-mismatch", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"3", b"VALUES", b"1", b"2"]), Error("ERR wrong number of values was given in 'AI.TENSORSET' command")),
        case("values-not-numbers", cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"1", b"VALUES", b"one"]), Error("ERR invalid value")),
        case("bool-value-out-of-range", cmd(&[b"AI.TENSORSET", b"t", b"BOOL", b"1", b"BLOB", &[2]]), Error("ERR BOOL tensor elements must be 0 or 1")),
        case("string-tensor-without-terminators", cmd(&[b"AI.TENSORSET", b"t", b"STRING", b"1", b"BLOB", b"abc"]), Error("ERR Number of string elements in data blob does not match tensor length")),
        case("tensorget-unknown-format", cmd(&[b"AI.TENSORGET", b"canary", b"PICKLE"]), Error("ERR unsupported data format")),
        case("tensorget-of-a-list", cmd(&[b"AI.TENSORGET", b"canary_list", b"BLOB"]), Error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        case("lpush-onto-a-tensor", cmd(&[b"LPUSH", b"canary", b"x"]), Error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        case("hget-of-a-list", cmd(&[b"HGET", b"canary_list", b"f"]), Error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        case("tensorget-missing-key", cmd(&[b"AI.TENSORGET", b"nokey", b"BLOB"]), Error("ERR tensor key is empty or in a different shard")),
        case("rename-missing-key", cmd(&[b"RENAME", b"nokey", b"other"]), Error("ERR no such key")),
        case("non-utf8-key-is-binary-safe", cmd(&[b"EXISTS", &[0xff, 0xfe, 0x00, 0x80]]), Reply(Frame::Integer(0))),
        case("config-set-unknown-parameter", cmd(&[b"CONFIG", b"SET", b"no-such", b"1"]), Error("ERR Unknown option or number of arguments for CONFIG SET - 'no-such'")),
        case("config-set-bad-value", cmd(&[b"CONFIG", b"SET", b"maxmemory", b"lots"]), Error("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument couldn't be parsed into an integer")),
        case("config-set-dir-is-protected", cmd(&[b"CONFIG", b"SET", b"dir", b"/etc"]), Error("ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config")),
        case("config-set-dbfilename-is-protected", cmd(&[b"CONFIG", b"SET", b"dbfilename", b"../../x"]), Error("ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config")),
        case("config-set-appendfilename-is-protected", cmd(&[b"CONFIG", b"SET", b"appendfilename", b"/tmp/x"]), Error("ERR CONFIG SET failed (possibly related to argument 'appendfilename') - can't set protected config")),
        case("select-other-database", cmd(&[b"SELECT", b"3"]), Error("ERR DB index is out of range")),
        case("exec-without-multi", cmd(&[b"EXEC"]), Error("ERR EXEC without MULTI")),
        // ----- models -----
        model_case("model-garbage-bytes", cmd(&[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BLOB", b"this is no model"]), Error("ERR model is not a valid ONNX file: unsupported protobuf wire type 4")),
        model_case("model-unknown-backend", cmd(&[b"AI.MODELSTORE", b"m", b"CAFFE", b"CPU", b"BLOB", b"x"]), Error("ERR unsupported backend")),
        model_case("model-bad-device", cmd(&[b"AI.MODELSTORE", b"m", b"ONNX", b"TPU", b"BLOB", b"x"]), Error("ERR Invalid DEVICE")),
        model_case("modelexecute-missing-model", cmd(&[b"AI.MODELEXECUTE", b"nomodel", b"INPUTS", b"1", b"canary", b"OUTPUTS", b"1", b"y"]), Error("ERR model key is empty")),
        model_case("modelexecute-missing-input", cmd(&[b"AI.MODELEXECUTE", b"mlp", b"INPUTS", b"1", b"nokey", b"OUTPUTS", b"1", b"y"]), Error("ERR tensor key is empty or in a different shard")),
        model_case("modelexecute-wrong-input-shape", cmd(&[b"AI.MODELEXECUTE", b"mlp", b"INPUTS", b"1", b"canary", b"OUTPUTS", b"1", b"y"]), Error("ERR Got invalid dimensions for input: x for the following indices  index: 1 Got: 3 Expected: 16  Please fix either the inputs/outputs or the model.")),
        model_case("dag-get-of-a-missing-key", cmd(&[b"AI.DAGEXECUTE", b"ROUTING", b"mlp", b"|>", b"AI.TENSORGET", b"nokey", b"BLOB"]), Error("ERR INPUT key cannot be found in DAG")),
        model_case("dag-unknown-op", cmd(&[b"AI.DAGEXECUTE", b"ROUTING", b"mlp", b"|>", b"SET", b"k", b"v"]), Error("Unsupported command within DAG")),
        model_case("client-disconnects-mid-inference", cmd(&[b"AI.MODELEXECUTE", b"mlp", b"INPUTS", b"1", b"x16", b"OUTPUTS", b"1", b"y"]), Disconnect),
    ]
}

/// The canary data: a tensor and a list, compared byte for byte after every case.
fn canary(c: &mut Client) -> (Tensor, Frame) {
    (
        c.get_tensor("canary").expect("canary tensor"),
        c.command(&["LRANGE", "canary_list", "0", "-1"])
            .expect("canary list"),
    )
}

#[test]
fn every_bad_input_gets_its_answer_and_nothing_else_changes() {
    let models = models_dir();
    let srv = TestServer::start_with(EngineConfig {
        limits: Limits {
            max_inline_len: 256,
            ..Limits::default()
        },
        ..EngineConfig::default()
    });
    let mut c = Client::connect(&srv.tcp()).expect("connect");
    let t = Tensor::from_vec(vec![2, 3], vec![1.5f32, -2.0, 3.25, 0.0, 1e30, -7.0]).expect("t");
    c.put_tensor("canary", &t).expect("put");
    c.command(&["RPUSH", "canary_list", "a", "b"])
        .expect("rpush");
    if let Some(dir) = &models {
        c.set_model_from_file("mlp", dir.join("mlp.onnx"), &ModelOptions::default())
            .expect("mlp");
        let x = Tensor::from_vec(vec![1, 16], vec![0.5f32; 16]).expect("x");
        c.put_tensor("x16", &x).expect("put x16");
    }
    // Small limits, so that the limit cases are cheap to send (set after the model went in).
    for (name, value) in [
        ("proto-max-bulk-len", "1024"),
        ("max-array-len", "16"),
        ("max-tensor-dims", "4"),
        ("max-tensor-bytes", "4096"),
    ] {
        c.command(&["CONFIG", "SET", name, value])
            .expect("config set");
    }
    let before = canary(&mut c);
    let keys_before = c.command(&["DBSIZE"]).expect("dbsize");
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        if case.needs_models && models.is_none() {
            continue;
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port())).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(&case.wire).expect("write");
        let got = match &case.expect {
            Expect::Disconnect => {
                drop(s);
                None
            }
            _ => {
                // A PING after the case tells an open connection from a closed one.
                let _ = s.write_all(b"*1\r\n$4\r\nPING\r\n");
                let mut buf = Vec::new();
                let mut replies = Vec::new();
                let mut closed = false;
                while replies.len() < 2 && !closed {
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => closed = true,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Ok(Some((f, n))) = insitu::protocol::resp::parse_reply(&buf) {
                        buf.drain(..n);
                        replies.push(f);
                    }
                }
                Some((replies, closed))
            }
        };
        let ok = match (&case.expect, &got) {
            (Expect::Disconnect, None) => true,
            (Expect::Error(e), Some((r, false))) => {
                r.first() == Some(&Frame::Error(insitu::Error::from_server_text(*e)))
                    && r.get(1) == Some(&Frame::simple("PONG"))
            }
            (Expect::ErrorThenClose(e), Some((r, true))) => {
                r.len() == 1 && r[0] == Frame::Error(insitu::Error::from_server_text(*e))
            }
            (Expect::Reply(f), Some((r, false))) => {
                r.first() == Some(f) && r.get(1) == Some(&Frame::simple("PONG"))
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {:?}", case.id, got));
        }
        // The server serves a new connection, and nothing stored changed.
        let mut fresh = Client::connect(&srv.tcp()).expect("server still accepts");
        if case.id == "client-disconnects-mid-inference" {
            // The run finishes without its client; wait for its output before counting keys.
            assert!(
                fresh.poll_key("y", 10, 500).expect("poll"),
                "the run of a departed client did not finish"
            );
        }
        let now = canary(&mut fresh);
        if now != before {
            failures.push(format!("{}: canary changed", case.id));
        }
        let _ = fresh.command(&["DEL", "t", "m", "k", "y", "other"]);
        if fresh.command(&["DBSIZE"]).expect("dbsize") != keys_before {
            failures.push(format!("{}: key count changed", case.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(all.len() >= 40, "the catalogue has {} cases", all.len());
}

#[test]
fn the_catalogue_document_lists_exactly_these_cases() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/BAD_INPUTS.md"),
    )
    .expect("core/tests/BAD_INPUTS.md");
    let listed: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let ids: Vec<&str> = cases().iter().map(|c| c.id).collect();
    assert_eq!(listed, ids, "BAD_INPUTS.md rows and the test table differ");
}
