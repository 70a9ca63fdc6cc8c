"""`padocc end-round BUILD_DIR ROUND|end`: what a Snakefile's round checkpoint runs.

After round ROUND of a cycle's slots, it lists the jobs that go on (runtime/rounds.py);
`end` records that the last round has ended. A shell job rather than a `run:` block:
Snakemake starts a whole Snakemake for a local `run:` job, a second or more each."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from compiler.core.buildlock import hold_build
from compiler.core.diagnostics import one_line
from compiler.core.names import round_file
from compiler.runtime import rounds


@dataclass(frozen=True)
class EndRoundOptions:
    build_dir: str
    round: str  # a round's number, or "end"


def run(opts: EndRoundOptions) -> int:
    hold_build(opts.build_dir)
    build = os.path.basename(os.path.normpath(opts.build_dir))
    wf = rounds.workflow_of(opts.build_dir)
    try:
        if opts.round == rounds.END:
            rounds.end_rounds(wf, build)
            return 0
        rnd = int(opts.round) if opts.round.isdigit() else 0
        if rnd < 1:
            raise ValueError(f"a round is a number from 1, or 'end', not '{opts.round}'")
        rounds.end_round(opts.build_dir, rnd, os.path.join(wf, round_file(build, rnd)))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        print(one_line(f"{opts.build_dir}: error: round {opts.round}: {e}"), file=sys.stderr)
        return 2
    return 0
