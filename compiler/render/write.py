"""Write a build atomically: a failed or killed compile leaves the previous output whole.

The build directory is written under a temporary name and renamed into place; then
the workflow's Snakefile and the `current` link are each replaced with one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

KEEP_BUILDS = 20


def _fsync_write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_build(workflow_dir: Path, build: str, files: dict[str, str]) -> Path:
    state = workflow_dir / ".padocc"
    builds = state / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=builds, prefix=".tmp-"))
    os.chmod(tmp, 0o755)
    try:
        for name, text in files.items():
            _fsync_write(tmp / name, text)
        final = builds / build
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The Snakefile a person reads and `snakemake` finds: a copy of this build's.
    fd, snake_tmp = tempfile.mkstemp(dir=workflow_dir, prefix=".Snakefile.")
    os.close(fd)
    os.chmod(snake_tmp, 0o644)
    _fsync_write(Path(snake_tmp), files["Snakefile"])
    os.replace(snake_tmp, workflow_dir / "Snakefile")
    link_tmp = state / f".current.{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(os.path.join("builds", build), link_tmp)
    os.replace(link_tmp, state / "current")
    _prune(builds, keep=build)
    return final


def _prune(builds: Path, keep: str) -> None:
    """Old builds go once there are more than KEEP_BUILDS; a run's slot files with them."""
    names = sorted(p.name for p in builds.iterdir() if not p.name.startswith("."))
    for name in names[:-KEEP_BUILDS]:
        if name == keep:
            continue
        shutil.rmtree(builds / name, ignore_errors=True)
        shutil.rmtree(builds.parent / "run" / name, ignore_errors=True)
    for p in builds.iterdir():  # debris of killed compiles
        if p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True)
