"""Where the shipped templates and profiles are: inside the installed wheel
(compiler_assets.*), or the repo's top-level folders when run from a checkout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
_IN_REPO = {"templates": "templates", "profiles": "profiles", "demo": "workflows/demo"}


def asset_dir(kind: str) -> Path:
    """kind is 'templates', 'profiles' or 'demo'."""
    try:
        spec = importlib.util.find_spec(f"compiler_assets.{kind}")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if Path(loc).is_dir():
            return Path(loc)
    return _REPO / _IN_REPO[kind]
