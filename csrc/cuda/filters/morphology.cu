// Grey erosion / dilation on CUDA with a flat footprint (anchor (ay, ax), not mirrored), the
// same definition as csrc/cpu/filters/morphology.cpp: out(y, x) = min / max over the nonzero
// (i, j) of src(y + i - ay, x + j - ax), border by rule (the Python layer turns "outside
// ignored" into a constant holding the op's identity); floats propagate NaN.
//
// Variants:
//  * Rectangles: two separable passes, each one thread per element with coalesced loads along
//    the row: a horizontal min/max of fw taps into a stream-ordered temporary, then a vertical
//    one of fh taps (out-of-image rows of the temporary by the border rule, constant rows the
//    constant). Loads per pixel: fw + fh.
//  * Other footprints: the footprint's horizontal runs (row, first column, length) in device
//    memory; one thread per output element walks the runs. Loads per pixel: the number of ones.
// Elements of consecutive threads are consecutive row elements (pixel x channel), so a warp
// reads contiguous memory for every tap.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


template <bool Max, typename T>
__device__ __forceinline__ T pick(T a, T b) {
  if (Max) return (a > b || a != a) ? a : b;
  return (a < b || a != a) ? a : b;
}

template <typename T>
__device__ __forceinline__ T px(const T* __restrict__ sb, int64_t sy, int64_t sx, int64_t ch, const Geom& g,
                                Border border, T cv) {
  const int64_t yy = border_index_dev(sy, g.h, border);
  const int64_t xx = border_index_dev(sx, g.w, border);
  if (yy < 0 || xx < 0) return cv;
  return sb[yy * g.s_rs + xx * g.c + ch];
}

struct RunDev {
  int row, col, len;
};

template <bool Max, typename T>
__global__ void __launch_bounds__(kThreads)
    morph_runs_kernel(const T* __restrict__ src, T* __restrict__ dst, Geom g, const RunDev* __restrict__ runs,
                      int nruns, int ay, int ax, Border border, T cv, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const int64_t x = e / g.c, ch = e % g.c;
    const T* sb = src + b * g.s_bs;
    T acc = px(sb, y - ay + runs[0].row, x - ax + runs[0].col, ch, g, border, cv);
    for (int r = 0; r < nruns; ++r) {
      const RunDev rd = runs[r];
      const int64_t sy = y - ay + rd.row;
      for (int j = (r == 0 ? 1 : 0); j < rd.len; ++j)
        acc = pick<Max>(acc, px(sb, sy, x - ax + rd.col + j, ch, g, border, cv));
    }
    dst[b * g.d_bs + y * g.d_rs + e] = acc;
  }
}

// Horizontal pass of a rectangle: tmp (packed N x H x W*C) = op over fw taps along the row.
template <bool Max, typename T>
__global__ void __launch_bounds__(kThreads)
    morph_rows_kernel(const T* __restrict__ src, T* __restrict__ tmp, Geom g, int fw, int ax, Border border, T cv,
                      int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const int64_t x = e / g.c, ch = e % g.c;
    const T* sb = src + b * g.s_bs;
    T acc = px(sb, y, x - ax, ch, g, border, cv);
    for (int j = 1; j < fw; ++j) acc = pick<Max>(acc, px(sb, y, x - ax + j, ch, g, border, cv));
    tmp[i] = acc;
  }
}

// Vertical pass: out = op over fh rows of tmp (rows outside by the border rule).
template <bool Max, typename T>
__global__ void __launch_bounds__(kThreads)
    morph_cols_kernel(const T* __restrict__ tmp, T* __restrict__ dst, Geom g, int fh, int ay, Border border, T cv,
                      int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.wc, row = i / g.wc;
    const int64_t y = row % g.h, b = row / g.h;
    const T* tb = tmp + b * g.h * g.wc;
    T acc = cv;
    for (int k = 0; k < fh; ++k) {
      const int64_t yy = border_index_dev(y - ay + k, g.h, border);
      const T v = yy < 0 ? cv : tb[yy * g.wc + e];
      acc = k == 0 ? v : pick<Max>(acc, v);
    }
    dst[b * g.d_bs + y * g.d_rs + e] = acc;
  }
}

template <typename T>
T host_cval(double c) {
  if (std::is_integral<T>::value) {
    const double hi = sizeof(T) == 1 ? 255.0 : 65535.0;
    return static_cast<T>(std::nearbyint(std::min(hi, std::max(0.0, c))));
  }
  return static_cast<T>(c);
}

template <bool Max, typename T>
void morph_typed(const T* src, T* dst, const Geom& g, const uint8_t* fp, int fh, int fw, int ay, int ax,
                 Border border, double cval, cudaStream_t st) {
  const T cv = host_cval<T>(cval);
  std::vector<RunDev> runs;
  for (int i = 0; i < fh; ++i)
    for (int j = 0; j < fw;) {
      if (!fp[i * fw + j]) {
        ++j;
        continue;
      }
      int e = j;
      while (e < fw && fp[i * fw + e]) ++e;
      runs.push_back(RunDev{i, j, e - j});
      j = e;
    }
  if (runs.empty()) throw std::invalid_argument("footprint: has no nonzero element");
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  const unsigned grid = grid_for(ceil_div<int64_t>(total, kThreads));
  bool rect = static_cast<int>(runs.size()) == fh;
  for (const RunDev& r : runs) rect = rect && r.len == fw;
  if (rect && fh > 1 && fw > 1) {
    DeviceBuffer tmp(static_cast<size_t>(checked_mul(total, static_cast<int64_t>(sizeof(T)))), st);
    morph_rows_kernel<Max, T><<<grid, kThreads, 0, st>>>(src, tmp.get<T>(), g, fw, ax, border, cv, total);
    IMKERN_CUDA_CHECK_LAUNCH();
    morph_cols_kernel<Max, T><<<grid, kThreads, 0, st>>>(tmp.get<T>(), dst, g, fh, ay, border, cv, total);
    IMKERN_CUDA_CHECK_LAUNCH();
    tmp.release();
    return;
  }
  DeviceBuffer druns(sizeof(RunDev) * runs.size(), st);
  // Pageable source: the copy is staged before cudaMemcpyAsync returns, so `runs` may go.
  IMKERN_CUDA_CHECK(cudaMemcpyAsync(druns.get<RunDev>(), runs.data(), sizeof(RunDev) * runs.size(),
                                    cudaMemcpyHostToDevice, st));
  morph_runs_kernel<Max, T><<<grid, kThreads, 0, st>>>(src, dst, g, druns.get<RunDev>(),
                                                       static_cast<int>(runs.size()), ay, ax, border, cv, total);
  IMKERN_CUDA_CHECK_LAUNCH();
  druns.release();
}

}  // namespace

void morphology_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                     const uint8_t* fp, int fh, int fw, int ay, int ax, bool dilate, Border border, double cval,
                     void* stream) {
  if (!fp) throw std::invalid_argument("footprint: null");
  if (!check_images(src, s, dst, d, fh, fw, ay, ax)) return;
  const Geom g = make_geom(s, d);
  const cudaStream_t st = as_stream(stream);
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* sp = static_cast<const T*>(src);
    T* dp = static_cast<T*>(dst);
    if (dilate) morph_typed<true, T>(sp, dp, g, fp, fh, fw, ay, ax, border, cval, st);
    else morph_typed<false, T>(sp, dp, g, fp, fh, fw, ay, ax, border, cval, st);
  };
  visit_dtype<kImageDTypes & ~dtype_bit(DType::f16)>(dtype, "imkern: morphology", run);
}

}  // namespace cuda
}  // namespace imkern
