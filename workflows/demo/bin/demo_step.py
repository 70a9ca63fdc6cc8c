"""Synthetic stand-ins for real archive tools; each acts on the current directory
(the dataset's work directory) and decides deterministically from the facets.

- pr in hist has a bad time axis: CheckTime fails, FixTime repairs it (the loop);
  for ens r3 the repair fails (the dataset ends in Fail).
- so in ssp r2 has an axis FixTime cannot repair: it loops until the visit limit
  and the dataset is quarantined.
- tas has a metadata-only difference: CheckMeta ends in the custom Warning state.
"""

import os
import sys
import time
from pathlib import Path

DATA = Path("data.txt")


def log_run(step: str) -> None:
    with open("runs.log", "a") as f:
        f.write(step + "\n")


def main(argv: list[str]) -> int:
    step, dataset, *facets = argv
    log_run(step)
    hold = os.environ.get("DEMO_STEP_HOLD")  # tests: a publish waits while this file exists
    if hold and step == "publish":
        Path(hold + ".seen").touch()
        while Path(hold).exists():
            time.sleep(0.05)
    if step == "generate":
        variable, experiment, ens = facets
        bad = (variable == "pr" and experiment == "hist") or (variable == "so" and experiment == "ssp" and ens == "r2")
        DATA.write_text(f"dataset={dataset}\ntime={'bad' if bad else 'ok'}\nvalues=1,2,3\n")
        return 0
    if step == "checktime":
        return 0 if "time=ok" in DATA.read_text() else 1
    if step == "fixtime":
        variable, experiment, ens = facets
        if variable == "pr" and ens == "r3":
            print("time axis cannot be repaired", file=sys.stderr)
            return 1
        if variable == "so":
            return 0  # claims success but repairs nothing
        DATA.write_text(DATA.read_text().replace("time=bad", "time=ok"))
        return 0
    if step == "checkmeta":
        (variable,) = facets
        Path("data_report.txt").write_text(f"{dataset}: metadata checked\n")
        with open(os.environ["PADOCC_PARAMS_FILE"], "a") as f:
            f.write("report=data_report.txt\n")
        if variable == "tas":
            Path(os.environ["PADOCC_STATE_FILE"]).write_text("Warning")
        return 0
    if step == "regrid":
        Path("regridded.txt").write_text(DATA.read_text())
        return 0
    if step == "publish":
        Path("published").write_text(dataset + "\n")
        return 0
    print(f"unknown step {step}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
