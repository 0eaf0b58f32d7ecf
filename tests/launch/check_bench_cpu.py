"""trident bench step and trident bench score on the tiny preset, against the PyTorch reference
in the same run.

bench step: the table,
the speed-up line (PyTorch time over Trident time), the FLOP-rate line (the planner's model FLOPs
per step over the step time, the sgemm rate measured in the run, and their ratio), the memory
line and the profile, whose rows include the optimizer's phases. The model FLOPs per step must
be the planner's FLOPs per token, worked out by hand for tiny, times the batch's tokens.

bench score: a row per round whose speed-up is the PyTorch time over trident score's, the
summary's median and range of those, and the two outputs' agreement (the command itself fails
when they differ).

Bad flags are refused by name.
Timing itself is not asserted: only that each printed figure is consistent with the others.

usage: check_bench_step.py TRIDENT
"""
import re
import subprocess
import sys


def run(command, expect_ok=True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if expect_ok and result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    return result


def find(pattern, text, what):
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        sys.exit(f"no {what} in the output:\n{text}")
    return [float(g) for g in match.groups()]


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def check_bench_step(trident):
    out = run([trident, "bench", "step", "--config", "tiny", "--steps", "2", "--warmup", "1"]).stdout

    tokens = find(r"batch (\d+) × (\d+) tokens", out, "batch line")
    tokens_per_step = tokens[0] * tokens[1]
    (trident_s,) = find(r"^Trident \(C\+\+\)\s+([\d.]+)", out, "Trident row")
    (torch_s,) = find(r"^PyTorch \S+ eager\s+([\d.]+)", out, "PyTorch row")
    (speed_up,) = find(r"speed-up \(PyTorch time / Trident time\): ([\d.]+)x", out, "speed-up")
    if not (trident_s > 0 and torch_s > 0 and close(speed_up, torch_s / trident_s, 0.02)):
        sys.exit(f"speed-up {speed_up} is not {torch_s} / {trident_s}")

    rate, gflop_step, size, sgemm, ratio = find(
        r"FLOP rate: Trident ([\d.e+-]+) GFLOP/s \(([\d.e+-]+) GFLOP per step, the planner's "
        r"model FLOPs\), fp32 sgemm (\d+)³ ([\d.e+-]+) GFLOP/s \(same threads, this run\): ratio "
        r"to sgemm ([\d.e+-]+)", out, "FLOP-rate line")
    if size != 2048 or sgemm <= 0 or rate <= 0:
        sys.exit(f"implausible FLOP-rate line: {rate} {size} {sgemm}")
    if not close(rate, gflop_step / trident_s, 0.02):
        sys.exit(f"{rate} GFLOP/s is not {gflop_step} GFLOP / {trident_s} s")
    if not close(ratio, rate / sgemm, 0.02):
        sys.exit(f"ratio {ratio} is not {rate} / {sgemm}")

    # The tiny model's FLOPs per token at seq_len 16, worked out by hand in
    # tests/planner/test_planner.cpp (FlopsPerTokenMatchesTheHandComputedFormula).
    planned = 391680 * tokens_per_step / 1e9
    if not close(gflop_step, planned, 0.005):
        sys.exit(f"bench step counts {gflop_step} GFLOP per step, the planner {planned}")

    find(r"memory \(host\): peak in tensors ([\d.]+) MiB", out, "memory line")
    for phase in ("optimizer: AdamW update", "optimizer: gradient norm",
                  "optimizer: finiteness check", "linear_forward"):
        if not re.search(rf"^{re.escape(phase)}\s+[\d.]+\s+[\d.]+%\s+\d+$", out, re.MULTILINE):
            sys.exit(f"no profile row '{phase}' in:\n{out}")

    bad = run([trident, "bench", "step", "--config", "tiny", "--steps", "0"], expect_ok=False)
    if bad.returncode == 0 or "--steps" not in bad.stderr + bad.stdout:
        sys.exit(f"--steps 0 was not refused by name:\n{bad.stdout}\n{bad.stderr}")
    print("bench step: table, speed-up, FLOP rate against sgemm, memory and profile agree")


def check_bench_score(trident):
    out = run([trident, "bench", "score", "--config", "tiny", "--sequences", "3", "--length", "12",
               "--rounds", "2"]).stdout
    rows = re.findall(r"^(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, re.MULTILINE)
    if len(rows) != 2:
        sys.exit(f"expected 2 rounds in:\n{out}")
    ratios = []
    for _, ours, theirs, ratio in rows:
        ours, theirs, ratio = float(ours), float(theirs), float(ratio)
        if not (ours > 0 and theirs > 0 and close(ratio, theirs / ours, 0.02)):
            sys.exit(f"round speed-up {ratio} is not {theirs} / {ours}")
        ratios.append(ratio)
    median, low, high, difference = find(
        r"median ([\d.]+)x, range ([\d.]+)–([\d.]+)x; outputs agree to max \|Δ log p\| = "
        r"([\d.e+-]+)", out, "summary line")
    if not (close(low, min(ratios), 0.01) and close(high, max(ratios), 0.01)
            and low <= median <= high and difference < 1e-3):
        sys.exit(f"summary {median} {low}–{high} {difference} does not match the rounds {ratios}")

    bad = run([trident, "bench", "score", "--config", "tiny", "--length", "4096"], expect_ok=False)
    if bad.returncode == 0 or "max_position_embeddings" not in bad.stderr + bad.stdout:
        sys.exit(f"--length 4096 was not refused by name:\n{bad.stdout}\n{bad.stderr}")
    print("bench score: rounds, speed-ups and the outputs' agreement are consistent")


def main():
    trident = sys.argv[1]
    check_bench_step(trident)
    check_bench_score(trident)


if __name__ == "__main__":
    main()
