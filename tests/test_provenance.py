"""Provenance (issue 9, items 2, 4 and 5): the SQLite catalog the job wrapper fills,
its rebuild from status files and disk, undeclared outputs, temp intermediates.
Real padocc, real Snakemake (local profile), small copies of the demo."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import tarfile
from pathlib import Path

import pytest
from conftest import compile_wf, cycle_until_done, final_states, fresh_copy, padocc

from compiler.commands import catalog as catalog_cmd
from compiler.core.statusfile import Stat, parse_stamp
from compiler.runtime import catalog

TWO = """project:
  DEMO:
    atmos:
      variables: [tas, pr]
      experiments:
        hist: {ens: [r1]}
"""
ONE = TWO.replace("[tas, pr]", "[tas]")
TAS, PR = "DEMO.atmos.hist.r1.tas", "DEMO.atmos.hist.r1.pr"
NOW = "2026-01-01T01:00:00Z"


def demo_copy(dst: Path, spec: str, undeclared: str | None = None, retry: bool = False) -> Path:
    """The demo, where CheckMeta also leaves extra.log and junk/deep.txt undeclared;
    Generate makes temp intermediates that Publish, the last step, still needs. With
    `retry`, CheckMeta's first attempt leaves left1.tmp and fails; its second passes."""
    fresh_copy("demo", dst)
    (dst / "dataset_spec.yaml").write_text(spec)
    wf = dst / "workflow.yaml"
    text = wf.read_text()
    for old, new in (
        ("checkmeta {dataset} {variable}\"",
         "checkmeta {dataset} {variable} && echo x > extra.log && mkdir -p junk && echo y > junk/deep.txt\""),
        ("generate {dataset} {variable} {experiment} {ens}\"",
         "generate {dataset} {variable} {experiment} {ens} && echo t > scratch.tmp"
         " && mkdir -p scratch && echo t > scratch/part\"\n    temp: [scratch.tmp, scratch]"),
        ("\"{python} {workflow_dir}/bin/demo_step.py publish",
         "\"test -f scratch.tmp && test -f scratch/part && {python} {workflow_dir}/bin/demo_step.py publish"),
    ):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new)
    if retry:
        old = '"{python} {workflow_dir}/bin/demo_step.py checkmeta'
        text = text.replace(old, '"echo a > left{attempt}.tmp && test {attempt} -gt 1 && ' + old[1:])
        text = text.replace("    states: [Warning]\n", "    states: [Warning]\n    retries: 1\n")
    if undeclared:
        text += f"\nundeclared: {undeclared}\n"
    wf.write_text(text)
    return dst


def job_logs(wf: Path) -> str:
    return "".join(p.read_text() for p in sorted((wf / ".padocc" / "logs").rglob("*.log")))


def what_made(wf: Path, path: str, capsys: pytest.CaptureFixture) -> dict:
    """In-process (the subprocess form is tested too): dozens of calls stay cheap."""
    capsys.readouterr()
    assert catalog_cmd.run(catalog_cmd.CatalogOptions("what-made", str(wf), path, format="json")) == 0
    return json.loads(capsys.readouterr().out)


def rebuilt_equals_live(wf: Path) -> None:
    live = catalog.table_rows(wf)
    r = padocc("catalog", "rebuild", str(wf))
    assert r.returncode == 0, r.stderr
    assert catalog.table_rows(wf) == live
    catalog.catalog_path(wf).unlink()  # from nothing, too
    assert padocc("catalog", "rebuild", str(wf)).returncode == 0
    assert catalog.table_rows(wf) == live


def declared_outputs(wf: Path, ds: str) -> list[str]:
    m = json.loads((wf / ".padocc" / "current" / "manifest.json").read_text())
    work = wf / "work" / ds
    return sorted({p.relative_to(wf).as_posix() for s in m["steps"].values()
                   for pat in s["outputs"] for p in work.glob(pat)})  # fmt: skip


# --- the catalog over a whole run, with undeclared files kept ----------------------


def test_catalog_temp_rebuild_and_stale_over_a_real_run(tmp_path: Path, capsys: pytest.CaptureFixture):
    wf = demo_copy(tmp_path / "demo", TWO)
    compile_wf(wf)
    (wf / "work" / TAS).mkdir(parents=True)
    (wf / "work" / TAS / "old.txt").write_text("there before\n")
    cycle_until_done(wf)
    assert set(final_states(wf).values()) == {"DEMO:Pass"}

    # what-made answers for every declared output, and its sha256 is the file's.
    for ds in (TAS, PR):
        outs = declared_outputs(wf, ds)
        assert [Path(o).name for o in outs] == ["data.txt", "data_report.txt", "published",
                                                "regridded.txt", "runs.log"]  # fmt: skip
        for out in outs:
            got = what_made(wf, out, capsys)
            assert got["sha256"] == hashlib.sha256((wf / out).read_bytes()).hexdigest()
            assert got["sha256_now"] == got["sha256"] and got["size"] == (wf / out).stat().st_size
            assert got["job"]["dataset"] == ds and got["job"]["state"] in ("Pass", "Warning")
    # The latest job that declared a file made it: FixTime rewrote pr's data.txt.
    assert what_made(wf, f"work/{PR}/data.txt", capsys)["job"]["step"] == "FixTime"
    assert what_made(wf, f"work/{TAS}/data.txt", capsys)["job"]["step"] == "Generate"
    assert what_made(wf, f"work/{TAS}/runs.log", capsys)["job"]["step"] == "Publish"
    # Text form, from inside a work dir (the catalog is found upwards); a changed file is told.
    (wf / "work" / TAS / "published").write_text("edited\n")
    r = padocc("catalog", "what-made", "published", cwd=wf / "work" / TAS)
    assert r.returncode == 0 and f"made by   {TAS} Publish, attempt 1: Pass" in r.stdout
    assert "the file CHANGED since" in r.stdout
    r = padocc("catalog", "what-made", "nothing.txt", "-C", str(wf))
    assert (r.returncode, r.stderr) == (1, "padocc catalog: nothing.txt is not in the catalog: no job declared it\n")

    # Every job in the status files has its row, with what its STAT lines said.
    rows = catalog.table_rows(wf)
    jobs = {j[0]: dict(zip(catalog.JOB_COLUMNS, j, strict=True)) for j in rows["jobs"]}
    for ds in (TAS, PR):
        for line in (wf / "status" / f"{ds}.status").read_text().splitlines():
            if ":Engaged:" in line:
                ts, step = line.split(":")[1], line.split(":")[4]
                j = jobs.pop(f"{ds}:{step}:{ts}")
                assert j["started"] == parse_stamp(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                assert j["host"] and j["pid"] and j["attempt"] == 1 and j["ended"] and j["digest"]
                assert j["exit"] == (1 if (ds, step, j["state"]) == (PR, "CheckTime", "Fail") else 0)
    assert jobs == {}

    # Temp files went once each route ended (Publish, the last step, still had them).
    for ds in (TAS, PR):
        assert not (wf / "work" / ds / "scratch.tmp").exists()
        assert not (wf / "work" / ds / "scratch").exists()
    assert job_logs(wf).count("has ended: removed 2 temp files: scratch.tmp, scratch/part") == 2
    # undeclared: keep (the default) touches nothing.
    assert (wf / "work" / TAS / "extra.log").exists() and (wf / "work" / TAS / "junk" / "deep.txt").exists()
    assert (wf / "work" / TAS / "old.txt").read_text() == "there before\n"
    assert not list((wf / "work").rglob(".junk")) and "undeclared" not in job_logs(wf)

    # produced: one build made all ten outputs.
    r = padocc("catalog", "produced", "--latest", "-C", str(wf), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["files"]) == 10

    (wf / "work" / TAS / "published").write_text(f"{TAS}\n")  # as the job left it, again
    rebuilt_equals_live(wf)

    # stale: only what the changed step made.
    r = padocc("catalog", "stale", "-C", str(wf))
    assert r.returncode == 0 and r.stdout.startswith("no stale outputs")
    text = (wf / "workflow.yaml").read_text().replace("regrid {dataset}\"", "regrid {dataset} --v2\"")
    (wf / "workflow.yaml").write_text(text)
    compile_wf(wf)
    r = padocc("catalog", "stale", "-C", str(wf), "--format", "json")
    stale = json.loads(r.stdout)["stale"]
    assert sorted((s["path"], s["step"], s["changed"]) for s in stale) == [
        (f"work/{PR}/regridded.txt", "Regrid", "command"),
        (f"work/{TAS}/regridded.txt", "Regrid", "command"),
    ]


# --- undeclared: tar / remove ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["tar", "remove"])
def test_undeclared_files_are_packed_or_removed_never_silently(tmp_path: Path, mode: str):
    retry = mode == "tar"  # and a failed first attempt's leftovers go with the second's
    wf = demo_copy(tmp_path / "demo", ONE, undeclared=mode, retry=retry)
    compile_wf(wf)
    work = wf / "work" / TAS
    work.mkdir(parents=True)
    (work / "old.txt").write_text("there before\n")  # not made by a job: never touched
    if mode == "remove":
        # A catalog that cannot be written: warnings, never a failed job; rebuilt later.
        catalog.catalog_path(wf).mkdir(parents=True)
    cycle_until_done(wf)
    assert final_states(wf) == {TAS: "DEMO:Pass"}

    left = {"extra.log": b"x\n", "junk/deep.txt": b"y\n"}
    if retry:
        left |= {"left1.tmp": b"a\n", "left2.tmp": b"a\n"}
    assert not any((work / n).exists() for n in left) and not (work / "junk").exists()
    assert (work / "old.txt").read_text() == "there before\n"
    for name in ("data.txt", "data_report.txt", "regridded.txt", "published", "runs.log"):
        assert (work / name).exists(), name
    records = sorted(p.name for p in (work / ".junk").iterdir())
    assert len(records) == 1
    attempt = 2 if retry else 1
    stem = re.fullmatch(rf"CheckMeta-(\d{{8}}_\d{{6}}_\d{{6}})-a{attempt}\.(tar\.gz|removed)", records[0])
    assert stem, records
    engaged = [ln.split(":")[1] for ln in (wf / "status" / f"{TAS}.status").read_text().splitlines()
               if ":CheckMeta:Engaged:" in ln]  # fmt: skip
    assert engaged[-1] == stem[1]  # named after the job's Engaged line
    names = ", ".join(sorted(left))
    logs = job_logs(wf)
    if mode == "tar":
        with tarfile.open(work / ".junk" / records[0]) as t:
            assert {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()} == left
        assert f"padocc: 4 undeclared files packed into .junk/{records[0]} and removed: {names}\n" in logs
    else:
        assert (work / ".junk" / records[0]).read_text() == "2\textra.log\n2\tjunk/deep.txt\n"
        assert f"padocc: 2 undeclared files removed (listed in .junk/{records[0]}): {names}\n" in logs
        # One per job (a job writes all its rows, temp files removed at the end
        # included, in one transaction): Generate..CheckMeta, Regrid, Publish.
        assert logs.count("padocc: warning: catalog not updated") == 3
        catalog.catalog_path(wf).rmdir()
        assert padocc("catalog", "rebuild", str(wf)).returncode == 0
    rows = catalog.table_rows(wf)
    job = f"{TAS}:CheckMeta:{stem[1]}"
    archive = f"work/{TAS}/.junk/{records[0]}"
    assert rows["undeclared"] == [(job, f"work/{TAS}/{n}", 2, mode, archive) for n in sorted(left)]
    assert len(rows["jobs"]) == (6 if retry else 5) and len(rows["files"]) == 5
    r = padocc("catalog", "what-made", f"work/{TAS}/extra.log", "-C", str(wf))
    assert r.returncode == 0 and "left undeclared by" in r.stdout
    assert f"CheckMeta attempt {attempt}: " in r.stdout
    if mode == "tar":
        rebuilt_equals_live(wf)


# --- gate chunks ----------------------------------------------------------------------


def test_gate_chunk_job_and_marker_are_catalogued(tmp_path: Path):
    wf = tmp_path / "hmi"
    fresh_copy("hmi", wf)
    r = padocc("gate", "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z",
               "-C", str(wf), "--now", NOW, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    rows = catalog.table_rows(wf)
    (job,) = [dict(zip(catalog.JOB_COLUMNS, j, strict=True)) for j in rows["jobs"]]
    assert (job["kind"], job["sub"], job["state"], job["exit"], job["attempt"]) == ("gate", "hmi.lev1", "Pass", 0, 1)
    assert (job["chunk_low"], job["chunk_high"]) == ("2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z")
    ((path, size, sha, job_id),) = rows["files"]
    assert job_id == job["id"] and path.startswith("gates/hmi.lev1/") and path.endswith(".done")
    assert sha == hashlib.sha256((wf / path).read_bytes()).hexdigest()
    live = catalog.table_rows(wf)
    rebuilt_equals_live(wf)
    # A damaged catalog is only an index gone: rebuilt whole from the status files.
    catalog.catalog_path(wf).write_bytes(b"not a database" * 100)
    r = padocc("catalog", "what-made", path, "-C", str(wf))
    assert r.returncode == 2 and "unreadable catalog" in r.stderr and "padocc catalog rebuild" in r.stderr
    assert padocc("catalog", "rebuild", str(wf)).returncode == 0
    assert catalog.table_rows(wf) == live


# --- many writers at once ------------------------------------------------------------


def _writer(args: tuple[str, int]) -> None:
    wf, n = args
    for i in range(30):
        jid = f"w{n}:S:{i}"
        row = catalog.JobRow(jid, "step", "b", f"w{n}", "W", "S", None, None, 1, None, "h", n, None, None,
                             0, "Pass", 0.1, 1.0, "d")  # fmt: skip
        catalog.record(wf, jobs=[row], files=[catalog.FileRow(f"work/w{n}/f{i}", i, "0" * 64, jid)])


def test_concurrent_writers_lose_no_row(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(6) as pool:
        pool.map(_writer, [(str(tmp_path), n) for n in range(6)])
    rows = catalog.table_rows(tmp_path)
    assert (len(rows["jobs"]), len(rows["files"])) == (180, 180)
    with catalog.reading(tmp_path) as con:  # the rollback journal, never WAL
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not list(tmp_path.rglob("*-wal"))


# --- job identity from status lines alone ---------------------------------------------


def _st(ts: str, step: str, state: str, **p: str) -> Stat:
    return Stat(f"20260101_0000{ts}_000000", "W", "W", step, state, p)


def test_jobs_derive_from_status_lines_alone():
    stats = [
        _st("01", "A", "Engaged", attempt="1", build="b1", host="h", pid="7"),
        _st("02", "A", "Retry", exit="1", attempt="1"),
        _st("03", "A", "Engaged", attempt="2", build="b1"),
        _st("04", "A", "Pass", exit="0", attempt="2", wall="1.5", maxrss_mb="12"),
        _st("05", "B", "Engaged", attempt="1", build="b1"),  # killed: superseded by the rerun
        _st("06", "B", "Engaged", attempt="1", build="b2"),
        _st("07", "B", "Cancelled", build="b2"),
        _st("08", "C", "Fail", exit="-1", attempt="1", problem="no facet"),  # never ran
        _st("09", "W", "Pass", build="b2"),  # the route's end: not a job
        _st("10", "D", "Engaged", attempt="1", build="b2"),  # still running
    ]
    runs = catalog.runs_of(stats)
    rows = {r.id: r for r in (catalog.job_row(x, "ds", "step", lambda b, s: b and f"{b}/{s}") for x in runs)}
    got = {k: (r.state, r.attempt, r.build, r.exit, r.digest) for k, r in rows.items()}
    assert got == {
        "ds:A:20260101_000001_000000": ("Retry", 1, "b1", 1, "b1/A"),
        "ds:A:20260101_000003_000000": ("Pass", 2, "b1", 0, "b1/A"),
        "ds:B:20260101_000005_000000": ("Lost", 1, "b1", None, "b1/B"),
        "ds:B:20260101_000006_000000": ("Cancelled", 1, "b2", None, "b2/B"),
        "ds:C:20260101_000008_000000": ("Fail", 1, None, -1, None),
        "ds:D:20260101_000010_000000": ("Engaged", 1, "b2", None, "b2/D"),
    }
    a = rows["ds:A:20260101_000003_000000"]
    assert (a.wall, a.maxrss_mb, a.started, a.ended) == (
        1.5, 12.0, "2026-01-01T00:00:03.000000Z", "2026-01-01T00:00:04.000000Z")
    # Only jobs that ran a command and ended with an outcome claim their outputs.
    assert [r.first.step for r in runs if r.claims] == ["A"]
