// The tiled GEMM core shared by gemm.cu (dense GEMM) and conv2d.cu (implicit GEMMs).
//
// C(m, n) = sum_k A(m, k) B(k, n) over a block tile BM x BN (BM = 64 or 128, BN = 128), k in
// steps of BK = 32, 256 threads (8 warps, 2 along m x 4 along n). Operands reach shared
// memory through loader objects, so the same kernel runs a dense GEMM (MatLoader) or gathers
// an im2col tile on the fly (conv2d.cu). Pipeline: the next k-tile's global loads are issued
// into registers before the current tile is multiplied from shared memory (register double
// buffering; cp.async is not used because the gathers of the implicit GEMMs are per element
// with zero fill). Math variants (Mma):
//   simt  float32 FMA, each thread a (BM/16) x 8 micro-tile           (exact float32)
//   tf32  WMMA m16n16k8 TF32 tensor cores, float32 accumulate          (sm_80+)
//   f16   WMMA m16n16k16 FP16, float32 accumulate                      (sm_70+)
//   bf16  WMMA m16n16k16 BF16, float32 accumulate                      (sm_80+)
// Split-K (deterministic): blockIdx.y = split index; each split writes float partials to a
// workspace, a second kernel sums the splits in index order and applies the epilogue.
#pragma once
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "common/common.cuh"

namespace imkern {
namespace cuda {
namespace gemm {

constexpr int BN = 128, BK = 32, NT = 256;
enum class Mma { simt, tf32, f16, bf16 };

template <Mma MMA>
struct SmemT {
  using type = float;
};
template <>
struct SmemT<Mma::f16> {
  using type = __half;
};
template <>
struct SmemT<Mma::bf16> {
  using type = __nv_bfloat16;
};

template <int BM, Mma MMA>
struct Tiles {
  using S = typename SmemT<MMA>::type;
  // Padding keeps WMMA's ldm a multiple of 16 bytes and every fragment pointer 32-byte aligned:
  // rows are (BM + PAD) * sizeof(S) bytes, fragments start at k multiples of 8 (tf32) or 16.
  static constexpr int PAD = sizeof(S) == 4 ? 4 : 8;
  static constexpr int LDA = BM + PAD, LDB = BN + PAD;
  static constexpr int A_BYTES = BK * LDA * static_cast<int>(sizeof(S));
  static constexpr int B_BYTES = BK * LDB * static_cast<int>(sizeof(S));
  static constexpr int EPI_BYTES = (NT / 32) * 16 * 16 * 4;  // one 16x16 float scratch per warp
  static constexpr int BYTES = (A_BYTES + B_BYTES) > EPI_BYTES ? (A_BYTES + B_BYTES) : EPI_BYTES;
  static_assert(A_BYTES % 32 == 0, "B tile must stay 32-byte aligned");
  static_assert(BYTES <= 48 * 1024, "static shared memory limit");
};

// The position in the tile of the i-th value a thread loads: e = tid + i * NT; with kContigK
// (operand contiguous along k) e -> (mn = e / BK, k = e % BK), else (k = e / BMN, mn = e % BMN).
// So with kContigK a thread's k offset is tid % BK for every i; otherwise its mn offset is
// tid % BMN for every i. Loaders exploit this to decompose indices once per tile.
template <bool CONTIG_K, int BMN>
__device__ __forceinline__ void tile_pos(int tid, int i, int& mn, int& k) {
  const int e = tid + i * NT;
  if (CONTIG_K) {
    mn = e / BK;
    k = e % BK;
  } else {
    mn = e % BMN;
    k = e / BMN;
  }
}

// ---- dense operand: element (mn, k) at p[mn * ld + k] (CONTIG_K) or p[k * ld + mn] -------------
template <typename T, bool CONTIG_K>
struct MatLoader {
  static constexpr bool kContigK = CONTIG_K;
  const T* p;
  int64_t ld, rows, zstride;  // rows: extent along mn; zstride: offset between batch items
  struct State {
    const T* base;
    int64_t mn0;
  };
  __device__ State init(int64_t mn0, int z) const { return {p + z * zstride, mn0}; }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    // Walk one pointer through the thread's elements (see tile_pos): with kContigK the row
    // advances by NT / BK per element, otherwise k advances by NT / BMN. Keeping a single
    // running pointer (instead of PER precomputed addresses) avoids register spills.
    const int tid = threadIdx.x;
    int mn, k;
    tile_pos<CONTIG_K, BMN>(tid, 0, mn, k);
    int64_t gm = st.mn0 + mn, gk = k0 + k;
    constexpr int STEP = CONTIG_K ? NT / BK : NT / BMN;
    const T* q = st.base + (CONTIG_K ? gm * ld + gk : gk * ld + gm);
    const int64_t qstep = STEP * ld;
#pragma unroll
    for (int i = 0; i < PER; ++i) {
      float x = 0.f;
      if (gm < rows && gk < kend) x = to_f(*q);
      v[i] = from_f<V>(x);
      if (CONTIG_K)
        gm += STEP;
      else
        gk += STEP;
      q += qstep;
    }
  }
};

// ---- the kernel --------------------------------------------------------------------------
// Grid: x = tile index (tm * tiles_n + tn), y = split-K index, z = batch/group (+ z_off).
// ws == nullptr: epi(m, n, z, value) writes the result; else the float partial goes to
// ws[((split * Z + z) * M + m) * N + n] and gemm_reduce_kernel finishes.
template <int BM, Mma MMA, class LA, class LB, class Epi>
__global__ void __launch_bounds__(NT) gemm_tile_kernel(int64_t M, int64_t N, int64_t K, int64_t k_split,
                                                       int64_t tiles_n, int z_off, int Z, LA la, LB lb, Epi epi,
                                                       float* ws) {
  using Tl = Tiles<BM, MMA>;
  using S = typename Tl::S;
  constexpr int LDA = Tl::LDA, LDB = Tl::LDB;
  constexpr int PA = BM * BK / NT, PB = BN * BK / NT;
  static_assert(NT % BM == 0 && NT % BN == 0 && NT % BK == 0, "tile mapping");
  __shared__ __align__(128) unsigned char smem[Tl::BYTES];
  S* As = reinterpret_cast<S*>(smem);                // [BK][LDA]: As[k * LDA + m]
  S* Bs = reinterpret_cast<S*>(smem + Tl::A_BYTES);  // [BK][LDB]: Bs[k * LDB + n]

  const int tid = threadIdx.x;
  const int64_t tile = blockIdx.x;
  const int64_t m0 = (tile / tiles_n) * BM, n0 = (tile % tiles_n) * BN;
  const int split = blockIdx.y;
  const int z = static_cast<int>(blockIdx.z) + z_off;
  const int64_t kbeg = static_cast<int64_t>(split) * k_split;
  const int64_t kend = kbeg + k_split < K ? kbeg + k_split : K;

  const auto sa = la.init(m0, z);
  const auto sb = lb.init(n0, z);
  S ra[PA], rb[PB];  // prefetched operands, already in the shared-memory type
  if (kbeg < kend) {
    la.template load<BM, PA>(sa, kbeg, kend, ra);
    lb.template load<BN, PB>(sb, kbeg, kend, rb);
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  constexpr bool kArchOk = MMA == Mma::simt || MMA == Mma::f16;
#else
  constexpr bool kArchOk = true;
#endif

  if constexpr (MMA == Mma::simt || !kArchOk) {
    if constexpr (!kArchOk) {
      __trap();  // the host never launches TF32/BF16 tiles below sm_80
    } else {
      // ---- SIMT float32: thread (tx, ty) owns rows ty + 16 i, columns tx + 16 j ----
      constexpr int TM = BM / 16, TN = BN / 16;
      const int tx = tid % 16, ty = tid / 16;
      float acc[TM][TN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
      for (int64_t k0 = kbeg; k0 < kend; k0 += BK) {
#pragma unroll
        for (int i = 0; i < PA; ++i) {
          int mn, k;
          tile_pos<LA::kContigK, BM>(tid, i, mn, k);
          As[k * LDA + mn] = ra[i];
        }
#pragma unroll
        for (int i = 0; i < PB; ++i) {
          int mn, k;
          tile_pos<LB::kContigK, BN>(tid, i, mn, k);
          Bs[k * LDB + mn] = rb[i];
        }
        __syncthreads();
        if (k0 + BK < kend) {
          la.template load<BM, PA>(sa, k0 + BK, kend, ra);
          lb.template load<BN, PB>(sb, k0 + BK, kend, rb);
        }
#pragma unroll 4
        for (int kk = 0; kk < BK; ++kk) {
          float a[TM], b[TN];
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = to_f(As[kk * LDA + ty + 16 * i]);
#pragma unroll
          for (int j = 0; j < TN; ++j) b[j] = to_f(Bs[kk * LDB + tx + 16 * j]);
#pragma unroll
          for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          const int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
          if (m < M && n < N) {
            if (ws)
              ws[((static_cast<int64_t>(split) * Z + z) * M + m) * N + n] = acc[i][j];
            else
              epi(m, n, z, acc[i][j]);
          }
        }
    }
  } else {
    // ---- tensor cores: warp (wm, wn) owns rows wm * BM/2 .. +BM/2, columns wn * 32 .. +32 ----
    using namespace nvcuda;
    constexpr int KS = MMA == Mma::tf32 ? 8 : 16;
    using FragT = std::conditional_t<MMA == Mma::tf32, wmma::precision::tf32, S>;
    constexpr int FM = BM / 32, FN = 2;
    const int warp = tid / 32, lane = tid % 32;
    const int wm = warp / 4, wn = warp % 4;
    wmma::fragment<wmma::accumulator, 16, 16, KS, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.f);

    for (int64_t k0 = kbeg; k0 < kend; k0 += BK) {
#pragma unroll
      for (int i = 0; i < PA; ++i) {
        int mn, k;
        tile_pos<LA::kContigK, BM>(tid, i, mn, k);
        As[k * LDA + mn] = ra[i];
      }
#pragma unroll
      for (int i = 0; i < PB; ++i) {
        int mn, k;
        tile_pos<LB::kContigK, BN>(tid, i, mn, k);
        Bs[k * LDB + mn] = rb[i];
      }
      __syncthreads();
      if (k0 + BK < kend) {
        la.template load<BM, PA>(sa, k0 + BK, kend, ra);
        lb.template load<BN, PB>(sb, k0 + BK, kend, rb);
      }
#pragma unroll
      for (int kk = 0; kk < BK; kk += KS) {
        // Both B fragments stay in registers; A fragments are loaded one at a time (registers).
        wmma::fragment<wmma::matrix_b, 16, 16, KS, FragT, wmma::row_major> fb[FN];
#pragma unroll
        for (int j = 0; j < FN; ++j) {
          wmma::load_matrix_sync(fb[j], Bs + kk * LDB + wn * 32 + j * 16, LDB);
          if constexpr (MMA == Mma::tf32) {
#pragma unroll
            for (int t = 0; t < fb[j].num_elements; ++t) fb[j].x[t] = wmma::__float_to_tf32(fb[j].x[t]);
          }
        }
#pragma unroll
        for (int i = 0; i < FM; ++i) {
          wmma::fragment<wmma::matrix_a, 16, 16, KS, FragT, wmma::col_major> fa;
          wmma::load_matrix_sync(fa, As + kk * LDA + wm * (BM / 2) + i * 16, LDA);
          if constexpr (MMA == Mma::tf32) {
#pragma unroll
            for (int t = 0; t < fa.num_elements; ++t) fa.x[t] = wmma::__float_to_tf32(fa.x[t]);
          }
#pragma unroll
          for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
        }
      }
      __syncthreads();
    }
    // Epilogue through a per-warp 16x16 scratch that aliases the (now idle) tiles.
    __syncthreads();
    float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j) {
        wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          const int e = lane + 32 * t;
          const int64_t m = m0 + wm * (BM / 2) + i * 16 + (e >> 4);
          const int64_t n = n0 + wn * 32 + j * 16 + (e & 15);
          if (m < M && n < N) {
            if (ws)
              ws[((static_cast<int64_t>(split) * Z + z) * M + m) * N + n] = scratch[e];
            else
              epi(m, n, z, scratch[e]);
          }
        }
        __syncwarp();
      }
  }
}

// Sums the split-K partials in split order and applies the epilogue.
template <class Epi>
__global__ void gemm_reduce_kernel(int64_t M, int64_t N, int Z, int splits, const float* __restrict__ ws, Epi epi) {
  const int64_t total = static_cast<int64_t>(Z) * M * N;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int sp = 0; sp < splits; ++sp) s += ws[sp * total + idx];
    const int64_t z = idx / (M * N), mn = idx - z * (M * N);
    epi(mn / N, mn % N, static_cast<int>(z), s);
  }
}

// Whether this device has TF32/BF16 tensor cores (sm_80+), cached per device.
inline bool device_sm80() {
  int dev = 0;
  IMKERN_CUDA_CHECK(cudaGetDevice(&dev));
  int major = 0;
  IMKERN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major >= 8;
}

// Runs C = A B over Z batch items. allow_split: the epilogue may be deferred to a split-K
// reduction (the split count depends on M, N, K, Z only, so results are reproducible across
// runs and devices).
template <Mma MMA, class LA, class LB, class Epi>
void launch_gemm(int64_t M, int64_t N, int64_t K, int64_t Z, const LA& la, const LB& lb, const Epi& epi,
                 bool allow_split, cudaStream_t st) {
  if (M <= 0 || N <= 0 || Z <= 0) return;
  if ((MMA == Mma::tf32 || MMA == Mma::bf16) && !device_sm80())
    throw std::invalid_argument("imkern CUDA GEMM: TF32/bfloat16 tensor cores need compute capability 8.0+");
  const int bm = M <= 64 ? 64 : 128;
  const int64_t tiles_m = ceil_div<int64_t>(M, bm), tiles_n = ceil_div<int64_t>(N, BN);
  if (tiles_m > INT64_MAX / tiles_n || tiles_m * tiles_n > static_cast<int64_t>(INT32_MAX))
    throw std::overflow_error("imkern CUDA GEMM: too many output tiles");
  const int64_t tiles = tiles_m * tiles_n;
  // Split K when the output has few tiles and the reduction is long (weight gradients).
  int64_t splits = 1;
  if (allow_split && K >= 4 * BK) {
    const int64_t want = std::max<int64_t>(1, 256 / std::max<int64_t>(1, tiles * Z));
    splits = std::min<int64_t>({want, K / (4 * BK), 64});
    if (splits < 1) splits = 1;
  }
  int64_t k_split = ceil_div<int64_t>(ceil_div<int64_t>(std::max<int64_t>(K, 1), splits), BK) * BK;
  splits = K > 0 ? ceil_div<int64_t>(K, k_split) : 1;
  if (splits > 1 && checked_mul(checked_mul(Z, M), N) > INT64_MAX / (splits * 4))
    throw std::overflow_error("imkern CUDA GEMM: workspace size");
  DeviceBuffer ws(splits > 1 ? static_cast<size_t>(splits) * Z * M * N * sizeof(float) : 0, st);
  for (int64_t z0 = 0; z0 < Z; z0 += 65535) {
    const int64_t zc = std::min<int64_t>(65535, Z - z0);
    dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(splits), static_cast<unsigned>(zc));
    if (bm == 64)
      gemm_tile_kernel<64, MMA><<<grid, NT, 0, st>>>(M, N, K, k_split, tiles_n, static_cast<int>(z0),
                                                     static_cast<int>(Z), la, lb, epi, ws.get<float>());
    else
      gemm_tile_kernel<128, MMA><<<grid, NT, 0, st>>>(M, N, K, k_split, tiles_n, static_cast<int>(z0),
                                                      static_cast<int>(Z), la, lb, epi, ws.get<float>());
    IMKERN_CUDA_CHECK_LAUNCH();
  }
  if (splits > 1) {
    gemm_reduce_kernel<<<grid_for(Z * M * N), kThreads, 0, st>>>(M, N, static_cast<int>(Z),
                                                                          static_cast<int>(splits), ws.get<float>(),
                                                                          epi);
    IMKERN_CUDA_CHECK_LAUNCH();
  }
}

// Calls f(TypeTag<T>{}, std::integral_constant<Mma, ...>{}) for dt and the TF32 setting.
template <typename F>
void dispatch_mma(DType dt, bool allow_tf32, const char* op, F&& f) {
  switch (dt) {
    case DType::f32:
      if (allow_tf32)
        f(TypeTag<float>{}, std::integral_constant<Mma, Mma::tf32>{});
      else
        f(TypeTag<float>{}, std::integral_constant<Mma, Mma::simt>{});
      return;
    case DType::f16: f(TypeTag<__half>{}, std::integral_constant<Mma, Mma::f16>{}); return;
    case DType::bf16: f(TypeTag<__nv_bfloat16>{}, std::integral_constant<Mma, Mma::bf16>{}); return;
    default:
      throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(dt) +
                                  " is not supported on CUDA; expected float32, float16 or bfloat16");
  }
}

}  // namespace gemm
}  // namespace cuda
}  // namespace imkern
