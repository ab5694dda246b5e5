//! Shared helpers for insitu's benchmarks: timing loops and percentile reports.

use std::time::Instant;

/// Latency samples of one workload, in microseconds.
pub struct Samples {
    /// What was measured.
    pub name: String,
    us: Vec<f64>,
}

impl Samples {
    /// Time `iters` calls of `f` after `warmup` untimed ones.
    pub fn measure(
        name: impl Into<String>,
        warmup: usize,
        iters: usize,
        mut f: impl FnMut(),
    ) -> Samples {
        for _ in 0..warmup {
            f();
        }
        let mut us = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            f();
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(|a, b| a.total_cmp(b));
        Samples {
            name: name.into(),
            us,
        }
    }

    /// The `p`-th percentile (0..=100), microseconds.
    pub fn pct(&self, p: f64) -> f64 {
        if self.us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.us.len() - 1) as f64).round() as usize;
        self.us[i.min(self.us.len() - 1)]
    }
}

/// Print rows of samples with their p50 / p99 and the ratio of p50 to `baseline`'s.
pub fn report(title: &str, baseline: &Samples, rows: &[&Samples]) {
    println!("\n{title}");
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "workload", "p50 us", "p99 us", "p50 / base"
    );
    for s in std::iter::once(baseline).chain(rows.iter().copied()) {
        println!(
            "{:<44} {:>10.2} {:>10.2} {:>11.2}x",
            s.name,
            s.pct(50.0),
            s.pct(99.0),
            s.pct(50.0) / baseline.pct(50.0)
        );
    }
}

/// The server the socket rows measure: the `insitu` binary as its own process when
/// `INSITU_BIN` names it (as in production, and like the redis-server it is compared
/// with), else a server embedded in this process.
pub struct BenchServer {
    /// An engine in this process (for in-process clients).
    pub engine: std::sync::Arc<insitu::Engine>,
    /// `127.0.0.1:port`.
    pub tcp: String,
    /// `unix:///...`.
    pub unix: String,
    embedded: Option<insitu::server::EmbeddedServer>,
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
}

impl BenchServer {
    /// Start it.
    ///
    /// # Panics
    /// When it cannot start (a benchmark has nothing to measure then).
    pub fn start(tag: &str) -> BenchServer {
        BenchServer::start_with(tag, false)
    }

    /// Start it, with append-only persistence (`appendfsync everysec`) when `aof`.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start_with(tag: &str, aof: bool) -> BenchServer {
        let dir = std::env::temp_dir().join(format!("insitu-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let sock = dir.join("s.sock");
        let engine = std::sync::Arc::new(insitu::Engine::new(insitu::EngineConfig {
            dir: dir.clone(),
            aof: insitu::persistence::journal::AofConfig {
                enabled: aof,
                ..Default::default()
            },
            ..insitu::EngineConfig::default()
        }));
        let appendonly = if aof { "yes" } else { "no" };
        let unix = format!("unix://{}", sock.display());
        if let Some(bin) =
            std::env::var_os("INSITU_BIN").filter(|b| std::path::Path::new(b).exists())
        {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let child = std::process::Command::new(&bin)
                .args([
                    "serve",
                    "--port",
                    &port.to_string(),
                    "--log",
                    "warn",
                    "--unixsocket",
                ])
                .arg(&sock)
                .arg("--dir")
                .arg(&dir)
                .args(["--appendonly", appendonly])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn insitu");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !sock.exists() {
                assert!(std::time::Instant::now() < deadline, "insitu did not start");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            println!(
                "server: {} (separate process)",
                std::path::Path::new(&bin).display()
            );
            return BenchServer {
                engine,
                tcp: format!("127.0.0.1:{port}"),
                unix,
                embedded: None,
                child: Some(child),
                dir,
            };
        }
        engine.load_persistence().expect("append-only files");
        let server = insitu::server::EmbeddedServer::start(
            engine.clone(),
            insitu::server::ListenOptions {
                tcp: Some("127.0.0.1:0".parse().expect("addr")),
                unix: Some(sock),
                unix_mode: None,
            },
        )
        .expect("server");
        let tcp = format!("127.0.0.1:{}", server.tcp_addr().expect("tcp").port());
        println!("server: embedded in this process (set INSITU_BIN to measure the binary)");
        BenchServer {
            engine,
            tcp,
            unix,
            embedded: Some(server),
            child: None,
            dir,
        }
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(s) = self.embedded.take() {
            let _ = s.stop();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw ONNX Runtime session with the settings insitu uses (1 intra, 1 inter thread).
///
/// # Panics
/// When ONNX Runtime cannot load the model.
pub fn raw_session(model: &[u8]) -> ort::session::Session {
    let rt = insitu::model::runtime::runtime().expect("ONNX Runtime");
    ort::session::Session::builder(&rt.env)
        .expect("builder")
        .with_intra_threads(1)
        .expect("intra")
        .with_inter_threads(1)
        .expect("inter")
        .commit_from_memory(model)
        .expect("session")
}

/// A redis-server on a free loopback port (no persistence unless asked), stopped on drop:
/// the peer of the comparisons.
pub struct RedisServer(std::process::Child, u16, Option<std::path::PathBuf>);

impl RedisServer {
    /// Start one; `None` when redis-server is not on PATH or does not come up.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(false)
    }

    /// Start one, with `appendonly yes` and `appendfsync everysec` (in a directory of its
    /// own) when `aof`.
    pub fn start_with(aof: bool) -> Option<RedisServer> {
        RedisServer::spawn(aof, &[])
    }

    /// Start one with a module loaded: `--loadmodule module args...` (RedisAI as the
    /// harness' peer).
    pub fn start_module(module: &std::path::Path, args: &[&str]) -> Option<RedisServer> {
        let mut extra = vec![
            std::ffi::OsString::from("--loadmodule"),
            module.as_os_str().to_owned(),
        ];
        extra.extend(args.iter().map(std::ffi::OsString::from));
        RedisServer::spawn(false, &extra)
    }

    fn spawn(aof: bool, extra: &[std::ffi::OsString]) -> Option<RedisServer> {
        let dir = aof.then(|| {
            let d = std::env::temp_dir().join(format!("insitu-bench-redis-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            let _ = std::fs::create_dir_all(&d);
            d
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                if aof { "yes" } else { "no" },
                "--appendfsync",
                "everysec",
                "--bind",
                "127.0.0.1",
            ])
            .args(
                dir.iter()
                    .flat_map(|d| [std::ffi::OsStr::new("--dir"), d.as_os_str()]),
            )
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(RedisServer(child, port, dir))
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.1
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.1)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(d) = &self.2 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
