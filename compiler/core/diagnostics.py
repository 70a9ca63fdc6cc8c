"""The one diagnostic type: every user-facing problem is `file:line:col: severity: message`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A position in a source file; line and col are 1-based, 0 means unknown."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


@dataclass(frozen=True)
class Diagnostic:
    loc: Loc
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return one_line(f"{self.loc}: {self.severity}: {_cut_values(self.message)}")


MAX_LINE = 2000  # characters: a message quoting a huge value is cut
CUT = 80  # characters of a quoted value a message shows
# A quoted value: one word past CUT characters, or anything quoted past 4 * CUT (prose
# between two quoted values is never that long).
_QUOTED = re.compile(rf"'([^'\s]{{{CUT}}})[^'\s]+'|'([^']{{{CUT}}})[^']{{{3 * CUT},}}'")


def _cut_values(message: str) -> str:
    """A 1 MB id is echoed as its first 80 characters and an ellipsis."""
    message = _QUOTED.sub(lambda m: f"'{m.group(1) or m.group(2)}…'", message)
    return message if len(message) <= 20 * CUT else message[: 20 * CUT] + "…"


def one_line(text: str) -> str:
    """A diagnostic is always one printable line, whatever the values it quotes hold
    (a newline in a command, a lone surrogate from a non-UTF-8 name)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


class CompileError(Exception):
    """Raised by library code for bad input; commands turn it into exit status 2."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def fail(loc: Loc, message: str) -> CompileError:
    """Build (not raise) a one-diagnostic error, so call sites read `raise fail(...)`."""
    return CompileError([Diagnostic(loc, message)])


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower and lower[word.lower()] != word:
        return f" (did you mean '{lower[word.lower()]}'?)"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
