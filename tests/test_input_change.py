"""A changed input means changed content (issue 19 item 5): real padocc-compile, real
Snakemake. A finished dataset whose input is only touched, or copied over with the
same content, is not run again; one whose content changed is, even at the same size
and mtime; `input_change: mtime` keeps the older rule; 10k re-queues make one line.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import compile_wf, padocc, pending_count, snakemake
from test_scale import GRAPH, IDS, RACY, WORKFLOW, make_done, runs, status_lines

STORE = Path(".padocc") / "survey" / "input-sums.json"


@pytest.fixture
def done(tmp_path: Path) -> Path:
    return make_done(tmp_path / "ic")


def test_touch_or_same_content_copy_does_not_rerun(done: Path):
    time.sleep(RACY)
    (done / "data" / "SC.a1.in").touch()
    copy = done / "SC.a2.copy"  # a copy that keeps the content: a new file, a new mtime
    shutil.copy(done / "data" / "SC.a2.in", copy)
    os.replace(copy, done / "data" / "SC.a2.in")
    r = compile_wf(done)
    assert pending_count(done) == 0, r.stdout + r.stderr
    assert "re-queued" not in r.stderr
    assert "2 inputs touched, content unchanged" in r.stdout
    assert not [ln for ln in status_lines(done, "SC.a1") if "requeue=1" in ln]
    snakemake(done)
    assert sum(runs(done).values()) == 2 * len(IDS)  # nothing ran again


def test_content_change_at_same_size_and_mtime_reruns(done: Path):
    time.sleep(RACY)
    f = done / "data" / "SC.a3.in"
    old = f.read_text()
    f.touch()
    when = f.stat().st_mtime_ns
    compile_wf(done)
    assert pending_count(done) == 0  # touched only
    new = old.swapcase()
    assert len(new) == len(old) and new != old
    f.write_text(new)
    os.utime(f, ns=(when, when))  # the touched file's size and mtime, other content
    r = compile_wf(done)
    assert pending_count(done) == 1, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(
        f"re-queued 1 finished dataset whose input changed after the final STAT line: SC.a3 ({f})"
    ), r.stderr
    snakemake(done)
    assert runs(done)[("SC.a3", "Make")] == 2 and sum(runs(done).values()) == 2 * len(IDS) + 2
    # Its checksum was taken when it was re-queued: a touch now does not run it again.
    time.sleep(RACY)
    f.touch()
    compile_wf(done)
    assert pending_count(done) == 0


def test_mtime_option_reruns_on_touch(tmp_path: Path):
    wf = make_done(
        tmp_path / "mt",
        WORKFLOW.replace('  inputs: "data/{dataset}.in"\n',
                         '  inputs: "data/{dataset}.in"\n  input_change: mtime\n'),
    )  # fmt: skip
    time.sleep(RACY)
    (wf / "data" / "SC.a4.in").touch()
    r = compile_wf(wf)
    assert pending_count(wf) == 1, r.stdout + r.stderr
    assert "re-queued 1 finished dataset" in r.stderr
    assert not (wf / STORE).exists()  # no checksums kept in mtime mode


def test_bad_input_change_value_is_one_error_line(tmp_path: Path):
    wf = tmp_path / "bad"
    wf.mkdir()
    text = WORKFLOW.replace('  inputs: "data/{dataset}.in"\n',
                            '  inputs: "data/{dataset}.in"\n  input_change: checksum\n')  # fmt: skip
    (wf / "workflow.yaml").write_text(text)
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("SC.a0\n")
    r = padocc("compile", str(wf))
    line = text.splitlines().index("  input_change: checksum") + 1
    assert r.returncode == 2
    assert r.stderr == (
        f"{wf}/workflow.yaml:{line}:17: error: 'input_change' must be one of content, mtime,"
        " not 'checksum'\n"
    )
    assert not (wf / ".padocc" / "current").exists()


def test_damaged_store_reruns_on_the_safe_side_and_is_rebuilt(done: Path):
    store = done / STORE
    data = json.loads(store.read_text())
    assert set(data["datasets"]) == set(IDS)  # one entry per dataset, nothing else
    store.write_text('{"version": 1, "datasets": {"SC.a0": ')  # a torn write
    time.sleep(RACY)
    (done / "data" / "SC.a0.in").touch()
    r = compile_wf(done)
    assert pending_count(done) == 1, r.stdout + r.stderr  # no checksum known: changed
    data = json.loads(store.read_text())  # whole again, with the re-queued dataset
    assert list(data["datasets"]) == ["SC.a0"]
    assert not [p for p in store.parent.iterdir() if p.name.startswith(".tmp-")]


def test_store_keeps_only_datasets_with_a_status_file(done: Path):
    store = done / STORE
    (done / "status" / "SC.a5.status").unlink()  # its dataset gone (a group completed)
    (done / "ids.txt").write_text("".join(i + "\n" for i in IDS if i != "SC.a5"))
    time.sleep(RACY)
    (done / "data" / "SC.a0.in").write_text("other data\n")
    compile_wf(done)
    assert set(json.loads(store.read_text())["datasets"]) == set(IDS) - {"SC.a5"}


def test_ten_thousand_requeues_are_one_line(tmp_path: Path):
    wf = tmp_path / "many"
    ids = [f"SC.m{i:05d}" for i in range(10_000)]
    (wf / "data").mkdir(parents=True)
    (wf / "status").mkdir()
    # All 10k in one cycle: the default bound (max_datasets_per_cycle) would defer half.
    (wf / "workflow.yaml").write_text(WORKFLOW + "max_datasets_per_cycle: 10000\n")
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("".join(i + "\n" for i in ids))
    final = "20260101_000000_000000"
    for i in ids:  # finished long ago; their inputs written after
        (wf / "status" / f"{i}.status").write_text(
            f"DATASETID={i}\nSTAT:{final}:SC:SC:Check:Pass:exit=0\nSTAT:{final}:SC:SC:SC:Pass:\n"
        )
        (wf / "data" / f"{i}.in").write_text("new\n")
    r = padocc("compile", str(wf), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert pending_count(wf) == len(ids)
    assert r.stderr.splitlines() == [
        f"re-queued {len(ids)} finished datasets whose input changed after the final STAT line:"
        f" {ids[0]} ({wf}/data/{ids[0]}.in) and {len(ids) - 1} more (each status file's Ready"
        " line names its input)"
    ]
