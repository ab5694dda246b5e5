//! Every command parser: arbitrary bytes are read as RESP requests and executed against
//! an engine, as a connection would. Nothing may panic; replies are encoded in full.
//! (Replies that would wait or run a model are dropped unpolled.)
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use insitu::cmd::Reply;
use insitu::protocol::resp::{Output, Request, RequestParser};
use insitu::{Engine, EngineConfig, Limits};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| {
        // Anything written to disk stays in scratch (SAVE and BGSAVE are skipped below).
        let config = EngineConfig {
            maxmemory: 64 << 20,
            dir: std::env::temp_dir().join("insitu-fuzz"),
            ..EngineConfig::default()
        };
        let _ = std::fs::create_dir_all(&config.dir);
        Arc::new(Engine::new(config))
    })
}

fuzz_target!(|data: &[u8]| {
    let engine = engine();
    let mut session = engine.new_session();
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(data);
    loop {
        match parser.next(&mut buf) {
            Ok(Some(Request::Command(args))) => {
                let name = args[0].to_ascii_uppercase();
                // Commands that block, stop the process or write outside the store.
                if matches!(
                    name.as_slice(),
                    b"SHUTDOWN" | b"DEBUG" | b"SAVE" | b"BGSAVE" | b"FLUSHALL" | b"FLUSHDB"
                ) {
                    continue;
                }
                if let Reply::Ready(f) = insitu::cmd::execute(engine, &mut session, args) {
                    let mut out = Output::default();
                    f.encode(&mut out);
                    let n: usize = out.take_chunks().iter().map(|c| c.len()).sum();
                    assert!(n > 0, "every reply has bytes");
                }
            }
            Ok(Some(Request::Rejected(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
