// Adam / AdamW step (torch.optim.Adam and AdamW, single-tensor form) in one pass over param,
// grad and the two moment buffers (three with amsgrad). Bytes/element: 7 * sizeof(T) (9 with
// amsgrad); ~12 FLOPs plus a square root and a division. Each operation rounds to T in torch's
// order (lerp for the first moment, mul then addcmul for the second, sqrt / bias2_sqrt + eps,
// addcdiv), so a step equals torch's to the last bits. The option branches sit outside the
// element loops. Variants: float32, float64.
#include <cmath>
#include <stdexcept>

#include "imkern/optim.hpp"
#include "imkern/parallel.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

template <typename T, bool kDecoupled, bool kAmsgrad>
void adam_loop(T* __restrict p, const T* __restrict g0, T* __restrict m, T* __restrict v, T* __restrict vmax,
               int64_t a, int64_t b, T sign, T wd, T decay, T w1, T beta2, T one_m_beta2, T bias2_sqrt, T eps,
               T neg_step) {
  for (int64_t i = a; i < b; ++i) {
    T pi = p[i];
    T g = sign * g0[i];
    if constexpr (kDecoupled) {
      pi = pi * decay;
    } else {
      g = g + wd * pi;
    }
    // torch.lerp(m, g, w1) with w1 < 0.5: m + w1 * (g - m); otherwise g - (g - m) * (1 - w1).
    const T mi = w1 < T(0.5) ? m[i] + w1 * (g - m[i]) : g - (g - m[i]) * (T(1) - w1);
    T vi = v[i] * beta2;
    vi = vi + one_m_beta2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    T vu = vi;
    if constexpr (kAmsgrad) {
      vu = vmax[i] < vi || std::isnan(vi) ? vi : vmax[i];
      vmax[i] = vu;
    }
    const T denom = std::sqrt(vu) / bias2_sqrt + eps;
    p[i] = pi + neg_step * (mi / denom);
  }
}

template <typename T>
void adam_impl(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s) {
  const T sign = s.maximize ? T(-1) : T(1), wd = T(s.weight_decay), decay = T(1.0 - s.lr * s.weight_decay),
          w1 = T(1.0 - s.beta1), beta2 = T(s.beta2), one_m_beta2 = T(1.0 - s.beta2), b2 = T(s.bias2_sqrt),
          eps = T(s.eps), neg_step = T(-s.step_size);
  const bool dec = s.decoupled && s.weight_decay != 0.0;
  parallel_for(0, n, 1 << 15, [&](int64_t a, int64_t b) {
    if (dec)
      s.amsgrad ? adam_loop<T, true, true>(p, g, m, v, vmax, a, b, sign, wd, decay, w1, beta2, one_m_beta2, b2, eps,
                                           neg_step)
                : adam_loop<T, true, false>(p, g, m, v, vmax, a, b, sign, wd, decay, w1, beta2, one_m_beta2, b2,
                                            eps, neg_step);
    else
      s.amsgrad ? adam_loop<T, false, true>(p, g, m, v, vmax, a, b, sign, s.decoupled ? T(0) : wd, decay, w1, beta2,
                                            one_m_beta2, b2, eps, neg_step)
                : adam_loop<T, false, false>(p, g, m, v, vmax, a, b, sign, s.decoupled ? T(0) : wd, decay, w1,
                                             beta2, one_m_beta2, b2, eps, neg_step);
  });
}

}  // namespace

void adam_step(DType dtype, void* param, const void* grad, void* exp_avg, void* exp_avg_sq, void* max_exp_avg_sq,
               int64_t n, const AdamStep& s) {
  if (s.amsgrad && max_exp_avg_sq == nullptr) throw std::invalid_argument("adam_step: max_exp_avg_sq missing");
  if (dtype == DType::f32)
    adam_impl(static_cast<float*>(param), static_cast<const float*>(grad), static_cast<float*>(exp_avg),
              static_cast<float*>(exp_avg_sq), static_cast<float*>(max_exp_avg_sq), n, s);
  else if (dtype == DType::f64)
    adam_impl(static_cast<double*>(param), static_cast<const double*>(grad), static_cast<double*>(exp_avg),
              static_cast<double*>(exp_avg_sq), static_cast<double*>(max_exp_avg_sq), n, s);
  else
    throw std::invalid_argument("adam_step: the CPU optimizers take float32 or float64");
}

}  // namespace IMKERN_ISA
}  // namespace imkern
