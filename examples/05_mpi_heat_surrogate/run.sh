#!/usr/bin/env bash
# Example 05: 4 MPI ranks against one server.  run.sh INSITU_BIN EXAMPLE PYTHON MPIEXEC
set -euo pipefail
bin=$1 example=$2 python=$3 mpiexec=$4
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" "$here/../04_heat_surrogate/make_model.py" "$dir/heat.onnx"
# Open MPI refuses root unless told; CI runs as root. Oversubscribe: 2-core machines.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$here/../run_with_server.sh" "$bin" "$mpiexec" --oversubscribe -np 4 "$example" @ADDR@ "$dir/heat.onnx"
