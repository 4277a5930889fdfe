"""pytest-benchmark runs of the filter cases (imkern.bench.filters.CASES, CPU and CUDA) against
OpenCV, cupyx.scipy.ndimage and cv2.cuda; the CUDA cases skip without a GPU:
``python -m pytest benchmarks/bench_filters.py --benchmark-only``."""
import pytest

from imkern.bench.filters import CASES


@pytest.mark.parametrize("impl", ["imkern", "opencv", "cupyx.ndimage", "cv2.cuda"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.device}-{c.name}" for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=20 if case.device == "cuda" else 15)
