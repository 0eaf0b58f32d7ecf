"""Runs cases of the bad-input suite (bad_inputs.cases) and checks each one.

A case is a shell command with an expected exit status and words its output must contain. Every
case must also end within its time limit (no hang), not by a signal unless it expects one (no
crash), without an internal error where a user error is expected, with no process of it left
behind, and its `after` check (what must still be intact) must pass.

The command runs with /bin/sh in a fresh work directory, with these variables:
  TRIDENT  the trident binary       FIX    the fixtures (make_fixtures.py; read only)
  MPIRUN   mpirun                   WORK   the work directory (also the current directory)
  AS_USER  a prefix running the rest as an unprivileged user (permissions bind root too)
  HERE     this folder              PY     Debian's /usr/bin/python3

usage: run_case.py CASES FIXTURES TRIDENT MPIRUN WORKROOT (--case ID | --all | --list-pending)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

KEYS = ("exit", "expect", "run", "after", "timeout", "pending")


def load_cases(path):
    cases, current = {}, None
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        header = re.fullmatch(r"\[([a-z0-9_]+)\]", line.strip())
        if header:
            current = header.group(1)
            if current in cases:
                sys.exit(f"{path}:{number}: case {current} defined twice")
            cases[current] = {"line": number}
            continue
        key, _, value = line.strip().partition(":")
        if current is None or key not in KEYS:
            sys.exit(f"{path}:{number}: expected '[id]' or one of {', '.join(KEYS)}: {line}")
        cases[current][key] = (cases[current].get(key, "") + " " + value.strip()).strip()
    for name, case in cases.items():
        for key in ("run", "exit") if "pending" not in case else ("run",):
            if key not in case:
                sys.exit(f"{path}:{case['line']}: case {name} has no '{key}'")
    return cases


def as_user_prefix():
    if os.geteuid() != 0:
        return ""
    return "setpriv --reuid=65534 --regid=65534 --clear-groups --"


def leftover(pgid, grace=5.0):
    """True if a process of the case's group is still alive after `grace` seconds.

    The grace covers helpers that end on their own once the command has exited, such as the
    symbolizer a sanitizer build starts for its exit-time leak check."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def run_case(name, case, env, workroot):
    work = os.path.join(workroot, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o777)  # the unprivileged user of AS_USER cases writes here too
    env = dict(env, WORK=work)
    limit = float(case.get("timeout", "120"))
    start = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", case["run"]], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=limit)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        hung = True
    elapsed = time.monotonic() - start
    text = output.decode("utf-8", "replace")
    failures = []
    if hung:
        failures.append(f"no exit within {limit:.0f} s (a hang)")
    status = proc.returncode
    expected = int(case["exit"])
    if not hung and status != expected:
        failures.append(f"exit status {status}, expected {expected}")
    if status is not None and (status < 0 or status > 128) and expected <= 128:
        failures.append(f"ended by a signal (status {status}): a crash")
    lowered = text.lower()
    for word in filter(None, (w.strip() for w in case.get("expect", "").split(";"))):
        if word.lower() not in lowered:
            failures.append(f"output lacks '{word}'")
    if expected == 2:
        for bad in ("internal error", "check failed", "segmentation fault", "core dumped"):
            if bad in lowered:
                failures.append(f"a user error that reads like a crash ('{bad}')")
    if leftover(proc.pid):
        failures.append("processes of the case were left running")
        os.killpg(proc.pid, signal.SIGKILL)
    if "after" in case and not hung:
        check = subprocess.run(["/bin/sh", "-c", case["after"]], cwd=work, env=env,
                               capture_output=True, text=True, timeout=120)
        if check.returncode != 0:
            failures.append(f"after-check failed: {case['after']}\n{check.stdout}{check.stderr}")
    print(f"--- case {name} (line {case['line']}): exit {status} in {elapsed:.1f} s")
    print(f"$ {case['run']}")
    print(text if len(text) < 6000 else text[:2000] + "\n[...]\n" + text[-4000:])
    for failure in failures:
        print(f"FAIL {name}: {failure}")
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    return not failures


def main():
    cases_path, fixtures, trident, mpirun, workroot, mode = sys.argv[1:7]
    cases = load_cases(cases_path)
    if mode == "--list-pending":
        for name, case in cases.items():
            if "pending" in case:
                print(f"{name}: {case['pending']}\n  $ {case['run']}")
        return 0
    env = dict(os.environ, TRIDENT=trident, FIX=fixtures, MPIRUN=mpirun, AS_USER=as_user_prefix(),
               HERE=os.path.dirname(os.path.abspath(__file__)), PY="/usr/bin/python3",
               OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    if mode == "--all":
        names = [n for n, c in cases.items() if "pending" not in c]
    elif mode == "--case":
        names = [sys.argv[7]]
        if names[0] not in cases or "pending" in cases[names[0]]:
            sys.exit(f"no active case {names[0]} in {cases_path}")
    else:
        sys.exit(__doc__)
    failed = [n for n in names if not run_case(n, cases[n], env, workroot)]
    print(f"{len(names) - len(failed)} of {len(names)} cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
