"""Race hunting can catch what it is for. With delay injection on (TRIDENT_STREAM_DELAYS) and a
test-only switch that drops one wait, a layout must fail its comparison with one rank (a gtest
failure, not a crash or a hang); the same run without the switch passes:
  TRIDENT_TEST_DROP_EP_WAIT=1  the expert GEMMs no longer wait for their chunk's dispatch and read
                               rows that have not arrived (NaN-poisoned): dp2·ep2 fails;
  TRIDENT_TEST_DROP_PP_WAIT=1  the pipeline no longer waits for a receive to complete and reads
                               an activation or gradient that has not arrived: pp2 (1F1B) fails.

usage: check_dropped_wait.py MPIEXEC TEST_PRETRAIN_LAYOUTS
"""
import os
import subprocess
import sys

CASES = [
    ("Tiny/PretrainLayouts.MatchOneRank/dp2_ep2", "TRIDENT_TEST_DROP_EP_WAIT",
     "the expert GEMMs skip their wait on the dispatch"),
    ("Tiny/PretrainLayouts.MatchOneRank/pp2_1f1b", "TRIDENT_TEST_DROP_PP_WAIT",
     "the pipeline skips its wait on a receive"),
]
SWITCHES = [switch for _, switch, _ in CASES]


def run(mpiexec, binary, layout, switch):
    env = dict(os.environ, TRIDENT_STREAM_DELAYS="11:2000")
    for name in SWITCHES:
        env.pop(name, None)
    if switch:
        env[switch] = "1"
    result = subprocess.run([mpiexec, "-np", "2", "--oversubscribe", binary,
                             f"--gtest_filter={layout}", "--gtest_color=no"], env=env,
                            capture_output=True, text=True, timeout=280)
    return result.returncode, result.stdout + result.stderr


def check(mpiexec, binary, layout, switch, what):
    code, output = run(mpiexec, binary, layout, None)
    if code != 0 or "[  PASSED  ] 1 test" not in output:
        sys.exit(f"FAILED: {layout} with delays but every wait in place exited {code} (or did "
                 f"not run):\n{output}")
    code, output = run(mpiexec, binary, layout, switch)
    if code == 0:
        sys.exit(f"FAILED: {layout} passed with {switch}=1: the race hunt missed it\n{output}")
    if f"[  FAILED  ] {layout}" not in output:
        sys.exit(f"FAILED: with {switch}=1 the run failed (exit {code}) without a gtest "
                 f"comparison failure:\n{output[-4000:]}")
    print(f"{layout}: passes with every wait; fails its comparison with one rank when {what}: OK")


def main():
    mpiexec, binary = sys.argv[1], sys.argv[2]
    for layout, switch, what in CASES:
        check(mpiexec, binary, layout, switch, what)


if __name__ == "__main__":
    main()
