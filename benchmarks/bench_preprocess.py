"""pytest-benchmark runs of the preprocessing cases (imkern.bench.preprocess.CASES) against
OpenCV, NumPy, PyTorch and Pillow:
``python -m pytest benchmarks/bench_preprocess.py --benchmark-only``."""
import pytest

from imkern.bench.preprocess import CASES


@pytest.mark.parametrize("impl", ["imkern", "opencv", "numpy", "torch", "pillow"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=5 if "load_folder" in case.name else 15)
