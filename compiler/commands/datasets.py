"""`padocc datasets WORKFLOW_DIR`: list every dataset id the spec expands to."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.load.workflow import load_workflow
from compiler.model.datasets import expand_datasets


@dataclass(frozen=True)
class DatasetsOptions:
    workflow_dir: str = "."
    with_keys: bool = False


def run(opts: DatasetsOptions) -> int:
    try:
        raw = load_workflow(Path(opts.workflow_dir), opts.workflow_dir.rstrip("/") or ".")
        datasets, _ = expand_datasets(raw)
    except CompileError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return 2
    out = sys.stdout
    for d in datasets:
        out.write(f"{d.id}\t{d.routing_key}\n" if opts.with_keys else f"{d.id}\n")
    return 0
