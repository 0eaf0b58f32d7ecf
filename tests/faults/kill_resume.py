"""A 1,000-step run killed at 5 random points and resumed each time ends bit-identical to the
same run uninterrupted.

Both runs: the tiny model, 2 data-parallel ranks under mpirun (ZeRO-1), a checkpoint every 25
steps. The interrupted run is SIGKILLed (one rank, at random; mpirun takes the other down) once
its metrics reach each of 5 random steps, and restarted with --resume auto every time. The final
checkpoints must hold the same bytes in every tensor, weights and AdamW moments, and the final
losses must be equal. Prints the points, the steps each restart resumed from, and the times.

usage: kill_resume.py TRIDENT MPIRUN [STEPS] [KILLS] [SEED]
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

# Open MPI as root and with more ranks than cores, as the tests run it.
os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                  OMPI_MCA_rmaps_base_oversubscribe="1")

import h5py

TRIDENT, MPIRUN = sys.argv[1], sys.argv[2]
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
KILLS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
SEED = int(sys.argv[5]) if len(sys.argv) > 5 else int(time.time())
EVERY = 25


def command(ckpt, metrics, resume):
    args = [MPIRUN, "-np", "2", "--oversubscribe", TRIDENT, "pretrain", "--config", "tiny",
            "--set", f"train.steps={STEPS}", "--set", "parallel.dp=2", "--set",
            "parallel.zero1=true", "--set", f"checkpoint.every={EVERY}", "--set",
            "checkpoint.keep_last=2", "--set", "train.log_every=100", "--checkpoint-dir", ckpt,
            "--metrics", metrics]
    return args + (["--resume", "auto"] if resume else [])


def records(metrics):
    """The metrics lines that parse (a kill may cut the line being written)."""
    out = []
    try:
        with open(metrics) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    except OSError:
        pass
    return out


def last_step(metrics):
    steps = [r["step"] for r in records(metrics) if "loss" in r]
    return steps[-1] if steps else 0


def final_loss(metrics):
    return [r["loss"] for r in records(metrics) if r.get("step") == STEPS and "loss" in r][-1]


def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = random.Random(SEED)
    # Past the first checkpoint, so that every restart resumes.
    points = sorted(rng.sample(range(EVERY + 2, STEPS), KILLS))
    print(f"seed {SEED}: {STEPS} steps, kills at steps {points}")
    with tempfile.TemporaryDirectory() as tmp:
        straight_ckpt, straight_metrics = f"{tmp}/straight", f"{tmp}/straight.jsonl"
        start = time.monotonic()
        done = subprocess.run(command(straight_ckpt, straight_metrics, False), env=env,
                              capture_output=True, text=True, timeout=1200)
        straight_s = time.monotonic() - start
        if done.returncode != 0:
            sys.exit(f"the uninterrupted run failed:\n{done.stdout}{done.stderr}")

        ckpt, metrics = f"{tmp}/killed", f"{tmp}/killed.jsonl"
        resumed_from = []
        start = time.monotonic()
        for point in points + [None]:
            # A loaded machine can carry a run past the next point before it is killed: the
            # restart then runs at least one step of its own before its kill.
            target = None if point is None else max(point, last_step(metrics) + 1)
            proc = subprocess.Popen(command(ckpt, metrics, os.path.isdir(ckpt)), env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            while target is not None and proc.poll() is None and last_step(metrics) < target:
                time.sleep(0.005)
            if target is not None and proc.poll() is None:
                ranks = []
                while not ranks and proc.poll() is None:  # the ranks mpirun has started
                    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                           text=True).stdout.split()
                if ranks:
                    os.kill(int(rng.choice(ranks)), signal.SIGKILL)
            out, _ = proc.communicate(timeout=1200)
            for line in out.splitlines():
                if "resumed from" in line:
                    resumed_from.append(line.split("resumed from ")[1].split()[0])
            if point is None and proc.returncode != 0:
                sys.exit(f"the last restart failed:\n{out}")
            if target is not None and proc.returncode == 0:
                sys.exit(f"the run finished before the kill at step {target}")
            if target is not None:
                print(f"killed at step {last_step(metrics)} (aimed at {target}), exit "
                      f"{proc.returncode}")
        killed_s = time.monotonic() - start

        a = tensors(f"{straight_ckpt}/step_{STEPS}.h5")
        b = tensors(f"{ckpt}/step_{STEPS}.h5")
        differ = [n for n in a if n not in b or a[n].tobytes() != b[n].tobytes()]
        print(f"resumed from: {', '.join(os.path.basename(p) for p in resumed_from)}")
        print(f"uninterrupted: {straight_s:.1f} s; killed {KILLS}× and resumed: {killed_s:.1f} s")
        print(f"{len(a)} tensors compared, {len(differ)} differ; final loss "
              f"{final_loss(metrics)!r} vs {final_loss(straight_metrics)!r}")
        if differ or set(a) != set(b) or final_loss(metrics) != final_loss(straight_metrics):
            print("FAIL: not bit-identical: " + ", ".join(differ[:5]))
            return 1
        if len(resumed_from) != KILLS:
            print(f"FAIL: {len(resumed_from)} restarts resumed, expected {KILLS}")
            return 1
    print("PASS: bit-identical after", KILLS, "kills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
