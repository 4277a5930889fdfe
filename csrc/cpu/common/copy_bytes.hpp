// Byte copies of one row (compiled per ISA): copy_bytes, and copy_bytes_stream for outputs
// past the caches (transform/basic.cpp's row copies, resize_decimate.cpp's rows from their L1
// buffer).
#pragma once

#include <cstdint>
#include <cstring>

#include "common/simd.hpp"
#include "common/stream.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace imkern {
namespace IMKERN_ISA {

// Row copies. glibc's memcpy takes `rep movsb` from ~2 KiB on FSRM CPUs, which measured
// 1.2-2.4x slower than a vector loop for 1920- to 3840-byte rows on Zen 4 (1080 rows, warm
// L3: 130 vs 54 us for 1920 bytes, 206 vs 168 for 3840) but 1.07-1.17x faster from 5760 bytes
// on. copy_bytes: under 4 KiB, the first vector unaligned, then 4 vectors per step stored at
// d's vector boundaries (no store splits a cache line: 1080 rows of 1920 bytes, output 16
// bytes past a line, 55 -> 48 us; AVX2 52 -> 44), the last partial vector as an overlapping
// one (n >= V; shorter rows: memcpy); from 4 KiB memcpy. copy_bytes_stream: the same with the
// whole 64-byte lines of d written by non-temporal stores (no read-for-ownership: a third
// less memory traffic once the image no longer fits the cache), the partial lines at both
// ends by ordinary stores; the caller ends its chunk with stream_fence().
IMKERN_ALWAYS_INLINE inline void copy_bytes(const uint8_t* s, uint8_t* d, int64_t n) {
  using vb_t = simd::vec_t<uint8_t>;
  constexpr int64_t kV = simd::kBytes;
  using simd::loadu;
  using simd::storeu;
  if (n < kV || n >= 4096) {
    std::memcpy(d, s, static_cast<size_t>(n));
    return;
  }
  storeu(d, loadu(s));
  int64_t x = kV - static_cast<int64_t>(reinterpret_cast<uintptr_t>(d) % kV);
  auto st = [d](int64_t o, vb_t v) IMKERN_ALWAYS_INLINE { std::memcpy(__builtin_assume_aligned(d + o, kV), &v, sizeof(v)); };
  for (; x + 4 * kV <= n; x += 4 * kV) {
    const vb_t a = loadu(s + x), b = loadu(s + x + kV), c = loadu(s + x + 2 * kV), e = loadu(s + x + 3 * kV);
    st(x, a);
    st(x + kV, b);
    st(x + 2 * kV, c);
    st(x + 3 * kV, e);
  }
  for (; x + kV <= n; x += kV) st(x, loadu(s + x));
  if (x < n) storeu(d + n - kV, loadu(s + n - kV));
}

IMKERN_ALWAYS_INLINE inline void stream_line(uint8_t* d, const uint8_t* s) {
  using vb_t = simd::vec_t<uint8_t>;
  constexpr int64_t kV = simd::kBytes;
  for (int k = 0; k < 64; k += kV) {
    const vb_t v = simd::loadu(s + k);
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(d + k), reinterpret_cast<__m512i>(v));
#elif defined(__AVX__)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + k), reinterpret_cast<__m256i>(v));
#elif defined(__SSE2__)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + k), reinterpret_cast<__m128i>(v));
#else
    simd::storeu(d + k, v);
#endif
  }
}

inline void copy_bytes_stream(const uint8_t* s, uint8_t* d, int64_t n) {
  const StreamSpan sp = stream_span<uint8_t, 1>(d, n);
  if (sp.end - sp.begin < 128) return copy_bytes(s, d, n);
  copy_bytes(s, d, sp.begin);
  for (int64_t x = sp.begin; x < sp.end; x += 64) stream_line(d + x, s + x);
  copy_bytes(s + sp.end, d + sp.end, n - sp.end);
}

}  // namespace IMKERN_ISA
}  // namespace imkern
