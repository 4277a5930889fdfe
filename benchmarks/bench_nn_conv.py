"""pytest-benchmark runs of the conv2d / linear cases (imkern.bench.nn_conv.CASES) against
PyTorch: ``python -m pytest benchmarks/bench_nn_conv.py --benchmark-only``."""
import pytest

from imkern.bench.nn_conv import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=5)
