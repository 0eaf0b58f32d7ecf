"""What the checkpoint check scripts share: running a trident command that must exit as
expected, a scratch working directory (runs without --checkpoint-dir save to ./checkpoints,
which must not land in the build tree), and reporting every failure at once at the end."""
import contextlib
import os
import subprocess
import sys
import tempfile


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
