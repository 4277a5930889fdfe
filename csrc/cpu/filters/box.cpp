// Box filter (compiled per ISA): cost independent of the window size.
//
// Algorithm (vertical first): per output row, the column sums over the kh-row window, then
// window sums of those along x.
//  * Integer data (uint8, uint16): running column sums (add the row entering the window,
//    subtract the row leaving it: 2 adds/element) in int32 whenever the largest possible sum
//    fits, else float64. Integer sums are exact, so the running sums never drift and the
//    results are the correctly rounded mean.
//  * Float data: no subtraction anywhere, so a NaN, an Inf or a huge value only reaches the
//    windows that hold it (a running sum keeps NaN - NaN = NaN forever, turns Inf - Inf into
//    NaN and loses the small values next to 1e30). Van Herk / Gil-Werman for sums: the
//    window starts are cut into blocks of kh rows (aligned on output row multiples of kh,
//    whatever the chunking, so threads never change a bit); the window starting at block
//    row i is suffix(i) (rows i .. end of its block, built backwards) + prefix (the first
//    i rows of the next block, built forwards). Each window sum adds only rows of that
//    window: ~3 adds/element (suffix, prefix, the combination), in the accumulation type
//    of the other filters (float32 for float32 data and output, else float64).
// The column sums are then padded horizontally by the border rule (a padded column's sum is
// the sum of the column it maps to, or kh * cval) and summed along x by binary decomposition
// (sums of 1, 2, 4, ... taps by doubling, log2(kw) + popcount(kw) vectorized passes, no
// subtraction): floats for any width, integers up to 64 wide, beyond by a running sum.
// (Block prefix/suffix sums along x are a chain of dependent scalar adds with stride C:
// 3x slower than the doubling passes at kw = 71 on 4K RGB.)
// Floating sums from 7 taps take box_row_levels: the same doubling passes over L1-sized chunks
// of the row, the outputs adding the levels of kw's set bits (log2(kw) + popcount(kw) - 1 adds
// per vector; the fused trees of box_row_fused, kw - 1 adds, serve below 7 taps). Large outputs
// (plan_strips_px's stream) are written with streaming stores by both.
// bytes/pixel = 2 * sizeof(T) * C (+ the rows re-read from cache); adds/pixel =
// C * (2..3 + ~2 log2(min(kw, 64))).
// The output dtype U may differ from the input's (uint8 -> float32 ...): the mean is formed in
// float64 when U or T is float64, else float32, and written straight into the output.
// Integer column sums (int32) take box_row_grouped for windows 7 and more wide: the sums of G
// consecutive taps of an L1-sized chunk of the row, then kw / G of those and kw % G single taps
// per vector (kw / G + kw % G + G loads instead of kw; exact, so the same bits).
// Windows 9 and more wide of 1-4 channels take box_row_prefix instead: prefix sums along x in
// uint32 lanes (two loads and a subtraction per output vector whatever kw; exact, the same bits).
// Integer means whose float division cannot be replaced by a multiply (box_reciprocal_exact),
// e.g. uint16 15x15, round to the nearest integer by two multiplies and roundings where that is
// provably rint of the float quotient (box_rint_exact: odd den, den * ulp(max mean) < 1).
// uint8 -> uint8 means: small odd windows (area <= 127) take box_u8_small, larger odd ones whose
// sums fit 16 bits (area <= 255, e.g. 15x15) box_u8_run: both in uint16 lanes, twice the int32
// path's, with the mean rounded by a multiply-high (exact for every sum; see each).
// 3x3 and 5x5 windows of float32 -> float32 and uint16 -> uint16 take sep_direct instead
// (filter_rows.hpp): plain sums vertically in registers, then horizontally by lane shifts, one
// pass (no subtraction either; uint16 sums are exact in float32, so the int32 path's bits).
#include <cmath>
#include <utility>
#include <limits>

#include "imkern/filters.hpp"
#include "imkern/parallel.hpp"
#include "common/vops.hpp"
#include "filters/filter_rows.hpp"

namespace imkern {
namespace IMKERN_ISA {

// The sum of N consecutive taps (stride C) at p, formed as the doubling passes form it:
// block(2b, x) = block(b, x) + block(b, x + b C).
template <int N, typename S>
IMKERN_ALWAYS_INLINE inline simd::vec_t<S> tap_block(const S* p, int64_t C) {
  if constexpr (N == 1) return simd::loadu(p);
  else return tap_block<N / 2, S>(p, C) + tap_block<N / 2, S>(p + (N / 2) * C, C);
}

// Whether box_row_fused applies: windows up to 31 wide, rows of at least one vector, and the
// sums already in the accumulation type (or int32 sums with float accumulation).
template <typename S, typename A>
constexpr bool box_fusable() {
  return std::is_same<S, A>::value || (std::is_same<S, int32_t>::value && std::is_same<A, float>::value);
}

// One output row from its padded column sums in one pass, in registers: the window sums of
// the binary decomposition (the blocks of kw's set bits, lowest first, each block the tree of
// tap_block), the same expression per element as the doubling passes below, so float results
// are bitwise theirs (integer sums are exact either way); then the mean and the store. Every
// element by the same vector code (a last vector ending at n). kw <= 31, n >= lanes.
// Norm: 0 the sums, 1 sum / den (correctly rounded), 2 sum * (1 / den): only where the rounded
// integer output is provably the same (box_reciprocal_exact).
// CC: the channel count when known at compile time (1 or 3; 0: C at run time). With it the
// kw loads of a vector address one base register by constant offsets; with a run-time C the
// compiler keeps the offsets' pointers in registers and spills them (one more load per tap).
template <int Norm, bool Stream, int CC, typename S, typename A, typename U>
static void box_row_fused(const S* pad, U* o, int64_t n, int64_t Cr, int kw, A den) {
  using namespace simd;
  constexpr int L = Vec<S>::lanes;
  static_assert(L == Vec<A>::lanes, "S and A lanes");
  const int64_t C = CC ? CC : Cr;
  const vec_t<A> dv = splat<A>(den), rv = splat<A>(A(1) / den);
  auto one = [&](int64_t x) IMKERN_ALWAYS_INLINE {
    const S* p = pad + x;
    vec_t<S> h{};
    bool first = true;
    int64_t off = 0;
#define IMKERN_BOX_BIT(B)                                         \
    if (kw & (B)) {                                               \
      const vec_t<S> v = tap_block<(B), S>(p + off * C, C);       \
      h = first ? v : h + v;                                      \
      first = false;                                              \
      off += (B);                                                 \
    }
    IMKERN_BOX_BIT(1)
    IMKERN_BOX_BIT(2)
    IMKERN_BOX_BIT(4)
    IMKERN_BOX_BIT(8)
    IMKERN_BOX_BIT(16)
#undef IMKERN_BOX_BIT
    vec_t<A> a;
    if constexpr (std::is_same<S, A>::value) a = h;
    else a = __builtin_convertvector(h, vec_t<A>);
    if constexpr (Norm == 1) return a / dv;
    else if constexpr (Norm == 2) return a * rv;
    else return a;
  };
  // with Stream, the whole output lines of stream_span streamed, the head and tail by plain vectors
  const StreamSpan sp = stream_head<U, A, Stream>(o, n, one);
  int64_t x = sp.begin;
  for (; x + 2 * L <= sp.end; x += 2 * L) {
    put<U, A, Stream>(o + x, one(x));
    put<U, A, Stream>(o + x + L, one(x + L));
  }
  for (; x + L <= sp.end; x += L) put<U, A, Stream>(o + x, one(x));
  plain_vectors<U, A>(o, x, n, one);
}

// One output row from its padded column sums (floating sums, S == A), any kw: the doubling
// passes of the binary decomposition, run over L1-sized chunks of the row. Per chunk of cn
// outputs, level b (b = 1 .. log2(kw)) holds the sums of 2^b consecutive taps, level(b, y) =
// level(b - 1, y) + level(b - 1, y + 2^(b-1) C) (level 0: the column sums), over the
// cn + (kw - 2^b) C positions that the next level and the outputs read; then each output adds
// the levels of kw's set bits, lowest first, at their offsets. The same expression per element
// as box_row_fused's tap_block trees, so the same bits, in ~log2(kw) + popcount(kw) - 1 adds
// per vector instead of kw - 1 (15 wide: 6 instead of 14), for one store and two loads per
// level. lv: levels(kw) * (box_level_chunk + kw C) elements (box_level_scratch).
template <typename S>
constexpr int64_t box_level_chunk() {
  return 4096 / static_cast<int64_t>(sizeof(S));  // outputs per chunk: a multiple of every line
}
inline int box_levels(int kw) {
  int t = 0;
  while ((2 << t) <= kw) ++t;
  return t;  // floor(log2(kw))
}
template <typename S>
inline int64_t box_level_stride(int kw, int64_t C) {
  return round_up_line<S>(checked_add(box_level_chunk<S>(), checked_mul(kw, C)));
}
template <typename S>
inline int64_t box_level_scratch(int kw, int64_t C) {
  return checked_mul(std::max(box_levels(kw), 1), box_level_stride<S>(kw, C));
}

template <int Norm, bool Stream, int CC, typename S, typename U>
static void box_row_levels(const S* pad, S* lv, U* o, int64_t n, int64_t Cr, int kw, S den) {
  using namespace simd;
  using A = S;
  constexpr int L = Vec<S>::lanes;
  constexpr int64_t K = box_level_chunk<S>();
  const int64_t C = CC ? CC : Cr;
  const int nl = box_levels(kw);
  const int64_t lstride = box_level_stride<S>(kw, C);  // whole lines: aligned level stores
  static_assert(Norm == 0 || Norm == 1, "floating sums: the sums or the correctly rounded mean");
  const vec_t<A> dv = splat<A>(den);
  // the set bits of kw, lowest first: their level and tap offset
  int nb = 0, bit_level[32];
  int64_t bit_off[32];
  {
    int64_t off = 0;
    for (int b = 0; b <= nl; ++b) {
      if (kw & (1 << b)) {
        bit_level[nb] = b;
        bit_off[nb] = off * C;
        ++nb;
        off += int64_t(1) << b;
      }
    }
  }
  auto mean = [&](vec_t<A> a) IMKERN_ALWAYS_INLINE {
    if constexpr (Norm == 1) return a / dv;
    else return a;
  };
  // outputs [s0, s0 + cn), cn >= L: levels, then the stores (vectors from s0, the last one
  // ending at s0 + cn)
  auto chunk = [&](int64_t s0, int64_t cn, auto stream_tag) {
    constexpr bool St = decltype(stream_tag)::value;
    const S* lev[32];
    lev[0] = pad + s0;
    for (int b = 1; b <= nl; ++b) {
      const int64_t half = (int64_t(1) << (b - 1)) * C;
      const int64_t m = cn + (kw - (int64_t(1) << b)) * C;  // >= cn >= L
      const S* __restrict src = lev[b - 1];
      S* __restrict dstl = lv + (b - 1) * lstride;
      int64_t y = 0;
      for (; y + L <= m; y += L) storeu(dstl + y, loadu(src + y) + loadu(src + y + half));
      if (y < m) storeu(dstl + m - L, loadu(src + m - L) + loadu(src + m - L + half));
      lev[b] = dstl;
    }
    const S* q[32];
    for (int i = 0; i < nb; ++i) q[i] = lev[bit_level[i]] + bit_off[i];
    auto fin = [&](auto nb_tag) {
      constexpr int NB = decltype(nb_tag)::value;  // 0: nb at run time
      auto one = [&](int64_t y) IMKERN_ALWAYS_INLINE {
        vec_t<A> h = loadu(q[0] + y);
        if constexpr (NB > 0) {
#pragma GCC unroll 5
          for (int i = 1; i < NB; ++i) h = h + loadu(q[i] + y);
        } else {
          for (int i = 1; i < nb; ++i) h = h + loadu(q[i] + y);
        }
        return mean(h);
      };
      U* oc = o + s0;
      int64_t y = 0;
      for (; y + L <= cn; y += L) put<U, A, St>(oc + y, one(y));
      if (y < cn) store_vec<U, A>(oc + cn - L, one(cn - L));
    };
    switch (nb) {
      case 1: fin(std::integral_constant<int, 1>{}); break;
      case 2: fin(std::integral_constant<int, 2>{}); break;
      case 3: fin(std::integral_constant<int, 3>{}); break;
      case 4: fin(std::integral_constant<int, 4>{}); break;
      default: fin(std::integral_constant<int, 0>{}); break;
    }
  };
  // a run of outputs [r0, r1) (empty or >= L wide) in chunks of K; a short last chunk reaches
  // back to one whole vector (the same values again, plain stores of the same region)
  auto run = [&](int64_t r0, int64_t r1, auto stream_tag) {
    for (int64_t e0 = r0; e0 < r1; e0 += K) {
      const int64_t cn = std::min(K, r1 - e0);
      if (cn < L) chunk(r1 - L, int64_t(L), stream_tag);
      else chunk(e0, cn, stream_tag);
    }
  };
  if constexpr (Stream) {
    // whole lines of stream_span streamed (chunks of K from its start stay whole lines)
    const StreamSpan sp = stream_span<U, L>(o, n);
    run(0, sp.begin, std::false_type{});
    run(sp.begin, sp.end, std::true_type{});
    run(sp.end, n, std::false_type{});
  } else {
    run(0, n, std::false_type{});
  }
}

// The mean of integer window sums a (float, integers) for integer outputs. Norm 0: the sums;
// 1: a / den (correctly rounded; the output store rounds it to an integer); 2: a * (1 / den),
// only where that rounds to the same integers (box_reciprocal_exact); 3: the nearest integer
// to a / den without a division, only where it is rint(a / den)'s (box_rint_exact): k =
// rint(a * rv) is within one of it, the remainder a - k den is exact (integers below 2^24),
// and k + rint(remainder * rv) is the nearest integer (den odd: no ties).
template <int Norm>
IMKERN_ALWAYS_INLINE inline simd::vec_t<float> box_mean(simd::vec_t<float> a, simd::vec_t<float> dv,
                                                       simd::vec_t<float> rv) {
  using namespace simd;
  if constexpr (Norm == 1) return a / dv;
  else if constexpr (Norm == 2) return a * rv;
  else if constexpr (Norm == 3) {
    const vec_t<float> k = vround<_MM_FROUND_TO_NEAREST_INT>(a * rv);
    return k + vround<_MM_FROUND_TO_NEAREST_INT>((a - k * dv) * rv);
  } else return a;
}

// The G-tap grouping with the fewest loads per vector: G (the G-tap sums) + kw / G + kw % G
// (ties: the larger G, fewer loads in the output pass).
inline int box_best_group(int kw) {
  int best = 1, cost = kw;
  for (int g = 2; g <= 8 && g <= kw; ++g) {
    const int c = g + kw / g + kw % g;
    if (c <= cost) cost = c, best = g;
  }
  return best;
}

// Integer column sums (int32, exact) to one output row, as box_row_fused, but in chunks of K
// outputs: the sums of G consecutive taps of the chunk into gbuf (L1), then per vector m of
// those and r single taps (kw = m G + r): kw / G + kw % G + G loads per vector instead of kw.
// Integer sums are exact in any order, so the outputs are box_row_fused's bits.
template <int Norm, int G, typename U>
static void box_row_grouped(const int32_t* pad, int32_t* gbuf, U* o, int64_t n, int64_t C, int kw, float den) {
  using namespace simd;
  using S = int32_t;
  constexpr int L = Vec<S>::lanes;
  constexpr int64_t K = 1024;
  const int m = kw / G, r = kw % G;
  const int64_t sg = G * C, o1 = m * sg;
  const vec_t<float> dv = splat<float>(den), rv = splat<float>(1.f / den);
  for (int64_t e0 = 0; e0 < n; e0 += K) {
    const int64_t e1 = std::min(n, e0 + K), s0 = e1 - e0 < L ? e1 - L : e0;
    const int64_t gend = e1 + int64_t(m - 1) * sg;
    {
      int64_t x = s0;
      for (; x + L <= gend; x += L) {
        vec_t<S> h = loadu(pad + x);
        for (int i = 1; i < G; ++i) h += loadu(pad + x + i * C);
        storeu(gbuf + (x - s0), h);
      }
      for (; x < gend; ++x) {
        S h = 0;
        for (int i = 0; i < G; ++i) h += pad[x + i * C];
        gbuf[x - s0] = h;
      }
    }
    auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
      const S* q = gbuf + (e - s0);
      vec_t<S> h = loadu(q);
      for (int j = 1; j < m; ++j) h += loadu(q + j * sg);
      const S* t = pad + e + o1;
      for (int j = 0; j < r; ++j) h += loadu(t + j * C);
      const vec_t<float> a = __builtin_convertvector(h, vec_t<float>);
      return box_mean<Norm>(a, dv, rv);
    };
    int64_t e = s0;
    for (; e + 2 * L <= e1; e += 2 * L) {
      store_vec<U, float>(o + e, one(e));
      store_vec<U, float>(o + e + L, one(e + L));
    }
    for (; e + L <= e1; e += L) store_vec<U, float>(o + e, one(e));
    if (e < e1) store_vec<U, float>(o + e1 - L, one(e1 - L));
  }
}

template <int Norm, typename U>
static void box_row_grouped_g(int g, const int32_t* pad, int32_t* gbuf, U* o, int64_t n, int64_t C, int kw,
                              float den) {
  switch (g) {
    case 2: return box_row_grouped<Norm, 2, U>(pad, gbuf, o, n, C, kw, den);
    case 3: return box_row_grouped<Norm, 3, U>(pad, gbuf, o, n, C, kw, den);
    case 4: return box_row_grouped<Norm, 4, U>(pad, gbuf, o, n, C, kw, den);
    case 5: return box_row_grouped<Norm, 5, U>(pad, gbuf, o, n, C, kw, den);
    case 6: return box_row_grouped<Norm, 6, U>(pad, gbuf, o, n, C, kw, den);
    case 7: return box_row_grouped<Norm, 7, U>(pad, gbuf, o, n, C, kw, den);
    default: return box_row_grouped<Norm, 8, U>(pad, gbuf, o, n, C, kw, den);
  }
}

// Integer column sums (int32, exact) to one output row by prefix sums along x: Q(p) = pad[p] +
// pad[p - C] + ... (per channel), the window sum at e = Q(e + (kw - 1) C) - Q(e - C): two loads
// and a subtraction per output vector whatever kw. Each step forms the prefix of St = L - L % C
// lanes (a multiple of C, so every lane keeps its channel from step to step) by log2(St / C)
// shifted adds in the register, plus the carried totals of each channel (R, a pattern of
// period C: R += the step's last C lanes, one add on the dependency chain). The sums wrap in
// uint32: a difference of two prefixes is the exact window sum (|sum| < 2^31), so the outputs
// are box_row_grouped's bits. Done in chunks of K positions, the outputs following the
// prefixes while they are still in L1. Per output vector: ~log2(L / C) + 6 operations.
namespace boxq {
template <int Sh, typename V, size_t... I>
IMKERN_ALWAYS_INLINE inline V shift_up(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, V{}, (int(I) >= Sh ? int(I) - Sh : int(sizeof...(I)))...);
}
template <int C, int St, typename V, size_t... I>
IMKERN_ALWAYS_INLINE inline V carry(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (St - C + int(I) % C)...);
}
}  // namespace boxq

// pad: WP = WC + (kw - 1) C column sums (readable to WP + L); q: C + WP + L elements.
template <int Norm, int C, typename U>
static void box_row_prefix(const int32_t* pad_s, uint32_t* q, U* o, int64_t WC, int kw, float den) {
  using namespace simd;
  using V = vec_t<uint32_t>;
  constexpr int L = Vec<uint32_t>::lanes;
  static_assert(C <= L, "channels per step");
  constexpr int St = L - L % C;
  constexpr auto is = std::make_index_sequence<L>{};
  constexpr int64_t K = 1024;
  const uint32_t* pad = reinterpret_cast<const uint32_t*>(pad_s);
  const int64_t span = int64_t(kw) * C, WP = WC + span - C;
  const vec_t<float> dv = splat<float>(den), rv = splat<float>(1.f / den);
  for (int i = 0; i < C; ++i) q[i] = 0;
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    const V s = loadu(q + e + span) - loadu(q + e);
    const vec_t<float> a = __builtin_convertvector(reinterpret_cast<vec_t<int32_t>>(s), vec_t<float>);
    return box_mean<Norm>(a, dv, rv);
  };
  V R{};
  int64_t p = 0, e = 0;
  while (p < WP) {
    const int64_t pend = std::min(WP, p + K);
    for (; p < pend; p += St) {
      V v = loadu(pad + p);
      if constexpr (C < St) v += boxq::shift_up<C>(v, is);
      if constexpr (2 * C < St) v += boxq::shift_up<2 * C>(v, is);
      if constexpr (4 * C < St) v += boxq::shift_up<4 * C>(v, is);
      if constexpr (8 * C < St) v += boxq::shift_up<8 * C>(v, is);
      storeu(q + C + p, v + R);
      R += boxq::carry<C, St>(v, is);
    }
    // outputs whose two prefixes are in: e + L <= min(p, WP) - (kw - 1) C
    const int64_t lim = std::min(p, WP) - (span - C);
    for (; e + 2 * L <= lim; e += 2 * L) {
      store_vec<U, float>(o + e, one(e));
      store_vec<U, float>(o + e + L, one(e + L));
    }
    for (; e + L <= lim; e += L) store_vec<U, float>(o + e, one(e));
  }
  if (e < WC) store_vec<U, float>(o + WC - L, one(WC - L));
}

// C <= 4 channels.
template <int Norm, typename U>
static void box_row_prefix_c(const int32_t* pad, uint32_t* q, U* o, int64_t WC, int64_t C, int kw, float den) {
  switch (C) {
    case 1: return box_row_prefix<Norm, 1, U>(pad, q, o, WC, kw, den);
    case 2: return box_row_prefix<Norm, 2, U>(pad, q, o, WC, kw, den);
    case 3: return box_row_prefix<Norm, 3, U>(pad, q, o, WC, kw, den);
    default: return box_row_prefix<Norm, 4, U>(pad, q, o, WC, kw, den);
  }
}

// Window widths from which box_row_prefix replaces box_row_grouped (read from IMKERN_BOX_PREFIX_KW while tuning).
// Whether rint(v * RN(1 / den)) == rint(RN(v / den)) for every integer v with |v / den| <= maxv
// (integer outputs of integer sums): den a power of two (1 / den is exact), or den odd, so
// v / den is never a tie and lies at least 1 / (2 den) from one, while both roundings stay
// within 2^-23 maxv of v / den (float; 2^-52 for double).
template <typename A>
inline bool box_reciprocal_exact(double den, double maxv) {
  if (den < 1 || den != std::floor(den) || den > 9007199254740992.0) return false;
  const uint64_t d = static_cast<uint64_t>(den);
  if ((d & (d - 1)) == 0) return true;
  const double eps = std::is_same<A, float>::value ? 0x1p-23 : 0x1p-52;
  return (d & 1) && 2 * den * maxv * eps < 0.5;
}

// Whether the nearest integer to v / den (box_mean<3>) equals rint(RN(v / den)) (float) for
// every integer v with |v / den| <= maxv: den odd, so v / den lies at least 1 / (2 den) from a
// half-integer, farther than the float division's rounding error (half an ulp of maxv) moves
// it, so the rounded quotient rounds to the same integer; den (maxv + 2) < 2^24 keeps k den
// and the remainder exact in float.
inline bool box_rint_exact(double den, double maxv) {
  if (den < 3 || den != std::floor(den) || std::fmod(den, 2.0) != 1.0 || !(maxv >= 1)) return false;
  if (den * (maxv + 2) >= 16777216.0) return false;
  return den * std::ldexp(1.0, std::ilogb(maxv) - 23) < 1.0;
}

template <typename T, typename U, typename S>
static void box_typed(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw,
                      int ay, int ax, bool normalize, Border border, double cval) {
  using A = typename OutAccOf<T, U>::type;  // type of the normalized value before the final store
  constexpr bool kFloat = std::is_floating_point<T>::value;
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax, WP = checked_mul(left + W + right, C);
  const int64_t rows = s.n * H;
  const double area = static_cast<double>(kh) * kw;
  const S cv = static_cast<S>(cval);
  // The mean by a multiply where that gives the same integer outputs (box_reciprocal_exact).
  bool rcp_exact = false, rint_exact = false;
  if constexpr (Saturate<U>::integer && std::is_integral<S>::value) {
    const double maxv = std::max<double>(std::numeric_limits<T>::max(), std::fabs(cval));
    rcp_exact = box_reciprocal_exact<A>(area, maxv);
    rint_exact = std::is_same<A, float>::value && box_rint_exact(area, maxv);
  }
  // Large outputs stream (the fused and level row passes: whole lines, plain heads and tails).
  const bool stream = box_fusable<S, A>() && plan_strips_px<U>(dst, s, d, s.w).stream;
  parallel_for(0, rows, filter_grain(rows, 2, get_num_threads()), [&](int64_t t0, int64_t t1) {
    S* pad = thread_scratch<S>(1, static_cast<size_t>(WP));
    A* out = thread_scratch<A>(2, static_cast<size_t>(WC));
    S* hs = thread_scratch<S>(3, static_cast<size_t>(WC));
    S* dbl0 = thread_scratch<S>(4, static_cast<size_t>(WP));  // doubling ping-pong rows
    S* dbl1 = thread_scratch<S>(5, static_cast<size_t>(WP));
    // the level passes' chunk rows (box_row_levels; floating sums only)
    S* lvbuf = std::is_same<S, A>::value && kw >= 7
                   ? thread_scratch<S>(0, static_cast<size_t>(box_level_scratch<S>(kw, C)))
                   : nullptr;
    // G-tap sums of one chunk of the row (box_row_grouped; slot 6 is the float path's)
    S* gbuf = std::is_integral<S>::value ? thread_scratch<S>(6, static_cast<size_t>(1024 + 64 + checked_mul(kw, C)))
                                         : nullptr;
    // prefix sums along x (box_row_prefix; slot 7 is the float path's)
    uint32_t* qbuf = std::is_integral<S>::value ? thread_scratch<uint32_t>(7, static_cast<size_t>(WP + C + 64)) : nullptr;
    auto src_row = [&](int64_t b, int64_t sy) -> const T* {
      const int64_t yy = border_index(sy, H, border);
      return yy < 0 ? nullptr : row_ptr<T>(src, s, b, yy);
    };
    // dst = row (+ prev when given); the constant border's rows are cval.
    auto sum_row = [&](S* dstr, const T* r, const S* prev) {
      if (r && prev) {
        for (int64_t x = 0; x < WC; ++x) dstr[x] = static_cast<S>(r[x]) + prev[x];
      } else if (r) {
        for (int64_t x = 0; x < WC; ++x) dstr[x] = static_cast<S>(r[x]);
      } else if (prev) {
        for (int64_t x = 0; x < WC; ++x) dstr[x] = cv + prev[x];
      } else {
        std::fill(dstr, dstr + WC, cv);
      }
    };
    // f(stream_tag, c_tag): the streaming flag and the channel count (1, 3, else 0: at run
    // time) as compile-time tags for the row passes
    auto with_tags = [&](auto&& f) {
      auto by_c = [&](auto stream_tag) {
        if (C == 1) f(stream_tag, std::integral_constant<int, 1>{});
        else if (C == 3) f(stream_tag, std::integral_constant<int, 3>{});
        else f(stream_tag, std::integral_constant<int, 0>{});
      };
      if (stream) by_c(std::true_type{});
      else by_c(std::false_type{});
    };
    // Output row (b, y) from its column sums, already in pad[left * C, left * C + WC).
    S* const cs = pad + left * C;
    auto emit = [&](int64_t b, int64_t y) {
      // Pad the column sums horizontally.
      for (int64_t x = -left; x < 0; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cv * S(kh) : cs[sx * C + ch];
      }
      for (int64_t x = W; x < W + right; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cv * S(kh) : cs[sx * C + ch];
      }
      if constexpr (std::is_same<S, int32_t>::value && std::is_same<A, float>::value) {
        // integer sums: grouped taps (exact, so box_row_fused's bits), any width
        if (kw >= 7 && WC >= simd::Vec<S>::lanes) {
          U* o = row_ptr<U>(dst, d, b, y);
          const float den = static_cast<float>(area);
          // from 9 taps the prefix sums cost less than the grouped taps (7: the same)
          if (kw >= 9 && C <= 4) {
            if (!normalize) box_row_prefix_c<0, U>(pad, qbuf, o, WC, C, kw, 1.f);
            else if (rcp_exact) box_row_prefix_c<2, U>(pad, qbuf, o, WC, C, kw, den);
            else if (rint_exact) box_row_prefix_c<3, U>(pad, qbuf, o, WC, C, kw, den);
            else box_row_prefix_c<1, U>(pad, qbuf, o, WC, C, kw, den);
            return;
          }
          const int g = box_best_group(kw);
          if (!normalize) box_row_grouped_g<0, U>(g, pad, gbuf, o, WC, C, kw, 1.f);
          else if (rcp_exact) box_row_grouped_g<2, U>(g, pad, gbuf, o, WC, C, kw, den);
          else if (rint_exact) box_row_grouped_g<3, U>(g, pad, gbuf, o, WC, C, kw, den);
          else box_row_grouped_g<1, U>(g, pad, gbuf, o, WC, C, kw, den);
          return;
        }
      }
      if constexpr (std::is_same<S, A>::value) {
        // floating sums: the level passes from 7 taps (the fused trees below it)
        if (kw >= 7 && WC >= simd::Vec<S>::lanes) {
          U* o = row_ptr<U>(dst, d, b, y);
          with_tags([&](auto stream_tag, auto c_tag) {
            constexpr bool St = decltype(stream_tag)::value;
            constexpr int CC = decltype(c_tag)::value;
            if (!normalize) box_row_levels<0, St, CC, S, U>(pad, lvbuf, o, WC, C, kw, A(1));
            else box_row_levels<1, St, CC, S, U>(pad, lvbuf, o, WC, C, kw, static_cast<A>(area));
          });
          return;
        }
      }
      if constexpr (box_fusable<S, A>()) {
        if (kw <= 31 && WC >= simd::Vec<S>::lanes) {
          U* o = row_ptr<U>(dst, d, b, y);
          with_tags([&](auto stream_tag, auto c_tag) {
            constexpr bool St = decltype(stream_tag)::value;
            constexpr int CC = decltype(c_tag)::value;
            if (!normalize) box_row_fused<0, St, CC, S, A, U>(pad, o, WC, C, kw, A(1));
            else if (rcp_exact) box_row_fused<2, St, CC, S, A, U>(pad, o, WC, C, kw, static_cast<A>(area));
            else box_row_fused<1, St, CC, S, A, U>(pad, o, WC, C, kw, static_cast<A>(area));
          });
          return;
        }
      }
      // Window sums along x (into hs), then scale into the accumulator type.
      if (kFloat || kw <= 64) {
        // Binary decomposition: sums of 1, 2, 4, ... consecutive taps by doubling, added in
        // for each set bit of kw: log2(kw) + popcount(kw) vectorized passes over the row.
        const S* block = pad;  // sums of `bs` taps starting at each position
        int64_t bs = 1, offset = 0, valid = WP;  // valid: positions where block is defined
        bool first = true;
        S* ping = dbl0;
        for (int rem = kw;;) {
          if (rem & 1) {
            const S* q = block + offset * C;
            if (first) std::copy(q, q + WC, hs);
            else for (int64_t x = 0; x < WC; ++x) hs[x] += q[x];
            first = false;
            offset += bs;
          }
          rem >>= 1;
          if (!rem) break;
          const int64_t nvalid = valid - bs * C;
          for (int64_t x = 0; x < nvalid; ++x) ping[x] = block[x] + block[x + bs * C];
          block = ping;
          ping = ping == dbl0 ? dbl1 : dbl0;
          valid = nvalid;
          bs *= 2;
        }
      } else {
        const int64_t span = static_cast<int64_t>(kw) * C;
        for (int64_t ch = 0; ch < C; ++ch) {
          S acc = 0;
          for (int j = 0; j < kw; ++j) acc += pad[ch + j * C];
          for (int64_t x = ch; x < WC; x += C) {
            hs[x] = acc;
            if (x + C < WC) acc += pad[x + span] - pad[x];
          }
        }
      }
      if (normalize) {
        const A den = static_cast<A>(area);
        for (int64_t x = 0; x < WC; ++x) out[x] = static_cast<A>(hs[x]) / den;
      } else {
        for (int64_t x = 0; x < WC; ++x) out[x] = static_cast<A>(hs[x]);
      }
      store_row(out, row_ptr<U>(dst, d, b, y), WC);
    };
    if constexpr (kFloat) {
      // kh rows of suffix sums (slot 6) and the prefix row (slot 7).
      S* suf = thread_scratch<S>(6, static_cast<size_t>(checked_mul(kh, WC)));
      S* pre = thread_scratch<S>(7, static_cast<size_t>(WC));
      for (int64_t t = t0; t < t1;) {
        const int64_t b = t / H, y = t % H;
        const int64_t yq = y / kh * kh;  // the block's first output row
        const int64_t ilo = y - yq;
        const int64_t yend = std::min<int64_t>(H, y + (t1 - t));  // this chunk's rows of image b
        const int64_t ihi = std::min<int64_t>(kh, yend - yq);
        // window of output yq + i: rows base + i .. base + i + kh - 1
        const int64_t base = yq - ay;
        // suffix sums suf[i] = rows base + i .. base + kh - 1, for i >= ilo; rows past the
        // ones needed accumulate in suf[kh - 1] (in place).
        const S* prev = nullptr;
        for (int64_t i = kh - 1; i >= ilo; --i) {
          S* tgt = suf + (i < ihi ? i : kh - 1) * WC;
          sum_row(tgt, src_row(b, base + i), prev);
          prev = tgt;
        }
        // prefix: rows base + kh .. base + kh + i - 1
        bool have_pre = false;
        for (int64_t j = 0; j + 1 < ilo; ++j) {
          sum_row(pre, src_row(b, base + kh + j), have_pre ? pre : nullptr);
          have_pre = true;
        }
        for (int64_t i = ilo; i < ihi; ++i) {
          const S* si = suf + i * WC;
          if (i == 0) {
            std::copy(si, si + WC, cs);
          } else {
            // pre += the next row of block q + 1; column sums = suffix + prefix (one pass)
            const T* r = src_row(b, base + kh + i - 1);
            S* __restrict pw = pre;
            S* __restrict cw = cs;
            const S* __restrict sr = si;
            if (!have_pre) {
              if (r) {
                for (int64_t x = 0; x < WC; ++x) {
                  const S v = static_cast<S>(r[x]);
                  pw[x] = v;
                  cw[x] = sr[x] + v;
                }
              } else {
                for (int64_t x = 0; x < WC; ++x) {
                  pw[x] = cv;
                  cw[x] = sr[x] + cv;
                }
              }
              have_pre = true;
            } else if (r) {
              for (int64_t x = 0; x < WC; ++x) {
                const S v = pw[x] + static_cast<S>(r[x]);
                pw[x] = v;
                cw[x] = sr[x] + v;
              }
            } else {
              for (int64_t x = 0; x < WC; ++x) {
                const S v = pw[x] + cv;
                pw[x] = v;
                cw[x] = sr[x] + v;
              }
            }
          }
          emit(b, yq + i);
        }
        t += ihi - ilo;
      }
    } else {
      S* const col = cs;  // the running column sums live where emit reads them (no copy)
      int64_t cur_b = -1;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / H, y = t % H;
        if (b != cur_b) {  // start of a chunk or of an image: full column sums
          cur_b = b;
          std::fill(col, col + WC, S(0));
          for (int i = 0; i < kh; ++i) sum_row(col, src_row(b, y - ay + i), col);
        } else {
          const T* in = src_row(b, y - ay + kh - 1);
          const T* gone = src_row(b, y - 1 - ay);
          if (in && gone) {
            for (int64_t x = 0; x < WC; ++x) col[x] += static_cast<S>(in[x]) - static_cast<S>(gone[x]);
          } else {
            sum_row(col, in, col);
            if (gone) {
              for (int64_t x = 0; x < WC; ++x) col[x] -= static_cast<S>(gone[x]);
            } else {
              for (int64_t x = 0; x < WC; ++x) col[x] -= cv;
            }
          }
        }
        // the row the next step brings in: fetched while this row runs
        if (t + 1 < t1 && y + 1 < H) {
          const int64_t yy = y + 1 - ay + kh - 1;
          if (yy >= 0 && yy < H) prefetch_span(row_ptr<T>(src, s, b, yy), WC);
        }
        emit(b, y);
      }
    }
    if (stream) stream_fence();
  });
}

// uint8 -> uint8 means of small windows with an odd area (3x3, 5x5, 3x5, ...; area <= 127):
// every sum fits 16 bits, so both passes run in 16-bit lanes (twice the lanes of the int32
// path) with no running state. Per output row: the column sums of the kh source rows (widened
// bytes, added directly; border rows by border_index, a constant border by a row of cval)
// into a padded row of uint16, its border columns by the border rule; then per vector the kw
// shifted column sums added, and the mean rounded by a multiply-high:
// round(v / den) = floor((2 v + den) / (2 den)) (den odd: never a tie), the division by
// D = 2 den as mulhi(u, M) >> sh with M = ceil(2^(16 + sh) / D), exact for every
// u <= umax when umax * (M D - 2^(16 + sh)) < 2^(16 + sh). That is the correctly rounded mean,
// the int32 path's result bit for bit (box_reciprocal_exact). Loads and adds per 16-bit
// vector: kh + kw; the output row written once.
namespace box16 {
using V = simd::vec_t<uint16_t>;
constexpr int L = simd::Vec<uint16_t>::lanes;

IMKERN_ALWAYS_INLINE inline V widen(const uint8_t* p) {
#if defined(__AVX512BW__)
  return reinterpret_cast<V>(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif defined(__AVX2__)
  return reinterpret_cast<V>(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__SSE4_1__)
  return reinterpret_cast<V>(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#else
  V v;
  for (int i = 0; i < L; ++i) v[i] = p[i];
  return v;
#endif
}

IMKERN_ALWAYS_INLINE inline V mulhi(V a, V m) {
#if defined(__AVX512BW__)
  return reinterpret_cast<V>(_mm512_mulhi_epu16(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(m)));
#elif defined(__AVX2__)
  return reinterpret_cast<V>(_mm256_mulhi_epu16(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(m)));
#elif defined(__SSE2__)
  return reinterpret_cast<V>(_mm_mulhi_epu16(reinterpret_cast<__m128i>(a), reinterpret_cast<__m128i>(m)));
#else
  V r;
  for (int i = 0; i < L; ++i) r[i] = static_cast<uint16_t>((uint32_t(a[i]) * m[i]) >> 16);
  return r;
#endif
}

// L lanes (each <= 255) -> L bytes at p.
IMKERN_ALWAYS_INLINE inline void narrow_store(uint8_t* p, V v) {
#if defined(__AVX512BW__)
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi16_epi8(reinterpret_cast<__m512i>(v)));
#elif defined(__AVX2__)
  const __m256i i = reinterpret_cast<__m256i>(v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1)));
#elif defined(__SSE2__)
  const __m128i i = reinterpret_cast<__m128i>(v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(i, i));
#else
  for (int i = 0; i < L; ++i) p[i] = static_cast<uint8_t>(v[i]);
#endif
}

// 2 L lanes (each <= 255) -> 2 L bytes at p: one pack and one lane fix-up for both vectors.
IMKERN_ALWAYS_INLINE inline void narrow_store2(uint8_t* p, V a, V b) {
#if defined(__AVX512BW__)
  const __m512i k = _mm512_packus_epi16(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b));
  _mm512_storeu_si512(p, _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), k));
#elif defined(__AVX2__)
  const __m256i k = _mm256_packus_epi16(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permute4x64_epi64(k, 0xD8));
#elif defined(__SSE2__)
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(reinterpret_cast<__m128i>(a), reinterpret_cast<__m128i>(b)));
#else
  narrow_store(p, a);
  narrow_store(p + L, b);
#endif
}

struct Div {
  uint16_t m = 0;
  int sh = 0;
  bool ok = false;
};

// floor(u / d) = mulhi(u, m) >> sh for every u <= umax (d >= 2).
inline Div divider(uint32_t d, uint32_t umax) {
  Div r;
  for (int sh = 0; sh < 16; ++sh) {
    const uint64_t k = uint64_t(1) << (16 + sh);
    const uint64_t m = (k + d - 1) / d;
    if (m > 65535) break;
    if (uint64_t(umax) * (m * d - k) < k) {
      r.m = static_cast<uint16_t>(m);
      r.sh = sh;
      r.ok = true;
      return r;
    }
  }
  return r;
}
}  // namespace box16

// Whether box_u8_small applies (see above).
inline bool box_u8_small_ok(int kh, int kw, bool normalize, Border border, double cval) {
  const int area = kh * kw;
  if (!normalize || area % 2 == 0 || area > 127) return false;
  if (border == Border::constant && !(cval >= 0 && cval <= 255 && cval == std::floor(cval))) return false;
  return box16::divider(2 * area, 2 * 255 * area + area).ok;
}

// KH, KW: the window as compile-time constants (0: kh, kw at run time).
template <int KH, int KW>
static void box_u8_small(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh_rt, int kw_rt,
                         int ay, int ax, Border border, double cval) {
  const int kh = KH > 0 ? KH : kh_rt, kw = KW > 0 ? KW : kw_rt;
  using namespace box16;
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax;
  const uint32_t area = static_cast<uint32_t>(kh * kw);
  const Div dv = divider(2 * area, 2 * 255 * area + area);
  const uint8_t cv8 = static_cast<uint8_t>(cval);
  const uint16_t cvsum = static_cast<uint16_t>(cv8 * kh);
  const int64_t rows = s.n * H;
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    // padded column sums of two output rows
    const size_t padn = static_cast<size_t>((left + W + right) * C);
    uint16_t* pads[2] = {thread_scratch<uint16_t>(1, padn), thread_scratch<uint16_t>(3, padn)};
    const uint8_t* cvrow = nullptr;
    if (border == Border::constant) {
      uint8_t* r = thread_scratch<uint8_t>(2, static_cast<size_t>(WC));
      std::fill(r, r + WC, cv8);
      cvrow = r;
    }
    const uint8_t* rp[33];
    const V vm = simd::splat<uint16_t>(dv.m), vden = simd::splat<uint16_t>(static_cast<uint16_t>(area));
    // Row pair (y, y + 1) shares kh - 1 source rows: their sum is formed once.
    auto colsums = [&](int np) {
      uint16_t* c0 = pads[0] + left * C;
      uint16_t* c1 = pads[1] + left * C;
      auto colv = [&](int64_t e) IMKERN_ALWAYS_INLINE {
        V m{};
        for (int i = 1; i < kh; ++i) m += widen(rp[i] + e);
        simd::storeu(c0 + e, m + widen(rp[0] + e));
        if (np == 2) simd::storeu(c1 + e, m + widen(rp[kh] + e));
      };
      if (WC >= L) {
        int64_t e = 0;
        for (; e + L <= WC; e += L) colv(e);
        if (e < WC) colv(WC - L);
      } else {
        for (int64_t e = 0; e < WC; ++e) {
          uint16_t m = 0;
          for (int i = 1; i < kh; ++i) m = static_cast<uint16_t>(m + rp[i][e]);
          c0[e] = static_cast<uint16_t>(m + rp[0][e]);
          if (np == 2) c1[e] = static_cast<uint16_t>(m + rp[kh][e]);
        }
      }
    };
    auto emit = [&](uint16_t* pad, uint8_t* o) {
      const uint16_t* col = pad + left * C;
      for (int64_t x = -left; x < 0; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cvsum : col[sx * C + ch];
      }
      for (int64_t x = W; x < W + right; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cvsum : col[sx * C + ch];
      }
      // window sums along x and the rounded mean
      auto rowv = [&](int64_t e) IMKERN_ALWAYS_INLINE {
        const uint16_t* q = pad + e;
        V h = simd::loadu(q);
        for (int j = 1; j < kw; ++j) h += simd::loadu(q + j * C);
        return mulhi(h + h + vden, vm) >> dv.sh;
      };
      int64_t e = 0;
      if (WC >= L) {
        for (; e + 2 * L <= WC; e += 2 * L) {
          narrow_store(o + e, rowv(e));
          narrow_store(o + e + L, rowv(e + L));
        }
        for (; e + L <= WC; e += L) narrow_store(o + e, rowv(e));
        if (e < WC) narrow_store(o + WC - L, rowv(WC - L));
      } else {
        for (; e < WC; ++e) {
          uint32_t h = 0;
          for (int j = 0; j < kw; ++j) h += pad[e + j * C];
          o[e] = static_cast<uint8_t>((2 * h + area) / (2 * area));
        }
      }
    };
    for (int64_t t = t0; t < t1;) {
      const int64_t b = t / H, y = t % H;
      const int np = (t + 1 < t1 && y + 1 < H) ? 2 : 1;
      for (int i = 0; i < kh + np - 1; ++i) {
        const int64_t yy = border_index(y - ay + i, H, border);
        rp[i] = yy < 0 ? cvrow : row_ptr<uint8_t>(src, s, b, yy);
      }
      colsums(np);
      emit(pads[0], row_ptr<uint8_t>(dst, d, b, y));
      if (np == 2) emit(pads[1], row_ptr<uint8_t>(dst, d, b, y + 1));
      // prefetch the rows the pair after next brings in (the column pass reads them first)
      for (int64_t i = kh + np + 1; i < kh + 2 * np + 1; ++i) {  // two rows past them
        const int64_t yy = y - ay + i;
        if (yy >= 0 && yy < H) prefetch_span(row_ptr<uint8_t>(src, s, b, yy), WC);
      }
      t += np;
    }
  });
}

// uint8 -> uint8 means of larger windows whose sums still fit 16 bits (odd area, 255 * area +
// (area - 1) / 2 < 65536: up to 15x17, 15x15, 11x23, ...; kw <= 63), where box_u8_small's
// kh + kw loads per vector cost more than running sums. Per output row: running column sums in
// uint16 lanes (add the widened row entering the window, subtract the one leaving it: the true
// sums fit 16 bits, so the wrapping arithmetic is exact), primed from kh rows at the start of
// each chunk and image; the border columns by the border rule; then per 16-bit vector the kw
// shifted column sums (blocks of kw's set bits, as box_row_fused) and the mean rounded by a
// multiply-high: den odd, so v / den is never a tie and round(v / den) = floor((v + (den - 1)
// / 2) / den), the division as mulhi(u, M) >> sh, exact for every u <= 255 den + (den - 1) / 2
// (box16::divider; checked exhaustively by tests/test_box.py's twin of it): the correctly
// rounded mean, the int32 path's result bit for bit. Per 16-bit vector: 3 loads + 2 adds for
// the column sums, kw loads and adds along x, twice the lanes of the int32 path.
inline bool box_u8_run_ok(int kh, int kw, bool normalize, Border border, double cval) {
  const int area = kh * kw;
  if (!normalize || area % 2 == 0 || area < 3 || 255 * area + (area - 1) / 2 > 65535) return false;
  if (border == Border::constant && !(cval >= 0 && cval <= 255 && cval == std::floor(cval))) return false;
  return box16::divider(area, 255 * area + (area - 1) / 2).ok;
}

namespace box16 {
// Row sums of G consecutive taps (stride C): out[x - a] = p[x] + p[x + C] + ... + p[x + (G - 1) C]
// for x in [a, b) (uint16, wrapping: the true sums fit).
template <int G>
static void sum_taps(const uint16_t* __restrict p, int64_t C, uint16_t* __restrict out, int64_t a, int64_t b) {
  int64_t x = a;
  for (; x + L <= b; x += L) {
    V h = simd::loadu(p + x);
    for (int i = 1; i < G; ++i) h += simd::loadu(p + x + i * C);
    simd::storeu(out + (x - a), h);
  }
  for (; x < b; ++x) {
    uint16_t h = 0;
    for (int i = 0; i < G; ++i) h = static_cast<uint16_t>(h + p[x + i * C]);
    out[x - a] = h;
  }
}

// Output bytes [e0, e1) (e1 - e0 >= L) of one row: the window sum at x is m taps of the G-tap
// sums pg (pg[x] = the G taps from x; indexed from gbase) plus r single taps of p1 after them
// (kw = m G + r), the mean rounded (see box_u8_run).
// M, R: m and r at compile time (-1: at run time).
template <int G, int M, int R>
static void window_span(const uint16_t* __restrict p1, const uint16_t* __restrict pg, int64_t gbase,
                        uint8_t* __restrict o, int64_t e0, int64_t e1, int64_t C, int m_rt, int r_rt, V vhalf,
                        V vm, int sh) {
  const int m = M >= 0 ? M : m_rt, r = R >= 0 ? R : r_rt;
  const int64_t sg = G * C, o1 = m * sg;
  auto one = [&](int64_t e) IMKERN_ALWAYS_INLINE {
    V h = vhalf;
    const uint16_t* q = pg + (e - gbase);
    if constexpr (M >= 0) {
      for (int j = 0; j < M; ++j) h += simd::loadu(q + j * sg);
    } else {
      for (int j = 0; j < m; ++j) h += simd::loadu(q + j * sg);
    }
    const uint16_t* t = p1 + e + o1;
    if constexpr (R >= 0) {
      for (int j = 0; j < R; ++j) h += simd::loadu(t + j * C);
    } else {
      for (int j = 0; j < r; ++j) h += simd::loadu(t + j * C);
    }
    return mulhi(h, vm) >> sh;
  };
  int64_t e = e0;
  for (; e + 2 * L <= e1; e += 2 * L) narrow_store2(o + e, one(e), one(e + L));
  for (; e + L <= e1; e += L) narrow_store(o + e, one(e));
  if (e < e1) narrow_store(o + e1 - L, one(e1 - L));
}

// The sums along x of one row in chunks of K outputs whose G-tap sums stay in L1 (gbuf): for
// each chunk, the G-tap sums it needs, then its outputs. WC >= L.
template <int G, int M, int R>
static void window_row(const uint16_t* p1, uint16_t* gbuf, uint8_t* o, int64_t e0, int64_t e1, int64_t C, int m,
                       int r, V vhalf, V vm, int sh) {
  if (G > 1 && m > 0) sum_taps<G>(p1, C, gbuf, e0, e1 + int64_t(m - 1) * G * C);
  window_span<G, M, R>(p1, gbuf, e0, o, e0, e1, C, m, r, vhalf, vm, sh);
}

using WindowRowFn = void (*)(const uint16_t*, uint16_t*, uint8_t*, int64_t, int64_t, int64_t, int, int, V, V, int);

// The G-tap grouping with the fewest loads per vector: G (the G-tap sums) + kw / G + kw % G
// (ties: the larger G, fewer loads in the output pass).
inline int best_group(int kw) {
  int best = 1, cost = kw;
  for (int g = 2; g <= 8 && g <= kw; ++g) {
    const int c = g + kw / g + kw % g;
    if (c <= cost) cost = c, best = g;
  }
  return best;
}

// Compile-time loop counts for the windows of the common odd widths (kw 5..31: 9 = 3 x 3,
// 13 = 4 x 3 + 1, 15 = 5 x 3, ...; best_group's choices), run-time counts for the others.
inline WindowRowFn window_row_for(int kw, int g) {
#define IMKERN_BOX_W(KW, G) \
  if (kw == KW && g == G) return window_row<G, KW / G, KW % G>;
  IMKERN_BOX_W(5, 2) IMKERN_BOX_W(7, 3) IMKERN_BOX_W(9, 3) IMKERN_BOX_W(11, 5) IMKERN_BOX_W(13, 4)
  IMKERN_BOX_W(15, 5) IMKERN_BOX_W(17, 4) IMKERN_BOX_W(19, 6) IMKERN_BOX_W(21, 7) IMKERN_BOX_W(23, 7)
  IMKERN_BOX_W(25, 5) IMKERN_BOX_W(27, 5) IMKERN_BOX_W(29, 7) IMKERN_BOX_W(31, 6)
#undef IMKERN_BOX_W
  switch (g) {
    case 2: return window_row<2, -1, -1>;
    case 3: return window_row<3, -1, -1>;
    case 4: return window_row<4, -1, -1>;
    case 5: return window_row<5, -1, -1>;
    case 6: return window_row<6, -1, -1>;
    case 7: return window_row<7, -1, -1>;
    case 8: return window_row<8, -1, -1>;
    default: return window_row<1, -1, -1>;
  }
}
}  // namespace box16

static void box_u8_run(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw, int ay,
                       int ax, Border border, double cval) {
  using namespace box16;
  const int64_t H = s.h, W = s.w, C = s.c, WC = W * C;
  const int64_t left = ax, right = kw - 1 - ax, WP = (left + W + right) * C;
  const uint32_t area = static_cast<uint32_t>(kh * kw);
  const uint16_t half = static_cast<uint16_t>((area - 1) / 2);
  const Div dv = divider(area, 255 * area + half);
  const uint8_t cv8 = static_cast<uint8_t>(cval);
  const uint16_t cvsum = static_cast<uint16_t>(cv8 * kh);
  const int64_t rows = s.n * H;
  const int g = best_group(kw), m = g > 1 ? kw / g : 0, r = g > 1 ? kw % g : kw;
  const WindowRowFn wrow = window_row_for(kw, g);
  // outputs per chunk of the row: the chunk's column sums, G-tap sums and bytes stay in L1
  constexpr int64_t K = 1024;
  // the column sums the left border copies (wrap: the right end of the row)
  int64_t left_need = 0;
  for (int64_t x = -left; x < 0; ++x) left_need = std::max(left_need, (border_index(x, W, border) + 1) * C);
  parallel_for(0, rows, filter_grain(rows, kh, get_num_threads()), [&](int64_t t0, int64_t t1) {
    uint16_t* const pad = thread_scratch<uint16_t>(1, static_cast<size_t>(WP));
    uint16_t* const gbuf = thread_scratch<uint16_t>(3, static_cast<size_t>(K + L + int64_t(kw) * C));
    uint16_t* const col = pad + left * C;
    const uint8_t* cvrow = nullptr;
    if (border == Border::constant) {
      uint8_t* rr = thread_scratch<uint8_t>(2, static_cast<size_t>(WC));
      std::fill(rr, rr + WC, cv8);
      cvrow = rr;
    }
    const V vm = simd::splat<uint16_t>(dv.m), vhalf = simd::splat<uint16_t>(half);
    auto src_row = [&](int64_t b, int64_t sy) -> const uint8_t* {
      const int64_t yy = border_index(sy, H, border);
      return yy < 0 ? cvrow : row_ptr<uint8_t>(src, s, b, yy);
    };
    auto prime = [&](int64_t b, int64_t y) {
      const int64_t WCv = WC / L * L;
      std::fill(col, col + WC, uint16_t(0));
      for (int i = 0; i < kh; ++i) {
        const uint8_t* rr = src_row(b, y - ay + i);
        int64_t e = 0;
        for (; e < WCv; e += L) simd::storeu(col + e, simd::loadu(col + e) + widen(rr + e));
        for (; e < WC; ++e) col[e] = static_cast<uint16_t>(col[e] + rr[e]);
      }
    };
    // col[a, b) += in - gone: whole vectors (in place: no overlapping tail), then scalars
    auto slide = [&](const uint8_t* __restrict in, const uint8_t* __restrict gone, int64_t a, int64_t b) {
      uint16_t* __restrict c = col;
      int64_t e = a;
      for (; e + L <= b; e += L) simd::storeu(c + e, simd::loadu(c + e) + widen(in + e) - widen(gone + e));
      for (; e < b; ++e) c[e] = static_cast<uint16_t>(c[e] + in[e] - gone[e]);
    };
    auto pad_left = [&] {
      for (int64_t x = -left; x < 0; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cvsum : col[sx * C + ch];
      }
    };
    auto pad_right = [&] {
      for (int64_t x = W; x < W + right; ++x) {
        const int64_t sx = border_index(x, W, border);
        for (int64_t ch = 0; ch < C; ++ch) pad[(x + left) * C + ch] = sx < 0 ? cvsum : col[sx * C + ch];
      }
    };
    // One output row; in/gone: the rows that slide the column sums (null: primed already).
    auto row = [&](const uint8_t* in, const uint8_t* gone, uint8_t* o) {
      if (WC < L) {
        if (in) slide(in, gone, 0, WC);
        pad_left();
        pad_right();
        for (int64_t e = 0; e < WC; ++e) {
          uint32_t h = 0;
          for (int j = 0; j < kw; ++j) h += pad[e + j * C];
          o[e] = static_cast<uint8_t>((h + half) / area);
        }
        return;
      }
      // Chunk k's outputs need the column sums up to e1 + right C and (the left border) up to
      // (left + 1) C: slid just before, so they are read back from L1.
      int64_t slid = in ? 0 : WC;
      bool have_left = false, have_right = false;
      for (int64_t e0 = 0; e0 < WC; e0 += K) {
        const int64_t e1 = std::min(WC, e0 + K);
        int64_t need = std::max(e1 + right * C, left_need);
        need = std::min(WC, (need + L - 1) / L * L);
        if (slid < need) {
          slide(in, gone, slid, need);
          slid = need;
        }
        if (!have_left) {
          pad_left();
          have_left = true;
        }
        if (slid == WC && !have_right) {
          pad_right();
          have_right = true;
        }
        // a short last chunk reaches back to one whole vector (rewriting the same bytes)
        wrow(pad, gbuf, o, e1 - e0 < L ? e1 - L : e0, e1, C, m, r, vhalf, vm, dv.sh);
      }
    };
    int64_t cur_b = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / H, y = t % H;
      const uint8_t* in = nullptr;
      const uint8_t* gone = nullptr;
      if (b != cur_b) {
        cur_b = b;
        prime(b, y);
      } else {
        in = src_row(b, y - ay + kh - 1);
        gone = src_row(b, y - 1 - ay);
      }
      // the row the next slide brings in: fetched while this row runs
      if (t + 1 < t1 && y + 1 < H) {
        const int64_t yy = y + 1 - ay + kh - 1;
        if (yy >= 0 && yy < H) prefetch_span(row_ptr<uint8_t>(src, s, b, yy), WC);
      }
      row(in, gone, row_ptr<uint8_t>(dst, d, b, y));
    }
  });
}

template <typename T, typename U>
static void box_impl(const void* src, const ImageDesc& s, void* dst, const ImageDesc& d, int kh, int kw, int ay,
                     int ax, bool normalize, Border border, double cval) {
  if constexpr (std::is_same<T, uint8_t>::value && std::is_same<U, uint8_t>::value) {
    if (kh <= 32 && box_u8_small_ok(kh, kw, normalize, border, cval)) {
      if (kh == 3 && kw == 3) return box_u8_small<3, 3>(src, s, dst, d, kh, kw, ay, ax, border, cval);
      if (kh == 5 && kw == 5) return box_u8_small<5, 5>(src, s, dst, d, kh, kw, ay, ax, border, cval);
      return box_u8_small<0, 0>(src, s, dst, d, kh, kw, ay, ax, border, cval);
    }
    if (box_u8_run_ok(kh, kw, normalize, border, cval)) return box_u8_run(src, s, dst, d, kh, kw, ay, ax, border, cval);
  }
  if constexpr (std::is_same<T, float>::value && std::is_same<U, float>::value) {
    // 3x3 / 5x5 float32: plain sums vertically then horizontally in registers, one pass
    // (sep_direct; no subtraction, so non-finite values stay in their windows), times 1 / area
    if (sep_direct_ok(kh, kw, ay, ax, s.c)) {
      const StripPlan whole = plan_strips_px<U>(dst, s, d, s.w);
      return sep_direct<1, float, float>(static_cast<const float*>(src), s, static_cast<float*>(dst), d, kh, nullptr,
                                         nullptr, normalize, 1.f / static_cast<float>(kh * kw), border,
                                         static_cast<float>(cval), whole.stream);
    }
  }
  if constexpr (std::is_same<T, uint16_t>::value && std::is_same<U, uint16_t>::value) {
    // 3x3 / 5x5 uint16: float32 sums of at most 25 values are exact integers (< 2^24), as the
    // int32 sums below, and the mean by the reciprocal rounds to the same integers where
    // box_reciprocal_exact says so: the int32 path's bits, in one pass (sep_direct).
    const double maxv = std::max<double>(65535.0, std::fabs(cval));
    const bool cval_ok = border != Border::constant || (cval == std::floor(cval) && maxv * kh * kw < 16777216.0);
    if (cval_ok && sep_direct_ok(kh, kw, ay, ax, s.c) && (!normalize || box_reciprocal_exact<float>(kh * kw, maxv))) {
      const StripPlan whole = plan_strips_px<U>(dst, s, d, s.w);
      return sep_direct<1, uint16_t, uint16_t>(static_cast<const uint16_t*>(src), s, static_cast<uint16_t*>(dst), d, kh,
                                               nullptr, nullptr, normalize, 1.f / static_cast<float>(kh * kw), border,
                                               static_cast<float>(cval), whole.stream);
    }
  }
  bool exact_int = false;
  if constexpr (std::is_integral<T>::value) {
    // int32 sums are exact when the largest possible |sum| fits (cval included).
    const double maxv = std::max<double>(std::numeric_limits<T>::max(), std::fabs(cval));
    const bool cval_ok = border != Border::constant || cval == std::floor(cval);
    exact_int = cval_ok && maxv * kh * kw < 2147483647.0;
    if (exact_int) return box_typed<T, U, int32_t>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  }
  if constexpr (std::is_floating_point<T>::value) {
    // No subtraction, so float32 sums err like any float32 filter's (sep_filter and correlate
    // accumulate float32 data in float32 too); half the bytes of float64 sums.
    box_typed<T, U, typename OutAccOf<T, U>::type>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  } else {
    box_typed<T, U, double>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  }
}

void box(DType dtype, const void* src, const ImageDesc& s, DType out_dtype, void* dst, const ImageDesc& d, int kh,
         int kw, int ay, int ax, bool normalize, Border border, double cval) {
  visit_dtype_pair(dtype, out_dtype, [&](auto tag, auto otag) {
    using T = decltype(tag);
    using U = decltype(otag);
    box_impl<T, U>(src, s, dst, d, kh, kw, ay, ax, normalize, border, cval);
  });
}

}  // namespace IMKERN_ISA
}  // namespace imkern
