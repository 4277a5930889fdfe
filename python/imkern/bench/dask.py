"""Dask benchmark: imkern.dask.gaussian against dask-image's gaussian_filter on the same chunked
image, computed with the threaded scheduler (both use every core this process may use).

The image side is ``IMKERN_BENCH_DASK_SIZE`` (default 8192; the issue's case is 20000, about
1.6 GB of float32 per copy, too slow and too big for a small CI machine), in chunks of 2048.
The input is built chunk by chunk from a seeded generator, so it is never held whole; the
timed call reduces the filtered image to one number (``.sum()``), so the output is never held
whole either and both implementations read, filter and reduce the same blocks.
"""

from __future__ import annotations

import os

import numpy as np

from . import Case, optional_import

SIZE = int(os.environ.get("IMKERN_BENCH_DASK_SIZE", "8192"))
CHUNK = 2048
SIGMA = 4.0


def _image(da):
    def block(block_info=None):
        loc = block_info[None]["array-location"]
        seed = loc[0][0] * 100003 + loc[1][0]
        shape = block_info[None]["chunk-shape"]
        return np.random.default_rng(seed).random(shape, dtype=np.float32)

    return da.map_blocks(
        block,
        chunks=((CHUNK,) * (SIZE // CHUNK) + ((SIZE % CHUNK,) if SIZE % CHUNK else ()),) * 2,
        dtype=np.float32,
        meta=np.empty((0, 0), np.float32),
    )


def _setup():
    import dask
    import dask.array as da

    import imkern.dask as ikd

    x = _image(da)
    fn = lambda: float(ikd.gaussian(x, SIGMA, border="reflect").sum().compute(scheduler="threads"))
    peers = {}
    ndf = optional_import("dask_image.ndfilters")
    if ndf is not None:
        # scipy's "reflect" is imkern's "reflect"; the same truncate (4.0), so the same radius
        peers["dask_image"] = lambda: float(
            ndf.gaussian_filter(x, SIGMA, mode="reflect").sum().compute(scheduler="threads")
        )
    del dask
    return fn, peers


CASES = [
    Case(
        f"dask_gaussian s{SIGMA:g} float32 {SIZE}x{SIZE}",
        "cpu",
        _setup,
        bytes=2 * 4 * SIZE * SIZE,
        note=f"chunks {CHUNK}x{CHUNK}; imkern.dask.gaussian vs dask_image.ndfilters.gaussian_filter",
    ),
]
