#!/usr/bin/env python3
"""Benchmark padocc against plain Snakemake on a real SLURM cluster.

    bash cluster/start-slurm.sh --install       # the one-node test cluster, once
    python bench/slurm.py                       # the demo, and 1,000 trivial datasets
    python bench/slurm.py --datasets 200 --plain-max 200
    python bench/slurm.py --datasets 0 --arrays   # the demo, with and without job arrays

Two workloads, each run to the end by both sides on the same cluster, one after the
other, each on a fresh copy:

  demo       workflows/demo (36 datasets, 6 steps, a fix-and-check loop, a branch by
             realm, one dataset that fails and one quarantined). Plain: a hand-written
             Snakefile doing the same work, one rule per step, the loop written as a
             shell loop inside the check rule (plain Snakemake cannot route on an
             outcome without checkpoints).
  datasm     N of datasm's real datasets (its spec and graph, as bench/cycle.py copies
             them; every N-th id of the 32,146, so every routing key is there), each
             through its own route of datasm's steps, each step `true`; the others are
             marked finished. Plain: one rule per datasm step, each dataset going
             through the steps of its route in order (its route read from the
             compiled routing table: the route every step passing takes).
  synthetic  N datasets through a linear graph of 4 steps, each `true` (bench/cycle.py's
             synthetic workflow, every dataset still to do). Plain: its wildcard
             Snakefile. Plain Snakemake runs one sbatch job per rule and dataset (4N
             jobs); above --plain-max datasets it is not run (its job count is then
             Snakemake's own dry-run count, marked as such).

Both sides as shipped: ours `padocc run --profile slurm` until nothing is pending (a
cron line, run again at once); plain `snakemake --profile profiles/slurm` with the
same profile. Neither gets a flag of its own.

Reported, per side: sbatch calls, SLURM jobs (array tasks counted one by one, from
sacct, those that ran in the side's workflow directory: other users of the cluster
are not counted), jobs that ran no step (ours: jobs whose id is on no status line; plain: every
job runs its rule), squeue and sacct calls (through logging shims on PATH, the jobs'
own calls included), wall seconds. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cycle import (  # noqa: E402
    PLAIN,
    SMK,
    finished_history,
    fix_datasm,
    pending_of,
    transitions,
    workflow_yaml,
)

PY = sys.executable
PROFILE = REPO / "profiles" / "slurm"
COUNTED = ("sbatch", "squeue", "sacct", "scancel")

DEMO_PLAIN = """# Plain Snakemake: the demo's work, hand-written. One rule per step; the time-axis
# loop (check, fix, check again, up to 3 checks) is a shell loop in one rule.
import sys

REALMS = {"atmos": ["tas", "pr", "psl"], "ocean": ["tos", "so", "zos"]}
DS = [f"DEMO.{r}.{x}.{e}.{v}" for r, vs in REALMS.items() for v in vs
      for x in ("hist", "ssp") for e in ("r1", "r2", "r3")]
STEP = f"{sys.executable} {workflow.basedir}/bin/demo_step.py"

def facets(ds):
    _, realm, exp, ens, var = ds.split(".")
    return f"{var} {exp} {ens}"

rule all:
    input: expand("work/{ds}/published", ds=DS)

rule generate:
    output: "work/{ds}/data.txt"
    params: f=lambda w: facets(w.ds)
    shell: "cd work/{wildcards.ds} && {STEP} generate {wildcards.ds} {params.f}"

rule checktime:
    input: "work/{ds}/data.txt"
    output: "work/{ds}/time.ok"
    params: f=lambda w: facets(w.ds)
    shell:
        "cd work/{wildcards.ds} && for i in 1 2 3; do "
        "if {STEP} checktime {wildcards.ds}; then touch time.ok; exit 0; fi; "
        "[ $i = 3 ] || {STEP} fixtime {wildcards.ds} {params.f} || exit 1; done; exit 1"

rule checkmeta:
    input: "work/{ds}/time.ok"
    output: "work/{ds}/data_report.txt"
    params: v=lambda w: w.ds.split(".")[4]
    shell:
        "cd work/{wildcards.ds} && PADOCC_PARAMS_FILE=params PADOCC_STATE_FILE=state "
        "{STEP} checkmeta {wildcards.ds} {params.v}"

rule regrid:
    input: "work/{ds}/data_report.txt"
    output: "work/{ds}/regridded.txt"
    resources: mem_mb=500
    shell: "cd work/{wildcards.ds} && {STEP} regrid {wildcards.ds}"

rule publish:
    input:
        lambda w: f"work/{w.ds}/" + ("regridded.txt" if ".atmos." in w.ds else "data_report.txt")
    output: "work/{ds}/published"
    shell: "cd work/{wildcards.ds} && {STEP} publish {wildcards.ds}"
"""


def shims(base: Path) -> tuple[Path, Path]:
    """A directory of logging stand-ins for the SLURM commands, and their log."""
    d, log = base / "shims", base / "calls.log"
    d.mkdir(parents=True)
    for cmd in COUNTED:
        real = shutil.which(cmd)
        if real is None:
            raise SystemExit(f"bench: {cmd} not found: start the cluster (cluster/start-slurm.sh)")
        p = d / cmd
        p.write_text(f'#!/bin/sh\necho {cmd} >> "{log}"\nexec "{real}" "$@"\n')
        p.chmod(0o755)
    log.touch()
    return d, log


def counts(log: Path) -> dict[str, int]:
    words = log.read_text().split()
    return {c: words.count(c) for c in COUNTED}


def sacct_jobs(since: str, wf: Path) -> dict[str, str]:
    """Raw id -> start time (sacct's, whole seconds, local time) of every job (each array
    task) submitted since `since` that ran in the workflow directory `wf` (so that other
    users of the cluster are not counted), once the accounting has caught up (it can
    lag the jobs' end by a few seconds)."""
    last: dict[str, str] = {}
    for _ in range(30):
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-a", "-S", since, "-o", "JobIDRaw,Start,State,WorkDir"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = [ln.split("|", 3) for ln in out.splitlines() if ln.strip()]
        rows = [r for r in rows if len(r) == 4 and Path(r[3]).resolve() == wf.resolve()]
        jobs = {r[0]: r[1] for r in rows}
        if jobs == last and not any(r[2] in ("PENDING", "RUNNING") for r in rows):
            return jobs
        last = jobs
        time.sleep(2)
    return last


def quiet_queue(root: Path) -> None:
    """Wait until the cluster runs nothing of this bench (a run's last jobs may still be
    ending); jobs of other users of the cluster are left alone."""
    for _ in range(300):
        out = subprocess.run(["squeue", "-h", "-o", "%Z"], capture_output=True, text=True,
                             check=False)  # fmt: skip
        if not any(ln.strip().startswith(str(root)) for ln in out.stdout.splitlines()):
            return
        time.sleep(1)
    raise SystemExit("bench: the bench's SLURM jobs never left the queue")


def measure(label: str, run, base: Path, wf: Path) -> dict:
    """Run one side (run(env) -> None) with the shims on PATH and count what it did."""
    quiet_queue(base.parent)
    shim_dir, log = shims(base)
    env = {**os.environ, "PATH": f"{shim_dir}:{os.environ['PATH']}"}
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(1)  # sacct -S has one-second resolution
    t0 = time.perf_counter()
    run(env)
    wall = time.perf_counter() - t0
    jobs = sacct_jobs(since, wf)
    return {"label": label, "wall": wall, "jobs": jobs, **counts(log)}


ENGAGED = re.compile(r"^STAT:(\d{8}_\d{6}_\d+):[^\n]*?:Engaged:[^\n]*?slurm_jobid=(\d+)", re.M)


def first_engaged(wf: Path) -> dict[str, float]:
    """SLURM job id -> when its first step started (its first Engaged line, UTC)."""
    first: dict[str, float] = {}
    for f in (wf / "status").glob("*.status"):
        for stamp, job in ENGAGED.findall(f.read_text()):
            t = datetime.strptime(stamp, "%Y%m%d_%H%M%S_%f").replace(tzinfo=UTC).timestamp()
            first[job] = min(first.get(job, t), t)
    return first


def start_to_step(jobs: dict[str, str], first: dict[str, float]) -> str:
    """Seconds from a job's start in SLURM (sacct's, whole seconds: on average 0.5 s
    early) to its first step's Engaged line (microseconds): median and mean."""
    gaps = [first[j] - datetime.fromisoformat(start).timestamp()
            for j, start in jobs.items() if j in first and start[:1].isdigit()]  # fmt: skip
    if not gaps:
        return "-"
    return f"{statistics.median(gaps):.1f} (mean {statistics.mean(gaps):.2f}, {len(gaps)} jobs)"


def ours(wf: Path, profile: Path = PROFILE) -> callable:
    def run(env: dict) -> None:
        for _ in range(20):
            c = subprocess.run([PY, "-m", "compiler", "compile", str(wf)], env=env,
                               capture_output=True, text=True, check=False)  # fmt: skip
            if c.returncode != 0:
                raise SystemExit(f"bench: compile failed:\n{c.stdout}{c.stderr}")
            if pending_of(c.stdout) == 0:
                return
            r = subprocess.run([PY, "-m", "compiler", "run", str(wf), "--profile", str(profile)],
                               env=env, capture_output=True, text=True, check=False)  # fmt: skip
            if r.returncode not in (0, 1):
                raise SystemExit(f"bench: padocc run failed ({r.returncode}):\n{r.stderr[-3000:]}")
        raise SystemExit("bench: work left after 20 rounds")

    return run


def plain(wf: Path, profile: Path = PROFILE) -> callable:
    def run(env: dict) -> None:
        subprocess.run([*SMK, "--profile", str(profile), "-s", str(wf / "Snakefile"), "-d", str(wf)],
                       env=env, capture_output=True, text=True, check=False)  # fmt: skip

    return run


def plain_dry_jobs(wf: Path) -> int:
    out = subprocess.run([*SMK, "-n", "--cores", "1", "-s", str(wf / "Snakefile"), "-d", str(wf)],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    m = re.search(r"^total\s+(\d+)", out, re.M)
    return int(m.group(1)) - 1 if m else -1  # `all` runs in the main process


def demo(base: Path) -> tuple[Path, Path]:
    o, p = base / "demo-ours", base / "demo-plain"
    shutil.copytree(REPO / "workflows" / "demo", o)
    shutil.copytree(REPO / "workflows" / "demo" / "bin", p / "bin")
    (p / "Snakefile").write_text(DEMO_PLAIN)
    return o, p


def synthetic(base: Path, n: int) -> tuple[Path, Path]:
    o, p = base / f"syn{n}-ours", base / f"syn{n}-plain"
    ids = [f"SYN.g{i // 1000:03d}.m{i % 1000:03d}" for i in range(n)]
    for d in (o, p):
        (d / "data").mkdir(parents=True)
        (d / "ids.txt").write_text("".join(i + "\n" for i in ids))
        for i in ids:
            (d / "data" / f"{i}.in").write_text(i + "\n")
    (o / "workflow.yaml").write_text(workflow_yaml("SYN"))
    (o / "transitions.yaml").write_text(transitions("SYN"))
    (p / "Snakefile").write_text(PLAIN)
    return o, p


PLAIN_DATASM = """# Plain Snakemake: datasm's work for the same datasets, hand-written. One rule per
# step; each dataset goes through the steps of its route (routes.json) in order.
import json

ROUTE = json.load(open("routes.json"))

wildcard_constraints:
    i=r"[0-9]+",

rule all:
    input: [f"out/{ds}/{len(r)}.{r[-1]}.done" for ds, r in ROUTE.items()]

def previous(w):
    i = int(w.i)
    return f"out/{w.ds}/{i - 1}.{ROUTE[w.ds][i - 2]}.done" if i > 1 else []
"""


def datasm(base: Path, n: int, minutes: int = 0) -> tuple[Path, Path]:
    """(ours, plain) for n of datasm's datasets; plain's routes from ours' compile.
    `minutes`: each step's declared runtime (0: the workflow's own, 10)."""
    o, p = base / f"datasm{n}-ours", base / f"datasm{n}-plain"
    fix_datasm(o)
    if minutes:  # the one default every step takes; missing, the label would lie
        y, was = o / "workflow.yaml", "resources: {runtime: 10,"
        if was not in (text := y.read_text()):
            raise SystemExit(f"bench: {y.name} has no `{was}` to set --step-minutes in")
        y.write_text(text.replace(was, f"resources: {{runtime: {minutes},", 1))
    c = subprocess.run([PY, "-m", "compiler", "compile", str(o)], capture_output=True,
                       text=True, check=False)  # fmt: skip
    if c.returncode != 0:
        raise SystemExit(f"bench: datasm compile failed:\n{c.stderr[-3000:]}")
    build = o / ".padocc" / "current"
    rows = [r.split("\t") for r in (build / "datasets.tsv").read_text().splitlines()]
    keep = {r[0]: r[1] for r in rows[:: max(1, len(rows) // n)][:n]}
    (o / "status").mkdir(exist_ok=True)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for r in rows:
        if r[0] not in keep:
            (o / "status" / f"{r[0]}.status").write_text(
                finished_history(r[0], "WAREHOUSE", "WAREHOUSE", (), t0)
            )
    graph = json.loads((build / "manifest.json").read_text())["graph"]
    write_plain_datasm(p, {ds: route(graph, key) for ds, key in keep.items()},
                       f"    resources: mem_mb=1000, runtime={minutes or 10}\n",
                       "true; touch {output}")  # fmt: skip
    return o, p


def per_job(o: Path, n: int, profile: Path) -> int:
    """Datasets a job of ours carries in round 1 (the compile's sizing for `profile`):
    plain's grouped run puts as many datasets' chains in one job."""
    c = subprocess.run([PY, "-m", "compiler", "compile", "--profile", str(profile), str(o)],
                       capture_output=True, text=True, check=False)  # fmt: skip
    jobs = o / ".padocc" / "current" / "jobs.tsv"
    if c.returncode != 0 or not (n_jobs := len(jobs.read_text().splitlines())):
        raise SystemExit(f"bench: datasm compile failed:\n{c.stderr[-3000:]}")
    return -(-n // n_jobs)


def grouped(p: Path, k: int) -> Path:
    """A copy of plain's datasm workflow whose rules are one group per dataset, with a
    profile (profiles/slurm plus `group-components`) that puts k datasets in a job.
    `cores: 1` too: Snakemake sums a group's parallel jobs' resources (k datasets'
    first steps would ask for k cores and k times the memory, which sbatch refuses on
    a small node); with one core it runs them in series and sums their runtimes."""
    g = p.with_name(p.name + f"-grouped{k}")
    shutil.copytree(p, g)
    sf = g / "Snakefile"
    sf.write_text(sf.read_text().replace("    shell:", '    group: "ds"\n    shell:'))
    shutil.copytree(PROFILE, g / "profile")
    with open(g / "profile" / "config.yaml", "a", encoding="utf-8") as f:
        f.write(f'group-components: ["ds={k}"]\ncores: 1\n')
    return g


def made(p: Path) -> str:
    """Plain's datasm outputs made, of those its routes ask for (a check that it ran)."""
    want = sum(len(r) for r in json.loads((p / "routes.json").read_text()).values())
    return f"{sum(1 for _ in (p / 'out').glob('*/*.done')) if (p / 'out').is_dir() else 0}/{want}"


def write_plain_datasm(p: Path, routes: dict[str, list[str]], extra: str, shell: str) -> None:
    """Plain's datasm Snakefile in `p`: one rule per step of the routes, each running
    `shell` (its `{output}` is Snakemake's), with `extra` lines (resources)."""
    p.mkdir(parents=True)
    (p / "routes.json").write_text(json.dumps(routes))
    steps = sorted({s for r in routes.values() for s in r})
    (p / "Snakefile").write_text(PLAIN_DATASM + "".join(
        f'\nrule {s}:\n    input: previous\n    output: "out/{{ds}}/{{i}}.{s}.done"\n'
        f"{extra}    shell: \"{shell}\"\n"
        for s in steps))  # fmt: skip


def route(graph: dict, key: str) -> list[str]:
    """The steps a dataset of this routing key runs when every step passes."""
    pos, steps = graph["entry"], []
    while len(steps) < 100:
        at = graph["table"][pos]
        to = at.get(key, at[""])
        if to["kind"] != "run":
            return steps
        steps.append(to["step"])
        pos = f"{to['sub']}/{to['step']}:Pass"
    raise SystemExit(f"bench: no end to the route of {key}")


def row(name: str, r: dict, no_step: str) -> str:
    return (f"| {name} | {r['sbatch']} | {len(r['jobs'])} | {no_step} | {r['squeue']} | "
            f"{r['sacct']} | {r['wall']:.0f} |")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", type=int, default=1000, help="synthetic datasets (default 1000)")
    ap.add_argument(
        "--plain-max",
        type=int,
        default=100,
        help="run plain Snakemake on the synthetic workload only up to this many datasets",
    )
    ap.add_argument(
        "--datasm",
        type=int,
        default=0,
        help="also N of datasm's real datasets through datasm's graph (0: not run)",
    )
    ap.add_argument(
        "--step-minutes",
        type=int,
        default=0,
        help="datasm: each step's declared runtime in minutes (default: the workflow's, 10); "
        "trivial steps declared short let the compile put more datasets in a job",
    )
    ap.add_argument(
        "--plain-grouped",
        action="store_true",
        help="datasm: also run plain Snakemake with every rule in one group per dataset "
        "and `group-components` putting as many datasets in a job as ours' round 1 (a knob)",
    )
    ap.add_argument("--no-demo", action="store_true")
    ap.add_argument(
        "--ours-only",
        action="store_true",
        help="run padocc's side only (e.g. to compare two trees' per-job start)",
    )
    ap.add_argument(
        "--arrays",
        action="store_true",
        help="also run the demo, both sides, with the plugin's job arrays for every "
        "rule (`slurm-array-jobs: all` added to a copy of profiles/slurm)",
    )
    args = ap.parse_args()
    if not (0 <= args.datasets <= 100_000 and 0 <= args.plain_max <= 100_000
            and 0 <= args.datasm <= 30_000 and 0 <= args.step_minutes <= 1440):  # fmt: skip
        print("bench: --datasets must be 0..100000, --plain-max 0..100000, --datasm "
              "0..30000 and --step-minutes 0..1440", file=sys.stderr)  # fmt: skip
        return 2
    subprocess.run(["sinfo"], check=True, capture_output=True)
    lines = ["| run | sbatch calls | jobs | jobs with no step | squeue calls | sacct calls | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="padocc-bench-slurm-") as tmp:
        base = Path(tmp)
        work, gaps, extra = [], [], []
        if not args.no_demo:
            work.append(("demo (36 datasets)", *demo(base), True, PROFILE))
        if args.arrays:
            arrays = base / "profile-arrays"
            shutil.copytree(PROFILE, arrays)
            with open(arrays / "config.yaml", "a", encoding="utf-8") as f:
                f.write('slurm-array-jobs: "all"\n')
            o, p = demo(base / "arrays")
            work.append(("demo, job arrays", o, p, True, arrays))
        if args.datasm:
            n, m = args.datasm, args.step_minutes
            o, p = datasm(base, n, m)
            name = f"datasm ({n:,} of its datasets, its graph{f', {m}-min steps' if m else ''})"
            work.append((name, o, p, n <= args.plain_max, PROFILE))
            if args.plain_grouped:
                k = per_job(o, n, PROFILE)
                g = grouped(p, k)
                extra.append((f"{name}: plain Snakemake, grouped {k} dataset{'s' * (k != 1)} a job (knob)",
                              g, g / "profile"))  # fmt: skip
        n = args.datasets
        if n:
            work.append((f"synthetic ({n:,} datasets, 4 steps)", *synthetic(base, n),
                         n <= args.plain_max, PROFILE))  # fmt: skip
        for k, (name, o, p, run_plain, prof) in enumerate(work):
            r = measure("ours", ours(o, prof), base / f"m{k}o", o)
            ran = first_engaged(o)
            lines.append(row(f"{name}: padocc", r, str(sum(1 for j in r["jobs"] if j not in ran))))
            gaps.append(f"{name}: median {start_to_step(r['jobs'], ran)} s from a job's start "
                        "in SLURM to its first step")  # fmt: skip
            print(lines[-1], flush=True)
            if args.ours_only:
                continue
            if run_plain:
                r = measure("plain", plain(p, prof), base / f"m{k}p", p)
                lines.append(row(f"{name}: plain Snakemake", r, "0 (one rule each)"))
            else:
                lines.append(f"| {name}: plain Snakemake | not run | {plain_dry_jobs(p)} "
                             "(its dry run) | | | | |")  # fmt: skip
            print(lines[-1], flush=True)
        for k, (name, p, prof) in enumerate(extra):
            r = measure("plain", plain(p, prof), base / f"m{k}g", p)
            lines.append(row(name, r, f"0 (one group each; made {made(p)})"))
            print(lines[-1], flush=True)
    print()
    print("\n".join(lines))
    print()
    print("\n".join(gaps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
