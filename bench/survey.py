#!/usr/bin/env python3
"""Benchmark `padocc status` and `report` against a plain `cat | wc -l` of the same files.

    python bench/survey.py                 # 100,000 files, 1,000,000 STAT lines, 5 runs

In one run it makes a temporary workflow (the demo workflow, compiled, with its
dataset list replaced by FILES synthetic datasets) and FILES status files that
hold LINES STAT lines in all, then times, as the median of RUNS runs each:

  baseline   find DIR -name '*.status' -print0 | xargs -0 cat | wc -l
  no index   padocc status DIR --no-index     (reads and folds every file)
  indexed    padocc status DIR                (the default: unchanged files from
                                               .padocc/survey/, changed ones re-read)
  report     padocc report DIR                (whole histories: per-step counts and
                                               times, failures, stuck; unchanged files'
                                               tallies from .padocc/survey/)
  why        padocc why DIR ID                (one dataset: its line of the build's list
                                               and its status file)

Each `padocc status` is a whole process (interpreter start included) whose table
is read through a pipe, as an operator would run it. The files are in the page cache
for every contender. It prints the medians and the ratios to the baseline; the
goal is within 3x (said for `status` and for `report` apart). It also checks that
the indexed and no-index surveys agree, and, after touching 1% of the files, that
the index and the report cache re-read them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REALMS = ("atmos", "ocean", "land", "seaice")
VARS = ("tas", "pr", "psl", "zos", "so", "mrso")
# A route through the demo graph; FixTime/CheckTime repeat to make long histories.
ROUTE = ("Generate", "CheckTime", "FixTime", "CheckTime", "CheckMeta", "Regrid", "Publish")
SUB = {"CheckTime": "VALIDATION", "FixTime": "VALIDATION", "CheckMeta": "VALIDATION"}


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%d_%H%M%S_%f")


def history(ds: str, n_lines: int, i: int, t0: datetime) -> str:
    """A status file of exactly n_lines STAT lines: Engaged/outcome pairs along the
    route, a final `BENCH:Pass` when the count is odd; every 97th is blocked and every
    53rd ends with a job still engaged."""
    lines = [f"DATASETID={ds}"]
    t = t0 + timedelta(seconds=i * 7)
    pairs, final = divmod(n_lines, 2)
    build = "20261121T000000000000Z-bench000"
    for k in range(pairs):
        step = ROUTE[k] if k < len(ROUTE) else ROUTE[2 + (k - len(ROUTE)) % 2]
        sub = SUB.get(step, "BENCH")
        t += timedelta(seconds=3 + (i + k) % 11)
        lines.append(f"STAT:{_stamp(t)}:BENCH:{sub}:{step}:Engaged:host=node{i % 17},pid={1000 + i},"
                     f"attempt=1,slot={k + 1},build={build}")
        if i % 53 == 0 and k == pairs - 1 and not final:
            lines.append(f"STAT:{_stamp(t)}:BENCH:BENCH:BENCH:Unblocked:by=bench")
            break
        if i % 97 == 0 and k == 0:
            lines.append(f"STAT:{_stamp(t)}:BENCH:BENCH:BENCH:Blocked:by=bench")
            continue
        wall = 0.5 + (i * 13 + k) % 400 / 10
        t += timedelta(seconds=wall)
        state = "Fail" if step == "CheckTime" and k < len(ROUTE) - 1 and i % 3 == 0 else "Pass"
        lines.append(f"STAT:{_stamp(t)}:BENCH:{sub}:{step}:{state}:exit={int(state == 'Fail')},"
                     f"wall={wall:.1f},maxrss_mb={100 + (i + k) % 900},attempt=1")
    if final:
        lines.append(f"STAT:{_stamp(t)}:BENCH:BENCH:BENCH:Pass:build={build}")
    return "\n".join(lines) + "\n"


def make_workflow(root: Path, n_files: int, n_lines: int) -> Path:
    wf = root / "wf"
    shutil.copytree(REPO / "workflows" / "demo", wf)
    # Rename the demo's workflow so the synthetic lines below belong to it.
    text = (wf / "workflow.yaml").read_text().replace("name: DEMO", "name: BENCH")
    (wf / "workflow.yaml").write_text(text)
    for f in (wf / "transitions.yaml",):
        f.write_text(f.read_text().replace("DEMO:Ready", "BENCH:Ready"))
    r = subprocess.run([sys.executable, "-m", "compiler", "compile", "-q", str(wf)], check=False, cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench: compiling the demo failed:\n{r.stderr}")
    build = (wf / ".padocc" / "current").resolve()
    status = wf / "status"
    status.mkdir(exist_ok=True)
    base, extra = divmod(n_lines, n_files)
    # Lengths base-6 .. base+6 in a balanced cycle, so the total is exactly n_lines.
    spread = [-6, -3, 0, 3, 6] if base >= 8 else [0]
    lengths = [base + (1 if i < extra else 0) + spread[i % len(spread)] for i in range(n_files)]
    lengths[-1] += n_lines - sum(lengths)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with open(build / "datasets.tsv", "w", encoding="utf-8") as tsv:
        for i, n in enumerate(lengths):
            realm, var = REALMS[i % 4], VARS[i % 6]
            ds = f"BENCH.{realm}.hist.r{i % 10 + 1}.{var}.{i:06d}"
            facets = {"dataset": ds, "realm": realm, "variable": var, "experiment": "hist",
                      "ens": f"r{i % 10 + 1}"}
            tsv.write(f"{ds}\t{realm}-mon\t{json.dumps(facets, separators=(',', ':'))}\n")
            (status / f"{ds}.status").write_text(history(ds, n, i, t0))
    m = json.loads((build / "manifest.json").read_text())
    m["datasets"]["count"] = n_files
    (build / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
    return wf


def timed(cmd: list[str], runs: int, **kw) -> tuple[float, list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        out = r.stdout
    return statistics.median(times), times, out


def _files(d: Path) -> dict[str, os.stat_result]:
    return {p.name: p.stat() for p in d.iterdir() if p.is_file()}


def measured(cmd: list[str], survey_dir: Path, **kw) -> tuple[float, float, int]:
    """One run: (seconds, peak RSS in MB, bytes it wrote to survey_dir: a file it
    replaced or made counts whole, one it appended to by what it grew)."""
    before = _files(survey_dir)
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    wrote = 0
    for name, st in _files(survey_dir).items():
        old = before.get(name)
        if old is None or old.st_ino != st.st_ino:
            wrote += st.st_size
        elif old.st_mtime_ns != st.st_mtime_ns:
            wrote += max(st.st_size - old.st_size, 0)
    return secs, usage.ru_maxrss / 1024, wrote


def report_doc(cmd: list[str], env: dict) -> dict:
    """`padocc report --format json` less what depends on the moment it ran."""
    doc = json.loads(timed(cmd, 1, cwd=REPO, env=env)[2])
    doc.pop("now")
    for x in doc["stuck"]:
        x.pop("age_s")
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/survey.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=100_000, help="status files (default 100000)")
    p.add_argument("--lines", type=int, default=1_000_000, help="STAT lines in all (default 1000000)")
    p.add_argument("--runs", type=int, default=5, help="runs of each contender; the median is shown")
    p.add_argument("--keep", action="store_true", help="keep the temporary workflow and say where")
    a = p.parse_args(argv)
    if a.files < 1 or a.lines < a.files or a.runs < 1:
        p.error("need --files >= 1, --lines >= --files and --runs >= 1")

    root = Path(tempfile.mkdtemp(prefix="padocc-bench-"))
    try:
        t = time.perf_counter()
        wf = make_workflow(root, a.files, a.lines)
        print(f"made {a.files:,} status files, {a.lines:,} STAT lines in {time.perf_counter() - t:.1f} s "
              f"under {wf}")
        status = wf / "status"
        cat = ["sh", "-c", f"find '{status}' -name '*.status' -print0 | xargs -0 cat | wc -l"]
        ours = [sys.executable, "-m", "compiler", "status", str(wf)]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

        base, base_all, wc = timed(cat, a.runs)
        noidx, noidx_all, _ = timed([*ours, "--no-index"], a.runs, cwd=REPO, env=env)
        first, _, _ = timed(ours, 1, cwd=REPO, env=env)  # builds the index
        idx, idx_all, _ = timed(ours, a.runs, cwd=REPO, env=env)
        report = [sys.executable, "-m", "compiler", "report", str(wf)]
        rep_first, _, _ = timed(report, 1, cwd=REPO, env=env)  # builds the report cache
        rep, rep_all, _ = timed(report, a.runs, cwd=REPO, env=env)
        last = sorted(status.iterdir())[-1].name[: -len(".status")]
        why, why_all, why_out = timed([sys.executable, "-m", "compiler", "why", str(wf), last],
                                      a.runs, cwd=REPO, env=env)  # fmt: skip
        if not why_out.startswith(last + ": "):
            sys.exit(f"bench: padocc why {last} answered {why_out[:200]!r}")

        # The index must agree with a full read, and re-read what changed.
        full = timed([*ours, "--no-index", "--format", "json"], 1, cwd=REPO, env=env)[2]
        fast = timed([*ours, "--format", "json"], 1, cwd=REPO, env=env)[2]
        if full != fast:
            sys.exit("bench: indexed and full surveys differ")
        touched = sorted(status.iterdir())[:: 100]
        for f in touched:
            with open(f, "a", encoding="utf-8") as h:
                h.write(f"STAT:{_stamp(datetime.now(UTC))}:BENCH:BENCH:BENCH:Blocked:by=bench\n")
        after, _, _ = timed(ours, 1, cwd=REPO, env=env)
        full = timed([*ours, "--no-index", "--format", "json"], 1, cwd=REPO, env=env)[2]
        fast = timed([*ours, "--format", "json"], 1, cwd=REPO, env=env)[2]
        if full != fast:
            sys.exit("bench: after appends the indexed survey is stale")
        time.sleep(2.2)  # the changed files are cached again (one changed in the last 2 s is not)
        rep_after, rep_mb, rep_wrote = measured(report, wf / ".padocc" / "survey", cwd=REPO, env=env)
        cached = report_doc([*report, "--format", "json"], env)
        (wf / ".padocc" / "survey" / "report-cache.json").unlink()
        if report_doc([*report, "--format", "json"], env) != cached:
            sys.exit("bench: after appends the cached report is stale")

        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
              f"wc -l counted {wc.strip()} lines (STAT lines + one header per file)")
        print(f"{'':34}{'median s':>10}{'ratio':>8}   runs")
        rows = [("find | xargs cat | wc -l (baseline)", base, base_all),
                ("padocc status --no-index", noidx, noidx_all),
                ("padocc status (indexed)", idx, idx_all),
                ("padocc report", rep, rep_all),
                ("padocc why (one dataset)", why, why_all)]
        for name, med, alls in rows:
            print(f"{name:34}{med:10.3f}{med / base:7.2f}x   " + " ".join(f"{x:.2f}" for x in alls))
        print(f"first run, building the index: {first:.3f} s; after appending to {len(touched):,} "
              f"files: {after:.3f} s (indexed and full surveys agree)")
        print(f"first report, building its cache: {rep_first:.3f} s; after the appends: {rep_after:.3f} s, "
              f"peak {rep_mb:.0f} MB, {rep_wrote:,} bytes written to .padocc/survey "
              "(cached and full reports agree)")
        goal = max(noidx, idx) <= 3 * base
        print(f"goal (within 3x of the baseline): {'met' if goal else 'NOT met'} by status; "
              f"{'met' if rep <= 3 * base else 'NOT met'} by report")
        return 0
    finally:
        if a.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
