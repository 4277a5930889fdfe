// Dense 2-D correlation on CUDA: out(y, x) = sum_{i,j} k[i][j] * src(y + i - ay, x + j - ax).
//
// Algorithm (tiled path): a block of 256 threads owns an output tile of TH rows x TW row
// elements (a row of an (N, H, W, C) image is W*C packed elements; a horizontal tap is a
// shift of C elements). The tile plus its halo ((TH+kh-1) x (TW+(kw-1)*C)) is loaded once
// into shared memory as accumulators, the border rule applied at load time (coalesced: a
// warp loads consecutive elements of a row); the kh*kw weights are staged in shared memory.
// Each thread then computes R = 8 outputs of one column: for every tap it reads the weight
// once (a broadcast) and R tile values (a warp reads consecutive words: no bank conflicts),
// so the weight traffic is amortized over R outputs. Stores are coalesced; integers are
// rounded to nearest-even and saturated. The tile shape (TW, TH) = (256/G, 8G), G in
// {1, 2, 4, 8}, is chosen per call to minimize the halo overhead within the shared memory
// available (48 KiB, or the device's opt-in maximum for large kernels); kernels whose tile
// cannot fit even then use a direct kernel that reads the kh*kw taps through L1.
//
// Cost per output element: DRAM bytes = sizeof(T) read + sizeof(T) written (halo re-reads
// hit L2); FLOPs = 2*kh*kw; shared memory reads = kh*kw*(1 + 1/R).
// Variants: per dtype (u8, u16, f16, f32 accumulate in float; f64 in double), tiled and
// direct.
#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


constexpr int kRows = 8;  // output rows per thread (R)

template <typename T, typename U>
__global__ void __launch_bounds__(kThreads)
    correlate_tiled_kernel(const T* __restrict__ src, U* __restrict__ dst, const typename AccOf2<T, U>::type* __restrict__ k,
                           Geom g, int kh, int kw, int ay, int ax, int cs, Border border,
                           typename AccOf2<T, U>::type cval, int tw, int64_t tiles_x, int64_t tiles_y, int64_t tiles) {
  using A = typename AccOf2<T, U>::type;
  const int groups = kThreads / tw;  // row groups of kRows rows
  const int th = kRows * groups;
  const int rows_t = th + kh - 1, cols_t = tw + (kw - 1) * cs;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* tile = reinterpret_cast<A*>(smem_raw);  // [rows_t][cols_t]
  A* wsh = tile + rows_t * cols_t;           // [kh][kw]
  const int tid = threadIdx.x;
  const int nk = kh * kw;
  for (int i = tid; i < nk; i += kThreads) wsh[i] = k[i];  // visible after the first tile load's barrier

  const int e = tid % tw, grp = tid / tw;
  const int ntile = rows_t * cols_t;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {  // block-uniform loop
    const int64_t tx = t % tiles_x, rest = t / tiles_x;
    const int64_t ty = rest % tiles_y, b = rest / tiles_y;
    const int64_t x0 = tx * tw, y0 = ty * th;
    const T* sb = src + b * g.s_bs;
    const int64_t xbase = x0 - static_cast<int64_t>(ax) * g.c;
    for (int idx = tid; idx < ntile; idx += kThreads) {
      const int r = idx / cols_t, c = idx - r * cols_t;
      tile[idx] = load_px<A>(sb, y0 - ay + r, src_col(xbase + c, g, border), g, border, cval);
    }
    __syncthreads();

    A acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = A(0);
    const A* base = tile + grp * kRows * cols_t + e;
    for (int i = 0; i < kh; ++i) {  // taps in the reference's order: i, then j
      const A* wrow = wsh + i * kw;
      const A* trow = base + i * cols_t;
      for (int j = 0; j < kw; ++j) {
        const A w = wrow[j];
        const A* tp = trow + j * cs;
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r] += w * tp[r * cols_t];
      }
    }
    const int64_t ge = x0 + e;
    if (ge < g.wc) {
      U* db = dst + b * g.d_bs + ge;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t y = y0 + grp * kRows + r;
        if (y < g.h) db[y * g.d_rs] = Store<U>::from(acc[r]);
      }
    }
    __syncthreads();  // the tile is rewritten by the next iteration
  }
}

// Direct path for kernels too large for any tile: one output per thread, taps through L1.
template <typename T, typename U>
__global__ void __launch_bounds__(kThreads)
    correlate_direct_kernel(const T* __restrict__ src, U* __restrict__ dst, const typename AccOf2<T, U>::type* __restrict__ k,
                            Geom g, int kh, int kw, int ay, int ax, Border border, typename AccOf2<T, U>::type cval,
                            int64_t total) {
  using A = typename AccOf2<T, U>::type;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const T* sb = src + b * g.s_bs;
    A acc = A(0);
    for (int ii = 0; ii < kh; ++ii) {
      const A* krow = k + static_cast<int64_t>(ii) * kw;
      for (int j = 0; j < kw; ++j) {
        const int64_t xo = src_col(e + (static_cast<int64_t>(j) - ax) * g.c, g, border);
        acc += krow[j] * load_px<A>(sb, y - ay + ii, xo, g, border, cval);
      }
    }
    dst[b * g.d_bs + y * g.d_rs + e] = Store<U>::from(acc);
  }
}

struct TilePlan {
  int tw = 0;        // 0: no tile fits
  size_t smem = 0;
};

// Picks the tile shape with the least shared-memory traffic per useful output.
template <typename A>
TilePlan plan_tile(const Geom& g, int kh, int kw, int64_t halo, size_t limit) {
  TilePlan best;
  double best_cost = 0;
  if (halo > (int64_t{1} << 20) || kh > (1 << 20)) return best;
  for (int groups = 1; groups <= 8; groups *= 2) {
    const int64_t tw = kThreads / groups, th = int64_t{kRows} * groups;
    const int64_t rows_t = th + kh - 1, cols_t = tw + halo;
    const int64_t elems = rows_t * cols_t + int64_t{kh} * kw;
    const size_t smem = sizeof(A) * static_cast<size_t>(elems);
    if (smem > limit) continue;
    const double useful = static_cast<double>(std::min<int64_t>(th, g.h)) * static_cast<double>(std::min(tw, g.wc));
    const double cost = (static_cast<double>(rows_t * cols_t) + static_cast<double>(th * tw) * kh * kw) / useful;
    if (best.tw == 0 || cost < best_cost) {
      best.tw = static_cast<int>(tw);
      best.smem = smem;
      best_cost = cost;
    }
  }
  return best;
}

template <typename T, typename U>
void correlate_typed(const void* src_v, const ImageDesc& s, void* dst_v, const ImageDesc& d, const void* k_v, int kh,
                     int kw, int ay, int ax, Border border, double cval, cudaStream_t st) {
  using A = typename AccOf2<T, U>::type;
  const T* src = static_cast<const T*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  const A* k = static_cast<const A*>(k_v);
  const Geom g = make_geom(s, d);
  const int64_t halo = checked_mul(static_cast<int64_t>(kw) - 1, g.c);
  checked_mul(kh, kw);

  TilePlan plan = plan_tile<A>(g, kh, kw, halo, kSmemDefault);
  if (plan.tw == 0) {
    const size_t optin = smem_optin_limit();
    plan = plan_tile<A>(g, kh, kw, halo, optin);
    if (plan.tw != 0)
      IMKERN_CUDA_CHECK(cudaFuncSetAttribute(correlate_tiled_kernel<T, U>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(plan.smem)));
  }
  if (plan.tw != 0) {
    const int cs = kw > 1 ? static_cast<int>(g.c) : 0;  // (kw-1)*C fits the tile, so C fits in int when kw > 1
    const int th = kRows * (kThreads / plan.tw);
    const int64_t tiles_x = ceil_div<int64_t>(g.wc, plan.tw), tiles_y = ceil_div<int64_t>(g.h, th);
    const int64_t tiles = checked_mul(checked_mul(tiles_x, tiles_y), g.n);
    correlate_tiled_kernel<T, U><<<grid_blocks(tiles), kThreads, plan.smem, st>>>(
        src, dst, k, g, kh, kw, ay, ax, cs, border, static_cast<A>(cval), plan.tw, tiles_x, tiles_y, tiles);
    IMKERN_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  correlate_direct_kernel<T, U><<<grid_blocks(ceil_div<int64_t>(total, kThreads)), kThreads, 0, st>>>(
      src, dst, k, g, kh, kw, ay, ax, border, static_cast<A>(cval), total);
  IMKERN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void correlate_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                    const void* k,
                    int kh, int kw, int ay, int ax, Border border, double cval, void* stream) {
  if (!check_images(src, s, dst, d, kh, kw, ay, ax)) return;
  if (!k) throw std::invalid_argument("correlate: null kernel pointer");
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    correlate_typed<T, U>(src, s, dst, d, k, kh, kw, ay, ax, border, cval, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
