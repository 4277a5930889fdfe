// What the resize kernels (compiled per ISA) share across their files: resize.cpp (the
// separable passes), resize_halve.cpp (the exact 2x shrink) and resize_decimate.cpp (the uint8
// 2x2 mean at an integer stride).
#pragma once
#include <algorithm>
#include <cstdint>

#include "imkern/common.hpp"
#include "imkern/parallel.hpp"
#include "imkern/transform.hpp"

namespace imkern {
namespace IMKERN_ISA {

// Rows per parallel task: about 4 tasks per thread, and at least 16384 elements of work each.
inline int64_t rows_grain(int64_t rows, int64_t work_per_row) {
  const int threads = get_num_threads();
  int64_t g = rows / (4 * (threads > 0 ? threads : 1));
  const int64_t min_rows = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work_per_row));
  return std::max<int64_t>(std::max<int64_t>(g, min_rows), 1);
}

// Whether the uint8 generic path's integers with two equal taps qy (per row) and qx (per
// column) are the rounded 2x2 mean (s + 2) >> 2 of the four source bytes' sum s: the vertical
// sums (qy (a + b) + half) >> shift lose nothing when qy is a multiple of 2^shift (area's 14-bit
// tables need shift 13: their taps 2^13 are), and (qx (qy >> shift) s + 2^(rshift - 1)) >>
// rshift is (s + 2) >> 2 when 4 qx (qy >> shift) = 2^rshift.
inline bool exact_mean4_u8(int shift, int rshift, int32_t qy, int32_t qx) {
  if (shift < 0 || shift > 30 || rshift < 2 || rshift >= 62 || qy <= 0 || qx <= 0) return false;
  if ((qy & ((int32_t(1) << shift) - 1)) != 0) return false;
  return 4 * int64_t(qx) * int64_t(qy >> shift) == int64_t(1) << rshift;
}

// The exact 2x shrink (bilinear and area at exactly half the size on both axes) in one pass,
// T = float, uint16_t, uint8_t, with the generic paths' bits: when the tables ty, tx (and the
// uint8 vertical shift) are that and the one-pass kernel is the faster one, computes dst and
// returns true; else returns false and writes nothing.
template <typename T>
bool resize_halve(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                  const ResizeTable& tx, int shift);

// uint8 tables with two equal taps per output on both axes, the row's windows F >= 2 pixels
// apart (cv2's bilinear at an exact 4x shrink) and a vertical shift that loses nothing
// (exact_mean4_u8): computes dst (the 2x2
// means, the generic paths' bits) and returns true where its vectors fit; else false, nothing
// written.
bool resize_decimate_u8(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, const ResizeTable& ty,
                        const ResizeTable& tx, int shift);

}  // namespace IMKERN_ISA
}  // namespace imkern
