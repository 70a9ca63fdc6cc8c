"""The demo campaign's final step: a one-page summary of the run, from outcome.json.

Usage: summarize.py RUN_DIR   (writes RUN_DIR/summary.txt and prints it)
"""

import json
import sys
from collections import Counter
from pathlib import Path


def main(run_dir: str) -> int:
    run = Path(run_dir)
    outcome = json.loads((run / "outcome.json").read_text())
    lines = [
        f"campaign {outcome['campaign']}: {outcome['outcome']} "
        f"({outcome['started']} to {outcome['ended']})"
    ]
    for label, w in outcome["workflows"].items():
        results = Counter(d["result"] for d in w.get("datasets", {}).values())
        chunks = Counter(w.get("gate_chunks", {}).values())
        parts = [f"{n} {k}" for k, n in sorted(results.items())]
        parts += [f"{n} chunks {k}" for k, n in sorted(chunks.items())]
        lines.append(
            f"  {label} ({w['workflow']}): {w['outcome']}: {', '.join(parts) or 'nothing to do'}"
        )
    text = "\n".join(lines) + "\n"
    (run / "summary.txt").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
