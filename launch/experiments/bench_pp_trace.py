#!/usr/bin/python3
"""Where a pipeline step's time went, from `trident bench pp --trace PREFIX`.

Usage: /usr/bin/python3 launch/experiments/bench_pp_trace.py PREFIX [--cores N]

Per schedule, for the measured step and its simulation (PREFIX.sim.csv):
  - how long 0, 1, 2, ... ranks were computing at once, and the core time no rank asked for
    (idle by demand: cores minus ranks computing, when fewer ranks compute than there are
    cores);
  - the CPU time of the executor threads, of every other thread by name (mpi-progress,
    arrival-probe, MPI's own), and what is left of cores x step (other processes);
  - every receive that ended more than 20 us after the rank's previous compute: the time
    from both sides having posted it to the receiver seeing the data. This includes any time
    the receiving thread was runnable but had no core, not only late wake-ups.
"""
import argparse
import collections
import glob
import re
import statistics

COMPUTE = ("F", "B", "W")


def load(paths):
    actions = collections.defaultdict(list)
    executor_cpu = collections.defaultdict(float)
    process_cpu = collections.defaultdict(float)
    threads = collections.defaultdict(collections.Counter)
    for path in paths:
        for line in open(path):
            f = line.strip().split(",")
            schedule, rank, kind = f[0], int(f[1]), f[2]
            if kind == "cpu":
                executor_cpu[schedule] += float(f[5])
                process_cpu[schedule] += float(f[6])
            elif kind == "thread":
                threads[schedule][re.sub(r":\d+$", "", f[5])] += float(f[6])
            else:
                actions[schedule].append(
                    (rank, kind, int(f[3]), int(f[4]), float(f[5]), float(f[6])))
    return actions, executor_cpu, process_cpu, threads


def concurrency(actions, step):
    """Time (ms) during which n ranks were computing, for each n."""
    events = []
    for _, kind, _, _, start, end in actions:
        if kind in COMPUTE:
            events += [(start, 1), (end, -1)]
    events.sort()
    spent = collections.Counter()
    running, t = 0, 0.0
    for time, delta in events:
        spent[running] += time - t
        t, running = time, running + delta
    spent[0] += step - t
    return spent


def waited_hops(actions):
    sends = {}
    for rank, kind, m, s, start, _ in actions:
        if kind == "SendActivation":
            sends[("A", m, s + 1)] = start  # a send names the producing stage
        elif kind == "SendGrad":
            sends[("G", m, s - 1)] = start
    hops = []
    by_rank = collections.defaultdict(list)
    for a in actions:
        by_rank[a[0]].append(a)
    for rank_actions in by_rank.values():
        last_compute_end = 0.0
        for _, kind, m, s, start, end in rank_actions:
            if kind in COMPUTE:
                last_compute_end = end
            elif kind in ("RecvActivation", "RecvGrad"):
                posted = sends.get(("A" if kind == "RecvActivation" else "G", m, s))
                if posted is not None and end - last_compute_end > 0.02:
                    # From the later of the two postings: a receive posted late (outside the
                    # receive window) cannot see data before it exists on this side.
                    hops.append(end - max(posted, start))
    return sorted(hops)


def idle_by_demand(spent, cores, step):
    return cores * step - sum(min(n, cores) * t for n, t in spent.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    measured, executor_cpu, process_cpu, threads = load(
        sorted(glob.glob(args.prefix + ".rank*.csv")))
    simulated, _, _, _ = load(glob.glob(args.prefix + ".sim.csv"))
    for schedule, actions in measured.items():
        step = max(a[5] for a in actions)
        spent = concurrency(actions, step)
        idle = idle_by_demand(spent, args.cores, step)
        print(f"{schedule}: measured step {step:.1f} ms = {args.cores * step:.1f} core-ms")
        print("  ranks computing (ms): " +
              " ".join(f"{n}:{t:.1f}" for n, t in sorted(spent.items())))
        print(f"  executor threads {executor_cpu[schedule]:.1f} core-ms; other threads: " +
              ", ".join(f"{name} {t:.1f}" for name, t in threads[schedule].most_common()
                        if name != "trident") +
              f", unnamed {threads[schedule]['trident'] - executor_cpu[schedule]:.1f}")
        print(f"  idle by demand {idle:.1f} core-ms; other processes "
              f"{args.cores * step - idle - process_cpu[schedule]:.1f} core-ms")
        hops = waited_hops(actions)
        if hops:
            print(f"  receives seen late {len(hops)}: posted -> seen (ms) min {hops[0]:.3f} "
                  f"p25 {hops[len(hops) // 4]:.3f} median {statistics.median(hops):.3f} "
                  f"max {hops[-1]:.3f}")
        if schedule in simulated:
            sim = simulated[schedule]
            sim_step = max(a[5] for a in sim)
            sim_spent = concurrency(sim, sim_step)
            work = sum(a[5] - a[4] for a in sim if a[1] in COMPUTE)
            print(f"  simulated step {sim_step:.1f} ms; ranks computing (ms): " +
                  " ".join(f"{n}:{t:.1f}" for n, t in sorted(sim_spent.items())) +
                  f"; idle by demand {idle_by_demand(sim_spent, args.cores, sim_step):.1f} "
                  f"core-ms")


if __name__ == "__main__":
    main()
