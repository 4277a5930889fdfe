// Box filter on CUDA: the sum (or mean) of each kh x kw window, anchored at (ay, ax).
//
// Algorithm: two kernels, both with a cost that does not grow with the window size.
//   1. Column running sums: one thread per (image, row element, chunk of 32 rows) walks down
//      its column keeping the kh-row window sum in a register (kh loads for the first row
//      of the chunk, then one entering and one leaving value per row), the border rule
//      applied per source row (constant -> cval). A warp covers consecutive row elements,
//      so loads and stores are coalesced. Sums go to a stream-ordered float64 temporary
//      (cudaMallocAsync), N x H x W*C.
//   2. Row window sums: a block owns 256 output elements of one row; it loads the needed
//      column sums (plus the (kw-1)*C halo, border applied: a constant column sums to
//      kh*cval) into shared memory. Windows up to 16 wide are summed directly; wider ones
//      by an in-block inclusive prefix scan with stride C (Hillis-Steele, log2(len/C)
//      steps) and one difference per output. If the halo does not fit in shared memory
//      (kw*C beyond ~2800) a direct kernel sums the kw column sums through L1.
// The mean divides the float64 sum by kh*kw (not a multiplication by the reciprocal).
// All sums are float64: exact for u8/u16 data (integers below 2^53), so integer results
// are exact up to the final rounding (nearest-even) and saturation.
//
// Cost per output element: DRAM bytes = sizeof(T) read + sizeof(T) written + 16 (the
// float64 temporary written and read back); adds = 2 + kh/32 (pass 1) + min(kw, ~2 log2)
// (pass 2). Variants: per dtype (u8, u16, f16, f32, f64).
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
                      double cval, int64_t nchunks, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, rest = i / g.wc;
    const int64_t chunk = rest % nchunks, b = rest / nchunks;
    const int64_t y0 = chunk * kRowChunk;
    const int64_t y1 = y0 + kRowChunk < g.h ? y0 + kRowChunk : g.h;
    const T* sb = src + b * g.s_bs;
    double* cb = col + b * g.h * g.wc + e;
    double sum = 0.0;
    for (int k = 0; k < kh; ++k) sum += load_px<double>(sb, y0 - ay + k, e, g, border, cval);
    cb[y0 * g.wc] = sum;
    for (int64_t y = y0 + 1; y < y1; ++y) {
      sum += load_px<double>(sb, y - ay + kh - 1, e, g, border, cval) -
             load_px<double>(sb, y - 1 - ay, e, g, border, cval);
      cb[y * g.wc] = sum;
    }
  }
}

// The column sum that padded row element ge of row `cr` stands for (border applied).
__device__ __forceinline__ double col_at(const double* __restrict__ cr, int64_t ge, const Geom& g, Border border,
                                         double cval_col) {
  const int64_t xo = src_col(ge, g, border);
  return xo < 0 ? cval_col : cr[xo];
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    box_rowsum_kernel(const double* __restrict__ col, T* __restrict__ dst, Geom g, int kw, int ax, int cs,
                      Border border, double cval_col, bool normalize, double area, int64_t segs, int64_t items) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int halo = (kw - 1) * cs;
  const int len = kSeg + halo;
  double* buf0 = reinterpret_cast<double*>(smem_raw);  // [len]
  double* buf1 = buf0 + len;                           // [len] (scan only)
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
    const double* res = buf0;
    if (scan) {
      double* in = buf0;
      double* out = buf1;
      for (int off = cs; off < len; off *= 2) {
        for (int i = tid; i < len; i += kThreads) out[i] = i >= off ? in[i] + in[i - off] : in[i];
        __syncthreads();
        double* t = in;
        in = out;
        out = t;
      }
      res = in;  // inclusive prefix sums with stride C
    }
    const int64_t ge = x0 + tid;
    if (ge < g.wc) {
      double sum;
      if (scan) {
        sum = res[tid + halo] - (tid >= cs ? res[tid - cs] : 0.0);
      } else {
        sum = 0.0;
        for (int j = 0; j < kw; ++j) sum += res[tid + j * cs];
      }
      if (normalize) sum /= area;
      dst[b * g.d_bs + y * g.d_rs + ge] = Store<T>::from(sum);
    }
    __syncthreads();  // buffers are rewritten by the next segment
  }
}

// Row pass for windows whose halo does not fit in shared memory.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    box_rowsum_direct_kernel(const double* __restrict__ col, T* __restrict__ dst, Geom g, int kw, int ax,
                             Border border, double cval_col, bool normalize, double area, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const double* cr = col + row * g.wc;
    double sum = 0.0;
    for (int j = 0; j < kw; ++j) sum += col_at(cr, e + (static_cast<int64_t>(j) - ax) * g.c, g, border, cval_col);
    if (normalize) sum /= area;
    dst[b * g.d_bs + y * g.d_rs + e] = Store<T>::from(sum);
  }
}

template <typename T>
void box_typed(const void* src_v, const ImageDesc& s, void* dst_v, const ImageDesc& d, int kh, int kw, int ay,
               int ax, bool normalize, Border border, double cval, cudaStream_t st) {
  const T* src = static_cast<const T*>(src_v);
  T* dst = static_cast<T*>(dst_v);
  const Geom g = make_geom(s, d);
  const int64_t rows = checked_mul(g.n, g.h);
  const int64_t elems = checked_mul(rows, g.wc);
  DeviceBuffer col(static_cast<size_t>(checked_mul(elems, static_cast<int64_t>(sizeof(double)))), st);

  const int64_t nchunks = ceil_div<int64_t>(g.h, kRowChunk);
  const int64_t items1 = checked_mul(checked_mul(g.n, nchunks), g.wc);
  box_colsum_kernel<T><<<grid_blocks(ceil_div<int64_t>(items1, kThreads)), kThreads, 0, st>>>(
      src, col.get<double>(), g, kh, ay, border, cval, nchunks, items1);
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
    box_rowsum_kernel<T><<<grid_blocks(items2), kThreads, smem, st>>>(col.get<double>(), dst, g, kw, ax, cs, border,
                                                                   cval_col, normalize, area, segs, items2);
    IMKERN_CUDA_CHECK_LAUNCH();
  } else {
    box_rowsum_direct_kernel<T><<<grid_blocks(ceil_div<int64_t>(elems, kThreads)), kThreads, 0, st>>>(
        col.get<double>(), dst, g, kw, ax, border, cval_col, normalize, area, elems);
    IMKERN_CUDA_CHECK_LAUNCH();
  }
  col.release();
}

}  // namespace

void box_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw, int ay,
              int ax, bool normalize, Border border, double cval, void* stream) {
  if (!check_images(src, s, dst, d, kh, kw, ay, ax)) return;
  visit_dtype<kImageDTypes>(dtype, "box", [&](auto tag) {
    using T = typename decltype(tag)::type;
    box_typed<T>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
