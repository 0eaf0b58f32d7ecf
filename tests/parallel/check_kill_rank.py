"""Runs test_comm_kill under mpirun and checks that the survivors name the dead rank.

Modes:
  recovery: mpirun keeps the job alive after the death (orte_enable_recovery), so the
            survivors' own timeout and arrival probe must report the dead rank and abort.
  default:  mpirun tears the job down itself; the job must still end promptly, non-zero,
            with the dead rank named.
Either way the run must finish well within the time limit (no hang).
"""
import subprocess
import sys
import time

mpiexec, numproc_flag, ranks, binary, mode = sys.argv[1:6]
victim = 1
command = [mpiexec, numproc_flag, ranks, "--oversubscribe"]
if mode == "recovery":
    command += ["--mca", "orte_enable_recovery", "1"]
command += [binary, str(victim)]
limit = 60
start = time.monotonic()
try:
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=limit,
                         text=True)
except subprocess.TimeoutExpired as e:
    print(e.stdout or "")
    print(f"FAIL: the job hung for more than {limit} s after rank {victim} died")
    sys.exit(1)
elapsed = time.monotonic() - start
output = run.stdout
print(output)
print(f"mpirun exit code {run.returncode}, {elapsed:.1f} s")

failures = []
if "all steps completed" in output:
    failures.append("a rank reported success although rank 1 died before step 2")
if mode == "recovery":
    # Open MPI's mpirun exits 0 in recovery mode whatever the ranks do, so the survivors'
    # message is the evidence.
    expected = [
        "timeout",
        "all_reduce #3 (f32 × 1024) on group 'world'",
        f"not arrived: rank {victim} (did not answer within",
        "dead or wedged",
    ]
    for text in expected:
        if text not in output:
            failures.append(f"missing '{text}' in the survivors' error")
else:
    if run.returncode == 0:
        failures.append("mpirun exited 0 although a rank died")
    if f"rank {victim}" not in output:
        failures.append(f"the output never names rank {victim}")
for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
