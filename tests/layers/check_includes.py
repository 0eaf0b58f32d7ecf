"""The layering rule's last loophole: every project include in the libraries and the binary is
written as a path from the repository root ("parallel/comm/communicator.h"). Such paths resolve
only through the include roots CMake gives each layer (cmake/TridentTargets.cmake), so a header
of a higher layer is not found and the build fails; a relative path ("../models/x.h") would be
found next to the including file and slip past that check, so it is refused here.

It also holds the op seam (docs/layers.md): code outside ops/ calls the op API (ops/ops.h) and
never names a backend, neither by including ops/cpu/ or ops/cuda/ (the include roots already
stop that in the libraries) nor by writing ops::cpu or ops::cuda. Inside ops/, the dispatch and
the CPU backend's thread setup may; outside, the tests of a backend (tests/ops, tests/cuda).

usage: check_includes.py SOURCE_DIR
"""
import os
import re
import sys

LAYERS = ["runtime", "ops", "parallel", "models", "launch"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
BACKEND = re.compile(r'ops/(cpu|cuda)/|\bops::(cpu|cuda)\b|namespace\s+(cpu|cuda)\s*=')
# Folders that may name a backend: the backends themselves, the dispatch, the CPU backend's thread
# setup (which sets OpenBLAS's threads and says which products the CPU kernel computes), and
# their own tests.
BACKEND_HOMES = ("ops/cpu/", "ops/cuda/", "ops/dispatch.cpp", "ops/cpu_threads.cpp", "tests/ops/",
                 "tests/cuda/")
SEAM_CHECKED = LAYERS + ["tests", "fuzz"]


def source_lines(root, tops):
    """(path relative to root, line number, line) of every C++/CUDA source below `tops`."""
    for top in tops:
        for folder, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        yield os.path.relpath(path, root), number, line


def main():
    root = sys.argv[1]
    bad = []
    checked = 0
    for rel, number, line in source_lines(root, LAYERS):
        match = INCLUDE.match(line)
        if not match:
            continue
        checked += 1
        target = match.group(1)
        generated = target.endswith(".pb.h") and "/" not in target
        if not generated and (target.startswith(".") or "/" not in target):
            bad.append(f'{rel}:{number}: #include "{target}" is not a path from the repository root')
    # Code outside the backends and their tests that names ops::cpu or ops::cuda.
    for rel, number, line in source_lines(root, SEAM_CHECKED):
        if not rel.startswith(BACKEND_HOMES) and BACKEND.search(line):
            bad.append(f"{rel}:{number}: names an op backend ({line.strip()}); "
                       "call the op API in ops/ops.h")
    if bad:
        sys.exit("FAILED:\n" + "\n".join(bad))
    print(f"{checked} includes, all from the repository root; no backend named outside ops/: OK")


if __name__ == "__main__":
    main()
