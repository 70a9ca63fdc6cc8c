"""Users' Python hooks (a precondition's `map: {hook: file.py:function}`): run in a
child process of their own, so that nothing they do ends or hangs the compiler — not
sys.exit or KeyboardInterrupt, not os._exit or a crash of the interpreter, not a loop
that never returns. Whatever escapes them becomes a HookError, which callers report
as bad input at the hook's line.

The child imports the hook file once and answers calls, one JSON line each way, on
a pipe of its own: what the hook prints goes to stderr, never into the answers."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from functools import lru_cache

# A call (or the import) that has not answered by then is a hook that hangs: map
# hooks do arithmetic on two numbers.
HOOK_TIMEOUT_S = 20

_CHILD = r"""
import json, os, sys
import importlib.util

def why(e):
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})"
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__

out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)  # the hook's prints go to stderr, never into the answers
sys.stdout = sys.stderr

def say(obj):
    out.write(json.dumps(obj, default=repr) + "\n")
    out.flush()

try:
    spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1])
    if spec is None or spec.loader is None:
        raise ImportError("not loadable as Python")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
except BaseException as e:
    say({"error": why(e)})
    raise SystemExit(0)
say({"ok": None})
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "callable":
        say({"ok": callable(getattr(mod, req["func"], None))})
        continue
    try:
        fn = getattr(mod, req["func"])
    except AttributeError as e:
        say({"error": why(e), "attr": True})
        continue
    try:
        got = fn(*req["args"])
    except BaseException as e:
        say({"error": why(e)})
        continue
    try:
        say({"ok": got, "repr": repr(got)[:200]})
    except BaseException as e:
        say({"error": why(e)})
"""


class HookError(Exception):
    """The user's code failed; str() says how, in one line."""


class HookResult:
    """What a hook returned: the value as JSON gave it back, and its repr."""

    def __init__(self, value: object, text: str):
        self.value, self.text = value, text


class _Child:
    def __init__(self, path: str, name: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, path, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            encoding="utf-8",
        )
        self.buf = ""
        self.answer()  # the import: raises HookError if it failed

    def answer(self) -> dict:
        """The child's next line, or HookError if it died or took too long."""
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while "\n" not in self.buf:
            ready, _, _ = select.select([fd], [], [], HOOK_TIMEOUT_S)
            if not ready:
                self.proc.kill()
                self.proc.wait()
                raise HookError(f"it did not return within {HOOK_TIMEOUT_S} s")
            chunk = os.read(fd, 1 << 16).decode("utf-8", "replace")
            if not chunk:
                code = self.proc.wait()
                how = f"signal {-code}" if code < 0 else f"exit status {code}"
                raise HookError(f"it ended its process ({how})")
            self.buf += chunk
        line, self.buf = self.buf.split("\n", 1)
        got = json.loads(line)
        if "error" in got:
            if got.get("attr"):
                raise AttributeError(got["error"])
            raise HookError(got["error"])
        return got

    def ask(self, req: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            pass  # a dead child: answer() says how it ended
        return self.answer()


@lru_cache(maxsize=64)
def _child(path: str) -> _Child:
    return _Child(path, f"padocc_hook_{abs(hash(path))}")


def load_module(path: str) -> _Child:
    """The hook file, imported once in its child (the check and every call share
    it). Raises HookError."""
    try:
        return _child(path)
    except HookError:
        _child.cache_clear()  # a failed import is tried afresh next time
        raise


def has_function(child: _Child, func: str) -> bool:
    return bool(child.ask({"op": "callable", "func": func})["ok"])


def call(child: _Child, func: str, *args: float) -> HookResult:
    """func(*args) in the child. Raises HookError (or AttributeError: no such name)."""
    got = child.ask({"op": "call", "func": func, "args": list(args)})
    return HookResult(got["ok"], got["repr"])
