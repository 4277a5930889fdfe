"""pytest-benchmark runs of the filter cases (the same cases `python -m imkern bench` runs).

    python -m pytest benchmarks/bench_filters.py --benchmark-only --benchmark-group-by=group

Each case is one group: imkern and every installed peer, timed on the same input in the same
run; the table's ratio column compares them. Bandwidth figures land in extra_info.
"""
from __future__ import annotations

import pytest

from imkern.bench import all_cases

CASES = [c for c in all_cases("cpu") if c.name.split()[0] in ("gaussian", "correlate", "box", "sep_filter")]


def _impls(case):
    fn, peers = case.setup()
    return {"imkern": fn, **peers}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("impl", ["imkern", "opencv"])
def test_filter(benchmark, case, impl):
    impls = _impls(case)
    if impl not in impls:
        pytest.skip(f"{impl} is not installed")
    benchmark.group = case.name
    benchmark.extra_info["bytes"] = case.bytes
    benchmark.pedantic(impls[impl], rounds=15, warmup_rounds=2, iterations=1)
    if case.bytes:
        benchmark.extra_info["GB/s"] = case.bytes / benchmark.stats.stats.median / 1e9
