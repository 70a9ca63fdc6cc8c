"""Names shared by the renderer and the Snakefile helpers (no imports: any stage may use it)."""


def rule_name(gate: str) -> str:
    """Gate names may hold '.'; rule and resource names may not."""
    return "gate_" + gate.replace(".", "_")
