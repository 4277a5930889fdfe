"""Image filters: linear (correlate, convolve, sep_filter, box, gaussian), derivatives and edges
(sobel, scharr, prewitt, laplacian, gradient, canny, unsharp_mask), thresholds, rank and
morphology (median, erode, dilate, ...) and bilateral.

Every function takes an image of shape ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` (channels
filtered independently) as a NumPy array (C++ kernels) or a CuPy array (CUDA kernels, on the
current CuPy stream) and returns the same kind, shape and dtype. dtypes: uint8, uint16,
float32, float64 (and float16 on CUDA). Sums accumulate in float32 (float64 for float64
images); integer results are rounded to nearest and saturated, as OpenCV does.

Border modes (``border=``):

==============  ==================  ========================  ==================
imkern          pattern             OpenCV                    SciPy / NumPy
==============  ==================  ========================  ==================
"reflect101"    dcb|abcd|cba        BORDER_REFLECT_101        "mirror" / np "reflect"
"reflect"       cba|abcd|dcb        BORDER_REFLECT            "reflect" / np "symmetric"
"replicate"     aaa|abcd|ddd        BORDER_REPLICATE          "nearest" / np "edge"
"constant"      kkk|abcd|kkk        BORDER_CONSTANT           "constant" (``cval``)
"wrap"          bcd|abcd|abc        BORDER_WRAP               "grid-wrap" / torch "circular"
==============  ==================  ========================  ==================

Beware: bare ``"reflect"`` here is OpenCV's and SciPy's (the edge pixel is repeated), not
PyTorch's or NumPy's ``"reflect"`` (which is our ``"reflect101"``). The aliases "mirror",
"symmetric", "nearest", "circular" and "grid-wrap" are accepted.
"""

from ._linear import box, convolve, correlate, gaussian, sep_filter

__all__ = ["correlate", "convolve", "sep_filter", "box", "gaussian"]
from ._median import median

__all__ += ["median"]
from ._morphology import (  # noqa: E402
    blackhat,
    closing,
    dilate,
    erode,
    footprint,
    maximum_filter,
    minimum_filter,
    morph_gradient,
    opening,
    tophat,
)

__all__ += [
    "footprint",
    "erode",
    "dilate",
    "opening",
    "closing",
    "morph_gradient",
    "tophat",
    "blackhat",
    "minimum_filter",
    "maximum_filter",
]
from ._bilateral import bilateral  # noqa: E402

__all__ += ["bilateral"]

from ._derivatives import gradient, gradient_magnitude, laplacian, prewitt, scharr, sobel, unsharp_mask  # noqa: E402

__all__ += ["sobel", "scharr", "prewitt", "laplacian", "gradient", "gradient_magnitude", "unsharp_mask"]
from ._threshold import adaptive_threshold, threshold, threshold_otsu, threshold_triangle  # noqa: E402
from ._canny import canny  # noqa: E402

__all__ += ["threshold", "threshold_otsu", "threshold_triangle", "adaptive_threshold", "canny"]
