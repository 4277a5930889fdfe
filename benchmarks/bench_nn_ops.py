"""pytest-benchmark runs of the pooling / activation / softmax / batch-norm cases
(imkern.bench.nn_ops.CASES, CPU and CUDA) against PyTorch; the CUDA cases skip without a GPU:
``python -m pytest benchmarks/bench_nn_ops.py --benchmark-only``."""
import pytest

from imkern.bench.nn_ops import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.device}-{c.name}" for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=20 if case.device == "cuda" else 10)
