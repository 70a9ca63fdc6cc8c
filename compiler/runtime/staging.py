"""Staging: a step's declared inputs come from the site's central store into the job's
work dir before its command runs; its declared outputs go back to the store after it
ends in a state other than Fail (Rubin's note, steps 8, 11.1, 11.8 and 14).

Two transports, chosen by the workflow's `site:`:

- `shared_fs: true`: the store is a directory every node sees. Inputs are symlinked
  (`stage: link`) or copied (`stage: copy`) into the work dir; outputs are copied back
  (temp file + rename, so a reader of the store never sees half a file).
- `shared_fs: false`: the store is reachable only through a Snakemake storage plugin
  (`storage_provider`, default `fs`). The wrapper uses the plugin's own API, the calls
  Snakemake's job-side storage code makes: registry -> StorageProvider ->
  StorageObject.managed_retrieve() / managed_store(). Snakemake rules cannot declare
  these files themselves: which step a slot runs is known only once the slot before
  it has been routed, outputs may be globs, and a failed stage-out must turn the step
  into a Fail on its status line.

Names: input `raw/{dataset}/a.dat` is fetched from `<store>/raw/<ds>/a.dat` to
`<work>/raw/<ds>/a.dat` (same relative name; a leading `/` dropped, as Snakemake names
its own local copies of storage files). Output `out/*.txt` made in the work dir goes to
`<store>/<workflow name>/<dataset>/out/<name>.txt`.
"""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.core.diagnostics import CompileError, Loc
from compiler.model.templates import parse_template

_GLOB_CHARS = set("*?[")


class StagingError(Exception):
    """One file could not be staged; `retry` says whether another attempt may help
    (a transfer error may; a missing input or a bad name will not)."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


def _log(message: str) -> None:
    # The wrapper's stderr is the job log (.padocc/logs/<build>/<dataset>/<slot>.log).
    print(f"padocc: {message}", file=sys.stderr, flush=True)


def _tmp_beside(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".padocc-tmp")
    os.close(fd)
    os.unlink(tmp)  # only the unique name is wanted: the copy or link creates it
    return tmp


def _replace_with_copy(src: Path, dst: Path) -> None:
    """Copy src (file or directory) to dst, replacing dst; a file appears whole."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(dst)
    try:
        if src.is_dir():
            shutil.copytree(src, tmp, symlinks=False)
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)  # a directory cannot be renamed over a full one
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        raise


class SharedFS:
    """The store is a directory this node sees."""

    def __init__(self, stage: str):
        self.stage = stage
        self.how = stage

    def fetch(self, query: str, local: Path) -> None:
        src = Path(query)
        if not src.exists():
            raise StagingError(f"input {query} is not in the store", retry=False)
        if self.stage == "link":
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_beside(local)
            os.symlink(src, tmp, target_is_directory=src.is_dir())
            try:
                os.replace(tmp, local)
            except OSError:
                os.unlink(tmp)
                raise
        else:
            _replace_with_copy(src, local)

    def push(self, local: Path, query: str) -> None:
        _replace_with_copy(local, Path(query))


class Plugin:
    """The store is reachable only through a Snakemake storage plugin."""

    def __init__(self, name: str, local_prefix: Path):
        self.how = f"storage plugin {name}"
        try:
            self.provider = storage_provider(name, local_prefix)
        except Exception as e:  # not installed, or a required setting missing: no retry
            raise StagingError(_one_line(e), retry=False) from e

    def _object(self, query: str, local: Path) -> Any:
        valid = self.provider.is_valid_query(query)
        if not valid:
            raise StagingError(str(valid), retry=False)
        obj = self.provider.object(query)
        obj.set_local_path(local)
        return obj

    def fetch(self, query: str, local: Path) -> None:
        obj = self._object(query, local)
        if not obj.exists():
            raise StagingError(f"input {query} is not in the store", retry=False)
        if local.is_symlink():
            local.unlink()  # left by an earlier `stage: link`: never write through it
        import asyncio  # only with a storage plugin: jobs without one skip its import

        asyncio.run(obj.managed_retrieve())

    def push(self, local: Path, query: str) -> None:
        import asyncio

        asyncio.run(self._object(query, local).managed_store())


def storage_provider(name: str, local_prefix: Path) -> Any:
    """An instance of the named plugin's StorageProvider, set up as Snakemake sets it up:
    its settings come from SNAKEMAKE_STORAGE_<NAME>_<SETTING> variables (the job has no
    Snakemake command line to take --storage-<name>-<setting> from)."""
    import logging  # with the plugin only: jobs without one skip these imports

    import configargparse
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    plugin = StoragePluginRegistry().get_plugin(name)
    settings = None
    if plugin.settings_cls is not None:
        parser = configargparse.ArgumentParser(add_help=False)
        plugin.register_cli_args(parser, "storage")
        settings = plugin.get_settings(parser.parse_args([]))
        if hasattr(settings, "get_settings"):  # tagged settings: the untagged ones
            settings = settings.get_settings(None)
        settings = settings or plugin.settings_cls()
        plugin.validate_settings(settings)
    return plugin.storage_provider(
        local_prefix=local_prefix,
        logger=logging.getLogger("padocc.staging"),
        settings=settings,
        keep_local=True,
        retrieve=True,
    )


def _inside(workdir: Path, rel: str, what: str) -> Path:
    norm = posixpath.normpath(rel.lstrip("/"))
    if norm in (".", "") or norm.startswith("../"):
        raise StagingError(f"{what} {rel!r} does not name a file inside the work dir", False)
    return workdir / norm


@dataclass
class Staged:
    """What stage_in did, and what finish() needs to stage the outputs out."""

    transport: SharedFS | Plugin | None = None
    dest: str = ""  # <store>/<workflow>/<dataset>: where outputs go
    workdir: Path = Path()
    inputs: int = -1  # staged in; -1 = the step declares none
    outputs: list[str] = field(default_factory=list)  # filled templates
    problem: str = ""
    retry: bool = False

    def skipped(self) -> tuple | None:
        """None to run the command; else the wrapper's (exit, wall, peak MB, named
        state, params, problem) for a step whose inputs could not be staged. A named
        Fail is not retried; None as named state lets a transfer error be retried."""
        if not self.problem:
            return None
        return -1, 0.0, 0.0, (None if self.retry else "Fail"), {}, self.problem

    def finish(self, state: str, params: dict) -> str:
        """Stage the outputs out unless the step failed; the state to record. Adds
        staged_in / staged_out to the STAT line's params, and problem= when the
        stage-out failed (the step is then a Fail: its outputs are not in the store)."""
        if self.inputs >= 0:
            params["staged_in"] = self.inputs
        if state == "Fail" or self.transport is None or not self.outputs:
            return state
        n = 0
        try:
            for rel in self.outputs:
                for local in self._matches(rel):
                    name = local.relative_to(self.workdir).as_posix()
                    query = posixpath.join(self.dest, name)
                    self.transport.push(local, query)
                    _log(f"staged out {name} -> {query} ({self.transport.how})")
                    n += 1
        except Exception as e:  # StagingError, OSError, or the plugin's WorkflowError
            params["problem"] = f"stage-out: {_one_line(e)}"
            _log(params["problem"])
            state = "Fail"
        params["staged_out"] = n
        return state

    def _matches(self, rel: str) -> list[Path]:
        if not _GLOB_CHARS & set(rel):
            local = _inside(self.workdir, rel, "output")
            if not local.exists():
                raise StagingError(f"declared output {rel} was not made", retry=False)
            return [local]
        _inside(self.workdir, rel, "output")
        found = sorted(glob.glob(rel, root_dir=self.workdir, recursive=True))
        return [self.workdir / f for f in found if not f.startswith("..")]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:900]


def _fill(texts: list[str], values: dict, source: str, what: str) -> list[str]:
    return [parse_template(t, Loc(source), values, what).fill(values) for t in texts]


def stage_in(m: dict, step: dict, values: dict, workdir: Path) -> Staged:
    """Fetch the step's declared inputs into its work dir; never raises for a bad or
    missing input: the returned Staged carries the problem, and skipped() says so."""
    site = m["workflow"].get("site") or {}
    store = site.get("store", "")
    inputs, outputs = step.get("inputs", []), step.get("outputs", [])
    if not store or not (inputs or outputs):
        return Staged()
    dataset = values["dataset"]
    staged = Staged(
        dest=posixpath.join(store, m["workflow"]["name"], dataset),
        workdir=workdir,
        inputs=0 if inputs else -1,
    )
    try:
        staged.outputs = _fill(outputs, values, step["source"], "outputs")
        if site.get("shared_fs", True):
            staged.transport = SharedFS(site.get("stage", "link"))
        else:
            # Where Snakemake keeps its own storage files; the objects here are given
            # explicit local paths in the work dir, so it stays empty.
            prefix = Path(m["workflow"]["dir"]) / ".snakemake" / "storage"
            staged.transport = Plugin(site.get("storage_provider", "fs"), prefix / "padocc")
        for rel in _fill(inputs, values, step["source"], "inputs"):
            local = _inside(workdir, rel, "input")
            query = posixpath.join(store, rel)
            staged.transport.fetch(query, local)
            staged.inputs += 1
            _log(f"staged in {local.relative_to(workdir)} <- {query} ({staged.transport.how})")
    except StagingError as e:
        staged.problem, staged.retry = f"stage-in: {e}", e.retry
    except CompileError as e:  # a facet this dataset lacks
        staged.problem = f"stage-in: {e.diagnostics[0].message}"
    except Exception as e:  # OSError, or the plugin's WorkflowError: may pass on retry
        staged.problem, staged.retry = f"stage-in: {_one_line(e)}", True
    if staged.problem:
        _log(staged.problem)
    return staged
