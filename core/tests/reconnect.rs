//! A client whose server restarts: it reconnects, restores its session (AUTH, shared
//! memory) and sends idempotent commands again within its budget; commands
//! that must not run twice fail with an error saying so; an exhausted budget gives an
//! error naming it; a client started before its server waits for it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::temp_dir;
use insitu::client::{Address, KeyPrefixes, RetryPolicy};
use insitu::server::{EmbeddedServer, ListenOptions};
use insitu::{Client, Dataset, Engine, EngineConfig, ErrorCode, Tensor};

fn policy(cmd_timeout_secs: u64) -> RetryPolicy {
    RetryPolicy {
        conn_timeout: Duration::from_secs(10),
        conn_interval: Duration::from_millis(20),
        cmd_timeout: Duration::from_secs(cmd_timeout_secs),
        cmd_interval: Duration::from_millis(20),
        socket_timeout: Duration::ZERO,
        reply_spin: Duration::from_micros(50),
    }
}

/// A server on a fixed TCP port and Unix path, restartable on the same addresses.
struct Restartable {
    port: u16,
    dir: PathBuf,
    password: Option<String>,
    server: Option<EmbeddedServer>,
}

impl Restartable {
    fn start(password: Option<&str>) -> Restartable {
        let mut r = Restartable {
            port: 0,
            dir: temp_dir("reconnect"),
            password: password.map(str::to_string),
            server: None,
        };
        r.up();
        r.port = r
            .server
            .as_ref()
            .and_then(|s| s.tcp_addr())
            .expect("tcp")
            .port();
        r
    }

    fn up(&mut self) {
        let engine = Arc::new(Engine::new(EngineConfig {
            requirepass: self.password.clone(),
            ..EngineConfig::default()
        }));
        let tcp = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        self.server = Some(
            EmbeddedServer::start(
                engine,
                ListenOptions {
                    tcp: Some(tcp),
                    unix: Some(self.sock()),
                    unix_mode: None,
                },
            )
            .expect("start"),
        );
    }

    fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().expect("stop");
        }
    }

    /// Stop now; start again on the same addresses after `after`, in the background.
    fn restart_after(mut self, after: Duration) -> std::thread::JoinHandle<Restartable> {
        self.down();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            self.up();
            self
        })
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("s.sock")
    }

    fn addresses(&self) -> [Address; 2] {
        [
            Address::Tcp("127.0.0.1".into(), self.port),
            Address::Unix(self.sock()),
        ]
    }
}

fn tensor(n: usize, seed: u32) -> Tensor {
    Tensor::from_vec(vec![n], (0..n as u32).map(|i| i ^ seed).collect()).expect("t")
}

fn connect(a: &Address, p: RetryPolicy) -> Client {
    Client::connect_with(a.clone(), KeyPrefixes::default(), p).expect("connect")
}

#[test]
fn idempotent_commands_ride_out_a_restart_on_both_transports() {
    let mut srv = Restartable::start(Some("s3cret"));
    for (i, addr) in srv.addresses().iter().enumerate() {
        let mut c = connect(addr, policy(20));
        c.auth("s3cret").expect("auth");
        let unix = matches!(addr, Address::Unix(_));
        assert_eq!(c.shared_memory(), unix);
        c.put_tensor("before", &tensor(4, 1)).expect("put");
        // The server goes away and comes back (empty) 300 ms later: the put waits for
        // it, on a new connection that authenticates again and, on the Unix socket,
        // puts the 1 MiB tensor into a block the new server lends.
        let big = tensor(1 << 18, 7 + i as u32);
        let h = srv.restart_after(Duration::from_millis(300));
        c.put_tensor("big", &big)
            .expect("put retried after the restart");
        srv = h.join().expect("restarted");
        assert_eq!(c.shared_memory(), unix);
        assert_eq!(c.get_tensor("big").expect("get"), big, "{addr}");
        // A pipeline that may run twice (a dataset) is sent again too.
        let mut ds = Dataset::new("ds");
        ds.add_tensor("x", tensor(3, 3));
        ds.add_meta_scalar("step", 1i64).expect("meta");
        let h = srv.restart_after(Duration::from_millis(200));
        c.put_dataset(&ds).expect("dataset retried");
        srv = h.join().expect("restarted");
        let back = c.get_dataset("ds").expect("get ds");
        assert_eq!(back.get_tensor("x").expect("x"), &tensor(3, 3));
        // RPUSH may have been applied before the connection broke: not sent again.
        let h = srv.restart_after(Duration::from_millis(200));
        let e = c.command(&["RPUSH", "l", "item"]).unwrap_err();
        srv = h.join().expect("restarted");
        assert_eq!(e.code(), ErrorCode::Io);
        let text = e.text();
        assert!(
            text.starts_with(&format!(
                "ERR the connection to {addr} broke during RPUSH ("
            )),
            "{text}"
        );
        assert!(
            text.ends_with(
                "); reconnected, but RPUSH was not sent again: it may have been applied already"
            ),
            "{text}"
        );
        // ...and the client is connected (and authenticated) again.
        assert_eq!(c.get_list_length("l").expect("llen"), 0);
    }
    srv.down();
    std::fs::remove_dir_all(&srv.dir).expect("cleanup");
}

#[test]
fn an_exhausted_budget_is_a_clear_error_and_none_fails_at_once() {
    let mut srv = Restartable::start(None);
    let [tcp, _] = srv.addresses();
    let mut c = connect(&tcp, policy(20));
    c.set_retry_policy(policy(1)); // changed on a live client
    let mut once = connect(&tcp, RetryPolicy::none());
    c.put_tensor("x", &tensor(2, 0)).expect("put");
    srv.down();
    let start = Instant::now();
    let e = c.get_tensor("x").unwrap_err();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retried for the whole budget"
    );
    assert_eq!(e.code(), ErrorCode::Io);
    let port = srv.port;
    assert_eq!(
        e.text(),
        format!(
            "ERR AI.TENSORGET failed: the server at tcp://127.0.0.1:{port} did not answer again within 1 s (INSITU_CMD_TIMEOUT); last error: cannot connect to tcp://127.0.0.1:{port}: Connection refused (os error 111)"
        )
    );
    let e = once.get_tensor("x").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io);
    assert!(
        [
            "ERR read: ",
            "ERR write: ",
            "ERR connection closed by the server"
        ]
        .iter()
        .any(|p| e.text().starts_with(p)),
        "{e}"
    );
    // The first connection: tried for conn_timeout, then an error naming it.
    let p = RetryPolicy {
        conn_timeout: Duration::from_secs(1),
        ..policy(1)
    };
    let e = Client::connect_with(tcp.clone(), KeyPrefixes::default(), p)
        .err()
        .expect("nothing listens");
    assert_eq!(
        e.text(),
        format!("ERR cannot connect to tcp://127.0.0.1:{port}: Connection refused (os error 111) (gave up after 1 s: INSITU_CONN_TIMEOUT)")
    );
    std::fs::remove_dir_all(&srv.dir).expect("cleanup");
}

#[test]
fn a_client_started_before_its_server_waits_for_it() {
    let dir = temp_dir("early");
    let sock = dir.join("s.sock");
    let s2 = sock.clone();
    let started = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        EmbeddedServer::start(
            Arc::new(Engine::new(EngineConfig::default())),
            ListenOptions {
                tcp: None,
                unix: Some(s2),
                unix_mode: None,
            },
        )
        .expect("start")
    });
    let mut c = connect(&Address::Unix(sock.clone()), policy(5));
    c.put_tensor("x", &tensor(5, 2)).expect("put");
    assert_eq!(c.get_tensor("x").expect("get"), tensor(5, 2));
    started.join().expect("server").stop().expect("stop");
    remove(&dir);
}

#[test]
fn the_policy_comes_from_insitu_or_smartredis_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        RetryPolicy::from_vars(vars(&[])).expect("defaults"),
        RetryPolicy::default()
    );
    let p = RetryPolicy::from_vars(vars(&[
        ("SR_CONN_TIMEOUT", "7"),
        ("SR_CONN_INTERVAL", "15"),
        ("SR_CMD_TIMEOUT", "30"),
        ("INSITU_CMD_TIMEOUT", "2"),
        ("INSITU_CMD_INTERVAL", "5"),
        ("SR_SOCKET_TIMEOUT", "9"),
        ("INSITU_REPLY_SPIN_US", "0"),
    ]))
    .expect("policy");
    assert_eq!(
        p,
        RetryPolicy {
            conn_timeout: Duration::from_secs(7),
            conn_interval: Duration::from_millis(15),
            cmd_timeout: Duration::from_secs(2),
            cmd_interval: Duration::from_millis(5),
            socket_timeout: Duration::from_secs(9),
            reply_spin: Duration::ZERO,
        }
    );
    let e = RetryPolicy::from_vars(vars(&[("SR_CMD_TIMEOUT", "1.5")])).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR SR_CMD_TIMEOUT must be a whole number of seconds, not '1.5'"
    );
    let e = RetryPolicy::from_vars(vars(&[("INSITU_REPLY_SPIN_US", "-5")])).unwrap_err();
    assert_eq!(
        e.text(),
        "ERR INSITU_REPLY_SPIN_US must be a whole number of microseconds, not '-5'"
    );
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
