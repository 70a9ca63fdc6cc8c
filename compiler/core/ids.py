"""Dataset ids become file names and shell words: one safe alphabet, checked everywhere."""

from __future__ import annotations

import re

from compiler.core.diagnostics import Loc, fail

ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*\Z")


# Snakemake takes a wildcard value that ends in a part repeated 20 times or more for an
# endless recursion (PeriodicWildcardError): an id is a job's and a keyed gate's
# wildcard, so such an id would fail only at run time. Same test as Snakemake's.
_PERIODIC = re.compile(r"((?P<value>.+)(?P=value){19,99})$")


def periodic_part(ds_id: str) -> str | None:
    """The part Snakemake would call periodically repeated, or None (cheap for most ids)."""
    if len(ds_id) < 20 or ds_id.count(ds_id[-1]) < 20:
        return None
    m = _PERIODIC.search(ds_id)
    return m.group("value") if m else None


def check_id(ds_id: str, loc: Loc) -> None:
    if len(ds_id) > 240 or not ID_RE.match(ds_id) or ".." in ds_id:
        raise fail(
            loc,
            f"dataset id {ds_id!r} is not allowed: use letters, digits and _ . + = - "
            "(not first), no '..', at most 240 characters",
        )
    part = periodic_part(ds_id)
    if part is not None:
        raise fail(
            loc,
            f"dataset id {ds_id!r} ends in {part!r} repeated 20 times or more, "
            "which Snakemake refuses in a wildcard",
        )
