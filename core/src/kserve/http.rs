//! KServe v2 over HTTP/REST, served by axum: the same endpoints as gRPC in JSON, with the
//! binary tensor data extension (`Inference-Header-Content-Length`: a JSON header, then
//! each tensor's raw bytes), Triton's repository and shared-memory endpoints, and
//! `/metrics` on the metrics port.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value as Json};
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

use super::conn::Counted;
use super::proto;
use super::service::{
    self, not_uint, shm_ref, timeout_param, InferCall, InputData, Kserve, OutputWanted, Params,
    Source,
};
use super::status::{invalid, KsError, KsResult};
use super::{metrics, tensors};

const HEADER_LENGTH: &str = "inference-header-content-length";

type Shared = State<Arc<Kserve>>;

impl IntoResponse for KsError {
    fn into_response(self) -> Response {
        let status = match self.code {
            tonic::Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            tonic::Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            tonic::Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

fn ok_json(v: Json) -> Response {
    axum::Json(v).into_response()
}

fn parse_json(body: &[u8]) -> KsResult<Json> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Object(Map::new()));
    }
    serde_json::from_slice(body)
        .map_err(|e| invalid(format!("malformed JSON in the request body: {e}")))
}

fn status(ready: bool) -> StatusCode {
    if ready {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn ready(State(k): Shared) -> StatusCode {
    status(k.is_ready())
}

async fn server_metadata() -> Response {
    let m = service::server_metadata();
    ok_json(json!({ "name": m.name, "version": m.version, "extensions": m.extensions }))
}

fn metadata_json(k: &Kserve, name: &str, version: &str) -> KsResult<Json> {
    let m = k.metadata(name, version)?;
    let io = |t: &[proto::model_metadata_response::TensorMetadata]| -> Json {
        t.iter()
            .map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape }))
            .collect()
    };
    Ok(json!({
        "name": m.name, "versions": m.versions, "platform": m.platform,
        "inputs": io(&m.inputs), "outputs": io(&m.outputs),
    }))
}

async fn model_metadata(State(k): Shared, Path(name): Path<String>) -> Response {
    metadata_json(&k, &name, "")
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn model_metadata_v(State(k): Shared, Path((name, v)): Path<(String, String)>) -> Response {
    metadata_json(&k, &name, &v)
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn model_ready(State(k): Shared, Path(name): Path<String>) -> StatusCode {
    status(k.model(&name, "").is_ok())
}

async fn model_ready_v(State(k): Shared, Path((name, v)): Path<(String, String)>) -> StatusCode {
    status(k.model(&name, &v).is_ok())
}

fn config_json(k: &Kserve, name: &str, version: &str) -> KsResult<Json> {
    let c = k.model_config(name, version)?;
    let io = |name: &str, t: i32, dims: &[i64]| json!({ "name": name, "data_type": tensors::config_type_name(t), "dims": dims });
    let mut out = json!({
        "name": c.name,
        "platform": c.platform,
        "backend": c.backend,
        "version_policy": { "latest": { "num_versions": 1 } },
        "max_batch_size": c.max_batch_size,
        "input": c.input.iter().map(|i| io(&i.name, i.data_type, &i.dims)).collect::<Vec<_>>(),
        "output": c.output.iter().map(|o| io(&o.name, o.data_type, &o.dims)).collect::<Vec<_>>(),
        "instance_group": c.instance_group.iter().map(|g| json!({
            "name": g.name,
            "count": g.count,
            "kind": if g.kind == proto::model_instance_group::Kind::Gpu as i32 { "KIND_GPU" } else { "KIND_CPU" },
        })).collect::<Vec<_>>(),
        "default_model_filename": c.default_model_filename,
    });
    if let Some(proto::model_config::SchedulingChoice::DynamicBatching(d)) = c.scheduling_choice {
        out["dynamic_batching"] = json!({
            "preferred_batch_size": d.preferred_batch_size,
            "max_queue_delay_microseconds": d.max_queue_delay_microseconds,
        });
    }
    Ok(out)
}

async fn model_config(State(k): Shared, Path(name): Path<String>) -> Response {
    config_json(&k, &name, "")
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn model_config_v(State(k): Shared, Path((name, v)): Path<(String, String)>) -> Response {
    config_json(&k, &name, &v)
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

fn stats_json(k: &Kserve, name: &str, version: &str) -> KsResult<Json> {
    let s = k.statistics(name, version)?;
    let d = |d: &Option<proto::StatisticDuration>| {
        let d = d.unwrap_or_default();
        json!({ "count": d.count, "ns": d.ns })
    };
    let stats: Vec<Json> = s
        .model_stats
        .iter()
        .map(|m| {
            let i = m.inference_stats.unwrap_or_default();
            json!({
                "name": m.name, "version": m.version,
                "last_inference": m.last_inference,
                "inference_count": m.inference_count,
                "execution_count": m.execution_count,
                "inference_stats": {
                    "success": d(&i.success), "fail": d(&i.fail), "queue": d(&i.queue),
                    "compute_input": d(&i.compute_input), "compute_infer": d(&i.compute_infer),
                    "compute_output": d(&i.compute_output),
                    "cache_hit": d(&i.cache_hit), "cache_miss": d(&i.cache_miss),
                },
                "batch_stats": [],
            })
        })
        .collect();
    Ok(json!({ "model_stats": stats }))
}

async fn all_stats(State(k): Shared) -> Response {
    stats_json(&k, "", "")
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn model_stats(State(k): Shared, Path(name): Path<String>) -> Response {
    stats_json(&k, &name, "")
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn model_stats_v(State(k): Shared, Path((name, v)): Path<(String, String)>) -> Response {
    stats_json(&k, &name, &v)
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

/// A JSON `parameters` object (or none).
struct JsonParams<'a>(Option<&'a Json>);

impl Params for JsonParams<'_> {
    fn string(&self, key: &str) -> Option<String> {
        self.0?.get(key)?.as_str().map(String::from)
    }

    fn uint(&self, key: &str) -> KsResult<Option<u64>> {
        match self.0.and_then(|p| p.get(key)) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| not_uint(key)),
        }
    }
}

/// Parse an HTTP inference request: the JSON header and the binary data after it.
fn call_of(
    name: String,
    version: String,
    headers: &HeaderMap,
    body: Bytes,
) -> KsResult<(InferCall, bool, bool)> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if enc.as_bytes() != b"identity" {
            return Err(invalid(format!(
                "Content-Encoding '{}' is not supported; send the request uncompressed",
                String::from_utf8_lossy(enc.as_bytes())
            )));
        }
    }
    let header_len = match headers.get(HEADER_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n <= body.len())
            .ok_or_else(|| {
                invalid("Inference-Header-Content-Length is not a length within the body")
            })?,
        None => body.len(),
    };
    let mut req = parse_json(&body[..header_len])?;
    let mut binary = body.slice(header_len..);
    // The inputs are taken out of the request: their JSON data moves into the call.
    let inputs_json = match req.get_mut("inputs").map(Json::take) {
        Some(Json::Array(items)) => items,
        _ => Vec::new(),
    };
    let params = req.get("parameters");
    let binary_output = params
        .and_then(|p| p.get("binary_data_output"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let mut inputs = Vec::new();
    for mut i in inputs_json {
        let iname = i
            .get("name")
            .and_then(Json::as_str)
            .map(String::from)
            .ok_or_else(|| invalid("an input has no name"))?;
        let what = format!("input '{iname}'");
        let datatype = i
            .get("datatype")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let shape: Vec<i64> = i
            .get("shape")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|d| {
                        d.as_i64()
                            .ok_or_else(|| invalid(format!("{what}: shape must hold integers")))
                    })
                    .collect::<KsResult<_>>()
            })
            .transpose()?
            .unwrap_or_default();
        let p = JsonParams(i.get("parameters"));
        let source = if let Some((region, offset, size)) = shm_ref(&p, &what)? {
            Source::Shm(region, offset, size)
        } else if let Some(key) = p.string("tensor_key") {
            Source::Key(key)
        } else if let Some(n) = p.uint("binary_data_size")? {
            let n = n as usize;
            if n > binary.len() {
                return Err(invalid(format!(
                    "{what}: binary_data_size {n} is beyond the {} bytes left in the body",
                    binary.len()
                )));
            }
            let raw = binary.split_to(n);
            Source::Raw(raw)
        } else {
            match i.get_mut("data").map(Json::take) {
                Some(data) => Source::Json(data),
                None => return Err(invalid(format!("{what} has no data"))),
            }
        };
        inputs.push(InputData {
            name: iname,
            datatype,
            shape,
            source,
        });
    }
    if !binary.is_empty() {
        return Err(invalid(format!(
            "{} bytes of binary data follow the inputs' binary_data_size",
            binary.len()
        )));
    }
    let asked = req
        .get("outputs")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let all_outputs = asked.is_empty();
    let outputs = asked
        .iter()
        .map(|o| {
            let oname = o
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| invalid("an output has no name"))?;
            let p = JsonParams(o.get("parameters"));
            if p.0.and_then(|p| p.get("classification")).is_some() {
                return Err(invalid(format!(
                    "output '{oname}': the classification extension is not supported"
                )));
            }
            Ok(OutputWanted {
                name: oname.to_string(),
                shm: shm_ref(&p, &format!("output '{oname}'"))?,
                key: p.string("tensor_key"),
                binary: p
                    .0
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Json::as_bool)
                    .unwrap_or(binary_output),
            })
        })
        .collect::<KsResult<Vec<_>>>()?;
    let timeout = timeout_param(&JsonParams(params))?;
    let call = InferCall {
        model: name,
        version,
        id: req
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string(),
        inputs,
        outputs,
        timeout,
    };
    Ok((call, all_outputs, binary_output))
}

async fn infer_call(
    k: &Kserve,
    name: String,
    version: String,
    headers: &HeaderMap,
    body: Bytes,
) -> KsResult<Response> {
    let (call, all_outputs, binary_output) = call_of(name, version, headers, body)?;
    let done = k.infer(call).await?;
    let mut outputs = Vec::with_capacity(done.outputs.len());
    let mut blobs = Vec::new();
    for o in &done.outputs {
        let binary = if all_outputs {
            binary_output
        } else {
            o.wanted.binary
        };
        let mut out = json!({
            "name": o.wanted.name,
            "datatype": tensors::datatype(o.tensor.dtype()),
            "shape": o.tensor.shape(),
        });
        if let Some((region, offset, size)) = &o.wanted.shm {
            out["parameters"] = json!({
                "shared_memory_region": region,
                "shared_memory_byte_size": size,
                "shared_memory_offset": offset,
            });
        } else if binary {
            let raw = tensors::to_raw(&o.tensor)?;
            out["parameters"] = json!({ "binary_data_size": raw.len() });
            blobs.push(raw);
        } else {
            out["data"] = tensors::to_json(&o.tensor)?;
        }
        outputs.push(out);
    }
    let mut head =
        json!({ "model_name": done.model, "model_version": done.version, "outputs": outputs });
    if !done.id.is_empty() {
        head["id"] = json!(done.id);
    }
    let head = serde_json::to_vec(&head).map_err(|e| KsError {
        code: tonic::Code::Internal,
        message: e.to_string(),
    })?;
    if blobs.is_empty() {
        return Ok(([(header::CONTENT_TYPE, "application/json")], head).into_response());
    }
    let mut body = Vec::with_capacity(head.len() + blobs.iter().map(|b| b.len()).sum::<usize>());
    body.extend_from_slice(&head);
    for b in &blobs {
        body.extend_from_slice(b);
    }
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(HEADER_LENGTH, HeaderValue::from(head.len()));
    Ok(r)
}

async fn infer(
    State(k): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    infer_call(&k, name, String::new(), &headers, body)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn infer_v(
    State(k): Shared,
    Path((name, v)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    infer_call(&k, name, v, &headers, body)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn repository_index(State(k): Shared, body: Bytes) -> Response {
    let req = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let ready = req.get("ready").and_then(Json::as_bool).unwrap_or(false);
    let index: Vec<Json> = k
        .repository
        .index(&k.engine, ready)
        .into_iter()
        .map(|e| {
            let mut m = json!({ "name": e.name, "state": e.state });
            if !e.version.is_empty() {
                m["version"] = json!(e.version);
            }
            if !e.reason.is_empty() {
                m["reason"] = json!(e.reason);
            }
            m
        })
        .collect();
    ok_json(Json::Array(index))
}

/// Base64 (standard alphabet), as a load request carries files.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

async fn load(State(k): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let r: KsResult<()> = async {
        let req = parse_json(&body)?;
        let mut config = None;
        let mut files = Vec::new();
        if let Some(p) = req.get("parameters").and_then(Json::as_object) {
            for (key, v) in p {
                if key == "config" {
                    config = Some(
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    );
                } else if key.starts_with("file:") {
                    let b = v
                        .as_str()
                        .and_then(base64_decode)
                        .ok_or_else(|| invalid(format!("parameter '{key}' must be base64 text")))?;
                    files.push((key.clone(), bytes::Bytes::from(b)));
                }
            }
        }
        k.repository
            .load(&k.engine, &name, config.as_deref(), &files, true)
            .await
    }
    .await;
    r.map(|()| StatusCode::OK.into_response())
        .unwrap_or_else(|e| e.into_response())
}

async fn unload(State(k): Shared, Path(name): Path<String>) -> Response {
    k.repository
        .unload(&k.engine, &name, true)
        .await
        .map(|()| StatusCode::OK.into_response())
        .unwrap_or_else(|e| e.into_response())
}

fn regions_json(k: &Kserve, name: &str) -> KsResult<Json> {
    Ok(k.regions
        .status(name)?
        .iter()
        .map(|r| json!({ "name": r.name, "key": r.key, "offset": r.offset, "byte_size": r.byte_size }))
        .collect())
}

async fn shm_status(State(k): Shared) -> Response {
    regions_json(&k, "")
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn shm_region_status(State(k): Shared, Path(name): Path<String>) -> Response {
    regions_json(&k, &name)
        .map(ok_json)
        .unwrap_or_else(|e| e.into_response())
}

async fn shm_register(State(k): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let r: KsResult<()> = (|| {
        let req = parse_json(&body)?;
        let key = req
            .get("key")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("register needs 'key'"))?;
        let p = JsonParams(Some(&req));
        let offset = p.uint("offset")?.unwrap_or(0);
        let size = p
            .uint("byte_size")?
            .ok_or_else(|| invalid("register needs 'byte_size'"))?;
        k.regions
            .register(&name, key, offset, size, k.config.max_shm_regions)
    })();
    r.map(|()| StatusCode::OK.into_response())
        .unwrap_or_else(|e| e.into_response())
}

async fn shm_unregister(State(k): Shared, Path(name): Path<String>) -> StatusCode {
    k.regions.unregister(&name);
    StatusCode::OK
}

async fn shm_unregister_all(State(k): Shared) -> StatusCode {
    k.regions.unregister("");
    StatusCode::OK
}

async fn metrics_text(State(k): Shared) -> Response {
    match metrics::render(&k) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": "Not Found" })),
    )
        .into_response()
}

/// The HTTP/REST routes (`metrics_only`: the metrics port's `/metrics` and health).
pub fn router(k: Arc<Kserve>, metrics_only: bool) -> Router {
    let health = Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready));
    let routes = if metrics_only {
        health.route("/metrics", get(metrics_text))
    } else {
        health
            .route("/v2", get(server_metadata))
            .route("/v2/models/stats", get(all_stats))
            .route("/v2/models/{name}", get(model_metadata))
            .route("/v2/models/{name}/ready", get(model_ready))
            .route("/v2/models/{name}/config", get(model_config))
            .route("/v2/models/{name}/stats", get(model_stats))
            .route(
                "/v2/models/{name}/infer",
                post(infer).layer(CompressionLayer::new()),
            )
            .route(
                "/v2/models/{name}/versions/{version}",
                get(model_metadata_v),
            )
            .route(
                "/v2/models/{name}/versions/{version}/ready",
                get(model_ready_v),
            )
            .route(
                "/v2/models/{name}/versions/{version}/config",
                get(model_config_v),
            )
            .route(
                "/v2/models/{name}/versions/{version}/stats",
                get(model_stats_v),
            )
            .route(
                "/v2/models/{name}/versions/{version}/infer",
                post(infer_v).layer(CompressionLayer::new()),
            )
            .route("/v2/repository/index", post(repository_index))
            .route("/v2/repository/models/{name}/load", post(load))
            .route("/v2/repository/models/{name}/unload", post(unload))
            .route("/v2/systemsharedmemory/status", get(shm_status))
            .route(
                "/v2/systemsharedmemory/region/{name}/status",
                get(shm_region_status),
            )
            .route(
                "/v2/systemsharedmemory/region/{name}/register",
                post(shm_register),
            )
            .route(
                "/v2/systemsharedmemory/region/{name}/unregister",
                post(shm_unregister),
            )
            .route(
                "/v2/systemsharedmemory/unregister",
                post(shm_unregister_all),
            )
    };
    let max = k.config.max_message_bytes;
    routes
        .fallback(not_found)
        // Bodies are decompressed before the limit applies: a small compressed body that
        // inflates past kserve-max-message is refused like a large one.
        .layer(DefaultBodyLimit::max(max))
        .layer(RequestDecompressionLayer::new())
        .with_state(k)
}

/// The connections [`accept_counted`](super::conn::accept_counted) hands over, as axum's listener.
struct Incoming(tokio::sync::mpsc::Receiver<Counted>);

impl axum::serve::Listener for Incoming {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.recv().await {
                Some(c) => {
                    let addr = tonic::transport::server::Connected::connect_info(&c)
                        .remote_addr()
                        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                    return (c, addr);
                }
                // Stopped: graceful shutdown ends the server; accept nothing more.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// Serve HTTP on the connections of `incoming` until `stop` turns true.
pub async fn serve(
    k: Arc<Kserve>,
    incoming: tokio::sync::mpsc::Receiver<Counted>,
    mut stop: watch::Receiver<bool>,
    metrics_only: bool,
) {
    let app = router(k, metrics_only);
    let r = axum::serve(Incoming(incoming), app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
    if let Err(e) = r {
        tracing::warn!("HTTP server stopped: {e}");
    }
}
