// Bindings of conv2d / linear (forward, backward) and the GEMM (CPU, NumPy arrays).
// The Python layer (imkern/nn/_conv.py) validates user input and makes C-contiguous copies;
// these checks guard the kernels' assumptions for callers that reach _core directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <tuple>
#include <vector>

#include "arrays.hpp"
#include "imkern/nn.hpp"
#include "imkern/gemm.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;
using imkern::Conv2dShape;

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (int i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// dtype `dt`, C-contiguous, the given shape.
void check(const py::array& a, const char* name, DType dt, const std::vector<int64_t>& shape) {
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from x");
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) throw std::invalid_argument(std::string(name) + ": unexpected shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + ": must be C-contiguous (internal layout error)");
}

const void* opt_data(const py::object& o, const char* name, DType dt, int64_t len) {
  if (o.is_none()) return nullptr;
  py::array a = py::reinterpret_borrow<py::array>(o);
  check(a, name, dt, {len});
  return a.data();
}

template <typename Tup>
std::pair<int64_t, int64_t> pair_of(const Tup& t, const char* name) {
  if (py::len(t) != 2) throw std::invalid_argument(std::string(name) + ": expected 2 integers");
  return {t[0].template cast<int64_t>(), t[1].template cast<int64_t>()};
}

Conv2dShape conv_shape(const py::array& x, const py::array& w, const py::tuple& stride, const py::tuple& padding,
                       const py::tuple& dilation, int64_t groups) {
  if (x.ndim() != 4) throw std::invalid_argument("x: expected (N, C, H, W), got " + shape_str(x));
  if (w.ndim() != 4) throw std::invalid_argument("weight: expected (K, C/groups, R, S), got " + shape_str(w));
  Conv2dShape s;
  s.n = x.shape(0), s.c = x.shape(1), s.h = x.shape(2), s.w = x.shape(3);
  s.k = w.shape(0), s.r = w.shape(2), s.s = w.shape(3);
  s.groups = groups;
  if (groups < 1 || s.c % groups || s.k % groups || w.shape(1) != s.c / groups)
    throw std::invalid_argument("groups: inconsistent with x " + shape_str(x) + " and weight " + shape_str(w));
  std::tie(s.sh, s.sw) = pair_of(stride, "stride");
  std::tie(s.dh, s.dw) = pair_of(dilation, "dilation");
  if (py::len(padding) != 4) throw std::invalid_argument("padding: expected (top, bottom, left, right)");
  s.pt = padding[0].cast<int64_t>(), s.pb = padding[1].cast<int64_t>();
  s.pl = padding[2].cast<int64_t>(), s.pr = padding[3].cast<int64_t>();
  if (s.sh < 1 || s.sw < 1 || s.dh < 1 || s.dw < 1 || s.pt < 0 || s.pb < 0 || s.pl < 0 || s.pr < 0)
    throw std::invalid_argument("stride/dilation must be positive and padding non-negative");
  if (s.r < 1 || s.s < 1) throw std::invalid_argument("weight: empty kernel " + shape_str(w));
  const int64_t eh = s.h + s.pt + s.pb - s.dh * (s.r - 1) - 1, ew = s.w + s.pl + s.pr - s.dw * (s.s - 1) - 1;
  if (eh < 0 || ew < 0) throw std::invalid_argument("kernel larger than the padded input");
  s.oh = eh / s.sh + 1;
  s.ow = ew / s.sw + 1;
  imkern::checked_mul(imkern::checked_mul(s.n, s.k), imkern::checked_mul(s.oh, s.ow));
  return s;
}

// 0: never Winograd, 1: where it is faster (the default), 2: wherever the shape allows (tests).
imkern::ConvWinograd winograd_mode(int v) {
  if (v < 0 || v > 2) throw std::invalid_argument("winograd: expected 0 (off), 1 (auto) or 2 (always)");
  return static_cast<imkern::ConvWinograd>(v);
}

}  // namespace

IMKERN_BINDINGS(nn_conv) {
  m.def("conv2d", [](const py::array& x, const py::array& w, const py::object& bias, py::array& out,
                     const py::tuple& stride, const py::tuple& padding, const py::tuple& dilation, int64_t groups,
                     bool relu, int winograd) {
    const DType dt = float_dtype(x, "x");
    Conv2dShape s = conv_shape(x, w, stride, padding, dilation, groups);
    const imkern::ConvWinograd wg = winograd_mode(winograd);
    check(x, "x", dt, {s.n, s.c, s.h, s.w});
    check(w, "weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(out, "out", dt, {s.n, s.k, s.oh, s.ow});
    const void* b = opt_data(bias, "bias", dt, s.k);
    const void *xp = x.data(), *wp = w.data();
    void* op = writable_data(out, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(conv2d_forward, dt, xp, wp, b, op, s, relu, wg);
  });
  // grad_input None: not computed (the first layer of a network needs no input gradient).
  m.def("conv2d_backward", [](const py::array& go, const py::array& x, const py::array& w, const py::object& gi_obj,
                              py::array& gw, py::array& gb, const py::tuple& stride, const py::tuple& padding,
                              const py::tuple& dilation, int64_t groups, int winograd) {
    const DType dt = float_dtype(x, "x");
    Conv2dShape s = conv_shape(x, w, stride, padding, dilation, groups);
    const imkern::ConvWinograd wg = winograd_mode(winograd);
    check(x, "x", dt, {s.n, s.c, s.h, s.w});
    check(w, "weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(go, "grad_output", dt, {s.n, s.k, s.oh, s.ow});
    py::array gi;
    if (!gi_obj.is_none()) {
      gi = py::reinterpret_borrow<py::array>(gi_obj);
      check(gi, "grad_input", dt, {s.n, s.c, s.h, s.w});
    }
    check(gw, "grad_weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(gb, "grad_bias", dt, {s.k});
    const void *gop = go.data(), *xp = x.data(), *wp = w.data();
    void *gip = gi_obj.is_none() ? nullptr : writable_data(gi, "grad_input"), *gwp = writable_data(gw, "grad_weight"),
         *gbp = writable_data(gb, "grad_bias");
    py::gil_scoped_release nogil;
    IMKERN_CALL(conv2d_backward, dt, gop, xp, wp, gip, gwp, gbp, s, wg);
  });
  m.def("linear", [](const py::array& x, const py::array& w, const py::object& bias, py::array& out) {
    const DType dt = float_dtype(x, "x");
    if (x.ndim() != 2 || w.ndim() != 2 || x.shape(1) != w.shape(1))
      throw std::invalid_argument("linear: x " + shape_str(x) + " and weight " + shape_str(w) + " do not match");
    const int64_t mm = x.shape(0), in = x.shape(1), of = w.shape(0);
    check(x, "x", dt, {mm, in});
    check(w, "weight", dt, {of, in});
    check(out, "out", dt, {mm, of});
    const void* b = opt_data(bias, "bias", dt, of);
    const void *xp = x.data(), *wp = w.data();
    void* op = writable_data(out, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(linear_forward, dt, xp, wp, b, op, mm, in, of);
  });
  m.def("linear_backward", [](const py::array& go, const py::array& x, const py::array& w, py::array& gi,
                              py::array& gw, py::array& gb) {
    const DType dt = float_dtype(x, "x");
    if (x.ndim() != 2 || w.ndim() != 2 || x.shape(1) != w.shape(1))
      throw std::invalid_argument("linear: x " + shape_str(x) + " and weight " + shape_str(w) + " do not match");
    const int64_t mm = x.shape(0), in = x.shape(1), of = w.shape(0);
    check(x, "x", dt, {mm, in});
    check(w, "weight", dt, {of, in});
    check(go, "grad_output", dt, {mm, of});
    check(gi, "grad_input", dt, {mm, in});
    check(gw, "grad_weight", dt, {of, in});
    check(gb, "grad_bias", dt, {of});
    const void *gop = go.data(), *xp = x.data(), *wp = w.data();
    void *gip = writable_data(gi, "grad_input"), *gwp = writable_data(gw, "grad_weight"),
         *gbp = writable_data(gb, "grad_bias");
    py::gil_scoped_release nogil;
    IMKERN_CALL(linear_backward, dt, gop, xp, wp, gip, gwp, gbp, mm, in, of);
  });
  // c = alpha * op(a) @ op(b) + beta * c on 2-D C-contiguous arrays (tests and benchmarks).
  m.def("gemm", [](const py::array& a, const py::array& b, py::array& c, bool trans_a, bool trans_b, double alpha,
                   double beta) {
    const DType dt = float_dtype(a, "a");
    if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2) throw std::invalid_argument("gemm: expected 2-D arrays");
    const int64_t mm = trans_a ? a.shape(1) : a.shape(0), kk = trans_a ? a.shape(0) : a.shape(1);
    const int64_t kb = trans_b ? b.shape(1) : b.shape(0), nn = trans_b ? b.shape(0) : b.shape(1);
    if (kb != kk) throw std::invalid_argument("gemm: inner dimensions differ: " + shape_str(a) + " " + shape_str(b));
    check(a, "a", dt, {a.shape(0), a.shape(1)});
    check(b, "b", dt, {b.shape(0), b.shape(1)});
    check(c, "c", dt, {mm, nn});
    const int64_t lda = a.shape(1), ldb = b.shape(1);
    const void *ap = a.data(), *bp = b.data();
    void* cp = writable_data(c, "c");
    py::gil_scoped_release nogil;
    if (dt == DType::f32)
      IMKERN_CALL(gemm_f32, trans_a, trans_b, mm, nn, kk, float(alpha), static_cast<const float*>(ap), lda,
                  static_cast<const float*>(bp), ldb, float(beta), static_cast<float*>(cp), nn,
                  imkern::GemmEpilogue<float>{});
    else
      IMKERN_CALL(gemm_f64, trans_a, trans_b, mm, nn, kk, alpha, static_cast<const double*>(ap), lda,
                  static_cast<const double*>(bp), ldb, beta, static_cast<double*>(cp), nn,
                  imkern::GemmEpilogue<double>{});
  });
}
