"""NumPy oracles for every imkern op: same names and signatures as the public API, plain and
readable, float64 inside. They define what the fast kernels must compute.

The tests compare every op with its oracle on fresh random inputs (and with the peer library
where one defines the semantics):

    >>> import numpy as np, imkern
    >>> from imkern import reference
    >>> img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    >>> fast = imkern.filters.gaussian(img, 1.5)
    >>> slow = reference.filters.gaussian(img, 1.5)
    >>> int(np.abs(fast.astype(int) - slow.astype(int)).max()) <= 1   # uint8: rounding of the float32 sum
    True
"""

from . import color, filters, nn, transform

__all__ = ["filters", "nn", "color", "transform"]


def _point_to_the_ops() -> None:
    """Give each oracle without a docstring of its own one that names the op it defines (the
    public function's docstring holds the semantics; the oracle's body is the definition)."""
    import inspect

    for fam, public in (
        ("filters", "imkern.filters"),
        ("color", "imkern.color"),
        ("transform", "imkern.transform"),
        ("nn", "imkern.nn.functional"),
    ):
        mod = globals()[fam]
        for name, fn in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__doc__:
                continue
            fn.__doc__ = (
                f"The float64 NumPy reference of :func:`{public}.{name}`: the same "
                "signature, plain NumPy inside, results cast like the kernel's."
            )


_point_to_the_ops()
