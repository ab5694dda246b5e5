//! A Redis Cluster of `insitu serve` processes on loopback, formed both ways (a fixed
//! layout from `--cluster-nodes`, and `redis-cli --cluster create` when redis-cli is
//! installed), used by insitu's own client (tensors, datasets, lists, models, polls
//! across shards) and by the `redis` crate's cluster client; a node killed mid-run gives
//! a clear error within the client's timeouts while the other shards keep serving.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cmd, temp_dir};
use insitu::client::{Address, KeyPrefixes, RetryPolicy};
use insitu::protocol::resp::Frame;
use insitu::{Client, Dataset, ModelOptions, Tensor};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, port: u16, extra: &[&str]) -> Node {
    let d = dir.join(port.to_string());
    std::fs::create_dir_all(&d).expect("node dir");
    let child = Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--unixsocket",
            "none",
            "--dir",
        ])
        .arg(&d)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn insitu");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node on {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Node { child, port }
}

fn text(f: Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(b) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("not text: {other:?}"),
    }
}

/// Three nodes of a fixed layout.
fn fixed_cluster(dir: &Path) -> Vec<Node> {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let list = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    ports
        .iter()
        .map(|&p| start(dir, p, &["--cluster-nodes", &list]))
        .collect()
}

fn client_of(nodes: &[Node]) -> Client {
    let list = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect::<Vec<_>>()
        .join(",");
    let policy = RetryPolicy {
        conn_timeout: Duration::from_secs(2),
        cmd_timeout: Duration::from_secs(2),
        socket_timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    Client::connect_with(
        Address::parse(&list).expect("address"),
        KeyPrefixes::default(),
        policy,
    )
    .expect("connect to the cluster")
}

#[test]
fn a_fixed_layout_covers_every_slot_and_agrees_on_every_node() {
    let dir = temp_dir("cluster-fixed");
    let nodes = fixed_cluster(&dir);
    let views: Vec<String> = nodes
        .iter()
        .map(|n| {
            let mut lines: Vec<String> = text(cmd(n.port, &[b"CLUSTER", b"NODES"]))
                .lines()
                .map(|l| {
                    let w: Vec<&str> = l.split(' ').collect();
                    format!("{} {} {}", w[0], w[1], w[8..].join(" "))
                })
                .collect();
            lines.sort();
            lines.join("\n")
        })
        .collect();
    assert!(views.iter().all(|v| *v == views[0]), "{views:?}");
    let info = text(cmd(nodes[0].port, &[b"CLUSTER", b"INFO"]));
    assert!(
        info.starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"),
        "{info}"
    );
    assert!(info.contains("cluster_known_nodes:3\r\n") && info.contains("cluster_size:3\r\n"));
    // Keys of another node's slot are redirected; keys of several slots refused.
    let moved = cmd(nodes[0].port, &[b"GET", b"foo"]); // slot 12182: the third node
    assert_eq!(
        moved,
        Frame::Error(insitu::Error::from_server_text(format!(
            "MOVED 12182 127.0.0.1:{}",
            nodes[2].port
        )))
    );
    let cross = cmd(nodes[0].port, &[b"EXISTS", b"a", b"b"]);
    assert!(
        matches!(&cross, Frame::Error(e) if e.text() == "CROSSSLOT Keys in request don't hash to the same slot"),
        "{cross:?}"
    );
    assert_eq!(cmd(nodes[2].port, &[b"SET", b"foo", b"1"]), Frame::ok());
    assert_eq!(
        cmd(nodes[2].port, &[b"CLUSTER", b"COUNTKEYSINSLOT", b"12182"]),
        Frame::Integer(1)
    );
    assert_eq!(
        cmd(
            nodes[2].port,
            &[b"CLUSTER", b"GETKEYSINSLOT", b"12182", b"10"]
        ),
        Frame::Array(vec![Frame::Bulk("foo".into())])
    );
}

#[test]
fn the_client_routes_tensors_datasets_lists_and_models_across_shards() {
    let dir = temp_dir("cluster-client");
    let nodes = fixed_cluster(&dir);
    let mut c = client_of(&nodes);
    for i in 0..60 {
        let t = Tensor::from_vec(vec![2], vec![i as f32, -(i as f32)]).expect("t");
        c.put_tensor(&format!("t{i}"), &t).expect("put");
    }
    for i in 0..60 {
        let want = Tensor::from_vec(vec![2], vec![i as f32, -(i as f32)]).expect("t");
        assert_eq!(c.get_tensor(&format!("t{i}")).expect("get"), want);
    }
    // Every node holds some of them.
    for n in &nodes {
        let Frame::Integer(k) = cmd(n.port, &[b"DBSIZE"]) else {
            panic!()
        };
        assert!(k > 5, "node {} holds {k} keys", n.port);
    }
    // A rename between slots, and a copy.
    c.rename_tensor("t1", "t2-renamed")
        .expect("rename across slots");
    assert!(!c.tensor_exists("t1").expect("exists"));
    assert_eq!(
        c.get_tensor("t2-renamed")
            .expect("renamed")
            .to_vec::<f32>()
            .expect("f32"),
        vec![1.0, -1.0]
    );
    // Datasets and a list whose entries live on other shards than the list.
    for j in 0..6 {
        let mut d = Dataset::new(format!("ds{j}"));
        d.add_tensor("x", Tensor::from_vec(vec![1], vec![j as i64]).expect("x"));
        d.add_meta_scalar("step", j as i64).expect("meta");
        c.put_dataset(&d).expect("put dataset");
        c.append_to_list("runs", &d).expect("append");
    }
    assert!(c.poll_list_length("runs", 6, 10, 10).expect("poll"));
    let got = c.get_datasets_from_list("runs").expect("list");
    let xs: Vec<i64> = got
        .iter()
        .map(|d| d.get_tensor("x").expect("x").to_vec::<i64>().expect("i64")[0])
        .collect();
    assert_eq!(xs, (0..6).collect::<Vec<i64>>());
    assert!(c.poll_dataset("ds3", 10, 10).expect("poll dataset"));
    c.flush_db().expect("flush every node");
    for n in &nodes {
        assert_eq!(cmd(n.port, &[b"DBSIZE"]), Frame::Integer(0));
    }
}

#[test]
fn models_run_beside_their_inputs_on_every_shard() {
    let Some(models) = std::env::var_os("INSITU_TEST_MODELS") else {
        return;
    };
    let onnx = std::fs::read(Path::new(&models).join("mlp.onnx")).expect("mlp.onnx");
    let dir = temp_dir("cluster-models");
    let nodes = fixed_cluster(&dir);
    let mut c = client_of(&nodes);
    c.set_model("mlp", &onnx, &ModelOptions::default())
        .expect("set_model");
    // Stored on every shard.
    for n in &nodes {
        let f = cmd(n.port, &[b"AI._MODELSCAN"]);
        assert!(
            matches!(&f, Frame::Array(a) if a.len() == 1),
            "{}: {f:?}",
            n.port
        );
    }
    let x = Tensor::from_vec(vec![1, 16], (0..16).map(|i| i as f32 / 16.0).collect()).expect("x");
    let want = c.infer("mlp", std::slice::from_ref(&x)).expect("infer")[0].clone();
    // Inputs and outputs with one hash tag: the run happens on their shard, no copies.
    for tag in ["a", "b", "c", "d", "e"] {
        let (i, o) = (format!("{{{tag}}}.x"), format!("{{{tag}}}.y"));
        c.put_tensor(&i, &x).expect("put");
        c.run_model("mlp", &[&i], &[&o]).expect("run");
        assert_eq!(c.get_tensor(&o).expect("y"), want, "{tag}");
    }
    // Inputs and outputs on different shards: still runs, and no temporary key is left.
    c.put_tensor("x-plain", &x).expect("put");
    c.run_model("mlp", &["x-plain"], &["y-elsewhere"])
        .expect("run across slots");
    assert_eq!(c.get_tensor("y-elsewhere").expect("y"), want);
    let total: i64 = nodes
        .iter()
        .map(|n| match cmd(n.port, &[b"DBSIZE"]) {
            Frame::Integer(k) => k,
            f => panic!("{f:?}"),
        })
        .sum();
    assert_eq!(
        total,
        5 * 2 + 2 + 3,
        "tensors and one model per shard, no temporaries"
    );
    c.delete_model("mlp").expect("delete");
    for n in &nodes {
        assert_eq!(cmd(n.port, &[b"AI._MODELSCAN"]), Frame::Array(vec![]));
    }
}

#[test]
fn the_redis_crate_cluster_client_works_against_insitu() {
    use redis::cluster::ClusterClient;
    use redis::Commands;
    let dir = temp_dir("cluster-redis-crate");
    let nodes = fixed_cluster(&dir);
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect();
    let client = ClusterClient::new(urls).expect("cluster client");
    let mut con = client.get_connection().expect("connection");
    for i in 0..50 {
        let _: () = con.set(format!("k{i}"), i).expect("set");
    }
    for i in 0..50 {
        let v: i64 = con.get(format!("k{i}")).expect("get");
        assert_eq!(v, i);
    }
    let _: () = redis::cmd("AI.TENSORSET")
        .arg("{t}.x")
        .arg("FLOAT")
        .arg(2)
        .arg("VALUES")
        .arg(1.5)
        .arg(2.5)
        .query(&mut con)
        .expect("tensorset");
    let v: Vec<String> = redis::cmd("AI.TENSORGET")
        .arg("{t}.x")
        .arg("VALUES")
        .query(&mut con)
        .expect("tensorget");
    assert_eq!(v, vec!["1.5", "2.5"]);
}

#[test]
fn a_dead_node_is_a_clear_error_and_the_others_keep_serving() {
    let dir = temp_dir("cluster-dead");
    let mut nodes = fixed_cluster(&dir);
    let mut c = client_of(&nodes);
    for i in 0..40 {
        c.put_tensor(
            &format!("k{i}"),
            &Tensor::from_vec(vec![1], vec![i]).expect("t"),
        )
        .expect("put");
    }
    let dead = nodes.remove(1);
    let dead_port = dead.port;
    drop(dead);
    let started = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    for i in 0..40 {
        match c.get_tensor(&format!("k{i}")) {
            Ok(t) => {
                assert_eq!(t.to_vec::<i32>().expect("i32"), vec![i]);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), insitu::ErrorCode::Io, "{e}");
                assert!(
                    e.message().contains(&format!("127.0.0.1:{dead_port}")),
                    "the error names the node: {e}"
                );
                failed += 1;
            }
        }
    }
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "within the client's timeouts"
    );
}

#[test]
fn redis_cli_creates_and_checks_a_cluster_of_insitu_nodes() {
    let Ok(out) = Command::new("redis-cli").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-cli is not installed"
        );
        return;
    };
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let dir = temp_dir("cluster-redis-cli");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<Node> = ports
        .iter()
        .map(|&p| start(&dir, p, &["--cluster-enabled", "yes"]))
        .collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let create = Command::new("timeout")
        .arg("60")
        .args(["redis-cli", "--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create");
    let said = String::from_utf8_lossy(&create.stdout);
    assert!(create.status.success(), "{said}");
    assert!(
        said.contains("[OK] All nodes agree about slots configuration."),
        "{said}"
    );
    assert!(said.contains("[OK] All 16384 slots covered."), "{said}");
    let check = Command::new("timeout")
        .arg("30")
        .args(["redis-cli", "--cluster", "check", &addrs[1]])
        .output()
        .expect("redis-cli --cluster check");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && said.contains("[OK] All 16384 slots covered."),
        "{said}"
    );
    // A restarted node keeps its id and slots (cluster-config-file).
    let id = text(cmd(nodes[0].port, &[b"CLUSTER", b"MYID"]));
    let mut nodes = nodes;
    let first = nodes.remove(0);
    let port = first.port;
    drop(first);
    let back = start(&dir, port, &["--cluster-enabled", "yes"]);
    assert_eq!(text(cmd(back.port, &[b"CLUSTER", b"MYID"])), id);
    let check = Command::new("timeout")
        .arg("30")
        .args(["redis-cli", "--cluster", "check", &addrs[0]])
        .output()
        .expect("redis-cli --cluster check");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("[OK] All 16384 slots covered."), "{said}");
    nodes.push(back);
    let mut c = client_of(&nodes);
    for i in 0..30 {
        c.put_tensor(
            &format!("r{i}"),
            &Tensor::from_vec(vec![1], vec![i]).expect("t"),
        )
        .expect("put");
        assert_eq!(
            c.get_tensor(&format!("r{i}"))
                .expect("get")
                .to_vec::<i32>()
                .expect("i32"),
            vec![i]
        );
    }
}
