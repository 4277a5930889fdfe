// imkern's CUDA CNN kernels (imkern.nn.functional on CuPy arrays). Same rules as cuda.hpp:
// device pointers, C-contiguous NCHW tensors, the caller's stream as void*, nothing launched
// for empty sizes, CUDA failures -> std::runtime_error, bad arguments -> std::invalid_argument,
// sizes past the kernels' index types -> std::overflow_error.
//
// dtypes: float32, float16, bfloat16 (DType::f32/f16/bf16) with float32 accumulation.
// Determinism: every reduction has a fixed order that depends on the problem size only (no
// floating-point atomics).
#pragma once
#include <cstdint>

#include "imkern/common.hpp"

namespace imkern {
namespace cuda {

// ---- GEMM (csrc/cuda/gemm.cu) ------------------------------------------------------------
// C[m, n] = act(sum_k A(m, k) B(k, n) + bias), all operands of dtype dt, row-major C with ldc.
// A(m, k) = a[m * lda + k], or a[k * lda + m] with trans_a; B(k, n) = b[k * ldb + n], or
// b[n * ldb + k] with trans_b. bias_mode: 0 none, 1 bias[m] (per row), 2 bias[n] (per column).
// allow_tf32: float32 uses TF32 tensor cores (10-bit mantissa products, float32 sums) when true,
// exact float32 FMA otherwise; float16/bfloat16 always use tensor cores with float32 sums.
void gemm_cuda(DType dt, int64_t M, int64_t N, int64_t K, const void* a, int64_t lda, bool trans_a,
               const void* b, int64_t ldb, bool trans_b, void* c, int64_t ldc, const void* bias, int bias_mode,
               bool relu, bool allow_tf32, void* stream);

// ---- linear (csrc/cuda/nn/linear.cu): x (M, IN), weight (OUT, IN), bias (OUT) or null ------
void linear_forward_cuda(DType dt, int64_t m, int64_t in_features, int64_t out_features, const void* x,
                         const void* weight, const void* bias, void* y, bool allow_tf32, void* stream);
// grad_x (M, IN), grad_weight (OUT, IN), grad_bias (OUT); every element written.
void linear_backward_cuda(DType dt, int64_t m, int64_t in_features, int64_t out_features, const void* grad_y,
                          const void* x, const void* weight, void* grad_x, void* grad_weight, void* grad_bias,
                          bool allow_tf32, void* stream);

// ---- conv2d (csrc/cuda/conv2d.cu), PyTorch semantics; weight (K, C / groups, R, S) -------
struct Conv2dShape {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // output channels, kernel height, width
  int64_t oh = 0, ow = 0;              // output size (the caller applies the padding formula)
  int64_t stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0, dil_h = 1, dil_w = 1, groups = 1;
};
void conv2d_forward_cuda(DType dt, const Conv2dShape& sh, const void* x, const void* weight, const void* bias,
                         bool relu, void* y, bool allow_tf32, void* stream);
// grad_input (N, C, H, W) from grad_output (N, K, OH, OW) and the weight.
void conv2d_backward_data_cuda(DType dt, const Conv2dShape& sh, const void* grad_y, const void* weight,
                               void* grad_x, bool allow_tf32, void* stream);
// grad_weight (K, C / groups, R, S) from grad_output and the input.
void conv2d_backward_weight_cuda(DType dt, const Conv2dShape& sh, const void* grad_y, const void* x,
                                 void* grad_w, bool allow_tf32, void* stream);

// out[c] = sum over n < N, j < HW of x[(n * C + c) * HW + j] (csrc/cuda/nn/channel_sum.cu; bias gradients: conv with HW =
// OH * OW, linear with N = rows, HW = 1). out has dtype dt.
void channel_sum_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* x, void* out, void* stream);

// ---- pooling (csrc/cuda/pool2d.cu); planes (N * C) of H x W -> OH x OW ---------------------
struct Pool2dShape {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};
// indices (nullable): int64 flat index ih * W + iw of the maximum within the plane (torch).
void max_pool2d_cuda(DType dt, const Pool2dShape& p, const void* x, void* y, int64_t* indices, void* stream);
// with_window: gather per input pixel over the windows that can hold it (deterministic).
// Without the window parameters (with_window false) one thread per plane scatters that
// plane's gradients in output order (indices stay in their plane: no atomics, deterministic).
void max_pool2d_backward_cuda(DType dt, const Pool2dShape& p, bool with_window, const void* grad_y,
                              const int64_t* indices, void* grad_x, void* stream);
void avg_pool2d_cuda(DType dt, const Pool2dShape& p, bool count_include_pad, const void* x, void* y, void* stream);
void avg_pool2d_backward_cuda(DType dt, const Pool2dShape& p, bool count_include_pad, const void* grad_y,
                              void* grad_x, void* stream);
// Only planes, h, w, oh, ow of p are used.
void adaptive_avg_pool2d_cuda(DType dt, const Pool2dShape& p, const void* x, void* y, void* stream);
void adaptive_avg_pool2d_backward_cuda(DType dt, const Pool2dShape& p, const void* grad_y, void* grad_x,
                                       void* stream);

// ---- activations (csrc/cuda/activations.cu) -------------------------------------------------
enum class Activation : int { relu = 0, leaky_relu = 1, sigmoid = 2, tanh = 3, gelu = 4 };
void activation_cuda(DType dt, Activation a, int64_t n, const void* x, void* y, float negative_slope, void* stream);
// grad_x = grad_y * f'(.). relu, leaky_relu, gelu read x; sigmoid, tanh read y (the forward
// output) when given, else x.
void activation_backward_cuda(DType dt, Activation a, int64_t n, const void* grad_y, const void* x, const void* y,
                              void* grad_x, float negative_slope, void* stream);

// ---- softmax (csrc/cuda/nn/softmax.cu) and cross entropy (csrc/cuda/nn/cross_entropy.cu); x viewed as (outer, len, inner) ------
void softmax_cuda(DType dt, int64_t outer, int64_t len, int64_t inner, const void* x, void* y, bool log,
                  void* stream);
// logits (N, C, inner), target (N, inner) int64. reduction: 0 none (loss has N * inner
// elements), 1 mean, 2 sum (loss has one element). Dtype of loss = dt. A target outside
// [0, C) that is not ignore_index gives a NaN loss (torch raises a device assert).
void cross_entropy_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits, const int64_t* target,
                        int reduction, double label_smoothing, int64_t ignore_index, void* loss, void* stream);
// grad_loss: float32, N * inner values for reduction none, one value otherwise.
void cross_entropy_backward_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits,
                                 const int64_t* target, int reduction, double label_smoothing,
                                 int64_t ignore_index, const float* grad_loss, void* grad_logits, void* stream);

// ---- batch norm (csrc/cuda/batch_norm.cu); x (N, C, HW), parameters float32 (C,) ---------------
// weight / bias nullable (1 / 0). training: batch statistics (biased variance for the
// normalization), running stats (nullable) updated in place with the unbiased variance.
void batch_norm2d_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* x, const float* weight,
                       const float* bias, float* running_mean, float* running_var, bool training, double momentum,
                       double eps, void* y, void* stream);
// grad_weight / grad_bias: float32 (C,) outputs (nullable).
void batch_norm2d_backward_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* grad_y, const void* x,
                                const float* weight, const float* running_mean, const float* running_var,
                                bool training, double eps, void* grad_x, float* grad_weight, float* grad_bias,
                                void* stream);

// ---- dropout (csrc/cuda/dropout.cu): the counter hash of docs/design.md ----------------------
void dropout_cuda(DType dt, int64_t n, const void* x, void* y, double p, uint64_t seed, void* stream);

}  // namespace cuda
}  // namespace imkern
