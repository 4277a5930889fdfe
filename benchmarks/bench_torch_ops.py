"""pytest-benchmark runs of imkern.torch's operators inside torch.compile against the native torch
ops (imkern.bench.torch_ops.CASES): ``python -m pytest benchmarks/bench_torch_ops.py --benchmark-only``."""
import pytest

pytest.importorskip("torch")

from imkern.bench.torch_ops import CASES


@pytest.mark.parametrize("impl", ["imkern", "torch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=5)
