"""`padocc run-chunk BUILD_DIR GATE LOW HIGH [--key K]`: the gate chunk wrapper."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from compiler.core.buildlock import hold_build
from compiler.core.statusfile import StatusWriteError
from compiler.runtime.chunkrun import ChunkRequest, run_chunk


@dataclass(frozen=True)
class RunChunkOptions:
    build_dir: str
    gate: str
    low: str
    high: str
    key: str = ""
    attempt: int = 1


def run(opts: RunChunkOptions) -> int:
    hold_build(opts.build_dir)  # in use while the job runs, even if Snakemake dies
    try:
        return run_chunk(
            ChunkRequest(opts.build_dir, opts.gate, opts.low, opts.high, opts.key, opts.attempt)
        )
    except StatusWriteError as e:
        print(f"padocc: {e}", file=sys.stderr)
        return 3
