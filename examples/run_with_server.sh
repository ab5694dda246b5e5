#!/usr/bin/env bash
# Run an example against a fresh `insitu serve` on a private Unix socket.
#   run_with_server.sh INSITU_BIN COMMAND...   (@ADDR@ in COMMAND becomes the address)
set -euo pipefail
bin=$1; shift
dir=$(mktemp -d)
sock="$dir/s.sock"
"$bin" serve --port none --unixsocket "$sock" --dir "$dir" --log warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.05; done
args=()
for a in "$@"; do args+=("${a//@ADDR@/unix://$sock}"); done
"${args[@]}"
