"""CPU time a process has used, user and system, all threads: a variant's cost per event that other work on
the machine does not stretch, as it stretches the wall clock behind events/s."""

from __future__ import annotations

import os

from trueup.stack.processes import stat_fields


def process_cpu_s(pid: int) -> float | None:
    """Seconds of CPU the process has used so far, from /proc; None once it is gone (or without /proc)."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_cpu_s(events: int, cpu_s: float | None) -> float | None:
    """Events per CPU-second, or None where the CPU time is unknown or too small to divide by."""
    if cpu_s is None or cpu_s <= 0:
        return None
    return events / cpu_s
