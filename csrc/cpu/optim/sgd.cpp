// SGD step (torch.optim.SGD, single-tensor form) in one pass over param, grad and the momentum
// buffer. Bytes/element: 3 * sizeof(T) without momentum, 5 * sizeof(T) with; ~6 FLOPs. The
// branches on the options sit outside the element loops (one specialized loop each), so the
// compiler vectorizes every variant for the ISA this file is compiled for. Each operation rounds
// to T in torch's order, so a step equals torch's to the last bits. Variants: float32, float64.
#include <stdexcept>

#include "imkern/optim.hpp"
#include "imkern/parallel.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

template <typename T, bool kMomentum, bool kNesterov, bool kFirst>
void sgd_loop(T* __restrict p, const T* __restrict g0, T* __restrict buf, int64_t a, int64_t b, T sign, T wd,
              T mom, T damp1, T lr) {
  for (int64_t i = a; i < b; ++i) {
    T g = sign * g0[i];
    g = g + wd * p[i];
    if constexpr (kMomentum) {
      T m;
      if constexpr (kFirst) {
        m = g;
      } else {
        m = buf[i] * mom;
        m = m + damp1 * g;
      }
      buf[i] = m;
      g = kNesterov ? g + mom * m : m;
    }
    p[i] = p[i] + (-lr) * g;
  }
}

template <typename T>
void sgd_impl(T* p, const T* g, T* buf, int64_t n, const SgdStep& s) {
  const T sign = s.maximize ? T(-1) : T(1), wd = T(s.weight_decay), mom = T(s.momentum),
          damp1 = T(1.0 - s.dampening), lr = T(s.lr);
  parallel_for(0, n, 1 << 16, [&](int64_t a, int64_t b) {
    if (s.momentum == 0.0)
      sgd_loop<T, false, false, false>(p, g, buf, a, b, sign, wd, mom, damp1, lr);
    else if (s.first)
      s.nesterov ? sgd_loop<T, true, true, true>(p, g, buf, a, b, sign, wd, mom, damp1, lr)
                 : sgd_loop<T, true, false, true>(p, g, buf, a, b, sign, wd, mom, damp1, lr);
    else
      s.nesterov ? sgd_loop<T, true, true, false>(p, g, buf, a, b, sign, wd, mom, damp1, lr)
                 : sgd_loop<T, true, false, false>(p, g, buf, a, b, sign, wd, mom, damp1, lr);
  });
}

}  // namespace

void sgd_step(DType dtype, void* param, const void* grad, void* momentum_buf, int64_t n, const SgdStep& s) {
  if (s.momentum != 0.0 && momentum_buf == nullptr) throw std::invalid_argument("sgd_step: momentum buffer missing");
  if (dtype == DType::f32)
    sgd_impl(static_cast<float*>(param), static_cast<const float*>(grad), static_cast<float*>(momentum_buf), n, s);
  else if (dtype == DType::f64)
    sgd_impl(static_cast<double*>(param), static_cast<const double*>(grad), static_cast<double*>(momentum_buf), n,
             s);
  else
    throw std::invalid_argument("sgd_step: the CPU optimizers take float32 or float64");
}

}  // namespace IMKERN_ISA
}  // namespace imkern
