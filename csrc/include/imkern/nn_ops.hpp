// The non-GEMM CNN ops on the CPU (pooling, activations, softmax / cross entropy, batch norm,
// dropout), PyTorch semantics (torch.nn.functional). Tensors are NCHW and C-contiguous: the
// Python layer makes deliberate contiguous copies of other layouts. Element types: float32
// and float64 (DType::f32, DType::f64). Inputs and outputs never overlap.
//
// Reductions (batch-norm statistics and parameter gradients, the cross-entropy mean) combine
// per-chunk partials in a fixed order over a chunking that depends on the sizes only, so the
// result is bit-identical for any thread count.
#pragma once
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

// One 2-D pooling problem: `planes` = N * C independent (h, w) planes -> (oh, ow) planes.
struct Pool2d {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};

enum class Act : int { relu = 0, leaky_relu = 1, sigmoid = 2, tanh = 3, gelu = 4 };
enum class Reduction : int { none = 0, mean = 1, sum = 2 };

IMKERN_DECLARE_FOR_EACH_ISA(
  // Max over each window (NaN propagates: the last NaN of the window in scan order wins; an
  // all -inf window gives -inf with the first valid position), ties to the first maximum in
  // row-major window order, as torch's CPU kernel. `indices` (may be null) receives the flat
  // position ih * w + iw of the maximum within its plane.
  void max_pool2d(DType dtype, const void* x, void* y, int64_t* indices, const Pool2d& p);
  // grad_input[plane][indices[o]] += grad_output[o]; throws std::invalid_argument for an index
  // outside [0, h * w).
  void max_pool2d_backward(DType dtype, const void* gy, const int64_t* indices, void* gx, const Pool2d& p);
  // Window mean; the divisor is divisor_override when > 0, else the window size clipped to the
  // padded input (count_include_pad) or to the input.
  void avg_pool2d(DType dtype, const void* x, void* y, const Pool2d& p, bool count_include_pad,
                  int64_t divisor_override);
  void avg_pool2d_backward(DType dtype, const void* gy, void* gx, const Pool2d& p, bool count_include_pad,
                           int64_t divisor_override);
  // Windows [floor(i * h / oh), ceil((i + 1) * h / oh)) (likewise along w).
  void adaptive_avg_pool2d(DType dtype, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                           int64_t oh, int64_t ow);
  void adaptive_avg_pool2d_backward(DType dtype, const void* gy, void* gx, int64_t planes, int64_t h,
                                    int64_t w, int64_t oh, int64_t ow);

  // Elementwise activation of n elements; `slope` is leaky_relu's negative slope.
  void activation(DType dtype, Act act, const void* x, void* y, int64_t n, double slope);
  // gx = gy * act'(x); relu, leaky_relu and gelu read x, sigmoid and tanh read y (the forward
  // output); the pointer an activation does not read may be null.
  void activation_backward(DType dtype, Act act, const void* gy, const void* x, const void* y, void* gx,
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

  // Batch norm over x (n, c, hw): per-channel mean and biased variance (float64 accumulation).
  void batch_norm_stats(DType dtype, const void* x, int64_t n, int64_t c, int64_t hw, double* mean,
                        double* var);
  // y = (x - mean[c]) * scale[c] + shift[c] (the mean subtracted in two parts for accuracy).
  void batch_norm_apply(DType dtype, const void* x, void* y, int64_t n, int64_t c, int64_t hw,
                        const double* mean, const double* scale, const double* shift);
  // Per channel: sum_gy = sum(gy), sum_gy_xmu = sum(gy * (x - mean)).
  void batch_norm_backward_reduce(DType dtype, const void* gy, const void* x, int64_t n, int64_t c,
                                  int64_t hw, const double* mean, double* sum_gy, double* sum_gy_xmu);
  // gx = k[c] * (gy - mgy[c] - (x - mean[c]) * q[c]).
  void batch_norm_backward_input(DType dtype, const void* gy, const void* x, void* gx, int64_t n, int64_t c,
                                 int64_t hw, const double* k, const double* mgy, const double* mean,
                                 const double* q);

  // y[i] = keep(i) ? x[i] / (1 - p) : 0 with keep(i) from the counter hash of docs/design.md.
  void dropout(DType dtype, const void* x, void* y, int64_t n, uint64_t seed, double p);
)

}  // namespace imkern
