"""Summaries of samples: medians, ratios and the best of several."""

import statistics


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fastest(*times: float | None) -> float | None:
    """The lowest of the measured times."""
    return min((t for t in times if t is not None), default=None)


def highest(*rates: float | None) -> float | None:
    """The highest of the measured rates."""
    return max((r for r in rates if r is not None), default=None)


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-quantile as one of the values (the one nearest rank q of the sorted values)."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
