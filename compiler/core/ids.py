"""Dataset ids become file names and shell words: one safe alphabet, checked everywhere."""

from __future__ import annotations

import re

from compiler.core.diagnostics import Loc, fail

ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*\Z")


def check_id(ds_id: str, loc: Loc) -> None:
    if len(ds_id) > 240 or not ID_RE.match(ds_id) or ".." in ds_id:
        raise fail(
            loc,
            f"dataset id {ds_id!r} is not allowed: use letters, digits and _ . + = - "
            "(not first), no '..', at most 240 characters",
        )
