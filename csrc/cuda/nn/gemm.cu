// Dense GEMM: C = act(op(A) op(B) + bias) for linear layers and matmul.
//
// Algorithm: the tiled kernel of gemm_tiles.cuh (block tile 64|128 x 128 x 32, 256 threads,
// register-prefetched operand tiles, WMMA tensor cores or float32 FMA), with MatLoader
// operands (row- or column-major, by the transpose flags) and an epilogue that adds the bias
// (per row or per column), applies ReLU and converts to the storage type.
// Cost: 2 M N K FLOPs; bytes ~ (M K + K N) * sizeof(T) * (tile reuse factor 1/128) + M N sizeof(T).
// Variants: float32 exact (SIMT FMA) or TF32 (allow_tf32), float16 and bfloat16 tensor cores,
// all with float32 accumulation; split-K with a deterministic reduction when the output has
// few tiles and K is long (weight gradients of linear layers).
#include "nn/gemm_tiles.cuh"
#include "imkern/nn.hpp"

namespace imkern {
namespace cuda {

namespace {

template <typename T>
struct DenseEpi {
  T* c;
  int64_t ldc;
  const T* bias;
  int bias_mode;
  bool relu;
  __device__ void operator()(int64_t m, int64_t n, int, float v) const {
    if (bias_mode == 1)
      v += to_f(bias[m]);
    else if (bias_mode == 2)
      v += to_f(bias[n]);
    if (relu && v < 0.f) v = 0.f;  // NaN stays NaN, as torch.relu
    c[m * ldc + n] = from_f<T>(v);
  }
};

}  // namespace

void gemm_cuda(DType dt, int64_t M, int64_t N, int64_t K, const void* a, int64_t lda, bool trans_a, const void* b,
               int64_t ldb, bool trans_b, void* c, int64_t ldc, const void* bias, int bias_mode, bool relu,
               bool allow_tf32, void* stream) {
  if (M < 0 || N < 0 || K < 0) throw std::invalid_argument("gemm: negative size");
  if (bias_mode < 0 || bias_mode > 2) throw std::invalid_argument("gemm: bias_mode must be 0, 1 or 2");
  if (bias_mode != 0 && bias == nullptr) throw std::invalid_argument("gemm: bias_mode set without a bias");
  if (M == 0 || N == 0) return;
  gemm::dispatch_mma(dt, allow_tf32, "gemm", [&](auto tag, auto mma) {
    using T = typename decltype(tag)::type;
    constexpr gemm::Mma MMA = decltype(mma)::value;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    DenseEpi<T> epi{static_cast<T*>(c), ldc, static_cast<const T*>(bias), bias_mode, relu};
    cudaStream_t st = as_stream(stream);
    // A(m, k): a[m * lda + k] is contiguous along k; B(k, n) with trans_b: b[n * ldb + k] too.
    if (!trans_a && !trans_b)
      gemm::launch_gemm<MMA>(M, N, K, 1, gemm::MatLoader<T, true>{pa, lda, M, 0},
                             gemm::MatLoader<T, false>{pb, ldb, N, 0}, epi, true, st);
    else if (!trans_a && trans_b)
      gemm::launch_gemm<MMA>(M, N, K, 1, gemm::MatLoader<T, true>{pa, lda, M, 0},
                             gemm::MatLoader<T, true>{pb, ldb, N, 0}, epi, true, st);
    else if (trans_a && !trans_b)
      gemm::launch_gemm<MMA>(M, N, K, 1, gemm::MatLoader<T, false>{pa, lda, M, 0},
                             gemm::MatLoader<T, false>{pb, ldb, N, 0}, epi, true, st);
    else
      gemm::launch_gemm<MMA>(M, N, K, 1, gemm::MatLoader<T, false>{pa, lda, M, 0},
                             gemm::MatLoader<T, true>{pb, ldb, N, 0}, epi, true, st);
  });
}

}  // namespace cuda
}  // namespace imkern
