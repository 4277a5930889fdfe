"""The ``python -m imkern bench`` runner: median wall times of imkern and each installed peer on
the same input in the same run, their ratio, and the fraction of the machine's copy bandwidth
(bandwidth cases) or GFLOP/s (compute cases)."""
from __future__ import annotations

import statistics
import time

import numpy as np


def _time(fn, min_time=0.4, min_reps=5, max_reps=200):
    fn()  # warm-up (allocations, thread pool, caches)
    ts = []
    start = time.perf_counter()
    while len(ts) < max_reps and (len(ts) < min_reps or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def copy_bandwidth(nbytes=256 << 20):
    """Bytes/s of a large in-memory copy (read + write counted), as the reference peak."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    t = _time(lambda: np.copyto(b, a), min_time=0.3)
    return 2 * a.nbytes / t


def _gpu_copy_bandwidth():
    import cupy

    a = cupy.ones(1 << 27, dtype=cupy.float32)
    b = cupy.empty_like(a)

    def f():
        cupy.copyto(b, a)
        cupy.cuda.get_current_stream().synchronize()

    return 2 * a.nbytes / _time(f, min_time=0.3)


def run(device="all", quick=False, name_filter=None, markdown=False) -> int:
    from . import info
    from .bench import all_cases

    i = info()
    print(f"imkern {i['version']}  cpu_isa={i['cpu_isa']}  threads={i['num_threads']}  "
          f"cuda_built={i['cuda_built']}  gpus={[g['name'] for g in i['gpus']]}")
    cases = [c for c in all_cases(device) if not name_filter or name_filter in c.name]
    if not i["gpus"]:
        cases = [c for c in cases if c.device == "cpu"]
    min_time = 0.05 if quick else 0.5
    bw = {"cpu": copy_bandwidth(64 << 20 if quick else 256 << 20)}
    if any(c.device == "cuda" for c in cases):
        bw["cuda"] = _gpu_copy_bandwidth()
    print(f"copy bandwidth: cpu {bw['cpu'] / 1e9:.1f} GB/s" +
          (f", cuda {bw['cuda'] / 1e9:.0f} GB/s" if "cuda" in bw else ""))
    rows = []
    for c in cases:
        try:
            fn, peers = c.setup()
        except Exception as e:  # a case whose setup fails is reported, not fatal
            rows.append((c.name, "setup failed: " + str(e)[:60], "", "", "", ""))
            continue
        t = _time(fn, min_time=min_time)
        rate = ""
        if c.bytes:
            rate = f"{c.bytes / t / 1e9:.1f} GB/s ({c.bytes / t / bw[c.device]:.0%} of copy)"
        elif c.flops:
            rate = f"{c.flops / t / 1e9:.1f} GFLOP/s"
        if not peers:
            rows.append((c.name, f"{t * 1e3:.3f}", "-", "(no peer installed)", "-", rate))
        for pname, pfn in peers.items():
            tp = _time(pfn, min_time=min_time)
            rows.append((c.name, f"{t * 1e3:.3f}", f"{tp * 1e3:.3f}", pname, f"{t / tp:.2f}", rate))
        del fn, peers
    head = ("case", "imkern ms", "peer ms", "peer", "ratio", "imkern rate")
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(r[k])) for r in rows + [head]) for k in range(len(head))]
        for r in [head] + rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    print("ratio = imkern time / peer time (lower is better; < 1 means imkern is faster)")
    return 0
