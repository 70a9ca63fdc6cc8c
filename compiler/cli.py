"""Argument parsing only: each subcommand is one module with one `run(options) -> int`."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Sequence

from compiler import __version__
from compiler.core.diagnostics import one_line


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str):  # type: ignore[override]
        print(one_line(f"{self.prog}: error: {message}"), file=sys.stderr)
        raise SystemExit(2)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds, at most a year."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not math.isfinite(v) or not 0 < v <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"must be seconds above 0 and at most a year, not {text!r}")
    return v


def _seed(text: str) -> int:
    """A cycle's seed: what a cycle logs (0 to 2**32 - 1)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}, not {text!r}")
    return v


REASON_MAX = 1000  # a --reason goes on a status line: kept to a line a person reads


def _reason(text: str) -> str:
    if len(text) > REASON_MAX:
        raise argparse.ArgumentTypeError(f"at most {REASON_MAX:,} characters, not {len(text):,}")
    return text


def _count(text: str) -> int:
    """A whole number from 0 to 10,000,000."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 0 <= v <= 10_000_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10,000,000, not {text!r}")
    return v


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="padocc", description="padocc-compile: archive workflows on Snakemake")
    p.add_argument("--version", action="version", version=f"padocc {__version__}")
    # The job wrappers (run-step, run-chunk) stay out of the listing: generated
    # Snakefiles call them, people do not.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile a workflow directory into a Snakefile")
    _compile_args(c)

    d = sub.add_parser("datasets", help="list the dataset ids a workflow's spec expands to")
    _wf_args(d)
    d.add_argument("--keys", action="store_true", help="also print each routing key")

    u = sub.add_parser("run", help="compile, then run Snakemake only if there is work (cron)")
    _wf_args(u)
    u.add_argument("--profile", default="local", help="Snakemake profile: local, slurm or a path")
    u.add_argument("--timeout", type=_seconds, help="seconds Snakemake may run")
    u.add_argument("--now", help="take this UTC time as now")
    u.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing unless the run fails or warns (for cron's MAILTO)")  # fmt: skip

    m = sub.add_parser("demo", help="copy the demo workflow and run it to the end locally")
    m.add_argument("--dir", default="demo-run", help="where to copy it (default: demo-run)")
    m.add_argument("--profile", default="local", help="Snakemake profile: local, slurm or a path")

    w = sub.add_parser("why", help="why is this dataset (or gate range) not done, and what moves it on")
    w.add_argument("where", nargs="+", metavar="[WF] DATASET | [WF] GATE LOW HIGH",
                   help="workflow directory (default: .) and a dataset id, or a gate and its "
                   "range LOW HIGH (LOW = HIGH: the chunk holding it)")  # fmt: skip
    _wf_args(w, positional=False)
    w.add_argument("--key", default="", help="the dataset of a keyed gate")
    w.add_argument("--now", help="take this UTC time as now (retry delays, a want up to now)")
    w.add_argument("--format", choices=["text", "json"], default="text")

    gr = sub.add_parser("graph", help="the transition graph as Graphviz DOT, or SVG through dot")
    _wf_args(gr)
    gr.add_argument("--format", choices=["dot", "svg"], default="dot")
    gr.add_argument("-o", "--output", default="", help="write here (default: standard output)")
    gr.add_argument("--counts", action="store_true", help="datasets at each step, by state")

    sub.add_parser("reference", help="print the reference of every input key (Markdown)")

    pr = sub.add_parser("profile", help="install a Snakemake profile where `snakemake --profile` finds it")
    pr.add_argument("action", choices=["install"])
    pr.add_argument("name", help="local or slurm")
    pr.add_argument("--account", default="", help="SLURM account (sbatch -A)")
    pr.add_argument("--partition", default="", help="SLURM partition (sbatch -p)")
    pr.add_argument("--dest", default="", help="profile directory (default: ~/.config/snakemake/NAME)")
    pr.add_argument("--force", action="store_true", help="replace an existing profile")

    x = sub.add_parser("cancel", help="cancel in-flight jobs of a workflow or of some datasets")
    _wf_args(x)
    x.add_argument("--dataset", action="append", default=[], help="only this dataset (repeatable)")

    y = sub.add_parser("cycle", help="one cron cycle: lock, scan the flock, compile, run, complete groups")
    y.add_argument("--conf", required=True, help="cycle config (SHEPARD's keys)")
    y.add_argument("--autolog", action="store_true", help="also write a timestamped log file in log_dir")
    y.add_argument("--dry-run", action="store_true", help="show what the next cycle would do; run nothing")
    y.add_argument("--seed", type=_seed, help="replay a cycle's random selection")
    y.add_argument("--now", help="take this UTC time as now")
    y.add_argument("--every", help="keep starting a cycle on this interval (e.g. 10m), as cron would; "
                   "SIGTERM stops it")  # fmt: skip
    y.add_argument("--cycles", type=int, help="with --every: stop after this many cycles")
    y.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing unless the cycle fails or warns (for cron's MAILTO)")  # fmt: skip

    for name, what in (("requeue", "put datasets back at Step:Ready"), ("block", "hold datasets out of cycles"),
                       ("unblock", "let blocked datasets run again")):
        q = sub.add_parser(name, help=what)
        q.add_argument("ids", nargs="*", metavar="[WF] ID",
                       help="workflow directory (default: .; an existing directory), then dataset ids; "
                       "'-' reads them from standard input")
        _wf_args(q, positional=False)
        q.add_argument("--group", action="append", default=[], help="every dataset of a flock group")
        q.add_argument("--reason", default="", type=_reason, help="recorded in the STAT line (at most 1,000 characters)")
        if name == "requeue":
            q.add_argument("--at", required=True, help="Step (or Step:Ready) to start again from")

    g = sub.add_parser(
        "gate",
        help="JSOC's ticket actions on a gate: range check wait make remake gaps coverage",
        epilog="exit status (JSOC's ticket STATUS): 0 open, 1 closed, 2 bad request, "
        "3 being processed, 4 timed out, 5 processing error",
    )
    g.add_argument("action", choices=("range", "check", "wait", "make", "remake", "gaps", "coverage"))
    g.add_argument("gate")
    g.add_argument("low", nargs="?")
    g.add_argument("high", nargs="?")
    _wf_args(g, positional=False)
    g.add_argument("--key", default="", help="dataset id, for a keyed gate")
    g.add_argument("--timeout", type=_seconds, default=3600, help="seconds 'wait' waits, and 'make'/'remake' wait for a live run of the workflow (default 3600)")
    g.add_argument("--now", help="take this UTC time as now")
    g.add_argument("--profile", default="local", help="Snakemake profile for make/remake")

    _ops_args(sub)
    _campaign_args(sub)
    _catalog_args(sub)

    _job_args(sub)
    return p


def _job_args(sub) -> None:
    """The job wrappers' own arguments (also parsed alone: see main)."""
    k = sub.add_parser("run-chunk")  # no help=: argparse then leaves it out of --help
    k.add_argument("build_dir")
    k.add_argument("gate")
    k.add_argument("low")
    k.add_argument("high")
    k.add_argument("--key", default="")
    k.add_argument("--attempt", type=int, default=1)
    e = sub.add_parser("end-round")
    e.add_argument("build_dir")
    e.add_argument("round", help="the round that ended, or 'end'")
    r = sub.add_parser("run-step")
    r.add_argument("build_dir")
    r.add_argument("job", help="a dataset id, or @<n>: several datasets (the build's jobs.tsv)")
    r.add_argument("slot", type=int)
    r.add_argument("--attempt", type=int, default=1)
    r.add_argument("--runtime", type=int, default=0, help="the job's time limit, minutes")


def _job_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="padocc")
    _job_args(p.add_subparsers(dest="command", required=True))
    return p


def _wf_args(p: argparse.ArgumentParser, positional: bool = True) -> None:
    """The workflow directory, named the same way in every command: `-C DIR` (default
    .), or as the first argument where a command has always taken it there."""
    if positional:
        p.add_argument("workflow_dir", nargs="?", default=None, metavar="WF",
                       help="workflow directory (default: .)")
    p.add_argument("-C", "--workflow-dir", dest="wf_option", default=None, metavar="WF",
                   help="workflow directory (default: .)")


def _settle_workflow_dir(args: argparse.Namespace) -> str:
    """args.workflow_dir from -C or the first argument, else "."; a problem, or ""."""
    if not hasattr(args, "wf_option"):
        return ""
    given, command = getattr(args, "workflow_dir", None), getattr(args, "command", "compile")
    if command == "why":
        # [WF] DATASET or [WF] GATE LOW HIGH: two or four words name the directory
        # first, and three when the first is a directory (a gate's range cut short).
        n = len(args.where)
        if n > 4:
            return "give [WF] DATASET, or [WF] GATE LOW HIGH"
        first_is_wf = n in (2, 4) or (n == 3 and os.path.isdir(args.where[0]))
        given = args.where[0] if first_is_wf else None
        args.where = args.where[1:] if first_is_wf else args.where
    elif command in ("requeue", "block", "unblock") and args.wf_option is None:
        # The first argument is the workflow directory when it is one (as it always
        # was); dataset ids are not directories.
        if args.ids and args.ids[0] != "-" and os.path.isdir(args.ids[0]):
            given, args.ids = args.ids[0], args.ids[1:]
    if given is not None and args.wf_option is not None:
        return f"the workflow directory is given twice ({given!r} and -C {args.wf_option!r}): give it once"
    args.workflow_dir = args.wf_option or given or "."
    return ""


def _compile_args(c: argparse.ArgumentParser) -> None:
    _wf_args(c)
    c.add_argument("--now", help="take this UTC time as now (replaying or testing a clock gate)")
    c.add_argument("--check", action="store_true", help="check the inputs and graph; write nothing")
    c.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    c.add_argument(
        "--profile",
        help="the Snakemake profile the build will run with: jobs are sized for it "
        "(default: one dataset a job unless datasets_per_job is set)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Jobs start thousands of times a cycle: they skip building every subcommand's parser.
    job = bool(argv) and argv[0] in ("run-step", "run-chunk", "end-round")
    args = (_job_parser() if job else _parser()).parse_args(argv)
    if not job:
        problem = _settle_workflow_dir(args)
        if problem:
            print(one_line(f"padocc {args.command}: error: {problem}"), file=sys.stderr)
            return 2
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # The reader went away (`padocc datasets WF | head -1`): end quietly, as a
        # tool killed by SIGPIPE would, and keep the interpreter's exit flush quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "compile":
        return _compile(args)
    if args.command == "datasets":
        from compiler.commands import datasets

        return datasets.run(datasets.DatasetsOptions(args.workflow_dir, args.keys))
    if args.command == "run":
        from compiler.commands import run as run_cmd

        return run_cmd.run(run_cmd.RunOptions(args.workflow_dir, args.profile, args.timeout, args.now, args.quiet))
    if args.command == "demo":
        from compiler.commands import demo

        return demo.run(demo.DemoOptions(args.dir, args.profile))
    if args.command == "why":
        from compiler.commands import why

        rest = args.where  # the directory taken off by _settle_workflow_dir
        low = rest[1] if len(rest) > 1 else None
        high = rest[2] if len(rest) > 2 else None
        return why.run(why.WhyOptions(args.workflow_dir, rest[0], args.format, low, high,
                                      args.key, args.now))  # fmt: skip
    if args.command == "graph":
        from compiler.commands import graph

        return graph.run(graph.GraphOptions(args.workflow_dir, args.format, args.output, args.counts))
    if args.command == "reference":
        from compiler.commands import reference

        return reference.run()
    if args.command == "profile":
        from compiler.commands import profile

        return profile.run(
            profile.ProfileOptions(args.action, args.name, args.account, args.partition, args.dest, args.force)
        )
    if args.command == "cancel":
        from compiler.commands import cancel

        return cancel.run(cancel.CancelOptions(args.workflow_dir, tuple(args.dataset)))
    if args.command in ("requeue", "block", "unblock"):
        from compiler.commands import manual

        return manual.run(
            manual.ManualOptions(args.command, args.workflow_dir, tuple(args.ids), getattr(args, "at", ""),
                                 tuple(args.group), args.reason)
        )
    if args.command == "cycle":
        from compiler.commands import cycle

        if args.every is not None or args.cycles is not None:
            from compiler.commands import every

            if args.every is None or args.dry_run or args.seed is not None or args.now:
                print("padocc cycle: error: --cycles needs --every, and --every takes no "
                      "--dry-run, --seed or --now", file=sys.stderr)  # fmt: skip
                return 2
            return every.run(every.EveryOptions(args.conf, args.every, args.cycles, args.autolog,
                                                args.quiet))  # fmt: skip
        return cycle.run(cycle.CycleOptions(args.conf, args.autolog, args.dry_run, args.seed, args.now, args.quiet))
    if args.command == "gate":
        from compiler.commands import gate

        if (args.low is None) != (args.high is None):
            print("padocc gate: error: give both LOW and HIGH, or neither", file=sys.stderr)
            return 2
        return gate.run(
            gate.GateOptions(
                args.action, args.gate, args.low, args.high, args.workflow_dir, args.key, args.timeout,
                now=args.now, profile=args.profile,
            )
        )
    if args.command == "run-chunk":
        from compiler.commands import run_chunk

        return run_chunk.run(
            run_chunk.RunChunkOptions(args.build_dir, args.gate, args.low, args.high, args.key, args.attempt)
        )
    if args.command in ("status", "report", "dashboard"):
        return _ops(args)
    if args.command in ("campaign", "clean"):
        return _campaign(args)
    if args.command == "catalog":
        from compiler.commands import catalog

        return catalog.run(catalog.CatalogOptions(args.action, args.workflow_dir, getattr(args, "path", ""),
                                                  getattr(args, "build", "") or "", getattr(args, "latest", False),
                                                  getattr(args, "format", "table")))
    if args.command == "run-step":
        from compiler.commands import run_step

        return run_step.run(
            run_step.RunStepOptions(args.build_dir, args.job, args.slot, args.attempt, args.runtime)
        )
    if args.command == "end-round":
        from compiler.commands import end_round

        return end_round.run(end_round.EndRoundOptions(args.build_dir, args.round))
    raise AssertionError(args.command)


def _compile(args: argparse.Namespace) -> int:
    from compiler.commands import compile as compile_cmd
    from compiler.load.profile import Executor, executor_of
    from compiler.runtime.snakemake_run import profile_dir

    ex = Executor()
    if args.profile:
        where = profile_dir(args.profile)
        if not where.is_dir():
            print(
                f"padocc compile: error: profile '{args.profile}' not found: use local, slurm "
                "or the path of a profile directory",
                file=sys.stderr,
            )
            return 2
        ex = executor_of(where)
    return compile_cmd.run(
        compile_cmd.CompileOptions(
            args.workflow_dir, args.check, args.quiet, args.now, executor=ex, answer_quietly=True
        )
    )


def compile_main(argv: Sequence[str] | None = None) -> int:
    """`padocc-compile`: the same as `padocc compile`."""
    c = _Parser(prog="padocc-compile", description="compile a workflow directory")
    _compile_args(c)
    args = c.parse_args(argv)
    problem = _settle_workflow_dir(args)
    if problem:
        print(one_line(f"padocc-compile: error: {problem}"), file=sys.stderr)
        return 2
    return _compile(args)



def _facet(text: str) -> tuple[str, str]:
    k, sep, glob = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"expected FACET=GLOB, got {text!r}")
    return k, glob


def _ops_args(sub) -> None:
    """status / report / dashboard: read the current build's manifest and the status files."""
    s = sub.add_parser("status", help="datasets per current Step:State, with filters")
    _wf_args(s)
    s.add_argument("--facet", action="append", type=_facet, default=[], metavar="FACET=GLOB",
                   help="only datasets whose facet matches (repeatable: the same facet any, different all)")
    for opt, what in (("--workflow", "(sub-)workflow"), ("--step", "step"), ("--state", "state")):
        s.add_argument(opt, action="append", default=[], metavar="GLOB",
                       help=f"only datasets whose current {what} matches (repeatable: any)"
                       + ("; Blocked finds blocked datasets" if opt == "--state" else ""))
    s.add_argument("--format", choices=("table", "json", "ids"), default="table")
    s.add_argument("-l", "--list", action="store_true", help="table: one row per dataset, not counts")
    s.add_argument("--no-index", action="store_true", help="read every status file; skip the index")
    for name, hlp in (("report", "per step: engagements, outcomes, time, retries, memory; failures, stuck"),
                      ("dashboard", "write the state of the workflow as one self-contained HTML page")):
        r = sub.add_parser(name, help=hlp)
        _wf_args(r)
        r.add_argument("--since", help="only engagements and failures since: ISO time or a duration (7d)")
        r.add_argument("--stuck-after", default="6h", help="Engaged longer than this is stuck (default 6h)")
        if name == "report":
            r.add_argument("--format", choices=("table", "json"), default="table")
        else:
            r.add_argument("-o", "--output", required=True, metavar="FILE.html")
            r.add_argument("--max-list", type=_count, default=1000,
                           help="ids listed per Step:State in the page (default 1000; counts stay exact)")


def _ops(args: argparse.Namespace) -> int:
    if args.command == "status":
        from compiler.commands import status
        from compiler.runtime.survey import Filters

        f = Filters(tuple(args.facet), tuple(args.workflow), tuple(args.step), tuple(args.state))
        return status.run(status.StatusOptions(args.workflow_dir, f, args.format, args.list, not args.no_index))
    if args.command == "report":
        from compiler.commands import report

        return report.run(report.ReportOptions(args.workflow_dir, args.since, args.stuck_after, args.format))
    from compiler.commands import dashboard

    return dashboard.run(dashboard.DashboardOptions(args.workflow_dir, args.output, args.since,
                                                    args.stuck_after, args.max_list))


def _catalog_args(sub) -> None:
    """catalog rebuild / what-made / produced / stale: the provenance catalog."""
    c = sub.add_parser("catalog", help="provenance catalog: rebuild, what-made, produced, stale")
    acts = c.add_subparsers(dest="action", required=True)
    r = acts.add_parser("rebuild", help="make the catalog again from the status files and the disk")
    _wf_args(r)
    w = acts.add_parser("what-made", help="the job that made a file, and whether the file changed since")
    w.add_argument("path")
    p = acts.add_parser("produced", help="what a run (build) produced")
    p.add_argument("build", nargs="?", help="build id (see .padocc/builds)")
    p.add_argument("--latest", action="store_true", help="the latest build that ran jobs")
    s = acts.add_parser("stale", help="outputs made by a step whose definition has changed since")
    for a in (w, p, s):
        _wf_args(a, positional=False)
    for a in (r, w, p, s):
        a.add_argument("--format", choices=("table", "json"), default="table")


def _campaign_args(sub) -> None:
    """campaign submit / clean: runs as a unit, and what is kept of them."""
    c = sub.add_parser("campaign", help="submit a campaign: workflows with parameters, run as one unit")
    c.add_argument("action", choices=("submit",))
    c.add_argument("campaign_file", metavar="CAMPAIGN.yaml")
    c.add_argument("--profile", help="Snakemake profile for every workflow (wins over the file)")
    c.add_argument("--now", help="take this UTC time as now (run directory name, clock gates)")
    k = sub.add_parser("clean", help="remove logs, old builds and run directories past their retention")
    k.add_argument("workflow_dirs", nargs="*", metavar="WF", help="workflow directories (default: .)")
    k.add_argument("--retain", help="keep what is younger than this (e.g. 30d); default: each workflow's retain")
    k.add_argument("--runs", action="append", default=[], metavar="DIR",
                   help="also campaign run directories under DIR (repeatable)")
    k.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    k.add_argument("--now", help="take this UTC time as now")


def _campaign(args: argparse.Namespace) -> int:
    if args.command == "campaign":
        from compiler.commands import campaign

        return campaign.run(campaign.CampaignOptions(args.action, args.campaign_file, args.profile, args.now))
    from compiler.commands import clean

    dirs = tuple(args.workflow_dirs) or (() if args.runs else (".",))
    return clean.run(clean.CleanOptions(dirs, args.retain, tuple(args.runs), args.dry_run, args.now))


if __name__ == "__main__":
    sys.exit(main())
