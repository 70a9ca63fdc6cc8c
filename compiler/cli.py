"""Argument parsing only: each subcommand is one module with one `run(options) -> int`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from compiler import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="padocc", description="padocc-compile: archive workflows on Snakemake")
    p.add_argument("--version", action="version", version=f"padocc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a workflow directory into a Snakefile")
    _compile_args(c)

    d = sub.add_parser("datasets", help="list the dataset ids a workflow's spec expands to")
    d.add_argument("workflow_dir", nargs="?", default=".")
    d.add_argument("--keys", action="store_true", help="also print each routing key")

    m = sub.add_parser("demo", help="copy the demo workflow and run it to the end locally")
    m.add_argument("--dir", default="demo-run", help="where to copy it (default: demo-run)")
    m.add_argument("--profile", default="local", help="Snakemake profile: local, slurm or a path")

    x = sub.add_parser("cancel", help="cancel in-flight jobs of a workflow or of some datasets")
    x.add_argument("workflow_dir", nargs="?", default=".")
    x.add_argument("--dataset", action="append", default=[], help="only this dataset (repeatable)")

    r = sub.add_parser("run-step", help="job wrapper (called by generated Snakefiles)")
    r.add_argument("build_dir")
    r.add_argument("dataset")
    r.add_argument("slot", type=int)
    r.add_argument("--attempt", type=int, default=1)
    return p


def _compile_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("workflow_dir", nargs="?", default=".", help="workflow directory (default: .)")
    c.add_argument("--check", action="store_true", help="check the inputs and graph; write nothing")
    c.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compile":
        return _compile(args)
    if args.command == "datasets":
        from compiler.commands import datasets

        return datasets.run(datasets.DatasetsOptions(args.workflow_dir, args.keys))
    if args.command == "demo":
        from compiler.commands import demo

        return demo.run(demo.DemoOptions(args.dir, args.profile))
    if args.command == "cancel":
        from compiler.commands import cancel

        return cancel.run(cancel.CancelOptions(args.workflow_dir, tuple(args.dataset)))
    if args.command == "run-step":
        from compiler.commands import run_step

        return run_step.run(run_step.RunStepOptions(args.build_dir, args.dataset, args.slot, args.attempt))
    raise AssertionError(args.command)


def _compile(args: argparse.Namespace) -> int:
    from compiler.commands import compile as compile_cmd

    return compile_cmd.run(compile_cmd.CompileOptions(args.workflow_dir, args.check, args.quiet))


def compile_main(argv: Sequence[str] | None = None) -> int:
    """`padocc-compile`: the same as `padocc compile`."""
    c = argparse.ArgumentParser(prog="padocc-compile", description="compile a workflow directory")
    _compile_args(c)
    return _compile(c.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
