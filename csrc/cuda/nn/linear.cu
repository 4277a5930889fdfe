// linear (fully connected) forward and backward on CUDA: one GEMM per product (gemm.cu), the
// bias in the forward GEMM's epilogue, the bias gradient by the per-channel sum
// (channel_sum.cu) of grad_y viewed as (M, OUT, 1). FLOPs: 2 M IN OUT per product; the weight
// gradient's long reduction over M is split-K with a deterministic reduction (gemm.cu).
#include "imkern/nn.hpp"

namespace imkern {
namespace cuda {

void linear_forward_cuda(DType dt, int64_t m, int64_t in_features, int64_t out_features, const void* x,
                         const void* weight, const void* bias, void* y, bool allow_tf32, void* stream) {
  // y (M, OUT) = x (M, IN) @ W^T, W (OUT, IN) row-major read transposed.
  gemm_cuda(dt, m, out_features, in_features, x, in_features, false, weight, in_features, true, y, out_features,
            bias, bias ? 2 : 0, false, allow_tf32, stream);
}

void linear_backward_cuda(DType dt, int64_t m, int64_t in_features, int64_t out_features, const void* grad_y,
                          const void* x, const void* weight, void* grad_x, void* grad_weight, void* grad_bias,
                          bool allow_tf32, void* stream) {
  // grad_x (M, IN) = grad_y (M, OUT) @ W (OUT, IN)
  gemm_cuda(dt, m, in_features, out_features, grad_y, out_features, false, weight, in_features, false, grad_x,
            in_features, nullptr, 0, false, allow_tf32, stream);
  // grad_weight (OUT, IN) = grad_y^T (OUT, M) @ x (M, IN)
  gemm_cuda(dt, out_features, in_features, m, grad_y, out_features, true, x, in_features, false, grad_weight,
            in_features, nullptr, 0, false, allow_tf32, stream);
  if (out_features) channel_sum_cuda(dt, m, out_features, 1, grad_y, grad_bias, stream);
}

}  // namespace cuda
}  // namespace imkern
