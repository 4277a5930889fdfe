// Streaming (non-temporal) stores, the rule every CPU kernel follows: only whole 64-byte
// output lines are streamed (stream_span), and stream_fence ends a chunk that streamed.
// Compiled per ISA, like the kernels that include it; no dependencies beyond the intrinsics.
#pragma once
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace imkern {
namespace IMKERN_ISA {

// Orders a chunk's streaming stores before whatever follows (the end of a parallel chunk).
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// The part of a row that takes streaming stores: elements [begin, end) of a row of n elements
// of T at o are whole 64-byte cache lines, the elements before begin and from end on take plain
// stores. A line written by both kinds of store, or by a plain store after streaming ones,
// costs far more than the read-for-ownership streaming saves (measured on a Xeon, Granite
// Rapids: correlate 3x3 float32 4K, see correlate.cpp); whole lines filled by consecutive
// streaming stores are what the write-combining buffers merge into one full-line write. The
// head and the tail are each empty or at least L elements (L = the elements of one vector
// store), so they are written by whole vectors without reaching into the streamed lines: the
// last head vector ends at begin, the last tail vector at n (overlapping the one before, the
// same values). begin = end = 0 (nothing streams) for rows too short or not aligned to T.
// begin is a multiple of the vector width away from a vector-aligned element (the line is),
// so a source shifted to stream_start's alignment stays aligned in the streamed loop.
struct StreamSpan {
  int64_t begin = 0, end = 0;
};
// A kernel whose head or tail vectors need more room passes its minimum (min_end >= L).
// P > 1 (odd): n, begin and end count pixels of P elements (interleaved channels), L is the
// vector's pixels, and the streamed pixels' outputs are whole lines: begin the first pixel
// whose output starts a line, the span a multiple of 64 / sizeof(T) pixels (P lines).
template <typename T, int L, int P = 1>
inline StreamSpan stream_span(const T* o, int64_t n, int64_t min_end = L) {
  static_assert(64 % sizeof(T) == 0 && L * sizeof(T) <= 64, "a line holds whole vectors");
  static_assert(P % 2 == 1, "P odd: its pixels reach every element phase of a line");
  constexpr int64_t line = 64 / sizeof(T);
  const uintptr_t a = reinterpret_cast<uintptr_t>(o);
  if (a % sizeof(T)) return {};
  int64_t b = static_cast<int64_t>((64 - a % 64) % 64 / sizeof(T));
  if constexpr (P > 1) {  // the pixel whose first element is element b of a line (b P^-1 mod line)
    int64_t k = 0;
    while ((k * P) % line != b) ++k;
    b = k;
  }
  while (b > 0 && b < min_end) b += line;  // a head shorter than a vector: more plain lines
  if (n - b < line) return {};
  int64_t e = b + (n - b) / line * line;
  while (n - e > 0 && n - e < min_end) e -= line;  // likewise the tail
  if (e <= b) return {};
  return {b, e};
}

}  // namespace IMKERN_ISA
}  // namespace imkern
