"""A step (or gate chunk) of the soak workflow, steered from outside through control/:

    step.py STEP DATASET        ledger/<DATASET>.log: "start|end|fail STEP PID"
        control/hold-<DATASET>-<STEP>  wait (after writing control/waiting-<DATASET>-<STEP>
                                       with the pid) until control/release-<DATASET>-<STEP>
        control/fail-<DATASET>-<STEP>  exit 1 (removed: each such file fails the step once)
        control/oom-<DATASET>-<STEP>   killed by SIGKILL, as the OOM killer does (once)
        control/cpu-<DATASET>-<STEP>   killed by the kernel's SIGXCPU at a 1 s CPU-time
                                       limit, a time limit's kill (once)
    step.py chunk GATE LOW      ledger/gates.log: "start|end GATE LOW PID"

A start that finds an earlier start of the same step (or chunk) still running, its pid
alive and this script, also writes "overlap ... PID OTHER": two jobs of it at once.
"""

import fcntl
import os
import resource
import signal
import sys
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"step.py" in f.read()
    except OSError:
        return False


def log(ledger: str, what: str, key: list[str]) -> None:
    """One line "WHAT KEY... PID", under the ledger's lock; on a start, the overlap check."""
    os.makedirs(os.path.join(here, "ledger"), exist_ok=True)
    path = os.path.join(here, "ledger", ledger)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = " ".join([what, *key, str(os.getpid())]) + "\n"
        if what == "start":
            open_starts = set()
            with open(path) as f:
                for line in f:
                    w, *rest = line.split()
                    if rest[: len(key)] != key or len(rest) != len(key) + 1:
                        continue
                    if w == "start":
                        open_starts.add(rest[-1])
                    elif w in ("end", "fail"):
                        open_starts.discard(rest[-1])
            for pid in sorted(open_starts):
                if pid.isdigit() and alive(int(pid)):
                    text += " ".join(["overlap", *key, str(os.getpid()), pid]) + "\n"
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def wait_while_held(name: str) -> None:
    control = os.path.join(here, "control")
    if os.path.exists(os.path.join(control, f"hold-{name}")):
        with open(os.path.join(control, f"waiting-{name}"), "w") as f:
            f.write(f"{os.getpid()}\n")
        while not os.path.exists(os.path.join(control, f"release-{name}")):
            time.sleep(0.05)


def consume(name: str) -> bool:
    """Take a one-shot control file: True if it was there."""
    try:
        os.unlink(os.path.join(here, "control", name))
    except FileNotFoundError:
        return False
    return True


def main(kind: str, *args: str) -> int:
    if kind == "chunk":
        gate, low = args[:2]
        log("gates.log", "start", [gate, low])
        wait_while_held(f"chunk-{low}")
        log("gates.log", "end", [gate, low])
        return 0
    step, dataset = kind, args[0]
    log(f"{dataset}.log", "start", [step])
    wait_while_held(f"{dataset}-{step}")
    if consume(f"fail-{dataset}-{step}"):
        log(f"{dataset}.log", "fail", [step])
        return 1
    if consume(f"oom-{dataset}-{step}"):
        log(f"{dataset}.log", "kill", [step, "memory"])
        os.kill(os.getpid(), signal.SIGKILL)
    if consume(f"cpu-{dataset}-{step}"):
        log(f"{dataset}.log", "kill", [step, "time"])
        resource.setrlimit(resource.RLIMIT_CPU, (1, resource.RLIM_INFINITY))
        while True:  # until the kernel sends SIGXCPU
            pass
    log(f"{dataset}.log", "end", [step])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
