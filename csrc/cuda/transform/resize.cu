// Separable resize on CUDA, driven by the host-built coefficient tables of transform.hpp.
//
// Algorithm: one thread per output element (image, row, x * C + c), a grid-stride loop over
// 64-bit indices. For each of the kx source columns of its window the thread sums the ky
// source rows (the vertical pass), then weights that column sum (the horizontal pass): the
// same order and, for uint8, the same integer arithmetic as the CPU kernel (int32 sums of
// fixed-point weights, the column sums shifted right by `shift` with rounding, the total by
// y.bits + x.bits - shift), so uint8 results are bit for bit those of the CPU. Consecutive
// threads read consecutive source elements of a row (coalesced); the tables are small and
// stay in L1/L2. Cost per output element: ky * kx loads of T and 2 * ky * kx + 2 * kx
// integer or float operations; bytes from DRAM ~ sizeof(T) * (src pixels / dst pixels + 1).
// Variants: per dtype (u8 int32 arithmetic, u16/f32 float, f64 double).
#include "common/common.cuh"
#include "imkern/transform.hpp"

namespace imkern {
namespace cuda {

namespace {

// kThreads and grid_for (a grid-stride grid) come from common/common.cuh.

template <typename T> struct RzAcc { using type = float; };
template <> struct RzAcc<uint8_t> { using type = int32_t; };
template <> struct RzAcc<double> { using type = double; };

template <typename T> __device__ __forceinline__ T rz_store(typename RzAcc<T>::type a, int rshift);
template <> __device__ __forceinline__ uint8_t rz_store<uint8_t>(int32_t a, int rshift) {
  int32_t v = rshift > 0 ? (a + (int32_t(1) << (rshift - 1))) >> rshift : a;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}
template <> __device__ __forceinline__ uint16_t rz_store<uint16_t>(float a, int) {
  return static_cast<uint16_t>(__float2int_rn(fminf(fmaxf(a, 0.f), 65535.f)));
}
template <> __device__ __forceinline__ float rz_store<float>(float a, int) { return a; }
template <> __device__ __forceinline__ double rz_store<double>(double a, int) { return a; }

struct RzGeom {
  int64_t n, dh, dwc, c;
  int64_t s_bs, s_rs, d_bs, d_rs;
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    resize_kernel(const T* __restrict__ src, T* __restrict__ dst, RzGeom g, const int64_t* __restrict__ ys,
                  const typename RzAcc<T>::type* __restrict__ yw, int ky, const int64_t* __restrict__ xs,
                  const typename RzAcc<T>::type* __restrict__ xw, int kx, int shift, int rshift) {
  using A = typename RzAcc<T>::type;
  const int64_t total = g.n * g.dh * g.dwc;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.dwc, row = i / g.dwc;
    const int64_t y = row % g.dh, b = row / g.dh;
    const int64_t x = e / g.c, ch = e - x * g.c;
    const T* base = src + b * g.s_bs + ys[y] * g.s_rs + xs[x] * g.c + ch;
    const A* wr = yw + y * ky;
    const A* wc = xw + x * kx;
    A acc = A(0);
    for (int j = 0; j < kx; ++j) {
      const T* p = base + j * g.c;
      A v = wr[0] * static_cast<A>(p[0]);
      for (int k = 1; k < ky; ++k) v += wr[k] * static_cast<A>(p[k * g.s_rs]);
      if constexpr (std::is_same<T, uint8_t>::value) {
        if (shift > 0) v = (v + (int32_t(1) << (shift - 1))) >> shift;
      }
      acc = j == 0 ? wc[0] * v : acc + wc[j] * v;
    }
    dst[b * g.d_bs + y * g.d_rs + e] = rz_store<T>(acc, rshift);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    resize_nearest_kernel(const T* __restrict__ src, T* __restrict__ dst, RzGeom g, const int64_t* __restrict__ ys,
                          const int64_t* __restrict__ xs) {
  const int64_t total = g.n * g.dh * g.dwc;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = i % g.dwc, row = i / g.dwc;
    const int64_t y = row % g.dh, b = row / g.dh;
    const int64_t x = e / g.c, ch = e - x * g.c;
    dst[b * g.d_bs + y * g.d_rs + e] = src[b * g.s_bs + ys[y] * g.s_rs + xs[x] * g.c + ch];
  }
}

RzGeom geom_of(const ImageDesc& s, const ImageDesc& d) {
  if (s.n != d.n || s.c != d.c) throw std::invalid_argument("resize: batch or channel count differs");
  RzGeom g;
  g.n = d.n, g.dh = d.h, g.dwc = checked_mul(d.w, d.c), g.c = d.c;
  g.s_bs = s.batch_stride, g.s_rs = s.row_stride, g.d_bs = d.batch_stride, g.d_rs = d.row_stride;
  return g;
}

template <typename F>
void visit(DType dt, F&& f) {
  switch (dt) {
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default: throw std::invalid_argument(std::string("resize: dtype ") + dtype_name(dt) + " is not supported");
  }
}

}  // namespace

void resize_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                 const ResizeTable& y, const ResizeTable& x, int shift, void* stream) {
  const RzGeom g = geom_of(s, d);
  const int64_t total = checked_mul(checked_mul(g.n, g.dh), g.dwc);
  if (total == 0) return;
  if (y.k < 1 || x.k < 1 || y.k > s.h || x.k > s.w) throw std::invalid_argument("resize: bad table");
  const int rshift = dtype == DType::u8 ? y.bits + x.bits - shift : 0;
  visit(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename RzAcc<T>::type;
    resize_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
        static_cast<const T*>(src), static_cast<T*>(dst), g, y.start, static_cast<const A*>(y.w), y.k, x.start,
        static_cast<const A*>(x.w), x.k, shift, rshift);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

void resize_nearest_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d,
                         const int64_t* sy, const int64_t* sx, void* stream) {
  const RzGeom g = geom_of(s, d);
  const int64_t total = checked_mul(checked_mul(g.n, g.dh), g.dwc);
  if (total == 0) return;
  visit(dtype, [&](auto tag) {
    using T = decltype(tag);
    resize_nearest_kernel<T><<<grid_for(total), kThreads, 0, as_stream(stream)>>>(
        static_cast<const T*>(src), static_cast<T*>(dst), g, sy, sx);
    IMKERN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda
}  // namespace imkern
