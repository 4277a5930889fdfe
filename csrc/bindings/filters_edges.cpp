// Bindings of the derivative, threshold and edge filters (CPU: NumPy arrays; CUDA: raw
// pointers from CuPy). The Python layer (imkern.filters._derivatives, _threshold, _canny)
// validates user input; these checks only guard the kernels' assumptions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "imkern/filters.hpp"
#include "registry.hpp"
#if defined(IMKERN_WITH_CUDA)
#include "imkern/cuda_filters_edges.hpp"
#endif

namespace py = pybind11;
using namespace imkern_py;
using imkern::Border;
using imkern::DerivMode;
using imkern::ThreshKind;

namespace {

using Taps = py::array_t<double, py::array::c_style | py::array::forcecast>;

Border border_code(int b) {
  if (b < 0 || b > 4) throw std::invalid_argument("border: unknown border code");
  return static_cast<Border>(b);
}

std::vector<double> taps_of(const Taps& k, int64_t n, const char* name) {
  if (k.ndim() != 1 || k.size() != n)
    throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(n) + " taps");
  return std::vector<double>(k.data(), k.data() + n);
}

void same_pixels(const py::array& a, const py::array& b, const char* bn) {
  // b is (N, H, W) / (H, W) for an (N, H, W, C) / (H, W, C) or (H, W) image a
  const ImageDesc s = image_desc(a, "image");
  const int nd = static_cast<int>(b.ndim());
  const int64_t n = nd == 3 ? b.shape(0) : 1;
  const int64_t h = b.shape(nd - 2), w = b.shape(nd - 1);
  if (n != s.n || h != s.h || w != s.w) throw std::invalid_argument(std::string(bn) + ": shape mismatch");
}

}  // namespace

IMKERN_BINDINGS(filters_edges) {
  m.def("deriv_filter", [](const py::array& src, py::array& dst0, py::object dst1_obj, const Taps& kx0,
                           const Taps& ky0, const Taps& kx1, const Taps& ky1, int mode, double delta, int border,
                           double cval) {
    const DType dt = dtype_of(src, "image");
    const DType odt = dt == DType::f64 ? DType::f64 : DType::f32;
    if (dtype_of(dst0, "out") != odt) throw py::type_error("out: expected float32 (float64 for float64 images)");
    same_shape(src, dst0, "image", "out");
    if (mode < 0 || mode > 4) throw std::invalid_argument("mode: unknown");
    const DerivMode md = static_cast<DerivMode>(mode);
    const int kw = static_cast<int>(kx0.size()), kh = static_cast<int>(ky0.size());
    if (kw < 1 || kh < 1 || kw > 64 || kh > 64) throw std::invalid_argument("kernel sizes must be in [1, 64]");
    auto vx0 = taps_of(kx0, kw, "kx0"), vy0 = taps_of(ky0, kh, "ky0");
    std::vector<double> vx1(kw, 0.0), vy1(kh, 0.0);
    if (md != DerivMode::single) {
      vx1 = taps_of(kx1, kw, "kx1");
      vy1 = taps_of(ky1, kh, "ky1");
    }
    const ImageDesc s = image_desc(src, "image"), d0 = image_desc(dst0, "out");
    ImageDesc d1 = d0;
    void* p1 = nullptr;
    py::array dst1;
    if (md == DerivMode::pair) {
      dst1 = py::cast<py::array>(dst1_obj);
      if (dtype_of(dst1, "out") != odt) throw py::type_error("out: dtype mismatch");
      same_shape(src, dst1, "image", "out");
      d1 = image_desc(dst1, "out");
      p1 = writable_data(dst1, "out");
    }
    void* p0 = writable_data(dst0, "out");
    const Border b = border_code(border);
    const void* ps = src.data();
    py::gil_scoped_release nogil;
    IMKERN_CALL(deriv_filter, dt, ps, s, p0, d0, p1, d1, vx0.data(), vy0.data(), vx1.data(), vy1.data(), kw, kh, md,
                delta, b, cval);
  });
  m.def("unsharp_mask", [](const py::array& src, py::array& dst, const Taps& ky, const Taps& kx, double amount,
                           double threshold, int border, double cval) {
    const DType dt = dtype_of(src, "image");
    if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
    same_shape(src, dst, "image", "out");
    auto vy = taps_of(ky, ky.size(), "kernel_y"), vx = taps_of(kx, kx.size(), "kernel_x");
    if (vy.empty() || vx.empty()) throw std::invalid_argument("empty kernel");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    void* pd = writable_data(dst, "out");
    const Border b = border_code(border);
    const void* ps = src.data();
    py::gil_scoped_release nogil;
    IMKERN_CALL(unsharp_mask, dt, ps, s, pd, d, vy.data(), static_cast<int>(vy.size()), vx.data(),
                static_cast<int>(vx.size()), amount, threshold, b, cval);
  });
  m.def("threshold", [](const py::array& src, py::array& dst, int kind, double thresh, double maxval) {
    const DType dt = dtype_of(src, "image");
    if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
    same_shape(src, dst, "image", "out");
    if (kind < 0 || kind > 4) throw std::invalid_argument("kind: unknown");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    void* pd = writable_data(dst, "out");
    const void* ps = src.data();
    py::gil_scoped_release nogil;
    IMKERN_CALL(threshold, dt, ps, s, pd, d, static_cast<ThreshKind>(kind), thresh, maxval);
  });
  m.def("adaptive_compare", [](const py::array& src, const py::array& mean, py::array& dst, int idelta, int maxval,
                               bool inv) {
    if (dtype_of(src, "image") != DType::u8 || dtype_of(mean, "mean") != DType::u8 || dtype_of(dst, "out") != DType::u8)
      throw py::type_error("adaptive_compare: uint8 arrays expected");
    same_shape(src, mean, "image", "mean");
    same_shape(src, dst, "image", "out");
    if (maxval < 0 || maxval > 255) throw std::invalid_argument("maxval: 0..255");
    const ImageDesc s = image_desc(src, "image"), md = image_desc(mean, "mean"), d = image_desc(dst, "out");
    uint8_t* pd = static_cast<uint8_t*>(writable_data(dst, "out"));
    const uint8_t* ps = static_cast<const uint8_t*>(src.data());
    const uint8_t* pm = static_cast<const uint8_t*>(mean.data());
    py::gil_scoped_release nogil;
    IMKERN_CALL(adaptive_compare_u8, ps, s, pm, md, pd, d, idelta, static_cast<uint8_t>(maxval), inv);
  });
  // Histogram of a u8 / u16 image (256 / 65536 int64 counts).
  m.def("histogram_int", [](const py::array& src) {
    const DType dt = dtype_of(src, "image");
    if (dt != DType::u8 && dt != DType::u16) throw py::type_error("image: expected uint8 or uint16");
    const int nb = dt == DType::u8 ? 256 : 65536;
    py::array_t<int64_t> hist(nb);
    const ImageDesc s = image_desc(src, "image");
    int64_t* ph = hist.mutable_data();
    const void* ps = src.data();
    {
      py::gil_scoped_release nogil;
      IMKERN_CALL(histogram_int, dt, ps, s, ph);
    }
    return hist;
  });
  m.def("otsu_level", [](const py::array_t<int64_t, py::array::c_style>& hist) {
    if (hist.ndim() != 1 || hist.size() < 1) throw std::invalid_argument("hist: expected a 1-D histogram");
    return IMKERN_CALL(otsu_level, hist.data(), static_cast<int>(hist.size()));
  });
  m.def("triangle_level", [](const py::array_t<int64_t, py::array::c_style>& hist) {
    if (hist.ndim() != 1 || hist.size() < 2) throw std::invalid_argument("hist: expected a 1-D histogram");
    return IMKERN_CALL(triangle_level, hist.data(), static_cast<int>(hist.size()));
  });
  m.def("canny", [](const py::array& src, py::array& dst, int ksize, bool l2, int low, int high) {
    if (dtype_of(src, "image") != DType::u8 || dtype_of(dst, "out") != DType::u8)
      throw py::type_error("canny: uint8 image and out expected");
    same_pixels(src, dst, "out");
    const ImageDesc s = image_desc(src, "image");
    ImageDesc d;
    const int nd = static_cast<int>(dst.ndim());
    if (nd != 2 && nd != 3) throw std::invalid_argument("out: expected (H, W) or (N, H, W)");
    d.n = nd == 3 ? dst.shape(0) : 1;
    d.h = dst.shape(nd - 2);
    d.w = dst.shape(nd - 1);
    d.c = 1;
    if (d.w > 1 && elem_stride(dst, nd - 1, "out") != 1) throw std::invalid_argument("out: rows must be contiguous");
    d.row_stride = elem_stride(dst, nd - 2, "out");
    d.batch_stride = nd == 3 ? elem_stride(dst, 0, "out") : 0;
    if (ksize != 3 && ksize != 5 && ksize != 7) throw std::invalid_argument("ksize: 3, 5 or 7");
    uint8_t* pd = static_cast<uint8_t*>(writable_data(dst, "out"));
    const uint8_t* ps = static_cast<const uint8_t*>(src.data());
    py::gil_scoped_release nogil;
    IMKERN_CALL(canny_u8, ps, s, pd, d, ksize, l2, low, high);
  });

#if defined(IMKERN_WITH_CUDA)
  namespace kc = imkern::cuda;
  m.def("cuda_deriv_filter", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst0, const py::tuple& dd0,
                                uintptr_t dst1, const py::tuple& dd1, const Taps& kx0, const Taps& ky0,
                                const Taps& kx1, const Taps& ky1, int mode, double delta, int border, double cval,
                                uintptr_t stream) {
    const int kw = static_cast<int>(kx0.size()), kh = static_cast<int>(ky0.size());
    if (kw < 1 || kh < 1 || kw > kc::kMaxDerivTaps || kh > kc::kMaxDerivTaps)
      throw std::invalid_argument("kernel sizes must be in [1, 7]");
    if (mode < 0 || mode > 4) throw std::invalid_argument("mode: unknown");
    auto vx0 = taps_of(kx0, kw, "kx0"), vy0 = taps_of(ky0, kh, "ky0");
    std::vector<double> vx1(kw, 0.0), vy1(kh, 0.0);
    if (static_cast<DerivMode>(mode) != DerivMode::single) {
      vx1 = taps_of(kx1, kw, "kx1");
      vy1 = taps_of(ky1, kh, "ky1");
    }
    const ImageDesc s = desc_from_tuple(sd), d0 = desc_from_tuple(dd0), d1 = desc_from_tuple(dd1);
    const Border b = border_code(border);
    py::gil_scoped_release nogil;
    kc::deriv_filter_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                          reinterpret_cast<void*>(dst0), d0, reinterpret_cast<void*>(dst1), d1, vx0.data(),
                          vy0.data(), vx1.data(), vy1.data(), kw, kh, static_cast<DerivMode>(mode), delta, b, cval,
                          reinterpret_cast<void*>(stream));
  });
  m.def("cuda_unsharp_mask", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                                const Taps& ky, const Taps& kx, double amount, double threshold, int border,
                                double cval, uintptr_t stream) {
    auto vy = taps_of(ky, ky.size(), "kernel_y"), vx = taps_of(kx, kx.size(), "kernel_x");
    if (vy.empty() || vx.empty()) throw std::invalid_argument("empty kernel");
    const ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    const Border b = border_code(border);
    py::gil_scoped_release nogil;
    kc::unsharp_mask_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                          reinterpret_cast<void*>(dst), d, vy.data(), static_cast<int>(vy.size()), vx.data(),
                          static_cast<int>(vx.size()), amount, threshold, b, cval, reinterpret_cast<void*>(stream));
  });
  m.def("cuda_threshold", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd,
                             int kind, double thresh, double maxval, uintptr_t stream) {
    if (kind < 0 || kind > 4) throw std::invalid_argument("kind: unknown");
    const ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    py::gil_scoped_release nogil;
    kc::threshold_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s, reinterpret_cast<void*>(dst),
                       d, static_cast<ThreshKind>(kind), thresh, maxval, reinterpret_cast<void*>(stream));
  });
  m.def("cuda_adaptive_compare", [](uintptr_t src, const py::tuple& sd, uintptr_t mean, const py::tuple& md,
                                    uintptr_t dst, const py::tuple& dd, int idelta, int maxval, bool inv,
                                    uintptr_t stream) {
    if (maxval < 0 || maxval > 255) throw std::invalid_argument("maxval: 0..255");
    const ImageDesc s = desc_from_tuple(sd), m = desc_from_tuple(md), d = desc_from_tuple(dd);
    py::gil_scoped_release nogil;
    kc::adaptive_compare_cuda(reinterpret_cast<const uint8_t*>(src), s, reinterpret_cast<const uint8_t*>(mean), m,
                              reinterpret_cast<uint8_t*>(dst), d, idelta, static_cast<uint8_t>(maxval), inv,
                              reinterpret_cast<void*>(stream));
  });
  m.def("cuda_histogram_int", [](int dtype, uintptr_t src, const py::tuple& sd, uintptr_t hist, uintptr_t stream) {
    const ImageDesc s = desc_from_tuple(sd);
    py::gil_scoped_release nogil;
    kc::histogram_int_cuda(static_cast<DType>(dtype), reinterpret_cast<const void*>(src), s,
                           reinterpret_cast<unsigned long long*>(hist), reinterpret_cast<void*>(stream));
  });
  m.def("cuda_canny", [](uintptr_t src, const py::tuple& sd, uintptr_t dst, const py::tuple& dd, int ksize, bool l2,
                         int low, int high, uintptr_t stream) {
    if (ksize != 3 && ksize != 5 && ksize != 7) throw std::invalid_argument("ksize: 3, 5 or 7");
    const ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    py::gil_scoped_release nogil;
    kc::canny_cuda(reinterpret_cast<const uint8_t*>(src), s, reinterpret_cast<uint8_t*>(dst), d, ksize, l2, low, high,
                   reinterpret_cast<void*>(stream));
  });
#endif
}
