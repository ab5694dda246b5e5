//! Shared test support: a server on port 0 and a Unix socket in a private directory, and
//! a raw RESP connection for wire-level tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use insitu::protocol::resp::{parse_reply, Frame};
use insitu::server::{EmbeddedServer, ListenOptions};
use insitu::{Engine, EngineConfig};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh private directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "insitu-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub struct TestServer {
    pub engine: Arc<Engine>,
    pub dir: PathBuf,
    server: Option<EmbeddedServer>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(EngineConfig::default())
    }

    pub fn start_with(mut config: EngineConfig) -> TestServer {
        let dir = temp_dir("srv");
        config.dir = dir.clone();
        TestServer::start_in(config, dir)
    }

    /// Start on `dir` (its snapshot or append-only files, if any, are loaded first).
    pub fn start_in(mut config: EngineConfig, dir: PathBuf) -> TestServer {
        config.dir = dir.clone();
        let engine = Arc::new(Engine::new(config));
        engine
            .load_persistence()
            .expect("load snapshot or append-only files");
        let server = EmbeddedServer::start(
            engine.clone(),
            ListenOptions {
                tcp: Some("127.0.0.1:0".parse().expect("addr")),
                unix: Some(dir.join("s.sock")),
                unix_mode: None,
            },
        )
        .expect("start server");
        TestServer {
            engine,
            dir,
            server: Some(server),
        }
    }

    pub fn tcp(&self) -> String {
        let a = self
            .server
            .as_ref()
            .and_then(|s| s.tcp_addr())
            .expect("tcp");
        format!("127.0.0.1:{}", a.port())
    }

    pub fn port(&self) -> u16 {
        self.server
            .as_ref()
            .and_then(|s| s.tcp_addr())
            .expect("tcp")
            .port()
    }

    pub fn unix(&self) -> String {
        format!("unix://{}", self.dir.join("s.sock").display())
    }

    /// Both transports, for tests that run once per transport.
    pub fn addresses(&self) -> [String; 2] {
        [self.tcp(), self.unix()]
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.port())
    }

    pub fn stop(mut self) -> PathBuf {
        if let Some(s) = self.server.take() {
            s.stop().expect("stop");
        }
        self.dir.clone()
    }
}

/// A raw RESP connection.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Send a command as an array of bulk strings.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Frame {
        let f = Frame::command(args.iter().map(|a| bytes::Bytes::copy_from_slice(a)));
        self.send(&f.to_bytes());
        self.read()
    }

    /// Read one reply.
    pub fn read(&mut self) -> Frame {
        loop {
            if let Some((f, n)) = parse_reply(&self.buf).expect("reply parses") {
                self.buf.drain(..n);
                return f;
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read");
            assert!(
                n > 0,
                "server closed the connection; pending: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed the connection (reads EOF).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
    }
}

/// Send each command and assert its exact error reply.
pub fn assert_errors(r: &mut Raw, cases: &[(&[&[u8]], &str)]) {
    for (args, want) in cases {
        assert_eq!(
            r.cmd(args),
            err(want),
            "{:?}",
            args.iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
        );
    }
}

pub fn err(text: &str) -> Frame {
    Frame::Error(insitu::Error::from_server_text(text))
}

pub fn ok() -> Frame {
    Frame::ok()
}

pub fn bulk(s: &[u8]) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s))
}

/// The generated test models (core/tests/models/gen_models.py), or `None` when they have
/// not been generated and the run does not require them.
pub fn models_dir() -> Option<PathBuf> {
    match std::env::var("INSITU_TEST_MODELS") {
        Ok(d) if PathBuf::from(&d).join("manifest.json").exists() => Some(PathBuf::from(d)),
        _ => {
            assert!(
                std::env::var("INSITU_REQUIRE_PYTHON").is_err(),
                "INSITU_TEST_MODELS is not set to a directory of generated models"
            );
            eprintln!("skipped: no generated models (run ./dev.sh test)");
            None
        }
    }
}

/// One reference case: inputs and the outputs Python onnxruntime computed.
pub struct Case {
    pub inputs: Vec<insitu::Tensor>,
    pub outputs: Vec<insitu::Tensor>,
}

fn load_tensor(dir: &std::path::Path, e: &serde_json::Value) -> insitu::Tensor {
    let dtype =
        insitu::DType::parse(e["dtype"].as_str().expect("dtype").as_bytes()).expect("known dtype");
    let shape: Vec<usize> = e["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data = std::fs::read(dir.join(e["file"].as_str().expect("file"))).expect("case file");
    insitu::Tensor::new(dtype, shape, data.into()).expect("case tensor")
}

/// The model file and reference cases of `name`.
pub fn model_cases(dir: &std::path::Path, name: &str) -> (PathBuf, Vec<Case>) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    let entry = &m[name];
    let file = dir.join(entry["file"].as_str().expect("model file"));
    let cases = entry["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            inputs: c["inputs"]
                .as_array()
                .expect("inputs")
                .iter()
                .map(|e| load_tensor(dir, e))
                .collect(),
            outputs: c["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .map(|e| load_tensor(dir, e))
                .collect(),
        })
        .collect();
    (file, cases)
}

/// Assert `got` equals `want`: within 1e-5 for floats, exactly otherwise.
pub fn assert_close(got: &insitu::Tensor, want: &insitu::Tensor, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    match got.dtype() {
        insitu::DType::Float32 => {
            let (g, w) = (
                got.to_vec::<f32>().expect("f32"),
                want.to_vec::<f32>().expect("f32"),
            );
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{what}: element {i}: {a} vs {b}"
                );
            }
        }
        insitu::DType::Float64 => {
            let (g, w) = (
                got.to_vec::<f64>().expect("f64"),
                want.to_vec::<f64>().expect("f64"),
            );
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{what}: element {i}: {a} vs {b}"
                );
            }
        }
        _ => assert_eq!(got.data(), want.data(), "{what}: bytes"),
    }
}

/// The coupling modes every client test runs in.
pub const MODES: [&str; 4] = ["inproc", "unix", "tcp", "embedded"];

/// A process hosting an in-process engine that also serves it (the "simulation serves
/// its own trainers" case): the test binary itself, re-run as [`embedded_host`].
pub struct HostProcess {
    child: std::process::Child,
    pub dir: PathBuf,
}

impl HostProcess {
    /// Start the host; returns once it listens. `test_name` is the `#[test]` in the
    /// calling test binary that calls [`embedded_host`].
    pub fn start(test_name: &str) -> HostProcess {
        let dir = temp_dir("host");
        let child = std::process::Command::new(std::env::current_exe().expect("test exe"))
            .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
            .env("INSITU_EMBEDDED_HOST_DIR", &dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn host");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !dir.join("ready").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "embedded host did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        HostProcess { child, dir }
    }

    pub fn address(&self) -> String {
        format!("unix://{}", self.dir.join("s.sock").display())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // Closing its stdin tells the host to stop.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The body of the host process: an inproc client puts `from_host`, serves its engine on
/// a Unix socket, and copies every `to_host` a remote client puts to `host_saw`, until
/// its stdin closes. Returns at once when not asked to host.
pub fn embedded_host() {
    let Ok(dir) = std::env::var("INSITU_EMBEDDED_HOST_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut c = insitu::Client::connect("inproc").expect("inproc");
    c.put_tensor(
        "from_host",
        &insitu::Tensor::from_vec(vec![3], vec![7i32, 8, 9]).expect("t"),
    )
    .expect("put");
    let server = c
        .start_server(ListenOptions {
            unix: Some(dir.join("s.sock")),
            ..Default::default()
        })
        .expect("serve");
    std::fs::write(dir.join("ready"), b"1").expect("ready");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        s2.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if c.poll_tensor("to_host", 50, 1).unwrap_or(false) {
            if let Ok(t) = c.get_tensor("to_host") {
                let _ = c.put_tensor("host_saw", &t);
                let _ = c.delete_tensor("to_host");
            }
        }
    }
    server.stop().expect("stop");
    std::process::exit(0);
}

/// A client in `mode` against `srv` (or the host process for "embedded").
pub fn connect_mode(
    mode: &str,
    srv: &TestServer,
    host: &mut Option<HostProcess>,
    test_name: &str,
) -> insitu::Client {
    match mode {
        "inproc" => insitu::Client::inproc(srv.engine.clone()).expect("inproc"),
        "unix" => insitu::Client::connect(&srv.unix()).expect("unix"),
        "tcp" => insitu::Client::connect(&srv.tcp()).expect("tcp"),
        "embedded" => {
            let h = host.get_or_insert_with(|| HostProcess::start(test_name));
            insitu::Client::connect(&h.address()).expect("embedded")
        }
        other => panic!("unknown mode {other}"),
    }
}
