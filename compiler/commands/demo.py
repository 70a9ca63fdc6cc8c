"""`padocc demo [--dir DIR]`: copy the demo workflow, compile and run it to the end locally."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from compiler.commands import compile as compile_cmd
from compiler.core.statusfile import position_of, read_history
from compiler.core.words import plural
from compiler.render.assets import asset_dir
from compiler.runtime.snakemake_run import run_snakemake

MAX_CYCLES = 5
# Written into every demo copy: only a directory holding it may be replaced.
DEMO_MARK = ".padocc-demo"


@dataclass(frozen=True)
class DemoOptions:
    dir: str = "demo-run"
    profile: str = "local"


def demo_source() -> Path:
    here = Path("workflows/demo")
    return here if (here / "workflow.yaml").is_file() else asset_dir("demo")


def _refusal(dest: Path) -> str | None:
    """Why dest cannot take the demo copy, or None. Never delete what padocc did not make."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        return f"{dest}: error: exists and is not a directory; choose another --dir"
    if dest.is_dir() and any(dest.iterdir()) and not (dest / DEMO_MARK).is_file():
        return (
            f"{dest}: error: not empty and not an earlier demo copy (no {DEMO_MARK}); "
            "choose another --dir"
        )
    return None


def _clear(dest: Path) -> None:
    """Empty an earlier demo copy (the directory itself stays: it may be the cwd)."""
    for p in dest.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def run(opts: DemoOptions) -> int:
    dest = Path(opts.dir)
    why = _refusal(dest)
    if why:
        print(why, file=sys.stderr)
        return 2
    if dest.is_dir():
        _clear(dest)
    shutil.copytree(
        demo_source(),
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"),
        dirs_exist_ok=True,
    )
    (dest / DEMO_MARK).write_text("a copy made by `padocc demo`; `padocc demo` may replace it\n")
    print(f"demo workflow copied to {dest}/")
    for cycle in range(1, MAX_CYCLES + 1):
        rc = compile_cmd.run(compile_cmd.CompileOptions(str(dest)))
        if rc != 0:
            return rc
        pending = (dest / ".padocc" / "current" / "pending.tsv").read_text().count("\n")
        if pending == 0:
            break
        print(f"cycle {cycle}: running {plural(pending, 'dataset')} with Snakemake (profile {opts.profile})")
        rc = run_snakemake(str(dest), opts.profile, extra=["--quiet", "all"])
        if rc != 0:
            print(f"snakemake exited {rc}", file=sys.stderr)
            return rc
    states = Counter()
    for f in sorted((dest / "status").glob("*.status")):
        pos = position_of(read_history(f).stats)
        states[f"{pos.step}:{pos.state}"] += 1
    print("final states: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    print(f"status files:        {dest}/status/<dataset>.status")
    print(f"generated Snakefile: {dest}/Snakefile  (build: {dest}/.padocc/current/)")
    print(f"resolved model:      {dest}/.padocc/current/manifest.json")
    return 0
