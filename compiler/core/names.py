"""Names shared by the renderer and the Snakefile helpers (nothing of padocc imported:
any stage may use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def rule_name(gate: str) -> str:
    """Gate names may hold '.'; rule and resource names may not."""
    return "gate_" + gate.replace(".", "_")


def slot_file(build: str, job: str, slot: int, step: str = "") -> str:
    """A job's slot output, relative to the workflow directory (the Snakefile's rule).
    A slot whose datasets all run the same step (known at compile time for slot 1, from
    the round before for later slots) is made by that step's own rule, and named after
    it: `<slot>.<Step>.json`; a slot whose datasets run different steps, `<slot>.json`."""
    if step:
        return f".padocc/run/{build}/{job}/{slot}.{step}.json"
    return f".padocc/run/{build}/{job}/{slot}.json"


# The name the last round's end takes in place of a round's number.
ROUND_END = "end"


def round_file(build: str, rnd: int | str) -> str:
    """What a round of slots ended with (the jobs that go on), relative to the workflow
    directory. A dot directory: no job id starts with a dot, and `*/*/*.json` under
    .padocc/run counts slot files only."""
    return f".padocc/run/{build}/.rounds/{rnd}.json"


def round_log(build: str, rnd: int | str) -> str:
    """The log of the checkpoint that ended a round (or of the last, `end`)."""
    return f".padocc/run/{build}/.rounds/{rnd}.log"


def job_log(build: str, job: str, slot: int | str) -> str:
    """A job slot's log, relative to the workflow directory (the wrapper writes it)."""
    return f".padocc/logs/{build}/{job}/{slot}.log"


def chunk_log(gate: str, chunk: str, key: str = "") -> str:
    """A gate chunk's log, relative to the workflow directory (each run of the chunk
    writes it anew: it holds the last attempt)."""
    return f".padocc/logs/gates/{gate}/{key + '/' if key else ''}{chunk}.log"


def common_first(members: Iterable[str], firsts: Mapping[str, str]) -> str:
    """The step a job's slot 1 runs when all its datasets start at the same one (the
    step's own rule then runs it; runtime/jobs.py first_step reads it back), else ""."""
    found = {firsts[ds] for ds in members}
    return found.pop() if len(found) == 1 else ""
