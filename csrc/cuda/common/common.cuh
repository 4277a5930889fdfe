// The helpers every CUDA kernel shares (csrc/cuda/<family>/<op>.cu), one set for the device:
// error checks (every runtime call and launch), ceil_div, the block size and grid helper, one
// dtype visitor, the stream-ordered device buffer (out of memory -> MemoryError), the storage
// <-> float conversions and fixed-order block reductions of the nn kernels, and the border
// mapping, accumulator traits and image checks of the filter kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "imkern/common.hpp"

namespace imkern {
namespace cuda {

inline void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("imkern CUDA error in ") + what + " (" + file + ":" +
                             std::to_string(line) + "): " + cudaGetErrorString(e));
}
#define IMKERN_CUDA_CHECK(expr) ::imkern::cuda::check((expr), #expr, __FILE__, __LINE__)
// After every <<<>>> launch: launch-configuration errors surface here.
#define IMKERN_CUDA_CHECK_LAUNCH() ::imkern::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

template <typename T>
__host__ __device__ inline T ceil_div(T a, T b) {
  return (a + b - 1) / b;
}

inline cudaStream_t as_stream(void* s) { return reinterpret_cast<cudaStream_t>(s); }

// The border rule of common.hpp, callable from device code.
__host__ __device__ inline int64_t border_index_dev(int64_t p, int64_t len, Border b) {
  return ::imkern::border_index(p, len, b);
}


// ---- launch geometry -------------------------------------------------------------------------
constexpr int kThreads = 256;  // threads per block of every kernel that does not say otherwise

// A grid of `blocks` blocks, at least 1 and at most `cap` (grid-stride loops cover the rest).
inline unsigned grid_blocks(int64_t blocks, int64_t cap = 0x7fffffff) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, cap)));
}
// Blocks for a grid-stride loop over n elements (n > 0): enough to fill any current GPU.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  return grid_blocks(ceil_div<int64_t>(n, threads), 65535LL * 64);
}

// ---- one dtype visitor -----------------------------------------------------------------------
template <typename T>
struct TypeTag {
  using type = T;
};
constexpr unsigned dtype_bit(DType d) { return 1u << static_cast<int>(d); }
// The dtype sets of the families: images (filters) and the nn kernels (float32 accumulation).
constexpr unsigned kImageDTypes =
    dtype_bit(DType::u8) | dtype_bit(DType::u16) | dtype_bit(DType::f16) | dtype_bit(DType::f32) | dtype_bit(DType::f64);
constexpr unsigned kNnDTypes = dtype_bit(DType::f32) | dtype_bit(DType::f16) | dtype_bit(DType::bf16);

// Calls f(TypeTag<T>{}) with the storage type of dt when dt is in `Allowed`; otherwise an
// assertion (the Python layer has checked the dtype): std::invalid_argument naming `op`.
template <unsigned Allowed, typename F>
void visit_dtype(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::u8: if constexpr ((Allowed & dtype_bit(DType::u8)) != 0) { f(TypeTag<uint8_t>{}); return; } break;
    case DType::u16: if constexpr ((Allowed & dtype_bit(DType::u16)) != 0) { f(TypeTag<uint16_t>{}); return; } break;
    case DType::f32: if constexpr ((Allowed & dtype_bit(DType::f32)) != 0) { f(TypeTag<float>{}); return; } break;
    case DType::f64: if constexpr ((Allowed & dtype_bit(DType::f64)) != 0) { f(TypeTag<double>{}); return; } break;
    case DType::f16: if constexpr ((Allowed & dtype_bit(DType::f16)) != 0) { f(TypeTag<__half>{}); return; } break;
    case DType::bf16:
      if constexpr ((Allowed & dtype_bit(DType::bf16)) != 0) { f(TypeTag<__nv_bfloat16>{}); return; }
      break;
  }
  throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(dt) + " is not supported on CUDA");
}
// Calls f(T{}, U{}) for an image dtype and an output dtype: the input's, float32 or float64
// (the linear filters' dtype=, cv2's ddepth).
template <typename F>
void visit_dtype_pair(DType in, DType out, F&& f) {
  visit_dtype<kImageDTypes>(in, "filter", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (out == in) return f(T{}, T{});
    if (out == DType::f32) return f(T{}, float{});
    if (out == DType::f64) return f(T{}, double{});
    throw std::invalid_argument(std::string("imkern: output dtype ") + dtype_name(out) + " is not supported for " +
                                dtype_name(in) + " input (the input's dtype, float32 or float64)");
  });
}
// The nn kernels' dtypes: float32, float16, bfloat16.
template <typename F>
void dispatch_float(DType dt, const char* op, F&& f) {
  visit_dtype<kNnDTypes>(dt, op, static_cast<F&&>(f));
}

// ---- stream-ordered device buffer ------------------------------------------------------------
// A temporary from cudaMallocAsync on the caller's stream, freed on that stream when the owner
// leaves scope (the kernels using it are enqueued before, so the free waits for them). Out of
// memory -> std::bad_alloc (Python MemoryError); 0 bytes allocates nothing.
class DeviceBuffer {
 public:
  DeviceBuffer(size_t bytes, cudaStream_t st) : st_(st) {
    if (!bytes) return;
    cudaError_t e = cudaMallocAsync(&p_, bytes, st);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      p_ = nullptr;
      throw std::bad_alloc();
    }
    IMKERN_CUDA_CHECK(e);
  }
  ~DeviceBuffer() {
    if (p_) cudaFreeAsync(p_, st_);  // destructor: cannot throw; an error resurfaces on the next check
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void release() {
    void* p = p_;
    p_ = nullptr;
    if (p) IMKERN_CUDA_CHECK(cudaFreeAsync(p, st_));
  }
  template <typename U> U* get() const { return static_cast<U*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t st_;
};

// ---- storage <-> float (all arithmetic is float32) -----------------------------------------
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// ---- index range of the kernels that index with int ------------------------------------------
inline void require_int32(int64_t v, const char* what) {
  if (v < 0 || v > static_cast<int64_t>(INT32_MAX))
    throw std::overflow_error(std::string("imkern CUDA: ") + what + " exceeds the kernel's 32-bit index range");
}

// ---- fixed-order block reduction ------------------------------------------------------------
// Sum of one value per thread of a block of NT threads, in float or (for the long reductions:
// pooling over big windows, per-channel statistics and bias gradients, loss sums, which the
// CPU kernels accumulate in double too) in double. The tree (warp butterfly, then the warp
// sums in warp 0) depends on the block size only, so the result is bitwise reproducible.
// Every thread gets the total. `sh` must hold NT / 32 values of T; callers reusing it must
// __syncthreads() in between.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "float or double sums");
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <int NT, class T>
__device__ __forceinline__ T block_sum(T v, T* sh) {
  static_assert(NT % 32 == 0 && NT <= 1024, "block size");
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  T t = T(0);
  if (w == 0) {
    t = lane < NT / 32 ? sh[lane] : T(0);
    t = warp_sum(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  t = sh[0];
  __syncthreads();  // sh may be reused right after
  return t;
}

template <int NT>
__device__ __forceinline__ float block_max(float v, float* sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  v = warp_max(v);
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    float t = lane < NT / 32 ? sh[lane] : -INFINITY;
    t = warp_max(t);
    if (lane == 0) sh[0] = t;
  }
  __syncthreads();
  const float t = sh[0];
  __syncthreads();
  return t;
}

// ---- filters: accumulator traits, border mapping of a padded row element, image checks -------
constexpr size_t kSmemDefault = 48 * 1024;  // dynamic shared memory without the opt-in

// Accumulator type: float for u8/u16/f16/f32, double for f64 (the weights' type too).
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
// With an output dtype U (the input's, float32 or float64): double when either is double.
template <typename T, typename U> struct AccOf2 {
  using type = typename std::conditional<std::is_same<T, double>::value || std::is_same<U, double>::value, double,
                                         float>::type;
};

template <typename A> __device__ __forceinline__ A to_acc(uint8_t v) { return static_cast<A>(v); }
template <typename A> __device__ __forceinline__ A to_acc(uint16_t v) { return static_cast<A>(v); }
template <typename A> __device__ __forceinline__ A to_acc(float v) { return static_cast<A>(v); }
template <typename A> __device__ __forceinline__ A to_acc(double v) { return static_cast<A>(v); }
template <typename A> __device__ __forceinline__ A to_acc(__half v) { return static_cast<A>(__half2float(v)); }

// Accumulator -> pixel: integers rounded to nearest-even and saturated (NaN -> 0: fmax/fmin
// return the non-NaN operand), f16 rounded to nearest.
template <typename T> struct Store;
template <> struct Store<uint8_t> {
  __device__ static __forceinline__ uint8_t from(float v) {
    return static_cast<uint8_t>(__float2int_rn(fminf(fmaxf(v, 0.f), 255.f)));
  }
  __device__ static __forceinline__ uint8_t from(double v) {
    return static_cast<uint8_t>(__double2int_rn(fmin(fmax(v, 0.0), 255.0)));
  }
};
template <> struct Store<uint16_t> {
  __device__ static __forceinline__ uint16_t from(float v) {
    return static_cast<uint16_t>(__float2int_rn(fminf(fmaxf(v, 0.f), 65535.f)));
  }
  __device__ static __forceinline__ uint16_t from(double v) {
    return static_cast<uint16_t>(__double2int_rn(fmin(fmax(v, 0.0), 65535.0)));
  }
};
template <> struct Store<__half> {
  __device__ static __forceinline__ __half from(float v) { return __float2half_rn(v); }
  __device__ static __forceinline__ __half from(double v) { return __double2half(v); }
};
template <> struct Store<float> {
  __device__ static __forceinline__ float from(float v) { return v; }
  __device__ static __forceinline__ float from(double v) { return static_cast<float>(v); }
};
template <> struct Store<double> {
  __device__ static __forceinline__ double from(double v) { return v; }
};

// Shape and strides of one call (elements; a row is w * c packed elements).
struct Geom {
  int64_t n, h, w, c, wc;
  int64_t s_bs, s_rs, d_bs, d_rs;
};

// Source element offset inside a row for the padded row element `ge` (pixel ge / c, floor,
// channel ge mod c), mapped by the border rule; -1 means the constant.
__device__ __forceinline__ int64_t src_col(int64_t ge, const Geom& g, Border b) {
  if (ge >= 0 && ge < g.wc) return ge;
  const int64_t px = ge >= 0 ? ge / g.c : -((-ge + g.c - 1) / g.c);
  const int64_t ch = ge - px * g.c;
  const int64_t bx = border_index_dev(px, g.w, b);
  return bx < 0 ? -1 : bx * g.c + ch;
}

// The pixel at source row sy (mapped by the border rule) and row offset xo (from src_col; -1:
// the constant), converted to the accumulator type. `sb` is the image's base pointer.
template <typename A, typename T>
__device__ __forceinline__ A load_px(const T* __restrict__ sb, int64_t sy, int64_t xo, const Geom& g, Border b,
                                     A cval) {
  if (xo < 0) return cval;
  const int64_t yy = border_index_dev(sy, g.h, b);
  return yy < 0 ? cval : to_acc<A>(sb[yy * g.s_rs + xo]);
}

// Validates the image pair and anchors; returns false when there is nothing to do.
inline bool check_images(const void* src, const ImageDesc& s, const void* dst, const ImageDesc& d,
                         int kh, int kw, int ay, int ax) {
  if (s.n != d.n || s.h != d.h || s.w != d.w || s.c != d.c)
    throw std::invalid_argument("imkern: out shape differs from the image shape");
  if (s.n < 0 || s.h < 0 || s.w < 0 || s.c < 0) throw std::invalid_argument("imkern: negative image size");
  if (kh < 1 || kw < 1) throw std::invalid_argument("imkern: kernel sizes must be positive");
  if (ay < 0 || ay >= kh || ax < 0 || ax >= kw) throw std::invalid_argument("imkern: anchor outside the kernel");
  if (s.n == 0 || s.h == 0 || s.w == 0 || s.c == 0) return false;
  if (!src || !dst) throw std::invalid_argument("imkern: null image pointer");
  // Every element index of an image must fit in 64 bits (the kernels' index type).
  checked_mul(checked_mul(checked_mul(s.n, s.h), s.w), s.c);
  return true;
}

inline Geom make_geom(const ImageDesc& s, const ImageDesc& d) {
  return Geom{s.n, s.h, s.w, s.c, checked_mul(s.w, s.c), s.batch_stride, s.row_stride, d.batch_stride,
              d.row_stride};
}

inline int current_device() {
  int dev = 0;
  IMKERN_CUDA_CHECK(cudaGetDevice(&dev));
  return dev;
}

// Largest dynamic shared memory a block may opt in to on the current device.
inline size_t smem_optin_limit() {
  int v = 0;
  IMKERN_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, current_device()));
  return static_cast<size_t>(v);
}

}  // namespace cuda
}  // namespace imkern
