// Bindings of the nn family (csrc/include/imkern/nn.hpp), CPU and CUDA side by side, through
// the helpers of bind.hpp (the GIL is released by def / def_cuda). CPU: NumPy arrays,
// C-contiguous (the Python layer, python/imkern/nn/_<op>.py, validates and copies; the
// checks here only assert the kernels' assumptions). CUDA: device pointers, sizes, the
// shared descriptors (_core.Conv2dShape, _core.Pool2dShape) and the caller's stream.
#include <initializer_list>
#include <string>

#include "bind.hpp"
#include "imkern/nn.hpp"
#include "registry.hpp"

using namespace imkern_py;
using imkern::Activation;
using imkern::Conv2dShape;
using imkern::Pool2dShape;
using imkern::Reduction;

namespace {

// dtype dt, C-contiguous, the given shape.
void check(const Arr& a, const char* name, DType dt, std::initializer_list<int64_t> shape) {
  in_ptr(a, name, dt);
  if (!std::equal(a.shp.begin(), a.shp.end(), shape.begin(), shape.end()))
    throw std::invalid_argument(std::string(name) + ": unexpected shape " + shape_str(a));
}

// The descriptor Python built (imkern/nn/_conv2d.py) is self-consistent.
void check_conv(const Conv2dShape& s) {
  if (s.groups < 1 || s.c % s.groups || s.k % s.groups || s.r < 1 || s.s < 1)
    throw std::invalid_argument("conv2d: inconsistent channels, groups or kernel size");
  if (s.sh < 1 || s.sw < 1 || s.dh < 1 || s.dw < 1 || s.pt < 0 || s.pb < 0 || s.pl < 0 || s.pr < 0)
    throw std::invalid_argument("conv2d: stride/dilation must be positive and padding non-negative");
  const int64_t eh = s.h + s.pt + s.pb - s.dh * (s.r - 1) - 1, ew = s.w + s.pl + s.pr - s.dw * (s.s - 1) - 1;
  if (eh < 0 || ew < 0 || s.oh != eh / s.sh + 1 || s.ow != ew / s.sw + 1)
    throw std::invalid_argument("conv2d: output size differs from the shape formula");
  imkern::checked_mul(imkern::checked_mul(s.n, s.k), imkern::checked_mul(s.oh, s.ow));
}

// 0: never Winograd, 1: where it is faster (the default), 2: wherever the shape allows (tests).
imkern::ConvWinograd winograd_mode(int v) {
  if (v < 0 || v > 2) throw std::invalid_argument("winograd: expected 0 (off), 1 (auto) or 2 (always)");
  return static_cast<imkern::ConvWinograd>(v);
}

void check_linear(const Arr& x, const Arr& w) {
  if (x.ndim() != 2 || w.ndim() != 2 || x.shape(1) != w.shape(1))
    throw std::invalid_argument("linear: x " + shape_str(x) + " and weight " + shape_str(w) + " do not match");
}

// input (N, C, h, w) and output (N, C, oh, ow) of dtype dt against the pooling descriptor;
// `windows`: every window starts inside the padded input.
DType check_pool(const Arr& in, const char* in_name, const Arr& out, const char* out_name, const Pool2dShape& p,
                 bool windows) {
  const DType dt = float_dtype(in, in_name);
  in_ptr(in, in_name, dt);
  in_ptr(out, out_name, dt);
  if (in.ndim() != 4 || out.ndim() != 4 || in.shape(0) != out.shape(0) || in.shape(1) != out.shape(1) ||
      in.shape(0) * in.shape(1) != p.planes || in.shape(2) != p.h || in.shape(3) != p.w || out.shape(2) != p.oh ||
      out.shape(3) != p.ow)
    throw std::invalid_argument(std::string(out_name) + ": shapes " + shape_str(in) + ", " + shape_str(out) +
                                " differ from the pooling descriptor");
  if (windows) {
    if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
      throw std::invalid_argument("pooling: kernel, stride, dilation must be positive and padding >= 0");
    if ((p.oh > 0 && (p.oh - 1) * p.sh - p.ph >= p.h + p.ph) || (p.ow > 0 && (p.ow - 1) * p.sw - p.pw >= p.w + p.pw))
      throw std::invalid_argument(std::string(out_name) + ": too many rows or columns");
  } else if (p.oh < 1 || p.ow < 1) {
    throw std::invalid_argument(std::string(out_name) + ": bad shape");
  }
  return dt;
}

// Every target is a class or ignore_index: the kernels index the logits with it. This is the
// check NumPy callers get (the Python wrapper leaves it here: one pass over the targets, where
// NumPy's took four, ~30 us for 4096 targets after the logits had flushed the caches), so it
// names the first bad value as the CuPy path's Python check does.
const int64_t* targets(const Arr& t, int64_t n, int64_t c, int64_t s, int64_t ignore_index) {
  const int64_t* tp = index_ptr(t, "target");
  expect_size(t, n * s, "target");
  bool bad = false;
  for (int64_t i = 0; i < n * s; ++i) bad |= tp[i] != ignore_index && static_cast<uint64_t>(tp[i]) >= static_cast<uint64_t>(c);
  if (bad)
    for (int64_t i = 0; i < n * s; ++i)
      if (tp[i] != ignore_index && (tp[i] < 0 || tp[i] >= c))
        throw std::invalid_argument("target: class index " + std::to_string(tp[i]) + " is outside [0, " +
                                    std::to_string(c) + ") and is not ignore_index=" + std::to_string(ignore_index));
  return tp;
}

// (N, C, HW) of a 4-D C-contiguous float array.
DType nchw(const Arr& x, const char* name, int64_t& n, int64_t& c, int64_t& hw) {
  const DType dt = float_dtype(x, name);
  in_ptr(x, name, dt);
  if (x.ndim() != 4) throw std::invalid_argument(std::string(name) + ": expected 4 dimensions (N, C, H, W)");
  n = x.shape(0), c = x.shape(1), hw = x.shape(2) * x.shape(3);
  return dt;
}

// A per-channel float64 vector of c values: optional (null), read-only or writeable.
const double* channel_in(const Arr& a, int64_t c, const char* name) {
  return static_cast<const double*>(opt_ptr(a, DType::f64, c, name));
}
double* channel_out(const Arr& a, int64_t c, const char* name) {
  if (a.is_none()) return nullptr;
  channel_in(a, c, name);
  return static_cast<double*>(writable_data(a, name));
}

}  // namespace

IMKERN_BINDINGS(nn) {
  // ---- conv2d, linear, GEMM -------------------------------------------------------------------
  def(m, "conv2d", [](const Arr& x, const Arr& w, const Arr& bias, const Arr& out, const Conv2dShape& s, bool relu,
                      int winograd) {
    const DType dt = float_dtype(x, "x");
    check_conv(s);
    check(x, "x", dt, {s.n, s.c, s.h, s.w});
    check(w, "weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(out, "out", dt, {s.n, s.k, s.oh, s.ow});
    IMKERN_CALL(conv2d_forward, dt, x.data(), w.data(), opt_ptr(bias, dt, s.k, "bias"), writable_data(out, "out"), s,
                relu, winograd_mode(winograd));
  });
  def(m, "conv2d_backward", [](const Arr& go, const Arr& x, const Arr& w, const Arr& gi, const Arr& gw, const Arr& gb,
                               const Conv2dShape& s, int winograd) {
    const DType dt = float_dtype(x, "x");
    check_conv(s);
    check(x, "x", dt, {s.n, s.c, s.h, s.w});
    check(w, "weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(go, "grad_output", dt, {s.n, s.k, s.oh, s.ow});
    // grad_input None: not computed (the first layer of a network needs no input gradient).
    if (!gi.is_none()) check(gi, "grad_input", dt, {s.n, s.c, s.h, s.w});
    check(gw, "grad_weight", dt, {s.k, s.c / s.groups, s.r, s.s});
    check(gb, "grad_bias", dt, {s.k});
    IMKERN_CALL(conv2d_backward, dt, go.data(), x.data(), w.data(),
                gi.is_none() ? nullptr : writable_data(gi, "grad_input"),
                writable_data(gw, "grad_weight"), writable_data(gb, "grad_bias"), s, winograd_mode(winograd));
  });
  def(m, "linear", [](const Arr& x, const Arr& w, const Arr& bias, const Arr& out) {
    const DType dt = float_dtype(x, "x");
    check_linear(x, w);
    const int64_t mm = x.shape(0), in = x.shape(1), of = w.shape(0);
    check(x, "x", dt, {mm, in});
    check(w, "weight", dt, {of, in});
    check(out, "out", dt, {mm, of});
    IMKERN_CALL(linear_forward, dt, x.data(), w.data(), opt_ptr(bias, dt, of, "bias"), writable_data(out, "out"), mm,
                in, of);
  });
  def(m, "linear_backward", [](const Arr& go, const Arr& x, const Arr& w, const Arr& gi, const Arr& gw, const Arr& gb) {
    const DType dt = float_dtype(x, "x");
    check_linear(x, w);
    const int64_t mm = x.shape(0), in = x.shape(1), of = w.shape(0);
    check(x, "x", dt, {mm, in});
    check(w, "weight", dt, {of, in});
    check(go, "grad_output", dt, {mm, of});
    check(gi, "grad_input", dt, {mm, in});
    check(gw, "grad_weight", dt, {of, in});
    check(gb, "grad_bias", dt, {of});
    IMKERN_CALL(linear_backward, dt, go.data(), x.data(), w.data(), writable_data(gi, "grad_input"),
                writable_data(gw, "grad_weight"), writable_data(gb, "grad_bias"), mm, in, of);
  });
  // c = alpha * op(a) @ op(b) + beta * c on 2-D C-contiguous arrays (tests and benchmarks).
  def(m, "gemm", [](const Arr& a, const Arr& b, const Arr& c, bool trans_a, bool trans_b, double alpha, double beta) {
    const DType dt = float_dtype(a, "a");
    if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2) throw std::invalid_argument("gemm: expected 2-D arrays");
    const int64_t mm = trans_a ? a.shape(1) : a.shape(0), kk = trans_a ? a.shape(0) : a.shape(1);
    const int64_t kb = trans_b ? b.shape(1) : b.shape(0), nn = trans_b ? b.shape(0) : b.shape(1);
    if (kb != kk) throw std::invalid_argument("gemm: inner dimensions differ: " + shape_str(a) + " " + shape_str(b));
    check(a, "a", dt, {a.shape(0), a.shape(1)});
    check(b, "b", dt, {b.shape(0), b.shape(1)});
    check(c, "c", dt, {mm, nn});
    void* cp = writable_data(c, "c");
    if (dt == DType::f32)
      IMKERN_CALL(gemm_f32, trans_a, trans_b, mm, nn, kk, float(alpha), static_cast<const float*>(a.data()),
                  a.shape(1), static_cast<const float*>(b.data()), b.shape(1), float(beta), static_cast<float*>(cp), nn,
                  imkern::GemmEpilogue<float>{});
    else
      IMKERN_CALL(gemm_f64, trans_a, trans_b, mm, nn, kk, alpha, static_cast<const double*>(a.data()), a.shape(1),
                  static_cast<const double*>(b.data()), b.shape(1), beta, static_cast<double*>(cp), nn,
                  imkern::GemmEpilogue<double>{});
  });

  // ---- pooling ---------------------------------------------------------------------------------
  def(m, "max_pool2d", [](const Arr& x, const Arr& y, const Arr& indices, const Pool2dShape& p) {
    const DType dt = check_pool(x, "input", y, "out", p, true);
    int64_t* ip = nullptr;
    if (!indices.is_none()) {
      ip = const_cast<int64_t*>(index_ptr(indices, "indices"));
      writable_data(indices, "indices");
      expect_size(indices, y.size(), "indices");
    }
    IMKERN_CALL(max_pool2d, dt, x.data(), writable_data(y, "out"), ip, p);
  });
  def(m, "max_pool2d_backward", [](const Arr& gy, const Arr& indices, const Arr& gx, const Pool2dShape& p) {
    const DType dt = check_pool(gx, "grad_input", gy, "grad_output", p, false);
    expect_size(indices, gy.size(), "indices");
    IMKERN_CALL(max_pool2d_backward, dt, gy.data(), index_ptr(indices, "indices"), writable_data(gx, "grad_input"), p);
  });
  def(m, "avg_pool2d", [](const Arr& x, const Arr& y, const Pool2dShape& p, bool cip, int64_t dov) {
    const DType dt = check_pool(x, "input", y, "out", p, true);
    IMKERN_CALL(avg_pool2d, dt, x.data(), writable_data(y, "out"), p, cip, dov);
  });
  def(m, "avg_pool2d_backward", [](const Arr& gy, const Arr& gx, const Pool2dShape& p, bool cip, int64_t dov) {
    const DType dt = check_pool(gx, "grad_input", gy, "grad_output", p, true);
    IMKERN_CALL(avg_pool2d_backward, dt, gy.data(), writable_data(gx, "grad_input"), p, cip, dov);
  });
  def(m, "adaptive_avg_pool2d", [](const Arr& x, const Arr& y, const Pool2dShape& p) {
    const DType dt = check_pool(x, "input", y, "out", p, false);
    IMKERN_CALL(adaptive_avg_pool2d, dt, x.data(), writable_data(y, "out"), p);
  });
  def(m, "adaptive_avg_pool2d_backward", [](const Arr& gy, const Arr& gx, const Pool2dShape& p) {
    const DType dt = check_pool(gx, "grad_input", gy, "grad_output", p, false);
    IMKERN_CALL(adaptive_avg_pool2d_backward, dt, gy.data(), writable_data(gx, "grad_input"), p);
  });

  // ---- activations, softmax, cross entropy ----------------------------------------------------
  def(m, "activation", [](Activation a, const Arr& x, const Arr& y, double slope) {
    const DType dt = float_dtype(x, "input");
    in_ptr(x, "input", dt);
    expect_size(y, x.size(), "out");
    IMKERN_CALL(activation, dt, a, x.data(), out_ptr(y, "out", dt), x.size(), slope);
  });
  def(m, "activation_backward", [](Activation a, const Arr& gy, const Arr& x, const Arr& y, const Arr& gx,
                                   double slope) {
    const DType dt = float_dtype(gy, "grad_output");
    const int64_t n = gy.size();
    in_ptr(gy, "grad_output", dt);
    expect_size(gx, n, "out");
    const void* xp = x.is_none() ? nullptr : (expect_size(x, n, "x"), in_ptr(x, "x", dt));
    const void* yp = y.is_none() ? nullptr : (expect_size(y, n, "y"), in_ptr(y, "y", dt));
    const bool needs_y = a == Activation::sigmoid || a == Activation::tanh;
    if ((needs_y ? yp : xp) == nullptr) throw std::invalid_argument(needs_y ? "y: required" : "x: required");
    IMKERN_CALL(activation_backward, dt, a, gy.data(), xp, yp, out_ptr(gx, "out", dt), n, slope);
  });
  def(m, "softmax", [](const Arr& x, const Arr& y, int64_t outer, int64_t c, int64_t inner, bool log) {
    const DType dt = float_dtype(x, "input");
    if (outer < 0 || c < 1 || inner < 1) throw std::invalid_argument("softmax: bad dimensions");
    expect_size(x, outer * c * inner, "input");
    expect_size(y, outer * c * inner, "out");
    IMKERN_CALL(softmax, dt, in_ptr(x, "input", dt), out_ptr(y, "out", dt), outer, c, inner, log);
  });
  def(m, "cross_entropy", [](const Arr& logits, const Arr& target, const Arr& loss, int64_t n, int64_t c, int64_t s,
                             int64_t ignore_index, double eps, Reduction r) {
    const DType dt = float_dtype(logits, "logits");
    if (n < 0 || c < 1 || s < 0) throw std::invalid_argument("cross_entropy: bad dimensions");
    expect_size(logits, n * c * s, "logits");
    const int64_t* tp = targets(target, n, c, s, ignore_index);
    void* lp = nullptr;
    if (r == Reduction::none) {
      if (loss.is_none()) throw std::invalid_argument("loss: required for reduction='none'");
      expect_size(loss, n * s, "out");
      lp = out_ptr(loss, "out", dt);
    }
    return IMKERN_CALL(cross_entropy, dt, in_ptr(logits, "logits", dt), tp, lp, n, c, s, ignore_index, eps, r);
  });
  def(m, "cross_entropy_backward", [](const Arr& logits, const Arr& target, const Arr& grad, int64_t n, int64_t c,
                                      int64_t s, int64_t ignore_index, double eps, Reduction r) {
    const DType dt = float_dtype(logits, "logits");
    if (n < 0 || c < 1 || s < 0) throw std::invalid_argument("cross_entropy: bad dimensions");
    expect_size(logits, n * c * s, "logits");
    expect_size(grad, n * c * s, "out");
    const int64_t* tp = targets(target, n, c, s, ignore_index);
    IMKERN_CALL(cross_entropy_backward, dt, in_ptr(logits, "logits", dt), tp, out_ptr(grad, "out", dt), n, c, s,
                ignore_index, eps, r);
  });

  // ---- batch norm (the fused steps of batch_norm2d_cuda); per-channel vectors float64 (C,) --
  def(m, "batch_norm2d", [](const Arr& x, const Arr& weight, const Arr& bias, const Arr& running_mean,
                            const Arr& running_var, bool training, double momentum, double eps, const Arr& y) {
    int64_t n, c, hw;
    const DType dt = nchw(x, "input", n, c, hw);
    expect_size(y, x.size(), "out");
    double* rm = training ? channel_out(running_mean, c, "running_mean")
                          : const_cast<double*>(channel_in(running_mean, c, "running_mean"));
    double* rv = training ? channel_out(running_var, c, "running_var")
                          : const_cast<double*>(channel_in(running_var, c, "running_var"));
    IMKERN_CALL(batch_norm2d, dt, n, c, hw, x.data(), channel_in(weight, c, "weight"), channel_in(bias, c, "bias"), rm,
                rv, training, momentum, eps, out_ptr(y, "out", dt));
  });
  def(m, "batch_norm2d_backward", [](const Arr& gy, const Arr& x, const Arr& weight, const Arr& running_mean,
                                     const Arr& running_var, bool training, double eps, const Arr& gx, const Arr& gw,
                                     const Arr& gb) {
    int64_t n, c, hw;
    const DType dt = nchw(x, "input", n, c, hw);
    expect_size(gy, x.size(), "grad_output");
    expect_size(gx, x.size(), "grad_input");
    IMKERN_CALL(batch_norm2d_backward, dt, n, c, hw, in_ptr(gy, "grad_output", dt), x.data(),
                channel_in(weight, c, "weight"), channel_in(running_mean, c, "running_mean"),
                channel_in(running_var, c, "running_var"), training, eps, out_ptr(gx, "grad_input", dt),
                channel_out(gw, c, "grad_weight"), channel_out(gb, c, "grad_bias"));
  });

  // ---- dropout ---------------------------------------------------------------------------------
  def(m, "dropout", [](const Arr& x, const Arr& y, uint64_t seed, double p) {
    const DType dt = float_dtype(x, "input");
    expect_size(y, x.size(), "out");
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("p: expected a probability in [0, 1]");
    IMKERN_CALL(dropout, dt, in_ptr(x, "input", dt), out_ptr(y, "out", dt), x.size(), seed, p);
  });

#if defined(IMKERN_WITH_CUDA)
  // ---- CUDA: the launchers as they are (float32, float16, bfloat16; the launchers check) -------
  namespace ic = imkern::cuda;
  def_cuda(m, "cuda_gemm", &ic::gemm_cuda);
  def_cuda(m, "cuda_linear", &ic::linear_forward_cuda);
  def_cuda(m, "cuda_linear_backward", &ic::linear_backward_cuda);
  def_cuda(m, "cuda_conv2d", &ic::conv2d_forward_cuda);
  def_cuda(m, "cuda_conv2d_backward_data", &ic::conv2d_backward_data_cuda);
  def_cuda(m, "cuda_conv2d_backward_weight", &ic::conv2d_backward_weight_cuda);
  def_cuda(m, "cuda_channel_sum", &ic::channel_sum_cuda);
  def_cuda(m, "cuda_max_pool2d", &ic::max_pool2d_cuda);
  def_cuda(m, "cuda_max_pool2d_backward", &ic::max_pool2d_backward_cuda);
  def_cuda(m, "cuda_avg_pool2d", &ic::avg_pool2d_cuda);
  def_cuda(m, "cuda_avg_pool2d_backward", &ic::avg_pool2d_backward_cuda);
  def_cuda(m, "cuda_adaptive_avg_pool2d", &ic::adaptive_avg_pool2d_cuda);
  def_cuda(m, "cuda_adaptive_avg_pool2d_backward", &ic::adaptive_avg_pool2d_backward_cuda);
  def_cuda(m, "cuda_activation", &ic::activation_cuda);
  def_cuda(m, "cuda_activation_backward", &ic::activation_backward_cuda);
  def_cuda(m, "cuda_softmax", &ic::softmax_cuda);
  def_cuda(m, "cuda_cross_entropy", &ic::cross_entropy_cuda);
  def_cuda(m, "cuda_cross_entropy_backward", &ic::cross_entropy_backward_cuda);
  def_cuda(m, "cuda_batch_norm2d", &ic::batch_norm2d_cuda);
  def_cuda(m, "cuda_batch_norm2d_backward", &ic::batch_norm2d_backward_cuda);
  def_cuda(m, "cuda_dropout", &ic::dropout_cuda);
#endif
}
