// Batch normalization over NCHW (compiled per ISA), fused as on CUDA (csrc/cuda/nn/batch_norm.cu):
// the forward computes the statistics (training), normalizes and updates the running
// statistics in one call; the backward recomputes the statistics, reduces and writes the
// input gradient in one call.
//
// Statistics: each channel's N * HW values are split into fixed segments (at most 64K
// elements of one plane); a task sums one segment in float64 vector lanes, shifted by the
// channel's first element (sum and sum of squares of x - K: no catastrophic cancellation for
// data far from 0), and the per-segment partials are then combined per channel in segment
// order. The split depends on the shape only, so 1 and N threads give identical bits.
// Bytes/element: sizeof(T) per reduction pass, 2 sizeof(T) for apply
// (y = (x - mean_c) * a_c + b_c), 3 sizeof(T) for the backward reduction + 3 sizeof(T) for
// the input gradient.
// FLOPs/element: 3 (stats), 2 (apply), 4 (backward reduction), 4 (input gradient).
// Variants: float32 (vector loads widened to float64 accumulators) and float64.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "common/vmath.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

constexpr int64_t kSeg = 65536;


// Segments of the (n, c, hw) layout: channel c, image n, part k of its plane.
struct Segs {
  int64_t N, C, HW, parts, seg;
  Segs(int64_t n, int64_t c, int64_t hw) : N(n), C(c), HW(hw) {
    seg = std::min<int64_t>(std::max<int64_t>(hw, 1), kSeg);
    parts = (hw + seg - 1) / seg;
  }
  int64_t count() const { return C * N * parts; }
  int64_t per_channel() const { return N * parts; }
  // [offset, offset + len) of task t, and its channel.
  void at(int64_t t, int64_t& c, int64_t& off, int64_t& len) const {
    c = t / (N * parts);
    const int64_t r = t % (N * parts), n = r / parts, k = r % parts;
    off = (n * C + c) * HW + k * seg;
    len = std::min(seg, HW - k * seg);
  }
  int64_t grain() const { return std::max<int64_t>(1, kSeg / seg); }
};

// Sums of (a - ka) and (a - ka)^2 or (a - ka) * b over n elements, in float64 lanes: lane k
// (of a T vector's L lanes) accumulates elements k, k + L, ...; the lanes are then added in
// order k = 0 .. L - 1, and the tail last. The L float64 lanes are held as native vectors
// (two for float32: a vector of L doubles is twice the register width, which GCC would spill
// through the stack on every step), so each lane's operations are those of one long vector.
template <typename T, bool Prod>
void seg_sums(const T* a, const T* b, int64_t n, double ka, double& s1, double& s2) {
  constexpr int L = simd::Vec<T>::lanes;
  using DV = simd::vec_t<double>;
  constexpr int LD = simd::Vec<double>::lanes, P = L / LD;  // P native double vectors per T vector
  using TH = vm::vecn_t<T, LD>;                              // the T lanes of one of them
  auto wide = [](const T* p) {
    TH h;
    std::memcpy(&h, p, sizeof(h));
    return __builtin_convertvector(h, DV);
  };
  DV a1[P] = {}, a2[P] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) {
      const DV d = wide(a + i + q * LD) - ka;
      a1[q] += d;
      if (Prod)
        a2[q] += d * wide(b + i + q * LD);
      else
        a2[q] += d * d;
    }
  }
  double t1 = 0, t2 = 0;
  for (int q = 0; q < P; ++q)
    for (int k = 0; k < LD; ++k) {
      t1 += a1[q][k];
      t2 += a2[q][k];
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - ka;
    t1 += d;
    t2 += Prod ? d * static_cast<double>(b[i]) : d * d;
  }
  s1 = t1;
  s2 = t2;
}

template <typename T>
void stats_impl(const T* x, int64_t N, int64_t C, int64_t HW, double* mean, double* var) {
  const Segs sg(N, C, HW);
  std::vector<double> p1(static_cast<size_t>(sg.count())), p2(static_cast<size_t>(sg.count()));
  parallel_for(0, sg.count(), sg.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t c, off, len;
      sg.at(t, c, off, len);
      seg_sums<T, false>(x + off, nullptr, len, static_cast<double>(x[c * HW]), p1[t], p2[t]);
    }
  });
  const double M = static_cast<double>(N * HW);
  for (int64_t c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int64_t k = 0; k < sg.per_channel(); ++k) {
      s1 += p1[c * sg.per_channel() + k];
      s2 += p2[c * sg.per_channel() + k];
    }
    const double m = s1 / M;
    mean[c] = static_cast<double>(x[c * HW]) + m;
    const double v = s2 / M - m * m;
    var[c] = v > 0 ? v : (v == v ? 0.0 : v);
  }
}

// mean[c] as hi + lo in T: (x - hi) - lo keeps x - mean accurate to T's precision even when
// the mean is large next to the spread (float32 data around 10 with a spread of 0.01, say).
template <typename T>
inline void split(double v, T& hi, T& lo) {
  hi = static_cast<T>(v);
  lo = static_cast<T>(v - static_cast<double>(hi));
}

template <typename T>
void apply_impl(const T* x, T* y, int64_t N, int64_t C, int64_t HW, const double* mean, const double* a,
                const double* b) {
  const int64_t grain = std::max<int64_t>(1, kSeg / std::max<int64_t>(HW, 1));
  parallel_for(0, N * C, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const T sa = static_cast<T>(a[c]), sb = static_cast<T>(b[c]);
      T hi, lo;
      split(mean[c], hi, lo);
      const T* xp = x + p * HW;
      T* yp = y + p * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] = ((xp[i] - hi) - lo) * sa + sb;
    }
  });
}

template <typename T>
void backward_reduce_impl(const T* gy, const T* x, int64_t N, int64_t C, int64_t HW, const double* mean,
                          double* sum_gy, double* sum_gy_xmu) {
  const Segs sg(N, C, HW);
  std::vector<double> p1(static_cast<size_t>(sg.count())), p2(static_cast<size_t>(sg.count()));
  parallel_for(0, sg.count(), sg.grain(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t c, off, len;
      sg.at(t, c, off, len);
      // sum(gy) and sum((x - mean) * gy): seg_sums over a = x, b = gy gives
      // sum(x - mean) and sum((x - mean) * gy); sum(gy) is computed alongside.
      double sx, sxg;
      seg_sums<T, true>(x + off, gy + off, len, mean[c], sx, sxg);
      double sg1 = 0, dummy = 0;
      seg_sums<T, false>(gy + off, nullptr, len, 0.0, sg1, dummy);
      p1[t] = sg1;
      p2[t] = sxg;
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int64_t k = 0; k < sg.per_channel(); ++k) {
      s1 += p1[c * sg.per_channel() + k];
      s2 += p2[c * sg.per_channel() + k];
    }
    sum_gy[c] = s1;
    sum_gy_xmu[c] = s2;
  }
}

template <typename T>
void backward_input_impl(const T* gy, const T* x, T* gx, int64_t N, int64_t C, int64_t HW, const double* k,
                         const double* mgy, const double* mean, const double* q) {
  const int64_t grain = std::max<int64_t>(1, kSeg / std::max<int64_t>(HW, 1));
  parallel_for(0, N * C, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const T kc = static_cast<T>(k[c]), mc = static_cast<T>(mgy[c]), qc = static_cast<T>(q[c]);
      T hi, lo;
      split(mean[c], hi, lo);
      const T* g = gy + p * HW;
      const T* xp = x + p * HW;
      T* o = gx + p * HW;
      for (int64_t i = 0; i < HW; ++i) o[i] = kc * (g[i] - mc - ((xp[i] - hi) - lo) * qc);
    }
  });
}

// The statistics the normalization uses: the batch's (training) or the running ones.
template <typename T>
void mean_var(const T* x, int64_t n, int64_t c, int64_t hw, bool training, const double* running_mean,
              const double* running_var, double* mean, double* var) {
  if (training) {
    stats_impl<T>(x, n, c, hw, mean, var);
  } else {
    std::copy(running_mean, running_mean + c, mean);
    std::copy(running_var, running_var + c, var);
  }
}

// Per-channel scalars of the normalization: y = (x - mean) * scale + shift.
void affine_of(int64_t C, const double* var, const double* weight, const double* bias, double eps, double* scale,
               double* shift) {
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = (weight ? weight[c] : 1.0) * invstd;
    shift[c] = bias ? bias[c] : 0.0;
  }
}

}  // namespace

// The same steps as batch_norm2d_cuda (csrc/cuda/nn/batch_norm.cu): statistics (training) or
// the running ones (eval), the per-channel affine, one normalization pass, the running update.
void batch_norm2d(DType dtype, int64_t n, int64_t c, int64_t hw, const void* x, const double* weight,
                  const double* bias, double* running_mean, double* running_var, bool training, double momentum,
                  double eps, void* y) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("batch_norm2d: negative size");
  if (!training && (!running_mean || !running_var))
    throw std::invalid_argument("batch_norm2d: evaluation mode needs running_mean and running_var");
  const int64_t m = n * hw;
  if (m == 0 || c == 0) return;
  std::vector<double> mean(static_cast<size_t>(c)), var(static_cast<size_t>(c)), scale(mean.size()),
      shift(mean.size());
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    mean_var<T>(px, n, c, hw, training, running_mean, running_var, mean.data(), var.data());
    affine_of(c, var.data(), weight, bias, eps, scale.data(), shift.data());
    apply_impl<T>(px, static_cast<T*>(y), n, c, hw, mean.data(), scale.data(), shift.data());
  });
  if (training) {
    // torch's update: the unbiased variance goes into running_var.
    const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
    for (int64_t k = 0; k < c; ++k) {
      if (running_mean) running_mean[k] = momentum * mean[k] + (1.0 - momentum) * running_mean[k];
      if (running_var) running_var[k] = momentum * (var[k] * unbias) + (1.0 - momentum) * running_var[k];
    }
  }
}

// The same steps as batch_norm2d_backward_cuda: statistics, the two per-channel sums
// (sum(gy), sum(gy * (x - mean))), one pass for grad_input.
void batch_norm2d_backward(DType dtype, int64_t n, int64_t c, int64_t hw, const void* grad_y, const void* x,
                           const double* weight, const double* running_mean, const double* running_var,
                           bool training, double eps, void* grad_x, double* grad_weight, double* grad_bias) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("batch_norm2d_backward: negative size");
  if (!training && (!running_mean || !running_var))
    throw std::invalid_argument("batch_norm2d_backward: evaluation mode needs running_mean and running_var");
  const int64_t m = n * hw;
  if (c == 0) return;
  if (m == 0) {  // no elements: zero parameter gradients, nothing else to write
    if (grad_weight) std::fill(grad_weight, grad_weight + c, 0.0);
    if (grad_bias) std::fill(grad_bias, grad_bias + c, 0.0);
    return;
  }
  const size_t C = static_cast<size_t>(c);
  std::vector<double> mean(C), var(C), sum_g(C), sum_gx(C), k(C), mgy(C, 0.0), q(C, 0.0), invstd(C);
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pg = static_cast<const T*>(grad_y);
    mean_var<T>(px, n, c, hw, training, running_mean, running_var, mean.data(), var.data());
    backward_reduce_impl<T>(pg, px, n, c, hw, mean.data(), sum_g.data(), sum_gx.data());
    const double M = static_cast<double>(m);
    for (size_t i = 0; i < C; ++i) {
      invstd[i] = 1.0 / std::sqrt(var[i] + eps);
      k[i] = (weight ? weight[i] : 1.0) * invstd[i];
      if (training) {  // eval mode: gx = k * gy (mgy = q = 0)
        mgy[i] = sum_g[i] / M;
        q[i] = invstd[i] * invstd[i] * sum_gx[i] / M;
      }
    }
    backward_input_impl<T>(pg, px, static_cast<T*>(grad_x), n, c, hw, k.data(), mgy.data(), mean.data(), q.data());
  });
  for (size_t i = 0; i < C; ++i) {
    if (grad_weight) grad_weight[i] = sum_gx[i] * invstd[i];
    if (grad_bias) grad_bias[i] = sum_g[i];
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
