"""pytest-benchmark runs of the pooling / activation / softmax / batch-norm cases
(imkern.bench.nn_ops.CASES) against their peers: ``pytest benchmarks/bench_nn_ops.py
--benchmark-only``. One benchmark group per case; the parameter is the implementation
("imkern" or a peer's name)."""
from __future__ import annotations

import pytest

from imkern.bench.nn_ops import CASES

IMPLS = ["imkern", "torch"]
_SETUPS = {}


def _fns(case):
    # Each case's inputs are prepared once and shared by imkern and the peers.
    if case.name not in _SETUPS:
        _SETUPS[case.name] = case.setup()
    return _SETUPS[case.name]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bench(benchmark, case, impl):
    fn, peers = _fns(case)
    if impl != "imkern":
        if impl not in peers:
            pytest.skip(f"{impl} is not installed")
        fn = peers[impl]
    benchmark.group = case.name
    benchmark.extra_info["bytes"] = case.bytes
    fn()  # warm-up: thread pool, buffers
    benchmark.pedantic(fn, rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info["GB/s"] = case.bytes / benchmark.stats.stats.median / 1e9
