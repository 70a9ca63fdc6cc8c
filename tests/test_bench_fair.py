"""The benchmark is fair (issue 19 item 6): both sides run as shipped, with no profile
or flag of the bench's own, and its new work is new content, which the compile
re-queues (a `touch` would not be work any more: see test_input_change.py).
Run as a user runs it, at a tiny size; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_bench_runs_both_sides_as_shipped_on_new_content(tmp_path: Path):
    keep = tmp_path / "bench"
    r = subprocess.run(
        ["timeout", "-k", "10", "900", sys.executable, str(REPO / "bench" / "cycle.py"),
         "--sizes", "40", "--runs", "1", "--no-datasm", "--keep", str(keep)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # No profile of the bench's own (it once gave ours a greedy scheduler).
    assert not list(keep.rglob("config.yaml")), list(keep.rglob("config.yaml"))
    # The 1% work is new content: the compile re-queued it, and it all ran.
    work = re.findall(r"ours with datasets_per_job \d+: \S+ \(pending (\d+), left after (\d+)\)",
                      r.stdout)  # fmt: skip
    assert work and all(p == "1" and left == "0" for p, left in work), r.stdout
    assert "WARNING: work left" not in r.stdout
    assert "both as shipped (ours: profiles/local, plain: --cores all)" in r.stdout
