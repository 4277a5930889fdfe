"""imkern's filters and resize on Dask arrays: images larger than memory, or than one machine.

Every function takes a ``dask.array.Array`` image (``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``,
chunked any way; NumPy chunks run on the C++ kernels, CuPy chunks on the CUDA kernels and stay
CuPy) and returns a lazy Dask array equal to the in-memory result of the imkern function of the
same name: bit for bit where the kernels compute exactly (median, morphology, integer sums, uint8
resize), within float32 rounding for float sums (a pixel near a chunk edge takes the kernels'
edge path, which sums in another order than the vector body computing it in memory; integer
outputs of float sums within 1):

* Neighbourhood filters run through ``map_overlap``: each chunk gets the neighbours' pixels it
  needs (the depth is the kernel's radius on the H and W axes), ``boundary="none"`` so nothing is
  invented at the true image edges, where the filter applies its own border mode as in memory
  (``border="wrap"`` uses Dask's ``"periodic"`` boundary instead). ``meta=`` is taken from the
  input, so CuPy-backed arrays stay CuPy (dask-image cannot: dask-image#413).
* Chunks smaller than the overlap depth make ``map_overlap`` fail (dask#6688): they are merged
  with a neighbour first (:func:`rechunk_for_depth`); the N and C axes are never touched.
* :func:`resize` works by output blocks: each output block reads the source rows and columns
  its coefficients touch and applies the same coefficient table as the in-memory resize (the
  rows of the whole-image table), for every interpolation.

Example:
    >>> import numpy as np, dask.array as da, imkern, imkern.dask as ikd
    >>> img = np.random.default_rng(0).random((300, 200), np.float32)
    >>> d = da.from_array(img, chunks=(64, 64))
    >>> bool(np.allclose(ikd.gaussian(d, 2.0).compute(), imkern.filters.gaussian(img, 2.0), rtol=1e-5, atol=1e-6))
    True
    >>> bool((ikd.median(d, 5).compute() == imkern.filters.median(img, 5)).all())
    True
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

try:
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised without dask
    raise ImportError("imkern.dask needs Dask (pip install 'dask[array]')") from e

from . import filters as _filters
from ._borders import parse_border
from ._kernels import gaussian_kernels
from .filters._linear import _gaussian_args, _kernel2d
from .filters._morphology import _as_footprint, _iterations
from .transform import _resize as _R

__all__ = ["gaussian", "correlate", "median", "erode", "dilate", "sobel", "resize", "rechunk_for_depth"]


def _check(x, name="image"):
    if not isinstance(x, da.Array):
        raise TypeError(f"{name}: expected a dask.array.Array, got {type(x).__module__}.{type(x).__name__}")
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name}: expected an image of shape (H, W), (H, W, C) or (N, H, W, C), got shape {tuple(x.shape)}"
        )
    return (1, 2) if x.ndim == 4 else (0, 1)


def _merge_small(chunks: Sequence[int], depth: int) -> Tuple[int, ...]:
    """Chunk sizes with every chunk >= depth (a small chunk joins its neighbour); one chunk stays."""
    out: List[int] = []
    for c in chunks:
        if out and out[-1] < depth:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < depth:
        out[-2] += out.pop()
    return tuple(out)


def rechunk_for_depth(x, depth: dict):
    """``x`` rechunked so that every chunk of each axis in ``depth`` is at least that axis's depth
    (dask#6688); ``x`` itself when nothing needs to change."""
    new = {}
    for ax, d in depth.items():
        ch = x.chunks[ax]
        if d > 0 and len(ch) > 1 and min(ch) < d:
            new[ax] = _merge_small(ch, d)
    return x.rechunk(new) if new else x


def _meta(x, dtype):
    return da.utils.meta_from_array(x, ndim=x.ndim, dtype=dtype)


def _out_dtype(x, fn):
    """The dtype ``fn`` gives for ``x``'s dtype, from a 1-pixel NumPy image (CUDA-only dtypes keep
    theirs)."""
    if np.dtype(x.dtype) == np.float16:  # CUDA only: the filters keep float16
        return np.dtype(x.dtype)
    # also validates the arguments now rather than at compute time
    return np.dtype(fn(np.zeros((1,) * x.ndim, dtype=x.dtype)).dtype)


def _overlap(x, fn, radius: Tuple[int, int], border, dtype=None):
    """``fn`` over overlapping blocks; ``radius`` (ry, rx) the pixels a result depends on."""
    hax, wax = _check(x)
    depth = {hax: int(radius[0]), wax: int(radius[1])}
    for ax in list(depth):
        if len(x.chunks[ax]) == 1:  # one chunk on this axis: nothing to exchange
            depth[ax] = 0
    x = rechunk_for_depth(x, depth)
    for ax in list(depth):  # an axis whose chunks all merged into one
        if len(x.chunks[ax]) == 1:
            depth[ax] = 0
    full = {ax: depth.get(ax, 0) for ax in range(x.ndim)}
    wrap = border is not None and parse_border(border) == "wrap"
    dtype = _out_dtype(x, fn) if dtype is None else np.dtype(dtype)
    return x.map_overlap(
        fn, depth=full, boundary="periodic" if wrap else "none", trim=True, dtype=dtype, meta=_meta(x, dtype)
    )


def gaussian(image, sigma, *, ksize=None, truncate=4.0, border="reflect101", cval=0.0):
    """:func:`imkern.filters.gaussian` of a Dask array (depth: the kernel radius)."""
    sig, ks, truncate = _gaussian_args(sigma, ksize, truncate)
    ky, kx = gaussian_kernels(sig, ks, truncate)
    border = parse_border(border)

    def fn(b):
        return _filters.gaussian(b, sigma, ksize=ksize, truncate=truncate, border=border, cval=cval)

    return _overlap(image, fn, (len(ky) // 2, len(kx) // 2), border)


def correlate(image, kernel, *, border="reflect101", cval=0.0):
    """:func:`imkern.filters.correlate` of a Dask array (depth: the kernel's extent either side of
    its anchor ``shape // 2``)."""
    k = _kernel2d(kernel)
    kh, kw = k.shape
    border = parse_border(border)

    def fn(b):
        return _filters.correlate(b, k, border=border, cval=cval)

    return _overlap(image, fn, (max(kh // 2, kh - 1 - kh // 2), max(kw // 2, kw - 1 - kw // 2)), border)


def median(image, size, *, border="replicate", cval=0.0):
    """:func:`imkern.filters.median` of a Dask array (depth ``size // 2``)."""
    border = parse_border(border)

    def fn(b):
        return _filters.median(b, size, border=border, cval=cval)

    return _overlap(image, fn, (size // 2, size // 2), border)


def _morph(name, image, footprint, iterations, border, cval):
    f = _as_footprint(footprint)
    n = _iterations(iterations)
    fh, fw = f.shape
    op = getattr(_filters, name)

    def fn(b):
        return op(b, f, iterations=n, border=border, cval=cval)

    r = (n * max(fh // 2, fh - 1 - fh // 2), n * max(fw // 2, fw - 1 - fw // 2))
    return _overlap(image, fn, r, border)


def erode(image, footprint=3, *, iterations=1, border=None, cval=0.0):
    """:func:`imkern.filters.erode` of a Dask array (depth: the footprint's radius times
    ``iterations``; ``border=None`` ignores the pixels outside the image, as in memory)."""
    return _morph("erode", image, footprint, iterations, border, cval)


def dilate(image, footprint=3, *, iterations=1, border=None, cval=0.0):
    """:func:`imkern.filters.dilate` of a Dask array (see :func:`erode`)."""
    return _morph("dilate", image, footprint, iterations, border, cval)


def sobel(image, dx=1, dy=0, *, ksize=3, scale=1.0, delta=0.0, border="reflect101", cval=0.0):
    """:func:`imkern.filters.sobel` of a Dask array (float32 result; float64 for float64 images)."""
    border = parse_border(border)

    def fn(b):
        return _filters.sobel(b, dx, dy, ksize=ksize, scale=scale, delta=delta, border=border, cval=cval)

    r = 1 if ksize in (-1, 1) else int(ksize) // 2
    return _overlap(image, fn, (r, r), border)


# ---- resize by output blocks --------------------------------------------------------------------
def _out_bounds(in_chunks, src: int, dst: int):
    """Output chunk sizes proportional to the input's chunks (at least 1 row each)."""
    edges = np.cumsum((0,) + tuple(in_chunks))
    b = sorted({int(round(e * dst / src)) for e in edges} | {0, dst})
    return tuple(int(v) for v in np.diff(b) if v > 0)


def _rows_needed(tab, i0, i1):
    """(first, last + 1) source index read by outputs [i0, i1) of an axis table."""
    start, w = tab[0], tab[1]
    return int(start[i0:i1].min()), int(start[i0:i1].max()) + w.shape[1]


def _sub_table(tab, i0, i1, s0):
    start, w, bits, abs_sum = tab
    return (np.ascontiguousarray(start[i0:i1] - s0), np.ascontiguousarray(w[i0:i1]), bits, abs_sum)


def _resize_pass(x, ytab, xtab, tkind, oh, ow, nearest=False):
    """One separable pass, block by output block, with the whole-image tables (``nearest``: the
    tables are (index, ...) of the nearest modes)."""
    hax, wax = _check(x)
    sh, sw = x.shape[hax], x.shape[wax]
    ych, xch = _out_bounds(x.chunks[hax], sh, oh), _out_bounds(x.chunks[wax], sw, ow)
    rows = []
    i0 = 0
    for bh in ych:
        blocks = []
        j0 = 0
        ys0, ys1 = _rows_needed(ytab, i0, i0 + bh)
        yt = _sub_table(ytab, i0, i0 + bh, ys0)
        for bw in xch:
            xs0, xs1 = _rows_needed(xtab, j0, j0 + bw)
            xt = _sub_table(xtab, j0, j0 + bw, xs0)
            sl = [slice(None)] * x.ndim
            sl[hax], sl[wax] = slice(ys0, ys1), slice(xs0, xs1)
            sub = x[tuple(sl)].rechunk({hax: -1, wax: -1})
            chunks = list(sub.chunks)
            chunks[hax], chunks[wax] = (bh,), (bw,)

            def fn(b, yt=yt, xt=xt, bh=bh, bw=bw):
                if nearest:
                    return _nearest_block(b, yt[0], xt[0], bh, bw)
                return _R._separable(b, None, _R._out_shape(b, bh, bw), yt, xt, tkind)

            blocks.append(sub.map_blocks(fn, chunks=tuple(chunks), dtype=x.dtype, meta=_meta(x, x.dtype)))
            j0 += bw
        rows.append(da.concatenate(blocks, axis=wax))
        i0 += bh
    return da.concatenate(rows, axis=hax)


def _nearest_table(idx):
    """A nearest-mode index table in the (start, weights) form of the sub-table helpers."""
    return idx.astype(np.int64), np.ones((idx.shape[0], 1)), 0, 1.0


def _nearest_block(b, iy, ix, bh, bw):
    from . import _arrays as A
    from . import _core
    from ._driver import run_image_op

    def cpu(src, dst):
        _core.resize_nearest(src, dst, iy, ix)

    def cuda(code, src, dst, stream):
        import cupy

        diy, dix = cupy.asarray(iy), cupy.asarray(ix)
        _core.cuda_resize_nearest(
            code, src.data.ptr, A.image_desc(src), dst.data.ptr, A.image_desc(dst), diy.data.ptr, dix.data.ptr, stream
        )

    return run_image_op(b, None, cpu, cuda, out_shape=_R._out_shape(b, bh, bw))


def resize(image, size, *, interpolation="bilinear", antialias=False):
    """:func:`imkern.transform.resize` of a Dask array, identical to the in-memory result.

    The output is chunked in proportion to the input's chunks; each output block is computed
    from the source rows and columns its weights touch (a chunk's neighbours' pixels join it as
    needed), with the rows of the whole image's coefficient tables.
    """
    hax, wax = _check(image)
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"size: expected (h, w), got {size!r}")
    h, w = int(size[0]), int(size[1])
    # validate every argument (and dtype) as the in-memory op does, on a 1-pixel-per-axis sample
    mode = _R.parse_interpolation(interpolation)
    sh, sw = int(image.shape[hax]), int(image.shape[wax])
    if h <= 0 or w <= 0:
        raise ValueError(f"size: expected positive (h, w), got {(h, w)}")
    _R.resize(np.zeros((1,) * image.ndim, image.dtype), (1, 1), interpolation=interpolation, antialias=antialias)
    if sh == 0 or sw == 0:
        raise ValueError(f"image: cannot resize an image of size {sh} x {sw}")
    tkind = _R._kind_of(image.dtype)
    if mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        yt = _nearest_table(_R._nearest_table(sh, h, exact))
        xt = _nearest_table(_R._nearest_table(sw, w, exact))
        return _resize_pass(image, yt, xt, tkind, h, w, nearest=True)
    ytab, xtab = _R.resize_tables(sh, sw, h, w, mode, bool(antialias), tkind)
    if tkind == "u8" and antialias and mode == "bicubic" and (sh != h or sw != w):
        # the in-memory op's two uint8 passes (rows first), each rounded and clamped
        tmp = _resize_pass(image, _R._identity_table(sh, tkind), xtab, tkind, sh, w)
        return _resize_pass(tmp, ytab, _R._identity_table(w, tkind), tkind, h, w)
    return _resize_pass(image, ytab, xtab, tkind, h, w)
