#!/usr/bin/env bash
# Starts `trident` under Open MPI on one node or several, with the placement, binding and
# environment a training job needs. Every rank prints its resolved layout at start-up
# ("trident layout: rank=... host=... pp=... dp=... tp=... ep=... edp=... device=...").
#
#   launch/mpirun/trident-mpirun.sh [options] -- <trident command and flags>
#
#   -n, --ranks N         total ranks (default: ranks per node × nodes in the hostfile, else 1)
#   --per-node N          ranks per node (default: N on one node; with a hostfile, the slots
#                         of its first host). Consecutive ranks share a node, so tensor-parallel
#                         groups (innermost in the mesh) stay inside one.
#   --hostfile FILE       one line per node: "node01 slots=8"
#   --bind core|socket|none   process binding (default core; none when ranks oversubscribe
#                         the cores of this machine)
#   --gpu                 forward the NCCL/UCX environment of a GPU cluster (see below)
#   --dry-run             print the mpirun command line instead of running it
#
# Environment: TRIDENT_BIN (default build/launch/trident of this checkout), OMP_NUM_THREADS
# (default 1 per rank); with --gpu: NCCL_SOCKET_IFNAME (default "^lo,docker"), NCCL_IB_HCA,
# NCCL_DEBUG (default WARN), UCX_NET_DEVICES, UCX_TLS, CUDA_DEVICE_MAX_CONNECTIONS (default 1)
# are passed to every rank with -x. As root, --allow-run-as-root is added.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
trident=${TRIDENT_BIN:-$repo_root/build/launch/trident}

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
fail() { echo "trident-mpirun: $*" >&2; exit 2; }

ranks="" per_node="" hostfile="" bind=core gpu=0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks) ranks=${2:?}; shift 2 ;;
    --per-node) per_node=${2:?}; shift 2 ;;
    --hostfile) hostfile=${2:?}; shift 2 ;;
    --bind) bind=${2:?}; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) fail "unknown option '$1' (options come before '--', trident's flags after it)" ;;
  esac
done
[ $# -gt 0 ] || fail "no trident command after '--' (e.g. -- pretrain --config tiny)"
case "$bind" in core|socket|none) ;; *) fail "--bind must be core, socket or none, got '$bind'" ;; esac
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

nodes=1
if [ -n "$hostfile" ]; then
  [ -r "$hostfile" ] || fail "--hostfile '$hostfile' cannot be read"
  nodes=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
  [ "$nodes" -gt 0 ] || fail "--hostfile '$hostfile' names no host"
  if [ -z "$per_node" ]; then
    per_node=$(grep -vE '^[[:space:]]*(#|$)' "$hostfile" | head -1 | sed -n 's/.*slots=\([0-9]*\).*/\1/p')
    [ -n "$per_node" ] || fail "give --per-node, or slots=N on the hostfile's lines"
  fi
fi
if [ -z "$ranks" ]; then ranks=$(( ${per_node:-1} * nodes )); fi
[ -n "$per_node" ] || per_node=$ranks
is_count "$ranks" || fail "--ranks must be a positive integer, got '$ranks'"
is_count "$per_node" || fail "--per-node must be a positive integer, got '$per_node'"
(( ranks <= per_node * nodes )) ||
  fail "--ranks $ranks needs more than $nodes node(s) × --per-node $per_node"

args=(mpirun -np "$ranks" --map-by "ppr:$per_node:node")
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
[ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
# More ranks than this machine's cores (one-node tests, laptops): oversubscribe, no binding,
# since Open MPI refuses to bind two processes to one core.
if [ -z "$hostfile" ] && (( per_node > $(nproc) )); then
  args+=(--oversubscribe)
  bind=none
fi
args+=(--bind-to "$bind")
args+=(-x "OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}")
if [ "$gpu" -eq 1 ]; then
  # Bootstrap over a real interface, InfiniBand adapters for NCCL, UCX for MPI's own traffic;
  # one CUDA connection per device keeps communication kernels ordered with compute.
  args+=(-x "NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-^lo,docker}")
  args+=(-x "NCCL_DEBUG=${NCCL_DEBUG:-WARN}")
  args+=(-x "CUDA_DEVICE_MAX_CONNECTIONS=${CUDA_DEVICE_MAX_CONNECTIONS:-1}")
  for name in NCCL_IB_HCA NCCL_IB_GID_INDEX NCCL_NET_GDR_LEVEL UCX_NET_DEVICES UCX_TLS; do
    [ -n "${!name:-}" ] && args+=(-x "$name=${!name}")
  done
  args+=(--mca pml ucx --mca btl ^openib)
fi
args+=("$trident" "$@")

if [ "$dry_run" -eq 1 ]; then
  printf '%q ' "${args[@]}"
  echo
  exit 0
fi
[ -x "$trident" ] || fail "trident binary '$trident' not found (build it, or set TRIDENT_BIN)"
exec "${args[@]}"
