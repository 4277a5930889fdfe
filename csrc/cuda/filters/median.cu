// Median filter on CUDA over k x k windows (k odd, centered), written for the GPU.
//
// Values are compared as unsigned order-preserving keys (u8/u16 as they are; floats: bit
// pattern with the sign flipped in, every NaN made the positive quiet NaN, which orders above
// +inf), so the result is exactly the middle of the sorted window, as on the CPU.
//
// A block of 16 x 16 threads owns a 16 x 16 tile of one channel of one image; it stages the
// (15 + k)^2 keys of the tile and its halo in shared memory (border rule applied while
// loading, coalesced along rows), then each thread selects its median:
//  * k = 3, 5, 7: the pruned selection network of median_networks.hpp on k*k registers
//    (24 / 113 / 319 min/max pairs per pixel, no divergence);
//  * k >= 9: a radix select on the keys' bits, most significant first: per bit, one pass
//    over the k*k staged keys counting those below the candidate (8 passes for u8, 16 for
//    u16, 32 / 64 for f32 / f64): no per-thread histogram, no local memory.
// When the staged tile exceeds 48 KiB (very large k) the same code reads the keys from
// global memory through the border rule instead.
// DRAM bytes per pixel ~ sizeof(T) * (1 + (15 + k)^2 / 256) + sizeof(T).
#include <cmath>
#include <cstring>

#include "common/common.cuh"
#include "filters/median_networks.hpp"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {

constexpr int kTile = 16;

template <typename T> struct MedKey;
template <> struct MedKey<uint8_t> {
  using K = uint32_t;  // 32-bit registers either way
  static constexpr int bits = 8;
  __device__ static K key(uint8_t v) { return v; }
  __device__ static uint8_t value(K k) { return static_cast<uint8_t>(k); }
};
template <> struct MedKey<uint16_t> {
  using K = uint32_t;
  static constexpr int bits = 16;
  __device__ static K key(uint16_t v) { return v; }
  __device__ static uint16_t value(K k) { return static_cast<uint16_t>(k); }
};
template <> struct MedKey<float> {
  using K = uint32_t;
  static constexpr int bits = 32;
  __device__ static K key(float v) {
    uint32_t b = __float_as_uint(v);
    if (v != v) b = 0x7fc00000u;
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  }
  __device__ static float value(K k) { return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k); }
};
template <> struct MedKey<double> {
  using K = unsigned long long;
  static constexpr int bits = 64;
  __device__ static K key(double v) {
    unsigned long long b = static_cast<unsigned long long>(__double_as_longlong(v));
    if (v != v) b = 0x7ff8000000000000ull;
    return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
  }
  __device__ static double value(K k) {
    return __longlong_as_double(
        static_cast<long long>((k & 0x8000000000000000ull) ? (k ^ 0x8000000000000000ull) : ~k));
  }
};

// Key of the window element at source (sy, sx) of channel ch, border applied.
template <typename T>
__device__ __forceinline__ typename MedKey<T>::K key_at(const T* __restrict__ sb, int64_t sy, int64_t sx, int64_t ch,
                                                        const Geom& g, Border border,
                                                        typename MedKey<T>::K ckey) {
  const int64_t yy = border_index_dev(sy, g.h, border);
  const int64_t xx = border_index_dev(sx, g.w, border);
  if (yy < 0 || xx < 0) return ckey;
  return MedKey<T>::key(sb[yy * g.s_rs + xx * g.c + ch]);
}

template <typename K>
__device__ __forceinline__ void cx(K& a, K& b) {
  const K lo = a < b ? a : b;
  b = a < b ? b : a;
  a = lo;
}

#define IMKERN_GCX(a, b) cx(v[a], v[b]);
#define IMKERN_GMIN(a, b) v[a] = v[a] < v[b] ? v[a] : v[b];
#define IMKERN_GMAX(a, b) v[b] = v[a] < v[b] ? v[b] : v[a];

template <int KS, typename K>
__device__ __forceinline__ K network_median(K* v) {
  if constexpr (KS == 3) { IMKERN_MEDIAN_NET_3(IMKERN_GCX, IMKERN_GMIN, IMKERN_GMAX) }
  else if constexpr (KS == 5) { IMKERN_MEDIAN_NET_5(IMKERN_GCX, IMKERN_GMIN, IMKERN_GMAX) }
  else { IMKERN_MEDIAN_NET_7(IMKERN_GCX, IMKERN_GMIN, IMKERN_GMAX) }
  return v[KS * KS / 2];
}

// KS > 0: network for that size; KS == 0: radix select for the runtime k.
// Smem: the tile is staged in shared memory (else keys are read through the border rule).
template <typename T, int KS, bool Smem>
__global__ void __launch_bounds__(kTile * kTile)
    median_kernel(const T* __restrict__ src, T* __restrict__ dst, Geom g, int k, Border border,
                  typename MedKey<T>::K ckey, int64_t tiles_x, int64_t tiles) {
  using K = typename MedKey<T>::K;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  K* tile = reinterpret_cast<K*>(smem_raw);
  const int r = k / 2, tw = kTile + k - 1;
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t planes = g.n * g.c;
  for (int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    const int64_t b = plane / g.c, ch = plane % g.c;
    const T* sb = src + b * g.s_bs;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {  // block-uniform loops
      const int64_t y0 = (t / tiles_x) * kTile, x0 = (t % tiles_x) * kTile;
      if (Smem) {
        __syncthreads();  // the previous tile is no longer read
        for (int i = threadIdx.x; i < tw * tw; i += blockDim.x) {
          const int iy = i / tw, ix = i % tw;
          tile[i] = key_at<T>(sb, y0 - r + iy, x0 - r + ix, ch, g, border, ckey);
        }
        __syncthreads();
      }
      const int64_t y = y0 + ty, x = x0 + tx;
      auto get = [&](int i, int j) -> K {
        if (Smem) return tile[(ty + i) * tw + tx + j];
        return key_at<T>(sb, y - r + i, x - r + j, ch, g, border, ckey);
      };
      if (y < g.h && x < g.w) {
        K med;
        if constexpr (KS > 0) {
          K v[KS * KS];
#pragma unroll
          for (int i = 0; i < KS; ++i)
#pragma unroll
            for (int j = 0; j < KS; ++j) v[i * KS + j] = get(i, j);
          med = network_median<KS>(v);
        } else {
          // The m-th smallest key: the largest v with count(key < v) <= m, bit by bit.
          const int m = (k * k) / 2;
          K val = 0;
          for (int bit = MedKey<T>::bits - 1; bit >= 0; --bit) {
            const K cand = val | (K(1) << bit);
            int below = 0;
            for (int i = 0; i < k; ++i)
              for (int j = 0; j < k; ++j) below += get(i, j) < cand;
            if (below <= m) val = cand;
          }
          med = val;
        }
        dst[b * g.d_bs + y * g.d_rs + x * g.c + ch] = MedKey<T>::value(med);
      }
    }
  }
}

template <typename T>
typename MedKey<T>::K host_key(double cval);
template <> uint32_t host_key<uint8_t>(double c) {
  return static_cast<uint32_t>(std::nearbyint(std::min(255.0, std::max(0.0, c))));
}
template <> uint32_t host_key<uint16_t>(double c) {
  return static_cast<uint32_t>(std::nearbyint(std::min(65535.0, std::max(0.0, c))));
}
template <> uint32_t host_key<float>(double c) {
  const float f = static_cast<float>(c);
  uint32_t bb;
  std::memcpy(&bb, &f, 4);
  if (f != f) bb = 0x7fc00000u;
  return (bb & 0x80000000u) ? ~bb : (bb | 0x80000000u);
}
template <> unsigned long long host_key<double>(double c) {
  unsigned long long bb;
  std::memcpy(&bb, &c, 8);
  if (c != c) bb = 0x7ff8000000000000ull;
  return (bb & 0x8000000000000000ull) ? ~bb : (bb | 0x8000000000000000ull);
}

template <typename T, int KS>
void launch(const T* src, T* dst, const Geom& g, int k, Border border, typename MedKey<T>::K ckey, cudaStream_t st) {
  using K = typename MedKey<T>::K;
  const int64_t tiles_x = ceil_div<int64_t>(g.w, kTile), tiles = checked_mul(tiles_x, ceil_div<int64_t>(g.h, kTile));
  const int64_t tw = kTile + k - 1;
  const size_t smem = sizeof(K) * static_cast<size_t>(tw * tw);
  const dim3 grid(grid_blocks(tiles), static_cast<unsigned>(std::min<int64_t>(g.n * g.c, 65535)));
  if (smem <= kSmemDefault) {
    median_kernel<T, KS, true><<<grid, kTile * kTile, smem, st>>>(src, dst, g, k, border, ckey, tiles_x, tiles);
  } else {
    median_kernel<T, KS, false><<<grid, kTile * kTile, 0, st>>>(src, dst, g, k, border, ckey, tiles_x, tiles);
  }
  IMKERN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void median_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int k, Border border,
                 double cval, void* stream) {
  if (k < 1 || k % 2 == 0 || k > 255) throw std::invalid_argument("imkern: median size must be odd, 1 to 255");
  if (!check_images(src, s, dst, d, k, k, k / 2, k / 2)) return;
  const Geom g = make_geom(s, d);
  const cudaStream_t st = as_stream(stream);
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto ckey = host_key<T>(cval);
    const T* sp = static_cast<const T*>(src);
    T* dp = static_cast<T*>(dst);
    switch (k) {
      case 3: launch<T, 3>(sp, dp, g, k, border, ckey, st); break;
      case 5: launch<T, 5>(sp, dp, g, k, border, ckey, st); break;
      case 7: launch<T, 7>(sp, dp, g, k, border, ckey, st); break;
      default: launch<T, 0>(sp, dp, g, k, border, ckey, st); break;
    }
  };
  visit_dtype<kImageDTypes & ~dtype_bit(DType::f16)>(dtype, "imkern: median", run);
}

}  // namespace cuda
}  // namespace imkern
