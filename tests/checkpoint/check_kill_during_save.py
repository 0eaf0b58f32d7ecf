"""A rank dies during a checkpoint save: the previous checkpoint stays the latest valid one and
the half-written .tmp file is ignored.  Usage: check_kill_during_save.py MPIEXEC TOOL"""
import shutil
import subprocess
import sys
import tempfile

mpiexec, tool = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="trident_ckpt_kill_")
try:
    killed = subprocess.run([mpiexec, "-n", "2", "--oversubscribe", tool, "kill", work],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if killed.returncode == 0:
        sys.exit("the job survived the death of rank 1:\n" + killed.stdout.decode())
    check = subprocess.run([mpiexec, "-n", "1", tool, "check-kill", work],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    print(check.stdout.decode())
    sys.exit(check.returncode)
finally:
    shutil.rmtree(work, ignore_errors=True)
