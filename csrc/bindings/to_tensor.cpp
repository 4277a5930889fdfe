// Binding of imkern.transform.to_tensor (CPU: NumPy arrays; CUDA: raw pointers from CuPy).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "arrays.hpp"
#include "imkern/to_tensor.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;
using imkern::TensorDesc;

namespace {

// (C, h, w) or (N, C, h, w), x contiguous.
TensorDesc tensor_desc(const py::array& a) {
  const int nd = static_cast<int>(a.ndim());
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

#if defined(IMKERN_WITH_CUDA)
TensorDesc tensor_desc_from_tuple(const py::tuple& t) {
  if (t.size() != 7) throw std::invalid_argument("tensor descriptor must have 7 integers");
  TensorDesc d;
  d.n = t[0].cast<int64_t>();
  d.c = t[1].cast<int64_t>();
  d.h = t[2].cast<int64_t>();
  d.w = t[3].cast<int64_t>();
  d.batch_stride = t[4].cast<int64_t>();
  d.plane_stride = t[5].cast<int64_t>();
  d.row_stride = t[6].cast<int64_t>();
  return d;
}
#endif

void check_geometry(const ImageDesc& s, const TensorDesc& d, int64_t y0, int64_t x0) {
  if (s.n != d.n || s.c != d.c) throw std::invalid_argument("out: batch or channel count differs from image");
  if (y0 < 0 || x0 < 0 || y0 + d.h > s.h || x0 + d.w > s.w)
    throw std::invalid_argument("crop: outside the image");
}

}  // namespace

IMKERN_BINDINGS(to_tensor) {
  m.def("to_tensor", [](const py::array& src, py::array& dst, int64_t y0, int64_t x0, bool flip,
                        const py::array_t<double, py::array::c_style | py::array::forcecast>& scale,
                        const py::array_t<double, py::array::c_style | py::array::forcecast>& shift) {
    const DType it = dtype_of(src, "image");
    const DType ot = float_dtype(dst, "out");
    const ImageDesc s = image_desc(src, "image");
    const TensorDesc d = tensor_desc(dst);
    check_geometry(s, d, y0, x0);
    if (scale.size() != d.c || shift.size() != d.c) throw std::invalid_argument("mean/std: one value per channel");
    std::vector<double> sc(scale.data(), scale.data() + d.c), sh(shift.data(), shift.data() + d.c);
    const void* sp = src.data();
    void* dp = writable_data(dst, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(to_tensor, it, ot, sp, s, y0, x0, flip, dp, d, sc.data(), sh.data());
  });
#if defined(IMKERN_WITH_CUDA)
  m.def("cuda_to_tensor", [](int in_dtype, int out_dtype, uintptr_t src, const py::tuple& sd, int64_t y0, int64_t x0,
                             bool flip, uintptr_t dst, const py::tuple& dd, uintptr_t params, uintptr_t stream) {
    const ImageDesc s = desc_from_tuple(sd);
    const TensorDesc d = tensor_desc_from_tuple(dd);
    check_geometry(s, d, y0, x0);
    py::gil_scoped_release nogil;
    imkern::cuda::to_tensor_cuda(static_cast<DType>(in_dtype), static_cast<DType>(out_dtype),
                                 reinterpret_cast<const void*>(src), s, y0, x0, flip, reinterpret_cast<void*>(dst), d,
                                 reinterpret_cast<const void*>(params), reinterpret_cast<void*>(stream));
  });
#endif
}
