//! Wire-level tests: raw RESP bytes in, exact replies out, and the connection goes on.

mod common;

use common::{bulk, err, ok, TestServer};
use insitu::protocol::limits::Limits;
use insitu::protocol::resp::Frame;
use insitu::EngineConfig;

fn small_limits() -> EngineConfig {
    EngineConfig {
        limits: Limits {
            max_bulk_len: 1024,
            max_array_len: 16,
            max_inline_len: 256,
            max_dims: 4,
            max_tensor_bytes: 4096,
            ..Limits::default()
        },
        ..EngineConfig::default()
    }
}

/// After each bad request the same connection still answers.
fn still_serving(r: &mut common::Raw) {
    assert_eq!(r.cmd(&[b"PING"]), Frame::simple("PONG"));
}

#[test]
fn partial_frames_byte_by_byte_and_pipelined_commands() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for b in wire.iter() {
        r.send(&[*b]);
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert_eq!(r.read(), ok());
    assert_eq!(r.read(), bulk(b"hello"));
    // 100 pipelined commands in one write; replies in order.
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend_from_slice(
            &Frame::command([b"ECHO".to_vec(), format!("m{i}").into_bytes()]).to_bytes(),
        );
    }
    r.send(&batch);
    for i in 0..100 {
        assert_eq!(r.read(), bulk(format!("m{i}").as_bytes()));
    }
    // Inline commands (telnet style).
    r.send(b"PING\r\nECHO inline\r\n");
    assert_eq!(r.read(), Frame::simple("PONG"));
    assert_eq!(r.read(), bulk(b"inline"));
}

#[test]
fn oversize_bulk_array_and_dims_are_refused_and_skipped() {
    let srv = TestServer::start_with(small_limits());
    let mut r = srv.raw();
    let big = vec![b'x'; 2000];
    assert_eq!(
        r.cmd(&[b"SET", b"k", &big]),
        err("ERR argument of 2000 bytes exceeds the limit of 1024 bytes (proto-max-bulk-len)")
    );
    still_serving(&mut r);
    assert_eq!(r.cmd(&[b"EXISTS", b"k"]), Frame::Integer(0));
    let many: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
        .chain(std::iter::repeat_n(&b"k"[..], 20))
        .collect();
    assert_eq!(
        r.cmd(&many),
        err("ERR command of 21 arguments exceeds the limit of 16 (max-array-len)")
    );
    still_serving(&mut r);
    assert_eq!(
        r.cmd(&[
            b"AI.TENSORSET",
            b"t",
            b"FLOAT",
            b"1",
            b"1",
            b"1",
            b"1",
            b"1"
        ]),
        err("ERR tensor has more than 4 dims, which exceeds the limit of 4")
    );
    still_serving(&mut r);
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"32", b"33"]),
        err("ERR tensor too large: shape [32, 33] of FLOAT exceeds the limit of 4096 bytes")
    );
    // Shape products that overflow 64 bits.
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"4294967296", b"4294967296"]),
        err("ERR tensor too large: shape [4294967296, 4294967296] of FLOAT exceeds the limit of 4096 bytes")
    );
    // A declared-huge bulk whose bytes never come in full: the header alone is refused
    // and what follows is discarded as it arrives.
    r.send(b"*2\r\n$4\r\nECHO\r\n$9999999\r\nabc");
    r.send(&vec![b'z'; 9999999 - 3]);
    r.send(b"\r\n");
    assert_eq!(
        r.read(),
        err("ERR argument of 9999999 bytes exceeds the limit of 1024 bytes (proto-max-bulk-len)")
    );
    still_serving(&mut r);
    assert_eq!(r.cmd(&[b"DBSIZE"]), Frame::Integer(0));
}

#[test]
fn tensor_argument_errors_have_redisai_text() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    let cases: &[(&[&[u8]], &str)] = &[
        (&[b"AI.TENSORSET", b"t", b"FLOAT"], "ERR wrong number of arguments for 'AI.TENSORSET' command"),
        (&[b"ai.tensorset", b"t"], "ERR wrong number of arguments for 'ai.tensorset' command"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT64", b"2"], "ERR invalid data type"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"two"], "ERR invalid or negative value found in tensor shape"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"0"], "ERR invalid or negative value found in tensor shape"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"-2"], "ERR invalid or negative value found in tensor shape"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"2", b"3", b"BLOB", b"12345678"], "ERR data length does not match tensor shape and type"),
        (&[b"AI.TENSORSET", b"t", b"DOUBLE", b"1", b"BLOB", b"1234567"], "ERR data length does not match tensor shape and type"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"2", b"VALUES", b"1"], "ERR wrong number of values was given in 'AI.TENSORSET' command"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"1", b"BLOB"], "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
        (&[b"AI.TENSORSET", b"t", b"FLOAT", b"1", b"BLOB", b"abcd", b"efgh"], "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
        (&[b"AI.TENSORSET", b"t", b"INT32", b"1", b"VALUES", b"1.5"], "ERR invalid value"),
        (&[b"AI.TENSORSET", b"t", b"UINT8", b"1", b"VALUES", b"-1"], "ERR invalid value"),
        (&[b"AI.TENSORSET", b"t", b"BOOL", b"2", b"VALUES", b"1", b"2"], "ERR invalid value"),
        (&[b"AI.TENSORSET", b"t", b"BOOL", b"2", b"BLOB", b"\x01\x05"], "ERR BOOL tensor elements must be 0 or 1"),
        (&[b"AI.TENSORGET", b"missing", b"META"], "ERR tensor key is empty or in a different shard"),
        (&[b"AI.TENSORGET"], "ERR wrong number of arguments for 'AI.TENSORGET' command"),
    ];
    common::assert_errors(&mut r, cases);
    assert_eq!(
        r.cmd(&[b"DBSIZE"]),
        Frame::Integer(0),
        "no failed TENSORSET stored anything"
    );
    assert_eq!(
        r.cmd(&[
            b"AI.TENSORSET",
            b"t",
            b"INT16",
            b"2",
            b"VALUES",
            b"-3",
            b"7"
        ]),
        ok()
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"BLOB", b"VALUES"]),
        err("ERR both BLOB and VALUES specified")
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"CSV"]),
        err("ERR unsupported data format")
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"META", b"BLOB", b"x"]),
        err("ERR wrong number of arguments for 'AI.TENSORGET' command")
    );
    r.cmd(&[b"SET", b"s", b"v"]);
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"s"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"s", b"INT8", b"1"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        r.cmd(&[b"GET", b"s"]),
        bulk(b"v"),
        "a refused write leaves the value"
    );
}

#[test]
fn tensorget_reply_shapes() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    let blob: Vec<u8> = [1.5f32, -2.0, 0.1, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"2", b"2", b"BLOB", &blob]),
        ok()
    );
    let meta = vec![
        bulk(b"dtype"),
        bulk(b"FLOAT"),
        bulk(b"shape"),
        Frame::Array(vec![Frame::Integer(2), Frame::Integer(2)]),
    ];
    let mut with_blob = meta.clone();
    with_blob.extend([bulk(b"blob"), bulk(&blob)]);
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"META", b"BLOB"]),
        Frame::Array(with_blob.clone())
    );
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"t"]), Frame::Array(with_blob));
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"meta"]),
        Frame::Array(meta.clone())
    );
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"t", b"BLOB"]), bulk(&blob));
    let values = Frame::Array(vec![
        bulk(b"1.5"),
        bulk(b"-2"),
        bulk(b"0.10000000149011612"),
        bulk(b"4"),
    ]);
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"t", b"VALUES"]), values);
    let mut mv = meta;
    mv.extend([bulk(b"values"), values]);
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"META", b"VALUES"]),
        Frame::Array(mv)
    );
    assert_eq!(
        r.cmd(&[
            b"AI.TENSORSET",
            b"i",
            b"INT64",
            b"2",
            b"VALUES",
            b"-9223372036854775808",
            b"5"
        ]),
        ok()
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"i", b"VALUES"]),
        Frame::Array(vec![Frame::Integer(i64::MIN), Frame::Integer(5)])
    );
    assert_eq!(r.cmd(&[b"AI.TENSORSET", b"z", b"UINT16", b"3"]), ok());
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"z", b"BLOB"]), bulk(&[0; 6]));
    assert_eq!(
        r.cmd(&[
            b"AI.TENSORSET",
            b"s",
            b"STRING",
            b"2",
            b"VALUES",
            b"ab",
            b"c"
        ]),
        ok()
    );
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"s", b"BLOB"]), bulk(b"ab\0c\0"));
    assert_eq!(r.cmd(&[b"TYPE", b"t"]), Frame::simple("AI_TENSOR"));
}

#[test]
fn malformed_resp_gets_an_error_then_a_clean_close() {
    let srv = TestServer::start();
    for wire in [
        &b"*1\r\n+PING\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*abc\r\n",
        b"*1\r\n$4\r\nPINGXX\r\n",
        b"*2\r\n*1\r\n$4\r\nPING\r\n",
    ] {
        let mut r = srv.raw();
        r.send(wire);
        match r.read() {
            Frame::Error(e) => assert!(e.text().starts_with("ERR Protocol error: "), "{e}"),
            other => panic!("expected a protocol error for {wire:?}, got {other:?}"),
        }
        assert!(r.closed(), "connection closed after {wire:?}");
    }
    // The server still serves new connections.
    let mut r = srv.raw();
    still_serving(&mut r);
}

#[test]
fn generic_commands_behave_like_redis() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&[b"NOSUCH", b"a", b"b"]),
        err("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
    );
    still_serving(&mut r);
    assert_eq!(
        r.cmd(&[b"GET"]),
        err("ERR wrong number of arguments for 'GET' command")
    );
    assert_eq!(r.cmd(&[b"PING", b"hi"]), bulk(b"hi"));
    assert_eq!(r.cmd(&[b"SELECT", b"0"]), ok());
    assert_eq!(
        r.cmd(&[b"SELECT", b"1"]),
        err("ERR DB index is out of range")
    );
    assert_eq!(r.cmd(&[b"CLIENT", b"SETNAME", b"sim"]), ok());
    assert_eq!(r.cmd(&[b"CLIENT", b"GETNAME"]), bulk(b"sim"));
    assert_eq!(
        r.cmd(&[b"HSET", b"h", b"a", b"1", b"b", b"2"]),
        Frame::Integer(2)
    );
    assert_eq!(r.cmd(&[b"HSET", b"h", b"a", b"3"]), Frame::Integer(0));
    assert_eq!(
        r.cmd(&[b"HSET", b"h", b"a"]),
        err("ERR wrong number of arguments for 'HSET' command")
    );
    assert_eq!(r.cmd(&[b"HMSET", b"h", b"c", b"4"]), ok());
    assert_eq!(r.cmd(&[b"HGET", b"h", b"a"]), bulk(b"3"));
    assert_eq!(r.cmd(&[b"HGET", b"h", b"zz"]), Frame::Null);
    assert_eq!(r.cmd(&[b"HEXISTS", b"h", b"c"]), Frame::Integer(1));
    assert_eq!(r.cmd(&[b"HDEL", b"h", b"c", b"zz"]), Frame::Integer(1));
    let Frame::Array(mut all) = r.cmd(&[b"HGETALL", b"h"]) else {
        panic!("array")
    };
    assert_eq!(all.len(), 4);
    let pairs: Vec<_> = all
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert!(pairs.contains(&(bulk(b"a"), bulk(b"3"))) && pairs.contains(&(bulk(b"b"), bulk(b"2"))));
    all.clear();
    assert_eq!(r.cmd(&[b"HGETALL", b"nope"]), Frame::Array(vec![]));
    assert_eq!(
        r.cmd(&[b"RPUSH", b"l", b"a", b"b", b"c"]),
        Frame::Integer(3)
    );
    assert_eq!(r.cmd(&[b"LPUSH", b"l", b"z"]), Frame::Integer(4));
    assert_eq!(
        r.cmd(&[b"LRANGE", b"l", b"0", b"-1"]),
        Frame::Array(vec![bulk(b"z"), bulk(b"a"), bulk(b"b"), bulk(b"c")])
    );
    assert_eq!(
        r.cmd(&[b"LRANGE", b"l", b"-2", b"100"]),
        Frame::Array(vec![bulk(b"b"), bulk(b"c")])
    );
    assert_eq!(r.cmd(&[b"LRANGE", b"l", b"5", b"9"]), Frame::Array(vec![]));
    assert_eq!(r.cmd(&[b"LLEN", b"l"]), Frame::Integer(4));
    assert_eq!(r.cmd(&[b"LINDEX", b"l", b"-1"]), bulk(b"c"));
    assert_eq!(r.cmd(&[b"LINDEX", b"l", b"9"]), Frame::Null);
    assert_eq!(
        r.cmd(&[b"LLEN", b"h"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        r.cmd(&[b"RPUSH", b"h", b"x"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        r.cmd(&[b"HSET", b"l", b"f", b"v"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        r.cmd(&[b"LRANGE", b"l", b"x", b"1"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(r.cmd(&[b"TYPE", b"l"]), Frame::simple("list"));
    assert_eq!(r.cmd(&[b"TYPE", b"h"]), Frame::simple("hash"));
    assert_eq!(r.cmd(&[b"TYPE", b"none"]), Frame::simple("none"));
    assert_eq!(r.cmd(&[b"SET", b"s", b"1"]), ok());
    assert_eq!(r.cmd(&[b"SET", b"s", b"2", b"NX"]), Frame::Null);
    assert_eq!(
        r.cmd(&[b"EXISTS", b"s", b"l", b"nope", b"s"]),
        Frame::Integer(3)
    );
    assert_eq!(r.cmd(&[b"DBSIZE"]), Frame::Integer(3));
    let Frame::Array(mut keys) = r.cmd(&[b"KEYS", b"*"]) else {
        panic!("array")
    };
    keys.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(keys, vec![bulk(b"h"), bulk(b"l"), bulk(b"s")]);
    assert_eq!(
        r.cmd(&[b"KEYS", b"[hl]"]).to_bytes().len(),
        r.cmd(&[b"KEYS", b"?"]).to_bytes().len() - 7
    );
    // SCAN walks every key exactly once.
    let mut cursor = b"0".to_vec();
    let mut seen = Vec::new();
    loop {
        let Frame::Array(reply) = r.cmd(&[b"SCAN", &cursor, b"COUNT", b"1"]) else {
            panic!("array")
        };
        let Frame::Bulk(next) = &reply[0] else {
            panic!("cursor")
        };
        let Frame::Array(batch) = &reply[1] else {
            panic!("keys")
        };
        seen.extend(batch.iter().cloned());
        if next.as_ref() == b"0" {
            break;
        }
        cursor = next.to_vec();
    }
    seen.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(seen, vec![bulk(b"h"), bulk(b"l"), bulk(b"s")]);
    assert_eq!(r.cmd(&[b"RENAME", b"s", b"s2"]), ok());
    assert_eq!(r.cmd(&[b"GET", b"s2"]), bulk(b"1"));
    assert_eq!(r.cmd(&[b"DEL", b"s2", b"nope"]), Frame::Integer(1));
    assert_eq!(r.cmd(&[b"UNLINK", b"l"]), Frame::Integer(1));
    assert_eq!(
        r.cmd(&[b"CLUSTER", b"INFO"]),
        err("ERR This instance has cluster support disabled")
    );
    assert_eq!(r.cmd(&[b"CONFIG", b"GET", b"nosuch"]), Frame::Array(vec![]));
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"maxmemory"]),
        Frame::Array(vec![bulk(b"maxmemory"), bulk(b"0")])
    );
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"nosuch", b"1"]),
        err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
    );
    assert_eq!(r.cmd(&[b"CONFIG", b"SET", b"dir", b"/etc"]), err("ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"));
    assert_eq!(r.cmd(&[b"FLUSHALL"]), ok());
    assert_eq!(r.cmd(&[b"DBSIZE"]), Frame::Integer(0));
    assert_eq!(r.cmd(&[b"QUIT"]), ok());
    assert!(r.closed());
}

#[test]
fn info_sections_carry_what_clients_read() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    let Frame::Bulk(text) = r.cmd(&[b"INFO", b"persistence"]) else {
        panic!("bulk")
    };
    let text = String::from_utf8(text.to_vec()).expect("utf8");
    assert!(text.starts_with("# Persistence\r\n"), "{text}");
    assert!(text.contains("\r\nrdb_bgsave_in_progress:0\r\n"));
    let t: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rdb_last_save_time:"))
        .expect("rdb_last_save_time")
        .parse()
        .expect("number");
    assert!((t - insitu::engine::unix_time()).abs() < 60);
    let Frame::Bulk(all) = r.cmd(&[b"INFO", b"EVERYTHING"]) else {
        panic!("bulk")
    };
    let all = String::from_utf8(all.to_vec()).expect("utf8");
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# Keyspace",
    ] {
        assert!(all.contains(section), "{section} missing");
    }
    assert!(all.contains(&format!("tcp_port:{}\r\n", 0)) || all.contains("tcp_port:"));
}

#[test]
fn memory_limit_gives_oom_and_keeps_data() {
    let srv = TestServer::start_with(EngineConfig {
        maxmemory: 64 * 1024,
        ..EngineConfig::default()
    });
    let mut r = srv.raw();
    let blob = vec![7u8; 40 * 1024];
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"a", b"UINT8", b"40960", b"BLOB", &blob]),
        ok()
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"b", b"UINT8", b"40960", b"BLOB", &blob]),
        err("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(r.cmd(&[b"EXISTS", b"b"]), Frame::Integer(0));
    assert_eq!(r.cmd(&[b"AI.TENSORGET", b"a", b"BLOB"]), bulk(&blob));
    assert_eq!(r.cmd(&[b"CONFIG", b"SET", b"maxmemory", b"1mb"]), ok());
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"b", b"UINT8", b"40960", b"BLOB", &blob]),
        ok()
    );
}

#[test]
fn config_set_limits_apply_to_open_connections() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"20"]),
        ok()
    );
    assert_eq!(
        r.cmd(&[b"ECHO", b"012345678901234567890"]),
        err("ERR argument of 21 bytes exceeds the limit of 20 bytes (proto-max-bulk-len)")
    );
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1kb"]),
        ok()
    );
    assert_eq!(
        r.cmd(&[b"ECHO", b"012345678901234567890"]),
        bulk(b"012345678901234567890")
    );
    assert_eq!(r.cmd(&[b"CONFIG", b"SET", b"max-tensor-dims", b"0"]), err("ERR CONFIG SET failed (possibly related to argument 'max-tensor-dims') - argument must be greater than 0"));
    assert_eq!(r.cmd(&[b"CONFIG", b"SET", b"max-tensor-dims", b"x"]), err("ERR CONFIG SET failed (possibly related to argument 'max-tensor-dims') - argument couldn't be parsed into an integer"));
}

#[test]
fn requirepass_gates_every_command() {
    let srv = TestServer::start_with(EngineConfig {
        requirepass: Some("s3cret".into()),
        ..EngineConfig::default()
    });
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&[b"GET", b"k"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(
        r.cmd(&[b"AUTH", b"wrong"]),
        err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(r.cmd(&[b"AUTH", b"s3cret"]), ok());
    assert_eq!(r.cmd(&[b"GET", b"k"]), Frame::Null);
    let mut c = insitu::Client::connect(&srv.tcp()).expect("connects, then must authenticate");
    let e = c.tensor_exists("k").unwrap_err();
    assert_eq!(e.code(), insitu::ErrorCode::Auth);
    assert_eq!(e.text(), "NOAUTH Authentication required.");
    let e = c.auth("nope").unwrap_err();
    assert_eq!(e.code(), insitu::ErrorCode::Auth);
    c.auth("s3cret").expect("auth");
    assert!(!c.tensor_exists("k").expect("exists"));
    let plain = TestServer::start();
    let mut p = plain.raw();
    assert_eq!(
        p.cmd(&[b"AUTH", b"x"]),
        err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
    );
}

#[test]
fn connection_limit_refuses_with_an_error() {
    let srv = TestServer::start_with(EngineConfig {
        maxclients: 2,
        ..EngineConfig::default()
    });
    let mut a = srv.raw();
    let mut b = srv.raw();
    still_serving(&mut a);
    still_serving(&mut b);
    let mut c = srv.raw();
    assert_eq!(c.read(), err("ERR max number of clients reached"));
    assert!(c.closed());
    drop(a);
    // The slot frees once the server notices the close.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut d = srv.raw();
        d.send(b"PING\r\n");
        match d.read() {
            Frame::Simple(_) => break,
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => panic!("slot never freed: {other:?}"),
        }
    }
    still_serving(&mut b);
}

#[test]
fn info_modules_lists_redisai_sections_in_order() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    let Frame::Bulk(text) = r.cmd(&[b"INFO", b"MODULES"]) else {
        panic!("bulk")
    };
    let text = String::from_utf8(text.to_vec()).expect("utf8");
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        headers,
        [
            "# Modules",
            "# ai_versions",
            "# ai_git",
            "# ai_load_time_configs",
            "# ai_backends_info",
            "# ai_cpu"
        ]
    );
    // RedisAI's flow test (tests_common.py test_info_command) reads each section the way
    // its get_info_section helper does and asserts these names, in this order.
    let section = |name: &str| -> Vec<(String, String)> {
        let order = [
            "versions",
            "git",
            "load_time_configs",
            "backends_info",
            "cpu",
        ];
        let i = order.iter().position(|s| *s == name).unwrap();
        text.split('#')
            .nth(i + 2)
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(|kv| {
                let (k, v) = kv.split_once(':').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let keys = |name: &str| {
        section(name)
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys("versions"),
        [
            "ai_RedisAI_version",
            "ai_low_level_API_version",
            "ai_rdb_version"
        ]
    );
    assert_eq!(section("versions")[0].1, "1.2.7");
    assert_eq!(keys("git"), ["ai_git_sha"]);
    assert_eq!(
        keys("load_time_configs"),
        [
            "ai_threads_per_queue",
            "ai_inter_op_parallelism",
            "ai_intra_op_parallelism",
            "ai_model_execution_timeout",
            "ai_backend_memory_limit"
        ]
    );
    let cpu = keys("cpu");
    for k in [
        "ai_self_used_cpu_sys",
        "ai_self_used_cpu_user",
        "ai_children_used_cpu_sys",
        "ai_children_used_cpu_user",
        "ai_queue_CPU_bthread_n1_used_cpu_total",
    ] {
        assert!(cpu.iter().any(|c| c == k), "{k} missing from {cpu:?}");
    }
    assert!(text.contains("module:name=ai,ver=10207,"));
    let Frame::Bulk(all) = r.cmd(&[b"INFO", b"everything"]) else {
        panic!("bulk")
    };
    assert!(String::from_utf8_lossy(&all).contains("# ai_backends_info"));
    let Frame::Bulk(default) = r.cmd(&[b"INFO"]) else {
        panic!("bulk")
    };
    assert!(!String::from_utf8_lossy(&default).contains("# ai_versions"));
}

#[test]
fn multi_exec_discard_behave_like_redis() {
    let srv = TestServer::start();
    let mut r = srv.raw();
    assert_eq!(r.cmd(&[b"EXEC"]), err("ERR EXEC without MULTI"));
    assert_eq!(r.cmd(&[b"DISCARD"]), err("ERR DISCARD without MULTI"));
    assert_eq!(r.cmd(&[b"MULTI"]), ok());
    assert_eq!(r.cmd(&[b"MULTI"]), err("ERR MULTI calls can not be nested"));
    assert_eq!(r.cmd(&[b"SET", b"a", b"1"]), Frame::simple("QUEUED"));
    assert_eq!(
        r.cmd(&[b"RPUSH", b"l", b"x", b"y"]),
        Frame::simple("QUEUED")
    );
    assert_eq!(r.cmd(&[b"LPUSH", b"a", b"z"]), Frame::simple("QUEUED"));
    assert_eq!(r.cmd(&[b"GET", b"a"]), Frame::simple("QUEUED"));
    assert_eq!(r.cmd(&[b"EXISTS", b"a"]), Frame::simple("QUEUED"));
    // Another client sees nothing until EXEC.
    let mut other = srv.raw();
    assert_eq!(other.cmd(&[b"EXISTS", b"a"]), Frame::Integer(0));
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        Frame::Array(vec![
            ok(),
            Frame::Integer(2),
            err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            bulk(b"1"),
            Frame::Integer(1),
        ])
    );
    assert_eq!(other.cmd(&[b"GET", b"a"]), bulk(b"1"));
    // DISCARD drops the queue.
    assert_eq!(r.cmd(&[b"MULTI"]), ok());
    assert_eq!(r.cmd(&[b"SET", b"b", b"2"]), Frame::simple("QUEUED"));
    assert_eq!(r.cmd(&[b"DISCARD"]), ok());
    assert_eq!(r.cmd(&[b"EXISTS", b"b"]), Frame::Integer(0));
    // As in RedisAI: its tensor commands run inside a transaction; the ones that would
    // block (model runs, DAGs) are queued and answer RedisAI's error at EXEC.
    assert_eq!(r.cmd(&[b"MULTI"]), ok());
    assert_eq!(r.cmd(&[b"SET", b"c", b"3"]), Frame::simple("QUEUED"));
    assert_eq!(
        r.cmd(&[b"AI.TENSORSET", b"t", b"FLOAT", b"1", b"VALUES", b"2"]),
        Frame::simple("QUEUED")
    );
    assert_eq!(
        r.cmd(&[
            b"AI.MODELEXECUTE",
            b"no_model{1}",
            b"INPUTS",
            b"1",
            b"no_input{1}",
            b"OUTPUTS",
            b"1",
            b"no_output{1}"
        ]),
        Frame::simple("QUEUED")
    );
    assert_eq!(
        r.cmd(&[
            b"AI.DAGEXECUTE",
            b"ROUTING",
            b"x",
            b"|>",
            b"AI.TENSORGET",
            b"t"
        ]),
        Frame::simple("QUEUED")
    );
    assert_eq!(
        r.cmd(&[b"AI.TENSORGET", b"t", b"VALUES"]),
        Frame::simple("QUEUED")
    );
    let blocked = err("ERR Cannot run RedisAI command within a transaction or a LUA script");
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        Frame::Array(vec![
            ok(),
            ok(),
            blocked.clone(),
            blocked,
            Frame::Array(vec![bulk(b"2")]),
        ])
    );
    // An unknown command or a wrong argument count is refused at once; EXEC aborts.
    assert_eq!(r.cmd(&[b"MULTI"]), ok());
    assert_eq!(r.cmd(&[b"SET", b"d", b"4"]), Frame::simple("QUEUED"));
    assert_eq!(
        r.cmd(&[b"NOSUCH", b"x"]),
        err("ERR unknown command 'NOSUCH', with args beginning with: 'x' ")
    );
    assert_eq!(
        r.cmd(&[b"GET"]),
        err("ERR wrong number of arguments for 'GET' command")
    );
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(r.cmd(&[b"EXISTS", b"d"]), Frame::Integer(0));
    still_serving(&mut r);
}

#[test]
fn without_the_password_nothing_but_auth_runs() {
    let srv = TestServer::start_with(EngineConfig {
        requirepass: Some("s3cret".into()),
        ..EngineConfig::default()
    });
    // Every command insitu knows (README's wire protocol list), any case, and unknown ones:
    // each is refused the same way before its arguments are even looked at.
    let commands: &[&[u8]] = &[
        b"AI.TENSORSET",
        b"AI.TENSORGET",
        b"AI.MODELSTORE",
        b"AI.MODELGET",
        b"AI.MODELDEL",
        b"AI.MODELEXECUTE",
        b"AI.DAGEXECUTE",
        b"AI.DAGEXECUTE_RO",
        b"AI.INFO",
        b"AI._MODELSCAN",
        b"AI.CONFIG",
        b"PING",
        b"ECHO",
        b"SELECT",
        b"CLIENT",
        b"INFO",
        b"CONFIG",
        b"DBSIZE",
        b"KEYS",
        b"SCAN",
        b"TYPE",
        b"EXISTS",
        b"DEL",
        b"UNLINK",
        b"RENAME",
        b"FLUSHDB",
        b"FLUSHALL",
        b"SET",
        b"GET",
        b"HSET",
        b"HMSET",
        b"HGET",
        b"HGETALL",
        b"HEXISTS",
        b"HDEL",
        b"HLEN",
        b"RPUSH",
        b"LPUSH",
        b"LRANGE",
        b"LLEN",
        b"LINDEX",
        b"SAVE",
        b"BGSAVE",
        b"BGREWRITEAOF",
        b"LASTSAVE",
        b"CLUSTER",
        b"MULTI",
        b"EXEC",
        b"DISCARD",
        b"INSITU.WAIT",
        b"set",
        b"Ai.TensorSet",
        b"NOSUCHCOMMAND",
    ];
    let mut r = srv.raw();
    for name in commands {
        assert_eq!(
            r.cmd(&[name, b"k", b"FLOAT", b"1", b"VALUES", b"1"]),
            err("NOAUTH Authentication required."),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(r.cmd(&[b"AUTH", b"s3cret"]), ok());
    assert_eq!(r.cmd(&[b"DBSIZE"]), Frame::Integer(0), "nothing ran");
    // The Unix socket asks for the password too.
    let mut c = insitu::Client::connect(&srv.unix()).expect("connects, then must authenticate");
    let e = c.key_exists("k").unwrap_err();
    assert_eq!(e.text(), "NOAUTH Authentication required.");
    assert!(
        !srv.dir.join("insitu.snapshot").exists(),
        "SAVE/BGSAVE did not run"
    );
}

#[test]
fn idle_clients_are_closed_after_timeout_busy_and_waiting_ones_are_not() {
    let srv = TestServer::start_with(EngineConfig {
        limits: Limits {
            idle_timeout_secs: 1,
            ..Limits::default()
        },
        ..EngineConfig::default()
    });
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"timeout"]),
        Frame::Array(vec![bulk(b"timeout"), bulk(b"1")])
    );
    let mut idle = srv.raw();
    let mut half = srv.raw();
    half.send(b"*2\r\n$4\r\nPING\r\n$2\r\nh"); // a frame that never ends
    let mut busy = srv.raw();
    // A wait longer than the idle timeout is not idleness: its reply comes.
    let mut waiting = srv.raw();
    waiting.send(
        &Frame::command(
            [&b"INSITU.WAIT"[..], b"2500", b"EXISTS", b"nosuchkey"]
                .map(bytes::Bytes::copy_from_slice),
        )
        .to_bytes(),
    );
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(2000) {
        assert_eq!(busy.cmd(&[b"PING"]), Frame::simple("PONG"));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(idle.closed(), "idle connection closed");
    assert!(half.closed(), "a connection stalled mid-frame is idle too");
    assert_eq!(waiting.read(), Frame::Integer(0), "the wait ran to its end");
    assert_eq!(busy.cmd(&[b"PING"]), Frame::simple("PONG"));
    // 0 turns it off (each connection reads the change at its next command).
    assert_eq!(srv.raw().cmd(&[b"CONFIG", b"SET", b"timeout", b"0"]), ok());
    let mut idle = srv.raw();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(idle.cmd(&[b"PING"]), Frame::simple("PONG"));
}

#[test]
fn a_client_that_does_not_read_its_replies_is_bounded_then_closed() {
    let srv = TestServer::start_with(EngineConfig {
        limits: Limits {
            output_timeout_secs: 1,
            ..Limits::default()
        },
        ..EngineConfig::default()
    });
    let mut c = insitu::Client::connect(&srv.tcp()).expect("connect");
    let big = insitu::Tensor::from_vec(vec![8 << 20], vec![7u8; 8 << 20]).expect("t");
    c.put_tensor("big", &big).expect("put");
    // Over TCP, and over the Unix socket (whose writes wait for room their own way).
    let tcp = std::net::TcpStream::connect(("127.0.0.1", srv.port())).expect("tcp");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    stalled_reader_is_bounded_then_closed(&srv, &mut c, &big, tcp);
    let path = srv.unix();
    let unix =
        std::os::unix::net::UnixStream::connect(path.trim_start_matches("unix://")).expect("unix");
    unix.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    stalled_reader_is_bounded_then_closed(&srv, &mut c, &big, unix);
}

fn stalled_reader_is_bounded_then_closed(
    srv: &TestServer,
    c: &mut insitu::Client,
    big: &insitu::Tensor,
    mut slow: impl std::io::Read + std::io::Write,
) {
    // Ask for 64 copies of an 8 MiB tensor and read none of them.
    let get =
        Frame::command([&b"AI.TENSORGET"[..], b"big", b"BLOB"].map(bytes::Bytes::copy_from_slice))
            .to_bytes();
    let mut batch = Vec::new();
    for _ in 0..64 {
        batch.extend_from_slice(&get);
    }
    slow.write_all(&batch).expect("send");
    let rss_before = rss_kib();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // Others are served meanwhile; the server holds nowhere near 512 MiB of replies.
    assert_eq!(c.get_tensor("big").expect("get").data(), big.data());
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 128 << 10,
        "server grew by {grown} KiB for a client not reading"
    );
    // The stalled client was closed: draining what reached its socket ends in EOF,
    // well before 64 replies.
    let mut total = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        match slow.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }
    assert!(
        total < 32 * (8 << 20),
        "closed early: {total} bytes of replies sent"
    );
    assert_eq!(
        srv.engine
            .stats
            .connected_clients
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only the reading client is left"
    );
}

/// This process' resident memory (the embedded server runs in it), KiB.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
