"""Sphinx extension: draw the performance page's figure from benchmarks/RESULTS.md.

The newest table of the file (the first one under a ``## CPU`` heading) is parsed and drawn
with the bar chart that ``python -m imkern bench --png`` writes, into
``docs/_generated/bench_cpu.png``. The figure is thus always the table on the page.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(HERE), "benchmarks", "RESULTS.md")
OUT = os.path.join(HERE, "_generated", "bench_cpu.png")


def newest_table(text: str) -> List[Dict[str, Any]]:
    """The rows of the first results table after the first ``## CPU`` heading.

    Rows are ``| case | imkern ms | peer ms | peer | ratio | ... |``; each becomes a dict with
    the keys of ``imkern bench --json`` (``case``, ``imkern_ms``, ``peer_ms``, ``peer``,
    ``ratio``).
    """
    m = re.search(r"^## CPU.*$", text, re.M)
    if m is None:
        raise ValueError(f"{RESULTS}: no '## CPU' section")
    rows: List[Dict[str, Any]] = []
    for line in text[m.end():].splitlines():
        if rows and not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 5 or cells[0] == "case" or set(cells[0]) <= {"-"}:
            continue
        rows.append({"case": cells[0], "imkern_ms": float(cells[1]), "peer_ms": float(cells[2]),
                     "peer": cells[3], "ratio": float(cells[4])})
    if not rows:
        raise ValueError(f"{RESULTS}: the '## CPU' section has no results table")
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
