"""A gate's persistent coverage map (issue 19 item 3): `gate check`, `gaps`, `range` and
`coverage` answer from it, and it is never stale: a marker made or removed behind its
back, or a damaged map, makes it rebuilt. Real padocc, real Snakemake; no timing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import padocc
from test_gate_bounds import MAKE, NOW, workflow

RACY = 2.1  # a map is kept only once the markers are 2 s old (a change must show)

GATES = """\
gates:
  s:
    axis: serial
    maxrange: 1
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    retries: 0
    max_failures: 1
"""


def gate(tmp_path: Path, *args: str):
    return padocc("gate", *args, "-C", "wf", "--now", NOW, cwd=tmp_path, timeout=600)


def coverage(tmp_path: Path, lo: str = "0", hi: str = "12") -> list[str]:
    r = gate(tmp_path, "coverage", "s", lo, hi)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.fixture
def made(tmp_path: Path) -> Path:
    """Chunks 0..10 of a serial gate made, and the map kept by a later query."""
    wf = workflow(tmp_path, GATES, make__py=MAKE)
    r = gate(tmp_path, "make", "s", "0", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(RACY)
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]
    assert (wf / ".padocc" / "survey" / "coverage" / "s.json").is_file()
    return wf


def test_queries_answer_from_the_map(made: Path, tmp_path: Path):
    path = made / ".padocc" / "survey" / "coverage" / "s.json"
    data = json.loads(path.read_text())
    assert data["runs"] == [[0, 10]]  # ten markers kept as one run, not ten names
    before = path.stat().st_mtime_ns
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]
    assert path.stat().st_mtime_ns == before  # nothing changed: not rebuilt
    # What the answers come from: a map whose signatures still match is believed.
    data["runs"] = [[0, 12]]
    path.write_text(json.dumps(data))
    assert coverage(tmp_path) == ["0 12 done"]
    r = gate(tmp_path, "check", "s", "0", "12")
    assert (r.returncode, r.stdout) == (0, "open\n")
    r = gate(tmp_path, "range", "s")
    assert (r.returncode, r.stdout) == (0, "0 12\n")
    r = gate(tmp_path, "gaps", "s", "0", "12")
    assert (r.returncode, r.stdout) == (0, "")


def test_a_marker_removed_or_made_behind_its_back_is_seen(made: Path, tmp_path: Path):
    (made / "gates" / "s" / "3__4.done").unlink()
    assert coverage(tmp_path) == ["0 3 done", "3 4 missing", "4 10 done", "10 12 missing"]
    r = gate(tmp_path, "check", "s", "0", "10")
    assert (r.returncode, r.stdout) == (1, "closed\n")
    time.sleep(RACY)
    assert coverage(tmp_path)[1] == "3 4 missing"  # kept again, as it is now
    (made / "gates" / "s" / "11__12.done").touch()
    assert coverage(tmp_path) == [
        "0 3 done", "3 4 missing", "4 10 done", "10 11 missing", "11 12 done",
    ]  # fmt: skip
    r = gate(tmp_path, "gaps", "s", "0", "12")
    assert r.stdout.splitlines() == ["3 4 missing", "10 11 missing"]


def test_a_failed_chunk_in_the_status_file_is_seen(made: Path, tmp_path: Path):
    (made / "fail.txt").write_text("s 10\n")
    r = gate(tmp_path, "make", "s", "10", "11")
    assert r.returncode == 5, r.stdout + r.stderr  # a processing error
    assert coverage(tmp_path) == ["0 10 done", "10 11 failed", "11 12 missing"]


@pytest.mark.parametrize(
    "damage", ["", "{", '{"version": 1}', "[1, 2]", '{"version": 1, "grid": 3}']
)
def test_a_damaged_map_is_rebuilt(made: Path, tmp_path: Path, damage: str):
    path = made / ".padocc" / "survey" / "coverage" / "s.json"
    path.write_text(damage)
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]
    assert json.loads(path.read_text())["runs"] == [[0, 10]]  # whole again
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
