// The CPU driver of every color conversion (compiled per ISA): rows of the batch split over
// the thread pool, each row a loop over pixels calling one functor of imkern/color_pixel.hpp
// with compile-time channel counts, so the compiler vectorizes the channel (de)interleave.
#pragma once
#include <cstdint>

#include "imkern/color.hpp"
#include "imkern/color_pixel.hpp"
#include "imkern/parallel.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename TI, typename TO, int CI, int CO, typename F>
void map_pixels(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const F& f) {
  const int64_t H = s.h, W = s.w, rows = s.n * s.h;
  // about 64 KiB of pixels per chunk: enough to amortize a hand-off, small enough to balance
  const int64_t grain = W > 0 ? (16384 + W - 1) / W : 1;
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / H, y = r % H;
      const TI* in = static_cast<const TI*>(src) + b * s.batch_stride + y * s.row_stride;
      TO* out = static_cast<TO*>(dst) + b * d.batch_stride + y * d.row_stride;
      for (int64_t x = 0; x < W; ++x) f(in + x * CI, out + x * CO);
    }
  });
}

// Calls fn(T{}) with the C++ type of dtype (the four image dtypes).
template <typename Fn>
void visit_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::u8: fn(uint8_t{}); return;
    case DType::u16: fn(uint16_t{}); return;
    case DType::f32: fn(float{}); return;
    case DType::f64: fn(double{}); return;
    default: throw std::invalid_argument("color: unsupported dtype");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
