// Bindings of the geometric transforms (CPU: NumPy arrays; CUDA: raw pointers from CuPy).
// Tables (resize coefficients, warp maps and weights) are built by the Python layer; the
// checks here only guard the kernels' assumptions for callers that reach _core directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"
#if defined(IMKERN_WITH_CUDA)
#include "imkern/cuda_transform.hpp"
#endif

namespace py = pybind11;
using namespace imkern_py;
using imkern::Border;
using imkern::Interp;
using imkern::ResizeTable;

namespace {

Border border_of(int b) {
  if (b < 0 || b > 4) throw std::invalid_argument("border: unknown border code");
  return static_cast<Border>(b);
}

Interp interp_of(int i) {
  if (i < 0 || i > 2) throw std::invalid_argument("interpolation: unknown code");
  return static_cast<Interp>(i);
}

// The weight dtype a table must have for images of dtype dt.
bool weight_dtype_ok(DType dt, const py::array& w) {
  const py::dtype t = w.dtype();
  switch (dt) {
    case DType::u8: return t.kind() == 'i' && t.itemsize() == 4;
    case DType::f64: return t.kind() == 'f' && t.itemsize() == 8;
    default: return t.kind() == 'f' && t.itemsize() == 4;
  }
}

const int64_t* index_array(const py::array& a, int64_t n, int64_t lo, int64_t hi, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n || a.dtype().kind() != 'i' || a.itemsize() != 8 ||
      !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + ": expected a contiguous int64 array of length " +
                                std::to_string(n));
  const int64_t* p = static_cast<const int64_t*>(a.data());
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < lo || p[i] > hi) throw std::invalid_argument(std::string(name) + ": index out of range");
  return p;
}

ResizeTable table_of(DType dt, const py::array& start, const py::array& w, int64_t n_out, int64_t n_src, int bits,
                     const char* name) {
  if (w.ndim() != 2 || w.shape(0) != n_out || w.shape(1) < 1 || w.shape(1) > n_src ||
      !(w.flags() & py::array::c_style))
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

void check_pair(const py::array& src, const py::array& dst, DType& dt, ImageDesc& s, ImageDesc& d) {
  dt = dtype_of(src, "image");
  if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
  if (src.ndim() != dst.ndim()) throw std::invalid_argument("out: ndim differs from image");
  s = image_desc(src, "image");
  d = image_desc(dst, "out");
  if (s.n != d.n || s.c != d.c) throw std::invalid_argument("out: batch or channel count differs from image");
}

}  // namespace

IMKERN_BINDINGS(transform) {
  m.def("resize", [](const py::array& src, py::array& dst, const py::array& ys, const py::array& yw,
                     const py::array& xs, const py::array& xw, int ybits, int xbits, int shift) {
    DType dt;
    ImageDesc s, d;
    check_pair(src, dst, dt, s, d);
    ResizeTable ty = table_of(dt, ys, yw, d.h, s.h, ybits, "y table");
    ResizeTable tx = table_of(dt, xs, xw, d.w, s.w, xbits, "x table");
    if (shift < 0 || shift > ybits) throw std::invalid_argument("shift out of range");
    const void* sp = src.data();
    void* dp = writable_data(dst, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(resize, dt, sp, s, dp, d, ty, tx, shift);
  });
  m.def("resize_nearest", [](const py::array& src, py::array& dst, const py::array& iy, const py::array& ix) {
    DType dt;
    ImageDesc s, d;
    check_pair(src, dst, dt, s, d);
    const int64_t* py_ = index_array(iy, d.h, 0, s.h - 1, "y index");
    const int64_t* px = index_array(ix, d.w, 0, s.w - 1, "x index");
    const void* sp = src.data();
    void* dp = writable_data(dst, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(resize_nearest, dt, sp, s, dp, d, py_, px);
  });

#if defined(IMKERN_WITH_CUDA)
  m.def("cuda_resize", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                          uintptr_t ys, uintptr_t yw, int ky, uintptr_t xs, uintptr_t xw, int kx, int ybits,
                          int xbits, int shift, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    ResizeTable ty, tx;
    ty.n = d.h, ty.k = ky, ty.start = reinterpret_cast<const int64_t*>(ys), ty.w = reinterpret_cast<const void*>(yw),
    ty.bits = ybits;
    tx.n = d.w, tx.k = kx, tx.start = reinterpret_cast<const int64_t*>(xs), tx.w = reinterpret_cast<const void*>(xw),
    tx.bits = xbits;
    py::gil_scoped_release nogil;
    imkern::cuda::resize_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                              reinterpret_cast<void*>(dst), d, ty, tx, shift, reinterpret_cast<void*>(stream));
  });
  m.def("cuda_resize_nearest", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                                  uintptr_t iy, uintptr_t ix, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    py::gil_scoped_release nogil;
    imkern::cuda::resize_nearest_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                                      reinterpret_cast<void*>(dst), d, reinterpret_cast<const int64_t*>(iy),
                                      reinterpret_cast<const int64_t*>(ix), reinterpret_cast<void*>(stream));
  });
#endif
}
