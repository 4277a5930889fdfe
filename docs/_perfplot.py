"""Sphinx extension: draw the performance page's figure from benchmarks/RESULTS.md.

The newest table of the file in the format ``python -m imkern bench --markdown`` prints (the
first one, since the file lists sessions newest first, whose header is ``| case | imkern ms |
peer ms | peer | ratio | ...``) is parsed and drawn with the bar chart that
``python -m imkern bench --png`` writes, into ``docs/_generated/bench_cpu.png``. The figure is
thus always a table on the page.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(HERE), "benchmarks", "RESULTS.md")
OUT = os.path.join(HERE, "_generated", "bench_cpu.png")


HEADER = ["case", "imkern ms", "peer ms", "peer", "ratio"]


def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def newest_table(text: str) -> List[Dict[str, Any]]:
    """The rows of the first ``bench --markdown`` table in ``text``.

    Rows are ``| case | imkern ms | peer ms | peer | ratio | ... |``; each with numbers becomes
    a dict with the keys of ``imkern bench --json`` (``case``, ``imkern_ms``, ``peer_ms``,
    ``peer``, ``ratio``); rows without a peer ("-") are left out of the chart.
    """
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("|") and _cells(ln)[:5] == HEADER), None)
    if start is None:
        raise ValueError(f"{RESULTS}: no table in the format of `python -m imkern bench --markdown`")
    rows: List[Dict[str, Any]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        c = _cells(line)
        try:
            rows.append(
                {"case": c[0], "imkern_ms": float(c[1]), "peer_ms": float(c[2]), "peer": c[3], "ratio": float(c[4])}
            )
        except (IndexError, ValueError):
            continue  # no peer installed for this case
    if not rows:
        raise ValueError(f"{RESULTS}: the newest bench table has no rows with a peer")
    return rows


def draw(app: Any = None) -> str:
    """Write the bar chart of the newest table; returns its path."""
    from imkern._bench import _bar_chart

    with open(RESULTS, encoding="utf-8") as f:
        rows = newest_table(f.read())
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    _bar_chart(rows, OUT)
    return OUT


def setup(app: Any) -> Dict[str, Any]:
    app.connect("builder-inited", draw)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
