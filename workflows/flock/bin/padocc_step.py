"""Synthetic stand-ins for padocc's phases, acting in the dataset's work directory.
Deterministic from the id: '_meta' ids differ in metadata only (bypassable: a
Warning), '_bad' ids differ in data (a Fail), '_flaky' ids fail compute once,
'_broken' ids fail compute every time (and end quarantined)."""

import json
import os
import sys
import time
from pathlib import Path


def main(phase: str, dataset: str, *rest: str) -> int:
    time.sleep(float(os.environ.get("FLOCK_STEP_SLEEP", "0")))  # tests that kill a cycle midway
    # Tests that need a cycle caught mid-way: while the file FLOCK_STEP_HOLD names
    # exists, steps (of phase FLOCK_STEP_HOLD_PHASE only, when set) wait, and say so
    # by touching <file>.seen.
    hold = os.environ.get("FLOCK_STEP_HOLD", "")
    if os.environ.get("FLOCK_STEP_HOLD_PHASE", phase) != phase:
        hold = ""
    while hold and os.path.exists(hold):
        Path(hold + ".seen").touch()
        time.sleep(0.05)
    with open("runs.log", "a") as f:
        f.write(phase + "\n")
    if phase == "init":
        Path("init.json").write_text(json.dumps({"dataset": dataset, "pattern": rest[0] if rest else ""}))
        return 0
    if phase == "scan":
        Path("scan.json").write_text(json.dumps({"files": 3}))
        return 0
    if phase == "compute":
        if "_broken" in dataset:
            return 1
        if "_flaky" in dataset and not Path(".failed_once").exists():
            Path(".failed_once").write_text("")
            return 1
        Path("kerchunk.json").write_text("{}")
        return 0
    if phase == "validate":
        diffs = []
        if "_meta" in dataset:
            diffs.append("metadata.attrs")
        if "_bad" in dataset:
            diffs.append("data.values")
        Path("data_report.json").write_text(json.dumps({"dataset": dataset, "differences": diffs}))
        with open(os.environ["PADOCC_PARAMS_FILE"], "a") as f:
            f.write("report=data_report.json\n")
            if diffs:
                f.write("differences=" + ";".join(diffs) + "\n")
        return 1 if diffs else 0
    return 2


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
