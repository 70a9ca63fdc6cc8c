"""A gate chunk of the soak workflow: logs "start|end GATE LOW PID" to ledger/gates.log
(and "overlap GATE LOW PID OTHER" when the same chunk is running in another live
process). control/hold-chunk-<LOW> holds it until control/release-chunk-<LOW>."""

import fcntl
import os
import sys
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"chunk.py" in f.read()
    except OSError:
        return False


def log(what: str, gate: str, low: str) -> None:
    os.makedirs(os.path.join(here, "ledger"), exist_ok=True)
    path = os.path.join(here, "ledger", "gates.log")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = f"{what} {gate} {low} {os.getpid()}\n"
        if what == "start":
            open_starts = {}
            with open(path) as f:
                for line in f:
                    w, g, lo, pid = (line.split() + ["", "", "", ""])[:4]
                    if (g, lo) != (gate, low):
                        continue
                    if w == "start":
                        open_starts[pid] = True
                    elif w == "end":
                        open_starts.pop(pid, None)
            for pid in open_starts:
                if pid.isdigit() and alive(int(pid)):
                    text += f"overlap {gate} {low} {os.getpid()} {pid}\n"
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main(gate: str, low: str, high: str) -> int:
    control = os.path.join(here, "control")
    log("start", gate, low)
    if os.path.exists(os.path.join(control, f"hold-chunk-{low}")):
        while not os.path.exists(os.path.join(control, f"release-chunk-{low}")):
            time.sleep(0.05)
    log("end", gate, low)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
