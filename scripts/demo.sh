#!/usr/bin/env bash
# Sets the machine up, builds, and runs the main job end to end. Outputs go to runs/demo/.
#   TRIDENT_SKIP_SETUP=1   skip the package check    TRIDENT_DEMO_RANKS=n   MPI ranks (default 2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

step setup; run_setup; step_done
step build; bash scripts/build.sh; step_done

trident=$TRIDENT_BUILD_DIR/launch/trident
run_dir=$TRIDENT_ROOT/runs/demo
ranks=${TRIDENT_DEMO_RANKS:-2}
mkdir -p "$run_dir"
allow_mpi_as_root

# on_ranks command...: runs a command on $ranks MPI ranks of this machine.
on_ranks() {
  mpirun -np "$ranks" "$@"
}

# --------------------------------------------------------------------------------------------
# The main job. Each line is one stage; replace or add stages here as the commands land, e.g.
#   on_ranks "$trident" pretrain --config configs/tiny.textproto --out "$run_dir/pretrain"
#   on_ranks "$trident" grpo --init "$run_dir/pretrain/last.h5" --out "$run_dir/grpo"
# --------------------------------------------------------------------------------------------
main_job() {
  "$trident" help
  # Every subcommand the binary has registered shows its flags.
  local command
  for command in $("$trident" help | sed -n '/^commands:/,$p' | awk 'NR > 1 {print $1}'); do
    echo
    echo "\$ trident $command --help"
    "$trident" "$command" --help
  done
}

step demo; main_job; step_done

echo "demo outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
