// Bindings of the transform family (csrc/include/imkern/transform.hpp): resize, warp, to_tensor,
// CPU and CUDA side by side through the helpers of bind.hpp (the GIL is released by def /
// def_cuda). Tables (resize coefficients, warp maps and weights) are built by the Python layer;
// the checks here only assert the kernels' assumptions.
#include <array>

#include <pybind11/stl.h>

#include "bind.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"

using namespace imkern_py;
using imkern::Border;
using imkern::Interp;
using imkern::ResizeTable;
using imkern::TensorDesc;
using imkern::WarpSpec;

namespace {

Interp interp_of(int i) {
  if (i < 0 || i > 2) throw std::invalid_argument("interpolation: unknown code");
  return static_cast<Interp>(i);
}

// The weight dtype a table must have for images of dtype dt.
bool weight_dtype_ok(DType dt, const Arr& w) {
  switch (dt) {
    case DType::u8: return w.kind() == 'i' && w.itemsize() == 4;
    case DType::f64: return w.kind() == 'f' && w.itemsize() == 8;
    default: return w.kind() == 'f' && w.itemsize() == 4;
  }
}

// A contiguous 1-D integer array (int64 or int32: `item` bytes) of n elements.
const void* int_array(const Arr& a, int64_t n, int item, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n || a.kind() != 'i' || a.itemsize() != item || !a.c_contiguous() || !a.native)
    throw std::invalid_argument(std::string(name) + ": expected a contiguous int" + std::to_string(8 * item) +
                                " array of length " + std::to_string(n));
  return a.data();
}

const int64_t* index_array(const Arr& a, int64_t n, int64_t lo, int64_t hi, const char* name) {
  const int64_t* p = static_cast<const int64_t*>(int_array(a, n, 8, name));
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < lo || p[i] > hi) throw std::invalid_argument(std::string(name) + ": index out of range");
  return p;
}

ResizeTable table_of(DType dt, const Arr& start, const Arr& w, int64_t n_out, int64_t n_src, int bits,
                     const char* name) {
  if (w.ndim() != 2 || w.shape(0) != n_out || w.shape(1) < 1 || w.shape(1) > n_src || !w.c_contiguous())
    throw std::invalid_argument(std::string(name) + ": weights must be a contiguous (n_out, k) array, 1 <= k <= n_src");
  if (!weight_dtype_ok(dt, w)) throw py::type_error(std::string(name) + ": weight dtype does not match the image");
  ResizeTable t;
  t.n = n_out;
  t.k = static_cast<int>(w.shape(1));
  t.start = index_array(start, n_out, 0, n_src - t.k, name);
  t.w = w.data();
  if (bits < 0 || bits > 16) throw std::invalid_argument(std::string(name) + ": bits out of range");
  t.bits = bits;
  return t;
}

struct Pair {
  DType dt;
  ImageDesc s, d;
};

Pair check_pair(const Arr& src, const Arr& dst) {
  Pair p;
  p.dt = dtype_of(src, "image");
  if (dtype_of(dst, "out") != p.dt) throw py::type_error("out: dtype differs from image");
  if (src.ndim() != dst.ndim()) throw std::invalid_argument("out: ndim differs from image");
  p.s = image_desc(src, "image");
  p.d = image_desc(dst, "out");
  if (p.s.n != p.d.n || p.s.c != p.d.c) throw std::invalid_argument("out: batch or channel count differs from image");
  return p;
}

// The sub-pixel weight table: 32 * 32 entries of K * K weights of the image's weight type.
const void* weight_table(DType dt, Interp ip, const Arr& w) {
  const int k = ip == Interp::bicubic ? 4 : 2;
  if (ip == Interp::nearest) return w.data();
  if (!weight_dtype_ok(dt, w)) throw py::type_error("wtab: weight dtype does not match the image");
  if (w.size() != int64_t(imkern::kInterTab) * imkern::kInterTab * k * k || !w.c_contiguous())
    throw std::invalid_argument("wtab: expected a contiguous table of 32 * 32 * K * K weights");
  return w.data();
}

WarpSpec spec_of(int interp, bool perspective, bool fixed, int shift, const std::array<double, 9>& mat, int border,
                 double cval) {
  WarpSpec w;
  w.interp = interp_of(interp);
  w.perspective = perspective;
  w.fixed = fixed;
  if (fixed && !perspective && shift != 5 && shift != 10) throw std::invalid_argument("shift must be 5 or 10");
  w.map.shift = shift;
  for (int i = 0; i < 9; ++i) w.m[i] = mat[i];
  w.border = border_of(border);
  w.cval = cval;
  return w;
}

// (C, h, w) or (N, C, h, w), x contiguous.
TensorDesc tensor_desc(const Arr& a) {
  const int nd = a.ndim();
  if (nd != 3 && nd != 4) throw std::invalid_argument("out: expected (C, H, W) or (N, C, H, W)");
  TensorDesc d;
  const int o = nd == 4 ? 1 : 0;
  d.n = nd == 4 ? a.shape(0) : 1;
  d.c = a.shape(o);
  d.h = a.shape(o + 1);
  d.w = a.shape(o + 2);
  if (d.w > 1 && elem_stride(a, o + 2, "out") != 1) throw std::invalid_argument("out: rows must be contiguous");
  d.row_stride = elem_stride(a, o + 1, "out");
  d.plane_stride = elem_stride(a, o, "out");
  d.batch_stride = nd == 4 ? elem_stride(a, 0, "out") : 0;
  return d;
}

void check_crop(const ImageDesc& s, const TensorDesc& d, int64_t y0, int64_t x0) {
  if (s.n != d.n || s.c != d.c) throw std::invalid_argument("out: batch or channel count differs from image");
  if (y0 < 0 || x0 < 0 || y0 + d.h > s.h || x0 + d.w > s.w) throw std::invalid_argument("crop: outside the image");
}

}  // namespace

IMKERN_BINDINGS(transform) {
  def(m, "resize", [](const Arr& src, const Arr& dst, const Arr& ys, const Arr& yw, const Arr& xs, const Arr& xw,
                      int ybits, int xbits, int shift) {
    const Pair p = check_pair(src, dst);
    const ResizeTable ty = table_of(p.dt, ys, yw, p.d.h, p.s.h, ybits, "y table");
    const ResizeTable tx = table_of(p.dt, xs, xw, p.d.w, p.s.w, xbits, "x table");
    if (shift < 0 || shift > ybits) throw std::invalid_argument("shift out of range");
    IMKERN_CALL(resize, p.dt, src.data(), p.s, writable_data(dst, "out"), p.d, ty, tx, shift);
  });
  def(m, "resize_nearest", [](const Arr& src, const Arr& dst, const Arr& iy, const Arr& ix) {
    const Pair p = check_pair(src, dst);
    IMKERN_CALL(resize_nearest, p.dt, src.data(), p.s, writable_data(dst, "out"), p.d,
                index_array(iy, p.d.h, 0, p.s.h - 1, "y index"), index_array(ix, p.d.w, 0, p.s.w - 1, "x index"));
  });
  def(m, "warp", [](const Arr& src, const Arr& dst, int interp, bool perspective, bool fixed, const Arr& col_x,
                    const Arr& col_y, const Arr& row_x, const Arr& row_y, int shift, const std::array<double, 9>& mat,
                    const Arr& wtab, int border, double cval) {
    const Pair p = check_pair(src, dst);
    WarpSpec w = spec_of(interp, perspective, fixed, shift, mat, border, cval);
    if (fixed && !perspective) {
      w.map.col_x = static_cast<const int32_t*>(int_array(col_x, p.d.w, 4, "col_x"));
      w.map.col_y = static_cast<const int32_t*>(int_array(col_y, p.d.w, 4, "col_y"));
      w.map.row_x = static_cast<const int32_t*>(int_array(row_x, p.d.h, 4, "row_x"));
      w.map.row_y = static_cast<const int32_t*>(int_array(row_y, p.d.h, 4, "row_y"));
    }
    if (fixed) w.wtab = weight_table(p.dt, w.interp, wtab);
    IMKERN_CALL(warp, p.dt, src.data(), p.s, writable_data(dst, "out"), p.d, w);
  });
  def(m, "to_tensor", [](const Arr& src, const Arr& dst, int64_t y0, int64_t x0, bool flip, const Taps& scale,
                         const Taps& shift) {
    const DType it = dtype_of(src, "image");
    const DType ot = float_dtype(dst, "out");
    const ImageDesc s = image_desc(src, "image");
    const TensorDesc d = tensor_desc(dst);
    check_crop(s, d, y0, x0);
    if (scale.size() != d.c || shift.size() != d.c) throw std::invalid_argument("mean/std: one value per channel");
    IMKERN_CALL(to_tensor, it, ot, src.data(), s, y0, x0, flip, writable_data(dst, "out"), d, scale.data(),
                shift.data());
  });

#if defined(IMKERN_WITH_CUDA)
  namespace kc = imkern::cuda;
  def_cuda(m, "cuda_resize_nearest", &kc::resize_nearest_cuda);
  def_cuda(m, "cuda_to_tensor", &kc::to_tensor_cuda);
  // The tables arrive as device pointers; the launchers take them in ResizeTable / WarpSpec.
  def(m, "cuda_resize", [](int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d,
                           uintptr_t ys, uintptr_t yw, int ky, uintptr_t xs, uintptr_t xw, int kx, int ybits,
                           int xbits, int shift, uintptr_t stream) {
    ResizeTable ty, tx;
    ty.n = d.h, ty.k = ky, ty.start = CudaArg<const int64_t*>::get(ys), ty.w = CudaArg<const void*>::get(yw);
    ty.bits = ybits;
    tx.n = d.w, tx.k = kx, tx.start = CudaArg<const int64_t*>::get(xs), tx.w = CudaArg<const void*>::get(xw);
    tx.bits = xbits;
    kc::resize_cuda(static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst), d, ty, tx,
                    shift, CudaArg<void*>::get(stream));
  });
  def(m, "cuda_warp", [](int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d, int interp,
                         bool perspective, bool fixed, uintptr_t col_x, uintptr_t col_y, uintptr_t row_x,
                         uintptr_t row_y, int shift, const std::array<double, 9>& mat, uintptr_t wtab, int border,
                         double cval, uintptr_t stream) {
    WarpSpec w = spec_of(interp, perspective, fixed, shift, mat, border, cval);
    w.map.col_x = CudaArg<const int32_t*>::get(col_x);
    w.map.col_y = CudaArg<const int32_t*>::get(col_y);
    w.map.row_x = CudaArg<const int32_t*>::get(row_x);
    w.map.row_y = CudaArg<const int32_t*>::get(row_y);
    w.wtab = CudaArg<const void*>::get(wtab);
    kc::warp_cuda(static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst), d, w,
                  CudaArg<void*>::get(stream));
  });
#endif
}
