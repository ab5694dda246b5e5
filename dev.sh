#!/usr/bin/env bash
# insitu developer entry point.
#
#   ./dev.sh serve   set everything up, build (release) and run the server:
#                    tcp://127.0.0.1:6780 and unix:///tmp/insitu.sock
#   ./dev.sh test    set everything up and run the whole test suite
#   ./dev.sh bench   run the benchmarks (side by side, ratios) [--quick]
#   ./dev.sh compare the comparison harness vs redis-server, memory copy and raw ONNX
#                    Runtime: regenerates BENCHMARKS.md and benches/plots/ [--quick]
#   ./dev.sh setup   only set up: the Python virtualenv (.venv) with pinned packages and
#                    the insitu Python package
#   ./dev.sh fuzz [S] run every fuzz target for S seconds (default 600)
#
# Honours CARGO_TARGET_DIR and PIP_CACHE_DIR (CI points both outside the clone).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
# pyo3 (the Python package's crate) builds against the virtualenv's interpreter.
export PYO3_PYTHON="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

need_root_apt() {
    # Install Debian packages when missing (root, non-interactive), e.g. on a fresh CI box.
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        die "missing Debian packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})"
    fi
}

find_python() {
    # SmartRedis 0.6.1 wheels exist for CPython 3.9-3.11.
    for py in "${INSITU_SETUP_PYTHON:-}" python3.11 python3.10 python3.9 python3; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null || continue
        if "$py" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] < (3, 12)))'; then
            echo "$py"; return 0
        fi
    done
    return 1
}

setup() {
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
    local py
    if ! py=$(find_python); then
        need_root_apt python3 python3-venv python3-pip
        py=$(find_python) || die "need Python 3.9-3.11 for smartredis==0.6.1; set INSITU_SETUP_PYTHON"
    fi
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] >= (3, 12))'; then
        log "creating $VENV with $py"
        rm -rf "$VENV"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            need_root_apt python3-venv
            "$py" -m venv "$VENV"
        fi
    fi
    if ! cmp -s server/tests/requirements.txt "$VENV/.requirements" 2>/dev/null; then
        log "installing Python test packages"
        "$VENV/bin/python" -m pip install -q -r server/tests/requirements.txt
        cp server/tests/requirements.txt "$VENV/.requirements"
    fi
    # SmartSim in a virtualenv of its own: it pins protobuf 3, which onnx cannot use.
    local ssvenv="$ROOT/.venv-smartsim"
    if ! cmp -s server/tests/smartsim/requirements.txt "$ssvenv/.requirements" 2>/dev/null; then
        log "installing SmartSim (for the SmartSim tests) into $ssvenv"
        rm -rf "$ssvenv"
        "$py" -m venv "$ssvenv"
        "$ssvenv/bin/python" -m pip install -q -r server/tests/smartsim/requirements.txt
        cp server/tests/smartsim/requirements.txt "$ssvenv/.requirements"
    fi
}

target_dir() { echo "${CARGO_TARGET_DIR:-$ROOT/target}"; }

# The Python package (python/): built by maturin with the shared cargo target dir and
# installed into the virtualenv in editable mode. $1: --release or nothing (debug).
python_package() {
    log "building the insitu Python package ${1:-(debug)}"
    (cd python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop -q ${1:-} >/dev/null)
    "$VENV/bin/python" -c 'import insitu' || die "the insitu Python package does not import"
}

# Record where the pinned onnxruntime wheel keeps its library: insitu is built with this
# path as its default (ORT_DYLIB_PATH still overrides it at run time).
record_ort() {
    local lib
    lib=$("$VENV/bin/python" -c 'import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))[-1])') \
        || die "the onnxruntime wheel in $VENV has no library"
    export INSITU_ORT_DYLIB="$lib"
}

# Build the test models (committed generator, outputs under the target dir).
gen_models() {
    export INSITU_TEST_MODELS
    INSITU_TEST_MODELS="$(target_dir)/test-models"
    log "generating test models in $INSITU_TEST_MODELS"
    "$VENV/bin/python" core/tests/models/gen_models.py "$INSITU_TEST_MODELS"
}

# cargo-fuzz targets (core/fuzz) on the committed corpus, each for $1 seconds. cargo-fuzz
# needs unstable rustc flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
FUZZ_TARGETS="resp_request resp_reply commands tensor_decode dataset_meta persisted_files kserve"
fuzz_run() {
    local secs=$1 t scratch
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2 -q
    for t in $FUZZ_TARGETS; do
        scratch=$(mktemp -d)
        if ! (cd core/fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$(target_dir)/fuzz" \
                cargo fuzz run "$t" "$scratch" "corpus/$t" -- -max_total_time="$secs" \
                -rss_limit_mb=2048 >"$scratch.log" 2>&1); then
            tail -40 "$scratch.log" >&2
            die "fuzz target $t failed: the input is in core/fuzz/artifacts/$t"
        fi
        grep -h "DONE" "$scratch.log" | sed "s/^/  $t: /" >&2 || true
        rm -rf "$scratch" "$scratch.log"
    done
}

cmd_serve() {
    setup
    record_ort
    log "building (release)"
    cargo build --release -p insitu-server
    python_package --release
    log "starting insitu: tcp://127.0.0.1:6780, unix:///tmp/insitu.sock (Ctrl-C stops)"
    exec "$(target_dir)/release/insitu" serve "$@"
}

cmd_test() {
    setup
    record_ort
    gen_models
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    (cd core/fuzz && cargo fmt -- --check \
        && CARGO_TARGET_DIR="$(target_dir)/fuzz-check" cargo clippy --all-targets -- -D warnings)
    log "cargo build"
    cargo build
    # redis-cli forms and checks clusters of insitu nodes in the Rust cluster tests too.
    command -v redis-cli >/dev/null || need_root_apt redis-server redis-tools
    log "cargo test ($(cargo pkgid redis | sed 's/.*#/the Rust client: /'))"
    INSITU_PYTHON="$VENV/bin/python" INSITU_REQUIRE_PYTHON=1 cargo test
    log "fuzz smoke run: every cargo-fuzz target ${INSITU_FUZZ_SECONDS:-8} s on the committed corpus"
    fuzz_run "${INSITU_FUZZ_SECONDS:-8}"
    log "ctest (C API, Fortran module)"
    command -v cmake >/dev/null || need_root_apt cmake
    command -v gfortran >/dev/null || need_root_apt gfortran
    command -v pkg-config >/dev/null || need_root_apt pkg-config
    command -v mpirun >/dev/null || need_root_apt openmpi-bin libopenmpi-dev
    # CMake build trees stay in the checkout (build/): a CMake cache names its source
    # directory, so one shared with another clone (as CARGO_TARGET_DIR may be) breaks.
    for part in ffi-c ffi-fortran; do
        cmake -S "$part" -B "$ROOT/build/cmake-$part" -DINSITU_LIB_DIR="$(target_dir)/debug" >/dev/null
        cmake --build "$ROOT/build/cmake-$part" >/dev/null
        ctest --test-dir "$ROOT/build/cmake-$part" --output-on-failure
    done
    python_package
    log "ctest (examples)"
    cmake -S examples -B "$ROOT/build/cmake-examples" -DINSITU_LIB_DIR="$(target_dir)/debug" \
        -DINSITU_BIN="$(target_dir)/debug/insitu" -DINSITU_PYTHON="$VENV/bin/python" >/dev/null
    cmake --build "$ROOT/build/cmake-examples" >/dev/null
    ctest --test-dir "$ROOT/build/cmake-examples" --output-on-failure
    log "pytest (SmartRedis, redis-py, valkey-py, redis-cli compatibility)"
    command -v redis-benchmark >/dev/null || need_root_apt redis-server redis-tools
    INSITU_BIN="$(target_dir)/debug/insitu" "$VENV/bin/python" -m pytest -q server/tests/smartredis
    log "comparison harness: a quick smoke run (asserts nothing about time)"
    command -v redis-benchmark >/dev/null || need_root_apt redis-server redis-tools
    INSITU_BIN="$(target_dir)/debug/insitu" INSITU_PYTHON="$VENV/bin/python" "$(target_dir)/debug/compare" --quick \
        --out "$ROOT/build/compare-smoke.json" >/dev/null
    "$VENV/bin/python" benches/report.py "$ROOT/build/compare-smoke.json" \
        "$ROOT/build/compare-smoke/BENCHMARKS.md" "$ROOT/build/compare-smoke/plots"
    "$VENV/bin/python" benches/check_report.py "$ROOT/build/compare-smoke"
    log "pytest (the insitu Python package)"
    INSITU_BIN="$(target_dir)/debug/insitu" "$VENV/bin/python" -m pytest -q python/tests
}

cmd_bench() {
    setup
    record_ort
    gen_models
    command -v redis-server >/dev/null || need_root_apt redis-server
    cargo build --release -p insitu-server -p insitu-ffi
    export INSITU_BIN="$(target_dir)/release/insitu"
    log "cargo bench: inference vs raw ONNX Runtime"
    cargo bench -p insitu-benches --bench inference -- "$@"
    log "cargo bench: coupling modes vs memory copy, redis-server and raw ONNX Runtime"
    cargo bench -p insitu-benches --bench coupling -- "$@"
    log "cargo bench: the Fortran <-> C layout transpose vs a memory copy"
    cargo bench -p insitu-benches --bench layout -- "$@"
    log "Fortran put+get, natural and contiguous layouts, vs the same from C"
    bash benches/fortran/run.sh "$(target_dir)/release"
    python_package --release
    log "Python: insitu vs the SmartRedis Python client (same server) and onnxruntime"
    "$VENV/bin/python" benches/python/bench_python.py
}

cmd_compare() {
    setup
    record_ort
    gen_models
    command -v redis-benchmark >/dev/null || need_root_apt redis-server redis-tools
    # The C and Fortran transfer rows build small programs against the C library.
    command -v cmake >/dev/null || need_root_apt cmake
    command -v gfortran >/dev/null || need_root_apt gfortran
    log "building (release)"
    # Two builds: `--bin compare` would filter the server package's binary out too.
    cargo build --release -p insitu-server -p insitu-ffi
    cargo build --release -p insitu-benches --bin compare
    python_package --release
    log "RedisAI 1.2.7 (ONNX backend) as the peer, built once into a cache outside the checkout"
    local rai
    rai=$(bash benches/redisai/build.sh "$INSITU_ORT_DYLIB" 2>"$(target_dir)/redisai-build.err" | tail -1) || true
    if [ -f "$rai" ]; then
        export INSITU_REDISAI_MODULE="$rai"
    else
        export INSITU_REDISAI_NOTE="${rai:-RedisAI not built: see $(target_dir)/redisai-build.err}"
        log "$INSITU_REDISAI_NOTE: its rows are left out"
    fi
    local out
    out="$(target_dir)/compare.json"
    INSITU_BIN="$(target_dir)/release/insitu" INSITU_PYTHON="$VENV/bin/python" "$(target_dir)/release/compare" --out "$out" "$@"
    "$VENV/bin/python" benches/report.py "$out" BENCHMARKS.md benches/plots \
        --command "./dev.sh compare${1:+ $*}"
}

case "${1:-}" in
    serve) shift; cmd_serve "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    compare) shift; cmd_compare "$@" ;;
    fuzz) shift; fuzz_run "${1:-600}" ;;
    test) cmd_test ;;
    setup) setup; record_ort; python_package --release ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
esac
