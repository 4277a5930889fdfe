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

}  // namespace

IMKERN_BINDINGS(color) {
  def(m, "color_convert", [](int code, const Arr& src, const Arr& dst, bool blend, const std::array<double, 3>& bg) {
    const ColorOp op = op_of(code);
    const DType dt = dtype_of(src, "image");
    if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    check_channels(op, s, d);
    const ColorParams p = params_of(blend, bg);
    const void* sp = src.data();
    void* dp = writable_data(dst, "out");
    switch (op) {
      case ColorOp::rgb_to_gray:
      case ColorOp::bgr_to_gray:
      case ColorOp::gray_to_rgb: IMKERN_CALL(color_gray, op, dt, sp, s, dp, d); break;
      case ColorOp::swap_rb:
      case ColorOp::rgba_to_rgb: IMKERN_CALL(color_channels, op, dt, sp, s, dp, d, p); break;
      case ColorOp::rgb_to_hsv:
      case ColorOp::hsv_to_rgb: IMKERN_CALL(color_hsv, op, dt, sp, s, dp, d); break;
      case ColorOp::rgb_to_ycbcr:
      case ColorOp::ycbcr_to_rgb: IMKERN_CALL(color_ycbcr, op, dt, sp, s, dp, d); break;
      case ColorOp::rgb_to_lab:
      case ColorOp::lab_to_rgb: IMKERN_CALL(color_lab, op, dt, sp, s, dp, d); break;
    }
  });

#if defined(IMKERN_WITH_CUDA)
  def(m, "cuda_color_convert", [](int code, int dtype, uintptr_t src, const ImageDesc& s, uintptr_t dst,
                                  const ImageDesc& d, bool blend, const std::array<double, 3>& bg, uintptr_t stream) {
    const ColorOp op = op_of(code);
    check_channels(op, s, d);
    const ColorParams p = params_of(blend, bg);
    const DType dt = static_cast<DType>(dtype);
    const void* sp = CudaArg<const void*>::get(src);
    void* dp = CudaArg<void*>::get(dst);
    void* st = CudaArg<void*>::get(stream);
    namespace kc = imkern::cuda;
    switch (op) {
      case ColorOp::rgb_to_gray:
      case ColorOp::bgr_to_gray:
      case ColorOp::gray_to_rgb: kc::color_gray_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::swap_rb:
      case ColorOp::rgba_to_rgb: kc::color_channels_cuda(op, dt, sp, s, dp, d, p, st); break;
      case ColorOp::rgb_to_hsv:
      case ColorOp::hsv_to_rgb: kc::color_hsv_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::rgb_to_ycbcr:
      case ColorOp::ycbcr_to_rgb: kc::color_ycbcr_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::rgb_to_lab:
      case ColorOp::lab_to_rgb: kc::color_lab_cuda(op, dt, sp, s, dp, d, st); break;
    }
  });
#endif
}
