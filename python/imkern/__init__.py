"""imkern: fast, verified image-processing and CNN kernels.

NumPy arrays run on the C++ kernels (SIMD, threads), CuPy arrays on the CUDA kernels, and
every op returns the kind of array it was given. Every kernel has a plain NumPy oracle of the
same name and signature in :mod:`imkern.reference`.
"""

from ._runtime import get_num_threads, info, set_num_threads, set_cpu_isa, get_cpu_isa
from ._runtime import max_num_threads
from ._runtime import get_allow_tf32, get_allow_winograd, set_allow_tf32, set_allow_winograd
from ._runtime import get_cpu_params, reset_cpu_params, set_cpu_params
from ._runtime import get_output_cache, set_output_cache
from . import filters, nn, reference
from . import color, io, transform
from ._random import manual_seed, initial_seed
from . import optim, data
from . import _interop
from ._core import __version__  # (not info(): that measures the caches, once, on first use)

# PyTorch tensors, JAX arrays, ... (DLPack) in and out of every public op (see _interop)
_interop.install(filters, color, transform, nn.functional)

__all__ = [
    "filters",
    "color",
    "transform",
    "io",
    "nn",
    "reference",
    "set_allow_tf32",
    "get_allow_tf32",
    "set_allow_winograd",
    "get_allow_winograd",
    "info",
    "get_num_threads",
    "set_num_threads",
    "max_num_threads",
    "get_cpu_isa",
    "set_cpu_isa",
    "get_cpu_params",
    "set_cpu_params",
    "reset_cpu_params",
    "get_output_cache",
    "set_output_cache",
    "__version__",
    "optim",
    "data",
    "manual_seed",
    "initial_seed",
]
