// Bindings of the rank and edge-preserving filters (median, morphology, bilateral): CPU on
// NumPy arrays, CUDA on raw pointers from CuPy. User-facing validation happens in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "arrays.hpp"
#include "imkern/filters.hpp"
#include "registry.hpp"

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

  m.def("morphology", [](const py::array& src, py::array& dst,
                         const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& fp, int ay, int ax,
                         bool dilate, int border, double cval) {
    Images p = images(src, dst);
    if (fp.ndim() != 2 || fp.size() == 0) throw std::invalid_argument("footprint: expected a non-empty 2-D array");
    const int fh = static_cast<int>(fp.shape(0)), fw = static_cast<int>(fp.shape(1));
    if (ay < 0 || ay >= fh || ax < 0 || ax >= fw) throw std::invalid_argument("anchor outside the footprint");
    std::vector<uint8_t> f(fp.data(), fp.data() + fp.size());
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(morphology, p.dt, p.src, p.s, p.dst, p.d, f.data(), fh, fw, ay, ax, dilate, b, cval);
  });

  m.def("bilateral", [](const py::array& src, py::array& dst, int radius, double sigma_color, double sigma_space,
                        int border) {
    Images p = images(src, dst);
    if (radius < 1) throw std::invalid_argument("d: the window radius must be positive");
    if (!(sigma_color > 0) || !(sigma_space > 0)) throw std::invalid_argument("sigma: must be positive");
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(bilateral, p.dt, p.src, p.s, p.dst, p.d, radius, sigma_color, sigma_space, b);
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
  m.def("cuda_morphology", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                              const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& fp, int ay,
                              int ax, bool dilate, int border, double cval, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    if (fp.ndim() != 2 || fp.size() == 0) throw std::invalid_argument("footprint: expected a non-empty 2-D array");
    const int fh = static_cast<int>(fp.shape(0)), fw = static_cast<int>(fp.shape(1));
    std::vector<uint8_t> f(fp.data(), fp.data() + fp.size());
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    imkern::cuda::morphology_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                                  reinterpret_cast<void*>(dst), d, f.data(), fh, fw, ay, ax, dilate, b, cval,
                                  reinterpret_cast<void*>(stream));
  });
  m.def("cuda_bilateral", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                             int radius, double sigma_color, double sigma_space, int border, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    Border b = rank_border(border);
    py::gil_scoped_release nogil;
    imkern::cuda::bilateral_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                                 reinterpret_cast<void*>(dst), d, radius, sigma_color, sigma_space, b,
                                 reinterpret_cast<void*>(stream));
  });
#endif
}
