"""Where benchmarks leave their results: bench/results/<name>-<UTC date>.md."""

from __future__ import annotations

import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_report(name: str, report: str) -> Path:
    """Write ``report`` to the dated results file for ``name``, print it, return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y-%m-%d', time.gmtime())}.md"
    out.write_text(report)
    print(report)
    print(f"written to {out}")
    return out
