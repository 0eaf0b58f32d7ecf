"""trident bench step, bench score, bench generate and bench eval on the tiny preset, against the
PyTorch reference in the same run.

bench step: the table,
the speed-up line (PyTorch time over Trident time), the FLOP-rate line (the planner's model FLOPs
per step over the step time, the sgemm rate measured in the run, and their ratio), the memory
line and the profile, whose rows include the optimizer's phases. The model FLOPs per step must
be the planner's FLOPs per token, worked out by hand for tiny, times the batch's tokens.
In fp32 and in bf16 the allocator's peak is within 10% of `trident plan`'s memory.

bench step --rounds 2: a row per round, the ratios' median and range, the table's times the
medians of the rounds'.

bench step --json: the record holds the printed figures; a --json path in a missing directory
is refused before any step is timed; a reference killed by SIGKILL is reported as such (the
kernel's out-of-memory killer sends it).

launch/experiments/step_cost.py on tiny without the reference, two rounds: a CSV row per run,
the Markdown table's medians and ranges taken from those rows, the growth rows, and the plot.

bench score, bench generate and bench eval: a row per round whose speed-up is the PyTorch time
over trident's, the summary's median and range of those, and the two outputs' agreement (the
command itself fails when they differ): log-probabilities for score, the reference's best token
against trident's choice at every decode step for generate and eval, and for eval the rule
rewards of every problem, computed on both sides.

Bad flags are refused by name.
Timing itself is not asserted: only that each printed figure is consistent with the others.

usage: check_bench_cpu.py TRIDENT
"""
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

EXPERIMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "launch",
                           "experiments")


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


def matches_printed_ratio(ratio, numerator, denominator):
    """Whether a printed ratio, computed from unrounded times, fits the printed (rounded) times:
    each printed time is within half a unit of its last digit (a printed 0.0021 s is ±2.4%),
    and the ratio itself is rounded too."""
    def bounds(text):
        half = 0.5 * 10.0 ** -len(text.partition(".")[2])
        return float(text) - half, float(text) + half
    low_n, high_n = bounds(numerator)
    low_d, high_d = bounds(denominator)
    if low_n <= 0 or low_d <= 0:
        return False
    return 0.99 * low_n / high_d - 0.01 <= ratio <= 1.01 * high_n / low_d + 0.01


def check_bench_step(trident, tmp):
    record_path = os.path.join(tmp, "step.json")
    out = run([trident, "bench", "step", "--config", "tiny", "--steps", "2", "--warmup", "1",
               "--json", record_path]).stdout

    tokens = find(r"batch (\d+) × (\d+) tokens", out, "batch line")
    tokens_per_step = tokens[0] * tokens[1]
    trident_text = re.search(r"^Trident \(C\+\+\)\s+([\d.]+)", out, re.MULTILINE)
    torch_text = re.search(r"^PyTorch \S+ eager\s+([\d.]+)", out, re.MULTILINE)
    if trident_text is None or torch_text is None:
        sys.exit(f"no Trident or PyTorch row in the output:\n{out}")
    trident_s, torch_s = float(trident_text.group(1)), float(torch_text.group(1))
    (speed_up,) = find(r"speed-up \(PyTorch time / Trident time\): ([\d.]+)x", out, "speed-up")
    if not matches_printed_ratio(speed_up, torch_text.group(1), trident_text.group(1)):
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

    (peak_mib,) = find(r"memory \(host\): peak in tensors ([\d.]+) MiB", out, "memory line")
    # The planner's memory for the step against the allocator's peak: in fp32 within 10%, the
    # tolerance of tests/planner/check_planner_memory_mpi.py.
    planned_mib, share = find(r"memory planned by `trident plan`: ([\d.]+) MiB; peak in tensors "
                              r"/ planned ([\d.]+)", out, "planned-memory line")
    # (The printed MiB are rounded to 0.1: a few percent of the tiny model's 3 MiB.)
    if not close(share, 1.0, 0.10) or not close(share, peak_mib / planned_mib, 0.04):
        sys.exit(f"peak {peak_mib} MiB against {planned_mib} MiB planned: printed ratio {share}")
    for phase in ("optimizer: AdamW update", "optimizer: gradient norm",
                  "optimizer: finiteness check", "linear_forward"):
        if not re.search(rf"^{re.escape(phase)}\s+[\d.]+\s+[\d.]+%\s+\d+$", out, re.MULTILINE):
            sys.exit(f"no profile row '{phase}' in:\n{out}")

    with open(record_path) as f:
        record = json.load(f)
    expected = {"trident_step_s": trident_s, "torch_step_s": torch_s,
                "tokens_per_step": tokens_per_step, "model_gflop_per_step": gflop_step,
                "ratio_to_sgemm": ratio, "hidden_size": 32, "batch": tokens[0],
                "planned_memory_mib": planned_mib}
    for key, value in expected.items():
        # The table prints times to four decimals, so a step of a few milliseconds is printed
        # to two significant digits: the record may differ from it by half the last digit.
        rounding = 0.5e-4 if key.endswith("_step_s") else 0.0
        if not (close(float(record[key]), value, 0.01) or
                abs(float(record[key]) - value) <= rounding + 1e-12):
            sys.exit(f"--json {key} = {record[key]}, the printed figure {value}")

    missing_dir = os.path.join(tmp, "no such dir", "step.json")
    bad = run([trident, "bench", "step", "--config", "tiny", "--json", missing_dir],
              expect_ok=False)
    if bad.returncode == 0 or missing_dir not in bad.stderr or "Trident (C++)" in bad.stdout:
        sys.exit(f"--json in a missing directory was not refused up front:\n{bad.stdout}\n"
                 f"{bad.stderr}")

    killed = os.path.join(tmp, "killed-python")
    with open(killed, "w") as f:
        f.write("#!/bin/sh\nkill -9 $$\n")
    os.chmod(killed, 0o755)
    bad = run([trident, "bench", "step", "--config", "tiny", "--steps", "1", "--warmup", "0",
               "--python", killed], expect_ok=False)
    if bad.returncode == 0 or "killed by SIGKILL" not in bad.stderr or "dmesg" not in bad.stderr:
        sys.exit(f"a reference killed by SIGKILL was not reported as such:\n{bad.stderr}")

    bad = run([trident, "bench", "step", "--config", "tiny", "--steps", "0"], expect_ok=False)
    if bad.returncode == 0 or "--steps" not in bad.stderr + bad.stdout:
        sys.exit(f"--steps 0 was not refused by name:\n{bad.stdout}\n{bad.stderr}")

    # --rounds: a row per round, the ratios' median and range, and the table's times the
    # medians of the rounds' (two rounds: their mean), which the record also lists.
    record_path = os.path.join(tmp, "rounds.json")
    out = run([trident, "bench", "step", "--config", "tiny", "--steps", "2", "--warmup", "1",
               "--rounds", "2", "--json", record_path]).stdout
    rows = re.findall(r"^(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, re.MULTILINE)
    median, low, high = find(r"speed-up of the rounds: median ([\d.]+)x, range ([\d.]+)–([\d.]+)x",
                             out, "rounds summary")
    ratios = [float(r[3]) for r in rows]
    if len(rows) != 2 or not (close(low, min(ratios), 0.01) and close(high, max(ratios), 0.01)):
        sys.exit(f"bench step --rounds 2: rounds {rows}, summary {median} {low}–{high}:\n{out}")
    (trident_s,) = find(r"^Trident \(C\+\+\)\s+([\d.]+)", out, "Trident row")
    with open(record_path) as f:
        record = json.load(f)
    per_round = record["trident_step_s_rounds"]
    if record["rounds"] != 2 or len(per_round) != 2 or len(record["torch_step_s_rounds"]) != 2 \
            or abs(statistics.mean(per_round) - trident_s) > 0.5e-4 + 1e-12:
        sys.exit(f"bench step --rounds 2: record {record}, printed Trident time {trident_s}")
    print("bench step: table, speed-up, FLOP rate against sgemm, memory, profile and --json "
          "agree; a bad --json path and a killed reference are reported; --rounds gives each "
          "round and the medians")


def check_bench_step_bf16_memory(trident):
    """In bf16 the saved activations are bf16 tensors (models/deepseek_v3/saved_activations.h), so
    the allocator's peak follows the planner's bf16 sizes as fp32's follows its fp32 ones (1.30
    while they were fp32 buffers holding bf16 values)."""
    out = run([trident, "bench", "step", "--config", "tiny", "--steps", "2", "--warmup", "1",
               "--no-reference", "--set", "train.param_dtype=bfloat16", "--set",
               "train.activation_dtype=bfloat16"]).stdout
    (peak_mib,) = find(r"memory \(host\): peak in tensors ([\d.]+) MiB", out, "memory line")
    planned_mib, share = find(r"memory planned by `trident plan`: ([\d.]+) MiB; peak in tensors "
                              r"/ planned ([\d.]+)", out, "planned-memory line")
    if not close(share, 1.0, 0.10) or not close(share, peak_mib / planned_mib, 0.04):
        sys.exit(f"bf16: peak {peak_mib} MiB against {planned_mib} MiB planned: ratio {share}")


def check_step_cost(trident, tmp):
    out_dir = os.path.join(tmp, "step_cost")
    script = os.path.join(EXPERIMENTS, "step_cost.py")
    run([sys.executable, script, "--trident", trident, "--out-dir", out_dir, "--presets", "tiny",
         "--repeats", "2", "--steps", "1", "--warmup", "0", "--no-reference"])
    with open(os.path.join(out_dir, "step_cost.csv")) as f:
        rows = list(csv.DictReader(f))
    # The preset itself, two more token counts and two more widths, in each of two rounds.
    if len(rows) != 10 or {r["round"] for r in rows} != {"1", "2"}:
        sys.exit(f"expected 5 points × 2 rounds in step_cost.csv, got {len(rows)} rows")
    tokens = sorted({int(r["tokens_per_step"]) for r in rows})
    widths = sorted({int(r["hidden_size"]) for r in rows})
    if tokens != [64, 128, 256] or widths != [16, 32, 64]:
        sys.exit(f"the axes are tokens {tokens} and widths {widths}, not tiny's ×0.5, ×1, ×2")
    with open(os.path.join(out_dir, "step_cost.md")) as f:
        table = f.read()
    for r in rows:
        if r["axis"] != "tokens" or r["round"] != "1":
            continue
        times = [float(x["trident_step_s"]) for x in rows
                 if x["axis"] == "tokens" and x["factor"] == r["factor"]]
        cell = (f"{statistics.median(times):.4g} ({min(times):.4g}–{max(times):.4g})")
        if f"| tiny | tokens ×{float(r['factor']):g} | {r['tokens_per_step']} |" not in table or \
                cell not in table:
            sys.exit(f"step_cost.md has no row for tokens ×{r['factor']} with {cell}:\n{table}")
    for axis in ("tokens", "width"):
        if f"| tiny | {axis} growth (log-log slope) |" not in table:
            sys.exit(f"step_cost.md has no {axis} growth row:\n{table}")
    if os.path.getsize(os.path.join(out_dir, "step_cost.png")) < 1000:
        sys.exit("step_cost.png is missing or empty")
    bad = run([sys.executable, script, "--trident", trident, "--presets", "huge"],
              expect_ok=False)
    if bad.returncode == 0 or "tiny, small, medium" not in bad.stderr:
        sys.exit(f"--presets huge was not refused with the valid names:\n{bad.stderr}")
    print("step_cost.py: a row per run, medians and ranges from them, growth rows and the plot")


def check_rounds(out, command):
    """Two rounds whose speed-up is PyTorch's time over trident's, and a summary of them."""
    rows = re.findall(r"^(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, re.MULTILINE)
    if len(rows) != 2:
        sys.exit(f"{command}: expected 2 rounds in:\n{out}")
    ratios = []
    for _, ours_text, theirs_text, ratio in rows:
        ratio = float(ratio)
        if not matches_printed_ratio(ratio, theirs_text, ours_text):
            sys.exit(f"{command}: round speed-up {ratio} is not {theirs_text} / {ours_text}")
        ratios.append(ratio)
    median, low, high = find(r"median ([\d.]+)x, range ([\d.]+)–([\d.]+)x", out, "summary")
    if not (close(low, min(ratios), 0.01) and close(high, max(ratios), 0.01)
            and low <= median <= high):
        sys.exit(f"{command}: summary {median} {low}–{high} does not match the rounds {ratios}")
    return ratios


def check_bench_score(trident):
    out = run([trident, "bench", "score", "--config", "tiny", "--sequences", "3", "--length", "12",
               "--rounds", "2"]).stdout
    check_rounds(out, "bench score")
    (difference,) = find(r"outputs agree to max \|Δ log p\| = ([\d.e+-]+)", out, "agreement")
    if not difference < 1e-3:
        sys.exit(f"bench score outputs differ by {difference}")

    bad = run([trident, "bench", "score", "--config", "tiny", "--length", "4096"], expect_ok=False)
    if bad.returncode == 0 or "max_position_embeddings" not in bad.stderr + bad.stdout:
        sys.exit(f"--length 4096 was not refused by name:\n{bad.stdout}\n{bad.stderr}")
    print("bench score: rounds, speed-ups and the outputs' agreement are consistent")


def check_bench_generate(trident):
    out = run([trident, "bench", "generate", "--config", "tiny", "--prompts", "3",
               "--prompt-length", "8", "--new-tokens", "6", "--rounds", "2"]).stdout
    check_rounds(out, "bench generate")
    same, total, gap = find(
        r"the reference's best token is trident's at (\d+) of (\d+) steps, max logit gap "
        r"([\d.e+-]+)", out, "agreement")
    # 3 prompts × 6 steps; on tiny the two choose alike everywhere (a near-tie would show as a
    # gap of a few ulps, not as a refusal).
    if total != 18 or not (0 <= same <= total) or not gap < 1e-3:
        sys.exit(f"agreement {same} of {total}, gap {gap}: expected 18 steps within 1e-3")

    bad = run([trident, "bench", "generate", "--config", "tiny", "--prompt-length", "4000"],
              expect_ok=False)
    if bad.returncode == 0 or "max_position_embeddings" not in bad.stderr + bad.stdout:
        sys.exit(f"--prompt-length 4000 was not refused by name:\n{bad.stdout}\n{bad.stderr}")
    print("bench generate: rounds, speed-ups and the rollouts' agreement are consistent")


def check_bench_eval(trident):
    out = run([trident, "bench", "eval", "--config", "tiny", "--count", "5", "--max-new-tokens",
               "6", "--rounds", "2"]).stdout
    check_rounds(out, "bench eval")
    accuracy, format_rate, length, gap = find(
        r"accuracy ([\d.]+), format rate ([\d.]+), mean completion ([\d.]+) tokens, the same "
        r"from both; max logit gap ([\d.e+-]+)", out, "agreement")
    # Random weights write no answers: nothing is correct, every completion runs to the limit.
    if accuracy != 0 or format_rate != 0 or length != 6 or not gap < 1e-3:
        sys.exit(f"bench eval on random weights: accuracy {accuracy}, format {format_rate}, "
                 f"length {length}, gap {gap}")

    bad = run([trident, "bench", "eval", "--config", "tiny", "--count", "0"], expect_ok=False)
    if bad.returncode == 0 or "--count" not in bad.stderr + bad.stdout:
        sys.exit(f"--count 0 was not refused by name:\n{bad.stdout}\n{bad.stderr}")
    print("bench eval: rounds, speed-ups and the evaluations' agreement are consistent")


def main():
    trident = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        check_bench_step(trident, tmp)
        check_bench_step_bf16_memory(trident)
        check_step_cost(trident, tmp)
    check_bench_score(trident)
    check_bench_generate(trident)
    check_bench_eval(trident)


if __name__ == "__main__":
    main()
