"""`--quiet` for cron: a run's output is held back, and shown only if something went
wrong, so that cron (which mails whatever a job prints, MAILTO) mails only then."""

from __future__ import annotations

import shutil
import tempfile
from typing import TextIO

# A line that says something went wrong even when the run ends well.
_ALARMS = ("warning:", "error:")


class Held:
    """A text stream kept in a temporary file (a big Snakemake log costs no memory)."""

    def __init__(self) -> None:
        self.f = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.alarm = False
        self._tail = ""

    def write(self, s: str) -> int:
        self.f.write(s)
        lines = (self._tail + s).split("\n")
        self._tail = lines.pop()[-200:]
        self.alarm = self.alarm or any(map(_alarming, lines))
        return len(s)

    def flush(self) -> None:
        self.f.flush()

    def release(self, failed: bool, to: TextIO) -> None:
        """Show what was held if the run failed or said a warning or error."""
        if failed or self.alarm or _alarming(self._tail):  # the last line, unended
            self.f.flush()
            self.f.seek(0)
            shutil.copyfileobj(self.f, to)
            to.flush()
        self.f.close()


def _alarming(line: str) -> bool:
    # padocc's own warnings and errors start a line or follow "file:line:col: ".
    return line.startswith(_ALARMS) or ": error: " in line or ": warning: " in line
