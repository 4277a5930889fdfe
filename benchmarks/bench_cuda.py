"""pytest-benchmark runs of the CUDA cases (imkern.bench.cuda_filters / cuda_nn) against
cupyx.scipy.ndimage and PyTorch (cuDNN, cuBLAS); skipped without a GPU:
``python -m pytest benchmarks/bench_cuda.py --benchmark-only``."""
import pytest

import imkern
from imkern.bench.cuda_filters import CASES as FILTER_CASES
from imkern.bench.cuda_nn import CASES as NN_CASES

CASES = FILTER_CASES + NN_CASES
pytestmark = pytest.mark.skipif(not imkern.info()["gpus"], reason="needs a CUDA GPU and a CUDA build")


@pytest.mark.parametrize("impl", ["imkern", "cupyx.ndimage", "torch cuDNN", "torch.matmul", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=20)
