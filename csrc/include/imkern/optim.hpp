// The optimizer updates of imkern.optim, one fused pass over a parameter and its state, with
// torch.optim's update rules (single-tensor form, the same order of operations, arithmetic in
// the parameter's type; the scalar coefficients are computed once on the host in double).
// CPU: float32 and float64 (per ISA). CUDA: float32, float16, bfloat16 (float32 arithmetic).
// All arrays are C-contiguous, n elements, no overlap; state buffers have the parameter's dtype.
#pragma once
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

// torch.optim.SGD: g = grad (negated when maximize) + weight_decay * param; with momentum,
// buf = first ? g : momentum * buf + (1 - dampening) * g, and g = nesterov ? g + momentum * buf
// : buf; param -= lr * g. `first` marks the step that creates the momentum buffer.
struct SgdStep {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false, first = false;
};

// torch.optim.Adam / AdamW: decoupled (AdamW) scales param by 1 - lr * weight_decay first, else
// g += weight_decay * param; m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g * g;
// (amsgrad: vmax = max(vmax, v), used for v below); param += -step_size * m / (sqrt(v) /
// bias2_sqrt + eps), step_size = lr / (1 - beta1^t), bias2_sqrt = sqrt(1 - beta2^t).
struct AdamStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  double step_size = 0, bias2_sqrt = 1;  // from the step count, computed by the caller
  bool decoupled = false, amsgrad = false, maximize = false;
};

IMKERN_DECLARE_FOR_EACH_ISA(
  void sgd_step(DType dtype, void* param, const void* grad, void* momentum_buf, int64_t n, const SgdStep& s);
  void adam_step(DType dtype, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 void* max_exp_avg_sq, int64_t n, const AdamStep& s);
)

namespace cuda {
void sgd_step_cuda(DType dtype, void* param, const void* grad, void* momentum_buf, int64_t n, const SgdStep& s,
                   void* stream);
void adam_step_cuda(DType dtype, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                    void* max_exp_avg_sq, int64_t n, const AdamStep& s, void* stream);
}  // namespace cuda

}  // namespace imkern
