//! The KServe v2 gRPC front end in process, with the generated tonic client: every
//! reference case of the test models through ModelInfer (raw contents), a model stored
//! through the engine's typed API served over gRPC, and the connection bound (a front
//! end serves at most `maxclients` connections; the next waits until one closes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_close, model_cases, models_dir};
use insitu::engine::{EngineConfig, PortSetting, ServingConfig};
use insitu::kserve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use insitu::kserve::proto::{model_infer_request, ModelInferRequest, ServerReadyRequest};
use insitu::kserve::{tensors, Frontends};
use insitu::model::ModelSpec;
use insitu::{Engine, Tensor};

fn config(maxclients: usize) -> EngineConfig {
    EngineConfig {
        maxclients,
        serving: ServingConfig {
            grpc_port: PortSetting::Port(0),
            http_port: PortSetting::Off,
            metrics_port: PortSetting::Off,
            ..ServingConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn request(model: &str, inputs: &[(&str, &Tensor)]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.into(),
        inputs: inputs
            .iter()
            .map(|(name, t)| model_infer_request::InferInputTensor {
                name: (*name).into(),
                datatype: tensors::datatype(t.dtype()).into(),
                shape: t.shape().iter().map(|&d| d as i64).collect(),
                ..Default::default()
            })
            .collect(),
        raw_input_contents: inputs
            .iter()
            .map(|(_, t)| tensors::to_raw(t).expect("raw"))
            .collect(),
        ..Default::default()
    }
}

async fn store(engine: &Arc<Engine>, key: &str, onnx: Vec<u8>) {
    let spec = ModelSpec {
        backend: "ONNX".into(),
        device: insitu::model::Device::Cpu(None),
        tag: "".into(),
        batchsize: 0,
        minbatchsize: 0,
        minbatchtimeout: 0,
    };
    engine
        .store_model(key.to_string().into(), spec, onnx.into())
        .expect("store")
        .finish()
        .await
        .expect("stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_cases_over_grpc_equal_onnxruntime() {
    let Some(dir) = models_dir() else { return };
    let engine = Arc::new(Engine::new(config(100)));
    let fe = Frontends::start(engine.clone()).await.expect("start");
    let addr = fe.grpc.expect("grpc bound");
    let mut c = GrpcInferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    for name in ["mlp", "two_io", "int64", "conv", "symbolic_dims"] {
        let (file, cases) = model_cases(&dir, name);
        store(&engine, name, std::fs::read(file).expect("model")).await;
        let loaded = engine.model(name.as_bytes()).expect("model");
        let in_names: Vec<String> = loaded
            .runner
            .inputs()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let out_specs = loaded.runner.outputs().to_vec();
        for (k, case) in cases.iter().enumerate() {
            let inputs: Vec<(&str, &Tensor)> = in_names
                .iter()
                .map(String::as_str)
                .zip(case.inputs.iter())
                .collect();
            let resp = c
                .model_infer(request(name, &inputs))
                .await
                .unwrap_or_else(|e| panic!("{name} case {k}: {e}"))
                .into_inner();
            assert_eq!(resp.model_name, name);
            assert_eq!(resp.model_version, "1");
            assert_eq!(resp.outputs.len(), out_specs.len(), "{name}: every output");
            for ((o, raw), (spec, want)) in resp
                .outputs
                .iter()
                .zip(&resp.raw_output_contents)
                .zip(out_specs.iter().zip(&case.outputs))
            {
                assert_eq!(o.name, spec.name);
                let shape: Vec<usize> = o.shape.iter().map(|&d| d as usize).collect();
                let dtype = tensors::dtype(&o.datatype, &o.name).expect("datatype");
                let got = tensors::from_raw(dtype, &shape, raw.clone(), &o.name).expect("tensor");
                assert_close(&got, want, &format!("{name} case {k} output {}", o.name));
            }
        }
    }
    fe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_serves_at_most_maxclients_connections() {
    let engine = Arc::new(Engine::new(config(1)));
    let fe = Frontends::start(engine.clone()).await.expect("start");
    let url = format!("http://{}", fe.grpc.expect("grpc bound"));
    let mut first = GrpcInferenceServiceClient::connect(url.clone())
        .await
        .expect("connect");
    assert!(
        first
            .server_ready(ServerReadyRequest {})
            .await
            .expect("ready")
            .into_inner()
            .ready
    );
    // A second connection waits in the backlog while the first is open.
    let second = tokio::time::timeout(Duration::from_millis(500), async {
        let mut c = GrpcInferenceServiceClient::connect(url.clone()).await?;
        c.server_ready(ServerReadyRequest {})
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })
    .await;
    assert!(
        second.is_err(),
        "a second connection was served beyond maxclients 1"
    );
    drop(first);
    // Once the first closes, a new one is served.
    let served = tokio::time::timeout(Duration::from_secs(10), async {
        let mut c = GrpcInferenceServiceClient::connect(url.clone())
            .await
            .expect("connect");
        c.server_ready(ServerReadyRequest {})
            .await
            .expect("ready")
            .into_inner()
            .ready
    })
    .await
    .expect("served after the first closed");
    assert!(served);
    fe.stop().await;
}
