"""A rank of a training job is killed with SIGKILL, the way a node failure or the OOM killer
ends it, at one of three places, and the job must survive it well:

  step        mid-step: in the data-parallel gradient all-reduce (dp 2)
  all_to_all  mid-all-to-all: in the expert dispatch/combine exchange (dp 2, ep 2)
  save        mid-save: between two tensors of a collective checkpoint write (dp 2)

For each repetition: the job (2 ranks, launched by mpirun, by mpirun with recovery enabled (the
survivors are left running) or by srun under a local Slurm) runs
with checkpoints every 2 steps and TRIDENT_FAULT arming the kill at a random arrival past the
first checkpoint; then
  - the job ends within the limit (no hang), non-zero, and its output names the dead rank;
  - no process of the job is left (mpirun: its process group; Slurm: no trident process and no
    job in the queue);
  - the newest checkpoint left behind verifies and loads: `--resume auto` on a new job of the
    same layout trains to the end.

usage: kill_rank.py TRIDENT MPIRUN SOURCE_DIR POINT mpirun|mpirun-recovery|slurm [REPETITIONS] [SEED]
"""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# Open MPI as root and with more ranks than cores, as the tests run it.
os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                  OMPI_MCA_rmaps_base_oversubscribe="1")

TRIDENT, MPIRUN, SOURCE = sys.argv[1], sys.argv[2], sys.argv[3]
POINT, LAUNCHER = sys.argv[4], sys.argv[5]
REPETITIONS = int(sys.argv[6]) if len(sys.argv) > 6 else 1
SEED = int(sys.argv[7]) if len(sys.argv) > 7 else int(time.time())
VICTIM = 1
LIMIT = 90          # seconds the killed job may take to end
COMM_TIMEOUT = 15   # parallel.comm_timeout_s: how long survivors wait for a silent peer
STEPS = 30

LAYOUTS = {"step": ["--set", "parallel.dp=2"],
           "all_to_all": ["--set", "parallel.dp=2", "--set", "parallel.ep=2"],
           "save": ["--set", "parallel.dp=2"]}
# Fault point and the arrivals to choose from: past the step-2 checkpoint, before the end.
# (Counted on the tiny model: a dp2 step issues about 3 all-reduces, a dp2·ep2 step about 32
# all-to-alls, and a save passes the point after each of its 145 tensors, on every rank. The
# step-2 save itself all-reduces: all-reduce #10 falls inside it, which leaves no checkpoint,
# so the kill is armed from #14, in step 3.)
ARMING = {"step": ("all_reduce", 14, 80),
          "all_to_all": ("all_to_all", 100, 880),
          "save": ("checkpoint_write", 150, 1400)}


def base_args(ckpt):
    return ["pretrain", "--config", "tiny", "--set", f"train.steps={STEPS}", "--set",
            "checkpoint.every=2", "--set", "checkpoint.keep_last=0", "--set",
            f"parallel.comm_timeout_s={COMM_TIMEOUT}", "--checkpoint-dir", ckpt,
            *LAYOUTS[POINT]]


class Mpirun:
    """mpirun ends the whole job when a rank dies and names it; with recovery=True it keeps the
    survivors running, so they must notice the dead rank themselves (communication timeouts,
    the save watchdog), name it and end."""

    def __init__(self, recovery=False):
        self.recovery = recovery

    def command(self, args):
        extra = ["--mca", "orte_enable_recovery", "1"] if self.recovery else []
        return [MPIRUN, "-np", "2", "--oversubscribe", *extra, TRIDENT, *args]

    def leftovers(self, proc, marker):
        try:
            os.killpg(proc.pid, 0)
            return "processes of mpirun's group are still running"
        except ProcessLookupError:
            return ""

    def stop(self):
        pass


class Slurm:
    def __init__(self, work):
        if shutil.which("srun") is None or shutil.which("slurmctld") is None:
            print("SKIP: Slurm is not installed (scripts/setup.sh installs it)")
            sys.exit(77)
        self.dir = os.path.join(work, "cluster")
        port = 20000 + (os.getpid() % 5000) * 2
        os.environ["TRIDENT_SLURMCTLD_PORT"] = str(port)
        os.environ["TRIDENT_SLURMD_PORT"] = str(port + 1)
        script = os.path.join(SOURCE, "launch", "slurm", "local_cluster.sh")
        self.script = script
        start = subprocess.run([script, "start", self.dir, "4"], capture_output=True, text=True,
                               timeout=90)
        match = re.search(r"SLURM_CONF=(\S+)", start.stdout)
        if start.returncode != 0 or not match:
            sys.exit(f"the local Slurm cluster did not start:\n{start.stdout}{start.stderr}")
        os.environ["SLURM_CONF"] = match.group(1)

    def command(self, args):
        return ["srun", "--mpi=pmix", "-n", "2", "--export=ALL", TRIDENT, *args]

    def leftovers(self, proc, marker):
        for _ in range(40):  # slurmd reaps its step within a few seconds
            queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout
            alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
            if not queue.strip() and not alive.strip():
                return ""
            time.sleep(0.5)
        return f"left behind: queue {queue.strip()!r}, processes {alive.split()}"

    def stop(self):
        subprocess.run(["scancel", "--user=root"], capture_output=True)
        subprocess.run([self.script, "stop", self.dir], capture_output=True, timeout=60)


def newest_valid(ckpt):
    """Steps of the complete step files in ckpt (a .tmp is never a checkpoint)."""
    return sorted(int(n[5:-3]) for n in os.listdir(ckpt) if re.fullmatch(r"step_\d+\.h5", n))


def repetition(launcher, work, index, rng):
    point, low, high = ARMING[POINT]
    arrival = rng.randint(low, high)
    ckpt = os.path.join(work, f"ckpt-{POINT}-{index}")
    env = dict(os.environ, TRIDENT_FAULT=f"{point}:{VICTIM}:{arrival}", OMP_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.Popen(launcher.command(base_args(ckpt)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    failures = []
    try:
        out, _ = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        failures.append(f"the job did not end within {LIMIT} s after rank {VICTIM} died")
    elapsed = time.monotonic() - start
    killed = "fault injection: SIGKILL" in out
    if not killed:
        failures.append(f"the fault never fired ({point} #{arrival}): the job ran to the end")
    after_kill = out.split("fault injection")[-1]
    if getattr(launcher, "recovery", False):
        # mpirun exits 0 in recovery mode whatever the ranks do: the survivor's words count.
        if not re.search(rf"rank {VICTIM} \(did not answer .*dead or wedged", after_kill):
            failures.append(f"the survivor did not report rank {VICTIM} as dead")
    elif proc.returncode == 0:
        failures.append("the job exited 0 although a rank died")
    if not re.search(rf"rank {VICTIM}\b|task {VICTIM}\b", after_kill):
        failures.append(f"no survivor or launcher message names rank {VICTIM}")
    left = launcher.leftovers(proc, ckpt)
    if left:
        failures.append(left)
    steps = newest_valid(ckpt) if os.path.isdir(ckpt) else []
    resumed = ""
    if not steps:
        failures.append("no checkpoint before the kill (arming too early?)")
    else:
        env.pop("TRIDENT_FAULT")
        done = subprocess.run(launcher.command(base_args(ckpt) + ["--resume", "auto"]), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)
        resumed = re.search(r"resumed from (\S+)", done.stdout)
        if done.returncode != 0 or not resumed:
            failures.append(f"resume from the newest checkpoint failed (exit {done.returncode})"
                            f":\n{done.stdout[-3000:]}")
        elif not resumed.group(1).endswith(f"step_{steps[-1]}.h5"):
            failures.append(f"resumed from {resumed.group(1)}, not step_{steps[-1]}.h5")
    print(f"[{POINT} {LAUNCHER} #{index + 1}] killed at {point} #{arrival}: exit "
          f"{proc.returncode} after {elapsed:.1f} s; checkpoints {steps}; "
          f"{'resumed from ' + resumed.group(1) if resumed else 'no resume'}")
    # What the survivors and the launcher said after the kill (progress lines left out).
    said = [l for l in out.split("fault injection")[-1].splitlines()[1:]
            if l.strip() and " step " not in l and "checkpoint saved" not in l]
    print("  " + "\n  ".join(said[:8]))
    if failures:
        print(out[-4000:])
        for failure in failures:
            print(f"FAIL: {failure}")
    return not failures


def main():
    rng = random.Random(SEED)
    print(f"seed {SEED}: {REPETITIONS} repetition(s), kill rank {VICTIM} at '{POINT}' under "
          f"{LAUNCHER}")
    work = tempfile.mkdtemp(prefix="trident-kill-")
    launcher = (Slurm(work) if LAUNCHER == "slurm" else
                Mpirun(recovery=LAUNCHER == "mpirun-recovery"))
    try:
        passed = sum(repetition(launcher, work, i, rng) for i in range(REPETITIONS))
    finally:
        launcher.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} of {REPETITIONS} repetitions passed")
    return 0 if passed == REPETITIONS else 1


if __name__ == "__main__":
    sys.exit(main())
