"""pytest-benchmark runs of the transform cases (imkern.bench.transform.CASES) against OpenCV
and PyTorch: ``python -m pytest benchmarks/bench_transform.py --benchmark-only``."""
import pytest

from imkern.bench.transform import CASES


@pytest.mark.parametrize("impl", ["imkern", "opencv", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=10)
