// Elementwise activations and their backward passes (compiled per ISA).
//
// Bytes/element: 2 * sizeof(T) forward, 3-4 * sizeof(T) backward; memory-bound except the
// transcendental ones. FLOPs/element: relu / leaky_relu 1-2; sigmoid ~20 (vm::exp + divide);
// tanh ~30 (vm::exp and an odd polynomial, both evaluated, then selected); gelu with FMA
// (AVX2, AVX-512) ~22 for |x| <= 4.2 (vm::gelu_table: 8 polynomial pieces of degree 7, the
// coefficients by permutes), ~40 (AVX-512) / ~50 (AVX2) for a vector with lanes beyond (8
// more pieces of degree 5 times exp(-x^2 / 2), no divide: vm::gelu); without FMA ~30 for
// |x| <= 5, ~50 beyond (a divide, a degree-7 polynomial (plus a degree-9 one for the tail)
// and an exp(-x^2 / 2) kept free of the rounding of x^2); gelu_backward likewise
// (vm::gelu_grad: with FMA the same pieces and exp for lanes beyond 4.2).
// Variants: float32 runs on simd::vec_t<float> with the polynomials of vmath.hpp; float64
// uses scalar libm (and the compiler's vectorization of the simple ones). GELU (exact erf form)
// is x Phi(x) with Phi from the normal upper tail Q(|x|) = Phi(-|x|) (Phi = Q or 1 - Q), which
// keeps relative accuracy for negative x, where 1 + erf(x / sqrt 2) cancels; float32 within
// 6 ulp of the float64 result (tests/test_nn_ops.py::test_activation_float32_ulp).
// float32 gelu / gelu_grad take vm::kGeluVecs vectors per step (two interleaved dependency
// chains; vmath.hpp's gelu_tail), their one-fit forms vm::kGeluOneVecs (four), then single
// vectors, then the padded tail: the same bits.
// NaN: relu(NaN) = NaN and every activation propagates NaN, as torch.
#include <cmath>
#include <cstdint>
#include <stdexcept>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "imkern/cpu_params.hpp"
#include "imkern/nn.hpp"
#include "imkern/parallel.hpp"
#include "common/stream.hpp"
#include "common/vmath.hpp"

namespace imkern {
namespace IMKERN_ISA {
namespace {

constexpr int64_t kGrain = 32768;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

inline double gelu_d(double x) { return 0.5 * x * std::erfc(-x * kInvSqrt2); }
inline double gelu_grad_d(double x) {
  const double cdf = 0.5 * std::erfc(-x * kInvSqrt2);
  return cdf + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
}
inline double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// GELU outputs whose input + output exceed the cache this process gets
// (cpu_params().stream_bytes) are written with non-temporal stores (GELU, the one activation
// heavy enough to be computed at memory speed only with half the traffic of a
// read-for-ownership saved): far larger than the caches, they are not read back from cache.

// GELU reads its input pf elements ahead with software prefetches (one per 64-byte line).
// The hardware prefetchers alone do not keep this loop fed from DRAM on every machine: on an
// Intel Xeon (Granite Rapids class, a loaded 2-vCPU VM), single thread, 25.7 MB in and out,
// AVX2 2.2-2.4 -> 0.77-0.81 ns per element (the in-cache speed), AVX-512 0.94 -> 0.66. The
// long dependency chains of vm::gelu fill the scheduler, so the demand loads of the next
// vectors issue late and each line's DRAM latency is exposed. The distance is an eighth of
// the L1d (6 KB on a 48 KB L1d, 4 KB on a 32 KB one): far beyond DRAM latency at this loop's
// rate (a line per ~40-80 cycles), while the lines in flight take a small part of the L1.
inline int64_t gelu_prefetch_elems() {
  const int64_t l1 = cpu_caches().l1d.bytes > 0 ? cpu_caches().l1d.bytes : 32768;
  return l1 / 8 / int64_t(sizeof(float));
}
IMKERN_ALWAYS_INLINE inline void prefetch_lines(const float* p, int bytes) {
#if defined(__SSE2__)
  for (int b = 0; b < bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + b, _MM_HINT_T0);
#else
  (void)p, (void)bytes;
#endif
}

// y[i] = f(x[i]) like vm::map1 with f1 (one vector), whole vectors N at a time through fn
// (N vectors in, N out, the same bits per lane as f1): see vm::gelu_tail. Stream: the whole
// 64-byte lines of y (stream_span, common/stream.hpp) are written by non-temporal stores, the
// elements before and after them by plain ones; the caller fences (stream_fence) after its
// chunk. (Before, the streamed part began at the first vector-aligned element: at AVX2 a
// line could be half streamed, half plain.) x is prefetched pf elements ahead (a prefetch
// past the end of x is harmless: it never faults).
template <int N, bool Stream, typename FN, typename F1>
inline void map1_n(const float* x, float* y, int64_t n, int64_t pf, FN&& fn, F1&& f1) {
  constexpr int L = vm::LF;
  // [i, end) by N vectors, then single vectors, through put; returns where it stopped
  const auto run = [&](int64_t i, int64_t end, auto put) IMKERN_ALWAYS_INLINE {
    for (; i + N * L <= end; i += N * L) {
      vm::vf v[N], r[N];
      prefetch_lines(x + i + pf, N * L * 4);
      for (int j = 0; j < N; ++j) v[j] = simd::loadu(x + i + j * L);
      fn(v, r);
      for (int j = 0; j < N; ++j) put(y + i + j * L, r[j]);
    }
    for (; i + L <= end; i += L) put(y + i, f1(simd::loadu(x + i)));
    return i;
  };
  const auto plain = [](float* p, vm::vf v) IMKERN_ALWAYS_INLINE { simd::storeu(p, v); };
#if defined(__AVX512F__) || defined(__AVX__)
  if constexpr (Stream && (L == 16 || L == 8)) {
    const StreamSpan sp = stream_span<float, L>(y, n);
    if (sp.end > sp.begin) {
      const auto put = [](float* p, vm::vf v) IMKERN_ALWAYS_INLINE {
#if defined(__AVX512F__)
        if constexpr (L == 16) _mm512_stream_ps(p, (__m512)v);
#endif
        if constexpr (L == 8) _mm256_stream_ps(p, (__m256)v);
      };
      vm::map1(x, y, sp.begin, f1);       // less than a line and a vector
      run(sp.begin, sp.end, put);         // whole lines: whole vectors
      const int64_t i = run(sp.end, n, plain);
      vm::map1(x + i, y + i, n - i, f1);
      return;
    }
  }
#endif
  const int64_t i = run(0, n, plain);
  vm::map1(x + i, y + i, n - i, f1);
}

// f(std::bool_constant<table>): gelu's two forms (CpuParams::gelu_table; vmath.hpp's gelu). Without
// FMA both are the same code, so only one is instantiated.
template <typename F>
IMKERN_ALWAYS_INLINE inline void with_gelu_form(bool table, F&& f) {
#if defined(__FMA__)
  if (!table) {
    f(std::false_type{});
    return;
  }
#else
  (void)table;
#endif
  f(std::true_type{});
}

void forward_f32(Activation act, const float* x, float* y, int64_t n, float slope, bool stream, int64_t pf,
                 bool table) {
  using vm::vf;
  switch (act) {
    case Activation::relu:
      vm::map1(x, y, n, [](vf v) { return v < 0.0f ? simd::splat(0.0f) : v; });
      break;
    case Activation::leaky_relu:
      vm::map1(x, y, n, [slope](vf v) { return v > 0.0f ? v : v * slope; });
      break;
    case Activation::sigmoid: vm::map1(x, y, n, [](vf v) { return vm::sigmoid(v); }); break;
    case Activation::tanh: vm::map1(x, y, n, [](vf v) { return vm::tanh(v); }); break;
    case Activation::gelu:
      with_gelu_form(table, [&](auto form) {
        constexpr bool T = decltype(form)::value;
        constexpr int N = T ? vm::kGeluVecs : vm::kGeluOneVecs;
        // (always_inline: GCC otherwise calls fn out of line, the vectors through memory)
        const auto fn = [](const vf* v, vf* r) IMKERN_ALWAYS_INLINE { vm::gelu<N, T>(v, r); };
        const auto f1 = [](vf v) IMKERN_ALWAYS_INLINE { return vm::gelu<T>(v); };
        if (stream)
          map1_n<N, true>(x, y, n, pf, fn, f1);
        else
          map1_n<N, false>(x, y, n, pf, fn, f1);
      });
      break;
  }
}

void forward_f64(Activation act, const double* x, double* y, int64_t n, double slope) {
  switch (act) {
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? 0.0 : x[i];
      break;
    case Activation::leaky_relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : x[i] * slope;
      break;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_d(x[i]);
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::gelu:
      for (int64_t i = 0; i < n; ++i) y[i] = gelu_d(x[i]);
      break;
  }
}

// relu / leaky_relu backward use x (torch: x > 0 ? g : 0 resp. g * slope, so NaN inputs pass
// g through for relu); sigmoid and tanh use the output y.
void backward_f32(Activation act, const float* g, const float* x, const float* y, float* gx, int64_t n, float slope,
                  bool table) {
  using vm::vf;
  switch (act) {
    case Activation::relu:
      vm::map2(g, x, gx, n, [](vf gv, vf xv) { return xv <= 0.0f ? simd::splat(0.0f) : gv; });
      break;
    case Activation::leaky_relu:
      vm::map2(g, x, gx, n, [slope](vf gv, vf xv) { return xv > 0.0f ? gv : gv * slope; });
      break;
    case Activation::sigmoid:
      vm::map2(g, y, gx, n, [](vf gv, vf yv) { return gv * (1.0f - yv) * yv; });
      break;
    case Activation::tanh:
      vm::map2(g, y, gx, n, [](vf gv, vf yv) { return gv * (1.0f - yv * yv); });
      break;
    case Activation::gelu:
      with_gelu_form(table, [&](auto form) {
        constexpr bool T = decltype(form)::value;
        constexpr int N = T ? vm::kGeluVecs : vm::kGeluOneVecs, L = vm::LF;
        int64_t i = 0;
        const int64_t pf = gelu_prefetch_elems();  // as the forward (g and x)
        for (; i + N * L <= n; i += N * L) {  // N vectors per step, as the forward
          vf v[N], r[N];
          prefetch_lines(x + i + pf, N * L * 4);
          prefetch_lines(g + i + pf, N * L * 4);
          for (int j = 0; j < N; ++j) v[j] = simd::loadu(x + i + j * L);
          vm::gelu_grad<N, T>(v, r);
          for (int j = 0; j < N; ++j) simd::storeu(gx + i + j * L, simd::loadu(g + i + j * L) * r[j]);
        }
        vm::map2(g + i, x + i, gx + i, n - i,
                 [](vf gv, vf xv) IMKERN_ALWAYS_INLINE { return gv * vm::gelu_grad<T>(xv); });
      });
      break;
  }
}

void backward_f64(Activation act, const double* g, const double* x, const double* y, double* gx, int64_t n,
                  double slope) {
  switch (act) {
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) gx[i] = x[i] <= 0 ? 0.0 : g[i];
      break;
    case Activation::leaky_relu:
      for (int64_t i = 0; i < n; ++i) gx[i] = x[i] > 0 ? g[i] : g[i] * slope;
      break;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * (1.0 - y[i]) * y[i];
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * (1.0 - y[i] * y[i]);
      break;
    case Activation::gelu:
      for (int64_t i = 0; i < n; ++i) gx[i] = g[i] * gelu_grad_d(x[i]);
      break;
  }
}

inline bool reads_y(Activation a) { return a == Activation::sigmoid || a == Activation::tanh; }

}  // namespace

void activation(DType dtype, Activation act, const void* x, void* y, int64_t n, double slope) {
  if (dtype == DType::f32) {
    const float* xp = static_cast<const float*>(x);
    float* yp = static_cast<float*>(y);
    const bool stream = act == Activation::gelu && 2 * n * int64_t(sizeof(float)) > params().stream_bytes;
    const int64_t pf = act == Activation::gelu ? gelu_prefetch_elems() : 0;
    const bool table = params().gelu_table != 0;
    parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) {
      forward_f32(act, xp + a, yp + a, b - a, static_cast<float>(slope), stream, pf, table);
      if (stream) stream_fence();
    });
  } else if (dtype == DType::f64) {
    const double* xp = static_cast<const double*>(x);
    double* yp = static_cast<double*>(y);
    parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) { forward_f64(act, xp + a, yp + a, b - a, slope); });
  } else {
    throw std::invalid_argument("imkern: activations take float32 or float64");
  }
}

void activation_backward(DType dtype, Activation act, const void* gy, const void* x, const void* y, void* gx,
                         int64_t n, double slope) {
  if ((reads_y(act) ? y : x) == nullptr) throw std::invalid_argument("imkern: activation_backward: missing input");
  if (dtype == DType::f32) {
    const float *g = static_cast<const float*>(gy), *xp = static_cast<const float*>(x),
                *yp = static_cast<const float*>(y);
    float* o = static_cast<float*>(gx);
    const bool table = params().gelu_table != 0;
    parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) {
      backward_f32(act, g + a, xp ? xp + a : nullptr, yp ? yp + a : nullptr, o + a, b - a,
                   static_cast<float>(slope), table);
    });
  } else if (dtype == DType::f64) {
    const double *g = static_cast<const double*>(gy), *xp = static_cast<const double*>(x),
                 *yp = static_cast<const double*>(y);
    double* o = static_cast<double*>(gx);
    parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) {
      backward_f64(act, g + a, xp ? xp + a : nullptr, yp ? yp + a : nullptr, o + a, b - a, slope);
    });
  } else {
    throw std::invalid_argument("imkern: activations take float32 or float64");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
