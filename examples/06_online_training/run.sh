#!/usr/bin/env bash
# Example 06: a server, the Python trainer in the background, the Fortran simulation.
#   run.sh INSITU_BIN EXAMPLE PYTHON
set -euo pipefail
bin=$1 example=$2 python=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
sock="$dir/s.sock"
"$bin" serve --port none --unixsocket "$sock" --dir "$dir" --log warn &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
# The initial surrogate: a guess (diffusivity 0.05; the simulation's is 0.2).
"$python" "$here/../04_heat_surrogate/make_model.py" "$dir/guess.onnx" 0.05
"$python" "$here/trainer.py" "unix://$sock" &
trainer=$!
"$example" "unix://$sock" "$dir/guess.onnx"
wait $trainer
