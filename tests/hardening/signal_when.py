"""Sends a signal to a command once its output shows a pattern, as a user pressing Ctrl-C
(or a scheduler sending SIGTERM) mid-run would; passes the output through and exits with the
command's status (128 + N when a signal N ended it).

usage: signal_when.py INT|TERM|USR1 PATTERN [--twice] -- COMMAND...
"""
import signal
import subprocess
import sys
import threading
import time

name, pattern = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
twice = "--twice" in rest[:rest.index("--")]
command = rest[rest.index("--") + 1:]
number = getattr(signal, "SIG" + name)

proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
sent = threading.Event()


def send_twice():
    """The first signal, then more every 5 ms until the process is gone: the second must reach
    it however fast the run would otherwise finish its step and save (a fixed pause let a quick
    save end first), and signals that coalesce while it is not scheduled cost nothing."""
    proc.send_signal(number)
    while proc.poll() is None:
        time.sleep(0.005)
        try:
            proc.send_signal(number)
        except ProcessLookupError:
            break


for line in proc.stdout:
    sys.stdout.write(line)
    sys.stdout.flush()
    if not sent.is_set() and pattern in line:
        sent.set()
        if twice:
            threading.Thread(target=send_twice, daemon=True).start()
        else:
            proc.send_signal(number)
        print(f"[signal_when: sent SIG{name}{' twice' if twice else ''}]", flush=True)
status = proc.wait()
if not sent.is_set():
    print(f"[signal_when: '{pattern}' never appeared; no signal sent]")
sys.exit(128 - status if status < 0 else status)
