"""pytest-benchmark runs of the training / inference cases (imkern.bench.train.CASES) against
PyTorch: ``python -m pytest benchmarks/bench_train.py --benchmark-only``."""
import pytest

from imkern.bench.train import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=3)
