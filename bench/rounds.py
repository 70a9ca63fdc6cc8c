"""What routing in rounds costs, beside plain Snakemake on the same work.

    python bench/rounds.py                          # 1,000 datasets
    python bench/rounds.py --datasets 5000 --datasets-per-job 1

N datasets, none started, through four steps S1 -> S2 -> S3 -> S4 whose memory
differs (100, 200, 300, 400 MB), so each step is a job class of its own and a dataset
needs four slots: four rounds of jobs, a checkpoint after each. One dataset in ten
fails S2 and ends there (its route is shorter than the others'). Each step's command is
`true` (S2 of the failing ones `false`).

Ours: `padocc run DIR` as shipped (the local profile; the compile sizes the jobs), or
with `datasets_per_job` set (--datasets-per-job: 1 makes one job per dataset, the most
rounds' work for Snakemake's checkpoints). Plain: a hand-written Snakefile, one rule
per step, the failing S2 ending the dataset's chain (its S3 and S4 are not asked for),
`snakemake --cores all`. Both on the local executor, on fresh copies.

Printed: wall seconds and peak RSS (/usr/bin/time) of each side, our slot jobs (slot
files) and those that ran no step (no dataset of the slot has "ran"), and plain's jobs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
TIME = shutil.which("time") or "/usr/bin/time"
STEPS = (("S1", 100), ("S2", 200), ("S3", 300), ("S4", 400))


def fails(i: int) -> bool:
    return i % 10 == 9


def ids(n: int) -> list[str]:
    return [f"R.g{i // 1000:03d}.m{i % 1000:03d}" for i in range(n)]


def make_ours(d: Path, names: list[str], per_job: int) -> None:
    d.mkdir(parents=True)
    (d / "ids.txt").write_text("".join(n + "\n" for n in names))
    failing = [n for i, n in enumerate(names) if fails(i)]
    (d / "failing.txt").write_text("".join(n + "\n" for n in failing))
    steps = "".join(
        f'  {s}:\n    command: "{cmd}"\n    resources: {{mem: {mem}M}}\n'
        for s, mem in STEPS
        for cmd in ["! grep -qx {dataset} {workflow_dir}/failing.txt" if s == "S2" else "true"]
    )
    (d / "workflow.yaml").write_text(
        "name: R\ndatasets:\n  lists: [ids.txt]\ngraph: transitions.yaml\n"
        + (f"datasets_per_job: {per_job}\n" if per_job else "")
        + "defaults:\n  resources: {runtime: 5m, mem: 100M, cpus_per_task: 1}\n"
        "  retries: 0\nsteps:\n" + steps
    )
    out = ["R:Ready:\n  default:\n    - S1:Ready\n"]
    for i, (s, _) in enumerate(STEPS):
        nxt = f"{STEPS[i + 1][0]}:Ready" if i + 1 < len(STEPS) else "Pass"
        out.append(f"{s}:Ready:\n  default:\n    - {s}:Engaged\n")
        out.append(f"{s}:Pass:\n  default:\n    - {nxt}\n{s}:Fail:\n  default:\n    - Fail\n")
    (d / "transitions.yaml").write_text("".join(out))


def make_plain(d: Path, names: list[str]) -> None:
    d.mkdir(parents=True)
    (d / "ids.txt").write_text("".join(n + "\n" for n in names))
    (d / "failing.txt").write_text("".join(n + "\n" for i, n in enumerate(names) if fails(i)))
    (d / "Snakefile").write_text(
        """# Plain Snakemake: the same work, one rule per step. A dataset failing S2 ends
# there: its S2 output records the failure and nothing later is asked for it.
DS = [x.strip() for x in open("ids.txt") if x.strip()]
FAIL = {x.strip() for x in open("failing.txt") if x.strip()}

rule all:
    input: [f"out/{ds}/S2.done" if ds in FAIL else f"out/{ds}/S4.done" for ds in DS]

rule S1:
    output: "out/{ds}/S1.done"
    resources: mem_mb=100
    shell: "true && touch {output}"

rule S2:
    input: "out/{ds}/S1.done"
    output: "out/{ds}/S2.done"
    resources: mem_mb=200
    shell: "(! grep -qx {wildcards.ds} failing.txt; echo $? > {output})"

rule S3:
    input: "out/{ds}/S2.done"
    output: "out/{ds}/S3.done"
    resources: mem_mb=300
    shell: "true && touch {output}"

rule S4:
    input: "out/{ds}/S3.done"
    output: "out/{ds}/S4.done"
    resources: mem_mb=400
    shell: "true && touch {output}"
"""
    )


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", tf.name, *cmd], cwd=cwd,
                           capture_output=True, text=True, check=False)  # fmt: skip
        wall = time.perf_counter() - t0
        rss = float(Path(tf.name).read_text().split()[-1]) / 1024
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{(p.stdout + p.stderr)[-3000:]}")
    return wall, rss


def slot_counts(d: Path) -> tuple[int, int]:
    """(slot jobs, slots that ran no step) of our run."""
    paths = glob.glob(str(d / ".padocc" / "run" / "*" / "*" / "*.json"))
    idle = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            idle += not any(v.get("ran") for v in json.load(f)["datasets"].values())
    return len(paths), idle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--datasets-per-job", type=int, default=0, help="0: as shipped")
    args = ap.parse_args()
    names = ids(args.datasets)
    base = Path(tempfile.mkdtemp(prefix="padocc-rounds-"))
    try:
        ours, plain = base / "ours", base / "plain"
        make_ours(ours, names, args.datasets_per_job)
        make_plain(plain, names)
        env_note = (
            f"{args.datasets} datasets, datasets_per_job={args.datasets_per_job or 'as shipped'}"
        )
        wall, rss = timed([PY, "-m", "compiler", "run", str(ours)], ours)
        jobs, idle = slot_counts(ours)
        pwall, prss = timed([PY, "-P", "-m", "snakemake", "--cores", "all", "-q"], plain)
        pjobs = len(glob.glob(str(plain / "out" / "*" / "*.done")))
        print(f"# {env_note}, {os.cpu_count()} cores")
        print("| side | wall s | peak RSS MB | step jobs | jobs with no step |")
        print("|---|---:|---:|---:|---:|")
        print(f"| padocc | {wall:.1f} | {rss:.0f} | {jobs} | {idle} |")
        print(f"| plain Snakemake | {pwall:.1f} | {prss:.0f} | {pjobs} | 0 |")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
