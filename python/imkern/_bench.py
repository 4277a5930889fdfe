"""The ``python -m imkern bench`` runner: median wall times of imkern and each installed peer on
the same input in the same run (timed in turns), their ratio, and imkern's rate: for bandwidth
cases (which declare their bytes), as a share of the rate of a copy of the same bytes on the same
threads, timed in the same turns; for compute cases (which declare their FLOPs), as a share of the
machine's measured FMA peak. ``--isa avx2`` holds imkern and the peers to one instruction-set level
(ISA_ENV: the switches of PyTorch/oneDNN/MKL and OpenCV, set before they are imported)."""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Dict, List

import numpy as np


def _time_interleaved(fns, min_time=0.4, min_reps=5, max_reps=200, blocks=3):
    """The median wall time of each of ``fns``, timed in turns: ``blocks`` rounds, each giving
    every function (the first one rotating) a block of back-to-back calls of at least
    ``min_time / blocks`` seconds and ``min_reps / blocks`` calls (at most ``max_reps`` calls
    in all per function). A slow spell of the machine (a vCPU taken away by the host, another
    process) then falls on imkern and its peers alike instead of on whichever was being timed:
    timed one after the other, one run's demo-CNN epoch read 0.90x torch and the next run's
    0.52x. Blocks, not single calls in turns: a runtime's idle threads spin for a while after
    each call (OpenMP's, imkern's pool's 200 us), and with single calls in turns each call ran
    beside the other library's spinning threads on a 2-vCPU machine (gelu 2.2 -> 4.6 ms at
    AVX2 right after torch's call)."""
    for f in fns:
        f()  # warm-up (allocations, thread pool, caches)
    n = len(fns)
    ts: List[List[float]] = [[] for _ in range(n)]
    per_block_reps = -(-min_reps // blocks)
    per_block_time = min_time / blocks
    per_block_max = -(-max_reps // blocks)
    for b in range(blocks):
        for j in range(n):
            k = (b + j) % n
            start = time.perf_counter()
            c = 0
            while c < per_block_max and (c < per_block_reps or time.perf_counter() - start < per_block_time):
                t0 = time.perf_counter()
                fns[k]()
                ts[k].append(time.perf_counter() - t0)
                c += 1
    return [statistics.median(t) for t in ts]


def _time(fn, min_time=0.4, min_reps=5, max_reps=200):
    return _time_interleaved([fn], min_time, min_reps, max_reps)[0]


def _copy_fn(nbytes):
    """A copy of ``nbytes`` bytes (into a second buffer of that size) on the imkern threads: the
    bench's reference for memory-bound cases (``_core.copy_probe``: the C library's memcpy, whole
    pages per chunk). Both buffers are written once first, so their pages are mapped."""
    from . import _core

    src = np.ones(max(int(nbytes), 1), np.uint8)
    dst = np.zeros_like(src)
    return lambda: _core.copy_probe(dst, src)


def copy_bandwidth(nbytes=256 << 20):
    """Bytes/s of a large in-memory copy (read + write counted) on the imkern threads: the
    machine's copy rate, printed in the header (each memory-bound case is compared with a copy of
    its own bytes timed beside it, see ``run``)."""
    t = _time(_copy_fn(nbytes // 2), min_time=0.3)
    return 2 * (nbytes // 2) / t


def fma_peak(seconds=0.2, threads=None, rounds=4):
    """FLOP/s of register-only multiply-add chains on every thread at once (the imkern thread
    count), for the active ISA: the compute-bound cases' reference peak.

    The threads run `rounds` rounds of ``seconds / rounds`` each, together, and the best
    round's sum is the peak: on a virtual machine the host takes a vCPU away now and then, and
    a single round then reported 194 GFLOP/s on the machine whose GEMM ran at 207 (two threads,
    117 each alone)."""
    import threading

    from . import _core

    n = threads or _core.get_num_threads()
    rounds = max(1, int(rounds))
    out = [[0.0] * n for _ in range(rounds)]
    start = threading.Barrier(n)

    def work(i):
        for r in range(rounds):
            start.wait()
            out[r][i] = _core.fma_peak_probe(seconds / rounds)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return max(sum(r) for r in out)


def _peak_beside(out: List[float], seconds: float) -> None:
    """Appends one short FMA-peak reading (a single round) to ``out``: timed in the same turns as
    a compute-bound case, the readings' median is the peak of the minutes the case ran in."""
    out.append(fma_peak(seconds, rounds=1))


# What `bench --isa LEVEL` sets for imkern and the peers, before any of them is imported (the
# runner re-executes itself with these): each library's documented switch.
# (OpenCV warns about names its build does not dispatch on, e.g. AVX512_SKX in the PyPI wheels;
# harmless, and needed by builds that do.)
_AVX512_OPENCV = "AVX512F,AVX512BW,AVX512CD,AVX512DQ,AVX512VL,AVX512_COMMON,AVX512_SKX"
ISA_ENV = {
    "avx2": {
        "IMKERN_CPU_ISA": "avx2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "OPENCV_CPU_DISABLE": _AVX512_OPENCV,
    },
    "baseline": {
        "IMKERN_CPU_ISA": "baseline",
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "OPENCV_CPU_DISABLE": _AVX512_OPENCV + ",AVX,AVX2,FMA3,F16C",
    },
    "avx512": {},
}


def _peer_isas():
    """What the peers imported so far say about their instruction sets."""
    import sys

    out = []
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            out.append(f"torch={torch.backends.cpu.get_cpu_capability()}")
        except Exception:
            pass
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        try:
            # CV_CPU_AVX_512F = 13, CV_CPU_AVX2 = 11 (cvdef.h; some wheels export no CPU_* names)
            out.append(
                f"cv2 avx512f={bool(cv2.checkHardwareSupport(getattr(cv2, 'CPU_AVX_512F', 13)))} "
                f"avx2={bool(cv2.checkHardwareSupport(getattr(cv2, 'CPU_AVX2', 11)))}"
            )
        except Exception:
            pass
    return ", ".join(out)


def _gpu_copy_bandwidth():
    import cupy

    a = cupy.ones(1 << 27, dtype=cupy.float32)
    b = cupy.empty_like(a)

    def f():
        cupy.copyto(b, a)
        cupy.cuda.get_current_stream().synchronize()

    return 2 * a.nbytes / _time(f, min_time=0.3)


def _check_new(path, force):
    import os

    from ._cli import CLIError

    if path and os.path.exists(path) and not force:
        raise CLIError(f"{path} exists; pass --force to overwrite it")


def run(
    device="all",
    quick=False,
    name_filter=None,
    markdown=False,
    list_only=False,
    json_path=None,
    png_path=None,
    force=False,
) -> int:
    """Run the benchmark cases; returns the exit status. A filter that matches nothing, or
    ``device="cuda"`` without a usable GPU, is an error (message on stderr, status 1)."""
    import json
    import sys

    from . import info
    from .bench import all_cases

    i = info()
    every = all_cases(device)
    cases = [c for c in every if not name_filter or name_filter in c.name]
    if list_only:
        for c in cases:
            print(f"{c.device:5s} {c.name}")
        if not cases:
            print(f"imkern bench: no case name contains {name_filter!r}", file=sys.stderr)
            return 1
        return 0
    if not cases:
        print(
            f"imkern bench: no {'' if device == 'all' else device + ' '}case name contains {name_filter!r} "
            f"(python -m imkern bench --list shows the {len(every)} cases)",
            file=sys.stderr,
        )
        return 1
    if not i["gpus"]:
        if device == "cuda":
            why = (
                "this imkern was built without CUDA"
                if not i["cuda_built"]
                else "no CUDA GPU is visible (or CuPy is not installed)"
            )
            print(f"imkern bench: --device cuda: {why}; nothing to run", file=sys.stderr)
            return 1
        skipped = sum(c.device == "cuda" for c in cases)
        cases = [c for c in cases if c.device == "cpu"]
        if skipped:
            print(f"({skipped} CUDA cases skipped: no GPU)")
        if not cases:
            print("imkern bench: every matching case needs a GPU, and there is none", file=sys.stderr)
            return 1
    _check_new(json_path, force)
    _check_new(png_path, force)
    print(
        f"imkern {i['version']}  cpu_isa={i['cpu_isa']}  threads={i['num_threads']}  "
        f"cuda_built={i['cuda_built']}  gpus={[g['name'] for g in i['gpus']]}"
    )
    import os

    held = {
        k: os.environ[k]
        for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OPENCV_CPU_DISABLE")
        if os.environ.get(k)
    }
    if held:
        print("peers restricted by: " + " ".join(f"{k}={v}" for k, v in held.items()))
    cc, cp = i["cpu_caches"], i["cpu_params"]
    print(
        f"caches: L1d {cc['l1d']['bytes'] >> 10} KiB, L2 {cc['l2']['bytes'] >> 10} KiB, "
        f"L3 {cc['l3']['bytes'] >> 20} MiB (effective {cc['l3_effective'] >> 20} MiB); "
        f"gemm mc/kc/nc {cp['gemm_mc']}/{cp['gemm_kc']}/{cp['gemm_nc']}, "
        f"stream above {cp['stream_bytes'] >> 20} MiB; "
        f"output cache {i['output_cache']['max_bytes'] >> 20} MiB for outputs >= {i['output_cache']['min_bytes'] >> 20} MiB"
    )
    min_time = 0.05 if quick else 0.5
    bw = {"cpu": copy_bandwidth(64 << 20 if quick else 256 << 20)}
    peak_seconds = 0.05 if quick else 0.2
    # The FMA peak is read at the start and again just before each CPU compute-bound case, and
    # the run's best reading is the reference of every percentage: on a virtual machine the host
    # takes a vCPU away now and then, for long enough that all the rounds of one reading miss it
    # (a reading of 121 GFLOP/s on the two-vCPU machine whose best is 234 made a GEMM "158% of
    # the FMA peak"). One reading low by chance cannot then flatter a case.
    peak_readings = [fma_peak(peak_seconds)]
    if any(c.device == "cuda" for c in cases):
        bw["cuda"] = _gpu_copy_bandwidth()
    rows: List[tuple] = []
    results: List[Dict[str, Any]] = []
    rated: List[
        tuple
    ] = []  # (first row, end row, case, seconds, copy seconds, peak beside): the rate column, once the peak is final
    for c in cases:
        try:
            fn, peers = c.setup()
        except Exception as e:  # a case whose setup fails is reported, not fatal
            rows.append((c.name, "setup failed: " + str(e)[:60], "", "", "", ""))
            results.append({"case": c.name, "device": c.device, "error": str(e)})
            continue
        with_copy = bool(c.bytes) and c.device == "cpu"
        with_peak = bool(c.flops) and c.device == "cpu"
        if with_peak:
            peak_readings.append(fma_peak(peak_seconds))
        # imkern and its peers in turns (see _time_interleaved); a memory-bound CPU case also
        # times, in the same turns, a copy of its bytes (half read, half written) on the same
        # threads: its reference rate, taken the same minute, at the same size (the machine's
        # memory varies from minute to minute on a VM, and a size that fits a cache copies faster)
        fns = [fn, *peers.values()]
        if with_copy:
            fns.append(_copy_fn(c.bytes // 2))
        # and a compute-bound one short FMA-peak readings in the same turns: the peak of the same
        # minutes (the host takes a vCPU away for seconds at a time: on the Zen 3 VM one minute's
        # GEMM read 44% of the run's best peak and the next one's 82%, the same code), reported
        # beside the share of the run's best reading
        beside: List[float] = []
        if with_peak:
            fns.append(functools.partial(_peak_beside, beside, peak_seconds / 4))
        t, *tps = _time_interleaved(fns, min_time=min_time)
        if with_peak:
            tps.pop()
        t_copy = tps.pop() if with_copy else None
        rate = ""
        first = len(rows)
        if not peers:
            rows.append((c.name, f"{t * 1e3:.3f}", "-", "(no peer installed)", "-", rate))
            results.append({"case": c.name, "device": c.device, "imkern_ms": t * 1e3, "peer": None})
        for pname, tp in zip(peers, tps):
            rows.append((c.name, f"{t * 1e3:.3f}", f"{tp * 1e3:.3f}", pname, f"{t / tp:.2f}", rate))
            results.append(
                {
                    "case": c.name,
                    "device": c.device,
                    "imkern_ms": t * 1e3,
                    "peer": pname,
                    "peer_ms": tp * 1e3,
                    "ratio": t / tp,
                }
            )
        if t_copy is not None:
            for res in results[first:]:
                res["copy_ms"] = t_copy * 1e3
        peak_beside = statistics.median(beside) if beside else None
        if peak_beside is not None:
            for res in results[first:]:
                res["fma_peak_beside"] = peak_beside
        rated.append((first, len(rows), c, t, t_copy, peak_beside))
        del fn, peers
    peak = {"cpu": max(peak_readings)}
    for first, end, c, t, t_copy, peak_beside in rated:
        parts = []
        if c.flops:
            parts.append(f"{c.flops / t / 1e9:.1f} GFLOP/s")
            if c.device in peak:
                parts[-1] += f" ({c.flops / t / peak[c.device]:.0%} of FMA peak"
                if peak_beside:
                    parts[-1] += f", {c.flops / t / peak_beside:.0%} of the peak read beside it"
                parts[-1] += ")"
        if c.bytes:
            ref = t_copy / t if t_copy is not None else c.bytes / t / bw[c.device]
            parts.append(f"{c.bytes / t / 1e9:.1f} GB/s ({ref:.0%} of copy)")
        rate = "; ".join(parts)
        for j in range(first, end):  # the case's rows (one per peer) and results, appended in step
            rows[j] = rows[j][:5] + (rate,)
            if rate:
                results[j]["rate"] = rate
    print(
        f"copy bandwidth: cpu {bw['cpu'] / 1e9:.1f} GB/s"
        + (f", cuda {bw['cuda'] / 1e9:.0f} GB/s" if "cuda" in bw else "")
        + f"; FMA peak: cpu {peak['cpu'] / 1e9:.0f} GFLOP/s ({i['cpu_isa']} float32, {i['num_threads']} threads"
        + (
            f"; best of {len(peak_readings)} readings, lowest {min(peak_readings) / 1e9:.0f}"
            if len(peak_readings) > 1
            else ""
        )
        + ")"
    )
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
    peers = _peer_isas()
    if peers:
        print("peer instruction sets: " + peers)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(
                {
                    "imkern": i["version"],
                    "cpu_isa": i["cpu_isa"],
                    "threads": i["num_threads"],
                    "gpus": [g["name"] for g in i["gpus"]],
                    "copy_bandwidth": bw["cpu"],
                    "fma_peak": peak["cpu"],
                    "fma_peak_readings": peak_readings,
                    "peers_restricted_by": held,
                    "results": results,
                },
                f,
                indent=2,
            )
        print(f"wrote {json_path}")
    if png_path:
        _bar_chart(results, png_path)
        print(f"wrote {png_path}")
    return 0


def _bar_chart(results, path) -> None:
    """Horizontal bars of imkern time / peer time per case and peer (log scale, 1 marked)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from ._cli import CLIError

        raise CLIError("--png needs matplotlib (pip install 'imkern[demo]')") from None
    rs = [r for r in results if r.get("ratio")]
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(rs), 1) + 1.2))
    labels = [f"{r['case']} vs {r['peer']}" for r in rs]
    ratios = [r["ratio"] for r in rs]
    ax.barh(range(len(rs)), ratios, color=["tab:green" if v < 1 else "tab:red" for v in ratios])
    ax.set_yticks(range(len(rs)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="k", lw=0.8)
    if rs:
        ax.set_xscale("log")
    ax.set_xlabel("imkern time / peer time (< 1: imkern faster)")
    ax.set_title("imkern bench")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
