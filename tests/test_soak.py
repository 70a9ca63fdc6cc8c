"""The soak harness's short version (bench/soak.py --quick): hours of overlapping
cycles with long steps, kills, hand commands and gate requests, on real processes;
every invariant it checks must hold (it exits 1 and names the ones that do not)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def soak_keeps_every_invariant(*args: str, limit: int = 900) -> dict[str, int]:
    """bench/soak.py with these arguments: exit 0, every check 0, both kinds of kill
    played. What it played, by name."""
    r = subprocess.run(
        ["timeout", "-k", "10", str(limit), sys.executable, str(REPO / "bench" / "soak.py"),
         *args],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    lines = r.stdout.splitlines()
    assert lines[-1] == "soak: ok"
    checks = [ln.split() for ln in lines if ln.strip().startswith("check")]
    assert len(checks) == 12 and all(c[-1] == "0" for c in checks), r.stdout
    played = {" ".join(ln.split()[1:-1]): int(ln.split()[-1]) for ln in lines
              if ln.strip().startswith("played")}  # fmt: skip
    assert played["steps killed for memory (SIGKILL)"] >= 1, r.stdout
    assert played["steps killed for CPU time (SIGXCPU)"] >= 1, r.stdout
    return played


def test_soak_quick_keeps_every_invariant():
    played = soak_keeps_every_invariant("--quick", "--seed", "3")
    assert played["cycles"] >= 8 and played["groups"] == 8, played
