#!/usr/bin/env bash
# 16 MiB put+get from Fortran in both layouts next to the same from C, in process.
#   run.sh <cargo target dir>/<profile>
set -euo pipefail
lib=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S "$here/../../ffi-fortran" -B "$work/f" -DINSITU_LIB_DIR="$lib" -DINSITU_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/f" >/dev/null
gfortran -O2 -std=f2018 -I"$work/f" "$here/bench_layouts.f90" "$work/f/libinsitu_fortran.a" -L"$lib" -linsitu -Wl,-rpath,"$lib" -o "$work/bf"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$here/../../ffi-c/include" "$here/bench_c.c" -L"$lib" -linsitu -Wl,-rpath,"$lib" -o "$work/bc"
f=$("$work/bf"); c=$("$work/bc")
echo "$f"; echo "$c"
nat=$(echo "$f" | awk '/natural/ {print $NF}')
con=$(echo "$f" | awk '/contiguous/ {print $NF}')
cc_=$(echo "$c" | awk '{print $NF}')
awk -v n="$nat" -v k="$con" -v c="$cc_" 'BEGIN {
  printf "ratio vs C: natural %.2fx, contiguous %.2fx (target: contiguous <= 1.0x, within noise)\n", n / c, k / c }'
