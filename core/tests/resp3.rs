//! RESP3 and connection set-up as Redis 7 does them, checked on the wire byte for byte:
//! HELLO (2, 3, AUTH, SETNAME, errors in Redis' order), replies in their RESP3 shapes,
//! CLIENT's subcommands, COMMAND introspection, CONFIG's Redis parameters.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use insitu::engine::EngineConfig;
use insitu::protocol::resp::{parse_reply, Frame};

/// A connection that returns each reply's exact bytes.
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    fn connect(srv: &TestServer) -> Wire {
        let s = TcpStream::connect(("127.0.0.1", srv.port())).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Wire { s, buf: Vec::new() }
    }

    fn call(&mut self, args: &[&str]) -> Vec<u8> {
        let f = Frame::command(
            args.iter()
                .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes())),
        );
        self.s.write_all(&f.to_bytes()).expect("write");
        loop {
            if let Some((_, n)) = parse_reply(&self.buf).expect("reply parses") {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The reply as text (for exact comparisons).
    fn text(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.call(args)).into_owned()
    }

    fn frame(&mut self, args: &[&str]) -> Frame {
        parse_reply(&self.call(args)).unwrap().unwrap().0
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
    }
}

fn hello_map(proto: u8, id: i64) -> String {
    format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*1\r\n%4\r\n$4\r\nname\r\n$2\r\nai\r\n$3\r\nver\r\n:10207\r\n$4\r\npath\r\n$6\r\ninsitu\r\n$4\r\nargs\r\n*0\r\n"
    )
}

fn client_id(w: &mut Wire) -> i64 {
    match w.frame(&["CLIENT", "ID"]) {
        Frame::Integer(i) => i,
        f => panic!("{f:?}"),
    }
}

#[test]
fn hello_switches_protocols_as_redis_does() {
    let srv = TestServer::start();
    let mut w = Wire::connect(&srv);
    let id = client_id(&mut w);
    // HELLO 3: a map, and from then on RESP3 replies.
    assert_eq!(w.text(&["HELLO", "3"]), hello_map(3, id));
    assert_eq!(w.text(&["GET", "missing"]), "_\r\n");
    assert_eq!(w.text(&["PING"]), "+PONG\r\n");
    // HELLO without a version describes the connection in its protocol.
    assert_eq!(w.text(&["HELLO"]), hello_map(3, id));
    // HELLO 2: the same fields as a flat array, and RESP2 again.
    let flat = hello_map(2, id)
        .replacen("%7", "*14", 1)
        .replacen("%4", "*8", 1);
    assert_eq!(w.text(&["HELLO", "2"]), flat);
    assert_eq!(w.text(&["GET", "missing"]), "$-1\r\n");
    // Errors, with Redis' texts; the protocol stays as it was.
    assert_eq!(
        w.text(&["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "1"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "three"]),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "3", "SETNAME"]),
        "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "3", "AUTH", "default"]),
        "-ERR Syntax error in HELLO option 'AUTH'\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "3", "SETNAME", "a b"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(w.text(&["GET", "missing"]), "$-1\r\n");
    // SETNAME and AUTH (no password set: the default user takes any password).
    assert_eq!(
        w.text(&["HELLO", "3", "AUTH", "default", "whatever", "SETNAME", "sim-7"]),
        hello_map(3, id)
    );
    assert_eq!(w.text(&["CLIENT", "GETNAME"]), "$5\r\nsim-7\r\n");
    assert_eq!(
        w.text(&["HELLO", "3", "AUTH", "someone", "x"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
}

#[test]
fn hello_authenticates_when_a_password_is_set() {
    let srv = TestServer::start_with(EngineConfig {
        requirepass: Some("s3cret".into()),
        ..EngineConfig::default()
    });
    let mut w = Wire::connect(&srv);
    assert_eq!(
        w.text(&["GET", "a"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        w.text(&["HELLO", "3", "AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        w.text(&["GET", "a"]),
        "-NOAUTH Authentication required.\r\n"
    );
    let mut w = Wire::connect(&srv);
    let Frame::Map(reply) = w.frame(&["HELLO", "3", "AUTH", "default", "s3cret"]) else {
        panic!("a map")
    };
    let Frame::Integer(id) = reply[3].1 else {
        panic!()
    };
    assert_eq!(w.text(&["HELLO", "3"]), hello_map(3, id));
    assert_eq!(w.text(&["GET", "a"]), "_\r\n");
}

#[test]
fn replies_take_their_resp3_shapes() {
    let srv = TestServer::start();
    let mut w = Wire::connect(&srv);
    w.call(&["HELLO", "3"]);
    w.call(&["HSET", "h", "f", "v"]);
    assert_eq!(w.text(&["HGETALL", "h"]), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(w.text(&["HGETALL", "none"]), "%0\r\n");
    assert_eq!(
        w.text(&["CONFIG", "GET", "maxmemory"]),
        "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    );
    // INFO and CLUSTER INFO-like texts are verbatim strings.
    let info = w.text(&["INFO", "keyspace"]);
    assert_eq!(
        info,
        "=48\r\ntxt:# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n"
    );
    // Tensor values: doubles for floating types, integers for the rest (RedisAI's
    // RedisModule_ReplyWithDouble / LongLong); metadata stays an array.
    w.call(&[
        "AI.TENSORSET",
        "t",
        "FLOAT",
        "3",
        "VALUES",
        "1",
        "0.1",
        "-2.5",
    ]);
    assert_eq!(
        w.text(&["AI.TENSORGET", "t", "META", "VALUES"]),
        "*6\r\n$5\r\ndtype\r\n$5\r\nFLOAT\r\n$5\r\nshape\r\n*1\r\n:3\r\n$6\r\nvalues\r\n*3\r\n,1\r\n,0.10000000149011612\r\n,-2.5\r\n"
    );
    w.call(&["AI.TENSORSET", "i", "INT64", "2", "VALUES", "-1", "9"]);
    assert_eq!(
        w.text(&["AI.TENSORGET", "i", "VALUES"]),
        "*2\r\n:-1\r\n:9\r\n"
    );
    assert_eq!(
        w.text(&["CLIENT", "TRACKINGINFO"]),
        "%3\r\n$5\r\nflags\r\n~1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert_eq!(w.text(&["LINDEX", "nolist", "0"]), "_\r\n");
    // A DAG's tensor replies follow the connection's protocol too.
    assert_eq!(
        w.text(&[
            "AI.DAGEXECUTE",
            "LOAD",
            "1",
            "t",
            "|>",
            "AI.TENSORGET",
            "t",
            "VALUES"
        ]),
        "*1\r\n*3\r\n,1\r\n,0.10000000149011612\r\n,-2.5\r\n"
    );
}

#[test]
fn client_subcommands_answer_as_redis_does() {
    let srv = TestServer::start();
    let mut a = Wire::connect(&srv);
    let mut b = Wire::connect(&srv);
    let (ida, idb) = (client_id(&mut a), client_id(&mut b));
    assert_eq!(
        a.text(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        "+OK\r\n"
    );
    assert_eq!(
        a.text(&["CLIENT", "SETINFO", "lib-ver", "8.1.0"]),
        "+OK\r\n"
    );
    assert_eq!(
        a.text(&["CLIENT", "SETINFO", "LIB-NAME", "has space"]),
        "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        a.text(&["CLIENT", "SETINFO", "COLOUR", "x"]),
        "-ERR Unrecognized option 'COLOUR'\r\n"
    );
    assert_eq!(
        a.text(&["CLIENT", "SETINFO", "LIB-NAME"]),
        "-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    assert_eq!(a.text(&["CLIENT", "SETNAME", "trainer"]), "+OK\r\n");
    assert_eq!(a.text(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(
        a.text(&["CLIENT", "NO-EVICT", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(a.text(&["CLIENT", "NO-TOUCH", "off"]), "+OK\r\n");
    let Frame::Bulk(info) = a.frame(&["CLIENT", "INFO"]) else {
        panic!()
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(
        info.starts_with(&format!("id={ida} addr=127.0.0.1:")),
        "{info}"
    );
    for field in [
        " name=trainer ",
        &format!(" laddr=127.0.0.1:{} ", srv.port()),
        " flags=e ",
        " db=0 ",
        " cmd=client ",
        " resp=2 ",
        " lib-name=redis-py lib-ver=8.1.0\n",
    ] {
        assert!(info.contains(field), "{field:?} not in {info}");
    }
    // CLIENT LIST: one line per connection, both clients there; filters by ID and TYPE.
    let Frame::Bulk(list) = b.frame(&["CLIENT", "LIST"]) else {
        panic!()
    };
    let list = String::from_utf8_lossy(&list).into_owned();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(&format!("id={ida} ")) && list.contains(&format!("id={idb} ")));
    let Frame::Bulk(one) = b.frame(&["CLIENT", "LIST", "ID", &idb.to_string()]) else {
        panic!()
    };
    assert_eq!(String::from_utf8_lossy(&one).lines().count(), 1);
    assert_eq!(b.text(&["CLIENT", "LIST", "TYPE", "pubsub"]), "$0\r\n\r\n");
    assert_eq!(
        b.text(&["CLIENT", "LIST", "TYPE", "nosuch"]),
        "-ERR Unknown client type 'nosuch'\r\n"
    );
    assert_eq!(
        b.text(&["CLIENT", "LIST", "ID", "x"]),
        "-ERR Invalid client ID\r\n"
    );
    // Tracking would need invalidation messages: refused with a clear error; OFF is fine.
    assert_eq!(
        b.text(&["CLIENT", "TRACKING", "on"]),
        "-ERR CLIENT TRACKING is not supported by this server (no client-side caching invalidations are sent)\r\n"
    );
    assert_eq!(b.text(&["CLIENT", "TRACKING", "off"]), "+OK\r\n");
    assert_eq!(b.text(&["CLIENT", "GETREDIR"]), ":-1\r\n");
    assert_eq!(
        b.text(&["CLIENT", "NOSUCH"]),
        "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n"
    );
    // CLIENT KILL: new form counts, old form says OK or no such client; SKIPME.
    assert_eq!(
        b.text(&["CLIENT", "KILL", "ID", "0"]),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(b.text(&["CLIENT", "KILL", "ID", "999999"]), ":0\r\n");
    assert_eq!(
        b.text(&["CLIENT", "KILL", "1.2.3.4:5"]),
        "-ERR No such client\r\n"
    );
    assert_eq!(
        b.text(&["CLIENT", "KILL", "ID", &idb.to_string()]),
        ":0\r\n",
        "SKIPME yes by default"
    );
    assert_eq!(
        b.text(&["CLIENT", "KILL", "ID", &ida.to_string()]),
        ":1\r\n"
    );
    assert!(a.closed(), "the killed client's connection is closed");
    assert_eq!(b.text(&["PING"]), "+PONG\r\n");
    // Killing oneself: the reply arrives, then the connection closes.
    assert_eq!(
        b.text(&["CLIENT", "KILL", "ID", &idb.to_string(), "SKIPME", "no"]),
        ":1\r\n"
    );
    assert!(b.closed());
    let mut c = Wire::connect(&srv);
    let Frame::Bulk(list) = c.frame(&["CLIENT", "LIST"]) else {
        panic!()
    };
    assert_eq!(
        String::from_utf8_lossy(&list).lines().count(),
        1,
        "killed clients are gone"
    );
}

#[test]
fn command_introspection_reads_the_command_table() {
    let srv = TestServer::start();
    let mut w = Wire::connect(&srv);
    let Frame::Integer(count) = w.frame(&["COMMAND", "COUNT"]) else {
        panic!()
    };
    assert_eq!(count as usize, insitu::cmd::table::COMMANDS.len());
    let Frame::Array(all) = w.frame(&["COMMAND"]) else {
        panic!()
    };
    assert_eq!(all.len(), count as usize);
    assert_eq!(
        w.text(&["COMMAND", "INFO", "get", "nosuch"]),
        "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*2\r\n+@read\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n*-1\r\n"
    );
    // RedisAI's registration: module commands have arity -1; run commands find their keys.
    assert_eq!(
        w.text(&["COMMAND", "INFO", "AI.MODELEXECUTE"]),
        "*1\r\n*10\r\n$15\r\nai.modelexecute\r\n:-1\r\n*4\r\n+write\r\n+denyoom\r\n+module\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n*2\r\n+@write\r\n+@slow\r\n*0\r\n*0\r\n*0\r\n"
    );
    assert_eq!(
        w.text(&[
            "COMMAND",
            "GETKEYS",
            "AI.MODELEXECUTE",
            "m",
            "INPUTS",
            "2",
            "a",
            "b",
            "OUTPUTS",
            "1",
            "c",
            "TIMEOUT",
            "5"
        ]),
        "*4\r\n$1\r\nm\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        w.text(&[
            "COMMAND",
            "GETKEYS",
            "AI.DAGEXECUTE",
            "LOAD",
            "1",
            "x",
            "PERSIST",
            "1",
            "y",
            "|>",
            "AI.MODELEXECUTE",
            "m",
            "INPUTS",
            "1",
            "x",
            "OUTPUTS",
            "1",
            "y"
        ]),
        "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nm\r\n"
    );
    assert_eq!(
        w.text(&["COMMAND", "GETKEYS", "MSET", "a"]),
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        w.text(&["COMMAND", "GETKEYS", "GET"]),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        w.text(&["COMMAND", "GETKEYS", "PING"]),
        "-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        w.text(&["COMMAND", "DOCS", "get"]),
        "*2\r\n$3\r\nget\r\n*6\r\n$7\r\nsummary\r\n$34\r\nReturns the string value of a key.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n"
    );
    w.call(&["HELLO", "3"]);
    assert!(w
        .text(&["COMMAND", "DOCS", "get"])
        .starts_with("%1\r\n$3\r\nget\r\n%3\r\n"));
    assert!(w
        .text(&["COMMAND", "INFO", "get"])
        .contains("~2\r\n+readonly\r\n+fast\r\n"));
}

#[test]
fn config_takes_redis_parameters() {
    let srv = TestServer::start();
    let mut w = Wire::connect(&srv);
    // What SmartRedis' tests and Redis clients set: accepted, stored, reported.
    assert_eq!(
        w.text(&["CONFIG", "SET", "lua-time-limit", "6000"]),
        "+OK\r\n"
    );
    assert_eq!(
        w.text(&["CONFIG", "GET", "lua-time-limit"]),
        "*2\r\n$14\r\nlua-time-limit\r\n$4\r\n6000\r\n"
    );
    assert_eq!(
        w.text(&["CONFIG", "GET", "busy-reply-threshold"]),
        "*2\r\n$20\r\nbusy-reply-threshold\r\n$4\r\n6000\r\n",
        "an alias writes the parameter it names"
    );
    assert_eq!(
        w.text(&[
            "CONFIG",
            "SET",
            "notify-keyspace-events",
            "KEA",
            "maxmemory-policy",
            "ALLKEYS-LRU"
        ]),
        "+OK\r\n"
    );
    assert_eq!(
        w.text(&["CONFIG", "GET", "maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
    );
    // Patterns match as Redis matches them.
    let Frame::Array(entries) = w.frame(&["CONFIG", "GET", "*max-*-entries*"]) else {
        panic!()
    };
    let names: Vec<String> = entries
        .iter()
        .step_by(2)
        .map(|f| match f {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "hash-max-listpack-entries",
            "hash-max-ziplist-entries",
            "set-max-intset-entries",
            "zset-max-listpack-entries",
            "zset-max-ziplist-entries"
        ]
    );
    let Frame::Array(two) = w.frame(&["CONFIG", "GET", "maxmemory", "timeout"]) else {
        panic!()
    };
    assert_eq!(two.len(), 4);
    // Redis' validation and texts; a bad pair changes nothing.
    for (args, want) in [
        (&["CONFIG", "SET", "protected-mode", "maybe"][..], "-ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'\r\n"),
        (&["CONFIG", "SET", "loglevel", "loud"], "-ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning, nothing\r\n"),
        (&["CONFIG", "SET", "hz", "1000"], "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 500 inclusive\r\n"),
        (&["CONFIG", "SET", "lua-time-limit", "soon"], "-ERR CONFIG SET failed (possibly related to argument 'lua-time-limit') - argument couldn't be parsed into an integer\r\n"),
        (&["CONFIG", "SET", "io-threads", "4"], "-ERR CONFIG SET failed (possibly related to argument 'io-threads') - can't set immutable config\r\n"),
        (&["CONFIG", "SET", "hz", "20", "hz", "30"], "-ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter\r\n"),
        (&["CONFIG", "SET", "hz", "20", "loglevel", "loud"], "-ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning, nothing\r\n"),
    ] {
        assert_eq!(w.text(args), want, "{args:?}");
    }
    assert_eq!(
        w.text(&["CONFIG", "GET", "hz"]),
        "*2\r\n$2\r\nhz\r\n$2\r\n10\r\n"
    );
    assert_eq!(
        w.text(&["CONFIG", "REWRITE"]),
        "-ERR The server is running without a config file\r\n"
    );
    // requirepass set at run time applies to new connections, as in Redis.
    assert_eq!(w.text(&["CONFIG", "SET", "requirepass", "pw"]), "+OK\r\n");
    let mut other = Wire::connect(&srv);
    assert_eq!(
        other.text(&["GET", "x"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(other.text(&["AUTH", "pw"]), "+OK\r\n");
    assert_eq!(other.text(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
}
