"""Manual intervention between cycles, from any terminal: `padocc requeue`,
`padocc block`, `padocc unblock`. Each appends STAT lines, so history stays whole.

Ids come from the command line or, with '-', one per line on standard input (so
`padocc status --format ids ... | padocc requeue WF - --at Compute` works).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.buildlock import group_moves
from compiler.core.diagnostics import CompileError, Loc, suggest
from compiler.core.ids import check_id
from compiler.core.safeio import not_regular_reason, read_regular
from compiler.core.statusfile import (
    Stat,
    StatusWriteError,
    append_stats,
    position_of,
    read_history,
    utc_stamp,
)
from compiler.render.manifest import current_manifest


@dataclass(frozen=True)
class ManualOptions:
    action: str  # requeue | block | unblock
    workflow_dir: str
    ids: tuple[str, ...] = field(default_factory=tuple)
    at: str = ""  # requeue: Step or Step:Ready
    groups: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""


def _ids(opts: ManualOptions, m: dict) -> list[str]:
    ids: list[str] = []
    for i in opts.ids:
        if i == "-":
            ids += [ln.strip() for ln in sys.stdin if ln.strip()]
        else:
            ids.append(i)
    # A quarantined group (.shpignore) is out of the cycle, not out of reach.
    by_group = {
        **m.get("quarantined_groups", {}),
        **{g["name"]: g["datasets"] for g in m.get("groups", [])},
    }
    for g in opts.groups:
        if g not in by_group:
            raise CompileError([_err(f"unknown group '{g}'{suggest(g, by_group)}")])
        ids += by_group[g]
    for i in ids:
        check_id(i, Loc("padocc " + opts.action))
    known = _known(opts.workflow_dir, m)
    status_dir = Path(m["workflow"]["status_dir"])
    moved = _completed(opts.workflow_dir)
    for i in ids:
        if i in moved and not (status_dir / f"{i}.status").exists():
            group, to = moved[i]
            raise CompileError([_err(
                f"dataset '{i}' is done: its group '{group}' completed and moved to {to}; "
                "nothing written"
            )])  # fmt: skip
        # A typo must not start a status file of its own for a dataset nobody has.
        if i not in known and not (status_dir / f"{i}.status").exists():
            raise CompileError([_err(f"unknown dataset '{i}'{suggest(i, known)}")])
    return ids


def _known(workflow_dir: str, m: dict) -> set[str]:
    """The current build's datasets and those of quarantined groups."""
    known = {i for ids in m.get("quarantined_groups", {}).values() for i in ids}
    tsv = Path(workflow_dir) / ".padocc" / "current" / m["datasets"]["file"]
    with open(tsv, encoding="utf-8") as f:
        known.update(line.split("\t", 1)[0] for line in f if line.strip())
    return known


def _completed(workflow_dir: str) -> dict[str, tuple[str, str]]:
    """dataset -> (group, where it went), for the flock groups a cycle completed
    (.padocc/flock.json, see commands/cycle.py). A build made before the move still
    lists them: a status file started for one of them would be an orphan."""
    try:
        state = json.loads(read_regular(Path(workflow_dir) / ".padocc" / "flock.json"))
        recs = state["completed"].items()
        return {ds: (name, rec["to"]) for name, rec in recs for ds in rec["datasets"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no flock, or a damaged state the next cycle says and starts afresh


def _err(msg: str):
    from compiler.core.diagnostics import Diagnostic

    return Diagnostic(Loc("padocc"), msg)


def _requeue_target(m: dict, at: str) -> tuple[str, str]:
    step = at.split(":")[0]
    if at.count(":") > 1 or (":" in at and not at.endswith(":Ready")):
        raise CompileError([_err(f"--at takes Step or Step:Ready, not '{at}'")])
    for pos in m["graph"]["table"]:
        sub, _, rest = pos.partition("/")
        if rest == f"{step}:Ready":
            return sub, step
    raise CompileError(
        [_err(f"'{step}' is not a step this workflow can re-queue at{suggest(step, m['steps'])}")]
    )


def run(opts: ManualOptions) -> int:
    try:
        m = current_manifest(opts.workflow_dir)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    # Not created here (a refused command leaves the tree as it was): a cycle makes it.
    with group_moves(opts.workflow_dir, exclusive=False, create=False):
        return _apply(opts, m)


def _apply(opts: ManualOptions, m: dict) -> int:
    try:
        ids = _ids(opts, m)
        target = _requeue_target(m, opts.at) if opts.action == "requeue" else None
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    if not ids:
        print(f"padocc {opts.action}: error: no datasets named", file=sys.stderr)
        return 2
    wf, root = m["workflow"]["name"], m["graph"]["root"]
    status_dir = Path(m["workflow"]["status_dir"])
    for ds in ids:  # every status file checked before any is written
        path = status_dir / f"{ds}.status"
        if path.is_symlink() or (path.exists() and not path.is_file()):
            mode = path.lstat().st_mode
            what = "is a symbolic link" if path.is_symlink() else not_regular_reason(mode)
            print(f"{path}: error: status file {what}; nothing written", file=sys.stderr)
            return 2
    for ds in ids:
        path = status_dir / f"{ds}.status"
        params = {"by": f"padocc {opts.action}"}
        if opts.reason:
            params["reason"] = opts.reason
        if target is not None:
            # Binding, and it starts the visit count afresh.
            line = Stat(utc_stamp(), wf, target[0], target[1], "Ready", {**params, "requeue": "1"})
        else:
            pos = position_of(read_history(path).stats)
            state = "Blocked" if opts.action == "block" else "Unblocked"
            line = Stat(utc_stamp(), wf, pos.sub or root, pos.step or root, state, params)
        try:
            append_stats(path, ds, [line])
        except StatusWriteError as e:  # a full disk, a read-only directory: one line
            print(f"padocc {opts.action}: error: {e}", file=sys.stderr)
            return 1
        print(f"{opts.action} {ds}" + (f" at {target[1]}:Ready" if target else ""))
    return 0
