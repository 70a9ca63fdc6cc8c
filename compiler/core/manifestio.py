"""Reading a build's manifest JSON: all a job needs of it, so a job imports no more
than json (jobs start thousands of times a cycle; their import time adds up)."""

from __future__ import annotations

import json

from compiler import MANIFEST_VERSION
from compiler.core.safeio import read_regular


def load_manifest(path: str) -> dict:
    m = json.loads(read_regular(path))
    if not isinstance(m, dict):
        raise ValueError("the manifest is not a JSON object")
    if m.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(
            f"{path}: manifest version {m.get('manifest_version')} is not {MANIFEST_VERSION}"
        )
    return m
