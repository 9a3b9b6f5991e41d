"""Markdown pieces of the report: tables and the formats of times, rates, ratios and sizes."""


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    digits = 4 if v < 0.01 else 3 if v < 1 else 2 if v < 100 else 1
    return f"{v:.{digits}f} s"


def num(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def times(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def mb(kb: float | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f} MB"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
