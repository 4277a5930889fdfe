// Bindings of transform.flip / rotate90 / pad's CPU kernels (csrc/cpu/transform/basic.cpp) and
// pad's CUDA kernel (csrc/cuda/transform/basic.cu):
// whole-pixel byte moves, any image dtype. The Python layer validates; these checks assert the
// kernels' assumptions (packed pixels, matching shapes and dtypes, a writable output).
#include "bind.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"

using namespace imkern_py;

namespace {
void same_dtype(const Arr& src, const Arr& dst) {
  if (src.kind() != dst.kind() || src.itemsize() != dst.itemsize()) throw py::type_error("out: dtype differs from image");
}
}  // namespace

IMKERN_BINDINGS(transform_basic) {
  def(m, "flip", [](const Arr& src, const Arr& dst, bool flip_x, bool flip_y) {
    same_dtype(src, dst);
    same_shape(src, dst, "image", "out");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    void* out = writable_data(dst, "out");
    IMKERN_CALL(flip, src.data(), s, out, d, src.itemsize(), flip_x, flip_y);
  });
  def(m, "rotate90", [](const Arr& src, const Arr& dst, int k) {
    if (k != 1 && k != 3) throw std::invalid_argument("k: expected 1 or 3");
    same_dtype(src, dst);
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    if (src.ndim() != dst.ndim() || d.n != s.n || d.c != s.c || d.h != s.w || d.w != s.h)
      throw std::invalid_argument("out: expected the image's shape with H and W swapped");
    void* out = writable_data(dst, "out");
    IMKERN_CALL(rotate90, src.data(), s, out, d, src.itemsize(), k);
  });
  def(m, "pad", [](const Arr& src, const Arr& dst, const Arr& rows, const Arr& cols, int64_t left, const Arr& cval) {
    same_dtype(src, dst);
    same_dtype(src, cval);
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    if (src.ndim() != dst.ndim() || d.n != s.n || d.c != s.c || left < 0 || left + s.w > d.w)
      throw std::invalid_argument("out: expected the image's shape padded");
    if (cval.size() != s.c || !cval.c_contiguous()) throw std::invalid_argument("cval: expected one pixel");
    const int64_t* ry = index_ptr(rows, "rows");
    const int64_t* cx = index_ptr(cols, "cols");
    if (rows.size() != d.h || cols.size() != d.w) throw std::invalid_argument("rows, cols: expected out's height and width");
    for (int64_t y = 0; y < d.h; ++y)
      if (ry[y] < -1 || ry[y] >= s.h) throw std::invalid_argument("rows: index out of range");
    for (int64_t x = 0; x < d.w; ++x)
      if (cx[x] < -1 || cx[x] >= s.w || (x >= left && x < left + s.w && cx[x] != x - left))
        throw std::invalid_argument("cols: index out of range");
    void* out = writable_data(dst, "out");
    IMKERN_CALL(pad, src.data(), s, out, d, src.itemsize(), ry, cx, left, cval.data());
  });
#if defined(IMKERN_WITH_CUDA)
  def_cuda(m, "cuda_pad", &imkern::cuda::pad_cuda);
#endif
}
