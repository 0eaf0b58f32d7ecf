"""trident bench pp under mpirun (pp = 4 ranks, tiny GEMM stages): every schedule gets a row
whose measured step, prediction and ratios are positive numbers, the ratio column is the
measured step over the prediction and lies inside the printed range of the timed steps (and
so does the prediction from the previous step's costs inside its own range), the
--trace files hold one row per action of every rank's list for each schedule plus the
simulated timeline, and bad input (OMP_NUM_THREADS unset, a single rank, an unknown
schedule) is refused with a message naming what to change. Timing itself is not asserted.

usage: check_bench_pp.py MPIRUN TRIDENT
"""
import glob
import os
import subprocess
import sys
import tempfile

SCHEDULES = ["1f1b", "interleaved/v2", "zb-h1", "dualpipev"]
SMALL = ["--tokens", "32", "--hidden", "32", "--layers", "1", "--steps", "3", "--repeats", "2",
         "--latency-us", "50"]


def run(command, env, expect_ok=True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    if expect_ok and result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    return result


def parse_rows(stdout):
    rows = {}
    header = None
    for line in stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == "schedule":
            header = fields
        elif header and fields and fields[0] in SCHEDULES:
            rows[fields[0]] = fields
    if header is None:
        sys.exit(f"no table header in:\n{stdout}")
    return header, rows


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "trace")
        out = run([mpirun, "-np", "4", "--oversubscribe", trident, "bench", "pp", *SMALL,
                   "--trace", prefix], env).stdout
        header, rows = parse_rows(out)
        for name in SCHEDULES:
            if name not in rows:
                failures.append(f"no row for {name}")
                continue
            row = rows[name]
            # columns: schedule F B W in-step meas sim.cores ratio range prev prev.range ...
            measured, predicted, ratio = float(row[5]), float(row[6]), float(row[7])
            low, high = (float(x) for x in row[8].split("-"))
            previous = float(row[9])
            previous_low, previous_high = (float(x) for x in row[10].split("-"))
            if not previous_low - 1e-3 <= previous <= previous_high + 1e-3 or previous <= 0:
                failures.append(f"{name}: prev {previous} outside its range {row[10]}")
            if not (measured > 0 and predicted > 0):
                failures.append(f"{name}: measured {measured} / predicted {predicted}")
            # The times are printed to 0.1 ms: allow for that rounding.
            slack = ratio * (0.05 / measured + 0.05 / predicted) + 1e-3
            if abs(ratio - measured / predicted) > slack:
                failures.append(f"{name}: ratio {ratio} is not {measured}/{predicted}")
            if not low - 1e-3 <= ratio <= high + 1e-3:
                failures.append(f"{name}: ratio {ratio} outside its steps' range {low}-{high}")
        rank_files = sorted(glob.glob(prefix + ".rank*.csv"))
        if len(rank_files) != 4:
            failures.append(f"expected 4 rank trace files, got {rank_files}")
        for path in rank_files:
            with open(path) as f:
                kinds = {}
                for line in f:
                    schedule, _, kind = line.split(",")[:3]
                    kinds.setdefault(schedule, set()).add(kind)
            for name in SCHEDULES:
                base = name.split("/")[0]
                if not {"F", "B", "W", "cpu", "thread"} <= kinds.get(base, set()):
                    failures.append(f"{path}: {base} rows hold {sorted(kinds.get(base, []))}")
        if not os.path.exists(prefix + ".sim.csv"):
            failures.append("no simulated trace")

    refusals = [
        ([mpirun, "-np", "2", "--oversubscribe", trident, "bench", "pp", *SMALL],
         {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}, "OMP_NUM_THREADS=1"),
        ([mpirun, "-np", "1", trident, "bench", "pp", *SMALL], env, "at least 2 ranks"),
        ([mpirun, "-np", "2", "--oversubscribe", trident, "bench", "pp", *SMALL, "--schedules",
          "gpipe"], env, "gpipe"),
    ]
    for command, command_env, expected in refusals:
        result = run(command, command_env, expect_ok=False)
        text = result.stdout + result.stderr
        if result.returncode == 0 or expected not in text:
            failures.append(f"{' '.join(command[3:])}: expected a refusal naming '{expected}', "
                            f"got rc {result.returncode}:\n{text[-800:]}")
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print("ok")


if __name__ == "__main__":
    main()
