#!/usr/bin/env bash
# Example 06: a server, the Python trainer in the background, the Fortran simulation.
#   run.sh INSITU_BIN EXAMPLE PYTHON
set -euo pipefail
bin=$1 example=$2 python=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The initial surrogate: a guess (diffusivity 0.05; the simulation's is 0.2).
"$python" "$here/../04_heat_surrogate/make_model.py" "$dir/guess.onnx" 0.05
# shellcheck disable=SC2016 # expanded by the inner shell
"$here/../run_with_server.sh" "$bin" bash -c \
    '"$1" "$2" "$4" & trainer=$!; "$3" "$4" "$5"; wait $trainer' \
    run "$python" "$here/trainer.py" "$example" @ADDR@ "$dir/guess.onnx"
