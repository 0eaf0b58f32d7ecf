"""What the end-to-end tests of the `trident` command share: running it (alone or under mpirun),
reading its JSONL metrics, and comparing a layout's steps with one rank's.

Imported by the tests/*/check_*.py scripts (they put tests/support on sys.path).
"""
import json
import subprocess
import sys


def mpi(mpirun, ranks, command):
    """`command` on `ranks` ranks (one rank: the command itself, no mpirun)."""
    if ranks == 1:
        return list(command)
    return [mpirun, "-np", str(ranks), "--oversubscribe", *command]


def run(command, expect_ok=True, timeout=400):
    """Runs `command`; with expect_ok a failure ends the test with the command's output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if expect_ok and result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(command)}\n{result.stdout}\n"
                 f"{result.stderr}")
    return result


def sets(*assignments):
    """--set flags for each `field=value`."""
    return [arg for a in assignments for arg in ("--set", a)]


def step_records(path):
    """The per-step records of a metrics file (records that carry a loss)."""
    with open(path) as f:
        return [r for r in (json.loads(line) for line in f) if "loss" in r]


def compare_steps(name, got, want, keys, tolerance, steps=None):
    """Failure lines where `got`'s records differ from `want`'s in `keys` by more than
    `tolerance` relative (and when the step counts differ)."""
    failures = []
    if steps is not None and len(got) != steps:
        failures.append(f"{name}: {len(got)} steps in the metrics file, expected {steps}")
    for step, (a, b) in enumerate(zip(got, want), start=1):
        for key in keys:
            if abs(a[key] - b[key]) > tolerance * abs(b[key]):
                failures.append(f"{name} step {step}: {key} {a[key]} vs one rank {b[key]}")
    return failures


def expect_refusal(result, words):
    """A failure line unless `result` exited non-zero and its output names `words`."""
    text = result.stdout + result.stderr
    if result.returncode == 0 or words not in text:
        return [f"expected a refusal naming '{words}', got exit {result.returncode}:\n"
                f"{text[-1500:]}"]
    return []
