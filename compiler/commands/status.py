"""`padocc status WORKFLOW_DIR`: datasets per current Step:State, from the status files.

    padocc status DIR                                   counts per Step:State
    padocc status DIR -l --facet realm=atm* --state Fail   one row per dataset
    padocc status DIR --step CheckTime --format ids     ids, one a line, for scripts
    padocc status DIR --format json                     everything, for tools

A dataset's Step:State is its open `Engaged` if a job is in it, else its last
binding STAT line; one with no status file yet stands at the graph's entry.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from compiler.core.statusfile import iso, read_history
from compiler.runtime.survey import (
    Filters,
    Record,
    Survey,
    SurveyError,
    filter_mistake,
    position_order,
    select,
    survey,
    text_table,
    write_or_quit,
)

FORMATS = ("table", "json", "ids")


@dataclass(frozen=True)
class StatusOptions:
    workflow_dir: str = "."
    filters: Filters = field(default_factory=Filters)
    format: str = "table"
    list_datasets: bool = False  # table: one row per dataset instead of counts
    use_index: bool = True


def run(opts: StatusOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        s = survey(opts.workflow_dir, use_index=opts.use_index)
    except SurveyError as e:
        print(e, file=sys.stderr)
        return 2
    for w in s.warnings:
        print(f"warning: {w}", file=sys.stderr)
    chosen = select(s.records, opts.filters)
    if not chosen:
        mistake = filter_mistake(s.records, s.manifest, opts.filters)
        if mistake:
            print(f"padocc status: error: {mistake}", file=sys.stderr)
            return 2
    if opts.format == "ids":
        text = "".join(r.id + "\n" for r in sorted(chosen, key=lambda r: r.id))
    elif opts.format == "json":
        text = json.dumps(as_json(s, chosen), indent=1) + "\n"
    elif opts.list_datasets:
        text = text_table(
            ("DATASET", "WORKFLOW", "STEP", "STATE", "SINCE", "BLOCKED", "FAILED"),
            ((r.id, r.workflow, r.step, r.state, iso(r.since), "yes" if r.blocked else "",
              failed_step(r)) for r in sorted(chosen, key=lambda r: r.id)),
        )  # fmt: skip
    else:
        rows = [(wf, step, state, n, b) for (wf, step, state), (n, b) in counts(s, chosen).items()]
        rows.append(("total", "", "", len(chosen), sum(1 for r in chosen if r.blocked)))
        text = text_table(("WORKFLOW", "STEP", "STATE", "DATASETS", "BLOCKED"), rows, right=(3, 4))
    write_or_quit(out, text)
    return 0


def failed_step(r: Record) -> str:
    """For a dataset in Fail, the step whose outcome sent it there: its own Fail line,
    or the last step outcome before a (sub-)workflow's end marker `W:W:Fail` (a step's
    Fail, or a state of its own the graph routes to Fail). Only those files are read."""
    if r.state != "Fail" or r.status_file is None:
        return ""
    if r.workflow != r.step:
        return r.step
    for st in reversed(read_history(Path(r.status_file)).stats):
        if st.binding and st.state != "Engaged" and st.sub != st.step:
            return st.step
    return ""


def counts(s: Survey, records: list[Record]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(workflow, step, state) -> (datasets, of which blocked), in workflow order."""
    c: dict[tuple[str, str, str], list[int]] = {}
    for r in records:
        v = c.setdefault((r.workflow, r.step, r.state), [0, 0])
        v[0] += 1
        v[1] += r.blocked
    key = position_order(s.manifest)
    return {k: (v[0], v[1]) for k, v in sorted(c.items(), key=lambda kv: key(kv[0]))}


def as_json(s: Survey, chosen: list[Record]) -> dict:
    return {
        "workflow": s.name,
        "build": s.manifest.get("build"),
        "datasets_total": len(s.records),
        "matched": len(chosen),
        "counts": [{"workflow": wf, "step": step, "state": state, "datasets": n, "blocked": b}
                   for (wf, step, state), (n, b) in counts(s, chosen).items()],
        "datasets": [record_json(r) for r in sorted(chosen, key=lambda r: r.id)],
    }


def record_json(r: Record) -> dict:
    at = r.engaged or r.current
    return {
        "id": r.id,
        "workflow": r.workflow,
        "step": r.step,
        "state": r.state,
        "since": iso(r.since),
        "blocked": r.blocked,
        "params": dict(at.params) if at else {},
        "routing_key": r.routing_key,
        "facets": r.facets,
        "status_file": r.status_file,
        "warnings": list(r.warnings),
    }
