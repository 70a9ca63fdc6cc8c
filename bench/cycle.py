#!/usr/bin/env python3
"""Benchmark a padocc cycle against plain Snakemake on the same work.

    python bench/cycle.py                      # 1k, 10k and 100k jobs, plus datasm's spec
    python bench/cycle.py --quick              # 1k jobs only (and datasm's spec)
    python bench/cycle.py --sizes 1000,10000 --runs 3 --no-datasm

Synthetic workflows: N jobs = N/4 datasets through a linear graph of 4 steps
(S1 -> S2 -> S3 -> S4, each `true`), every dataset with one declared input file
`data/{dataset}.in` (workflow.yaml `datasets: inputs:`). Everything starts finished:
status files end in the root's Pass, written after the inputs. PLAIN is the
equivalent hand-written wildcard Snakefile (rule S1 reads data/{ds}.in, S2..S4 chain
on S1..S3's output, `all` over every dataset's S4 output), its outputs made up to
date by touching them in order (so it has no .snakemake/metadata: this favours it).
Both sides run as shipped: ours with the shipped `local` profile (through `padocc
run`'s default), plain with `--cores all` and Snakemake's defaults; the bench sets
no scheduler, core count or other flag of its own.

Measured for each size, in one run, each figure the median of --runs runs (plain
Snakemake at 100k jobs: one run, minutes each); each 1% run on a fresh sample:

  compile          `padocc-compile DIR` with nothing changed (the status index warm);
                   "cold" is the first compile, which reads every status file
  no-op cycle      ours: `padocc run` (compile, then Snakemake only when something is
                   pending; `padocc cycle` does the same); ours+smk: `padocc-compile
                   && snakemake` (Snakemake runs on an empty `all`); plain: a real
                   `snakemake --cores 2` run with every output up to date
  1% new work      the inputs of 1% of the datasets get new content (a `touch` may be
                   no change: both sides compare content); ours: `padocc
                   run` (compile, which re-queues them: input changed, then
                   Snakemake), plain: snakemake; both run to the end on the local
                   executor with their shipped defaults. Ours two ways: as
                   shipped (no datasets_per_job: the compile sizes the jobs), and with `datasets_per_job: K`
                   (--datasets-per-job; K datasets one after the other in one job, as
                   BPS clusters quanta). Default "per-core": K = the 1% datasets / the 2
                   cores, one job per core, the README's advice for a local executor

Wall seconds and peak RSS (MB, /usr/bin/time: max over the processes of a cycle).
datasm: its real spec (32,146 datasets) and graph, copied with the graph's one case
defect fixed (`Validation:Ready` -> `VALIDATION:Ready`) so that it compiles: cold
compile (no status files: all pending) and no-op compile (every dataset finished). No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
STEPS = ("S1", "S2", "S3", "S4")
TIME = "/usr/bin/time"


def workflow_yaml(name: str) -> str:
    return f"""name: {name}
datasets:
  lists: [ids.txt]
  inputs: "data/{{dataset}}.in"
graph: transitions.yaml
defaults:
  resources: {{runtime: 5m, mem: 100M, cpus_per_task: 1}}
  retries: 0
steps:
""" + "".join(f'  {s}:\n    command: "true"\n' for s in STEPS)


def transitions(name: str) -> str:
    out = [f"{name}:Ready:\n  default:\n    - {STEPS[0]}:Ready\n"]
    for i, s in enumerate(STEPS):
        nxt = f"{STEPS[i + 1]}:Ready" if i + 1 < len(STEPS) else "Pass"
        out.append(f"{s}:Ready:\n  default:\n    - {s}:Engaged\n")
        out.append(f"{s}:Pass:\n  default:\n    - {nxt}\n{s}:Fail:\n  default:\n    - Fail\n")
    return "".join(out)


PLAIN = """# Plain Snakemake: the same work as the padocc workflow, hand-written with wildcards.
DS = [line.strip() for line in open("ids.txt") if line.strip()]

rule all:
    input: expand("out/{ds}/S4.done", ds=DS)

rule S1:
    input: "data/{ds}.in"
    output: "out/{ds}/S1.done"
    shell: "touch {output}"
""" + "".join(
    f"""
rule {s}:
    input: "out/{{ds}}/{p}.done"
    output: "out/{{ds}}/{s}.done"
    shell: "touch {{output}}"
"""
    for p, s in zip(STEPS, STEPS[1:], strict=False)
)


def stamp(t: datetime) -> str:
    return t.strftime("%Y%m%d_%H%M%S_%f")


def finished_history(ds: str, wf: str, root: str, steps: tuple[str, ...], t: datetime) -> str:
    lines = [f"DATASETID={ds}\n"]
    for s in steps:
        lines.append(f"STAT:{stamp(t)}:{wf}:{wf}:{s}:Engaged:host=bench,pid=1,attempt=1\n")
        t += timedelta(milliseconds=5)
        lines.append(f"STAT:{stamp(t)}:{wf}:{wf}:{s}:Pass:exit=0,attempt=1\n")
        t += timedelta(milliseconds=5)
    lines.append(f"STAT:{stamp(t)}:{wf}:{root}:{root}:Pass:build=bench\n")
    return "".join(lines)


def make_synthetic(base: Path, n_jobs: int) -> tuple[Path, Path, list[str]]:
    """(ours, plain, dataset ids), everything finished and up to date."""
    n_ds = max(1, n_jobs // len(STEPS))
    ids = [f"SYN.g{i // 1000:03d}.m{i % 1000:03d}" for i in range(n_ds)]
    ours, plain = base / "ours", base / "plain"
    past = time.time() - 86400
    for d in (ours, plain):
        (d / "data").mkdir(parents=True)
        (d / "ids.txt").write_text("".join(i + "\n" for i in ids))
        for i in ids:
            p = d / "data" / f"{i}.in"
            p.touch()
            os.utime(p, (past, past))
    (ours / "workflow.yaml").write_text(workflow_yaml("SYN"))
    (ours / "transitions.yaml").write_text(transitions("SYN"))
    (ours / "status").mkdir()
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in ids:
        (ours / "status" / f"{i}.status").write_text(finished_history(i, "SYN", "SYN", STEPS, t0))
    (plain / "Snakefile").write_text(PLAIN)
    for k, s in enumerate(STEPS):
        when = past + 60 * (k + 1)
        for i in ids:
            p = plain / "out" / i / f"{s}.done"
            if k == 0:
                p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
            os.utime(p, (when, when))
    return ours, plain, ids


def timed(cmd: list[str], cwd: Path | None = None, check: bool = True) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout+stderr) of one command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(
            [TIME, "-f", "%M", "-o", tf.name, *cmd],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        try:
            rss = float(Path(tf.name).read_text().strip().splitlines()[-1]) / 1024
        except (ValueError, IndexError):
            rss = float("nan")
    out = p.stdout + p.stderr
    if check and p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{out[-3000:]}")
    return wall, rss, out


def compile_cmd(d: Path) -> list[str]:
    return [PY, "-m", "compiler", "compile", str(d)]


CORES = os.cpu_count() or 1  # `cores: all`, the shipped local profile's, for the K/job rule
# -P (safe path): Python leaves the working directory off sys.path, as it does for the
# `snakemake` console script a user types. With `python -m`, Snakemake's plugin
# discovery would list every subdirectory of the workflow dir (25k-file data/, out/,
# status/) five times per start, which is not Snakemake's cost but this script's.
SMK = [PY, "-P", "-m", "snakemake"]


def ours_smk_cmd(d: Path) -> list[str]:
    # What a user types after padocc-compile: the shipped local profile, nothing else.
    return [*SMK, "--profile", str(REPO / "profiles" / "local"), "-s",
            str(d / "Snakefile"), "-d", str(d)]  # fmt: skip


def plain_cmd(d: Path) -> list[str]:
    # Plain Snakemake as a user runs it locally: every core, its default scheduler.
    return [*SMK, "--cores", "all", "-s", str(d / "Snakefile"), "-d", str(d)]


def pending_of(out: str) -> int:
    # "compiled SYN: N datasets (a done, b pending, ...)"
    for part in out.split("(", 1)[-1].split(")")[0].split(","):
        bits = part.split()
        if len(bits) >= 2 and bits[1] == "pending":
            return int(bits[0])
    return 0


def ours_cycle(d: Path, run_smk: str) -> tuple[float, float, int]:
    """'auto': `padocc run` (compile, then Snakemake only when something is pending);
    'always': `padocc-compile && snakemake`, Snakemake even on an empty `all`."""
    if run_smk == "auto":
        w, r, out = timed([PY, "-m", "compiler", "run", str(d)])  # the shipped local profile
        return w, r, pending_of(out)
    w1, r1, out = timed(compile_cmd(d))
    w2, r2, _ = timed(ours_smk_cmd(d))
    return w1 + w2, max(r1, r2), pending_of(out)


def new_content(p: Path) -> None:
    """New work is new content: padocc, and Snakemake 9 once it has recorded an input's
    checksum, take a `touch` for no change."""
    with p.open("a") as f:
        f.write(f"{time.time_ns()}\n")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def set_datasets_per_job(d: Path, k: int) -> None:
    """k = 0: no key, the compile chooses (as shipped)."""
    y = d / "workflow.yaml"
    lines = [ln for ln in y.read_text().splitlines() if not ln.startswith("datasets_per_job:")]
    y.write_text("\n".join([*lines, *([f"datasets_per_job: {k}"] if k else [])]) + "\n")


def bench_size(base: Path, n: int, runs: int, bundled: int) -> dict:
    print(
        f"\n== {n:,} jobs ({n // len(STEPS):,} datasets x {len(STEPS)} steps): setting up",
        flush=True,
    )
    ours, plain, ids = make_synthetic(base / f"n{n}", n)
    time.sleep(2.1)  # status files older than the index's racy window
    cold, _, out = timed(compile_cmd(ours))
    assert pending_of(out) == 0, out
    res: dict = {"n": n, "compile_cold": cold}
    c = [timed(compile_cmd(ours)) for _ in range(runs)]
    res["compile"] = med([x[0] for x in c])
    res["compile_rss"] = max(x[1] for x in c)
    a = [ours_cycle(ours, "auto") for _ in range(runs)]
    res["noop_ours"], res["noop_ours_rss"] = med([x[0] for x in a]), max(x[1] for x in a)
    b = [ours_cycle(ours, "always") for _ in range(runs)]
    res["noop_ours_smk"], res["noop_ours_smk_rss"] = med([x[0] for x in b]), max(x[1] for x in b)
    plain_runs = 1 if n >= 50_000 else runs
    res["plain_runs"] = plain_runs
    p = [timed(plain_cmd(plain)) for _ in range(plain_runs)]
    res["noop_plain"], res["noop_plain_rss"] = med([x[0] for x in p]), max(x[1] for x in p)
    print(f"   no-op: ours {res['noop_ours']:.2f}s, ours+smk {res['noop_ours_smk']:.2f}s, "
          f"plain {res['noop_plain']:.2f}s", flush=True)  # fmt: skip
    # 1% new work: each run writes new content into the inputs of a fresh random 1%.
    k = max(1, len(ids) // 100)
    rng = random.Random(n)
    res["work_jobs"] = k * len(STEPS)
    res["per_job"] = bundled or -(-k // CORES)
    left = 0
    # As shipped: no datasets_per_job (the compile sizes the jobs); then the workflow
    # key datasets_per_job K. Both with the shipped local profile.
    for key, per_job in (("", 0), ("_bundled", res["per_job"])):
        set_datasets_per_job(ours, per_job)
        ws = []
        for _ in range(runs):
            for i in rng.sample(ids, k):
                new_content(ours / "data" / f"{i}.in")
            w, r, pend = ours_cycle(ours, "auto")
            ws.append((w, r))
            _, _, out = timed(compile_cmd(ours))
            left += pending_of(out)
            print(f"   1% work ({res['work_jobs']} jobs), ours with datasets_per_job {per_job or 'unset'}: "
                  f"{w:.1f}s (pending {pend}, left after {pending_of(out)})", flush=True)  # fmt: skip
        res[f"work_ours{key}"] = med([x[0] for x in ws])
        res[f"work_ours{key}_rss"] = max(x[1] for x in ws)
    res["work_left_after"] = left
    ws = []
    for _ in range(plain_runs):
        for i in rng.sample(ids, k):
            new_content(plain / "data" / f"{i}.in")
        w, r, _ = timed(plain_cmd(plain))
        ws.append((w, r))
        print(f"   1% work, plain {w:.1f}s", flush=True)
    res["work_plain"], res["work_plain_rss"] = med([x[0] for x in ws]), max(x[1] for x in ws)
    shutil.rmtree(base / f"n{n}", ignore_errors=True)
    return res


def fix_datasm(dst: Path) -> None:
    shutil.copytree(REPO / "workflows" / "datasm", dst)
    t = dst / "graph" / "transitions.yaml"
    t.write_text(t.read_text().replace("- Validation:Ready", "- VALIDATION:Ready"))


def bench_datasm(base: Path, runs: int) -> dict:
    print("\n== datasm: real spec and graph (copy; its case defect fixed so it compiles)", flush=True)
    d = base / "datasm"
    fix_datasm(d)
    c = [timed(compile_cmd(d)) for _ in range(runs)]
    out = c[-1][2]
    res = {"cold": med([x[0] for x in c]), "cold_rss": max(x[1] for x in c), "line": out.strip()}
    # Every dataset finished: a root Pass in each status file.
    sys.path.insert(0, str(REPO))
    rows = (d / ".padocc" / "current" / "datasets.tsv").read_text().splitlines()
    (d / "status").mkdir(exist_ok=True)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for row in rows:
        ds = row.split("\t", 1)[0]
        (d / "status" / f"{ds}.status").write_text(
            finished_history(ds, "WAREHOUSE", "WAREHOUSE", (), t0)
        )
    time.sleep(2.1)
    timed(compile_cmd(d))  # fills the status index
    w = [timed(compile_cmd(d)) for _ in range(runs)]
    res["noop"], res["noop_rss"] = med([x[0] for x in w]), max(x[1] for x in w)
    res["noop_line"] = w[-1][2].strip().splitlines()[-1]
    res["n"] = len(rows)
    return res


def warn_slow_scontrol() -> None:
    """The SLURM executor plugin runs `scontrol show config` whenever Snakemake starts
    (it is imported with every executor). Where SLURM's client is installed but no
    controller answers, that waits ~10 s: every Snakemake start, ours and plain."""
    if not shutil.which("scontrol"):
        return
    t0 = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, check=False)
    took = time.perf_counter() - t0
    if took > 1:
        print(f"WARNING: `scontrol show config` took {took:.1f} s (no SLURM controller?): "
              "every Snakemake start pays it; start one (cluster/start-slurm.sh) or "
              "remove the SLURM client for figures that mean anything")  # fmt: skip


def ratio(a: float, b: float) -> str:
    return f"{b / a:.0f}x" if a > 0 else "-"


def per_job_arg(text: str) -> int:
    """--datasets-per-job: "per-core" (0: one job per core) or a number from 1 to 1000."""
    if text == "per-core":
        return 0
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not per-core or a number from 1 to 1000")
    return int(text)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="jobs per synthetic workflow (default 1000,10000,100000)",
    )
    ap.add_argument("--quick", action="store_true", help="1k jobs only")
    ap.add_argument("--runs", type=int, default=3, help="runs per median (default 3)")
    ap.add_argument("--no-datasm", action="store_true", help="skip datasm's real spec")
    ap.add_argument("--keep", help="work in this directory and keep it")
    ap.add_argument("--datasets-per-job", default=0, type=per_job_arg,
                    help="datasets_per_job of ours' second 1%% run: a number, or per-core "
                         "(the default: the 1%% datasets / 2 cores, one job per core)")
    a = ap.parse_args()
    sizes = [1000] if a.quick else [int(s) for s in a.sizes.split(",") if s]
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="padocc-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    snakemake_version = subprocess.run(
        [PY, "-m", "snakemake", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    warn_slow_scontrol()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Snakemake {snakemake_version}; both as shipped (ours: profiles/local, plain: "
          f"--cores all); runs per median: {a.runs}")  # fmt: skip
    results = [bench_size(base, n, a.runs, a.datasets_per_job) for n in sizes]
    dsm = None if a.no_datasm else bench_datasm(base, a.runs)
    print("\nwall s / peak RSS MB; ratio = plain / ours (1%: ours, ours with K datasets a job)")
    hdr = ("jobs", "compile (cold)", "no-op ours", "no-op ours+smk", "no-op plain", "ratio",
           "1% work jobs", "1% ours", "1% ours, K/job", "1% plain", "ratios")  # fmt: skip
    rows = []
    for r in results:
        rows.append((
            f"{r['n']:,}",
            f"{r['compile']:.2f} ({r['compile_cold']:.2f})",
            f"{r['noop_ours']:.2f} / {r['noop_ours_rss']:.0f}",
            f"{r['noop_ours_smk']:.2f} / {r['noop_ours_smk_rss']:.0f}",
            f"{r['noop_plain']:.2f} / {r['noop_plain_rss']:.0f}" + (" (1 run)" if r["plain_runs"] == 1 else ""),
            f"{ratio(r['noop_ours'], r['noop_plain'])} / {ratio(r['noop_ours_rss'], r['noop_plain_rss'])}",
            f"{r['work_jobs']:,}",
            f"{r['work_ours']:.1f} / {r['work_ours_rss']:.0f}",
            f"{r['work_ours_bundled']:.1f} / {r['work_ours_bundled_rss']:.0f} (K={r['per_job']})",
            f"{r['work_plain']:.1f} / {r['work_plain_rss']:.0f}",
            f"{ratio(r['work_ours'], r['work_plain'])}, "
            f"{ratio(r['work_ours_bundled'], r['work_plain'])}",
        ))  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows, strict=True)]
    for row in (hdr, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    if any(r["work_left_after"] for r in results):
        print(
            "WARNING: work left after a 1% cycle:", {r["n"]: r["work_left_after"] for r in results}
        )
    if dsm:
        print(f"\ndatasm ({dsm['n']:,} datasets, real graph; copy with its case defect fixed): "
              f"compile, all pending {dsm['cold']:.2f} s / {dsm['cold_rss']:.0f} MB; "
              f"no-op compile, all finished {dsm['noop']:.2f} s / {dsm['noop_rss']:.0f} MB")  # fmt: skip
        print(f"  {dsm['noop_line']}")
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
