#!/usr/bin/env bash
# Builds RedisAI 1.2.7 with its ONNX Runtime backend only, as the peer of the
# comparison harness (./dev.sh compare), in a cache directory outside the checkout.
#
#   benches/redisai/build.sh ORT_LIBRARY [CACHE_DIR]
#
# ORT_LIBRARY is the libonnxruntime.so insitu runs with (the pinned wheel's): RedisAI is
# linked against the same library, so both sides run the same ONNX Runtime.
# On success the last line printed is the path of redisai.so (load it with
# `redis-server --loadmodule`); on failure the last line says why and the exit status is 1.
#
# Sources, each from a local copy when given, else downloaded:
#   RedisAI v1.2.7          REDISAI_SRC (a source tree or a git repository with the tag),
#                           else github.com/RedisAI/RedisAI's tag archive
#   dlpack v0.5_RAI         REDISAI_DLPACK_SRC (RedisAI's fork: DLTensor gains
#                           `elements_length` for string tensors), else github.com/RedisAI/dlpack
#                           (REDISAI_URL / REDISAI_DLPACK_URL: the archives from a mirror)
#   ONNX Runtime headers    Debian's libonnxruntime-dev 1.21 (headers only; checksum pinned)
# RedisAI 1.2.7 was written against ONNX Runtime 1.11's API, which newer libraries keep
# serving; the one change made to its sources: its allocator declares that API version
# (11) instead of the headers' (21), since an allocator declaring 18 or later must
# provide `Reserve`, which RedisAI's does not have.
set -euo pipefail

ORT_LIB="${1:?usage: build.sh ORT_LIBRARY [CACHE_DIR]}"
CACHE="${2:-${XDG_CACHE_HOME:-$HOME/.cache}/insitu/redisai}"
VERSION=v1.2.7
DLPACK=v0.5_RAI
ORT_DEB=pool/main/o/onnxruntime/libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb
ORT_DEB_SHA256=14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

fail() { echo "RedisAI not built: $*"; exit 1; }

[ -f "$ORT_LIB" ] || fail "no ONNX Runtime library at $ORT_LIB"
ORT_LIB="$(readlink -f "$ORT_LIB")"
key="$VERSION onnx-only $(basename "$ORT_LIB") $(stat -c %s "$ORT_LIB")"
out="$CACHE/install"
if [ -f "$out/redisai.so" ] && [ "$(cat "$CACHE/stamp" 2>/dev/null)" = "$key" ]; then
    echo "$out/redisai.so"
    exit 0
fi
for tool in cmake make cc c++ curl tar dpkg-deb; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
rm -rf "$CACHE/src" "$CACHE/deps" "$CACHE/build" "$out"
mkdir -p "$CACHE/src" "$CACHE/deps/dlpack/include/dlpack" "$CACHE/deps/onnxruntime/lib" \
    "$CACHE/deps/onnxruntime/include"

# fetch NAME LOCAL REF URL DEST: a git repository's tree at REF, or a source tree, or
# the archive at URL, unpacked into DEST.
fetch() {
    local name="$1" local_copy="$2" ref="$3" url="$4" dest="$5"
    mkdir -p "$dest"
    if [ -n "$local_copy" ]; then
        if git --git-dir="$local_copy" rev-parse -q --verify "$ref^{commit}" >/dev/null 2>&1; then
            git --git-dir="$local_copy" archive "$ref" | tar -x -C "$dest"
        elif git -C "$local_copy" rev-parse -q --verify "$ref^{commit}" >/dev/null 2>&1; then
            git -C "$local_copy" archive "$ref" | tar -x -C "$dest"
        elif [ -d "$local_copy" ]; then
            cp -a "$local_copy/." "$dest/"
        else
            fail "$name: $local_copy is neither a source tree nor a git repository with $ref"
        fi
    else
        curl -fsSL --connect-timeout 10 --max-time 300 "$url" | tar -xz -C "$dest" --strip-components=1 2>/dev/null \
            || fail "$name: could not download $url (set ${name}_SRC to a local copy)"
    fi
}

fetch REDISAI "${REDISAI_SRC:-}" "$VERSION" \
    "${REDISAI_URL:-https://github.com/RedisAI/RedisAI/archive/refs/tags/$VERSION.tar.gz}" "$CACHE/src"
fetch REDISAI_DLPACK "${REDISAI_DLPACK_SRC:-}" "$DLPACK" \
    "${REDISAI_DLPACK_URL:-https://github.com/RedisAI/dlpack/archive/refs/heads/$DLPACK.tar.gz}" "$CACHE/dlpack"
grep -q elements_length "$CACHE/dlpack/include/dlpack/dlpack.h" \
    || fail "dlpack: $CACHE/dlpack is not RedisAI's fork ($DLPACK)"
cp "$CACHE/dlpack/include/dlpack/dlpack.h" "$CACHE/deps/dlpack/include/dlpack/"

deb="$CACHE/$(basename "$ORT_DEB")"
curl -fsSL --connect-timeout 10 --max-time 300 -o "$deb" "$DEBIAN_MIRROR/$ORT_DEB" \
    || fail "could not download $DEBIAN_MIRROR/$ORT_DEB"
echo "$ORT_DEB_SHA256  $deb" | sha256sum -c --quiet - || fail "$deb: checksum mismatch"
dpkg-deb -x "$deb" "$CACHE/deb"
cp -r "$CACHE/deb/usr/include/onnxruntime/." "$CACHE/deps/onnxruntime/include/"
ln -sf "$ORT_LIB" "$CACHE/deps/onnxruntime/lib/libonnxruntime.so"
ln -sf "$ORT_LIB" "$CACHE/deps/onnxruntime/lib/libonnxruntime.so.1"

allocator="$CACHE/src/src/backends/onnx_allocator/onnx_allocator.cpp"
grep -q "OrtAllocator::version = ORT_API_VERSION;" "$allocator" \
    || fail "$allocator: not RedisAI $VERSION's allocator"
sed -i 's/OrtAllocator::version = ORT_API_VERSION;/OrtAllocator::version = 11;/' "$allocator"

cmake -S "$CACHE/src" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DDEPS_PATH="$CACHE/deps" \
    -DINSTALL_PATH="$out" -DBUILD_TF=OFF -DBUILD_TFLITE=OFF -DBUILD_TORCH=OFF -DBUILD_ORT=ON \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$CACHE/build.log" 2>&1 \
    || fail "cmake failed (see $CACHE/build.log)"
make -C "$CACHE/build" -j"$(nproc)" redisai redisai_onnxruntime >>"$CACHE/build.log" 2>&1 \
    || fail "the build failed (see $CACHE/build.log)"
make -C "$CACHE/build" install >>"$CACHE/build.log" 2>&1 || fail "install failed (see $CACHE/build.log)"
# redis-server loads only files it may execute.
chmod +x "$out/redisai.so" "$out/backends/redisai_onnxruntime/redisai_onnxruntime.so"
echo "$key" >"$CACHE/stamp"
echo "$out/redisai.so"
