// Bindings of the linear-filter family (CPU: NumPy arrays; CUDA: raw pointers from CuPy).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "imkern/filters.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;
using imkern::Border;

namespace {

Border border_of(int b) {
  if (b < 0 || b > 4) throw std::invalid_argument("border: unknown border code");
  return static_cast<Border>(b);
}

struct Prepared {
  DType dt, od;  // input and output dtypes
  ImageDesc s, d;
  const void* src;
  void* dst;
};

Prepared prepare(const py::array& src, py::array& dst) {
  Prepared p;
  p.dt = dtype_of(src, "image");
  p.od = dtype_of(dst, "out");
  if (p.od != p.dt && p.od != DType::f32 && p.od != DType::f64)
    throw py::type_error("out: dtype must be the image's, float32 or float64");
  same_shape(src, dst, "image", "out");
  p.s = image_desc(src, "image");
  p.d = image_desc(dst, "out");
  p.src = src.data();
  p.dst = writable_data(dst, "out");
  return p;
}

std::vector<double> taps(const py::array_t<double, py::array::c_style | py::array::forcecast>& k,
                         int ndim, const char* name) {
  if (k.ndim() != ndim) throw std::invalid_argument(std::string(name) + ": wrong number of dimensions");
  if (k.size() == 0) throw std::invalid_argument(std::string(name) + ": empty kernel");
  return std::vector<double>(k.data(), k.data() + k.size());
}

}  // namespace

IMKERN_BINDINGS(filters) {
  m.def("sep_filter", [](const py::array& src, py::array& dst,
                         const py::array_t<double, py::array::c_style | py::array::forcecast>& ky, int ay,
                         const py::array_t<double, py::array::c_style | py::array::forcecast>& kx, int ax,
                         int border, double cval) {
    Prepared p = prepare(src, dst);
    auto vy = taps(ky, 1, "kernel_y"), vx = taps(kx, 1, "kernel_x");
    const int kh = static_cast<int>(vy.size()), kw = static_cast<int>(vx.size());
    if (ay < 0 || ay >= kh || ax < 0 || ax >= kw) throw std::invalid_argument("anchor outside the kernel");
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(sep_filter, p.dt, p.src, p.s, p.od, p.dst, p.d, vy.data(), kh, ay, vx.data(), kw, ax, b, cval);
  });
  m.def("correlate", [](const py::array& src, py::array& dst,
                        const py::array_t<double, py::array::c_style | py::array::forcecast>& k, int ay,
                        int ax, int border, double cval) {
    Prepared p = prepare(src, dst);
    auto v = taps(k, 2, "kernel");
    const int kh = static_cast<int>(k.shape(0)), kw = static_cast<int>(k.shape(1));
    if (ay < 0 || ay >= kh || ax < 0 || ax >= kw) throw std::invalid_argument("anchor outside the kernel");
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(correlate, p.dt, p.src, p.s, p.od, p.dst, p.d, v.data(), kh, kw, ay, ax, b, cval);
  });
  m.def("box", [](const py::array& src, py::array& dst, int kh, int kw, int ay, int ax, bool normalize,
                  int border, double cval) {
    Prepared p = prepare(src, dst);
    if (kh < 1 || kw < 1) throw std::invalid_argument("size: must be positive");
    if (ay < 0 || ay >= kh || ax < 0 || ax >= kw) throw std::invalid_argument("anchor outside the kernel");
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    IMKERN_CALL(box, p.dt, p.src, p.s, p.od, p.dst, p.d, kh, kw, ay, ax, normalize, b, cval);
  });

#if defined(IMKERN_WITH_CUDA)
  // CUDA: pointers and descriptors come from the Python layer (CuPy arrays), weights are a
  // device array of the accumulation type (float32, or float64 for float64 images).
  m.def("cuda_sep_filter", [](int dtype, uintptr_t src, const py::tuple& sd, int odtype, uintptr_t dst, const py::tuple& dd,
                              uintptr_t ky, int kh, int ay, uintptr_t kx, int kw, int ax, int border,
                              double cval, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    imkern::cuda::sep_filter_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s, static_cast<DType>(odtype),
                                  reinterpret_cast<void*>(dst), d, reinterpret_cast<const void*>(ky), kh, ay,
                                  reinterpret_cast<const void*>(kx), kw, ax, b, cval,
                                  reinterpret_cast<void*>(stream));
  });
  m.def("cuda_correlate", [](int dtype, uintptr_t src, const py::tuple& sd, int odtype, uintptr_t dst, const py::tuple& dd,
                             uintptr_t k, int kh, int kw, int ay, int ax, int border, double cval,
                             uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    imkern::cuda::correlate_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s, static_cast<DType>(odtype),
                                 reinterpret_cast<void*>(dst), d, reinterpret_cast<const void*>(k), kh, kw, ay,
                                 ax, b, cval, reinterpret_cast<void*>(stream));
  });
  m.def("cuda_box", [](int dtype, uintptr_t src, const py::tuple& sd, int odtype, uintptr_t dst, const py::tuple& dd, int kh,
                       int kw, int ay, int ax, bool normalize, int border, double cval, uintptr_t stream) {
    ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    Border b = border_of(border);
    py::gil_scoped_release nogil;
    imkern::cuda::box_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s, static_cast<DType>(odtype),
                           reinterpret_cast<void*>(dst), d, kh, kw, ay, ax, normalize, b, cval,
                           reinterpret_cast<void*>(stream));
  });
#endif
}
