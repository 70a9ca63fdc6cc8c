"""`padocc report WORKFLOW_DIR [--since 7d] [--stuck-after 6h] [--format table|json]`.

Per step: datasets that engaged it and how often, outcomes, wall time per engagement
(total, mean, median, p95; the `wall=` of the outcome line, else the time between
Engaged and the outcome), the share of all processing time, retries and peak memory.
Then the failures, the datasets stuck Engaged, and per-gate coverage with its gaps.
`--since` counts only engagements, retries and failures from then on; stuck datasets
are shown whenever they started.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from compiler.core.statusfile import iso
from compiler.core.words import plural
from compiler.runtime.survey import (
    Coverage,
    Failure,
    GateFailure,
    StepRow,
    Stuck,
    Survey,
    SurveyError,
    Tally,
    gates_survey,
    human_seconds,
    load_current,
    parse_duration,
    parse_since,
    stamp_of,
    stuck,
    survey,
    text_table,
    write_or_quit,
)


def human_params(params: Mapping[str, str]) -> str:
    """A STAT line's parameters as a person reads them: ':' not datasm's '^', no
    %-escapes, line breaks shown as ' / ' so a row stays one line."""
    return ", ".join(f"{k}={' / '.join(str(v).splitlines())}" for k, v in params.items())


@dataclass(frozen=True)
class ReportOptions:
    workflow_dir: str = "."
    since: str | None = None  # ISO time or a duration back from now
    stuck_after: str = "6h"
    format: str = "table"
    now: datetime | None = None  # None: the clock; fixed in tests


@dataclass(frozen=True)
class Report:
    workflow: str
    build: str
    datasets: int
    now: datetime
    since: datetime | None
    stuck_after: timedelta
    steps: list[StepRow]
    failures: list[Failure]
    stuck: list[Stuck]
    coverage: list[Coverage]
    gate_failures: list[GateFailure]


def build_report(workflow_dir: str, now: datetime, since: datetime | None,
                 stuck_after: timedelta) -> tuple[Survey, Report]:
    """Everything the report and the dashboard show. Raises SurveyError."""
    manifest, _ = load_current(workflow_dir)
    tally = Tally(manifest, Path(os.path.abspath(workflow_dir)), stamp_of(since) if since else None)
    s = survey(workflow_dir, tally=tally)
    cov, gate_failures = gates_survey(s.manifest, None, os.path.abspath(workflow_dir),
                                      stamp_of(since) if since else None)  # fmt: skip
    return s, Report(s.name, str(s.manifest.get("build", "")), len(s.records), now, since, stuck_after,
                     tally.step_rows(), tally.recent_failures(), stuck(s, now, stuck_after),
                     cov, gate_failures)


def times(opts_since: str | None, opts_stuck: str, now: datetime | None) -> tuple[datetime, datetime | None, timedelta]:
    """(now, since, stuck-after) from the options. Raises ValueError with a message."""
    now = now or datetime.now(UTC)
    since = parse_since(opts_since, now) if opts_since else None
    try:
        after = parse_duration(opts_stuck)
    except ValueError as e:
        raise ValueError(f"--stuck-after: {e}") from None
    return now, since, after


def run(opts: ReportOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        now, since, after = times(opts.since, opts.stuck_after, opts.now)
    except ValueError as e:
        print(f"padocc report: error: {e}", file=sys.stderr)
        return 2
    try:
        s, r = build_report(opts.workflow_dir, now, since, after)
    except SurveyError as e:
        print(e, file=sys.stderr)
        return 2
    for w in s.warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_or_quit(out, json.dumps(as_json(r), indent=1) + "\n" if opts.format == "json" else as_text(r))
    return 0


def _iso_dt(t: datetime | None) -> str | None:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def as_json(r: Report) -> dict:
    def rounded(d: dict) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}

    return {
        "workflow": r.workflow,
        "build": r.build,
        "datasets": r.datasets,
        "now": _iso_dt(r.now),
        "since": _iso_dt(r.since),
        "stuck_after_s": r.stuck_after.total_seconds(),
        "steps": [rounded(asdict(x)) for x in r.steps],
        "failures": [{**asdict(f), "params": dict(f.params), "ts": iso(f.ts)} for f in r.failures],
        "stuck": [rounded({**asdict(x), "ts": iso(x.ts)}) for x in r.stuck],
        "gate_failures": [{**asdict(f), "params": dict(f.params), "ts": iso(f.ts), "reached": f.reached}
                          for f in r.gate_failures],
        "coverage": [{"gate": c.gate, "axis": c.axis, "low": c.low, "high": c.high, "wanted": c.wanted,
                      "covered": round(c.covered, 4),
                      "intervals": [list(i) for i in c.intervals], "gaps": [list(g) for g in c.gaps]}
                     for c in r.coverage],
    }


def axis_text(axis: str, v: float) -> str:
    if axis == "time":
        return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{v:g}"


def gate_next(f: GateFailure) -> str:
    """What makes a failed chunk again: a cycle, or (max_failures reached) a remake."""
    return "remake (max_failures reached)" if f.reached else "the next cycle"


def span_text(c: Coverage) -> tuple[str | None, str | None]:
    """FROM and TO of a coverage row; none for a gate without a want that has nothing."""
    if not c.wanted and c.low == c.high:
        return None, None
    return axis_text(c.axis, c.low), axis_text(c.axis, c.high)


def covered_text(c: Coverage) -> str:
    if c.wanted:
        return f"{c.covered * 100:.1f}%"
    return "no want" if c.low == c.high else f"{c.covered * 100:.1f}% (no want)"


def as_text(r: Report) -> str:
    window = f"since {_iso_dt(r.since)}" if r.since else "all time"
    parts = [f"{r.workflow}: {plural(r.datasets, 'dataset')}, build {r.build}, {window}\n\n"]
    parts.append(text_table(
        ("STEP", "DATASETS", "ENGAGED", "PASS", "FAIL", "OTHER", "RETRIES", "TOTAL", "MEAN", "MEDIAN",
         "P95", "SHARE", "PEAK_MB"),
        ((x.step, x.datasets, x.engaged, x.passed, x.failed, x.other, x.retries, human_seconds(x.total_s),
          human_seconds(x.mean_s), human_seconds(x.median_s), human_seconds(x.p95_s),
          f"{x.share * 100:.1f}%", None if x.peak_mb is None else f"{x.peak_mb:.0f}") for x in r.steps),
        right=range(1, 13),
    ))
    parts.append(f"\nfailures ({len(r.failures)}):\n")
    if r.failures:
        parts.append(text_table(
            ("DATASET", "STEP", "STATE", "WHEN", "SLURM_JOB", "LOG", "PARAMS"),
            ((f.dataset, f.step, f.state, iso(f.ts), f.slurm_jobid or None, f.log, human_params(f.params))
             for f in r.failures),
        ))
    parts.append(f"\nstuck Engaged longer than {human_seconds(r.stuck_after.total_seconds())} ({len(r.stuck)}):\n")
    if r.stuck:
        parts.append(text_table(
            ("DATASET", "STEP", "SINCE", "AGE", "HOST", "PID", "SLURM_JOB", "LOG"),
            ((x.dataset, x.step, iso(x.ts), human_seconds(x.age_s), x.host or None, x.pid or None,
              x.slurm_jobid or None, x.log) for x in r.stuck),
        ))
    if r.coverage or r.gate_failures:  # a workflow without gates: no such section
        parts.append(f"\ngate chunks failed ({len(r.gate_failures)}):\n")
    if r.gate_failures:
        axes = {c.gate: c.axis for c in r.coverage}
        parts.append(text_table(
            ("GATE", "FROM", "TO", "FAILS", "NEXT", "WHEN", "SLURM_JOB", "LOG", "PARAMS"),
            ((f.gate, axis_text(axes.get(f.gate, ""), f.low), axis_text(axes.get(f.gate, ""), f.high),
              f"{f.fails} of {f.max_failures}", gate_next(f), iso(f.ts), f.slurm_jobid or None, f.log,
              human_params({k: v for k, v in f.params.items() if k not in ("low", "high", "chunk")}))
             for f in r.gate_failures),
        ))
    parts.append(f"\ngate coverage ({len(r.coverage)}):\n")
    if r.coverage:
        parts.append(text_table(
            ("GATE", "AXIS", "FROM", "TO", "COVERED", "GAPS"),
            ((c.gate, c.axis, *span_text(c), covered_text(c),
              " ".join(f"{axis_text(c.axis, a)}..{axis_text(c.axis, b)}" for a, b in c.gaps) or None)
             for c in r.coverage),
        ))
    return "".join(parts)
