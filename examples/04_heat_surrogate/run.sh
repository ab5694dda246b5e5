#!/usr/bin/env bash
# Example 04 in process and against a server: both must print the same checksum.
#   run.sh INSITU_BIN EXAMPLE PYTHON
set -euo pipefail
bin=$1 example=$2 python=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" "$here/make_model.py" "$dir/heat.onnx"
"$example" inproc "$dir/heat.onnx" | tee "$dir/inproc.txt"
"$here/../run_with_server.sh" "$bin" "$example" @ADDR@ "$dir/heat.onnx" | tee "$dir/server.txt"
a=$(grep checksum "$dir/inproc.txt"); b=$(grep checksum "$dir/server.txt")
if [ "$a" != "$b" ]; then echo "checksums differ: $a vs $b"; exit 1; fi
echo "example 04: identical results in process and through a server"
