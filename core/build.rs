//! Compile the KServe v2 protocol (proto/inference.proto) into the gRPC service and
//! messages of `kserve::proto`, with the protoc binary protoc-bin-vendored carries.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/inference.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // bytes fields as `Bytes`: a request's raw tensors are shared, not copied.
        .bytes(".")
        .compile_protos(&["proto/inference.proto"], &["proto"])?;
    Ok(())
}
