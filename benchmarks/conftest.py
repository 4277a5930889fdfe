"""Shared pytest-benchmark plumbing for the bench_*.py files: each case of imkern.bench is one
benchmark group, the parameter is the implementation ("imkern" or a peer's name), and the
inputs of a case are prepared once and shared by imkern and its peers.

    python -m pytest benchmarks --benchmark-only --benchmark-group-by=group
"""
from __future__ import annotations

import pytest

_SETUPS = {}


def _fns(case):
    if case.name not in _SETUPS:
        _SETUPS[case.name] = case.setup()
    return _SETUPS[case.name]


def run_case(benchmark, case, impl, rounds=10):
    """Time one implementation of one case; record GB/s or GFLOP/s in extra_info."""
    if case.device == "cuda":
        import imkern

        if not imkern.info()["gpus"]:
            pytest.skip("needs a CUDA GPU and a CUDA build")
    fn, peers = _fns(case)
    if impl != "imkern":
        if impl not in peers:
            pytest.skip(f"{impl} is not installed")
        fn = peers[impl]
    benchmark.group = case.name
    fn()  # warm-up: thread pool, buffers, CUDA context
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    if case.bytes:
        benchmark.extra_info["GB/s"] = case.bytes / median / 1e9
    if case.flops:
        benchmark.extra_info["GFLOP/s"] = case.flops / median / 1e9


@pytest.fixture
def bench_case(benchmark):
    return lambda case, impl, rounds=10: run_case(benchmark, case, impl, rounds)
