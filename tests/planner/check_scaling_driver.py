#!/usr/bin/python3
"""launch/experiments/scaling.py end to end on a 2-point sweep (1 and 2 ranks, data parallel,
the tiny model): it must write a CSV with the documented columns, one row per point, values
that agree with each other (tokens per step, speedup and efficiency against the one-rank
row, predicted and measured memory), and a PNG.

    check_scaling_driver.py SOURCE_DIR MPIRUN TRIDENT
"""
import csv
import math
import os
import subprocess
import sys
import tempfile


def fail(message):
    print("FAILED:", message)
    sys.exit(1)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source, mpirun, trident = sys.argv[1:]
    driver = os.path.join(source, "launch", "experiments", "scaling.py")
    sys.path.insert(0, os.path.dirname(driver))
    import scaling  # the column list is the driver's own

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, driver, "--trident", trident, "--mpirun", mpirun,
                   "--config", "tiny", "--ranks", "1", "2", "--layouts", "dp", "--modes",
                   "strong", "--strong-batch", "8", "--micro-batch", "2", "--steps", "1",
                   "--warmup", "1", "--cores", "2", "--out-dir", out]
        subprocess.run(command, check=True, timeout=240)
        path = os.path.join(out, "scaling_strong.csv")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            rows = list(reader)
        if header != scaling.FIELDS:
            fail(f"CSV header {header} != {scaling.FIELDS}")
        if [int(r["ranks"]) for r in rows] != [1, 2]:
            fail(f"expected rows for 1 and 2 ranks, got {[r['ranks'] for r in rows]}")
        for r in rows:
            n = int(r["ranks"])
            numbers = {k: float(v) for k, v in r.items() if k not in ("mode", "layout")}
            for k, v in numbers.items():
                if not math.isfinite(v):
                    fail(f"{k} = {v} is not finite in row {r}")
            if r["mode"] != "strong" or r["layout"] != "dp" or int(r["dp"]) != n:
                fail(f"row does not describe dp {n}, strong: {r}")
            if int(r["tokens_per_step"]) != 8 * 16:  # tiny: seq_len 16, global batch 8
                fail(f"tokens_per_step {r['tokens_per_step']} != 128")
            for k in ("step_s", "compute_s", "tokens_per_s", "predicted_step_s",
                      "measured_peak_mib", "predicted_peak_mib"):
                if not numbers[k] > 0:
                    fail(f"{k} must be positive, got {numbers[k]}")
            if abs(numbers["tokens_per_s"] * numbers["step_s"] - 128) > 1e-3 * 128:
                fail("tokens_per_s × step_s is not the tokens per step")
            for prefix in ("", "compute_", "predicted_"):
                if abs(numbers[prefix + "efficiency"] - numbers[prefix + "speedup"] / n) > 1e-4:
                    fail(f"{prefix}efficiency is not {prefix}speedup / ranks in {r}")
            if n == 1 and any(abs(numbers[k] - 1) > 1e-9
                              for k in ("speedup", "compute_speedup", "predicted_speedup")):
                fail(f"the one-rank row must have speedup 1: {r}")
            if abs(numbers["peak_error"]) > 0.10:
                fail(f"planner peak {numbers['predicted_peak_mib']} MiB vs measured "
                     f"{numbers['measured_peak_mib']} MiB")
            if int(r["oversubscribed"]) != int(n > 2):
                fail(f"oversubscribed flag wrong for {n} ranks on 2 cores")
        with open(os.path.join(out, "scaling_strong.png"), "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                fail("scaling_strong.png is not a PNG")
    print("2-point sweep: CSV and PNG well formed")


if __name__ == "__main__":
    main()
