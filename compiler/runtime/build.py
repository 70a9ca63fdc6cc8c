"""Read one build's artifacts (manifest, pending list) at run time, cached per process."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from compiler.core.manifestio import load_manifest

BUILDS = Path(".padocc") / "builds"
RUN = Path(".padocc") / "run"


@dataclass(frozen=True)
class PendingRow:
    key: str
    slots: int
    first: str
    grow: tuple[int, int] = (0, 0)  # (memory, time) growths of `first`, from its status file


@functools.lru_cache(maxsize=8)
def manifest(build_dir: str) -> dict:
    return load_manifest(os.path.join(build_dir, "manifest.json"))


@functools.lru_cache(maxsize=8)
def pending(build_dir: str) -> dict[str, PendingRow]:
    rows = {}
    with open(os.path.join(build_dir, "pending.tsv"), encoding="utf-8") as f:
        for line in f:
            ds, key, slots, first, *grow = line.rstrip("\n").split("\t")
            mem, _, time = (grow[0] if grow else "0,0").partition(",")
            rows[ds] = PendingRow(key, int(slots), first, (int(mem), int(time)))
    return rows


@functools.lru_cache(maxsize=8)
def gate_targets(build_dir: str) -> list[str]:
    path = os.path.join(build_dir, "gate_targets.txt")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


@functools.lru_cache(maxsize=8)
def status_coverage(build_dir: str) -> dict[str, list]:
    """What gates' status commands said was covered when the build was compiled."""
    import json

    path = os.path.join(build_dir, "status_coverage.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dataset_row(build_dir: str, ds_id: str) -> tuple[str, dict]:
    """(routing key, facets) of one dataset, scanning the build's datasets.tsv."""
    return dataset_rows(build_dir, (ds_id,))[ds_id]


def dataset_rows(build_dir: str, ids: tuple[str, ...]) -> dict[str, tuple[str, dict]]:
    """(routing key, facets) of each of `ids`, in one scan of the build's datasets.tsv."""
    import json

    wanted, rows = set(ids), {}
    with open(os.path.join(build_dir, "datasets.tsv"), encoding="utf-8") as f:
        for line in f:
            ds, _, rest = line.partition("\t")
            if ds in wanted:
                key, facets = rest.rstrip("\n").split("\t", 1)
                rows[ds] = (key, json.loads(facets))
                if len(rows) == len(wanted):
                    break
    for ds in ids:
        if ds not in rows:
            raise KeyError(f"dataset {ds} is not in build {build_dir}")
    return rows
