"""`padocc campaign submit CAMPAIGN.yaml`: run a campaign as one unit (Rubin steps 1-5, 12-13).

    check the campaign file and every workflow it names (bad input: exit 2, nothing run)
    compile each workflow with the campaign's dataset filter; plan its gate ranges
    create <run_root>/<name>-<UTC time> (never an existing one), and save in it:
        submission.yaml    the campaign file, byte for byte
        resolved.json      the resolved campaign; per workflow and round, the manifest
                           of the build it compiled and the exact targets of that run
        environment.json   Python, host, selected variables, installed packages
        snakefiles/<label>/Snakefile   each generated Snakefile (later rounds: round-N/)
    run Snakemake on each build in turn (its output in logs/<label>.snakemake.log);
    while datasets still have work and the last round moved them, compile and run
    again (Rubin's "repeat from step 5"), up to `rounds`
    outcome.json: each target's state after the run; success or failure
    the final step, when its when_run (BPS finalJob.whenRun) says so: final.log

Exit status: 0 the run succeeded (and the final step, if it ran, exited 0); 1 it did
not; 2 bad input or an existing run directory.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from compiler import __version__
from compiler.commands import compile as compile_cmd
from compiler.core.diagnostics import CompileError, Loc, fail, suggest
from compiler.core.routing import decide
from compiler.core.shell import shell_argv
from compiler.core.statusfile import position_of, read_history
from compiler.core.words import plural
from compiler.model.axes import format_time, parse_time, parse_value, time_tag
from compiler.model.campaign import FINAL_FIELDS, Campaign, CampaignWorkflow, load_campaign
from compiler.model.resolve import Overrides
from compiler.model.templates import parse_template
from compiler.render.gateplan import GatePlanner, GateWork
from compiler.render.plan import running_slurm_jobs
from compiler.runtime.build import BUILDS
from compiler.runtime.snakemake_run import profile_dir, run_snakemake

ENV_VARS = ("PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "LANG", "TZ")
ENV_PREFIXES = ("SLURM_",)


@dataclass(frozen=True)
class CampaignOptions:
    action: str  # submit
    campaign_file: str
    profile: str | None = None  # wins over the campaign file's profiles
    now: str | None = None  # UTC time taken as now: run directory name, compile, gates


@dataclass
class Round:
    """One compile of one workflow and the exact targets Snakemake is given for it."""

    n: int
    compiled: compile_cmd.Compiled
    gate_targets: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    snakemake_exit: int | None = None

    def snakefile(self) -> Path:
        return Path(self.compiled.model.dir) / BUILDS / self.compiled.build / "Snakefile"

    def targets(self) -> list[str]:
        return self.compiled.plan.slot_targets(self.compiled.build) + self.gate_targets

    def as_json(self) -> dict:
        c = self.compiled
        return {
            "round": self.n,
            "build": c.build,
            "counts": c.plan.counts,
            "targets": {
                "datasets": [{"id": d.id, "routing_key": d.key, "slots": d.slots, "first": d.first}
                             for d in c.plan.pending],
                "gate_chunks": self.gate_targets,
                "waiting": self.waiting,
                "snakemake": self.targets(),
            },
            "manifest": c.manifest,
        }  # fmt: skip


@dataclass
class WorkflowRun:
    cw: CampaignWorkflow
    profile: str  # a profile directory
    rounds: list[Round] = field(default_factory=list)


def run(opts: CampaignOptions) -> int:
    return submit(opts, sys.stdout, sys.stderr)


def submit(opts: CampaignOptions, out: TextIO, err: TextIO) -> int:
    try:
        camp = load_campaign(Path(opts.campaign_file), opts.campaign_file, opts.profile)
        now = parse_time(opts.now, Loc("--now")) if opts.now else int(time.time())
        runs = [WorkflowRun(w, _profile_dir(w, opts.profile)) for w in camp.workflows]
    except CompileError as e:
        _print(e, err)
        return 2
    run_dir = Path(camp.run_root) / f"{camp.name}-{time_tag(now)}"
    if run_dir.exists():  # mkdir below checks again; this saves the compiles
        print(_exists(run_dir), file=err)
        return 2
    # Every workflow and gate range is checked on a dry compile first: a bad range in
    # the last workflow must not leave the first one's current build filtered.
    for write in (False, True):
        for r in runs:
            rnd = _compile(r.cw, opts.now, out if write else io.StringIO(), err, write=write)
            if rnd is None:
                return 2
            try:
                _plan_gates(rnd, r.cw, now)
            except CompileError as e:
                _print(e, err)
                return 2
            if write:
                r.rounds.append(rnd)

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(run_dir)  # never exist_ok: a run directory is written once
    except FileExistsError:
        print(_exists(run_dir), file=err)
        return 2
    started = time.time()
    shutil.copyfile(opts.campaign_file, run_dir / "submission.yaml")
    write_json(run_dir / "environment.json", environment())
    for r in runs:
        _save_snakefile(run_dir, r, r.rounds[0])
    resolved = {
        "campaign": {**camp.as_json(), "run_dir": str(run_dir), "submitted": format_time(now)},
        "workflows": [_resolved(r) for r in runs],
    }
    write_json(run_dir / "resolved.json", resolved)
    print(f"campaign {camp.name}: run directory {run_dir}", file=out)

    results = {}
    for i, r in enumerate(runs):
        try:
            results[r.cw.label] = _run_workflow(r, camp, run_dir, opts.now, resolved, i, out, err)
        except Exception as e:  # noqa: BLE001 (the final step runs whatever happened, as in BPS)
            results[r.cw.label] = {"workflow": r.rounds[0].compiled.model.name, "outcome": "failure",
                                   "error": f"{type(e).__name__}: {e}"}  # fmt: skip
        res = results[r.cw.label]
        print(f"  {r.cw.label}: {plural(len(res.get('datasets', {})), 'dataset')}, "
              f"{plural(len(res.get('gate_chunks', {})), 'gate chunk')}, {plural(len(r.rounds), 'round')}: {res['outcome']}", file=out)  # fmt: skip
    return _finish(camp, run_dir, results, started, out)


def _finish(camp: Campaign, run_dir: Path, results: dict, started: float, out: TextIO) -> int:
    """outcome.json, then the final step if its when_run says so; the exit status."""
    outcome = (
        "success" if all(res["outcome"] == "success" for res in results.values()) else "failure"
    )
    record = {
        "campaign": camp.name,
        "run_dir": str(run_dir),
        "started": format_time(started),
        "ended": format_time(time.time()),
        "outcome": outcome,
        "workflows": results,
        "final": None,
    }
    final_rc = 0
    if camp.final is not None:
        f = camp.final
        runs_final = f.when_run in ("always", outcome)
        record["final"] = {"when_run": f.when_run, "ran": runs_final, "exit": None}
        if not runs_final:
            record["final"]["reason"] = (
                f"when_run is {f.when_run} and the run's outcome is {outcome}"
            )
        write_json(run_dir / "outcome.json", record)  # the final step may read it
        if runs_final:
            final_rc, command = run_final(camp, run_dir, outcome)
            record["final"].update(command=command, exit=final_rc, log="final.log")
            print(f"final step (when_run {f.when_run}): exit {final_rc}, output in {run_dir / 'final.log'}",
                  file=out)  # fmt: skip
        else:
            print(f"final step not run: {record['final']['reason']}", file=out)
    write_json(run_dir / "outcome.json", record)
    print(f"campaign {camp.name}: {outcome}", file=out)
    return 0 if outcome == "success" and final_rc == 0 else 1


def _print(e: CompileError, err: TextIO) -> None:
    for d in e.diagnostics:
        print(d, file=err)


def _exists(run_dir: Path) -> str:
    return f"{run_dir}: error: run directory already exists; nothing was run or overwritten"


def _profile_dir(w: CampaignWorkflow, cli: str | None) -> str:
    p = profile_dir(w.profile)
    if not p.is_dir():
        where = Loc("--profile") if cli else w.profile_loc
        raise fail(where, f"Snakemake profile '{w.profile}' not found: not a directory, nor a shipped "
                          "profile (local, slurm)")  # fmt: skip
    return str(p)


def _compile(
    cw: CampaignWorkflow, now: str | None, out: TextIO, err: TextIO, n: int = 1, write: bool = True
) -> Round | None:
    copts = compile_cmd.CompileOptions(
        cw.shown_dir,
        quiet=not write,  # the dry compile's warnings are said by the real one
        now=now,
        overrides=Overrides(dataset_filter=cw.dataset_filter),
        write=write,
    )
    rc, compiled = compile_cmd.compile_workflow(copts, out, err)
    return None if rc != 0 or compiled is None else Round(n, compiled)


def _plan_gates(rnd: Round, cw: CampaignWorkflow, now: float) -> None:
    """The gate chunks of this run: the campaign's ranges, planned as `padocc gate make`
    plans them; without ranges, what the compile planned from each gate's `want`."""
    c = rnd.compiled
    if cw.gates is None:
        rnd.gate_targets, rnd.waiting = list(c.gate_work.targets), list(c.gate_work.waiting)
        return
    m = c.manifest
    ids = [d.id for d in c.model.datasets]
    keyed = any(g["keyed"] for g in m["gates"].values())
    planner = GatePlanner(
        m, now, facets={d.id: d.facet_dict() for d in c.model.datasets} if keyed else {},
        slurm_jobs=running_slurm_jobs(),
    )  # fmt: skip
    work = GateWork()
    for r in cw.gates:
        if r.gate not in m["gates"]:
            raise fail(
                r.gate_loc,
                f"workflow {c.model.name} has no gate '{r.gate}'{suggest(r.gate, m['gates'])}",
            )
        g = m["gates"][r.gate]
        if not g["command"]:
            raise fail(r.gate_loc, f"gate '{r.gate}' has no command: a campaign cannot make it")
        lo = parse_value(g["axis"], r.low, r.low_loc)
        hi = parse_value(g["axis"], r.high, r.high_loc)
        if lo > hi:
            raise fail(r.low_loc, f"low {r.low} is after high {r.high}")
        if not g["keyed"]:
            if r.key is not None:
                raise fail(r.key_loc, f"gate '{r.gate}' is not keyed: 'key' does not apply")
            keys = [""]
        elif r.key is None:
            keys = ids
        elif r.key in ids:
            keys = [r.key]
        else:
            raise fail(
                r.key_loc, f"dataset '{r.key}' is not among the datasets of workflow {c.model.name}"
            )
        for key in keys:
            planner.plan(r.gate, key, lo, hi, work)
    rnd.gate_targets = list(dict.fromkeys(work.targets))  # overlapping ranges: each chunk once
    rnd.waiting = work.waiting


# ---------------------------------------------------------------- provenance


def _resolved(r: WorkflowRun) -> dict:
    return {"label": r.cw.label, "dir": r.cw.dir, "profile": r.profile,
            "rounds": [rnd.as_json() for rnd in r.rounds]}  # fmt: skip


def _save_snakefile(run_dir: Path, r: WorkflowRun, rnd: Round) -> None:
    dst = run_dir / "snakefiles" / r.cw.label
    if rnd.n > 1:
        dst = dst / f"round-{rnd.n}"
    dst.mkdir(parents=True)
    shutil.copyfile(rnd.snakefile(), dst / "Snakefile")


def environment() -> dict:
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages.setdefault(name, dist.version)
    return {
        "padocc_version": __version__,
        "python": {"version": sys.version, "executable": sys.executable,
                   "implementation": platform.python_implementation()},
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "user": os.environ.get("USER", ""),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "environment": {k: v for k, v in sorted(os.environ.items())
                        if k in ENV_VARS or k.startswith(ENV_PREFIXES)},
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
    }  # fmt: skip


def write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the run


def _run_workflow(r: WorkflowRun, camp: Campaign, run_dir: Path, now: str | None, resolved: dict,
                  index: int, out: TextIO, err: TextIO) -> dict:  # fmt: skip
    """Run round 1; while datasets still have work and the round moved them, compile and
    run another round (its Snakefile and targets saved before it runs)."""
    (run_dir / "logs").mkdir(exist_ok=True)
    log_rel = f"logs/{r.cw.label}.snakemake.log"
    keys: dict[str, str] = {}  # every dataset targeted in any round -> its routing key
    status_dir = Path(r.rounds[0].compiled.model.status_dir)
    with open(run_dir / log_rel, "a", encoding="utf-8") as log:
        while True:
            rnd = r.rounds[-1]
            keys.update((p.id, p.key) for p in rnd.compiled.plan.pending)
            before = _sizes(status_dir, keys)
            targets = rnd.targets()
            log.write(f"# round {rnd.n}: snakemake on {rnd.snakefile()}, {len(targets)} targets\n")
            log.flush()
            if targets:
                rnd.snakemake_exit = run_snakemake(
                    r.cw.dir, r.profile, str(rnd.snakefile()), extra=targets, log=log
                )
            datasets = _datasets(rnd.compiled.manifest, keys)
            unfinished = [i for i, d in datasets.items() if d["result"] == "unfinished"]
            if not unfinished or rnd.n >= camp.rounds or _sizes(status_dir, keys) == before:
                break
            nxt = _compile(r.cw, now, out, err, rnd.n + 1)
            if nxt is None or not nxt.compiled.plan.pending:
                break
            r.rounds.append(nxt)  # datasets only: gate chunks were all given their chance
            _save_snakefile(run_dir, r, nxt)
            resolved["workflows"][index] = _resolved(r)
            write_json(run_dir / "resolved.json", resolved)
    first = r.rounds[0]
    chunks = {
        t: "done" if (Path(r.cw.dir) / t).is_file() else "not made" for t in first.gate_targets
    }
    exits = [rnd.snakemake_exit for rnd in r.rounds]
    ok = (
        all(rc in (0, None) for rc in exits)
        and all(d["result"] == "pass" for d in datasets.values())
        and all(s == "done" for s in chunks.values())
        and not (r.cw.gates is not None and first.waiting)  # a range asked for, not all made
    )
    return {
        "workflow": first.compiled.model.name,
        "outcome": "success" if ok else "failure",
        "rounds": [{"round": rnd.n, "build": rnd.compiled.build, "snakemake_exit": rnd.snakemake_exit}
                   for rnd in r.rounds],
        "log": log_rel,
        "datasets": datasets,
        "gate_chunks": chunks,
        "waiting": first.waiting,
    }  # fmt: skip


def _sizes(status_dir: Path, ids: dict[str, str]) -> list[int]:
    """Status files are append-only: any line a round wrote makes one longer."""
    out = []
    for i in ids:
        try:
            out.append(os.stat(status_dir / f"{i}.status").st_size)
        except OSError:
            out.append(-1)
    return out


def _datasets(m: dict, keys: dict[str, str]) -> dict[str, dict]:
    """Where each dataset stands: pass / fail (its route ended there), quarantined,
    blocked, or unfinished (work left)."""
    wf = m["workflow"]
    out = {}
    for ds, key in keys.items():
        pos = position_of(read_history(Path(wf["status_dir"]) / f"{ds}.status").stats)
        act = decide(pos, key, m["graph"], wf["max_visits"])
        kind = act["kind"]
        result = (
            act["state"].lower()
            if kind == "done"
            else kind
            if kind in ("quarantined", "blocked")
            else "unfinished"
        )
        out[ds] = {"at": f"{pos.sub}/{pos.step}:{pos.state}" if pos.step else "", "result": result}
    return out


def run_final(camp: Campaign, run_dir: Path, outcome: str) -> tuple[int, str]:
    """The final step, in the campaign file's directory; its output in final.log."""
    assert camp.final is not None
    values = {"run_dir": str(run_dir), "campaign": camp.name, "outcome": outcome,
              "python": sys.executable}  # fmt: skip
    command = parse_template(
        camp.final.command, camp.final.loc, FINAL_FIELDS, "final command", shell=True
    ).fill(values, shlex.quote)
    env = {**os.environ, "PADOCC_RUN_DIR": str(run_dir), "PADOCC_CAMPAIGN": camp.name,
           "PADOCC_OUTCOME": outcome}  # fmt: skip
    with open(run_dir / "final.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(
            shell_argv(command), cwd=Path(camp.path).parent, env=env, stdout=log,
            stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    return proc.returncode, command
