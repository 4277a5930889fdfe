// Helpers shared by the linear-filter kernels (sep_filter.cu, correlate.cu, box.cu): dtype
// traits and conversions, the launch arguments, border mapping of a padded row element,
// argument checks and stream-ordered temporaries.
#pragma once
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/common.cuh"

namespace imkern {
namespace cuda {
namespace filt {

constexpr int kThreads = 256;               // threads per block of every filter kernel
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

// Calls f(T{}) with the element type of dtype.
template <typename F>
inline void visit_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::u8: f(uint8_t{}); break;
    case DType::u16: f(uint16_t{}); break;
    case DType::f16: f(__half{}); break;
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default:
      throw std::invalid_argument(std::string("imkern: dtype ") + dtype_name(dt) +
                                  " is not supported by the CUDA filters");
  }
}

// Calls f(T{}, U{}) for an input dtype and an output dtype (the input's, float32 or float64).
template <typename F>
inline void visit_dtype_pair(DType in, DType out, F&& f) {
  visit_dtype(in, [&](auto tag) {
    if (out == in) return f(tag, tag);
    if (out == DType::f32) return f(tag, float{});
    if (out == DType::f64) return f(tag, double{});
    throw std::invalid_argument(std::string("imkern: output dtype ") + dtype_name(out) + " is not supported for " +
                                dtype_name(in) + " input (the input's dtype, float32 or float64)");
  });
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

// Blocks for a grid-stride loop over `items` work items (blocks of kThreads threads each).
inline unsigned grid_for(int64_t blocks) {
  const int64_t cap = 0x7fffffff;  // gridDim.x limit
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, cap)));
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

// Stream-ordered temporary (cudaMallocAsync / cudaFreeAsync); out of memory -> std::bad_alloc
// (Python MemoryError).
class DeviceBuffer {
 public:
  DeviceBuffer(size_t bytes, cudaStream_t st) : st_(st) {
    cudaError_t e = cudaMallocAsync(&p_, bytes, st);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
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
    IMKERN_CUDA_CHECK(cudaFreeAsync(p, st_));
  }
  template <typename U> U* get() const { return static_cast<U*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t st_;
};

}  // namespace filt
}  // namespace cuda
}  // namespace imkern
