"""pytest-benchmark runs of the conv2d / linear cases (imkern.bench.nn_conv.CASES, CPU and CUDA)
against PyTorch; the CUDA cases skip without a GPU:
``python -m pytest benchmarks/bench_nn_conv.py --benchmark-only``."""
import pytest

from imkern.bench.nn_conv import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch", "torch cuDNN", "torch.matmul"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.device}-{c.name}" for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=20 if case.device == "cuda" else 5)
