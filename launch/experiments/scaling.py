#!/usr/bin/python3
"""Strong and weak scaling sweeps of a small model over layouts, measured beside the planner.

Every point is one `mpirun -np R trident bench scaling` run: a few training steps of the model
with every communicator behind a DelayedLink (the stated latency and bandwidth), reporting per
rank the wall time per step, the compute thread's CPU time per step and the allocator's peak,
beside the planner's prediction for the same config and layout.

    /usr/bin/python3 launch/experiments/scaling.py --trident build/launch/trident \\
        --out-dir docs/images

Strong scaling keeps the global batch fixed (--strong-batch rows); weak scaling keeps the rows
per data-parallel rank fixed (--weak-rows-per-rank, global batch = rows × R). The planner is
calibrated once on a one-rank run: its compute rate is set to the model FLOPs per second that
run reached (so the optimizer and non-matmul work are folded into that rate), its links to the
DelayedLink's bandwidth; it has no latency term.

A machine with fewer cores than ranks runs the ranks time-shared: the wall time then includes
waiting for a core. The CSV and the plots keep the measured wall time, and add what does not
depend on the core count: the busiest rank's compute time (CPU time of its compute thread).
Writes scaling_strong.csv / scaling_weak.csv and the PNGs to --out-dir.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

from markdown_table import write_markdown_table

LAYOUTS = {
    # name: (description, function ranks -> list of --set overrides, or None if not possible)
    "dp": ("data parallel", lambda r: [f"parallel.dp={r}"]),
    "dp-zero1": ("data parallel, ZeRO-1",
                 lambda r: [f"parallel.dp={r}", "parallel.zero1=true"]),
    "tp": ("tensor parallel", lambda r: [f"parallel.tp={r}"] if r <= 4 else None),
    "dp2-tp": ("dp 2 × tensor parallel",
               lambda r: ["parallel.dp=2", f"parallel.tp={r // 2}"] if 4 <= r <= 8 else None),
    "ep": ("expert parallel over all ranks (attention dp), 1 chunk",
           lambda r: [f"parallel.dp={r}", f"parallel.ep={r}", "parallel.a2a_chunks=1"]
           if r >= 2 else None),
    "ep-chunks4": ("expert parallel over all ranks, 4 overlap chunks",
                   lambda r: [f"parallel.dp={r}", f"parallel.ep={r}", "parallel.a2a_chunks=4"]
                   if r >= 2 else None),
    "dp-ep2": ("data parallel, experts over ep 2 (edp = R/2)",
               lambda r: [f"parallel.dp={r}", "parallel.ep=2", "parallel.a2a_chunks=1"]
               if r >= 4 else None),
    # The small model has 4 decoder layers: pp up to 4 gives every stage at least one.
    "pp": ("pipeline parallel over all ranks, 1f1b",
           lambda r: [f"parallel.pp={r}", "parallel.dp=1", "parallel.schedule=1f1b"]
           if 2 <= r <= 4 else None),
    "pp2-dp": ("pipeline 2 (1f1b) × data parallel R/2",
               lambda r: ["parallel.pp=2", f"parallel.dp={r // 2}", "parallel.schedule=1f1b"]
               if 4 <= r <= 8 else None),
}

FIELDS = ["mode", "layout", "ranks", "pp", "dp", "tp", "ep", "zero1", "a2a_chunks", "global_batch",
          "tokens_per_step", "step_s", "tokens_per_s", "compute_s", "wait_s", "speedup",
          "efficiency", "compute_speedup", "compute_efficiency", "predicted_step_s",
          "predicted_compute_s", "predicted_bubble_s", "predicted_speedup", "predicted_efficiency",
          "measured_peak_mib", "predicted_peak_mib", "peak_error", "cores", "oversubscribed",
          "load_avg"]


def env_for_mpi():
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMP_NUM_THREADS": "1"})
    return env


def run_point(args, ranks, sets, hw):
    """One `trident bench scaling` run; returns its JSON record."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    command = [args.mpirun, "-np", str(ranks), "--oversubscribe", args.trident, "bench",
               "scaling", "--config", args.config, "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--latency-us", str(args.latency_us), "--gbps",
               str(args.gbps), "--json", out]
    for s in args.set + sets:
        command += ["--set", s]
    for h in hw:
        command += ["--hw", h]
    try:
        load = os.getloadavg()[0]
        subprocess.run(command, check=True, env=env_for_mpi(), timeout=args.timeout,
                       stdout=subprocess.DEVNULL)
        with open(out) as f:
            record = json.load(f)
        # Other processes on the machine take cores too: the wall time is only as good as this.
        record["load_avg"] = max(load, os.getloadavg()[0])
        return record
    finally:
        os.unlink(out)


def planner_hardware(args, calibration):
    """Planner figures for this machine: compute rate from the one-rank run, links from the
    DelayedLink settings (one node holds every rank, so every group uses the 'NVLink' figure)."""
    tflops = (calibration["model_flops_per_token"] * calibration["tokens_per_step"]
              / calibration["compute_s"] / 1e12)
    return [f"peak_tflops_bf16={tflops:.6g}", "mfu=1", "comm_sm_fraction=0",
            f"nvlink_gbps={2 * args.gbps:g}", "nvlink_efficiency=1", f"ib_gbps={args.gbps:g}",
            "ib_efficiency=1", "gpus_per_node=64", "hbm_bandwidth_gbps=1e6"], tflops


def batch_sets(args, mode, ranks):
    rows = args.strong_batch if mode == "strong" else args.weak_rows_per_rank * ranks
    return [f"train.global_batch={rows}", f"train.micro_batch={args.micro_batch}"]


def sweep(args, mode, hw):
    rows = []
    single = None  # every layout starts from the same one-rank run
    for name in args.layouts:
        _, make = LAYOUTS[name]
        for ranks in args.ranks:
            sets = ["parallel.dp=1"] if ranks == 1 else make(ranks)
            if sets is None:
                continue
            if ranks == 1 and single is not None:
                record = single
            else:
                print(f"[{mode}] {name} ranks={ranks}: {' '.join(sets)}", flush=True)
                record = run_point(args, ranks, sets + batch_sets(args, mode, ranks), hw)
                if ranks == 1:
                    single = record
            rows.append(to_row(mode, name, ranks, record, args.cores))
            rows[-1]["load_avg"] = record["load_avg"]
    add_ratios(rows, mode)
    return rows


def to_row(mode, name, ranks, r, cores):
    peak = max(k["peak_bytes"] for k in r["ranks"])
    predicted = max(k["predicted_bytes"] for k in r["ranks"])
    return {
        "mode": mode, "layout": name, "ranks": ranks, "pp": r.get("pp", 1), "dp": r["dp"], "tp": r["tp"],
        "ep": r["ep"], "zero1": int(r["zero1"]), "a2a_chunks": r["a2a_chunks"],
        "global_batch": r["global_batch"], "tokens_per_step": int(r["tokens_per_step"]),
        "step_s": r["step_s"], "tokens_per_s": r["tokens_per_s"], "compute_s": r["compute_s"],
        "wait_s": max(0.0, r["step_s"] - r["compute_s"]),
        "predicted_step_s": r["predicted_step_s"],
        "predicted_compute_s": r["predicted_compute_s"],
        "predicted_bubble_s": r.get("predicted_bubble_s", 0.0),
        "measured_peak_mib": peak / 2**20, "predicted_peak_mib": predicted / 2**20,
        "peak_error": predicted / peak - 1.0, "cores": cores,
        "oversubscribed": int(ranks > cores)}


def add_ratios(rows, mode):
    """Speedup against the one-rank point of the same layout: strong = time ratio, weak =
    throughput ratio (tokens per second of work); efficiency = speedup / ranks."""
    base = {r["layout"]: r for r in rows if r["ranks"] == 1}
    for r in rows:
        b = base.get(r["layout"])
        if b is None:
            continue
        n = r["ranks"]
        scale = 1.0 if mode == "strong" else r["tokens_per_step"] / b["tokens_per_step"]
        for prefix, key in (("", "step_s"), ("compute_", "compute_s"),
                            ("predicted_", "predicted_step_s")):
            speedup = scale * b[key] / r[key] if r[key] > 0 else 0.0
            r[prefix + "speedup"] = speedup
            r[prefix + "efficiency"] = speedup / n


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print("wrote", path)


def write_markdown(rows, path):
    """The CSV's main columns as a Markdown table (docs/scaling.md)."""
    head = ("| layout | ranks | tokens/step | wall s/step | compute s/step | compute speedup | "
            "planner s/step | planner bubble s | planner speedup | peak MiB | planner MiB | "
            "peak error |")
    lines = []
    for r in rows:
        over = "*" if r["oversubscribed"] else ""
        lines.append(
            f"| {r['layout']} | {r['ranks']}{over} | {r['tokens_per_step']} | "
            f"{r['step_s']:.3f} | {r['compute_s']:.3f} | {r.get('compute_speedup', 0):.2f} | "
            f"{r['predicted_step_s']:.3f} | {r.get('predicted_bubble_s', 0):.3f} | "
            f"{r.get('predicted_speedup', 0):.2f} | "
            f"{r['measured_peak_mib']:.1f} | {r['predicted_peak_mib']:.1f} | "
            f"{100 * r['peak_error']:+.1f}% |")
    write_markdown_table(path, head, lines)


def plot(rows, mode, args, tflops, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (ax_step, ax_comp), (ax_speed, ax_mem) = axes
    ranks_all = sorted({r["ranks"] for r in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(r["layout"] for r in rows))  # merged layouts too
    for i, name in enumerate(names):
        sel = sorted((r for r in rows if r["layout"] == name), key=lambda r: r["ranks"])
        if len(sel) < 2:
            continue
        c = colors[i % len(colors)]
        x = [r["ranks"] for r in sel]
        ax_step.plot(x, [r["step_s"] for r in sel], "o-", color=c, label=name)
        ax_step.plot(x, [r["predicted_step_s"] for r in sel], "--", color=c, alpha=0.7)
        ax_comp.plot(x, [r["compute_s"] for r in sel], "o-", color=c, label=name)
        ax_comp.plot(x, [r["predicted_compute_s"] for r in sel], "--", color=c, alpha=0.7)
        ax_speed.plot(x, [r.get("compute_speedup", 0) for r in sel], "o-", color=c, label=name)
        ax_speed.plot(x, [r.get("predicted_speedup", 0) for r in sel], "--", color=c, alpha=0.7)
        ax_mem.plot(x, [r["measured_peak_mib"] for r in sel], "o-", color=c, label=name)
        ax_mem.plot(x, [r["predicted_peak_mib"] for r in sel], "--", color=c, alpha=0.7)
    ax_speed.plot(ranks_all, ranks_all, color="grey", lw=0.8, label="ideal")  # both modes
    over = [n for n in ranks_all if n > args.cores]
    for ax in (ax_step, ax_comp, ax_speed, ax_mem):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks_all, [str(n) for n in ranks_all])
        ax.set_xlabel("ranks")
        ax.grid(alpha=0.3)
        if over:
            ax.axvspan(args.cores * 1.2, max(over) * 1.2, color="grey", alpha=0.12)
    load = max(r["load_avg"] for r in rows)
    what = ("global batch fixed" if mode == "strong" else "rows per rank fixed")
    ax_step.set_title("wall time per step (solid) and planner (dashed)")
    ax_step.set_ylabel("seconds per step")
    ax_step.set_yscale("log")
    ax_comp.set_title("busiest rank's compute time per step (CPU time; core count does not "
                      "matter)\nplanner's compute term (dashed)", fontsize=9)
    ax_comp.set_ylabel("seconds per step")
    ax_comp.set_yscale("log")
    label = "speedup" if mode == "strong" else "throughput ratio"
    ax_speed.set_title(f"{label} from the compute time (solid) and the planner (dashed)",
                       fontsize=9)
    ax_speed.set_ylabel(label + " over one rank")
    ax_mem.set_title("peak memory per rank: allocator (solid), planner (dashed)")
    ax_mem.set_ylabel("MiB (busiest rank)")
    ax_step.legend(fontsize=7, loc="upper left")
    ax_speed.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{mode} scaling ({what}) of '{args.config}' on {args.cores} CPU cores, "
                 f"DelayedLink {args.latency_us:g} µs + {args.gbps:g} GB/s per operation; "
                 f"planner calibrated to {tflops * 1e3:.1f} GFLOP/s per rank\n"
                 f"shaded: more ranks than the {args.cores} cores, time-shared (the wall time "
                 f"includes waiting for a core); 1-min load average of the machine during the "
                 f"sweep up to {load:.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


def read_csv(path, replaced_layouts):
    """The rows of an earlier sweep, numbers as numbers; columns added since then take their
    values for a layout without pipeline (pp 1, no bubble)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["layout"] in replaced_layouts:
                continue
            out = {"pp": 1, "predicted_bubble_s": 0.0}
            for k, v in row.items():
                if k in ("mode", "layout") or v in (None, ""):
                    out[k] = v if k in ("mode", "layout") else out.get(k, 0)
                else:
                    number = float(v)
                    out[k] = int(number) if number.is_integer() and "." not in v else number
            rows.append(out)
    return rows


def merged_calibration(args, calibration, hw, tflops):
    """The compute rate the kept rows were predicted with, from their one-rank strong point
    (predicted_compute_s = model FLOPs of the step / rate), so old and new predictions agree."""
    strong = read_csv(os.path.join(args.out_dir, "scaling_strong.csv"), args.layouts)
    base = [r for r in strong if r["ranks"] == 1
            and r["tokens_per_step"] == calibration["tokens_per_step"]]
    if not base:
        return hw, tflops
    old = (calibration["model_flops_per_token"] * calibration["tokens_per_step"]
           / base[0]["predicted_compute_s"] / 1e12)
    print(f"merging: planner compute rate {old * 1e3:.2f} GFLOP/s as in the kept rows "
          f"(this machine now: {tflops * 1e3:.2f})", flush=True)
    return [f"peak_tflops_bf16={old:.6g}" if h.startswith("peak_tflops_bf16=") else h
            for h in hw], old


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trident", default="build/launch/trident")
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--config", default="small")
    p.add_argument("--set", action="append", default=[], help="config override for every run")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    p.add_argument("--modes", nargs="+", default=["strong", "weak"], choices=["strong", "weak"])
    p.add_argument("--strong-batch", type=int, default=32, help="global batch (rows), strong")
    p.add_argument("--weak-rows-per-rank", type=int, default=8, help="rows per rank, weak")
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps (the median counts)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--latency-us", type=float, default=20.0)
    p.add_argument("--gbps", type=float, default=0.5, help="DelayedLink bandwidth, GB/s")
    p.add_argument("--cores", type=int, default=os.cpu_count())
    p.add_argument("--timeout", type=float, default=300, help="seconds per run")
    p.add_argument("--out-dir", default=".")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of other layouts already in --out-dir's CSVs (this "
                        "sweep's layouts replace theirs), and calibrate the planner to the "
                        "compute rate those rows were predicted with")
    args = p.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    print("calibrating the planner on one rank", flush=True)
    calibration = run_point(args, 1, ["parallel.dp=1"] + batch_sets(args, "strong", 1), [])
    hw, tflops = planner_hardware(args, calibration)
    kept = {mode: read_csv(os.path.join(args.out_dir, f"scaling_{mode}.csv"), args.layouts)
            if args.merge else [] for mode in args.modes}
    if args.merge:
        hw, tflops = merged_calibration(args, calibration, hw, tflops)
    print(f"planner compute rate: {tflops * 1e3:.2f} GFLOP/s; hardware: {' '.join(hw)}")
    for mode in args.modes:
        rows = sweep(args, mode, hw)
        if not rows:
            sys.exit(f"the {mode} sweep produced no rows")
        rows = kept[mode] + rows
        write_csv(rows, os.path.join(args.out_dir, f"scaling_{mode}.csv"))
        write_markdown(rows, os.path.join(args.out_dir, f"scaling_{mode}.md"))
        if not args.no_plot:
            plot(rows, mode, args, tflops, os.path.join(args.out_dir, f"scaling_{mode}.png"))


if __name__ == "__main__":
    main()
