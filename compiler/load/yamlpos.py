"""YAML loading that keeps source positions from the first line.

`load_yaml` returns plain Python values, except that mappings are `YMap` and
sequences are `YList`, which remember where each key and item came from. Every
later error can then point at the user's line.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compiler.core.diagnostics import Diagnostic, Loc, fail
from compiler.core.safeio import FileTooLarge, NotRegularFile, read_regular


class YMap(dict):
    """A mapping that remembers its own position and those of its keys and values."""

    loc: Loc
    key_locs: dict
    val_locs: dict

    def key_loc(self, key: str) -> Loc:
        return self.key_locs.get(key, self.loc)

    def val_loc(self, key: str) -> Loc:
        return self.val_locs.get(key, self.loc)


class YList(list):
    loc: Loc
    item_locs: list

    def item_loc(self, i: int) -> Loc:
        return self.item_locs[i] if i < len(self.item_locs) else self.loc


def _loc(path: str, node: yaml.Node) -> Loc:
    m = node.start_mark
    return Loc(path, m.line + 1, m.column + 1)


# Aliases let a few lines of YAML expand to billions of values ("billion laughs"),
# or to a value that contains itself: its expanded size is counted (each shared
# node once) before anything is converted, and a document past this is rejected. The largest shipped input is far below it.
MAX_NODES = 1_000_000
MAX_DEPTH = 200


def _check_size(path: str, root: yaml.Node) -> None:
    """Reject, before converting anything, a document whose aliases expand it past
    MAX_NODES values, that contains itself, or that nests past MAX_DEPTH."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        k = id(node)
        if k in sizes:
            return sizes[k]
        if k in open_ or depth > MAX_DEPTH:
            raise fail(
                _loc(path, node),
                f"YAML nested more than {MAX_DEPTH} levels deep, or an alias '*' refers to itself",
            )
        n = 1
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            open_.add(k)
            for child in node.value:
                pair = child if isinstance(child, tuple) else (child,)
                for c in pair:
                    n += size(c, depth + 1)
                    if n > MAX_NODES:
                        raise fail(
                            _loc(path, node),
                            f"YAML document expands to more than {MAX_NODES:,} values "
                            "(aliases '*' repeat whole subtrees); write it out or split it",
                        )
            open_.discard(k)
        sizes[k] = n
        return n

    size(root, 0)


def _convert(
    path: str, node: yaml.Node, as_text: bool = False, warnings: list[Diagnostic] | None = None
) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = YMap()
        out.loc, out.key_locs, out.val_locs = _loc(path, node), {}, {}
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge":
                raise fail(_loc(path, knode), "YAML merge keys ('<<') are not supported")
            key = _convert(path, knode, True)
            if isinstance(key, (YMap, YList)):
                raise fail(_loc(path, knode), "a mapping key must be a plain value")
            # A key is a name: the text written (`no:` is 'no', not 'False').
            key = key if isinstance(key, str) else knode.value
            if key in out:
                # PyYAML (datasm's loader) keeps the last value and drops the first
                # silently: refuse that loss; an exact repeat loses nothing.
                first = out.key_locs[key]
                if _convert(path, vnode, as_text) != out[key]:
                    raise fail(
                        _loc(path, knode),
                        f"duplicate key '{key}' (first at line {first.line}) with a different "
                        "value: a YAML reader keeps only the last and silently drops the first; "
                        "merge them or remove one",
                    )
                if warnings is not None:
                    warnings.append(
                        Diagnostic(
                            _loc(path, knode),
                            f"duplicate key '{key}' (first at line {first.line}) with the same "
                            "value; the repeat is ignored",
                            "warning",
                        )
                    )
                continue
            out[key] = _convert(path, vnode, as_text, warnings)
            out.key_locs[key] = _loc(path, knode)
            out.val_locs[key] = _loc(path, vnode)
        return out
    if isinstance(node, yaml.SequenceNode):
        lst = YList(_convert(path, n, as_text, warnings) for n in node.value)
        lst.loc = _loc(path, node)
        lst.item_locs = [_loc(path, n) for n in node.value]
        return lst
    # Scalars: let SafeLoader's resolver decide int/bool/null/str as usual.
    value = yaml.SafeLoader.construct_object(_SCALAR_LOADER, node, deep=True)
    if as_text and value is not None and not isinstance(value, str):
        return node.value
    if isinstance(value, datetime.date):  # an unquoted time: its text, read as every time is
        return node.value
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(_loc(path, node), f"'{node.value}' is not a finite number")
    return value


class _ScalarLoader(yaml.SafeLoader):
    def __init__(self) -> None:  # no stream: only its constructors are used
        yaml.SafeLoader.__init__(self, "")


_SCALAR_LOADER = _ScalarLoader()


# libyaml's composer keeps the same node marks and is ~10x faster on big specs; the
# pure-Python one is used to word errors, so messages do not depend on which is there.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str):
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)


def load_yaml_text(
    text: str, path: str, warnings: list[Diagnostic] | None = None, as_text: bool = False
) -> Any:
    """The document's values; warnings (a repeated key with the same value) are appended
    to `warnings` when given; `as_text` keeps every plain scalar but null as the text
    written (a dataset spec: `no` stays 'no', `1.10` stays '1.10', never False or 1.1)."""
    try:
        node = _compose(text)
    except yaml.reader.ReaderError as e:
        # The reader counts characters from the start: said here as line and column.
        pos = min(e.position, len(text))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        what = "a NUL byte" if e.character == 0 else f"control character #x{e.character:04x}"
        raise fail(Loc(path, line, col), f"invalid YAML: {what} is not allowed") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = e.problem or e.context or "invalid YAML"
        raise fail(Loc(path, line, col), f"invalid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise fail(Loc(path), f"invalid YAML: {e}") from None
    except RecursionError:
        raise fail(Loc(path), "invalid YAML: nested too deeply") from None
    if node is None:
        return None
    _check_size(path, node)
    try:
        return _convert(path, node, as_text, warnings)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        raise fail(
            Loc(path, mark.line + 1, mark.column + 1) if mark else Loc(path),
            f"invalid YAML value: {e.problem}",
        ) from None


@dataclass
class Reads:
    """What a model was made from: each file read, with its signature when read, and
    why it also depends on something no signature covers (a directory's listing)."""

    files: list[tuple[str, list[int]]] = field(default_factory=list)
    volatile: list[str] = field(default_factory=list)


# A context variable, not a global: only the compile that asks records, and a campaign
# or a test that builds models side by side records nothing it did not ask for.
_READS: ContextVar[Reads | None] = ContextVar("padocc_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[Reads]:
    """Record every input file `read_text` reads meanwhile (render/quiet.py)."""
    reads = Reads()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


def file_sig(path: str | os.PathLike) -> list[int]:
    """What changes when a file's content may have: inode, size, mtime and ctime."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def note_volatile(why: str) -> None:
    reads = _READS.get()
    if reads is not None:
        reads.volatile.append(why)


def read_text(path: Path, shown: str) -> str:
    """Read a UTF-8 input file (regular files only), turning OS and decoding errors into
    diagnostics."""
    reads = _READS.get()
    try:
        if reads is not None:  # before the read: a write meanwhile leaves an older sig
            reads.files.append((os.path.abspath(path), file_sig(path)))
        data = read_regular(path)
    except FileNotFoundError:
        raise fail(Loc(shown), "file not found") from None
    except IsADirectoryError:
        raise fail(Loc(shown), "is a directory, not a regular file") from None
    except (NotRegularFile, FileTooLarge) as e:
        raise fail(Loc(shown), str(e.strerror)) from None
    except OSError as e:
        raise fail(Loc(shown), f"cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise fail(Loc(shown, line, 1), "not valid UTF-8 text") from None


def load_yaml(
    path: Path, shown: str, warnings: list[Diagnostic] | None = None, as_text: bool = False
) -> Any:
    return load_yaml_text(read_text(path, shown), shown, warnings, as_text)
