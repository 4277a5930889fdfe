"""pytest-benchmark runs of the filter cases (imkern.bench.filters.CASES) against OpenCV:
``python -m pytest benchmarks/bench_filters.py --benchmark-only``."""
import pytest

from imkern.bench.filters import CASES


@pytest.mark.parametrize("impl", ["imkern", "opencv"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=15)
