"""What every benchmark measures the same way."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    Read from /proc (VmHWM), which starts afresh at exec: ``ru_maxrss``
    would also count the parent's peak, inherited through fork.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
