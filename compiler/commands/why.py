"""`padocc why WORKFLOW_DIR DATASET`: why is this dataset not done, and what moves it on.
`padocc why WORKFLOW_DIR GATE LOW HIGH [--key DATASET]`: the same for a gate's range,
per run of like chunks (render/gatewhy.py).

Answers from the dataset's own status file, the current build's graph and the live
runs, reading nothing else: one dataset among millions costs one scan of the build's
dataset list and one status file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.core.attempts import open_after, retry_wait
from compiler.core.diagnostics import CompileError, Loc, suggest
from compiler.core.manifestio import load_manifest
from compiler.core.names import job_log
from compiler.core.routing import decide, engagement_alive, route
from compiler.core.statusfile import (
    FINAL,
    Position,
    Stat,
    iso,
    position_of,
    read_history,
)
from compiler.model.axes import parse_time

# Only core modules at import: the answer must come well under a second, and the
# survey and the planner pull in the YAML loader and the whole model.


@dataclass(frozen=True)
class WhyOptions:
    workflow_dir: str
    dataset: str  # or a gate, with low and high
    format: str = "text"  # or json
    low: str | None = None
    high: str | None = None
    key: str = ""
    now: str | None = None  # UTC time taken as now (default: the clock)


@dataclass(frozen=True)
class Answer:
    dataset: str
    position: str  # Step:State, or "not started"
    since: str | None
    verdict: str  # running, waiting, next, blocked, quarantined, done, stuck, died
    detail: str
    last_failure: str | None
    move_on: str | None  # the command that moves it on, if one is needed


def find_row(tsv: Path, dataset: str) -> tuple[str, str] | None:
    """(routing key, facets JSON) of one dataset of the build's list, or None."""
    data = tsv.read_bytes()
    needle = dataset.encode() + b"\t"
    at = 0 if data.startswith(needle) else data.find(b"\n" + needle)
    if at < 0:
        return None
    start = at if at == 0 else at + 1
    end = data.find(b"\n", start)
    line = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
    _, _, rest = line.partition("\t")
    key, _, facets = rest.partition("\t")
    return key, facets or "{}"


def current_build(wf: Path) -> tuple[dict, Path]:
    """The current build's manifest and dataset list, or a one-line error."""
    path = wf / ".padocc" / "current" / "manifest.json"
    try:
        m = load_manifest(str(path))
        tsv = path.parent / m["datasets"]["file"]
        m["graph"]["table"], m["workflow"]["status_dir"], m["workflow"]["max_visits"]  # read later
    except FileNotFoundError:
        raise WhyError(
            f"{path}: error: no compiled workflow here (run `padocc compile` first)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WhyError(f"{path}: error: unreadable manifest: {e}") from None
    if not tsv.is_file():
        raise WhyError(f"{tsv}: error: the build's dataset list is missing")
    return m, tsv


class WhyError(Exception):
    """One line for the user."""


def _where(st: Stat) -> str:
    if st.params.get("slurm_jobid"):
        return f"SLURM job {st.params['slurm_jobid']}"
    return f"pid {st.params.get('pid', '?')} on {st.params.get('host', '?')}"


def log_of(wf: Path, dataset: str, engaged: Stat | None) -> str | None:
    if engaged is None:
        return None
    build, slot = engaged.params.get("build"), engaged.params.get("slot")
    if not build or not slot:
        return None
    job = engaged.params.get("job") or dataset
    return str(wf / job_log(build, job, slot))


def last_failure(wf: Path, dataset: str, stats: list[Stat]) -> str | None:
    """The last step that failed: when, why, its job and its log."""
    engaged: Stat | None = None
    found = None
    for st in stats:
        if st.state == "Engaged":
            engaged = st
        elif st.state in ("Fail", "Quarantined") and st.step != st.workflow:
            ran = engaged if engaged and engaged.step == st.step else None
            found = (st, ran)
    if found is None:
        return None
    st, ran = found
    why = ",".join(f"{k}={v}" for k, v in st.params.items()) or "no detail"
    text = f"{st.step}:{st.state} at {iso(st.ts)} ({why})"
    if st.params.get("slurm_jobid"):
        text += f", SLURM job {st.params['slurm_jobid']}"
    log = log_of(wf, dataset, ran)
    return text + (f", log {log}" if log else "")


def first_step(graph: dict, key: str) -> str:
    act = route(graph["table"], graph["entry"], key)
    return act.get("step", "STEP") if act["kind"] == "run" else "STEP"


def explain(
    wf: Path, manifest: dict, dataset: str, key: str, stats: list[Stat], held_by: str = "",
    now: datetime | None = None,
) -> Answer:  # fmt: skip
    """`held_by`: the header of a live run whose lease holds the dataset, if one does."""
    graph = manifest["graph"]
    root = graph["root"]
    pos: Position = position_of(stats)
    wfarg = str(wf)
    failure = last_failure(wf, dataset, stats)
    here = f"{pos.sub}/{pos.step}:{pos.state}" if pos.step else "not started"
    since = pos.last.ts if pos.last else None
    if pos.blocked:
        blocked = next(st for st in reversed(stats) if st.state == "Blocked")
        by = ",".join(f"{k}={v}" for k, v in blocked.params.items())
        return Answer(dataset, here, since, "blocked",
                      f"blocked since {iso(blocked.ts)}" + (f" ({by})" if by else ""),
                      failure, f"padocc unblock {wfarg} {dataset}")  # fmt: skip
    eng = pos.open_engagement
    if eng is not None and open_after(stats, eng):  # a Retry line closes it
        jobs = None
        if eng.params.get("slurm_jobid"):
            from compiler.render.plan import running_slurm_jobs

            jobs = running_slurm_jobs()
        log = log_of(wf, dataset, eng)
        if engagement_alive(eng.params, jobs):
            return Answer(dataset, f"{eng.sub}/{eng.step}:Engaged", eng.ts, "running",
                          f"{eng.step} is running since {iso(eng.ts)} ({_where(eng)}, attempt "
                          f"{eng.params.get('attempt', '1')})" + (f"; log {log}" if log else ""),
                          failure, None)  # fmt: skip
        return Answer(dataset, f"{eng.sub}/{eng.step}:Engaged", eng.ts, "died",
                      f"{eng.step} started {iso(eng.ts)} ({_where(eng)}) and ended with no "
                      "outcome (killed, or its host lost); the next cycle records that and "
                      "runs it again within its attempt budget" + (f"; log {log}" if log else ""),
                      failure, f"padocc run {wfarg}")  # fmt: skip
    if held_by:
        return Answer(dataset, here, since, "held",
                      f"held by a live run, which runs it: {held_by}", failure, None)  # fmt: skip
    act = decide(pos, key, graph, int(manifest["workflow"]["max_visits"]))
    kind = act["kind"]
    if kind == "quarantined":
        return Answer(dataset, here, since, "quarantined",
                      f"quarantined since {iso(since)}: {pos.last.params.get('reason', 'no reason given') if pos.last else ''}",
                      failure, f"padocc requeue {wfarg} {dataset} --at {pos.step}")  # fmt: skip
    if kind == "done" or (kind == "final" and pos.sub == root and pos.state in FINAL):
        state = act.get("state", pos.state)
        return Answer(dataset, here, since, "done",
                      f"finished: the workflow ended in {state}", failure,
                      f"padocc requeue {wfarg} {dataset} --at {first_step(graph, key)}"
                      "  (to run it again)")  # fmt: skip
    if kind == "stuck":
        return Answer(dataset, here, since, "stuck",
                      f"{act['reason']}; the next cycle quarantines it", failure,
                      f"padocc requeue {wfarg} {dataset} --at "
                      f"{act.get('step') or 'STEP'}")  # fmt: skip
    if kind == "run":
        delay = manifest["steps"].get(act["step"], {}).get("retry_delay")
        wait = retry_wait(stats, act["step"], delay)
        if wait is not None and (now or datetime.now(UTC)) < wait.until:
            failed = wait.failed
            return Answer(dataset, here, since, "waiting",
                          f"{act['step']} waits for retry delay until "
                          f"{wait.until.strftime('%Y-%m-%dT%H:%M:%SZ')} (attempt "
                          f"{failed.params.get('attempt', '?')} failed at {iso(failed.ts)}); "
                          "a cycle after that runs it", failure,
                          f"padocc run {wfarg}  (after the delay)")  # fmt: skip
        via = f"routing key '{key}'" if key else "the default route"
        return Answer(dataset, here, since, "next",
                      f"next: {act['step']} (of {act['sub']}, by {via}); it starts in the next "
                      "cycle", failure, f"padocc run {wfarg}")  # fmt: skip
    if kind == "final":
        return Answer(dataset, here, since, "next",
                      f"next: the end of {act.get('sub', root)} in {act.get('state')}, "
                      "recorded by the next cycle", failure, f"padocc run {wfarg}")  # fmt: skip
    return Answer(dataset, here, since, kind, json.dumps(act), failure, None)


def shown(position: str) -> str:
    """'VALIDATION/CheckTime:Fail' as 'CheckTime:Fail (in VALIDATION)'."""
    sub, sep, at = position.partition("/")
    if not sep:
        return position
    return at if not sub or at.split(":", 1)[0] == sub else f"{at} (in {sub})"


def run(opts: WhyOptions) -> int:
    wf = Path(opts.workflow_dir)
    try:
        now = datetime.fromtimestamp(parse_time(opts.now, Loc("--now")), UTC) if opts.now else None
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    try:
        manifest, tsv = current_build(wf)
    except WhyError as e:
        print(e, file=sys.stderr)
        return 2
    if opts.low is not None or opts.high is not None:
        return gate_why(opts, manifest)
    row = find_row(tsv, opts.dataset)
    if row is None:
        if opts.dataset in manifest.get("gates", {}):
            print(f"padocc why: error: '{opts.dataset}' is a gate: give LOW and HIGH",
                  file=sys.stderr)  # fmt: skip
            return 2
        hint = ""
        if len(opts.dataset) <= 200:  # a suggestion reads the whole list: only for a typo
            ids = [ln.split("\t", 1)[0] for ln in tsv.read_text("utf-8", "replace").splitlines()]
            hint = suggest(opts.dataset, ids) if len(ids) <= 100_000 else ""
        print(f"{tsv}: error: no dataset {opts.dataset[:80]!r} in the current build{hint}",
              file=sys.stderr)  # fmt: skip
        return 2
    key, _ = row
    status = wf / manifest["workflow"]["status_dir"] / f"{opts.dataset}.status"
    history = read_history(status)
    from compiler.runtime.leases import live_holdings  # reads .padocc/runs only

    held_by = live_holdings(wf).datasets.get(opts.dataset, "")
    ans = explain(wf, manifest, opts.dataset, key, history.stats, held_by, now)
    if opts.format == "json":
        print(json.dumps({**ans.__dict__, "since": iso(ans.since), "warnings": history.warnings}))
        return 0
    for w in history.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"{ans.dataset}: {shown(ans.position)}" + (f" since {iso(ans.since)}" if ans.since else "")
    )
    print(f"  {ans.detail}")
    if ans.last_failure:
        print(f"  last failure: {ans.last_failure}")
    if ans.move_on:
        print(f"  to move it on: {ans.move_on}")
    return 0


def gate_why(opts: WhyOptions, manifest: dict) -> int:
    """`padocc why WF GATE LOW HIGH`: the range's runs of like chunks, at most WHY_RUNS."""
    from compiler.commands.gate import GateOptions, Request
    from compiler.core.diagnostics import CompileError, Loc, fail
    from compiler.core.limits import WHY_RUNS
    from compiler.model.chunks import edge
    from compiler.render.coverage import show
    from compiler.render.gateplan import GatePlanner
    from compiler.render.gatewhy import explain_gate
    from compiler.render.plan import running_slurm_jobs
    from compiler.runtime.leases import live_holdings

    gopts = GateOptions("why", opts.dataset, opts.low, opts.high, opts.workflow_dir, opts.key,
                        now=opts.now)  # fmt: skip
    try:
        if opts.low is None or opts.high is None:
            raise fail(Loc("padocc why"), f"gate '{opts.dataset}': give both LOW and HIGH")
        req = Request(gopts, manifest)
        held = live_holdings(opts.workflow_dir).chunks
        planner = GatePlanner(manifest, req.now, slurm_jobs=running_slurm_jobs(), held=held)
        runs = explain_gate(planner, req.name, req.key, req.low, req.high, opts.workflow_dir, held)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    g = req.g
    shown_runs, more = runs[:WHY_RUNS], runs[WHY_RUNS:]
    n = sum(r.k1 - r.k0 for r in runs)
    label = f"{req.name}@{req.key}" if req.key else req.name

    def one(r) -> dict:
        return {"low": show(g, edge(g, r.k0)), "high": show(g, edge(g, r.k1)),
                "chunks": r.k1 - r.k0, "verdict": r.verdict, "detail": r.detail, "log": r.log,
                "move_on": r.move_on}  # fmt: skip

    if opts.format == "json":
        print(json.dumps({"gate": label, "chunks": n, "runs": [one(r) for r in shown_runs],
                          "more_runs": len(more)}))  # fmt: skip
        return 0
    lo, hi = (show(g, edge(g, runs[0].k0)), show(g, edge(g, runs[-1].k1))) if runs else ("", "")
    print(f"{label} {lo} {hi}: {n} {'chunk' if n == 1 else 'chunks'}")
    for r in shown_runs:
        c = r.k1 - r.k0
        print(f"  {show(g, edge(g, r.k0))} {show(g, edge(g, r.k1))} "
              f"({c} {'chunk' if c == 1 else 'chunks'}): {r.text}")  # fmt: skip
        if r.move_on:
            print(f"    to move it on: {r.move_on}")
    if more:
        print(f"  ... {len(more)} more runs of chunks: ask about a narrower range")
    return 0
