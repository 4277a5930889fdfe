// Bilateral filter on CUDA, OpenCV's definition (see csrc/cpu/filters/bilateral.cpp): disc
// window of radius r, Gaussian space weights, L1 color distance, color weights exp(-t^2 /
// (2 sigma_color^2)) (uint8: a table of one entry per integer distance; float32: expf of the
// distance, the exact weights as on the CPU; a flat float image is copied, as OpenCV does).
//
// Kernels: (float32 only) a per-image min/max reduction (atomics on order-preserving integer
// keys, one pair per image) and the flat flag per image on the device, so nothing goes back
// to the host; then one thread per pixel walks the window offsets (a device table of
// (dy, dx, space weight)), loading neighbors through L1 (a warp reads consecutive pixels).
// Loads per pixel: C x (number of offsets, ~0.785 d^2); FLOPs ~ (4 + 3C) per offset.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


struct Offset {
  int dy, dx;
  float w;
};

__device__ __forceinline__ unsigned fkey(float v) {
  const unsigned b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float funkey(unsigned k) {
  return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}

// mm[2b] = key(min), mm[2b+1] = key(max) over image b (NaN skipped); initialized by the host.
__global__ void __launch_bounds__(kThreads)
    minmax_kernel(const float* __restrict__ src, Geom g, unsigned* __restrict__ mm, int64_t per_image, int64_t total) {
  for (int64_t base = blockIdx.x * static_cast<int64_t>(kThreads); base < total;
       base += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t i = base + threadIdx.x;
    if (i < total) {
      const int64_t b = i / per_image, rem = i % per_image;
      const int64_t y = rem / g.wc, e = rem % g.wc;
      const float v = src[b * g.s_bs + y * g.s_rs + e];
      if (v == v) {
        atomicMin(&mm[2 * b], fkey(v));
        atomicMax(&mm[2 * b + 1], fkey(v));
      }
    }
  }
}

// Per image: the flat flag (max - min < FLT_EPSILON over the padded image) from min/max.
__global__ void __launch_bounds__(kThreads)
    flat_kernel(const unsigned* __restrict__ mm, int* __restrict__ flat, int n, bool constant_border) {
  for (int b = blockIdx.x * blockDim.x + threadIdx.x; b < n; b += gridDim.x * blockDim.x) {
    float mn = funkey(mm[2 * b]), mx = funkey(mm[2 * b + 1]);
    if (constant_border) {
      mn = fminf(mn, 0.f);
      mx = fmaxf(mx, 0.f);
    }
    flat[b] = !(fabsf(mn - mx) >= FLT_EPSILON);
  }
}

template <typename T, int C>
__global__ void __launch_bounds__(kThreads)
    bilateral_kernel(const T* __restrict__ src, T* __restrict__ dst, Geom g, const Offset* __restrict__ offs, int maxk,
                     Border border, const float* __restrict__ lut, float gc, const int* __restrict__ flat,
                     int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.w, row = i / g.w;
    const int64_t y = row % g.h, b = row / g.h;
    const T* sb = src + b * g.s_bs;
    T* out = dst + b * g.d_bs + y * g.d_rs + x * C;
    const T* center = sb + y * g.s_rs + x * C;
    const bool is_u8 = sizeof(T) == 1;
    if (!is_u8 && flat[b]) {
      for (int c = 0; c < C; ++c) out[c] = center[c];
      continue;
    }
    float v0[C], sum[C];
    for (int c = 0; c < C; ++c) {
      v0[c] = static_cast<float>(center[c]);
      sum[c] = 0.f;
    }
    float wsum = 0.f;
    for (int q = 0; q < maxk; ++q) {
      const Offset o = offs[q];
      const int64_t yy = border_index_dev(y + o.dy, g.h, border);
      const int64_t xx = border_index_dev(x + o.dx, g.w, border);
      float v[C];
      float dist = 0.f;
      for (int c = 0; c < C; ++c) {
        v[c] = (yy < 0 || xx < 0) ? 0.f : static_cast<float>(sb[yy * g.s_rs + xx * C + c]);
        dist += fabsf(v[c] - v0[c]);
      }
      const float cw = is_u8 ? lut[static_cast<int>(dist)] : expf(dist * dist * gc);
      const float w = cw * o.w;
      for (int c = 0; c < C; ++c) sum[c] += v[c] * w;
      wsum += w;
    }
    for (int c = 0; c < C; ++c) out[c] = Store<T>::from(sum[c] / wsum);
  }
}

template <typename T, int C>
void run_typed(const T* src, T* dst, const Geom& g, int r, double sigma_color, double sigma_space, Border border,
               cudaStream_t st) {
  // finite, so that a distance of 0 gives the weight 1 (not NaN) whatever sigma_color
  const float gc = static_cast<float>(std::max(-0.5 / (sigma_color * sigma_color), -static_cast<double>(FLT_MAX)));
  const float gs = static_cast<float>(-0.5 / (sigma_space * sigma_space));
  std::vector<Offset> offs;
  for (int i = -r; i <= r; ++i)
    for (int j = -r; j <= r; ++j) {
      const double rr = std::sqrt(static_cast<double>(i) * i + static_cast<double>(j) * j);
      if (rr > r) continue;
      offs.push_back(Offset{i, j, static_cast<float>(std::exp(rr * rr * gs))});
    }
  DeviceBuffer doffs(sizeof(Offset) * offs.size(), st);
  // Pageable sources: staged before cudaMemcpyAsync returns, so the host vectors may go.
  IMKERN_CUDA_CHECK(cudaMemcpyAsync(doffs.get<Offset>(), offs.data(), sizeof(Offset) * offs.size(),
                                    cudaMemcpyHostToDevice, st));
  const int64_t total = checked_mul(checked_mul(g.n, g.h), g.w);
  const unsigned grid = grid_for(ceil_div<int64_t>(total, kThreads));
  const int maxk = static_cast<int>(offs.size());
  if constexpr (sizeof(T) == 1) {
    std::vector<float> table(256 * C + 1);
    for (int i = 0; i < 256 * C + 1; ++i) table[i] = static_cast<float>(std::exp(static_cast<float>(i * i) * gc));
    DeviceBuffer dlut(sizeof(float) * table.size(), st);
    IMKERN_CUDA_CHECK(cudaMemcpyAsync(dlut.get<float>(), table.data(), sizeof(float) * table.size(),
                                      cudaMemcpyHostToDevice, st));
    bilateral_kernel<T, C><<<grid, kThreads, 0, st>>>(src, dst, g, doffs.get<Offset>(), maxk, border,
                                                      dlut.get<float>(), 0.f, nullptr, total);
    IMKERN_CUDA_CHECK_LAUNCH();
    dlut.release();
  } else {
    const int64_t per_image = checked_mul(g.h, g.wc), elems = checked_mul(g.n, per_image);
    std::vector<unsigned> init(static_cast<size_t>(2 * g.n));
    for (int64_t b = 0; b < g.n; ++b) {
      init[2 * b] = 0xffffffffu;  // key of the min starts above everything
      init[2 * b + 1] = 0u;
    }
    DeviceBuffer mm(sizeof(unsigned) * init.size(), st);
    IMKERN_CUDA_CHECK(cudaMemcpyAsync(mm.get<unsigned>(), init.data(), sizeof(unsigned) * init.size(),
                                      cudaMemcpyHostToDevice, st));
    minmax_kernel<<<grid_for(ceil_div<int64_t>(elems, kThreads)), kThreads, 0, st>>>(
        reinterpret_cast<const float*>(src), g, mm.get<unsigned>(), per_image, elems);
    IMKERN_CUDA_CHECK_LAUNCH();
    if (g.n > 0x7fffffff) throw std::overflow_error("imkern: bilateral: batch too large");
    DeviceBuffer dflat(sizeof(int) * static_cast<size_t>(g.n), st);
    flat_kernel<<<grid_for(g.n), kThreads, 0, st>>>(mm.get<unsigned>(), dflat.get<int>(), static_cast<int>(g.n),
                                                     border == Border::constant);
    IMKERN_CUDA_CHECK_LAUNCH();
    bilateral_kernel<T, C><<<grid, kThreads, 0, st>>>(src, dst, g, doffs.get<Offset>(), maxk, border, nullptr, gc,
                                                      dflat.get<int>(), total);
    IMKERN_CUDA_CHECK_LAUNCH();
    dflat.release();
    mm.release();
  }
  doffs.release();
}

}  // namespace

void bilateral_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int radius,
                    double sigma_color, double sigma_space, Border border, void* stream) {
  if (radius < 1) throw std::invalid_argument("imkern: bilateral radius must be positive");
  if (!(sigma_color > 0) || !(sigma_space > 0)) throw std::invalid_argument("imkern: bilateral sigmas must be positive");
  if (s.c != 1 && s.c != 3) throw std::invalid_argument("imkern: bilateral takes 1 or 3 channels");
  if (!check_images(src, s, dst, d, 1, 1, 0, 0)) return;
  const Geom g = make_geom(s, d);
  const cudaStream_t st = as_stream(stream);
  if (dtype == DType::u8) {
    if (s.c == 1) run_typed<uint8_t, 1>(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), g, radius,
                                        sigma_color, sigma_space, border, st);
    else run_typed<uint8_t, 3>(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), g, radius, sigma_color,
                               sigma_space, border, st);
  } else if (dtype == DType::f32) {
    if (s.c == 1) run_typed<float, 1>(static_cast<const float*>(src), static_cast<float*>(dst), g, radius,
                                      sigma_color, sigma_space, border, st);
    else run_typed<float, 3>(static_cast<const float*>(src), static_cast<float*>(dst), g, radius, sigma_color,
                             sigma_space, border, st);
  } else {
    throw std::invalid_argument(std::string("imkern: bilateral: dtype ") + dtype_name(dtype) +
                                " is not supported on CUDA (uint8, float32)");
  }
}

}  // namespace cuda
}  // namespace imkern
