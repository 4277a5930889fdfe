// Box filter on CUDA: the sum (or mean) of each kh x kw window, anchored at (ay, ax).
//
// Algorithm: two kernels, both with a cost that does not grow with the window size, and no
// subtraction anywhere: every window sum adds only values of that window, so a NaN, an Inf
// or a huge value changes only the windows that hold it (running sums or prefix-sum
// differences spread them: NaN - NaN, Inf - Inf, (1e30 + 1) - 1e30).
//   1. Column sums: one thread per (image, row element, chunk of r = min(32, kh) rows). The
//      r windows of a chunk share their middle rows (kh - r + 1 of them, summed once); the
//      head rows before it are summed backwards (suffix sums, parked in the output) and the
//      tail rows after it forwards (prefix sums): (kh + 2r) / r loads per output. The border
//      rule is applied per source row (constant -> cval). A warp covers consecutive row
//      elements, so loads and stores are coalesced. Sums go to a stream-ordered float64
//      temporary (cudaMallocAsync), N x H x W*C.
//   2. Row window sums: a block owns 256 output elements of one row; it loads the needed
//      column sums (plus the (kw-1)*C halo, border applied: a constant column sums to
//      kh*cval) into shared memory. Windows up to 16 wide are summed directly; wider ones
//      by binary decomposition (sums of 1, 2, 4, ... columns by doubling in shared memory,
//      log2(kw) steps, the set bits of kw added per thread in a register). If the halo does
//      not fit in shared memory (kw*C beyond ~2800) a direct kernel sums the kw column sums
//      through L1.
// The mean divides the float64 sum by kh*kw (not a multiplication by the reciprocal).
// All sums are float64: exact for u8/u16 data (integers below 2^53), so integer results
// are exact up to the final rounding (nearest-even) and saturation. The output dtype U is
// the input's, float32 or float64 (written directly).
//
// Cost per output element: DRAM bytes = sizeof(T) read + sizeof(U) written + 16 (the
// float64 temporary written and read back) + 16 (the parked suffix sums, mostly in L2);
// adds = ~3 + kh/32 (pass 1) + min(kw, ~2 log2 kw) (pass 2). Variants: per dtype pair.
#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


constexpr int kRowChunk = 32;         // rows per thread in the column pass
constexpr int kSeg = kThreads;        // output elements per block in the row pass
constexpr int kDirectMaxWidth = 16;   // row windows up to this wide are summed directly

template <typename T>
__global__ void __launch_bounds__(kThreads)
    box_colsum_kernel(const T* __restrict__ src, double* __restrict__ col, Geom g, int kh, int ay, Border border,
                      double cval, int rchunk, int64_t nchunks, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, rest = i / g.wc;
    const int64_t chunk = rest % nchunks, b = rest / nchunks;
    const int64_t y0 = chunk * rchunk;
    const int r = static_cast<int>(y0 + rchunk < g.h ? rchunk : g.h - y0);  // 1 <= r <= rchunk <= kh
    const int64_t s0 = y0 - ay;  // window of output y0 + j: source rows s0 + j .. s0 + j + kh - 1
    const T* sb = src + b * g.s_bs;
    double* cb = col + (b * g.h + y0) * g.wc + e;
    // head: suffix sums of rows s0 + j .. s0 + r - 2, parked in the outputs
    double acc = 0.0;
    for (int j = r - 2; j >= 0; --j) {
      acc += load_px<double>(sb, s0 + j, e, g, border, cval);
      cb[j * g.wc] = acc;
    }
    // middle: rows s0 + r - 1 .. s0 + kh - 1, in every window of the chunk
    double mid = 0.0;
    for (int k = r - 1; k < kh; ++k) mid += load_px<double>(sb, s0 + k, e, g, border, cval);
    // tail: prefix sums of rows s0 + kh .. s0 + kh + j - 1
    double pre = 0.0;
    for (int j = 0; j < r; ++j) {
      double sum = mid;
      if (j < r - 1) sum = cb[j * g.wc] + sum;
      if (j > 0) {
        pre += load_px<double>(sb, s0 + kh + j - 1, e, g, border, cval);
        sum += pre;
      }
      cb[j * g.wc] = sum;
    }
  }
}

// The column sum that padded row element ge of row `cr` stands for (border applied).
__device__ __forceinline__ double col_at(const double* __restrict__ cr, int64_t ge, const Geom& g, Border border,
                                         double cval_col) {
  const int64_t xo = src_col(ge, g, border);
  return xo < 0 ? cval_col : cr[xo];
}

template <typename U>
__global__ void __launch_bounds__(kThreads)
    box_rowsum_kernel(const double* __restrict__ col, U* __restrict__ dst, Geom g, int kw, int ax, int cs,
                      Border border, double cval_col, bool normalize, double area, int64_t segs, int64_t items) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int halo = (kw - 1) * cs;
  const int len = kSeg + halo;
  double* buf0 = reinterpret_cast<double*>(smem_raw);  // [len]
  double* buf1 = buf0 + len;                           // [len] (doubling only)
  const bool scan = kw > kDirectMaxWidth;              // then cs == C >= 1
  const int tid = threadIdx.x;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {  // block-uniform loop
    const int64_t seg = it % segs, row = it / segs;  // row = b * H + y
    const int64_t y = row % g.h, b = row / g.h;
    const int64_t x0 = seg * kSeg;
    const double* cr = col + row * g.wc;
    const int64_t xbase = x0 - static_cast<int64_t>(ax) * g.c;
    for (int i = tid; i < len; i += kThreads) buf0[i] = col_at(cr, xbase + i, g, border, cval_col);
    __syncthreads();
    double sum = 0.0;
    if (scan) {
      // Binary decomposition: blk holds the sums of bs consecutive columns (stride cs) at
      // every position; each set bit of kw adds one of them to this thread's sum.
      double* blk = buf0;
      double* oth = buf1;
      int valid = len, offset = 0;
      for (int rem = kw, bs = 1;; bs *= 2) {
        if (rem & 1) {
          sum += blk[tid + offset * cs];
          offset += bs;
        }
        rem >>= 1;
        if (!rem) break;
        const int nvalid = valid - bs * cs;
        for (int i = tid; i < nvalid; i += kThreads) oth[i] = blk[i] + blk[i + bs * cs];
        __syncthreads();
        double* t = blk;
        blk = oth;
        oth = t;
        valid = nvalid;
      }
    } else {
      for (int j = 0; j < kw; ++j) sum += buf0[tid + j * cs];
    }
    const int64_t ge = x0 + tid;
    if (ge < g.wc) {
      if (normalize) sum /= area;
      dst[b * g.d_bs + y * g.d_rs + ge] = Store<U>::from(sum);
    }
    __syncthreads();  // buffers are rewritten by the next segment
  }
}

// Row pass for windows whose halo does not fit in shared memory.
template <typename U>
__global__ void __launch_bounds__(kThreads)
    box_rowsum_direct_kernel(const double* __restrict__ col, U* __restrict__ dst, Geom g, int kw, int ax,
                             Border border, double cval_col, bool normalize, double area, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const double* cr = col + row * g.wc;
    double sum = 0.0;
    for (int j = 0; j < kw; ++j) sum += col_at(cr, e + (static_cast<int64_t>(j) - ax) * g.c, g, border, cval_col);
    if (normalize) sum /= area;
    dst[b * g.d_bs + y * g.d_rs + e] = Store<U>::from(sum);
  }
}

template <typename T, typename U>
void box_typed(const void* src_v, const ImageDesc& s, void* dst_v, const ImageDesc& d, int kh, int kw, int ay,
               int ax, bool normalize, Border border, double cval, cudaStream_t st) {
  const T* src = static_cast<const T*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  const Geom g = make_geom(s, d);
  const int64_t rows = checked_mul(g.n, g.h);
  const int64_t elems = checked_mul(rows, g.wc);
  DeviceBuffer col(static_cast<size_t>(checked_mul(elems, static_cast<int64_t>(sizeof(double)))), st);

  const int rchunk = kh < kRowChunk ? kh : kRowChunk;
  const int64_t nchunks = ceil_div<int64_t>(g.h, rchunk);
  const int64_t items1 = checked_mul(checked_mul(g.n, nchunks), g.wc);
  box_colsum_kernel<T><<<grid_blocks(ceil_div<int64_t>(items1, kThreads)), kThreads, 0, st>>>(
      src, col.get<double>(), g, kh, ay, border, cval, rchunk, nchunks, items1);
  IMKERN_CUDA_CHECK_LAUNCH();

  const double area = static_cast<double>(kh) * static_cast<double>(kw);
  const double cval_col = static_cast<double>(kh) * cval;  // a column wholly in the constant border
  const int64_t halo = checked_mul(static_cast<int64_t>(kw) - 1, g.c);
  const bool scan = kw > kDirectMaxWidth;
  const int64_t len = kSeg + halo;
  const size_t smem = halo <= (int64_t{1} << 20) ? sizeof(double) * static_cast<size_t>(len) * (scan ? 2 : 1) : ~size_t{0};
  if (smem <= kSmemDefault) {
    const int cs = kw > 1 ? static_cast<int>(g.c) : 0;  // (kw-1)*C < len, so C fits in int when kw > 1
    const int64_t segs = ceil_div<int64_t>(g.wc, kSeg);
    const int64_t items2 = checked_mul(rows, segs);
    box_rowsum_kernel<U><<<grid_blocks(items2), kThreads, smem, st>>>(col.get<double>(), dst, g, kw, ax, cs, border,
                                                                   cval_col, normalize, area, segs, items2);
    IMKERN_CUDA_CHECK_LAUNCH();
  } else {
    box_rowsum_direct_kernel<U><<<grid_blocks(ceil_div<int64_t>(elems, kThreads)), kThreads, 0, st>>>(
        col.get<double>(), dst, g, kw, ax, border, cval_col, normalize, area, elems);
    IMKERN_CUDA_CHECK_LAUNCH();
  }
  col.release();
}

}  // namespace

void box_cuda(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d, int kh,
              int kw, int ay, int ax, bool normalize, Border border, double cval, void* stream) {
  if (!check_images(src, s, dst, d, kh, kw, ay, ax)) return;
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    box_typed<T, U>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
