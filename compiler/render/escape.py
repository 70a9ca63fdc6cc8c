"""The one way a value reaches a generated file: every `{{ ... }}` in templates/ ends in
one of these filters, and the Snakefile's Jinja environment refuses any other text.

A Snakefile is Python: a newline in a value copied raw into a comment would make the
rest of the value code that runs whenever Snakemake reads the file.
"""

from __future__ import annotations

import math
import re
import shlex


class Escaped(str):
    """Text already made safe for where the template puts it."""


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def py(value: object) -> Escaped:
    """A Python literal that evaluates back to `value`, whatever characters it holds
    (repr escapes line breaks, quotes, backslashes, NUL and lone surrogates)."""
    return Escaped(_literal(value))


def _literal(value: object) -> str:
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def comment(value: object, cont: str = "#") -> Escaped:
    """Text inside a `#` comment. Each line of a multi-line value goes on its own comment
    line, starting with `cont`; a line holding anything unprintable (any other line
    break, NUL, a lone surrogate) is shown as its Python repr instead."""
    if not cont.startswith("#") or not cont.isprintable():
        raise ValueError(f"a comment continuation must be a printable '#' line: {cont!r}")
    lines = str(value).split("\n")
    if len(lines) > 1 and lines[-1] == "":  # a YAML `|` block ends in a newline
        lines.pop()
    return Escaped(("\n" + cont).join(ln if ln.isprintable() else repr(ln) for ln in lines))


def ident(value: object) -> Escaped:
    """A name used as code (a rule or resource name): only an identifier passes."""
    text = str(value)
    if not _IDENT.match(text):
        raise ValueError(f"not an identifier: {text!r}")
    return Escaped(text)


def number(value: object) -> Escaped:
    """A finite int or float, as code."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return py(value)


FILTERS = {"py": py, "comment": comment, "ident": ident, "number": number}


def only_escaped(value: object) -> object:
    """Jinja's finalize for code templates: any output not made by a filter above is a
    bug in the template, refused before a file is written."""
    if isinstance(value, Escaped):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # an int's text is always safe where it stands
    raise TypeError(
        f"template prints {type(value).__name__} {str(value)[:60]!r} unescaped: "
        "end the expression in | py, | comment, | ident or | number"
    )


def shell_word(value: str) -> str:
    """One shell word inside a Snakemake `shell:` string, which Snakemake formats with
    str.format: quoted for the shell, then its braces doubled."""
    return shlex.quote(value).replace("{", "{{").replace("}", "}}")
