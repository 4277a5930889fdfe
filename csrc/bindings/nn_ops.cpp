// Bindings of the non-GEMM nn ops (CPU, NumPy arrays). The Python layer (imkern.nn._pool2d,
// _activations, _softmax, _cross_entropy, _batch_norm, _dropout) validates arguments and passes C-contiguous arrays; the checks here guard the
// kernels' assumptions for callers that reach _core directly (TypeError / ValueError, never a
// crash). The GIL is released around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "imkern/nn.hpp"
#include "registry.hpp"

namespace py = pybind11;
using namespace imkern_py;
using imkern::Activation;
using imkern::Pool2dShape;
using imkern::Reduction;

namespace {

void check_contig(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + ": must be C-contiguous (internal layout error)");
}

const void* in_ptr(const py::array& a, DType dt, const char* name) {
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from the input");
  check_contig(a, name);
  return a.data();
}

void* out_ptr(py::array& a, DType dt, const char* name) {
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from the input");
  check_contig(a, name);
  return writable_data(a, name);
}

const int64_t* index_ptr(const py::array& a, const char* name) {
  if (a.dtype().kind() != 'i' || a.dtype().itemsize() != 8)
    throw py::type_error(std::string(name) + ": expected int64");
  check_contig(a, name);
  return static_cast<const int64_t*>(a.data());
}

void expect_size(const py::array& a, int64_t n, const char* name) {
  if (static_cast<int64_t>(a.size()) != n)
    throw std::invalid_argument(std::string(name) + ": has " + std::to_string(a.size()) + " elements, expected " +
                                std::to_string(n));
}

// (n, c, h, w) of a 4-D array.
void nchw(const py::array& a, const char* name, int64_t& n, int64_t& c, int64_t& h, int64_t& w) {
  if (a.ndim() != 4) throw std::invalid_argument(std::string(name) + ": expected 4 dimensions (N, C, H, W)");
  n = a.shape(0), c = a.shape(1), h = a.shape(2), w = a.shape(3);
}

Pool2dShape pool_of(const py::array& x, const py::array& y, py::tuple k, py::tuple s, py::tuple pd, py::tuple d) {
  int64_t n, c, h, w, n2, c2, oh, ow;
  nchw(x, "input", n, c, h, w);
  nchw(y, "output", n2, c2, oh, ow);
  if (n != n2 || c != c2) throw std::invalid_argument("output: N, C differ from the input");
  Pool2dShape p;
  p.planes = n * c, p.h = h, p.w = w, p.oh = oh, p.ow = ow;
  p.kh = k[0].cast<int>(), p.kw = k[1].cast<int>();
  p.sh = s[0].cast<int>(), p.sw = s[1].cast<int>();
  p.ph = pd[0].cast<int>(), p.pw = pd[1].cast<int>();
  p.dh = d[0].cast<int>(), p.dw = d[1].cast<int>();
  if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
    throw std::invalid_argument("pooling: kernel, stride, dilation must be positive and padding >= 0");
  // Every window must start inside the padded input (the Python layer computes the shapes).
  if (oh > 0 && (oh - 1) * p.sh - p.ph >= h + p.ph) throw std::invalid_argument("output: too many rows");
  if (ow > 0 && (ow - 1) * p.sw - p.pw >= w + p.pw) throw std::invalid_argument("output: too many columns");
  return p;
}

std::vector<double> vec_of(const py::array_t<double, py::array::c_style | py::array::forcecast>& a, int64_t n,
                           const char* name) {
  if (static_cast<int64_t>(a.size()) != n) throw std::invalid_argument(std::string(name) + ": wrong length");
  return std::vector<double>(a.data(), a.data() + n);
}

}  // namespace

IMKERN_BINDINGS(nn_ops) {
  m.def("max_pool2d", [](const py::array& x, py::array& y, py::object indices, py::tuple k, py::tuple s,
                         py::tuple pd, py::tuple d) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    Pool2dShape p = pool_of(x, y, k, s, pd, d);
    int64_t* ip = nullptr;
    if (!indices.is_none()) {
      py::array ia = indices.cast<py::array>();
      ip = const_cast<int64_t*>(index_ptr(ia, "indices"));
      writable_data(ia, "indices");
      expect_size(ia, static_cast<int64_t>(y.size()), "indices");
    }
    py::gil_scoped_release nogil;
    IMKERN_CALL(max_pool2d, dt, xp, yp, ip, p);
  });
  m.def("max_pool2d_backward", [](const py::array& gy, const py::array& indices, py::array& gx) {
    const DType dt = float_dtype(gy, "grad_output");
    const void* gp = in_ptr(gy, dt, "grad_output");
    void* op = out_ptr(gx, dt, "grad_input");
    const int64_t* ip = index_ptr(indices, "indices");
    expect_size(indices, static_cast<int64_t>(gy.size()), "indices");
    int64_t n, c, h, w, n2, c2, oh, ow;
    nchw(gx, "grad_input", n, c, h, w);
    nchw(gy, "grad_output", n2, c2, oh, ow);
    if (n != n2 || c != c2) throw std::invalid_argument("grad_output: N, C differ from input_shape");
    Pool2dShape p;
    p.planes = n * c, p.h = h, p.w = w, p.oh = oh, p.ow = ow;
    py::gil_scoped_release nogil;
    IMKERN_CALL(max_pool2d_backward, dt, gp, ip, op, p);
  });
  m.def("avg_pool2d", [](const py::array& x, py::array& y, py::tuple k, py::tuple s, py::tuple pd,
                         bool cip, int64_t dov) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    Pool2dShape p = pool_of(x, y, k, s, pd, py::make_tuple(1, 1));
    py::gil_scoped_release nogil;
    IMKERN_CALL(avg_pool2d, dt, xp, yp, p, cip, dov);
  });
  m.def("avg_pool2d_backward", [](const py::array& gy, py::array& gx, py::tuple k, py::tuple s, py::tuple pd,
                                  bool cip, int64_t dov) {
    const DType dt = float_dtype(gy, "grad_output");
    const void* gp = in_ptr(gy, dt, "grad_output");
    void* op = out_ptr(gx, dt, "grad_input");
    Pool2dShape p = pool_of(gx, gy, k, s, pd, py::make_tuple(1, 1));
    py::gil_scoped_release nogil;
    IMKERN_CALL(avg_pool2d_backward, dt, gp, op, p, cip, dov);
  });
  m.def("adaptive_avg_pool2d", [](const py::array& x, py::array& y) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    int64_t n, c, h, w, n2, c2, oh, ow;
    nchw(x, "input", n, c, h, w);
    nchw(y, "out", n2, c2, oh, ow);
    if (n != n2 || c != c2 || oh < 1 || ow < 1) throw std::invalid_argument("out: bad shape");
    py::gil_scoped_release nogil;
    IMKERN_CALL(adaptive_avg_pool2d, dt, xp, yp, n * c, h, w, oh, ow);
  });
  m.def("adaptive_avg_pool2d_backward", [](const py::array& gy, py::array& gx) {
    const DType dt = float_dtype(gy, "grad_output");
    const void* gp = in_ptr(gy, dt, "grad_output");
    void* op = out_ptr(gx, dt, "grad_input");
    int64_t n, c, h, w, n2, c2, oh, ow;
    nchw(gx, "grad_input", n, c, h, w);
    nchw(gy, "grad_output", n2, c2, oh, ow);
    if (n != n2 || c != c2 || oh < 1 || ow < 1) throw std::invalid_argument("grad_output: bad shape");
    py::gil_scoped_release nogil;
    IMKERN_CALL(adaptive_avg_pool2d_backward, dt, gp, op, n * c, h, w, oh, ow);
  });

  m.def("activation", [](Activation a, const py::array& x, py::array& y, double slope) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    expect_size(y, static_cast<int64_t>(x.size()), "out");
    const int64_t n = static_cast<int64_t>(x.size());
    py::gil_scoped_release nogil;
    IMKERN_CALL(activation, dt, a, xp, yp, n, slope);
  });
  m.def("activation_backward", [](Activation a, const py::array& gy, py::object x, py::object y,
                                  py::array& gx, double slope) {
    const DType dt = float_dtype(gy, "grad_output");
    const void* gp = in_ptr(gy, dt, "grad_output");
    void* op = out_ptr(gx, dt, "out");
    const int64_t n = static_cast<int64_t>(gy.size());
    expect_size(gx, n, "out");
    const void* xp = nullptr;
    const void* yp = nullptr;
    py::array xa, ya;
    if (!x.is_none()) {
      xa = x.cast<py::array>();
      xp = in_ptr(xa, dt, "x");
      expect_size(xa, n, "x");
    }
    if (!y.is_none()) {
      ya = y.cast<py::array>();
      yp = in_ptr(ya, dt, "y");
      expect_size(ya, n, "y");
    }
    const bool needs_y = a == Activation::sigmoid || a == Activation::tanh;
    if ((needs_y ? yp : xp) == nullptr) throw std::invalid_argument(needs_y ? "y: required" : "x: required");
    py::gil_scoped_release nogil;
    IMKERN_CALL(activation_backward, dt, a, gp, xp, yp, op, n, slope);
  });
  m.def("softmax", [](const py::array& x, py::array& y, int64_t outer, int64_t c, int64_t inner, bool log) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    if (outer < 0 || c < 1 || inner < 1) throw std::invalid_argument("softmax: bad dimensions");
    expect_size(x, outer * c * inner, "input");
    expect_size(y, outer * c * inner, "out");
    py::gil_scoped_release nogil;
    IMKERN_CALL(softmax, dt, xp, yp, outer, c, inner, log);
  });
  m.def("cross_entropy", [](const py::array& logits, const py::array& target, py::object loss, int64_t n,
                            int64_t c, int64_t s, int64_t ignore_index, double eps, Reduction r) {
    const DType dt = float_dtype(logits, "logits");
    const void* xp = in_ptr(logits, dt, "logits");
    const int64_t* tp = index_ptr(target, "target");
    if (n < 0 || c < 1 || s < 0) throw std::invalid_argument("cross_entropy: bad dimensions");
    expect_size(logits, n * c * s, "logits");
    expect_size(target, n * s, "target");
    // Every target must be a class or ignore_index: the kernel indexes logits with it.
    for (int64_t i = 0; i < n * s; ++i)
      if (tp[i] != ignore_index && (tp[i] < 0 || tp[i] >= c))
        throw std::invalid_argument("target: class index out of range [0, C)");
    void* lp = nullptr;
    py::array la;
    if (r == Reduction::none) {
      if (loss.is_none()) throw std::invalid_argument("loss: required for reduction='none'");
      la = loss.cast<py::array>();
      lp = out_ptr(la, dt, "out");
      expect_size(la, n * s, "out");
    }
    py::gil_scoped_release nogil;
    return IMKERN_CALL(cross_entropy, dt, xp, tp, lp, n, c, s, ignore_index, eps, r);
  });
  m.def("cross_entropy_backward", [](const py::array& logits, const py::array& target, py::array& grad,
                                     int64_t n, int64_t c, int64_t s, int64_t ignore_index, double eps,
                                     Reduction r) {
    const DType dt = float_dtype(logits, "logits");
    const void* xp = in_ptr(logits, dt, "logits");
    const int64_t* tp = index_ptr(target, "target");
    void* gp = out_ptr(grad, dt, "out");
    if (n < 0 || c < 1 || s < 0) throw std::invalid_argument("cross_entropy: bad dimensions");
    expect_size(logits, n * c * s, "logits");
    expect_size(grad, n * c * s, "out");
    expect_size(target, n * s, "target");
    for (int64_t i = 0; i < n * s; ++i)
      if (tp[i] != ignore_index && (tp[i] < 0 || tp[i] >= c))
        throw std::invalid_argument("target: class index out of range [0, C)");
    py::gil_scoped_release nogil;
    IMKERN_CALL(cross_entropy_backward, dt, xp, tp, gp, n, c, s, ignore_index, eps, r);
  });

  // Batch norm primitives; x is (N, C, H, W) C-contiguous. Per-channel vectors are float64.
  m.def("batch_norm_stats", [](const py::array& x) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    int64_t n, c, h, w;
    nchw(x, "input", n, c, h, w);
    py::array_t<double> mean(c), var(c);
    double* mp = mean.mutable_data();
    double* vp = var.mutable_data();
    {
      py::gil_scoped_release nogil;
      if (n * h * w > 0) IMKERN_CALL(batch_norm_stats, dt, xp, n, c, h * w, mp, vp);
    }
    return py::make_tuple(mean, var);
  });
  m.def("batch_norm_apply", [](const py::array& x, py::array& y,
                               const py::array_t<double, py::array::c_style | py::array::forcecast>& mean,
                               const py::array_t<double, py::array::c_style | py::array::forcecast>& scale,
                               const py::array_t<double, py::array::c_style | py::array::forcecast>& shift) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    int64_t n, c, h, w;
    nchw(x, "input", n, c, h, w);
    expect_size(y, static_cast<int64_t>(x.size()), "out");
    auto mu = vec_of(mean, c, "mean"), a = vec_of(scale, c, "scale"), b = vec_of(shift, c, "shift");
    py::gil_scoped_release nogil;
    IMKERN_CALL(batch_norm_apply, dt, xp, yp, n, c, h * w, mu.data(), a.data(), b.data());
  });
  m.def("batch_norm_backward_reduce",
        [](const py::array& gy, const py::array& x,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& mean) {
          const DType dt = float_dtype(x, "input");
          const void* xp = in_ptr(x, dt, "input");
          const void* gp = in_ptr(gy, dt, "grad_output");
          int64_t n, c, h, w;
          nchw(x, "input", n, c, h, w);
          expect_size(gy, static_cast<int64_t>(x.size()), "grad_output");
          auto mu = vec_of(mean, c, "mean");
          py::array_t<double> s1(c), s2(c);
          double* p1 = s1.mutable_data();
          double* p2 = s2.mutable_data();
          {
            py::gil_scoped_release nogil;
            if (n * h * w > 0) {
              IMKERN_CALL(batch_norm_backward_reduce, dt, gp, xp, n, c, h * w, mu.data(), p1, p2);
            } else {
              for (int64_t i = 0; i < c; ++i) p1[i] = p2[i] = 0.0;
            }
          }
          return py::make_tuple(s1, s2);
        });
  m.def("batch_norm_backward_input",
        [](const py::array& gy, const py::array& x, py::array& gx,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& k,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& mgy,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& mean,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& q) {
          const DType dt = float_dtype(x, "input");
          const void* xp = in_ptr(x, dt, "input");
          const void* gp = in_ptr(gy, dt, "grad_output");
          void* op = out_ptr(gx, dt, "out");
          int64_t n, c, h, w;
          nchw(x, "input", n, c, h, w);
          expect_size(gy, static_cast<int64_t>(x.size()), "grad_output");
          expect_size(gx, static_cast<int64_t>(x.size()), "out");
          auto kv = vec_of(k, c, "k"), mv = vec_of(mgy, c, "mgy"), uv = vec_of(mean, c, "mean"), qv = vec_of(q, c, "q");
          py::gil_scoped_release nogil;
          IMKERN_CALL(batch_norm_backward_input, dt, gp, xp, op, n, c, h * w, kv.data(), mv.data(), uv.data(),
                      qv.data());
        });
  m.def("dropout", [](const py::array& x, py::array& y, uint64_t seed, double p) {
    const DType dt = float_dtype(x, "input");
    const void* xp = in_ptr(x, dt, "input");
    void* yp = out_ptr(y, dt, "out");
    expect_size(y, static_cast<int64_t>(x.size()), "out");
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("p: expected a probability in [0, 1]");
    const int64_t n = static_cast<int64_t>(x.size());
    py::gil_scoped_release nogil;
    IMKERN_CALL(dropout, dt, xp, yp, n, seed, p);
  });
}
