#!/usr/bin/env bash
# Configures (Release, Ninja) and builds everything into build/ with all cores.
#   TRIDENT_CUDA=AUTO|ON|OFF   build the CUDA ops: AUTO (default) does so wherever nvcc is found
#   TRIDENT_BUILD_DIR=dir      build somewhere else than build/
#   TRIDENT_BUILD_TARGETS=...  build only these targets (default: all)
# Extra arguments go to the CMake configure step, e.g. `bash scripts/build.sh -DTRIDENT_WERROR=OFF`.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"

build_dir=$TRIDENT_BUILD_DIR
cache=$build_dir/CMakeCache.txt
if [ -f "$cache" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
  echo "build: $build_dir/ was configured with another generator than Ninja;" \
       "remove it or set TRIDENT_BUILD_DIR to a new folder" >&2
  exit 1
fi

if command -v ccache >/dev/null; then
  echo "build: compiling through ccache ($(command -v ccache))"
else
  echo "build: ccache not found, compiling without a cache"
fi

configure_log=$(mktemp)
trap 'rm -f "$configure_log"' EXIT
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTRIDENT_CUDA="${TRIDENT_CUDA:-AUTO}" "$@" | tee "$configure_log"
# shellcheck disable=SC2086  # a list of targets
cmake --build "$build_dir" -j "$(nproc)" --target ${TRIDENT_BUILD_TARGETS:-all}

# The CMake configure step says whether it enabled the CUDA ops; show the evidence either way.
if grep -q 'Trident: CUDA ops ON' "$configure_log"; then
  echo "build: CUDA targets built ($(grep -o 'Trident: CUDA ops ON.*' "$configure_log"))"
  echo "build: CUDA objects compiled by nvcc:"
  find "$build_dir" -name '*.cu.o' | sort | sed 's/^/  /'
  ninja -C "$build_dir" -t commands trident_ops_cuda | grep -m 1 -E 'nvcc.* -c ' |
    sed 's/^/build: nvcc command line: /' || true
else
  echo "build: CUDA targets NOT built ($(grep -o 'Trident: CUDA ops OFF.*' "$configure_log" ||
    echo "TRIDENT_CUDA=${TRIDENT_CUDA:-AUTO}"))"
fi
echo "build: done in $build_dir/ (trident binary: $build_dir/launch/trident)"
