// Bindings of the rank and edge-preserving filters (median, morphology, bilateral): CPU on
// NumPy arrays, CUDA on raw pointers from CuPy. User-facing validation happens in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "imkern/filters.hpp"
#include "registry.hpp"
#if defined(IMKERN_WITH_CUDA)
#include "imkern/cuda.hpp"
#endif

namespace py = pybind11;
using namespace imkern_py;
using imkern::Border;

namespace {

Border rank_border(int b) {
  if (b < 0 || b > 4) throw std::invalid_argument("border: unknown border code");
  return static_cast<Border>(b);
}

struct Images {
  DType dt;
  ImageDesc s, d;
  const void* src;
  void* dst;
};

Images images(const py::array& src, py::array& dst) {
  Images p;
  p.dt = dtype_of(src, "image");
  if (dtype_of(dst, "out") != p.dt) throw py::type_error("out: dtype differs from image");
  same_shape(src, dst, "image", "out");
  p.s = image_desc(src, "image");
  p.d = image_desc(dst, "out");
  p.src = src.data();
  p.dst = writable_data(dst, "out");
  return p;
}

}  // namespace

IMKERN_BINDINGS(filters_rank) {
  m.def("median", [](const py::array& src, py::array& dst, int k, int border, double cval) {
    Images p = images(src, dst);
    if (k < 1 || k % 2 == 0 || k > 255) throw std::invalid_argument("size: expected an odd size in [1, 255]");
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(median, p.dt, p.src, p.s, p.dst, p.d, k, b, cval);
  });

#if defined(IMKERN_WITH_CUDA)
  m.def("cuda_median", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd, int k,
                          int border, double cval, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    imkern::cuda::median_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                              reinterpret_cast<void*>(dst), d, k, b, cval, reinterpret_cast<void*>(stream));
  });
#endif
}
