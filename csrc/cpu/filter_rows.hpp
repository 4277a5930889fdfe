// Vectorized inner loops shared by sep_filter and correlate (compiled per ISA).
//   hfilter:  h[x] = sum_j k[j] * p[x + j*C]          kw FMAs per output element
//   vfilter:  o[x] = sum_i k[i] * rows[i][x]           kh FMAs per output element
// Both keep 4 vector accumulators in registers and stream the taps; the tails are scalar.
#pragma once
#include "rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

template <typename A>
inline void hfilter(const A* p, A* h, int64_t n, int64_t C, const A* k, int kw) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{};
    const A* q = p + x;
    for (int j = 0; j < kw; ++j, q += C) {
      const vec_t<A> kv = splat<A>(k[j]);
      a0 += kv * loadu(q);
      a1 += kv * loadu(q + L);
      a2 += kv * loadu(q + 2 * L);
      a3 += kv * loadu(q + 3 * L);
    }
    storeu(h + x, a0);
    storeu(h + x + L, a1);
    storeu(h + x + 2 * L, a2);
    storeu(h + x + 3 * L, a3);
  }
  for (; x + L <= n; x += L) {
    vec_t<A> a0{};
    const A* q = p + x;
    for (int j = 0; j < kw; ++j, q += C) a0 += splat<A>(k[j]) * loadu(q);
    storeu(h + x, a0);
  }
  for (; x < n; ++x) {
    A a = 0;
    for (int j = 0; j < kw; ++j) a += k[j] * p[x + j * C];
    h[x] = a;
  }
}

template <typename A>
inline void vfilter(const A* const* rows, A* o, int64_t n, const A* k, int kh) {
  using namespace simd;
  constexpr int L = Vec<A>::lanes;
  int64_t x = 0;
  for (; x + 4 * L <= n; x += 4 * L) {
    vec_t<A> a0{}, a1{}, a2{}, a3{};
    for (int i = 0; i < kh; ++i) {
      const vec_t<A> kv = splat<A>(k[i]);
      const A* q = rows[i] + x;
      a0 += kv * loadu(q);
      a1 += kv * loadu(q + L);
      a2 += kv * loadu(q + 2 * L);
      a3 += kv * loadu(q + 3 * L);
    }
    storeu(o + x, a0);
    storeu(o + x + L, a1);
    storeu(o + x + 2 * L, a2);
    storeu(o + x + 3 * L, a3);
  }
  for (; x + L <= n; x += L) {
    vec_t<A> a0{};
    for (int i = 0; i < kh; ++i) a0 += splat<A>(k[i]) * loadu(rows[i] + x);
    storeu(o + x, a0);
  }
  for (; x < n; ++x) {
    A a = 0;
    for (int i = 0; i < kh; ++i) a += k[i] * rows[i][x];
    o[x] = a;
  }
}

// Keeps the kh source rows an output row needs, each converted and padded once, in a ring
// indexed by source-row number modulo kh. `make(r, dst)` fills the slot for source row r
// (r may lie outside the image: the border decides).
template <typename A>
class RowRing {
 public:
  RowRing(int kh, int64_t width) : kh_(kh), width_(width), buf_(static_cast<size_t>(kh) * width), rows_(kh) {}
  template <typename Make>
  const A* const* rows_for(int64_t first, Make&& make) {
    const int64_t last = first + kh_;  // exclusive
    if (first < lo_ || first > hi_) lo_ = hi_ = first;  // restart (new image or a jump)
    while (hi_ < last) {
      make(hi_, slot(hi_));
      ++hi_;
    }
    lo_ = first;
    for (int i = 0; i < kh_; ++i) rows_[i] = slot(first + i);
    return rows_.data();
  }
  void reset() { lo_ = hi_ = INT64_MIN / 2; }

 private:
  A* slot(int64_t r) {
    int64_t m = r % kh_;
    if (m < 0) m += kh_;
    return buf_.data() + m * width_;
  }
  int kh_;
  int64_t width_;
  std::vector<A> buf_;
  std::vector<const A*> rows_;
  int64_t lo_ = INT64_MIN / 2, hi_ = INT64_MIN / 2;
};

}  // namespace IMKERN_ISA
}  // namespace imkern
