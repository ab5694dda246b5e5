#!/usr/bin/env bash
# Example 07: insitu as a KServe v2 inference server for Triton's clients.
#   run.sh INSITU_BIN PYTHON   (PYTHON: with tritonclient[grpc,http], smartredis, onnx)
set -euo pipefail
bin=$1 python=$2
export SR_LOG_LEVEL=QUIET SR_LOG_FILE=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
# A Triton model repository: the heat-step surrogate of example 04, version 1.
mkdir -p "$dir/models/heat/1"
"$python" "$here/../04_heat_surrogate/make_model.py" "$dir/models/heat/1/model.onnx" 0.2
cat > "$dir/models/heat/config.pbtxt" <<'CFG'
name: "heat"
platform: "onnxruntime_onnx"
max_batch_size: 0
instance_group [ { count: 1 kind: KIND_CPU } ]
CFG
read -r resp grpc http metrics < <("$python" -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
"$bin" serve --port "$resp" --unixsocket none --dir "$dir" --log warn \
    --model-repository "$dir/models" --grpc-port "$grpc" --http-port "$http" --metrics-port "$metrics" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
"$python" "$here/client.py" "$resp" "$grpc" "$http" "$metrics"
