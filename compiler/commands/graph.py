"""`padocc graph [WORKFLOW_DIR] [--format dot|svg] [-o FILE] [--counts]`: the compiled
transition graph, sub-workflows and routing keys included, as Graphviz DOT, or as SVG
through Graphviz's `dot` when it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compiler.core.manifestio import load_manifest
from compiler.core.safeio import open_regular
from compiler.render.graphdot import graph_dot

if TYPE_CHECKING:  # the survey is imported only when counts are asked for
    from compiler.runtime.survey import Record


@dataclass(frozen=True)
class GraphOptions:
    workflow_dir: str = "."
    format: str = "dot"  # or svg
    output: str = ""  # default: standard output
    counts: bool = False  # datasets at each step, by state


class GraphError(Exception):
    """One line for the user."""


def to_svg(dot_text: str) -> str:
    """SVG from DOT through Graphviz's `dot`; GraphError if it is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError("Graphviz's `dot` is not installed (Debian: apt-get install graphviz)")
    try:
        r = subprocess.run([exe, "-Tsvg"], input=dot_text, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphError(f"`dot -Tsvg` failed: {e}") from None
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise GraphError(f"`dot -Tsvg` exited {r.returncode}: {why[:200]}")
    return r.stdout


def step_counts(records: Iterable[Record]) -> dict[tuple[str, str], dict[str, int]]:
    """(sub-workflow, step) -> state -> datasets standing there."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for rec in records:
        c = out.setdefault((rec.workflow, rec.step), {})
        c[rec.state] = c.get(rec.state, 0) + 1
    return out


def _counts(workflow_dir: str) -> dict[tuple[str, str], dict[str, int]]:
    from compiler.runtime.survey import survey

    return step_counts(survey(workflow_dir).records)


def run(opts: GraphOptions) -> int:
    path = f"{opts.workflow_dir}/.padocc/current/manifest.json"
    try:
        m = load_manifest(path)
        text = graph_dot(
            m["graph"], m["workflow"]["name"],
            _counts(opts.workflow_dir) if opts.counts else None,
            list(m["steps"]),
        )  # fmt: skip
        if opts.format == "svg":
            text = to_svg(text)
    except FileNotFoundError:
        print(f"{path}: error: no compiled workflow here (run `padocc compile` first)",
              file=sys.stderr)  # fmt: skip
        return 2
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{path}: error: unreadable manifest: {e}", file=sys.stderr)
        return 2
    except GraphError as e:
        print(f"padocc graph: error: {e}", file=sys.stderr)
        return 2
    if not opts.output:
        sys.stdout.write(text)
        return 0
    try:
        # A regular file only: a FIFO with no reader would hang the command here.
        fd = open_regular(opts.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        print(f"{opts.output}: error: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0
