"""pytest-benchmark runs of the Dask case (imkern.bench.dask.CASES) against dask-image:
``IMKERN_BENCH_DASK_SIZE=20000 python -m pytest benchmarks/bench_dask.py --benchmark-only``."""
import pytest

pytest.importorskip("dask.array")

from imkern.bench.dask import CASES


@pytest.mark.parametrize("impl", ["imkern", "dask_image"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(bench_case, case, impl):
    bench_case(case, impl, rounds=3)
