"""How user commands are run, shared by the compiler (coverage commands) and the
runtime (steps, gate chunks, a campaign's final step)."""

from __future__ import annotations


def shell_argv(command: str) -> list[str]:
    """How every user command runs (steps, gate chunks, coverage, a campaign's final
    step): the whole text as one bash script, so a `command: |` block of several lines
    is one script. A failing line ends it with that line's status (errexit and
    pipefail, as Snakemake's `shell:` does), so a step never passes with half its work
    undone. No nounset: a command may read an optional variable such as $SLURM_JOB_ID."""
    return ["bash", "-e", "-o", "pipefail", "-c", command]
