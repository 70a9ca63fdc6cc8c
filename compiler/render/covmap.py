"""The persistent coverage map of a gate (issue 19 item 3): what `gate check`, `gaps`,
`range` and `coverage` answer from.

Building a gate's coverage from scratch lists every chunk marker and reads the whole
gate status file (a 16-year 10-minute gate: 840,000 markers). The map keeps what
that gives, compactly: the grid chunks done as index runs, the markers off the grid,
each chunk's open engagement and failed runs. It is kept per gate (and key) in
.padocc/survey/coverage/, with the signature of the marker directory (device,
inode, mtime, ctime: any marker made or removed changes it) and of the status file
(device, inode, size, mtime, ctime). It is used only while both are unchanged;
else, or when it is missing or damaged, it is rebuilt from scratch and replaced by
an atomic rename. The signatures are taken before the scan, so a change during the
scan makes the map stale at once; one taken less than 2 s after the last change is
not kept (a change within the same clock tick would not show), as for the status
index. So the map is never stale: what changed behind its back is rebuilt.

What is not kept: a status command's coverage (run on every call, it is the
command's answer) and whether an open engagement's job is alive (asked each time).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from compiler.core.safeio import read_regular, replace_text
from compiler.core.statusindex import RACY_NS
from compiler.render.coverage import (
    ChunkStates,
    chunk_states,
    gate_status,
    gate_status_path,
    grid_index,
    marker_path,
    run_status_command,
    running_of,
)

MAP_DIR = Path(".padocc") / "survey" / "coverage"
MAP_VERSION = 2


def map_path(workflow_dir: str, name: str, key: str = "") -> Path:
    return Path(workflow_dir) / MAP_DIR / (f"{name}@{key}.json" if key else f"{name}.json")


def _sig(path: Path, with_size: bool) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    sig = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return [*sig, st.st_size] if with_size else sig


def mapped_states(
    manifest: dict,
    name: str,
    now: float,
    key: str = "",
    facets: dict | None = None,
    slurm_jobs: frozenset[str] | None = None,
) -> ChunkStates:
    """`chunk_states` for the gate commands, from the map while it is current. Its
    `done` holds only off-grid markers; grid chunks done are in `done_runs`."""
    wf = manifest["workflow"]
    gate = manifest["gates"][name]
    if gate["clock_lag"] is not None:
        return chunk_states(manifest, name, now, key, facets, slurm_jobs)
    mdir = Path(wf["dir"]) / os.path.dirname(marker_path(name, "x", key))
    spath = gate_status_path(wf["status_dir"], name, key)
    path = map_path(wf["dir"], name, key)
    grid = [gate["axis"], gate["origin"], gate["maxrange"]]
    sigs = [_sig(mdir, False), _sig(spath, True)]
    data = _load(path)
    if data is None or data["grid"] != grid or data["sigs"] != sigs:
        data = _build(gate, mdir, spath, grid, sigs)
        if _settled(sigs):
            with contextlib.suppress(OSError):  # read-only or full: rebuilt next time
                replace_text(path, json.dumps(data, separators=(",", ":")))
    st = ChunkStates(
        done=dict.fromkeys(data["off_grid"], 0.0),
        failures=dict(data["failures"]),
        last_fail={c: (v[0], v[1]) for c, v in data["last_fail"].items()},
        done_runs=[(a, b) for a, b in data["runs"]],
        warnings=list(data["warnings"]),
        running=running_of(data["open"], slurm_jobs),
    )
    if gate["coverage"]:
        wfp = {**wf, "python": manifest["python"]}
        st.covered_by_status, said = run_status_command(wfp, name, gate, key, facets or {})
        st.warnings = said + st.warnings
    return st


def _settled(sigs: list) -> bool:
    """Were both last changed long enough ago that a change now would show?"""
    racy_from = time.time_ns() - RACY_NS
    return all(s is None or (s[2] < racy_from and s[3] < racy_from) for s in sigs)


def _build(gate: dict, mdir: Path, spath: Path, grid: list, sigs: list) -> dict:
    ks, off = [], []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with os.scandir(mdir) as it:
            for e in it:
                if e.name.endswith(".done") and e.is_file():
                    k = grid_index(gate, e.name[:-5])
                    if k is None:
                        off.append(e.name[:-5])
                    else:
                        ks.append(k)
    runs: list[list[int]] = []
    for k in sorted(ks):
        if runs and runs[-1][1] == k:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])
    open_eng, failures, last_fail, warnings = gate_status(spath)
    return {
        "version": MAP_VERSION,
        "grid": grid,
        "sigs": sigs,
        "runs": runs,
        "off_grid": sorted(off),
        "open": open_eng,
        "failures": failures,
        "last_fail": {c: list(v) for c, v in last_fail.items()},
        "warnings": warnings,
    }


def _load(path: Path) -> dict | None:
    """The map, or None when missing or damaged in any way (then it is rebuilt)."""
    try:
        data = json.loads(read_regular(path))
        ok = (
            data["version"] == MAP_VERSION
            and isinstance(data["grid"], list)
            and isinstance(data["sigs"], list)
            and all(
                isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r)
                for r in data["runs"]
            )
            and all(isinstance(n, str) for n in data["off_grid"])
            and all(isinstance(k, str) and isinstance(v, str) for k, v in data["open"].items())
            and all(isinstance(k, str) and type(v) is int for k, v in data["failures"].items())
            and all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
                for v in data["last_fail"].values()
            )
            and all(isinstance(w, str) for w in data["warnings"])
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return data if ok else None
