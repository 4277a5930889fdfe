// Direct conv2d forward for single-channel inputs with small square kernels (conv2d_small.cpp,
// compiled per ISA like every csrc/cpu/*.cpp).
#pragma once
#include "imkern/nn.hpp"

namespace imkern {
namespace IMKERN_ISA {

// Whether conv_small_forward handles this shape (and is the faster path for it).
template <typename T>
bool conv_small_applies(const Conv2dShape& p);

// out (N, K, OH, OW) = conv2d(x, w) + bias, then ReLU if `relu`; x, w, out C-contiguous.
template <typename T>
void conv_small_forward(const T* x, const T* w, const T* bias, T* out, const Conv2dShape& p, bool relu);

}  // namespace IMKERN_ISA
}  // namespace imkern
