#!/usr/bin/env bash
# Install the package from BUILD_DIR into a scratch prefix, then build and run consumers
# (C, C++, Fortran) with find_package(insitu) and with pkg-config.
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$src" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$work/cmake/consumer_c"
LD_LIBRARY_PATH="$prefix/lib" "$work/cmake/consumer_f"
"$work/cmake/consumer_cxx"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc "$src/main.c" $(pkg-config --cflags --libs insitu) -o "$work/pc_c"
c++ -std=c++20 "$src/main.cpp" $(pkg-config --cflags --libs insitu-cxx) -o "$work/pc_cxx"
"$work/pc_cxx"
"$work/pc_c"
c++ -std=c++20 "$src/main.cpp" $(pkg-config --cflags --libs insitu-cxx) -o "$work/pc_cxx"
"$work/pc_cxx"
gfortran -std=f2018 "$src/main.f90" $(pkg-config --cflags --libs insitu-fortran) -o "$work/pc_f"
"$work/pc_f"
echo "consumer: C, C++ and Fortran OK via find_package and pkg-config"
