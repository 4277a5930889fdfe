// Bindings of imkern.color (csrc/include/imkern/color.hpp), CPU and CUDA side by side through
// the helpers of bind.hpp (the GIL is released by def). The Python layer validates the
// channel counts; these checks only assert the kernels' assumptions.
#include <array>

#include <pybind11/stl.h>

#include "bind.hpp"
#include "imkern/color.hpp"
#include "registry.hpp"

using namespace imkern_py;
using imkern::ColorOp;
using imkern::ColorParams;

namespace {

// (C_in, C_out) each op accepts; C_in of gray may be 3 or 4, of swap_rb 3 or 4 (kept).
void check_channels(ColorOp op, const ImageDesc& s, const ImageDesc& d) {
  if (s.n != d.n || s.h != d.h || s.w != d.w) throw std::invalid_argument("out: size differs from image");
  const int64_t ci = s.c, co = d.c;
  bool ok = false;
  switch (op) {
    case ColorOp::rgb_to_gray:
    case ColorOp::bgr_to_gray: ok = (ci == 3 || ci == 4) && co == 1; break;
    case ColorOp::gray_to_rgb: ok = ci == 1 && co == 3; break;
    case ColorOp::swap_rb: ok = (ci == 3 || ci == 4) && co == ci; break;
    case ColorOp::rgba_to_rgb: ok = ci == 4 && co == 3; break;
    default: ok = ci == 3 && co == 3; break;
  }
  if (!ok) throw std::invalid_argument("color: wrong channel counts for this conversion (internal error)");
}

ColorOp op_of(int code) {
  if (code < 0 || code > static_cast<int>(ColorOp::lab_to_rgb)) throw std::invalid_argument("color: unknown op");
  return static_cast<ColorOp>(code);
}

ColorParams params_of(bool blend, const std::array<double, 3>& bg) {
  ColorParams p;
  p.blend = blend;
  for (int c = 0; c < 3; ++c) p.bg[c] = bg[c];
  return p;
}

// One conversion's arguments, as both devices' entry points take them.
struct Call {
  ColorOp op;
  DType dt;
  const void* sp;
  ImageDesc s;
  void* dp;
  ImageDesc d;
  ColorParams p;
};

// The kernel families, each with its CPU entry (dispatched by ISA) and its CUDA launcher side by
// side (a template, so a CPU-only build never references the launcher). Only Channels reads
// the ColorParams.
namespace kc = imkern::cuda;
struct Gray {
  static void cpu(const Call& c) { IMKERN_CALL(color_gray, c.op, c.dt, c.sp, c.s, c.dp, c.d); }
  template <int = 0>
  static void cuda(const Call& c, void* st) { kc::color_gray_cuda(c.op, c.dt, c.sp, c.s, c.dp, c.d, st); }
};
struct Channels {
  static void cpu(const Call& c) { IMKERN_CALL(color_channels, c.op, c.dt, c.sp, c.s, c.dp, c.d, c.p); }
  template <int = 0>
  static void cuda(const Call& c, void* st) { kc::color_channels_cuda(c.op, c.dt, c.sp, c.s, c.dp, c.d, c.p, st); }
};
struct Hsv {
  static void cpu(const Call& c) { IMKERN_CALL(color_hsv, c.op, c.dt, c.sp, c.s, c.dp, c.d); }
  template <int = 0>
  static void cuda(const Call& c, void* st) { kc::color_hsv_cuda(c.op, c.dt, c.sp, c.s, c.dp, c.d, st); }
};
struct Ycbcr {
  static void cpu(const Call& c) { IMKERN_CALL(color_ycbcr, c.op, c.dt, c.sp, c.s, c.dp, c.d); }
  template <int = 0>
  static void cuda(const Call& c, void* st) { kc::color_ycbcr_cuda(c.op, c.dt, c.sp, c.s, c.dp, c.d, st); }
};
struct Lab {
  static void cpu(const Call& c) { IMKERN_CALL(color_lab, c.op, c.dt, c.sp, c.s, c.dp, c.d); }
  template <int = 0>
  static void cuda(const Call& c, void* st) { kc::color_lab_cuda(c.op, c.dt, c.sp, c.s, c.dp, c.d, st); }
};

// Calls f(Family{}) with the family that implements op.
template <typename F>
void with_family(ColorOp op, F&& f) {
  switch (op) {
    case ColorOp::rgb_to_gray:
    case ColorOp::bgr_to_gray:
    case ColorOp::gray_to_rgb: f(Gray{}); return;
    case ColorOp::swap_rb:
    case ColorOp::rgba_to_rgb: f(Channels{}); return;
    case ColorOp::rgb_to_hsv:
    case ColorOp::hsv_to_rgb: f(Hsv{}); return;
    case ColorOp::rgb_to_ycbcr:
    case ColorOp::ycbcr_to_rgb: f(Ycbcr{}); return;
    case ColorOp::rgb_to_lab:
    case ColorOp::lab_to_rgb: f(Lab{}); return;
  }
  throw std::invalid_argument("color: unknown op");
}

}  // namespace

IMKERN_BINDINGS(color) {
  // (src, dst, ...) first, as every image kernel: Python passes this binding itself as the kernel
  // of its driver (imkern/_driver.py cpu_image_op), with no Python layer to reorder them.
  def(m, "color_convert", [](const Arr& src, const Arr& dst, int code, bool blend, const std::array<double, 3>& bg) {
    const ColorOp op = op_of(code);
    const DType dt = dtype_of(src, "image");
    if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    check_channels(op, s, d);
    const Call c{op, dt, src.data(), s, writable_data(dst, "out"), d, params_of(blend, bg)};
    with_family(op, [&](auto fam) { decltype(fam)::cpu(c); });
  });

#if defined(IMKERN_WITH_CUDA)
  def(m, "cuda_color_convert", [](int code, int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst,
                                  const ImageDesc& d, bool blend, const std::array<double, 3>& bg, uintptr_t stream) {
    const ColorOp op = op_of(code);
    check_channels(op, s, d);
    const Call c{op, static_cast<DType>(dtype), CudaArg<const void*>::get(src), s, CudaArg<void*>::get(dst), d,
                 params_of(blend, bg)};
    void* st = CudaArg<void*>::get(stream);
    with_family(op, [&](auto fam) { decltype(fam)::cuda(c, st); });
  });
#endif
}
