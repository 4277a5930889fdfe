// linear (fully connected), forward and backward, on the GEMM microkernels (compiled per ISA):
// one GEMM per product (x W^T with the bias in the epilogue; go W; go^T x); the bias gradient
// is the column sums of go, rows added in order (columns split across threads).
// FLOPs: 2 M IN OUT per product. Every reduction has a fixed order, so 1 and N threads give
// identical bits.
#include <algorithm>
#include <vector>

#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/dtype.hpp"
#include "nn/ukernels/gemm_kernel.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

template <typename T>
void lin_forward(const T* x, const T* w, const T* bias, T* out, int64_t m, int64_t in, int64_t of) {
  GemmEpilogue<T> ep;
  ep.col_bias = bias;
  gemm(false, true, m, of, in, T(1), x, in, w, in, T(0), out, of, ep);
}

template <typename T>
void lin_backward(const T* go, const T* x, const T* w, T* gi, T* gw, T* gb, int64_t m, int64_t in, int64_t of) {
  gemm(false, false, m, in, of, T(1), go, of, w, in, T(0), gi, in);
  gemm(true, false, of, in, m, T(1), go, of, x, in, T(0), gw, in);
  // grad_bias: column sums, rows in order; columns split across threads.
  // Float64 column sums: a float32 sum over many rows drifts with m (torch's CPU reductions
  // accumulate float32 in float64 too); still rows in order, so deterministic.
  parallel_for(0, of, 256, [&](int64_t lo, int64_t hi) {
    std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
    for (int64_t i = 0; i < m; ++i) {
      const T* row = go + i * of + lo;
      for (int64_t j = 0; j < hi - lo; ++j) acc[static_cast<size_t>(j)] += static_cast<double>(row[j]);
    }
    for (int64_t j = lo; j < hi; ++j) gb[j] = static_cast<T>(acc[static_cast<size_t>(j - lo)]);
  });
}

}  // namespace

void linear_forward(DType dtype, const void* x, const void* weight, const void* bias, void* out, int64_t m,
                    int64_t in_features, int64_t out_features) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    lin_forward<T>(static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias),
                   static_cast<T*>(out), m, in_features, out_features);
  });
}

void linear_backward(DType dtype, const void* grad_out, const void* x, const void* weight, void* grad_in,
                     void* grad_weight, void* grad_bias, int64_t m, int64_t in_features, int64_t out_features) {
  visit_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    lin_backward<T>(static_cast<const T*>(grad_out), static_cast<const T*>(x), static_cast<const T*>(weight),
                    static_cast<T*>(grad_in), static_cast<T*>(grad_weight), static_cast<T*>(grad_bias), m,
                    in_features, out_features);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
