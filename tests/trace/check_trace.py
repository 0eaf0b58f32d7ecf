#!/usr/bin/python3
"""Checks per-rank Chrome traces: valid JSON, one file per rank, every track nested, comm
operations on the comm track(s), compute spans on the compute tracks (the host's and the compute
stream's).

  check_trace.py DIR RANKS                 check the files in DIR
  check_trace.py --run MPIEXEC -np N TRIDENT
                                           run a small `trident bench moe --trace` under mpirun
                                           (N ranks) into a temporary directory, then check it
"""
import json
import os
import subprocess
import sys
import tempfile


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check_nested(spans, track, path):
    spans = sorted(spans, key=lambda s: (s["ts"], -s["dur"]))
    stack = []
    for s in spans:
        end = s["ts"] + s["dur"]
        while stack and stack[-1][1] <= s["ts"]:
            stack.pop()
        if stack and end > stack[-1][1] + 1e-3:
            fail(f"{path}: on '{track}', '{s['name']}' overlaps '{stack[-1][0]}' without nesting")
        stack.append((s["name"], end))


def check_dir(directory, ranks):
    names = sorted(os.listdir(directory))
    expected = [f"trace_rank{r}.json" for r in range(ranks)]
    if names != sorted(expected):
        fail(f"{directory} holds {names}, expected {expected}")
    for rank in range(ranks):
        path = os.path.join(directory, f"trace_rank{rank}.json")
        with open(path) as handle:
            doc = json.load(handle)
        events = doc["traceEvents"]
        tracks = {e["tid"]: e["args"]["name"] for e in events
                  if e["ph"] == "M" and e["name"] == "thread_name"}
        spans = [e for e in events if e["ph"] == "X"]
        if any(e["pid"] != rank for e in events):
            fail(f"{path}: an event's pid is not {rank}")
        by_track = {}
        for e in spans:
            if e["tid"] not in tracks:
                fail(f"{path}: event '{e['name']}' on unnamed track {e['tid']}")
            by_track.setdefault(tracks[e["tid"]], []).append(e)
        for track, items in by_track.items():
            check_nested(items, track, path)
        comm = [e for t, items in by_track.items() if t == "comm" or t.startswith("comm ")
                and not t.startswith("comm wait") for e in items]
        a2a = [e for e in comm if e["name"].startswith("ep all_to_all_v")]
        if not a2a:
            fail(f"{path}: no 'ep all_to_all_v' events on the comm track")
        if any(e["cat"] != "comm" or "bytes" not in e.get("args", {}) for e in comm):
            fail(f"{path}: a comm-track event lacks cat 'comm' or its bytes")
        compute = {e["name"] for e in by_track.get("compute", [])}
        for needed in ("layer overlap", "layer no-overlap", "moe forward", "moe backward"):
            if needed not in compute:
                fail(f"{path}: no compute span '{needed}'")
        # The expert GEMMs and the shared expert run on the compute stream (docs/streams.md).
        stream = {e["name"] for e in by_track.get("compute (stream compute)", [])}
        for needed in ("ep experts fwd 0", "ep experts bwd 1", "ep shared expert"):
            if needed not in stream:
                fail(f"{path}: no span '{needed}' on the track 'compute (stream compute)'")
        # The overlapped layer posts 1 (counts) + 2 chunks × 2 (dispatch, combine) × 2 (fwd, bwd).
        overlap = next(e for e in by_track["compute"] if e["name"] == "layer overlap")
        inside = [e for e in a2a if overlap["ts"] <= e["ts"] <= overlap["ts"] + overlap["dur"]]
        if len(inside) != 9:
            fail(f"{path}: {len(inside)} all-to-alls posted inside 'layer overlap', expected 9")
        print(f"{path}: {len(spans)} spans, {len(comm)} comm, tracks {sorted(by_track)}")


def main():
    if sys.argv[1] == "--run":
        mpiexec, np_flag, ranks, trident = sys.argv[2:6]
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "traces")
            command = [mpiexec, np_flag, ranks, "--oversubscribe", trident, "bench", "moe",
                       "--tokens", "128", "--seq", "64", "--hidden", "32", "--expert-ffn", "32",
                       "--experts", "8", "--top-k", "2", "--gbps", "1", "--chunks", "2",
                       "--iters", "1", "--warmup", "0", "--trace", out]
            result = subprocess.run(command, capture_output=True, text=True, timeout=240)
            print(result.stdout + result.stderr)
            if result.returncode != 0:
                fail(f"{' '.join(command)} exited with {result.returncode}")
            check_dir(out, int(ranks))
    else:
        check_dir(sys.argv[1], int(sys.argv[2]))
    print("OK")


if __name__ == "__main__":
    main()
