"""`python -m compiler.runtime.snakemake_main ARGS` (with PYTHONSAFEPATH=1, see
snakemake_run.py): Snakemake's own command line,
without the second or two a big Snakemake process spends after its work is done.

Once Snakemake's main has returned (jobs finished, its locks and metadata written),
Python would still wait out the job-rate limiter's re-evaluation timer (a non-daemon
thread, up to a second) and then tear down every module and object. Here the exit
hooks still run (log handlers flushed, Snakemake's temporary directories removed),
then the process exits at once with Snakemake's status.
"""

from __future__ import annotations

import atexit
import os
import sys


def main(argv: list[str]) -> int:
    from snakemake.cli import main as snakemake_main

    try:
        snakemake_main(argv)
        return 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    atexit._run_exitfuncs()  # logging.shutdown, weakref finalizers (temp dirs), pools
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
