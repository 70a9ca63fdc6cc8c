"""`padocc dashboard WORKFLOW_DIR -o FILE.html`: the workflow's state as one HTML page.

The page stands alone: CSS, JavaScript and SVG charts are inline, nothing is fetched,
and it opens from disk. It shows the state matrix (steps x states, each count linking
to its list of datasets further down the page), a coverage timeline per gate with its
gaps, time per step as a bar chart, recent failures and datasets stuck Engaged.
Elements carry stable ids and data-* attributes (data-count, data-step, ...), so
scripts and tests can read the numbers back.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from markupsafe import Markup

from compiler.commands.report import (
    Report,
    axis_text,
    build_report,
    covered_text,
    gate_next,
    human_params,
    span_text,
    times,
)
from compiler.commands.status import counts
from compiler.core.diagnostics import CompileError, one_line
from compiler.core.safeio import not_regular_reason
from compiler.core.statusfile import iso
from compiler.core.words import plural
from compiler.render.render import render_template
from compiler.runtime.survey import Survey, SurveyError, human_seconds, state_key

TEMPLATE = "dashboard.html.j2"
CHART_W = 460  # px of the longest bar / of a coverage timeline
MAX_ROWS = 200  # failures, stuck datasets and warnings shown in the page


@dataclass(frozen=True)
class DashboardOptions:
    workflow_dir: str = "."
    output: str = "dashboard.html"
    since: str | None = None
    stuck_after: str = "6h"
    max_list: int = 1000  # dataset ids listed per Step:State; the counts stay exact
    now: datetime | None = None


def run(opts: DashboardOptions) -> int:
    out = Path(opts.output)
    why = _bad_output(out)
    if why:  # a bad -o is a bad argument: said first
        print(one_line(f"{opts.output}: error: -o {why}; name the page's file"), file=sys.stderr)
        return 2
    try:
        now, since, after = times(opts.since, opts.stuck_after, opts.now)
    except ValueError as e:
        print(f"padocc dashboard: error: {e}", file=sys.stderr)
        return 2
    try:
        s, r = build_report(opts.workflow_dir, now, since, after)
    except SurveyError as e:
        print(e, file=sys.stderr)
        return 2
    for w in s.warnings:
        print(f"warning: {w}", file=sys.stderr)
    try:
        page_dir = Path(opts.output).resolve().parent
        html = render_template(TEMPLATE, context(s, r, max(0, opts.max_list), page_dir))
    except CompileError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return 1
    try:
        _write_atomic(Path(opts.output), html)
    except OSError as e:
        print(f"{opts.output}: error: cannot write the page: {e.strerror or e}", file=sys.stderr)
        return 1
    print(
        f"wrote {opts.output}: {plural(len(s.records), 'dataset')}, {plural(len(s.warnings), 'warning')}"
    )
    return 0


def _bad_output(out: Path) -> str:
    """Why -o cannot name the page ('' if it can). A FIFO or device is refused, not
    replaced by the page."""
    if out.is_dir():
        return "is a directory"
    if not out.parent.is_dir():
        return "is in a directory that does not exist"
    if out.exists() and not out.is_file():
        return not_regular_reason(out.stat().st_mode)
    return ""


def _write_atomic(path: Path, text: str) -> None:
    """A reader (a browser refreshing the page) never sees half a page."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _Ids:
    """Stable, unique HTML ids from names: unsafe characters become '_'."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        base = "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", p) for p in parts)
        out, n = base, 1
        while out in self.used:
            n += 1
            out = f"{base}-{n}"
        self.used.add(out)
        return out


def page_path(path: str | None, page_dir: Path) -> str:
    """A log's path as the page shows it: relative to the page, as its link is, so a
    copy of the page names no directory of the cluster it was made on."""
    return os.path.relpath(path, page_dir) if path else ""


def link(path: str | None, page_dir: Path) -> str:
    """A log's link relative to the page, so a copy of the page and the logs beside it
    opens anywhere (off the cluster too)."""
    return urllib.parse.quote(page_path(path, page_dir))


def graph_svg(s: Survey) -> str:
    """The transition graph with datasets per step, as inline SVG (Graphviz's `dot`,
    run now: the page fetches nothing); "" when Graphviz is not installed."""
    from compiler.commands.graph import GraphError, step_counts, to_svg
    from compiler.render.graphdot import graph_dot

    counts = step_counts(s.records)
    try:
        svg = to_svg(graph_dot(s.manifest["graph"], s.name, counts, list(s.manifest["steps"])))
    except GraphError:
        return ""
    # Inside HTML the XML prolog and doctype cannot stand, and an inline <svg> needs no
    # namespace attributes (their URLs are names, never fetched: left out all the same).
    svg = svg[svg.index("<svg") :]
    return re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", svg)


WHY_MAX = 20_000  # datasets the page's search answers for; `padocc why` answers for all


def why_index(s: Survey) -> dict[str, list[str]]:
    """id -> [Step:State, since, what it means], for the page's search box: datasets that
    need a look first (not finished in Pass), then the rest, up to WHY_MAX."""
    root = s.root
    out: dict[str, list[str]] = {}
    ranked = sorted(s.records, key=lambda r: (r.workflow == root and r.state == "Pass", r.id))
    for rec in ranked[:WHY_MAX]:
        at = f"{rec.step}:{rec.state}" + (
            f" (in {rec.workflow})" if rec.workflow not in ("", rec.step) else ""
        )
        eng = rec.engaged
        if rec.blocked:
            text = "blocked: padocc unblock releases it"
        elif eng is not None:
            where = eng.params.get("slurm_jobid") or f"pid {eng.params.get('pid', '?')}"
            text = f"{rec.step} engaged ({where}): running, or died with no outcome"
        elif rec.state == "Quarantined":
            text = "quarantined: " + (rec.current.params.get("reason", "") if rec.current else "")
        elif rec.workflow == root and rec.step == root and rec.state in ("Pass", "Fail"):
            text = f"finished in {rec.state}"
        elif rec.since is None:
            text = "not started: the next cycle starts it"
        else:
            text = "waiting for the next cycle to move it on"
        out[rec.id] = [at, iso(rec.since) or "", text]
    return out


def context(s: Survey, r: Report, max_list: int, page_dir: Path | None = None) -> dict:
    page_dir = page_dir or Path.cwd()
    ids = _Ids()
    by_pos = counts(s, s.records)
    root = s.root
    # Every step the graph runs gets a row (zeros too), the workflow's own row last:
    # datasets not started yet stand at its entry, finished ones at its end states.
    pairs = {
        (a["sub"], a["step"])
        for acts in s.manifest["graph"]["table"].values()
        for a in acts.values()
        if a.get("kind") == "run"
    }
    pairs |= {(wf, step) for wf, step, _ in by_pos}
    order = {name: i for i, name in enumerate(s.manifest["steps"])}
    pairs_sorted = sorted(
        pairs - {(root, root)}, key=lambda p: (order.get(p[1], len(order)), p[1], p[0])
    )
    states = sorted({st for _, _, st in by_pos} | {"Engaged", "Pass", "Fail"}, key=state_key)
    rows = {
        (wf, step): {
            "workflow": wf,
            "step": step,
            "id": ids("row", wf, step),
            "label": f"{step} (not started, and ended)" if (wf, step) == (root, root) else step,
            "cells": {},
            "total": 0,
            "blocked": 0,
        }
        for wf, step in [*pairs_sorted, (root, root)]
    }
    members: dict[tuple[str, str, str], list[str]] = {}
    for rec in s.records:
        members.setdefault((rec.workflow, rec.step, rec.state), []).append(rec.id)
    lists = []
    for (wf, step, state), (n, blocked) in by_pos.items():
        row = rows[(wf, step)]
        anchor = ids("ds", wf, step, state)
        row["cells"][state] = {
            "count": n,
            "blocked": blocked,
            "id": ids("cell", wf, step, state),
            "anchor": anchor,
        }
        row["total"] += n
        row["blocked"] += blocked
        shown = sorted(members[(wf, step, state)])
        lists.append(
            {
                "id": anchor,
                "workflow": wf,
                "step": step,
                "state": state,
                "count": n,
                "ids": shown[:max_list],
                "more": max(0, n - max_list),
            }
        )
    longest = max((x.total_s for x in r.steps), default=0.0)
    steps = [
        {
            "step": x.step,
            "id": ids("bar", x.step),
            "seconds": round(x.total_s, 3),
            "width": round(CHART_W * x.total_s / longest, 1) if longest else 0.0,
            "total": human_seconds(x.total_s),
            "mean": human_seconds(x.mean_s),
            "median": human_seconds(x.median_s),
            "p95": human_seconds(x.p95_s),
            "share": f"{x.share * 100:.1f}%",
            "engaged": x.engaged,
            "datasets": x.datasets,
            "passed": x.passed,
            "failed": x.failed,
            "other": x.other,
            "retries": x.retries,
            "peak": "-" if x.peak_mb is None else f"{x.peak_mb:.0f}",
        }
        for x in r.steps
    ]
    gates = []
    axes = {c.gate: c.axis for c in r.coverage}
    for c in r.coverage:
        span = (c.high - c.low) or 1.0

        def px(v: float, c=c, span=span) -> float:
            return round(CHART_W * (min(max(v, c.low), c.high) - c.low) / span, 1)

        ticks = [
            {
                "x": round(CHART_W * i / 4, 1),
                "text": axis_text(c.axis, c.low + span * i / 4),
                "anchor": ("start", "middle", "middle", "middle", "end")[i],
            }
            for i in range(5)
        ]
        gates.append(
            {
                "gate": c.gate,
                "id": ids("gate", c.gate),
                "axis": c.axis,
                "ticks": ticks,
                "low": span_text(c)[0] or "-",
                "high": span_text(c)[1] or "-",
                "wanted": c.wanted,
                "covered": covered_text(c),
                "intervals": [
                    {"x": px(a), "w": max(0.5, px(b) - px(a)), "kind": k} for a, b, k in c.intervals
                ],
                "gaps": [
                    {
                        "x": px(a),
                        "w": max(0.5, px(b) - px(a)),
                        "text": f"{axis_text(c.axis, a)} .. {axis_text(c.axis, b)}",
                    }
                    for a, b in c.gaps
                ],
            }
        )
    return {
        "workflow": s.name,
        "build": r.build,
        "generated": r.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "since": r.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if r.since else "",
        "stuck_after": human_seconds(r.stuck_after.total_seconds()),
        "n_datasets": len(s.records),
        "n_blocked": sum(1 for rec in s.records if rec.blocked),
        "states": states,
        "rows": list(rows.values()),
        "lists": lists,
        "steps": steps,
        "chart_w": CHART_W,
        "gates": gates,
        "failures": [
            {
                "dataset": f.dataset,
                "step": f.step,
                "state": f.state,
                "when": iso(f.ts),
                "params": human_params(f.params),
                "log": page_path(f.log, page_dir),
                "log_url": link(f.log, page_dir),
                "slurm_jobid": f.slurm_jobid,
            }
            for f in r.failures[:MAX_ROWS]
        ],
        "n_failures": len(r.failures),
        "gate_failures": [
            {
                "gate": f.gate,
                "low": axis_text(axes.get(f.gate, ""), f.low),
                "high": axis_text(axes.get(f.gate, ""), f.high),
                "chunk": f.chunk,
                "fails": f.fails,
                "max_failures": f.max_failures,
                "reached": f.reached,
                "next": gate_next(f),
                "when": iso(f.ts),
                "slurm_jobid": f.slurm_jobid,
                "log": page_path(f.log, page_dir),
                "log_url": link(f.log, page_dir),
                "params": human_params(
                    {k: v for k, v in f.params.items() if k not in ("low", "high", "chunk")}
                ),
            }
            for f in r.gate_failures[:MAX_ROWS]
        ],
        "n_gate_failures": len(r.gate_failures),
        "stuck": [
            {
                "dataset": x.dataset,
                "step": x.step,
                "since": iso(x.ts),
                "age": human_seconds(x.age_s),
                "host": x.host,
                "pid": x.pid,
                "slurm_jobid": x.slurm_jobid,
                "log": page_path(x.log, page_dir),
                "log_url": link(x.log, page_dir),
            }
            for x in r.stuck[:MAX_ROWS]
        ],
        "n_stuck": len(r.stuck),
        "warnings": s.warnings[:MAX_ROWS],
        "graph_svg": Markup(graph_svg(s)),  # made by Graphviz from escaped DOT
        "why": why_index(s),
        "why_max": WHY_MAX,
        "workflow_dir": str(s.workflow_dir),
        "n_warnings": len(s.warnings),
    }
