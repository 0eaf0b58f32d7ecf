"""What the checkpoint check scripts share: running a trident command that must exit as
expected, a scratch working directory (runs without --checkpoint-dir save to ./checkpoints,
which must not land in the build tree), and reporting every failure at once at the end."""
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time


def run(command):
    """Runs `command`, stops the script unless it succeeds; returns its output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        sys.exit(f"FAILED (exit {result.returncode}, expected 0): {' '.join(command)}\n"
                 f"{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


@contextlib.contextmanager
def scratch_dir():
    """A temporary directory, also the working directory while the block runs."""
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield tmp
        finally:
            os.chdir(home)


def report(failures, passed):
    """Exits listing `failures`, or prints `passed` when there are none."""
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print(passed)


def preempt_one_rank(command, ready, ranks=2):
    """Starts `command` (an mpirun job of `ranks` ranks), waits (at most 120 s) until `ready()`
    holds, then sends SIGUSR1 to one rank only: the others must follow it. Returns the job's exit
    status, its output, and a problem (None when a running job was signalled)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    problem = None
    if proc.poll() is not None or len(children) != ranks:
        problem = f"could not signal a running job (ranks {children})"
        proc.kill()
    else:
        os.kill(int(children[-1]), signal.SIGUSR1)
    out, _ = proc.communicate(timeout=240)
    return proc.returncode, out, problem
