// Bindings of the filters family (csrc/include/imkern/filters.hpp): linear, rank, derivative,
// threshold and edge filters, CPU and CUDA side by side through the helpers of bind.hpp (the
// GIL is released by def / def_cuda). CPU: NumPy images; CUDA: device pointers with the shared
// _core.ImageDesc and the caller's stream. The Python layer (imkern.filters) validates user
// input; these checks only assert the kernels' assumptions.
#include <string>
#include <vector>

#include "bind.hpp"
#include "imkern/filters.hpp"
#include "registry.hpp"

using namespace imkern_py;
using imkern::Border;
using imkern::DerivMode;
using imkern::ThreshKind;

namespace {

// An image -> image call: dtypes, descriptors, pointers of source and destination.
struct Images {
  DType dt, od;  // input and output dtypes
  ImageDesc s, d;
  const void* src;
  void* dst;
};

// `any_out`: out may also be float32 / float64 (the linear filters' ddepth); else the image's dtype.
Images images(const Arr& src, const Arr& dst, bool any_out = false) {
  Images p;
  p.dt = dtype_of(src, "image");
  p.od = dtype_of(dst, "out");
  if (p.od != p.dt && !(any_out && (p.od == DType::f32 || p.od == DType::f64)))
    throw py::type_error(any_out ? "out: dtype must be the image's, float32 or float64" : "out: dtype differs from image");
  same_shape(src, dst, "image", "out");
  p.s = image_desc(src, "image");
  p.d = image_desc(dst, "out");
  p.src = src.data();
  p.dst = writable_data(dst, "out");
  return p;
}

void check_anchor(int kh, int kw, int ay, int ax) {
  if (kh < 1 || kw < 1) throw std::invalid_argument("size: must be positive");
  if (ay < 0 || ay >= kh || ax < 0 || ax >= kw) throw std::invalid_argument("anchor outside the kernel");
}

const Taps& taps(const Taps& k, int ndim, const char* name) {
  if (k.ndim() != ndim || k.size() == 0) throw std::invalid_argument(std::string(name) + ": empty kernel or wrong ndim");
  return k;
}

// The derivative filters' four taps vectors: F0 = ky0 (x) kx0, F1 = ky1 (x) kx1 (zeros for `single`).
struct DerivTaps {
  std::vector<double> x0, y0, x1, y1;
  int kw, kh;
  DerivMode mode;
};
DerivTaps deriv_taps(const Taps& kx0, const Taps& ky0, const Taps& kx1, const Taps& ky1, int mode, int max_taps) {
  if (mode < 0 || mode > 4) throw std::invalid_argument("mode: unknown");
  DerivTaps t;
  t.kw = static_cast<int>(kx0.size()), t.kh = static_cast<int>(ky0.size());
  if (t.kw < 1 || t.kh < 1 || t.kw > max_taps || t.kh > max_taps)
    throw std::invalid_argument("kernel sizes must be in [1, " + std::to_string(max_taps) + "]");
  t.mode = static_cast<DerivMode>(mode);
  t.x0 = kx0.v, t.y0 = ky0.v;
  t.x1.assign(t.kw, 0.0), t.y1.assign(t.kh, 0.0);
  if (t.mode != DerivMode::single) {
    if (kx1.size() != t.kw || ky1.size() != t.kh) throw std::invalid_argument("kx1, ky1: sizes differ from kx0, ky0");
    t.x1 = kx1.v, t.y1 = ky1.v;
  }
  return t;
}

const HostVec<uint8_t>& footprint(const HostVec<uint8_t>& fp, int ay, int ax) {
  if (fp.ndim() != 2 || fp.size() == 0) throw std::invalid_argument("footprint: expected a non-empty 2-D array");
  if (ay < 0 || ay >= fp.shape(0) || ax < 0 || ax >= fp.shape(1)) throw std::invalid_argument("anchor outside the footprint");
  return fp;
}

void check_kind(int kind) {
  if (kind < 0 || kind > 4) throw std::invalid_argument("kind: unknown");
}

// A single-channel uint8 map (N, H, W) / (H, W) of the image's pixels (canny's output).
ImageDesc edge_map(const Arr& dst, const ImageDesc& s) {
  if (dtype_of(dst, "out") != DType::u8) throw py::type_error("out: expected uint8");
  const int nd = dst.ndim();
  if (nd != 2 && nd != 3) throw std::invalid_argument("out: expected (H, W) or (N, H, W)");
  ImageDesc d;
  d.n = nd == 3 ? dst.shape(0) : 1;
  d.h = dst.shape(nd - 2);
  d.w = dst.shape(nd - 1);
  if (d.n != s.n || d.h != s.h || d.w != s.w) throw std::invalid_argument("out: shape mismatch");
  if (d.w > 1 && elem_stride(dst, nd - 1, "out") != 1) throw std::invalid_argument("out: rows must be contiguous");
  d.row_stride = elem_stride(dst, nd - 2, "out");
  d.batch_stride = nd == 3 ? elem_stride(dst, 0, "out") : 0;
  return d;
}

void check_ksize(int ksize) {
  if (ksize != 3 && ksize != 5 && ksize != 7) throw std::invalid_argument("ksize: 3, 5 or 7");
}

// The fixed-point Gaussian's taps: odd sizes, each summing to `one` (256 for gaussian_u8, 65536
// for gaussian_u16), every tap in [0, one], mirrored where the kernel needs it (max_taps: the
// device's limit).
const HostVec<int32_t>& fixed_taps(const HostVec<int32_t>& k, const char* name, int64_t max_taps, int32_t one,
                                   bool mirrored = false) {
  if (k.ndim() != 1 || k.size() % 2 != 1 || k.size() > max_taps)
    throw std::invalid_argument(std::string(name) + ": expected an odd number of taps, at most " + std::to_string(max_taps));
  int64_t sum = 0;
  for (int32_t t : k.v) {
    if (t < 0 || t > one) throw std::invalid_argument(std::string(name) + ": taps must lie in [0, " + std::to_string(one) + "]");
    sum += t;
  }
  if (sum != one) throw std::invalid_argument(std::string(name) + ": taps must sum to " + std::to_string(one));
  const size_t n = k.v.size();
  for (size_t i = 0; mirrored && i < n / 2; ++i)
    if (k.v[i] != k.v[n - 1 - i]) throw std::invalid_argument(std::string(name) + ": taps must be symmetric");
  return k;
}
const HostVec<int32_t>& q8_taps(const HostVec<int32_t>& k, const char* name, int64_t max_taps) {
  return fixed_taps(k, name, max_taps, 256);
}

}  // namespace

IMKERN_BINDINGS(filters) {
  // ---- linear filters --------------------------------------------------------------------------
  def(m, "sep_filter", [](const Arr& src, const Arr& dst, const Taps& ky, int ay, const Taps& kx, int ax, int border,
                          double cval) {
    const Images p = images(src, dst, true);
    const int kh = static_cast<int>(taps(ky, 1, "kernel_y").size()), kw = static_cast<int>(taps(kx, 1, "kernel_x").size());
    check_anchor(kh, kw, ay, ax);
    IMKERN_CALL(sep_filter, p.dt, p.src, p.s, p.od, p.dst, p.d, ky.data(), kh, ay, kx.data(), kw, ax,
                border_of(border), cval);
  });
  def(m, "correlate", [](const Arr& src, const Arr& dst, const Taps& k, int ay, int ax, int border, double cval) {
    const Images p = images(src, dst, true);
    const int kh = static_cast<int>(taps(k, 2, "kernel").shape(0)), kw = static_cast<int>(k.shape(1));
    check_anchor(kh, kw, ay, ax);
    IMKERN_CALL(correlate, p.dt, p.src, p.s, p.od, p.dst, p.d, k.data(), kh, kw, ay, ax, border_of(border), cval);
  });
  def(m, "box", [](const Arr& src, const Arr& dst, int kh, int kw, int ay, int ax, bool normalize, int border,
                   double cval) {
    const Images p = images(src, dst, true);
    check_anchor(kh, kw, ay, ax);
    IMKERN_CALL(box, p.dt, p.src, p.s, p.od, p.dst, p.d, kh, kw, ay, ax, normalize, border_of(border), cval);
  });

  // ---- rank filters ----------------------------------------------------------------------------
  def(m, "median", [](const Arr& src, const Arr& dst, int k, int border, double cval) {
    const Images p = images(src, dst);
    if (k < 1 || k % 2 == 0 || k > 255) throw std::invalid_argument("size: expected an odd size in [1, 255]");
    IMKERN_CALL(median, p.dt, p.src, p.s, p.dst, p.d, k, border_of(border), cval);
  });
  def(m, "morphology", [](const Arr& src, const Arr& dst, const HostVec<uint8_t>& fp, int ay, int ax, bool dilate,
                          int border, double cval) {
    const Images p = images(src, dst);
    footprint(fp, ay, ax);
    IMKERN_CALL(morphology, p.dt, p.src, p.s, p.dst, p.d, fp.data(), static_cast<int>(fp.shape(0)),
                static_cast<int>(fp.shape(1)), ay, ax, dilate, border_of(border), cval);
  });
  def(m, "morph_gradient", [](const Arr& src, const Arr& dst, const HostVec<uint8_t>& fp, int ay, int ax, int border,
                              double cval_dilate, double cval_erode) {
    const Images p = images(src, dst);
    footprint(fp, ay, ax);
    IMKERN_CALL(morph_gradient, p.dt, p.src, p.s, p.dst, p.d, fp.data(), static_cast<int>(fp.shape(0)),
                static_cast<int>(fp.shape(1)), ay, ax, border_of(border), cval_dilate, cval_erode);
  });
  def(m, "bilateral", [](const Arr& src, const Arr& dst, int radius, double sigma_color, double sigma_space,
                         int border) {
    const Images p = images(src, dst);
    if (radius < 1) throw std::invalid_argument("d: the window radius must be positive");
    if (!(sigma_color > 0) || !(sigma_space > 0)) throw std::invalid_argument("sigma: must be positive");
    IMKERN_CALL(bilateral, p.dt, p.src, p.s, p.dst, p.d, radius, sigma_color, sigma_space, border_of(border));
  });

  // ---- derivatives, thresholds, edges ----------------------------------------------------------
  def(m, "deriv_filter", [](const Arr& src, const Arr& dst0, const Arr& dst1, const Taps& kx0, const Taps& ky0,
                            const Taps& kx1, const Taps& ky1, int mode, double delta, int border, double cval) {
    const DType dt = dtype_of(src, "image");
    const DType odt = dt == DType::f64 ? DType::f64 : DType::f32;
    if (dtype_of(dst0, "out") != odt) throw py::type_error("out: expected float32 (float64 for float64 images)");
    same_shape(src, dst0, "image", "out");
    const DerivTaps t = deriv_taps(kx0, ky0, kx1, ky1, mode, 64);
    const ImageDesc s = image_desc(src, "image"), d0 = image_desc(dst0, "out");
    ImageDesc d1 = d0;
    void* p1 = nullptr;
    if (t.mode == DerivMode::pair) {
      if (dtype_of(dst1, "out") != odt) throw py::type_error("out: dtype mismatch");
      same_shape(src, dst1, "image", "out");
      d1 = image_desc(dst1, "out");
      p1 = writable_data(dst1, "out");
    }
    IMKERN_CALL(deriv_filter, dt, src.data(), s, writable_data(dst0, "out"), d0, p1, d1, t.x0.data(), t.y0.data(),
                t.x1.data(), t.y1.data(), t.kw, t.kh, t.mode, delta, border_of(border), cval);
  });
  def(m, "unsharp_mask", [](const Arr& src, const Arr& dst, const Taps& ky, const Taps& kx, double amount,
                            double threshold, int border, double cval) {
    const Images p = images(src, dst);
    taps(ky, 1, "kernel_y"), taps(kx, 1, "kernel_x");
    IMKERN_CALL(unsharp_mask, p.dt, p.src, p.s, p.dst, p.d, ky.data(), static_cast<int>(ky.size()), kx.data(),
                static_cast<int>(kx.size()), amount, threshold, border_of(border), cval);
  });
  def(m, "threshold", [](const Arr& src, const Arr& dst, int kind, double thresh, double maxval) {
    const Images p = images(src, dst);
    check_kind(kind);
    IMKERN_CALL(threshold, p.dt, p.src, p.s, p.dst, p.d, static_cast<ThreshKind>(kind), thresh, maxval);
  });
  def(m, "adaptive_compare", [](const Arr& src, const Arr& mean, const Arr& dst, int idelta, int maxval, bool inv) {
    const Images p = images(src, dst);
    if (p.dt != DType::u8 || dtype_of(mean, "mean") != DType::u8) throw py::type_error("adaptive_compare: uint8 arrays expected");
    same_shape(src, mean, "image", "mean");
    if (maxval < 0 || maxval > 255) throw std::invalid_argument("maxval: 0..255");
    IMKERN_CALL(adaptive_compare_u8, static_cast<const uint8_t*>(p.src), p.s, static_cast<const uint8_t*>(mean.data()),
                image_desc(mean, "mean"), static_cast<uint8_t*>(p.dst), p.d, idelta, static_cast<uint8_t>(maxval), inv);
  });
  // Histogram of a u8 / u16 image (256 / 65536 int64 counts), returned as a new array.
  def(m, "histogram_int", [](const Arr& src) {
    const DType dt = dtype_of(src, "image");
    if (dt != DType::u8 && dt != DType::u16) throw py::type_error("image: expected uint8 or uint16");
    HostVec<int64_t> hist;
    hist.shp = {dt == DType::u8 ? 256 : 65536};
    hist.v.resize(static_cast<size_t>(hist.shp[0]));
    IMKERN_CALL(histogram_int, dt, src.data(), image_desc(src, "image"), hist.v.data());
    return hist;
  });
  def(m, "otsu_level", [](const HostVec<int64_t>& hist) {
    if (hist.ndim() != 1 || hist.size() < 1) throw std::invalid_argument("hist: expected a 1-D histogram");
    return IMKERN_CALL(otsu_level, hist.data(), static_cast<int>(hist.size()));
  });
  def(m, "triangle_level", [](const HostVec<int64_t>& hist) {
    if (hist.ndim() != 1 || hist.size() < 2) throw std::invalid_argument("hist: expected a 1-D histogram");
    return IMKERN_CALL(triangle_level, hist.data(), static_cast<int>(hist.size()));
  });
  def(m, "canny", [](const Arr& src, const Arr& dst, int ksize, bool l2, int low, int high) {
    if (dtype_of(src, "image") != DType::u8) throw py::type_error("canny: uint8 image expected");
    const ImageDesc s = image_desc(src, "image");
    const ImageDesc d = edge_map(dst, s);
    check_ksize(ksize);
    IMKERN_CALL(canny_u8, static_cast<const uint8_t*>(src.data()), s, static_cast<uint8_t*>(writable_data(dst, "out")),
                d, ksize, l2, low, high);
  });

  def(m, "gaussian_u8", [](const Arr& src, const Arr& dst, const HostVec<int32_t>& ky, const HostVec<int32_t>& kx,
                           int border, int cval) {
    const Images p = images(src, dst);
    if (p.dt != DType::u8) throw py::type_error("gaussian_u8: uint8 image expected");
    q8_taps(ky, "kernel_y", 1 << 20), q8_taps(kx, "kernel_x", 1 << 20);
    if (cval < 0 || cval > 255) throw std::invalid_argument("cval: expected 0..255");
    IMKERN_CALL(gaussian_u8, static_cast<const uint8_t*>(p.src), p.s, static_cast<uint8_t*>(p.dst), p.d, ky.data(),
                static_cast<int>(ky.size()), kx.data(), static_cast<int>(kx.size()), border_of(border), cval);
  });
  def(m, "gaussian_u16", [](const Arr& src, const Arr& dst, const HostVec<int32_t>& ky, const HostVec<int32_t>& kx,
                            int border, int cval) {
    const Images p = images(src, dst);
    if (p.dt != DType::u16) throw py::type_error("gaussian_u16: uint16 image expected");
    fixed_taps(ky, "kernel_y", 1 << 20, 65536, true), fixed_taps(kx, "kernel_x", 1 << 20, 65536, true);
    if (cval < 0 || cval > 65535) throw std::invalid_argument("cval: expected 0..65535");
    IMKERN_CALL(gaussian_u16, static_cast<const uint16_t*>(p.src), p.s, static_cast<uint16_t*>(p.dst), p.d, ky.data(),
                static_cast<int>(ky.size()), kx.data(), static_cast<int>(kx.size()), border_of(border), cval);
  });

#if defined(IMKERN_WITH_CUDA)
  // ---- CUDA: the launchers as they are; weights of the linear filters are device arrays -------
  namespace kc = imkern::cuda;
  def_cuda(m, "cuda_sep_filter", &kc::sep_filter_cuda);
  def_cuda(m, "cuda_correlate", &kc::correlate_cuda);
  def_cuda(m, "cuda_box", &kc::box_cuda);
  def_cuda(m, "cuda_median", &kc::median_cuda);
  def_cuda(m, "cuda_bilateral", &kc::bilateral_cuda);
  def_cuda(m, "cuda_threshold", &kc::threshold_cuda);
  def_cuda(m, "cuda_adaptive_compare", &kc::adaptive_compare_cuda);
  def_cuda(m, "cuda_histogram_int", &kc::histogram_int_cuda);
  def_cuda(m, "cuda_canny", &kc::canny_cuda);
  // Host taps and footprints (copied into the kernel arguments by the launchers).
  def(m, "cuda_morphology", [](int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d,
                               const HostVec<uint8_t>& fp, int ay, int ax, bool dilate, int border, double cval,
                               uintptr_t stream) {
    footprint(fp, ay, ax);
    kc::morphology_cuda(static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst), d, fp.data(),
                        static_cast<int>(fp.shape(0)), static_cast<int>(fp.shape(1)), ay, ax, dilate, border_of(border),
                        cval, CudaArg<void*>::get(stream));
  });
  def(m, "cuda_deriv_filter", [](int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst0, const ImageDesc& d0,
                                 uintptr_t dst1, const ImageDesc& d1, const Taps& kx0, const Taps& ky0, const Taps& kx1,
                                 const Taps& ky1, int mode, double delta, int border, double cval, uintptr_t stream) {
    const DerivTaps t = deriv_taps(kx0, ky0, kx1, ky1, mode, kc::kMaxDerivTaps);
    kc::deriv_filter_cuda(static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst0), d0,
                          CudaArg<void*>::get(dst1), d1, t.x0.data(), t.y0.data(), t.x1.data(), t.y1.data(), t.kw, t.kh,
                          t.mode, delta, border_of(border), cval, CudaArg<void*>::get(stream));
  });
  def(m, "cuda_unsharp_mask", [](int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d,
                                 const Taps& ky, const Taps& kx, double amount, double threshold, int border,
                                 double cval, uintptr_t stream) {
    taps(ky, 1, "kernel_y"), taps(kx, 1, "kernel_x");
    kc::unsharp_mask_cuda(static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst), d, ky.data(),
                          static_cast<int>(ky.size()), kx.data(), static_cast<int>(kx.size()), amount, threshold,
                          border_of(border), cval, CudaArg<void*>::get(stream));
  });
  def(m, "cuda_gaussian_u8", [](uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d,
                                const HostVec<int32_t>& ky, const HostVec<int32_t>& kx, int border, int cval,
                                uintptr_t stream) {
    q8_taps(ky, "kernel_y", kc::kMaxGaussU8Taps), q8_taps(kx, "kernel_x", kc::kMaxGaussU8Taps);
    if (cval < 0 || cval > 255) throw std::invalid_argument("cval: expected 0..255");
    kc::gaussian_u8_cuda(static_cast<const uint8_t*>(CudaArg<const void*>::get(src)), s,
                         static_cast<uint8_t*>(CudaArg<void*>::get(dst)), d, ky.data(), static_cast<int>(ky.size()),
                         kx.data(), static_cast<int>(kx.size()), border_of(border), cval, CudaArg<void*>::get(stream));
  });
  def(m, "cuda_gaussian_u16", [](uintptr_t src, const ImageDesc& s, uintptr_t dst, const ImageDesc& d,
                                 const HostVec<int32_t>& ky, const HostVec<int32_t>& kx, int border, int cval,
                                 uintptr_t stream) {
    fixed_taps(ky, "kernel_y", kc::kMaxGaussU16Taps, 65536, true);
    fixed_taps(kx, "kernel_x", kc::kMaxGaussU16Taps, 65536, true);
    if (cval < 0 || cval > 65535) throw std::invalid_argument("cval: expected 0..65535");
    kc::gaussian_u16_cuda(static_cast<const uint16_t*>(CudaArg<const void*>::get(src)), s,
                          static_cast<uint16_t*>(CudaArg<void*>::get(dst)), d, ky.data(), static_cast<int>(ky.size()),
                          kx.data(), static_cast<int>(kx.size()), border_of(border), cval, CudaArg<void*>::get(stream));
  });
#endif
}
