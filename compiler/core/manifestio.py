"""Reading a build's manifest JSON: all a job needs of it, so a job imports no more
than json (jobs start thousands of times a cycle; their import time adds up).

A manifest on disk names paths inside its workflow directory relative to it (see
`portable`); `load_manifest` makes them absolute again from where the manifest lies,
so a moved or copied workflow directory reads and writes its own files only. Messages
it keeps name the workflow's files relative to it, and stay so."""

from __future__ import annotations

import json
import os

from compiler import MANIFEST_VERSION
from compiler.core.buildlock import workflow_dir_of
from compiler.core.safeio import read_regular

# The keys of each path in a manifest; "*": every entry of a mapping or list. (Step
# and gate sources are `file:line:col` positions: a path in front all the same.)
_PATHS: tuple[tuple[str, ...], ...] = (
    ("workflow", "dir"),
    ("workflow", "source_file"),
    ("workflow", "status_dir"),
    ("workflow", "work_dir"),
    ("workflow", "site", "store"),
    ("gates_file",),
    ("graph", "subs", "*", "file"),
    ("steps", "*", "source"),
    ("gates", "*", "source"),
    ("gates", "*", "preconditions", "*", "source"),
    ("gates", "*", "preconditions", "*", "map", "hook_path"),  # jobs call it: the moved one
)


# Messages that name files of the workflow (a dead end's reason, which a job writes into
# a Quarantined line; the graph's warnings): kept relative, wherever the path is in them.
_MESSAGES: tuple[tuple[str, ...], ...] = (
    ("graph", "table", "*", "*", "reason"),
    ("graph", "warnings", "*"),
)


def _visit(node: object, keys: tuple[str, ...], change) -> None:
    """Replace node[keys...] by change(value), for string values that exist."""
    if not keys or not isinstance(node, dict | list):
        return
    head, rest = keys[0], keys[1:]
    if head == "*":
        slots = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    elif isinstance(node, dict) and head in node:
        slots = [(head, node[head])]
    else:
        return
    for k, v in slots:
        if rest:
            _visit(v, rest, change)
        elif isinstance(v, str) and v:
            node[k] = change(v)


def _walk(m: dict, change) -> dict:
    for keys in _PATHS:
        _visit(m, keys, change)
    return m


def portable(m: dict) -> dict:
    """A copy of manifest m whose paths inside its workflow directory are relative to
    it ("." for the directory itself, "./x" below it); others stay as they are."""
    root = os.path.abspath(m["workflow"]["dir"])

    def rel(p: str) -> str:
        if os.path.isabs(p) and (p == root or p.startswith(root.rstrip("/") + "/")):
            return os.path.join(".", os.path.relpath(p, root)) if p != root else "."
        return p

    out = _walk(json.loads(json.dumps(m)), rel)  # a copy: the caller's stays absolute
    inside = root.rstrip("/") + "/"
    for keys in _MESSAGES:
        _visit(out, keys, lambda text: text.replace(inside, "./"))
    return out


def rebase(m: dict, workflow_dir: str) -> dict:
    """Manifest m, changed in place: its relative paths made absolute under workflow_dir."""

    def absolute(p: str) -> str:
        if p == "." or p.startswith("./"):  # written by portable(); a URL never is
            return workflow_dir if p == "." else os.path.join(workflow_dir, p[2:])
        return p

    return _walk(m, absolute)


def load_manifest(path: str) -> dict:
    m = json.loads(read_regular(path))
    if not isinstance(m, dict):
        raise ValueError("the manifest is not a JSON object")
    if m.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(
            f"{path}: manifest version {m.get('manifest_version')} is not {MANIFEST_VERSION}"
        )
    if isinstance(m.get("workflow"), dict) and m["workflow"].get("dir") == ".":
        m = rebase(m, workflow_dir_of(os.path.dirname(path)))
    return m
