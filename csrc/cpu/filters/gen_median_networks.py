"""Generate csrc/cpu/filters/median_networks.hpp: selection networks for the median of
k*k values (k = 3, 5, 7), used by the CPU and CUDA median kernels.

Each network is Batcher's odd-even merge sort on the next power of two, with the padding
wires (+inf, at the top) dropped, pruned backwards to the comparators the middle output
depends on. A comparator (i, j), i < j, puts min in wire i and max in wire j.
Checked here by the 0-1 principle for 9 and 25 inputs and by random inputs for 49.
Run: python csrc/cpu/filters/gen_median_networks.py > csrc/cpu/filters/median_networks.hpp
"""

import itertools

import numpy as np


def batcher(n):
    p2 = 1
    while p2 < n:
        p2 *= 2
    out = []
    p = 1
    while p < p2:
        k = p
        while k >= 1:
            for j in range(k % p, p2 - k, 2 * k):
                for i in range(min(k, p2 - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p):
                        out.append((a, b))
            k //= 2
        p *= 2
    return [(a, b) for a, b in out if b < n]


def prune(net, n, outs=None):
    """Comparators the middle output (or the outputs `outs`) depends on, each with which of its
    outputs is used: (a, b, kind), kind "CX" (both), "MIN" (only wire a), "MAX" (only wire b)."""
    need = {n // 2} if outs is None else set(outs)
    kept = []
    for a, b in reversed(net):
        if a in need or b in need:
            kind = "CX" if (a in need and b in need) else ("MIN" if a in need else "MAX")
            kept.append((a, b, kind))
            need.update((a, b))
    return kept[::-1]


def run(net, x):
    x = x.copy()
    for a, b, kind in net:
        lo = np.minimum(x[a], x[b])
        hi = np.maximum(x[a], x[b])
        if kind != "MAX":
            x[a] = lo
        if kind != "MIN":
            x[b] = hi
    return x


def check(net, n):
    m = n // 2
    if n <= 25:
        # 0-1 principle, bit-sliced: wire w = bitset over all 2^n inputs.
        idx = np.arange(1 << n, dtype=np.uint32)
        wires = [((idx >> w) & 1).astype(bool) for w in range(n)]
        for a, b, kind in net:
            lo, hi = wires[a] & wires[b], wires[a] | wires[b]
            if kind != "MAX":
                wires[a] = lo
            if kind != "MIN":
                wires[b] = hi
        ones = np.zeros(1 << n, dtype=np.uint8)
        for w in range(n):
            ones += ((idx >> w) & 1).astype(np.uint8)
        assert np.array_equal(wires[m], ones > m), n
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(n, 20000))
    assert np.array_equal(run(net, x)[m], np.sort(x, axis=0)[m]), n


SORT5 = [(0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2)]  # optimal 5-sorter


def presorted_5x5():
    """Median of 25 inputs whose 5 columns of 5 are already sorted, wires column-major (wire
    5 j + i = the i-th smallest of column j): Batcher's network on 25 wires without the
    comparators that never exchange on such inputs (by the 0-1 principle: none of the 6^5
    column-sorted 0-1 inputs makes them swap), pruned to the middle output. The kernels sort
    each column once (SORT5) and share it between the 5 windows that contain it."""
    n = 25
    ones = []
    for cnt in itertools.product(range(6), repeat=5):
        w = np.zeros(n, bool)
        for j, c in enumerate(cnt):
            w[5 * j + 5 - c : 5 * j + 5] = True
        ones.append(w)
    x = np.array(ones).T
    kept = []
    for a, b in batcher(n):
        if (x[a] & ~x[b]).any():
            kept.append((a, b))
            x[a], x[b] = x[a] & x[b], x[a] | x[b]
    net = prune(kept, n)
    # Checked on every column-sorted 0-1 input and on random column-sorted inputs.
    z = np.array(ones).T.astype(np.int64)
    assert np.array_equal(run(net, z)[12], np.sort(z, axis=0)[12])
    rng = np.random.default_rng(0)
    v = np.sort(rng.integers(0, 50, size=(5, 5, 20000)), axis=1).reshape(25, -1)  # (column, row) -> 5 j + i
    assert np.array_equal(run(net, v)[12], np.sort(v, axis=0)[12])
    s5 = rng.integers(0, 50, size=(5, 20000))
    assert np.array_equal(run([(a, b, "CX") for a, b in SORT5], s5), np.sort(s5, axis=0))
    return net


SORT4 = [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)]  # optimal 4-sorter


def presorted_batcher(n, patterns):
    """Batcher's network on n wires without the comparators that never exchange on the given
    0-1 inputs (rows of `patterns`: every 0-1 input of the presorted structure)."""
    x = np.array(patterns).T
    kept = []
    for a, b in batcher(n):
        if (x[a] & ~x[b]).any():
            kept.append((a, b))
            x[a], x[b] = x[a] & x[b], x[a] | x[b]
    return kept


def pair_5x5():
    """Two vertically adjacent 5x5 windows (output rows y, y + 1) share 4 source rows: a 5 x 4
    block (wire 4 j + i: the i-th smallest of column j of the 4 shared rows, columns sorted by
    SORT4). Of its 20 values only the sorted ranks 7 .. 12 can be either median (the 5 values
    of the other row move a rank by at most 5; the 7 below rank 7 are <= the median and the 7
    above rank 12 are >=, so the median of 25 is rank 5 of the remaining 11). SHARED: those 6
    ranks, sorted, into wires 7 .. 12 (Batcher on 20 wires without the comparators that never
    exchange on column-sorted inputs, pruned to wires 7 .. 12). EXTRA: rank 5 of 11 wires, 0 ..
    5 sorted (ranks 7 .. 12) and 6 .. 10 the other row's 5 values in any order. Checked on every
    0-1 input of each structure and on random inputs (against numpy.sort of the 25)."""
    pats = []
    for cnt in itertools.product(range(5), repeat=5):
        w = np.zeros(20, bool)
        for j, c in enumerate(cnt):
            w[4 * j + 4 - c : 4 * j + 4] = True
        pats.append(w)
    shared = prune(presorted_batcher(20, pats), 20, range(7, 13))
    z = np.array(pats).T.astype(np.int64)
    assert np.array_equal(run(shared, z)[7:13], np.sort(z, axis=0)[7:13])
    pats = []
    for c in range(7):
        for e in itertools.product([0, 1], repeat=5):
            w = np.zeros(11, bool)
            w[6 - c : 6] = True
            w[6:] = e
            pats.append(w)
    extra = prune(presorted_batcher(11, pats), 11, [5])
    z = np.array(pats).T.astype(np.int64)
    assert np.array_equal(run(extra, z)[5], np.sort(z, axis=0)[5])
    # end to end on random windows with many ties: rows 0 .. 3 shared, row 4 the extra one
    rng = np.random.default_rng(1)
    win = rng.integers(0, 6, size=(5, 5, 50000))  # (row, column, sample)
    sh = np.sort(win[:4], axis=0)  # columns of the 4 shared rows sorted
    wires = sh.transpose(1, 0, 2).reshape(20, -1)  # 4 j + i
    s6 = run(shared, wires)[7:13]
    got = run(extra, np.concatenate([s6, win[4]], axis=0))[5]
    assert np.array_equal(got, np.sort(win.reshape(25, -1), axis=0)[12])
    s4 = rng.integers(0, 50, size=(4, 20000))
    assert np.array_equal(run([(a, b, "CX") for a, b in SORT4], s4), np.sort(s4, axis=0))
    return shared, extra


def emit(name, args, net):
    print(f"#define {name}({args}) \\")
    for i in range(0, len(net), 8):
        part = " ".join(f"{kind}({a}, {b})" for a, b, kind in net[i : i + 8])
        print("  " + part + (" \\" if i + 8 < len(net) else ""))


def main():
    print("// GENERATED by csrc/cpu/filters/gen_median_networks.py; do not edit by hand.")
    print("// Median selection networks for k*k inputs (k = 3, 5, 7): Batcher's odd-even merge sort")
    print("// pruned to the comparators the middle output (wire k*k/2) depends on, as macros over three")
    print("// caller-defined operations on wires i < j: CX(i, j) (i <- min, j <- max), MIN(i, j) (only")
    print("// i <- min needed), MAX(i, j) (only j <- max needed). The median ends in wire k*k/2.")
    print("// Shared by the CPU (per ISA) and CUDA kernels.")
    print("#pragma once")
    print("")
    for k in (3, 5, 7):
        n = k * k
        net = prune(batcher(n), n)
        check(net, n)
        cx = sum(1 for c in net if c[2] == "CX")
        print(f"// {n} inputs: {len(net)} comparators ({cx} full, {len(net) - cx} half)")
        print(f"#define IMKERN_MEDIAN_NET_{k}(CX, MIN, MAX) \\")
        for i in range(0, len(net), 8):
            part = " ".join(f"{kind}({a}, {b})" for a, b, kind in net[i : i + 8])
            print("  " + part + (" \\" if i + 8 < len(net) else ""))
        print("")
    net = presorted_5x5()
    cx = sum(1 for c in net if c[2] == "CX")
    print(
        "// 25 inputs in 5 sorted columns (wire 5 j + i: the i-th smallest of column j): "
        f"{len(net)} comparators ({cx} full, {len(net) - cx} half),"
    )
    print("// after IMKERN_SORT_5 per column (9 comparators, shared by the 5 windows holding the column).")
    print("#define IMKERN_SORT_5(CX) \\")
    print("  " + " ".join(f"CX({a}, {b})" for a, b in SORT5))
    print("#define IMKERN_MEDIAN_NET_5_SORTED_COLUMNS(CX, MIN, MAX) \\")
    for i in range(0, len(net), 8):
        part = " ".join(f"{kind}({a}, {b})" for a, b, kind in net[i : i + 8])
        print("  " + part + (" \\" if i + 8 < len(net) else ""))
    print("")
    shared, extra = pair_5x5()
    print("// Two 5x5 windows one row apart (see pair_5x5 in the generator): columns of the 4 shared rows")
    print("// sorted by IMKERN_SORT_4; IMKERN_MEDIAN_PAIR5_SHARED (wire 4 j + i: i-th smallest of column")
    print(f"// j) leaves their ranks 7 .. 12 sorted in wires 7 .. 12 ({len(shared)} comparators); per window,")
    print("// IMKERN_MEDIAN_PAIR5_EXTRA on wires 0 .. 5 = those ranks and 6 .. 10 = its own row's 5 values")
    print(f"// leaves the median in wire 5 ({len(extra)} comparators).")
    print("#define IMKERN_SORT_4(CX) \\")
    print("  " + " ".join(f"CX({a}, {b})" for a, b in SORT4))
    emit("IMKERN_MEDIAN_PAIR5_SHARED", "CX, MIN, MAX", shared)
    emit("IMKERN_MEDIAN_PAIR5_EXTRA", "CX, MIN, MAX", extra)
    print("")


if __name__ == "__main__":
    main()
