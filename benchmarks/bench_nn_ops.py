"""pytest-benchmark runs of the pooling / activation / softmax / batch-norm cases
(imkern.bench.nn_ops.CASES) against PyTorch: ``python -m pytest benchmarks/bench_nn_ops.py
--benchmark-only``."""
import pytest

from imkern.bench.nn_ops import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=10)
