"""A step of the soak workflow, steered from outside through control/ files:

    control/hold-<DATASET>-<STEP>   wait (after writing control/waiting-<DATASET>-<STEP>)
                                    until control/release-<DATASET>-<STEP> exists
    control/fail-<DATASET>-<STEP>   exit 1 (each such file fails the step once: removed)

Every start and end goes to ledger/<DATASET>.log as one line: "start|end|fail STEP PID".
A start that finds an earlier start of the dataset still running (its pid alive and
this script) writes "overlap STEP PID OTHER" too: two jobs of one dataset at once.
"""

import fcntl
import os
import sys
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"step.py" in f.read()
    except OSError:
        return False


def log(what: str, step: str, dataset: str) -> None:
    os.makedirs(os.path.join(here, "ledger"), exist_ok=True)
    path = os.path.join(here, "ledger", f"{dataset}.log")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = f"{what} {step} {os.getpid()}\n"
        if what == "start":
            open_starts = {}
            with open(path) as f:
                for line in f:
                    w, _, pid = (line.split() + ["", "", ""])[:3]
                    if w == "start":
                        open_starts[pid] = True
                    elif w in ("end", "fail"):
                        open_starts.pop(pid, None)
            for pid in open_starts:
                if pid.isdigit() and int(pid) != os.getpid() and alive(int(pid)):
                    text += f"overlap {step} {os.getpid()} {pid}\n"
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main(step: str, dataset: str) -> int:
    control = os.path.join(here, "control")
    name = f"{dataset}-{step}"
    log("start", step, dataset)
    if os.path.exists(os.path.join(control, f"hold-{name}")):
        with open(os.path.join(control, f"waiting-{name}"), "w") as f:
            f.write(f"{os.getpid()}\n")
        while not os.path.exists(os.path.join(control, f"release-{name}")):
            time.sleep(0.05)
    try:
        os.unlink(os.path.join(control, f"fail-{name}"))
    except FileNotFoundError:
        pass
    else:
        log("fail", step, dataset)
        return 1
    log("end", step, dataset)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
