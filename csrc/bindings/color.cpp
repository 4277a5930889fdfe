// Bindings of imkern.color (CPU: NumPy arrays; CUDA: raw pointers from CuPy). The Python
// layer validates the channel counts; these checks only guard the kernels' assumptions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "imkern/color.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;
using imkern::ColorOp;
using imkern::ColorParams;

namespace {

// (C_in, C_out) each op accepts; C_in of gray may be 3 or 4, of swap_rb 3 or 4 (kept).
void check_channels(ColorOp op, int64_t ci, int64_t co) {
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

ColorParams params_of(bool blend, const py::tuple& bg) {
  ColorParams p;
  p.blend = blend;
  if (bg.size() != 3) throw std::invalid_argument("background: expected 3 values");
  for (int c = 0; c < 3; ++c) p.bg[c] = bg[c].cast<double>();
  return p;
}

}  // namespace

IMKERN_BINDINGS(color) {
  m.def("color_convert", [](int code, const py::array& src, py::array& dst, bool blend, const py::tuple& bg) {
    const ColorOp op = op_of(code);
    const DType dt = dtype_of(src, "image");
    if (dtype_of(dst, "out") != dt) throw py::type_error("out: dtype differs from image");
    const ImageDesc s = image_desc(src, "image"), d = image_desc(dst, "out");
    if (s.n != d.n || s.h != d.h || s.w != d.w) throw std::invalid_argument("out: size differs from image");
    check_channels(op, s.c, d.c);
    const ColorParams p = params_of(blend, bg);
    const void* sp = src.data();
    void* dp = writable_data(dst, "out");
    py::gil_scoped_release nogil;
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
  m.def("cuda_color_convert", [](int code, int dtype, uintptr_t src, const py::tuple& sd, uintptr_t dst,
                                 const py::tuple& dd, bool blend, const py::tuple& bg, uintptr_t stream) {
    const ColorOp op = op_of(code);
    const DType dt = static_cast<DType>(dtype);
    const ImageDesc s = desc_from_tuple(sd), d = desc_from_tuple(dd);
    if (s.n != d.n || s.h != d.h || s.w != d.w) throw std::invalid_argument("out: size differs from image");
    check_channels(op, s.c, d.c);
    const ColorParams p = params_of(blend, bg);
    const void* sp = reinterpret_cast<const void*>(src);
    void* dp = reinterpret_cast<void*>(dst);
    void* st = reinterpret_cast<void*>(stream);
    py::gil_scoped_release nogil;
    switch (op) {
      case ColorOp::rgb_to_gray:
      case ColorOp::bgr_to_gray:
      case ColorOp::gray_to_rgb: imkern::cuda::color_gray_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::swap_rb:
      case ColorOp::rgba_to_rgb: imkern::cuda::color_channels_cuda(op, dt, sp, s, dp, d, p, st); break;
      case ColorOp::rgb_to_hsv:
      case ColorOp::hsv_to_rgb: imkern::cuda::color_hsv_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::rgb_to_ycbcr:
      case ColorOp::ycbcr_to_rgb: imkern::cuda::color_ycbcr_cuda(op, dt, sp, s, dp, d, st); break;
      case ColorOp::rgb_to_lab:
      case ColorOp::lab_to_rgb: imkern::cuda::color_lab_cuda(op, dt, sp, s, dp, d, st); break;
    }
  });
#endif
}
