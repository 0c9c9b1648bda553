"""Benchmarks. Each ``bench_<area>.py`` prints its figure and its ratio against a baseline run in the same
process; ``python -m bench`` runs them all at their default sizes."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid`` so far (Linux ``/proc``; None elsewhere). A server's
    CPU per request moves far less with other load on a shared machine than its rate does."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
