"""Users' Python hooks (a precondition's `map: {hook: file.py:function}`): loaded and
called so that nothing they do, not even sys.exit or KeyboardInterrupt, ends the
compiler. Whatever escapes them becomes a HookError, which callers report as bad input
at the hook's line."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType


class HookError(Exception):
    """The user's code failed; str() says how, in one line."""


def _why(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})"
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def load_module(path: str, name: str) -> ModuleType:
    """The hook file, run as a fresh module. Raises HookError."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HookError("not loadable as Python")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except BaseException as e:  # noqa: BLE001 (the user's code: even SystemExit is theirs)
        raise HookError(_why(e)) from None
    return mod


def call(fn: Callable, *args: object) -> object:
    """fn(*args). Raises HookError."""
    try:
        return fn(*args)
    except BaseException as e:  # noqa: BLE001 (as in load_module)
        raise HookError(_why(e)) from None
