// Unsharp mask on CUDA (the CPU's csrc/cpu/filters/unsharp.cpp).
//
// Algorithm: pass 1 filters every source row along x (kx, borders by src_col) into a
// stream-ordered float temporary (float64 for float64 images) of N*H rows; pass 2 forms each
// output element's blur from kh temporary rows (rows outside the image by the border rule;
// constant-border rows are cval * sum(kx)) and combines it with the source pixel in the same
// thread: d = src - blur, out = |d| > threshold ? src + amount * d : src, rounded and
// saturated for integers. The blur is never rounded to the pixel type.
// Cost per element: DRAM sizeof(T) read twice + sizeof(A) written and read + sizeof(T)
// written; FLOPs 2 (kw + kh) + 5. Taps live in a small device array. Not yet run on a GPU.
#include <vector>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


template <typename T, typename A>
__global__ void unsharp_hpass_kernel(const T* __restrict__ src, A* __restrict__ tmp, Geom g,
                                     const A* __restrict__ kx, int kw, Border border, A cval, int64_t total) {
  const int ax = kw / 2;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    const T* sb = src + b * g.s_bs;
    A acc = 0;
    for (int j = 0; j < kw; ++j) {
      const int64_t xo = src_col(e + static_cast<int64_t>(j - ax) * g.c, g, border);
      acc += kx[j] * load_px<A>(sb, y, xo, g, border, cval);
    }
    tmp[i] = acc;
  }
}

template <typename T, typename A>
__global__ void unsharp_vpass_kernel(const T* __restrict__ src, const A* __restrict__ tmp, T* __restrict__ dst,
                                     Geom g, const A* __restrict__ ky, int kh, Border border, A const_row, A amount,
                                     A threshold, int64_t total) {
  const int ay = kh / 2;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t e = i % g.wc, r = i / g.wc, b = r / g.h, y = r % g.h;
    A blur = 0;
    for (int k = 0; k < kh; ++k) {
      const int64_t yy = border_index_dev(y - ay + k, g.h, border);
      blur += ky[k] * (yy < 0 ? const_row : tmp[(b * g.h + yy) * g.wc + e]);
    }
    const A s = to_acc<A>(src[b * g.s_bs + y * g.s_rs + e]);
    const A d = s - blur;
    const A res = (d < 0 ? -d : d) > threshold ? s + amount * d : s;
    dst[b * g.d_bs + y * g.d_rs + e] = Store<T>::from(res);
  }
}

template <typename T>
void unsharp_typed(const void* src_v, const ImageDesc& s, void* dst_v, const ImageDesc& d, const double* ky, int kh,
                   const double* kx, int kw, double amount, double threshold, Border border, double cval,
                   cudaStream_t st) {
  using A = typename AccOf<T>::type;
  const Geom g = make_geom(s, d);
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.wc);
  std::vector<A> taps(static_cast<size_t>(kh + kw));
  A const_row = 0;
  for (int j = 0; j < kw; ++j) {
    taps[static_cast<size_t>(kh + j)] = static_cast<A>(kx[j]);
    const_row += static_cast<A>(kx[j]) * static_cast<A>(cval);
  }
  for (int i = 0; i < kh; ++i) taps[static_cast<size_t>(i)] = static_cast<A>(ky[i]);
  DeviceBuffer w(taps.size() * sizeof(A), st);
  // pageable source: the copy is staged before cudaMemcpyAsync returns, so `taps` may go
  IMKERN_CUDA_CHECK(cudaMemcpyAsync(w.get<A>(), taps.data(), taps.size() * sizeof(A), cudaMemcpyHostToDevice, st));
  DeviceBuffer tmp(static_cast<size_t>(checked_mul(total, static_cast<int64_t>(sizeof(A)))), st);
  const unsigned grid = grid_for(ceil_div<int64_t>(total, kThreads));
  unsharp_hpass_kernel<T, A><<<grid, kThreads, 0, st>>>(static_cast<const T*>(src_v), tmp.get<A>(), g,
                                                        w.get<A>() + kh, kw, border, static_cast<A>(cval), total);
  IMKERN_CUDA_CHECK_LAUNCH();
  unsharp_vpass_kernel<T, A><<<grid, kThreads, 0, st>>>(static_cast<const T*>(src_v), tmp.get<A>(),
                                                        static_cast<T*>(dst_v), g, w.get<A>(), kh, border, const_row,
                                                        static_cast<A>(amount), static_cast<A>(threshold), total);
  IMKERN_CUDA_CHECK_LAUNCH();
  tmp.release();
  w.release();
}

}  // namespace

void unsharp_mask_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                       const double* ky, int kh, const double* kx, int kw, double amount, double threshold,
                       Border border, double cval, void* stream) {
  if (!check_images(src, s, dst, d, kh, kw, kh / 2, kw / 2)) return;
  visit_dtype<kImageDTypes>(dtype, "unsharp_mask", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unsharp_typed<T>(src, s, dst, d, ky, kh, kx, kw, amount, threshold, border, cval, as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
