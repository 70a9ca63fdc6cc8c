"""A gate's persistent coverage map (issue 19 item 3): `gate check`, `gaps`, `range` and
`coverage` answer from it, and it is never stale: a marker made or removed behind its
back, or a damaged map, makes it rebuilt. Real padocc, real Snakemake; no timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _map(wf: Path) -> dict:
    return json.loads((wf / ".padocc" / "survey" / "coverage" / "s.json").read_text())


def test_the_chunk_wrapper_updates_the_map_in_place(made: Path, tmp_path: Path):
    """A chunk made by padocc reaches the map through the marker journal, not through
    a parse of every marker: a map believed to hold chunk 11 (not on disk: planted
    here, with the listing's count and hash kept) still holds it after chunk 10 is
    made, which a rebuild from the markers would have dropped."""
    path = made / ".padocc" / "survey" / "coverage" / "s.json"
    data = _map(made)
    data["runs"] = [[0, 10], [11, 12]]
    path.write_text(json.dumps(data))
    r = gate(tmp_path, "make", "s", "10", "11")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (path.parent / "s.log").read_text().endswith("\n10__11.done\n")  # the wrapper's
    assert coverage(tmp_path) == ["0 12 done"]  # 10 applied onto the map as it stood
    assert _map(made)["runs"] == [[0, 12]]


def test_chunks_made_by_padocc_are_seen_at_once(made: Path, tmp_path: Path):
    r = gate(tmp_path, "make", "s", "10", "12")
    assert r.returncode == 0, r.stdout + r.stderr
    assert coverage(tmp_path) == ["0 12 done"]  # no wait for the 2-s rule
    assert _map(made)["runs"] == [[0, 12]]


def test_a_status_line_appended_behind_its_back_is_folded(made: Path, tmp_path: Path):
    status = made / "status" / "gates" / "s.status"
    before = status.stat().st_size
    with status.open("a") as f:
        f.write("STAT:20261205_110000_000000:BOUNDS:s:s:Fail:chunk=11__12,exit=1\n")
    assert coverage(tmp_path) == ["0 10 done", "10 11 missing", "11 12 failed"]
    assert _map(made)["folded"][0] == status.stat().st_size > before


def test_a_status_file_edited_in_place_behind_its_back_is_read_again(made: Path, tmp_path: Path):
    """Same inode, same size, one state changed: the digest of what was folded differs,
    so the file is folded again from its first line."""
    (made / "fail.txt").write_text("s 10\n")
    assert gate(tmp_path, "make", "s", "10", "11").returncode == 5
    assert coverage(tmp_path)[1] == "10 11 failed"
    status = made / "status" / "gates" / "s.status"
    data = status.read_bytes()
    at = data.rindex(b":Fail:")
    with status.open("r+b") as f:
        f.seek(at)
        f.write(b":Pass:")
    assert len(status.read_bytes()) == len(data)
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]


def test_a_status_file_replaced_or_removed_is_read_again(made: Path, tmp_path: Path):
    status = made / "status" / "gates" / "s.status"
    (made / "fail.txt").write_text("s 10\n")
    assert gate(tmp_path, "make", "s", "10", "11").returncode == 5
    kept = status.read_text()
    status.unlink()
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]
    status.write_text(kept)  # a new inode, the same lines: failed again
    assert coverage(tmp_path) == ["0 10 done", "10 11 failed", "11 12 missing"]


@pytest.mark.parametrize("damage", ["removed", "cut", "garbage", "torn", "fifo", "directory"])
def test_a_lost_or_damaged_marker_journal_costs_a_parse_never_a_wrong_answer(
    made: Path, tmp_path: Path, damage: str
):
    log = made / ".padocc" / "survey" / "coverage" / "s.log"
    r = gate(tmp_path, "make", "s", "10", "11")
    assert r.returncode == 0, r.stdout + r.stderr
    if damage == "removed":
        log.unlink()
    elif damage == "cut":
        log.write_text("")
    elif damage == "garbage":
        log.write_bytes(b"\x00\xff 7__9.done\n\n__.done\n" * 50)
    elif damage == "torn":
        log.write_text("10__11.do")
    else:
        log.unlink()
        os.mkfifo(log) if damage == "fifo" else log.mkdir()
    assert coverage(tmp_path) == ["0 11 done", "11 12 missing"]
    r = gate(tmp_path, "make", "s", "11", "12")  # the wrapper never blocks on it either
    assert r.returncode == 0, r.stdout + r.stderr
    assert coverage(tmp_path) == ["0 12 done"]


def test_a_removed_marker_is_seen_after_padocc_made_others(made: Path, tmp_path: Path):
    """The journal says what padocc made; what was removed besides is in no journal:
    the listing's count and hash differ, so the markers are parsed again."""
    r = gate(tmp_path, "make", "s", "10", "11")
    assert r.returncode == 0, r.stdout + r.stderr
    (made / "gates" / "s" / "2__3.done").unlink()
    assert coverage(tmp_path) == ["0 2 done", "2 3 missing", "3 11 done", "11 12 missing"]


def test_two_requests_at_once_each_reach_the_map(made: Path, tmp_path: Path):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "compiler",
                "gate",
                "make",
                "s",
                lo,
                hi,
                "-C",
                "wf",
                "--now",
                NOW,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for lo, hi in (("10", "11"), ("11", "12"))
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode in (0, 4), out + err  # 4: the other holds a chunk it needs
    for lo, hi in (("10", "11"), ("11", "12")):
        assert gate(tmp_path, "make", "s", lo, hi).returncode == 0
    assert coverage(tmp_path) == ["0 12 done"]
    assert sorted((made / "runs.log").read_text().split("\n")).count("s 10 11") == 1


def test_many_bad_status_lines_keep_the_map_small(made: Path, tmp_path: Path):
    status = made / "status" / "gates" / "s.status"
    with status.open("a") as f:
        f.write("STAT:not a line\n" * 5000)
    assert coverage(tmp_path) == ["0 10 done", "10 12 missing"]
    path = made / ".padocc" / "survey" / "coverage" / "s.json"
    assert path.stat().st_size < 10_000  # 20 warnings kept, the rest counted
    assert _map(made)["more_warnings"] == 5000 - 20


def test_a_moved_workflow_answers_from_its_map(made: Path, tmp_path: Path):
    (tmp_path / "wf").rename(tmp_path / "moved")
    r = padocc("gate", "coverage", "s", "0", "12", "-C", "moved", "--now", NOW, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "0 10 done\n10 12 missing\n"), r.stderr
    kept = (tmp_path / "moved" / ".padocc" / "survey" / "coverage" / "s.json").read_text()
    assert str(tmp_path / "wf") not in kept  # no old place named
