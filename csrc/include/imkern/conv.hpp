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
#pragma once
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

enum class ConvWinograd : int { off = 0, auto_select = 1, always = 2 };

struct Conv2dShape {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // weight (K, C / groups, R, S)
  int64_t groups = 1;
  int64_t sh = 1, sw = 1;              // stride
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;  // padding top, bottom, left, right
  int64_t dh = 1, dw = 1;              // dilation
  int64_t oh = 0, ow = 0;              // output size (as the formula above)
};

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

}  // namespace imkern
