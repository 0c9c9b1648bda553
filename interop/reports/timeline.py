"""Covered days of one drug as day ranges, for the staff page's chart (the same rules as the PDC numerator).

Each fill starts on its dispense day or the day after the previous fill's supply runs out, whichever is later
(PQA same-drug overlap shift); supply past the period end is cut.
"""

from __future__ import annotations

from collections.abc import Sequence


def covered_spans(fills: Sequence[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """Inclusive (first day, last day) ordinals covered by ``fills`` (day ordinal, days' supply) sorted by
    day, clipped to [first, last] and merged when adjacent."""
    spans: list[tuple[int, int]] = []
    following = -1
    for day, supply in fills:
        if day > last:
            break
        start = max(day, following)
        end = start + supply - 1
        following = end + 1
        lo, hi = max(start, first), min(end, last)
        if lo > hi:
            continue
        if spans and lo <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    return spans
