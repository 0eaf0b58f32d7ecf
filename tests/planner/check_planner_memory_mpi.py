#!/usr/bin/python3
"""The planner's peak memory per rank against the allocator's, rank by rank, under mpirun.

For several small layouts of the tiny model, `trident bench scaling` trains two steps on every
rank and reports each rank's allocator peak (Allocator::stats().peak_bytes over the second step)
beside the planner's plan_for_rank(plan, rank).memory.total(). Every rank must be within 10%;
the state alive between steps (weights, gradients, optimizer: predicted exactly from the
parameter registry) within 2%. A wrong rank count, a missing rank or a crashed run fails.

    check_planner_memory_mpi.py MPIRUN TRIDENT
"""
import json
import os
import subprocess
import sys
import tempfile

# name -> (ranks, overrides)
LAYOUTS = {
    "dp2 ZeRO-1": (2, ["parallel.dp=2", "parallel.zero1=true"]),
    "tp2": (2, ["parallel.tp=2"]),
    "ep2 (dp2, experts over 2)": (2, ["parallel.dp=2", "parallel.ep=2"]),
    "dp2·ep2 (dp4, ep2, edp2) ZeRO-1": (4, ["parallel.dp=4", "parallel.ep=2",
                                           "parallel.zero1=true"]),
    "dp2·tp2": (4, ["parallel.dp=2", "parallel.tp=2"]),
}
TOTAL_TOLERANCE = 0.10
STATE_TOLERANCE = 0.02


def run(mpirun, trident, ranks, overrides):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "point.json")
        command = [mpirun, "-np", str(ranks), "--oversubscribe", trident, "bench", "scaling",
                   "--config", "tiny", "--steps", "1", "--warmup", "1", "--json", out]
        for s in overrides:
            command += ["--set", s]
        subprocess.run(command, check=True, timeout=240, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    for name, (ranks, overrides) in LAYOUTS.items():
        record = run(mpirun, trident, ranks, overrides)
        per_rank = record["ranks"]
        if record["world"] != ranks or len(per_rank) != ranks:
            failures.append(f"{name}: expected {ranks} ranks, got {len(per_rank)}")
            continue
        for r in per_rank:
            measured, predicted = r["peak_bytes"], r["predicted_bytes"]
            gap = abs(predicted - measured) / measured
            state_gap = abs(r["predicted_state_bytes"] - r["state_bytes"]) / r["state_bytes"]
            print(f"{name:34s} rank {r['rank']}: measured peak {measured:>10,.0f} B, predicted "
                  f"{predicted:>10,.0f} B ({predicted / measured - 1:+.1%}); state {r['state_bytes']:>10,.0f} vs "
                  f"{r['predicted_state_bytes']:>10,.0f} B ({state_gap:.2%})")
            if not measured > 0:
                failures.append(f"{name} rank {r['rank']}: no allocator peak reported")
            if gap > TOTAL_TOLERANCE:
                failures.append(f"{name} rank {r['rank']}: peak predicted {predicted:.0f} B vs "
                                f"measured {measured:.0f} B ({gap:.1%} > 10%)")
            if state_gap > STATE_TOLERANCE:
                failures.append(f"{name} rank {r['rank']}: weights+grads+optimizer predicted "
                                f"{r['predicted_state_bytes']:.0f} B vs measured "
                                f"{r['state_bytes']:.0f} B ({state_gap:.1%} > 2%)")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("every rank of every layout within 10% (state within 2%)")


if __name__ == "__main__":
    main()
