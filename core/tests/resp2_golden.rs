//! A client that never sends `HELLO` gets RESP2 bytes, exactly the ones it got before
//! RESP3 existed in insitu: a transcript of commands covering every kind of reply
//! (simple strings, errors, integers, bulks, nulls, arrays, nested arrays, tensors as
//! blobs and as values, hashes, config, transactions, DAGs, models) is replayed and each
//! reply compared byte for byte with `tests/golden/resp2.txt`, which was recorded from the
//! server before RESP3 support was added.
//!
//! Replies changed on purpose since the recording (RedisAI parity fixes, not protocol
//! changes) are listed in `CHANGED`, each with the reason; everything else must match.
//!
//! `INSITU_BLESS=1` rewrites the file from the running server (only for deliberate
//! changes of a reply).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{models_dir, TestServer};
use insitu::protocol::resp::{parse_reply, Frame};

/// The transcript: each line one command, arguments separated by spaces; `@mlp` stands for
/// the bytes of the generated MLP model.
const TRANSCRIPT: &str = r#"PING
PING hello
ECHO some-text
SET a 1
GET a
GET missing
HSET h f1 v1 f2 v2
HSET h1 only v
HGETALL h1
HGETALL missing
HGET h f1
HGET h nope
HEXISTS h f1
HLEN h
RPUSH l a b c
LRANGE l 0 -1
LRANGE missing 0 -1
LINDEX l 5
LLEN l
TYPE a
TYPE h
TYPE missing
EXISTS a h l missing
KEYS h1*
DBSIZE
AI.TENSORSET t FLOAT 2 2 VALUES 1 2.5 -3 0.1
AI.TENSORGET t META
AI.TENSORGET t VALUES
AI.TENSORGET t META VALUES
AI.TENSORGET t BLOB
AI.TENSORGET t META BLOB
AI.TENSORGET t
AI.TENSORSET d DOUBLE 3 VALUES 1e300 -0 0.1
AI.TENSORGET d VALUES
AI.TENSORSET ti INT32 3 VALUES 1 -2 3
AI.TENSORGET ti META VALUES
AI.TENSORSET tb BOOL 2 VALUES 1 0
AI.TENSORGET tb VALUES
AI.TENSORSET tz UINT8 2 2
AI.TENSORGET tz BLOB
AI.TENSORGET missing META
AI.TENSORSET bad FLOAT 2 VALUES 1
AI.TENSORSET bad NOTYPE 2
TYPE t
CONFIG GET maxmemory
CONFIG GET nosuch
CONFIG GET max-tensor-*
CONFIG SET maxmemory 0
CONFIG SET nosuch 1
CLIENT GETNAME
CLIENT SETNAME me
CLIENT GETNAME
CLIENT SETNAME bad\x20name
SELECT 0
SELECT 1
MULTI
SET b 2
GET b
RPUSH b x
EXEC
DISCARD
AI.CONFIG GET MODEL_CHUNK_SIZE
AI.MODELGET missing META
AI.INFO missing
AI._MODELSCAN
AI.DAGEXECUTE ROUTING t |> AI.TENSORGET t VALUES
AI.DAGEXECUTE LOAD 1 t |> AI.TENSORGET t META BLOB |> AI.TENSORSET x INT8 1 VALUES 7 |> AI.TENSORGET x VALUES
AI.DAGEXECUTE |> AI.TENSORGET t
AI.MODELSTORE m ONNX CPU TAG v1 BLOB @mlp
AI.MODELGET m META
AI.TENSORSET in FLOAT 1 16
AI.MODELEXECUTE m INPUTS 1 in OUTPUTS 1 out
AI.TENSORGET out META
AI.DAGEXECUTE LOAD 1 in |> AI.MODELEXECUTE m INPUTS 1 in OUTPUTS 1 o |> AI.TENSORGET o META
AI._MODELSCAN
AI.MODELEXECUTE m INPUTS 1 missing OUTPUTS 1 out
NOSUCHCOMMAND x y
GET
RENAME a a2
RENAME nothing x
DEL a2 h
UNLINK l
CLUSTER INFO
AUTH x
FLUSHALL
DBSIZE
"#;

/// Replies that changed on purpose after the recording: the command, its new reply, why.
const CHANGED: &[(&str, &str, &str)] = &[(
    "AI.DAGEXECUTE ROUTING t |> AI.TENSORGET t VALUES",
    "-ERR INPUT key cannot be found in DAG\\x0d\\x0a",
    "RedisAI checks that every key an op reads comes from LOAD or an earlier op before running any",
), (
    "AI.DAGEXECUTE |> AI.TENSORGET t",
    "-ERR missing arguments for 'AI.DAGEXECUTE' command\\x0d\\x0a",
    "RedisAI refuses a DAGEXECUTE of fewer than 6 arguments before reading them",
)];

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/resp2.txt")
}

/// Bytes as one line of text: printable ASCII as is, everything else `\xNN`.
fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (b' '..=b'~').contains(&c) && c != b'\\' {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// One exact reply, read off the socket.
fn reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some((_, n)) = parse_reply(buf).expect("reply parses") {
            return buf.drain(..n).collect();
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn replies_without_hello_are_the_resp2_bytes_of_before() {
    let Some(models) = models_dir() else { return };
    let mlp = std::fs::read(models.join("mlp.onnx")).expect("mlp.onnx");
    let srv = TestServer::start();
    let mut s = TcpStream::connect(("127.0.0.1", srv.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut got = String::new();
    for line in TRANSCRIPT.lines() {
        let args: Vec<bytes::Bytes> = line
            .split(' ')
            .map(|a| match a {
                "@mlp" => bytes::Bytes::from(mlp.clone()),
                a => bytes::Bytes::from(a.replace("\\x20", " ")),
            })
            .collect();
        s.write_all(&Frame::command(args).to_bytes())
            .expect("write");
        let r = reply(&mut s, &mut buf);
        got.push_str(&format!("> {line}\n< {}\n", escape(&r)));
    }
    if std::env::var("INSITU_BLESS").is_ok() {
        std::fs::create_dir_all(golden_path().parent().unwrap()).unwrap();
        std::fs::write(golden_path(), &got).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(golden_path()).expect("tests/golden/resp2.txt");
    let mut want = String::new();
    let mut command = "";
    for line in recorded.lines() {
        if let Some(c) = line.strip_prefix("> ") {
            command = c;
        }
        match CHANGED.iter().find(|(c, _, _)| *c == command) {
            Some((_, new, _)) if line.starts_with("< ") => want.push_str(&format!("< {new}\n")),
            _ => want.push_str(&format!("{line}\n")),
        }
    }
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w, "a RESP2 reply changed");
    }
    assert_eq!(got.lines().count(), want.lines().count());
}
