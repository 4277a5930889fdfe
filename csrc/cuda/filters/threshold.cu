// threshold and integer histograms on CUDA (the CPU's csrc/cpu/filters/threshold.cpp).
//
// threshold: one thread per element (grid-stride over rows x row elements), the comparisons of
// the CPU kernel (integers: level floor(thresh) clamped to [-1, max] and maxval rounded and
// saturated on the host; float32 compares with float32(thresh)). DRAM: sizeof(T) in and out.
// histogram_int: uint8 uses a 256-bin shared-memory histogram per block (shared atomics, then
// one global atomic per bin and block); uint16 adds into the 65536 global bins directly (too
// many for shared memory), which is contention-bound on images of few values. Counts are
// 64-bit. Not yet run on a GPU.
#include <cmath>
#include <limits>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


// C = the comparison type: int for integer pixels (the level may be -1), T for floats.
template <typename T, typename C, int K>
__device__ __forceinline__ T thresh_one(T x, C t, T tout, T mv) {
  const C v = static_cast<C>(x);
  switch (K) {
    case 0: return v > t ? mv : T(0);
    case 1: return v <= t ? mv : T(0);
    case 2: return v > t ? tout : x;
    case 3: return v <= t ? T(0) : x;
    default: return v > t ? T(0) : x;
  }
}

template <typename T, typename C, int K>
__global__ void threshold_kernel(const T* __restrict__ src, T* __restrict__ dst, Geom g, C t, T tout, T mv,
                                 int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    dst[b * g.d_bs + y * g.d_rs + e] = thresh_one<T, C, K>(src[b * g.s_bs + y * g.s_rs + e], t, tout, mv);
  }
}

template <typename T, typename C>
void launch_threshold(const T* src, T* dst, const Geom& g, ThreshKind kind, C t, T tout, T mv, cudaStream_t st) {
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  const unsigned grid = grid_for(ceil_div<int64_t>(total, kThreads));
  switch (kind) {
    case ThreshKind::binary: threshold_kernel<T, C, 0><<<grid, kThreads, 0, st>>>(src, dst, g, t, tout, mv, total); break;
    case ThreshKind::binary_inv: threshold_kernel<T, C, 1><<<grid, kThreads, 0, st>>>(src, dst, g, t, tout, mv, total); break;
    case ThreshKind::trunc: threshold_kernel<T, C, 2><<<grid, kThreads, 0, st>>>(src, dst, g, t, tout, mv, total); break;
    case ThreshKind::tozero: threshold_kernel<T, C, 3><<<grid, kThreads, 0, st>>>(src, dst, g, t, tout, mv, total); break;
    case ThreshKind::tozero_inv: threshold_kernel<T, C, 4><<<grid, kThreads, 0, st>>>(src, dst, g, t, tout, mv, total); break;
    default: throw std::invalid_argument("threshold: unknown kind");
  }
  IMKERN_CUDA_CHECK_LAUNCH();
}

template <typename T>
void threshold_int(const void* src, const Geom& g, void* dst, ThreshKind kind, double thresh, double maxval,
                   cudaStream_t st) {
  constexpr int top = std::numeric_limits<T>::max();
  const double ft = std::floor(thresh);
  const int it = ft < -1 ? -1 : (ft > top ? top : static_cast<int>(ft));
  double rm = std::nearbyint(maxval);
  rm = rm < 0 ? 0 : (rm > top ? top : rm);
  launch_threshold<T, int>(static_cast<const T*>(src), static_cast<T*>(dst), g, kind, it,
                           static_cast<T>(it < 0 ? 0 : it), static_cast<T>(rm), st);
}

__global__ void histogram_u8_kernel(const uint8_t* __restrict__ src, Geom g, unsigned long long* hist,
                                    int64_t total) {
  __shared__ unsigned int h[256];
  for (int i = threadIdx.x; i < 256; i += kThreads) h[i] = 0;
  __syncthreads();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    atomicAdd(&h[src[b * g.s_bs + y * g.s_rs + e]], 1u);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 256; i += kThreads)
    if (h[i]) atomicAdd(&hist[i], static_cast<unsigned long long>(h[i]));
}

__global__ void histogram_u16_kernel(const uint16_t* __restrict__ src, Geom g, unsigned long long* hist,
                                     int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    atomicAdd(&hist[src[b * g.s_bs + y * g.s_rs + e]], 1ull);
  }
}

__global__ void adaptive_compare_kernel(const uint8_t* __restrict__ src, const uint8_t* __restrict__ mean,
                                        uint8_t* __restrict__ dst, Geom g, int64_t m_bs, int64_t m_rs, int idelta,
                                        uint8_t maxval, bool inv, int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    const int diff = static_cast<int>(src[b * g.s_bs + y * g.s_rs + e]) - static_cast<int>(mean[b * m_bs + y * m_rs + e]);
    dst[b * g.d_bs + y * g.d_rs + e] = (inv ? diff <= -idelta : diff > -idelta) ? maxval : 0;
  }
}

}  // namespace

void adaptive_compare_cuda(const uint8_t* src, const ImageDesc& s, const uint8_t* mean, const ImageDesc& m,
                           uint8_t* dst, const ImageDesc& d, int idelta, uint8_t maxval, bool inv, void* stream) {
  if (!check_images(src, s, dst, d, 1, 1, 0, 0)) return;
  if (m.n != s.n || m.h != s.h || m.w != s.w || m.c != s.c || !mean)
    throw std::invalid_argument("adaptive_compare: mean shape differs");
  const Geom g = make_geom(s, d);
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  adaptive_compare_kernel<<<grid_for(ceil_div<int64_t>(total, kThreads)), kThreads, 0, as_stream(stream)>>>(
      src, mean, dst, g, m.batch_stride, m.row_stride, idelta, maxval, inv, total);
  IMKERN_CUDA_CHECK_LAUNCH();
}

void threshold_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, ThreshKind kind,
                    double thresh, double maxval, void* stream) {
  if (!check_images(src, s, dst, d, 1, 1, 0, 0)) return;
  const Geom g = make_geom(s, d);
  const cudaStream_t st = as_stream(stream);
  switch (dtype) {
    case DType::u8: return threshold_int<uint8_t>(src, g, dst, kind, thresh, maxval, st);
    case DType::u16: return threshold_int<uint16_t>(src, g, dst, kind, thresh, maxval, st);
    case DType::f32: {
      const float t = static_cast<float>(thresh);
      return launch_threshold<float, float>(static_cast<const float*>(src), static_cast<float*>(dst), g, kind, t, t,
                                            static_cast<float>(maxval), st);
    }
    case DType::f64:
      return launch_threshold<double, double>(static_cast<const double*>(src), static_cast<double*>(dst), g, kind,
                                              thresh, thresh, maxval, st);
    default: throw std::invalid_argument("threshold: unsupported dtype on CUDA");
  }
}

void histogram_int_cuda(DType dtype, const void* src, const ImageDesc& s, unsigned long long* hist, void* stream) {
  if (s.n == 0 || s.h == 0 || s.w == 0 || s.c == 0) return;
  if (!src || !hist) throw std::invalid_argument("histogram: null pointer");
  const Geom g = make_geom(s, s);
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  const cudaStream_t st = as_stream(stream);
  if (dtype == DType::u8) {
    // a few blocks per SM: the per-block flush of 256 bins stays cheap
    const unsigned grid = grid_for(std::min<int64_t>(ceil_div<int64_t>(total, kThreads * 16), 4096));
    histogram_u8_kernel<<<grid, kThreads, 0, st>>>(static_cast<const uint8_t*>(src), g, hist, total);
  } else if (dtype == DType::u16) {
    histogram_u16_kernel<<<grid_for(ceil_div<int64_t>(total, kThreads)), kThreads, 0, st>>>(
        static_cast<const uint16_t*>(src), g, hist, total);
  } else {
    throw std::invalid_argument("histogram: uint8 or uint16 only");
  }
  IMKERN_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace imkern
