#!/usr/bin/env bash
# Build bench_shm_c and bench_shm_f (node-local transfers from C and Fortran).
#   build_shm.sh <cargo target dir>/<profile> <output dir>
set -euo pipefail
lib=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cmake -S "$here/../../ffi-fortran" -B "$out/f" -DINSITU_LIB_DIR="$lib" -DINSITU_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out/f" >/dev/null
gfortran -O2 -std=f2018 -I"$out/f" "$here/bench_shm.f90" "$out/f/libinsitu_fortran.a" -L"$lib" -linsitu -Wl,-rpath,"$lib" -o "$out/bench_shm_f"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$here/../../ffi-c/include" "$here/bench_shm.c" -L"$lib" -linsitu -Wl,-rpath,"$lib" -o "$out/bench_shm_c"
