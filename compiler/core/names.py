"""Names shared by the renderer and the Snakefile helpers (no imports: any stage may use it)."""


def rule_name(gate: str) -> str:
    """Gate names may hold '.'; rule and resource names may not."""
    return "gate_" + gate.replace(".", "_")


def slot_file(build: str, job: str, slot: int, first: str = "") -> str:
    """A job's slot output, relative to the workflow directory (the Snakefile's rule).
    Slot 1 of a job whose step is known at compile time (`first`) is made by that
    step's own rule, and named after it: `1.<Step>.json`."""
    if slot == 1 and first:
        return f".padocc/run/{build}/{job}/1.{first}.json"
    return f".padocc/run/{build}/{job}/{slot}.json"


def job_log(build: str, job: str, slot: int | str) -> str:
    """A job slot's log, relative to the workflow directory (the wrapper writes it)."""
    return f".padocc/logs/{build}/{job}/{slot}.log"


def chunk_log(gate: str, chunk: str, key: str = "") -> str:
    """A gate chunk's log, relative to the workflow directory (each run of the chunk
    writes it anew: it holds the last attempt)."""
    return f".padocc/logs/gates/{gate}/{key + '/' if key else ''}{chunk}.log"
