// The nn family's C++ API, both devices (raw pointers and descriptors, no pybind11):
// conv2d and linear (csrc/cpu/nn/{conv2d,linear}.cpp, csrc/cuda/nn/{conv2d,linear}.cu), the
// non-GEMM ops (pooling, activations, softmax, cross entropy, batch norm, dropout), and the
// CUDA GEMM. The CPU functions are declared once per ISA (IMKERN_CALL picks one); the CUDA
// launchers live in namespace imkern::cuda.
//
// ---- CPU: conv2d and linear --------------------------------------------------------------------
// conv2d and linear, forward and backward (PyTorch semantics), on C-contiguous tensors.
//
// conv2d: x (N, C, H, W), weight (K, C / groups, R, S), bias (K) or null, out (N, K, OH, OW)
//   out[n, k, oh, ow] = bias[k] + sum_{c in group(k), r, s}
//                       weight[k, c, r, s] * x[n, c, oh * sh - pt + r * dh, ow * sw - pl + s * dw]
//   (x is zero outside the image), OH = (H + pt + pb - dh * (R - 1) - 1) / sh + 1, same for OW.
// linear: x (M, IN), weight (OUT, IN), bias (OUT) or null, out (M, OUT) = x weight^T + bias.
// Backward functions write every element of grad_input, grad_weight and grad_bias.
// Results are identical for any thread count (fixed reduction orders).
// winograd: whether float32 3x3 stride-1 convolutions (groups 1, dilation 1) use Winograd
// F(4x4, 3x3) for the forward pass, grad_input and grad_weight (float64 never does): never,
// where it is faster than the direct paths (C, K >= 16, enough output pixels), or always
// (for tests).
//
// ---- CPU: the non-GEMM ops ---------------------------------------------------------------------
// The non-GEMM CNN ops on the CPU (pooling, activations, softmax / cross entropy, batch norm,
// dropout), PyTorch semantics (torch.nn.functional). Tensors are NCHW and C-contiguous: the
// Python layer makes deliberate contiguous copies of other layouts. Element types: float32
// and float64 (DType::f32, DType::f64). Inputs and outputs never overlap.
//
// Reductions (batch-norm statistics and parameter gradients, the cross-entropy mean) combine
// per-chunk partials in a fixed order over a chunking that depends on the sizes only, so the
// result is bit-identical for any thread count.
//
// ---- CUDA --------------------------------------------------------------------------------------
// imkern's CUDA CNN kernels (imkern.nn.functional on CuPy arrays). Same rules as the filters:
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
#include "imkern/dispatch.hpp"

namespace imkern {

// ---- CPU: the GEMM (csrc/cpu/nn/ukernels/gemm.cpp) ---------------------------------------------
// Dense matrix multiply (GEMM) on row-major matrices, float32 and float64.
//
//   C[m x n] = act(alpha * op(A) * op(B) + beta * C + row_bias[i] + col_bias[j])
//
// op(A) is m x k: A[i * lda + p] (trans_a = false) or A[p * lda + i] (trans_a = true);
// op(B) is k x n: B[p * ldb + j] (trans_b = false) or B[j * ldb + p] (trans_b = true).
// beta == 0 never reads C (it may hold garbage, NaN included). row_bias (m values) and
// col_bias (n values) may be null; act is the identity or ReLU (NaN stays NaN, as torch).
// Deterministic: every C element is summed over k in the same order whatever the thread
// count (the k blocking is fixed; threads split only m and n). A call made from inside a
// parallel_for chunk runs on the calling thread.
template <typename T>
struct GemmEpilogue {
  const T* row_bias = nullptr;  // added to row i (length m), or null
  const T* col_bias = nullptr;  // added to column j (length n), or null
  bool relu = false;
};

IMKERN_DECLARE_FOR_EACH_ISA(
  void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc, const GemmEpilogue<float>& ep);
  void gemm_f64(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
                int64_t ldc, const GemmEpilogue<double>& ep);
)

// ---- descriptors and enums shared by the CPU and CUDA kernels -----------------------------------
enum class ConvWinograd : int { off = 0, auto_select = 1, always = 2 };

// One conv2d problem (both devices). The CUDA kernels read pt and pl only (pb, pr follow from
// the output size).
struct Conv2dShape {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // weight (K, C / groups, R, S)
  int64_t groups = 1;
  int64_t sh = 1, sw = 1;              // stride
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;  // padding top, bottom, left, right
  int64_t dh = 1, dw = 1;              // dilation
  int64_t oh = 0, ow = 0;              // output size (as the formula above)
};

// One 2-D pooling problem (both devices): `planes` = N * C independent (h, w) planes -> (oh, ow)
// planes; kernel (kh, kw), stride, padding, dilation.
struct Pool2dShape {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};

enum class Activation : int { relu = 0, leaky_relu = 1, sigmoid = 2, tanh = 3, gelu = 4 };
enum class Reduction : int { none = 0, mean = 1, sum = 2 };



IMKERN_DECLARE_FOR_EACH_ISA(
  void conv2d_forward(DType dtype, const void* x, const void* weight, const void* bias, void* out,
                      const Conv2dShape& sh, bool relu, ConvWinograd winograd);
  void conv2d_backward(DType dtype, const void* grad_out, const void* x, const void* weight,
                       void* grad_in, void* grad_weight, void* grad_bias, const Conv2dShape& sh,
                       ConvWinograd winograd);
  void linear_forward(DType dtype, const void* x, const void* weight, const void* bias, void* out,
                      int64_t m, int64_t in_features, int64_t out_features);
  void linear_backward(DType dtype, const void* grad_out, const void* x, const void* weight,
                       void* grad_in, void* grad_weight, void* grad_bias, int64_t m,
                       int64_t in_features, int64_t out_features);
)




IMKERN_DECLARE_FOR_EACH_ISA(
  // Max over each window (NaN propagates: the last NaN of the window in scan order wins; an
  // all -inf window gives -inf with the first valid position), ties to the first maximum in
  // row-major window order, as torch's CPU kernel. `indices` (may be null) receives the flat
  // position ih * w + iw of the maximum within its plane.
  void max_pool2d(DType dtype, const void* x, void* y, int64_t* indices, const Pool2dShape& p);
  // grad_input[plane][indices[o]] += grad_output[o]; throws std::invalid_argument for an index
  // outside [0, h * w).
  void max_pool2d_backward(DType dtype, const void* gy, const int64_t* indices, void* gx, const Pool2dShape& p);
  // Window mean; the divisor is divisor_override when > 0, else the window size clipped to the
  // padded input (count_include_pad) or to the input.
  void avg_pool2d(DType dtype, const void* x, void* y, const Pool2dShape& p, bool count_include_pad,
                  int64_t divisor_override);
  void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Pool2dShape& p, bool count_include_pad,
                           int64_t divisor_override);
  // Windows [floor(i * h / oh), ceil((i + 1) * h / oh)) (likewise along w); only planes, h, w,
  // oh, ow of p are read.
  void adaptive_avg_pool2d(DType dtype, const void* x, void* y, const Pool2dShape& p);
  void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Pool2dShape& p);

  // Elementwise activation of n elements; `slope` is leaky_relu's negative slope.
  void activation(DType dtype, Activation act, const void* x, void* y, int64_t n, double slope);
  // gx = gy * act'(x); relu, leaky_relu and gelu read x, sigmoid and tanh read y (the forward
  // output); the pointer an activation does not read may be null.
  void activation_backward(DType dtype, Activation act, const void* gy, const void* x, const void* y, void* gx,
                           int64_t n, double slope);

  // Softmax (or log-softmax) over the middle axis of an (outer, c, inner) array.
  void softmax(DType dtype, const void* x, void* y, int64_t outer, int64_t c, int64_t inner, bool log);

  // Cross entropy of logits (n, c, s) against class indices target (n, s) (each in [0, c) or
  // ignore_index; the caller checks). With Reduction::none the per-element losses go to
  // `loss` (n * s values of dtype); otherwise the mean (over non-ignored elements; NaN when
  // there are none, as torch) or the sum is returned.
  double cross_entropy(DType dtype, const void* logits, const int64_t* target, void* loss, int64_t n,
                       int64_t c, int64_t s, int64_t ignore_index, double label_smoothing, Reduction r);
  // d(loss)/d(logits) for the mean or sum of the losses (Reduction::none: of their sum).
  void cross_entropy_backward(DType dtype, const void* logits, const int64_t* target, void* grad, int64_t n,
                              int64_t c, int64_t s, int64_t ignore_index, double label_smoothing,
                              Reduction r);

  // Batch norm over x (n, c, hw), the steps of batch_norm2d_cuda below: training normalizes
  // with the batch mean and biased variance (float64 accumulation over fixed segments combined
  // in order) and updates the running statistics (nullable) in place with the unbiased
  // variance; eval mode normalizes with the running statistics. Per-channel vectors are
  // float64 (C,); weight / bias nullable (1 / 0).
  void batch_norm2d(DType dtype, int64_t n, int64_t c, int64_t hw, const void* x, const double* weight,
                    const double* bias, double* running_mean, double* running_var, bool training, double momentum,
                    double eps, void* y);
  // grad_x (x's dtype) and grad_weight / grad_bias (float64 (C,), nullable); training
  // recomputes the batch statistics from x, eval reads the running ones.
  void batch_norm2d_backward(DType dtype, int64_t n, int64_t c, int64_t hw, const void* grad_y, const void* x,
                             const double* weight, const double* running_mean, const double* running_var,
                             bool training, double eps, void* grad_x, double* grad_weight, double* grad_bias);

  // y[i] = keep(i) ? x[i] / (1 - p) : 0 with keep(i) from the counter hash of docs/design.md.
  void dropout(DType dtype, const void* x, void* y, int64_t n, uint64_t seed, double p);
)


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
void activation_cuda(DType dt, Activation a, int64_t n, const void* x, void* y, float negative_slope, void* stream);
// grad_x = grad_y * f'(.). relu, leaky_relu, gelu read x; sigmoid, tanh read y (the forward
// output) when given, else x.
void activation_backward_cuda(DType dt, Activation a, int64_t n, const void* grad_y, const void* x, const void* y,
                              void* grad_x, float negative_slope, void* stream);

// ---- softmax (csrc/cuda/nn/softmax.cu) and cross entropy (csrc/cuda/nn/cross_entropy.cu); x viewed as (outer, len, inner) ------
void softmax_cuda(DType dt, int64_t outer, int64_t len, int64_t inner, const void* x, void* y, bool log,
                  void* stream);
// logits (N, C, inner), target (N, inner) int64. reduction: none (loss has N * inner
// elements), mean, sum (loss has one element). Dtype of loss = dt. A target outside
// [0, C) that is not ignore_index gives a NaN loss (torch raises a device assert).
void cross_entropy_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits, const int64_t* target,
                        Reduction reduction, double label_smoothing, int64_t ignore_index, void* loss, void* stream);
// grad_loss: float32, N * inner values for reduction none, one value otherwise.
void cross_entropy_backward_cuda(DType dt, int64_t n, int64_t c, int64_t inner, const void* logits,
                                 const int64_t* target, Reduction reduction, double label_smoothing,
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
