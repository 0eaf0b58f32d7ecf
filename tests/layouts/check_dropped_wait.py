"""Race hunting can catch what it is for: with TRIDENT_TEST_DROP_EP_WAIT=1 the expert GEMMs no
longer wait for their chunk's dispatch, and with delay injection on (TRIDENT_STREAM_DELAYS) they
read rows that have not arrived (NaN-poisoned), so the dp2·ep2 layout must fail its comparison
with one rank: a gtest failure, not a crash or a hang. The same run without the switch passes.

usage: check_dropped_wait.py MPIEXEC TEST_PRETRAIN_LAYOUTS
"""
import os
import subprocess
import sys

LAYOUT = "Tiny/PretrainLayouts.MatchOneRank/dp2_ep2"


def run(mpiexec, binary, drop):
    env = dict(os.environ, TRIDENT_STREAM_DELAYS="11:2000")
    if drop:
        env["TRIDENT_TEST_DROP_EP_WAIT"] = "1"
    else:
        env.pop("TRIDENT_TEST_DROP_EP_WAIT", None)
    result = subprocess.run([mpiexec, "-np", "2", "--oversubscribe", binary,
                             f"--gtest_filter={LAYOUT}", "--gtest_color=no"], env=env, capture_output=True,
                            text=True, timeout=280)
    return result.returncode, result.stdout + result.stderr


def main():
    mpiexec, binary = sys.argv[1], sys.argv[2]
    code, output = run(mpiexec, binary, drop=False)
    if code != 0:
        sys.exit(f"FAILED: {LAYOUT} with delays but every wait in place exited {code}:\n{output}")
    code, output = run(mpiexec, binary, drop=True)
    if code == 0:
        sys.exit(f"FAILED: {LAYOUT} passed with the dispatch wait dropped: the race hunt missed "
                 f"it\n{output}")
    if f"[  FAILED  ] {LAYOUT}" not in output:
        sys.exit(f"FAILED: with the wait dropped the run failed (exit {code}) without a gtest "
                 f"comparison failure:\n{output[-4000:]}")
    print(f"{LAYOUT}: passes with every wait; fails its comparison with one rank when the "
          "expert GEMMs skip their wait on the dispatch: OK")


if __name__ == "__main__":
    main()
