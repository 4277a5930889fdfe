// Separable filter on CUDA: out = ky (down the columns) then kx (along the rows), one fused
// kernel per tile.
//
// Algorithm (fused path): a block of 256 threads owns an output tile of TH rows x 256 row
// elements (a row of an (N, H, W, C) image is W*C packed elements; a horizontal tap is a
// shift of C elements, so every channel count is handled the same way).
//   1. Vertical pass, global -> shared: each thread owns one column of the tile plus its
//      horizontal halo ((kw-1)*C extra columns) and walks the TH+kh-1 source rows once,
//      keeping the TH partial sums in registers (each source value is loaded once and
//      feeds up to kh outputs). The border rule is applied at load time (rows and columns,
//      constant -> cval), loads of a warp are consecutive elements (coalesced); the TH
//      column sums go to shared memory.
//   2. Horizontal pass, shared -> registers -> global: each thread computes its element of
//      every tile row from kw shared reads (bank-conflict free: a warp reads consecutive
//      words) and stores it (coalesced), rounded and saturated for integer types.
// Fixed 3x3, 5x5 and 7x7 kernels are compiled with the sizes known (weights in registers,
// loops unrolled, TH = 16, interior tiles walk rows without border lookups); other sizes use
// the runtime-size variant (TH = 8): the vertical weights sit in registers for kh <= 16 / 32
// (loops unrolled to 16 / 32 taps, the taps past kh predicated off; float accumulators only)
// or are read from shared memory, and the horizontal pass runs taps-outer/rows-inner so each
// weight read from shared memory serves TH outputs. When the tile's shared memory
// (TH x (256 + (kw-1)*C) accumulators) would exceed 48 KiB (very wide kernels times many
// channels) a two-pass path runs instead: a vertical pass into a stream-ordered temporary
// (cudaMallocAsync) of the horizontally padded rows, then a horizontal pass out of it.
//
// Cost per output element: DRAM bytes = sizeof(T) read + sizeof(T) written (the (kh-1)/TH
// vertical halo re-reads and (kw-1)*C/256 horizontal halo re-reads hit L2); FLOPs = 2*(kh+kw)
// (plus (kw-1)*C/256 of the vertical work for the halo columns); shared memory: 1 write and
// kw reads of an accumulator.
// Expected limit (not yet measured): for small kernels the L1/shared-memory pipe, not DRAM.
// Per warp of 32 outputs of 5x5 u8 RGB: ~1.3 load + 1 store (global) and 1 + 5 shared
// wavefronts, i.e. ~8 wavefronts at ~1 per SM clock, roughly half of H200 HBM bandwidth
// for 1-byte pixels. Next steps if a profile confirms it: 4-byte vector loads of u8 rows in
// pass 1, and register blocking along x in pass 2 (needs a bank-conflict-free layout for
// C > 1).
// Variants: per dtype (u8, u16, f16, f32 accumulate in float; f64 in double) x {3x3, 5x5,
// 7x7, runtime size (kh <= 16, kh <= 32, any)} fused, and the runtime-size two-pass fallback.
#include <type_traits>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


constexpr int kTileW = kThreads;  // tile width in row elements: one output column per thread
constexpr int64_t kNoRow = INT64_MIN;  // row offset sentinel: the row lies in the constant border

// Vertical pass of one tile column with the kernel height known: source value s (from
// load(s)) feeds output rows s-KH+1 .. s; each row is stored to vcol[r * sw] as soon as it is
// complete, so at most KH accumulators stay live. Taps are summed in ascending order, as the
// reference does.
template <int KH, int TH, typename A, typename Load>
__device__ __forceinline__ void column_walk(A (&acc)[TH], const A (&wy)[KH], A* vcol, int sw, Load load) {
#pragma unroll
  for (int s = 0; s < TH + KH - 1; ++s) {
    const A v = load(s);
#pragma unroll
    for (int r = 0; r < TH; ++r) {
      const int i = s - r;
      if (i >= 0 && i < KH) acc[r] += wy[i] * v;
    }
    if (s >= KH - 1) vcol[(s - KH + 1) * sw] = acc[s - KH + 1];
  }
}

// Register cap of 64 (4 blocks of 256 threads per SM): occupancy hides the load latency;
// uncapped, the unrolled column walk would hoist every load and take ~150-240 registers.
// KH == KW == 0: sizes known at run time only; then KMAX > 0 bounds kh (weights in registers).
template <typename T, typename U, int KH, int KW, int TH, int KMAX>
__global__ void __launch_bounds__(kThreads, 4)
    sep_filter_kernel(const T* __restrict__ src, U* __restrict__ dst, const typename AccOf2<T, U>::type* __restrict__ ky,
                      const typename AccOf2<T, U>::type* __restrict__ kx, Geom g, int kh_rt, int kw_rt, int ay, int ax,
                      int cs, Border border, typename AccOf2<T, U>::type cval, int64_t tiles_x, int64_t tiles_y,
                      int64_t tiles) {
  using A = typename AccOf2<T, U>::type;
  constexpr bool kFixed = KH > 0;
  const int kh = kFixed ? KH : kh_rt;
  const int kw = kFixed ? KW : kw_rt;
  const int sw = kTileW + (kw - 1) * cs;  // tile columns incl. the horizontal halo (cs = C, or 0 when kw == 1)
  const int ns = TH + kh - 1;             // source rows of a tile
  extern __shared__ __align__(16) unsigned char smem_raw[];
  int64_t* rowoff = reinterpret_cast<int64_t*>(smem_raw);  // [ns] source row offsets (kNoRow: constant)
  A* vbuf = reinterpret_cast<A*>(rowoff + ns);              // [TH][sw] vertical sums
  A* wsh = vbuf + TH * sw;                                  // [kh + kw] weights (runtime-size variant)
  const int tid = threadIdx.x;

  A wy[kFixed ? KH : 1], wx[kFixed ? KW : 1];
  if constexpr (kFixed) {
#pragma unroll
    for (int i = 0; i < KH; ++i) wy[i] = ky[i];
#pragma unroll
    for (int j = 0; j < KW; ++j) wx[j] = kx[j];
  } else {
    for (int i = tid; i < kh; i += kThreads) wsh[i] = ky[i];
    for (int j = tid; j < kw; j += kThreads) wsh[kh + j] = kx[j];
    __syncthreads();
  }

  // The tile index is block-uniform, so every __syncthreads below is reached by all threads.
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t tx = t % tiles_x, rest = t / tiles_x;
    const int64_t ty = rest % tiles_y, b = rest / tiles_y;
    const int64_t x0 = tx * kTileW, y0 = ty * TH;
    const T* sb = src + b * g.s_bs;
    // Row border mapping once per tile (block-uniform); the previous tile's last barrier
    // guarantees nobody still reads rowoff.
    for (int s = tid; s < ns; s += kThreads) {
      const int64_t yy = border_index_dev(y0 - ay + s, g.h, border);
      rowoff[s] = yy < 0 ? kNoRow : yy * g.s_rs;
    }
    __syncthreads();
    const bool rows_inside = y0 - ay >= 0 && y0 - ay + ns <= g.h;  // block-uniform

    // 1. vertical pass: source rows y0-ay .. y0+TH-1+kh-1-ay of each tile column
    for (int col = tid; col < sw; col += kThreads) {
      const int64_t xo = src_col(x0 - static_cast<int64_t>(ax) * g.c + col, g, border);
      const T* cp = sb + (xo < 0 ? 0 : xo);
      A acc[TH];
#pragma unroll
      for (int r = 0; r < TH; ++r) acc[r] = A(0);
      if constexpr (kFixed) {
        if (rows_inside && xo >= 0) {  // interior: consecutive rows, no border lookups
          const T* p = cp + rowoff[0];
          const int64_t rs = g.s_rs;
          column_walk<KH, TH>(acc, wy, vbuf + col, sw, [&](int s) { return to_acc<A>(p[s * rs]); });
        } else {
          column_walk<KH, TH>(acc, wy, vbuf + col, sw, [&](int s) {
            const int64_t ro = rowoff[s];
            return (xo < 0 || ro == kNoRow) ? cval : to_acc<A>(cp[ro]);
          });
        }
      } else if constexpr (KMAX > 0) {
        // kh <= KMAX: the loops are unrolled over KMAX, so every tap index is a constant and
        // the weights live in registers; the taps beyond kh are predicated off.
        A wr[KMAX > 0 ? KMAX : 1];
#pragma unroll
        for (int i = 0; i < KMAX; ++i) wr[i] = i < kh ? wsh[i] : A(0);
#pragma unroll
        for (int s = 0; s < TH + KMAX - 1; ++s) {
          if (s < ns) {
            const int64_t ro = rowoff[s];
            const A v = (xo < 0 || ro == kNoRow) ? cval : to_acc<A>(cp[ro]);
#pragma unroll
            for (int r = 0; r < TH; ++r) {
              const int i = s - r;
              if (i >= 0 && i < KMAX && i < kh) acc[r] += wr[i] * v;
            }
          }
        }
#pragma unroll
        for (int r = 0; r < TH; ++r) vbuf[r * sw + col] = acc[r];
      } else {
        for (int s = 0; s < ns; ++s) {
          const int64_t ro = rowoff[s];
          const A v = (xo < 0 || ro == kNoRow) ? cval : to_acc<A>(cp[ro]);
#pragma unroll
          for (int r = 0; r < TH; ++r) {
            const int i = s - r;
            if (i >= 0 && i < kh) acc[r] += wsh[i] * v;
          }
        }
#pragma unroll
        for (int r = 0; r < TH; ++r) vbuf[r * sw + col] = acc[r];
      }
    }
    __syncthreads();

    // 2. horizontal pass: output element x0 + tid of each tile row
    const int64_t ge = x0 + tid;
    if constexpr (kFixed) {
      if (ge < g.wc) {
        U* db = dst + b * g.d_bs + ge;
#pragma unroll 4
        for (int r = 0; r < TH; ++r) {
          const int64_t y = y0 + r;
          if (y < g.h) {
            const A* vr = vbuf + r * sw + tid;
            A acc = A(0);
#pragma unroll
            for (int j = 0; j < KW; ++j) acc += wx[j] * vr[j * cs];
            db[y * g.d_rs] = Store<U>::from(acc);
          }
        }
      }
    } else {
      // Taps outer, rows inner: each weight read from shared memory serves TH outputs.
      // (Threads past the row end compute on in-bounds shared data and store nothing.)
      A acc[TH];
#pragma unroll
      for (int r = 0; r < TH; ++r) acc[r] = A(0);
      for (int j = 0; j < kw; ++j) {
        const A w = wsh[kh + j];
        const A* vj = vbuf + tid + j * cs;
#pragma unroll
        for (int r = 0; r < TH; ++r) acc[r] += w * vj[r * sw];
      }
      if (ge < g.wc) {
        U* db = dst + b * g.d_bs + ge;
#pragma unroll
        for (int r = 0; r < TH; ++r)
          if (y0 + r < g.h) db[(y0 + r) * g.d_rs] = Store<U>::from(acc[r]);
      }
    }
    __syncthreads();  // vbuf is rewritten by the next tile
  }
}

// Two-pass fallback, pass 1: tmp[(b*H + y) * wpc + col] = sum_i ky[i] * src(y - ay + i, col)
// over the horizontally padded row (wpc = W*C + (kw-1)*C columns, border applied).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    sep_vpass_kernel(const T* __restrict__ src, A* __restrict__ tmp, const A* __restrict__ ky, Geom g, int kh,
                     int ay, int ax, Border border, A cval, int64_t wpc, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = i % wpc, row = i / wpc;
    const int64_t y = row % g.h, b = row / g.h;
    const int64_t xo = src_col(col - static_cast<int64_t>(ax) * g.c, g, border);
    const T* sb = src + b * g.s_bs;
    A acc = A(0);
    for (int k = 0; k < kh; ++k) acc += ky[k] * load_px<A>(sb, y - ay + k, xo, g, border, cval);
    tmp[i] = acc;
  }
}

// Two-pass fallback, pass 2: out(b, y, e) = sum_j kx[j] * tmp[(b*H + y) * wpc + e + j*C].
template <typename U, typename A>
__global__ void __launch_bounds__(kThreads)
    sep_hpass_kernel(const A* __restrict__ tmp, U* __restrict__ dst, const A* __restrict__ kx, Geom g, int kw,
                     int64_t wpc, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const A* tr = tmp + row * wpc + e;
    A acc = A(0);
    for (int j = 0; j < kw; ++j) acc += kx[j] * tr[j * g.c];
    dst[b * g.d_bs + y * g.d_rs + e] = Store<U>::from(acc);
  }
}

template <typename T, typename U, int KH, int KW, int TH, int KMAX = 0>
void launch_fused(const T* src, U* dst, const typename AccOf2<T, U>::type* ky, const typename AccOf2<T, U>::type* kx,
                  const Geom& g, int kh, int kw, int ay, int ax, int cs, Border border, double cval, size_t smem,
                  cudaStream_t st) {
  using A = typename AccOf2<T, U>::type;
  const int64_t tiles_x = ceil_div<int64_t>(g.wc, kTileW), tiles_y = ceil_div<int64_t>(g.h, TH);
  const int64_t tiles = checked_mul(checked_mul(tiles_x, tiles_y), g.n);
  sep_filter_kernel<T, U, KH, KW, TH, KMAX><<<grid_blocks(tiles), kThreads, smem, st>>>(
      src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, static_cast<A>(cval), tiles_x, tiles_y, tiles);
  IMKERN_CUDA_CHECK_LAUNCH();
}

template <typename T, typename U>
void sep_filter_typed(const void* src_v, const ImageDesc& s, void* dst_v, const ImageDesc& d, const void* ky_v,
                      int kh, int ay, const void* kx_v, int kw, int ax, Border border, double cval, cudaStream_t st) {
  using A = typename AccOf2<T, U>::type;
  const T* src = static_cast<const T*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  const A* ky = static_cast<const A*>(ky_v);
  const A* kx = static_cast<const A*>(kx_v);
  const Geom g = make_geom(s, d);
  const int64_t halo = checked_mul(static_cast<int64_t>(kw) - 1, g.c);  // horizontal halo in row elements

  bool fixed = kh == kw && (kh == 3 || kh == 5 || kh == 7);
  if (halo <= (int64_t{1} << 20) && kh <= (1 << 20)) {  // else the tile cannot fit: two-pass path
    const int64_t sw = kTileW + halo;
    auto smem_for = [&](bool fx) {
      const int64_t th = fx ? 16 : 8;
      return sizeof(A) * static_cast<size_t>(th * sw + (fx ? 0 : int64_t{kh} + kw)) +
             sizeof(int64_t) * static_cast<size_t>(th + kh - 1);
    };
    if (fixed && smem_for(true) > kSmemDefault) fixed = false;  // the taller fixed-size tile does not fit
    const size_t smem = smem_for(fixed);
    if (smem <= kSmemDefault) {
      const int cs = kw > 1 ? static_cast<int>(g.c) : 0;  // (kw-1)*C <= sw, so C fits in int when kw > 1
      if (fixed) {
        switch (kh) {
          case 3: launch_fused<T, U, 3, 3, 16>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st); break;
          case 5: launch_fused<T, U, 5, 5, 16>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st); break;
          default: launch_fused<T, U, 7, 7, 16>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st); break;
        }
      } else {
        // Register-resident vertical weights for kh <= 32 (float accumulators only: with
        // double ones the weights would not fit in the 64-register budget).
        constexpr bool kRegWeights = std::is_same<A, float>::value;
        if (kRegWeights && kh <= 16)
          launch_fused<T, U, 0, 0, 8, kRegWeights ? 16 : 0>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st);
        else if (kRegWeights && kh <= 32)
          launch_fused<T, U, 0, 0, 8, kRegWeights ? 32 : 0>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st);
        else
          launch_fused<T, U, 0, 0, 8, 0>(src, dst, ky, kx, g, kh, kw, ay, ax, cs, border, cval, smem, st);
      }
      return;
    }
  }

  const int64_t wpc = checked_add(g.wc, halo);
  const int64_t rows = checked_mul(g.n, g.h);
  const int64_t tmp_elems = checked_mul(rows, wpc);
  DeviceBuffer tmp(static_cast<size_t>(checked_mul(tmp_elems, static_cast<int64_t>(sizeof(A)))), st);
  sep_vpass_kernel<T, A><<<grid_blocks(ceil_div<int64_t>(tmp_elems, kThreads)), kThreads, 0, st>>>(
      src, tmp.get<A>(), ky, g, kh, ay, ax, border, static_cast<A>(cval), wpc, tmp_elems);
  IMKERN_CUDA_CHECK_LAUNCH();
  const int64_t out_elems = checked_mul(rows, g.wc);
  sep_hpass_kernel<U, A><<<grid_blocks(ceil_div<int64_t>(out_elems, kThreads)), kThreads, 0, st>>>(
      tmp.get<A>(), dst, kx, g, kw, wpc, out_elems);
  IMKERN_CUDA_CHECK_LAUNCH();
  tmp.release();
}

}  // namespace

void sep_filter_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d,
                     const void* ky, int kh, int ay, const void* kx, int kw, int ax, Border border, double cval,
                     void* stream) {
  if (!check_images(src, s, dst, d, kh, kw, ay, ax)) return;
  if (!ky || !kx) throw std::invalid_argument("sep_filter: null kernel pointer");
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    sep_filter_typed<T, U>(src, s, dst, d, ky, kh, ay, kx, kw, ax, border, cval, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
