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
#pragma once
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern {

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

}  // namespace imkern
