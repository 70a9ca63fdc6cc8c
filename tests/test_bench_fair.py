"""The benchmark is fair (issue 19 item 6): both sides run as shipped, with no profile
or flag of the bench's own, and its new work is new content, which the compile
re-queues (a `touch` would not be work any more: see test_input_change.py).
Run as a user runs it, at a tiny size; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_the_big_days_bench_reaches_a_first_step_on_both_sides_and_answers_quietly(
    tmp_path: Path,
):
    """bench/bigdays.py at a tiny size (the catch-up is its real 10 years: ours must
    start it within the bench's limit, as bounded cycles promise; plain is given 30 s)."""
    keep = tmp_path / "bigdays"
    r = subprocess.run(
        ["timeout", "-k", "10", "900", sys.executable, str(REPO / "bench" / "bigdays.py"),
         "--cases", "requeue,catchup,noop1m,gatemap", "--requeue-datasets", "100",
         "--noop-datasets", "10000", "--gate-years", "1", "--runs", "1", "--plain-timeout", "30",
         "--keep", str(keep)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # No profile of the bench's own (a gate workflow's compile writes profiles/default).
    mine = [p for p in keep.rglob("config.yaml") if p.parent.name != "default"]
    assert not mine, mine
    ours = [o for o in re.findall(r"^   ours: (.*)$", r.stdout, re.M) if "gate check" not in o]
    assert len(ours) == 2 and all(re.match(r"[0-9.]+ s, peak", o) for o in ours), r.stdout
    assert "mass requeue: 10 of 100 finished datasets" in r.stdout
    assert "plain: finished in" in r.stdout  # 10,000 one-step datasets: plain's no-op ends
    assert "WARNING" not in r.stdout, r.stdout  # every no-op after the first was quiet
    # The coverage map case: every measure made (each command exited 0), plain beside it.
    assert re.search(
        r"^   ours: first compile \(makes the map\) [0-9.]+ s .*right after the chunk "
        r"wrapper made one more; `gate make` of one chunk",
        r.stdout,
        re.M,
    ), r.stdout
    assert "a 10-minute gate, 1 years made (52,560 chunks)" in r.stdout


@pytest.mark.parametrize("bad", ["-1", "1441"])
def test_the_slurm_bench_refuses_a_step_time_out_of_range_in_one_line(bad: str):
    """Checked before any cluster is asked (so it holds where none runs)."""
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "slurm.py"), f"--step-minutes={bad}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "bench: --datasets must be 0..100000, --plain-max 0..100000, --datasm 0..30000 "
        "and --step-minutes 0..1440\n"
    )
