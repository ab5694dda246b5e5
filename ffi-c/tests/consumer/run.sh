#!/usr/bin/env bash
# The package as a user gets it: the one-command CMake build of the repository at ROOT
# (cargo builds libinsitu inside it), installed into a scratch prefix; then consumers in
# C, C++ and Fortran built against it with find_package(insitu) and with pkg-config.
#   run.sh ROOT CONSUMER_SRC [LIB_DIR]
# With LIB_DIR (a cargo output directory, <target>/debug or <target>/release) the build
# reuses that cargo target directory and profile, so cargo has little or nothing to do;
# without it cargo builds from scratch in the build directory.
set -euo pipefail
root=$1 src=$2 type=Release
if [ -n "${3:-}" ]; then
    export CARGO_TARGET_DIR
    CARGO_TARGET_DIR=$(cd "$3/.." && pwd)
    [ "$(basename "$3")" = debug ] && type=Debug
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=$type >/dev/null
cmake --build "$work/build" >/dev/null
cmake --install "$work/build" --prefix "$prefix" >/dev/null
cmake -S "$src" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$work/consumer/consumer_c"
LD_LIBRARY_PATH="$prefix/lib" "$work/consumer/consumer_f"
"$work/consumer/consumer_cxx"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc "$src/main.c" $(pkg-config --cflags --libs insitu) -o "$work/pc_c"
"$work/pc_c"
c++ -std=c++20 "$src/main.cpp" $(pkg-config --cflags --libs insitu-cxx) -o "$work/pc_cxx"
"$work/pc_cxx"
gfortran -std=f2018 "$src/main.f90" $(pkg-config --cflags --libs insitu-fortran) -o "$work/pc_f"
"$work/pc_f"
echo "consumer: C, C++ and Fortran OK via find_package and pkg-config"
