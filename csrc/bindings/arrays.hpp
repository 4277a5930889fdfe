// NumPy array plumbing for the CPU bindings. The Python layer validates user input and
// normalizes layouts; these checks guard the C++ kernels' assumptions (they throw
// ValueError/TypeError, never crash) for callers that reach _core directly.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "imkern/common.hpp"

namespace imkern_py {
namespace py = pybind11;
using imkern::DType;
using imkern::ImageDesc;

inline DType dtype_of(const py::array& a, const char* name) {
  const py::dtype dt = a.dtype();
  if (dt.is(py::dtype::of<uint8_t>())) return DType::u8;
  if (dt.is(py::dtype::of<uint16_t>())) return DType::u16;
  if (dt.is(py::dtype::of<float>())) return DType::f32;
  if (dt.is(py::dtype::of<double>())) return DType::f64;
  // dtype.is() compares identity; fall back to an equality test for equal dtypes.
  const char k = dt.kind();
  const auto sz = dt.itemsize();
  if (k == 'u' && sz == 1) return DType::u8;
  if (k == 'u' && sz == 2) return DType::u16;
  if (k == 'f' && sz == 4) return DType::f32;
  if (k == 'f' && sz == 8) return DType::f64;
  throw py::type_error(std::string(name) + ": expected uint8, uint16, float32 or float64, got " +
                       std::string(py::str(dt)));
}

// float32 / float64 only (the nn kernels on the CPU).
inline DType float_dtype(const py::array& a, const char* name) {
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'f' && dt.itemsize() == 4) return DType::f32;
  if (dt.kind() == 'f' && dt.itemsize() == 8) return DType::f64;
  throw py::type_error(std::string(name) + ": expected float32 or float64, got " + std::string(py::str(dt)));
}

inline int64_t elem_stride(const py::array& a, int axis, const char* name) {
  const int64_t st = a.strides(axis), it = a.itemsize();
  if (st % it != 0)
    throw std::invalid_argument(std::string(name) + ": strides must be multiples of the item size");
  return st / it;
}

// (H, W), (H, W, C) or (N, H, W, C) with packed pixels (C contiguous, W stride C).
inline ImageDesc image_desc(const py::array& a, const char* name) {
  const int nd = static_cast<int>(a.ndim());
  if (nd < 2 || nd > 4)
    throw std::invalid_argument(std::string(name) + ": expected 2, 3 or 4 dimensions");
  ImageDesc d;
  const int o = nd == 4 ? 1 : 0;
  d.n = nd == 4 ? a.shape(0) : 1;
  d.h = a.shape(o);
  d.w = a.shape(o + 1);
  d.c = nd >= 3 ? a.shape(nd - 1) : 1;
  const int64_t sw = d.w > 1 ? elem_stride(a, o + 1, name) : d.c;
  const int64_t sc = (nd >= 3 && d.c > 1) ? elem_stride(a, nd - 1, name) : 1;
  if (sc != 1 || sw != d.c)
    throw std::invalid_argument(std::string(name) + ": pixels of a row must be packed (internal layout error)");
  d.row_stride = elem_stride(a, o, name);
  d.batch_stride = nd == 4 ? elem_stride(a, 0, name) : 0;
  return d;
}

inline void same_shape(const py::array& a, const py::array& b, const char* an, const char* bn) {
  if (a.ndim() != b.ndim()) throw std::invalid_argument(std::string(bn) + ": shape differs from " + an);
  for (int i = 0; i < a.ndim(); ++i)
    if (a.shape(i) != b.shape(i)) throw std::invalid_argument(std::string(bn) + ": shape differs from " + an);
}

inline void* writable_data(py::array& a, const char* name) {
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + ": array is read-only");
  return a.mutable_data();
}

// An ImageDesc passed from Python as a tuple (n, h, w, c, batch_stride, row_stride), used by
// the CUDA bindings where arrays arrive as raw device pointers.
inline ImageDesc desc_from_tuple(const py::tuple& t) {
  if (t.size() != 6) throw std::invalid_argument("image descriptor must have 6 integers");
  ImageDesc d;
  d.n = t[0].cast<int64_t>();
  d.h = t[1].cast<int64_t>();
  d.w = t[2].cast<int64_t>();
  d.c = t[3].cast<int64_t>();
  d.batch_stride = t[4].cast<int64_t>();
  d.row_stride = t[5].cast<int64_t>();
  return d;
}

}  // namespace imkern_py
