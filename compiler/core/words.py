"""Counted nouns in human messages: "1 chunk", "2 chunks", never "1 chunks"."""

from __future__ import annotations


def plural(n: int, one: str, many: str = "") -> str:
    """`n` and the noun agreeing with it: `many` defaults to `one` + "s" (give it for
    "directory"/"directories"). Only the last word of a phrase changes: "gate chunk"."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
