from ._resize import resize
from ._warp import rotate, warp_affine, warp_perspective
