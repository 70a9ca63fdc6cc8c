#!/usr/bin/env python3
"""Benchmark the big days: first cycles, catch-ups, mass requeues, a million datasets.

    python bench/bigdays.py                          # every case below
    python bench/bigdays.py --cases datasm,catchup   # some of them
    python bench/bigdays.py --plain-timeout 600      # give plain Snakemake longer

Each case runs ours and plain Snakemake on the same work in the same run, both as
shipped: ours through `padocc run` (the shipped `local` profile, no setting of the
bench's own), plain as `snakemake --cores all` on an equivalent hand-written
Snakefile. Both run on the local executor. New work is new content.

  datasm    datasm's real spec (32,146 datasets) and graph, every dataset pending,
            every step a one-line command. Seconds from the start to the first step
            running, and the peak memory until then. Plain: one rule per datasm step,
            each dataset through its own route (as bench/slurm.py's --datasm).
  requeue   100,000 finished datasets of 4 steps each; 10% of them re-queued (ours:
            `padocc requeue --at S1`; plain: new content in their inputs). Seconds
            to the first step running, and peak memory until then.
  catchup   a gate of 10-minute chunks wanting the last 10 years (525,960 chunks),
            nothing made yet. Seconds to the first chunk's command running, and peak
            memory until then. Plain: one rule, one output per 10-minute chunk.
  gatemap   a 10-minute gate with 16 years made (841,536 chunks): `padocc gate check`
            over all of it with no coverage map, from the map, and after one more
            chunk made (the map updated in place), and the no-op `padocc run`. Plain:
            its no-op run over the same markers (one output per chunk).
  noop1m    1,000,000 finished datasets of one step, nothing changed: the no-op
            cycle, first (a full compile) and then as every later quiet cycle
            answers (median of --runs), wall and peak memory. Plain: its no-op run.

"The first step running" is the first command of the work creating a marker file
(both sides' commands do, the only change to the work). Plain Snakemake is stopped
after --plain-timeout seconds or past --plain-max-gb of memory, whichever first,
and reported as not started or not finished. The runs are then killed: a first
step is what is measured, not the whole day. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cycle import (  # noqa: E402  (a sibling script, not a package)
    PY,
    SMK,
    finished_history,
    fix_datasm,
    new_content,
    plain_cmd,
    timed,
    transitions,
    warn_slow_scontrol,
    workflow_yaml,
)
from slurm import route, write_plain_datasm  # noqa: E402

MARK = "first.mark"
TOUCH = f"touch {{workflow_dir}}/{MARK}"


# --- measuring a start ----------------------------------------------------------------


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, MB."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(d))
        rss[int(d)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += kids.get(p, [])
    return total / 1e6


def until_first_step(cmd: list[str], cwd: Path, mark: Path, limit_s: float,
                     limit_gb: float, ours: bool = False) -> dict:  # fmt: skip
    """Start `cmd`; wait for `mark`; kill the whole run. Seconds to the mark (None if
    not reached), the peak memory of the run's process tree until then, and why it
    stopped."""
    mark.unlink(missing_ok=True)
    log = tempfile.TemporaryFile("w+")  # not a pipe: a process left behind cannot hold it
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)  # fmt: skip
    peak, why, first = 0.0, "", None
    try:
        while True:
            if mark.exists():
                first = time.perf_counter() - t0
                why = "first step"
                break
            if p.poll() is not None:
                why = f"ended (exit {p.returncode}) before a first step"
                break
            peak = max(peak, tree_rss_mb(p.pid))
            took = time.perf_counter() - t0
            if took > limit_s:
                why = f"no first step within {limit_s:.0f} s"
                break
            if peak > limit_gb * 1000:
                why = f"stopped past {limit_gb:g} GB after {took:.0f} s"
                break
            time.sleep(0.1)
    finally:
        stop(p, ours)
    log.seek(0)
    return {"first": first, "peak_mb": peak, "why": why, "tail": log.read()[-2000:]}


def stop(p: subprocess.Popen, ours: bool) -> None:
    """Ours: SIGTERM first, and padocc stops its Snakemake (in a session of its own)
    and the jobs. Then SIGKILL to what is left of the session (plain Snakemake ignores
    SIGTERM while it waits on jobs)."""
    if ours and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def fmt_start(r: dict) -> str:
    if r["first"] is None:
        return f"{r['why']} (peak {r['peak_mb']:,.0f} MB)"
    return f"{r['first']:.1f} s, peak {r['peak_mb']:,.0f} MB"


def ours_run(d: Path) -> list[str]:
    return [PY, "-m", "compiler", "run", str(d)]


def deferred_of(out: str) -> str:
    return next((ln.strip() for ln in out.splitlines() if "deferred" in ln), "")


# --- the cases ------------------------------------------------------------------------


def case_datasm(base: Path, a: argparse.Namespace) -> dict:
    o, p = base / "datasm-ours", base / "datasm-plain"
    fix_datasm(o)
    y = o / "workflow.yaml"
    y.write_text(y.read_text().replace('{command: "true"}', f'{{command: "{TOUCH}"}}'))
    c = subprocess.run([PY, "-m", "compiler", "compile", str(o)], capture_output=True,
                       text=True, check=True)  # fmt: skip
    build = o / ".padocc" / "current"
    rows = [r.split("\t") for r in (build / "datasets.tsv").read_text().splitlines()]
    graph = json.loads((build / "manifest.json").read_text())["graph"]
    write_plain_datasm(p, {r[0]: route(graph, r[1]) for r in rows}, "", f"touch {MARK} {{output}}")
    shutil.rmtree(o / ".padocc")  # the first cycle starts from nothing
    ours = until_first_step(ours_run(o), o, o / MARK, a.ours_timeout, a.plain_max_gb, True)
    plain = until_first_step(plain_cmd(p), p, p / MARK, a.plain_timeout, a.plain_max_gb)
    return {"name": f"datasm: {len(rows):,} datasets all pending (first cycle)",
            "ours": ours, "plain": plain, "note": c.stdout.strip().splitlines()[-1][:120]}  # fmt: skip


def synthetic(base: Path, n_ds: int, steps: tuple[str, ...]) -> tuple[Path, Path, list[str]]:
    """(ours, plain, ids): n_ds finished datasets through `steps`, one input each
    (shared: plain's data/ is ours'), every output of plain up to date."""
    ids = [f"SYN.g{i // 1000:04d}.m{i % 1000:03d}" for i in range(n_ds)]
    ours, plain = base / "ours", base / "plain"
    (ours / "data").mkdir(parents=True)
    (ours / "status").mkdir()
    plain.mkdir()
    (ours / "ids.txt").write_text("".join(i + "\n" for i in ids))
    shutil.copy(ours / "ids.txt", plain / "ids.txt")
    (plain / "data").symlink_to(ours / "data")
    y = workflow_yaml("SYN").split("steps:\n")[0] + "steps:\n"
    y += "".join(f'  {s}:\n    command: "{TOUCH}"\n' for s in steps)
    (ours / "workflow.yaml").write_text(y)
    g = transitions("SYN")
    if steps != ("S1", "S2", "S3", "S4"):  # one step: S1 then Pass
        g = "SYN:Ready:\n  default:\n    - S1:Ready\nS1:Ready:\n  default:\n    - S1:Engaged\n"
        g += "S1:Pass:\n  default:\n    - Pass\nS1:Fail:\n  default:\n    - Fail\n"
    (ours / "transitions.yaml").write_text(g)
    rules = ['DS = [line.strip() for line in open("ids.txt") if line.strip()]\n\n'
             f'rule all:\n    input: expand("out/{{ds}}/{steps[-1]}.done", ds=DS)\n']  # fmt: skip
    prev = "data/{ds}.in"
    for s in steps:
        rules.append(f'\nrule {s}:\n    input: "{prev}"\n    output: "out/{{ds}}/{s}.done"\n'
                     f'    shell: "touch {MARK} {{output}}"\n')  # fmt: skip
        prev = f"out/{{ds}}/{s}.done"
    (plain / "Snakefile").write_text("".join(rules))
    past = time.time() - 86400
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in ids:
        f = ours / "data" / f"{i}.in"
        f.write_text("v1\n")
        os.utime(f, (past, past))
        (ours / "status" / f"{i}.status").write_text(finished_history(i, "SYN", "SYN", steps, t0))
    for k, s in enumerate(steps):
        when = past + 60 * (k + 1)
        for i in ids:
            f = plain / "out" / i / f"{s}.done"
            if k == 0:
                f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
            os.utime(f, (when, when))
    time.sleep(2.1)  # past the status index's racy window
    return ours, plain, ids


def case_requeue(base: Path, a: argparse.Namespace) -> dict:
    n = a.requeue_datasets
    print(f"   setting up {n:,} finished datasets of 4 steps (ours and plain)", flush=True)
    ours, plain, ids = synthetic(base / "requeue", n, ("S1", "S2", "S3", "S4"))
    subprocess.run([PY, "-m", "compiler", "compile", str(ours)], capture_output=True, check=True)
    chosen = ids[::10]
    t0 = time.perf_counter()
    r = subprocess.run([PY, "-m", "compiler", "requeue", str(ours), "-", "--at", "S1"],
                       input="".join(i + "\n" for i in chosen), capture_output=True,
                       text=True, check=False)  # fmt: skip
    requeue_s = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench: padocc requeue failed:\n{r.stderr[-2000:]}")
    for i in chosen:  # plain: the same datasets' inputs get new content
        new_content(plain / "data" / f"{i}.in")
    res = {"name": f"mass requeue: {len(chosen):,} of {n:,} finished datasets (10%)",
           "ours": until_first_step(ours_run(ours), ours, ours / MARK, a.ours_timeout,
                                    a.plain_max_gb, True),
           "plain": until_first_step(plain_cmd(plain), plain, plain / MARK, a.plain_timeout,
                                     a.plain_max_gb),
           "note": f"`padocc requeue` of the {len(chosen):,}: {requeue_s:.1f} s"}  # fmt: skip
    shutil.rmtree(base / "requeue", ignore_errors=True)
    return res


GATES = """gates:
  nrt:
    axis: time
    step: 1m
    maxrange: 10m
    want: {{low: "{low}", high: "{high}"}}
    command: "{touch}"
"""

PLAIN_CATCHUP = """# Plain Snakemake: one job per 10-minute chunk of the last 10 years.
N = {n}

rule all:
    input: expand("out/{{i}}.done", i=range(N))

rule chunk:
    output: "out/{{i}}.done"
    shell: "touch {mark} {{output}}"
"""


def case_catchup(base: Path, a: argparse.Namespace) -> dict:
    o, p = base / "catchup-ours", base / "catchup-plain"
    o.mkdir()
    p.mkdir()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    high = now - timedelta(minutes=now.minute % 10)
    low = high - timedelta(days=3653)
    n = int((high - low).total_seconds() // 600)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    (o / "workflow.yaml").write_text(
        "name: CU\ngates: gates.yaml\ndefaults:\n  resources: {runtime: 10m, mem: 256M}\n"
    )
    (o / "gates.yaml").write_text(
        GATES.format(low=low.strftime(iso), high=high.strftime(iso), touch=TOUCH)
    )
    (p / "Snakefile").write_text(PLAIN_CATCHUP.format(n=n, mark=MARK))
    c = subprocess.run([PY, "-m", "compiler", "compile", str(o)], capture_output=True,
                       text=True, check=False)  # fmt: skip
    if c.returncode != 0:
        raise SystemExit(f"bench: catch-up compile failed:\n{c.stderr[-2000:]}")
    shutil.rmtree(o / ".padocc")
    return {"name": f"catch-up: a 10-minute gate, 10 years ({n:,} chunks)",
            "ours": until_first_step(ours_run(o), o, o / MARK, a.ours_timeout, a.plain_max_gb,
                                     True),
            "plain": until_first_step(plain_cmd(p), p, p / MARK, a.plain_timeout,
                                      a.plain_max_gb),
            "note": deferred_of(c.stderr)[:200]}  # fmt: skip


def case_noop1m(base: Path, a: argparse.Namespace) -> dict:
    n = a.noop_datasets
    print(f"   setting up {n:,} finished datasets of 1 step (ours and plain)", flush=True)
    ours, plain, _ = synthetic(base / "noop", n, ("S1",))
    first = timed(ours_run(ours))
    quiet = [timed(ours_run(ours)) for _ in range(a.runs)]
    if not all("unchanged)" in q[2] for q in quiet):
        print("WARNING: a no-op cycle was not answered quietly")
    t0 = time.perf_counter()
    pl = until_first_step(plain_cmd(plain), plain, plain / "never", a.plain_timeout,
                          a.plain_max_gb)  # fmt: skip
    took = time.perf_counter() - t0
    if pl["why"].startswith("ended (exit 0)"):
        pl["why"], pl["first"] = f"finished in {took:.1f} s", None
    res = {
        "name": f"no-op cycle: {n:,} finished datasets",
        "ours_first": first[:2],
        "ours_quiet": (statistics.median(q[0] for q in quiet), max(q[1] for q in quiet)),
        "plain": pl,
    }
    shutil.rmtree(base / "noop", ignore_errors=True)
    return res


PLAIN_GATEMAP = """# Plain Snakemake: one output per 10-minute chunk, every one already made.
NAMES = [line.strip() for line in open("names.txt") if line.strip()]

rule all:
    input: expand("gates/nrt/{c}.done", c=NAMES)

rule chunk:
    output: "gates/nrt/{c}.done"
    shell: "touch {output}"
"""


def made_gate(d: Path, years: int) -> tuple[str, str, list[str]]:
    """A 10-minute gate of `years` years, every chunk made: its markers and its status
    file (an Engaged and a Pass line a chunk), written as the chunk wrapper writes
    them. (low, high, chunk names)."""
    from compiler.core.statusfile import HEADER, Stat, format_stat
    from compiler.model.axes import tag

    high = datetime(2026, 1, 1, tzinfo=UTC)
    low = high.replace(year=high.year - years)
    lo, hi = int(low.timestamp()), int(high.timestamp())
    names = [f"{tag('time', t)}__{tag('time', t + 600)}" for t in range(lo, hi, 600)]
    (d / "gates" / "nrt").mkdir(parents=True)
    (d / "status" / "gates").mkdir(parents=True)
    with open(d / "status" / "gates" / "nrt.status", "w") as f:
        f.write(f"{HEADER}nrt\n")
        for c in names:
            (d / "gates" / "nrt" / f"{c}.done").touch()
            for state in ("Engaged", "Pass"):
                stat = Stat("20260101_000000_000000", "GM", "nrt", "nrt", state, {"chunk": c})
                f.write(format_stat(stat) + "\n")
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return low.strftime(iso), high.strftime(iso), names


def case_gatemap(base: Path, a: argparse.Namespace) -> dict:
    """A gate's coverage, asked and kept, at 16 years of 10-minute chunks."""
    o, p = base / "gatemap-ours", base / "gatemap-plain"
    o.mkdir(parents=True)
    p.mkdir(parents=True)
    print(f"   setting up {a.gate_years} years of 10-minute chunks, all made", flush=True)
    low, high, names = made_gate(o, a.gate_years)
    (o / "workflow.yaml").write_text(
        "name: GM\ngates: gates.yaml\ndefaults:\n  resources: {runtime: 10m, mem: 256M}\n"
    )
    (o / "gates.yaml").write_text(GATES.format(low=low, high=high, touch="true"))
    (p / "names.txt").write_text("".join(c + "\n" for c in names))
    (p / "gates").symlink_to(o / "gates")
    (p / "Snakefile").write_text(PLAIN_GATEMAP)
    time.sleep(2.5)  # what was just written is old enough to be believed when unchanged
    first = timed([PY, "-m", "compiler", "compile", str(o)])  # builds the map
    check = [PY, "-m", "compiler", "gate", "check", "nrt", low, high, "-C", str(o)]
    shutil.rmtree(o / ".padocc" / "survey" / "coverage")
    cold = timed(check)
    warm = [timed(check) for _ in range(a.runs)]
    nxt = datetime.strptime(high, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    made = [PY, "-m", "compiler", "gate", "make", "nrt", high,
            (nxt + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"), "-C", str(o)]  # fmt: skip
    made_t = timed(made)
    # One more chunk made by the chunk wrapper alone, as in a cycle's Snakemake job: the
    # next query finds the directory changed and brings the map up to date in place.
    chunk = [(nxt + timedelta(minutes=m)).strftime("%Y%m%dT%H%M%SZ") for m in (10, 20)]
    build = os.path.realpath(o / ".padocc" / "current")
    wrapped = timed([PY, "-m", "compiler", "run-chunk", build, "nrt", *chunk], cwd=o)
    after = timed(check)
    noop = [timed(ours_run(o)) for _ in range(a.runs)]
    t0 = time.perf_counter()
    pl = until_first_step(plain_cmd(p), p, p / "never", a.plain_timeout, a.plain_max_gb)
    if pl["why"].startswith("ended (exit 0)"):
        pl["why"] = f"finished in {time.perf_counter() - t0:.1f} s"
    elif pl["why"].startswith("ended"):
        raise SystemExit(f"bench: plain Snakemake failed:\n{pl['tail']}")
    res = {
        "name": f"a 10-minute gate, {a.gate_years} years made ({len(names):,} chunks)",
        "first_compile": first[:2],
        "check_cold": cold[:2],
        "check_warm": (statistics.median(w[0] for w in warm), max(w[1] for w in warm)),
        "make_one": made_t[:2],
        "wrapper_one": wrapped[:2],
        "check_after_make": after[:2],
        "noop": (statistics.median(n[0] for n in noop), max(n[1] for n in noop)),
        "plain": pl,
    }
    shutil.rmtree(o, ignore_errors=True)
    shutil.rmtree(p, ignore_errors=True)
    return res


def fmt_gatemap(r: dict) -> str:
    return (
        f"first compile (makes the map) {r['first_compile'][0]:.1f} s / "
        f"{r['first_compile'][1]:.0f} MB; "
        f"`gate check` {r['check_cold'][0]:.1f} s / {r['check_cold'][1]:.0f} MB with no map, "
        f"{r['check_warm'][0]:.2f} s / {r['check_warm'][1]:.0f} MB from it, "
        f"{r['check_after_make'][0]:.2f} s / {r['check_after_make'][1]:.0f} MB right after "
        f"the chunk wrapper made one more; `gate make` of one chunk {r['make_one'][0]:.1f} s / "
        f"{r['make_one'][1]:.0f} MB (its wrapper alone {r['wrapper_one'][0]:.2f} s / "
        f"{r['wrapper_one'][1]:.0f} MB); no-op `padocc run` {r['noop'][0]:.2f} s / "
        f"{r['noop'][1]:.0f} MB"
    )


CASES = {"datasm": case_datasm, "requeue": case_requeue, "catchup": case_catchup,
         "noop1m": case_noop1m, "gatemap": case_gatemap}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--runs", type=int, default=3, help="quiet no-op runs per median (default 3)")
    ap.add_argument(
        "--plain-timeout",
        type=float,
        default=300,
        help="seconds plain Snakemake gets to start (or finish) (default 300)",
    )
    ap.add_argument(
        "--plain-max-gb",
        type=float,
        default=8,
        help="memory past which a run is stopped (default 8 GB)",
    )
    ap.add_argument("--ours-timeout", type=float, default=300, help="the same for ours")
    ap.add_argument("--requeue-datasets", type=int, default=100_000)
    ap.add_argument("--noop-datasets", type=int, default=1_000_000)
    ap.add_argument("--gate-years", type=int, default=16, help="years of the gatemap case's gate")
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()  # fmt: skip
    cases = [c for c in a.cases.split(",") if c]
    if not cases or any(c not in CASES for c in cases) or not 1 <= a.runs <= 20:
        ap.error(f"--cases takes some of {', '.join(CASES)}; --runs 1..20")
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="padocc-bigdays-"))
    base.mkdir(parents=True, exist_ok=True)
    smk = subprocess.run([*SMK, "--version"], capture_output=True, text=True, check=False)
    smk_version = smk.stdout.strip()
    warn_slow_scontrol()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, Snakemake {smk_version}; both as shipped (ours: padocc run, "
          f"profiles/local; plain: snakemake --cores all)", flush=True)  # fmt: skip
    results = []
    for c in cases:
        print(f"\n== {c}", flush=True)
        r = CASES[c](base, a)
        results.append(r)
        if "check_cold" in r:
            print(f"   ours: {fmt_gatemap(r)}\n   plain no-op: {fmt_start(r['plain'])}", flush=True)
        elif "ours" in r:
            print(f"   ours: {fmt_start(r['ours'])}\n   plain: {fmt_start(r['plain'])}"
                  + (f"\n   {r['note']}" if r.get("note") else ""), flush=True)  # fmt: skip
        else:
            print(f"   ours, first no-op: {r['ours_first'][0]:.1f} s / {r['ours_first'][1]:.0f} MB;"
                  f" quiet no-op: {r['ours_quiet'][0]:.2f} s / {r['ours_quiet'][1]:.0f} MB;"
                  f" plain: {fmt_start(r['plain'])}", flush=True)  # fmt: skip
    print("\n| case | ours | plain Snakemake |\n|---|---|---|")
    for r in results:
        if "check_cold" in r:
            print(f"| {r['name']} | {fmt_gatemap(r)} | no-op: {fmt_start(r['plain'])} |")
        elif "ours" in r:
            print(
                f"| {r['name']} | first step {fmt_start(r['ours'])} | "
                f"first step {fmt_start(r['plain'])} |"
            )
        else:
            print(
                f"| {r['name']} | quiet: {r['ours_quiet'][0]:.2f} s / "
                f"{r['ours_quiet'][1]:.0f} MB (first, full: {r['ours_first'][0]:.1f} s / "
                f"{r['ours_first'][1]:.0f} MB) | {fmt_start(r['plain'])} |"
            )
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
